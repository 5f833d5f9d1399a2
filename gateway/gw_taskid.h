/*  Task ids made by the gateway (docs/internals.md, Sessions): 16 hex
    digits drawn at random once per process, a dash, and a hex counter.
    Unique across gateways without coordination, and never reused within
    one process (the demo made ids from the clock and lost tasks). */
#ifndef GW_TASKID_H_INCLUDED
#define GW_TASKID_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct _gw_taskid_t gw_taskid_t;

//  Draws the random prefix from the kernel. NULL when no randomness is
//  available (a start-up failure).
gw_taskid_t *gw_taskid_new (void);
void gw_taskid_destroy (gw_taskid_t **self_p);

//  The next id; the caller frees it.
char *gw_taskid_next (gw_taskid_t *self);

//  The 16 hex digits of this process.
const char *gw_taskid_prefix (gw_taskid_t *self);

void gw_taskid_test (bool verbose);

#endif
