/*  libp2c2r: the C client library of P2C2R, for games.

    A game connects to a P2C2R gateway (ws:// or wss://) with its API key,
    submits compute tasks (path finding, ray tracing, physics, ...) and gets
    one completion callback per task with the result (JSON and binary) or
    an error code. The client reconnects by itself.

    Two ways to drive it, chosen by the caller at p2c2r_new:
    - loop mode (the default): nothing runs unless the caller calls
      p2c2r_step. A game calls it once per frame; an event loop waits for
      p2c2r_fd to be readable and then calls it. Every callback runs inside
      p2c2r_step, on the caller's thread. p2c2r_step never blocks.
    - thread mode (options.threaded): the client runs its own network
      thread; callbacks run on that thread.

    Thread rules:
    - Loop mode: the client is not thread-safe; call every function from
      one thread at a time (the one that calls p2c2r_step).
    - Thread mode: p2c2r_submit, p2c2r_cancel, p2c2r_state and p2c2r_stats
      may be called from any thread, and from inside callbacks. Callbacks
      run one at a time on the client's thread; while one runs, a call from
      another thread waits for it, so keep callbacks short.
    - Both: p2c2r_destroy is called once, by the owner, never from inside
      a callback. No callback runs during or after it.
    - The library has no global state: clients are independent. It never
      changes process-wide settings (signals, libwebsockets' log level;
      ignore SIGPIPE in the program, a closed socket raises it).

    Every function that can fail returns a p2c2r_code_t or says how it
    reports one. The codes of task errors are the protocol's
    (docs/protocol.md: no_peers, timeout, ...); p2c2r_code_name gives the
    protocol's text for each.

    Compile with `pkg-config --cflags --libs p2c2r`. */
#ifndef P2C2R_H_INCLUDED
#define P2C2R_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#   define P2C2R_EXPORT __attribute__ ((visibility ("default")))
#else
#   define P2C2R_EXPORT
#endif

#define P2C2R_VERSION "0.1.0"

//  Outcomes. The first group are the server's task error codes, the second
//  its other errors, the third are found by the library itself.
typedef enum {
    P2C2R_OK = 0,
    P2C2R_NO_PEERS,             //  "no_peers": no peer can run the task now
    P2C2R_TIMEOUT,              //  "timeout": the deadline passed
    P2C2R_INVALID_PARAMS,       //  "invalid_params": the kernel refused the params
    P2C2R_UNKNOWN_TASK_TYPE,    //  "unknown_task_type"
    P2C2R_INSUFFICIENT_FUNDS,   //  "insufficient_funds": top up the account
    P2C2R_KERNEL_ERROR,         //  "kernel_error": the kernel failed on the peer
    P2C2R_REJECTED,             //  "rejected": the result failed validation
    P2C2R_RATE_LIMITED,         //  "rate_limited": too many submits, slow down
    P2C2R_TOO_LARGE,            //  "too_large": params or payload over the limit
    P2C2R_UNAVAILABLE,          //  "unavailable": the server cannot take it now
    P2C2R_AUTH_FAILED,          //  "auth_failed": the API key was refused
    P2C2R_BAD_REQUEST,          //  "bad_request": the server did not understand
    P2C2R_SERVER_ERROR,         //  "server_error": a code this library does not know
    P2C2R_CONNECTION_LOST,      //  "connection_lost": the connection closed before
                                //  the reply came; the task may have run (and been
                                //  charged): its result cannot be collected yet
    P2C2R_CANCELLED,            //  "cancelled": p2c2r_cancel
    P2C2R_NOT_CONNECTED,        //  "not_connected": the server could not be reached
                                //  and the client does not reconnect
    P2C2R_TLS,                  //  "tls": the server's certificate is not trusted
    P2C2R_INVALID_ARGUMENT,     //  "invalid_argument": a bad argument to a call
    P2C2R_QUEUE_FULL,           //  "queue_full": options.max_queued tasks wait already
    P2C2R_NO_MEMORY,            //  "no_memory"
    P2C2R_CODE_COUNT
} p2c2r_code_t;

//  The protocol's name of a code ("no_peers"); "server_error" for an
//  unknown value. Static text.
P2C2R_EXPORT const char *p2c2r_code_name (p2c2r_code_t code);

//  The code of a protocol name; P2C2R_SERVER_ERROR when unknown, P2C2R_OK
//  for NULL or "".
P2C2R_EXPORT p2c2r_code_t p2c2r_code_from_name (const char *name);

