/*  Validation of untrusted results (docs/architecture.md): under `spot` a share
    of released results is run again by another peer in the background;
    under `quorum` a task is held until two results agree. Two equal results
    (same kernel version, same hash) win; the losers lose reputation and
    are not paid (a paid one is reversed); a tie is broken by a third run.
    A check run is a task of its own with `is_check` set, queued for the
    treasury's gamer (core->checker); its id only has to be unique. */
#include "sch_internal.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <inttypes.h>
#include <openssl/evp.h>

sch_val_t *
sch_validation_new (sch_core_t *self, sch_task_t *task, sch_val_mode_t mode)
{
    (void) self;
    sch_val_t *val = (sch_val_t *) zmalloc (sizeof (sch_val_t));
    val->task_id = p2c_strdup (task->id);
    val->type = task->type;
    val->mode = mode;
    val->task = task;
    val->refs = 1;
    val->runs = 1;
    val->params_json = p2c_strdup (task->params_json);
    val->payload = sch_memdup (task->payload, task->payload_size);
    val->payload_size = task->payload_size;
    val->cache_key = task->cache_key ? strdup (task->cache_key) : NULL;
    val->deadline_ms = task->deadline_ms;
    val->tile_run = task->tile_run;
    val->gamer_id = p2c_strdup (task->gamer_id ? task->gamer_id : "");
    val->gamer_block = p2c_strdup (task->gamer_block ? task->gamer_block : "");
    val->gamer_owner = p2c_strdup (task->gamer_owner ? task->gamer_owner : "");
    task->val = val;
    return val;
}

void
sch_validation_free (sch_val_t **val_p)
{
    sch_val_t *v = *val_p;
    for (size_t i = 0; i < v->n; i++) {
        free (v->e [i].version);
        free (v->e [i].run_id);
        free (v->e [i].result_json);
        free (v->e [i].blob);
    }
    for (size_t i = 0; i < v->nused; i++) {
        free (v->used_key [i]);
        free (v->used_block [i]);
        free (v->used_owner [i]);
    }
    free (v->gamer_id);
    free (v->gamer_block);
    free (v->gamer_owner);
    free (v->task_id);
    free (v->params_json);
    free (v->payload);
    free (v->cache_key);
    free (v);
    *val_p = NULL;
}

void
sch_validation_unref (sch_core_t *self, sch_val_t *val)
{
    assert (val->refs > 0);
    if (--val->refs > 0)
        return;
    if (!val->done)
        self->stats.unresolved++;
    sch_validation_free (&val);
}

//  Two texts that name the same thing, both known
static bool
s_same (const char *a, const char *b)
{
    return a && *a && b && !strcmp (a, b);
}

//  One party: the same owner (the operator linked a gamer account and a
//  peer account of one holder: p2c2r-ctl account link), the same name (an
//  unlinked holder who used one name for both; ids of a gamer and a peer
//  account never match), or the same address block (both known). Peers are
//  told apart by account: a name is only a label.
static bool
s_same_party (const char *name_a, const char *block_a, const char *owner_a,
              const char *name_b, const char *block_b, const char *owner_b)
{
    return s_same (owner_a, owner_b) || s_same (name_a, name_b) || s_same (block_a, block_b);
}

//  A check run never goes to the first runs' accounts, owners or address
//  blocks, nor to the gamer's: a colluding pair cannot validate itself.
bool
sch_validation_used (sch_val_t *val, sch_peer_t *peer)
{
    if (s_same_party (val->gamer_id, val->gamer_block, val->gamer_owner,
                      peer->peer_id, peer->block, peer->owner))
        return true;
    for (size_t i = 0; i < val->nused; i++)
        if ((peer->account_id && val->used_account [i] == peer->account_id)
            || !strcmp (val->used_key [i], peer->key)
            || s_same_party (NULL, val->used_block [i], val->used_owner [i],
                             NULL, peer->block, peer->owner))
            return true;
    return false;
}

void
sch_validation_use (sch_val_t *val, sch_peer_t *peer)
{
    if (val->nused < SCH_VAL_RUNS + 4 && !sch_validation_used (val, peer)) {
        val->used_account [val->nused] = peer->account_id;
        val->used_block [val->nused] = p2c_strdup (peer->block ? peer->block : "");
        val->used_owner [val->nused] = p2c_strdup (peer->owner ? peer->owner : "");
        val->used_key [val->nused++] = strdup (peer->key);
    }
}

bool
sch_validation_may_run (const sch_task_t *task, sch_peer_t *peer)
{
    if (!task->is_check
        && ((task->gamer_account && peer->account_id == task->gamer_account)
            || s_same_party (task->gamer_id, task->gamer_block, task->gamer_owner,
                             peer->peer_id, peer->block, peer->owner)))
        return false;       //  no self-dealing: a gamer's task never runs on its own peer
    return !task->val || !sch_validation_used (task->val, peer);
}

