/*  The admin log (see led_adminlog.h): what a row holds is chosen here;
    numbering, time and the hash chain are the database's (007_admin_log.sql),
    so no ledger can write a row out of the chain. */
#include "led_adminlog.h"
#include "led_store_int.h"
#include "led_admin.h"
#include "led_fixture.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <czmq.h>

static const char *s_snapshot_sql [] = {
    [LED_ADMINLOG_ACCOUNT] =
        ("SELECT json_build_object ('id', id, 'kind', kind, 'name', name, 'disabled', disabled,"
         " 'balance_pico', balance_pico, 'key_created_at', key_created_at, 'owner', owner)::TEXT"
         "  FROM accounts WHERE id = $1::bigint"),
    [LED_ADMINLOG_RATES] =
        ("SELECT row_to_json (r)::TEXT FROM (SELECT * FROM rates ORDER BY id DESC LIMIT 1) r"
         " WHERE $1::bigint IS NOT NULL"),
    [LED_ADMINLOG_PAYOUT] =
        "SELECT row_to_json (p)::TEXT FROM payouts p WHERE id = $1::bigint",
};

json_t *
led_adminlog_snapshot (led_store_t *store, led_adminlog_subject_t subject, int64_t id)
{
    assert (subject <= LED_ADMINLOG_PAYOUT);
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) id);
    const char *params [] = { num };
    PGresult *res = led_store_exec (store, "admin log snapshot", s_snapshot_sql [subject], 1,
                                    params, PGRES_TUPLES_OK);
    if (!res)
        return NULL;
    json_t *value = NULL;
    if (PQntuples (res) == 0)
        value = json_null ();
    else {
        json_error_t err;
        value = json_loads (PQgetvalue (res, 0, 0), 0, &err);
    }
    PQclear (res);
    return value;
}

int64_t
led_adminlog_mark (led_store_t *store)
{
    PGresult *res = led_store_exec (store, "admin log mark",
                                    "SELECT COALESCE (MAX (id), 0) FROM journal_tx", 0, NULL,
                                    PGRES_TUPLES_OK);
    if (!res)
        return -1;
    int64_t mark = led_store_int64 (res, 0, 0);
    PQclear (res);
    return mark;
}

