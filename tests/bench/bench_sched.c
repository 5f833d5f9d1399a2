/*  bench_sched: the cost of one assignment in the scheduler's core at 1k,
    10k and 100k registered peers. Each peer has 4 slots and every type;
    half the slots are busy, so the indexes are realistic. One round: a
    submit (timed: choice and TaskAssign), then the peer's result and the
    ledger's ack (not timed) free the slot again. Prints
    "sched_assign_ns_<N> <median of 3 runs>". Sends go nowhere. */
#include "sch_core.h"
#include "p2c_log.h"
#include "p2c_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS 20000

typedef struct {
    char gw [64];               //  where the last TaskAssign went
    uint64_t conn;
    uint32_t attempt;
} last_t;

static void
s_send (void *arg, const char *dest, const P2c2r__Internal *msg)
{
    (void) dest;
    last_t *last = (last_t *) arg;
    if (msg->msg_case == P2C2R__INTERNAL__MSG_TASK_ASSIGN) {
        snprintf (last->gw, sizeof last->gw, "%s", msg->task_assign->peer->gateway);
        last->conn = msg->task_assign->peer->conn;
        last->attempt = msg->task_assign->assign->attempt;
    }
}

static int64_t
s_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
s_submit (sch_core_t *core, const char *id, int64_t now)
{
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = "gw-gamers";
    gamer.conn = 1;
    P2c2r__Submit submit = P2C2R__SUBMIT__INIT;
    submit.task_type = "encryption";
    submit.params_json = "{\"data\":\"x\",\"iterations\":10}";
    P2c2r__TaskSubmit ts = P2C2R__TASK_SUBMIT__INIT;
    ts.task_id = (char *) id;
    ts.gamer = &gamer;
    ts.gamer_account = 7;
    ts.submit = &submit;
    ts.deadline_ms = 30000;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_SUBMIT;
    msg.task_submit = &ts;
    sch_core_handle (core, "gw-gamers", &msg, now);
}

static void
s_finish (sch_core_t *core, const char *id, last_t *last, int64_t now)
{
    P2c2r__Session session = P2C2R__SESSION__INIT;
    session.gateway = last->gw;
    session.conn = last->conn;
    P2c2r__PeerResult res = P2C2R__PEER_RESULT__INIT;
    res.task_id = (char *) id;
    res.ok = true;
    res.result_json = "{\"hash\":\"ab\"}";
    res.compute_us = 100 + (uint64_t) (rand () % 1000);
    res.attempt = last->attempt;
    res.kernel_version = "1";
    P2c2r__TaskResult tr = P2C2R__TASK_RESULT__INIT;
    tr.peer = &session;
    tr.result = &res;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_RESULT;
    msg.task_result = &tr;
    sch_core_handle (core, last->gw, &msg, now);
    P2c2r__SettleAck ack = P2C2R__SETTLE_ACK__INIT;
    ack.task_id = (char *) id;
    ack.ok = true;
    P2c2r__Internal am = P2C2R__INTERNAL__INIT;
    am.msg_case = P2C2R__INTERNAL__MSG_SETTLE_ACK;
    am.settle_ack = &ack;
    sch_core_handle (core, "ledger", &am, now);
}

//  One run: ns per assignment at n peers
static double
s_run (size_t n)
{
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.funds_check = false;
    config.cache_max_entries = 0;       //  every submit must be assigned
    config.validation = SCH_VAL_NONE;
    config.queue_max = 10000000;
    last_t last;
    memset (&last, 0, sizeof last);
    sch_core_t *core = sch_core_new (&config, s_send, &last);
    char *types [] = { "encryption", "compression", "ai_dialogue", "ai_pathfinding" };
    int64_t now = 1000000;
    for (size_t i = 0; i < n; i++) {
        char gw [32];
        snprintf (gw, sizeof gw, "gw-%zu", i % 16);
        P2c2r__Session session = P2C2R__SESSION__INIT;
        session.gateway = gw;
        session.conn = i;
        P2c2r__Capabilities caps = P2C2R__CAPABILITIES__INIT;
        caps.slots = 4;
        caps.n_task_types = 4;
        caps.task_types = types;
        P2c2r__PeerUp up = P2C2R__PEER_UP__INIT;
        up.session = &session;
        up.peer_id = "bench";
        up.account_id = (int64_t) i + 100;
        up.capabilities = &caps;
        P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
        msg.msg_case = P2C2R__INTERNAL__MSG_PEER_UP;
        msg.peer_up = &up;
        sch_core_handle (core, gw, &msg, now);
    }
    //  half of all slots busy with tasks that stay
    char id [32];
    for (size_t i = 0; i < n * 2; i++) {
        snprintf (id, sizeof id, "busy-%zu", i);
        s_submit (core, id, now);
    }
    int64_t spent = 0;
    for (int r = 0; r < ROUNDS; r++) {
        snprintf (id, sizeof id, "t-%d", r);
        now += 10;
        int64_t t0 = s_ns ();
        s_submit (core, id, now);
        spent += s_ns () - t0;
        s_finish (core, id, &last, now + 5);
    }
    if (sch_core_stats (core)->assigned != n * 2 + ROUNDS)
        fprintf (stderr, "bench_sched: not every task was assigned\n");
    sch_core_destroy (&core);
    return (double) spent / ROUNDS;
}

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

int
main (void)
{
    p2c_log_init ("bench", false);
    srand (1);
    const size_t sizes [3] = { 1000, 10000, 100000 };
    const char *names [3] = { "1k", "10k", "100k" };
    for (int s = 0; s < 3; s++) {
        double runs [3];
        for (int k = 0; k < 3; k++)
            runs [k] = s_run (sizes [s]);
        qsort (runs, 3, sizeof (double), s_cmp);
        printf ("sched_assign_ns_%s %.0f\n", names [s], runs [1]);
        fflush (stdout);
    }
    return 0;
}
