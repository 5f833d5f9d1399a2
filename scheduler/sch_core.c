/*  The scheduler's logic (see sch_core.h, docs/internals.md and
    docs/scheduler.md, which states every rule this file implements).

    Everything lives in memory and is reached through indexes, so that no
    message costs a scan of all peers or tasks:
    - peers by "gateway/conn"; per task type an index (sch_index) of the
      peers with a free slot, ordered by expected finish time;
    - reputations by peer account, so that they survive reconnects;
    - gamers by account: their balance, the reserve of their tasks in
      flight, and per task type a FIFO of their queued tasks; per type a
      ring of the gamers with queued tasks, served round robin (fairness);
    - tasks by id, per peer the tasks it runs, per gateway the peers and
      the gamers' tasks it holds;
    - one binary heap of tasks ordered by the next moment each needs
      attention (balance wait, deadline, attempt end, settlement retry).
    Times are monotonic microseconds: billed time is the smaller of the
    peer's claim and what we observe, and most tasks take well under a
    millisecond, so milliseconds would bill them nothing. */
#include "sch_core.h"
#include "sch_cache.h"
#include "sch_index.h"
#include "sch_tiles.h"
#include "p2c_log.h"
#include "p2c_money.h"
#include "p2c_tasks.h"
#include "p2c_test.h"

#include <czmq.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define SCH_MAX_SLOTS       1024    //  a peer claiming more is capped
#define SCH_MAX_ID          256     //  longest task id / gateway id we accept
#define SCH_MAX_SHORT       64      //  longest region / kernel version kept
#define SCH_MAX_ERROR_TEXT  512     //  a peer's error text is cut here
#define SCH_NO_HEAP         SIZE_MAX
#define SCH_VAL_RUNS        3       //  primary + check + tie-break
#define SCH_VAL_SPARE       2       //  further runs for checks that brought no result
#define SCH_RING_LOOK       8       //  gamers looked at per type when a peer pulls
#define SCH_QUEUE_LOOK      64      //  tasks looked at per gamer when a peer pulls
#define SCH_INDEX_LOOK      64      //  index entries looked at for a constrained pick
#define SCH_DEFAULT_EXEC_US 1000.0  //  a type's speed before anything is known
#define SCH_EWMA            0.2     //  weight of a new sample in moving averages
#define SCH_LATENCIES       4096    //  recent latencies kept for percentiles

typedef enum {
    SCH_PARKED,                 //  waiting for the gamer's balance
    SCH_QUEUED,                 //  waiting in its gamer's queue
    SCH_RUNNING,                //  assigned to a peer, attempt running
    SCH_VALIDATING,             //  result in, waiting for a quorum
    SCH_SETTLING                //  result accepted, waiting for the ledger
} sch_state_t;

typedef struct _sch_peer_t sch_peer_t;
typedef struct _sch_task_t sch_task_t;
typedef struct _sch_frame_t sch_frame_t;

//  A gateway node: what dies with it.
typedef struct {
    char *id;                   //  node id
    zlistx_t *peers;            //  sch_peer_t * connected there (not owned)
    zlistx_t *tasks;            //  sch_task_t * whose gamer is there (not owned)
    bool down;                  //  the broker said it was lost
} sch_gw_t;

//  What we think of a peer account's results (decayed verdict counts).
typedef struct {
    int64_t account;
    double valid;               //  results that agreed with the majority
    double invalid;             //  results that lost
    int64_t at_us;              //  when the counts were last decayed
    bool banned;                //  gets no work
    zlistx_t *peers;            //  live sch_peer_t * of the account (not owned)
} sch_rep_t;

//  A peer's side of one task type it runs.
typedef struct {
    sch_index_entry_t entry;    //  in core->index [type] while it has a free slot
    char *version;              //  kernel version it advertised, "" unknown
    uint64_t ref_us;            //  its time on the kernel's reference input, 0 unknown
    double exec_us;             //  moving average of its compute time here, 0 none yet
} sch_ptype_t;

struct _sch_peer_t {
    char *key;                  //  "gateway/conn"
    uint64_t conn;              //  connection number on the gateway
    sch_gw_t *gw;               //  its gateway
    void *gw_handle;            //  in gw->peers
    char *peer_id;              //  the contributor's name, for logs
    char *region;               //  advertised region, "" none
    int64_t account_id;         //  paid for its work
    uint32_t slots;             //  tasks it runs at once
    uint32_t busy;              //  tasks running on it now
    uint32_t types;             //  bit i: eligible for catalogue type i
    sch_ptype_t *pt [SCH_MAX_TYPES];   //  per eligible type, else NULL
    double rtt_us;              //  moving average of observed minus compute time
    zlistx_t *tasks;            //  sch_task_t * running here (not owned)
    uint64_t last_assign;       //  assignment sequence of its last task, 0 never
    sch_rep_t *rep;             //  its account's reputation
    void *rep_handle;           //  in rep->peers
};

//  A gamer account: funds and the fair queues.
typedef struct {
    int64_t account;
    char key [32];              //  hash key
    bool known;                 //  a BalanceUpdate arrived
    bool disabled;
    int64_t balance_pico;
    int64_t reserve_pico;       //  the most its tasks in flight may cost
    int64_t query_us;           //  when we last asked the ledger
    bool queried;               //  we asked at least once
    zlistx_t *parked;           //  sch_task_t * waiting for the balance (not owned)
    zlistx_t *queue [SCH_MAX_TYPES];    //  its queued tasks per type (lazy, not owned)
    void *ring_handle [SCH_MAX_TYPES];  //  in core->ring [type] while it has some
    size_t queued;              //  tasks in its queues
} sch_gamer_t;

//  One result in a validation.
typedef struct {
    int64_t account;            //  the peer account that made it
    char *run_id;               //  task id of its run (the gamer's, or id#cN)
    uint8_t hash [32];          //  SHA-256 of result_json and blob
    char *version;              //  kernel version that ran
    bool counted;               //  its verdict went into the reputation
    bool paid;                  //  settled already (spot: the released result)
    char *result_json;
    uint8_t *blob;
    size_t blob_size;
    uint64_t compute_us, observed_us, billed_us;
} sch_vent_t;

//  A task whose result is checked by more than one peer.
typedef struct {
    char *task_id;              //  the gamer's task
    int type;
    sch_val_mode_t mode;
    sch_task_t *task;           //  the gamer's task while it lives
    int refs;                   //  the gamer's task and the live checks
    char *params_json;          //  for the checks
    uint8_t *payload;
    size_t payload_size;
    char *cache_key;            //  to correct the cache when a released result loses
    int64_t deadline_ms;        //  what a check gets
    sch_vent_t e [SCH_VAL_RUNS];
    size_t n;                   //  results in
    uint32_t runs;              //  runs started (the gamer's task counts one)
    uint32_t checks_live;       //  check tasks alive
    int64_t used_account [SCH_VAL_RUNS + 4];   //  peers that ran it, never twice
    char *used_key [SCH_VAL_RUNS + 4];
    size_t nused;
    bool released;              //  a result went to the gamer
    bool done;                  //  a verdict was reached (or given up)
} sch_val_t;

struct _sch_task_t {
    char *id;                   //  made by the gateway, unique (checks: id#cN)
    int type;                   //  catalogue index
    uint64_t seq;               //  arrival order, for "oldest first"
    sch_state_t state;
    bool is_check;              //  a validation run: no gamer, never settled
    bool is_tile;               //  a tile of a split frame (id#tN): no gateway
    bool tile_run;              //  a tile or a check run of one: for tile-capable peers only
    sch_frame_t *frame;         //  the gamer's task: its tiles; a tile: its frame
    size_t tile;                //  a tile: its index in the frame
    //  what the gamer asked
    char *params_json;
    uint8_t *payload;
    size_t payload_size;
    char *client_ref;
    char *region;               //  the gamer's gateway's region, "" any
    int64_t gamer_account;
    uint64_t gamer_conn;
    sch_gamer_t *gamer;         //  whose queue it waits in
    sch_gw_t *gw;               //  the gamer's gateway (NULL for checks)
    void *gw_handle;            //  in gw->tasks
    void *queue_handle;         //  in gamer->queue [type] while queued
    void *park_handle;          //  in gamer->parked while parked
    int64_t submit_us;
    int64_t deadline_us;        //  absolute: arrival + deadline_ms
    uint32_t deadline_ms;
    int64_t reserved_pico;      //  held against the gamer's balance
    char *cache_key;            //  NULL: not cacheable
    sch_val_t *val;             //  its validation, if any
    //  attempts
    uint32_t attempts;          //  assignments made so far
    sch_peer_t *peer;           //  while running
    void *peer_handle;          //  in peer->tasks
    char *last_peer;            //  key of the last peer tried, to prefer another
    int64_t attempt_start_us;
    int64_t attempt_end_us;
    //  settlement
    int64_t peer_account;
    uint64_t compute_us;        //  claimed by the peer
    uint64_t observed_us;       //  assign to result, seen by us
    uint64_t billed_us;
    char *result_json;
    uint8_t *blob;
    size_t blob_size;
    int64_t settle_next_us;     //  next SettleRequest resend
    //  timers
    int64_t wake_us;            //  when the cron must look at it
    size_t heap_idx;            //  in core->heap, SCH_NO_HEAP when out
};

//  Money the ledger must move outside a gamer's settlement: a valid check
//  run paid by the treasury, or a paid result's earning reversed. Resent
//  until acked (the ledger is idempotent on the id), then forgotten.
typedef struct {
    char *key;                  //  id, or "r:" id for a reversal
    char *id;                   //  the run's task id
    bool reverse;
    int64_t peer_account;
    int type;
    uint64_t billed_us, compute_us, observed_us;
    int64_t next_us;            //  next resend
    uint32_t tries;
    void *handle;               //  in core->payout_fifo
} sch_payout_t;

#define SCH_PAYOUT_TRIES    30      //  sends before a payout is given up
//  Split frames in flight hold their pixels (3 bytes each) while tiles come
//  in: beyond this, a frame runs whole on one peer rather than split
#define SCH_FRAME_BYTES_MAX (256u * 1024 * 1024)

//  A frame split into tiles (sch_tiles): the gamer's task waits while each
//  tile runs as a task of its own (assigned, validated, retried alone). A
//  tile's result is held, not settled, until every tile is in, so that a
//  frame that cannot finish charges the gamer nothing; then every tile is
//  settled on its own and the gamer gets one reply with the whole frame.
struct _sch_frame_t {
    sch_tiles_t *tiles;
    sch_task_t *parent;         //  the gamer's task
    sch_task_t *child [SCH_TILES_MAX];  //  live tile tasks (NULL: gone)
    size_t held;                //  tiles whose result is in
    size_t settled;             //  tiles the ledger settled
    bool current;               //  every tile came from the catalogue's kernel version
    int64_t cost_pico;          //  what the gamer was charged, summed
    uint64_t compute_us, billed_us;
};

struct _sch_core_t {
    sch_core_config_t config;
    zhashx_t *payouts;          //  key -> sch_payout_t * (owned, freed by hand)
    zlistx_t *payout_fifo;      //  the same, by next resend (all share one interval)
    sch_send_fn *send;          //  where outgoing messages go
    void *send_arg;
    zhashx_t *peers;            //  key -> sch_peer_t * (owned, freed by hand)
    zhashx_t *tasks;            //  id -> sch_task_t * (owned, freed by hand)
    zhashx_t *gateways;         //  node id -> sch_gw_t * (owned, freed by hand)
    zhashx_t *gamers;           //  key -> sch_gamer_t * (owned, freed by hand)
    zhashx_t *reps;             //  account -> sch_rep_t * (owned, freed by hand)
    sch_gamer_t *checker;       //  the queues of validation runs
    sch_cache_t *cache;
    size_t frame_bytes;         //  pixels the split frames in flight may hold
    size_t ntypes;              //  catalogue size
    sch_index_t *index [SCH_MAX_TYPES]; //  peers with a free slot, per type
    size_t eligible [SCH_MAX_TYPES];    //  live unbanned peers per type
    double type_exec_us [SCH_MAX_TYPES];//  moving average of compute time per type
    double ref_sum [SCH_MAX_TYPES];     //  sum of live peers' reference_us per type
    size_t ref_n [SCH_MAX_TYPES];
    zlistx_t *ring [SCH_MAX_TYPES];     //  sch_gamer_t * with queued tasks, per type
    sch_task_t **heap;          //  min-heap on wake_us
    size_t heap_size;
    size_t heap_cap;
    uint64_t task_seq;          //  last arrival sequence given
    uint64_t assign_seq;        //  last assignment sequence given
    uint64_t rng;               //  xorshift state of the spot draw
    uint32_t latency_us [SCH_LATENCIES];   //  submit to reply, ring buffer
    uint64_t latency_n;
    int64_t rate_at_us;         //  tasks/s window start
    uint64_t rate_done;         //  tasks done at the window start
    double tasks_per_s;
    int64_t unban_next_us;      //  next look at banned accounts
    sch_stats_t stats;
    sch_stats_t logged;         //  stats at the last status line
    int64_t status_next_us;     //  next status line, 0 before the first cron
};

static const char *s_err_names [SCH_ERR_COUNT] = {
    "no_peers", "timeout", "unavailable", "invalid_params", "kernel_error",
    "unknown_task_type", "insufficient_funds", "rejected"
};

const char *
sch_err_name (sch_err_t err)
{
    assert (err < SCH_ERR_COUNT);
    return s_err_names [err];
}

//  --------------------------------------------------------------------------
//  Configuration

void
sch_core_config_default (sch_core_config_t *config)
{
    memset (config, 0, sizeof *config);
    config->attempt_timeout_ms = 10000;
    config->max_attempts = 3;
    config->queue_max = 100000;
    config->gamer_queue_max = 10000;
    config->settle_retry_ms = 2000;
    config->status_interval_ms = 10000;
    config->default_deadline_ms = 30000;
    config->max_deadline_ms = 300000;
    config->cache_ttl_ms = 24LL * 3600 * 1000;
    config->cache_max_entries = 100000;
    config->cache_max_bytes = 256 * 1024 * 1024;
    config->validation = SCH_VAL_SPOT;
    for (int i = 0; i < SCH_MAX_TYPES; i++)
        config->validation_type [i] = SCH_VAL_DEFAULT;
    config->spot_permille = 50;
    config->spot_doubted_permille = 1000;
    config->new_samples = 10;
    config->rep_half_life_ms = 24LL * 3600 * 1000;
    config->ban_min_invalid = 2.0;
    config->ban_permille = 200;
    config->seed = 0x9e3779b97f4a7c15ULL;
    config->funds_check = true;
    config->funds_floor_pico = 0;
    p2c_rates_t rates = P2C_RATES_DEFAULT;
    config->gamer_rate_per_hour = rates.gamer_per_hour;
    config->balance_wait_ms = 2000;
    config->park_max = 10000;
    //  a quarter of full HD (960 x 540) is about a tenth of a second for one
    //  peer; a 1920 x 1080 frame becomes four tiles
    config->tile_px = 518400;
    config->tile_max = 16;
}

