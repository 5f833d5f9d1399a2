/*  Pending tasks of this gateway's gamers (see gw_pending.h). Expiry and
    per-connection drops scan the table: they run from the 100 ms cron and
    on disconnects, and the table holds only this gateway's tasks in
    flight. */
#include "gw_pending.h"
#include "p2c_mem.h"
#include "p2c_test.h"
#include "p2c_time.h"

struct _gw_pending_t {
    //  task id -> gw_pending_entry_t. The table has no item destructor:
    //  take() hands entries out, so destroy() frees what is left itself
    zhashx_t *tasks;
    zhashx_t *failed;           //  task id -> gw_failed_t (owns them)
};

void
gw_pending_entry_destroy (gw_pending_entry_t **self_p)
{
    gw_pending_entry_t *self = *self_p;
    if (!self)
        return;
    free (self->task_id);
    free (self->client_ref);
    free (self);
    *self_p = NULL;
}

static void
s_entry_destructor (void **item)
{
    gw_pending_entry_destroy ((gw_pending_entry_t **) item);
}

static void
s_failed_destructor (void **item)
{
    gw_failed_t *f = (gw_failed_t *) *item;
    if (!f)
        return;
    free (f->task_id);
    free (f->code);
    free (f);
    *item = NULL;
}

gw_pending_t *
gw_pending_new (void)
{
    gw_pending_t *self = (gw_pending_t *) zmalloc (sizeof (gw_pending_t));
    self->tasks = zhashx_new ();
    self->failed = zhashx_new ();
    zhashx_set_destructor (self->failed, s_failed_destructor);
    return self;
}

void
gw_pending_destroy (gw_pending_t **self_p)
{
    gw_pending_t *self = *self_p;
    if (!self)
        return;
    for (gw_pending_entry_t *e = (gw_pending_entry_t *) zhashx_first (self->tasks); e;
         e = (gw_pending_entry_t *) zhashx_next (self->tasks))
        gw_pending_entry_destroy (&e);
    zhashx_destroy (&self->tasks);
    zhashx_destroy (&self->failed);
    free (self);
    *self_p = NULL;
}

int
gw_pending_add (gw_pending_t *self, const char *task_id, uint64_t conn, int64_t account,
                const char *client_ref, int64_t guard_ms)
{
    if (zhashx_lookup (self->tasks, task_id))
        return -1;
    gw_pending_entry_t *e = (gw_pending_entry_t *) zmalloc (sizeof (gw_pending_entry_t));
    e->task_id = p2c_strdup (task_id);
    e->conn = conn;
    e->account = account;
    e->client_ref = p2c_strdup (client_ref ? client_ref : "");
    e->guard_ms = guard_ms;
    e->start_ms = p2c_now_ms ();
    zhashx_insert (self->tasks, task_id, e);
    return 0;
}

gw_pending_entry_t *
gw_pending_take (gw_pending_t *self, const char *task_id)
{
    gw_pending_entry_t *e = (gw_pending_entry_t *) zhashx_lookup (self->tasks, task_id);
    if (e)
        zhashx_delete (self->tasks, task_id);
    return e;
}

//  Takes out the entries whose keys are in the list, into an owning list
static zlistx_t *
s_take_all (gw_pending_t *self, zlistx_t *keys)
{
    zlistx_t *out = zlistx_new ();
    zlistx_set_destructor (out, s_entry_destructor);
    for (const char *k = (const char *) zlistx_first (keys); k;
         k = (const char *) zlistx_next (keys)) {
        gw_pending_entry_t *e = gw_pending_take (self, k);
        if (e)
            zlistx_add_end (out, e);
    }
    return out;
}

