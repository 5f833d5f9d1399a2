/*  The gateway's counters and its task latency histogram, rendered in the
    Prometheus text format for /metrics and as JSON for /api/stats.
    Counters are families with one label (messages by type, errors by
    code, limits hit by limit); gauges are written by the server itself,
    which knows its live state. */
#ifndef GW_METRICS_H_INCLUDED
#define GW_METRICS_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    GW_M_MSG_IN,                //  client messages received, by type
    GW_M_MSG_OUT,               //  messages sent to clients, by type
    GW_M_ERRORS,                //  error answers, by code
    GW_M_LIMITS,                //  limits hit, by limit
    GW_M_EVENTS,                //  other events (connects, closes, auth cache), by event
    GW_M_FAMILIES
} gw_family_t;

typedef struct _gw_metrics_t gw_metrics_t;

gw_metrics_t *gw_metrics_new (void);
void gw_metrics_destroy (gw_metrics_t **self_p);

//  Counts one. The label must be a string that lives as long as the
//  metrics and never changes (a literal, or from a static table): it is
//  remembered by its address, so counting costs no string hashing.
void gw_metrics_inc (gw_metrics_t *self, gw_family_t family, const char *label);
uint64_t gw_metrics_get (gw_metrics_t *self, gw_family_t family, const char *label);

//  One task's latency from submit to its terminal reply
void gw_metrics_observe_ms (gw_metrics_t *self, double ms);

//  Writes every family and the histogram in the Prometheus text format.
void gw_metrics_render (gw_metrics_t *self, FILE *out);

//  The same figures as a JSON object {family: {label: count}, latency: {...}}
json_t *gw_metrics_json (gw_metrics_t *self);

void gw_metrics_test (bool verbose);

#endif