//  True when a live, unbanned peer of the task's type has not run it: a
//  spare check run can be placed. Runs only after a failed check (rare), and
//  looks at a bounded number of peers.
static bool
s_fresh_peer (sch_core_t *self, sch_val_t *val)
{
    size_t looked = 0;
    for (sch_peer_t *peer = (sch_peer_t *) zhashx_first (self->peers);
         peer && looked < 1000; peer = (sch_peer_t *) zhashx_next (self->peers), looked++)
        if ((peer->types & (1u << val->type)) && !peer->rep->banned
            && !sch_validation_used (val, peer))
            return true;
    return false;
}

//  Uniform draw: true with probability permille / 1000 (xorshift64).
static bool
s_draw (sch_core_t *self, uint32_t permille)
{
    self->rng ^= self->rng << 13;
    self->rng ^= self->rng >> 7;
    self->rng ^= self->rng << 17;
    return self->rng % 1000 < permille;
}

static void
s_result_hash (const char *json, const uint8_t *blob, size_t blob_size, uint8_t out [32])
{
    uint64_t len = strlen (json);
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    bool ok = ctx && EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL)
           && EVP_DigestUpdate (ctx, &len, sizeof len)
           && EVP_DigestUpdate (ctx, json, len)
           && (!blob_size || EVP_DigestUpdate (ctx, blob, blob_size))
           && EVP_DigestFinal_ex (ctx, out, &md_len);
    EVP_MD_CTX_free (ctx);
    if (!ok)
        fatal ("cannot hash with SHA-256");
}

//  The check runs of a task are numbered after it: the id only has to be
//  unique (the ledger settles a paid check under it); what marks a check
//  run is the task's is_check, never the id's text.
void
sch_validation_spawn (sch_core_t *self, sch_val_t *val, int64_t now_us)
{
    char id [SCH_MAX_ID + 16];
    snprintf (id, sizeof id, "%s#c%u", val->task_id, val->runs);
    if (zhashx_lookup (self->tasks, id))
        return;
    sch_task_t *task = (sch_task_t *) zmalloc (sizeof (sch_task_t));
    task->id = p2c_strdup (id);
    task->type = val->type;
    task->seq = ++self->task_seq;
    task->is_check = true;
    //  a tile's check (id#tN#cM) renders the tile too: for peers that can
    task->tile_run = val->tile_run;
    task->params_json = p2c_strdup (val->params_json);
    task->payload = sch_memdup (val->payload, val->payload_size);
    task->payload_size = val->payload_size;
    task->client_ref = p2c_strdup ("");
    task->gamer = self->checker;
    task->submit_us = now_us;
    task->deadline_ms = (uint32_t) val->deadline_ms;
    task->deadline_us = val->task && val->mode == SCH_VAL_QUORUM
                      ? val->task->deadline_us : now_us + val->deadline_ms * 1000;
    task->heap_idx = SCH_NO_HEAP;
    task->val = val;
    val->refs++;
    val->runs++;
    val->checks_live++;
    self->stats.checks++;
    task->state = SCH_QUEUED;
    self->stats.queued++;
    zhashx_insert (self->tasks, task->id, task);
    sch_peer_t *peer = sch_queues_choose (self, task, NULL);
    if (peer)
        sch_tasks_run (self, task, peer, now_us);
    else
        sch_queues_put (self, task, false, now_us);
    log_debug ("check started id=%s run=%u", task->id, val->runs);
}

//  Adds a result to a validation.
static void
s_add (sch_core_t *self, sch_val_t *val, const sch_run_t *run, bool paid)
{
    if (val->n >= SCH_VAL_RUNS)
        return;
    const P2c2r__PeerResult *res = run->res;
    sch_vent_t *e = &val->e [val->n++];
    e->account = run->account;
    e->run_id = sch_strndup_bounded (res->task_id, SCH_MAX_ID + 16);
    e->check = run->check;
    if (res->kernel_version && *res->kernel_version)
        e->version = sch_strndup_bounded (res->kernel_version, SCH_MAX_SHORT);
    else {
        //  no version named (the JSON protocol has no field for it): judged
        //  as the current one, so it is compared like any other
        char current [SCH_MAX_SHORT];
        e->version = p2c_strdup (p2c_task_version_current (sch_type (val->type), current,
                                                       sizeof current));
    }
    e->result_json = sch_strndup_bounded (res->result_json, P2C_MAX_INTERNAL);
    e->blob = sch_memdup (res->blob.data, res->blob.len);
    e->blob_size = e->blob ? res->blob.len : 0;
    s_result_hash (e->result_json, e->blob, e->blob_size, e->hash);
    e->compute_us = res->compute_us;
    e->observed_us = run->observed_us;
    e->billed_us = run->billed_us;
    e->paid = paid;
    if (val->n > 1 && strcmp (e->version, val->e [0].version))
        self->stats.incomparable++;
}

