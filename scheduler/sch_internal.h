/*  The scheduler core's data model, shared by the files that implement it
    (private: nothing outside scheduler/sch_*.c includes it). sch_core.h is
    the public face; each file below owns one concept and its self-test:

    sch_core.c         configuration, construction, message dispatch, cron
    sch_tasks.c        a task's life: run, retry, fail, settle, timers
    sch_queues.c       fair queues per gamer and type; peer choice and pull
    sch_peers.c        the peer registry, its indexes, speed averages
    sch_gateways.c     gateway nodes and what dies with them
    sch_gamers.c       gamer accounts and the funds check
    sch_validation.c   validation of results by more than one peer
    sch_frames.c       frames split into tiles across peers (sch_tiles)
    sch_reputation.c   verdict counts per peer account, bans
    sch_payouts.c      treasury payouts and reversals (own class)
    sch_outbox.c       replies kept until their gateway confirms them (own class)
    sch_refs.c         idempotent resubmission by client_ref: joins, replays
    sch_billing.c      the billing rule (pure functions)
    sch_stats.c        counters, status line, stats JSON
    sch_heap.c, sch_index.c, sch_cache.c   containers
    sch_selftest.c     what the self-tests of the files above share

    Data flows from sch_core.c into the others; the few calls back (a peer
    that frees a slot pulls queued work, a task that runs re-keys its peer)
    go through the prototypes below, never through includes of each other.
    Times are monotonic microseconds. */
#ifndef SCH_INTERNAL_H_INCLUDED
#define SCH_INTERNAL_H_INCLUDED

#include "sch_core.h"
#include "sch_billing.h"
#include "sch_cache.h"
#include "sch_heap.h"
#include "sch_index.h"
#include "sch_outbox.h"
#include "sch_payouts.h"
#include "sch_tiles.h"
#include "p2c_tasks.h"

#include <czmq.h>

#define SCH_MAX_SLOTS       1024    //  a peer claiming more is capped
#define SCH_MAX_ID          256     //  longest task id / gateway id we accept
#define SCH_MAX_SHORT       64      //  longest region / kernel version kept
#define SCH_MAX_ERROR_TEXT  512     //  a peer's error text is cut here
#define SCH_NO_HEAP         SCH_HEAP_NONE
#define SCH_VAL_RUNS        3       //  primary + check + tie-break
#define SCH_VAL_SPARE       2       //  further runs for checks that brought no result
#define SCH_RING_LOOK       8       //  gamers looked at per type when a peer pulls
#define SCH_QUEUE_LOOK      64      //  tasks looked at per gamer when a peer pulls
#define SCH_INDEX_LOOK      64      //  index entries looked at for a constrained pick
#define SCH_DEFAULT_EXEC_US 1000.0  //  a type's speed before anything is known
#define SCH_EWMA            0.2     //  weight of a new sample in moving averages
#define SCH_LATENCIES       4096    //  recent latencies kept for percentiles
#define SCH_ALERTS_EVAL_US  500000  //  the alerts are evaluated this often
#define SCH_DELIVER_RETRY_MS 1000   //  an unconfirmed reply is sent again
#define SCH_DELIVER_KEEP_MS 10000   //  ... until the task's deadline and this
                                    //  (past the gateway's guard grace)
#define SCH_DELIVER_MAX     100000  //  replies kept at most
#define SCH_DELIVER_MAX_BYTES (256u << 20)  //  and their bytes
#define SCH_REF_JOINERS     8       //  repeats of one client_ref joined to its task
//  Split frames in flight hold their pixels (3 bytes each) while tiles come
//  in: beyond this, a frame runs whole on one peer rather than split
#define SCH_FRAME_BYTES_MAX (256u * 1024 * 1024)

