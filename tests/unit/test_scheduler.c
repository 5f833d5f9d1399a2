/*  Tests of the scheduler's rules: sch_core driven with a fake clock, every
    message it sends captured (packed and unpacked again, as the broker would
    carry it) and checked the way a gateway or the ledger would read it.
    The suite also runs each scheduler class's self-test; `--list` names
    every entry, `--test NAME` runs one (p2c_test_main). */
#include "p2c_log.h"
#include "p2c_msg.h"
#include "p2c_tasks.h"
#include "p2c_test.h"
#include "sch_internal.h"          //  the self-tests of the core's files
#include "sch_config.h"
#include "sch_tiles.h"
#include "sch_hook.h"

#include <czmq.h>
#include <png.h>
#include <string.h>

#define MS 1000                 //  the core's clock is in microseconds

//  --------------------------------------------------------------------------
//  Capture of what the core sends

#define MAX_SENT 1024

typedef struct {
    char *dest [MAX_SENT];
    P2c2r__Internal *msg [MAX_SENT];
    size_t count;
} sent_t;

//  The attempt number of the last assignment of each task, so that the
//  fake peers echo it as real ones do
#define MAX_TASKS 64
static char s_attempt_ids [MAX_TASKS][64];
static uint32_t s_attempts [MAX_TASKS];

static uint32_t *
s_attempt_slot (const char *task_id)
{
    for (int i = 0; i < MAX_TASKS; i++)
        if (!strcmp (s_attempt_ids [i], task_id))
            return &s_attempts [i];
    for (int i = 0; i < MAX_TASKS; i++)
        if (!s_attempt_ids [i][0]) {
            snprintf (s_attempt_ids [i], sizeof s_attempt_ids [i], "%s", task_id);
            return &s_attempts [i];
        }
    assert (false);
    return NULL;
}

static void
s_capture (void *arg, const char *dest, const P2c2r__Internal *msg)
{
    sent_t *sent = (sent_t *) arg;
    if (msg->msg_case == P2C2R__INTERNAL__MSG_TASK_ASSIGN)
        *s_attempt_slot (msg->task_assign->assign->task_id) = msg->task_assign->assign->attempt;
    assert (sent->count < MAX_SENT);
    size_t len = 0;
    uint8_t *buf = p2c_msg_pack_internal (msg, 0, &len);
    assert (buf);
    sent->msg [sent->count] = p2c_msg_unpack_internal (buf, len);
    sent->dest [sent->count] = strdup (dest);
    sent->count++;
    free (buf);
}

static void
s_clear (sent_t *sent)
{
    for (size_t i = 0; i < sent->count; i++) {
        p2c_msg_internal_free (&sent->msg [i]);
        free (sent->dest [i]);
    }
    sent->count = 0;
}

//  Messages of one kind sent since the last clear
static size_t
s_count (sent_t *sent, P2c2r__Internal__MsgCase kind)
{
    size_t n = 0;
    for (size_t i = 0; i < sent->count; i++)
        if (sent->msg [i] && sent->msg [i]->msg_case == kind)
            n++;
    return n;
}

//  The nth message of one kind (0 first), its destination in *dest_p; NULL
//  when there are fewer.
static P2c2r__Internal *
s_nth (sent_t *sent, P2c2r__Internal__MsgCase kind, size_t nth, const char **dest_p)
{
    for (size_t i = 0; i < sent->count; i++)
        if (sent->msg [i] && sent->msg [i]->msg_case == kind && nth-- == 0) {
            if (dest_p)
                *dest_p = sent->dest [i];
            return sent->msg [i];
        }
    return NULL;
}

//  The TaskAssign sent for a task id; NULL when none.
static P2c2r__TaskAssign *
s_assign_of (sent_t *sent, const char *task_id, const char **dest_p)
{
    P2c2r__Internal *m;
    for (size_t i = 0; (m = s_nth (sent, P2C2R__INTERNAL__MSG_TASK_ASSIGN, i, dest_p)); i++)
        if (!strcmp (m->task_assign->assign->task_id, task_id))
            return m->task_assign;
    return NULL;
}

//  The Deliver sent for a task id; NULL when none.
static P2c2r__Deliver *
s_deliver_of (sent_t *sent, const char *task_id, const char **dest_p)
{
    P2c2r__Internal *m;
    for (size_t i = 0; (m = s_nth (sent, P2C2R__INTERNAL__MSG_DELIVER, i, dest_p)); i++)
        if (!strcmp (m->deliver->reply->task_id, task_id))
            return m->deliver;
    return NULL;
}

//  True when a Deliver for the task carries that error code
static bool
s_failed_with (sent_t *sent, const char *task_id, const char *code)
{
    P2c2r__Deliver *d = s_deliver_of (sent, task_id, NULL);
    return d && !d->reply->ok && !strcmp (d->reply->error_code, code);
}

//  --------------------------------------------------------------------------
//  Inputs, as the gateways, the ledger and the broker send them

//  The region the next peer advertises and the next submit carries
static const char *s_region = "";

static void
s_peer_up (sch_core_t *core, const char *gw, uint64_t conn, uint32_t slots,
           const char *types_csv, int64_t account, int64_t now)
{
    char buf [256];
    snprintf (buf, sizeof buf, "%s", types_csv);
    char *types [16];
    size_t n = 0;
    for (char *t = strtok (buf, ","); t && n < 16; t = strtok (NULL, ","))
        types [n++] = t;
    P2c2r__Session session = P2C2R__SESSION__INIT;
    session.gateway = (char *) gw;
    session.conn = conn;
    P2c2r__Capabilities caps = P2C2R__CAPABILITIES__INIT;
    caps.slots = slots;
    caps.n_task_types = n;
    caps.task_types = types;
    caps.region = (char *) s_region;
    P2c2r__PeerUp up = P2C2R__PEER_UP__INIT;
    up.session = &session;
    up.peer_id = "laptop";
    up.account_id = account;
    up.capabilities = &caps;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_PEER_UP;
    msg.peer_up = &up;
    sch_core_handle (core, gw, &msg, now);
}

static void
s_peer_down (sch_core_t *core, const char *gw, uint64_t conn, int64_t now)
{
    P2c2r__Session session = P2C2R__SESSION__INIT;
    session.gateway = (char *) gw;
    session.conn = conn;
    P2c2r__PeerDown down = P2C2R__PEER_DOWN__INIT;
    down.session = &session;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_PEER_DOWN;
    msg.peer_down = &down;
    sch_core_handle (core, gw, &msg, now);
}

//  A gamer on gateway gw, connection 1, account 500
//  What the next submits and results carry (tests of the cache, funds and
//  validation change them)
static const char *s_params = "{\"n\":1}";
static int64_t s_gamer_account = 500;
static uint64_t s_gamer_conn = 1;
static const char *s_result_json = "{\"hash\":\"ab\"}";
//  NULL: the catalogue's current version of the task's type
static const char *s_kernel_version = NULL;

static void
s_submit_from (sch_core_t *core, const char *gw, const char *id, const char *type,
               uint32_t deadline_ms, int64_t now)
{
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = (char *) gw;
    gamer.conn = s_gamer_conn;
    P2c2r__Submit submit = P2C2R__SUBMIT__INIT;
    submit.task_type = (char *) type;
    submit.params_json = (char *) s_params;
    uint8_t payload [3] = { 1, 2, 3 };
    submit.payload.data = payload;
    submit.payload.len = sizeof payload;
    submit.client_ref = "ref-1";
    P2c2r__TaskSubmit ts = P2C2R__TASK_SUBMIT__INIT;
    ts.task_id = (char *) id;
    ts.gamer = &gamer;
    ts.gamer_account = s_gamer_account;
    ts.gamer_id = "player";
    ts.submit = &submit;
    ts.deadline_ms = deadline_ms;
    ts.region = (char *) s_region;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_SUBMIT;
    msg.task_submit = &ts;
    sch_core_handle (core, gw, &msg, now);
}

static void
s_submit (sch_core_t *core, const char *id, const char *type, uint32_t deadline_ms, int64_t now)
{
    s_submit_from (core, "gw-g", id, type, deadline_ms, now);
}

static void
s_result (sch_core_t *core, const char *gw, uint64_t conn, const char *id, bool ok,
          uint64_t compute_us, const char *error_code, int64_t now)
{
    P2c2r__Session session = P2C2R__SESSION__INIT;
    session.gateway = (char *) gw;
    session.conn = conn;
    P2c2r__PeerResult res = P2C2R__PEER_RESULT__INIT;
    res.task_id = (char *) id;
    res.ok = ok;
    res.compute_us = compute_us;
    res.attempt = *s_attempt_slot (id);
    uint8_t blob [2] = { 9, 8 };
    char current [SCH_MAX_SHORT] = "";
    sch_task_t *task = (sch_task_t *) zhashx_lookup (core->tasks, id);
    if (task)
        p2c_task_version_current (sch_type (task->type), current, sizeof current);
    res.kernel_version = s_kernel_version ? (char *) s_kernel_version : current;
    if (ok) {
        res.result_json = (char *) s_result_json;
        res.blob.data = blob;
        res.blob.len = 2;
    }
    else {
        res.error_code = (char *) error_code;
        res.error = "bad n";
    }
    P2c2r__TaskResult tr = P2C2R__TASK_RESULT__INIT;
    tr.peer = &session;
    tr.result = &res;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_RESULT;
    msg.task_result = &tr;
    sch_core_handle (core, gw, &msg, now);
}

static void
s_ack (sch_core_t *core, const char *id, bool ok, int64_t charge, int64_t now)
{
    P2c2r__SettleAck ack = P2C2R__SETTLE_ACK__INIT;
    ack.task_id = (char *) id;
    ack.ok = ok;
    ack.gamer_charge_pico = charge;
    ack.peer_earning_pico = charge / 2;
    ack.error = ok ? "" : "database down";
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_ACK;
    msg.settle_ack = &ack;
    sch_core_handle (core, "ledger-1", &msg, now);
}

//  The ledger's ack of a reversal
static void
s_ack_reverse (sch_core_t *core, const char *id, bool ok, const char *error, int64_t now)
{
    P2c2r__SettleAck ack = P2C2R__SETTLE_ACK__INIT;
    ack.task_id = (char *) id;
    ack.ok = ok;
    ack.reversed = true;
    ack.peer_earning_pico = ok ? 7 : 0;
    ack.error = (char *) (ok ? "" : error);
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_ACK;
    msg.settle_ack = &ack;
    sch_core_handle (core, "ledger-1", &msg, now);
}

//  The SettleRequest sent for a task id; NULL when none.
static P2c2r__SettleRequest *
s_settle_of (sent_t *sent, const char *id)
{
    for (size_t i = 0; i < sent->count; i++)
        if (sent->msg [i] && sent->msg [i]->msg_case == P2C2R__INTERNAL__MSG_SETTLE_REQUEST
            && !strcmp (sent->msg [i]->settle_request->task_id, id))
            return sent->msg [i]->settle_request;
    return NULL;
}

static void
s_node_down (sch_core_t *core, const char *service, const char *node_id, int64_t now)
{
    P2c2r__NodeEvent ev = P2C2R__NODE_EVENT__INIT;
    ev.service = (char *) service;
    ev.node_id = (char *) node_id;
    ev.up = false;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_NODE_EVENT;
    msg.node_event = &ev;
    sch_core_handle (core, "", &msg, now);
}