static bool
s_agree (const sch_vent_t *a, const sch_vent_t *b)
{
    return !strcmp (a->version, b->version) && !memcmp (a->hash, b->hash, 32);
}

//  Asks the ledger to pay a valid run from the treasury, or to reverse the
//  earning of a paid result that lost.
static void
s_payout (sch_core_t *self, const sch_vent_t *e, int type, bool reverse, int64_t now_us)
{
    sch_payout_run_t run = { e->run_id, e->check, e->account, type,
                             e->billed_us, e->compute_us, e->observed_us };
    sch_payouts_add (self->payouts, &run, reverse, now_us);
}

//  The winner's verdicts: every uncounted result of its kernel version is
//  valid when equal to it, else it lost (and is reversed when it was paid);
//  a valid run nobody pays for is paid by the treasury. True when the
//  first result (the released one under spot) lost.
static bool
s_judge (sch_core_t *self, sch_val_t *val, const sch_vent_t *w, int64_t now_us)
{
    bool first_lost = false;
    for (size_t k = 0; k < val->n; k++) {
        sch_vent_t *e = &val->e [k];
        if (e->counted || strcmp (e->version, w->version))
            continue;
        e->counted = true;
        bool valid = !memcmp (e->hash, w->hash, 32);
        sch_rep_t *rep = sch_reputation_require (self, e->account, now_us);
        if (sch_reputation_verdict (self, rep, valid, now_us))
            sch_peers_standing (self, rep);
        if (!valid) {
            self->stats.invalid_results++;
            if (k == 0)
                first_lost = true;
            if (e->paid) {
                self->stats.paid_then_invalid++;
                p2c_log (P2C_LOG_WARN, "validation", "paid result lost task=%s account=%" PRId64
                         " billed_us=%" PRIu64, val->task_id, e->account, e->billed_us);
                s_payout (self, e, val->type, true, now_us);
            }
            else
                p2c_log (P2C_LOG_INFO, "validation", "result lost task=%s account=%" PRId64,
                         val->task_id, e->account);
        }
        else
        if (!e->paid && self->config.pay_checks) {
            //  a valid run the gamer does not pay for: the treasury does
            e->paid = true;
            s_payout (self, e, val->type, false, now_us);
        }
    }
    return first_lost;
}

//  Two equal results won: verdicts, payouts, and the gamer's task settles
//  (or, released already, the cache is corrected when it lost).
static void
s_won (sch_core_t *self, sch_val_t *val, sch_vent_t *w, int64_t now_us)
{
    //  the gamer pays for the gamer's own run when it won, so that a
    //  treasury-paid run never shares the gamer task's id
    for (size_t k = 0; k < val->n; k++)
        if (!val->e [k].check && s_agree (&val->e [k], w))
            w = &val->e [k];
    bool settle_now = !val->released && val->task && val->task->state == SCH_VALIDATING;
    if (settle_now)
        w->paid = true;
    s_judge (self, val, w, now_us);
    if (!val->done) {
        val->done = true;
        if (val->n > 2)
            self->stats.tiebreaks++;
        else
            self->stats.agreed++;
    }
    //  the cache serves the current version only (sch_tasks_settle drops
    //  the key of a result of another one)
    bool current = sch_validation_current (val->type, w->version);
    if (settle_now) {
        val->released = true;
        sch_tasks_settle (self, val->task, w, now_us);
    }
    else
    if (val->released && val->cache_key) {
        //  validated: the winner is shared from now on; a released result
        //  that lost is no longer served, not even to its gamer
        sch_cache_drop (self->cache, val->cache_key);
        if (current)
            sch_cache_put (self->cache, val->cache_key, w->result_json, w->blob,
                           w->blob_size, w->compute_us, now_us);
    }
}