typedef enum {
    SCH_PARKED,                 //  waiting for the gamer's balance
    SCH_QUEUED,                 //  waiting in its gamer's queue
    SCH_RUNNING,                //  assigned to a peer, attempt running
    SCH_VALIDATING,             //  result in, waiting for a quorum
    SCH_SETTLING                //  result accepted, waiting for the ledger
} sch_state_t;

typedef struct _sch_peer_t sch_peer_t;
typedef struct _sch_task_t sch_task_t;

//  A repeat of a task's client_ref that came while the task was in flight:
//  it gets the task's reply under its own task id (sch_refs)
typedef struct {
    char *gateway;              //  node id of its gamer's gateway
    uint64_t conn;
    char *task_id;              //  the id its gateway gave the repeat
} sch_joiner_t;
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
    char *block;                //  its address block, "" unknown or rule off
    char *owner;                //  its account's owner (the ledger's), "" none
    int64_t account_id;         //  paid for its work
    uint32_t slots;             //  tasks it runs at once
    uint32_t busy;              //  tasks running on it now
    bool paused;                //  its owner's preferences pause it: no new tasks
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
    size_t queued_bytes;        //  their params and payloads
} sch_gamer_t;

//  One finished run of a task, as a result brings it in
typedef struct {
    int64_t account;                //  the peer account that ran it
    const P2c2r__PeerResult *res;   //  what it sent (borrowed)
    uint64_t billed_us;             //  by the billing rule
    uint64_t observed_us;           //  assignment to result, seen by us
    bool check;                     //  a check run, not the gamer's own
} sch_run_t;

//  One result in a validation.
typedef struct {
    int64_t account;            //  the peer account that made it
    char *run_id;               //  task id of its run (the gamer's, or a check's)
    bool check;                 //  a check run's result (else the gamer's own run)
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
    bool tile_run;              //  a tile's: its checks render the tile too
    sch_vent_t e [SCH_VAL_RUNS];
    size_t n;                   //  results in
    uint32_t runs;              //  runs started (the gamer's task counts one)
    uint32_t checks_live;       //  check tasks alive
    int64_t used_account [SCH_VAL_RUNS + 4];   //  peers that ran it, never twice
    char *used_key [SCH_VAL_RUNS + 4];
    char *used_block [SCH_VAL_RUNS + 4];       //  their address blocks
    char *used_owner [SCH_VAL_RUNS + 4];       //  their accounts' owners
    char *gamer_id;             //  the gamer's name, block, owner: no check runs there either
    char *gamer_block;
    char *gamer_owner;
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
    zlistx_t *joiners;          //  sch_joiner_t * of repeats of client_ref, or NULL
    char *region;               //  the gamer's gateway's region, "" any
    int64_t gamer_account;
    char *gamer_id;             //  the gamer's name: a peer of that name is its owner's
    char *gamer_block;          //  the gamer's address block, "" unknown or rule off
    char *gamer_owner;          //  the gamer account's owner, "" none: never its peers'
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
    size_t heap_idx;            //  in core->timers, SCH_NO_HEAP when out
};