zlistx_t *
gw_pending_expire (gw_pending_t *self, int64_t now_ms)
{
    //  Keys are gathered first: zhashx may not change while it is walked
    zlistx_t *keys = zlistx_new ();
    for (gw_pending_entry_t *e = (gw_pending_entry_t *) zhashx_first (self->tasks); e;
         e = (gw_pending_entry_t *) zhashx_next (self->tasks))
        if (e->guard_ms <= now_ms)
            zlistx_add_end (keys, e->task_id);
    zlistx_t *out = s_take_all (self, keys);
    zlistx_destroy (&keys);
    return out;
}

size_t
gw_pending_drop_conn (gw_pending_t *self, uint64_t conn)
{
    zlistx_t *keys = zlistx_new ();
    for (gw_pending_entry_t *e = (gw_pending_entry_t *) zhashx_first (self->tasks); e;
         e = (gw_pending_entry_t *) zhashx_next (self->tasks))
        if (e->conn == conn)
            zlistx_add_end (keys, e->task_id);
    zlistx_t *gone = s_take_all (self, keys);
    size_t n = zlistx_size (gone);
    zlistx_destroy (&gone);
    zlistx_destroy (&keys);
    return n;
}

size_t
gw_pending_size (gw_pending_t *self)
{
    return zhashx_size (self->tasks);
}

int
gw_pending_fail_add (gw_pending_t *self, const char *task_id, int64_t account,
                     const char *code, int64_t now_ms)
{
    if (zhashx_lookup (self->failed, task_id))
        return 0;
    if (zhashx_size (self->failed) >= GW_FAILED_MAX)
        return -1;
    gw_failed_t *f = (gw_failed_t *) zmalloc (sizeof (gw_failed_t));
    f->task_id = p2c_strdup (task_id);
    f->account = account;
    f->code = p2c_strdup (code ? code : "");
    f->next_ms = now_ms;
    zhashx_insert (self->failed, task_id, f);
    return 0;
}

zlistx_t *
gw_pending_fail_due (gw_pending_t *self, int64_t now_ms, int64_t resend_ms)
{
    zlistx_t *due = zlistx_new ();
    for (gw_failed_t *f = (gw_failed_t *) zhashx_first (self->failed); f;
         f = (gw_failed_t *) zhashx_next (self->failed))
        if (f->next_ms <= now_ms) {
            f->next_ms = now_ms + resend_ms;
            zlistx_add_end (due, f);
        }
    return due;
}

bool
gw_pending_fail_ack (gw_pending_t *self, const char *task_id)
{
    if (!task_id || !zhashx_lookup (self->failed, task_id))
        return false;
    zhashx_delete (self->failed, task_id);
    return true;
}

size_t
gw_pending_fail_size (gw_pending_t *self)
{
    return zhashx_size (self->failed);
}

