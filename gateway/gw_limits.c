/*  Token buckets and per-address limits (see gw_limits.h). */
#include "gw_limits.h"
#include "p2c_test.h"

#include <arpa/inet.h>
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

//  The key an address is counted under. An IPv6 client commonly holds a
//  whole /64 (SLAAC, privacy addresses), so counting single addresses
//  would let it open a fresh one per connection: its /64 is the unit.
//  An IPv4-mapped address counts as the IPv4 address.
static void
s_key (const char *ip, char *key, size_t size)
{
    struct in6_addr a6;
    if (strchr (ip, ':') && inet_pton (AF_INET6, ip, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED (&a6)) {
            inet_ntop (AF_INET, &a6.s6_addr [12], key, (socklen_t) size);
            return;
        }
        memset (&a6.s6_addr [8], 0, 8);
        char text [INET6_ADDRSTRLEN];
        if (inet_ntop (AF_INET6, &a6, text, sizeof text)) {
            snprintf (key, size, "%s/64", text);
            return;
        }
    }
    snprintf (key, size, "%s", ip);
}

gw_admit_t
gw_iplimit_admit (gw_iplimit_t *self, const char *ip_text, int64_t now_ms)
{
    char ip [INET6_ADDRSTRLEN + 8];
    s_key (ip_text, ip, sizeof ip);
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

gw_admit_t
gw_iplimit_check (gw_iplimit_t *self, const char *ip_text, int64_t now_ms)
{
    char ip [INET6_ADDRSTRLEN + 8];
    s_key (ip_text, ip, sizeof ip);
    s_addr_t *a = (s_addr_t *) zhashx_lookup (self->addrs, ip);
    if (!a)
        return GW_ADMIT_OK;
    if (a->conns >= self->max_conns)
        return GW_ADMIT_CONNS;
    double tokens = a->connects.last_ms == 0 ? self->burst
                  : a->connects.tokens + (double) (now_ms - a->connects.last_ms) * self->rate / 1000.0;
    return tokens >= 1.0 ? GW_ADMIT_OK : GW_ADMIT_RATE;
}

void
gw_iplimit_release (gw_iplimit_t *self, const char *ip_text)
{
    char ip [INET6_ADDRSTRLEN + 8];
    s_key (ip_text, ip, sizeof ip);
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

    //  IPv6: counted per /64, whatever the interface part; another /64 is
    //  another client; an IPv4-mapped address is its IPv4 address
    P2C_CHECK (gw_iplimit_admit (lim, "2001:db8:1:2::1", 100000) == GW_ADMIT_OK);
    P2C_CHECK (gw_iplimit_admit (lim, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", 100000) == GW_ADMIT_OK);
    P2C_CHECK (gw_iplimit_admit (lim, "2001:0db8:0001:0002:ffff::9", 100000) == GW_ADMIT_CONNS);
    P2C_CHECK (gw_iplimit_admit (lim, "2001:db8:1:3::1", 100000) == GW_ADMIT_OK);
    gw_iplimit_release (lim, "2001:db8:1:2:ffff:ffff:ffff:ffff");
    P2C_CHECK (gw_iplimit_admit (lim, "2001:db8:1:2::77", 100000) == GW_ADMIT_OK);
    P2C_CHECK (gw_iplimit_admit (lim, "::ffff:10.0.0.7", 100000) == GW_ADMIT_OK);
    P2C_CHECK (gw_iplimit_admit (lim, "10.0.0.7", 100000) == GW_ADMIT_OK);
    P2C_CHECK (gw_iplimit_admit (lim, "::ffff:10.0.0.7", 100000) == GW_ADMIT_CONNS);
    P2C_CHECK (gw_iplimit_size (lim) == 3);
    //  The check before the handshake counts nothing
    P2C_CHECK (gw_iplimit_check (lim, "10.0.0.7", 100000) == GW_ADMIT_CONNS);
    P2C_CHECK (gw_iplimit_check (lim, "2001:db8:1:2::abc", 100000) == GW_ADMIT_CONNS);
    P2C_CHECK (gw_iplimit_check (lim, "2001:db8:1:3::abc", 100000) == GW_ADMIT_OK);
    P2C_CHECK (gw_iplimit_check (lim, "2001:db8:1:3::abc", 100000) == GW_ADMIT_OK);
    P2C_CHECK (gw_iplimit_check (lim, "10.9.9.9", 100000) == GW_ADMIT_OK);
    P2C_CHECK (gw_iplimit_size (lim) == 3);
    gw_iplimit_destroy (&lim);
    P2C_CHECK (lim == NULL);
}