static sch_core_t *
s_core (sent_t *sent, int64_t attempt_timeout_ms, uint32_t max_attempts, size_t queue_max)
{
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.ref_max_entries = 0;     //  every submit here says client_ref "ref-1"
    config.attempt_timeout_ms = attempt_timeout_ms;
    config.max_attempts = max_attempts;
    config.queue_max = queue_max;
    //  the rules of issue 6's first part do not depend on these: the tests
    //  of validation and funds switch them on
    config.validation = SCH_VAL_NONE;
    config.funds_check = false;
    config.cache_max_entries = 0;
    //  these rules bill the measured time; the cost model has its tests
    //  (sch_billing, sch_reputation)
    config.bill_max_permille = 0;
    memset (sent, 0, sizeof *sent);
    return sch_core_new (&config, s_capture, sent);
}

//  --------------------------------------------------------------------------
//  The rules

//  A submit goes to the eligible peer with the best expected finish time:
//  with nothing known of speeds, the least loaded in proportion (busy /
//  slots); ties go to the one with more free slots, then to the one
//  assigned least recently. The TaskAssign goes to the peer's
//  gateway and carries what the gamer sent, under the canonical type name.
static void
test_least_loaded (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 100);
    //  gw-b first, so that taking the first of equals would pick it
    s_peer_up (core, "gw-b", 2, 4, "encryption", 12, 0);
    s_peer_up (core, "gw-a", 1, 2, "encryption", 11, 0);

    s_submit (core, "t1", "hash", 30000, 0);
    const char *dest = NULL;
    P2c2r__TaskAssign *ta = s_assign_of (&sent, "t1", &dest);
    P2C_CHECK (ta && !strcmp (dest, "gw-b"));
    P2C_CHECK (ta && !strcmp (ta->peer->gateway, "gw-b") && ta->peer->conn == 2);
    P2C_CHECK (ta && !strcmp (ta->assign->task_type, "encryption"));
    P2C_CHECK (ta && !strcmp (ta->assign->params_json, "{\"n\":1}"));
    P2C_CHECK (ta && ta->assign->payload.len == 3 && ta->assign->payload.data [2] == 3);
    P2C_CHECK (ta && ta->assign->deadline_ms == 10000);

    //  gw-b is a quarter busy, gw-a idle
    s_submit (core, "t2", "encryption", 30000, 0);
    P2C_CHECK ((ta = s_assign_of (&sent, "t2", &dest)) && !strcmp (dest, "gw-a"));
    //  a quarter against a half
    s_submit (core, "t3", "encryption", 30000, 0);
    P2C_CHECK ((ta = s_assign_of (&sent, "t3", &dest)) && !strcmp (dest, "gw-b"));
    //  half busy each: 2 free on gw-b, 1 on gw-a
    s_submit (core, "t4", "encryption", 30000, 0);
    P2C_CHECK ((ta = s_assign_of (&sent, "t4", &dest)) && !strcmp (dest, "gw-b"));
    P2C_CHECK (sch_core_peer_busy (core, "gw-a", 1) == 1);
    P2C_CHECK (sch_core_peer_busy (core, "gw-b", 2) == 3);
    P2C_CHECK (sch_core_stats (core)->busy_slots == 4);
    P2C_CHECK (sch_core_stats (core)->slots == 6);
    P2C_CHECK (sch_core_stats (core)->peers == 2);
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  Only peers that advertised the type get it; unknown advertised types are
//  ignored; a type nobody runs is answered no_peers at once, to the gamer's
//  gateway, with the gamer's reference.
static void
test_type_filter_and_no_peers (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 100);
    s_peer_up (core, "gw-a", 1, 8, "compression,mining", 11, 0);
    s_peer_up (core, "gw-b", 2, 1, "hash", 12, 0);      //  an alias counts

    s_submit (core, "t1", "encryption", 30000, 0);
    const char *dest = NULL;
    P2C_CHECK (s_assign_of (&sent, "t1", &dest) && !strcmp (dest, "gw-b"));
    s_submit (core, "t2", "compression", 30000, 0);
    P2C_CHECK (s_assign_of (&sent, "t2", &dest) && !strcmp (dest, "gw-a"));

    s_submit (core, "t3", "upscale", 30000, 0);
    P2c2r__Deliver *d = s_deliver_of (&sent, "t3", &dest);
    P2C_CHECK (d && !d->reply->ok && !strcmp (d->reply->error_code, "no_peers"));
    P2C_CHECK (d && !strcmp (dest, "gw-g") && !strcmp (d->gamer->gateway, "gw-g")
               && d->gamer->conn == 1);
    P2C_CHECK (d && !strcmp (d->reply->client_ref, "ref-1"));
    P2C_CHECK (s_assign_of (&sent, "t3", NULL) == NULL);
    P2C_CHECK (sch_core_stats (core)->failed [SCH_ERR_NO_PEERS] == 1);

    //  a busy peer of the type is not "no peers": the task waits
    s_submit (core, "t4", "encryption", 30000, 0);
    P2C_CHECK (s_deliver_of (&sent, "t4", NULL) == NULL);
    P2C_CHECK (sch_core_stats (core)->queued == 1);

    //  and once the only peer of a type is gone, that type has no peers
    s_peer_down (core, "gw-a", 1, 0);
    s_submit (core, "t5", "compression", 30000, 0);
    P2C_CHECK (s_failed_with (&sent, "t5", "no_peers"));
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  With every slot busy tasks wait in order; a result frees the slot and the
//  oldest queued task the peer can run takes it.
static void
test_queue_release (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 100);
    s_peer_up (core, "gw-a", 1, 1, "encryption,compression", 11, 0);
    s_peer_up (core, "gw-b", 2, 1, "compression", 12, 0);
    s_submit (core, "t1", "encryption", 30000, 0);
    s_submit (core, "t2", "compression", 30000, 0);     //  to gw-b
    s_submit (core, "t3", "compression", 30000, 10 * MS);
    s_submit (core, "t4", "encryption", 30000, 20 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_TASK_ASSIGN) == 2);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_DELIVER) == 0);
    P2C_CHECK (sch_core_stats (core)->queued == 2);
    s_clear (&sent);

    //  gw-a runs both types: t3 is older than t4
    s_result (core, "gw-a", 1, "t1", true, 100, NULL, 50 * MS);
    const char *dest = NULL;
    P2c2r__TaskAssign *ta = s_assign_of (&sent, "t3", &dest);
    P2C_CHECK (ta && !strcmp (dest, "gw-a") && ta->peer->conn == 1);
    P2C_CHECK (ta && ta->assign->deadline_ms == 10000);
    P2C_CHECK (s_assign_of (&sent, "t4", NULL) == NULL);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 1);
    s_clear (&sent);

    //  gw-b runs only compression: t4 keeps waiting for gw-a
    s_result (core, "gw-b", 2, "t2", true, 100, NULL, 60 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_TASK_ASSIGN) == 0);
    P2C_CHECK (sch_core_peer_busy (core, "gw-b", 2) == 0);
    s_result (core, "gw-a", 1, "t3", true, 100, NULL, 70 * MS);
    P2C_CHECK (s_assign_of (&sent, "t4", &dest) && !strcmp (dest, "gw-a"));
    P2C_CHECK (sch_core_stats (core)->queued == 0);
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  The queue is bounded: beyond queue-max a submit gets unavailable.
static void
test_queue_full (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 2);
    s_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    s_submit (core, "t1", "encryption", 30000, 0);
    s_submit (core, "t2", "encryption", 30000, 0);
    s_submit (core, "t3", "encryption", 30000, 0);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_DELIVER) == 0);
    s_submit (core, "t4", "encryption", 30000, 0);
    P2C_CHECK (s_failed_with (&sent, "t4", "unavailable"));
    P2C_CHECK (sch_core_stats (core)->queued == 2);
    P2C_CHECK (sch_core_stats (core)->failed [SCH_ERR_UNAVAILABLE] == 1);
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  A lost peer's task goes to the other peer; a late result from the lost
//  one is stale and not paid.
static void
test_peer_loss (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 100);
    s_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    s_peer_up (core, "gw-b", 2, 1, "encryption", 12, 0);
    s_submit (core, "t1", "encryption", 30000, 0);
    const char *dest = NULL;
    P2C_CHECK (s_assign_of (&sent, "t1", &dest) && !strcmp (dest, "gw-a"));
    s_clear (&sent);

    s_peer_down (core, "gw-a", 1, 3000 * MS);
    P2c2r__TaskAssign *ta = s_assign_of (&sent, "t1", &dest);
    P2C_CHECK (ta && !strcmp (dest, "gw-b") && ta->peer->conn == 2);
    //  the new attempt gets at most what is left of the deadline
    P2C_CHECK (ta && ta->assign->deadline_ms == 10000);
    P2C_CHECK (sch_core_stats (core)->reassigned == 1);
    P2C_CHECK (sch_core_stats (core)->peers == 1);
    P2C_CHECK (sch_core_peer_busy (core, "gw-a", 1) == -1);
    s_clear (&sent);

    s_result (core, "gw-a", 1, "t1", true, 100, NULL, 3100 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 0);
    P2C_CHECK (sch_core_stats (core)->stale_results == 1);
    s_result (core, "gw-b", 2, "t1", true, 100, NULL, 3200 * MS);
    P2c2r__Internal *m = s_nth (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST, 0, NULL);
    P2C_CHECK (m && m->settle_request->peer_account == 12);
    s_clear (&sent);

    //  a lost peer with nowhere else to go: the task waits for a new peer
    s_submit (core, "t2", "encryption", 30000, 4000 * MS);
    s_peer_down (core, "gw-b", 2, 4100 * MS);
    P2C_CHECK (sch_core_stats (core)->queued == 1);
    s_clear (&sent);
    s_peer_up (core, "gw-c", 3, 1, "encryption", 13, 4200 * MS);
    P2C_CHECK (s_assign_of (&sent, "t2", &dest) && !strcmp (dest, "gw-c"));
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  An attempt that runs out frees its slot and the task goes to another peer
//  for no longer than the deadline leaves; a late result from the first
//  peer is stale, never settled.
static void
test_attempt_timeout (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 1000, 3, 100);
    //  gw-a has more free slots even after the timeout: another peer is
    //  still preferred for the retry
    s_peer_up (core, "gw-a", 1, 2, "encryption", 11, 0);
    s_peer_up (core, "gw-b", 2, 1, "encryption", 12, 0);
    s_submit (core, "t1", "encryption", 1500, 0);
    const char *dest = NULL;
    P2c2r__TaskAssign *ta = s_assign_of (&sent, "t1", &dest);
    P2C_CHECK (ta && !strcmp (dest, "gw-a") && ta->assign->deadline_ms == 1000);
    s_clear (&sent);

    sch_core_cron (core, 999 * MS);
    P2C_CHECK (sent.count == 0);
    sch_core_cron (core, 1000 * MS);
    ta = s_assign_of (&sent, "t1", &dest);
    P2C_CHECK (ta && !strcmp (dest, "gw-b"));
    P2C_CHECK (ta && ta->assign->deadline_ms == 500);
    P2C_CHECK (sch_core_peer_busy (core, "gw-a", 1) == 0);
    P2C_CHECK (sch_core_peer_busy (core, "gw-b", 2) == 1);
    P2C_CHECK (sch_core_stats (core)->reassigned == 1);
    s_clear (&sent);

    //  the first peer answers late: ignored, not paid; the current one counts
    s_result (core, "gw-a", 1, "t1", true, 100, NULL, 1100 * MS);
    P2C_CHECK (sch_core_stats (core)->stale_results == 1);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 0);
    P2C_CHECK (sch_core_peer_busy (core, "gw-b", 2) == 1);
    s_result (core, "gw-b", 2, "t1", true, 100, NULL, 1200 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 1);
    //  and a repeat of the good result is stale too
    s_result (core, "gw-b", 2, "t1", true, 100, NULL, 1250 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 1);
    P2C_CHECK (sch_core_stats (core)->stale_results == 2);
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  Same region first: a task from a gateway of region "us" goes to the us
//  peer although the eu peer has more free slots; when the us peer is full
//  it goes elsewhere rather than wait; a task without a region takes the best.
static void
test_region_first (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 100);
    s_region = "eu";
    s_peer_up (core, "gw-a", 1, 4, "encryption", 11, 0);
    s_region = "us";
    s_peer_up (core, "gw-b", 2, 1, "encryption", 12, 0);
    const char *dest = NULL;
    s_submit (core, "r1", "encryption", 5000, 0);
    P2C_CHECK (s_assign_of (&sent, "r1", &dest) && !strcmp (dest, "gw-b"));
    s_submit (core, "r2", "encryption", 5000, 0);
    P2C_CHECK (s_assign_of (&sent, "r2", &dest) && !strcmp (dest, "gw-a"));
    s_region = "";
    s_submit (core, "r3", "encryption", 5000, 0);
    P2C_CHECK (s_assign_of (&sent, "r3", &dest) && !strcmp (dest, "gw-a"));
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  A retry on the same peer (the only one): the late answer to the first
//  attempt carries the old attempt number and is stale; the second counts.
static void
test_same_peer_retry (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 1000, 3, 100);
    s_peer_up (core, "gw-a", 1, 2, "encryption", 11, 0);
    s_submit (core, "t9", "encryption", 5000, 0);
    P2c2r__TaskAssign *ta = s_assign_of (&sent, "t9", NULL);
    P2C_CHECK (ta && ta->assign->attempt == 1);
    s_clear (&sent);
    sch_core_cron (core, 1000 * MS);
    ta = s_assign_of (&sent, "t9", NULL);
    P2C_CHECK (ta && ta->assign->attempt == 2);
    s_clear (&sent);
    //  the peer's late answer to attempt 1
    *s_attempt_slot ("t9") = 1;
    s_result (core, "gw-a", 1, "t9", true, 100, NULL, 1100 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 0);
    P2C_CHECK (sch_core_stats (core)->stale_results == 1);
    *s_attempt_slot ("t9") = 2;
    s_result (core, "gw-a", 1, "t9", true, 100, NULL, 1200 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 1);
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  After max-attempts attempts the gamer gets timeout, even with time left.
static void
test_max_attempts (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 1000, 2, 100);
    s_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    s_peer_up (core, "gw-b", 2, 1, "encryption", 12, 0);
    s_submit (core, "t1", "encryption", 30000, 0);
    sch_core_cron (core, 1000 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_TASK_ASSIGN) == 2);
    P2C_CHECK (s_deliver_of (&sent, "t1", NULL) == NULL);
    sch_core_cron (core, 2000 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_TASK_ASSIGN) == 2);
    P2C_CHECK (s_failed_with (&sent, "t1", "timeout"));
    P2C_CHECK (sch_core_peer_busy (core, "gw-a", 1) == 0);
    P2C_CHECK (sch_core_peer_busy (core, "gw-b", 2) == 0);
    P2C_CHECK (sch_core_stats (core)->running == 0);
    s_clear (&sent);
    //  nothing is left to time out
    sch_core_cron (core, 60000 * MS);
    P2C_CHECK (sent.count == 0);
    sch_core_destroy (&core);
}

