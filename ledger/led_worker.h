/*  The ledger's database thread: a czmq actor that owns the led_store and
    does every blocking PostgreSQL call, so that the server's event loop
    never waits on the database. Jobs travel over the actor's pipe as
    pointers ("SETTLE"/"AUTH"/"ADMIN"/"BALANCES"/"EARNINGS"/"MONEY" + job); the
    same pointer comes back ("SETTLED"/"AUTHED"/"ADMINED"/"BALANCED"/"EARNED"/
    "MONEYED" + job; EARNINGS takes a led_earnings_job_t, MONEY a led_money_t)
    with its
    outcome filled in, including the gamer balances to tell the scheduler. The caller owns
    the jobs throughout. While the database is down the worker reconnects
    with backoff and fails jobs at once. */
#ifndef LED_WORKER_H_INCLUDED
#define LED_WORKER_H_INCLUDED

#include <czmq.h>

#include "led_admin.h"
#include "led_auth.h"
#include "led_settle.h"
#include "led_store.h"

//  Gamer balances a job produced (owned by the job)
typedef struct {
    led_balance_t *items;
    size_t count;
} led_balances_t;

typedef struct {
    led_settle_t *items;        //  owned by the batch
    size_t count;
    int rc;                     //  0: items decided (PENDING ones get no ack); -1: none
    led_balances_t balances;    //  gamers whose balance the commit changed
} led_batch_t;

led_batch_t *led_batch_new (size_t capacity);
void led_batch_destroy (led_batch_t **self_p);

typedef struct {
    //  input
    uint64_t corr;
    char *role, *name, *key_hash, *reply_to;
    bool open;
    int64_t recheck_account;    //  a re-check: the account the key must still name
    //  output
    led_auth_status_t status;
    int64_t account_id;
    char owner [LED_AUTH_OWNER_MAX + 1];    //  the account's owner, "" none
    const char *message;        //  static text
    led_balances_t balances;    //  the gamer's balance, when ok
} led_auth_job_t;

void led_auth_job_destroy (led_auth_job_t **self_p);

//  An operator's command from p2c2r-ctl
typedef struct {
    //  input
    uint64_t corr;
    char *command, *args_json, *reply_to;
    char *who;                  //  the operator key's name, from the broker's stamp
    //  output
    led_admin_status_t status;
    const char *code;           //  static, when not ok
    char *message;              //  when not ok
    char *result_json;          //  when ok
    led_balances_t balances;    //  gamers the command changed
} led_admin_job_t;

void led_admin_job_destroy (led_admin_job_t **self_p);

//  The scheduler asks for balances it does not know
typedef struct {
    int64_t *ids;
    size_t count;
    led_balances_t balances;    //  output
} led_balq_job_t;

void led_balq_job_destroy (led_balq_job_t **self_p);

typedef struct {
    const char *conninfo;       //  borrowed until the actor has started
    const char *schema;
    const char *sql_dir;
    p2c_rates_t rates;
    led_policy_t policy;        //  all zero: LED_POLICY_DEFAULT
    const char *owner_conninfo; //  migrations' (the schema owner's); NULL or "": conninfo
} led_worker_args_t;

//  The actor function: zactor_new (led_worker_actor, &args). The actor
//  copies args before it signals that it has started.
void led_worker_actor (zsock_t *pipe, void *args);

//  A job message over an actor pipe, the same frames as zsock_send (pipe,
//  "sp", command, job) makes: [command][pointer]. 0, or -1 when the pipe is
//  gone. Blocks only when the pipe is full.
int led_pipe_send (zsock_t *pipe, const char *command, void *job);

//  Receives one such message without blocking: 1 and the command (cut to
//  size - 1 characters) and job (NULL when the message has no pointer,
//  like "$TERM"); 0 when none is waiting; -1 when the pipe is gone. The
//  pipe's ZMQ_FD signals only new arrivals, so a loop that sleeps in
//  poll(2) on it must call this until 0 before every sleep, and after every
//  send on the pipe.
int led_pipe_recv (zsock_t *pipe, char *command, size_t size, void **job_p);

void led_worker_test (bool verbose);

#endif
