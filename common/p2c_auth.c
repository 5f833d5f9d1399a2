/*  The authorization table of the bus (see p2c_auth.h). */
#include "p2c_auth.h"
#include "p2c_msg.h"
#include "p2c_test.h"

#include <string.h>

#define GW  P2C_ROLE_GATEWAY
#define SCH P2C_ROLE_SCHEDULER
#define LED P2C_ROLE_LEDGER
#define CTL P2C_ROLE_CTL
#define BRK P2C_ROLE_BROKER

typedef struct {
    int msg_case;               //  P2c2r__Internal's msg_case
    unsigned from;              //  roles that may send it
    unsigned to;                //  roles that may receive it
} s_rule_t;

//  The one table: every message type of proto/p2c2r.proto's Internal, who
//  sends it and who takes it (docs/internals.md). A type missing here is
//  refused everywhere. NodeHello goes to the broker only, never forwarded.
//  A type may have several rows (any one allows): p2c2r-ctl asks the
//  scheduler alone for its figures (`p2c2r-ctl alerts`).
static const s_rule_t s_rules [] = {
    { P2C2R__INTERNAL__MSG_AUTH_REQUEST,    GW,         LED },
    { P2C2R__INTERNAL__MSG_AUTH_REPLY,      LED,        GW },
    { P2C2R__INTERNAL__MSG_PEER_UP,         GW,         SCH },
    { P2C2R__INTERNAL__MSG_PEER_DOWN,       GW,         SCH },
    { P2C2R__INTERNAL__MSG_TASK_SUBMIT,     GW,         SCH },
    { P2C2R__INTERNAL__MSG_TASK_ASSIGN,     SCH,        GW },
    { P2C2R__INTERNAL__MSG_TASK_RESULT,     GW,         SCH },
    { P2C2R__INTERNAL__MSG_SETTLE_REQUEST,  SCH,        LED },
    { P2C2R__INTERNAL__MSG_SETTLE_ACK,      LED,        SCH | GW },
    { P2C2R__INTERNAL__MSG_SETTLE_REVERSE,  SCH,        LED },
    { P2C2R__INTERNAL__MSG_DELIVER,         SCH,        GW },
    { P2C2R__INTERNAL__MSG_NODE_EVENT,      BRK,        GW | SCH | LED | CTL },
    { P2C2R__INTERNAL__MSG_BROKER_BEAT,     BRK,        GW | SCH | LED | CTL },
    { P2C2R__INTERNAL__MSG_BALANCE_UPDATE,  LED,        SCH },
    { P2C2R__INTERNAL__MSG_BALANCE_QUERY,   SCH,        LED },
    { P2C2R__INTERNAL__MSG_ADMIN_REQUEST,   CTL,        LED },
    { P2C2R__INTERNAL__MSG_ADMIN_REPLY,     LED,        CTL },
    { P2C2R__INTERNAL__MSG_STATS_REQUEST,   GW,         SCH | LED },
    { P2C2R__INTERNAL__MSG_STATS_REPLY,     SCH | LED,  GW },
    { P2C2R__INTERNAL__MSG_STATS_REQUEST,   CTL,        SCH },
    { P2C2R__INTERNAL__MSG_STATS_REPLY,     SCH,        CTL },
    { P2C2R__INTERNAL__MSG_TASK_FAILED,     GW | SCH,   LED },
    { P2C2R__INTERNAL__MSG_DELIVER_ACK,     GW,         SCH },
    { P2C2R__INTERNAL__MSG_EARNINGS_REQUEST, GW,        LED },
    { P2C2R__INTERNAL__MSG_EARNINGS_REPLY,  LED,        GW },
    { P2C2R__INTERNAL__MSG_REPUTATION_REQUEST, GW,      SCH },
    { P2C2R__INTERNAL__MSG_REPUTATION_REPLY, SCH,       GW },
};

static const struct {
    const char *name;
    unsigned role;
} s_roles [] = {
    { "gateway", GW }, { "scheduler", SCH }, { "ledger", LED }, { "ctl", CTL },
    { "broker", BRK }
};

unsigned
p2c_auth_role (const char *service)
{
    if (!service)
        return 0;
    for (size_t i = 0; i < sizeof s_roles / sizeof s_roles [0]; i++)
        if (s_roles [i].role != BRK && !strcmp (service, s_roles [i].name))
            return s_roles [i].role;
    return 0;
}

const char *
p2c_auth_role_name (unsigned role)
{
    for (size_t i = 0; i < sizeof s_roles / sizeof s_roles [0]; i++)
        if (s_roles [i].role == role)
            return s_roles [i].name;
    return "";
}

