/*  The ledger's schema migrations: the numbered files NNN_name.sql of the
    store's sql_dir, applied in order, each once and in its own transaction,
    recorded in schema_migrations, under an advisory lock so that ledgers
    starting together apply each once. */
#ifndef LED_MIGRATE_H_INCLUDED
#define LED_MIGRATE_H_INCLUDED

#include "led_store.h"

//  Serialises migrations (and schema creation) of every ledger that starts
//  at the same time
#define LED_MIGRATE_LOCK_KEY "7321000101"

//  Applies the migrations not yet recorded in schema_migrations, in order,
//  each in its own transaction. Returns how many it applied, -1 on failure
//  (also when the directory holds none). The store must be connected.
int led_migrate_run (led_store_t *store);

//  True for a migration file's name: three digits, '_', [a-z0-9_]+, ".sql"
bool led_migrate_valid_name (const char *name);

//  Self-test; needs P2C2R_TEST_DB (fails loudly without it).
void led_migrate_test (bool verbose);

#endif
