/*  HTTP on the gateway's two listeners. The public one: /healthz,
    /readyz, Chart.js under /vendor/chart.js/, and static files below the
    web root (gw_files) but the operator's page; /metrics and /api/stats
    are 404 there. The admin one (gw_admin: the operator's bearer token):
    the same, / is the operator's page, and /metrics and /api/stats answer
    a request with the token (else 401). This class makes the answers;
    gw_server writes them with libwebsockets. /api/stats waits for the
    scheduler's and ledger's StatsReply (up to stats_timeout_ms), so its
    answer comes later, through the done callback. */
#ifndef GW_HTTP_H_INCLUDED
#define GW_HTTP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_admin.h"
#include "gw_core.h"
#include "p2c_msg.h"

//  One answer: status, Content-Type and body
typedef struct {
    unsigned status;
    const char *type;           //  Content-Type (a static string)
    uint8_t *buf;               //  `pre` spare bytes, then the body (owned)
    size_t len;                 //  body bytes
} gw_http_answer_t;

//  Frees the body and clears the answer
void gw_http_answer_free (gw_http_answer_t *answer);

typedef struct {
    const char *web_root;       //  static files' directory (NULL: none)
    const char *vendor_root;    //  Chart.js's directory, served as /vendor/chart.js/
    gw_admin_t *admin;          //  the operator's token (borrowed; outlives this)
    int64_t stats_timeout_ms;   //  /api/stats waits this long for the figures
    size_t pre;                 //  spare bytes before every body (LWS_PRE)
} gw_http_config_t;

typedef struct {
    //  Sends msg to a service through the broker: 0, or -1
    int (*send) (void *arg, const char *dest, const P2c2r__Internal *msg);
    //  Live nodes of a service, and whether the broker beats
    size_t (*services) (void *arg, const char *service);
    bool (*broker_alive) (void *arg);
    //  A late answer for the request of connection conn; the callee takes
    //  what *answer holds
    void (*done) (void *arg, void *conn, gw_http_answer_t *answer);
    void *arg;
} gw_http_io_t;

typedef struct _gw_http_t gw_http_t;

//  core: whose figures the pages show (borrowed; outlives this)
gw_http_t *gw_http_new (gw_core_t *core, const gw_http_config_t *config, const gw_http_io_t *io);
void gw_http_destroy (gw_http_t **self_p);

//  Which listener a request came to, and its Authorization header
typedef struct {
    bool admin;                 //  the admin listener
    const char *authorization;  //  the header's value, NULL: none
} gw_http_req_t;

//  Answers a request of connection conn (the glue's handle) for path; a
//  NULL path is a method other than GET (405). True: *answer is set now;
//  false: the answer comes later through done (/api/stats).
bool gw_http_get (gw_http_t *self, void *conn, const char *path, const gw_http_req_t *req,
                  int64_t now_ms, gw_http_answer_t *answer);

//  A StatsReply from the scheduler or the ledger
void gw_http_stats_reply (gw_http_t *self, P2c2r__StatsReply *r);

//  Answers the /api/stats requests whose wait is over with what came
void gw_http_cron (gw_http_t *self, int64_t now_ms);

//  The connection closed: an answer in the making for it is dropped
void gw_http_forget (gw_http_t *self, void *conn);

//  The web root served (resolved), NULL when none
const char *gw_http_web_root (gw_http_t *self);

void gw_http_test (bool verbose);

#endif
