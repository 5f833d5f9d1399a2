/*  Kernels run in worker processes so that a crash, an endless loop or
    runaway memory in one task cannot take the agent down.
    Worker side: `p2c2r-agent worker --fd N` reads requests from the socket
    N in a loop: a 4-byte big-endian length, then a packed
    ServerMessage{assign}; it answers each with a 4-byte length and a packed
    ClientMessage{result}.
    Parent side: agt_worker_t spawns one such process (fork + exec) on a
    socketpair, runs one task at a time on it with a time limit, and kills
    and respawns it when it dies, overruns or misbehaves. It never blocks
    (but for a few ms reaping a worker that crashed): the peer drives it
    from its event loop, which watches the worker's socket next to the
    gateway's. agt_worker_run is the same thing, blocking, for one task. */
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

//  Room in front of a reply's message in the buffer agt_worker_take_reply
//  hands over: enough for libwebsockets' LWS_PRE, so that the reply goes
//  to the gateway as read, without a copy
#define AGT_WORKER_REPLY_PRE 16

typedef enum {
    AGT_WORKER_IDLE,            //  no task
    AGT_WORKER_RUNNING,         //  the task is not finished yet
    AGT_WORKER_DONE,            //  its reply is in: agt_worker_take_reply
    AGT_WORKER_FAILED           //  crashed, overran or answered nonsense: replaced
} agt_worker_status_t;

//  Hands a task to an idle worker: request is a packed ServerMessage{assign}
//  for task_id (written from the caller's buffer when the socket takes it
//  at once, else copied). The time limit is timeout_ms plus a margin for
//  the reply. Returns 0, or -1 with why (no worker could be started, the
//  task is too large). A worker found dead here (killed while idle) is
//  replaced first: that fails no task.
int agt_worker_start (agt_worker_t *self, const char *task_id, const uint8_t *request,
                      size_t len, int64_t timeout_ms, char *why, size_t why_size);

//  Moves what the socket allows without blocking and checks the time
//  limit. Call it when the socket is ready (see agt_worker_fd and
//  agt_worker_wants_write) and now and then for the time limit. FAILED:
//  why holds the reason ("worker crashed: signal 11", "time limit
//  exceeded", ...), the task is over and a fresh worker (a new fd) runs,
//  unless that failed (agt_worker_alive). Called while idle it notices a
//  worker that died between tasks and replaces it.
agt_worker_status_t agt_worker_pump (agt_worker_t *self, char *why, size_t why_size);

//  After DONE: the reply. Returns the buffer (caller frees) with the packed
//  ClientMessage{result} at AGT_WORKER_REPLY_PRE, *len_p bytes long, and
//  its unpacked form in *msg_p (caller frees with p2c_msg_client_free). The
//  worker is idle again.
uint8_t *agt_worker_take_reply (agt_worker_t *self, size_t *len_p, P2c2r__ClientMessage **msg_p);

//  Ends the task in flight (kills and respawns the worker: its fd changes).
void agt_worker_abandon (agt_worker_t *self);

//  Our end of the worker's socket (it changes when the worker is
//  replaced), or -1
int agt_worker_fd (agt_worker_t *self);
//  Changes whenever the worker is replaced (its fd number may not)
uint64_t agt_worker_serial (agt_worker_t *self);
//  True while a task is in flight
bool agt_worker_busy (agt_worker_t *self);
//  True while request bytes wait for room in the socket
bool agt_worker_wants_write (agt_worker_t *self);

//  Called every 100 ms while agt_worker_run runs; true abandons the task
//  (the worker is killed and respawned).
typedef bool (agt_worker_abandon_fn) (void *arg);

//  Runs one task with a time limit, blocking. Returns the worker's reply
//  (caller frees with p2c_msg_client_free), or NULL when the worker crashed,
//  overran, answered nonsense or the task was abandoned: then why holds the
//  reason and a fresh worker has been spawned (if that failed,
//  agt_worker_alive says so).
P2c2r__ClientMessage *agt_worker_run (agt_worker_t *self, const P2c2r__Assign *assign,
                                      int64_t timeout_ms, agt_worker_abandon_fn *abandon,
                                      void *abandon_arg, char *why, size_t why_size);

//  True when the worker process exists (a failed respawn leaves it dead;
//  agt_worker_run tries again).
bool agt_worker_alive (agt_worker_t *self);

//  The worker's process id, or -1
int agt_worker_pid (agt_worker_t *self);

#endif
