/*  The server's own alerts (issue 21): a handful of rules the scheduler
    evaluates at its cron on the figures it has, each firing or resolved,
    with since when, its value and its threshold. A rule fires when its
    condition has held for `for_ms` (so that a blip does not page anyone)
    and resolves as soon as it no longer holds. Every change of state goes
    to a callback (the scheduler's --alert-exec hook, sch_hook) and shows in
    StatsReply's "alerts" (so in the gateway's /api/stats and p2c2r-ctl
    alerts). No sockets and no clock of its own: the time is passed in. */
#ifndef SCH_ALERTS_H_INCLUDED
#define SCH_ALERTS_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    SCH_ALERT_SERVER_DOWN,          //  the broker gone, or no ledger or no gateway on the bus
    SCH_ALERT_PEERS_LOW,            //  fewer live peers than peers_min
    SCH_ALERT_LATENCY_HIGH,         //  p99 over the window above latency_p99_ms
    SCH_ALERT_QUEUE_BACKLOG,        //  tasks waiting for a slot above queue_max
    SCH_ALERT_SETTLE_FAILURES,      //  settlement resends and refusals in the window
    SCH_ALERT_COUNT
} sch_alert_id_t;

//  The thresholds (the scheduler's table binds them: --alert-*)
typedef struct {
    int64_t for_ms;                 //  a condition holds this long before firing
    int64_t window_ms;              //  of the latency and settlement rules
    uint32_t peers_min;             //  0: rule off
    int64_t latency_p99_ms;         //  0: rule off
    size_t queue_max;               //  0: rule off
    uint32_t settle_failures;       //  fires at this many in the window (0: rule off)
} sch_alerts_config_t;

//  What the rules look at, once per evaluation
typedef struct {
    size_t peers;                   //  live peers
    size_t queued;                  //  tasks waiting for a slot
    uint64_t settle_failures;       //  counter since start: resends + refusals
    int broker;                     //  1 the broker beats, 0 it stopped; -1: not known
    int ledgers;                    //  ledger nodes on the bus; -1: not known
    int gateways;                   //  gateway nodes; -1: not known
} sch_alerts_input_t;

typedef struct {
    const char *name;               //  "peers_low", ...
    const char *summary;            //  one line for a human
    bool firing;
    bool pending;                   //  the condition holds, not yet for_ms
    int64_t since_us;               //  of the current state (monotonic)
    int64_t since_unix;             //  the same, wall clock seconds; 0 never changed
    int64_t pending_us;             //  when the condition began to hold
    double value, threshold;        //  at the last evaluation
    char detail [64];               //  e.g. which service is missing
} sch_alert_t;

typedef struct _sch_alerts_t sch_alerts_t;

//  Called once per change of state (firing, resolved); borrowed alert
typedef void (sch_alert_fn) (void *arg, const sch_alert_t *alert);

sch_alerts_t *sch_alerts_new (const sch_alerts_config_t *config);
void sch_alerts_destroy (sch_alerts_t **self_p);

void sch_alerts_set_hook (sch_alerts_t *self, sch_alert_fn *fn, void *arg);

//  A task done: its submit-to-result latency, at now_us
void sch_alerts_latency (sch_alerts_t *self, int64_t now_us, int64_t latency_us);

//  Evaluates every rule at now_us; calls the hook for each change
void sch_alerts_eval (sch_alerts_t *self, const sch_alerts_input_t *in, int64_t now_us);

const sch_alert_t *sch_alerts_get (sch_alerts_t *self, sch_alert_id_t id);

//  Firing ones
size_t sch_alerts_firing (sch_alerts_t *self);

//  The rules as a JSON array, one object each (name, state firing,
//  pending or ok, since, value, threshold, summary, detail); owned
json_t *sch_alerts_json (sch_alerts_t *self);

void sch_alerts_test (bool verbose);

#endif
