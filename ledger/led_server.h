/*  The ledger server: a node of service "ledger" on the broker. Its one
    event loop (one poll(2) on the sockets' ZMQ_FDs, with a cron timer)
    takes AuthRequest and SettleRequest messages, hands them to the database thread (led_worker)
    and sends AuthReply / SettleAck to the node that asked. Settle requests
    that arrive while batches are in the database (one per database thread,
    db_workers of them) wait and go together in the next batch (up to
    batch_max), so under load every transaction carries many tasks. An ack leaves only after the batch's COMMIT returned; a batch
    that failed is not acked at all (the scheduler retries). */
#ifndef LED_SERVER_H_INCLUDED
#define LED_SERVER_H_INCLUDED

#include <czmq.h>

#include "led_worker.h"

#define LED_MAX_DB_WORKERS 8

typedef struct {
    const char *broker;         //  broker endpoint
    const char *node_id;        //  NULL or "": made up
    size_t batch_max;           //  most tasks per transaction
    size_t db_workers;          //  settlement batches in the database at once
    led_worker_args_t db;       //  database settings
    const char *metrics_listen; //  HOST:PORT of /metrics; NULL or "": none
    int money_refresh_ms;       //  how often the money summary is read (0: 2000)
} led_server_args_t;

//  The actor: zactor_new (led_server_actor, &args); args are copied before
//  the actor signals. The actor sends "STOPPED" when it ends by itself (not
//  after $TERM), "FAILED" instead of starting when it cannot start.
void led_server_actor (zsock_t *pipe, void *args);

void led_server_test (bool verbose);

#endif