bool
p2c_auth_allowed (int msg_case, unsigned from, unsigned to)
{
    //  Exactly one role each: a mask of several would pass if any did
    if (from == 0 || (from & (from - 1)) || to == 0 || (to & (to - 1)))
        return false;
    for (size_t i = 0; i < sizeof s_rules / sizeof s_rules [0]; i++)
        if (s_rules [i].msg_case == msg_case && (s_rules [i].from & from)
            && (s_rules [i].to & to))
            return true;
    return false;
}

unsigned
p2c_auth_stamp_role (const char *stamp, size_t len, const char **key_p, size_t *key_len_p)
{
    const char *colon = (const char *) memchr (stamp, ':', len);
    size_t rlen = colon ? (size_t) (colon - stamp) : len;
    *key_p = colon ? colon + 1 : stamp + len;
    *key_len_p = colon ? len - rlen - 1 : 0;
    for (size_t i = 0; i < sizeof s_roles / sizeof s_roles [0]; i++)
        if (strlen (s_roles [i].name) == rlen && !memcmp (stamp, s_roles [i].name, rlen))
            return s_roles [i].role;
    return 0;
}

const char *
p2c_auth_sender_of (int msg_case)
{
    for (size_t i = 0; i < sizeof s_rules / sizeof s_rules [0]; i++)
        if (s_rules [i].msg_case == msg_case) {
            unsigned from = s_rules [i].from;
            return p2c_auth_role_name (from & (~from + 1));
        }
    return "";
}

//  Every message type against every sender and receiver role, checked
//  against the contract as docs/internals.md writes it ("FROM>TO" pairs),
//  written apart from the table so an edit of one shows in the other
static void
s_test_every_pair (void)
{
    static const struct {
        int msg_case;
        const char *pairs;
    } spec [] = {
        { P2C2R__INTERNAL__MSG_AUTH_REQUEST, "gateway>ledger" },
        { P2C2R__INTERNAL__MSG_AUTH_REPLY, "ledger>gateway" },
        { P2C2R__INTERNAL__MSG_PEER_UP, "gateway>scheduler" },
        { P2C2R__INTERNAL__MSG_PEER_DOWN, "gateway>scheduler" },
        { P2C2R__INTERNAL__MSG_TASK_SUBMIT, "gateway>scheduler" },
        { P2C2R__INTERNAL__MSG_TASK_ASSIGN, "scheduler>gateway" },
        { P2C2R__INTERNAL__MSG_TASK_RESULT, "gateway>scheduler" },
        { P2C2R__INTERNAL__MSG_SETTLE_REQUEST, "scheduler>ledger" },
        { P2C2R__INTERNAL__MSG_SETTLE_ACK, "ledger>scheduler ledger>gateway" },
        { P2C2R__INTERNAL__MSG_DELIVER, "scheduler>gateway" },
        { P2C2R__INTERNAL__MSG_NODE_HELLO, "" },
        { P2C2R__INTERNAL__MSG_NODE_EVENT,
          "broker>gateway broker>scheduler broker>ledger broker>ctl" },
        { P2C2R__INTERNAL__MSG_BROKER_BEAT,
          "broker>gateway broker>scheduler broker>ledger broker>ctl" },
        { P2C2R__INTERNAL__MSG_BALANCE_UPDATE, "ledger>scheduler" },
        { P2C2R__INTERNAL__MSG_BALANCE_QUERY, "scheduler>ledger" },
        { P2C2R__INTERNAL__MSG_ADMIN_REQUEST, "ctl>ledger" },
        { P2C2R__INTERNAL__MSG_ADMIN_REPLY, "ledger>ctl" },
        { P2C2R__INTERNAL__MSG_STATS_REQUEST, "gateway>scheduler gateway>ledger ctl>scheduler" },
        { P2C2R__INTERNAL__MSG_STATS_REPLY, "scheduler>gateway ledger>gateway scheduler>ctl" },
        { P2C2R__INTERNAL__MSG_TASK_FAILED, "gateway>ledger scheduler>ledger" },
        { P2C2R__INTERNAL__MSG_DELIVER_ACK, "gateway>scheduler" },
        { P2C2R__INTERNAL__MSG_EARNINGS_REQUEST, "gateway>ledger" },
        { P2C2R__INTERNAL__MSG_EARNINGS_REPLY, "ledger>gateway" },
        { P2C2R__INTERNAL__MSG_SETTLE_REVERSE, "scheduler>ledger" },
        { P2C2R__INTERNAL__MSG_REPUTATION_REQUEST, "gateway>scheduler" },
        { P2C2R__INTERNAL__MSG_REPUTATION_REPLY, "scheduler>gateway" },
    };
    const char *roles [] = { "broker", "gateway", "scheduler", "ledger", "ctl" };
    const unsigned bits [] = { BRK, GW, SCH, LED, CTL };
    //  Every type of the schema is in the spec
    size_t types = 0;
    for (unsigned i = 0; i < p2c2r__internal__descriptor.n_fields; i++)
        for (size_t k = 0; k < sizeof spec / sizeof spec [0]; k++)
            if ((int) p2c2r__internal__descriptor.fields [i].id == spec [k].msg_case)
                types++;
    P2C_CHECK (types == p2c2r__internal__descriptor.n_fields);
    int wrong = 0;
    for (size_t k = 0; k < sizeof spec / sizeof spec [0]; k++)
        for (size_t f = 0; f < 5; f++)
            for (size_t t = 0; t < 5; t++) {
                char pair [32];
                snprintf (pair, sizeof pair, "%s>%s", roles [f], roles [t]);
                const char *hit = strstr (spec [k].pairs, pair);
                bool want = hit && (hit [strlen (pair)] == ' ' || hit [strlen (pair)] == 0)
                            && (hit == spec [k].pairs || hit [-1] == ' ');
                if (p2c_auth_allowed (spec [k].msg_case, bits [f], bits [t]) != want) {
                    wrong++;
                    fprintf (stderr, "p2c_auth: %s type %d is %s\n", pair, spec [k].msg_case,
                             want ? "refused" : "allowed");
                }
            }
    P2C_CHECK (wrong == 0);
}

