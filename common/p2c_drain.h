/*  One drain of an edge-triggered socket. A ZeroMQ socket's ZMQ_FD
    signals only new arrivals: after a wake-up the loop must receive until
    the socket would block, or the messages left behind wait for the next
    arrival. Every loop that sleeps in poll(2) on a ZMQ_FD (broker, ledger,
    gateway) drains with p2c_drain, or with p2c_node_drain on its broker
    connection; each keeps its own handling in a callback per message. */
#ifndef P2C_DRAIN_H_INCLUDED
#define P2C_DRAIN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

//  Most parts of one message handed to a callback
#define P2C_DRAIN_PARTS 8

//  One message: its first min(nparts, P2C_DRAIN_PARTS) parts, borrowed
//  (closed after the call). nparts counts every part the message had, so
//  that a callback can refuse a message of the wrong shape.
typedef void (p2c_drain_fn) (void *arg, zmq_msg_t *parts, size_t nparts);

//  Receives whole messages from a libzmq socket handle without waiting,
//  calling fn for each, until the socket would block or `budget` messages
//  were served. Returns true when it stopped at its budget (messages may
//  still wait: the loop must not sleep on the descriptor), false when the
//  socket is empty: its last, failed receive processed the socket's pending
//  commands, so ZMQ_FD will signal the next arrival.
bool p2c_drain (void *handle, size_t budget, p2c_drain_fn *fn, void *arg);

void p2c_drain_test (bool verbose);

#endif