void
gw_pending_test (bool verbose)
{
    (void) verbose;
    gw_pending_t *p = gw_pending_new ();
    P2C_CHECK (gw_pending_add (p, "t-1", 7, 5, "ref-a", 1000) == 0);
    P2C_CHECK (gw_pending_add (p, "t-2", 7, 5, NULL, 2000) == 0);
    P2C_CHECK (gw_pending_add (p, "t-3", 8, 5, "ref-c", 3000) == 0);
    P2C_CHECK (gw_pending_add (p, "t-1", 9, 5, "dup", 9999) == -1);
    P2C_CHECK (gw_pending_size (p) == 3);

    //  Nothing expires before its guard time; at it, exactly that one does
    zlistx_t *exp = gw_pending_expire (p, 999);
    P2C_CHECK (zlistx_size (exp) == 0);
    zlistx_destroy (&exp);
    exp = gw_pending_expire (p, 1000);
    P2C_CHECK (zlistx_size (exp) == 1);
    gw_pending_entry_t *e = (gw_pending_entry_t *) zlistx_first (exp);
    P2C_CHECK (e && !strcmp (e->task_id, "t-1") && e->conn == 7
               && !strcmp (e->client_ref, "ref-a"));
    zlistx_destroy (&exp);
    P2C_CHECK (gw_pending_size (p) == 2);

    //  An expired task cannot be answered again by a late Deliver
    P2C_CHECK (gw_pending_take (p, "t-1") == NULL);

    //  Take returns the entry once, the second time nothing
    e = gw_pending_take (p, "t-3");
    P2C_CHECK (e && e->conn == 8 && !strcmp (e->client_ref, "ref-c") && e->guard_ms == 3000);
    gw_pending_entry_destroy (&e);
    P2C_CHECK (e == NULL);
    P2C_CHECK (gw_pending_take (p, "t-3") == NULL);

    //  A missing client_ref is stored as empty, not NULL
    e = gw_pending_take (p, "t-2");
    P2C_CHECK (e && e->client_ref && !strcmp (e->client_ref, ""));
    gw_pending_entry_destroy (&e);
    P2C_CHECK (gw_pending_size (p) == 0);

    //  A gamer that leaves loses its own tasks and nobody else's; its
    //  dropped tasks then never expire into a reply
    for (int i = 0; i < 50; i++) {
        char id [16];
        snprintf (id, sizeof id, "c-%d", i);
        gw_pending_add (p, id, i % 2 ? 11 : 12, 5, "", 5000);
    }
    P2C_CHECK (gw_pending_drop_conn (p, 11) == 25);
    P2C_CHECK (gw_pending_drop_conn (p, 11) == 0);
    P2C_CHECK (gw_pending_size (p) == 25);
    exp = gw_pending_expire (p, 10000);
    P2C_CHECK (zlistx_size (exp) == 25);
    bool all_12 = true;
    for (e = (gw_pending_entry_t *) zlistx_first (exp); e;
         e = (gw_pending_entry_t *) zlistx_next (exp))
        if (e->conn != 12)
            all_12 = false;
    P2C_CHECK (all_12);
    zlistx_destroy (&exp);
    P2C_CHECK (gw_pending_size (p) == 0);

    //  Failures wait for the ledger's ack: due at once, then every resend
    //  interval, until acked; recorded once per task; bounded
    P2C_CHECK (gw_pending_fail_add (p, "f-1", 42, "timeout", 100) == 0);
    P2C_CHECK (gw_pending_fail_add (p, "f-1", 42, "timeout", 150) == 0);
    P2C_CHECK (gw_pending_fail_size (p) == 1);
    zlistx_t *due = gw_pending_fail_due (p, 100, 1000);
    gw_failed_t *f = (gw_failed_t *) zlistx_first (due);
    P2C_CHECK (zlistx_size (due) == 1 && f && !strcmp (f->task_id, "f-1") && f->account == 42
               && !strcmp (f->code, "timeout"));
    zlistx_destroy (&due);
    due = gw_pending_fail_due (p, 1099, 1000);
    P2C_CHECK (zlistx_size (due) == 0);
    zlistx_destroy (&due);
    due = gw_pending_fail_due (p, 1100, 1000);
    P2C_CHECK (zlistx_size (due) == 1);
    zlistx_destroy (&due);
    P2C_CHECK (gw_pending_fail_ack (p, "f-1") && !gw_pending_fail_ack (p, "f-1")
               && !gw_pending_fail_ack (p, NULL));
    P2C_CHECK (gw_pending_fail_size (p) == 0);
    int refused = 0;
    for (int i = 0; i < GW_FAILED_MAX + 3; i++) {
        char id [24];
        snprintf (id, sizeof id, "f-%d", i);
        refused += gw_pending_fail_add (p, id, 1, "timeout", 0) != 0;
    }
    P2C_CHECK (refused == 3 && gw_pending_fail_size (p) == GW_FAILED_MAX);

    //  Destroy frees what is still pending
    gw_pending_add (p, "left", 1, 5, "x", 1);
    gw_pending_destroy (&p);
    P2C_CHECK (p == NULL);
    gw_pending_destroy (&p);
}