struct _sch_core_t {
    sch_core_config_t config;
    sch_payouts_t *payouts;     //  treasury payouts and reversals
    sch_outbox_t *outbox;       //  replies sent, kept until their gateway acks
    sch_send_fn *send;          //  where outgoing messages go
    void *send_arg;
    zhashx_t *peers;            //  key -> sch_peer_t * (owned, freed by hand)
    zhashx_t *tasks;            //  id -> sch_task_t * (owned, freed by hand)
    zhashx_t *gateways;         //  node id -> sch_gw_t * (owned, freed by hand)
    zhashx_t *gamers;           //  key -> sch_gamer_t * (owned, freed by hand)
    zhashx_t *reps;             //  account -> sch_rep_t * (owned, freed by hand)
    sch_gamer_t *checker;       //  the queues of validation runs
    sch_cache_t *cache;
    zhashx_t *refs;             //  "account/client_ref" -> its entry (sch_refs; owned)
    zlistx_t *ref_order;        //  the entries, oldest first (not owned)
    size_t ref_bytes;           //  of the outcomes they keep
    int64_t now_us;             //  of the message or cron being handled
    size_t frame_bytes;         //  pixels the split frames in flight hold
    size_t ntypes;              //  catalogue size
    sch_index_t *index [SCH_MAX_TYPES]; //  peers with a free slot, per type
    size_t eligible [SCH_MAX_TYPES];    //  live unbanned peers per type
    double type_exec_us [SCH_MAX_TYPES];//  moving average of compute time per type
    double ref_sum [SCH_MAX_TYPES];     //  sum of live peers' reference_us per type
    size_t ref_n [SCH_MAX_TYPES];
    zlistx_t *ring [SCH_MAX_TYPES];     //  sch_gamer_t * with queued tasks, per type
    sch_heap_t *timers;         //  tasks by wake_us, soonest first (not owned)
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
    sch_alerts_t *alerts;       //  the server's own alerts (owned)
    int64_t alerts_next_us;     //  their next evaluation
    int broker;                 //  1 beats, 0 stopped; -1: not known
    int ledgers, gateway_nodes; //  named by the broker; -1: not known
};

//  --------------------------------------------------------------------------
//  Small helpers, inline: the hot path calls them on every task

static inline const p2c_task_type_t *
sch_type (int index)
{
    return &p2c_task_types () [index];
}

//  The catalogue index of a task type name or alias; -1 when unknown.
static inline int
sch_type_index (const char *name)
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

//  The validation mode of a type
static inline sch_val_mode_t
sch_mode (sch_core_t *self, int type)
{
    sch_val_mode_t m = self->config.validation_type [type];
    return m == SCH_VAL_DEFAULT ? self->config.validation : m;
}

static inline void
sch_send (sch_core_t *self, const char *dest, P2c2r__Internal *msg)
{
    self->send (self->send_arg, dest, msg);
}

static inline char *
sch_strndup_bounded (const char *s, size_t max)
{
    char *copy = strndup (s ? s : "", max);
    assert (copy);
    return copy;
}

static inline uint8_t *
sch_memdup (const uint8_t *data, size_t size)
{
    if (!size)
        return NULL;
    uint8_t *copy = (uint8_t *) malloc (size);
    assert (copy);
    memcpy (copy, data, size);
    return copy;
}

//  A session's gateway id, or NULL when the session is missing or unusable.
static inline const char *
sch_session_gateway (const P2c2r__Session *session)
{
    if (!session || !session->gateway || !*session->gateway
        || strlen (session->gateway) > SCH_MAX_ID)
        return NULL;
    return session->gateway;
}

//  The gauge counting tasks in a state.
static inline size_t *
sch_tasks_gauge (sch_core_t *self, sch_state_t state)
{
    switch (state) {
        case SCH_PARKED: return &self->stats.parked;
        case SCH_QUEUED: return &self->stats.queued;
        case SCH_RUNNING: return &self->stats.running;
        case SCH_VALIDATING: return &self->stats.validating;
        default: return &self->stats.settling;
    }
}

//  True when repeats of the task's client_ref joined it from elsewhere: its
//  reply has somewhere to go even when its own gateway is lost
static inline bool
sch_task_joined (const sch_task_t *task)
{
    return task->joiners && zlistx_size (task->joiners) > 0;
}

static inline void
sch_tasks_set_state (sch_core_t *self, sch_task_t *task, sch_state_t state)
{
    (*sch_tasks_gauge (self, task->state))--;
    task->state = state;
    (*sch_tasks_gauge (self, state))++;
}

//  --------------------------------------------------------------------------
//  sch_tasks.c: a task's life

