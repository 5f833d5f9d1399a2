/*  ledger_load: a load generator that stands in for the scheduler in front
    of the real ledger. A node of service "scheduler" on the broker: it
    registers gamers and peers (AuthRequest, open), then sends SettleRequests
    for N tasks with at most WINDOW unacknowledged, resending any that stays
    unacknowledged for RETRY ms (as the scheduler does), until every task is
    acked. It checks each ack's amounts against p2c_money_split at the rates
    given, counts duplicate acks (retries and --dup make them) and the
    BalanceUpdates the ledger sends, and prints one summary line:
      ledger_load: tasks=N acked=N bad=0 rejected=0 resent=R dup_acks=D
                   balance_updates=B seconds=S settlements_per_s=X
                   latency_p50_ms=L latency_p99_ms=M
    The latency is from the (last) send of a request to its first ack; with
    --window 1 it is what one settlement costs a task.
    Exit 0 when every task was acked ok with the right amounts.
    Billed times are pseudo-random from --seed and the task index, so a rerun
    with the same --prefix replays exactly the same requests. */
#include "p2c_cfg.h"
#include "p2c_log.h"
#include "p2c_money.h"
#include "p2c_node.h"
#include "p2c_time.h"

#include <czmq.h>
#include <stdlib.h>

typedef struct {
    int64_t sent_ms;            //  0: never sent
    int64_t sent_us;            //  of the last send, for the latency
    bool acked;
} s_task_t;

//  A reproducible billed time for task i: 1 us .. 2 s, some exact hours'
//  fractions where rounding matters
static uint64_t
s_billed (uint64_t seed, uint64_t i)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + i * 0xBF58476D1CE4E5B9ULL + 1;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 29;
    return 1 + x % 2000000;
}

static int
s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static P2c2r__Internal *
s_wait_msg (p2c_node_t *node, char **sender_p, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (p2c_node_sock (node), NULL);
    int64_t end = p2c_now_ms () + timeout_ms;
    P2c2r__Internal *msg = NULL;
    while (!msg && p2c_now_ms () < end && !zsys_interrupted) {
        msg = p2c_node_recv (node, sender_p);
        if (!msg) {
            p2c_node_cron (node);
            zpoller_wait (poller, 50);
        }
    }
    zpoller_destroy (&poller);
    return msg;
}

//  Registers an account under open registration; its id, or 0
static int64_t
s_auth (p2c_node_t *node, const char *role, const char *name, uint64_t corr, uint64_t *updates)
{
    for (int attempt = 0; attempt < 30 && !zsys_interrupted; attempt++) {
        P2c2r__AuthRequest req = P2C2R__AUTH_REQUEST__INIT;
        req.corr = corr;
        req.role = (char *) role;
        req.name = (char *) name;
        req.open = true;
        P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
        msg.msg_case = P2C2R__INTERNAL__MSG_AUTH_REQUEST;
        msg.auth_request = &req;
        p2c_node_send (node, "ledger", &msg);
        int64_t end = p2c_now_ms () + 1000;
        while (p2c_now_ms () < end) {
            char *sender = NULL;
            P2c2r__Internal *got = s_wait_msg (node, &sender, 200);
            zstr_free (&sender);
            if (!got)
                continue;
            int64_t id = -1;
            if (got->msg_case == P2C2R__INTERNAL__MSG_AUTH_REPLY && got->auth_reply->corr == corr)
                id = got->auth_reply->ok ? got->auth_reply->account_id : 0;
            else
            if (got->msg_case == P2C2R__INTERNAL__MSG_BALANCE_UPDATE)
                (*updates)++;
            p2c_msg_internal_free (&got);
            if (id >= 0)
                return id;
        }
    }
    return 0;
}