//  Starts a tie-break run while none wins and runs are left; gives up
//  otherwise.
void
sch_validation_eval (sch_core_t *self, sch_val_t *val, int64_t now_us)
{
    for (size_t i = 0; i < val->n; i++)
        for (size_t j = i + 1; j < val->n; j++)
            if (s_agree (&val->e [i], &val->e [j])) {
                s_won (self, val, &val->e [i], now_us);
                return;
            }
    if (val->done)
        return;
    bool primary_pending = val->task && !val->released
                        && (val->task->state == SCH_QUEUED || val->task->state == SCH_RUNNING);
    if (val->checks_live > 0 || primary_pending)
        return;             //  more results are coming
    //  a check that brought no result (timeout, lost peer, error) is run
    //  again elsewhere while runs are left: a cheat is caught only by a
    //  check that answers
    //  (a failed run does not use up the tie-break: up to SCH_VAL_SPARE more,
    //  while a live peer that has not run the task yet exists to take it)
    bool want_more = val->mode == SCH_VAL_QUORUM || val->n >= 1;
    if (want_more && (val->runs < SCH_VAL_RUNS
                      || (val->runs < SCH_VAL_RUNS + SCH_VAL_SPARE && s_fresh_peer (self, val)))
        && self->stats.queued < self->config.queue_max) {
        sch_validation_spawn (self, val, now_us);
        return;
    }
    val->done = true;
    self->stats.unresolved++;
    log_info ("validation unresolved task=%s results=%zu", val->task_id, val->n);
    //  through sch_tasks_fail: a tile's ends its frame
    if (val->task && !val->released && val->task->state == SCH_VALIDATING)
        sch_tasks_fail (self, val->task, SCH_ERR_REJECTED, "peers disagree on the result",
                        now_us);
}

void
sch_validation_check_done (sch_core_t *self, sch_task_t *task, const sch_run_t *run,
                           int64_t now_us)
{
    sch_val_t *val = task->val;
    s_add (self, val, run, false);
    val->refs++;
    sch_tasks_forget (self, task);
    sch_validation_eval (self, val, now_us);
    sch_validation_unref (self, val);
}

void
sch_validation_quorum_result (sch_core_t *self, sch_task_t *task, const sch_run_t *run,
                              int64_t now_us)
{
    s_add (self, task->val, run, false);
    sch_tasks_set_state (self, task, SCH_VALIDATING);
    sch_tasks_arm (self, task, now_us);
    sch_validation_eval (self, task->val, now_us);
}

//  A version nobody knows cannot be compared, so it would never lose: such
//  a result is judged invalid here, before billing, so it is never settled
//  (never paid, so never reversed) and never enters the cache. A check run
//  that brought it counts as a check without a result (its validation runs
//  another); the gamer's task is retried on another peer.
bool
sch_validation_unknown_version (sch_core_t *self, sch_task_t *task, sch_peer_t *peer,
                                const P2c2r__PeerResult *res, int64_t now_us)
{
    if (!res->kernel_version || !*res->kernel_version
        || p2c_task_version_known (sch_type (task->type), res->kernel_version))
        return false;       //  a result without a version is judged as the current one
    self->stats.invalid_results++;
    self->stats.unknown_versions++;
    p2c_log (P2C_LOG_WARN, "validation",
             "result lost task=%s account=%" PRId64 " reason=unknown_version"
             " version=%.32s", task->val ? task->val->task_id : task->id, peer->account_id,
             res->kernel_version ? res->kernel_version : "");
    if (sch_reputation_verdict (self, peer->rep, false, now_us))
        sch_peers_standing (self, peer->rep);
    sch_peers_refuse_type (self, peer, task->type);
    if (task->is_check)
        sch_tasks_fail (self, task, SCH_ERR_KERNEL_ERROR, "", now_us);
    else
        sch_tasks_retry (self, task, now_us);
    return true;
}

char *
sch_validation_cache_key (sch_task_t *task)
{
    //  the key carries the current kernel version (sch_cache_key)
    return sch_cache_key (sch_type (task->type)->name, task->params_json, task->payload,
                          task->payload_size);
}

bool
sch_validation_current (int type, const char *version)
{
    return !version || !*version || sch_cache_version_ok (sch_type (type)->name, version);
}

bool
sch_validation_shareable (sch_core_t *self, sch_task_t *task)
{
    if (sch_mode (self, task->type) == SCH_VAL_NONE)
        return true;
    //  under quorum a task settles only once two results agreed
    return task->val && task->val->mode == SCH_VAL_QUORUM && task->val->done;
}

//  A share of results (more for doubted peers) is run again elsewhere in
//  the background; the result was released at once.
void
sch_validation_spot (sch_core_t *self, sch_task_t *task, sch_peer_t *peer,
                     const sch_run_t *run, int64_t now_us)
{
    uint32_t rate = sch_reputation_doubted (self, peer->rep) ? self->config.spot_doubted_permille
                                                             : self->config.spot_permille;
    if (sch_mode (self, task->type) == SCH_VAL_SPOT && self->eligible [task->type] >= 2
        && self->stats.queued < self->config.queue_max && s_draw (self, rate)) {
        sch_val_t *val = sch_validation_new (self, task, SCH_VAL_SPOT);
        sch_validation_use (val, peer);
        s_add (self, val, run, true);
        val->released = true;
        sch_validation_spawn (self, val, now_us);
    }
}