void
p2c_auth_test (bool verbose)
{
    (void) verbose;
    s_test_every_pair ();
    //  The ledger's money paths: only a scheduler settles and reverses,
    //  only a gateway asks for auth, only ctl runs admin commands
    P2C_CHECK (p2c_auth_allowed (P2C2R__INTERNAL__MSG_SETTLE_REQUEST, SCH, LED));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_SETTLE_REQUEST, GW, LED));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_SETTLE_REQUEST, CTL, LED));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_SETTLE_REVERSE, GW, LED));
    P2C_CHECK (p2c_auth_allowed (P2C2R__INTERNAL__MSG_AUTH_REQUEST, GW, LED));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_AUTH_REQUEST, SCH, LED));
    P2C_CHECK (p2c_auth_allowed (P2C2R__INTERNAL__MSG_ADMIN_REQUEST, CTL, LED));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_ADMIN_REQUEST, GW, LED));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_ADMIN_REQUEST, SCH, LED));
    //  A gateway takes its replies only from the ledger, tasks only from
    //  the scheduler; the scheduler takes submits only from gateways
    P2C_CHECK (p2c_auth_allowed (P2C2R__INTERNAL__MSG_AUTH_REPLY, LED, GW));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_AUTH_REPLY, GW, GW));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_DELIVER, LED, GW));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_TASK_ASSIGN, GW, GW));
    P2C_CHECK (p2c_auth_allowed (P2C2R__INTERNAL__MSG_TASK_SUBMIT, GW, SCH));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_TASK_SUBMIT, CTL, SCH));
    //  ctl reads the scheduler's figures (alerts), never the ledger's
    P2C_CHECK (p2c_auth_allowed (P2C2R__INTERNAL__MSG_STATS_REQUEST, CTL, SCH));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_STATS_REQUEST, CTL, LED));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_STATS_REPLY, LED, CTL));
    //  The right sender to the wrong receiver is refused too
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_SETTLE_REQUEST, SCH, GW));
    //  Only the broker beats; nobody forwards a hello; an unknown type and
    //  a mask of several roles are refused
    P2C_CHECK (p2c_auth_allowed (P2C2R__INTERNAL__MSG_BROKER_BEAT, BRK, SCH));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_NODE_EVENT, LED, SCH));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_NODE_HELLO, GW, LED));
    P2C_CHECK (!p2c_auth_allowed (9999, GW, LED));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_SETTLE_REQUEST, SCH | GW, LED));
    P2C_CHECK (!p2c_auth_allowed (P2C2R__INTERNAL__MSG_SETTLE_REQUEST, 0, LED));

    P2C_CHECK (p2c_auth_role ("ledger") == LED);
    P2C_CHECK (p2c_auth_role ("broker") == 0);
    P2C_CHECK (p2c_auth_role ("ledgers") == 0);
    const char *key;
    size_t klen;
    P2C_CHECK (p2c_auth_stamp_role ("gateway:gw-1", 12, &key, &klen) == GW);
    P2C_CHECK (klen == 4 && !memcmp (key, "gw-1", 4));
    P2C_CHECK (p2c_auth_stamp_role ("scheduler", 9, &key, &klen) == SCH && klen == 0);
    P2C_CHECK (p2c_auth_stamp_role ("gate:x", 6, &key, &klen) == 0);
    P2C_CHECK (p2c_auth_stamp_role ("", 0, &key, &klen) == 0);
    P2C_CHECK (!strcmp (p2c_auth_sender_of (P2C2R__INTERNAL__MSG_STATS_REPLY), "scheduler"));
    P2C_CHECK (!strcmp (p2c_auth_sender_of (P2C2R__INTERNAL__MSG_NODE_HELLO), ""));
}
