/*  The operator's token for the admin listener (docs/gateway.md): read
    once at start from a file only its owner may read, and the check of a
    request's `Authorization: Bearer TOKEN` against it in constant time
    (both sides hashed, then compared with CRYPTO_memcmp, so neither the
    length nor a matching prefix shows in the time taken). Without a
    token every admin request is refused: a listener with no token is
    closed, not open. */
#ifndef GW_ADMIN_H_INCLUDED
#define GW_ADMIN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#define GW_ADMIN_TOKEN_MIN  16      //  shortest token accepted, bytes
#define GW_ADMIN_TOKEN_MAX  512     //  longest token (and Authorization header) looked at

typedef struct _gw_admin_t gw_admin_t;

//  path: the token file ("" or NULL: no token, every request refused).
//  NULL (the reason in *error, static text) when the file cannot be read,
//  is readable or writable by group or others, or holds no token of
//  GW_ADMIN_TOKEN_MIN..MAX printable bytes (one line; trailing blanks cut).
gw_admin_t *gw_admin_new (const char *path, const char **error);
void gw_admin_destroy (gw_admin_t **self_p);

//  Whether a token was loaded
bool gw_admin_has_token (gw_admin_t *self);

//  Whether the Authorization header's value (NULL: none) is "Bearer "
//  and the token
bool gw_admin_allows (gw_admin_t *self, const char *authorization);

void gw_admin_test (bool verbose);

#endif
