/*  bus_probe: a node that tries what an intruder on the bus would, for
    tests/e2e/test_bus_auth.sh (it lives with the bench tools so that the
    one Makefile rule builds it). It joins the broker with the key it is
    given (or none), announces a service, and sends one kind of message
    to the ledger every --every-ms for --for-ms: an admin credit or
    rotate-key, a forged settlement or reversal; or only listens (--send
    none), counting the auth requests a posing "ledger" would get. Prints
    what it saw, one "key value" per line at the end:
      reached 0|1        the broker's beats arrived (the handshake passed)
      sent N             messages queued
      admin_ok N         AdminReplies with ok (a write that went through)
      admin_refused N    AdminReplies without ok
      auth_requests N    AuthRequests that reached us */
#include "p2c_cfg.h"
#include "p2c_log.h"
#include "p2c_node.h"
#include "p2c_time.h"

#include <czmq.h>

static void
s_send (p2c_node_t *node, const char *what, long long account, long long peer,
        long long amount, int i)
{
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    P2c2r__AdminRequest admin = P2C2R__ADMIN_REQUEST__INIT;
    P2c2r__SettleRequest settle = P2C2R__SETTLE_REQUEST__INIT;
    P2c2r__SettleReverse reverse = P2C2R__SETTLE_REVERSE__INIT;
    char args [160], task [64];
    snprintf (task, sizeof task, "probe-%d-%d", (int) getpid (), i);
    if (!strcmp (what, "credit") || !strcmp (what, "rotate-key")) {
        if (!strcmp (what, "credit"))
            snprintf (args, sizeof args, "{\"account_id\":%lld,\"amount_pico\":%lld}", account,
                      amount);
        else
            snprintf (args, sizeof args, "{\"account_id\":%lld}", account);
        admin.corr = (uint64_t) i + 1;
        admin.command = (char *) what;
        admin.args_json = args;
        msg.msg_case = P2C2R__INTERNAL__MSG_ADMIN_REQUEST;
        msg.admin_request = &admin;
    }
    else
    if (!strcmp (what, "settle")) {
        settle.task_id = task;
        settle.gamer_account = account;
        settle.peer_account = peer;
        settle.task_type = "encryption";
        settle.billed_us = 3600000000ULL;
        settle.compute_us = settle.billed_us;
        settle.observed_us = settle.billed_us;
        msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_REQUEST;
        msg.settle_request = &settle;
    }
    else {
        reverse.task_id = task;
        reverse.reason = "probe";
        msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_REVERSE;
        msg.settle_reverse = &reverse;
    }
    p2c_node_send (node, "ledger", &msg);
}

typedef struct {
    char *broker, *keys, *key_name, *service, *send;
    long long account, peer, amount, every_ms, for_ms;
} s_settings_t;

#define S_F(field) P2C_CFG_FIELD (s_settings_t, field)
static const p2c_cfg_t s_table [] = {
    { "broker", P2C_CFG_STR, S_F (broker), "tcp://127.0.0.1:5555", .help = "broker endpoint" },
    { "keys", P2C_CFG_STR, S_F (keys), "var/keys", .help = "key directory" },
    { "key-name", P2C_CFG_STR, S_F (key_name), "",
      .help = "our pair in --keys; empty: no key at all (plain)" },
    { "service", P2C_CFG_STR, S_F (service), "gateway", .help = "the service we announce" },
    { "send", P2C_CFG_STR, S_F (send), "none",
      .help = "credit, rotate-key, settle, reverse or none" },
    { "account", P2C_CFG_LLONG, S_F (account), "0", 0, 1LL << 62,
      .help = "the account it targets" },
    { "peer", P2C_CFG_LLONG, S_F (peer), "0", 0, 1LL << 62,
      .help = "settle: the peer account paid" },
    { "amount-pico", P2C_CFG_LLONG, S_F (amount), "1000000000000000000", 0, 1LL << 62,
      .help = "credit: how much" },
    { "every-ms", P2C_CFG_LLONG, S_F (every_ms), "500", 10, 600000, .help = "send this often" },
    { "for-ms", P2C_CFG_LLONG, S_F (for_ms), "3000", 100, 600000, .help = "for this long" },
    { .name = NULL }
};
#undef S_F
static const p2c_cfg_spec_t s_spec = { "bus_probe", "[options]", s_table, NULL };

int
main (int argc, char *argv [])
{
    s_settings_t cfg;
    bool verbose = false;
    int rc = p2c_cfg_parse (&s_spec, &cfg, &argc, argv, &verbose);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    char *broker = cfg.broker, *keys = cfg.keys, *key_name = cfg.key_name;
    char *service = cfg.service, *send = cfg.send;
    long long account = cfg.account, peer = cfg.peer, amount = cfg.amount;
    long long every_ms = cfg.every_ms, for_ms = cfg.for_ms;
    p2c_log_init ("bus_probe", verbose);
    zsys_init ();
    zsys_set_logstream (NULL);
    if (*key_name && p2c_node_set_keys (keys, key_name) != 0)
        return 2;
    p2c_node_t *node = p2c_node_new (broker, service, NULL);
    if (!node)
        return 2;
    bool reached = false;
    int sent = 0, admin_ok = 0, admin_refused = 0, auth_requests = 0;
    zpoller_t *poller = zpoller_new (p2c_node_sock (node), NULL);
    int64_t start = p2c_now_ms (), next = start;
    while (p2c_now_ms () - start < for_ms && !zsys_interrupted) {
        int64_t now = p2c_now_ms ();
        //  Sends only once the broker answered (or right away without it,
        //  to show that nothing gets through a refused handshake)
        if (strcmp (send, "none") && now >= next) {
            s_send (node, send, account, peer, amount, sent);
            sent++;
            next = now + every_ms;
        }
        zpoller_wait (poller, 20);
        p2c_node_cron (node);
        char *sender = NULL;
        P2c2r__Internal *msg;
        while ((msg = p2c_node_recv (node, &sender))) {
            if (msg->msg_case == P2C2R__INTERNAL__MSG_ADMIN_REPLY) {
                if (msg->admin_reply->ok)
                    admin_ok++;
                else
                    admin_refused++;
            }
            else
            if (msg->msg_case == P2C2R__INTERNAL__MSG_AUTH_REQUEST)
                auth_requests++;
            p2c_msg_internal_free (&msg);
            zstr_free (&sender);
        }
        reached = reached || p2c_node_broker_alive (node);
    }
    printf ("reached %d\nsent %d\nadmin_ok %d\nadmin_refused %d\nauth_requests %d\n",
            reached, sent, admin_ok, admin_refused, auth_requests);
    zpoller_destroy (&poller);
    p2c_node_destroy (&node);
    p2c_cfg_free (s_table, &cfg);
    return 0;
}
