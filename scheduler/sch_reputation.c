/*  What the scheduler core thinks of each peer account's results: valid and
    invalid verdict counts, decayed with a half life, which drive the spot
    check rate (doubted accounts are checked more) and, past a share of
    invalid results, a ban. Reputations are per account, so they survive
    reconnects. The peers of an account follow its ban in sch_peers. */
#include "sch_internal.h"
#include "p2c_cost.h"
#include "p2c_log.h"
#include "p2c_test.h"

#include <inttypes.h>
#include <math.h>

sch_rep_t *
sch_reputation_require (sch_core_t *self, int64_t account, int64_t now_us)
{
    char key [32];
    snprintf (key, sizeof key, "%" PRId64, account);
    sch_rep_t *rep = (sch_rep_t *) zhashx_lookup (self->reps, key);
    if (!rep) {
        rep = (sch_rep_t *) zmalloc (sizeof (sch_rep_t));
        rep->account = account;
        rep->at_us = now_us;
        rep->peers = zlistx_new ();
        zhashx_insert (self->reps, key, rep);
    }
    return rep;
}

void
sch_reputation_free (sch_rep_t **rep_p)
{
    sch_rep_t *rep = *rep_p;
    zlistx_destroy (&rep->peers);
    free (rep);
    *rep_p = NULL;
}

static void
s_decay (sch_core_t *self, sch_rep_t *rep, int64_t now_us)
{
    if (now_us <= rep->at_us)
        return;
    double f = exp2 (-(double) (now_us - rep->at_us) / (self->config.rep_half_life_ms * 1000.0));
    rep->valid *= f;
    rep->invalid *= f;
    rep->at_us = now_us;
}

bool
sch_reputation_doubted (sch_core_t *self, sch_rep_t *rep)
{
    return rep->valid + rep->invalid < self->config.new_samples || rep->invalid >= 0.5;
}

bool
sch_reputation_judge (sch_core_t *self, sch_rep_t *rep, int64_t now_us)
{
    s_decay (self, rep, now_us);
    double total = rep->valid + rep->invalid;
    //  counts are decayed: round them, so "2 invalid results" means 2 recent ones
    bool ban = floor (rep->invalid + 0.5) >= self->config.ban_min_invalid
            && rep->invalid * 1000.0 >= self->config.ban_permille * total;
    if (ban == rep->banned)
        return false;
    rep->banned = ban;
    if (ban) {
        self->stats.bans++;
        log_warn ("peer banned account=%" PRId64 " valid=%.2f invalid=%.2f peers=%zu",
                  rep->account, rep->valid, rep->invalid, zlistx_size (rep->peers));
    }
    else
        log_info ("peer unbanned account=%" PRId64 " valid=%.2f invalid=%.2f", rep->account,
                  rep->valid, rep->invalid);
    return true;
}

//  A claim far beyond the expected time is evidence of a peer inflating its
//  work: it counts as an invalid verdict (doubted: checked more; repeated:
//  banned); it is billed within the bounds all the same.
void
sch_reputation_flag (sch_core_t *self, sch_task_t *task, sch_peer_t *peer,
                     const sch_billing_run_t *bill, int64_t now_us)
{
    self->stats.billing_flagged++;
    p2c_log (P2C_LOG_WARN, "billing",
             "claim flagged task=%s account=%" PRId64 " claimed_us=%" PRIu64
             " observed_us=%" PRIu64 " expected_us=%" PRIu64, task->id, peer->account_id,
             bill->claimed_us, bill->observed_us, bill->expected_us);
    if (sch_reputation_verdict (self, peer->rep, false, now_us))
        sch_peers_standing (self, peer->rep);
}

bool
sch_reputation_verdict (sch_core_t *self, sch_rep_t *rep, bool valid, int64_t now_us)
{
    s_decay (self, rep, now_us);
    if (valid)
        rep->valid += 1;
    else
        rep->invalid += 1;
    return sch_reputation_judge (self, rep, now_us);
}

bool
sch_core_reputation (sch_core_t *self, int64_t account, int64_t now_us, double *valid_p,
                     double *invalid_p, bool *banned_p)
{
    char key [32];
    snprintf (key, sizeof key, "%" PRId64, account);
    sch_rep_t *rep = (sch_rep_t *) zhashx_lookup (self->reps, key);
    if (!rep)
        return false;
    s_decay (self, rep, now_us);
    *valid_p = rep->valid;
    *invalid_p = rep->invalid;
    *banned_p = rep->banned;
    return true;
}

//  --------------------------------------------------------------------------
//  Self-test: verdicts, decay, ban and unban