int
sch_val_mode_parse (const char *name)
{
    if (!name)
        return -1;
    if (!strcmp (name, "none"))
        return SCH_VAL_NONE;
    if (!strcmp (name, "spot"))
        return SCH_VAL_SPOT;
    if (!strcmp (name, "quorum"))
        return SCH_VAL_QUORUM;
    return -1;
}

//  The catalogue index of a task type name or alias; -1 when unknown.
static int
s_type_index (const char *name)
{
    const char *canonical = p2c_task_canonical (name);
    if (!canonical)
        return -1;
    int i = 0;
    for (const p2c_task_type_t *t = p2c_task_types (); t->name; t++, i++)
        if (!strcmp (t->name, canonical))
            return i;
    return -1;
}

static const p2c_task_type_t *
s_type (int index)
{
    return &p2c_task_types () [index];
}

//  Calls fn on each comma-separated item of spec; -1 when fn refuses one.
static int
s_each_item (const char *spec, int (*fn) (sch_core_config_t *, char *), sch_core_config_t *c)
{
    if (!spec || !*spec)
        return 0;
    char *copy = strdup (spec);
    assert (copy);
    int rc = 0;
    char *save = NULL;
    for (char *item = strtok_r (copy, ", ", &save); item && rc == 0;
         item = strtok_r (NULL, ", ", &save))
        rc = fn (c, item);
    free (copy);
    return rc;
}

static int
s_validation_item (sch_core_config_t *config, char *item)
{
    char *eq = strchr (item, '=');
    if (!eq)
        return -1;
    *eq = 0;
    int type = s_type_index (item);
    int mode = sch_val_mode_parse (eq + 1);
    if (type < 0 || mode < 0)
        return -1;
    config->validation_type [type] = (sch_val_mode_t) mode;
    return 0;
}

int
sch_core_config_validation (sch_core_config_t *config, const char *spec)
{
    return s_each_item (spec, s_validation_item, config);
}

static int
s_needs_item (sch_core_config_t *config, char *item)
{
    char *colon = strchr (item, ':');
    if (!colon)
        return -1;
    *colon = 0;
    int type = s_type_index (item);
    if (type < 0)
        return -1;
    const char *need = colon + 1;
    char *end = NULL;
    if (!strcmp (need, "gpu"))
        config->needs_gpu [type] = true;
    else
    if (!strncmp (need, "ram=", 4)) {
        long v = strtol (need + 4, &end, 10);
        if (*end || v < 0 || v > 1000000)
            return -1;
        config->needs_ram_gb [type] = (uint32_t) v;
    }
    else
    if (!strncmp (need, "vram=", 5)) {
        long v = strtol (need + 5, &end, 10);
        if (*end || v < 0 || v > 1000000)
            return -1;
        config->needs_vram_gb [type] = (uint32_t) v;
        config->needs_gpu [type] = v > 0 || config->needs_gpu [type];
    }
    else
        return -1;
    return 0;
}

int
sch_core_config_needs (sch_core_config_t *config, const char *spec)
{
    return s_each_item (spec, s_needs_item, config);
}

//  --------------------------------------------------------------------------
//  Construction

sch_core_t *
sch_core_new (const sch_core_config_t *config, sch_send_fn *send, void *arg)
{
    assert (config);
    assert (send);
    sch_core_t *self = (sch_core_t *) zmalloc (sizeof (sch_core_t));
    self->config = *config;
    sch_core_config_t *c = &self->config;
    if (c->max_attempts < 1)
        c->max_attempts = 1;
    if (c->attempt_timeout_ms < 1)
        c->attempt_timeout_ms = 1;
    if (c->settle_retry_ms < 1)
        c->settle_retry_ms = 1;
    if (c->default_deadline_ms < 1)
        c->default_deadline_ms = 1;
    if (c->max_deadline_ms < c->default_deadline_ms)
        c->max_deadline_ms = c->default_deadline_ms;
    if (c->rep_half_life_ms < 1)
        c->rep_half_life_ms = 1;
    if (c->balance_wait_ms < 1)
        c->balance_wait_ms = 1;
    self->send = send;
    self->send_arg = arg;
    self->peers = zhashx_new ();
    self->tasks = zhashx_new ();
    self->gateways = zhashx_new ();
    self->gamers = zhashx_new ();
    self->reps = zhashx_new ();
    self->payouts = zhashx_new ();
    self->payout_fifo = zlistx_new ();
    self->cache = sch_cache_new (c->cache_ttl_ms * 1000, c->cache_max_entries,
                                 c->cache_max_bytes);
    self->checker = (sch_gamer_t *) zmalloc (sizeof (sch_gamer_t));
    self->checker->known = true;
    self->checker->parked = zlistx_new ();
    self->rng = c->seed ? c->seed : 1;
    for (const p2c_task_type_t *t = p2c_task_types (); t->name; t++)
        self->ntypes++;
    assert (self->ntypes <= SCH_MAX_TYPES);
    for (size_t i = 0; i < self->ntypes; i++) {
        self->index [i] = sch_index_new ();
        self->ring [i] = zlistx_new ();
        assert (self->index [i]);
    }
    return self;
}

static void s_task_free (sch_task_t **task_p);
static void s_peer_free (sch_peer_t **peer_p);
static void s_gw_free (sch_gw_t **gw_p);
static void s_gamer_free (sch_gamer_t **gamer_p);
static void s_val_free (sch_val_t **val_p);

void
sch_core_destroy (sch_core_t **self_p)
{
    sch_core_t *self = *self_p;
    if (!self)
        return;
    //  validations are shared by tasks: collect them once
    zhashx_t *vals = zhashx_new ();
    for (sch_task_t *t = (sch_task_t *) zhashx_first (self->tasks); t;
         t = (sch_task_t *) zhashx_next (self->tasks)) {
        if (t->val) {
            char key [32];
            snprintf (key, sizeof key, "%p", (void *) t->val);
            zhashx_update (vals, key, t->val);
        }
        s_task_free (&t);
    }
    for (sch_val_t *v = (sch_val_t *) zhashx_first (vals); v;
         v = (sch_val_t *) zhashx_next (vals))
        s_val_free (&v);
    zhashx_destroy (&vals);
    //  the indexes mark their entries (inside the peers) out as they go
    for (size_t i = 0; i < self->ntypes; i++)
        sch_index_destroy (&self->index [i]);
    for (sch_peer_t *p = (sch_peer_t *) zhashx_first (self->peers); p;
         p = (sch_peer_t *) zhashx_next (self->peers))
        s_peer_free (&p);
    for (sch_gw_t *g = (sch_gw_t *) zhashx_first (self->gateways); g;
         g = (sch_gw_t *) zhashx_next (self->gateways))
        s_gw_free (&g);
    for (sch_gamer_t *g = (sch_gamer_t *) zhashx_first (self->gamers); g;
         g = (sch_gamer_t *) zhashx_next (self->gamers))
        s_gamer_free (&g);
    s_gamer_free (&self->checker);
    for (sch_rep_t *r = (sch_rep_t *) zhashx_first (self->reps); r;
         r = (sch_rep_t *) zhashx_next (self->reps)) {
        zlistx_destroy (&r->peers);
        free (r);
    }
    zhashx_destroy (&self->tasks);
    zhashx_destroy (&self->peers);
    zhashx_destroy (&self->gateways);
    zhashx_destroy (&self->gamers);
    zhashx_destroy (&self->reps);
    for (sch_payout_t *po = (sch_payout_t *) zhashx_first (self->payouts); po;
         po = (sch_payout_t *) zhashx_next (self->payouts)) {
        free (po->key);
        free (po->id);
        free (po);
    }
    zhashx_destroy (&self->payouts);
    zlistx_destroy (&self->payout_fifo);
    sch_cache_destroy (&self->cache);
    for (size_t i = 0; i < self->ntypes; i++)
        zlistx_destroy (&self->ring [i]);
    free (self->heap);
    free (self);
    *self_p = NULL;
}

const sch_stats_t *
sch_core_stats (sch_core_t *self)
{
    self->stats.peers = zhashx_size (self->peers);
    return &self->stats;
}

int
sch_core_peer_busy (sch_core_t *self, const char *gateway, uint64_t conn)
{
    char key [SCH_MAX_ID + 32];
    snprintf (key, sizeof key, "%s/%" PRIu64, gateway, conn);
    sch_peer_t *peer = (sch_peer_t *) zhashx_lookup (self->peers, key);
    return peer ? (int) peer->busy : -1;
}

//  --------------------------------------------------------------------------
//  Small helpers

static char *
s_strndup_bounded (const char *s, size_t max)
{
    char *copy = strndup (s ? s : "", max);
    assert (copy);
    return copy;
}

static uint8_t *
s_memdup (const uint8_t *data, size_t size)
{
    if (!size)
        return NULL;
    uint8_t *copy = (uint8_t *) malloc (size);
    assert (copy);
    memcpy (copy, data, size);
    return copy;
}

//  A session's gateway id, or NULL when the session is missing or unusable.
static const char *
s_session_gateway (const P2c2r__Session *session)
{
    if (!session || !session->gateway || !*session->gateway
        || strlen (session->gateway) > SCH_MAX_ID)
        return NULL;
    return session->gateway;
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

static sch_val_mode_t
s_mode (sch_core_t *self, int type)
{
    sch_val_mode_t m = self->config.validation_type [type];
    return m == SCH_VAL_DEFAULT ? self->config.validation : m;
}

//  --------------------------------------------------------------------------
//  The timer heap: tasks ordered by wake_us

static void
s_heap_swap (sch_core_t *self, size_t a, size_t b)
{
    sch_task_t *t = self->heap [a];
    self->heap [a] = self->heap [b];
    self->heap [b] = t;
    self->heap [a]->heap_idx = a;
    self->heap [b]->heap_idx = b;
}

static void
s_heap_up (sch_core_t *self, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (self->heap [parent]->wake_us <= self->heap [i]->wake_us)
            break;
        s_heap_swap (self, i, parent);
        i = parent;
    }
}

static void
s_heap_down (sch_core_t *self, size_t i)
{
    while (true) {
        size_t l = 2 * i + 1, r = l + 1, min = i;
        if (l < self->heap_size && self->heap [l]->wake_us < self->heap [min]->wake_us)
            min = l;
        if (r < self->heap_size && self->heap [r]->wake_us < self->heap [min]->wake_us)
            min = r;
        if (min == i)
            break;
        s_heap_swap (self, i, min);
        i = min;
    }
}

static void
s_heap_remove (sch_core_t *self, sch_task_t *task)
{
    size_t i = task->heap_idx;
    if (i == SCH_NO_HEAP)
        return;
    size_t last = --self->heap_size;
    if (i != last) {
        self->heap [i] = self->heap [last];
        self->heap [i]->heap_idx = i;
        s_heap_down (self, i);
        s_heap_up (self, i);
    }
    task->heap_idx = SCH_NO_HEAP;
}

//  Sets when the cron must next look at the task, from its state.
static void
s_task_arm (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    if (task->state == SCH_PARKED)
        task->wake_us = now_us + self->config.balance_wait_ms * 1000;
    else
    if (task->state == SCH_QUEUED || task->state == SCH_VALIDATING)
        task->wake_us = task->deadline_us;
    else
    if (task->state == SCH_RUNNING)
        task->wake_us = task->attempt_end_us;       //  never after the deadline
    else
        task->wake_us = task->settle_next_us;
    if (task->heap_idx == SCH_NO_HEAP) {
        if (self->heap_size == self->heap_cap) {
            self->heap_cap = self->heap_cap ? self->heap_cap * 2 : 1024;
            self->heap = (sch_task_t **) realloc (self->heap,
                                                  self->heap_cap * sizeof (sch_task_t *));
            assert (self->heap);
        }
        task->heap_idx = self->heap_size++;
        self->heap [task->heap_idx] = task;
    }
    s_heap_down (self, task->heap_idx);
    s_heap_up (self, task->heap_idx);
}

//  --------------------------------------------------------------------------
//  Gateways

static sch_gw_t *
s_gw_require (sch_core_t *self, const char *id)
{
    sch_gw_t *gw = (sch_gw_t *) zhashx_lookup (self->gateways, id);
    if (!gw) {
        gw = (sch_gw_t *) zmalloc (sizeof (sch_gw_t));
        gw->id = strdup (id);
        gw->peers = zlistx_new ();
        gw->tasks = zlistx_new ();
        zhashx_insert (self->gateways, id, gw);
    }
    return gw;
}

static void
s_gw_free (sch_gw_t **gw_p)
{
    sch_gw_t *gw = *gw_p;
    zlistx_destroy (&gw->peers);
    zlistx_destroy (&gw->tasks);
    free (gw->id);
    free (gw);
    *gw_p = NULL;
}

//  Forgets a gateway that holds nothing any more.
static void
s_gw_collect (sch_core_t *self, sch_gw_t *gw)
{
    if (zlistx_size (gw->peers) || zlistx_size (gw->tasks))
        return;
    zhashx_delete (self->gateways, gw->id);
    s_gw_free (&gw);
}

//  --------------------------------------------------------------------------
//  Gamers

static void
s_gamer_free (sch_gamer_t **gamer_p)
{
    sch_gamer_t *g = *gamer_p;
    zlistx_destroy (&g->parked);
    for (int i = 0; i < SCH_MAX_TYPES; i++)
        zlistx_destroy (&g->queue [i]);
    free (g);
    *gamer_p = NULL;
}

//  Gamers are their accounts; a session without an account (which the
//  gateways do not make) is a gamer of its own.
static sch_gamer_t *
s_gamer_require (sch_core_t *self, int64_t account, const char *gateway, uint64_t conn)
{
    char key [SCH_MAX_ID + 48];
    if (account > 0)
        snprintf (key, sizeof key, "a%" PRId64, account);
    else
        snprintf (key, sizeof key, "s%s/%" PRIu64, gateway, conn);
    sch_gamer_t *g = (sch_gamer_t *) zhashx_lookup (self->gamers, key);
    if (!g) {
        g = (sch_gamer_t *) zmalloc (sizeof (sch_gamer_t));
        g->account = account;
        snprintf (g->key, sizeof g->key, "%.31s", key);
        g->parked = zlistx_new ();
        zhashx_insert (self->gamers, key, g);
    }
    return g;
}

