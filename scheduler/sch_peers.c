/*  The peer registry of the scheduler core: peers by "gateway/conn", their
    side of each task type they run (kernel version, bench figure, speed
    average) and their entries in the per-type indexes of peers with a free
    slot, ordered by expected finish time. See docs/scheduler.md. */
#include "sch_internal.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <strings.h>

void
sch_peers_free (sch_peer_t **peer_p)
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
    free (peer->block);
    free (peer->owner);
    free (peer);
    *peer_p = NULL;
}

//  Masks the address to its block, so that peers and gamers of one network
//  (a colluding pair at home, a farm of accounts in one /24) are known as
//  one party: a prefix, not an account, is what costs an attacker money.
char *
sch_peers_block (const sch_core_config_t *config, const char *address)
{
    unsigned char a [16];
    char text [INET6_ADDRSTRLEN + 8], out [INET6_ADDRSTRLEN + 24];
    if (!address || !*address || strlen (address) >= INET6_ADDRSTRLEN)
        return strdup ("");
    //  an IPv4 client of a dual-stack listener is IPv4
    if (!strncasecmp (address, "::ffff:", 7) && strchr (address, '.'))
        address += 7;
    int family = strchr (address, ':') ? AF_INET6 : AF_INET;
    uint32_t bits = family == AF_INET6 ? config->block_v6_bits : config->block_v4_bits;
    size_t len = family == AF_INET6 ? 16 : 4;
    if (!bits || inet_pton (family, address, a) != 1)
        return strdup ("");
    for (size_t i = 0; i < len; i++) {
        uint32_t keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * (uint32_t) i : 0;
        a [i] &= (unsigned char) (0xff00u >> keep);
    }
    if (!inet_ntop (family, a, text, sizeof text))
        return strdup ("");
    snprintf (out, sizeof out, "%s/%u", text, bits);
    return strdup (out);
}

//  --------------------------------------------------------------------------
//  The indexes

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

//  In each of its types' indexes while it has a free slot and is neither
//  banned nor paused.
void
sch_peers_rekey (sch_core_t *self, sch_peer_t *peer)
{
    bool open = peer->busy < peer->slots && !peer->rep->banned && !peer->paused;
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

//  A banned account's peers leave the indexes (no work) and count as not
//  eligible.
void
sch_peers_standing (sch_core_t *self, sch_rep_t *rep)
{
    bool ban = rep->banned;
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
        sch_peers_rekey (self, p);
    }
}

//  Moving averages of the peer's and the type's compute time, and of the
//  peer's round trip (observed minus compute time).
void
sch_peers_learn (sch_core_t *self, sch_peer_t *peer, int type, double compute,
                 uint64_t observed)
{
    sch_ptype_t *pt = peer->pt [type];
    if (pt)
        pt->exec_us = pt->exec_us > 0 ? pt->exec_us + SCH_EWMA * (compute - pt->exec_us)
                                      : compute;
    double *tavg = &self->type_exec_us [type];
    *tavg = *tavg > 0 ? *tavg + SCH_EWMA * (compute - *tavg) : compute;
    peer->rtt_us += SCH_EWMA * (((double) observed - compute) - peer->rtt_us);
    sch_peers_rekey (self, peer);
}

//  Drops the peer's side of a type (it no longer runs it, or it left).
static void
s_drop_type (sch_core_t *self, sch_peer_t *peer, int t)
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

//  The session sent a result of a kernel version we do not know for the
//  type: it gets no more tasks of that type (a retry must not land there
//  again); a reconnect starts afresh, its account's reputation does not.
void
sch_peers_refuse_type (sch_core_t *self, sch_peer_t *peer, int t)
{
    if (!peer->pt [t])
        return;
    s_drop_type (self, peer, t);
    peer->types &= ~(1u << t);
    log_info ("peer refused for type key=%s type=%s", peer->key, sch_type (t)->name);
}

