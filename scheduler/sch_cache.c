/*  The scheduler's result cache (see sch_cache.h). A hash from key to
    entry, and a list in insertion order for expiry and eviction: entries
    are never refreshed in place, so the oldest is always at the front. */
#include "sch_cache.h"
#include "p2c_mem.h"
#include "p2c_tasks.h"
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

//  The parser's nesting limit for the fast path; deeper text takes jansson's
#define SCH_CANON_DEPTH 32

static const char *s_canon_value (const char *p, int depth);

//  A string of printable ASCII without escapes (what jansson writes back
//  unchanged); returns the character after it, NULL otherwise.
static const char *
s_canon_string (const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p != '"') {
        unsigned char c = (unsigned char) *p;
        if (c < 0x20 || c > 0x7e || c == '\\')
            return NULL;
        p++;
    }
    return p + 1;
}

//  An integer as jansson writes it: no sign on zero, no leading zeros, and
//  short enough to fit in json_int_t.
static const char *
s_canon_integer (const char *p)
{
    const char *start = p;
    if (*p == '-')
        p++;
    if (*p == '0')
        return p == start && !(p [1] >= '0' && p [1] <= '9') ? p + 1 : NULL;
    const char *digits = p;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == digits || p - digits > 18)
        return NULL;
    return p;
}

static const char *
s_canon_value (const char *p, int depth)
{
    if (depth > SCH_CANON_DEPTH)
        return NULL;
    if (*p == '"')
        return s_canon_string (p);
    if (*p == '{') {
        p++;
        if (*p == '}')
            return p + 1;
        const char *prev = NULL;
        size_t prev_len = 0;
        while (true) {
            const char *key = p + 1;
            const char *end = s_canon_string (p);
            if (!end || *end != ':')
                return NULL;
            //  keys strictly increasing as jansson sorts them (bytes, then
            //  length): no duplicates and nothing to reorder
            size_t len = (size_t) (end - 1 - key);
            if (prev) {
                int cmp = memcmp (prev, key, prev_len < len ? prev_len : len);
                if (cmp > 0 || (cmp == 0 && prev_len >= len))
                    return NULL;
            }
            prev = key;
            prev_len = len;
            p = s_canon_value (end + 1, depth + 1);
            if (!p)
                return NULL;
            if (*p == '}')
                return p + 1;
            if (*p++ != ',')
                return NULL;
        }
    }
    if (*p == '[') {
        p++;
        if (*p == ']')
            return p + 1;
        while (true) {
            p = s_canon_value (p, depth + 1);
            if (!p)
                return NULL;
            if (*p == ']')
                return p + 1;
            if (*p++ != ',')
                return NULL;
        }
    }
    if (!strncmp (p, "true", 4))
        return p + 4;
    if (!strncmp (p, "false", 5))
        return p + 5;
    if (!strncmp (p, "null", 4))
        return p + 4;
    return s_canon_integer (p);
}

//  True when the text is a JSON object exactly as jansson re-encodes it
//  (sorted keys, compact, no escapes, no reals), so that it is its own
//  canonical form. Gamers' clients mostly send that; parsing and dumping
//  it with jansson was the most of the scheduler's own work per task.
//  Anything else, however valid, goes through jansson.
static bool
s_json_canonical (const char *text)
{
    if (*text != '{')
        return false;
    const char *end = s_canon_value (text, 0);
    return end && *end == 0;
}

//  SHA-256, fetched once: an implicit fetch in every EVP_DigestInit_ex
//  costs as much as the hash of a small input
static const EVP_MD *
s_sha256 (void)
{
    static EVP_MD *md = NULL;
    if (!md)
        md = EVP_MD_fetch (NULL, "SHA256", NULL);
    return md ? md : EVP_sha256 ();
}

static char *s_key (const char *type, const char *version, const char *params_json,
                    const uint8_t *payload, size_t payload_size);

char *
sch_cache_key (const char *type, const char *params_json, const uint8_t *payload,
               size_t payload_size)
{
    const p2c_task_type_t *t = type ? p2c_task_type (type) : NULL;
    char current [64];
    return t ? s_key (type, p2c_task_version_current (t, current, sizeof current), params_json,
                      payload, payload_size)
             : NULL;
}