void sch_tasks_free (sch_task_t **task_p);
//  Sets when the cron must next look at the task, from its state.
void sch_tasks_arm (sch_core_t *self, sch_task_t *task, int64_t now_us);
//  Takes a running task off its peer and frees the slot; returns the peer.
sch_peer_t *sch_tasks_unrun (sch_core_t *self, sch_task_t *task);
//  Removes a task from every index and frees it (off its peer first).
void sch_tasks_forget (sch_core_t *self, sch_task_t *task);
//  Starts an attempt of the task on the peer, which has a free slot.
void sch_tasks_run (sch_core_t *self, sch_task_t *task, sch_peer_t *peer, int64_t now_us);
//  Ends a task that failed (the gamer hears it; a check's validation decides).
void sch_tasks_fail (sch_core_t *self, sch_task_t *task, sch_err_t err, const char *text,
                     int64_t now_us);
//  After a lost peer or an expired attempt: again elsewhere, or `timeout`.
void sch_tasks_retry (sch_core_t *self, sch_task_t *task, int64_t now_us);
//  Takes a result's settlement figures and asks the ledger to settle (a
//  tile's result is held for its frame instead).
void sch_tasks_settle (sch_core_t *self, sch_task_t *task, const sch_vent_t *e,
                       int64_t now_us);
//  Asks the ledger to settle a task whose figures are in (settling).
void sch_tasks_settle_send (sch_core_t *self, sch_task_t *task, int64_t now_us);
//  A task that passed the funds check: validation under quorum, then placed.
void sch_tasks_start (sch_core_t *self, sch_task_t *task, int64_t now_us);
//  The one terminal reply to a task, to the gamer's gateway.
void sch_tasks_deliver (sch_core_t *self, sch_task_t *task, P2c2r__TaskReply *reply);
void sch_tasks_deliver_error (sch_core_t *self, sch_task_t *task, sch_err_t err,
                              const char *text);
//  Works on one task whose wake time has come.
void sch_tasks_wake (sch_core_t *self, sch_task_t *task, int64_t now_us);
void sch_tasks_test (bool verbose);

//  --------------------------------------------------------------------------
//  sch_queues.c: fair queues and the choice of peers

//  Into its gamer's queue: at the end when new, at the front after a failed
//  attempt.
void sch_queues_put (sch_core_t *self, sch_task_t *task, bool front, int64_t now_us);
//  Out of its gamer's queue (the gamer out of the ring when it was its last).
void sch_queues_take (sch_core_t *self, sch_task_t *task);
//  The free peer with the best expected finish time; NULL when none.
sch_peer_t *sch_queues_choose (sch_core_t *self, sch_task_t *task, const char *avoid);
//  Gives the peer's free slots queued work, round robin across gamers.
void sch_queues_pull (sch_core_t *self, sch_peer_t *peer, int64_t now_us);
//  Runs the task at once or queues it; false when the queue is full.
bool sch_queues_place (sch_core_t *self, sch_task_t *task, int64_t now_us);
void sch_queues_test (bool verbose);

//  --------------------------------------------------------------------------
//  sch_peers.c: the peer registry

void sch_peers_free (sch_peer_t **peer_p);
//  The address block of a client address under the configured prefixes:
//  "a.b.c.0/24" or "2001:db8::/64"; "" when the rule is off or the
//  address does not parse. The caller frees it.
char *sch_peers_block (const sch_core_config_t *config, const char *address);
//  Puts the peer's index entries where its load, speed and standing say.
void sch_peers_rekey (sch_core_t *self, sch_peer_t *peer);
//  The account's ban changed: its peers leave or rejoin the indexes.
void sch_peers_standing (sch_core_t *self, sch_rep_t *rep);
//  What a result teaches of the peer's speed and latency.
void sch_peers_learn (sch_core_t *self, sch_peer_t *peer, int type, double compute_us,
                      uint64_t observed_us);