//  The most a task may cost its gamer: its deadline or its type's ceiling
//  of billed time, whichever is smaller, at the gamer rate.
static int64_t
s_max_charge (sch_core_t *self, sch_task_t *task)
{
    uint64_t us = (uint64_t) task->deadline_ms * 1000;
    uint64_t ceiling = s_type (task->type)->max_billed_us;
    if (us > ceiling)
        us = ceiling;
    p2c_rates_t rates = { self->config.gamer_rate_per_hour, 0, 0 };
    p2c_split_t split;
    p2c_money_split (&rates, us, &split);
    return split.gamer_charge;
}

//  --------------------------------------------------------------------------
//  Sending

static void
s_send (sch_core_t *self, const char *dest, P2c2r__Internal *msg)
{
    self->send (self->send_arg, dest, msg);
}

static void
s_latency (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    int64_t us = now_us - task->submit_us;
    if (us < 0)
        us = 0;
    self->latency_us [self->latency_n++ % SCH_LATENCIES] = us > UINT32_MAX ? UINT32_MAX
                                                                          : (uint32_t) us;
}

//  The one terminal reply to a task, to the gamer's gateway.
static void
s_deliver (sch_core_t *self, sch_task_t *task, P2c2r__TaskReply *reply)
{
    assert (!task->is_check && task->gw);
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = task->gw->id;
    gamer.conn = task->gamer_conn;
    P2c2r__Deliver deliver = P2C2R__DELIVER__INIT;
    deliver.gamer = &gamer;
    deliver.reply = reply;
    reply->task_id = task->id;
    reply->client_ref = task->client_ref;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_DELIVER;
    msg.deliver = &deliver;
    s_send (self, task->gw->id, &msg);
}

static void
s_deliver_error (sch_core_t *self, sch_task_t *task, sch_err_t err, const char *text)
{
    if (task->is_check)
        return;         //  nobody waits for a check
    P2c2r__TaskReply reply = P2C2R__TASK_REPLY__INIT;
    reply.ok = false;
    reply.error_code = (char *) sch_err_name (err);
    reply.error = (char *) (text ? text : "");
    s_deliver (self, task, &reply);
    self->stats.failed [err]++;
    log_debug ("task failed id=%s code=%s attempts=%u", task->id, sch_err_name (err),
               task->attempts);
}

static void
s_send_settle (sch_core_t *self, sch_task_t *task)
{
    P2c2r__SettleRequest req = P2C2R__SETTLE_REQUEST__INIT;
    req.task_id = task->id;
    req.gamer_account = task->gamer_account;
    req.peer_account = task->peer_account;
    req.task_type = (char *) s_type (task->type)->name;
    req.billed_us = task->billed_us;
    req.compute_us = task->compute_us;
    req.observed_us = task->observed_us;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_REQUEST;
    msg.settle_request = &req;
    s_send (self, "ledger", &msg);
}

static void
s_send_balance_query (sch_core_t *self, int64_t account)
{
    P2c2r__BalanceQuery q = P2C2R__BALANCE_QUERY__INIT;
    q.n_account_ids = 1;
    q.account_ids = &account;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_BALANCE_QUERY;
    msg.balance_query = &q;
    s_send (self, "ledger", &msg);
    self->stats.balance_queries++;
}

static void
s_payout_send (sch_core_t *self, sch_payout_t *po)
{
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    P2c2r__SettleRequest req = P2C2R__SETTLE_REQUEST__INIT;
    P2c2r__SettleReverse rev = P2C2R__SETTLE_REVERSE__INIT;
    if (po->reverse) {
        rev.task_id = po->id;
        rev.reason = "lost validation";
        msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_REVERSE;
        msg.settle_reverse = &rev;
    }
    else {
        req.task_id = po->id;
        req.gamer_account = 0;          //  the treasury pays
        req.peer_account = po->peer_account;
        req.task_type = (char *) s_type (po->type)->name;
        req.billed_us = po->billed_us;
        req.compute_us = po->compute_us;
        req.observed_us = po->observed_us;
        msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_REQUEST;
        msg.settle_request = &req;
    }
    s_send (self, "ledger", &msg);
    po->tries++;
}

//  Asks the ledger to pay a valid check run from the treasury (e: the run's
//  result), or to reverse the earning of a paid result that lost.
static void
s_payout (sch_core_t *self, const sch_vent_t *e, int type, bool reverse, int64_t now_us)
{
    char key [SCH_MAX_ID + 32];
    snprintf (key, sizeof key, "%s%s", reverse ? "r:" : "", e->run_id);
    if (zhashx_lookup (self->payouts, key))
        return;
    sch_payout_t *po = (sch_payout_t *) zmalloc (sizeof (sch_payout_t));
    po->key = strdup (key);
    po->id = strdup (e->run_id);
    po->reverse = reverse;
    po->peer_account = e->account;
    po->type = type;
    po->billed_us = e->billed_us;
    po->compute_us = e->compute_us;
    po->observed_us = e->observed_us;
    po->next_us = now_us + self->config.settle_retry_ms * 1000;
    po->handle = zlistx_add_end (self->payout_fifo, po);
    zhashx_insert (self->payouts, key, po);
    self->stats.payouts_pending++;
    if (reverse)
        self->stats.reversals++;
    else
        self->stats.check_payouts++;
    s_payout_send (self, po);
}

static void
s_payout_forget (sch_core_t *self, sch_payout_t *po)
{
    zlistx_delete (self->payout_fifo, po->handle);
    zhashx_delete (self->payouts, po->key);
    self->stats.payouts_pending--;
    free (po->key);
    free (po->id);
    free (po);
}

//  The ledger's answer to a payout; false when the ack is not one of ours.
static bool
s_payout_ack (sch_core_t *self, const P2c2r__SettleAck *ack, int64_t now_us)
{
    (void) now_us;
    char key [SCH_MAX_ID + 32];
    snprintf (key, sizeof key, "%s%.*s", ack->reversed ? "r:" : "", SCH_MAX_ID + 16,
              ack->task_id);
    sch_payout_t *po = (sch_payout_t *) zhashx_lookup (self->payouts, key);
    if (!po)
        return false;
    if (ack->ok) {
        self->stats.payouts_done++;
        log_info ("validation: %s task=%s account=%" PRId64 " amount_pico=%" PRId64,
                  po->reverse ? "earning reversed" : "check run paid by the treasury", po->id,
                  po->peer_account, ack->peer_earning_pico);
        s_payout_forget (self, po);
        return true;
    }
    //  a reversal may overtake its task's settlement: the cron resends it;
    //  anything else refused is refused for good
    if (!po->reverse || po->tries >= SCH_PAYOUT_TRIES) {
        self->stats.payouts_dropped++;
        log_warn ("validation: payout refused task=%s reverse=%d", po->id, po->reverse);
        s_payout_forget (self, po);
    }
    return true;
}

//  Resends the payouts whose time has come (from the cron).
static void
s_payout_cron (sch_core_t *self, int64_t now_us)
{
    sch_payout_t *po;
    while ((po = (sch_payout_t *) zlistx_first (self->payout_fifo)) && po->next_us <= now_us) {
        if (po->tries >= SCH_PAYOUT_TRIES) {
            self->stats.payouts_dropped++;
            log_warn ("validation: payout never acked task=%s reverse=%d", po->id, po->reverse);
            s_payout_forget (self, po);
            continue;
        }
        s_payout_send (self, po);
        self->stats.settle_retries++;
        po->next_us = now_us + self->config.settle_retry_ms * 1000;
        zlistx_move_end (self->payout_fifo, po->handle);
    }
}

//  --------------------------------------------------------------------------
//  Reputation

static sch_rep_t *
s_rep_require (sch_core_t *self, int64_t account, int64_t now_us)
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

static void
s_rep_decay (sch_core_t *self, sch_rep_t *rep, int64_t now_us)
{
    if (now_us <= rep->at_us)
        return;
    double f = exp2 (-(double) (now_us - rep->at_us) / (self->config.rep_half_life_ms * 1000.0));
    rep->valid *= f;
    rep->invalid *= f;
    rep->at_us = now_us;
}

//  New or recently caught: its results are checked more often.
static bool
s_rep_doubted (sch_core_t *self, sch_rep_t *rep)
{
    return rep->valid + rep->invalid < self->config.new_samples || rep->invalid >= 0.5;
}

static void s_peer_rekey (sch_core_t *self, sch_peer_t *peer);

//  Bans or unbans the account from its decayed counts; a banned account's
//  peers leave the indexes (no work) and count as not eligible.
static void
s_rep_judge (sch_core_t *self, sch_rep_t *rep, int64_t now_us)
{
    s_rep_decay (self, rep, now_us);
    double total = rep->valid + rep->invalid;
    //  counts are decayed: round them, so "2 invalid results" means 2 recent ones
    bool ban = floor (rep->invalid + 0.5) >= self->config.ban_min_invalid
            && rep->invalid * 1000.0 >= self->config.ban_permille * total;
    if (ban == rep->banned)
        return;
    rep->banned = ban;
    if (ban)
        self->stats.bans++;
    for (sch_peer_t *p = (sch_peer_t *) zlistx_first (rep->peers); p;
         p = (sch_peer_t *) zlistx_next (rep->peers)) {
        for (size_t t = 0; t < self->ntypes; t++)
            if (p->pt [t]) {
                if (ban)
                    self->eligible [t]--;
                else
                    self->eligible [t]++;
            }
        if (ban)
            self->stats.banned_peers++;
        else
            self->stats.banned_peers--;
        s_peer_rekey (self, p);
    }
    if (ban)
        log_warn ("peer banned account=%" PRId64 " valid=%.2f invalid=%.2f peers=%zu",
                  rep->account, rep->valid, rep->invalid, zlistx_size (rep->peers));
    else
        log_info ("peer unbanned account=%" PRId64 " valid=%.2f invalid=%.2f", rep->account,
                  rep->valid, rep->invalid);
}

static void
s_rep_verdict (sch_core_t *self, int64_t account, bool valid, int64_t now_us)
{
    sch_rep_t *rep = s_rep_require (self, account, now_us);
    s_rep_decay (self, rep, now_us);
    if (valid)
        rep->valid += 1;
    else
        rep->invalid += 1;
    s_rep_judge (self, rep, now_us);
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
    s_rep_decay (self, rep, now_us);
    *valid_p = rep->valid;
    *invalid_p = rep->invalid;
    *banned_p = rep->banned;
    return true;
}

//  --------------------------------------------------------------------------
//  Peers in the indexes

//  Expected compute time of a task of the type on the peer: its own moving
//  average; else the type's average scaled by its bench figure against the
//  fleet's; else the type's average.
static double
s_exec_us (sch_core_t *self, sch_peer_t *peer, int type)
{
    sch_ptype_t *pt = peer->pt [type];
    if (pt->exec_us > 0)
        return pt->exec_us;
    double base = self->type_exec_us [type] > 0 ? self->type_exec_us [type]
                                                 : SCH_DEFAULT_EXEC_US;
    if (pt->ref_us && self->ref_n [type])
        return base * (double) pt->ref_us / (self->ref_sum [type] / self->ref_n [type]);
    return base;
}

//  Puts the peer's entries where its load, speed and standing say: in each
//  of its types' indexes while it has a free slot and is not banned.
static void
s_peer_rekey (sch_core_t *self, sch_peer_t *peer)
{
    bool open = peer->busy < peer->slots && !peer->rep->banned;
    for (size_t t = 0; t < self->ntypes; t++) {
        sch_ptype_t *pt = peer->pt [t];
        if (!pt)
            continue;
        if (!open) {
            sch_index_remove (self->index [t], &pt->entry);
            continue;
        }
        //  expected finish: the round trip, plus the compute time stretched
        //  by the work already running there
        pt->entry.score = peer->rtt_us
                        + s_exec_us (self, peer, (int) t)
                          * (1.0 + (double) peer->busy / peer->slots);
        pt->entry.free = peer->slots - peer->busy;
        pt->entry.last = peer->last_assign;
        sch_index_update (self->index [t], &pt->entry);
    }
}

//  --------------------------------------------------------------------------
//  Validation records

static void
s_val_free (sch_val_t **val_p)
{
    sch_val_t *v = *val_p;
    for (size_t i = 0; i < v->n; i++) {
        free (v->e [i].version);
        free (v->e [i].run_id);
        free (v->e [i].result_json);
        free (v->e [i].blob);
    }
    for (size_t i = 0; i < v->nused; i++)
        free (v->used_key [i]);
    free (v->task_id);
    free (v->params_json);
    free (v->payload);
    free (v->cache_key);
    free (v);
    *val_p = NULL;
}

static void
s_val_unref (sch_core_t *self, sch_val_t *val)
{
    assert (val->refs > 0);
    if (--val->refs > 0)
        return;
    if (!val->done)
        self->stats.unresolved++;
    s_val_free (&val);
}

//  True when the peer already ran (or runs) the validated task.
static bool
s_val_used (sch_val_t *val, sch_peer_t *peer)
{
    for (size_t i = 0; i < val->nused; i++)
        if ((peer->account_id && val->used_account [i] == peer->account_id)
            || !strcmp (val->used_key [i], peer->key))
            return true;
    return false;
}

//  True when a live, unbanned peer of the task's type has not run it: a
//  spare check run can be placed. Runs only after a failed check (rare), and
//  looks at a bounded number of peers.
static bool
s_val_fresh_peer (sch_core_t *self, sch_val_t *val)
{
    size_t looked = 0;
    for (sch_peer_t *peer = (sch_peer_t *) zhashx_first (self->peers);
         peer && looked < 1000; peer = (sch_peer_t *) zhashx_next (self->peers), looked++)
        if ((peer->types & (1u << val->type)) && !peer->rep->banned && !s_val_used (val, peer))
            return true;
    return false;
}

static void
s_val_use (sch_val_t *val, sch_peer_t *peer)
{
    if (val->nused < SCH_VAL_RUNS + 4 && !s_val_used (val, peer)) {
        val->used_account [val->nused] = peer->account_id;
        val->used_key [val->nused++] = strdup (peer->key);
    }
}

//  --------------------------------------------------------------------------
//  Tasks

