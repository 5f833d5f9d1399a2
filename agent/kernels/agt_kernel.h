/*  The task kernel interface. A kernel is a pure, deterministic function of
    its parameters (a JSON object) and optional payload bytes: equal input
    gives equal result bytes on every machine (no clocks, no unseeded
    randomness, no fast-math). It checks every parameter against its bounds
    and answers invalid_params naming the field. It never exits or asserts
    on input; the agent runs it in an isolated worker process all the same. */
#ifndef AGT_KERNEL_H_INCLUDED
#define AGT_KERNEL_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    json_t *result;             //  the result object (owned: set by the kernel)
    uint8_t *blob;              //  binary output, e.g. a PNG (malloc'd) or NULL
    size_t blob_len;
    char error_code [32];       //  when the kernel fails: invalid_params or kernel_error
    char error [256];           //  human text, naming the field for invalid_params
} agt_kernel_out_t;

//  Returns 0 with out->result set, or -1 with out->error_code/error set.
typedef int (agt_kernel_fn) (const json_t *params, const uint8_t *payload, size_t payload_len,
                             agt_kernel_out_t *out);

typedef struct {
    const char *name;           //  canonical type name (common/p2c_tasks.c)
    const char *version;        //  bumped whenever result bytes may change
    agt_kernel_fn *run;
    const char *reference_params;   //  a reference input for `p2c2r-agent bench`
} agt_kernel_t;

//  The kernel of a canonical type name, or NULL.
const agt_kernel_t *agt_kernel_find (const char *name);

//  All kernels, terminated by an entry with name NULL.
const agt_kernel_t *agt_kernels (void);

//  Sets an error on out and returns -1 (printf-style message).
int agt_kernel_fail (agt_kernel_out_t *out, const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Releases what a run left in out (result, blob).
void agt_kernel_out_reset (agt_kernel_out_t *out);

#endif
