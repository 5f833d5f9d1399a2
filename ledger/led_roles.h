/*  The database roles of 008_roles.sql, tested: the ledger's role
    (DBNAME_ledger) writes what settlement and the operators' commands
    need and nothing else; the reader (DBNAME_reader) only reads. No code
    of the ledger depends on them beyond led_store_set_owner. */
#ifndef LED_ROLES_H_INCLUDED
#define LED_ROLES_H_INCLUDED

#include <stdbool.h>

//  Self-test; needs P2C2R_TEST_DB as a user that may create roles (the
//  cluster's owner, as tests/run.sh and the e2e helper have it).
void led_roles_test (bool verbose);

#endif
