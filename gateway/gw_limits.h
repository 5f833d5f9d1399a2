/*  Per-client limits: a token bucket (messages per second per connection,
    connects per second per address) and the table of client addresses
    with their live connection counts and connect buckets. */
#ifndef GW_LIMITS_H_INCLUDED
#define GW_LIMITS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    double tokens;              //  what may be spent now
    int64_t last_ms;            //  when tokens were last refilled; 0: never
} gw_bucket_t;

//  Takes one token from a bucket refilled at `rate` per second up to
//  `burst`; false when empty. A new bucket starts full.
bool gw_bucket_take (gw_bucket_t *b, double rate, double burst, int64_t now_ms);

typedef enum { GW_ADMIT_OK, GW_ADMIT_CONNS, GW_ADMIT_RATE } gw_admit_t;

typedef struct _gw_iplimit_t gw_iplimit_t;

//  max_conns: live connections per address; rate/burst: connects per
//  second per address
gw_iplimit_t *gw_iplimit_new (size_t max_conns, double rate, double burst);
void gw_iplimit_destroy (gw_iplimit_t **self_p);

//  A new connection from ip: admitted (and counted) or refused.
gw_admit_t gw_iplimit_admit (gw_iplimit_t *self, const char *ip, int64_t now_ms);

//  Whether a connection from ip would be admitted now, counting nothing:
//  the glue asks before the WebSocket (and TLS) handshake, so that an
//  address at its limit costs no handshake and no session.
gw_admit_t gw_iplimit_check (gw_iplimit_t *self, const char *ip, int64_t now_ms);

//  An admitted connection from ip closed.
void gw_iplimit_release (gw_iplimit_t *self, const char *ip);

//  Forgets addresses with no connection whose bucket is full again.
void gw_iplimit_sweep (gw_iplimit_t *self, int64_t now_ms);

size_t gw_iplimit_size (gw_iplimit_t *self);

void gw_limits_test (bool verbose);

#endif
