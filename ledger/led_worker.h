/*  The ledger's database thread: a czmq actor that owns the led_store and
    does every blocking PostgreSQL call, so that the server's event loop
    never waits on the database. Jobs travel over the actor's pipe as
    pointers ("SETTLE"/"AUTH" + job); the same pointer comes back
    ("SETTLED"/"AUTHED" + job) with its outcome filled in. The caller owns
    the jobs throughout. While the database is down the worker reconnects
    with backoff and fails jobs at once. */
#ifndef LED_WORKER_H_INCLUDED
#define LED_WORKER_H_INCLUDED

#include <czmq.h>

#include "led_store.h"

typedef struct {
    led_settle_t *items;        //  owned by the batch
    size_t count;
    int rc;                     //  0: items decided (PENDING ones get no ack); -1: none
} led_batch_t;

led_batch_t *led_batch_new (size_t capacity);
void led_batch_destroy (led_batch_t **self_p);

typedef struct {
    //  input
    uint64_t corr;
    char *role, *name, *api_key, *reply_to;
    bool open;
    //  output
    led_auth_status_t status;
    int64_t account_id;
    const char *message;        //  static text
} led_auth_job_t;

void led_auth_job_destroy (led_auth_job_t **self_p);

typedef struct {
    const char *conninfo;       //  borrowed until the actor has started
    const char *schema;
    const char *sql_dir;
    p2c_rates_t rates;
} led_worker_args_t;

//  The actor function: zactor_new (led_worker_actor, &args). The actor
//  copies args before it signals that it has started.
void led_worker_actor (zsock_t *pipe, void *args);

void led_worker_test (bool verbose);

#endif
