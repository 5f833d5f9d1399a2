/*  The broker's door: the allow-list of node keys (read from the key
    directory's allow/ and revoked/, p2c_keys.h, and reread when they
    change) and the ZAP handler that lets a CURVE handshake through only
    for a listed key. A connection's ZAP user id is its public key, so
    every message it sends afterwards names its key (zmq_msg_gets
    "User-Id"), and a key revoked later is refused on its live connection
    too. Logs name the key; counters feed the broker's STATS. */
#ifndef BRK_AUTH_H_INCLUDED
#define BRK_AUTH_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char *name;                 //  the key's name (its file name)
    char *service;              //  the one service it may offer
    unsigned role;              //  that service's role bit (p2c_auth.h)
    char *stamp;                //  "service:name", written into what it sends
    size_t stamp_len;
    char *public_txt;           //  Z85 public key, also the ZAP user id
} brk_key_t;

typedef struct _brk_auth_t brk_auth_t;

//  Loads the allow-list under dir. NULL (logged) when dir/allow is missing.
brk_auth_t *brk_auth_new (const char *dir);
void brk_auth_destroy (brk_auth_t **self_p);

//  Rereads the lists when allow/ or revoked/ changed since the last read
//  (a rename there changes the directory's mtime). True when it reread.
bool brk_auth_reload (brk_auth_t *self);

//  The listed key with this Z85 public key (a connection's User-Id), NULL
//  when unknown or revoked.
const brk_key_t *brk_auth_key (brk_auth_t *self, const char *public_txt);

//  A name for logs: the key's name, listed or revoked, else "unknown"
const char *brk_auth_name (brk_auth_t *self, const char *public_txt);

//  Answers every waiting ZAP request on zap (a REP bound at
//  inproc://zeromq.zap.01), until it would block.
void brk_auth_zap_drain (brk_auth_t *self, zsock_t *zap);

//  Handshakes refused by ZAP so far
uint64_t brk_auth_refused (brk_auth_t *self);

//  Number of listed keys
size_t brk_auth_size (brk_auth_t *self);

void brk_auth_test (bool verbose);

#endif
