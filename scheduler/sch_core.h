/*  The scheduler's logic without sockets: the peer registry, the task queues,
    tasks in flight, deadlines, retries and settlement (docs/internals.md).
    It is fed decoded Internal messages and the monotonic time, and emits the
    messages it wants sent through a callback, so that tests drive every rule
    with a fake clock and no processes. sch_main.c is the I/O shell. */
#ifndef SCH_CORE_H_INCLUDED
#define SCH_CORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p2c_msg.h"

typedef struct _sch_core_t sch_core_t;

//  Sends msg to a service ("ledger") or a node id (a gateway). The message
//  and everything it points to are borrowed for the call only.
typedef void (sch_send_fn) (void *arg, const char *dest, const P2c2r__Internal *msg);

typedef struct {
    int64_t attempt_timeout_ms;     //  longest time one peer gets for a task
    uint32_t max_attempts;          //  assignments per task before `timeout`
    size_t queue_max;               //  queued tasks before `unavailable`
    int64_t settle_retry_ms;        //  resend interval of an unacked SettleRequest
    int64_t status_interval_ms;     //  status line interval (when something changed)
} sch_core_config_t;

//  Terminal error codes the scheduler answers with, for the counters.
typedef enum {
    SCH_ERR_NO_PEERS,
    SCH_ERR_TIMEOUT,
    SCH_ERR_UNAVAILABLE,
    SCH_ERR_INVALID_PARAMS,
    SCH_ERR_KERNEL_ERROR,
    SCH_ERR_UNKNOWN_TASK_TYPE,
    SCH_ERR_COUNT
} sch_err_t;

typedef struct {
    //  counters since start
    uint64_t submitted;             //  TaskSubmits accepted for scheduling
    uint64_t completed;             //  results delivered after settlement
    uint64_t failed [SCH_ERR_COUNT];//  error replies, by code
    uint64_t assigned;              //  TaskAssigns sent (all attempts)
    uint64_t reassigned;            //  attempts after the first
    uint64_t stale_results;         //  results for no current attempt
    uint64_t dropped;               //  queued tasks whose gamer's gateway died
    uint64_t settle_sent;           //  SettleRequests sent (first ones)
    uint64_t settle_retries;        //  SettleRequests resent
    uint64_t stale_acks;            //  SettleAcks for no settling task
    uint64_t bad_messages;          //  malformed or unexpected inputs
    //  gauges
    size_t peers;                   //  live peers
    size_t slots;                   //  their slots
    size_t busy_slots;              //  slots running a task
    size_t queued;                  //  tasks waiting for a slot
    size_t running;                 //  tasks in flight on a peer
    size_t settling;                //  tasks waiting for the ledger's ack
} sch_stats_t;

//  Defaults of the settings (the values of sch_main's config table).
void sch_core_config_default (sch_core_config_t *config);

sch_core_t *sch_core_new (const sch_core_config_t *config, sch_send_fn *send, void *arg);
void sch_core_destroy (sch_core_t **self_p);

//  Handles one message from `sender` (a node id, "" for the broker) at
//  monotonic time now_us. Every field is checked; bad input is counted,
//  logged at debug and dropped.
void sch_core_handle (sch_core_t *self, const char *sender, const P2c2r__Internal *msg,
                      int64_t now_us);

//  Periodic work: attempt timeouts, deadlines, settlement retries, the
//  status line. Call every 100 ms or so.
void sch_core_cron (sch_core_t *self, int64_t now_us);

const sch_stats_t *sch_core_stats (sch_core_t *self);

//  Tasks running on the peer of that session; -1 when no such peer.
int sch_core_peer_busy (sch_core_t *self, const char *gateway, uint64_t conn);

//  Name of an error code as sent on the wire.
const char *sch_err_name (sch_err_t err);

void sch_core_test (bool verbose);

#endif
