/*  The operators' commands (see led_admin.h): the table, the argument
    checks it declares, and the transaction every command runs in, which
    also writes the command's row of the admin log (ledger/sql/007). */
#define P2C_LOG_COMPONENT "store"
#include "led_admin.h"
#include "led_adminlog.h"
#include "led_store_int.h"
#include "led_accounts.h"
#include "led_payouts.h"
#include "led_rates.h"
#include "led_fixture.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <czmq.h>

//  An argument's check: a whole number in [min, max], or an optional text
//  of at most max bytes
typedef enum { S_INT, S_STR } s_arg_type_t;

typedef struct {
    const char *key;            //  NULL ends a command's list
    s_arg_type_t type;
    int64_t min, max;           //  bounds of a number; max: bytes of a text
} s_arg_t;

#define S_MAX_ARGS 5

//  What a command changes, shown in its admin-log row before and after
typedef enum {
    S_ACCOUNT,                  //  the account of args.account_id
    S_NEW_ACCOUNT,              //  the account of result.id (none before)
    S_RATES,                    //  the newest rates row
    S_PAYOUT                    //  the payout of args.payout_id
} s_subject_t;

typedef struct {
    const char *name;           //  AdminRequest.command
    led_admin_fn *run;
    s_arg_t args [S_MAX_ARGS];  //  checked in this order, before run
    const char *help;
    s_subject_t subject;
} s_command_t;

#define S_ID(key)   { key, S_INT, 1, INT64_MAX }

static const s_command_t s_commands [] = {
    { "account-create", led_accounts_create,
      { { "kind", S_STR, 0, 16 }, { "name", S_STR, 0, 1000 }, { "owner", S_STR, 0, 1000 } },
      "kind (gamer, peer or admin), name, owner (optional): a new account and its API key,"
      " shown once",
      S_NEW_ACCOUNT },
    { "account-link", led_accounts_link,
      { S_ID ("account_id"), { "owner", S_STR, 0, 1000 } },
      "account_id, owner (absent or empty: none): the holder of a gamer and a peer account,"
      " so that the scheduler never pairs them (from their next registration on)",
      S_ACCOUNT },
    { "account-disable", led_accounts_disable, { S_ID ("account_id") },
      "account_id: refuse its registrations (a gamer's tasks too)",
      S_ACCOUNT },
    { "account-enable", led_accounts_enable, { S_ID ("account_id") },
      "account_id: undo account-disable",
      S_ACCOUNT },
    { "rotate-key", led_accounts_rotate_key, { S_ID ("account_id") },
      "account_id: a new API key, shown once; the old one stops working",
      S_ACCOUNT },
    { "credit", led_accounts_credit,
      { S_ID ("account_id"), { "amount_pico", S_INT, 1, LED_MAX_CREDIT_PICO },
        { "memo", S_STR, 0, 500 } },
      "account_id, amount_pico, memo: top up a gamer from the external account",
      S_ACCOUNT },
    { "rates-set", led_rates_set,
      { { "gamer_pico_per_hour", S_INT, 0, LED_MAX_RATE_PICO },
        { "peer_pico_per_hour", S_INT, 0, LED_MAX_RATE_PICO },
        { "fee_bp", S_INT, 0, 10000 }, { "effective_at", S_STR, 0, 64 },
        { "subsidy_pico_per_day", S_STR, 0, 20 } },
      "gamer_pico_per_hour, peer_pico_per_hour, fee_bp, effective_at (default now),"
      " subsidy_pico_per_day (digits; default no limit): new rates, never for the past",
      S_RATES },
    { "payout-request", led_payouts_request, { S_ID ("account_id") },
      "account_id: move a peer's whole balance, at least the threshold, to payouts pending",
      S_ACCOUNT },
    { "payout-mark-paid", led_payouts_mark_paid,
      { S_ID ("payout_id"), { "reference", S_STR, 0, 200 } },
      "payout_id, reference: the money left; close the payout",
      S_PAYOUT },
};

#define S_COMMANDS (sizeof s_commands / sizeof s_commands [0])

struct _led_admin_t {
    led_store_t *store;
    const char *who;            //  the operator key's name, for the admin log
    const s_command_t *command;
    json_t *args;               //  the request's arguments
    json_t *result;             //  what we answer
    const char *code;           //  set on refusal
    char *message;
};

static const s_command_t *
s_find (const char *name)
{
    for (size_t i = 0; name && i < S_COMMANDS; i++)
        if (!strcmp (s_commands [i].name, name))
            return &s_commands [i];
    return NULL;
}

