/*  Token buckets and per-address limits (see gw_limits.h). */
#include "gw_limits.h"
#include "p2c_test.h"

#include <czmq.h>

bool
gw_bucket_take (gw_bucket_t *b, double rate, double burst, int64_t now_ms)
{
    if (b->last_ms == 0) {
        b->tokens = burst;
        b->last_ms = now_ms;
    }
    if (now_ms > b->last_ms) {
        b->tokens += (double) (now_ms - b->last_ms) * rate / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
        b->last_ms = now_ms;
    }
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

typedef struct {
    size_t conns;               //  live connections from the address
    gw_bucket_t connects;       //  connects per second
} s_addr_t;

struct _gw_iplimit_t {
    zhashx_t *addrs;            //  address text -> s_addr_t (owned)
    size_t max_conns;
    double rate, burst;
};

static void
s_addr_free (void **item)
{
    free (*item);
    *item = NULL;
}

gw_iplimit_t *
gw_iplimit_new (size_t max_conns, double rate, double burst)
{
    gw_iplimit_t *self = (gw_iplimit_t *) zmalloc (sizeof (gw_iplimit_t));
    self->addrs = zhashx_new ();
    zhashx_set_destructor (self->addrs, s_addr_free);
    self->max_conns = max_conns;
    self->rate = rate;
    self->burst = burst;
    return self;
}

void
gw_iplimit_destroy (gw_iplimit_t **self_p)
{
    gw_iplimit_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->addrs);
    free (self);
    *self_p = NULL;
}

gw_admit_t
gw_iplimit_admit (gw_iplimit_t *self, const char *ip, int64_t now_ms)
{
    s_addr_t *a = (s_addr_t *) zhashx_lookup (self->addrs, ip);
    if (!a) {
        a = (s_addr_t *) zmalloc (sizeof (s_addr_t));
        zhashx_insert (self->addrs, ip, a);
    }
    if (a->conns >= self->max_conns)
        return GW_ADMIT_CONNS;
    if (!gw_bucket_take (&a->connects, self->rate, self->burst, now_ms))
        return GW_ADMIT_RATE;
    a->conns++;
    return GW_ADMIT_OK;
}

void
gw_iplimit_release (gw_iplimit_t *self, const char *ip)
{
    s_addr_t *a = (s_addr_t *) zhashx_lookup (self->addrs, ip);
    if (a && a->conns)
        a->conns--;
}

void
gw_iplimit_sweep (gw_iplimit_t *self, int64_t now_ms)
{
    zlistx_t *keys = zhashx_keys (self->addrs);
    for (const char *ip = (const char *) zlistx_first (keys); ip;
         ip = (const char *) zlistx_next (keys)) {
        s_addr_t *a = (s_addr_t *) zhashx_lookup (self->addrs, ip);
        double refilled = a->connects.tokens
                        + (double) (now_ms - a->connects.last_ms) * self->rate / 1000.0;
        if (a->conns == 0 && refilled >= self->burst)
            zhashx_delete (self->addrs, ip);
    }
    zlistx_destroy (&keys);
}

size_t
gw_iplimit_size (gw_iplimit_t *self)
{
    return zhashx_size (self->addrs);
}

void
gw_limits_test (bool verbose)
{
    (void) verbose;
    gw_bucket_t b = { 0, 0 };
    //  A full burst, then empty, then refilled at the rate
    int taken = 0;
    for (int i = 0; i < 10; i++)
        taken += gw_bucket_take (&b, 2.0, 5.0, 1000);
    P2C_CHECK (taken == 5);
    P2C_CHECK (!gw_bucket_take (&b, 2.0, 5.0, 1400));
    P2C_CHECK (gw_bucket_take (&b, 2.0, 5.0, 1500));
    P2C_CHECK (!gw_bucket_take (&b, 2.0, 5.0, 1500));
    taken = 0;
    for (int i = 0; i < 10; i++)
        taken += gw_bucket_take (&b, 2.0, 5.0, 100000);
    P2C_CHECK (taken == 5);

    gw_iplimit_t *lim = gw_iplimit_new (2, 1.0, 3.0);
    P2C_CHECK (gw_iplimit_admit (lim, "10.0.0.1", 1000) == GW_ADMIT_OK);
    P2C_CHECK (gw_iplimit_admit (lim, "10.0.0.1", 1000) == GW_ADMIT_OK);
    P2C_CHECK (gw_iplimit_admit (lim, "10.0.0.1", 1000) == GW_ADMIT_CONNS);
    P2C_CHECK (gw_iplimit_admit (lim, "10.0.0.2", 1000) == GW_ADMIT_OK);
    gw_iplimit_release (lim, "10.0.0.1");
    P2C_CHECK (gw_iplimit_admit (lim, "10.0.0.1", 1000) == GW_ADMIT_OK);
    gw_iplimit_release (lim, "10.0.0.1");
    //  Three connects spent the burst of 10.0.0.1: the fourth is too fast
    P2C_CHECK (gw_iplimit_admit (lim, "10.0.0.1", 1000) == GW_ADMIT_RATE);
    P2C_CHECK (gw_iplimit_admit (lim, "10.0.0.1", 2000) == GW_ADMIT_OK);
    gw_iplimit_release (lim, "10.0.0.1");
    gw_iplimit_release (lim, "10.0.0.1");
    gw_iplimit_release (lim, "10.0.0.2");
    gw_iplimit_release (lim, "10.0.0.9");
    //  Kept while its bucket refills (10.0.0.2's is full again), forgotten after
    gw_iplimit_sweep (lim, 2000);
    P2C_CHECK (gw_iplimit_size (lim) == 1);
    gw_iplimit_sweep (lim, 60000);
    P2C_CHECK (gw_iplimit_size (lim) == 0);
    gw_iplimit_destroy (&lim);
    P2C_CHECK (lim == NULL);
}
