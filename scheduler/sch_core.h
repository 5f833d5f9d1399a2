/*  The scheduler's logic without sockets: the peer registry and its
    per-type indexes, fair queues per gamer, tasks in flight, deadlines,
    retries, the result cache, validation and reputation, the funds check
    and settlement (docs/internals.md, docs/scheduler.md). It is fed decoded
    Internal messages and the monotonic time, and emits the messages it
    wants sent through a callback, so that tests drive every rule with a
    fake clock and no processes. sch_main.c is the I/O shell. */
#ifndef SCH_CORE_H_INCLUDED
#define SCH_CORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "p2c_msg.h"
#include "sch_alerts.h"

#define SCH_MAX_TYPES       32      //  room for the catalogue (13 today)

typedef struct _sch_core_t sch_core_t;

//  Sends msg to a service ("ledger") or a node id (a gateway). The message
//  and everything it points to are borrowed for the call only.
typedef void (sch_send_fn) (void *arg, const char *dest, const P2c2r__Internal *msg);

//  Validation of untrusted results (docs/architecture.md)
typedef enum {
    SCH_VAL_DEFAULT = -1,           //  per type: use the server-wide mode
    SCH_VAL_NONE = 0,
    SCH_VAL_SPOT,
    SCH_VAL_QUORUM
} sch_val_mode_t;

typedef struct {
    int64_t attempt_timeout_ms;     //  longest time one peer gets for a task
    uint32_t max_attempts;          //  assignments per task before `timeout`
    size_t queue_max;               //  queued tasks before `unavailable`
    size_t gamer_queue_max;         //  queued tasks of one gamer before `unavailable`
    size_t queue_max_bytes;         //  bytes of queued tasks (params + payload), all gamers
    size_t gamer_queue_max_bytes;   //  ... of one gamer
    int64_t settle_retry_ms;        //  resend interval of an unacked SettleRequest
    int64_t status_interval_ms;     //  status line interval (when something changed)
    int64_t default_deadline_ms;    //  when a submit names none
    int64_t max_deadline_ms;        //  longer deadlines are cut to this
    //  result cache
    int64_t cache_ttl_ms;
    size_t cache_max_entries;       //  0: no cache
    size_t cache_max_bytes;
    //  idempotent resubmission by client_ref (sch_refs)
    int64_t ref_window_ms;          //  outcomes kept this long
    size_t ref_max_entries;         //  and at most this many (0: off)
    size_t ref_max_bytes;           //  and bytes
    //  validation and reputation
    sch_val_mode_t validation;                      //  server-wide mode
    sch_val_mode_t validation_type [SCH_MAX_TYPES]; //  per catalogue type
    uint32_t spot_permille;         //  share of a trusted peer's results checked
    uint32_t spot_doubted_permille; //  share of a new or doubted peer's results checked
    uint32_t new_samples;           //  verdicts before a peer is no longer new
    int64_t rep_half_life_ms;       //  decay of the valid/invalid counts
    double ban_min_invalid;         //  decayed invalid count needed for a ban
    uint32_t ban_permille;          //  and the invalid share (of verdicts) for a ban
    uint64_t seed;                  //  of the spot-check draw
    bool pay_checks;                //  the treasury pays valid check runs' peers
    //  billing from the server's measure (issue 14)
    uint32_t bill_min_permille;     //  billed at least this share of the expected time
    uint32_t bill_max_permille;     //  and at most this share; 0: the cost model is off
    uint32_t bill_flag_permille;    //  claims past this share of expected (plus slack)
    int64_t bill_flag_slack_us;     //  are flagged and counted against reputation
    //  self-dealing: a peer never runs a task of a gamer in its address
    //  block (prefix bits; 0: the rule is off for that family)
    uint32_t block_v4_bits;
    uint32_t block_v6_bits;
    //  resources per catalogue type (0/false: no need)
    uint32_t needs_ram_gb [SCH_MAX_TYPES];
    uint32_t needs_vram_gb [SCH_MAX_TYPES];
    bool needs_gpu [SCH_MAX_TYPES];
    //  funds (issue 5)
    bool funds_check;               //  refuse tasks a gamer cannot pay for
    int64_t funds_floor_pico;       //  spendable balance may not go below this
    int64_t gamer_rate_per_hour;    //  picodollars, for the reserve of in-flight tasks
    int64_t balance_wait_ms;        //  how long a task waits for an unknown balance
    size_t park_max;                //  tasks waiting for balances before `unavailable`
    //  frames split into tiles across peers (sch_tiles)
    uint64_t tile_px;               //  ray-tracing frames above this many pixels are split; 0: never
    size_t tile_max;                //  most tiles of one frame
    //  the server's own alerts (sch_alerts)
    sch_alerts_config_t alerts;
} sch_core_config_t;

//  Terminal error codes the scheduler answers with, for the counters.
typedef enum {
    SCH_ERR_NO_PEERS,
    SCH_ERR_TIMEOUT,
    SCH_ERR_UNAVAILABLE,
    SCH_ERR_INVALID_PARAMS,
    SCH_ERR_KERNEL_ERROR,
    SCH_ERR_UNKNOWN_TASK_TYPE,
    SCH_ERR_INSUFFICIENT_FUNDS,
    SCH_ERR_REJECTED,
    SCH_ERR_BAD_REQUEST,            //  a client_ref reused for another task
    SCH_ERR_COUNT
} sch_err_t;

