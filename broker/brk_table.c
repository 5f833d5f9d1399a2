/*  Broker routing table (see brk_table.h). */
#include "brk_table.h"
#include "p2c_mem.h"
#include "p2c_test.h"

typedef struct {
    char *id;                   //  node id (its ZeroMQ routing id)
    char *service;              //  the service it serves
    int64_t seen_ms;            //  last hello
    uint64_t order;             //  join order; lower joined earlier
} s_node_t;

typedef struct {
    zlistx_t *nodes;            //  s_node_t * (not owned); join order for the
                                //  scheduler, rotated for round robin otherwise
} s_service_t;

struct _brk_table_t {
    zhashx_t *nodes;            //  id -> s_node_t (owned)
    zhashx_t *services;         //  service -> s_service_t (owned)
    uint64_t joins;             //  join counter for order
};

static void
s_node_destroy (s_node_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->id);
        free ((*self_p)->service);
        free (*self_p);
        *self_p = NULL;
    }
}

static void
s_service_destroy (s_service_t **self_p)
{
    if (*self_p) {
        zlistx_destroy (&(*self_p)->nodes);
        free (*self_p);
        *self_p = NULL;
    }
}

brk_table_t *
brk_table_new (void)
{
    brk_table_t *self = (brk_table_t *) zmalloc (sizeof (brk_table_t));
    self->nodes = zhashx_new ();
    zhashx_set_destructor (self->nodes, (zhashx_destructor_fn *) s_node_destroy);
    self->services = zhashx_new ();
    zhashx_set_destructor (self->services, (zhashx_destructor_fn *) s_service_destroy);
    return self;
}

void
brk_table_destroy (brk_table_t **self_p)
{
    brk_table_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->services);
    zhashx_destroy (&self->nodes);
    free (self);
    *self_p = NULL;
}

static void
s_remove (brk_table_t *self, s_node_t *node)
{
    s_service_t *svc = (s_service_t *) zhashx_lookup (self->services, node->service);
    if (svc) {
        void *handle = zlistx_find (svc->nodes, node);
        if (handle)
            zlistx_delete (svc->nodes, handle);
        if (zlistx_size (svc->nodes) == 0)
            zhashx_delete (self->services, node->service);
    }
    zhashx_delete (self->nodes, node->id);
}

bool
brk_table_hello (brk_table_t *self, const char *node_id, const char *service, int64_t now_ms)
{
    s_node_t *node = (s_node_t *) zhashx_lookup (self->nodes, node_id);
    if (node && strcmp (node->service, service) != 0) {
        s_remove (self, node);
        node = NULL;
    }
    if (node) {
        node->seen_ms = now_ms;
        return false;
    }
    node = (s_node_t *) zmalloc (sizeof (s_node_t));
    node->id = p2c_strdup (node_id);
    node->service = p2c_strdup (service);
    node->seen_ms = now_ms;
    node->order = ++self->joins;
    zhashx_insert (self->nodes, node_id, node);
    s_service_t *svc = (s_service_t *) zhashx_lookup (self->services, service);
    if (!svc) {
        svc = (s_service_t *) zmalloc (sizeof (s_service_t));
        svc->nodes = zlistx_new ();
        zhashx_insert (self->services, service, svc);
    }
    zlistx_add_end (svc->nodes, node);
    return true;
}

const char *
brk_table_service (brk_table_t *self, const char *node_id)
{
    s_node_t *node = (s_node_t *) zhashx_lookup (self->nodes, node_id);
    return node ? node->service : NULL;
}

bool
brk_table_remove (brk_table_t *self, const char *node_id)
{
    s_node_t *node = (s_node_t *) zhashx_lookup (self->nodes, node_id);
    if (node)
        s_remove (self, node);
    return node != NULL;
}

const char *
brk_table_route (brk_table_t *self, const char *dest)
{
    s_service_t *svc = (s_service_t *) zhashx_lookup (self->services, dest);
    if (svc) {
        s_node_t *node;
        if (!strcmp (dest, "scheduler"))
            //  One active scheduler per pool: the oldest live one
            node = (s_node_t *) zlistx_first (svc->nodes);
        else {
            //  Round robin: take the first, then move it to the back
            node = (s_node_t *) zlistx_first (svc->nodes);
            zlistx_move_end (svc->nodes, zlistx_cursor (svc->nodes));
        }
        return node ? node->id : NULL;
    }
    s_node_t *node = (s_node_t *) zhashx_lookup (self->nodes, dest);
    return node ? node->id : NULL;
}

