/*  The broker's routing table: which node serves which service, when each
    was last heard, and which node a service destination goes to now. Pure
    bookkeeping, no sockets, so every rule is testable alone. */
#ifndef BRK_TABLE_H_INCLUDED
#define BRK_TABLE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _brk_table_t brk_table_t;

brk_table_t *brk_table_new (void);
void brk_table_destroy (brk_table_t **self_p);

//  Records a hello from node_id of service at now_ms. Returns true when the
//  node is new (the broker then announces it). A node that changes service
//  is treated as new.
bool brk_table_hello (brk_table_t *self, const char *node_id, const char *service, int64_t now_ms);

//  The node a destination goes to: a service name picks one live node of it
//  (the oldest for "scheduler", round robin otherwise); a node id is itself
//  when known. NULL when nobody serves it.
const char *brk_table_route (brk_table_t *self, const char *dest);

//  Removes nodes silent since before now_ms - timeout_ms; calls lost(arg,
//  node_id, service) for each before removing it.
typedef void (brk_table_lost_fn) (void *arg, const char *node_id, const char *service);
void brk_table_expire (brk_table_t *self, int64_t now_ms, int64_t timeout_ms,
                       brk_table_lost_fn *lost, void *arg);

//  Iterates all nodes: calls each(arg, node_id, service).
void brk_table_each (brk_table_t *self, brk_table_lost_fn *each, void *arg);

size_t brk_table_size (brk_table_t *self);

//  The service a known node serves, NULL when unknown
const char *brk_table_service (brk_table_t *self, const char *node_id);

//  Forgets a node at once (its key was revoked). True when it was known.
bool brk_table_remove (brk_table_t *self, const char *node_id);

void brk_table_test (bool verbose);

#endif
