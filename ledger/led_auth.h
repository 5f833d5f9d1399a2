/*  The ledger's API keys and AuthRequest: which account a gamer or peer
    registers as. An API key names its account; without one, under open
    registration, the role and name do (the account is made when missing).
    Only a key's SHA-256 is stored. */
#ifndef LED_AUTH_H_INCLUDED
#define LED_AUTH_H_INCLUDED

#include "led_store.h"

typedef enum {
    LED_AUTH_OK = 0,
    LED_AUTH_FAILED,            //  unknown, disabled, or not allowed
    LED_AUTH_BAD_REQUEST,       //  malformed role or name
    LED_AUTH_UNAVAILABLE        //  the database failed; try again
} led_auth_status_t;

//  Longest owner label (bytes), as the accounts table allows
#define LED_AUTH_OWNER_MAX 128

//  An AuthRequest, as the gateway sent it
typedef struct {
    const char *role;           //  "gamer" or "peer"
    const char *name;           //  the client's id
    const char *key_hash;       //  hex SHA-256 of the API key, "" without one
    bool open;                  //  the gateway runs open registration
    int64_t account_id;         //  a re-check: the account the key must still name; 0 else
} led_auth_ask_t;

//  With a key's hash: the account whose key it is (its kind must be role; a
//  disabled one fails; a re-check fails when the key now names another
//  account). Without: under open registration the account of role and
//  name, created when missing (a new gamer gets the starting credit); else
//  fails. The account's owner ("" when none) goes into owner
//  (LED_AUTH_OWNER_MAX + 1 bytes). *message_p is static text. A gamer's
//  balance is in led_store_balances.
led_auth_status_t led_auth_request (led_store_t *store, const led_auth_ask_t *ask,
                                    int64_t *account_id_p, char *owner,
                                    const char **message_p);

//  A new API key: 64 hex digits from 256 random bits (OpenSSL RAND_bytes),
//  into key (65 bytes), and its SHA-256 in hex into hash (65 bytes). 0 or -1.
int led_auth_new_key (char *key, char *hash);

//  SHA-256 of text in hex, into hash (65 bytes).
void led_auth_hash_key (const char *text, char *hash);

//  True for an account name we store: 1..128 bytes of valid UTF-8 without
//  control characters
bool led_auth_valid_name (const char *name);

//  Self-test; needs P2C2R_TEST_DB (fails loudly without it).
void led_auth_test (bool verbose);

#endif
