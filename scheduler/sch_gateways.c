/*  The gateway nodes the scheduler core hears from, and what dies with one:
    its peers, and the waiting tasks of its gamers (nobody is left to answer
    them). Running tasks of its gamers finish and settle: the peers did the
    work and are paid; but nobody can receive those results, so their
    charges are refunded (sch_outbox), as are those of replies the gateway
    had not confirmed. */
#include "sch_internal.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

sch_gw_t *
sch_gateways_require (sch_core_t *self, const char *id)
{
    sch_gw_t *gw = (sch_gw_t *) zhashx_lookup (self->gateways, id);
    if (!gw) {
        gw = (sch_gw_t *) zmalloc (sizeof (sch_gw_t));
        gw->id = p2c_strdup (id);
        gw->peers = zlistx_new ();
        gw->tasks = zlistx_new ();
        zhashx_insert (self->gateways, id, gw);
    }
    return gw;
}

void
sch_gateways_free (sch_gw_t **gw_p)
{
    sch_gw_t *gw = *gw_p;
    zlistx_destroy (&gw->peers);
    zlistx_destroy (&gw->tasks);
    free (gw->id);
    free (gw);
    *gw_p = NULL;
}

void
sch_gateways_collect (sch_core_t *self, sch_gw_t *gw)
{
    if (zlistx_size (gw->peers) || zlistx_size (gw->tasks))
        return;
    zhashx_delete (self->gateways, gw->id);
    sch_gateways_free (&gw);
}

void
sch_gateways_down (sch_core_t *self, const char *id, int64_t now_us)
{
    //  replies to its gamers reach nobody now (their tasks may be gone);
    //  client_ref outcomes nobody received are forgotten first
    sch_refs_gateway_down (self, id);
    sch_outbox_gateway_down (self->outbox, id);
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
        sch_peers_lost (self, peer, now_us, "gateway_down");
    size_t dropped = 0;
    if (gw) {
        zlistx_t *doomed = zlistx_new ();
        for (sch_task_t *t = (sch_task_t *) zlistx_first (gw->tasks); t;
             t = (sch_task_t *) zlistx_next (gw->tasks))
            //  (a task joined by a repeat of its client_ref from elsewhere
            //  goes on: its reply has somewhere to go)
            if ((t->state == SCH_QUEUED || t->state == SCH_PARKED)
                && !sch_task_joined (t))
                zlistx_add_end (doomed, t);
        dropped = zlistx_size (doomed);
        for (sch_task_t *t = (sch_task_t *) zlistx_first (doomed); t;
             t = (sch_task_t *) zlistx_next (doomed))
            sch_tasks_forget (self, t);     //  may free gw when it was the last
        zlistx_destroy (&doomed);
        self->stats.dropped += dropped;
    }
    log_info ("gateway down id=%s peers=%zu queued_dropped=%zu", id, npeers, dropped);
}

//  --------------------------------------------------------------------------
//  Self-test

void
sch_gateways_test (bool verbose)
{
    (void) verbose;
    sch_selftest_t cap;
    sch_core_t *core = sch_selftest_core (&cap, NULL);
    //  a gateway record lives while something holds it
    sch_gw_t *gw = sch_gateways_require (core, "gw-x");
    P2C_CHECK (gw && sch_gateways_require (core, "gw-x") == gw);
    sch_gateways_collect (core, gw);
    P2C_CHECK (zhashx_lookup (core->gateways, "gw-x") == NULL);
    //  gw-a holds a peer and a gamer: one task runs there, one waits
    sch_selftest_peer_up (core, "gw-a", 1, 1, "encryption", 11, 0);
    sch_selftest_submit (core, "gw-a", "t1", "encryption", 500, 0);
    sch_selftest_submit (core, "gw-a", "t2", "encryption", 500, 0);
    //  a gamer on gw-b whose task runs on gw-c's peer
    sch_selftest_peer_up (core, "gw-c", 1, 1, "compression", 13, 0);
    sch_selftest_submit (core, "gw-b", "t3", "compression", 501, 0);
    P2C_CHECK (zhashx_size (core->gateways) == 3);
    //  gw-a dies: its peer with it; nobody is left to answer t1 and t2
    sch_gateways_down (core, "gw-a", 10);
    P2C_CHECK (zhashx_lookup (core->peers, "gw-a/1") == NULL);
    P2C_CHECK (sch_selftest_task (core, "t1") == NULL && sch_selftest_task (core, "t2") == NULL);
    P2C_CHECK (core->stats.dropped == 2 && zhashx_lookup (core->gateways, "gw-a") == NULL);
    //  gw-b dies while its gamer's task runs elsewhere: it finishes and settles
    sch_gateways_down (core, "gw-b", 20);
    sch_task_t *t3 = sch_selftest_task (core, "t3");
    P2C_CHECK (t3 && t3->state == SCH_RUNNING && t3->gw->down);
    sch_selftest_result (core, "t3", "{}", 10, 30);
    P2C_CHECK (t3->state == SCH_SETTLING && cap.last_case == P2C2R__INTERNAL__MSG_SETTLE_REQUEST);
    //  an unknown gateway is nothing
    sch_gateways_down (core, "gw-none", 40);
    sch_core_destroy (&core);
}