static void
s_task_free (sch_task_t **task_p)
{
    sch_task_t *task = *task_p;
    free (task->id);
    free (task->params_json);
    free (task->payload);
    free (task->client_ref);
    free (task->region);
    free (task->cache_key);
    free (task->last_peer);
    free (task->result_json);
    free (task->blob);
    if (task->frame && !task->is_tile) {
        //  only at sch_core_destroy: a forgotten task has let its frame go
        sch_tiles_destroy (&task->frame->tiles);
        free (task->frame);
    }
    free (task);
    *task_p = NULL;
}

//  The gauge counting tasks in a state.
static size_t *
s_gauge (sch_core_t *self, sch_state_t state)
{
    switch (state) {
        case SCH_PARKED: return &self->stats.parked;
        case SCH_QUEUED: return &self->stats.queued;
        case SCH_RUNNING: return &self->stats.running;
        case SCH_VALIDATING: return &self->stats.validating;
        default: return &self->stats.settling;
    }
}

static void
s_task_set_state (sch_core_t *self, sch_task_t *task, sch_state_t state)
{
    (*s_gauge (self, task->state))--;
    task->state = state;
    (*s_gauge (self, state))++;
}

//  Takes a running task off its peer and frees the slot; returns the peer.
static sch_peer_t *
s_task_unrun (sch_core_t *self, sch_task_t *task)
{
    assert (task->state == SCH_RUNNING && task->peer);
    sch_peer_t *peer = task->peer;
    zlistx_delete (peer->tasks, task->peer_handle);
    task->peer_handle = NULL;
    task->peer = NULL;
    assert (peer->busy > 0);
    peer->busy--;
    self->stats.busy_slots--;
    s_peer_rekey (self, peer);
    return peer;
}

//  Takes a queued task out of its gamer's queue (and the gamer out of the
//  type's ring when that was its last).
static void
s_task_unqueue (sch_core_t *self, sch_task_t *task)
{
    if (!task->queue_handle)
        return;
    sch_gamer_t *g = task->gamer;
    zlistx_delete (g->queue [task->type], task->queue_handle);
    task->queue_handle = NULL;
    g->queued--;
    if (zlistx_size (g->queue [task->type]) == 0 && g->ring_handle [task->type]) {
        zlistx_delete (self->ring [task->type], g->ring_handle [task->type]);
        g->ring_handle [task->type] = NULL;
    }
}

static void s_frame_forget (sch_core_t *self, sch_task_t *task);

//  Removes a task from every index and frees it. A running task must have
//  been taken off its peer first (the caller then gives the slot new work).
static void
s_task_forget (sch_core_t *self, sch_task_t *task)
{
    if (task->frame)
        s_frame_forget (self, task);
    assert (!task->peer);
    s_task_unqueue (self, task);
    if (task->park_handle) {
        zlistx_delete (task->gamer->parked, task->park_handle);
        task->park_handle = NULL;
    }
    task->gamer->reserve_pico -= task->reserved_pico;
    (*s_gauge (self, task->state))--;
    s_heap_remove (self, task);
    if (task->val) {
        if (task->is_check)
            task->val->checks_live--;
        else
            task->val->task = NULL;
        s_val_unref (self, task->val);
    }
    sch_gw_t *gw = task->gw;
    if (gw)
        zlistx_delete (gw->tasks, task->gw_handle);
    zhashx_delete (self->tasks, task->id);
    s_task_free (&task);
    if (gw)
        s_gw_collect (self, gw);
}

//  Starts an attempt of the task on the peer, which has a free slot.
static void
s_task_run (sch_core_t *self, sch_task_t *task, sch_peer_t *peer, int64_t now_us)
{
    int64_t timeout_us = self->config.attempt_timeout_ms * 1000;
    if (task->deadline_us - now_us < timeout_us)
        timeout_us = task->deadline_us - now_us;
    if (timeout_us < 1)
        timeout_us = 1;
    task->attempts++;
    if (task->attempts > 1)
        self->stats.reassigned++;
    self->stats.assigned++;
    task->peer = peer;
    task->peer_handle = zlistx_add_end (peer->tasks, task);
    peer->busy++;
    self->stats.busy_slots++;
    peer->last_assign = ++self->assign_seq;
    s_peer_rekey (self, peer);
    free (task->last_peer);
    task->last_peer = strdup (peer->key);
    if (task->val)
        s_val_use (task->val, peer);
    task->attempt_start_us = now_us;
    task->attempt_end_us = now_us + timeout_us;
    s_task_set_state (self, task, SCH_RUNNING);
    s_task_arm (self, task, now_us);

    P2c2r__Session session = P2C2R__SESSION__INIT;
    session.gateway = peer->gw->id;
    session.conn = peer->conn;
    P2c2r__Assign assign = P2C2R__ASSIGN__INIT;
    assign.task_id = task->id;
    assign.task_type = (char *) s_type (task->type)->name;
    assign.params_json = task->params_json;
    assign.payload.data = task->payload;
    assign.payload.len = task->payload_size;
    //  whole milliseconds, rounded up so the peer never gets 0
    assign.deadline_ms = (uint32_t) ((timeout_us + 999) / 1000);
    assign.attempt = task->attempts;
    P2c2r__TaskAssign ta = P2C2R__TASK_ASSIGN__INIT;
    ta.peer = &session;
    ta.assign = &assign;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_ASSIGN;
    msg.task_assign = &ta;
    s_send (self, peer->gw->id, &msg);
    log_debug ("task assigned id=%s peer=%s attempt=%u timeout_ms=%u", task->id, peer->key,
               task->attempts, assign.deadline_ms);
}

//  Puts the task in its gamer's queue of its type: at the end when new, at
//  the front when it comes back from a failed attempt (it waited longest).
static void
s_task_queue (sch_core_t *self, sch_task_t *task, bool front, int64_t now_us)
{
    sch_gamer_t *g = task->gamer;
    int t = task->type;
    if (!g->queue [t])
        g->queue [t] = zlistx_new ();
    task->queue_handle = front ? zlistx_add_start (g->queue [t], task)
                               : zlistx_add_end (g->queue [t], task);
    g->queued++;
    if (!g->ring_handle [t])
        g->ring_handle [t] = zlistx_add_end (self->ring [t], g);
    s_task_set_state (self, task, SCH_QUEUED);
    s_task_arm (self, task, now_us);
}

typedef struct {
    sch_task_t *task;
    const char *avoid;          //  a peer key to pass over, or NULL
    const char *region;         //  only peers of this region, or NULL
} s_pick_t;

//  A tile goes only to a peer that advertised the catalogue's kernel
//  version of its type: an older kernel, or the original demo's peers,
//  ignore `tile` and render the whole frame
static bool
s_tile_capable (sch_peer_t *peer, int type)
{
    const sch_ptype_t *pt = peer->pt [type];
    return pt && !strcmp (pt->version, s_type (type)->version);
}

static bool
s_pick_ok (void *arg, const sch_index_entry_t *entry)
{
    s_pick_t *pick = (s_pick_t *) arg;
    sch_peer_t *peer = (sch_peer_t *) entry->item;
    if (pick->avoid && !strcmp (peer->key, pick->avoid))
        return false;
    if (pick->region && strcmp (peer->region, pick->region))
        return false;
    if (pick->task->tile_run && !s_tile_capable (peer, pick->task->type))
        return false;
    return !pick->task->val || !s_val_used (pick->task->val, peer);
}

//  The eligible free peer with the best expected finish time. `avoid`
//  names a peer to take only when no other one is free; a validated task
//  never goes to a peer (account) that ran it. NULL when none is free.
static sch_peer_t *
s_choose_peer (sch_core_t *self, sch_task_t *task, const char *avoid)
{
    sch_index_t *index = self->index [task->type];
    sch_index_entry_t *e = NULL;
    //  Same region first: the best peers of the task's region among the
    //  first SCH_INDEX_LOOK in best-first order, then anyone
    if (task->region && *task->region) {
        s_pick_t pick = { task, avoid, task->region };
        e = sch_index_best (index, s_pick_ok, &pick, SCH_INDEX_LOOK);
        if (e)
            return (sch_peer_t *) e->item;
    }
    if (!avoid && !task->val && !task->tile_run)
        e = sch_index_best (index, NULL, NULL, 1);
    else {
        s_pick_t pick = { task, avoid, NULL };
        e = sch_index_best (index, s_pick_ok, &pick, SCH_INDEX_LOOK);
        if (!e && avoid) {
            pick.avoid = NULL;
            e = sch_index_best (index, s_pick_ok, &pick, SCH_INDEX_LOOK);
        }
    }
    return e ? (sch_peer_t *) e->item : NULL;
}

//  Gives the peer's free slots queued work: per type it runs, the head task
//  of the next gamer in that type's ring (round robin across gamers); across
//  types, the oldest of those heads.
static void
s_peer_pull (sch_core_t *self, sch_peer_t *peer, int64_t now_us)
{
    while (peer->busy < peer->slots && !peer->rep->banned) {
        sch_task_t *best = NULL;
        for (size_t t = 0; t < self->ntypes; t++) {
            if (!(peer->types & (1u << t)) || !zlistx_size (self->ring [t]))
                continue;
            int looked = 0;
            for (sch_gamer_t *g = (sch_gamer_t *) zlistx_first (self->ring [t]);
                 g && looked < SCH_RING_LOOK;
                 g = (sch_gamer_t *) zlistx_next (self->ring [t]), looked++) {
                //  The first task of the gamer's queue this peer may run. A
                //  check run never goes to a peer that ran its task: one at
                //  the head must not keep this peer idle while a task
                //  behind it could run here (the check runs of the treasury
                //  queue up behind each other, and a peer pulls only when
                //  it frees a slot)
                sch_task_t *head = NULL;
                int depth = 0;
                for (sch_task_t *q = (sch_task_t *) zlistx_first (g->queue [t]);
                     q && depth < SCH_QUEUE_LOOK;
                     q = (sch_task_t *) zlistx_next (g->queue [t]), depth++)
                    if ((!q->val || !s_val_used (q->val, peer))
                        && (!q->tile_run || s_tile_capable (peer, t))) {
                        head = q;
                        break;
                    }
                if (!head)
                    continue;       //  another gamer's task may run here
                if (!best || head->seq < best->seq)
                    best = head;
                break;
            }
        }
        if (!best)
            break;
        sch_gamer_t *g = best->gamer;
        int t = best->type;
        s_task_unqueue (self, best);
        //  served: to the back of the ring
        if (g->ring_handle [t])
            zlistx_move_end (self->ring [t], g->ring_handle [t]);
        s_task_run (self, best, peer, now_us);
    }
}

//  Runs the task at once or queues it; false when the queue is full (the
//  caller answers).
static bool
s_task_place (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    sch_peer_t *peer = s_choose_peer (self, task, NULL);
    if (peer) {
        s_task_run (self, task, peer, now_us);
        return true;
    }
    //  the task counts itself among the queued already
    if (self->stats.queued > self->config.queue_max
        || task->gamer->queued >= self->config.gamer_queue_max)
        return false;
    s_task_queue (self, task, false, now_us);
    log_debug ("task queued id=%s type=%s queued=%zu", task->id, s_type (task->type)->name,
               self->stats.queued);
    return true;
}

static void s_val_eval (sch_core_t *self, sch_val_t *val, int64_t now_us);
static void s_frame_fail (sch_core_t *self, sch_frame_t *frame, sch_err_t err, const char *text,
                          int64_t now_us);
static void s_tile_hold (sch_core_t *self, sch_task_t *task, const sch_vent_t *e, int64_t now_us);

//  Ends a task that failed: the gamer hears the error; a check that failed
//  lets its validation decide what next.
static void
s_task_fail (sch_core_t *self, sch_task_t *task, sch_err_t err, const char *text,
             int64_t now_us)
{
    if (task->is_tile) {
        //  a tile that cannot finish ends its frame
        s_frame_fail (self, task->frame, err, text, now_us);
        return;
    }
    if (task->is_check) {
        sch_val_t *val = task->val;
        val->refs++;            //  keep it through the forget
        s_task_forget (self, task);
        s_val_eval (self, val, now_us);
        s_val_unref (self, val);
        return;
    }
    s_deliver_error (self, task, err, text);
    s_task_forget (self, task);
}

//  After a lost peer or an expired attempt: try again while attempts and
//  time are left, else answer `timeout`. The task is off its peer.
static void
s_task_retry (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    if (task->gw && task->gw->down) {
        //  nobody is left to answer
        self->stats.dropped++;
        s_task_forget (self, task);
        return;
    }
    if (task->attempts >= self->config.max_attempts || now_us >= task->deadline_us) {
        s_task_fail (self, task, SCH_ERR_TIMEOUT, "no peer finished the task in time", now_us);
        return;
    }
    sch_peer_t *peer = s_choose_peer (self, task, task->last_peer);
    if (peer)
        s_task_run (self, task, peer, now_us);
    else
        s_task_queue (self, task, true, now_us);
}

//  A new check run of a validated task, for the checker's queue.
static void
s_check_spawn (sch_core_t *self, sch_val_t *val, int64_t now_us)
{
    char id [SCH_MAX_ID + 16];
    snprintf (id, sizeof id, "%s#c%u", val->task_id, val->runs);
    if (zhashx_lookup (self->tasks, id))
        return;
    sch_task_t *task = (sch_task_t *) zmalloc (sizeof (sch_task_t));
    task->id = strdup (id);
    task->type = val->type;
    task->seq = ++self->task_seq;
    task->is_check = true;
    //  a tile's check (id#tN#cM) also renders a tile: a gamer's task id,
    //  made by the gateway, has no '#'
    task->tile_run = strstr (val->task_id, "#t") != NULL;
    task->params_json = strdup (val->params_json);
    task->payload = s_memdup (val->payload, val->payload_size);
    task->payload_size = val->payload_size;
    task->client_ref = strdup ("");
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
    sch_peer_t *peer = s_choose_peer (self, task, NULL);
    if (peer)
        s_task_run (self, task, peer, now_us);
    else
        s_task_queue (self, task, false, now_us);
    log_debug ("check started id=%s run=%u", task->id, val->runs);
}

static sch_val_t *
s_val_new (sch_core_t *self, sch_task_t *task, sch_val_mode_t mode)
{
    (void) self;
    sch_val_t *val = (sch_val_t *) zmalloc (sizeof (sch_val_t));
    val->task_id = strdup (task->id);
    val->type = task->type;
    val->mode = mode;
    val->task = task;
    val->refs = 1;
    val->runs = 1;
    val->params_json = strdup (task->params_json);
    val->payload = s_memdup (task->payload, task->payload_size);
    val->payload_size = task->payload_size;
    val->cache_key = task->cache_key ? strdup (task->cache_key) : NULL;
    val->deadline_ms = task->deadline_ms;
    task->val = val;
    return val;
}

