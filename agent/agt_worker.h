/*  Kernels run in worker processes so that a crash, an endless loop or
    runaway memory in one task cannot take the agent down.
    Worker side: `p2c2r-agent worker --fd N` reads requests from the socket
    N in a loop: a 4-byte big-endian length, then a packed
    ServerMessage{assign}; it answers each with a 4-byte length and a packed
    ClientMessage{result}.
    Parent side: agt_worker_t spawns one such process (fork + exec) on a
    socketpair, runs one task at a time on it with a time limit, and kills
    and respawns it when it dies, overruns or misbehaves. */
#ifndef AGT_WORKER_H_INCLUDED
#define AGT_WORKER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agt_kernel.h"
#include "p2c_msg.h"

//  Largest request or reply on the worker socket
#define AGT_WORKER_MAX_MSG (96 * 1024 * 1024)

//  The fd number the worker's end of the socket gets in the child
#define AGT_WORKER_FD 3

//  How the worker finds a kernel: agt_kernel_find in the agent; a test may
//  wrap it to add kernels of its own.
typedef const agt_kernel_t *(agt_kernel_lookup_fn) (const char *name);

//  ---------------------------------------------------------------------
//  Worker side

//  Runs one assignment in this process and fills result (strings and blob
//  are malloc'd: release with agt_worker_result_reset). Never fails: every
//  problem becomes an error result (unknown_task_type, invalid_params,
//  kernel_error).
void agt_worker_execute (agt_kernel_lookup_fn *lookup, const P2c2r__Assign *assign,
                         P2c2r__PeerResult *result);
void agt_worker_result_reset (P2c2r__PeerResult *result);

//  Serves requests on fd until it closes. Returns 0 at a clean end of
//  input, -1 on a broken request.
int agt_worker_serve (int fd, agt_kernel_lookup_fn *lookup);

//  The hidden `worker` subcommand: parses --fd and --worker-mem-mb, sets
//  the resource limits and serves. Returns the exit status.
int agt_worker_main (int argc, char **argv, agt_kernel_lookup_fn *lookup);

//  ---------------------------------------------------------------------
//  Parent side

typedef struct _agt_worker_t agt_worker_t;

//  Spawns exe with argv (argv[0] first, NULL-terminated); the child finds
//  its end of the socket at AGT_WORKER_FD. NULL (logged) when it cannot.
agt_worker_t *agt_worker_new (const char *exe, char *const argv []);
//  Kills the process (SIGKILL) and reaps it.
void agt_worker_destroy (agt_worker_t **self_p);

//  Called every 100 ms while a task runs; true abandons the task (the
//  worker is killed and respawned).
typedef bool (agt_worker_abandon_fn) (void *arg);

//  Runs one task with a time limit. Returns the worker's reply (caller
//  frees with p2c_msg_client_free), or NULL when the worker crashed,
//  overran, answered nonsense or the task was abandoned: then why holds the
//  reason ("worker crashed: signal 11", "time limit exceeded", ...) and a
//  fresh worker has been spawned (if that failed, agt_worker_alive says so).
P2c2r__ClientMessage *agt_worker_run (agt_worker_t *self, const P2c2r__Assign *assign,
                                      int64_t timeout_ms, agt_worker_abandon_fn *abandon,
                                      void *abandon_arg, char *why, size_t why_size);

//  True when the worker process exists (a failed respawn leaves it dead;
//  agt_worker_run tries again).
bool agt_worker_alive (agt_worker_t *self);

//  The worker's process id, or -1
int agt_worker_pid (agt_worker_t *self);

#endif
