/*  The scheduler's result cache (see sch_cache.h). A hash from key to
    entry, and a list in insertion order for expiry and eviction: entries
    are never refreshed in place, so the oldest is always at the front. */
#include "sch_cache.h"
#include "p2c_test.h"

#include <czmq.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <string.h>

typedef struct {
    sch_cache_entry_t pub;      //  what callers see
    char *key;
    void *order_handle;         //  in self->order
    size_t bytes;               //  what it costs against max_bytes
} s_entry_t;

struct _sch_cache_t {
    int64_t ttl_us;             //  time to live of an entry
    size_t max_entries;
    size_t max_bytes;
    zhashx_t *by_key;           //  key -> s_entry_t * (owned, freed by hand)
    zlistx_t *order;            //  s_entry_t *, oldest first (not owned)
    size_t bytes;               //  sum of the entries' bytes
    uint64_t hits, misses;
};

sch_cache_t *
sch_cache_new (int64_t ttl_us, size_t max_entries, size_t max_bytes)
{
    sch_cache_t *self = (sch_cache_t *) zmalloc (sizeof (sch_cache_t));
    self->ttl_us = ttl_us;
    self->max_entries = max_entries;
    self->max_bytes = max_bytes;
    self->by_key = zhashx_new ();
    self->order = zlistx_new ();
    return self;
}

static void
s_entry_free (s_entry_t **entry_p)
{
    s_entry_t *e = *entry_p;
    free (e->pub.result_json);
    free (e->pub.blob);
    free (e->key);
    free (e);
    *entry_p = NULL;
}

void
sch_cache_destroy (sch_cache_t **self_p)
{
    sch_cache_t *self = *self_p;
    if (!self)
        return;
    for (s_entry_t *e = (s_entry_t *) zlistx_first (self->order); e;
         e = (s_entry_t *) zlistx_next (self->order))
        s_entry_free (&e);
    zlistx_destroy (&self->order);
    zhashx_destroy (&self->by_key);
    free (self);
    *self_p = NULL;
}

