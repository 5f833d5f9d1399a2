/*  Frames split into tiles across peers (issue 12, docs/scheduler.md): a
    ray-tracing task whose frame is above --tile-px pixels runs as tiles
    (sch_tiles cuts the frame and puts it back together), each a task of
    its own, id#tN, with no gateway: assigned, validated, retried and
    settled alone. The gamer's task waits (validating) until its deadline.
    A tile's result is held until every tile is in; then each tile is
    settled, and after the last SettleAck the gamer gets one reply with
    the assembled PNG and the summed cost, cached whole. A frame that
    cannot finish gets one error and charges the gamer for no tile (the
    treasury pays the held tiles' peers, as it pays check runs). */
#include "sch_internal.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <inttypes.h>

bool
sch_frames_capable (sch_peer_t *peer, int type)
{
    const sch_ptype_t *pt = peer->pt [type];
    return pt && sch_cache_version_ok (sch_type (type)->name, pt->version);
}

static size_t
s_frame_bytes (sch_tiles_t *tiles)
{
    return (size_t) sch_tiles_width (tiles) * sch_tiles_height (tiles) * 3;
}

void
sch_frames_free (sch_frame_t **frame_p)
{
    sch_frame_t *frame = *frame_p;
    if (!frame)
        return;
    sch_tiles_destroy (&frame->tiles);
    free (frame);
    *frame_p = NULL;
}

//  A running tile is taken off its peer (whose late answer is then stale).
void
sch_frames_forget (sch_core_t *self, sch_task_t *task)
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
            sch_tasks_unrun (self, tile);
        sch_tasks_forget (self, tile);
    }
    self->frame_bytes -= s_frame_bytes (frame->tiles);
    sch_frames_free (&frame);
}