//  At the deadline a running or a queued task gets timeout, and exactly one
//  reply.
static void
test_deadline (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 100);
    s_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    s_submit (core, "t1", "encryption", 2500, 0);
    s_submit (core, "t2", "encryption", 3000, 100 * MS);
    P2c2r__TaskAssign *ta = s_assign_of (&sent, "t1", NULL);
    P2C_CHECK (ta && ta->assign->deadline_ms == 2500);
    s_clear (&sent);

    sch_core_cron (core, 2499 * MS);
    P2C_CHECK (sent.count == 0);
    sch_core_cron (core, 2500 * MS);
    P2C_CHECK (s_failed_with (&sent, "t1", "timeout"));
    //  the slot went to t2, with what is left of its deadline
    ta = s_assign_of (&sent, "t2", NULL);
    P2C_CHECK (ta && ta->assign->deadline_ms == 600);
    s_clear (&sent);

    s_submit (core, "t3", "encryption", 1000, 2600 * MS);
    P2C_CHECK (sch_core_stats (core)->queued == 1);
    sch_core_cron (core, 3100 * MS);
    P2C_CHECK (s_failed_with (&sent, "t2", "timeout"));
    //  t3 got the slot at 3.1 s, and its deadline is 3.6 s
    P2C_CHECK ((ta = s_assign_of (&sent, "t3", NULL)) && ta->assign->deadline_ms == 500);
    s_clear (&sent);

    //  a queued task reaches its deadline without ever running
    s_submit (core, "t4", "encryption", 200, 3200 * MS);
    sch_core_cron (core, 3400 * MS);
    P2C_CHECK (s_failed_with (&sent, "t4", "timeout"));
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_DELIVER) == 1);
    P2C_CHECK (sch_core_stats (core)->queued == 0);
    P2C_CHECK (sch_core_stats (core)->failed [SCH_ERR_TIMEOUT] == 3);
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  A good result is billed min(claimed, observed), capped per type; the
//  SettleRequest is resent until the ledger acks; the ack releases the
//  result with the gamer's cost; a settling task ignores its deadline.
static void
test_settlement (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 100);
    s_peer_up (core, "gw-a", 1, 1, "encryption", 77, 0);
    s_submit (core, "t1", "encryption", 3000, 0);
    s_clear (&sent);

    //  observed 2 s, claimed 0.5 s: billed the claim
    s_result (core, "gw-a", 1, "t1", true, 500000, NULL, 2000 * MS);
    const char *dest = NULL;
    P2c2r__Internal *m = s_nth (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST, 0, &dest);
    P2c2r__SettleRequest *req = m ? m->settle_request : NULL;
    P2C_CHECK (req && !strcmp (dest, "ledger"));
    P2C_CHECK (req && !strcmp (req->task_id, "t1") && req->gamer_account == 500
               && req->peer_account == 77 && !strcmp (req->task_type, "encryption"));
    P2C_CHECK (req && req->billed_us == 500000 && req->compute_us == 500000
               && req->observed_us == 2000000);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_DELIVER) == 0);
    P2C_CHECK (sch_core_peer_busy (core, "gw-a", 1) == 0);
    P2C_CHECK (sch_core_stats (core)->settling == 1);
    s_clear (&sent);

    //  no ack: resent every 2 s, past the deadline, and never a timeout
    sch_core_cron (core, 3999 * MS);
    P2C_CHECK (sent.count == 0);
    sch_core_cron (core, 4000 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 1);
    sch_core_cron (core, 6000 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 2);
    m = s_nth (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST, 1, &dest);
    P2C_CHECK (m && !strcmp (dest, "ledger") && !strcmp (m->settle_request->task_id, "t1")
               && m->settle_request->billed_us == 500000);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_DELIVER) == 0);
    P2C_CHECK (sch_core_stats (core)->settle_retries == 2);
    s_clear (&sent);

    s_ack (core, "t1", true, 1389, 6100 * MS);
    P2c2r__Deliver *d = s_deliver_of (&sent, "t1", &dest);
    P2C_CHECK (d && !strcmp (dest, "gw-g") && d->gamer->conn == 1);
    P2C_CHECK (d && d->reply->ok && !strcmp (d->reply->result_json, "{\"hash\":\"ab\"}"));
    P2C_CHECK (d && d->reply->blob.len == 2 && d->reply->blob.data [0] == 9);
    P2C_CHECK (d && d->reply->compute_us == 500000 && d->reply->billed_us == 500000);
    P2C_CHECK (d && d->reply->cost_pico == 1389);
    P2C_CHECK (d && !strcmp (d->reply->client_ref, "ref-1"));
    P2C_CHECK (sch_core_stats (core)->completed == 1);
    s_clear (&sent);

    //  done: no more resends; a replayed ack changes nothing
    sch_core_cron (core, 20000 * MS);
    s_ack (core, "t1", true, 1389, 20000 * MS);
    P2C_CHECK (sent.count == 0);
    P2C_CHECK (sch_core_stats (core)->stale_acks == 1);

    //  claimed more than observed: billed what we saw
    s_submit (core, "t2", "encryption", 30000, 20000 * MS);
    s_result (core, "gw-a", 1, "t2", true, 9000000, NULL, 20250 * MS);
    m = s_nth (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST, 0, NULL);
    P2C_CHECK (m && m->settle_request->billed_us == 250000
               && m->settle_request->compute_us == 9000000);
    s_clear (&sent);

    //  a ledger that refuses: the gamer hears unavailable with its reason
    s_ack (core, "t2", false, 0, 20300 * MS);
    d = s_deliver_of (&sent, "t2", NULL);
    P2C_CHECK (d && !d->reply->ok && !strcmp (d->reply->error_code, "unavailable")
               && !strcmp (d->reply->error, "database down"));
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  A long task is billed no more than its type's ceiling (60 s).
static void
test_billing_cap (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 200000, 3, 100);
    s_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    s_submit (core, "t1", "encryption", 300000, 0);
    s_result (core, "gw-a", 1, "t1", true, 90000000, NULL, 95000 * MS);
    P2c2r__Internal *m = s_nth (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST, 0, NULL);
    P2C_CHECK (m && m->settle_request->billed_us == 60000000);
    P2C_CHECK (m && m->settle_request->observed_us == 95000000);
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  A peer's error goes to the gamer as is (invalid_params, else
//  kernel_error), nothing is settled, the slot is free again.
static void
test_error_result (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 100);
    s_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    s_submit (core, "t1", "encryption", 30000, 0);
    s_submit (core, "t2", "encryption", 30000, 0);
    s_clear (&sent);
    s_result (core, "gw-a", 1, "t1", false, 100, "invalid_params", 10 * MS);
    P2c2r__Deliver *d = s_deliver_of (&sent, "t1", NULL);
    P2C_CHECK (d && !d->reply->ok && !strcmp (d->reply->error_code, "invalid_params")
               && !strcmp (d->reply->error, "bad n"));
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 0);
    P2C_CHECK (s_assign_of (&sent, "t2", NULL) != NULL);
    s_clear (&sent);
    s_result (core, "gw-a", 1, "t2", false, 100, "insufficient_funds", 20 * MS);
    P2C_CHECK (s_failed_with (&sent, "t2", "kernel_error"));
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 0);
    P2C_CHECK (sch_core_peer_busy (core, "gw-a", 1) == 0);
    P2C_CHECK (sch_core_stats (core)->failed [SCH_ERR_KERNEL_ERROR] == 1);
    P2C_CHECK (sch_core_stats (core)->failed [SCH_ERR_INVALID_PARAMS] == 1);
    s_clear (&sent);
    //  and nothing is left behind to time out later
    sch_core_cron (core, 60000 * MS);
    P2C_CHECK (sent.count == 0);
    sch_core_destroy (&core);
}