//  A sentence for people ("no peer can run this task now"). Static text.
P2C2R_EXPORT const char *p2c2r_code_text (p2c2r_code_t code);

typedef struct _p2c2r_client_t p2c2r_client_t;
typedef struct _p2c2r_result_t p2c2r_result_t;

//  Where the connection is
typedef enum {
    P2C2R_CONNECTING,           //  connecting or registering
    P2C2R_READY,                //  registered: tasks go out
    P2C2R_DISCONNECTED,         //  lost or refused; a reconnect is scheduled
    P2C2R_CLOSED                //  lost or refused, and options.reconnect is off
} p2c2r_state_t;

//  Levels of log lines
#define P2C2R_LOG_DEBUG 0
#define P2C2R_LOG_WARN  1

//  Settings of a client. Fill with p2c2r_options_init, then set fields.
//  Strings are copied by p2c2r_new.
typedef struct {
    const char *url;            //  "ws://HOST[:PORT][/PATH]" or "wss://..." (port 8765)
    const char *api_key;        //  the account's key; NULL under open registration
    const char *gamer_id;       //  the player's name; NULL: "player-<pid>"
    const char *ca_file;        //  wss://: PEM CA file to trust instead of the system's
    bool insecure;              //  wss://: accept any certificate (development only)
    bool threaded;              //  thread mode (see above); default loop mode
    bool reconnect;             //  reconnect with backoff (default true)
    uint32_t max_queued;        //  tasks waiting to be sent, at most (default 10000)
    //  The connection's state changed. code and why say why it is
    //  DISCONNECTED or CLOSED (P2C2R_OK otherwise). May be NULL.
    void (*on_state) (p2c2r_client_t *client, p2c2r_state_t state, p2c2r_code_t code,
                      const char *why, void *arg);
    //  One log line ("p2c2r: event key=value"), never with a key or a
    //  message body. May be NULL: silent.
    void (*on_log) (int level, const char *line, void *arg);
    void *arg;                  //  passed to on_state and on_log
} p2c2r_options_t;

//  The defaults: loop mode, reconnect on, url "ws://127.0.0.1:8765".
P2C2R_EXPORT void p2c2r_options_init (p2c2r_options_t *options);

//  Creates a client and starts connecting (thread mode: starts its
//  thread). NULL when the options are bad or resources are short; then
//  *code_p (if not NULL) says why.
P2C2R_EXPORT p2c2r_client_t *p2c2r_new (const p2c2r_options_t *options, p2c2r_code_t *code_p);

//  Closes the connection, stops the thread, frees everything; tasks not
//  completed are dropped without a callback (the server may still run and
//  charge them). NULLs *client_p; safe on NULL.
P2C2R_EXPORT void p2c2r_destroy (p2c2r_client_t **client_p);

//  Loop mode: a descriptor that is readable when p2c2r_step has work (the
//  socket, the client's timer). Stable for the client's life. -1 in
//  thread mode.
P2C2R_EXPORT int p2c2r_fd (p2c2r_client_t *client);

//  Loop mode: does what is due without blocking (reads replies, sends
//  queued tasks, reconnects, runs callbacks). Call it every frame, or when
//  p2c2r_fd is readable and at least every 100 ms. Returns P2C2R_OK, or
//  P2C2R_INVALID_ARGUMENT in thread mode.
P2C2R_EXPORT p2c2r_code_t p2c2r_step (p2c2r_client_t *client);

//  The connection's state now.
P2C2R_EXPORT p2c2r_state_t p2c2r_state (p2c2r_client_t *client);

//  Resubmission of tasks lost with a connection (default on): a task sent
//  on a connection that closed before its reply is sent again, with the
//  same client_ref, on the next connection (to whichever gateway answers
//  the url); the server answers a repeat of a client_ref of the account
//  (within its window, 24 h by default) with the first submit's outcome,
//  with no new run and no new charge. Each task goes out at most 4 times;
//  then, or when off, a lost task completes with P2C2R_CONNECTION_LOST.
//  On, a task's payload is kept until its reply.
P2C2R_EXPORT void p2c2r_set_resubmit (p2c2r_client_t *client, bool on);

//  A task to submit. Fields are copied by p2c2r_submit.
typedef struct {
    const char *type;           //  task type, e.g. "ai_pathfinding" (required)
    const char *params_json;    //  a JSON object (NULL: "{}"), at most 1 MiB
    const void *payload;        //  optional binary input (a PNG frame)
    size_t payload_len;         //  at most 48 MiB
    const char *client_ref;     //  optional, at most 128 bytes: your idempotency key,
                                //  echoed in the result; unique among your tasks
                                //  (the server answers a repeat within its window
                                //  with the first one's outcome). NULL: the
                                //  library makes one, unique to this client
    uint32_t deadline_ms;       //  0: the server's default
} p2c2r_task_t;