//  --------------------------------------------------------------------------
//  Self-test: quorum with a treasury-paid check, a tie-break, and check
//  runs known by their field whatever their ids say

//  A peer with a name, a client address and its account's owner (NULL none)
static void
s_test_peer_of (sch_core_t *core, const char *gw, uint64_t conn, int64_t account,
                const char *name, const char *address, const char *owner, int64_t now_us)
{
    char *types [] = { "encryption" };
    P2c2r__Session session = P2C2R__SESSION__INIT;
    session.gateway = (char *) gw;
    session.conn = conn;
    P2c2r__Capabilities caps = P2C2R__CAPABILITIES__INIT;
    caps.slots = 1;
    caps.n_task_types = 1;
    caps.task_types = types;
    P2c2r__PeerUp up = P2C2R__PEER_UP__INIT;
    up.session = &session;
    up.peer_id = (char *) name;
    up.account_id = account;
    up.capabilities = &caps;
    up.address = (char *) address;
    up.owner = (char *) owner;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_PEER_UP;
    msg.peer_up = &up;
    sch_core_handle (core, gw, &msg, now_us);
}

static void
s_test_peer (sch_core_t *core, const char *gw, uint64_t conn, int64_t account,
             const char *name, const char *address, int64_t now_us)
{
    s_test_peer_of (core, gw, conn, account, name, address, NULL, now_us);
}

//  A gamer's submit with a name, a client address and its account's owner
static void
s_test_submit_of (sch_core_t *core, const char *id, int64_t account, const char *name,
                  const char *address, const char *owner, int64_t now_us)
{
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = "gw-g";
    gamer.conn = 1;
    P2c2r__Submit submit = P2C2R__SUBMIT__INIT;
    submit.task_type = "encryption";
    submit.params_json = "{\"n\":2}";
    submit.client_ref = (char *) id;        //  one per task: a repeat would join it
    P2c2r__TaskSubmit ts = P2C2R__TASK_SUBMIT__INIT;
    ts.task_id = (char *) id;
    ts.gamer = &gamer;
    ts.gamer_account = account;
    ts.gamer_id = (char *) name;
    ts.submit = &submit;
    ts.deadline_ms = 30000;
    ts.address = (char *) address;
    ts.gamer_owner = (char *) owner;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_SUBMIT;
    msg.task_submit = &ts;
    sch_core_handle (core, "gw-g", &msg, now_us);
}

static void
s_test_submit (sch_core_t *core, const char *id, int64_t account, const char *name,
               const char *address, int64_t now_us)
{
    s_test_submit_of (core, id, account, name, address, NULL, now_us);
}

//  No self-dealing by owner: the operator linked a gamer account and peer
//  accounts of one holder (different names, no address rule): that gamer's
//  tasks never run on those peers, and no check of any task goes to a peer
//  of the gamer's owner or of a first run's owner
static void
s_test_owner (void)
{
    sch_selftest_t cap;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.funds_check = false;
    config.cache_max_entries = 0;
    config.spot_permille = 1000;
    config.spot_doubted_permille = 1000;
    config.block_v4_bits = 0;
    config.block_v6_bits = 0;
    for (int round = 0; round < 8; round++) {
        sch_core_t *core = sch_selftest_core (&cap, &config);
        //  olga's two peers come first, in turn with the honest ones
        s_test_peer_of (core, "gw-a", 1, 31, "farm-1", "", "olga", 0);
        s_test_peer_of (core, "gw-a", 2, 32, "farm-2", "", "olga", 0);
        s_test_peer_of (core, "gw-a", 3 + round % 2, 33, "ivan-box", "", "ivan", 0);
        s_test_peer (core, "gw-a", 4 - round % 2, 34, "walter", "", 0);
        s_test_submit_of (core, "o1", 900, "player-o", "", "olga", 0);
        sch_task_t *o1 = sch_selftest_task (core, "o1");
        P2C_CHECK (o1 && o1->peer && o1->peer->account_id != 31 && o1->peer->account_id != 32);
        //  its check goes to the other honest peer, never olga's
        int64_t first = o1 && o1->peer ? o1->peer->account_id : 0;
        sch_selftest_result (core, "o1", "{}", 10, 10);
        sch_task_t *c = sch_selftest_task (core, "o1#c1");
        P2C_CHECK (c && c->peer && c->peer->account_id != first
                   && c->peer->account_id != 31 && c->peer->account_id != 32);
        //  ivan's gamer never gets ivan's peer; a check of a first run on
        //  ivan's peer never goes to another peer of ivan's (none here) nor
        //  to the gamer's owner's
        s_test_submit_of (core, "i1", 901, "player-i", "", "ivan", 0);
        sch_task_t *i1 = sch_selftest_task (core, "i1");
        P2C_CHECK (i1 && (!i1->peer || i1->peer->account_id != 33));
        //  an unlinked gamer may run anywhere
        s_test_submit (core, "u1", 902, "player-u", "", 0);
        P2C_CHECK (sch_selftest_task (core, "u1"));
        sch_core_destroy (&core);
    }
}

