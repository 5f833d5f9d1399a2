/*  The API key cache (see gw_authcache.h). */
#include "gw_authcache.h"
#include "p2c_mem.h"
#include "p2c_sha256.h"
#include "p2c_test.h"

#include <openssl/evp.h>

struct _gw_authcache_t {
    zhashx_t *entries;          //  hash -> gw_authentry_t (owned)
    zhashx_t *by_corr;          //  "%llx" corr -> hash text (owned copy)
    int64_t ttl_ms;
};

static void
s_entry_free (void **item)
{
    gw_authentry_t *e = (gw_authentry_t *) *item;
    if (!e)
        return;
    free (e->owner);
    free (e->role);
    free (e->name);
    free (e);
    *item = NULL;
}

gw_authcache_t *
gw_authcache_new (int64_t ttl_ms)
{
    gw_authcache_t *self = (gw_authcache_t *) zmalloc (sizeof (gw_authcache_t));
    self->entries = zhashx_new ();
    zhashx_set_destructor (self->entries, s_entry_free);
    self->by_corr = zhashx_new ();
    zhashx_set_destructor (self->by_corr, (zhashx_destructor_fn *) zstr_free);
    zhashx_set_duplicator (self->by_corr, (zhashx_duplicator_fn *) strdup);
    self->ttl_ms = ttl_ms;
    return self;
}

void
gw_authcache_destroy (gw_authcache_t **self_p)
{
    gw_authcache_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->entries);
    zhashx_destroy (&self->by_corr);
    free (self);
    *self_p = NULL;
}

void
gw_authcache_key_hash (const char *key, char *out)
{
    p2c_sha256_hex (key, strlen (key), out);
}

void
gw_authcache_hash (const char *role, const char *key, char *out)
{
    unsigned char md [EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    if (!ctx || !EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL)
        || !EVP_DigestUpdate (ctx, role, strlen (role)) || !EVP_DigestUpdate (ctx, ":", 1)
        || !EVP_DigestUpdate (ctx, key, strlen (key)) || !EVP_DigestFinal_ex (ctx, md, &n))
        n = 0;
    EVP_MD_CTX_free (ctx);
    for (unsigned int i = 0; i < n && i < GW_KEY_HASH_LEN / 2; i++)
        snprintf (out + 2 * i, 3, "%02x", md [i]);
    out [n ? GW_KEY_HASH_LEN : 0] = 0;
}

gw_authentry_t *
gw_authcache_lookup (gw_authcache_t *self, const char *hash)
{
    return (gw_authentry_t *) zhashx_lookup (self->entries, hash);
}

gw_authentry_t *
gw_authcache_fresh (gw_authcache_t *self, const char *hash, int64_t now_ms)
{
    gw_authentry_t *e = gw_authcache_lookup (self, hash);
    return e && now_ms - e->verified_ms < self->ttl_ms ? e : NULL;
}

gw_authentry_t *
gw_authcache_put (gw_authcache_t *self, const char *hash, const char *role, const char *name,
                  const char *key_hash, int64_t account_id, const char *owner, int64_t now_ms)
{
    gw_authentry_t *e = gw_authcache_lookup (self, hash);
    if (!e) {
        e = (gw_authentry_t *) zmalloc (sizeof (gw_authentry_t));
        snprintf (e->hash, sizeof e->hash, "%s", hash);
        snprintf (e->key_hash, sizeof e->key_hash, "%s", key_hash);
        e->role = p2c_strdup (role);
        e->name = p2c_strdup (name);
        zhashx_insert (self->entries, hash, e);
    }
    free (e->owner);
    e->owner = p2c_strdup (owner ? owner : "");
    e->account_id = account_id;
    e->verified_ms = now_ms;
    return e;
}

static void
s_forget_corr (gw_authcache_t *self, gw_authentry_t *e)
{
    if (e->corr) {
        char k [24];
        snprintf (k, sizeof k, "%llx", (unsigned long long) e->corr);
        zhashx_delete (self->by_corr, k);
        e->corr = 0;
    }
}

void
gw_authcache_remove (gw_authcache_t *self, const char *hash)
{
    gw_authentry_t *e = gw_authcache_lookup (self, hash);
    if (e) {
        s_forget_corr (self, e);
        zhashx_delete (self->entries, hash);
    }
}

zlistx_t *
gw_authcache_due (gw_authcache_t *self, int64_t now_ms, int64_t every_ms)
{
    zlistx_t *list = zlistx_new ();
    for (gw_authentry_t *e = (gw_authentry_t *) zhashx_first (self->entries); e;
         e = (gw_authentry_t *) zhashx_next (self->entries))
        if (e->users > 0 && now_ms - e->verified_ms >= every_ms
            && (!e->corr || now_ms - e->asked_ms >= every_ms))
            zlistx_add_end (list, e);
    return list;
}

