/*  The one WebSocket client connection to a gateway, inside libp2c2r and
    used by p2c2r-agent peer and (through p2c2r.h) gamer: libwebsockets,
    one context, driven by one thread. Binary frames carry one protobuf
    ServerMessage in and one ClientMessage out. The owner is told about
    opens, messages, closes and a periodic cron tick through handlers that
    all run on the thread that drives the loop (p2l_conn_run, or
    p2l_conn_step from the owner's own loop).
    ws:// or wss:// (TLS through OpenSSL in lws, the server's certificate
    verified against a CA file given or the system's CA store). Also the reconnect
    backoff and the policy that maps how a connection ended (the gateway's
    close codes) to when to try again. */
#ifndef P2L_CONN_H_INCLUDED
#define P2L_CONN_H_INCLUDED

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p2c_msg.h"

//  Largest ServerMessage accepted (a task's payload is a frame)
#define P2L_MAX_SERVER_MSG (64 * 1024 * 1024)

typedef struct _p2l_conn_t p2l_conn_t;

//  How a connection ended, for the owner's on_close
typedef struct {
    int code;                   //  the server's WebSocket close code, 0 when none came
    char reason [124];          //  the server's close reason (printable ASCII only)
    bool cert_error;            //  TLS: the server's certificate was not trusted
    char why [256];             //  what happened, for a log line
} p2l_conn_end_t;

//  TLS settings of a wss:// connection (ignored for ws://)
typedef struct {
    const char *ca_file;        //  CA certificates (PEM) to trust instead of the system's, or NULL
    bool insecure;              //  accept a self-signed certificate, skip the host name check
} p2l_conn_tls_t;

//  Levels of on_log lines
#define P2L_LOG_DEBUG 0
#define P2L_LOG_WARN  1

typedef struct {
    //  The WebSocket is open: send the registration
    void (*on_open) (p2l_conn_t *conn, void *arg);
    //  One message arrived; the handler takes ownership of *msg_p. raw is
    //  the message as it came (borrowed for the call), for a handler that
    //  passes it on without packing it again.
    void (*on_message) (p2l_conn_t *conn, P2c2r__ServerMessage **msg_p, const uint8_t *raw,
                        size_t raw_len, void *arg);
    //  The connection closed or could not be made
    void (*on_close) (p2l_conn_t *conn, const p2l_conn_end_t *end, void *arg);
    //  Every cron period (may be NULL)
    void (*on_cron) (p2l_conn_t *conn, void *arg);
    //  One log line, "conn: event key=value" (may be NULL: silent)
    void (*on_log) (int level, const char *line, void *arg);
} p2l_conn_handlers_t;

//  The port when a URL names none: the gateway's, for ws:// and wss:// alike
//  (it serves both on one port, see docs/gateway.md)
#define P2L_DEFAULT_PORT 8765

//  Splits ws[s]://HOST[:PORT][/PATH] into its parts; *tls_p tells wss://.
//  Returns 0, or -1 with a reason in err.
int p2l_conn_parse_url (const char *url, char *host, size_t host_size, int *port_p,
                        char *path, size_t path_size, bool *tls_p, char *err, size_t err_size);

//  Creates the client for url with a cron tick every cron_ms; tls may be
//  NULL (verify against the system's CA store). NULL (logged) when the URL
//  is bad or libwebsockets cannot start.
p2l_conn_t *p2l_conn_new (const char *url, const p2l_conn_tls_t *tls,
                          const p2l_conn_handlers_t *handlers, void *arg, int cron_ms);
void p2l_conn_destroy (p2l_conn_t **self_p);

//  Starts one connection attempt; the outcome comes as on_open or on_close.
void p2l_conn_connect (p2l_conn_t *self);

//  Asks for the connection to be closed; on_close follows.
void p2l_conn_close (p2l_conn_t *self);

//  True while the WebSocket is open.
bool p2l_conn_open (p2l_conn_t *self);

//  Packs and queues a message (network thread only). -1 when not open.
int p2l_conn_send (p2l_conn_t *self, const P2c2r__ClientMessage *msg);

//  Calls back on_sent (network thread) after the message queued by the last
//  p2l_conn_send was handed to the socket: the peer logs a task as done only
//  then. tag is passed through; free_tag releases it either way.
int p2l_conn_send_tagged (p2l_conn_t *self, const P2c2r__ClientMessage *msg, void *tag,
                          void (*on_sent) (void *tag, void *arg), void (*free_tag) (void *tag));