//  A lost gateway takes its peers (their tasks go elsewhere) and its gamers'
//  queued tasks (dropped, nobody to answer); its gamers' running tasks
//  finish, settle, and are delivered anyway.
static void
test_gateway_down (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 100);
    s_peer_up (core, "gw-a", 1, 2, "encryption", 11, 0);
    s_peer_up (core, "gw-b", 2, 1, "encryption", 12, 0);
    s_submit_from (core, "gw-g", "t1", "encryption", 30000, 0);  //  on gw-a's peer
    s_submit_from (core, "gw-a", "t2", "encryption", 30000, 0);  //  on gw-b's peer
    s_submit_from (core, "gw-a", "t5", "encryption", 30000, 0);  //  on gw-a's peer
    s_submit_from (core, "gw-a", "t3", "encryption", 30000, 0);  //  queued
    s_submit_from (core, "gw-g", "t4", "encryption", 30000, 0);  //  queued
    const char *dest = NULL;
    P2C_CHECK (s_assign_of (&sent, "t1", &dest) && !strcmp (dest, "gw-a"));
    P2C_CHECK (s_assign_of (&sent, "t2", &dest) && !strcmp (dest, "gw-b"));
    P2C_CHECK (s_assign_of (&sent, "t5", &dest) && !strcmp (dest, "gw-a"));
    s_clear (&sent);

    //  a scheduler or another gateway going away changes nothing
    s_node_down (core, "scheduler", "gw-a", 100 * MS);
    P2C_CHECK (sch_core_stats (core)->peers == 2);

    s_node_down (core, "gateway", "gw-a", 100 * MS);
    P2C_CHECK (sch_core_stats (core)->peers == 1);
    P2C_CHECK (sch_core_peer_busy (core, "gw-a", 1) == -1);
    //  t5 lost both its peer and its gamer, t3 its gamer: both dropped
    P2C_CHECK (sch_core_stats (core)->dropped == 2);
    //  t1 waits for gw-b's peer, ahead of t4; nobody is answered yet
    P2C_CHECK (sch_core_stats (core)->queued == 2);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_DELIVER) == 0);

    s_result (core, "gw-b", 2, "t2", true, 100, NULL, 200 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 1);
    P2C_CHECK (s_assign_of (&sent, "t1", &dest) && !strcmp (dest, "gw-b"));
    //  its gamer's gateway is gone: nobody can receive the result, so the
    //  ledger refunds its charge (a settled result reaches its gamer or is
    //  not charged)
    s_ack (core, "t2", true, 5, 300 * MS);
    P2C_CHECK (s_deliver_of (&sent, "t2", &dest) == NULL);
    P2c2r__Internal *tf = s_nth (&sent, P2C2R__INTERNAL__MSG_TASK_FAILED, 0, &dest);
    P2C_CHECK (tf && !strcmp (dest, "ledger") && !strcmp (tf->task_failed->task_id, "t2")
               && !strcmp (tf->task_failed->code, "gateway_lost"));
    s_clear (&sent);

    //  the dropped task never comes back, not even as a timeout
    s_result (core, "gw-b", 2, "t1", true, 100, NULL, 400 * MS);
    P2C_CHECK (s_assign_of (&sent, "t4", NULL) != NULL);
    P2C_CHECK (s_assign_of (&sent, "t3", NULL) == NULL);
    P2C_CHECK (s_assign_of (&sent, "t5", NULL) == NULL);
    s_clear (&sent);
    sch_core_cron (core, 60000 * MS);
    P2C_CHECK (s_deliver_of (&sent, "t3", NULL) == NULL);
    P2C_CHECK (s_deliver_of (&sent, "t5", NULL) == NULL);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_TASK_ASSIGN) == 0);
    P2C_CHECK (s_failed_with (&sent, "t4", "timeout"));
    s_clear (&sent);

    //  a task whose peer and gamer were on the lost gateway is not run
    //  again elsewhere, even where a slot is free
    s_peer_up (core, "gw-x", 1, 1, "encryption", 14, 61000 * MS);
    s_submit_from (core, "gw-x", "t6", "encryption", 30000, 61000 * MS);
    P2C_CHECK (s_assign_of (&sent, "t6", &dest) && !strcmp (dest, "gw-x"));
    s_peer_up (core, "gw-y", 1, 1, "encryption", 15, 61000 * MS);
    s_clear (&sent);
    s_node_down (core, "gateway", "gw-x", 62000 * MS);
    P2C_CHECK (s_assign_of (&sent, "t6", NULL) == NULL);
    P2C_CHECK (sch_core_peer_busy (core, "gw-y", 1) == 0);
    P2C_CHECK (sch_core_stats (core)->dropped == 3);
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  PeerUp again (as after a scheduler or broker restart) refreshes the peer
//  and keeps its running tasks; its results are still accepted.
static void
test_peer_refresh (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 100);
    s_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    s_submit (core, "t1", "encryption", 30000, 0);
    s_submit (core, "t2", "encryption", 30000, 0);
    s_clear (&sent);
    s_peer_up (core, "gw-a", 1, 2, "encryption", 11, 10 * MS);
    P2C_CHECK (sch_core_stats (core)->peers == 1);
    P2C_CHECK (sch_core_stats (core)->slots == 2);
    //  the new slot takes the queued task; the running one stays
    P2C_CHECK (s_assign_of (&sent, "t2", NULL) != NULL);
    P2C_CHECK (s_assign_of (&sent, "t1", NULL) == NULL);
    P2C_CHECK (sch_core_peer_busy (core, "gw-a", 1) == 2);
    s_result (core, "gw-a", 1, "t1", true, 100, NULL, 20 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 1);
    P2C_CHECK (sch_core_stats (core)->stale_results == 0);
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  Malformed input is counted and dropped, never answered wrongly.
static void
test_bad_input (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 100);
    s_peer_up (core, "", 1, 1, "encryption", 11, 0);
    P2C_CHECK (sch_core_stats (core)->peers == 0);
    s_submit_from (core, "", "t1", "encryption", 30000, 0);
    s_submit (core, "", "encryption", 30000, 0);
    P2C_CHECK (sent.count == 0);
    P2C_CHECK (sch_core_stats (core)->bad_messages == 3);
    s_submit (core, "t2", "mining", 30000, 0);
    P2C_CHECK (s_failed_with (&sent, "t2", "unknown_task_type"));
    s_result (core, "gw-a", 1, "nope", true, 1, NULL, 0);
    P2C_CHECK (sch_core_stats (core)->stale_results == 1);
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    P2c2r__TaskResult tr = P2C2R__TASK_RESULT__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_RESULT;
    msg.task_result = &tr;                  //  no session, no result
    sch_core_handle (core, "gw-a", &msg, 0);
    P2C_CHECK (sch_core_stats (core)->bad_messages == 4);
    s_clear (&sent);
    sch_core_destroy (&core);
}


//  --------------------------------------------------------------------------
//  Issue 6: matching, fairness, cache, validation, billing, funds, stats

//  A peer with resources and bench figures
static void
s_peer_up_ex (sch_core_t *core, const char *gw, uint64_t conn, uint32_t slots,
              const char *type, int64_t account, uint32_t ram_gb, bool gpu,
              uint64_t reference_us, const char *version, int64_t now)
{
    char *types [1] = { (char *) type };
    P2c2r__Session session = P2C2R__SESSION__INIT;
    session.gateway = (char *) gw;
    session.conn = conn;
    P2c2r__KernelInfo ki = P2C2R__KERNEL_INFO__INIT;
    ki.task_type = (char *) type;
    ki.version = (char *) version;
    ki.reference_us = reference_us;
    P2c2r__KernelInfo *kis [1] = { &ki };
    P2c2r__Capabilities caps = P2C2R__CAPABILITIES__INIT;
    caps.slots = slots;
    caps.n_task_types = 1;
    caps.task_types = types;
    caps.ram_gb = ram_gb;
    caps.gpu = gpu;
    caps.n_kernels = 1;
    caps.kernels = kis;
    P2c2r__PeerUp up = P2C2R__PEER_UP__INIT;
    up.session = &session;
    up.peer_id = "box";
    up.account_id = account;
    up.capabilities = &caps;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_PEER_UP;
    msg.peer_up = &up;
    sch_core_handle (core, gw, &msg, now);
}

static void
s_balance (sch_core_t *core, int64_t account, int64_t balance, bool disabled, int64_t now)
{
    P2c2r__BalanceUpdate bu = P2C2R__BALANCE_UPDATE__INIT;
    bu.account_id = account;
    bu.balance_pico = balance;
    bu.disabled = disabled;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_BALANCE_UPDATE;
    msg.balance_update = &bu;
    sch_core_handle (core, "ledger-1", &msg, now);
}