void
brk_table_expire (brk_table_t *self, int64_t now_ms, int64_t timeout_ms,
                  brk_table_lost_fn *lost, void *arg)
{
    zlistx_t *dead = zlistx_new ();
    for (s_node_t *node = (s_node_t *) zhashx_first (self->nodes); node;
         node = (s_node_t *) zhashx_next (self->nodes))
        if (now_ms - node->seen_ms > timeout_ms)
            zlistx_add_end (dead, node);
    for (s_node_t *node = (s_node_t *) zlistx_first (dead); node;
         node = (s_node_t *) zlistx_next (dead)) {
        if (lost)
            lost (arg, node->id, node->service);
        s_remove (self, node);
    }
    zlistx_destroy (&dead);
}

void
brk_table_each (brk_table_t *self, brk_table_lost_fn *each, void *arg)
{
    for (s_node_t *node = (s_node_t *) zhashx_first (self->nodes); node;
         node = (s_node_t *) zhashx_next (self->nodes))
        each (arg, node->id, node->service);
}

size_t
brk_table_size (brk_table_t *self)
{
    return zhashx_size (self->nodes);
}

static void
s_count_lost (void *arg, const char *node_id, const char *service)
{
    (void) node_id;
    (void) service;
    (*(int *) arg)++;
}

void
brk_table_test (bool verbose)
{
    (void) verbose;
    brk_table_t *table = brk_table_new ();
    P2C_CHECK (brk_table_route (table, "ledger") == NULL);
    P2C_CHECK (brk_table_hello (table, "led-1", "ledger", 0));
    P2C_CHECK (!brk_table_hello (table, "led-1", "ledger", 10));     //  a refresh
    P2C_CHECK (brk_table_hello (table, "led-2", "ledger", 20));
    P2C_CHECK (brk_table_hello (table, "sch-1", "scheduler", 30));
    P2C_CHECK (brk_table_hello (table, "sch-2", "scheduler", 40));
    P2C_CHECK (brk_table_size (table) == 4);

    //  Ledgers take turns
    const char *a = brk_table_route (table, "ledger");
    const char *b = brk_table_route (table, "ledger");
    const char *c = brk_table_route (table, "ledger");
    P2C_CHECK (a && b && c && strcmp (a, b) != 0 && !strcmp (a, c));
    //  The oldest scheduler is the active one, always
    P2C_CHECK (!strcmp (brk_table_route (table, "scheduler"), "sch-1"));
    P2C_CHECK (!strcmp (brk_table_route (table, "scheduler"), "sch-1"));
    //  A node id routes to itself; unknown names route nowhere
    P2C_CHECK (!strcmp (brk_table_route (table, "led-2"), "led-2"));
    P2C_CHECK (brk_table_route (table, "nobody") == NULL);
    P2C_CHECK (!strcmp (brk_table_service (table, "sch-2"), "scheduler"));
    P2C_CHECK (brk_table_service (table, "nobody") == NULL);

    //  sch-1 and led-1 fall silent: they expire, the others stay
    brk_table_hello (table, "led-2", "ledger", 5000);
    brk_table_hello (table, "sch-2", "scheduler", 5000);
    int lost = 0;
    brk_table_expire (table, 5000, 3000, s_count_lost, &lost);
    P2C_CHECK (lost == 2);
    P2C_CHECK (brk_table_size (table) == 2);
    //  A revoked node goes at once, and its service with it
    P2C_CHECK (brk_table_remove (table, "sch-2"));
    P2C_CHECK (!brk_table_remove (table, "sch-2"));
    P2C_CHECK (brk_table_route (table, "scheduler") == NULL);
    P2C_CHECK (brk_table_hello (table, "sch-2", "scheduler", 5000));
    P2C_CHECK (!strcmp (brk_table_route (table, "scheduler"), "sch-2"));
    P2C_CHECK (!strcmp (brk_table_route (table, "ledger"), "led-2"));
    P2C_CHECK (!strcmp (brk_table_route (table, "ledger"), "led-2"));
    P2C_CHECK (brk_table_route (table, "sch-1") == NULL);

    //  Everyone silent: services vanish
    brk_table_expire (table, 100000, 3000, NULL, NULL);
    P2C_CHECK (brk_table_size (table) == 0);
    P2C_CHECK (brk_table_route (table, "ledger") == NULL);
    brk_table_destroy (&table);
    P2C_CHECK (table == NULL);
}
