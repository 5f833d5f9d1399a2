/*  The gateway nodes the scheduler core hears from, and what dies with one:
    its peers, and the waiting tasks of its gamers (nobody is left to answer
    them). Running tasks of its gamers finish and settle: the peers did the
    work. */
#include "sch_internal.h"
#include "p2c_log.h"
#include "p2c_test.h"

sch_gw_t *
sch_gateways_require (sch_core_t *self, const char *id)
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
            if (t->state == SCH_QUEUED || t->state == SCH_PARKED)
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
