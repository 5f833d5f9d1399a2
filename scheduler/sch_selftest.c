/*  Support for the self-tests of the scheduler core's files: a core with
    the settings of the rule tests, a capture of what it sends, and the
    messages that gateways and the ledger send it. Only self-tests call it. */
#include "sch_internal.h"
#include "p2c_test.h"

static void
s_capture (void *arg, const char *dest, const P2c2r__Internal *msg)
{
    sch_selftest_t *cap = (sch_selftest_t *) arg;
    cap->sent++;
    if (msg->msg_case < SCH_SELFTEST_CASES)
        cap->count [msg->msg_case]++;
    cap->last_case = msg->msg_case;
    snprintf (cap->last_dest, sizeof cap->last_dest, "%s", dest);
    const char *task_id = "";
    if (msg->msg_case == P2C2R__INTERNAL__MSG_TASK_ASSIGN) {
        task_id = msg->task_assign->assign->task_id;
        cap->last_attempt = msg->task_assign->assign->attempt;
    }
    else
    if (msg->msg_case == P2C2R__INTERNAL__MSG_DELIVER) {
        task_id = msg->deliver->reply->task_id;
        cap->last_ok = msg->deliver->reply->ok;
        snprintf (cap->last_code, sizeof cap->last_code, "%s",
                  msg->deliver->reply->error_code ? msg->deliver->reply->error_code : "");
    }
    else
    if (msg->msg_case == P2C2R__INTERNAL__MSG_SETTLE_REQUEST) {
        task_id = msg->settle_request->task_id;
        cap->last_gamer = msg->settle_request->gamer_account;
    }
    snprintf (cap->last_task, sizeof cap->last_task, "%s", task_id);
}

sch_core_t *
sch_selftest_core (sch_selftest_t *cap, const sch_core_config_t *config)
{
    memset (cap, 0, sizeof *cap);
    sch_core_config_t c;
    if (config)
        c = *config;
    else {
        sch_core_config_default (&c);
        c.validation = SCH_VAL_NONE;
        c.funds_check = false;
        c.cache_max_entries = 0;
        c.bill_max_permille = 0;        //  bill the measured time
    }
    return sch_core_new (&c, s_capture, cap);
}

void
sch_selftest_peer_up (sch_core_t *core, const char *gw, uint64_t conn, uint32_t slots,
                      const char *type, int64_t account, int64_t now_us)
{
    char buf [128];
    snprintf (buf, sizeof buf, "%s", type);
    char *types [8];
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r (buf, ",", &save); t && n < 8; t = strtok_r (NULL, ",", &save))
        types [n++] = t;
    P2c2r__Session session = P2C2R__SESSION__INIT;
    session.gateway = (char *) gw;
    session.conn = conn;
    P2c2r__Capabilities caps = P2C2R__CAPABILITIES__INIT;
    caps.slots = slots;
    caps.n_task_types = n;
    caps.task_types = types;
    P2c2r__PeerUp up = P2C2R__PEER_UP__INIT;
    up.session = &session;
    up.peer_id = "selftest";
    up.account_id = account;
    up.capabilities = &caps;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_PEER_UP;
    msg.peer_up = &up;
    sch_core_handle (core, gw, &msg, now_us);
}

void
sch_selftest_submit (sch_core_t *core, const char *gw, const char *id, const char *type,
                     int64_t account, int64_t now_us)
{
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = (char *) gw;
    gamer.conn = 1;
    P2c2r__Submit submit = P2C2R__SUBMIT__INIT;
    submit.task_type = (char *) type;
    submit.params_json = "{\"n\":1}";
    submit.client_ref = (char *) id;        //  one per task: a repeat would join it
    P2c2r__TaskSubmit ts = P2C2R__TASK_SUBMIT__INIT;
    ts.task_id = (char *) id;
    ts.gamer = &gamer;
    ts.gamer_account = account;
    ts.submit = &submit;
    ts.deadline_ms = 30000;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_SUBMIT;
    msg.task_submit = &ts;
    sch_core_handle (core, gw, &msg, now_us);
}

//  The result of the task's current attempt from the peer that runs it, of
//  the catalogue's current kernel version for its type
void
sch_selftest_result (sch_core_t *core, const char *id, const char *result_json,
                     uint64_t compute_us, int64_t now_us)
{
    sch_task_t *task = (sch_task_t *) zhashx_lookup (core->tasks, id);
    assert (task);
    char current [SCH_MAX_SHORT];
    p2c_task_version_current (sch_type (task->type), current, sizeof current);
    sch_selftest_result_version (core, id, result_json, compute_us, current, now_us);
}

void
sch_selftest_result_version (sch_core_t *core, const char *id, const char *result_json,
                             uint64_t compute_us, const char *version, int64_t now_us)
{
    sch_task_t *task = (sch_task_t *) zhashx_lookup (core->tasks, id);
    assert (task && task->peer);
    P2c2r__Session session = P2C2R__SESSION__INIT;
    session.gateway = task->peer->gw->id;
    session.conn = task->peer->conn;
    P2c2r__PeerResult res = P2C2R__PEER_RESULT__INIT;
    res.task_id = (char *) id;
    res.ok = true;
    res.compute_us = compute_us;
    res.attempt = task->attempts;
    res.kernel_version = (char *) version;
    res.result_json = (char *) result_json;
    P2c2r__TaskResult tr = P2C2R__TASK_RESULT__INIT;
    tr.peer = &session;
    tr.result = &res;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_RESULT;
    msg.task_result = &tr;
    sch_core_handle (core, session.gateway, &msg, now_us);
}

void
sch_selftest_ack (sch_core_t *core, const char *id, bool ok, int64_t now_us)
{
    P2c2r__SettleAck ack = P2C2R__SETTLE_ACK__INIT;
    ack.task_id = (char *) id;
    ack.ok = ok;
    ack.gamer_charge_pico = 10;
    ack.peer_earning_pico = 5;
    ack.error = ok ? "" : "refused";
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_ACK;
    msg.settle_ack = &ack;
    sch_core_handle (core, "ledger-1", &msg, now_us);
}

void
sch_selftest_balance (sch_core_t *core, int64_t account, int64_t balance_pico, bool disabled,
                      int64_t now_us)
{
    P2c2r__BalanceUpdate bu = P2C2R__BALANCE_UPDATE__INIT;
    bu.account_id = account;
    bu.balance_pico = balance_pico;
    bu.disabled = disabled;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_BALANCE_UPDATE;
    msg.balance_update = &bu;
    sch_core_handle (core, "ledger-1", &msg, now_us);
}

sch_task_t *
sch_selftest_task (sch_core_t *core, const char *id)
{
    return (sch_task_t *) zhashx_lookup (core->tasks, id);
}
