/*  For the ledger's self-tests: a schema of its own in the PostgreSQL of
    P2C2R_TEST_DB (the test runner starts a private cluster with
    deploy/local/pg.sh), dropped at the end so that reruns and parallel
    runs are clean; stores connected to it, and the test's own connection
    to look at what they wrote. */
#ifndef LED_FIXTURE_H_INCLUDED
#define LED_FIXTURE_H_INCLUDED

#include <libpq-fe.h>

#include "led_admin.h"
#include "led_settle.h"
#include "led_store.h"

typedef struct _led_fixture_t led_fixture_t;

//  A fresh schema for the test named who; NULL (and a failed check, with a
//  word on stderr) without P2C2R_TEST_DB or when it does not answer.
led_fixture_t *led_fixture_new (const char *who, bool verbose);

//  Drops the schema and everything in it.
void led_fixture_destroy (led_fixture_t **self_p);

//  The test's own connection (search_path: the schema)
PGconn *led_fixture_conn (led_fixture_t *self);
const char *led_fixture_conninfo (led_fixture_t *self);
const char *led_fixture_schema (led_fixture_t *self);

//  A new store on the schema, connected (migrations applied), at the
//  default rates; NULL and a failed check when it does not connect. The
//  caller destroys it.
led_store_t *led_fixture_store (led_fixture_t *self);

//  One value of a statement with at most one parameter, as text ("" on
//  error or NULL); the caller frees it
char *led_fixture_scalar (led_fixture_t *self, const char *sql, const char *param);

//  True when that value is expect (else says what it was on stderr)
bool led_fixture_is (led_fixture_t *self, const char *sql, const char *param,
                     const char *expect);

//  True when the statement fails with a message that holds text, or (text
//  NULL) when it succeeds; nothing it wrote stays (rolled back)
bool led_fixture_refused (led_fixture_t *self, const char *sql, const char *text);

//  An account of kind and name made directly in the table; its id (0 and
//  a failed check when it could not be made)
int64_t led_fixture_account (led_fixture_t *self, const char *kind, const char *name);

//  A settlement item (strings copied; led_settle_clear frees them)
void led_fixture_fill (led_settle_t *it, const char *task_id, const char *type, int64_t gamer,
                       int64_t peer, uint64_t billed);

//  Runs an operator's command on store (led_admin_run); its answer stays
//  until the next call: the result's JSON text, the refusal's code and
//  message ("" when there is none)
led_admin_status_t led_fixture_admin (led_fixture_t *self, led_store_t *store,
                                      const char *command, const char *args_json);
const char *led_fixture_result (led_fixture_t *self);
const char *led_fixture_code (led_fixture_t *self);
const char *led_fixture_message (led_fixture_t *self);

//  Self-test of the fixture itself
void led_fixture_test (bool verbose);

#endif
