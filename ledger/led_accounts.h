/*  The operators' account commands (handlers of led_admin's table) and the
    balances the scheduler asks for: create an account with its API key,
    disable or enable it, rotate its key, credit a gamer. */
#ifndef LED_ACCOUNTS_H_INCLUDED
#define LED_ACCOUNTS_H_INCLUDED

#include "led_admin.h"
#include "led_store.h"

//  Largest single top-up: one million dollars
#define LED_MAX_CREDIT_PICO (1000000LL * P2C_PICO_PER_USD)

//  account-create {kind, name, owner}: a gamer, peer or admin account with a
//  new API key (answered once; only its hash is stored), and its holder when
//  owner is given; a new gamer gets the starting credit
led_admin_fn led_accounts_create;

//  account-link {account_id, owner}: names the account's holder (absent or
//  empty: none). Accounts of one owner are one party: the scheduler never
//  runs a gamer's tasks, nor checks, on a peer of the gamer's owner
led_admin_fn led_accounts_link;

//  account-disable / account-enable {account_id}; for a gamer the
//  scheduler hears of it at once
led_admin_fn led_accounts_disable;
led_admin_fn led_accounts_enable;

//  rotate-key {account_id}: a new API key, the old one stops working
led_admin_fn led_accounts_rotate_key;

//  credit {account_id, amount_pico, memo}: from the external account to a
//  gamer
led_admin_fn led_accounts_credit;

//  Balances of the given accounts (gamers only), for a BalanceQuery, into
//  led_store_balances. 0 or -1.
int led_accounts_query_balances (led_store_t *store, const int64_t *ids, size_t count);

//  Self-test; needs P2C2R_TEST_DB (fails loudly without it).
void led_accounts_test (bool verbose);

#endif