const char *
led_admin_help (const char *command)
{
    const s_command_t *c = s_find (command);
    return c ? c->help : NULL;
}

led_store_t *
led_admin_store (led_admin_t *self)
{
    return self->store;
}

json_t *
led_admin_result (led_admin_t *self)
{
    return self->result;
}

void
led_admin_set_int (led_admin_t *self, const char *key, int64_t value)
{
    json_object_set_new (self->result, key, json_integer ((json_int_t) value));
}

bool
led_admin_refuse (led_admin_t *self, const char *code, const char *message)
{
    self->code = code;
    free (self->message);
    self->message = p2c_strdup (message);
    return false;
}

bool
led_admin_failed (led_admin_t *self)
{
    if (self->store->conn && PQstatus (self->store->conn) == CONNECTION_OK)
        return led_admin_refuse (self, "refused", self->store->error);
    return led_admin_refuse (self, "unavailable", "the ledger database is unavailable");
}

//  The table's entry for key; asserts that the command declares it
static const s_arg_t *
s_declared (led_admin_t *self, const char *key, s_arg_type_t type)
{
    for (int i = 0; i < S_MAX_ARGS && self->command->args [i].key; i++)
        if (!strcmp (self->command->args [i].key, key)) {
            assert (self->command->args [i].type == type);
            return &self->command->args [i];
        }
    assert (!"argument declared in the command table");
    return NULL;
}

int64_t
led_admin_int (led_admin_t *self, const char *key)
{
    s_declared (self, key, S_INT);
    return (int64_t) json_integer_value (json_object_get (self->args, key));
}

const char *
led_admin_str (led_admin_t *self, const char *key)
{
    s_declared (self, key, S_STR);
    //  NULL when absent or null (json_string_value of a non-string)
    return json_string_value (json_object_get (self->args, key));
}

//  Checks one argument against its entry; false after refusing
static bool
s_check_arg (led_admin_t *self, const s_arg_t *arg)
{
    json_t *v = json_object_get (self->args, arg->key);
    char text [200];
    if (arg->type == S_INT) {
        if (json_is_integer (v) && json_integer_value (v) >= arg->min
            && json_integer_value (v) <= arg->max)
            return true;
        snprintf (text, sizeof text, "%s must be a whole number from %lld to %lld", arg->key,
                  (long long) arg->min, (long long) arg->max);
        return led_admin_refuse (self, "bad_request", text);
    }
    if (!v || json_is_null (v)
        || (json_is_string (v) && strlen (json_string_value (v)) <= (size_t) arg->max))
        return true;
    snprintf (text, sizeof text, "%s must be text of at most %zu bytes", arg->key,
              (size_t) arg->max);
    return led_admin_refuse (self, "bad_request", text);
}

//  The admin log's subject of a command, and its id (the account made is
//  known only after the handler: 0 before)
static led_adminlog_subject_t
s_subject (led_admin_t *self, int64_t *id_p)
{
    switch (self->command->subject) {
        case S_ACCOUNT:
            *id_p = led_admin_int (self, "account_id");
            return LED_ADMINLOG_ACCOUNT;
        case S_NEW_ACCOUNT:
            *id_p = (int64_t) json_integer_value (json_object_get (self->result, "id"));
            return LED_ADMINLOG_ACCOUNT;
        case S_PAYOUT:
            *id_p = led_admin_int (self, "payout_id");
            return LED_ADMINLOG_PAYOUT;
        case S_RATES:
            break;
    }
    *id_p = 0;
    return LED_ADMINLOG_RATES;
}

//  The arguments' checks, then the handler, between the snapshots of what
//  it changes; then the command's row of the admin log
static bool
s_run (led_admin_t *self)
{
    for (int i = 0; i < S_MAX_ARGS && self->command->args [i].key; i++)
        if (!s_check_arg (self, &self->command->args [i]))
            return false;
    int64_t id;
    led_adminlog_subject_t subject = s_subject (self, &id);
    int64_t mark = led_adminlog_mark (self->store);
    json_t *before = mark < 0 ? NULL
                   : self->command->subject == S_NEW_ACCOUNT ? json_null ()
                   : led_adminlog_snapshot (self->store, subject, id);
    if (!before)
        return led_admin_failed (self);
    if (!self->command->run (self)) {
        json_decref (before);
        return false;
    }
    subject = s_subject (self, &id);
    json_t *after = led_adminlog_snapshot (self->store, subject, id);
    bool ok = after && led_adminlog_write (self->store, self->who, self->command->name,
                                           self->args, before, after, self->result, mark);
    json_decref (before);
    json_decref (after);
    return ok || led_admin_failed (self);
}