//  The session gets no more tasks of the type (it ran an unknown kernel).
void sch_peers_refuse_type (sch_core_t *self, sch_peer_t *peer, int type);
//  Forgets a peer whose connection is gone; its tasks go elsewhere.
void sch_peers_lost (sch_core_t *self, sch_peer_t *peer, int64_t now_us, const char *why);
void sch_peers_up (sch_core_t *self, const P2c2r__PeerUp *up, int64_t now_us);
void sch_peers_down (sch_core_t *self, const P2c2r__PeerDown *down, int64_t now_us);
void sch_peers_test (bool verbose);

//  --------------------------------------------------------------------------
//  sch_gateways.c

sch_gw_t *sch_gateways_require (sch_core_t *self, const char *id);
void sch_gateways_free (sch_gw_t **gw_p);
//  Forgets a gateway that holds nothing any more.
void sch_gateways_collect (sch_core_t *self, sch_gw_t *gw);
//  The broker lost the gateway: its peers go, its waiting tasks are dropped.
void sch_gateways_down (sch_core_t *self, const char *id, int64_t now_us);
void sch_gateways_test (bool verbose);

//  --------------------------------------------------------------------------
//  sch_gamers.c: gamer accounts and funds

void sch_gamers_free (sch_gamer_t **gamer_p);
sch_gamer_t *sch_gamers_require (sch_core_t *self, int64_t account, const char *gateway,
                                 uint64_t conn);
//  The funds check of a new task: true when it may start now; false when
//  it waits for the gamer's balance or was answered.
bool sch_gamers_admit (sch_core_t *self, sch_task_t *task, int64_t now_us);
//  The ledger's word on a balance; the gamer's waiting tasks go on.
void sch_gamers_balance (sch_core_t *self, const P2c2r__BalanceUpdate *bu, int64_t now_us);
void sch_gamers_test (bool verbose);

//  --------------------------------------------------------------------------
//  sch_validation.c

void sch_validation_free (sch_val_t **val_p);
void sch_validation_unref (sch_core_t *self, sch_val_t *val);
//  True when the peer (or its account, owner or address block) already ran
//  the validated task.
bool sch_validation_used (sch_val_t *val, sch_peer_t *peer);
//  True when the peer may run the task: not the gamer's own (same account
//  or name, same address block), nor, for a validated task, one that ran it.
bool sch_validation_may_run (const sch_task_t *task, sch_peer_t *peer);
//  Notes that the peer runs the validated task, so that no other run goes there.
void sch_validation_use (sch_val_t *val, sch_peer_t *peer);
sch_val_t *sch_validation_new (sch_core_t *self, sch_task_t *task, sch_val_mode_t mode);
//  A new check run of a validated task, for the checker's queue.
void sch_validation_spawn (sch_core_t *self, sch_val_t *val, int64_t now_us);
//  Decides what the results so far say, and what runs next.
void sch_validation_eval (sch_core_t *self, sch_val_t *val, int64_t now_us);
//  A check run's result (the check task is forgotten).
void sch_validation_check_done (sch_core_t *self, sch_task_t *task, const sch_run_t *run,
                                int64_t now_us);
//  A quorum task's own result: held until two agree.
void sch_validation_quorum_result (sch_core_t *self, sch_task_t *task, const sch_run_t *run,
                                   int64_t now_us);
//  A good result of a kernel version the catalogue does not know for the
//  type is invalid at once: counted against the peer, never paid, never
//  cached; the run is retried elsewhere. True when it was (the caller stops).
bool sch_validation_unknown_version (sch_core_t *self, sch_task_t *task, sch_peer_t *peer,
                                     const P2c2r__PeerResult *res, int64_t now_us);
//  The task's cache key, with the type's current kernel version in it;
//  NULL when not cacheable.
char *sch_validation_cache_key (sch_task_t *task);
//  True when a result of that version (empty: the current) may be cached.
bool sch_validation_current (int type, const char *version);
//  True when the settled task's result passed a validation (or its type
//  has none): it may serve every gamer from the cache.
bool sch_validation_shareable (sch_core_t *self, sch_task_t *task);
//  A released result (settling): run again elsewhere by the spot draw.
void sch_validation_spot (sch_core_t *self, sch_task_t *task, sch_peer_t *peer,
                          const sch_run_t *run, int64_t now_us);