bool
sch_frames_split (sch_core_t *self, sch_task_t *task, int64_t now_us)
{
    if (task->is_check || task->is_tile || !task->gw || !self->config.tile_px)
        return false;
    //  Only a frame above the tile size splits: known before any scan of
    //  the peers (which every task paid for, O(peers) each)
    sch_tiles_t *tiles = sch_tiles_new (sch_type (task->type)->name, task->params_json,
                                        self->config.tile_px, self->config.tile_max);
    if (!tiles)
        return false;
    //  without a peer that renders tiles the frame runs whole (a fleet of
    //  the original demo's peers, or its only such peers paused by their
    //  owners); the scan stops at the first that does
    bool capable = false;
    for (sch_peer_t *p = (sch_peer_t *) zhashx_first (self->peers); p && !capable;
         p = (sch_peer_t *) zhashx_next (self->peers))
        capable = !p->rep->banned && !p->paused && sch_frames_capable (p, task->type);
    if (!capable) {
        sch_tiles_destroy (&tiles);
        return false;
    }
    size_t bytes = s_frame_bytes (tiles);
    if (self->frame_bytes + bytes > SCH_FRAME_BYTES_MAX) {
        //  a flood of large frames must not grow the scheduler without bound
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
        sch_tasks_fail (self, task, SCH_ERR_INSUFFICIENT_FUNDS,
                        "balance too low for the frame's tiles", now_us);
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
    sch_tasks_set_state (self, task, SCH_VALIDATING);
    sch_tasks_arm (self, task, now_us);
    for (size_t k = 0; k < n; k++) {
        char id [SCH_MAX_ID + 16];
        snprintf (id, sizeof id, "%s#t%zu", task->id, k);
        sch_task_t *tile = (sch_task_t *) zmalloc (sizeof (sch_task_t));
        tile->id = p2c_strdup (id);
        tile->type = task->type;
        tile->seq = ++self->task_seq;
        tile->is_tile = true;
        tile->tile_run = true;
        tile->frame = frame;
        tile->tile = k;
        tile->params_json = sch_tiles_params (tiles, k);
        assert (tile->params_json);
        tile->client_ref = p2c_strdup ("");
        tile->region = p2c_strdup (task->region);
        tile->gamer_account = task->gamer_account;
        //  no self-dealing for tiles either: not on the gamer's own peer
        //  (name, address block, owner)
        tile->gamer_id = task->gamer_id ? strdup (task->gamer_id) : NULL;
        tile->gamer_block = task->gamer_block ? strdup (task->gamer_block) : NULL;
        tile->gamer_owner = task->gamer_owner ? strdup (task->gamer_owner) : NULL;
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
    char *id = p2c_strdup (task->id);
    for (size_t k = 0; k < n && zhashx_lookup (self->tasks, id); k++)
        if (frame->child [k] && frame->child [k]->state == SCH_QUEUED
            && !frame->child [k]->queue_handle)
            sch_tasks_start (self, frame->child [k], now_us);
    free (id);
    return true;
}

//  The peers of the tiles held so far did valid work: the treasury pays
//  them as it pays check runs (--pay-checks).
void
sch_frames_fail (sch_core_t *self, sch_frame_t *frame, sch_err_t err, const char *text,
                 int64_t now_us)
{
    for (size_t k = 0; self->config.pay_checks && k < sch_tiles_count (frame->tiles); k++) {
        sch_task_t *tile = frame->child [k];
        if (!tile || tile->state != SCH_VALIDATING || !tile->result_json)
            continue;
        //  paid like a check run (gamer_account 0), so that the ledger's
        //  ack is the payout's, the tile being gone by then
        sch_payout_run_t run = { tile->id, true, tile->peer_account, tile->type,
                                 tile->billed_us, tile->compute_us, tile->observed_us };
        sch_payouts_add (self->payouts, &run, false, now_us);
    }
    log_info ("frame failed id=%s code=%s tiles_in=%zu/%zu", frame->parent->id, sch_err_name (err),
              frame->held, sch_tiles_count (frame->tiles));
    sch_tasks_fail (self, frame->parent, err, text, now_us);
}

void
sch_frames_hold (sch_core_t *self, sch_task_t *task, const sch_vent_t *e, int64_t now_us)
{
    sch_frame_t *frame = task->frame;
    if (!sch_tiles_put (frame->tiles, task->tile, e->result_json, e->blob, e->blob_size)) {
        sch_frames_fail (self, frame, SCH_ERR_KERNEL_ERROR,
                         "a peer answered a tile with something else (a kernel older than 1.1.0?)",
                         now_us);
        return;
    }
    task->peer_account = e->account;
    task->compute_us = e->compute_us;
    task->observed_us = e->observed_us;
    task->billed_us = e->billed_us;
    free (task->result_json);
    task->result_json = p2c_strdup (e->result_json);
    if (!sch_cache_version_ok (sch_type (task->type)->name, e->version))
        frame->current = false;
    if (task->state != SCH_VALIDATING)
        sch_tasks_set_state (self, task, SCH_VALIDATING);
    sch_tasks_arm (self, task, now_us);
    if (++frame->held < sch_tiles_count (frame->tiles))
        return;
    for (size_t k = 0; k < sch_tiles_count (frame->tiles); k++)
        sch_tasks_settle_send (self, frame->child [k], now_us);
}

void
sch_frames_settled (sch_core_t *self, sch_task_t *task, const P2c2r__SettleAck *ack,
                    int64_t now_us)
{
    sch_frame_t *frame = task->frame;
    if (!ack->ok) {
        sch_frames_fail (self, frame, SCH_ERR_UNAVAILABLE, "settlement of a tile failed", now_us);
        return;
    }
    frame->settled++;
    frame->cost_pico += ack->gamer_charge_pico;
    frame->compute_us += task->compute_us;
    frame->billed_us += task->billed_us;
    sch_tasks_forget (self, task);
    if (frame->settled < sch_tiles_count (frame->tiles))
        return;
    sch_task_t *parent = frame->parent;
    char *json = NULL;
    uint8_t *png = NULL;
    size_t png_size = 0;
    if (!sch_tiles_assemble (frame->tiles, &json, &png, &png_size)) {
        sch_tasks_fail (self, parent, SCH_ERR_KERNEL_ERROR, "the frame could not be assembled",
                        now_us);
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
    sch_tasks_deliver (self, parent, &reply);
    self->stats.completed++;
    sch_stats_latency (self, parent, now_us);
    //  cached as a whole, when every tile came from the current kernel;
    //  shared only when the type's validation is none (issue 14: a tile's
    //  spot check may still be running), else it serves only this gamer
    if (parent->cache_key && frame->current)
        sch_cache_put_for (self->cache, parent->cache_key,
                           sch_validation_shareable (self, parent) ? 0 : parent->gamer_account,
                           json, png, png_size, frame->compute_us, now_us);
    log_info ("frame done id=%s tiles=%zu billed_us=%" PRIu64 " cost_pico=%" PRId64, parent->id,
              sch_tiles_count (frame->tiles), frame->billed_us, frame->cost_pico);
    free (json);
    free (png);
    sch_tasks_forget (self, parent);
}

//  --------------------------------------------------------------------------
//  Self-test: which peers render tiles, a frame split and its tiles
//  assigned alone, a frame that misses its deadline answered once with
//  nothing left behind, a frame run whole without a tile-capable peer (or
//  with its only one paused). A frame's tiles held, settled and assembled
//  are test_scheduler's `tiles` and `tiles_quorum` rules (they need real
//  tile PNGs).

static void
s_test_peer_up (sch_core_t *core, const char *gw, uint64_t conn, uint32_t slots,
                const char *version, bool paused)
{
    char *types [] = { "rt_reflections" };
    P2c2r__KernelInfo ki = P2C2R__KERNEL_INFO__INIT;
    ki.task_type = "rt_reflections";
    ki.version = (char *) version;
    P2c2r__KernelInfo *kis [] = { &ki };
    P2c2r__Capabilities caps = P2C2R__CAPABILITIES__INIT;
    caps.slots = slots;
    caps.n_task_types = 1;
    caps.task_types = types;
    caps.n_kernels = 1;
    caps.kernels = kis;
    P2c2r__Session session = P2C2R__SESSION__INIT;
    session.gateway = (char *) gw;
    session.conn = conn;
    P2c2r__PeerUp up = P2C2R__PEER_UP__INIT;
    up.session = &session;
    up.peer_id = "selftest";
    up.account_id = (int64_t) conn;
    up.capabilities = &caps;
    up.paused = paused;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_PEER_UP;
    msg.peer_up = &up;
    sch_core_handle (core, gw, &msg, 0);
}

static void
s_test_submit (sch_core_t *core, const char *id, const char *params, int64_t now_us)
{
    P2c2r__Session gamer = P2C2R__SESSION__INIT;
    gamer.gateway = "gw-g";
    gamer.conn = 1;
    P2c2r__Submit submit = P2C2R__SUBMIT__INIT;
    submit.task_type = "rt_reflections";
    submit.params_json = (char *) params;
    submit.client_ref = (char *) id;        //  one per task: a repeat would join it
    P2c2r__TaskSubmit ts = P2C2R__TASK_SUBMIT__INIT;
    ts.task_id = (char *) id;
    ts.gamer = &gamer;
    ts.gamer_account = 500;
    ts.gamer_id = "player";
    ts.submit = &submit;
    ts.deadline_ms = 30000;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_TASK_SUBMIT;
    msg.task_submit = &ts;
    sch_core_handle (core, "gw-g", &msg, now_us);
}

void
sch_frames_test (bool verbose)
{
    (void) verbose;
    char current [SCH_MAX_SHORT];
    p2c_task_version_current (sch_type (sch_type_index ("rt_reflections")), current,
                              sizeof current);
    sch_core_config_t config;
    sch_core_config_default (&config);
    P2C_CHECK (config.tile_px == 518400 && config.tile_max == 16);
    config.validation = SCH_VAL_NONE;
    config.funds_check = false;
    config.cache_max_entries = 0;
    config.tile_px = 100;           //  a 16x12 frame (192 pixels) is two tiles
    config.tile_max = 4;
    sch_selftest_t cap;
    sch_core_t *core = sch_selftest_core (&cap, &config);
    int rt = sch_type_index ("rt_reflections");

    //  a ray tracer older than 1.1.0 (which ignores `tile`) is not eligible
    //  at all: the catalogue knows 1.1.0 only
    s_test_peer_up (core, "gw-v", 8, 1, "1.0.0", false);
    sch_peer_t *v1 = (sch_peer_t *) zhashx_lookup (core->peers, "gw-v/8");
    P2C_CHECK (v1 && !v1->pt [rt] && core->eligible [rt] == 0);
    //  only a peer of the catalogue's kernel version renders tiles; one
    //  that names no version (the JSON protocol has no field for it) runs
    //  frames whole
    s_test_peer_up (core, "gw-o", 9, 1, "", false);
    sch_peer_t *old = (sch_peer_t *) zhashx_lookup (core->peers, "gw-o/9");
    P2C_CHECK (old && old->pt [rt] && !sch_frames_capable (old, rt));
    //  ...without one, a frame runs whole
    s_test_submit (core, "w1", "{\"resolution\":[16,12]}", 0);
    sch_task_t *whole = sch_selftest_task (core, "w1");
    P2C_CHECK (whole && !whole->frame && whole->state == SCH_RUNNING && whole->peer == old);
    P2C_CHECK (!sch_selftest_task (core, "w1#t0") && core->frame_bytes == 0);
    sch_tasks_unrun (core, whole);
    sch_tasks_forget (core, whole);

    s_test_peer_up (core, "gw-a", 1, 2, current, false);
    sch_peer_t *peer = (sch_peer_t *) zhashx_lookup (core->peers, "gw-a/1");
    P2C_CHECK (peer && sch_frames_capable (peer, rt));

    //  a frame above the threshold: two tiles, each a task of its own on
    //  the capable peer (the old one has a free slot and gets none)
    int assigns = cap.count [P2C2R__INTERNAL__MSG_TASK_ASSIGN];
    s_test_submit (core, "f1", "{\"resolution\":[16,12],\"seed\":3}", 0);
    sch_task_t *parent = sch_selftest_task (core, "f1");
    P2C_CHECK (parent && parent->frame && parent->state == SCH_VALIDATING);
    P2C_CHECK (core->frame_bytes == 16 * 12 * 3);
    for (size_t k = 0; k < 2; k++) {
        char id [32];
        snprintf (id, sizeof id, "f1#t%zu", k);
        sch_task_t *tile = sch_selftest_task (core, id);
        P2C_CHECK (tile && tile->is_tile && tile->tile_run && tile->tile == k && !tile->gw);
        //  the frame's gamer (no self-dealing) goes with each tile
        P2C_CHECK (tile && tile->gamer_id && !strcmp (tile->gamer_id, "player")
                   && tile->gamer_account == 500);
        P2C_CHECK (tile && tile->peer == peer && tile->frame == parent->frame);
        P2C_CHECK (tile && strstr (tile->params_json, "\"tile\":[0,"));
    }
    P2C_CHECK (!sch_selftest_task (core, "f1#t2"));
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_TASK_ASSIGN] == assigns + 2);
    P2C_CHECK (old->busy == 0);

    //  the deadline passes: a timeout to the gamer, the tiles leave with
    //  the frame (taken off their peer), nothing to settle or pay (the
    //  outbox may also send earlier unconfirmed replies again: the gateway
    //  drops those by task id)
    int delivers = cap.count [P2C2R__INTERNAL__MSG_DELIVER];
    sch_core_cron (core, 30001 * 1000LL);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_DELIVER] > delivers);
    P2C_CHECK (!strcmp (cap.last_task, "f1") && !cap.last_ok && !strcmp (cap.last_code, "timeout"));
    P2C_CHECK (!sch_selftest_task (core, "f1") && !sch_selftest_task (core, "f1#t0")
               && !sch_selftest_task (core, "f1#t1"));
    P2C_CHECK (zhashx_size (core->tasks) == 0 && core->frame_bytes == 0 && peer->busy == 0);
    P2C_CHECK (cap.count [P2C2R__INTERNAL__MSG_SETTLE_REQUEST] == 0);
    P2C_CHECK (sch_payouts_size (core->payouts) == 0);

    //  a frame at or below the threshold is not split
    s_test_submit (core, "s1", "{\"resolution\":[10,10]}", 31000 * 1000LL);
    sch_task_t *small = sch_selftest_task (core, "s1");
    P2C_CHECK (small && !small->frame && small->state == SCH_RUNNING && small->peer == peer);

    //  the only tile-capable peer paused by its owner: the frame runs whole
    //  (on the old kernel's free peer) rather than wait for it
    s_test_peer_up (core, "gw-a", 1, 2, current, true);
    P2C_CHECK (peer->paused);
    s_test_submit (core, "f2", "{\"resolution\":[16,12]}", 32000 * 1000LL);
    sch_task_t *f2 = sch_selftest_task (core, "f2");
    P2C_CHECK (f2 && !f2->frame && f2->peer == old && !sch_selftest_task (core, "f2#t0"));
    sch_core_destroy (&core);
}