void
sch_reputation_test (bool verbose)
{
    (void) verbose;
    sch_selftest_t cap;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.rep_half_life_ms = 1000;
    sch_core_t *core = sch_selftest_core (&cap, &config);
    double valid, invalid;
    bool banned;
    P2C_CHECK (!sch_core_reputation (core, 66, 0, &valid, &invalid, &banned));
    sch_rep_t *rep = sch_reputation_require (core, 66, 0);
    P2C_CHECK (rep && sch_reputation_require (core, 66, 0) == rep);
    //  new: doubted until enough verdicts
    P2C_CHECK (sch_reputation_doubted (core, rep));
    for (uint32_t i = 0; i < config.new_samples; i++)
        P2C_CHECK (!sch_reputation_verdict (core, rep, true, 0));
    P2C_CHECK (!sch_reputation_doubted (core, rep) && !rep->banned);
    //  one invalid result: doubted again, not banned
    P2C_CHECK (!sch_reputation_verdict (core, rep, false, 0));
    P2C_CHECK (sch_reputation_doubted (core, rep) && !rep->banned);
    //  two, but a small share of the verdicts: still not banned
    P2C_CHECK (!sch_reputation_verdict (core, rep, false, 0));
    P2C_CHECK (!rep->banned);
    //  a third: 3 of 13 is past the 20% share
    P2C_CHECK (sch_reputation_verdict (core, rep, false, 0));
    P2C_CHECK (rep->banned && core->stats.bans == 1);
    P2C_CHECK (sch_core_reputation (core, 66, 0, &valid, &invalid, &banned)
               && valid == config.new_samples && invalid == 3 && banned);
    //  counts halve every half life; the ban goes when few invalid remain
    P2C_CHECK (sch_core_reputation (core, 66, 1000000, &valid, &invalid, &banned)
               && invalid > 1.49 && invalid < 1.51 && banned);
    P2C_CHECK (!sch_reputation_judge (core, rep, 1000000));
    P2C_CHECK (sch_reputation_judge (core, rep, 2000000) && !rep->banned);
    //  the cron unbans too, and the account's peers come back
    P2C_CHECK (sch_reputation_verdict (core, rep, false, 2000000)
               || sch_reputation_verdict (core, rep, false, 2000000));
    P2C_CHECK (rep->banned);
    sch_selftest_peer_up (core, "gw-a", 1, 1, "encryption", 66, 2000000);
    int enc = sch_type_index ("encryption");
    P2C_CHECK (core->stats.banned_peers == 1 && core->eligible [enc] == 0);
    sch_core_cron (core, 6000000);
    P2C_CHECK (!rep->banned && core->stats.banned_peers == 0 && core->eligible [enc] == 1);
    P2C_CHECK (sch_index_size (core->index [enc]) == 1);
    //  a gateway's dashboard asks (ReputationRequest): answered to it at
    //  once; with no sender (the broker), counted as bad
    P2c2r__ReputationRequest rq = P2C2R__REPUTATION_REQUEST__INIT;
    rq.corr = 7;
    rq.account_id = 66;
    P2c2r__Internal m = P2C2R__INTERNAL__INIT;
    m.msg_case = P2C2R__INTERNAL__MSG_REPUTATION_REQUEST;
    m.reputation_request = &rq;
    int sent = cap.sent;
    sch_core_handle (core, "gw-a", &m, 6000000);
    P2C_CHECK (cap.sent == sent + 1 && cap.last_case == P2C2R__INTERNAL__MSG_REPUTATION_REPLY
               && !strcmp (cap.last_dest, "gw-a"));
    uint64_t bad = core->stats.bad_messages;
    sch_core_handle (core, "", &m, 6000000);
    P2C_CHECK (cap.sent == sent + 1 && core->stats.bad_messages == bad + 1);
    sch_core_destroy (&core);

    //  billing from the server's measure (issue 14): a claim of 1e9 ms for
    //  a held task is billed 1.5x the expected time and flagged; an honest
    //  one is billed as measured
    sch_core_config_default (&config);
    config.validation = SCH_VAL_NONE;
    config.funds_check = false;
    core = sch_selftest_core (&cap, &config);
    sch_selftest_peer_up (core, "gw-a", 1, 1, "encryption", 31, 0);
    sch_selftest_peer_up (core, "gw-b", 2, 1, "encryption", 32, 0);
    uint64_t expected = p2c_cost_expected_us ("encryption", "{\"n\":1}", 0);
    P2C_CHECK (expected > 500);
    sch_selftest_submit (core, "gw-g", "b1", "encryption", 500, 0);
    sch_selftest_submit (core, "gw-g", "b2", "encryption", 500, 0);
    sch_task_t *b1 = sch_selftest_task (core, "b1"), *b2 = sch_selftest_task (core, "b2");
    int64_t cheat = b1->peer->account_id, honest = b2->peer->account_id;
    sch_selftest_result (core, "b1", "{}", 1000000000000ULL, 10000000);
    sch_selftest_result (core, "b2", "{}", expected, 20000000);
    P2C_CHECK (b1->state == SCH_SETTLING && b1->billed_us == expected * 3 / 2);
    P2C_CHECK (b2->state == SCH_SETTLING && b2->billed_us == expected);
    P2C_CHECK (core->stats.billing_flagged == 1);
    P2C_CHECK (sch_core_reputation (core, cheat, 20000000, &valid, &invalid, &banned)
               && invalid > 0.99);
    P2C_CHECK (!sch_core_reputation (core, honest, 20000000, &valid, &invalid, &banned)
               || invalid == 0);
    sch_core_destroy (&core);
}
