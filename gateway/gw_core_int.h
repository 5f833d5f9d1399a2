/*  The gateway core's own parts, shared by its files and nobody else:
    gw_core.c (the object, client messages in and answers out, limits,
    connections, the cron), gw_register.c (registration) and gw_tasks.c
    (the submit path, delivery, the deadline guard, peer events). Also the
    fake glue (gw_fake.c) with which their self-tests drive the core in
    memory. */
#ifndef GW_CORE_INT_H_INCLUDED
#define GW_CORE_INT_H_INCLUDED

#include "gw_core.h"
#include "gw_authcache.h"
#include "gw_limits.h"
#include "gw_pending.h"
#include "gw_sessions.h"
#include "gw_taskid.h"

struct _gw_core_t {
    gw_core_config_t cfg;       //  settings; its strings point at the copies below
    char *node_id;              //  this gateway's node id (owned)
    char *region;               //  this gateway's region (owned)
    gw_core_io_t io;            //  the glue's callbacks
    int64_t now_ms;             //  the clock of the call being handled
    gw_sessions_t *sessions;    //  live client connections
    gw_pending_t *pending;      //  accepted submits not answered yet
    gw_taskid_t *taskids;       //  task id generator
    gw_metrics_t *metrics;
    gw_iplimit_t *iplimit;      //  connections and connects per client address
    gw_authcache_t *authcache;  //  API keys the ledger accepted
    uint64_t recheck_seq;       //  correlation of key re-checks
    bool quitting;              //  shutdown: no new work, finishing in-flight tasks
    bool goodbye_sent;          //  every session was told 1001 going away
    int64_t quit_deadline_ms;   //  in-flight tasks are given up then
    int64_t goodbye_ms;         //  when the going-away closes were sent
    int64_t last_slow_ms;       //  last run of the slow chores
    gw_core_counters_t counters;
    //  What every session's reassembler holds, bounded by max_input_bytes:
    //  per-connection limits alone let many connections together take
    //  max_frame each (60 unfinished 8 MiB messages took 490 MiB)
    p2c_frame_budget_t input;
    size_t subscriptions;       //  sessions subscribed (gw_subscribe.c)
};

//  Answers to clients (gw_core.c)

//  Queues one message for a client, encoded per its dialect
void gw_core_send (gw_core_t *self, gw_session_t *s, const P2c2r__ServerMessage *m);
void gw_core_send_error (gw_core_t *self, gw_session_t *s, const char *code, const char *text,
                         const char *client_ref);
//  Answers a bad frame; max_bad_frames in a row close the connection
void gw_core_bad (gw_core_t *self, gw_session_t *s, const char *code, const char *client_ref,
                  const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));
//  The one terminal answer to a submit that failed
void gw_core_task_error (gw_core_t *self, gw_session_t *s, const char *task_id,
                         const char *client_ref, const char *code, const char *text);
//  Closes a connection with a status and reason once its queue is written
void gw_core_close (gw_core_t *self, gw_session_t *s, int code, const char *reason);
//  True when the session is registered in the role; else answers bad
bool gw_core_require (gw_core_t *self, gw_session_t *s, gw_role_t role, const char *what,
                      const char *client_ref);

//  Registration (gw_register.c)

//  register_peer or register_gamer; keeps the message (from *msg_p) when
//  the registration goes on
void gw_register_handle (gw_core_t *self, gw_session_t *s, gw_role_t role,
                         P2c2r__ClientMessage **msg_p);
void gw_register_on_reply (gw_core_t *self, P2c2r__AuthReply *r);
//  A registration that will not be handled (rate limited): its API key is
//  wiped from the decoded message, and its frame after it
void gw_register_wipe (gw_session_t *s, P2c2r__ClientMessage *msg);
//  Registrations the ledger has not answered in time
void gw_register_timeouts (gw_core_t *self, int64_t now);
//  Sends the re-checks of keys in use that are due
void gw_register_rechecks (gw_core_t *self, int64_t now);
void gw_register_test (bool verbose);

//  Tasks and peers (gw_tasks.c)