//  --------------------------------------------------------------------------
//  Peers coming and going

void
sch_peers_lost (sch_core_t *self, sch_peer_t *peer, int64_t now_us, const char *why)
{
    //  out of the choice first, so that its tasks go elsewhere
    for (size_t t = 0; t < self->ntypes; t++)
        if (peer->pt [t])
            s_drop_type (self, peer, (int) t);
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
        sch_tasks_unrun (self, task);
        sch_tasks_retry (self, task, now_us);
    }
    //  only now leave the gateway: while listed there, the peer keeps it
    //  from being collected as its tasks are forgotten
    sch_gw_t *gw = peer->gw;
    zlistx_delete (gw->peers, peer->gw_handle);
    sch_peers_free (&peer);
    sch_gateways_collect (self, gw);
}

//  True when the peer's advertised resources meet the type's needs.
static bool
s_fits (sch_core_t *self, const P2c2r__Capabilities *caps, int t)
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

//  A new peer record for a session, in the registry, its gateway's and its
//  account's lists.
static sch_peer_t *
s_peer_new (sch_core_t *self, const char *key, const char *gateway,
            const P2c2r__PeerUp *up, int64_t now_us)
{
    sch_peer_t *peer = (sch_peer_t *) zmalloc (sizeof (sch_peer_t));
    peer->key = p2c_strdup (key);
    peer->conn = up->session->conn;
    peer->gw = sch_gateways_require (self, gateway);
    peer->gw_handle = zlistx_add_end (peer->gw->peers, peer);
    peer->tasks = zlistx_new ();
    peer->account_id = up->account_id;
    //  reputation follows the account across reconnects
    peer->rep = sch_reputation_require (self, up->account_id, now_us);
    peer->rep_handle = zlistx_add_end (peer->rep->peers, peer);
    if (peer->rep->banned)
        self->stats.banned_peers++;
    zhashx_insert (self->peers, key, peer);
    return peer;
}

//  The peer's side of type t as its capabilities say: created when new,
//  with the bench figure and kernel version of this type when sent.
static void
s_set_type (sch_core_t *self, sch_peer_t *peer, const P2c2r__Capabilities *caps, size_t t)
{
    sch_ptype_t *pt = peer->pt [t];
    if (!pt) {
        pt = peer->pt [t] = (sch_ptype_t *) zmalloc (sizeof (sch_ptype_t));
        pt->entry.item = peer;
        pt->entry.pos = SCH_INDEX_NONE;
        pt->version = p2c_strdup ("");
        if (!peer->rep->banned)
            self->eligible [t]++;
    }
    if (pt->ref_us) {
        self->ref_sum [t] -= (double) pt->ref_us;
        self->ref_n [t]--;
        pt->ref_us = 0;
    }
    for (size_t k = 0; caps && k < caps->n_kernels; k++) {
        const P2c2r__KernelInfo *ki = caps->kernels [k];
        if (!ki || sch_type_index (ki->task_type) != (int) t)
            continue;
        free (pt->version);
        pt->version = sch_strndup_bounded (ki->version, SCH_MAX_SHORT);
        pt->ref_us = ki->reference_us <= 3600000000ULL ? ki->reference_us : 0;
    }
    if (pt->ref_us) {
        self->ref_sum [t] += (double) pt->ref_us;
        self->ref_n [t]++;
    }
}

