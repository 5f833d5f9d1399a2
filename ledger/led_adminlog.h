/*  The admin log (ledger/sql/007_admin_log.sql): one row per operator
    command the ledger applied, written in the command's own transaction by
    led_admin_run. A row holds who (the operator key's name), the command,
    its arguments, the state of what it changed before and after, its
    result without API keys, and the journal transactions it made. The
    database numbers and hash-chains the rows and refuses to change them. */
#ifndef LED_ADMINLOG_H_INCLUDED
#define LED_ADMINLOG_H_INCLUDED

#include <jansson.h>

#include "led_store.h"

//  What a command changes, shown before and after it
typedef enum {
    LED_ADMINLOG_ACCOUNT,       //  the account whose id is given
    LED_ADMINLOG_RATES,         //  the newest rates row (id unused)
    LED_ADMINLOG_PAYOUT         //  the payout whose id is given
} led_adminlog_subject_t;

//  The state of a subject as a JSON object (no key hashes), or JSON null
//  when there is none; NULL when the query failed. The caller decrefs.
json_t *led_adminlog_snapshot (led_store_t *store, led_adminlog_subject_t subject, int64_t id);

//  The newest journal transaction id (0 when none), taken before a command
//  runs: what the command makes comes after it. -1 when the query failed.
int64_t led_adminlog_mark (led_store_t *store);

//  Writes the command's row, inside its transaction: args and result are
//  copied without any "api_key"; the journal transactions after mark that
//  this transaction made are recorded. False when the insert failed.
bool led_adminlog_write (led_store_t *store, const char *who, const char *command,
                         json_t *args, json_t *before, json_t *after, json_t *result,
                         int64_t mark);

//  Self-test; needs P2C2R_TEST_DB (fails loudly without it).
void led_adminlog_test (bool verbose);

#endif
