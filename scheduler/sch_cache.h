/*  The result cache: identical (task type, canonical parameters, payload)
    within a time to live answers at once, billed zero. Canonical parameters
    are the JSON re-encoded with sorted keys and no whitespace, so key order
    and spacing do not matter (the original demo's cache missed on key
    order). The core puts the kernel version into the type it keys with.
    An entry is shared (owner 0: it passed a validation) or private to the
    gamer account that paid for it (not validated yet): a private entry
    serves only its owner, and never replaces a shared one. Bounded in
    entries and bytes; the oldest entries go first. */
#ifndef SCH_CACHE_H_INCLUDED
#define SCH_CACHE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _sch_cache_t sch_cache_t;

typedef struct {
    char *result_json;          //  the kernel's JSON result
    uint8_t *blob;              //  binary output, NULL when none
    size_t blob_size;
    uint64_t compute_us;        //  what it took the peer that made it
    int64_t born_us;            //  when it was stored
    int64_t owner;              //  0: shared; else the only gamer account it serves
} sch_cache_entry_t;

sch_cache_t *sch_cache_new (int64_t ttl_us, size_t max_entries, size_t max_bytes);
void sch_cache_destroy (sch_cache_t **self_p);

//  The cache key of a task: hex SHA-256 over the canonical type, the
//  catalogue's kernel version of it (common/p2c_tasks.c), the canonical
//  parameters and the payload. NULL when params_json is not a JSON object
//  or the type is unknown (such a task is never cached). The caller frees
//  the key.
char *sch_cache_key (const char *type, const char *params_json, const uint8_t *payload,
                     size_t payload_size);

//  True when a result made by this kernel version may enter the cache: it
//  is the current version the catalogue knows for the type. A result of
//  another (older) version differs for the same input and must never be
//  served under the current version's key.
bool sch_cache_version_ok (const char *type, const char *version);

//  The live shared entry for the key, or NULL (expired entries count as
//  missing). Counts a hit or a miss.
const sch_cache_entry_t *sch_cache_get (sch_cache_t *self, const char *key, int64_t now_us);

//  The live entry for the key that serves the gamer account: a shared one,
//  or one private to that account. Counts a hit or a miss.
const sch_cache_entry_t *sch_cache_get_for (sch_cache_t *self, const char *key,
                                            int64_t account, int64_t now_us);

//  Stores (or replaces) a shared result; evicts the oldest entries past the
//  bounds. A result larger than the byte bound is not stored.
void sch_cache_put (sch_cache_t *self, const char *key, const char *result_json,
                    const uint8_t *blob, size_t blob_size, uint64_t compute_us,
                    int64_t now_us);

//  The same for owner 0 (shared), else private to the owner: then a live
//  shared entry of the key is kept as it is.
void sch_cache_put_for (sch_cache_t *self, const char *key, int64_t owner,
                        const char *result_json, const uint8_t *blob, size_t blob_size,
                        uint64_t compute_us, int64_t now_us);

//  Forgets a key (a result that lost a later validation).
void sch_cache_drop (sch_cache_t *self, const char *key);

//  Drops expired entries; call from the cron.
void sch_cache_expire (sch_cache_t *self, int64_t now_us);

size_t sch_cache_entries (sch_cache_t *self);
size_t sch_cache_bytes (sch_cache_t *self);
uint64_t sch_cache_hits (sch_cache_t *self);
uint64_t sch_cache_misses (sch_cache_t *self);

void sch_cache_test (bool verbose);

#endif