void sch_validation_test (bool verbose);

//  --------------------------------------------------------------------------
//  sch_frames.c: a ray-tracing frame above --tile-px runs as tiles, each a
//  task of its own (id#tN, no gateway); the gamer's task waits for them

//  A frame split into tiles: the gamer's task waits while each tile runs as
//  a task of its own (assigned, validated, retried alone). A tile's result
//  is held, not settled, until every tile is in, so that a frame that
//  cannot finish charges the gamer nothing; then every tile is settled on
//  its own and the gamer gets one reply with the whole frame.
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

//  True when the peer advertised the catalogue's kernel version of the
//  type: only such a peer renders a tile (older kernels and the original
//  demo's peers ignore `tile` and render the whole frame).
bool sch_frames_capable (sch_peer_t *peer, int type);
//  Splits the gamer's ray-tracing task into tiles when its frame is above
//  the threshold, and starts them; true when it did (the task then waits
//  for its tiles until its deadline, or has been answered).
bool sch_frames_split (sch_core_t *self, sch_task_t *task, int64_t now_us);
//  A task with a frame leaves: a tile leaves its frame; the gamer's task
//  takes its live tiles with it and frees the frame.
void sch_frames_forget (sch_core_t *self, sch_task_t *task);
//  Frees a frame without its tiles (sch_core_destroy frees every task).
void sch_frames_free (sch_frame_t **frame_p);
//  The frame cannot finish: one error to the gamer, charged for no tile.
void sch_frames_fail (sch_core_t *self, sch_frame_t *frame, sch_err_t err, const char *text,
                      int64_t now_us);
//  A tile's result that won (or needs no validation): held for its frame;
//  when the last tile is in, every tile is settled on its own.
void sch_frames_hold (sch_core_t *self, sch_task_t *task, const sch_vent_t *e, int64_t now_us);
//  The ledger settled a tile (or refused to); after the last, the gamer
//  gets one reply with the whole frame and the summed cost.
void sch_frames_settled (sch_core_t *self, sch_task_t *task, const P2c2r__SettleAck *ack,
                         int64_t now_us);
void sch_frames_test (bool verbose);

//  --------------------------------------------------------------------------
//  sch_reputation.c

sch_rep_t *sch_reputation_require (sch_core_t *self, int64_t account, int64_t now_us);
void sch_reputation_free (sch_rep_t **rep_p);
//  New or recently caught: its results are checked more often.
bool sch_reputation_doubted (sch_core_t *self, sch_rep_t *rep);
//  Bans or unbans from the decayed counts; true when that changed (the
//  caller then calls sch_peers_standing).
bool sch_reputation_judge (sch_core_t *self, sch_rep_t *rep, int64_t now_us);
//  A claim far beyond the expected time: counted, logged, an invalid verdict.
void sch_reputation_flag (sch_core_t *self, sch_task_t *task, sch_peer_t *peer,
                          const sch_billing_run_t *bill, int64_t now_us);
//  Counts a verdict on a result of the account; true when its ban changed.
bool sch_reputation_verdict (sch_core_t *self, sch_rep_t *rep, bool valid, int64_t now_us);
void sch_reputation_test (bool verbose);

//  --------------------------------------------------------------------------
//  sch_refs.c: idempotent resubmission by client_ref (docs/protocol.md)

void sch_refs_new (sch_core_t *self);
void sch_refs_destroy (sch_core_t *self);
//  A submit whose client_ref its account used within the window: joined to
//  the task in flight, or answered from the stored outcome. True when it
//  was (it is then no task of its own).
//  Answers a submit with an error at once, no task made (sch_core.c)
void sch_reject_submit (sch_core_t *self, const P2c2r__TaskSubmit *sub, const char *gateway,
                        sch_err_t err, const char *text);
