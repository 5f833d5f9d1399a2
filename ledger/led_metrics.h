/*  The ledger's figures in Prometheus' text format, for its /metrics
    listener (p2c_metrics_http): the same counters as its StatsReply, named
    and typed once here (docs/metrics.md lists them). */
#ifndef LED_METRICS_H_INCLUDED
#define LED_METRICS_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

//  Writes every known figure of stats (the StatsReply object) to f; a
//  figure missing from stats is left out
void led_metrics_render (const json_t *stats, FILE *f);

void led_metrics_test (bool verbose);

#endif