//  No self-dealing (issue 14): a gamer's task never runs on a peer of the
//  same name or address block; a check never runs in the first run's block
//  nor the gamer's, and goes to an established peer first
static void
s_test_self_dealing (void)
{
    sch_selftest_t cap;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.funds_check = false;
    config.cache_max_entries = 0;
    config.spot_permille = 1000;
    config.spot_doubted_permille = 1000;
    config.block_v4_bits = 24;
    config.block_v6_bits = 64;
    sch_core_t *core = sch_selftest_core (&cap, &config);
    //  the attacker's pair at home, and two honest peers elsewhere
    s_test_peer (core, "gw-a", 1, 11, "mallory-peer", "198.51.100.7", 0);
    s_test_peer (core, "gw-a", 2, 12, "mallory-2", "198.51.100.8", 0);
    s_test_peer (core, "gw-a", 3, 13, "alice", "203.0.113.5", 0);
    s_test_peer (core, "gw-a", 4, 14, "bob", "2001:db8:9::1", 0);
    //  mallory's gamer task goes to neither of its peers
    s_test_submit (core, "m1", 500, "mallory", "198.51.100.9", 0);
    sch_task_t *m1 = sch_selftest_task (core, "m1");
    P2C_CHECK (m1 && m1->peer && m1->peer->account_id != 11 && m1->peer->account_id != 12);
    //  a gamer of the same name as a peer (one holder) never gets that peer
    s_test_submit (core, "a1", 501, "alice", "192.0.2.1", 0);
    sch_task_t *a1 = sch_selftest_task (core, "a1");
    P2C_CHECK (a1 && a1->peer && a1->peer->account_id != 13);
    //  the check of a result of peer 11 never goes to 12 (same block), nor
    //  to the gamer's block
    sch_selftest_result (core, a1->peer->account_id == 11 ? "a1" : "m1", "{}", 10, 10);
    sch_task_t *t;
    int checks = 0;
    for (t = (sch_task_t *) zhashx_first (core->tasks); t; t = (sch_task_t *) zhashx_next (core->tasks))
        if (t->is_check && t->peer) {
            checks++;
            P2C_CHECK (strcmp (t->peer->block, "198.51.100.0/24"));
        }
    P2C_CHECK (core->stats.checks == 1);
    sch_core_destroy (&core);

    //  a check prefers a peer past its new time to a fresh account
    config.block_v4_bits = 0;
    config.new_samples = 2;
    core = sch_selftest_core (&cap, &config);
    s_test_peer (core, "gw-a", 1, 21, "p1", "", 0);
    s_test_peer (core, "gw-a", 2, 22, "veteran", "", 0);
    s_test_peer (core, "gw-a", 3, 23, "fresh", "", 0);
    sch_rep_t *vet = sch_reputation_require (core, 22, 0);
    sch_reputation_verdict (core, vet, true, 0);
    sch_reputation_verdict (core, vet, true, 0);
    P2C_CHECK (!sch_reputation_doubted (core, vet));
    //  peer 22 is busy first: the task takes the best free one
    s_test_submit (core, "v1", 600, "g", "", 0);
    sch_task_t *v1 = sch_selftest_task (core, "v1");
    P2C_CHECK (v1 && v1->peer);
    if (v1->peer->account_id == 22) {
        //  the veteran ran it: nobody established is left; a fresh one checks
        sch_selftest_result (core, "v1", "{}", 10, 10);
        P2C_CHECK (sch_selftest_task (core, "v1#c1")
                   && sch_selftest_task (core, "v1#c1")->peer);
    }
    else {
        sch_selftest_result (core, "v1", "{}", 10, 10);
        sch_task_t *c = sch_selftest_task (core, "v1#c1");
        P2C_CHECK (c && c->peer && c->peer->account_id == 22);
    }
    sch_core_destroy (&core);
}

