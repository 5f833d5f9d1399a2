/*  The scheduler's logic (see sch_core.h and docs/internals.md).

    Everything lives in memory and is reached through indexes, so that no
    message costs a scan of all tasks:
    - peers by "gateway/conn", and per task type the list of peers that run it;
    - tasks by id, per task type a FIFO of queued tasks, per peer the list of
      tasks it runs, per gateway the peers and the gamers' tasks it holds;
    - one binary heap of tasks ordered by the next moment each needs
      attention (its deadline when queued, its attempt's end when running,
      its next settlement retry when settling), which the cron pops.
    Times are monotonic microseconds: billed time is the smaller of the
    peer's claim and what we observe, and most tasks take well under a
    millisecond, so milliseconds would bill them nothing. */
#include "sch_core.h"
#include "p2c_log.h"
#include "p2c_tasks.h"
#include "p2c_test.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define SCH_MAX_TYPES       32      //  room for the catalogue (13 today)
#define SCH_MAX_SLOTS       1024    //  a peer claiming more is capped
#define SCH_MAX_ID          256     //  longest task id / gateway id we accept
#define SCH_MAX_ERROR_TEXT  512     //  a peer's error text is cut here
#define SCH_DEFAULT_DEADLINE_MS  30000      //  when a gateway sends none
#define SCH_MAX_DEADLINE_MS      3600000    //  sanity bound on the deadline
#define SCH_NO_HEAP         SIZE_MAX

typedef enum {
    SCH_QUEUED,                 //  waiting in its type's queue
    SCH_RUNNING,                //  assigned to a peer, attempt running
    SCH_SETTLING                //  result accepted, waiting for the ledger
} sch_state_t;

//  A gateway node: what dies with it.
typedef struct {
    char *id;                   //  node id
    zlistx_t *peers;            //  sch_peer_t * connected there (not owned)
    zlistx_t *tasks;            //  sch_task_t * whose gamer is there (not owned)
    bool down;                  //  the broker said it was lost
} sch_gw_t;

typedef struct {
    char *key;                  //  "gateway/conn"
    uint64_t conn;              //  connection number on the gateway
    sch_gw_t *gw;               //  its gateway
    void *gw_handle;            //  in gw->peers
    char *peer_id;              //  the contributor's name, for logs
    int64_t account_id;         //  paid for its work
    uint32_t slots;             //  tasks it runs at once
    uint32_t busy;              //  tasks running on it now
    uint32_t types;             //  bit i: runs catalogue type i
    void *type_handle [SCH_MAX_TYPES];  //  in core->by_type [i]
    zlistx_t *tasks;            //  sch_task_t * running here (not owned)
    uint64_t last_assign;       //  assignment sequence of its last task, 0 never
} sch_peer_t;

typedef struct {
    char *id;                   //  made by the gateway, unique
    int type;                   //  catalogue index
    uint64_t seq;               //  arrival order, for "oldest first"
    sch_state_t state;
    //  what the gamer asked
    char *params_json;
    uint8_t *payload;
    size_t payload_size;
    char *client_ref;
    int64_t gamer_account;
    uint64_t gamer_conn;
    sch_gw_t *gw;               //  the gamer's gateway
    void *gw_handle;            //  in gw->tasks
    int64_t deadline_us;        //  absolute: arrival + deadline_ms
    //  attempts
    uint32_t attempts;          //  assignments made so far
    sch_peer_t *peer;           //  while running
    void *peer_handle;          //  in peer->tasks
    char *last_peer;            //  key of the last peer tried, to prefer another
    int64_t attempt_start_us;
    int64_t attempt_end_us;
    void *queue_handle;         //  in core->queue [type] while queued
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
} sch_task_t;

struct _sch_core_t {
    sch_core_config_t config;
    sch_send_fn *send;          //  where outgoing messages go
    void *send_arg;
    zhashx_t *peers;            //  key -> sch_peer_t * (owned, freed by hand)
    zhashx_t *tasks;            //  id -> sch_task_t * (owned, freed by hand)
    zhashx_t *gateways;         //  node id -> sch_gw_t * (owned, freed by hand)
    size_t ntypes;              //  catalogue size
    zlistx_t *by_type [SCH_MAX_TYPES];  //  peers running each type
    zlistx_t *queue [SCH_MAX_TYPES];    //  queued tasks per type, oldest first
    sch_task_t **heap;          //  min-heap on wake_us
    size_t heap_size;
    size_t heap_cap;
    uint64_t task_seq;          //  last arrival sequence given
    uint64_t assign_seq;        //  last assignment sequence given
    sch_stats_t stats;
    sch_stats_t logged;         //  stats at the last status line
    int64_t status_next_us;     //  next status line, 0 before the first cron
};

