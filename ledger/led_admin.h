/*  The operators' commands (AdminRequest from p2c2r-ctl): one table names
    each command, its handler, the arguments it takes with their checks,
    and a line of help. led_admin_run finds the command, opens the
    transaction, checks the arguments in the table's order and runs the
    handler (led_accounts, led_payouts, led_rates); a refusal rolls back. */
#ifndef LED_ADMIN_H_INCLUDED
#define LED_ADMIN_H_INCLUDED

#include <jansson.h>

#include "led_store.h"

//  What an operator's command came to
typedef enum {
    LED_ADMIN_OK = 0,
    LED_ADMIN_REFUSED,          //  bad request or against the rules (code says which)
    LED_ADMIN_UNAVAILABLE       //  the database failed; nothing was written
} led_admin_status_t;

//  One command's run, as its handler sees it
typedef struct _led_admin_t led_admin_t;

//  A handler: true when done (the result filled in), false after
//  led_admin_refuse or led_admin_failed
typedef bool (led_admin_fn) (led_admin_t *self);

//  Runs an operator's command (AdminRequest: command, args_json) in one
//  transaction, with its row of the admin log (led_adminlog) under who,
//  the name of the operator key the broker authenticated. On success *result_p is a JSON object text (the caller
//  frees it); else *code_p (static) and *message_p (caller frees) say why.
//  The gamers whose balance or flag changed are in led_store_balances.
led_admin_status_t led_admin_run (led_store_t *store, const char *who, const char *command,
                                  const char *args_json, char **result_p,
                                  const char **code_p, char **message_p);

//  A command's line of help, NULL for an unknown command
const char *led_admin_help (const char *command);

//  For the handlers: the store, inside the command's transaction
led_store_t *led_admin_store (led_admin_t *self);

//  An argument the table declared, already checked: a whole number in its
//  bounds; a text (NULL when absent)
int64_t led_admin_int (led_admin_t *self, const char *key);
const char *led_admin_str (led_admin_t *self, const char *key);

//  The answer's JSON object, to fill
json_t *led_admin_result (led_admin_t *self);
void led_admin_set_int (led_admin_t *self, const char *key, int64_t value);

//  Refuses the command with a code ("bad_request", "not_found", ...) and a
//  message for the operator; returns false, for the handler to return.
bool led_admin_refuse (led_admin_t *self, const char *code, const char *message);

//  After a failed statement: refuses with the database's reason when it
//  still answers, else "unavailable". Returns false.
bool led_admin_failed (led_admin_t *self);

//  Self-test; needs P2C2R_TEST_DB (fails loudly without it).
void led_admin_test (bool verbose);

#endif