//  Moves the settlement figures of a result into the gamer's task and asks
//  the ledger to settle it.
static void
s_task_settle (sch_core_t *self, sch_task_t *task, const sch_vent_t *e, int64_t now_us)
{
    if (task->is_tile) {
        s_tile_hold (self, task, e, now_us);
        return;
    }
    if (task->cache_key && !sch_cache_version_ok (s_type (task->type)->name, e->version)) {
        //  another kernel version's result: delivered, never cached
        free (task->cache_key);
        task->cache_key = NULL;
    }
    task->peer_account = e->account;
    task->compute_us = e->compute_us;
    task->observed_us = e->observed_us;
    task->billed_us = e->billed_us;
    free (task->result_json);
    task->result_json = strdup (e->result_json);
    free (task->blob);
    task->blob = s_memdup (e->blob, e->blob_size);
    task->blob_size = e->blob_size;
    task->settle_next_us = now_us + self->config.settle_retry_ms * 1000;
    s_task_set_state (self, task, SCH_SETTLING);
    s_task_arm (self, task, now_us);
    s_send_settle (self, task);
    self->stats.settle_sent++;
}

static bool
s_vent_agree (const sch_vent_t *a, const sch_vent_t *b)
{
    return !strcmp (a->version, b->version) && !memcmp (a->hash, b->hash, 32);
}

//  Looks at a validation's results: two equal results (same kernel version,
//  same hash) win; every result of that version that differs loses. Starts a
//  tie-break run while none wins and runs are left; gives up otherwise.
static void
s_val_eval (sch_core_t *self, sch_val_t *val, int64_t now_us)
{
    int win = -1;
    for (size_t i = 0; i < val->n && win < 0; i++)
        for (size_t j = i + 1; j < val->n; j++)
            if (s_vent_agree (&val->e [i], &val->e [j])) {
                win = (int) i;
                break;
            }
    if (win >= 0) {
        sch_vent_t *w = &val->e [win];
        //  the gamer pays for the gamer's own run when it won, so that a
        //  treasury-paid run never shares the gamer task's id
        for (size_t k = 0; k < val->n; k++)
            if (!strcmp (val->e [k].run_id, val->task_id) && s_vent_agree (&val->e [k], w))
                w = &val->e [k];
        bool settle_now = !val->released && val->task && val->task->state == SCH_VALIDATING;
        if (settle_now)
            w->paid = true;
        bool first_lost = false;
        for (size_t k = 0; k < val->n; k++) {
            sch_vent_t *e = &val->e [k];
            if (e->counted || strcmp (e->version, w->version))
                continue;
            e->counted = true;
            bool valid = !memcmp (e->hash, w->hash, 32);
            s_rep_verdict (self, e->account, valid, now_us);
            if (!valid) {
                self->stats.invalid_results++;
                if (k == 0)
                    first_lost = true;
                if (e->paid) {
                    self->stats.paid_then_invalid++;
                    log_warn ("validation: paid result lost task=%s account=%" PRId64
                              " billed_us=%" PRIu64, val->task_id, e->account, e->billed_us);
                    s_payout (self, e, val->type, true, now_us);
                }
                else
                    log_info ("validation: result lost task=%s account=%" PRId64,
                              val->task_id, e->account);
            }
            else
            if (!e->paid && self->config.pay_checks) {
                //  a valid run the gamer does not pay for: the treasury does
                e->paid = true;
                s_payout (self, e, val->type, false, now_us);
            }
        }
        if (!val->done) {
            val->done = true;
            if (val->n > 2)
                self->stats.tiebreaks++;
            else
                self->stats.agreed++;
        }
        if (settle_now) {
            val->released = true;
            s_task_settle (self, val->task, w, now_us);
        }
        else
        if (val->released && first_lost && val->cache_key
            && sch_cache_version_ok (s_type (val->type)->name, w->version)) {
            //  the released result lost: the cache must not keep serving it
            sch_cache_drop (self->cache, val->cache_key);
            sch_cache_put (self->cache, val->cache_key, w->result_json, w->blob,
                           w->blob_size, w->compute_us, now_us);
        }
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
                      || (val->runs < SCH_VAL_RUNS + SCH_VAL_SPARE && s_val_fresh_peer (self, val)))
        && self->stats.queued < self->config.queue_max) {
        s_check_spawn (self, val, now_us);
        return;
    }
    val->done = true;
    self->stats.unresolved++;
    log_info ("validation unresolved task=%s results=%zu", val->task_id, val->n);
    if (val->task && !val->released && val->task->state == SCH_VALIDATING) {
        s_task_fail (self, val->task, SCH_ERR_REJECTED, "peers disagree on the result", now_us);
    }
}

//  Adds a result to a validation.
static void
s_val_add (sch_core_t *self, sch_val_t *val, int64_t account, const P2c2r__PeerResult *res,
           uint64_t billed, uint64_t observed, bool paid)
{
    if (val->n >= SCH_VAL_RUNS)
        return;
    sch_vent_t *e = &val->e [val->n++];
    e->account = account;
    e->run_id = s_strndup_bounded (res->task_id, SCH_MAX_ID + 16);
    e->version = s_strndup_bounded (res->kernel_version, SCH_MAX_SHORT);
    e->result_json = s_strndup_bounded (res->result_json, P2C_MAX_INTERNAL);
    e->blob = s_memdup (res->blob.data, res->blob.len);
    e->blob_size = e->blob ? res->blob.len : 0;
    s_result_hash (e->result_json, e->blob, e->blob_size, e->hash);
    e->compute_us = res->compute_us;
    e->observed_us = observed;
    e->billed_us = billed;
    e->paid = paid;
    if (val->n > 1 && strcmp (e->version, val->e [0].version))
        self->stats.incomparable++;
}

//  --------------------------------------------------------------------------
//  Peers

static void
s_peer_free (sch_peer_t **peer_p)
{
    sch_peer_t *peer = *peer_p;
    zlistx_destroy (&peer->tasks);
    for (int t = 0; t < SCH_MAX_TYPES; t++)
        if (peer->pt [t]) {
            free (peer->pt [t]->version);
            free (peer->pt [t]);
        }
    free (peer->key);
    free (peer->peer_id);
    free (peer->region);
    free (peer);
    *peer_p = NULL;
}

//  Drops the peer's side of a type (it no longer runs it, or it left).
static void
s_peer_drop_type (sch_core_t *self, sch_peer_t *peer, int t)
{
    sch_ptype_t *pt = peer->pt [t];
    sch_index_remove (self->index [t], &pt->entry);
    if (!peer->rep->banned)
        self->eligible [t]--;
    if (pt->ref_us) {
        self->ref_sum [t] -= (double) pt->ref_us;
        self->ref_n [t]--;
    }
    free (pt->version);
    free (pt);
    peer->pt [t] = NULL;
}

//  Forgets a peer whose connection is gone and retries its tasks elsewhere.
static void
s_peer_lost (sch_core_t *self, sch_peer_t *peer, int64_t now_us, const char *why)
{
    //  out of the choice first, so that its tasks go elsewhere
    for (size_t t = 0; t < self->ntypes; t++)
        if (peer->pt [t])
            s_peer_drop_type (self, peer, (int) t);
    peer->types = 0;
    zhashx_delete (self->peers, peer->key);
    self->stats.slots -= peer->slots;
    if (peer->rep->banned)
        self->stats.banned_peers--;
    zlistx_delete (peer->rep->peers, peer->rep_handle);
    log_info ("peer down key=%s peer_id=%s why=%s tasks=%zu", peer->key, peer->peer_id, why,
              zlistx_size (peer->tasks));
    sch_task_t *task;
    while ((task = (sch_task_t *) zlistx_first (peer->tasks))) {
        s_task_unrun (self, task);
        s_task_retry (self, task, now_us);
    }
    //  only now leave the gateway: while listed there, the peer keeps it
    //  from being collected as its tasks are forgotten
    sch_gw_t *gw = peer->gw;
    zlistx_delete (gw->peers, peer->gw_handle);
    s_peer_free (&peer);
    s_gw_collect (self, gw);
}

//  True when the peer's advertised resources meet the type's needs.
static bool
s_peer_fits (sch_core_t *self, const P2c2r__Capabilities *caps, int t)
{
    const sch_core_config_t *c = &self->config;
    if (c->needs_gpu [t] && (!caps || !caps->gpu))
        return false;
    if (c->needs_ram_gb [t] && (!caps || caps->ram_gb < c->needs_ram_gb [t]))
        return false;
    if (c->needs_vram_gb [t] && (!caps || caps->gpu_vram_gb < c->needs_vram_gb [t]))
        return false;
    return true;
}

static void
s_on_peer_up (sch_core_t *self, const P2c2r__PeerUp *up, int64_t now_us)
{
    const char *gateway = s_session_gateway (up->session);
    if (!gateway) {
        self->stats.bad_messages++;
        log_debug ("bad PeerUp: no session");
        return;
    }
    char key [SCH_MAX_ID + 32];
    snprintf (key, sizeof key, "%s/%" PRIu64, gateway, up->session->conn);
    const P2c2r__Capabilities *caps = up->capabilities;
    uint32_t slots = caps && caps->slots ? caps->slots : 1;
    if (slots > SCH_MAX_SLOTS)
        slots = SCH_MAX_SLOTS;
    uint32_t types = 0;
    for (size_t i = 0; caps && i < caps->n_task_types; i++) {
        int t = s_type_index (caps->task_types [i]);
        if (t >= 0 && s_peer_fits (self, caps, t))
            types |= 1u << t;
    }
    sch_peer_t *peer = (sch_peer_t *) zhashx_lookup (self->peers, key);
    bool fresh = !peer;
    if (fresh) {
        peer = (sch_peer_t *) zmalloc (sizeof (sch_peer_t));
        peer->key = strdup (key);
        peer->conn = up->session->conn;
        peer->gw = s_gw_require (self, gateway);
        peer->gw_handle = zlistx_add_end (peer->gw->peers, peer);
        peer->tasks = zlistx_new ();
        peer->account_id = up->account_id;
        //  reputation follows the account across reconnects
        peer->rep = s_rep_require (self, up->account_id, now_us);
        peer->rep_handle = zlistx_add_end (peer->rep->peers, peer);
        if (peer->rep->banned)
            self->stats.banned_peers++;
        zhashx_insert (self->peers, key, peer);
    }
    else
        self->stats.slots -= peer->slots;
    //  a gateway that speaks is alive, whatever the broker said before
    peer->gw->down = false;
    free (peer->peer_id);
    peer->peer_id = s_strndup_bounded (up->peer_id, SCH_MAX_ID);
    free (peer->region);
    peer->region = s_strndup_bounded (caps ? caps->region : "", SCH_MAX_SHORT);
    peer->slots = slots;
    self->stats.slots += slots;
    for (size_t t = 0; t < self->ntypes; t++) {
        bool want = types & (1u << t);
        if (!want && peer->pt [t])
            s_peer_drop_type (self, peer, (int) t);
        if (!want)
            continue;
        sch_ptype_t *pt = peer->pt [t];
        if (!pt) {
            pt = peer->pt [t] = (sch_ptype_t *) zmalloc (sizeof (sch_ptype_t));
            pt->entry.item = peer;
            pt->entry.pos = SCH_INDEX_NONE;
            pt->version = strdup ("");
            if (!peer->rep->banned)
                self->eligible [t]++;
        }
        //  the bench figures and kernel version of this type, when sent
        if (pt->ref_us) {
            self->ref_sum [t] -= (double) pt->ref_us;
            self->ref_n [t]--;
            pt->ref_us = 0;
        }
        for (size_t k = 0; caps && k < caps->n_kernels; k++) {
            const P2c2r__KernelInfo *ki = caps->kernels [k];
            if (!ki || s_type_index (ki->task_type) != (int) t)
                continue;
            free (pt->version);
            pt->version = s_strndup_bounded (ki->version, SCH_MAX_SHORT);
            pt->ref_us = ki->reference_us <= 3600000000ULL ? ki->reference_us : 0;
        }
        if (pt->ref_us) {
            self->ref_sum [t] += (double) pt->ref_us;
            self->ref_n [t]++;
        }
    }
    peer->types = types;
    s_peer_rekey (self, peer);
    log_info ("peer %s key=%s peer_id=%s account=%" PRId64 " slots=%u types=%d region=%s%s",
              fresh ? "up" : "refreshed", peer->key, peer->peer_id, peer->account_id, slots,
              __builtin_popcount (types), peer->region, peer->rep->banned ? " banned=1" : "");
    s_peer_pull (self, peer, now_us);
}

static void
s_on_peer_down (sch_core_t *self, const P2c2r__PeerDown *down, int64_t now_us)
{
    const char *gateway = s_session_gateway (down->session);
    if (!gateway) {
        self->stats.bad_messages++;
        log_debug ("bad PeerDown: no session");
        return;
    }
    char key [SCH_MAX_ID + 32];
    snprintf (key, sizeof key, "%s/%" PRIu64, gateway, down->session->conn);
    sch_peer_t *peer = (sch_peer_t *) zhashx_lookup (self->peers, key);
    if (peer)
        s_peer_lost (self, peer, now_us, "peer_down");
    else
        log_debug ("PeerDown for unknown peer key=%s", key);
}

//  A gateway is gone: its peers with it; its gamers' waiting tasks have
//  nobody to answer to. Their running tasks finish and settle: the peers
//  did the work.
static void
s_on_gateway_down (sch_core_t *self, const char *id, int64_t now_us)
{
    sch_gw_t *gw = (sch_gw_t *) zhashx_lookup (self->gateways, id);
    if (!gw)
        return;
    gw->down = true;
    size_t npeers = zlistx_size (gw->peers);
    //  the gateway record goes away with its last peer when no gamer task
    //  holds it, so look it up again each time
    sch_peer_t *peer;
    while ((gw = (sch_gw_t *) zhashx_lookup (self->gateways, id))
           && (peer = (sch_peer_t *) zlistx_first (gw->peers)))
        s_peer_lost (self, peer, now_us, "gateway_down");
    size_t dropped = 0;
    if (gw) {
        zlistx_t *doomed = zlistx_new ();
        for (sch_task_t *t = (sch_task_t *) zlistx_first (gw->tasks); t;
             t = (sch_task_t *) zlistx_next (gw->tasks))
            if (t->state == SCH_QUEUED || t->state == SCH_PARKED)
                zlistx_add_end (doomed, t);
        dropped = zlistx_size (doomed);
        for (sch_task_t *t = (sch_task_t *) zlistx_first (doomed); t;
             t = (sch_task_t *) zlistx_next (doomed))
            s_task_forget (self, t);       //  may free gw when it was the last
        zlistx_destroy (&doomed);
        self->stats.dropped += dropped;
    }
    log_info ("gateway down id=%s peers=%zu queued_dropped=%zu", id, npeers, dropped);
}