//  Spare bytes a buffer given to p2l_conn_send_packed needs in front of its
//  message (libwebsockets' LWS_PRE, checked at build time)
#define P2L_CONN_PRE 16

//  Like p2l_conn_send_tagged for a message that is packed already: takes
//  buf (malloc'd; freed either way) whose message of len bytes starts at
//  buf + offset, offset at least P2L_CONN_PRE. Nothing is copied.
int p2l_conn_send_packed (p2l_conn_t *self, uint8_t *buf, size_t offset, size_t len, void *tag,
                          void (*on_sent) (void *tag, void *arg), void (*free_tag) (void *tag));

//  A descriptor watched by the loop next to the connection (a worker
//  process's socket): on_ready runs on the network thread when it is
//  readable or closed, and once when writable after p2l_conn_watch_write.
//  The loop watches a duplicate; the caller keeps fd and does its own I/O.
//  *ref holds the watch until it ends: p2l_conn_unwatch, or the loop gave
//  up on the descriptor (then on_ready runs once more, with *ref already
//  NULL, so that the owner looks at its fd and finds out why).
typedef struct _p2l_conn_watch_t p2l_conn_watch_t;
int p2l_conn_watch (p2l_conn_t *self, int fd, void (*on_ready) (void *arg), void *arg,
                    p2l_conn_watch_t **ref);
void p2l_conn_watch_write (p2l_conn_watch_t *watch);
//  Ends the watch (NULLs *ref); no on_ready follows.
void p2l_conn_unwatch (p2l_conn_watch_t **ref);

//  Runs the loop until p2l_conn_stop is called or *stop_flag is set (by a
//  signal handler). Returns 0, or -1 when libwebsockets failed.
int p2l_conn_run (p2l_conn_t *self, volatile sig_atomic_t *stop_flag);
void p2l_conn_stop (p2l_conn_t *self);

//  For an owner that runs its own loop instead of p2l_conn_run: does what
//  is due now without waiting (socket events, timers). Returns 0, or -1
//  when libwebsockets failed.
int p2l_conn_step (p2l_conn_t *self);

//  The connection's socket, to wait on (readable, and writable while
//  p2l_conn_wants_write); -1 when there is none. A reconnect changes it.
int p2l_conn_socket_fd (p2l_conn_t *self);
bool p2l_conn_wants_write (p2l_conn_t *self);

//  True from p2l_conn_connect until open or closed. The TLS and HTTP
//  handshakes may need a write turn the socket's events do not announce
//  (lws waits for POLLOUT, which is always there): an owner stepping on
//  events steps often (every few ms) while this holds.
bool p2l_conn_connecting (p2l_conn_t *self);

//  Reconnect delays: 0.5 s doubling to 30 s, each +-25% jitter.
typedef struct {
    int64_t base_ms;            //  the next delay before jitter
} p2l_backoff_t;

void p2l_backoff_reset (p2l_backoff_t *self);
//  The next delay in ms; jitter01 is a uniform number in [0, 1).
int64_t p2l_backoff_next (p2l_backoff_t *self, double jitter01);

//  When to reconnect after a connection ended
typedef enum {
    P2L_RETRY_BACKOFF,          //  the usual backoff
    P2L_RETRY_SOON,             //  1001 going away: another gateway is up, come back at once
    P2L_RETRY_LATER,            //  1013 try again later: the server is busy, at least 5 s
    P2L_RETRY_AUTH              //  the API key was refused or revoked: 5 minutes
} p2l_retry_t;

//  The policy for how a connection ended. auth_refused: the server
//  answered the registration with auth_failed on this connection.
p2l_retry_t p2l_retry_kind (const p2l_conn_end_t *end, bool auth_refused);

//  The delay in ms before the next attempt under that policy (advances
//  the backoff); jitter01 is a uniform number in [0, 1).
int64_t p2l_retry_delay (p2l_retry_t kind, p2l_backoff_t *backoff, double jitter01);

//  "backoff", "soon", "later", "auth": for log lines
const char *p2l_retry_name (p2l_retry_t kind);

void p2l_conn_test (bool verbose);

//  The self-test of the client in p2c2r.c (not part of the API): every
//  path that needs no server
void p2l_client_test (bool verbose);

#endif
