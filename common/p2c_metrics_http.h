/*  A small HTTP listener for Prometheus' scrape of a process that has no
    web server of its own (the scheduler, the ledger): GET /metrics answers
    what a render callback writes, GET /healthz "ok"; anything else 404, a
    method other than GET 405. It never blocks: non-blocking sockets, a
    request is read until its blank line (at most P2C_METRICS_HTTP_MAX_REQUEST
    bytes, else 431), the answer is written as the socket takes it, and one
    connection is one request (Connection: close). At most max_conns
    connections at once (more are closed at accept) and each is closed after
    P2C_METRICS_HTTP_IDLE_MS without finishing.

    It runs on either kind of loop a process has: zloop (the scheduler:
    p2c_metrics_http_zloop registers its sockets, and keeps registering the
    connections it accepts) or a poll(2) loop (the ledger: the loop asks for
    the pollfds with p2c_metrics_http_pollfds and hands back what poll said
    with p2c_metrics_http_handle). Either way p2c_metrics_http_cron closes
    idle connections. */
#ifndef P2C_METRICS_HTTP_H_INCLUDED
#define P2C_METRICS_HTTP_H_INCLUDED

#include <czmq.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>

#define P2C_METRICS_HTTP_MAX_REQUEST 4096
#define P2C_METRICS_HTTP_IDLE_MS 5000
#define P2C_METRICS_HTTP_MAX_CONNS 64

typedef struct _p2c_metrics_http_t p2c_metrics_http_t;

//  Writes the metrics, in Prometheus' text format, to f
typedef void (p2c_metrics_render_fn) (void *arg, FILE *f);

//  Listens on address ("HOST:PORT", "[V6]:PORT"; port 0 takes a free one).
//  max_conns is capped at P2C_METRICS_HTTP_MAX_CONNS. NULL when the
//  address is bad or cannot be bound (logged).
p2c_metrics_http_t *p2c_metrics_http_new (const char *address, size_t max_conns,
                                          p2c_metrics_render_fn *render, void *arg);
void p2c_metrics_http_destroy (p2c_metrics_http_t **self_p);

//  The port bound (useful after port 0)
int p2c_metrics_http_port (p2c_metrics_http_t *self);

//  Runs on loop from now on. 0, or -1 when zloop refused the listener.
int p2c_metrics_http_zloop (p2c_metrics_http_t *self, zloop_t *loop);

//  poll(2) loops: fills up to max items (listener first) and returns how
//  many; hand them back after poll with p2c_metrics_http_handle
size_t p2c_metrics_http_pollfds (p2c_metrics_http_t *self, struct pollfd *items, size_t max);
void p2c_metrics_http_handle (p2c_metrics_http_t *self, const struct pollfd *items, size_t n);

//  Closes connections idle for too long; call now and then (a cron)
void p2c_metrics_http_cron (p2c_metrics_http_t *self, int64_t now_ms);

//  Connections open now, and requests answered since start
size_t p2c_metrics_http_conns (p2c_metrics_http_t *self);
uint64_t p2c_metrics_http_served (p2c_metrics_http_t *self);

void p2c_metrics_http_test (bool verbose);

#endif