typedef struct {
    //  counters since start
    uint64_t submitted;             //  TaskSubmits accepted for scheduling
    uint64_t completed;             //  results delivered after settlement
    uint64_t cached;                //  results delivered from the cache
    uint64_t ref_joined;            //  repeats of a client_ref joined to its task
    uint64_t ref_replayed;          //  ... answered from its stored outcome
    uint64_t failed [SCH_ERR_COUNT];//  error replies, by code
    uint64_t assigned;              //  TaskAssigns sent (all attempts, checks too)
    uint64_t reassigned;            //  attempts after the first
    uint64_t stale_results;         //  results for no current attempt
    uint64_t dropped;               //  queued tasks whose gamer's gateway died
    uint64_t settle_sent;           //  SettleRequests sent (first ones)
    uint64_t settle_retries;        //  SettleRequests resent
    uint64_t settle_refused;        //  SettleAcks that refused a settlement
    uint64_t stale_acks;            //  SettleAcks for no settling task
    uint64_t bad_messages;          //  malformed or unexpected inputs
    uint64_t balance_queries;       //  BalanceQuery messages sent
    //  validation
    uint64_t checks;                //  extra runs started (spot, quorum, tie-break)
    uint64_t agreed;                //  validations settled by two equal results
    uint64_t tiebreaks;             //  disagreements settled by a third peer
    uint64_t unresolved;            //  validations that ended without a majority
    uint64_t incomparable;          //  results of another kernel version, not compared
    uint64_t invalid_results;       //  results that lost a validation
    uint64_t unknown_versions;      //  of those, results of a kernel version we do not know
    uint64_t billing_flagged;       //  claims far beyond the expected time
    uint64_t paid_then_invalid;     //  of those, results already settled (spot)
    uint64_t banned_results;        //  results of banned peers, refused unpaid
    uint64_t bans;                  //  peers (accounts) banned
    //  money of validation
    uint64_t check_payouts;         //  valid check runs settled, paid by the treasury
    uint64_t reversals;             //  paid results that lost: earnings reversed
    uint64_t payouts_done;          //  of both, acked by the ledger
    uint64_t payouts_dropped;       //  given up (refused, or never acked in time)
    size_t payouts_pending;         //  waiting for the ledger's ack
    //  gauges
    size_t peers;                   //  live peers
    size_t banned_peers;            //  of those, banned
    size_t slots;                   //  their slots
    size_t busy_slots;              //  slots running a task
    size_t parked;                  //  tasks waiting for a gamer's balance
    size_t queued;                  //  tasks waiting for a slot
    size_t queued_bytes;            //  their params and payloads, bytes
    size_t running;                 //  tasks in flight on a peer (checks too)
    size_t validating;              //  results waiting for a quorum
    size_t settling;                //  tasks waiting for the ledger's ack
} sch_stats_t;

//  Defaults of the settings (the values of sch_main's config table).
void sch_core_config_default (sch_core_config_t *config);

//  Parses "TYPE=MODE,..." (MODE none|spot|quorum) into the per-type modes;
//  -1 on a bad entry (an unknown type or mode).
int sch_core_config_validation (sch_core_config_t *config, const char *spec);

//  Parses "TYPE:gpu,TYPE:ram=N,TYPE:vram=N,..." into the per-type needs;
//  -1 on a bad entry.
int sch_core_config_needs (sch_core_config_t *config, const char *spec);

//  Parses a mode name; -1 when unknown.
int sch_val_mode_parse (const char *name);

sch_core_t *sch_core_new (const sch_core_config_t *config, sch_send_fn *send, void *arg);
void sch_core_destroy (sch_core_t **self_p);

//  Handles one message from `sender` (a node id, "" for the broker) at
//  monotonic time now_us. Every field is checked; bad input is counted,
//  logged at debug and dropped.
void sch_core_handle (sch_core_t *self, const char *sender, const P2c2r__Internal *msg,
                      int64_t now_us);

//  Periodic work: attempt timeouts, deadlines, balance waits, settlement
//  retries, cache expiry, unbans, the status line. Call every 100 ms or so.
void sch_core_cron (sch_core_t *self, int64_t now_us);

const sch_stats_t *sch_core_stats (sch_core_t *self);

//  The figures of StatsReply: a flat JSON object. The caller frees it.
char *sch_core_stats_json (sch_core_t *self, int64_t now_us);

//  Whether the broker beats (1, 0) and the server nodes it names now (-1:
//  not known), for the alert server_down; the I/O shell sets them before
//  each cron
void sch_core_set_services (sch_core_t *self, int broker, int ledgers, int gateways);

//  Where each change of an alert's state goes (the --alert-exec hook)
void sch_core_set_alert_hook (sch_core_t *self, sch_alert_fn *fn, void *arg);

//  The alerts, as they stand at the last cron
sch_alerts_t *sch_core_alerts (sch_core_t *self);

//  The figures in Prometheus' text format, to f (the /metrics listener)
void sch_core_metrics (sch_core_t *self, FILE *f);

//  Tasks running on the peer of that session; -1 when no such peer.
int sch_core_peer_busy (sch_core_t *self, const char *gateway, uint64_t conn);

//  A peer account's decayed verdict counts at now_us; false when unknown.
bool sch_core_reputation (sch_core_t *self, int64_t account, int64_t now_us,
                          double *valid_p, double *invalid_p, bool *banned_p);

//  Name of an error code as sent on the wire.
const char *sch_err_name (sch_err_t err);

void sch_core_test (bool verbose);

#endif