char *
sch_cache_key (const char *type, const char *params_json, const uint8_t *payload,
               size_t payload_size)
{
    json_error_t err;
    json_t *params = json_loads (params_json ? params_json : "", JSON_REJECT_DUPLICATES, &err);
    if (!params || !json_is_object (params)) {
        json_decref (params);
        return NULL;
    }
    char *canonical = json_dumps (params, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref (params);
    if (!canonical)
        return NULL;
    //  lengths in front keep (type, params, payload) unambiguous
    uint64_t lens [3] = { strlen (type), strlen (canonical), payload_size };
    unsigned char md [EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    bool ok = ctx && EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL)
           && EVP_DigestUpdate (ctx, lens, sizeof lens)
           && EVP_DigestUpdate (ctx, type, lens [0])
           && EVP_DigestUpdate (ctx, canonical, lens [1])
           && (!payload_size || EVP_DigestUpdate (ctx, payload, payload_size))
           && EVP_DigestFinal_ex (ctx, md, &md_len);
    EVP_MD_CTX_free (ctx);
    free (canonical);
    if (!ok)
        return NULL;
    char *hex = (char *) malloc (2 * md_len + 1);
    assert (hex);
    for (unsigned i = 0; i < md_len; i++)
        snprintf (hex + 2 * i, 3, "%02x", md [i]);
    return hex;
}

static void
s_remove (sch_cache_t *self, s_entry_t *e)
{
    zlistx_delete (self->order, e->order_handle);
    zhashx_delete (self->by_key, e->key);
    self->bytes -= e->bytes;
    s_entry_free (&e);
}

const sch_cache_entry_t *
sch_cache_get (sch_cache_t *self, const char *key, int64_t now_us)
{
    s_entry_t *e = key ? (s_entry_t *) zhashx_lookup (self->by_key, key) : NULL;
    if (e && now_us - e->pub.born_us >= self->ttl_us) {
        s_remove (self, e);
        e = NULL;
    }
    if (e)
        self->hits++;
    else
        self->misses++;
    return e ? &e->pub : NULL;
}

void
sch_cache_put (sch_cache_t *self, const char *key, const char *result_json,
               const uint8_t *blob, size_t blob_size, uint64_t compute_us, int64_t now_us)
{
    sch_cache_drop (self, key);
    size_t bytes = strlen (result_json) + blob_size + strlen (key) + sizeof (s_entry_t);
    if (bytes > self->max_bytes || !self->max_entries)
        return;
    s_entry_t *e = (s_entry_t *) zmalloc (sizeof (s_entry_t));
    e->key = strdup (key);
    e->pub.result_json = strdup (result_json);
    if (blob_size) {
        e->pub.blob = (uint8_t *) malloc (blob_size);
        assert (e->pub.blob);
        memcpy (e->pub.blob, blob, blob_size);
        e->pub.blob_size = blob_size;
    }
    e->pub.compute_us = compute_us;
    e->pub.born_us = now_us;
    e->bytes = bytes;
    while (zlistx_size (self->order)
           && (zlistx_size (self->order) >= self->max_entries
               || self->bytes + bytes > self->max_bytes))
        s_remove (self, (s_entry_t *) zlistx_first (self->order));
    e->order_handle = zlistx_add_end (self->order, e);
    zhashx_insert (self->by_key, e->key, e);
    self->bytes += bytes;
}

void
sch_cache_drop (sch_cache_t *self, const char *key)
{
    s_entry_t *e = (s_entry_t *) zhashx_lookup (self->by_key, key);
    if (e)
        s_remove (self, e);
}

void
sch_cache_expire (sch_cache_t *self, int64_t now_us)
{
    s_entry_t *e;
    while ((e = (s_entry_t *) zlistx_first (self->order))
           && now_us - e->pub.born_us >= self->ttl_us)
        s_remove (self, e);
}

size_t sch_cache_entries (sch_cache_t *self) { return zlistx_size (self->order); }
size_t sch_cache_bytes (sch_cache_t *self) { return self->bytes; }
uint64_t sch_cache_hits (sch_cache_t *self) { return self->hits; }
uint64_t sch_cache_misses (sch_cache_t *self) { return self->misses; }

//  --------------------------------------------------------------------------
//  Self-test

void
sch_cache_test (bool verbose)
{
    (void) verbose;
    //  key order and whitespace do not matter; values, type and payload do
    char *k1 = sch_cache_key ("encryption", "{\"data\":\"a\",\"iterations\":5}", NULL, 0);
    char *k2 = sch_cache_key ("encryption", " { \"iterations\" : 5 ,\n \"data\":\"a\" }", NULL, 0);
    char *k3 = sch_cache_key ("encryption", "{\"data\":\"a\",\"iterations\":6}", NULL, 0);
    char *k4 = sch_cache_key ("compression", "{\"data\":\"a\",\"iterations\":5}", NULL, 0);
    uint8_t png [2] = { 1, 2 };
    char *k5 = sch_cache_key ("encryption", "{\"data\":\"a\",\"iterations\":5}", png, 2);
    P2C_CHECK (k1 && k2 && k3 && k4 && k5 && strlen (k1) == 64);
    P2C_CHECK (!strcmp (k1, k2));
    P2C_CHECK (strcmp (k1, k3) && strcmp (k1, k4) && strcmp (k1, k5));
    P2C_CHECK (sch_cache_key ("encryption", "[1,2]", NULL, 0) == NULL);
    P2C_CHECK (sch_cache_key ("encryption", "{\"a\":", NULL, 0) == NULL);

    sch_cache_t *cache = sch_cache_new (1000, 2, 1 << 20);
    P2C_CHECK (sch_cache_get (cache, k1, 0) == NULL);
    sch_cache_put (cache, k1, "{\"hash\":\"x\"}", png, 2, 77, 0);
    const sch_cache_entry_t *e = sch_cache_get (cache, k2, 999);
    P2C_CHECK (e && !strcmp (e->result_json, "{\"hash\":\"x\"}") && e->blob_size == 2
               && e->compute_us == 77);
    P2C_CHECK (sch_cache_get (cache, k1, 1000) == NULL);      //  expired
    P2C_CHECK (sch_cache_hits (cache) == 1 && sch_cache_misses (cache) == 2);
    P2C_CHECK (sch_cache_entries (cache) == 0 && sch_cache_bytes (cache) == 0);
    //  bounded in entries: the oldest goes
    sch_cache_put (cache, k1, "{}", NULL, 0, 1, 10);
    sch_cache_put (cache, k3, "{}", NULL, 0, 1, 11);
    sch_cache_put (cache, k4, "{}", NULL, 0, 1, 12);
    P2C_CHECK (sch_cache_entries (cache) == 2);
    P2C_CHECK (sch_cache_get (cache, k1, 20) == NULL && sch_cache_get (cache, k4, 20));
    sch_cache_drop (cache, k4);
    P2C_CHECK (sch_cache_get (cache, k4, 20) == NULL);
    sch_cache_expire (cache, 2000);
    P2C_CHECK (sch_cache_entries (cache) == 0);
    sch_cache_destroy (&cache);
    //  bounded in bytes
    cache = sch_cache_new (1000000, 100, 300);
    sch_cache_put (cache, k1, "{\"a\":\"0123456789012345678901234567890123456789\"}", NULL, 0, 1, 0);
    sch_cache_put (cache, k3, "{\"a\":\"0123456789012345678901234567890123456789\"}", NULL, 0, 1, 0);
    P2C_CHECK (sch_cache_bytes (cache) <= 300 && sch_cache_entries (cache) == 1);
    P2C_CHECK (sch_cache_get (cache, k3, 1) != NULL);
    sch_cache_destroy (&cache);
    P2C_CHECK (cache == NULL);
    free (k1); free (k2); free (k3); free (k4); free (k5);
}