led_admin_status_t
led_admin_run (led_store_t *store, const char *who, const char *command, const char *args_json,
               char **result_p, const char **code_p, char **message_p)
{
    *result_p = NULL;
    *code_p = NULL;
    *message_p = NULL;
    led_store_bal_reset (store);
    json_error_t jerr;
    json_t *args = args_json && *args_json ? json_loads (args_json, 0, &jerr) : json_object ();
    const s_command_t *found = s_find (command);
    if (!json_is_object (args) || !found) {
        *code_p = "bad_request";
        *message_p = p2c_strdup (json_is_object (args) ? "unknown command"
                                                   : "args_json must be a JSON object");
        json_decref (args);
        return LED_ADMIN_REFUSED;
    }
    if (!store->conn || !led_store_command (store, "admin begin", "BEGIN", 0, NULL)) {
        json_decref (args);
        led_store_disconnect (store);
        *code_p = "unavailable";
        *message_p = p2c_strdup ("the ledger database is unavailable");
        return LED_ADMIN_UNAVAILABLE;
    }
    led_admin_t self = { store, who, found, args, json_object (), NULL, NULL };
    bool ok = s_run (&self);
    if (ok && !led_store_command (store, "admin commit", "COMMIT", 0, NULL))
        ok = led_admin_failed (&self);
    led_admin_status_t rc = LED_ADMIN_OK;
    if (ok)
        *result_p = json_dumps (self.result, JSON_COMPACT | JSON_PRESERVE_ORDER);
    else {
        led_store_abort (store);
        led_store_bal_reset (store);
        rc = self.code && !strcmp (self.code, "unavailable") ? LED_ADMIN_UNAVAILABLE
                                                             : LED_ADMIN_REFUSED;
        *code_p = self.code ? self.code : "refused";
        *message_p = self.message ? self.message : strdup ("refused");
        self.message = NULL;
    }
    json_decref (self.result);
    json_decref (args);
    free (self.message);
    log_info ("admin command=%s who=%s ok=%d code=%s", command, who, ok,
              ok ? "" : *code_p);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self-test: the table, and what led_admin_run answers before any
//  handler's own rules (led_accounts, led_payouts and led_rates test
//  those). Needs P2C2R_TEST_DB (led_fixture).

//  The arguments of command c with every number at its least value, but
//  arg, made one past its bound (a text one byte too long)
static char *
s_args_but (const s_command_t *c, int arg)
{
    json_t *o = json_object ();
    for (int i = 0; i < S_MAX_ARGS && c->args [i].key; i++) {
        const s_arg_t *a = &c->args [i];
        if (i == arg && a->type == S_INT)
            json_object_set_new (o, a->key, a->max < INT64_MAX
                                 ? json_integer ((json_int_t) a->max + 1)
                                 : json_integer ((json_int_t) a->min - 1));
        else
        if (i == arg) {
            char *text = (char *) p2c_malloc ((size_t) a->max + 2);
            memset (text, 'x', (size_t) a->max + 1);
            text [a->max + 1] = 0;
            json_object_set_new (o, a->key, json_string (text));
            free (text);
        }
        else
        if (a->type == S_INT)
            json_object_set_new (o, a->key, json_integer ((json_int_t) a->min));
    }
    char *text = json_dumps (o, JSON_COMPACT);
    json_decref (o);
    return text;
}

//  One scenario, longer than a function should be: each step uses the
//  accounts, keys and balances the steps before it made, and reads best
//  in that order.
void
led_admin_test (bool verbose)
{
    //  The table: every command has a handler and help, names are unique
    bool table_ok = true;
    for (size_t i = 0; i < S_COMMANDS; i++) {
        if (!s_commands [i].run || !s_commands [i].help || !*s_commands [i].help
            || s_find (s_commands [i].name) != &s_commands [i])
            table_ok = false;
        for (int k = 0; k < S_MAX_ARGS && s_commands [i].args [k].key; k++)
            if (s_commands [i].args [k].min > s_commands [i].args [k].max)
                table_ok = false;
    }
    P2C_CHECK (table_ok && S_COMMANDS == 9);
    P2C_CHECK (led_admin_help ("credit") && strstr (led_admin_help ("credit"), "amount_pico"));
    P2C_CHECK (led_admin_help ("format-disk") == NULL && led_admin_help (NULL) == NULL);

    led_fixture_t *fx = led_fixture_new ("led_admin_test", verbose);
    if (!fx)
        return;
    //  A database that is not there: a known command is unavailable, an
    //  unknown one still a bad request
    p2c_rates_t rates = P2C_RATES_DEFAULT;
    led_store_t *down = led_store_new ("host=/nonexistent-p2c2r port=1 dbname=x connect_timeout=2",
                                       led_fixture_schema (fx), led_store_test_sql_dir (), &rates);
    P2C_CHECK (led_fixture_admin (fx, down, "credit", "{}") == LED_ADMIN_UNAVAILABLE
               && !strcmp (led_fixture_code (fx), "unavailable"));
    P2C_CHECK (led_fixture_admin (fx, down, "format-disk", "{}") == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "bad_request"));
    led_store_destroy (&down);

    led_store_t *store = led_fixture_store (fx);
    if (!store) {
        led_fixture_destroy (&fx);
        return;
    }
    //  Requests that are not commands
    P2C_CHECK (led_fixture_admin (fx, store, "no-such-command", "{}") == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_message (fx), "unknown command"));
    P2C_CHECK (led_fixture_admin (fx, store, NULL, "{}") == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "bad_request"));
    P2C_CHECK (led_fixture_admin (fx, store, "credit", "[1, 2]") == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_message (fx), "args_json must be a JSON object"));
    P2C_CHECK (led_fixture_admin (fx, store, "credit", "not json") == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_code (fx), "bad_request"));
    //  Every argument the table declares is checked, in its order, with a
    //  message that names it and its bounds; nothing is written
    bool args_ok = true;
    for (size_t i = 0; i < S_COMMANDS; i++)
        for (int k = 0; k < S_MAX_ARGS && s_commands [i].args [k].key; k++) {
            const s_arg_t *a = &s_commands [i].args [k];
            char *args = s_args_but (&s_commands [i], k);
            char want [200];
            if (a->type == S_INT)
                snprintf (want, sizeof want, "%s must be a whole number from %lld to %lld",
                          a->key, (long long) a->min, (long long) a->max);
            else
                snprintf (want, sizeof want, "%s must be text of at most %zu bytes", a->key,
                          (size_t) a->max);
            if (led_fixture_admin (fx, store, s_commands [i].name, args) != LED_ADMIN_REFUSED
                || strcmp (led_fixture_code (fx), "bad_request")
                || strcmp (led_fixture_message (fx), want)) {
                fprintf (stderr, "led_admin_test: %s %s: %s\n", s_commands [i].name, args,
                         led_fixture_message (fx));
                args_ok = false;
            }
            free (args);
        }
    P2C_CHECK (args_ok);
    //  A number given as text or with a fraction is no whole number
    P2C_CHECK (led_fixture_admin (fx, store, "account-disable", "{\"account_id\":\"1\"}")
               == LED_ADMIN_REFUSED && !strcmp (led_fixture_code (fx), "bad_request"));
    P2C_CHECK (led_fixture_admin (fx, store, "account-disable", "{\"account_id\":1.5}")
               == LED_ADMIN_REFUSED && !strcmp (led_fixture_code (fx), "bad_request"));
    P2C_CHECK (led_fixture_admin (fx, store, "credit", "{\"account_id\":1,\"amount_pico\":1,"
                                  "\"memo\":7}") == LED_ADMIN_REFUSED
               && !strcmp (led_fixture_message (fx), "memo must be text of at most 500 bytes"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM journal_tx", NULL, "0"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM rates", NULL, "1"));
    //  A command that passes: one transaction, committed, the result as JSON
    P2C_CHECK (led_fixture_admin (fx, store, "account-create",
                                  "{\"kind\":\"admin\",\"name\":\"ops\"}") == LED_ADMIN_OK
               && strstr (led_fixture_result (fx), "\"kind\":\"admin\""));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM accounts WHERE kind = 'admin'", NULL,
                               "1"));
    //  After a refusal the store goes on: the transaction was rolled back
    P2C_CHECK (led_fixture_admin (fx, store, "account-disable", "{\"account_id\":987654321}")
               == LED_ADMIN_REFUSED && !strcmp (led_fixture_code (fx), "not_found"));
    P2C_CHECK (led_fixture_admin (fx, store, "account-create",
                                  "{\"kind\":\"admin\",\"name\":\"ops-2\"}") == LED_ADMIN_OK);
    led_store_destroy (&store);
    led_fixture_destroy (&fx);
}