static const char *s_err_names [SCH_ERR_COUNT] = {
    "no_peers", "timeout", "unavailable", "invalid_params", "kernel_error",
    "unknown_task_type"
};

const char *
sch_err_name (sch_err_t err)
{
    assert (err < SCH_ERR_COUNT);
    return s_err_names [err];
}

void
sch_core_config_default (sch_core_config_t *config)
{
    config->attempt_timeout_ms = 10000;
    config->max_attempts = 3;
    config->queue_max = 100000;
    config->settle_retry_ms = 2000;
    config->status_interval_ms = 10000;
}

sch_core_t *
sch_core_new (const sch_core_config_t *config, sch_send_fn *send, void *arg)
{
    assert (config);
    assert (send);
    sch_core_t *self = (sch_core_t *) zmalloc (sizeof (sch_core_t));
    self->config = *config;
    if (self->config.max_attempts < 1)
        self->config.max_attempts = 1;
    if (self->config.attempt_timeout_ms < 1)
        self->config.attempt_timeout_ms = 1;
    if (self->config.settle_retry_ms < 1)
        self->config.settle_retry_ms = 1;
    self->send = send;
    self->send_arg = arg;
    self->peers = zhashx_new ();
    self->tasks = zhashx_new ();
    self->gateways = zhashx_new ();
    for (const p2c_task_type_t *t = p2c_task_types (); t->name; t++)
        self->ntypes++;
    assert (self->ntypes <= SCH_MAX_TYPES);
    for (size_t i = 0; i < self->ntypes; i++) {
        self->by_type [i] = zlistx_new ();
        self->queue [i] = zlistx_new ();
    }
    return self;
}

static void s_task_free (sch_task_t **task_p);
static void s_peer_free (sch_peer_t **peer_p);
static void s_gw_free (sch_gw_t **gw_p);

