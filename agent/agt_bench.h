/*  Kernel speed on reference inputs. `p2c2r-agent bench` runs each
    kernel's reference input (agt_kernel_t.reference_params) several times
    in this process and prints the median; a peer measures the same inputs
    once each at start, in a worker process so that a bad kernel cannot
    hurt it, advertises the figures at registration (KernelInfo.reference_us)
    and caches them in $XDG_CACHE_HOME/p2c2r/bench.json (or
    ~/.cache/p2c2r/bench.json), keyed by agent and kernel version, so that a
    restart is fast. */
#ifndef AGT_BENCH_H_INCLUDED
#define AGT_BENCH_H_INCLUDED

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agt_kernel.h"

//  The frame frame_upscale's reference input upscales
#define AGT_BENCH_PNG_WIDTH  480
#define AGT_BENCH_PNG_HEIGHT 270

//  A gradient test frame of width x height as PNG (malloc'd), or NULL.
uint8_t *agt_bench_png (uint32_t width, uint32_t height, size_t *len_p);

//  The payload a kernel's reference input needs (the generated frame for
//  frame_upscale), or NULL with *len_p 0. Caller frees.
uint8_t *agt_bench_payload (const agt_kernel_t *kernel, size_t *len_p);

//  Runs the kernel's reference input `runs` times in this process and
//  stores each run's time in times_us (sorted ascending). Returns 0, or -1
//  with the kernel's error in err.
int agt_bench_kernel (const agt_kernel_t *kernel, int runs, int64_t *times_us,
                      char *err, size_t err_size);

//  The median of n sorted values (mean of the two middle ones when n is
//  even); 0 when n is 0.
int64_t agt_bench_median (const int64_t *sorted, int n);

//  The `bench` subcommand (argv[0] is "bench"). Returns the exit status:
//  0, or 1 on bad settings or when a kernel failed on its reference input.
int agt_bench_main (int argc, char **argv);

//  ---------------------------------------------------------------------
//  Peer side: reference_us per kernel, in agt_kernels() order

//  The cache file's path (caller frees), or NULL when there is no home.
char *agt_bench_cache_path (void);

//  Fills ref_us[0..n) from the cache at path. Returns the number of
//  kernels found for this agent version with their current kernel version.
size_t agt_bench_cache_load (const char *path, uint64_t *ref_us, size_t n);

//  Writes the figures atomically (temp file and rename), making the
//  directory when missing. Returns 0 or -1.
int agt_bench_cache_save (const char *path, const uint64_t *ref_us, size_t n);

//  Measures each kernel once on a fresh worker process (exe, argv as for
//  agt_worker_new) with a time limit of limit_ms each; a kernel that
//  fails or overruns gets 0 ("not measured"). Stops early when *stop is
//  set. Returns the number of kernels measured.
size_t agt_bench_measure (const char *exe, char *const argv [], int64_t limit_ms,
                          volatile sig_atomic_t *stop, uint64_t *ref_us, size_t n);

void agt_bench_test (bool verbose);

#endif
