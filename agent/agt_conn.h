/*  The agent's one WebSocket client connection to a gateway (libwebsockets,
    one context, driven by one thread). Binary frames carry one protobuf
    ServerMessage in and one ClientMessage out. The owner is told about
    opens, messages, closes, wake-ups from other threads and a periodic
    cron tick through handlers that all run on the network thread.
    ws:// or wss:// (TLS through OpenSSL in lws, the server's certificate
    verified against --ca or the system's CA store). Also the reconnect
    backoff and the policy that maps how a connection ended (the gateway's
    close codes) to when to try again. */
#ifndef AGT_CONN_H_INCLUDED
#define AGT_CONN_H_INCLUDED

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p2c_msg.h"

//  Largest ServerMessage the agent accepts (a task's payload is a frame)
#define AGT_MAX_SERVER_MSG (64 * 1024 * 1024)

typedef struct _agt_conn_t agt_conn_t;

//  How a connection ended, for the owner's on_close
typedef struct {
    int code;                   //  the server's WebSocket close code, 0 when none came
    char reason [124];          //  the server's close reason (printable ASCII only)
    bool cert_error;            //  TLS: the server's certificate was not trusted
    char why [256];             //  what happened, for a log line
} agt_conn_end_t;

//  TLS settings of a wss:// connection (ignored for ws://)
typedef struct {
    const char *ca_file;        //  CA certificates (PEM) to trust instead of the system's, or NULL
    bool insecure;              //  accept a self-signed certificate, skip the host name check
} agt_conn_tls_t;

typedef struct {
    //  The WebSocket is open: send the registration
    void (*on_open) (agt_conn_t *conn, void *arg);
    //  One message arrived; the handler takes ownership of *msg_p. raw is
    //  the message as it came (borrowed for the call), for a handler that
    //  passes it on without packing it again.
    void (*on_message) (agt_conn_t *conn, P2c2r__ServerMessage **msg_p, const uint8_t *raw,
                        size_t raw_len, void *arg);
    //  The connection closed or could not be made
    void (*on_close) (agt_conn_t *conn, const agt_conn_end_t *end, void *arg);
    //  agt_conn_wake was called from another thread (may be NULL)
    void (*on_wake) (agt_conn_t *conn, void *arg);
    //  Every cron period (may be NULL)
    void (*on_cron) (agt_conn_t *conn, void *arg);
} agt_conn_handlers_t;

//  The port when a URL names none: the gateway's, for ws:// and wss:// alike
//  (it serves both on one port, see docs/gateway.md)
#define AGT_DEFAULT_PORT 8765

//  Splits ws[s]://HOST[:PORT][/PATH] into its parts; *tls_p tells wss://.
//  Returns 0, or -1 with a reason in err.
int agt_conn_parse_url (const char *url, char *host, size_t host_size, int *port_p,
                        char *path, size_t path_size, bool *tls_p, char *err, size_t err_size);

//  Creates the client for url with a cron tick every cron_ms; tls may be
//  NULL (verify against the system's CA store). NULL (logged) when the URL
//  is bad or libwebsockets cannot start.
agt_conn_t *agt_conn_new (const char *url, const agt_conn_tls_t *tls,
                          const agt_conn_handlers_t *handlers, void *arg, int cron_ms);
void agt_conn_destroy (agt_conn_t **self_p);

//  Checks the TLS settings once at start, for `p2c2r-agent <who>`: the CA
//  file must be readable (said on stderr, -1); --insecure is warned about
//  once; either one with a ws:// address is noted as having no effect.
int agt_conn_check_tls (const char *url, const agt_conn_tls_t *tls, const char *who);

//  Starts one connection attempt; the outcome comes as on_open or on_close.
void agt_conn_connect (agt_conn_t *self);

//  Asks for the connection to be closed; on_close follows.
void agt_conn_close (agt_conn_t *self);

//  True while the WebSocket is open.
bool agt_conn_open (agt_conn_t *self);