//  --------------------------------------------------------------------------
//  Tasks from gamers

//  Answers a submit that never became a task.
static void
s_reject_submit (sch_core_t *self, const P2c2r__TaskSubmit *sub, const char *gateway,
                 sch_err_t err, const char *text)
{
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = (char *) gateway;
    gamer.conn = sub->gamer->conn;
    P2c2r__TaskReply reply = P2C2R__TASK_REPLY__INIT;
    reply.task_id = sub->task_id;
    reply.client_ref = sub->submit && sub->submit->client_ref ? sub->submit->client_ref : "";
    reply.ok = false;
    reply.error_code = (char *) sch_err_name (err);
    reply.error = (char *) text;
    P2c2r__Deliver deliver = P2C2R__DELIVER__INIT;
    deliver.gamer = &gamer;
    deliver.reply = &reply;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_DELIVER;
    msg.deliver = &deliver;
    s_send (self, gateway, &msg);
    self->stats.failed [err]++;
    log_debug ("task refused id=%s code=%s", sub->task_id, sch_err_name (err));
}


//  --------------------------------------------------------------------------
//  Frames split into tiles (sch_tiles.h; struct _sch_frame_t above)

static void s_task_start (sch_core_t *self, sch_task_t *task, int64_t now_us);

//  A task leaves: a tile leaves its frame; the gamer's task takes its live
//  tiles with it (a running one is taken off its peer, whose late answer
//  is then stale) and frees the frame.
static void
s_frame_forget (sch_core_t *self, sch_task_t *task)
{
    sch_frame_t *frame = task->frame;
    task->frame = NULL;
    if (task->is_tile) {
        frame->child [task->tile] = NULL;
        return;
    }
    for (size_t k = 0; k < sch_tiles_count (frame->tiles); k++) {
        sch_task_t *tile = frame->child [k];
        if (!tile)
            continue;
        frame->child [k] = NULL;
        tile->frame = NULL;
        if (tile->peer)
            s_task_unrun (self, tile);
        s_task_forget (self, tile);
    }
    self->frame_bytes -= (size_t) sch_tiles_width (frame->tiles)
                       * sch_tiles_height (frame->tiles) * 3;
    sch_tiles_destroy (&frame->tiles);
    free (frame);
}

//  Splits the gamer's ray-tracing task into tiles when its frame is above
//  the threshold, and starts them; true when it did (the task then waits
//  for its tiles until its deadline, or has been answered).
static bool
s_frame_split (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    if (task->is_check || task->is_tile || !task->gw || !self->config.tile_px)
        return false;
    //  without a peer that renders tiles the frame runs whole (a fleet of
    //  the original demo's peers); the scan stops at the first that does
    bool capable = false;
    for (sch_peer_t *p = (sch_peer_t *) zhashx_first (self->peers); p && !capable;
         p = (sch_peer_t *) zhashx_next (self->peers))
        capable = !p->rep->banned && s_tile_capable (p, task->type);
    if (!capable)
        return false;
    sch_tiles_t *tiles = sch_tiles_new (s_type (task->type)->name, task->params_json,
                                        self->config.tile_px, self->config.tile_max);
    if (!tiles)
        return false;
    size_t bytes = (size_t) sch_tiles_width (tiles) * sch_tiles_height (tiles) * 3;
    if (self->frame_bytes + bytes > SCH_FRAME_BYTES_MAX) {
        log_info ("frame not split id=%s: split frames hold %zu bytes already", task->id,
                  self->frame_bytes);
        sch_tiles_destroy (&tiles);
        return false;
    }
    size_t n = sch_tiles_count (tiles);
    //  every tile may cost what one task may: the reserve grows to match
    int64_t more = task->reserved_pico * (int64_t) (n - 1);
    sch_gamer_t *g = task->gamer;
    if (more && g->balance_pico - g->reserve_pico - more < self->config.funds_floor_pico) {
        sch_tiles_destroy (&tiles);
        s_task_fail (self, task, SCH_ERR_INSUFFICIENT_FUNDS, "balance too low for the frame's tiles",
                     now_us);
        return true;
    }
    task->reserved_pico += more;
    g->reserve_pico += more;
    self->frame_bytes += bytes;
    sch_frame_t *frame = (sch_frame_t *) zmalloc (sizeof (sch_frame_t));
    frame->tiles = tiles;
    frame->parent = task;
    frame->current = true;
    task->frame = frame;
    s_task_set_state (self, task, SCH_VALIDATING);
    s_task_arm (self, task, now_us);
    for (size_t k = 0; k < n; k++) {
        char id [SCH_MAX_ID + 16];
        snprintf (id, sizeof id, "%s#t%zu", task->id, k);
        sch_task_t *tile = (sch_task_t *) zmalloc (sizeof (sch_task_t));
        tile->id = strdup (id);
        tile->type = task->type;
        tile->seq = ++self->task_seq;
        tile->is_tile = true;
        tile->tile_run = true;
        tile->frame = frame;
        tile->tile = k;
        tile->params_json = sch_tiles_params (tiles, k);
        assert (tile->params_json);
        tile->client_ref = strdup ("");
        tile->region = strdup (task->region);
        tile->gamer_account = task->gamer_account;
        tile->gamer = task->gamer;
        tile->submit_us = now_us;
        tile->deadline_ms = task->deadline_ms;
        tile->deadline_us = task->deadline_us;
        tile->heap_idx = SCH_NO_HEAP;
        tile->state = SCH_QUEUED;       //  counted as queued until placed
        self->stats.queued++;
        zhashx_insert (self->tasks, tile->id, tile);
        frame->child [k] = tile;
    }
    log_info ("frame split id=%s tiles=%zu size=%ux%u", task->id, n, sch_tiles_width (tiles),
              sch_tiles_height (tiles));
    //  a tile refused at once (no peers, full queue) ends the frame and
    //  frees it: stop starting tiles then
    char *id = strdup (task->id);
    for (size_t k = 0; k < n && zhashx_lookup (self->tasks, id); k++)
        if (frame->child [k] && frame->child [k]->state == SCH_QUEUED
            && !frame->child [k]->queue_handle)
            s_task_start (self, frame->child [k], now_us);
    free (id);
    return true;
}

//  The frame cannot finish: one error to the gamer, who is charged for no
//  tile. The peers of the tiles held so far did valid work: the treasury
//  pays them as it pays check runs (--pay-checks).
static void
s_frame_fail (sch_core_t *self, sch_frame_t *frame, sch_err_t err, const char *text,
              int64_t now_us)
{
    for (size_t k = 0; self->config.pay_checks && k < sch_tiles_count (frame->tiles); k++) {
        sch_task_t *tile = frame->child [k];
        if (!tile || tile->state != SCH_VALIDATING || !tile->result_json)
            continue;
        sch_vent_t e = { 0 };
        e.account = tile->peer_account;
        e.run_id = tile->id;
        e.compute_us = tile->compute_us;
        e.observed_us = tile->observed_us;
        e.billed_us = tile->billed_us;
        s_payout (self, &e, tile->type, false, now_us);
    }
    log_info ("frame failed id=%s code=%s tiles_in=%zu/%zu", frame->parent->id, sch_err_name (err),
              frame->held, sch_tiles_count (frame->tiles));
    s_task_fail (self, frame->parent, err, text, now_us);
}

//  A tile's result that won (or needs no validation): held for its frame.
//  When the last tile is in, every tile is settled on its own.
static void
s_tile_hold (sch_core_t *self, sch_task_t *task, const sch_vent_t *e, int64_t now_us)
{
    sch_frame_t *frame = task->frame;
    if (!sch_tiles_put (frame->tiles, task->tile, e->result_json, e->blob, e->blob_size)) {
        s_frame_fail (self, frame, SCH_ERR_KERNEL_ERROR,
                      "a peer answered a tile with something else (a kernel older than 1.1.0?)",
                      now_us);
        return;
    }
    task->peer_account = e->account;
    task->compute_us = e->compute_us;
    task->observed_us = e->observed_us;
    task->billed_us = e->billed_us;
    free (task->result_json);
    task->result_json = strdup (e->result_json);
    if (!sch_cache_version_ok (s_type (task->type)->name, e->version))
        frame->current = false;
    if (task->state != SCH_VALIDATING)
        s_task_set_state (self, task, SCH_VALIDATING);
    s_task_arm (self, task, now_us);
    if (++frame->held < sch_tiles_count (frame->tiles))
        return;
    for (size_t k = 0; k < sch_tiles_count (frame->tiles); k++) {
        sch_task_t *tile = frame->child [k];
        tile->settle_next_us = now_us + self->config.settle_retry_ms * 1000;
        s_task_set_state (self, tile, SCH_SETTLING);
        s_task_arm (self, tile, now_us);
        s_send_settle (self, tile);
        self->stats.settle_sent++;
    }
}

//  A tile's result from a peer, outside quorum: spot-checked like any
//  task's (drawn first: holding the result may end the frame), then held.
static void
s_tile_result (sch_core_t *self, sch_task_t *task, sch_peer_t *peer,
               const P2c2r__PeerResult *res, uint64_t billed, uint64_t observed, int64_t now_us)
{
    uint32_t rate = s_rep_doubted (self, peer->rep) ? self->config.spot_doubted_permille
                                                    : self->config.spot_permille;
    if (s_mode (self, task->type) == SCH_VAL_SPOT && self->eligible [task->type] >= 2
        && self->stats.queued < self->config.queue_max && s_draw (self, rate)) {
        sch_val_t *val = s_val_new (self, task, SCH_VAL_SPOT);
        s_val_use (val, peer);
        s_val_add (self, val, peer->account_id, res, billed, observed, true);
        val->released = true;
        s_check_spawn (self, val, now_us);
    }
    sch_vent_t e = { 0 };
    e.account = peer->account_id;
    e.version = res->kernel_version;
    e.result_json = res->result_json ? res->result_json : "";
    e.blob = res->blob.data;
    e.blob_size = res->blob.len;
    e.compute_us = res->compute_us;
    e.observed_us = observed;
    e.billed_us = billed;
    s_tile_hold (self, task, &e, now_us);
}

//  The ledger settled a tile (or refused to). When every tile is settled
//  the gamer gets one reply: the whole frame, the total cost.
static void
s_tile_settled (sch_core_t *self, sch_task_t *task, const P2c2r__SettleAck *ack, int64_t now_us)
{
    sch_frame_t *frame = task->frame;
    if (!ack->ok) {
        s_frame_fail (self, frame, SCH_ERR_UNAVAILABLE, "settlement of a tile failed", now_us);
        return;
    }
    frame->settled++;
    frame->cost_pico += ack->gamer_charge_pico;
    frame->compute_us += task->compute_us;
    frame->billed_us += task->billed_us;
    s_task_forget (self, task);
    if (frame->settled < sch_tiles_count (frame->tiles))
        return;
    sch_task_t *parent = frame->parent;
    char *json = NULL;
    uint8_t *png = NULL;
    size_t png_size = 0;
    if (!sch_tiles_assemble (frame->tiles, &json, &png, &png_size)) {
        s_task_fail (self, parent, SCH_ERR_KERNEL_ERROR, "the frame could not be assembled", now_us);
        return;
    }
    P2c2r__TaskReply reply = P2C2R__TASK_REPLY__INIT;
    reply.ok = true;
    reply.result_json = json;
    reply.blob.data = png;
    reply.blob.len = png_size;
    reply.compute_us = frame->compute_us;
    reply.billed_us = frame->billed_us;
    reply.cost_pico = frame->cost_pico;
    s_deliver (self, parent, &reply);
    self->stats.completed++;
    s_latency (self, parent, now_us);
    //  cached as a whole, when every tile came from the current kernel
    if (parent->cache_key && frame->current)
        sch_cache_put (self->cache, parent->cache_key, json, png, png_size, frame->compute_us,
                       now_us);
    log_info ("frame done id=%s tiles=%zu billed_us=%" PRIu64 " cost_pico=%" PRId64, parent->id,
              sch_tiles_count (frame->tiles), frame->billed_us, frame->cost_pico);
    free (json);
    free (png);
    s_task_forget (self, parent);
}

//  A task that passed the funds check (or needs none): split it into tiles
//  when it is a large frame; else start its validation under quorum, then
//  run or queue it.
static void
s_task_start (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    if (s_frame_split (self, task, now_us))
        return;
    if (self->eligible [task->type] == 0) {
        s_task_fail (self, task, SCH_ERR_NO_PEERS, "No peers available", now_us);
        return;
    }
    bool quorum = s_mode (self, task->type) == SCH_VAL_QUORUM;
    if (quorum)
        s_val_new (self, task, SCH_VAL_QUORUM);
    if (!s_task_place (self, task, now_us)) {
        s_task_fail (self, task, SCH_ERR_UNAVAILABLE, "scheduler queue is full", now_us);
        return;
    }
    if (quorum)
        s_check_spawn (self, task->val, now_us);
}

//  The funds rule: balance minus the reserve of the gamer's tasks in flight
//  minus this task's most may not go under the floor. True when the task
//  may go on (its most is then reserved); else it was answered.
static bool
s_funds_ok (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    sch_gamer_t *g = task->gamer;
    if (g->disabled) {
        s_task_fail (self, task, SCH_ERR_INSUFFICIENT_FUNDS, "account disabled", now_us);
        return false;
    }
    int64_t most = s_max_charge (self, task);
    if (g->balance_pico - g->reserve_pico - most < self->config.funds_floor_pico) {
        log_debug ("insufficient funds task=%s account=%" PRId64 " balance=%" PRId64
                   " reserve=%" PRId64 " most=%" PRId64, task->id, g->account,
                   g->balance_pico, g->reserve_pico, most);
        s_task_fail (self, task, SCH_ERR_INSUFFICIENT_FUNDS, "balance too low", now_us);
        return false;
    }
    task->reserved_pico = most;
    g->reserve_pico += most;
    return true;
}