void
sch_core_destroy (sch_core_t **self_p)
{
    sch_core_t *self = *self_p;
    if (!self)
        return;
    for (sch_task_t *t = (sch_task_t *) zhashx_first (self->tasks); t;
         t = (sch_task_t *) zhashx_next (self->tasks))
        s_task_free (&t);
    for (sch_peer_t *p = (sch_peer_t *) zhashx_first (self->peers); p;
         p = (sch_peer_t *) zhashx_next (self->peers))
        s_peer_free (&p);
    for (sch_gw_t *g = (sch_gw_t *) zhashx_first (self->gateways); g;
         g = (sch_gw_t *) zhashx_next (self->gateways))
        s_gw_free (&g);
    zhashx_destroy (&self->tasks);
    zhashx_destroy (&self->peers);
    zhashx_destroy (&self->gateways);
    for (size_t i = 0; i < self->ntypes; i++) {
        zlistx_destroy (&self->by_type [i]);
        zlistx_destroy (&self->queue [i]);
    }
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
    return strndup (s ? s : "", max);
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

//  A session's gateway id, or NULL when the session is missing or unusable.
static const char *
s_session_gateway (const P2c2r__Session *session)
{
    if (!session || !session->gateway || !*session->gateway
        || strlen (session->gateway) > SCH_MAX_ID)
        return NULL;
    return session->gateway;
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
s_task_arm (sch_core_t *self, sch_task_t *task)
{
    if (task->state == SCH_QUEUED)
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
//  Sending

static void
s_send (sch_core_t *self, const char *dest, P2c2r__Internal *msg)
{
    self->send (self->send_arg, dest, msg);
}

//  The one terminal reply to a task, to the gamer's gateway.
static void
s_deliver (sch_core_t *self, sch_task_t *task, P2c2r__TaskReply *reply)
{
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
    free (task->last_peer);
    free (task->result_json);
    free (task->blob);
    free (task);
    *task_p = NULL;
}

//  The gauge counting tasks in a state.
static size_t *
s_gauge (sch_core_t *self, sch_state_t state)
{
    return state == SCH_QUEUED ? &self->stats.queued
         : state == SCH_RUNNING ? &self->stats.running : &self->stats.settling;
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
    return peer;
}

//  Removes a task from every index and frees it. A running task must have
//  been taken off its peer first (the caller then gives the slot new work).
static void
s_task_forget (sch_core_t *self, sch_task_t *task)
{
    assert (!task->peer);
    if (task->state == SCH_QUEUED && task->queue_handle) {
        zlistx_delete (self->queue [task->type], task->queue_handle);
        task->queue_handle = NULL;
    }
    (*s_gauge (self, task->state))--;
    s_heap_remove (self, task);
    sch_gw_t *gw = task->gw;
    zlistx_delete (gw->tasks, task->gw_handle);
    zhashx_delete (self->tasks, task->id);
    s_task_free (&task);
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
    free (task->last_peer);
    task->last_peer = strdup (peer->key);
    task->attempt_start_us = now_us;
    task->attempt_end_us = now_us + timeout_us;
    s_task_set_state (self, task, SCH_RUNNING);
    s_task_arm (self, task);

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

//  Puts the task in its type's queue: at the end when new, at the front
//  when it comes back from a failed attempt (it has waited longest).
static void
s_task_queue (sch_core_t *self, sch_task_t *task, bool front)
{
    task->queue_handle = front ? zlistx_add_start (self->queue [task->type], task)
                               : zlistx_add_end (self->queue [task->type], task);
    s_task_set_state (self, task, SCH_QUEUED);
    s_task_arm (self, task);
}

//  The eligible peer with the most free slots (ties: the least recently
//  assigned). `avoid` names a peer to take only when no other one is free.
//  NULL when every eligible peer is busy.
static sch_peer_t *
s_choose_peer (sch_core_t *self, int type, const char *avoid)
{
    sch_peer_t *best = NULL, *avoided = NULL;
    uint32_t best_free = 0;
    for (sch_peer_t *p = (sch_peer_t *) zlistx_first (self->by_type [type]); p;
         p = (sch_peer_t *) zlistx_next (self->by_type [type])) {
        if (p->busy >= p->slots)
            continue;
        if (avoid && !strcmp (p->key, avoid)) {
            avoided = p;
            continue;
        }
        uint32_t free_slots = p->slots - p->busy;
        if (!best || free_slots > best_free
            || (free_slots == best_free && p->last_assign < best->last_assign)) {
            best = p;
            best_free = free_slots;
        }
    }
    return best ? best : avoided;
}

//  Gives the peer's free slots the oldest queued tasks it can run.
static void
s_peer_pull (sch_core_t *self, sch_peer_t *peer, int64_t now_us)
{
    while (peer->busy < peer->slots) {
        sch_task_t *oldest = NULL;
        for (size_t i = 0; i < self->ntypes; i++) {
            if (!(peer->types & (1u << i)))
                continue;
            sch_task_t *head = (sch_task_t *) zlistx_first (self->queue [i]);
            if (head && (!oldest || head->seq < oldest->seq))
                oldest = head;
        }
        if (!oldest)
            break;
        zlistx_delete (self->queue [oldest->type], oldest->queue_handle);
        oldest->queue_handle = NULL;
        s_task_run (self, oldest, peer, now_us);
    }
}

//  After a lost peer or an expired attempt: try again while attempts and
//  time are left, else answer `timeout`. The task is off its peer.
static void
s_task_retry (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    if (task->gw->down) {
        //  nobody is left to answer
        self->stats.dropped++;
        s_task_forget (self, task);
        return;
    }
    if (task->attempts >= self->config.max_attempts || now_us >= task->deadline_us) {
        s_deliver_error (self, task, SCH_ERR_TIMEOUT, "no peer finished the task in time");
        s_task_forget (self, task);
        return;
    }
    sch_peer_t *peer = s_choose_peer (self, task->type, task->last_peer);
    if (peer)
        s_task_run (self, task, peer, now_us);
    else
        s_task_queue (self, task, true);
}

//  --------------------------------------------------------------------------
//  Peers

static void
s_peer_free (sch_peer_t **peer_p)
{
    sch_peer_t *peer = *peer_p;
    zlistx_destroy (&peer->tasks);
    free (peer->key);
    free (peer->peer_id);
    free (peer);
    *peer_p = NULL;
}

//  Forgets a peer whose connection is gone and retries its tasks elsewhere.
static void
s_peer_lost (sch_core_t *self, sch_peer_t *peer, int64_t now_us, const char *why)
{
    //  out of the choice first, so that its tasks go elsewhere
    for (size_t i = 0; i < self->ntypes; i++)
        if (peer->type_handle [i])
            zlistx_delete (self->by_type [i], peer->type_handle [i]);
    zhashx_delete (self->peers, peer->key);
    self->stats.slots -= peer->slots;
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
        if (t >= 0)
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
        zhashx_insert (self->peers, key, peer);
    }
    else
        self->stats.slots -= peer->slots;
    //  a gateway that speaks is alive, whatever the broker said before
    peer->gw->down = false;
    free (peer->peer_id);
    peer->peer_id = s_strndup_bounded (up->peer_id, SCH_MAX_ID);
    peer->account_id = up->account_id;
    peer->slots = slots;
    self->stats.slots += slots;
    for (size_t i = 0; i < self->ntypes; i++) {
        bool want = types & (1u << i);
        if (want && !peer->type_handle [i])
            peer->type_handle [i] = zlistx_add_end (self->by_type [i], peer);
        else
        if (!want && peer->type_handle [i]) {
            zlistx_delete (self->by_type [i], peer->type_handle [i]);
            peer->type_handle [i] = NULL;
        }
    }
    peer->types = types;
    log_info ("peer %s key=%s peer_id=%s slots=%u types=%d", fresh ? "up" : "refreshed",
              peer->key, peer->peer_id, slots, __builtin_popcount (types));
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

//  A gateway is gone: its peers with it; its gamers' queued tasks have
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
            if (t->state == SCH_QUEUED)
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
    if (zlistx_size (self->by_type [type]) == 0) {
        s_reject_submit (self, sub, gateway, SCH_ERR_NO_PEERS, "No peers available");
        return;
    }
    sch_peer_t *peer = s_choose_peer (self, type, NULL);
    if (!peer && self->stats.queued >= self->config.queue_max) {
        s_reject_submit (self, sub, gateway, SCH_ERR_UNAVAILABLE, "scheduler queue is full");
        return;
    }
    uint32_t deadline_ms = sub->deadline_ms ? sub->deadline_ms : SCH_DEFAULT_DEADLINE_MS;
    if (deadline_ms > SCH_MAX_DEADLINE_MS)
        deadline_ms = SCH_MAX_DEADLINE_MS;

    sch_task_t *task = (sch_task_t *) zmalloc (sizeof (sch_task_t));
    task->id = strdup (sub->task_id);
    task->type = type;
    task->seq = ++self->task_seq;
    task->params_json = s_strndup_bounded (sub->submit->params_json, P2C_MAX_INTERNAL);
    task->payload = s_memdup (sub->submit->payload.data, sub->submit->payload.len);
    task->payload_size = task->payload ? sub->submit->payload.len : 0;
    task->client_ref = s_strndup_bounded (sub->submit->client_ref, SCH_MAX_ID);
    task->gamer_account = sub->gamer_account;
    task->gamer_conn = sub->gamer->conn;
    task->gw = s_gw_require (self, gateway);
    task->gw->down = false;
    task->gw_handle = zlistx_add_end (task->gw->tasks, task);
    task->deadline_us = now_us + (int64_t) deadline_ms * 1000;
    task->heap_idx = SCH_NO_HEAP;
    //  counted as queued until it runs (s_task_set_state moves the count)
    task->state = SCH_QUEUED;
    self->stats.queued++;
    zhashx_insert (self->tasks, task->id, task);
    if (peer)
        s_task_run (self, task, peer, now_us);
    else {
        s_task_queue (self, task, false);
        log_debug ("task queued id=%s type=%s queued=%zu", task->id, s_type (type)->name,
                   self->stats.queued);
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
    if (res->ok) {
        uint64_t observed = (uint64_t) (now_us - task->attempt_start_us);
        uint64_t billed = res->compute_us < observed ? res->compute_us : observed;
        uint64_t ceiling = s_type (task->type)->max_billed_us;
        if (billed > ceiling)
            billed = ceiling;
        task->compute_us = res->compute_us;
        task->observed_us = observed;
        task->billed_us = billed;
        task->peer_account = peer->account_id;
        task->result_json = s_strndup_bounded (res->result_json, P2C_MAX_INTERNAL);
        task->blob = s_memdup (res->blob.data, res->blob.len);
        task->blob_size = task->blob ? res->blob.len : 0;
        task->settle_next_us = now_us + self->config.settle_retry_ms * 1000;
        s_task_set_state (self, task, SCH_SETTLING);
        s_task_arm (self, task);
        s_send_settle (self, task);
        self->stats.settle_sent++;
        log_debug ("task done id=%s peer=%s billed_us=%" PRIu64 " claimed_us=%" PRIu64
                   " observed_us=%" PRIu64, task->id, peer->key, billed, res->compute_us,
                   observed);
    }
    else {
        //  a peer may only blame the parameters or its kernel
        sch_err_t err = res->error_code && !strcmp (res->error_code, "invalid_params")
                      ? SCH_ERR_INVALID_PARAMS : SCH_ERR_KERNEL_ERROR;
        char *text = s_strndup_bounded (res->error, SCH_MAX_ERROR_TEXT);
        s_deliver_error (self, task, err, text);
        free (text);
        s_task_forget (self, task);
    }
    s_peer_pull (self, peer, now_us);
}

static void
s_on_settle_ack (sch_core_t *self, const P2c2r__SettleAck *ack)
{
    sch_task_t *task = ack->task_id
                     ? (sch_task_t *) zhashx_lookup (self->tasks, ack->task_id) : NULL;
    if (!task || task->state != SCH_SETTLING) {
        //  a replayed ack for a task already delivered
        self->stats.stale_acks++;
        log_debug ("stale settle ack id=%.64s", ack->task_id ? ack->task_id : "");
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
            s_on_settle_ack (self, msg->settle_ack);
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
    if (task->state == SCH_SETTLING) {
        //  the ledger is idempotent on task_id: resending is safe
        s_send_settle (self, task);
        self->stats.settle_retries++;
        log_debug ("settle resent id=%s", task->id);
        task->settle_next_us = now_us + self->config.settle_retry_ms * 1000;
        s_task_arm (self, task);
        return;
    }
    if (task->state == SCH_QUEUED) {
        //  queued tasks wake only at their deadline
        s_deliver_error (self, task, SCH_ERR_TIMEOUT, "no peer was free before the deadline");
        s_task_forget (self, task);
        return;
    }
    sch_peer_t *peer = s_task_unrun (self, task);
    if (now_us >= task->deadline_us) {
        s_deliver_error (self, task, SCH_ERR_TIMEOUT, "the task did not finish before the deadline");
        s_task_forget (self, task);
    }
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
    log_info ("status peers=%zu slots=%zu busy=%zu queued=%zu running=%zu settling=%zu"
              " submitted=%" PRIu64 " completed=%" PRIu64 " failed=%" PRIu64
              " no_peers=%" PRIu64 " timeout=%" PRIu64 " unavailable=%" PRIu64
              " invalid_params=%" PRIu64 " kernel_error=%" PRIu64 " reassigned=%" PRIu64
              " stale_results=%" PRIu64 " dropped=%" PRIu64 " settle_retries=%" PRIu64
              " bad_messages=%" PRIu64,
              s->peers, s->slots, s->busy_slots, s->queued, s->running, s->settling,
              s->submitted, s->completed, failed, s->failed [SCH_ERR_NO_PEERS],
              s->failed [SCH_ERR_TIMEOUT], s->failed [SCH_ERR_UNAVAILABLE],
              s->failed [SCH_ERR_INVALID_PARAMS], s->failed [SCH_ERR_KERNEL_ERROR],
              s->reassigned, s->stale_results, s->dropped, s->settle_retries,
              s->bad_messages);
    self->logged = *s;
}

void
sch_core_cron (sch_core_t *self, int64_t now_us)
{
    //  each wake either removes the task from the heap or re-arms it later
    //  than now, so this ends
    while (self->heap_size && self->heap [0]->wake_us <= now_us)
        s_task_wake (self, self->heap [0], now_us);
    s_status (self, now_us);
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
    (void) verbose;
    sch_core_config_t config;
    sch_core_config_default (&config);
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
    sch_core_destroy (&core);
    P2C_CHECK (core == NULL);
    sch_core_destroy (&core);
}