//  Packs and queues a message (network thread only). -1 when not open.
int agt_conn_send (agt_conn_t *self, const P2c2r__ClientMessage *msg);

//  Calls back on_sent (network thread) after the message queued by the last
//  agt_conn_send was handed to the socket: the peer logs a task as done only
//  then. tag is passed through; free_tag releases it either way.
int agt_conn_send_tagged (agt_conn_t *self, const P2c2r__ClientMessage *msg, void *tag,
                          void (*on_sent) (void *tag, void *arg), void (*free_tag) (void *tag));

//  Spare bytes a buffer given to agt_conn_send_packed needs in front of its
//  message (libwebsockets' LWS_PRE, checked at build time)
#define AGT_CONN_PRE 16

//  Like agt_conn_send_tagged for a message that is packed already: takes
//  buf (malloc'd; freed either way) whose message of len bytes starts at
//  buf + offset, offset at least AGT_CONN_PRE. Nothing is copied.
int agt_conn_send_packed (agt_conn_t *self, uint8_t *buf, size_t offset, size_t len, void *tag,
                          void (*on_sent) (void *tag, void *arg), void (*free_tag) (void *tag));

//  A descriptor watched by the loop next to the connection (a worker
//  process's socket): on_ready runs on the network thread when it is
//  readable or closed, and once when writable after agt_conn_watch_write.
//  The loop watches a duplicate; the caller keeps fd and does its own I/O.
//  *ref holds the watch until it ends: agt_conn_unwatch, or the loop gave
//  up on the descriptor (then on_ready runs once more, with *ref already
//  NULL, so that the owner looks at its fd and finds out why).
typedef struct _agt_conn_watch_t agt_conn_watch_t;
int agt_conn_watch (agt_conn_t *self, int fd, void (*on_ready) (void *arg), void *arg,
                    agt_conn_watch_t **ref);
void agt_conn_watch_write (agt_conn_watch_t *watch);
//  Ends the watch (NULLs *ref); no on_ready follows.
void agt_conn_unwatch (agt_conn_watch_t **ref);

//  Wakes the network thread (any thread): on_wake runs there.
void agt_conn_wake (agt_conn_t *self);

//  Runs the loop until agt_conn_stop is called or *stop_flag is set (by a
//  signal handler). Returns 0, or -1 when libwebsockets failed.
int agt_conn_run (agt_conn_t *self, volatile sig_atomic_t *stop_flag);
void agt_conn_stop (agt_conn_t *self);

//  Reconnect delays: 0.5 s doubling to 30 s, each +-25% jitter.
typedef struct {
    int64_t base_ms;            //  the next delay before jitter
} agt_backoff_t;

void agt_backoff_reset (agt_backoff_t *self);
//  The next delay in ms; jitter01 is a uniform number in [0, 1).
int64_t agt_backoff_next (agt_backoff_t *self, double jitter01);

//  When to reconnect after a connection ended
typedef enum {
    AGT_RETRY_BACKOFF,          //  the usual backoff
    AGT_RETRY_SOON,             //  1001 going away: another gateway is up, come back at once
    AGT_RETRY_LATER,            //  1013 try again later: the server is busy, at least 5 s
    AGT_RETRY_AUTH              //  the API key was refused or revoked: 5 minutes
} agt_retry_t;

//  The policy for how a connection ended. auth_refused: the server
//  answered the registration with auth_failed on this connection.
agt_retry_t agt_retry_kind (const agt_conn_end_t *end, bool auth_refused);

//  The delay in ms before the next attempt under that policy (advances
//  the backoff); jitter01 is a uniform number in [0, 1).
int64_t agt_retry_delay (agt_retry_t kind, agt_backoff_t *backoff, double jitter01);

//  "backoff", "soon", "later", "auth": for log lines
const char *agt_retry_name (agt_retry_t kind);

void agt_conn_test (bool verbose);

#endif