static void
s_send_settle (p2c_node_t *node, const char *prefix, uint64_t seed, size_t i,
               const int64_t *gamers, size_t ngamers, const int64_t *peers, size_t npeers)
{
    char id [96];
    snprintf (id, sizeof id, "%s-%zu", prefix, i);
    P2c2r__SettleRequest req = P2C2R__SETTLE_REQUEST__INIT;
    req.task_id = id;
    req.gamer_account = gamers [i % ngamers];
    req.peer_account = peers [(i / ngamers) % npeers];
    req.task_type = "encryption";
    req.billed_us = s_billed (seed, i);
    req.compute_us = req.billed_us;
    req.observed_us = req.billed_us + 5;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_REQUEST;
    msg.settle_request = &req;
    p2c_node_send (node, "ledger", &msg);
}

typedef struct {
    char *broker;
    long long tasks;
    long long ngamers;
    long long npeers;
    long long window;
    long long retry_ms;
    char *prefix;
    long long seed;
    bool dup;
    long long timeout_s;
    long long gamer_rate;
    long long peer_rate;
    long long fee_bp;
    p2c_node_bus_t bus;         //  its gateway and scheduler pairs (key names fixed)
} s_settings_t;

#define S_F(field) P2C_CFG_FIELD (s_settings_t, field)
static const p2c_cfg_t s_table [] = {
    { "keys", P2C_CFG_STR, S_F (bus.keys), "var/keys",
      .help = "key directory of the bus: its gateway and scheduler pairs" },
    { "curve", P2C_CFG_BOOL, S_F (bus.curve), "true", .help = "CURVE to the broker" },
    { "broker", P2C_CFG_STR, S_F (broker), "tcp://127.0.0.1:5555",
      .help = "broker endpoint" },
    { "tasks", P2C_CFG_LLONG, S_F (tasks), "100000", 1, 100000000,
      .help = "tasks to settle" },
    { "gamers", P2C_CFG_LLONG, S_F (ngamers), "50", 1, 100000,
      .help = "gamer accounts" },
    { "peers", P2C_CFG_LLONG, S_F (npeers), "50", 1, 100000,
      .help = "peer accounts" },
    { "window", P2C_CFG_LLONG, S_F (window), "20000", 1, 1000000,
      .help = "most unacked requests" },
    { "retry-ms", P2C_CFG_LLONG, S_F (retry_ms), "3000", 10, 600000,
      .help = "resend a request unacked this long" },
    { "prefix", P2C_CFG_STR, S_F (prefix), "load",
      .help = "task id prefix (and account names)" },
    { "seed", P2C_CFG_LLONG, S_F (seed), "1", 0, 1000000000,
      .help = "seed of the billed times" },
    { "dup", P2C_CFG_BOOL, S_F (dup), "false",
      .help = "send every request twice" },
    { "timeout-s", P2C_CFG_LLONG, S_F (timeout_s), "300", 1, 3600,
      .help = "give up after this long" },
    { "gamer-rate-pico-per-hour", P2C_CFG_LLONG, S_F (gamer_rate), "10000000000", 0,
      1000000000000000LL, .help = "rate the acks are checked against" },
    { "peer-rate-pico-per-hour", P2C_CFG_LLONG, S_F (peer_rate), "150000000000", 0,
      1000000000000000LL, .help = "rate the acks are checked against" },
    { "fee-bp", P2C_CFG_LLONG, S_F (fee_bp), "1000", 0, 10000,
      .help = "fee the acks are checked against" },
    { .name = NULL }
};
#undef S_F

static const p2c_cfg_spec_t s_spec = { "ledger_load", "[options]", s_table, NULL };

