/*  The cache of API keys the ledger accepted, keyed by a SHA-256 of role
    and the key's hash. The key itself is never kept: the gateway hashes it
    (gw_authcache_key_hash, the SHA-256 the ledger stores) as soon as it is
    read, and only that hash is sent to the ledger, then and in the
    re-checks, which go by the account it named. A fresh
    entry lets a registration skip the ledger; entries that live sessions
    use are re-checked periodically, so a revoked key is noticed within
    the re-check interval and its sessions are closed. */
#ifndef GW_AUTHCACHE_H_INCLUDED
#define GW_AUTHCACHE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#define GW_KEY_HASH_LEN 64

typedef struct {
    char hash [GW_KEY_HASH_LEN + 1];    //  hex SHA-256 of "role:key_hash"
    char key_hash [GW_KEY_HASH_LEN + 1];//  hex SHA-256 of the key: what the ledger stores
    char *role;
    char *name;                 //  the id registered with it (the ledger wants one)
    char *owner;                //  the account's owner from the ledger, "" none
    int64_t account_id;
    int64_t verified_ms;        //  when the ledger last said yes
    size_t users;               //  live sessions registered with it
    uint64_t corr;              //  re-check in flight, 0: none
    int64_t asked_ms;           //  when that re-check was sent
} gw_authentry_t;

typedef struct _gw_authcache_t gw_authcache_t;

gw_authcache_t *gw_authcache_new (int64_t ttl_ms);
void gw_authcache_destroy (gw_authcache_t **self_p);

//  hex SHA-256 of key into out (GW_KEY_HASH_LEN + 1 bytes): the ledger's
//  stored hash of an API key; "" when hashing failed
void gw_authcache_key_hash (const char *key, char *out);

//  hex SHA-256 of role ":" key_hash into out (GW_KEY_HASH_LEN + 1 bytes)
void gw_authcache_hash (const char *role, const char *key_hash, char *out);

//  The entry when the ledger accepted the key within the TTL, else NULL.
gw_authentry_t *gw_authcache_fresh (gw_authcache_t *self, const char *hash, int64_t now_ms);
gw_authentry_t *gw_authcache_lookup (gw_authcache_t *self, const char *hash);

//  Records (or refreshes) an accepted key (by its key_hash).
gw_authentry_t *gw_authcache_put (gw_authcache_t *self, const char *hash, const char *role,
                                  const char *name, const char *key_hash, int64_t account_id,
                                  const char *owner, int64_t now_ms);

void gw_authcache_remove (gw_authcache_t *self, const char *hash);

//  Entries in use that were verified longer than every_ms ago and have no
//  re-check in flight (or one that went unanswered for every_ms). A list
//  of borrowed entries; the caller sends the re-checks and destroys it.
zlistx_t *gw_authcache_due (gw_authcache_t *self, int64_t now_ms, int64_t every_ms);

//  Marks a re-check sent; the entry is found by its corr afterwards.
void gw_authcache_asked (gw_authcache_t *self, gw_authentry_t *e, uint64_t corr, int64_t now_ms);
gw_authentry_t *gw_authcache_by_corr (gw_authcache_t *self, uint64_t corr);

//  Drops unused entries past their TTL.
void gw_authcache_sweep (gw_authcache_t *self, int64_t now_ms);

size_t gw_authcache_size (gw_authcache_t *self);

void gw_authcache_test (bool verbose);

#endif
