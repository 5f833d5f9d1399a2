/*  The broker: one ROUTER that forwards [dest][body] from a node as
    [sender][body] to the destination node, never decoding forwarded bodies.
    It decodes only what is addressed to itself (NodeHello), keeps the
    routing table, beats to every node each second, and announces nodes that
    join or are lost (docs/internals.md). Runs as a czmq actor. */
#ifndef BRK_SERVER_H_INCLUDED
#define BRK_SERVER_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

//  The actor: zactor_new (brk_server_actor, (void *) endpoint). It sends a
//  signal when bound (status 0) or failed (-1), then runs until $TERM.
//  Commands: "PORT" -> the bound port as a string (for tests binding *);
//  "STATS" -> "forwarded dropped nodes".
void brk_server_actor (zsock_t *pipe, void *endpoint);

void brk_server_test (bool verbose);

#endif