//  Expected finish time: a peer faster on the bench gets the task; then
//  its own history counts; a peer whose round trips are slow loses.
static void
test_expected_finish (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 100);
    s_peer_up_ex (core, "gw-a", 1, 4, "encryption", 11, 8, false, 4000, "2.0.0", 0);
    s_peer_up_ex (core, "gw-b", 2, 4, "encryption", 12, 8, false, 1000, "2.0.0", 0);
    s_submit (core, "t1", "encryption", 30000, 0);
    const char *dest = NULL;
    P2C_CHECK (s_assign_of (&sent, "t1", &dest) && !strcmp (dest, "gw-b"));
    //  gw-b turns out slow in practice (claims 50 ms, round trip 200 ms)
    s_result (core, "gw-b", 2, "t1", true, 50000, NULL, 250 * MS);
    s_submit (core, "t2", "encryption", 30000, 300 * MS);
    P2C_CHECK (s_assign_of (&sent, "t2", &dest) && !strcmp (dest, "gw-a"));
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  Resources: a type that needs a GPU or RAM goes only to peers that have
//  them; with none, the gamer hears no_peers.
static void
test_resources (void)
{
    sent_t sent;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.ref_max_entries = 0;     //  every submit here says client_ref "ref-1"
    config.validation = SCH_VAL_NONE;
    config.funds_check = false;
    P2C_CHECK (sch_core_config_needs (&config, "rt_shadows:gpu,physics_fluid:ram=4") == 0);
    memset (&sent, 0, sizeof sent);
    sch_core_t *core = sch_core_new (&config, s_capture, &sent);
    s_peer_up_ex (core, "gw-a", 1, 4, "rt_shadows", 11, 16, false, 0, "1.1.0", 0);
    s_peer_up_ex (core, "gw-b", 2, 4, "physics_fluid", 12, 2, true, 0, "1.0.0", 0);
    s_submit (core, "t1", "rt_shadows", 30000, 0);
    s_submit (core, "t2", "physics_fluid", 30000, 0);
    P2C_CHECK (s_failed_with (&sent, "t1", "no_peers"));
    P2C_CHECK (s_failed_with (&sent, "t2", "no_peers"));
    s_peer_up_ex (core, "gw-c", 3, 4, "rt_shadows", 13, 16, true, 0, "1.1.0", 0);
    s_submit (core, "t3", "rt_shadows", 30000, 0);
    const char *dest = NULL;
    P2C_CHECK (s_assign_of (&sent, "t3", &dest) && !strcmp (dest, "gw-c"));
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  Fairness: gamer A queues 20 tasks, then gamer B 2; as slots free up,
//  B's tasks are served within the next few, not after A's 20.
static void
test_fairness (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 1000);
    s_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    char id [32];
    s_gamer_account = 501;
    for (int i = 0; i < 20; i++) {
        snprintf (id, sizeof id, "a%d", i);
        s_submit (core, id, "encryption", 30000, 0);
    }
    s_gamer_account = 502;
    s_submit (core, "b0", "encryption", 30000, 0);
    s_submit (core, "b1", "encryption", 30000, 0);
    s_gamer_account = 500;
    P2C_CHECK (sch_core_stats (core)->queued == 21);
    //  a0 ran at once; from the queue the slot alternates between the
    //  gamers (A's queue came first)
    const char *order [6] = { "a0", "a1", "b0", "a2", "b1", "a3" };
    bool fair = true;
    for (int i = 0; i < 5; i++) {
        s_clear (&sent);
        s_result (core, "gw-a", 1, order [i], true, 100, NULL, (i + 1) * MS);
        if (!s_assign_of (&sent, order [i + 1], NULL))
            fair = false;
    }
    P2C_CHECK (fair);
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  One gamer's queue is bounded on its own: a flood gets unavailable while
//  another gamer still queues.
static void
test_gamer_queue_max (void)
{
    sent_t sent;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.ref_max_entries = 0;     //  every submit here says client_ref "ref-1"
    config.validation = SCH_VAL_NONE;
    config.funds_check = false;
    config.cache_max_entries = 0;
    config.gamer_queue_max = 3;
    memset (&sent, 0, sizeof sent);
    sch_core_t *core = sch_core_new (&config, s_capture, &sent);
    s_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    char id [32];
    s_gamer_account = 501;
    for (int i = 0; i < 5; i++) {
        snprintf (id, sizeof id, "a%d", i);
        s_submit (core, id, "encryption", 30000, 0);
    }
    P2C_CHECK (s_failed_with (&sent, "a4", "unavailable"));
    P2C_CHECK (!s_deliver_of (&sent, "a3", NULL));
    s_gamer_account = 502;
    s_submit (core, "b0", "encryption", 30000, 0);
    P2C_CHECK (!s_deliver_of (&sent, "b0", NULL));
    s_gamer_account = 500;
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  Deadlines: none given means the configured default; a long one is cut
//  to the configured bound.
static void
test_deadline_bounds (void)
{
    sent_t sent;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.ref_max_entries = 0;     //  every submit here says client_ref "ref-1"
    config.validation = SCH_VAL_NONE;
    config.funds_check = false;
    config.default_deadline_ms = 4000;
    config.max_deadline_ms = 6000;
    config.attempt_timeout_ms = 100000;
    memset (&sent, 0, sizeof sent);
    sch_core_t *core = sch_core_new (&config, s_capture, &sent);
    s_peer_up (core, "gw-a", 1, 2, "encryption", 11, 0);
    s_submit (core, "t1", "encryption", 0, 0);
    s_params = "{\"n\":2}";
    s_submit (core, "t2", "encryption", 60000, 0);
    s_params = "{\"n\":1}";
    P2c2r__TaskAssign *ta = s_assign_of (&sent, "t1", NULL);
    P2C_CHECK (ta && ta->assign->deadline_ms == 4000);
    ta = s_assign_of (&sent, "t2", NULL);
    P2C_CHECK (ta && ta->assign->deadline_ms == 6000);
    s_clear (&sent);
    sch_core_cron (core, 6000 * MS);
    P2C_CHECK (s_failed_with (&sent, "t1", "timeout") && s_failed_with (&sent, "t2", "timeout"));
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  The cache: an identical task (keys reordered, spaces) after a delivered
//  one is answered at once, cached, free, never settled, no peer runs it;
//  a different payload or an expired entry is a miss.
static void
test_cache (void)
{
    sent_t sent;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.ref_max_entries = 0;     //  every submit here says client_ref "ref-1"
    config.validation = SCH_VAL_NONE;
    config.funds_check = false;
    config.cache_ttl_ms = 60000;
    memset (&sent, 0, sizeof sent);
    sch_core_t *core = sch_core_new (&config, s_capture, &sent);
    s_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    //  (a result of an older kernel version is invalid, never cached:
    //  test_validation_quorum, sch_validation's and sch_cache's self-tests)
    s_params = "{\"data\":\"x\",\"iterations\":3}";
    s_submit (core, "t1", "encryption", 30000, 0);
    P2C_CHECK (s_assign_of (&sent, "t1", NULL) != NULL);
    s_result (core, "gw-a", 1, "t1", true, 700, NULL, 10 * MS);
    s_ack (core, "t1", true, 99, 20 * MS);
    s_clear (&sent);
    s_params = "{ \"iterations\": 3, \"data\": \"x\" }";
    s_submit (core, "t2", "hash", 30000, 30 * MS);
    P2c2r__Deliver *d = s_deliver_of (&sent, "t2", NULL);
    P2C_CHECK (d && d->reply->ok && d->reply->cached && d->reply->cost_pico == 0
               && d->reply->billed_us == 0);
    P2C_CHECK (d && !strcmp (d->reply->result_json, "{\"hash\":\"ab\"}")
               && d->reply->blob.len == 2 && !strcmp (d->reply->client_ref, "ref-1"));
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_TASK_ASSIGN) == 0);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 0);
    P2C_CHECK (sch_core_stats (core)->cached == 1);
    s_clear (&sent);
    //  other values: a miss
    s_params = "{\"data\":\"x\",\"iterations\":4}";
    s_submit (core, "t3", "encryption", 30000, 40 * MS);
    P2C_CHECK (s_assign_of (&sent, "t3", NULL) != NULL);
    s_result (core, "gw-a", 1, "t3", true, 700, NULL, 50 * MS);
    s_ack (core, "t3", true, 99, 50 * MS);
    s_clear (&sent);
    //  after the time to live: a miss
    s_params = "{\"data\":\"x\",\"iterations\":3}";
    s_submit (core, "t4", "encryption", 30000, 60100 * MS);
    P2C_CHECK (s_assign_of (&sent, "t4", NULL) != NULL);
    s_params = "{\"n\":1}";
    char *json = sch_core_stats_json (core, 60100 * MS);
    P2C_CHECK (json && strstr (json, "\"cache_hits\":1") && strstr (json, "\"cache_misses\":3"));
    free (json);
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  --------------------------------------------------------------------------
//  Frames split into tiles (issue 12)

//  A PNG of rows [y, y+rows) of a 16-wide pattern frame, as a 1.1.0 kernel
//  renders that tile
static uint8_t *
s_tile_png (uint32_t y, uint32_t rows, size_t *size)
{
    uint8_t *rgb = malloc ((size_t) 16 * rows * 3);
    assert (rgb);
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t x = 0; x < 16; x++)
            for (int c = 0; c < 3; c++)
                rgb [((size_t) r * 16 + x) * 3 + (size_t) c] = (uint8_t) ((y + r) * 16 + x + c * 50);
    png_image image;
    memset (&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = 16;
    image.height = rows;
    image.format = PNG_FORMAT_RGB;
    png_alloc_size_t len = 0;
    png_image_write_to_memory (&image, NULL, &len, 0, rgb, 0, NULL);
    uint8_t *png = malloc (len);
    assert (png && png_image_write_to_memory (&image, png, &len, 0, rgb, 0, NULL));
    free (rgb);
    *size = len;
    return png;
}

//  A peer's answer to tile y..y+rows of a 16x12 frame, or an error
static void
s_tile_result (sch_core_t *core, const char *gw, uint64_t conn, const char *id, uint32_t y,
               uint32_t rows, bool ok, int64_t now)
{
    char json [256];
    snprintf (json, sizeof json, "{\"bounces\":3,\"format\":\"png\",\"height\":12,"
              "\"intersections\":%u,\"lights\":2,\"rays_traced\":%u,\"samples_per_pixel\":1,"
              "\"tile\":[0,%u,16,%u],\"width\":16}", rows, 10 * rows, y, rows);
    size_t len = 0;
    uint8_t *png = s_tile_png (y, rows, &len);
    P2c2r__Session session = P2C2R__SESSION__INIT;
    session.gateway = (char *) gw;
    session.conn = conn;
    P2c2r__PeerResult res = P2C2R__PEER_RESULT__INIT;
    res.task_id = (char *) id;
    res.ok = ok;
    res.compute_us = 1000;
    res.attempt = *s_attempt_slot (id);
    char rt [SCH_MAX_SHORT];
    res.kernel_version = (char *) p2c_task_version_current (p2c_task_type ("rt_reflections"), rt,
                                                            sizeof rt);
    if (ok) {
        res.result_json = json;
        res.blob.data = png;
        res.blob.len = len;
    }
    else {
        res.error_code = "invalid_params";
        res.error = "samples_per_pixel: too much";
    }
    P2c2r__TaskResult tr = P2C2R__TASK_RESULT__INIT;
    tr.peer = &session;
    tr.result = &res;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_RESULT;
    msg.task_result = &tr;
    sch_core_handle (core, gw, &msg, now);
    free (png);
}

//  A 16x12 frame above the threshold runs as two tiles (rows 0-5, 6-11),
//  each assigned, reassigned when its peer is lost, and settled on its own
//  once both are in; the gamer gets one reply with the whole frame's PNG
//  and the summed cost; the frame is then cached whole. A frame whose tile
//  fails gets one error, no gamer settlement, and the held tile's peer is
//  paid by the treasury.
static void
test_tiles (void)
{
    sent_t sent;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.ref_max_entries = 0;     //  every submit here says client_ref "ref-1"
    config.validation = SCH_VAL_NONE;
    config.funds_check = false;
    config.pay_checks = true;
    config.tile_px = 100;
    memset (&sent, 0, sizeof sent);
    sch_core_t *core = sch_core_new (&config, s_capture, &sent);
    char rt [SCH_MAX_SHORT];
    p2c_task_version_current (p2c_task_type ("rt_reflections"), rt, sizeof rt);
    //  only a peer that names no kernel version (the JSON protocol), so
    //  may not render tiles: the frame runs whole (a ray tracer older than
    //  1.1.0 is not eligible at all: the catalogue knows 1.1.0 only)
    s_peer_up_ex (core, "gw-o", 9, 2, "rt_reflections", 19, 0, false, 0, "", 0);
    s_params = "{\"resolution\":[16,12],\"seed\":9}";
    s_submit (core, "f0", "rt_reflections", 30000, 0);
    P2C_CHECK (s_assign_of (&sent, "f0", NULL) != NULL && s_assign_of (&sent, "f0#t0", NULL) == NULL);
    s_result (core, "gw-o", 9, "f0", true, 100, NULL, 1 * MS);
    s_ack (core, "f0", true, 5, 2 * MS);
    P2C_CHECK (s_deliver_of (&sent, "f0", NULL) != NULL);
    s_clear (&sent);
    //  with peers of the current kernel, tiles go to them only (gw-o has a free slot)
    s_peer_up_ex (core, "gw-a", 1, 1, "rt_reflections", 11, 0, false, 0, rt, 0);
    s_peer_up_ex (core, "gw-b", 2, 1, "rt_reflections", 12, 0, false, 0, rt, 0);
    s_params = "{\"resolution\":[16,12]}";
    s_submit (core, "f1", "rt_reflections", 30000, 0);
    const char *d0 = NULL, *d1 = NULL;
    P2c2r__TaskAssign *a0 = s_assign_of (&sent, "f1#t0", &d0);
    P2c2r__TaskAssign *a1 = s_assign_of (&sent, "f1#t1", &d1);
    P2C_CHECK (a0 && a1 && s_assign_of (&sent, "f1", NULL) == NULL && strcmp (d0, d1));
    P2C_CHECK (d0 && d1 && strcmp (d0, "gw-o") && strcmp (d1, "gw-o"));
    P2C_CHECK (a0 && strstr (a0->assign->params_json, "\"tile\":[0,0,16,6]"));
    P2C_CHECK (a1 && strstr (a1->assign->params_json, "\"tile\":[0,6,16,6]"));
    uint64_t c0 = a0 ? a0->peer->conn : 0, c1 = a1 ? a1->peer->conn : 0;
    char g0 [16], g1 [16];
    snprintf (g0, sizeof g0, "%s", d0 ? d0 : "");
    snprintf (g1, sizeof g1, "%s", d1 ? d1 : "");
    s_clear (&sent);
    //  tile 0 in: held, nothing settled, nothing delivered
    s_tile_result (core, g0, c0, "f1#t0", 0, 6, true, 10 * MS);
    P2C_CHECK (sent.count == 0);
    //  tile 1's peer is lost: the tile is reassigned to the other peer
    s_peer_down (core, g1, c1, 20 * MS);
    P2c2r__TaskAssign *a2 = s_assign_of (&sent, "f1#t1", NULL);
    P2C_CHECK (a2 && a2->peer->conn == c0 && a2->assign->attempt == 2);
    s_clear (&sent);
    s_tile_result (core, g0, c0, "f1#t1", 6, 6, true, 30 * MS);
    //  both in: two settlements charged to the gamer, no reply yet
    P2c2r__SettleRequest *s0 = s_settle_of (&sent, "f1#t0"), *s1 = s_settle_of (&sent, "f1#t1");
    P2C_CHECK (s0 && s1 && s0->gamer_account == 500 && s1->gamer_account == 500);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_DELIVER) == 0);
    s_clear (&sent);
    s_ack (core, "f1#t0", true, 7, 40 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_DELIVER) == 0);
    s_ack (core, "f1#t1", true, 11, 41 * MS);
    P2c2r__Deliver *d = s_deliver_of (&sent, "f1", NULL);
    P2C_CHECK (d && d->reply->ok && d->reply->cost_pico == 18 && !d->reply->cached);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_DELIVER) == 1);
    //  the whole frame: rows 0-11 of the pattern, counts summed, no tile
    size_t whole_len = 0;
    uint8_t *whole = s_tile_png (0, 12, &whole_len);
    P2C_CHECK (d && d->reply->blob.len == whole_len && !memcmp (d->reply->blob.data, whole, whole_len));
    P2C_CHECK (d && !strcmp (d->reply->result_json, "{\"bounces\":3,\"format\":\"png\",\"height\":12,"
                             "\"intersections\":12,\"lights\":2,\"rays_traced\":120,"
                             "\"samples_per_pixel\":1,\"width\":16}"));
    s_clear (&sent);
    //  the same frame again: cached whole, free, no peer runs it
    s_submit (core, "f2", "rt_reflections", 30000, 50 * MS);
    d = s_deliver_of (&sent, "f2", NULL);
    P2C_CHECK (d && d->reply->cached && d->reply->cost_pico == 0 && d->reply->blob.len == whole_len);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_TASK_ASSIGN) == 0);
    s_clear (&sent);
    free (whole);

    //  a frame whose second tile fails
    s_params = "{\"resolution\":[16,12],\"seed\":2}";
    s_submit (core, "f3", "rt_reflections", 30000, 60 * MS);
    a0 = s_assign_of (&sent, "f3#t0", NULL);
    P2C_CHECK (a0 && s_assign_of (&sent, "f3#t1", NULL) == NULL);     //  one peer, one slot
    s_clear (&sent);
    s_tile_result (core, "gw-a", 1, "f3#t0", 0, 6, true, 70 * MS);
    P2C_CHECK (s_assign_of (&sent, "f3#t1", NULL) != NULL);
    s_clear (&sent);
    s_tile_result (core, "gw-a", 1, "f3#t1", 6, 6, false, 80 * MS);
    P2C_CHECK (s_failed_with (&sent, "f3", "invalid_params"));
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_DELIVER) == 1);
    //  the gamer pays for no tile; the tile that finished is paid by the treasury
    P2c2r__SettleRequest *pay = s_settle_of (&sent, "f3#t0");
    P2C_CHECK (pay && pay->gamer_account == 0 && pay->peer_account == 11);
    P2C_CHECK (s_settle_of (&sent, "f3#t1") == NULL && s_settle_of (&sent, "f3") == NULL);
    s_clear (&sent);

    //  a frame whose tiles do not all finish by the deadline: one timeout
    s_submit (core, "f4", "rt_reflections", 500, 100 * MS);
    s_clear (&sent);
    sch_core_cron (core, 700 * MS);
    P2C_CHECK (s_failed_with (&sent, "f4", "timeout"));
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_DELIVER) == 1);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 0);
    P2C_CHECK (sch_core_stats (core)->running == 0 && sch_core_stats (core)->queued == 0
               && sch_core_stats (core)->validating == 0 && sch_core_stats (core)->settling == 0);
    s_clear (&sent);
    //  its peer's late answer is stale
    s_tile_result (core, "gw-a", 1, "f4#t0", 0, 6, true, 800 * MS);
    P2C_CHECK (sent.count == 0);
    //  split frames in flight hold their pixels: ten 4096x2048 frames (24 MiB
    //  each) are split into 16 tiles each; the eleventh, past 256 MiB, runs
    //  whole
    s_params = "{\"resolution\":[4096,2048]}";
    char id [16];
    for (int k = 0; k < 11; k++) {
        const sch_stats_t *st = sch_core_stats (core);
        size_t before = st->queued + st->running;
        snprintf (id, sizeof id, "big%d", k);
        s_submit (core, id, "rt_reflections", 30000, 900 * MS);
        P2C_CHECK (st->queued + st->running == before + (k < 10 ? 16 : 1));
    }
    s_clear (&sent);
    s_params = "{\"n\":1}";
    sch_core_destroy (&core);
}