int
main (int argc, char *argv [])
{
    s_settings_t cfg;
    bool verbose = false;
    int rc = p2c_cfg_parse (&s_spec, &cfg, &argc, argv, &verbose);
    if (rc != 0) {
        p2c_cfg_free (s_table, &cfg);
        return rc > 0 ? 0 : 2;
    }
    p2c_log_init ("ledger_load", verbose);
    zsys_init ();
    zsys_set_logstream (NULL);
    p2c_rates_t rates = { cfg.gamer_rate, cfg.peer_rate, (int32_t) cfg.fee_bp };
    //  Registration is a gateway's to ask, settlement a scheduler's
    //  (p2c_auth.h): one node of each, each with its service's key
    p2c_node_t *node = p2c_node_setup (cfg.bus.curve, cfg.bus.keys, "scheduler") == 0
                     ? p2c_node_new (cfg.broker, "scheduler", NULL) : NULL;
    p2c_node_t *gw = node && p2c_node_setup (cfg.bus.curve, cfg.bus.keys, "gateway") == 0
                   ? p2c_node_new (cfg.broker, "gateway", NULL) : NULL;
    if (!gw) {
        p2c_node_destroy (&node);
        p2c_cfg_free (s_table, &cfg);
        return 2;
    }
    uint64_t updates = 0;
    int64_t *gamers = (int64_t *) calloc ((size_t) cfg.ngamers, sizeof (int64_t));
    int64_t *peers = (int64_t *) calloc ((size_t) cfg.npeers, sizeof (int64_t));
    bool ready = true;
    for (long long i = 0; i < cfg.ngamers && ready; i++) {
        char name [96];
        snprintf (name, sizeof name, "%s-gamer-%lld", cfg.prefix, i);
        gamers [i] = s_auth (gw, "gamer", name, (uint64_t) i + 1, &updates);
        ready = gamers [i] > 0;
    }
    for (long long i = 0; i < cfg.npeers && ready; i++) {
        char name [96];
        snprintf (name, sizeof name, "%s-peer-%lld", cfg.prefix, i);
        peers [i] = s_auth (gw, "peer", name, (uint64_t) (cfg.ngamers + i + 1), &updates);
        ready = peers [i] > 0;
    }
    p2c_node_destroy (&gw);
    if (!ready) {
        log_warn ("no ledger registered our accounts broker=%s", cfg.broker);
        free (gamers);
        free (peers);
        p2c_node_destroy (&node);
        p2c_cfg_free (s_table, &cfg);
        return 2;
    }
    size_t n = (size_t) cfg.tasks;
    s_task_t *state = (s_task_t *) calloc (n, sizeof (s_task_t));
    //  Outstanding task indices, oldest first (resent ones move to the end)
    size_t *ring = (size_t *) malloc ((size_t) cfg.window * sizeof (size_t));
    int64_t *lat = (int64_t *) malloc (n * sizeof (int64_t));    //  of acked cfg.tasks, us
    size_t nlat = 0;
    size_t head = 0, count = 0, next = 0, acked = 0;
    uint64_t bad = 0, rejected = 0, resent = 0, dup_acks = 0;
    int64_t start = p2c_now_ms ();
    int64_t deadline = start + cfg.timeout_s * 1000;
    zpoller_t *poller = zpoller_new (p2c_node_sock (node), NULL);
    int64_t cron_ms = 0;
    while (acked < n && p2c_now_ms () < deadline && !zsys_interrupted) {
        //  Fill the cfg.window
        while (count < (size_t) cfg.window && next < n) {
            s_send_settle (node, cfg.prefix, (uint64_t) cfg.seed, next, gamers, (size_t) cfg.ngamers,
                           peers, (size_t) cfg.npeers);
            if (cfg.dup)
                s_send_settle (node, cfg.prefix, (uint64_t) cfg.seed, next, gamers, (size_t) cfg.ngamers,
                               peers, (size_t) cfg.npeers);
            state [next].sent_us = p2c_now_us ();
            state [next].sent_ms = state [next].sent_us / 1000;
            ring [(head + count) % (size_t) cfg.window] = next;
            count++;
            next++;
        }
        //  Receive what is there
        char *sender = NULL;
        P2c2r__Internal *msg;
        int got = 0;
        while ((msg = p2c_node_recv (node, &sender))) {
            got++;
            if (msg->msg_case == P2C2R__INTERNAL__MSG_SETTLE_ACK) {
                P2c2r__SettleAck *ack = msg->settle_ack;
                size_t plen = strlen (cfg.prefix);
                const char *id = ack->task_id ? ack->task_id : "";
                char *end = NULL;
                unsigned long long i = strncmp (id, cfg.prefix, plen) || id [plen] != '-'
                                       ? n : strtoull (id + plen + 1, &end, 10);
                if (i >= n || !end || *end)
                    bad++;
                else
                if (state [i].acked)
                    dup_acks++;
                else
                if (!ack->ok) {
                    lat [nlat++] = p2c_now_us () - state [i].sent_us;
                    rejected++;
                    log_warn ("rejected task=%s error=%s", id, ack->error);
                    state [i].acked = true;
                    acked++;
                }
                else {
                    p2c_split_t want;
                    p2c_money_split (&rates, s_billed ((uint64_t) cfg.seed, i), &want);
                    if (ack->gamer_charge_pico != want.gamer_charge
                        || ack->peer_earning_pico != want.peer_earning
                        || ack->fee_pico != want.fee) {
                        bad++;
                        log_warn ("wrong amounts task=%s", id);
                    }
                    lat [nlat++] = p2c_now_us () - state [i].sent_us;
                    state [i].acked = true;
                    acked++;
                }
            }
            else
            if (msg->msg_case == P2C2R__INTERNAL__MSG_BALANCE_UPDATE)
                updates++;
            p2c_msg_internal_free (&msg);
            zstr_free (&sender);
        }
        //  Drop acked ones from the front; resend the stale
        int64_t now = p2c_now_ms ();
        size_t scan = count;
        for (size_t k = 0; k < scan && count > 0; k++) {
            size_t i = ring [head];
            if (state [i].acked) {
                head = (head + 1) % (size_t) cfg.window;
                count--;
                continue;
            }
            if (now - state [i].sent_ms < cfg.retry_ms)
                break;
            s_send_settle (node, cfg.prefix, (uint64_t) cfg.seed, i, gamers, (size_t) cfg.ngamers,
                           peers, (size_t) cfg.npeers);
            resent++;
            state [i].sent_ms = now;
            state [i].sent_us = p2c_now_us ();
            head = (head + 1) % (size_t) cfg.window;
            ring [(head + count - 1) % (size_t) cfg.window] = i;
        }
        if (now - cron_ms >= 100) {
            p2c_node_cron (node);
            cron_ms = now;
        }
        if (!got)
            zpoller_wait (poller, 20);
    }
    double seconds = (double) (p2c_now_ms () - start) / 1000.0;
    qsort (lat, nlat, sizeof (int64_t), s_cmp_i64);
    double p50 = nlat ? (double) lat [(nlat - 1) / 2] / 1000.0 : 0.0;
    double p99 = nlat ? (double) lat [(nlat - 1) * 99 / 100] / 1000.0 : 0.0;
    printf ("ledger_load: tasks=%zu acked=%zu bad=%llu rejected=%llu resent=%llu dup_acks=%llu"
            " balance_updates=%llu seconds=%.3f settlements_per_s=%.0f latency_p50_ms=%.3f"
            " latency_p99_ms=%.3f\n", n, acked,
            (unsigned long long) bad, (unsigned long long) rejected,
            (unsigned long long) resent, (unsigned long long) dup_acks,
            (unsigned long long) updates, seconds, seconds > 0 ? (double) acked / seconds : 0.0,
            p50, p99);
    fflush (stdout);
    int status = acked == n && bad == 0 && rejected == 0 ? 0 : 1;
    zpoller_destroy (&poller);
    free (lat);
    free (ring);
    free (state);
    free (gamers);
    free (peers);
    p2c_node_destroy (&node);
    p2c_cfg_free (s_table, &cfg);
    return status;
}
