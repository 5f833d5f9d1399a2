/*  The agent's one WebSocket client connection to a gateway (libwebsockets,
    one context, driven by one thread). Binary frames carry one protobuf
    ServerMessage in and one ClientMessage out. The owner is told about
    opens, messages, closes, wake-ups from other threads and a periodic
    cron tick through handlers that all run on the network thread.
    Also the reconnect backoff, shared by every reconnecting client. */
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

typedef struct {
    //  The WebSocket is open: send the registration
    void (*on_open) (agt_conn_t *conn, void *arg);
    //  One message arrived; the handler takes ownership of *msg_p
    void (*on_message) (agt_conn_t *conn, P2c2r__ServerMessage **msg_p, void *arg);
    //  The connection closed or could not be made (why: short text)
    void (*on_close) (agt_conn_t *conn, const char *why, void *arg);
    //  agt_conn_wake was called from another thread (may be NULL)
    void (*on_wake) (agt_conn_t *conn, void *arg);
    //  Every cron period (may be NULL)
    void (*on_cron) (agt_conn_t *conn, void *arg);
} agt_conn_handlers_t;

//  Splits ws://HOST[:PORT][/PATH] into its parts. Returns 0, or -1 with a
//  reason in err (wss:// is refused until TLS lands).
int agt_conn_parse_url (const char *url, char *host, size_t host_size, int *port_p,
                        char *path, size_t path_size, char *err, size_t err_size);

//  Creates the client for url with a cron tick every cron_ms. NULL (logged)
//  when the URL is bad or libwebsockets cannot start.
agt_conn_t *agt_conn_new (const char *url, const agt_conn_handlers_t *handlers, void *arg,
                          int cron_ms);
void agt_conn_destroy (agt_conn_t **self_p);

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

void agt_conn_test (bool verbose);

#endif