void
sch_peers_up (sch_core_t *self, const P2c2r__PeerUp *up, int64_t now_us)
{
    const char *gateway = sch_session_gateway (up->session);
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
        int t = sch_type_index (caps->task_types [i]);
        if (t >= 0 && s_fits (self, caps, t))
            types |= 1u << t;
    }
    //  a kernel version the catalogue does not know would only bring
    //  invalid results (an agent older than the server): not eligible
    for (size_t k = 0; caps && k < caps->n_kernels; k++) {
        const P2c2r__KernelInfo *ki = caps->kernels [k];
        int t = ki ? sch_type_index (ki->task_type) : -1;
        if (t >= 0 && (types & (1u << t)) && ki->version && *ki->version
            && !p2c_task_version_known (sch_type (t), ki->version)) {
            types &= ~(1u << t);
            log_info ("peer kernel unknown peer_id=%.64s type=%s version=%.32s",
                      up->peer_id ? up->peer_id : "", sch_type (t)->name, ki->version);
        }
    }
    sch_peer_t *peer = (sch_peer_t *) zhashx_lookup (self->peers, key);
    bool fresh = !peer;
    if (fresh)
        peer = s_peer_new (self, key, gateway, up, now_us);
    else
        self->stats.slots -= peer->slots;
    //  a gateway that speaks is alive, whatever the broker said before
    peer->gw->down = false;
    free (peer->peer_id);
    peer->peer_id = sch_strndup_bounded (up->peer_id, SCH_MAX_ID);
    free (peer->region);
    peer->region = sch_strndup_bounded (caps ? caps->region : "", SCH_MAX_SHORT);
    free (peer->block);
    peer->block = sch_peers_block (&self->config, up->address);
    free (peer->owner);
    peer->owner = sch_strndup_bounded (up->owner, SCH_MAX_ID);
    peer->slots = slots;
    self->stats.slots += slots;
    if (!fresh && peer->paused != up->paused)
        log_info ("peer %s key=%s peer_id=%s", up->paused ? "paused" : "resumed", peer->key,
                  peer->peer_id);
    peer->paused = up->paused;
    for (size_t t = 0; t < self->ntypes; t++) {
        bool want = types & (1u << t);
        if (!want && peer->pt [t])
            s_drop_type (self, peer, (int) t);
        if (want)
            s_set_type (self, peer, caps, t);
    }
    peer->types = types;
    sch_peers_rekey (self, peer);
    log_info ("peer %s key=%s peer_id=%s account=%" PRId64 " owner=%s slots=%u types=%d"
              " region=%s block=%s%s", fresh ? "up" : "refreshed", peer->key, peer->peer_id,
              peer->account_id, *peer->owner ? peer->owner : "-", slots,
              __builtin_popcount (types), peer->region, peer->block,
              peer->rep->banned ? " banned=1" : "");
    sch_queues_pull (self, peer, now_us);
}

void
sch_peers_down (sch_core_t *self, const P2c2r__PeerDown *down, int64_t now_us)
{
    const char *gateway = sch_session_gateway (down->session);
    if (!gateway) {
        self->stats.bad_messages++;
        log_debug ("bad PeerDown: no session");
        return;
    }
    char key [SCH_MAX_ID + 32];
    snprintf (key, sizeof key, "%s/%" PRIu64, gateway, down->session->conn);
    sch_peer_t *peer = (sch_peer_t *) zhashx_lookup (self->peers, key);
    if (peer)
        sch_peers_lost (self, peer, now_us, "peer_down");
    else
        log_debug ("PeerDown for unknown peer key=%s", key);
}

//  --------------------------------------------------------------------------
//  Self-test: registry, indexes, refreshes, speed averages, loss

//  A one-slot encryption peer's PeerUp with its pause flag
static void
s_test_up (sch_core_t *core, const char *gw, uint64_t conn, bool paused, int64_t now_us)
{
    char *types [1] = { "encryption" };
    P2c2r__Session session = P2C2R__SESSION__INIT;
    session.gateway = (char *) gw;
    session.conn = conn;
    P2c2r__Capabilities caps = P2C2R__CAPABILITIES__INIT;
    caps.slots = 1;
    caps.n_task_types = 1;
    caps.task_types = types;
    P2c2r__PeerUp up = P2C2R__PEER_UP__INIT;
    up.session = &session;
    up.peer_id = "guest";
    up.account_id = 13;
    up.capabilities = &caps;
    up.paused = paused;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    msg.msg_case = P2C2R__INTERNAL__MSG_PEER_UP;
    msg.peer_up = &up;
    sch_core_handle (core, gw, &msg, now_us);
}