void gw_tasks_submit (gw_core_t *self, gw_session_t *s, P2c2r__Submit *sub);
void gw_tasks_result (gw_core_t *self, gw_session_t *s, P2c2r__PeerResult *res);
//  A reply from the scheduler node sender; acked to it
void gw_tasks_deliver (gw_core_t *self, const char *sender, P2c2r__Deliver *d);
void gw_tasks_assign (gw_core_t *self, P2c2r__TaskAssign *a);
void gw_tasks_node_event (gw_core_t *self, P2c2r__NodeEvent *ev);
//  Answers timeout for every task past its deadline and grace
void gw_tasks_guard (gw_core_t *self, int64_t now);
//  The ledger acknowledged a failure the guard reported
void gw_tasks_failed_ack (gw_core_t *self, P2c2r__SettleAck *ack);
//  How often an unacknowledged failure is sent to the ledger again
#define GW_FAILED_RESEND_MS 1000
void gw_tasks_peer_up (gw_core_t *self, gw_session_t *s);
void gw_tasks_peer_down (gw_core_t *self, uint64_t conn);
void gw_tasks_test (bool verbose);

//  A client reads its own account's figures (gw_earnings.c)

void gw_earnings_handle (gw_core_t *self, gw_session_t *s);
void gw_earnings_on_reply (gw_core_t *self, P2c2r__EarningsReply *r);
//  Requests the ledger has not answered in time
void gw_earnings_timeouts (gw_core_t *self, int64_t now);
//  Asks the ledger for the session's figures (no rate check): false when
//  it cannot be asked now
bool gw_earnings_ask (gw_core_t *self, gw_session_t *s);

//  Subscriptions: figures pushed every second (gw_subscribe.c)
void gw_subscribe_handle (gw_core_t *self, gw_session_t *s, P2c2r__Subscribe *sub);
//  Pushes what is due (called by the cron)
void gw_subscribe_cron (gw_core_t *self, int64_t now);
//  The scheduler's answer about a subscribed peer account's reputation
void gw_subscribe_on_reputation (gw_core_t *self, P2c2r__ReputationReply *r);
//  The session is closing: its subscription ends
void gw_subscribe_forget (gw_core_t *self, gw_session_t *s);
void gw_subscribe_test (bool verbose);
void gw_earnings_test (bool verbose);

//  The self-tests' fake glue (gw_fake.c): it keeps what the core sends to
//  the broker, and says how many schedulers there are

#define GW_FAKE_MAX 64

typedef struct {
    gw_core_t *core;
    size_t schedulers;          //  what the services callback answers for "scheduler"
    size_t ledgers;
    bool refuse;                //  the broker send fails
    size_t sent;                //  messages sent to the broker (kept: the last GW_FAKE_MAX)
    char dest [GW_FAKE_MAX][16];
    P2c2r__Internal *msgs [GW_FAKE_MAX];
    size_t wakes;               //  wake callbacks
    size_t cuts;                //  ... of them GW_WAKE_CUT
    const char *watch;          //  a text no message to the broker may hold (a key), or NULL
    size_t watch_hits;          //  messages to the broker whose bytes held it
} gw_fake_t;

//  A core with the default settings of the tests and the fake glue
gw_fake_t *gw_fake_new (const gw_core_config_t *config);
void gw_fake_destroy (gw_fake_t **self_p);
//  The settings of the tests: open registration, small limits
gw_core_config_t gw_fake_config (void);
//  The n-th message sent to the broker (0 first), NULL when not sent
P2c2r__Internal *gw_fake_msg (gw_fake_t *self, size_t n);
//  A client message, packed and handed to the core as a binary frame
void gw_fake_client (gw_fake_t *self, gw_session_t *s, const P2c2r__ClientMessage *m,
                     int64_t now);
//  Hands an internal message to the core as the broker would
void gw_fake_internal (gw_fake_t *self, const P2c2r__Internal *m, int64_t now);
//  The oldest frame queued to a session, decoded (protobuf), NULL when none
P2c2r__ServerMessage *gw_fake_reply (gw_session_t *s);
//  A registered session (open registration: the ledger answers ok)
gw_session_t *gw_fake_register (gw_fake_t *self, gw_role_t role, const char *name,
                                int64_t account, int64_t now);

#endif