//  Called exactly once per submitted task (unless the client is destroyed
//  first). result is borrowed for the call.
typedef void (p2c2r_done_fn) (p2c2r_client_t *client, const p2c2r_result_t *result, void *arg);

//  Queues a task; it goes out as soon as the client is READY. Returns the
//  task's id (> 0, for p2c2r_cancel and p2c2r_result_id), or 0 with the
//  reason in *code_p (if not NULL): P2C2R_INVALID_ARGUMENT (a NULL or
//  oversize field, a client_ref in flight already), P2C2R_QUEUE_FULL,
//  P2C2R_NOT_CONNECTED (CLOSED, no reconnect), P2C2R_NO_MEMORY.
//  If a task waits unsent past its deadline_ms, it completes with
//  P2C2R_TIMEOUT.
P2C2R_EXPORT uint64_t p2c2r_submit (p2c2r_client_t *client, const p2c2r_task_t *task,
                                    p2c2r_done_fn *done, void *arg, p2c2r_code_t *code_p);

//  Gives up on a task: it completes with P2C2R_CANCELLED at the next step
//  (loop mode) or soon (thread mode); a reply that comes later is dropped.
//  A task already sent may still run and be charged. Returns P2C2R_OK, or
//  P2C2R_INVALID_ARGUMENT when the id is not a task in flight.
P2C2R_EXPORT p2c2r_code_t p2c2r_cancel (p2c2r_client_t *client, uint64_t id);

//  The result of a task, inside its completion callback
P2C2R_EXPORT uint64_t p2c2r_result_id (const p2c2r_result_t *result);
//  P2C2R_OK when the task ran and the result is there
P2C2R_EXPORT p2c2r_code_t p2c2r_result_code (const p2c2r_result_t *result);
//  The error's code as the server wrote it ("no_peers"), "" when ok
P2C2R_EXPORT const char *p2c2r_result_code_name (const p2c2r_result_t *result);
//  The error's text for people, "" when ok
P2C2R_EXPORT const char *p2c2r_result_error (const p2c2r_result_t *result);
//  The kernel's JSON object as text when ok, else ""
P2C2R_EXPORT const char *p2c2r_result_json (const p2c2r_result_t *result);
//  Binary output (a PNG) and its length in *len_p; NULL and 0 when none
P2C2R_EXPORT const uint8_t *p2c2r_result_blob (const p2c2r_result_t *result, size_t *len_p);
//  The server's task id ("" when the task never reached the server)
P2C2R_EXPORT const char *p2c2r_result_task_id (const p2c2r_result_t *result);
//  The client_ref sent with the task
P2C2R_EXPORT const char *p2c2r_result_client_ref (const p2c2r_result_t *result);
//  What the task cost, in picodollars (exact; 1 USD = 10^12)
P2C2R_EXPORT int64_t p2c2r_result_cost_pico (const p2c2r_result_t *result);
//  Compute time billed, in microseconds
P2C2R_EXPORT uint64_t p2c2r_result_billed_us (const p2c2r_result_t *result);
//  True when the server answered from its result cache (free)
P2C2R_EXPORT bool p2c2r_result_cached (const p2c2r_result_t *result);
//  True when the server answered a repeat of the task's client_ref from the
//  first submit's outcome (a resubmission after a lost connection); then
//  p2c2r_result_task_id is that first task's id and cost_pico its cost,
//  charged once
P2C2R_EXPORT bool p2c2r_result_replayed (const p2c2r_result_t *result);
//  Milliseconds from p2c2r_submit to the reply
P2C2R_EXPORT double p2c2r_result_latency_ms (const p2c2r_result_t *result);

//  Counters of a client
typedef struct {
    uint64_t submitted;         //  tasks accepted by p2c2r_submit
    uint64_t completed;         //  completion callbacks run
    uint64_t failed;            //  ... of which with an error
    uint64_t queued;            //  waiting to be sent now
    uint64_t in_flight;         //  sent, waiting for the reply now
    uint64_t connects;          //  times the client registered
    uint64_t protocol_errors;   //  replies for no task in flight (dropped)
} p2c2r_stats_t;

P2C2R_EXPORT void p2c2r_stats (p2c2r_client_t *client, p2c2r_stats_t *stats);

#ifdef __cplusplus
}
#endif

#endif