void
sch_validation_test (bool verbose)
{
    s_test_self_dealing ();
    s_test_owner ();
    (void) verbose;
    sch_selftest_t cap;
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.funds_check = false;
    config.cache_max_entries = 0;
    config.validation = SCH_VAL_QUORUM;
    config.pay_checks = true;
    P2C_CHECK (sch_core_config_validation (&config, "compression=none") == 0);
    sch_core_t *core = sch_selftest_core (&cap, &config);
    sch_selftest_peer_up (core, "gw-a", 1, 1, "encryption,compression", 11, 0);
    sch_selftest_peer_up (core, "gw-b", 2, 1, "encryption", 12, 0);
    sch_selftest_peer_up (core, "gw-c", 3, 1, "encryption", 13, 0);
    //  quorum: the gamer's run and a check run on two accounts
    sch_selftest_submit (core, "gw-g", "t1", "encryption", 500, 0);
    sch_task_t *t1 = sch_selftest_task (core, "t1");
    P2C_CHECK (t1 && t1->val && t1->val->mode == SCH_VAL_QUORUM && !t1->is_check);
    sch_task_t *check = NULL;
    for (sch_task_t *t = (sch_task_t *) zhashx_first (core->tasks); t;
         t = (sch_task_t *) zhashx_next (core->tasks))
        if (t != t1)
            check = t;
    P2C_CHECK (check && check->is_check && check->val == t1->val && check->gamer == core->checker);
    P2C_CHECK (check->state == SCH_RUNNING && check->peer->account_id != t1->peer->account_id);
    P2C_CHECK (sch_validation_used (t1->val, t1->peer) && sch_validation_used (t1->val, check->peer));
    P2C_CHECK (core->stats.checks == 1 && t1->val->refs == 2);
    int64_t own = t1->peer->account_id, checker = check->peer->account_id;
    int64_t third = 11 + 12 + 13 - own - checker;
    //  the gamer's result waits for the second
    sch_selftest_result (core, "t1", "{\"v\":1}", 100, 10);
    P2C_CHECK (t1->state == SCH_VALIDATING && core->stats.validating == 1);
    //  they disagree: a tie-break run on the third account
    char check_id [64];
    snprintf (check_id, sizeof check_id, "%s", check->id);
    sch_selftest_result (core, check_id, "{\"v\":2}", 100, 20);
    P2C_CHECK (t1->state == SCH_VALIDATING && core->stats.checks == 2);
    sch_task_t *tie = NULL;
    for (sch_task_t *t = (sch_task_t *) zhashx_first (core->tasks); t;
         t = (sch_task_t *) zhashx_next (core->tasks))
        if (t != t1)
            tie = t;
    P2C_CHECK (tie && tie->is_check && tie->peer && tie->peer->account_id == third);
    //  the tie-break agrees with the gamer's run: that one settles, paid by
    //  the gamer; the tie-break is paid by the treasury; the check lost
    char tie_id [64];
    snprintf (tie_id, sizeof tie_id, "%s", tie->id);
    sch_selftest_result (core, tie_id, "{\"v\":1}", 100, 30);
    P2C_CHECK (t1->state == SCH_SETTLING && t1->peer_account == own);
    P2C_CHECK (core->stats.tiebreaks == 1 && core->stats.invalid_results == 1
               && core->stats.check_payouts == 1);
    P2C_CHECK (sch_payouts_size (core->payouts) == 1);
    double valid, invalid;
    bool banned;
    P2C_CHECK (sch_core_reputation (core, checker, 30, &valid, &invalid, &banned)
               && invalid == 1 && valid == 0 && !banned);
    P2C_CHECK (sch_core_reputation (core, third, 30, &valid, &invalid, &banned) && valid == 1);
    //  the ledger's acks: the tie-break's goes to the payouts, the gamer's
    //  task is delivered
    sch_selftest_ack (core, tie_id, true, 40);
    P2C_CHECK (core->stats.payouts_done == 1 && sch_payouts_size (core->payouts) == 0);
    sch_selftest_ack (core, "t1", true, 50);
    P2C_CHECK (core->stats.completed == 1 && cap.last_ok && !strcmp (cap.last_task, "t1"));
    //  a gamer's task whose id looks like a check run's is still the gamer's
    sch_selftest_submit (core, "gw-g", "odd#c1", "compression", 500, 60);
    sch_task_t *odd = sch_selftest_task (core, "odd#c1");
    P2C_CHECK (odd && !odd->is_check && odd->val == NULL);
    sch_selftest_result (core, "odd#c1", "{}", 10, 70);
    sch_selftest_ack (core, "odd#c1", true, 80);
    P2C_CHECK (core->stats.completed == 2 && !strcmp (cap.last_task, "odd#c1"));
    P2C_CHECK (core->stats.stale_acks == 0 && zhashx_size (core->tasks) == 0);
    //  an invented kernel version is invalid at once: never settled, the
    //  peer's account is counted invalid, the task runs again elsewhere;
    //  a result that names no version is judged as the current one
    sch_selftest_submit (core, "gw-g", "forged", "compression", 500, 90);
    sch_task_t *forged = sch_selftest_task (core, "forged");
    P2C_CHECK (forged && forged->peer && forged->peer->account_id == 11);
    int settles = cap.count [P2C2R__INTERNAL__MSG_SETTLE_REQUEST];
    sch_selftest_result_version (core, "forged", "{}", 10, "7.7.7", 100);
    P2C_CHECK (core->stats.unknown_versions == 1 && core->stats.invalid_results == 2);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_SETTLE_REQUEST] == settles);
    P2C_CHECK (sch_core_reputation (core, 11, 100, &valid, &invalid, &banned) && invalid > 0.99);
    P2C_CHECK (forged->state == SCH_RUNNING || forged->state == SCH_QUEUED);
    P2C_CHECK (forged->attempts == 1 || forged->attempts == 2);
    sch_core_destroy (&core);
    //  none for compression, one peer: the retry lands on it again, and a
    //  result without a version settles
    core = sch_selftest_core (&cap, &config);
    sch_selftest_peer_up (core, "gw-a", 1, 1, "compression", 21, 0);
    sch_selftest_submit (core, "gw-g", "nov", "compression", 500, 0);
    sch_selftest_result_version (core, "nov", "{}", 10, "", 10);
    P2C_CHECK (core->stats.unknown_versions == 0 && sch_selftest_task (core, "nov")
               && sch_selftest_task (core, "nov")->state == SCH_SETTLING);
    sch_core_destroy (&core);

    //  the cache (issue 14): a released spot result serves only the gamer
    //  who paid for it until a check agrees; then every gamer
    sch_core_config_default (&config);
    config.funds_check = false;
    config.spot_permille = 0;
    config.spot_doubted_permille = 1000;        //  new peers: every result checked
    core = sch_selftest_core (&cap, &config);
    sch_selftest_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    sch_selftest_peer_up (core, "gw-b", 2, 1, "encryption", 12, 0);
    sch_selftest_submit (core, "gw-g", "s1", "encryption", 500, 0);
    sch_selftest_result (core, "s1", "{\"h\":1}", 10, 10);
    sch_selftest_ack (core, "s1", true, 20);
    P2C_CHECK (core->stats.completed == 1 && core->stats.checks == 1);
    //  the check still runs: gamer 500 is served its own result, 501 is not
    sch_selftest_submit (core, "gw-g", "s2", "encryption", 500, 30);
    P2C_CHECK (core->stats.cached == 1 && !sch_selftest_task (core, "s2"));
    sch_selftest_submit (core, "gw-g", "s3", "encryption", 501, 40);
    P2C_CHECK (core->stats.cached == 1 && sch_selftest_task (core, "s3"));
    //  the check agrees: shared
    sch_selftest_result (core, "s1#c1", "{\"h\":1}", 10, 50);
    P2C_CHECK (core->stats.agreed == 1);
    sch_selftest_submit (core, "gw-g", "s4", "encryption", 502, 60);
    P2C_CHECK (core->stats.cached == 2 && !sch_selftest_task (core, "s4"));
    sch_core_destroy (&core);

    //  a forged released result that loses is not served again, not even
    //  to its own gamer; the winner is
    core = sch_selftest_core (&cap, &config);
    sch_selftest_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    sch_selftest_peer_up (core, "gw-b", 2, 1, "encryption", 12, 0);
    sch_selftest_peer_up (core, "gw-c", 3, 1, "encryption", 13, 0);
    sch_selftest_submit (core, "gw-g", "f1", "encryption", 500, 0);
    sch_selftest_result (core, "f1", "{\"h\":666}", 10, 10);
    sch_selftest_ack (core, "f1", true, 20);
    sch_selftest_result (core, "f1#c1", "{\"h\":1}", 10, 30);
    P2C_CHECK (sch_selftest_task (core, "f1#c2"));
    sch_selftest_result (core, "f1#c2", "{\"h\":1}", 10, 40);
    P2C_CHECK (core->stats.tiebreaks == 1 && core->stats.paid_then_invalid == 1);
    const sch_cache_entry_t *hit = NULL;
    char *key = NULL;
    {
        sch_task_t probe = { 0 };
        probe.type = sch_type_index ("encryption");
        probe.params_json = (char *) "{\"n\":1}";   //  sch_selftest_submit's
        key = sch_validation_cache_key (&probe);
    }
    hit = sch_cache_get_for (core->cache, key, 500, 50);
    P2C_CHECK (hit && hit->owner == 0 && !strcmp (hit->result_json, "{\"h\":1}"));
    free (key);
    sch_core_destroy (&core);
}