bool sch_refs_submit (sch_core_t *self, const P2c2r__TaskSubmit *sub, const char *gateway);
//  A new gamer's task with a client_ref: repeats of the ref now join it.
void sch_refs_track (sch_core_t *self, sch_task_t *task);
//  The task's terminal reply was sent (or its gateway is gone: lost true):
//  kept as the client_ref's outcome, unless nobody received it.
void sch_refs_answered (sch_core_t *self, sch_task_t *task, const P2c2r__TaskReply *reply,
                        bool lost);
//  The task leaves unanswered (its gateway was lost): its client_ref is free.
void sch_refs_untrack (sch_core_t *self, sch_task_t *task);
//  The task's reply to each repeat joined to it, under the repeat's task id.
void sch_refs_deliver_joiners (sch_core_t *self, sch_task_t *task, P2c2r__TaskReply *reply);
//  Before the outbox drops the gateway's replies: outcomes that nobody
//  received (or whose charge is refunded) are forgotten.
void sch_refs_gateway_down (sch_core_t *self, const char *gateway);
//  Outcomes past the window are forgotten.
void sch_refs_cron (sch_core_t *self, int64_t now_us);
void sch_refs_test (bool verbose);

//  --------------------------------------------------------------------------
//  sch_stats.c

//  A task answered: its submit-to-reply time joins the percentiles.
void sch_stats_latency (sch_core_t *self, sch_task_t *task, int64_t now_us);
//  The tasks per second window, from the cron.
void sch_stats_rate (sch_core_t *self, int64_t now_us);
//  The status line, when the interval passed and something changed.
void sch_stats_status (sch_core_t *self, int64_t now_us);
void sch_stats_test (bool verbose);

//  --------------------------------------------------------------------------
//  sch_selftest.c: what the self-tests above share

#define SCH_SELFTEST_CASES  64      //  room for the Internal message cases

typedef struct {
    int sent;                       //  messages sent
    int count [SCH_SELFTEST_CASES]; //  per message case
    int last_case;                  //  of the last one
    char last_dest [64];            //  its destination
    char last_task [64];            //  its task id (assign, deliver, settle)
    uint32_t last_attempt;          //  of the last TaskAssign
    bool last_ok;                   //  of the last Deliver
    char last_code [32];            //  its error code
    int64_t last_gamer;             //  gamer account of the last SettleRequest
} sch_selftest_t;

//  A core that sends into cap; config NULL: the defaults with validation,
//  funds, cache and the cost model of billing off (the rule tests' settings).
sch_core_t *sch_selftest_core (sch_selftest_t *cap, const sch_core_config_t *config);
//  type: comma-separated task types
void sch_selftest_peer_up (sch_core_t *core, const char *gw, uint64_t conn, uint32_t slots,
                           const char *type, int64_t account, int64_t now_us);
void sch_selftest_submit (sch_core_t *core, const char *gw, const char *id, const char *type,
                          int64_t account, int64_t now_us);
//  A good result of the task's current attempt, from the peer that runs it
void sch_selftest_result (sch_core_t *core, const char *id, const char *result_json,
                          uint64_t compute_us, int64_t now_us);
//  The same, naming the kernel version that ran (the above: the catalogue's)
void sch_selftest_result_version (sch_core_t *core, const char *id, const char *result_json,
                                  uint64_t compute_us, const char *version, int64_t now_us);
void sch_selftest_ack (sch_core_t *core, const char *id, bool ok, int64_t now_us);
void sch_selftest_balance (sch_core_t *core, int64_t account, int64_t balance_pico,
                           bool disabled, int64_t now_us);
//  The live task of that id, NULL when none
sch_task_t *sch_selftest_task (sch_core_t *core, const char *id);

#endif
