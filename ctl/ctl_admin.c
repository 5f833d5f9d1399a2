/*  p2c2r-ctl's writer: every write is an AdminRequest to the ledger (the
    only writer of PostgreSQL), sent through the broker as a node of service
    "ctl"; we wait for the AdminReply with the same corr, or time out. */
#include "ctl.h"
#include "p2c_node.h"
#include "p2c_keys.h"
#include "p2c_time.h"

#include <czmq.h>

//  How long we wait for the broker's view before deciding no ledger is there
#define CTL_NO_LEDGER_MS 1500

//  The bus identity of the writes, applied once (p2c_node_setup); unset in
//  unit tests, which talk plain to a broker of their own
static struct {
    bool set;                   //  ctl_admin_keys was called
    bool curve;
    const char *dir, *name;
} s_keys;

void
ctl_admin_keys (bool curve, const char *dir, const char *name)
{
    s_keys.set = true;
    s_keys.curve = curve;
    s_keys.dir = dir;
    s_keys.name = name;
}

p2c_node_t *
ctl_bus_node (const char *broker)
{
    if (s_keys.set) {
        //  The operator key is the ctl node's pair: the broker lets only a
        //  listed key in as ctl and stamps what it forwards with the key's
        //  name, which the admin log keeps as "who". A key others could
        //  read proves nothing of who we are: refused before anything is
        //  sent (and again at every try: set stays)
        if (s_keys.curve && p2c_keys_private (s_keys.dir, s_keys.name) != 0) {
            fprintf (stderr, "p2c2r-ctl: not using the operator key %s/%s.key_secret (see"
                     " above); nothing was sent, nothing was written\n", s_keys.dir,
                     s_keys.name);
            return NULL;
        }
        s_keys.set = false;
        if (p2c_node_setup (s_keys.curve, s_keys.dir, s_keys.name) != 0)
            return NULL;
    }
    p2c_node_t *node = p2c_node_new (broker, "ctl", NULL);
    if (!node)
        fprintf (stderr, "p2c2r-ctl: cannot open a connection to the broker %s\n", broker);
    return node;
}

int
ctl_admin_call (const char *broker, int64_t timeout_ms, const char *command, json_t *args,
                json_t **result_p)
{
    *result_p = NULL;
    p2c_node_t *node = ctl_bus_node (broker);
    if (!node)
        return CTL_EXIT_ERROR;
    char *args_text = json_dumps (args, JSON_COMPACT);
    uint64_t corr = ((uint64_t) randof (0x7fffffff) << 20) ^ (uint64_t) p2c_now_us ();
    P2c2r__AdminRequest req = P2C2R__ADMIN_REQUEST__INIT;
    req.corr = corr;
    req.command = (char *) command;
    req.args_json = args_text ? args_text : "{}";
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_ADMIN_REQUEST;
    msg.admin_request = &req;

    int status = CTL_EXIT_ERROR;
    bool sent = false, answered = false, no_ledger = false;
    int64_t start = p2c_now_ms ();
    zpoller_t *poller = zpoller_new (p2c_node_sock (node), NULL);
    while (!answered && !zsys_interrupted) {
        int64_t now = p2c_now_ms ();
        if (now - start >= timeout_ms)
            break;
        //  The broker names the nodes it has right after our hello. The
        //  request goes only once it names a ledger: sent before, it would
        //  be dropped, and it cannot be sent twice (a credit is not
        //  idempotent). A ledger that has just started is waited for.
        if (!sent && p2c_node_service_count (node, "ledger") > 0) {
            p2c_node_send (node, "ledger", &msg);
            sent = true;
        }
        if (!sent && now - start >= CTL_NO_LEDGER_MS && p2c_node_broker_alive (node)) {
            no_ledger = true;
            break;
        }
        zpoller_wait (poller, sent ? 100 : 10);
        p2c_node_cron (node);
        char *sender = NULL;
        P2c2r__Internal *got;
        while (!answered && (got = p2c_node_recv (node, &sender))) {
            if (got->msg_case == P2C2R__INTERNAL__MSG_ADMIN_REPLY && got->admin_reply
                && got->admin_reply->corr == corr) {
                answered = true;
                P2c2r__AdminReply *r = got->admin_reply;
                if (r->ok) {
                    json_error_t err;
                    *result_p = json_loads (r->result_json ? r->result_json : "{}", 0, &err);
                    if (!*result_p) {
                        fprintf (stderr, "p2c2r-ctl: the ledger's answer is not JSON\n");
                        status = CTL_EXIT_ERROR;
                    }
                    else
                        status = CTL_EXIT_OK;
                }
                else {
                    fprintf (stderr, "p2c2r-ctl: the ledger refused (%s): %s\n",
                             r->code && *r->code ? r->code : "refused",
                             r->message ? r->message : "");
                    status = CTL_EXIT_VIOLATION;
                }
            }
            p2c_msg_internal_free (&got);
            zstr_free (&sender);
        }
    }
    zpoller_destroy (&poller);
    free (args_text);
    if (no_ledger)
        fprintf (stderr, "p2c2r-ctl: no ledger is connected to the broker %s"
                 " (start p2c2r-ledger); nothing was written\n", broker);
    else
    if (!sent && !p2c_node_broker_alive (node))
        fprintf (stderr, "p2c2r-ctl: no answer from the broker %s within %lld ms (is it"
                 " running?); nothing was sent, nothing was written\n", broker,
                 (long long) timeout_ms);
    else
    if (!sent)
        fprintf (stderr, "p2c2r-ctl: the broker %s named no ledger within %lld ms;"
                 " nothing was written\n", broker, (long long) timeout_ms);
    else
    if (!answered)
        fprintf (stderr, "p2c2r-ctl: no answer from a ledger through the broker %s within"
                 " %lld ms (is the broker running?); the command may not have been applied,"
                 " check before retrying\n", broker, (long long) timeout_ms);
    p2c_node_destroy (&node);
    return status;
}