void
gw_authcache_asked (gw_authcache_t *self, gw_authentry_t *e, uint64_t corr, int64_t now_ms)
{
    s_forget_corr (self, e);
    e->corr = corr;
    e->asked_ms = now_ms;
    char k [24];
    snprintf (k, sizeof k, "%llx", (unsigned long long) corr);
    zhashx_update (self->by_corr, k, e->hash);
}

gw_authentry_t *
gw_authcache_by_corr (gw_authcache_t *self, uint64_t corr)
{
    char k [24];
    snprintf (k, sizeof k, "%llx", (unsigned long long) corr);
    const char *hash = (const char *) zhashx_lookup (self->by_corr, k);
    gw_authentry_t *e = hash ? gw_authcache_lookup (self, hash) : NULL;
    if (e && e->corr == corr) {
        zhashx_delete (self->by_corr, k);
        e->corr = 0;
        return e;
    }
    return NULL;
}

void
gw_authcache_sweep (gw_authcache_t *self, int64_t now_ms)
{
    zlistx_t *gone = zlistx_new ();
    for (gw_authentry_t *e = (gw_authentry_t *) zhashx_first (self->entries); e;
         e = (gw_authentry_t *) zhashx_next (self->entries))
        if (e->users == 0 && now_ms - e->verified_ms >= self->ttl_ms)
            zlistx_add_end (gone, e->hash);
    for (const char *h = (const char *) zlistx_first (gone); h; h = (const char *) zlistx_next (gone))
        gw_authcache_remove (self, h);
    zlistx_destroy (&gone);
}

size_t
gw_authcache_size (gw_authcache_t *self)
{
    return zhashx_size (self->entries);
}

void
gw_authcache_test (bool verbose)
{
    (void) verbose;
    char h1 [GW_KEY_HASH_LEN + 1], h2 [GW_KEY_HASH_LEN + 1];
    gw_authcache_hash ("gamer", "k1", h1);
    gw_authcache_hash ("peer", "k1", h2);
    P2C_CHECK (strlen (h1) == GW_KEY_HASH_LEN && strcmp (h1, h2));
    //  sha256("a:b"), as sha256sum computes it
    gw_authcache_hash ("a", "b", h2);
    P2C_CHECK (!strcmp (h2, "6783a31eabf68ccc0660f935c0826282bdd2241f3a80a9f2d10d59aea9ebb5d8"));
    //  The key's own hash is the ledger's (sha256("abc"))
    char kh [GW_KEY_HASH_LEN + 1];
    gw_authcache_key_hash ("abc", kh);
    P2C_CHECK (!strcmp (kh, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));

    gw_authcache_t *c = gw_authcache_new (1000);
    P2C_CHECK (gw_authcache_fresh (c, h1, 0) == NULL);
    gw_authentry_t *e = gw_authcache_put (c, h1, "gamer", "g1", kh, 42, "o1", 10000);
    P2C_CHECK (e && e->account_id == 42 && !strcmp (e->key_hash, kh) && !strcmp (e->owner, "o1"));
    P2C_CHECK (gw_authcache_fresh (c, h1, 10999) == e);
    P2C_CHECK (gw_authcache_fresh (c, h1, 11000) == NULL);
    P2C_CHECK (gw_authcache_lookup (c, h1) == e);

    //  Only entries in use are re-checked, once per interval
    zlistx_t *due = gw_authcache_due (c, 20000, 500);
    P2C_CHECK (zlistx_size (due) == 0);
    zlistx_destroy (&due);
    e->users = 1;
    due = gw_authcache_due (c, 20000, 500);
    P2C_CHECK (zlistx_size (due) == 1 && zlistx_first (due) == e);
    zlistx_destroy (&due);
    gw_authcache_asked (c, e, 0x8000000000000001ULL, 20000);
    due = gw_authcache_due (c, 20100, 500);
    P2C_CHECK (zlistx_size (due) == 0);
    zlistx_destroy (&due);
    P2C_CHECK (gw_authcache_by_corr (c, 0x8000000000000002ULL) == NULL);
    P2C_CHECK (gw_authcache_by_corr (c, 0x8000000000000001ULL) == e);
    P2C_CHECK (gw_authcache_by_corr (c, 0x8000000000000001ULL) == NULL);

    //  Unused and stale entries go; used ones stay
    gw_authcache_put (c, h2, "a", "x", kh, 7, NULL, 20000);
    gw_authcache_sweep (c, 30000);
    P2C_CHECK (gw_authcache_size (c) == 1 && gw_authcache_lookup (c, h1));
    gw_authcache_remove (c, h1);
    P2C_CHECK (gw_authcache_size (c) == 0);
    gw_authcache_destroy (&c);
    P2C_CHECK (c == NULL);
}
