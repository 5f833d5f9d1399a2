/*  The gateway's rules, without sockets: registration (open or by API key,
    with the key cache and its re-checks), per-client limits, the submit
    path (checked, stamped with the session address and the account,
    forwarded to the scheduler), the deadline guard, delivery of replies
    to the right session, tasks passed to peers, and the peer events the
    scheduler needs (PeerUp, PeerDown, announcing every peer again when a
    scheduler comes up). As sch_core, it takes the clock as an argument
    and does its I/O through callbacks, so every rule is unit-tested in
    memory; gw_server is the libwebsockets and ZeroMQ glue around it.

    Answers to clients are encoded per the connection's dialect and queued
    on its session (gw_session); the wake callback then asks the glue to
    write them. */
#ifndef GW_CORE_H_INCLUDED
#define GW_CORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_metrics.h"
#include "gw_session.h"
#include "p2c_msg.h"

#define GW_MAX_ID           64      //  longest peer_id / gamer_id
#define GW_MAX_API_KEY      512     //  longest api_key accepted
#define GW_MAX_CLIENT_REF   256     //  longest client_ref kept in a pending entry

//  WebSocket close statuses the core asks for (RFC 6455)
#define GW_CLOSE_GOING_AWAY 1001
#define GW_CLOSE_POLICY     1008
#define GW_CLOSE_TRY_LATER  1013

typedef struct {
    const char *node_id;        //  this gateway's node id at the broker (copied)
    const char *region;         //  stamped on its gamers' tasks, "" none (copied)
    bool auth_open;             //  open registration (accounts made on use)
    size_t max_frame;           //  largest client message, bytes
    size_t max_input_bytes;     //  client input all sessions hold together (0: no bound)
    uint32_t default_deadline_ms;
    uint32_t max_deadline_ms;
    int64_t guard_grace_ms;     //  the deadline guard fires this long after the deadline
    int64_t auth_timeout_ms;    //  registration gives up without an AuthReply
    int64_t auth_cache_ms;      //  an accepted API key is trusted this long without asking
    int64_t auth_recheck_ms;    //  keys of live sessions are asked again this often
    int64_t register_timeout_ms;//  a connection must register within this
    int64_t idle_ms;            //  a close after this much silence counts as idle_timeout
    size_t send_queue;          //  frames queued per connection at most
    size_t send_queue_bytes;    //  bytes queued per connection at most
    unsigned max_bad_frames;    //  bad frames in a row before a close
    double rate_msgs;           //  messages per second per connection
    double rate_burst;          //  ... allowed in a burst
    size_t max_conns_per_ip;    //  live connections per client address
    double connect_rate;        //  connects per second per client address
    double connect_burst;       //  ... allowed in a burst
    size_t max_subscriptions;   //  sessions subscribed at once (gw_subscribe.c)
    size_t pre;                 //  spare bytes before every queued frame (LWS_PRE)
} gw_core_config_t;

//  What the glue asks of a session
typedef enum {
    GW_WAKE_WRITE,              //  frames are queued, or a close: ask for writeable
    GW_WAKE_CUT                 //  ... and the client does not read: cut it soon
} gw_wake_t;

typedef struct {
    //  Sends msg to a service ("scheduler", "ledger") through the broker:
    //  0, or -1 when it could not be queued
    int (*send) (void *arg, const char *dest, const P2c2r__Internal *msg);
    //  The session has something to write (see gw_wake_t)
    void (*wake) (void *arg, gw_session_t *session, gw_wake_t what);
    //  Live nodes of a service as the broker reports them
    size_t (*services) (void *arg, const char *service);
    void *arg;
} gw_core_io_t;

//  Counters (logs and /metrics)
typedef struct {
    uint64_t deliver_dropped;   //  Deliver for a task no longer pending
    uint64_t internal_dropped;  //  internal messages we do not handle
    uint64_t auth_stale;        //  AuthReply for no registration in progress
    uint64_t bad_frames;        //  client frames answered as bad
    uint64_t timeouts;          //  tasks answered by the deadline guard
} gw_core_counters_t;

typedef struct _gw_core_t gw_core_t;

//  NULL when no randomness is available for task ids (logged)
gw_core_t *gw_core_new (const gw_core_config_t *config, const gw_core_io_t *io);
void gw_core_destroy (gw_core_t **self_p);

//  A client connected from ip; wsi is the glue's handle, kept in the
//  session. Returns the session (borrowed), NULL when out of memory. A
//  connection over the per-address limits, or during a shutdown, is
//  returned already closing (with a reason the client can read).
gw_session_t *gw_core_open (gw_core_t *self, struct lws *wsi, const char *ip, int64_t now_ms);

//  A TCP connection from ip is about to start its handshake: false when
//  ip is already at its per-address limits (or the gateway is quitting),
//  so that the glue drops it before spending a handshake on it. Counts
//  nothing: gw_core_open admits and counts.
bool gw_core_may_connect (gw_core_t *self, const char *ip, int64_t now_ms);

//  A piece of a client's message, as the WebSocket layer hands it over
//  (see p2c_frame_add); a whole message is handled at once.
void gw_core_receive (gw_core_t *self, gw_session_t *s, const void *data, size_t len,
                      size_t remaining, bool final, bool binary, int64_t now_ms);

//  One whole client message (binary: protobuf, else JSON text).
void gw_core_message (gw_core_t *self, gw_session_t *s, const uint8_t *data, size_t size,
                      bool binary, int64_t now_ms);

//  The connection is gone: its peer is reported down, its tasks are
//  forgotten, and the session is destroyed.
void gw_core_closed (gw_core_t *self, gw_session_t *s, int64_t now_ms);

//  One message from the broker (sender: a node id, "" for the broker).
//  StatsReply is not the core's (gw_http answers /api/stats).
void gw_core_handle (gw_core_t *self, const char *sender, P2c2r__Internal *msg,
                     int64_t now_ms);

//  Every tick (100 ms): registration and deadline guards, and once a
//  second the slow chores. True when a shutdown is complete: every client
//  was told going away and is gone (or had its time to go).
bool gw_core_cron (gw_core_t *self, int64_t now_ms);

//  A shutdown starts: no new work; once nothing is in flight (or at
//  deadline_ms) every client is closed with 1001.
void gw_core_quit (gw_core_t *self, int64_t deadline_ms);
bool gw_core_quitting (gw_core_t *self);

//  Figures for the pages
gw_session_t *gw_core_session (gw_core_t *self, uint64_t conn);
size_t gw_core_sessions (gw_core_t *self);
void gw_core_role_counts (gw_core_t *self, size_t *none, size_t *peers, size_t *gamers);
size_t gw_core_pending (gw_core_t *self);

//  Bytes of client input the sessions hold now (reassembly buffers)
size_t gw_core_input_held (gw_core_t *self);
size_t gw_core_auth_keys (gw_core_t *self);
const char *gw_core_node_id (gw_core_t *self);
const char *gw_core_task_prefix (gw_core_t *self);
gw_metrics_t *gw_core_metrics (gw_core_t *self);
gw_core_counters_t *gw_core_counters (gw_core_t *self);

//  A peer or gamer id is 1..64 visible ASCII characters (no spaces, so
//  that it reads unambiguously in logs and key=value lines).
bool gw_valid_id (const char *id);

void gw_core_test (bool verbose);

#endif