//  Under quorum each tile runs on two peers and is held once two agree; the
//  agreeing checks are paid by the treasury, the gamer pays each tile once
static void
test_tiles_quorum (void)
{
    sent_t sent;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.ref_max_entries = 0;     //  every submit here says client_ref "ref-1"
    config.validation = SCH_VAL_QUORUM;
    config.funds_check = false;
    config.pay_checks = true;
    config.tile_px = 100;
    memset (&sent, 0, sizeof sent);
    sch_core_t *core = sch_core_new (&config, s_capture, &sent);
    char rt [SCH_MAX_SHORT];
    p2c_task_version_current (p2c_task_type ("rt_reflections"), rt, sizeof rt);
    //  a peer that names no kernel version, free all along, gets neither
    //  tiles nor their checks
    s_peer_up_ex (core, "gw-o", 9, 4, "rt_reflections", 19, 0, false, 0, "", 0);
    s_peer_up_ex (core, "gw-a", 1, 2, "rt_reflections", 11, 0, false, 0, rt, 0);
    s_peer_up_ex (core, "gw-b", 2, 2, "rt_reflections", 12, 0, false, 0, rt, 0);
    s_params = "{\"resolution\":[16,12],\"seed\":4}";
    s_submit (core, "q1", "rt_reflections", 30000, 0);
    const char *ids [4] = { "q1#t0", "q1#t0#c1", "q1#t1", "q1#t1#c1" };
    char gw [4][16];
    uint64_t conn [4];
    for (int k = 0; k < 4; k++) {
        const char *d = NULL;
        P2c2r__TaskAssign *a = s_assign_of (&sent, ids [k], &d);
        P2C_CHECK (a != NULL);
        snprintf (gw [k], sizeof gw [k], "%s", d ? d : "");
        conn [k] = a ? a->peer->conn : 0;
    }
    //  each tile and its check on two different peers, none on gw-o
    P2C_CHECK (strcmp (gw [0], gw [1]) && strcmp (gw [2], gw [3]));
    for (int k = 0; k < 4; k++)
        P2C_CHECK (strcmp (gw [k], "gw-o"));
    s_clear (&sent);
    for (int k = 0; k < 4; k++)
        s_tile_result (core, gw [k], conn [k], ids [k], k < 2 ? 0 : 6, 6, true, (10 + k) * MS);
    //  both tiles agreed: each settled once to the gamer, each check paid by the treasury
    P2c2r__SettleRequest *t0 = s_settle_of (&sent, "q1#t0"), *t1 = s_settle_of (&sent, "q1#t1");
    P2c2r__SettleRequest *c0 = s_settle_of (&sent, "q1#t0#c1"), *c1 = s_settle_of (&sent, "q1#t1#c1");
    P2C_CHECK (t0 && t1 && t0->gamer_account == 500 && t1->gamer_account == 500);
    P2C_CHECK (c0 && c1 && c0->gamer_account == 0 && c1->gamer_account == 0);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_DELIVER) == 0);
    s_clear (&sent);
    s_ack (core, "q1#t0#c1", true, 3, 20 * MS);
    s_ack (core, "q1#t0", true, 4, 21 * MS);
    s_ack (core, "q1#t1", true, 6, 22 * MS);
    P2c2r__Deliver *d = s_deliver_of (&sent, "q1", NULL);
    P2C_CHECK (d && d->reply->ok && d->reply->cost_pico == 10);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_DELIVER) == 1);
    s_clear (&sent);
    s_params = "{\"n\":1}";
    sch_core_destroy (&core);
}

static sch_core_t *
s_core_val (sent_t *sent, sch_val_mode_t mode, uint32_t spot, uint32_t doubted)
{
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.ref_max_entries = 0;     //  every submit here says client_ref "ref-1"
    config.validation = mode;
    config.funds_check = false;
    config.cache_max_entries = 0;
    config.spot_permille = spot;
    config.spot_doubted_permille = doubted;
    config.pay_checks = true;
    memset (sent, 0, sizeof *sent);
    return sch_core_new (&config, s_capture, sent);
}