void
sch_peers_test (bool verbose)
{
    (void) verbose;
    sch_selftest_t cap;
    sch_core_t *core = sch_selftest_core (&cap, NULL);
    int enc = sch_type_index ("encryption");
    int cmp = sch_type_index ("compression");
    P2C_CHECK (enc >= 0 && cmp >= 0 && sch_type_index ("hash") == enc);
    P2C_CHECK (sch_type_index ("mining") == -1);
    //  address blocks: off by default; /24 and /64 when set
    sch_core_config_t bc;
    sch_core_config_default (&bc);
    char *b = sch_peers_block (&bc, "203.0.113.77");
    P2C_CHECK (b && !strcmp (b, ""));
    free (b);
    bc.block_v4_bits = 24;
    bc.block_v6_bits = 64;
    const char *blocks [][2] = {
        { "203.0.113.77", "203.0.113.0/24" }, { "203.0.113.1", "203.0.113.0/24" },
        { "127.0.1.5", "127.0.1.0/24" }, { "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64" },
        { "::1", "::/64" }, { "not-an-ip", "" }, { "", "" }, { "1.2.3.4.5", "" },
        { "999.1.1.1", "" }, { "::ffff:198.51.100.9", "198.51.100.0/24" }, { "::ffff:198.51.100.9", "198.51.100.0/24" }
    };
    for (size_t i = 0; i < sizeof blocks / sizeof blocks [0]; i++) {
        b = sch_peers_block (&bc, blocks [i][0]);
        P2C_CHECK (b && !strcmp (b, blocks [i][1]));
        free (b);
    }
    b = sch_peers_block (&bc, NULL);
    P2C_CHECK (b && !*b);
    free (b);
    //  an agent whose kernel version the catalogue does not know is not
    //  eligible for that type (its results would be invalid); a known one is
    {
        char *tt [] = { "encryption", "compression" };
        P2c2r__KernelInfo k1 = P2C2R__KERNEL_INFO__INIT, k2 = P2C2R__KERNEL_INFO__INIT;
        k1.task_type = "encryption";
        k1.version = "0.9-old";
        k2.task_type = "compression";
        k2.version = "1.0.0";
        P2c2r__KernelInfo *ks [] = { &k1, &k2 };
        P2c2r__Capabilities caps = P2C2R__CAPABILITIES__INIT;
        caps.slots = 1;
        caps.n_task_types = 2;
        caps.task_types = tt;
        caps.n_kernels = 2;
        caps.kernels = ks;
        P2c2r__Session session = P2C2R__SESSION__INIT;
        session.gateway = "gw-old";
        session.conn = 5;
        P2c2r__PeerUp up = P2C2R__PEER_UP__INIT;
        up.session = &session;
        up.peer_id = "old-agent";
        up.account_id = 55;
        up.capabilities = &caps;
        sch_peers_up (core, &up, 0);
        sch_peer_t *old = (sch_peer_t *) zhashx_lookup (core->peers, "gw-old/5");
        P2C_CHECK (old && !old->pt [enc] && old->pt [cmp] && old->types == 1u << cmp);
        P2C_CHECK (core->eligible [enc] == 0 && core->eligible [cmp] == 1);
        sch_peers_lost (core, old, 0, "test");
    }
    bc.block_v4_bits = 20;
    b = sch_peers_block (&bc, "10.1.31.9");
    P2C_CHECK (b && !strcmp (b, "10.1.16.0/20"));
    free (b);
    sch_selftest_peer_up (core, "gw-p", 1, 2, "encryption,compression,mining", 11, 0);
    sch_peer_t *peer = (sch_peer_t *) zhashx_lookup (core->peers, "gw-p/1");
    P2C_CHECK (peer && peer->slots == 2 && peer->pt [enc] && peer->pt [cmp]);
    P2C_CHECK (__builtin_popcount (peer->types) == 2);
    P2C_CHECK (core->eligible [enc] == 1 && core->stats.slots == 2);
    P2C_CHECK (sch_index_size (core->index [enc]) == 1 && sch_index_size (core->index [cmp]) == 1);
    P2C_CHECK (sch_core_peer_busy (core, "gw-p", 1) == 0 && sch_core_peer_busy (core, "gw-p", 2) == -1);
    //  a busy slot: still chosen (one free), with a worse score
    double idle = peer->pt [enc]->entry.score;
    sch_selftest_submit (core, "gw-g", "t1", "encryption", 500, 0);
    P2C_CHECK (peer->busy == 1 && peer->pt [enc]->entry.free == 1
               && peer->pt [enc]->entry.score > idle);
    //  full: out of every index
    sch_selftest_submit (core, "gw-g", "t2", "encryption", 500, 0);
    P2C_CHECK (peer->busy == 2 && sch_index_size (core->index [enc]) == 0
               && sch_index_size (core->index [cmp]) == 0);
    //  what a result teaches: compute 500 us seen over 700 us
    sch_peers_learn (core, peer, enc, 500, 700);
    P2C_CHECK (peer->pt [enc]->exec_us == 500 && core->type_exec_us [enc] == 500);
    P2C_CHECK (peer->rtt_us > 39.9 && peer->rtt_us < 40.1);
    sch_peers_learn (core, peer, enc, 1000, 1000);
    P2C_CHECK (peer->pt [enc]->exec_us > 599.9 && peer->pt [enc]->exec_us < 600.1);
    //  a refresh that drops a type
    sch_selftest_peer_up (core, "gw-p", 1, 4, "encryption", 11, 0);
    P2C_CHECK (peer->pt [cmp] == NULL && core->eligible [cmp] == 0 && core->stats.slots == 4);
    P2C_CHECK (peer->busy == 2 && sch_index_size (core->index [enc]) == 1);
    //  lost: its running tasks go back to the queue (no other peer), the
    //  registry forgets it
    sch_selftest_peer_up (core, "gw-p", 1, 2, "encryption", 11, 0);
    sch_peers_lost (core, peer, 10, "selftest");
    P2C_CHECK (zhashx_size (core->peers) == 0 && core->stats.slots == 0
               && core->eligible [enc] == 0 && core->stats.busy_slots == 0);
    sch_task_t *t1 = sch_selftest_task (core, "t1");
    P2C_CHECK (t1 && t1->state == SCH_QUEUED && core->stats.queued == 2);
    //  a peer that comes pulls them
    sch_selftest_peer_up (core, "gw-q", 3, 2, "hash", 12, 20);
    P2C_CHECK (t1->state == SCH_RUNNING && core->stats.queued == 0
               && sch_core_peer_busy (core, "gw-q", 3) == 2);
    //  a peer its owner paused gets nothing new; resumed, it pulls the queue
    s_test_up (core, "gw-r", 5, true, 30);
    sch_peer_t *r = (sch_peer_t *) zhashx_lookup (core->peers, "gw-r/5");
    P2C_CHECK (r && r->paused && sch_index_size (core->index [enc]) == 0);
    sch_selftest_submit (core, "gw-g", "t3", "encryption", 500, 40);
    sch_task_t *t3 = sch_selftest_task (core, "t3");
    P2C_CHECK (t3 && t3->state == SCH_QUEUED && r->busy == 0);
    s_test_up (core, "gw-r", 5, false, 50);
    P2C_CHECK (!r->paused && t3->state == SCH_RUNNING && r->busy == 1);
    //  paused while running: the task stays where it is
    s_test_up (core, "gw-r", 5, true, 60);
    P2C_CHECK (r->paused && t3->state == SCH_RUNNING && r->busy == 1);
    sch_core_destroy (&core);
}