static void
s_on_task_submit (sch_core_t *self, const P2c2r__TaskSubmit *sub, int64_t now_us)
{
    const char *gateway = s_session_gateway (sub->gamer);
    if (!gateway || !sub->task_id || !*sub->task_id || strlen (sub->task_id) > SCH_MAX_ID) {
        //  nobody to answer, or nothing to answer with
        self->stats.bad_messages++;
        log_debug ("bad TaskSubmit: no gamer session or task id");
        return;
    }
    if (zhashx_lookup (self->tasks, sub->task_id)) {
        //  the gateway makes ids unique: a duplicate is a replay; the first
        //  copy's answer serves both
        self->stats.bad_messages++;
        log_debug ("duplicate TaskSubmit id=%s", sub->task_id);
        return;
    }
    self->stats.submitted++;
    int type = sub->submit ? s_type_index (sub->submit->task_type) : -1;
    if (type < 0) {
        s_reject_submit (self, sub, gateway, SCH_ERR_UNKNOWN_TASK_TYPE, "unknown task type");
        return;
    }
    int64_t deadline_ms = sub->deadline_ms ? sub->deadline_ms : self->config.default_deadline_ms;
    if (deadline_ms > self->config.max_deadline_ms)
        deadline_ms = self->config.max_deadline_ms;

    sch_task_t *task = (sch_task_t *) zmalloc (sizeof (sch_task_t));
    task->id = strdup (sub->task_id);
    task->type = type;
    task->seq = ++self->task_seq;
    task->params_json = s_strndup_bounded (sub->submit->params_json, P2C_MAX_INTERNAL);
    task->payload = s_memdup (sub->submit->payload.data, sub->submit->payload.len);
    task->payload_size = task->payload ? sub->submit->payload.len : 0;
    task->client_ref = s_strndup_bounded (sub->submit->client_ref, SCH_MAX_ID);
    task->region = s_strndup_bounded (sub->region, SCH_MAX_SHORT);
    task->gamer_account = sub->gamer_account;
    task->gamer_conn = sub->gamer->conn;
    task->gamer = s_gamer_require (self, sub->gamer_account, gateway, sub->gamer->conn);
    task->gw = s_gw_require (self, gateway);
    task->gw->down = false;
    task->gw_handle = zlistx_add_end (task->gw->tasks, task);
    task->submit_us = now_us;
    task->deadline_ms = (uint32_t) deadline_ms;
    task->deadline_us = now_us + deadline_ms * 1000;
    task->heap_idx = SCH_NO_HEAP;
    task->state = SCH_QUEUED;       //  counted as queued until it is placed
    self->stats.queued++;
    zhashx_insert (self->tasks, task->id, task);

    //  the cache answers at once, billed zero, never settled
    if (self->config.cache_max_entries) {
        task->cache_key = sch_cache_key (s_type (type)->name, task->params_json, task->payload,
                                         task->payload_size);
        const sch_cache_entry_t *hit = task->cache_key
                                     ? sch_cache_get (self->cache, task->cache_key, now_us)
                                     : NULL;
        if (hit) {
            P2c2r__TaskReply reply = P2C2R__TASK_REPLY__INIT;
            reply.ok = true;
            reply.cached = true;
            reply.result_json = hit->result_json;
            reply.blob.data = hit->blob;
            reply.blob.len = hit->blob_size;
            reply.compute_us = hit->compute_us;
            reply.billed_us = 0;
            reply.cost_pico = 0;
            s_deliver (self, task, &reply);
            self->stats.cached++;
            s_latency (self, task, now_us);
            log_debug ("task cached id=%s", task->id);
            s_task_forget (self, task);
            return;
        }
    }
    if (self->eligible [type] == 0) {
        s_task_fail (self, task, SCH_ERR_NO_PEERS, "No peers available", now_us);
        return;
    }
    if (self->config.funds_check) {
        sch_gamer_t *g = task->gamer;
        if (!g->known) {
            if (g->account <= 0 || self->stats.parked >= self->config.park_max) {
                s_task_fail (self, task, SCH_ERR_UNAVAILABLE, "balance unknown", now_us);
                return;
            }
            //  ask the ledger and wait a little for the answer
            if (!g->queried || now_us - g->query_us >= self->config.balance_wait_ms * 1000) {
                s_send_balance_query (self, g->account);
                g->queried = true;
                g->query_us = now_us;
            }
            task->park_handle = zlistx_add_end (g->parked, task);
            s_task_set_state (self, task, SCH_PARKED);
            s_task_arm (self, task, now_us);
            return;
        }
        if (!s_funds_ok (self, task, now_us))
            return;
    }
    s_task_start (self, task, now_us);
}

//  The ledger's word on a gamer's balance: kept, and the gamer's parked
//  tasks go on (or are refused).
static void
s_on_balance_update (sch_core_t *self, const P2c2r__BalanceUpdate *bu, int64_t now_us)
{
    if (bu->account_id <= 0) {
        self->stats.bad_messages++;
        return;
    }
    char key [32];
    snprintf (key, sizeof key, "a%" PRId64, bu->account_id);
    sch_gamer_t *g = (sch_gamer_t *) zhashx_lookup (self->gamers, key);
    if (!g)
        g = s_gamer_require (self, bu->account_id, "", 0);
    g->known = true;
    g->balance_pico = bu->balance_pico;
    g->disabled = bu->disabled;
    log_debug ("balance account=%" PRId64 " balance_pico=%" PRId64 " disabled=%d",
               bu->account_id, bu->balance_pico, bu->disabled);
    sch_task_t *task;
    while ((task = (sch_task_t *) zlistx_first (g->parked))) {
        zlistx_delete (g->parked, task->park_handle);
        task->park_handle = NULL;
        s_task_set_state (self, task, SCH_QUEUED);      //  counted as queued until placed
        s_heap_remove (self, task);
        if (s_funds_ok (self, task, now_us))
            s_task_start (self, task, now_us);
    }
}

static void
s_on_task_result (sch_core_t *self, const P2c2r__TaskResult *tr, int64_t now_us)
{
    const char *gateway = s_session_gateway (tr->peer);
    const P2c2r__PeerResult *res = tr->result;
    if (!gateway || !res || !res->task_id) {
        self->stats.bad_messages++;
        log_debug ("bad TaskResult: no session or result");
        return;
    }
    sch_task_t *task = (sch_task_t *) zhashx_lookup (self->tasks, res->task_id);
    if (!task || task->state != SCH_RUNNING || task->peer->conn != tr->peer->conn
        || strcmp (task->peer->gw->id, gateway) || res->attempt != task->attempts) {
        //  an attempt we gave up on (also an earlier one on this same peer),
        //  or a task we never gave this peer
        self->stats.stale_results++;
        log_debug ("stale result id=%.64s from=%s/%" PRIu64, res->task_id, gateway,
                   tr->peer->conn);
        return;
    }
    sch_peer_t *peer = s_task_unrun (self, task);
    if (peer->rep->banned) {
        //  a banned peer's word counts for nothing and earns nothing
        self->stats.banned_results++;
        s_task_retry (self, task, now_us);
        return;
    }
    if (!res->ok) {
        if (task->is_check)
            s_task_fail (self, task, SCH_ERR_KERNEL_ERROR, "", now_us);
        else {
            //  a peer may only blame the parameters or its kernel
            sch_err_t err = res->error_code && !strcmp (res->error_code, "invalid_params")
                          ? SCH_ERR_INVALID_PARAMS : SCH_ERR_KERNEL_ERROR;
            char *text = s_strndup_bounded (res->error, SCH_MAX_ERROR_TEXT);
            s_task_fail (self, task, err, text, now_us);
            free (text);
        }
        s_peer_pull (self, peer, now_us);
        return;
    }
    //  billed = min(claimed, observed), scaled down for a peer slower than
    //  the fleet on the reference input, capped by the type's ceiling
    uint64_t observed = (uint64_t) (now_us - task->attempt_start_us);
    uint64_t billed = res->compute_us < observed ? res->compute_us : observed;
    sch_ptype_t *pt = peer->pt [task->type];
    if (pt && pt->ref_us && self->ref_n [task->type]) {
        double fleet = self->ref_sum [task->type] / self->ref_n [task->type];
        if ((double) pt->ref_us > fleet)
            billed = (uint64_t) ((double) billed * fleet / (double) pt->ref_us);
    }
    uint64_t ceiling = s_type (task->type)->max_billed_us;
    if (billed > ceiling)
        billed = ceiling;
    //  what we learn of the peer's speed and latency
    double compute = (double) (res->compute_us < observed ? res->compute_us : observed);
    if (pt)
        pt->exec_us = pt->exec_us > 0 ? pt->exec_us + SCH_EWMA * (compute - pt->exec_us)
                                      : compute;
    double *tavg = &self->type_exec_us [task->type];
    *tavg = *tavg > 0 ? *tavg + SCH_EWMA * (compute - *tavg) : compute;
    peer->rtt_us += SCH_EWMA * (((double) observed - compute) - peer->rtt_us);
    s_peer_rekey (self, peer);

    if (task->is_check) {
        sch_val_t *val = task->val;
        s_val_add (self, val, peer->account_id, res, billed, observed, false);
        val->refs++;
        s_task_forget (self, task);
        s_val_eval (self, val, now_us);
        s_val_unref (self, val);
        log_debug ("check done id=%s peer=%s", res->task_id, peer->key);
    }
    else
    if (task->val) {
        //  quorum: held until two results agree
        s_val_add (self, task->val, peer->account_id, res, billed, observed, false);
        s_task_set_state (self, task, SCH_VALIDATING);
        s_task_arm (self, task, now_us);
        s_val_eval (self, task->val, now_us);
    }
    else
    if (task->is_tile)
        s_tile_result (self, task, peer, res, billed, observed, now_us);
    else {
        sch_vent_t e = { 0 };
        e.account = peer->account_id;
        e.version = res->kernel_version;    //  borrowed for s_task_settle
        e.result_json = s_strndup_bounded (res->result_json, P2C_MAX_INTERNAL);
        e.blob = s_memdup (res->blob.data, res->blob.len);
        e.blob_size = e.blob ? res->blob.len : 0;
        e.compute_us = res->compute_us;
        e.observed_us = observed;
        e.billed_us = billed;
        s_task_settle (self, task, &e, now_us);
        free (e.result_json);
        free (e.blob);
        //  spot: a share of results (more for doubted peers) is run again
        //  elsewhere in the background; this one is released at once
        uint32_t rate = s_rep_doubted (self, peer->rep) ? self->config.spot_doubted_permille
                                                        : self->config.spot_permille;
        if (s_mode (self, task->type) == SCH_VAL_SPOT && self->eligible [task->type] >= 2
            && self->stats.queued < self->config.queue_max && s_draw (self, rate)) {
            sch_val_t *val = s_val_new (self, task, SCH_VAL_SPOT);
            s_val_use (val, peer);
            s_val_add (self, val, peer->account_id, res, billed, observed, true);
            val->released = true;
            s_check_spawn (self, val, now_us);
        }
        log_debug ("task done id=%s peer=%s billed_us=%" PRIu64 " claimed_us=%" PRIu64
                   " observed_us=%" PRIu64, task->id, peer->key, billed, res->compute_us,
                   observed);
    }
    s_peer_pull (self, peer, now_us);
}

static void
s_on_settle_ack (sch_core_t *self, const P2c2r__SettleAck *ack, int64_t now_us)
{
    if (ack->task_id && (ack->reversed || strchr (ack->task_id, '#'))
        && s_payout_ack (self, ack, now_us))
        return;
    sch_task_t *task = ack->task_id && !ack->reversed
                     ? (sch_task_t *) zhashx_lookup (self->tasks, ack->task_id) : NULL;
    if (!task || task->state != SCH_SETTLING) {
        //  a replayed ack for a task already delivered
        self->stats.stale_acks++;
        log_debug ("stale settle ack id=%.64s", ack->task_id ? ack->task_id : "");
        return;
    }
    if (task->is_tile) {
        s_tile_settled (self, task, ack, now_us);
        return;
    }
    if (ack->ok) {
        P2c2r__TaskReply reply = P2C2R__TASK_REPLY__INIT;
        reply.ok = true;
        reply.result_json = task->result_json;
        reply.blob.data = task->blob;
        reply.blob.len = task->blob_size;
        reply.compute_us = task->compute_us;
        reply.billed_us = task->billed_us;
        reply.cost_pico = ack->gamer_charge_pico;
        s_deliver (self, task, &reply);
        self->stats.completed++;
        s_latency (self, task, now_us);
        //  a spot-checked result still under check is cached too: if it
        //  loses, the validation replaces it
        if (task->cache_key)
            sch_cache_put (self->cache, task->cache_key, task->result_json, task->blob,
                           task->blob_size, task->compute_us, now_us);
        log_debug ("task delivered id=%s billed_us=%" PRIu64 " cost_pico=%" PRId64, task->id,
                   task->billed_us, ack->gamer_charge_pico);
    }
    else {
        char *text = s_strndup_bounded (ack->error, SCH_MAX_ERROR_TEXT);
        log_info ("settlement refused id=%s", task->id);
        s_deliver_error (self, task, SCH_ERR_UNAVAILABLE, *text ? text : "settlement failed");
        free (text);
    }
    s_task_forget (self, task);
}

static void
s_on_stats_request (sch_core_t *self, const char *sender, const P2c2r__StatsRequest *req,
                    int64_t now_us)
{
    if (!sender || !*sender) {
        self->stats.bad_messages++;
        return;
    }
    char *json = sch_core_stats_json (self, now_us);
    P2c2r__StatsReply reply = P2C2R__STATS_REPLY__INIT;
    reply.corr = req->corr;
    reply.service = "scheduler";
    reply.stats_json = json;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_STATS_REPLY;
    msg.stats_reply = &reply;
    s_send (self, sender, &msg);
    free (json);
}