//  Spot: the first result is released and settled at once; the check runs
//  on another peer (another account) and agrees; the gamer pays nothing
//  more: the check run's peer is paid by the treasury (gamer_account 0),
//  resent until acked.
static void
test_spot_agree (void)
{
    sent_t sent;
    sch_core_t *core = s_core_val (&sent, SCH_VAL_SPOT, 1000, 1000);
    s_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    s_peer_up (core, "gw-b", 2, 1, "encryption", 12, 0);
    s_submit (core, "t1", "encryption", 30000, 0);
    const char *dest = NULL;
    P2C_CHECK (s_assign_of (&sent, "t1", &dest) && !strcmp (dest, "gw-a"));
    s_clear (&sent);
    s_result (core, "gw-a", 1, "t1", true, 100, NULL, 10 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 1);
    P2c2r__TaskAssign *ta = s_assign_of (&sent, "t1#c1", &dest);
    P2C_CHECK (ta && !strcmp (dest, "gw-b") && !strcmp (ta->assign->params_json, "{\"n\":1}"));
    s_ack (core, "t1", true, 5, 20 * MS);
    P2C_CHECK (s_deliver_of (&sent, "t1", NULL) && s_deliver_of (&sent, "t1", NULL)->reply->ok);
    s_clear (&sent);
    s_result (core, "gw-b", 2, "t1#c1", true, 100, NULL, 30 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 1);
    P2c2r__SettleRequest *sr = s_settle_of (&sent, "t1#c1");
    P2C_CHECK (sr && sr->gamer_account == 0 && sr->peer_account == 12 && sr->billed_us > 0);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_DELIVER) == 0);
    P2C_CHECK (sch_core_stats (core)->agreed == 1 && sch_core_stats (core)->checks == 1);
    P2C_CHECK (sch_core_stats (core)->check_payouts == 1
               && sch_core_stats (core)->payouts_pending == 1);
    //  not acked: resent by the cron; acked: forgotten, a late ack is stale
    s_clear (&sent);
    sch_core_cron (core, 30 * MS + 2100 * MS);
    P2C_CHECK (s_settle_of (&sent, "t1#c1") != NULL);
    s_ack (core, "t1#c1", true, 5, 2200 * MS);
    P2C_CHECK (sch_core_stats (core)->payouts_pending == 0
               && sch_core_stats (core)->payouts_done == 1);
    s_clear (&sent);
    sch_core_cron (core, 9000 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 0);
    s_ack (core, "t1#c1", true, 5, 9100 * MS);
    P2C_CHECK (sch_core_stats (core)->stale_acks == 1);
    double v = 0, i = 0;
    bool banned = true;
    P2C_CHECK (sch_core_reputation (core, 11, 30 * MS, &v, &i, &banned) && v == 1 && i == 0
               && !banned);
    P2C_CHECK (sch_core_reputation (core, 12, 30 * MS, &v, &i, &banned) && v == 1 && i == 0);
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  Spot, a cheat: the check disagrees; a third peer settles it against the
//  first peer, whose paid result is recorded as lost; repeated, the cheat
//  is banned, gets no more work, and its results are refused unpaid. Its
//  reputation follows its account to a new connection.
static void
test_spot_cheat_banned (void)
{
    sent_t sent;
    sch_core_t *core = s_core_val (&sent, SCH_VAL_SPOT, 1000, 1000);
    s_peer_up (core, "gw-a", 1, 1, "encryption", 66, 0);     //  the cheat
    s_peer_up (core, "gw-b", 2, 1, "encryption", 12, 0);
    s_peer_up (core, "gw-c", 3, 1, "encryption", 13, 0);
    int64_t now = 0;
    char id [32], check [40];
    for (int k = 0; k < 2; k++) {
        snprintf (id, sizeof id, "t%d", k);
        s_submit (core, id, "encryption", 30000, now);
        const char *dest = NULL;
        P2C_CHECK (s_assign_of (&sent, id, &dest) && !strcmp (dest, "gw-a"));
        s_clear (&sent);
        s_result_json = "{\"hash\":\"forged\"}";
        s_result (core, "gw-a", 1, id, true, 100, NULL, now += MS);
        s_result_json = "{\"hash\":\"ab\"}";
        s_ack (core, id, true, 5, now += MS);
        snprintf (check, sizeof check, "%s#c1", id);
        P2c2r__TaskAssign *ta = s_assign_of (&sent, check, &dest);
        P2C_CHECK (ta != NULL);
        const char *gw1 = ta ? ta->peer->gateway : "";
        uint64_t conn1 = ta ? ta->peer->conn : 0;
        char gw1copy [16];
        snprintf (gw1copy, sizeof gw1copy, "%s", gw1);
        s_clear (&sent);
        s_result (core, gw1copy, conn1, check, true, 100, NULL, now += MS);
        //  a tie-break on the third peer
        snprintf (check, sizeof check, "%s#c2", id);
        ta = s_assign_of (&sent, check, &dest);
        P2C_CHECK (ta && strcmp (dest, "gw-a") && strcmp (dest, gw1copy));
        char gw2copy [16];
        snprintf (gw2copy, sizeof gw2copy, "%s", ta ? ta->peer->gateway : "");
        uint64_t conn2 = ta ? ta->peer->conn : 0;
        s_clear (&sent);
        s_result (core, gw2copy, conn2, check, true, 100, NULL, now += MS);
        //  the two honest checks are paid by the treasury; the cheat's
        //  paid result is reversed; the gamer pays nothing more
        char c1 [40];
        snprintf (c1, sizeof c1, "%s#c1", id);
        P2c2r__SettleRequest *p1 = s_settle_of (&sent, c1), *p2 = s_settle_of (&sent, check);
        P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 2
                   && p1 && p1->gamer_account == 0 && p1->peer_account != 66
                   && p2 && p2->gamer_account == 0 && p2->peer_account != 66);
        P2c2r__Internal *rv = s_nth (&sent, P2C2R__INTERNAL__MSG_SETTLE_REVERSE, 0, NULL);
        P2C_CHECK (rv && !strcmp (rv->settle_reverse->task_id, id)
                   && s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REVERSE) == 1);
        s_ack (core, c1, true, 5, now);
        s_ack (core, check, true, 5, now);
        s_clear (&sent);
    }
    const sch_stats_t *st = sch_core_stats (core);
    P2C_CHECK (st->tiebreaks == 2 && st->invalid_results == 2 && st->paid_then_invalid == 2);
    P2C_CHECK (st->reversals == 2 && st->check_payouts == 4 && st->payouts_pending == 2);
    //  a reversal that overtook its settlement is refused, resent by the
    //  cron, and forgotten once done
    s_ack_reverse (core, "t0", false, "not settled", now);
    P2C_CHECK (st->payouts_pending == 2 && st->payouts_dropped == 0);
    s_clear (&sent);
    sch_core_cron (core, now + 2100 * MS);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REVERSE) == 2);
    s_ack_reverse (core, "t0", true, "", now + 2200 * MS);
    s_ack_reverse (core, "t1", true, "", now + 2200 * MS);
    P2C_CHECK (st->payouts_pending == 0 && st->payouts_done == 6);
    s_clear (&sent);
    P2C_CHECK (st->bans == 1 && st->banned_peers == 1);
    double v = 0, i = 0;
    bool banned = false;
    P2C_CHECK (sch_core_reputation (core, 66, now, &v, &i, &banned) && i > 1.99 && banned);
    //  banned: no work, even when the others are busy
    s_submit (core, "u1", "encryption", 30000, now);
    s_submit (core, "u2", "encryption", 30000, now);
    s_submit (core, "u3", "encryption", 30000, now);
    P2C_CHECK (sch_core_peer_busy (core, "gw-a", 1) == 0);
    P2C_CHECK (sch_core_stats (core)->queued == 1);
    s_clear (&sent);
    //  reconnecting does not wash the account
    s_peer_down (core, "gw-a", 1, now);
    s_peer_up (core, "gw-a", 9, 1, "encryption", 66, now);
    P2C_CHECK (sch_core_peer_busy (core, "gw-a", 9) == 0);
    P2C_CHECK (sch_core_stats (core)->banned_peers == 1);
    //  with the ban the cheat is not counted as an eligible peer
    s_peer_down (core, "gw-b", 2, now);
    s_peer_down (core, "gw-c", 3, now);
    s_clear (&sent);
    s_submit (core, "u4", "encryption", 30000, now);
    P2C_CHECK (s_failed_with (&sent, "u4", "no_peers"));
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  Where the last TaskAssign of a task went: its gateway copied into gw
//  (16 bytes) and its connection; false when none.
static bool
s_where (sent_t *sent, const char *task_id, char *gw, uint64_t *conn)
{
    const char *dest = NULL;
    P2c2r__TaskAssign *ta = s_assign_of (sent, task_id, &dest);
    if (!ta)
        return false;
    snprintf (gw, 16, "%s", ta->peer->gateway);
    *conn = ta->peer->conn;
    return true;
}

//  A banned peer's result for a task it had before the ban is refused,
//  unpaid, and the task goes elsewhere.
static void
test_banned_result_refused (void)
{
    sent_t sent;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.ref_max_entries = 0;     //  every submit here says client_ref "ref-1"
    config.validation = SCH_VAL_SPOT;
    config.spot_permille = config.spot_doubted_permille = 1000;
    config.funds_check = false;
    config.cache_max_entries = 0;
    config.ban_min_invalid = 1;
    memset (&sent, 0, sizeof sent);
    sch_core_t *core = sch_core_new (&config, s_capture, &sent);
    s_peer_up (core, "gw-a", 1, 2, "encryption", 66, 0);
    s_submit (core, "t1", "encryption", 30000, 0);
    s_submit (core, "t2", "encryption", 30000, 0);
    P2C_CHECK (sch_core_peer_busy (core, "gw-a", 1) == 2);
    s_peer_up (core, "gw-b", 2, 1, "encryption", 12, 0);
    s_peer_up (core, "gw-c", 3, 1, "encryption", 13, 0);
    s_clear (&sent);
    s_result_json = "{\"hash\":\"forged\"}";
    s_result (core, "gw-a", 1, "t1", true, 100, NULL, 10 * MS);
    s_result_json = "{\"hash\":\"ab\"}";
    char gw [16];
    uint64_t conn = 0;
    P2C_CHECK (s_where (&sent, "t1#c1", gw, &conn) && strcmp (gw, "gw-a"));
    s_clear (&sent);
    s_result (core, gw, conn, "t1#c1", true, 100, NULL, 20 * MS);
    P2C_CHECK (s_where (&sent, "t1#c2", gw, &conn) && strcmp (gw, "gw-a"));
    s_clear (&sent);
    s_result (core, gw, conn, "t1#c2", true, 100, NULL, 30 * MS);
    P2C_CHECK (sch_core_stats (core)->bans == 1);
    s_clear (&sent);
    //  gw-a (banned) answers t2: refused, not paid, t2 runs elsewhere
    s_result (core, "gw-a", 1, "t2", true, 100, NULL, 40 * MS);
    P2C_CHECK (sch_core_stats (core)->banned_results == 1);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 0);
    P2C_CHECK (s_where (&sent, "t2", gw, &conn) && strcmp (gw, "gw-a"));
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  Quorum: nothing is released or paid before two results agree; a result
//  of a kernel version the catalogue does not know is invalid, never merely
//  incomparable (issue 14).
static void
test_quorum (void)
{
    sent_t sent;
    sch_core_t *core = s_core_val (&sent, SCH_VAL_QUORUM, 0, 0);
    s_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    s_peer_up (core, "gw-b", 2, 1, "encryption", 12, 0);
    s_peer_up (core, "gw-c", 3, 1, "encryption", 13, 0);
    s_submit (core, "t1", "encryption", 30000, 0);
    char gw0 [16], gw1 [16], gw2 [16];
    uint64_t c0 = 0, c1 = 0, c2 = 0;
    P2C_CHECK (s_where (&sent, "t1", gw0, &c0) && !strcmp (gw0, "gw-a"));
    P2C_CHECK (s_where (&sent, "t1#c1", gw1, &c1) && strcmp (gw1, "gw-a"));
    s_clear (&sent);
    s_result (core, gw0, c0, "t1", true, 100, NULL, 10 * MS);
    P2C_CHECK (sent.count == 0);
    P2C_CHECK (sch_core_stats (core)->validating == 1);
    //  an invented kernel version: invalid at once, no vote; a third run
    //  is asked for
    s_kernel_version = "9.9.9-forged";
    s_result (core, gw1, c1, "t1#c1", true, 100, NULL, 20 * MS);
    s_kernel_version = NULL;
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 0);
    P2C_CHECK (sch_core_stats (core)->incomparable == 0);
    P2C_CHECK (sch_core_stats (core)->unknown_versions == 1
               && sch_core_stats (core)->invalid_results == 1);
    P2C_CHECK (s_where (&sent, "t1#c2", gw2, &c2) && strcmp (gw2, gw0) && strcmp (gw2, gw1));
    s_clear (&sent);
    s_result (core, gw2, c2, "t1#c2", true, 100, NULL, 30 * MS);
    //  the gamer pays the gamer's run; the agreeing check is paid by the
    //  treasury; the run of the invented version is judged invalid, unpaid
    P2c2r__SettleRequest *m = s_settle_of (&sent, "t1");
    P2C_CHECK (m && m->peer_account == 11 && m->gamer_account == 500);
    P2c2r__SettleRequest *mc = s_settle_of (&sent, "t1#c2");
    P2C_CHECK (mc && mc->gamer_account == 0 && s_settle_of (&sent, "t1#c1") == NULL
               && s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 2);
    s_ack (core, "t1", true, 5, 40 * MS);
    P2C_CHECK (s_deliver_of (&sent, "t1", NULL) && s_deliver_of (&sent, "t1", NULL)->reply->ok);
    double v = 0, i = 0;
    bool banned = false;
    int64_t other = !strcmp (gw1, "gw-b") ? 12 : 13;
    P2C_CHECK (sch_core_reputation (core, other, 40 * MS, &v, &i, &banned)
               && v == 0 && i > 0.99);
    s_clear (&sent);
    //  only one peer: the quorum never forms and the gamer hears timeout
    s_peer_down (core, "gw-b", 2, 50 * MS);
    s_peer_down (core, "gw-c", 3, 50 * MS);
    s_submit (core, "t2", "encryption", 1000, 50 * MS);
    s_result (core, "gw-a", 1, "t2", true, 100, NULL, 60 * MS);
    sch_core_cron (core, 1050 * MS);
    P2C_CHECK (s_failed_with (&sent, "t2", "timeout"));
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST) == 0);
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  Billing: a peer slower than the fleet on the reference input bills the
//  fleet's time for the same work.
static void
test_billing_reference (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 100);
    s_peer_up_ex (core, "gw-a", 1, 1, "encryption", 11, 8, false, 3000, "2.0.0", 0);
    s_peer_up_ex (core, "gw-b", 2, 1, "encryption", 12, 8, false, 1000, "2.0.0", 0);
    //  fleet mean 2000 us; gw-b is faster: billed as claimed
    s_submit (core, "t1", "encryption", 30000, 0);
    s_params = "{\"n\":2}";
    s_submit (core, "t2", "encryption", 30000, 0);
    s_params = "{\"n\":1}";
    s_result (core, "gw-b", 2, "t1", true, 9000, NULL, 10 * MS);
    s_result (core, "gw-a", 1, "t2", true, 9000, NULL, 10 * MS);
    P2c2r__Internal *m1 = s_nth (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST, 0, NULL);
    P2c2r__Internal *m2 = s_nth (&sent, P2C2R__INTERNAL__MSG_SETTLE_REQUEST, 1, NULL);
    P2C_CHECK (m1 && m1->settle_request->billed_us == 9000);
    //  gw-a: 9000 * 2000 / 3000
    P2C_CHECK (m2 && m2->settle_request->billed_us == 6000
               && m2->settle_request->compute_us == 9000);
    s_clear (&sent);
    sch_core_destroy (&core);
}