bool
sch_cache_version_ok (const char *type, const char *version)
{
    const p2c_task_type_t *t = type ? p2c_task_type (type) : NULL;
    char current [64];
    return t && version && !strcmp (p2c_task_version_current (t, current, sizeof current), version);
}

//  The key of a result of the given kernel version
static char *
s_key (const char *type, const char *version, const char *params_json, const uint8_t *payload,
       size_t payload_size)
{
    if (!params_json)
        return NULL;
    char *canonical = NULL;
    if (!s_json_canonical (params_json)) {
        json_error_t err;
        json_t *params = json_loads (params_json, JSON_REJECT_DUPLICATES, &err);
        if (!params || !json_is_object (params)) {
            json_decref (params);
            return NULL;
        }
        canonical = json_dumps (params, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref (params);
        if (!canonical)
            return NULL;
    }
    const char *text = canonical ? canonical : params_json;
    //  lengths in front keep (type, version, params, payload) unambiguous
    uint64_t lens [4] = { strlen (type), strlen (version), strlen (text), payload_size };
    unsigned char md [EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    bool ok = ctx && EVP_DigestInit_ex (ctx, s_sha256 (), NULL)
           && EVP_DigestUpdate (ctx, lens, sizeof lens)
           && EVP_DigestUpdate (ctx, type, lens [0])
           && EVP_DigestUpdate (ctx, version, lens [1])
           && EVP_DigestUpdate (ctx, text, lens [2])
           && (!payload_size || EVP_DigestUpdate (ctx, payload, payload_size))
           && EVP_DigestFinal_ex (ctx, md, &md_len);
    EVP_MD_CTX_free (ctx);
    free (canonical);
    if (!ok)
        return NULL;
    static const char digits [] = "0123456789abcdef";
    char *hex = (char *) p2c_malloc (2 * md_len + 1);
    for (unsigned i = 0; i < md_len; i++) {
        hex [2 * i] = digits [md [i] >> 4];
        hex [2 * i + 1] = digits [md [i] & 15];
    }
    hex [2 * md_len] = 0;
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

//  The live entry of the key, whoever it serves; NULL when none.
static s_entry_t *
s_live (sch_cache_t *self, const char *key, int64_t now_us)
{
    s_entry_t *e = key ? (s_entry_t *) zhashx_lookup (self->by_key, key) : NULL;
    if (e && now_us - e->pub.born_us >= self->ttl_us) {
        s_remove (self, e);
        e = NULL;
    }
    return e;
}

const sch_cache_entry_t *
sch_cache_get (sch_cache_t *self, const char *key, int64_t now_us)
{
    return sch_cache_get_for (self, key, 0, now_us);
}

const sch_cache_entry_t *
sch_cache_get_for (sch_cache_t *self, const char *key, int64_t account, int64_t now_us)
{
    s_entry_t *e = s_live (self, key, now_us);
    if (e && e->pub.owner && e->pub.owner != account)
        e = NULL;           //  not validated: serves only the gamer who paid for it
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
    sch_cache_put_for (self, key, 0, result_json, blob, blob_size, compute_us, now_us);
}

void
sch_cache_put_for (sch_cache_t *self, const char *key, int64_t owner, const char *result_json,
                   const uint8_t *blob, size_t blob_size, uint64_t compute_us, int64_t now_us)
{
    s_entry_t *old = s_live (self, key, now_us);
    if (old && owner && !old->pub.owner)
        return;             //  a validated result is worth more than one that is not
    sch_cache_drop (self, key);
    size_t bytes = strlen (result_json) + blob_size + strlen (key) + sizeof (s_entry_t);
    if (bytes > self->max_bytes || !self->max_entries)
        return;
    s_entry_t *e = (s_entry_t *) zmalloc (sizeof (s_entry_t));
    e->key = p2c_strdup (key);
    e->pub.result_json = p2c_strdup (result_json);
    if (blob_size) {
        e->pub.blob = (uint8_t *) p2c_malloc (blob_size);
        memcpy (e->pub.blob, blob, blob_size);
        e->pub.blob_size = blob_size;
    }
    e->pub.compute_us = compute_us;
    e->pub.born_us = now_us;
    e->pub.owner = owner;
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

static unsigned
s_rand (unsigned *seed)
{
    *seed = *seed * 1103515245 + 12345;
    return *seed >> 16;
}

static void
s_put (char *buf, size_t *len, size_t cap, const char *text)
{
    size_t n = strlen (text);
    if (*len + n < cap) {
        memcpy (buf + *len, text, n);
        *len += n;
    }
}

static void s_gen_object (char *buf, size_t *len, size_t cap, int depth, unsigned *seed);

static void
s_gen_value (char *buf, size_t *len, size_t cap, int depth, unsigned *seed)
{
    const char *atoms [] = { "0", "-0", "7", "-12", "01", "1.5", "1e3", "true", "false", "null",
                             "\"\"", "\"x y\"", "\"\\u00e9\"", "\"\xc3\xa9\"", "\"a\\\"b\"",
                             "123456789012345678", "1234567890123456789", " 5" };
    unsigned r = s_rand (seed) % 24;
    if (r == 22 && depth < 3)
        s_gen_object (buf, len, cap, depth + 1, seed);
    else
    if (r == 23 && depth < 3) {
        s_put (buf, len, cap, "[");
        unsigned n = s_rand (seed) % 3;
        for (unsigned i = 0; i < n; i++) {
            if (i)
                s_put (buf, len, cap, ",");
            s_gen_value (buf, len, cap, depth + 1, seed);
        }
        s_put (buf, len, cap, "]");
    }
    else
        s_put (buf, len, cap, atoms [r % (sizeof atoms / sizeof atoms [0])]);
}

static void
s_gen_object (char *buf, size_t *len, size_t cap, int depth, unsigned *seed)
{
    const char *keys [] = { "\"a\"", "\"ab\"", "\"b\"", "\"B\"", "\"\"", "\"a b\"" };
    s_put (buf, len, cap, "{");
    unsigned n = s_rand (seed) % 4;
    for (unsigned i = 0; i < n; i++) {
        if (i)
            s_put (buf, len, cap, ",");
        s_put (buf, len, cap, keys [s_rand (seed) % (sizeof keys / sizeof keys [0])]);
        s_put (buf, len, cap, ":");
        s_gen_value (buf, len, cap, depth, seed);
    }
    s_put (buf, len, cap, "}");
}

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
    //  the kernel version is part of the key: a result of encryption 1.0.0
    //  (hex text chained) is never the answer for the current version
    char *old = s_key ("encryption", "1.0.0", "{\"data\":\"a\",\"iterations\":5}", NULL, 0);
    char *cur = s_key ("encryption", "2.0.0",
                       "{\"data\":\"a\",\"iterations\":5}", NULL, 0);
    P2C_CHECK (old && cur && strcmp (old, cur) && !strcmp (cur, k1));
    free (old);
    free (cur);
    P2C_CHECK (sch_cache_version_ok ("encryption", "2.0.0"));
    P2C_CHECK (!sch_cache_version_ok ("encryption", "1.0.0"));
    P2C_CHECK (!sch_cache_version_ok ("encryption", NULL));
    P2C_CHECK (!sch_cache_version_ok ("mining", "1.0.0"));
    P2C_CHECK (sch_cache_key ("mining", "{}", NULL, 0) == NULL);
    P2C_CHECK (sch_cache_key ("encryption", "[1,2]", NULL, 0) == NULL);
    P2C_CHECK (sch_cache_key ("encryption", "{\"a\":", NULL, 0) == NULL);
    P2C_CHECK (sch_cache_key ("encryption", "{\"a\":1,\"a\":1}", NULL, 0) == NULL);
    P2C_CHECK (sch_cache_key ("encryption", "{\"a\":1} x", NULL, 0) == NULL);
    //  the fast path (text already canonical) and jansson agree
    const char *same [][2] = {
        { "{\"data\":\"a\",\"iterations\":5}", "{\"iterations\":5,\"data\":\"a\"}" },
        { "{\"a\":[1,{\"x\":null,\"y\":true}],\"b\":-3}", "{ \"b\":-3, \"a\":[1,{\"y\":true,\"x\":null}]}" },
        { "{\"a\":0,\"ab\":{}}", "{\"ab\":{},\"a\":-0}" },
        { "{}", " {}" },
    };
    for (size_t i = 0; i < sizeof same / sizeof same [0]; i++) {
        P2C_CHECK (s_json_canonical (same [i][0]) && !s_json_canonical (same [i][1]));
        char *a = sch_cache_key ("encryption", same [i][0], NULL, 0);
        char *b = sch_cache_key ("encryption", same [i][1], NULL, 0);
        P2C_CHECK (a && b && !strcmp (a, b));
        free (a);
        free (b);
    }
    const char *not_canonical [] = {
        "{\"b\":1,\"a\":2}", "{\"a\":1,\"a\":2}", "{\"a\":-0}", "{\"a\":01}", "{\"a\":1.5}",
        "{\"a\":\"\\n\"}", "{\"a\":\"\xc3\xa9\"}", "{\"a\":1 }", "{\"a\":1}\n", "[1]", "{\"a\":tru}",
        "{\"a\":1,}", "{\"ab\":1,\"a\":2}", "{\"a\":1234567890123456789}", "",
    };
    for (size_t i = 0; i < sizeof not_canonical / sizeof not_canonical [0]; i++)
        P2C_CHECK (!s_json_canonical (not_canonical [i]));
    //  random JSON objects (keys in random order, values from a mix of
    //  canonical and other spellings): whatever the fast path takes is
    //  exactly what jansson writes back for it
    unsigned seed = 12345;
    size_t fast = 0;
    for (int n = 0; n < 20000; n++) {
        char text [512];
        size_t len = 0;
        s_gen_object (text, &len, sizeof text, 0, &seed);
        text [len] = 0;
        if (!s_json_canonical (text))
            continue;
        fast++;
        json_t *j = json_loads (text, JSON_REJECT_DUPLICATES, NULL);
        char *dumped = j ? json_dumps (j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        P2C_CHECK (j && json_is_object (j) && dumped && !strcmp (dumped, text));
        free (dumped);
        json_decref (j);
    }
    P2C_CHECK (fast > 1000);

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
    //  private entries serve their owner only, and never replace a shared one
    cache = sch_cache_new (1000, 10, 1 << 20);
    sch_cache_put_for (cache, k1, 500, "{\"mine\":1}", NULL, 0, 1, 0);
    P2C_CHECK (sch_cache_get (cache, k1, 1) == NULL);
    P2C_CHECK (sch_cache_get_for (cache, k1, 501, 1) == NULL);
    e = sch_cache_get_for (cache, k1, 500, 1);
    P2C_CHECK (e && e->owner == 500 && !strcmp (e->result_json, "{\"mine\":1}"));
    sch_cache_put (cache, k1, "{\"checked\":1}", NULL, 0, 1, 2);
    P2C_CHECK (sch_cache_get_for (cache, k1, 501, 3) && sch_cache_get (cache, k1, 3));
    sch_cache_put_for (cache, k1, 501, "{\"other\":1}", NULL, 0, 1, 4);
    e = sch_cache_get_for (cache, k1, 501, 5);
    P2C_CHECK (e && e->owner == 0 && !strcmp (e->result_json, "{\"checked\":1}"));
    //  an expired shared entry makes room for a private one
    sch_cache_put_for (cache, k1, 501, "{\"other\":1}", NULL, 0, 1, 2000);
    P2C_CHECK (sch_cache_get (cache, k1, 2001) == NULL && sch_cache_get_for (cache, k1, 501, 2001));
    sch_cache_destroy (&cache);
    P2C_CHECK (cache == NULL);
    free (k1); free (k2); free (k3); free (k4); free (k5);
}