void
sch_core_handle (sch_core_t *self, const char *sender, const P2c2r__Internal *msg,
                 int64_t now_us)
{
    assert (self);
    //  a oneof case whose message is missing cannot come from the unpacker,
    //  but the check costs nothing (all cases share one pointer)
    if (!msg || !msg->peer_up) {
        self->stats.bad_messages++;
        return;
    }
    switch (msg->msg_case) {
        case P2C2R__INTERNAL__MSG_PEER_UP:
            s_on_peer_up (self, msg->peer_up, now_us);
            break;
        case P2C2R__INTERNAL__MSG_PEER_DOWN:
            s_on_peer_down (self, msg->peer_down, now_us);
            break;
        case P2C2R__INTERNAL__MSG_TASK_SUBMIT:
            s_on_task_submit (self, msg->task_submit, now_us);
            break;
        case P2C2R__INTERNAL__MSG_TASK_RESULT:
            s_on_task_result (self, msg->task_result, now_us);
            break;
        case P2C2R__INTERNAL__MSG_SETTLE_ACK:
            s_on_settle_ack (self, msg->settle_ack, now_us);
            break;
        case P2C2R__INTERNAL__MSG_BALANCE_UPDATE:
            s_on_balance_update (self, msg->balance_update, now_us);
            break;
        case P2C2R__INTERNAL__MSG_STATS_REQUEST:
            s_on_stats_request (self, sender, msg->stats_request, now_us);
            break;
        case P2C2R__INTERNAL__MSG_NODE_EVENT: {
            //  only the broker speaks NodeEvents
            const P2c2r__NodeEvent *ev = msg->node_event;
            if (sender && !*sender && !ev->up && ev->service && ev->node_id
                && !strcmp (ev->service, "gateway"))
                s_on_gateway_down (self, ev->node_id, now_us);
            break;
        }
        default:
            self->stats.bad_messages++;
            log_debug ("unexpected message type=%s from=%.64s", p2c_msg_internal_name (msg),
                       sender ? sender : "");
            break;
    }
}

//  --------------------------------------------------------------------------
//  Cron

//  Works on one task whose wake time has come.
static void
s_task_wake (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    switch (task->state) {
        case SCH_SETTLING:
            //  the ledger is idempotent on task_id: resending is safe
            s_send_settle (self, task);
            self->stats.settle_retries++;
            log_debug ("settle resent id=%s", task->id);
            task->settle_next_us = now_us + self->config.settle_retry_ms * 1000;
            s_task_arm (self, task, now_us);
            return;
        case SCH_PARKED:
            s_task_fail (self, task, SCH_ERR_UNAVAILABLE, "the gamer's balance is unknown", now_us);
            return;
        case SCH_QUEUED:
            //  queued tasks wake only at their deadline
            s_task_fail (self, task, SCH_ERR_TIMEOUT, "no peer was free before the deadline", now_us);
            return;
        case SCH_VALIDATING: {
            if (task->frame && !task->is_tile) {
                s_frame_fail (self, task->frame, SCH_ERR_TIMEOUT,
                              "the frame's tiles did not all finish before the deadline", now_us);
                return;
            }
            bool split = task->val && task->val->n >= 2;
            s_task_fail (self, task, split ? SCH_ERR_REJECTED : SCH_ERR_TIMEOUT,
                         split ? "peers disagree on the result"
                               : "no second result before the deadline", now_us);
            return;
        }
        case SCH_RUNNING:
            break;
    }
    sch_peer_t *peer = s_task_unrun (self, task);
    if (now_us >= task->deadline_us)
        s_task_fail (self, task, SCH_ERR_TIMEOUT, "the task did not finish before the deadline", now_us);
    else {
        log_debug ("attempt timed out id=%s peer=%s attempt=%u", task->id, peer->key,
                   task->attempts);
        s_task_retry (self, task, now_us);
    }
    s_peer_pull (self, peer, now_us);
}

static void
s_status (sch_core_t *self, int64_t now_us)
{
    if (self->status_next_us == 0) {
        self->status_next_us = now_us + self->config.status_interval_ms * 1000;
        return;
    }
    if (now_us < self->status_next_us)
        return;
    self->status_next_us = now_us + self->config.status_interval_ms * 1000;
    const sch_stats_t *s = sch_core_stats (self);
    if (!memcmp (s, &self->logged, sizeof *s))
        return;
    uint64_t failed = 0;
    for (int i = 0; i < SCH_ERR_COUNT; i++)
        failed += s->failed [i];
    log_info ("status peers=%zu banned=%zu slots=%zu busy=%zu parked=%zu queued=%zu"
              " running=%zu validating=%zu settling=%zu submitted=%" PRIu64
              " completed=%" PRIu64 " cached=%" PRIu64 " failed=%" PRIu64
              " no_peers=%" PRIu64 " timeout=%" PRIu64 " unavailable=%" PRIu64
              " insufficient_funds=%" PRIu64 " rejected=%" PRIu64 " reassigned=%" PRIu64
              " stale_results=%" PRIu64 " checks=%" PRIu64 " invalid=%" PRIu64
              " bans=%" PRIu64 " settle_retries=%" PRIu64 " bad_messages=%" PRIu64,
              s->peers, s->banned_peers, s->slots, s->busy_slots, s->parked, s->queued,
              s->running, s->validating, s->settling, s->submitted, s->completed, s->cached,
              failed, s->failed [SCH_ERR_NO_PEERS], s->failed [SCH_ERR_TIMEOUT],
              s->failed [SCH_ERR_UNAVAILABLE], s->failed [SCH_ERR_INSUFFICIENT_FUNDS],
              s->failed [SCH_ERR_REJECTED], s->reassigned, s->stale_results, s->checks,
              s->invalid_results, s->bans, s->settle_retries, s->bad_messages);
    self->logged = *s;
}

void
sch_core_cron (sch_core_t *self, int64_t now_us)
{
    //  each wake either removes the task from the heap or re-arms it later
    //  than now, so this ends
    while (self->heap_size && self->heap [0]->wake_us <= now_us)
        s_task_wake (self, self->heap [0], now_us);
    sch_cache_expire (self->cache, now_us);
    s_payout_cron (self, now_us);
    //  tasks per second over windows of at least a second
    if (!self->rate_at_us)
        self->rate_at_us = now_us;
    else
    if (now_us - self->rate_at_us >= 1000000) {
        uint64_t done = self->stats.completed + self->stats.cached;
        self->tasks_per_s = (double) (done - self->rate_done) * 1e6
                          / (double) (now_us - self->rate_at_us);
        self->rate_done = done;
        self->rate_at_us = now_us;
    }
    //  bans decay: look at the banned accounts once a second
    if (self->stats.bans && now_us >= self->unban_next_us) {
        self->unban_next_us = now_us + 1000000;
        for (sch_rep_t *r = (sch_rep_t *) zhashx_first (self->reps); r;
             r = (sch_rep_t *) zhashx_next (self->reps))
            if (r->banned)
                s_rep_judge (self, r, now_us);
    }
    s_status (self, now_us);
}

//  --------------------------------------------------------------------------
//  Stats for operators

static int
s_cmp_u32 (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y ? -1 : x > y;
}

char *
sch_core_stats_json (sch_core_t *self, int64_t now_us)
{
    (void) now_us;
    const sch_stats_t *s = sch_core_stats (self);
    json_t *o = json_object ();
#define SET_INT(name, v) json_object_set_new (o, name, json_integer ((json_int_t) (v)))
    SET_INT ("peers_online", s->peers);
    SET_INT ("peers_banned", s->banned_peers);
    SET_INT ("slots", s->slots);
    SET_INT ("slots_busy", s->busy_slots);
    SET_INT ("queue_depth", s->queued);
    SET_INT ("parked", s->parked);
    SET_INT ("running", s->running);
    SET_INT ("validating", s->validating);
    SET_INT ("settling", s->settling);
    SET_INT ("submitted", s->submitted);
    SET_INT ("completed", s->completed);
    SET_INT ("assigned", s->assigned);
    SET_INT ("reassigned", s->reassigned);
    SET_INT ("stale_results", s->stale_results);
    SET_INT ("dropped", s->dropped);
    SET_INT ("settle_retries", s->settle_retries);
    SET_INT ("bad_messages", s->bad_messages);
    for (int i = 0; i < SCH_ERR_COUNT; i++) {
        char name [64];
        snprintf (name, sizeof name, "failed_%s", s_err_names [i]);
        SET_INT (name, s->failed [i]);
    }
    json_object_set_new (o, "tasks_per_s", json_real (round (self->tasks_per_s * 100) / 100));
    //  percentiles of the recent submit-to-result latencies
    size_t n = self->latency_n < SCH_LATENCIES ? (size_t) self->latency_n : SCH_LATENCIES;
    uint32_t *sorted = (uint32_t *) malloc ((n ? n : 1) * sizeof (uint32_t));
    assert (sorted);
    memcpy (sorted, self->latency_us, n * sizeof (uint32_t));
    qsort (sorted, n, sizeof (uint32_t), s_cmp_u32);
    const int pcts [] = { 50, 90, 99 };
    for (int i = 0; i < 3; i++) {
        char name [32];
        snprintf (name, sizeof name, "latency_p%d_ms", pcts [i]);
        double v = n ? sorted [(n - 1) * pcts [i] / 100] / 1000.0 : 0;
        json_object_set_new (o, name, json_real (round (v * 1000) / 1000));
    }
    free (sorted);
    uint64_t hits = sch_cache_hits (self->cache), misses = sch_cache_misses (self->cache);
    SET_INT ("cache_hits", hits);
    SET_INT ("cache_misses", misses);
    json_object_set_new (o, "cache_hit_rate",
                         json_real (hits + misses ? round (1e4 * hits / (double) (hits + misses)) / 1e4 : 0));
    SET_INT ("cache_entries", sch_cache_entries (self->cache));
    SET_INT ("cache_bytes", sch_cache_bytes (self->cache));
    SET_INT ("validation_checks", s->checks);
    SET_INT ("validation_agreed", s->agreed);
    SET_INT ("validation_tiebreaks", s->tiebreaks);
    SET_INT ("validation_unresolved", s->unresolved);
    SET_INT ("validation_incomparable", s->incomparable);
    SET_INT ("validation_invalid", s->invalid_results);
    SET_INT ("validation_paid_then_invalid", s->paid_then_invalid);
    SET_INT ("validation_check_payouts", s->check_payouts);
    SET_INT ("validation_reversals", s->reversals);
    SET_INT ("validation_payouts_done", s->payouts_done);
    SET_INT ("validation_payouts_dropped", s->payouts_dropped);
    SET_INT ("validation_payouts_pending", s->payouts_pending);
    SET_INT ("banned_results", s->banned_results);
    SET_INT ("bans", s->bans);
    SET_INT ("balance_queries", s->balance_queries);
#undef SET_INT
    char *text = json_dumps (o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (o);
    assert (text);
    return text;
}

//  --------------------------------------------------------------------------
//  Self-test: the smallest life of a task. tests/unit/test_scheduler.c
//  drives every rule.

typedef struct {
    int sent;
    int last_case;
    char last_dest [64];
} s_capture_t;

static void
s_capture (void *arg, const char *dest, const P2c2r__Internal *msg)
{
    s_capture_t *c = (s_capture_t *) arg;
    c->sent++;
    c->last_case = msg->msg_case;
    snprintf (c->last_dest, sizeof c->last_dest, "%s", dest);
}

void
sch_core_test (bool verbose)
{
    sch_index_test (verbose);
    sch_cache_test (verbose);
    sch_core_config_t config;
    sch_core_config_default (&config);
    config.funds_check = false;
    P2C_CHECK (sch_core_config_validation (&config, "hash=quorum,compression=none") == 0);
    P2C_CHECK (config.validation_type [0] == SCH_VAL_QUORUM);
    P2C_CHECK (sch_core_config_validation (&config, "mining=spot") == -1);
    P2C_CHECK (sch_core_config_validation (&config, "hash=often") == -1);
    P2C_CHECK (sch_core_config_needs (&config, "rt_shadows:gpu,physics_fluid:ram=4") == 0);
    P2C_CHECK (sch_core_config_needs (&config, "rt_shadows:fast") == -1);
    sch_core_config_default (&config);
    config.funds_check = false;
    s_capture_t cap = { 0, 0, "" };
    sch_core_t *core = sch_core_new (&config, s_capture, &cap);
    P2C_CHECK (core);

    P2c2r__Session gw = P2C2R__SESSION__INIT;
    gw.gateway = "gw-1";
    gw.conn = 7;
    P2c2r__Submit submit = P2C2R__SUBMIT__INIT;
    submit.task_type = "hash";
    submit.params_json = "{}";
    P2c2r__TaskSubmit ts = P2C2R__TASK_SUBMIT__INIT;
    ts.task_id = "t-1";
    ts.gamer = &gw;
    ts.submit = &submit;
    ts.deadline_ms = 1000;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_SUBMIT;
    msg.task_submit = &ts;
    sch_core_handle (core, "gw-1", &msg, 0);
    P2C_CHECK (cap.sent == 1 && cap.last_case == P2C2R__INTERNAL__MSG_DELIVER);
    P2C_CHECK (sch_core_stats (core)->failed [SCH_ERR_NO_PEERS] == 1);

    P2c2r__Session ps = P2C2R__SESSION__INIT;
    ps.gateway = "gw-2";
    ps.conn = 3;
    char *types [] = { "encryption" };
    P2c2r__Capabilities caps = P2C2R__CAPABILITIES__INIT;
    caps.n_task_types = 1;
    caps.task_types = types;
    P2c2r__PeerUp up = P2C2R__PEER_UP__INIT;
    up.session = &ps;
    up.peer_id = "p";
    up.capabilities = &caps;
    P2c2r__Internal upm = P2C2R__INTERNAL__INIT;
    upm.msg_case = P2C2R__INTERNAL__MSG_PEER_UP;
    upm.peer_up = &up;
    sch_core_handle (core, "gw-2", &upm, 0);
    P2C_CHECK (sch_core_peer_busy (core, "gw-2", 3) == 0);
    ts.task_id = "t-2";
    sch_core_handle (core, "gw-1", &msg, 0);
    P2C_CHECK (cap.last_case == P2C2R__INTERNAL__MSG_TASK_ASSIGN);
    P2C_CHECK (!strcmp (cap.last_dest, "gw-2"));
    P2C_CHECK (sch_core_peer_busy (core, "gw-2", 3) == 1);
    //  at the deadline the gamer hears `timeout` and the slot is free
    sch_core_cron (core, 1000 * 1000);
    P2C_CHECK (cap.last_case == P2C2R__INTERNAL__MSG_DELIVER);
    P2C_CHECK (sch_core_stats (core)->failed [SCH_ERR_TIMEOUT] == 1);
    P2C_CHECK (sch_core_peer_busy (core, "gw-2", 3) == 0);
    char *json = sch_core_stats_json (core, 0);
    P2C_CHECK (json && strstr (json, "\"peers_online\":1"));
    free (json);
    sch_core_destroy (&core);
    P2C_CHECK (core == NULL);
    sch_core_destroy (&core);
}