static sch_core_t *
s_core_funds (sent_t *sent)
{
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.ref_max_entries = 0;     //  every submit here says client_ref "ref-1"
    config.validation = SCH_VAL_NONE;
    config.cache_max_entries = 0;
    config.funds_check = true;
    config.funds_floor_pico = 0;
    config.gamer_rate_per_hour = 3600000000LL;    //  1 pico per us: easy sums
    config.balance_wait_ms = 2000;
    memset (sent, 0, sizeof *sent);
    return sch_core_new (&config, s_capture, sent);
}

//  Funds: an unknown gamer's task waits for the balance (one BalanceQuery
//  to the ledger); with enough, it runs and its most is reserved; what the
//  tasks in flight may cost counts against the balance; a disabled or poor
//  account hears insufficient_funds before any peer works; the reserve is
//  given back when a task ends.
static void
test_funds (void)
{
    sent_t sent;
    sch_core_t *core = s_core_funds (&sent);
    s_peer_up (core, "gw-a", 1, 8, "encryption", 11, 0);
    s_gamer_account = 700;
    s_submit (core, "t1", "encryption", 1000, 0);        //  most: 1000000 pico
    s_submit (core, "t2", "encryption", 1000, 0);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_BALANCE_QUERY) == 1);
    const char *dest = NULL;
    P2c2r__Internal *q = s_nth (&sent, P2C2R__INTERNAL__MSG_BALANCE_QUERY, 0, &dest);
    P2C_CHECK (q && !strcmp (dest, "ledger") && q->balance_query->n_account_ids == 1
               && q->balance_query->account_ids [0] == 700);
    P2C_CHECK (s_count (&sent, P2C2R__INTERNAL__MSG_TASK_ASSIGN) == 0);
    P2C_CHECK (sch_core_stats (core)->parked == 2);
    s_clear (&sent);
    //  room for one task of 1000000, not two
    s_balance (core, 700, 1500000, false, 100 * MS);
    P2C_CHECK (s_assign_of (&sent, "t1", NULL) != NULL);
    P2C_CHECK (s_failed_with (&sent, "t2", "insufficient_funds"));
    P2C_CHECK (s_assign_of (&sent, "t2", NULL) == NULL);
    s_clear (&sent);
    //  t1 ends: its reserve is free again
    s_result (core, "gw-a", 1, "t1", true, 100, NULL, 200 * MS);
    s_ack (core, "t1", true, 100, 210 * MS);
    s_submit (core, "t3", "encryption", 1000, 220 * MS);
    P2C_CHECK (s_assign_of (&sent, "t3", NULL) != NULL);
    s_clear (&sent);
    //  a deadline beyond the type's ceiling reserves the ceiling (60 s)
    s_balance (core, 700, 61000000 + 999999, false, 230 * MS);
    s_submit (core, "t4", "encryption", 300000, 240 * MS);
    P2C_CHECK (s_assign_of (&sent, "t4", NULL) != NULL);
    s_submit (core, "t5", "encryption", 1000, 240 * MS);
    P2C_CHECK (s_failed_with (&sent, "t5", "insufficient_funds"));
    s_clear (&sent);
    //  disabled
    s_balance (core, 700, 1000000000000LL, true, 250 * MS);
    s_submit (core, "t6", "encryption", 1000, 260 * MS);
    P2C_CHECK (s_failed_with (&sent, "t6", "insufficient_funds"));
    P2C_CHECK (sch_core_stats (core)->failed [SCH_ERR_INSUFFICIENT_FUNDS] == 3);
    s_clear (&sent);
    //  a ledger that never answers: unavailable after the wait, nothing ran
    s_gamer_account = 701;
    s_submit (core, "t7", "encryption", 30000, 300 * MS);
    sch_core_cron (core, 2299 * MS);
    P2C_CHECK (s_deliver_of (&sent, "t7", NULL) == NULL);
    sch_core_cron (core, 2300 * MS);
    P2C_CHECK (s_failed_with (&sent, "t7", "unavailable"));
    P2C_CHECK (s_assign_of (&sent, "t7", NULL) == NULL && sch_core_stats (core)->parked == 0);
    s_gamer_account = 500;
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  The floor: the spendable balance must stay at or above it.
static void
test_funds_floor (void)
{
    sent_t sent;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.ref_max_entries = 0;     //  every submit here says client_ref "ref-1"
    config.validation = SCH_VAL_NONE;
    config.cache_max_entries = 0;
    config.gamer_rate_per_hour = 3600000000LL;
    config.funds_floor_pico = 500000;
    memset (&sent, 0, sizeof sent);
    sch_core_t *core = sch_core_new (&config, s_capture, &sent);
    s_peer_up (core, "gw-a", 1, 8, "encryption", 11, 0);
    s_balance (core, 500, 1499999, false, 0);
    s_submit (core, "t1", "encryption", 1000, 0);
    P2C_CHECK (s_failed_with (&sent, "t1", "insufficient_funds"));
    s_balance (core, 500, 1500000, false, 0);
    s_submit (core, "t2", "encryption", 1000, 0);
    P2C_CHECK (s_assign_of (&sent, "t2", NULL) != NULL);
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  Stats: a StatsRequest gets a StatsReply to the asking node with the
//  figures as a flat JSON object.
static void
test_stats (void)
{
    sent_t sent;
    sch_core_t *core = s_core (&sent, 10000, 3, 100);
    s_peer_up (core, "gw-a", 1, 2, "encryption", 11, 0);
    s_submit (core, "t1", "encryption", 30000, 0);
    s_result (core, "gw-a", 1, "t1", true, 100, NULL, 40 * MS);
    s_ack (core, "t1", true, 5, 50 * MS);
    s_clear (&sent);
    P2c2r__StatsRequest req = P2C2R__STATS_REQUEST__INIT;
    req.corr = 77;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_STATS_REQUEST;
    msg.stats_request = &req;
    sch_core_handle (core, "gw-node-9", &msg, 60 * MS);
    const char *dest = NULL;
    P2c2r__Internal *m = s_nth (&sent, P2C2R__INTERNAL__MSG_STATS_REPLY, 0, &dest);
    P2C_CHECK (m && !strcmp (dest, "gw-node-9") && m->stats_reply->corr == 77
               && !strcmp (m->stats_reply->service, "scheduler"));
    const char *j = m ? m->stats_reply->stats_json : "";
    P2C_CHECK (strstr (j, "\"peers_online\":1") && strstr (j, "\"slots_busy\":0")
               && strstr (j, "\"completed\":1") && strstr (j, "\"queue_depth\":0")
               && strstr (j, "\"latency_p50_ms\":50.0") && strstr (j, "\"cache_hit_rate\"")
               && strstr (j, "\"validation_invalid\":0") && strstr (j, "\"tasks_per_s\""));
    s_clear (&sent);
    sch_core_destroy (&core);
}

//  --------------------------------------------------------------------------
//  The suite: each class's self-test, then each rule above by name
//  (build/test/test_scheduler --list names them, --test NAME runs one)

#define RULE(name) \
    static void s_rule_##name (bool verbose) { (void) verbose; test_##name (); }
RULE (least_loaded)
RULE (type_filter_and_no_peers)
RULE (queue_release)
RULE (queue_full)
RULE (peer_loss)
RULE (attempt_timeout)
RULE (same_peer_retry)
RULE (region_first)
RULE (max_attempts)
RULE (deadline)
RULE (settlement)
RULE (billing_cap)
RULE (error_result)
RULE (gateway_down)
RULE (peer_refresh)
RULE (bad_input)
RULE (expected_finish)
RULE (resources)
RULE (fairness)
RULE (gamer_queue_max)
RULE (deadline_bounds)
RULE (cache)
RULE (tiles)
RULE (tiles_quorum)
RULE (spot_agree)
RULE (spot_cheat_banned)
RULE (banned_result_refused)
RULE (quorum)
RULE (billing_reference)
RULE (funds)
RULE (funds_floor)
RULE (stats)

static const p2c_test_entry_t s_tests [] = {
    { "sch_config", sch_config_test },
    { "sch_heap", sch_heap_test },
    { "sch_index", sch_index_test },
    { "sch_cache", sch_cache_test },
    { "sch_billing", sch_billing_test },
    { "sch_payouts", sch_payouts_test },
    { "sch_outbox", sch_outbox_test },
    { "sch_refs", sch_refs_test },
    { "sch_tasks", sch_tasks_test },
    { "sch_queues", sch_queues_test },
    { "sch_peers", sch_peers_test },
    { "sch_gateways", sch_gateways_test },
    { "sch_gamers", sch_gamers_test },
    { "sch_validation", sch_validation_test },
    { "sch_reputation", sch_reputation_test },
    { "sch_stats", sch_stats_test },
    { "sch_alerts", sch_alerts_test },
    { "sch_hook", sch_hook_test },
    { "sch_tiles", sch_tiles_test },
    { "sch_frames", sch_frames_test },
    { "sch_core", sch_core_test },
    { "least_loaded", s_rule_least_loaded },
    { "type_filter_and_no_peers", s_rule_type_filter_and_no_peers },
    { "queue_release", s_rule_queue_release },
    { "queue_full", s_rule_queue_full },
    { "peer_loss", s_rule_peer_loss },
    { "attempt_timeout", s_rule_attempt_timeout },
    { "same_peer_retry", s_rule_same_peer_retry },
    { "region_first", s_rule_region_first },
    { "max_attempts", s_rule_max_attempts },
    { "deadline", s_rule_deadline },
    { "settlement", s_rule_settlement },
    { "billing_cap", s_rule_billing_cap },
    { "error_result", s_rule_error_result },
    { "gateway_down", s_rule_gateway_down },
    { "peer_refresh", s_rule_peer_refresh },
    { "bad_input", s_rule_bad_input },
    { "expected_finish", s_rule_expected_finish },
    { "resources", s_rule_resources },
    { "fairness", s_rule_fairness },
    { "gamer_queue_max", s_rule_gamer_queue_max },
    { "deadline_bounds", s_rule_deadline_bounds },
    { "cache", s_rule_cache },
    { "tiles", s_rule_tiles },
    { "tiles_quorum", s_rule_tiles_quorum },
    { "spot_agree", s_rule_spot_agree },
    { "spot_cheat_banned", s_rule_spot_cheat_banned },
    { "banned_result_refused", s_rule_banned_result_refused },
    { "quorum", s_rule_quorum },
    { "billing_reference", s_rule_billing_reference },
    { "funds", s_rule_funds },
    { "funds_floor", s_rule_funds_floor },
    { "stats", s_rule_stats },
    { NULL, NULL }
};

int
main (int argc, char **argv)
{
    return p2c_test_main (argc, argv, "scheduler", s_tests);
}