//  A copy of an object without its API key (NULL stays NULL); the text of
//  a JSON value, NULL for none or JSON null (SQL NULL)
static char *
s_text_without_key (json_t *value)
{
    if (!value || json_is_null (value))
        return NULL;
    json_t *copy = json_deep_copy (value);
    if (json_is_object (copy))
        json_object_del (copy, "api_key");
    char *text = json_dumps (copy, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref (copy);
    return text;
}

bool
led_adminlog_write (led_store_t *store, const char *who, const char *command, json_t *args,
                    json_t *before, json_t *after, json_t *result, int64_t mark)
{
    char *args_text = s_text_without_key (args);
    char *before_text = s_text_without_key (before);
    char *after_text = s_text_without_key (after);
    char *result_text = s_text_without_key (result);
    char num [32];
    snprintf (num, sizeof num, "%lld", (long long) mark);
    const char *params [] = { who && *who ? who : "unknown", command,
                              args_text ? args_text : "{}", before_text, after_text,
                              result_text, num };
    //  The journal transactions this transaction made: after the mark, and
    //  ours (a settlement batch of another thread may commit in between)
    bool ok = led_store_command (store, "admin log write",
        "INSERT INTO admin_log (who, command, args, before, after, result, tx_ids)"
        " VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb,"
        "  ARRAY (SELECT id FROM journal_tx WHERE id > $7::bigint"
        "          AND xmin = pg_current_xact_id ()::xid ORDER BY id))", 7, params);
    free (args_text);
    free (before_text);
    free (after_text);
    if (result_text)
        explicit_bzero (result_text, strlen (result_text));
    free (result_text);
    return ok;
}

//  --------------------------------------------------------------------------
//  Self-test: commands run through led_admin_run leave their rows (who,
//  before and after, journal transactions, no API key), refusals none; the
//  chain holds; the table refuses every change. Needs P2C2R_TEST_DB.

void
led_adminlog_test (bool verbose)
{
    led_fixture_t *fx = led_fixture_new ("led_adminlog_test", verbose);
    if (!fx)
        return;
    led_store_t *store = led_fixture_store (fx);
    if (!store) {
        led_fixture_destroy (&fx);
        return;
    }
    //  The migration's first row, which starts the chain
    P2C_CHECK (led_fixture_is (fx, "SELECT seq || ' ' || who || ' ' || command FROM admin_log",
                               NULL, "1 migration admin-log-start"));
    P2C_CHECK (led_fixture_admin (fx, store, "account-create",
                                  "{\"kind\":\"gamer\",\"name\":\"g1\"}") == LED_ADMIN_OK);
    json_error_t err;
    json_t *made = json_loads (led_fixture_result (fx), 0, &err);
    const char *key = json_string_value (json_object_get (made, "api_key"));
    P2C_CHECK (key && strlen (key) > 20);
    char id [32];
    snprintf (id, sizeof id, "%lld", (long long) json_integer_value (json_object_get (made, "id")));
    P2C_CHECK (led_fixture_is (fx, "SELECT who || ' ' || command || ' ' || args::text || ' '"
                               " || (before IS NULL) || ' ' || (result ? 'api_key')"
                               " FROM admin_log WHERE seq = 2", NULL,
                               "test-operator account-create {\"kind\": \"gamer\", \"name\":"
                               " \"g1\"} true false"));
    P2C_CHECK (led_fixture_is (fx, "SELECT after->>'id' FROM admin_log WHERE seq = 2", NULL, id));
    char *args = p2c_sprintf ("{\"account_id\":%s,\"amount_pico\":5000,\"memo\":\"top\"}", id);
    P2C_CHECK (led_fixture_admin (fx, store, "credit", args) == LED_ADMIN_OK);
    zstr_free (&args);
    //  before and after of the account; the credit's journal transaction
    P2C_CHECK (led_fixture_is (fx, "SELECT ((after->>'balance_pico')::bigint"
                               " - (before->>'balance_pico')::bigint)::text FROM admin_log"
                               " WHERE seq = 3", NULL, "5000"));
    P2C_CHECK (led_fixture_is (fx, "SELECT (SELECT tx_ids FROM admin_log WHERE seq = 3)"
                               " = ARRAY (SELECT id FROM journal_tx WHERE memo = 'top')", NULL,
                               "t"));
    //  A refusal writes nothing, its row neither
    P2C_CHECK (led_fixture_admin (fx, store, "account-disable", "{\"account_id\":987654}")
               == LED_ADMIN_REFUSED);
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM admin_log", NULL, "3"));
    //  A new key: logged as the time it was made, never the key
    args = p2c_sprintf ("{\"account_id\":%s}", id);
    P2C_CHECK (led_fixture_admin (fx, store, "rotate-key", args) == LED_ADMIN_OK);
    zstr_free (&args);
    json_t *rotated = json_loads (led_fixture_result (fx), 0, &err);
    const char *key2 = json_string_value (json_object_get (rotated, "api_key"));
    P2C_CHECK (key2 && strcmp (key, key2));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM admin_log WHERE position ($1 IN"
                               " admin_log::text) > 0", key, "0"));
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM admin_log WHERE position ($1 IN"
                               " admin_log::text) > 0", key2, "0"));
    P2C_CHECK (led_fixture_is (fx, "SELECT (before->>'key_created_at')"
                               " IS DISTINCT FROM (after->>'key_created_at') FROM admin_log"
                               " WHERE command = 'rotate-key'", NULL, "t"));
    json_decref (made);
    json_decref (rotated);
    //  The chain: each row's hash covers it and the row before
    P2C_CHECK (led_fixture_is (fx, "SELECT count(*) FROM (SELECT l.*, lag (hash) OVER"
                               " (ORDER BY seq) AS prior FROM admin_log l) c"
                               " WHERE hash <> admin_log_digest (ROW (seq, at, who, command,"
                               " args, before, after, result, tx_ids, prev_hash, hash)::admin_log)"
                               " OR prev_hash <> COALESCE (prior, repeat ('0', 64))", NULL, "0"));
    //  Append-only, whatever the statement
    P2C_CHECK (led_fixture_refused (fx, "UPDATE admin_log SET who = 'someone-else'",
                                    "append-only"));
    P2C_CHECK (led_fixture_refused (fx, "DELETE FROM admin_log WHERE seq = 2", "append-only"));
    P2C_CHECK (led_fixture_refused (fx, "TRUNCATE admin_log", "append-only"));
    //  A row cannot be slipped in out of order: the database numbers it
    P2C_CHECK (led_fixture_refused (fx, "WITH i AS (INSERT INTO admin_log (seq, who, command,"
                                    " args, prev_hash, hash) VALUES (2, 'x', 'y', '{}',"
                                    " repeat ('0', 64), repeat ('0', 64)) RETURNING seq)"
                                    " SELECT 1 / (SELECT (seq = 5)::int FROM i)", NULL));
    led_store_destroy (&store);
    led_fixture_destroy (&fx);
}
