/*  The bus's CURVE key files, all in one directory (setting `keys`,
    P2C2R_KEYS; docs/trust.md):
      NAME.key, NAME.key_secret   a node's pair made here (secret: 0600)
      broker.key, broker.key_secret   the broker's pair; every node reads
                                  broker.key to know whom it talks to
      allow/NAME.key              the allow-list the broker rereads: public
                                  certificates, metadata "service" is the
                                  one service the key may offer
      revoked/NAME.key            revoked keys, kept so logs can name them
    Files are czmq zcert text files. The directory is 0700; made by
    p2c_keys_init (make run, the e2e helper) and p2c2r-ctl keys. */
#ifndef P2C_KEYS_H_INCLUDED
#define P2C_KEYS_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

#define P2C_KEYS_NAME_MAX 64

//  True for a key name of 1..64 characters [A-Za-z0-9._-], not starting
//  with a dot: it becomes a file name and a log field.
bool p2c_keys_name_ok (const char *name);

//  Makes what is missing: the directory, allow/ and revoked/, the broker's
//  pair, and one node key per service named like it (gateway, scheduler,
//  ledger, ctl), each on the allow-list. Existing keys are kept. 0 or -1
//  (printed to stderr).
int p2c_keys_init (const char *dir);

//  Puts NAME on the allow-list bound to service. public_z85 NULL makes a
//  new pair (DIR/NAME.key_secret) first; else the public key (40 Z85
//  characters) of a pair made elsewhere. Refuses a name already listed or
//  revoked. 0 or -1 (printed).
int p2c_keys_add (const char *dir, const char *name, const char *service, const char *public_z85);

//  Moves NAME from allow/ to revoked/: the broker refuses it from its next
//  reread on, live connections included. 0 or -1 (printed).
int p2c_keys_revoke (const char *dir, const char *name);

//  A node's pair (DIR/NAME.key_secret), NULL (printed) when missing.
zcert_t *p2c_keys_load (const char *dir, const char *name);

//  0 when the secret DIR/NAME.key_secret is a regular file of ours that
//  no one else may read (no group or other bits: an operator's key, which
//  p2c2r-ctl refuses to write with otherwise); else -1, the reason printed.
int p2c_keys_private (const char *dir, const char *name);

//  The public key (Z85) in the public certificate DIR/NAME.key alone (as
//  zcert_load would prefer NAME.key_secret when it exists) into buf of 41
//  bytes. 0, or -1 when missing or malformed.
int p2c_keys_public (const char *dir, const char *name, char *buf);

//  Calls fn for every key on the allow-list (revoked false) and every
//  revoked one (revoked true), in no particular order.
typedef void (p2c_keys_fn) (void *arg, const char *name, const char *service,
                            const char *public_z85, bool revoked);
void p2c_keys_each (const char *dir, p2c_keys_fn *fn, void *arg);

void p2c_keys_test (bool verbose);

#endif
