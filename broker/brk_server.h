/*  The broker: one ROUTER that forwards [dest NUL body] from a node as
    [sender NUL stamp NUL body] to the destination node, never decoding
    forwarded bodies (one frame each way: with CURVE a frame is a crypto
    operation at each end).
    The stamp is the sender's authenticated "role:keyname", which receivers check
    against p2c_auth's table; a node cannot forge it since only the broker
    writes it. With CURVE (the default) only keys on the allow-list get in
    (brk_auth.h), each only as the service it is bound to.
    It decodes only what is addressed to itself (NodeHello), keeps the
    routing table, beats to every node each second, and announces nodes that
    join or are lost (docs/internals.md). Runs as a czmq actor. */
#ifndef BRK_SERVER_H_INCLUDED
#define BRK_SERVER_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

typedef struct {
    const char *endpoint;       //  where the ROUTER binds
    bool curve;                 //  CURVE and the allow-list (docs/trust.md);
                                //  false: plain, roles taken from the hellos
    const char *keys;           //  key directory (p2c_keys.h), with curve
    bool failed;                //  out: set before the actor's first signal
                                //  when it could not start (logged)
} brk_server_args_t;

//  The actor: zactor_new (brk_server_actor, &args). It sends a signal when
//  bound (status 0) or failed (-1), then runs until $TERM.
//  Commands: "PORT" -> the bound port as a string (for tests binding *);
//  "STATS" -> "forwarded dropped nodes refused_handshakes refused_hellos
//  refused_messages".
void brk_server_actor (zsock_t *pipe, void *args);

void brk_server_test (bool verbose);
//  The same with CURVE: keys, refusals, revocation
void brk_server_curve_test (bool verbose);

#endif
