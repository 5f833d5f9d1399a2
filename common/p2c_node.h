/*  A server process's connection to the broker: one DEALER socket whose
    routing id is the node id. Outgoing messages are [destination][body],
    where destination is a service name ("scheduler", "ledger", "gateway")
    or a node id; incoming ones are [sender][stamp][body], where the stamp
    is the sender's authenticated "role:keyname" that only the broker
    writes: a message its sender's role may not send to ours (p2c_auth.h)
    is dropped, logged and counted here. The node says hello at
    start and every heartbeat, tracks the broker's heartbeat (a new epoch
    means the broker restarted; the continuous hellos re-announce us) and
    keeps the set of nodes the broker reports, per service.

    Usage from an event loop: poll p2c_node_sock (zloop/zpoller) or
    p2c_node_fd (a foreign loop: ZMQ_FD is edge-triggered, so always drain
    with p2c_node_drain until it returns false, also after sending); call
    p2c_node_cron from the loop's periodic timer. */
#ifndef P2C_NODE_H_INCLUDED
#define P2C_NODE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

#include "p2c_cfg.h"
#include "p2c_msg.h"

typedef struct _p2c_node_t p2c_node_t;

//  The bus settings of every node process (docs/trust.md), a member of its
//  settings struct, with their table entries (T: the struct, f: the member,
//  name: the default key name)
typedef struct {
    char *keys;                 //  key directory of the bus (p2c2r-ctl keys)
    char *key_name;             //  this node's key pair in keys: NAME.key_secret
    bool curve;                 //  CURVE to the broker; false only to measure its cost
} p2c_node_bus_t;

#define P2C_NODE_BUS_ENTRIES(T, f, name) \
    { "keys", P2C_CFG_STR, P2C_CFG_FIELD (T, f.keys), "var/keys", \
      .help = "key directory of the bus (p2c2r-ctl keys)" }, \
    { "key-name", P2C_CFG_STR, P2C_CFG_FIELD (T, f.key_name), name, \
      .help = "this node's key pair in --keys: NAME.key_secret" }, \
    { "curve", P2C_CFG_BOOL, P2C_CFG_FIELD (T, f.curve), "true", \
      .help = "CURVE to the broker; false only to measure its cost" }

//  The bus identity of this process, used by every node it makes from now
//  on: CURVE with the pair DIR/NAME.key_secret, talking only to the broker
//  whose public key is DIR/broker.key (p2c_keys.h). A process has one
//  identity, so it is set once by main, before any node is made (the
//  gateway makes its node deep inside its server). Returns 0, or -1 when a
//  key is missing (printed): nodes made after that fail (NULL), so a
//  process meant to use CURVE never joins without it. Never called: plain,
//  unauthenticated connections (the unit tests, --curve false).
int p2c_node_set_keys (const char *dir, const char *name);
//  Back to plain connections (tests)
void p2c_node_set_plain (void);

//  What a main does with its three bus settings (keys, key-name, curve):
//  p2c_node_set_keys with CURVE, else plain with a warning. 0 or -1.
int p2c_node_setup (bool curve, const char *dir, const char *name);

//  Connects to the broker's endpoint (e.g. "tcp://127.0.0.1:5555") as a
//  node of `service`. node_id NULL or "" makes one: service-host-pid-random.
//  NULL when the socket cannot be made.
p2c_node_t *p2c_node_new (const char *endpoint, const char *service, const char *node_id);
void p2c_node_destroy (p2c_node_t **self_p);

const char *p2c_node_id (p2c_node_t *self);
zsock_t *p2c_node_sock (p2c_node_t *self);
int p2c_node_fd (p2c_node_t *self);

//  Sends msg to a service or node. Never blocks: 0, or -1 when the message
//  could not be queued (counted and logged at debug).
int p2c_node_send (p2c_node_t *self, const char *dest, const P2c2r__Internal *msg);

//  A message handed to p2c_node_drain's caller: sender ("" for the broker
//  itself) and msg are borrowed, freed when the handler returns
typedef void (p2c_node_fn) (void *arg, const char *sender, P2c2r__Internal *msg);

//  The drain of an event loop (p2c_drain.h): receives without blocking
//  until the socket would block or `budget` messages were read (SIZE_MAX:
//  no bound), handing each message for the caller to fn, as p2c_node_recv
//  would return them. True when it stopped at its budget (more may wait),
//  false when the socket is empty (ZMQ_FD will signal the next arrival).
bool p2c_node_drain (p2c_node_t *self, size_t budget, p2c_node_fn *fn, void *arg);

//  Receives one message without blocking. Broker heartbeats are consumed
//  here. NodeEvent messages are returned to the caller too (sender ""),
//  after the node has updated its view. Returns NULL when nothing is left.
//  *sender_p is the caller's to free. Malformed bodies are counted and
//  skipped.
P2c2r__Internal *p2c_node_recv (p2c_node_t *self, char **sender_p);

//  The stamp "role:keyname" the broker wrote on the message p2c_node_recv
//  returned last ("" before any): who sent it, as the broker authenticated
//  them (the ledger logs an admin command under the key's name).
const char *p2c_node_stamp (p2c_node_t *self);

//  Periodic work: hello/heartbeat every heartbeat interval, broker liveness.
//  Call at least every 100 ms.
void p2c_node_cron (p2c_node_t *self);

//  True while the broker's heartbeats arrive.
bool p2c_node_broker_alive (p2c_node_t *self);

//  Number of live nodes of a service as the broker reported them.
size_t p2c_node_service_count (p2c_node_t *self, const char *service);

//  Counters for metrics and tests: messages we could not queue or decode;
//  messages refused because their sender's role may not send them to us
uint64_t p2c_node_dropped (p2c_node_t *self);
uint64_t p2c_node_refused (p2c_node_t *self);

#define P2C_HEARTBEAT_MS 1000
#define P2C_HEARTBEAT_LIVENESS 3        //  beats missed before a peer is lost

void p2c_node_test (bool verbose);

#endif
