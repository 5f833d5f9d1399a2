/*  The rates settlement is computed at (table rates, append-only): seeded
    from the ledger's settings when empty, changed by an operator's
    rates-set (a handler of led_admin's table) from now or a later time,
    never for tasks already settled. */
#ifndef LED_RATES_H_INCLUDED
#define LED_RATES_H_INCLUDED

#include "led_admin.h"
#include "led_store.h"

//  Highest rate an operator may set: $1000 per hour
#define LED_MAX_RATE_PICO 1000000000000000LL

//  When the rates table is empty, seeds it with the rates given to
//  led_store_new; two ledgers starting together seed once. False (rolled
//  back) when the database failed.
bool led_rates_seed (led_store_t *store);

//  rates-set {gamer_pico_per_hour, peer_pico_per_hour, fee_bp,
//  effective_at}: new rates from effective_at (default: now), never in the
//  past
led_admin_fn led_rates_set;

//  Self-test; needs P2C2R_TEST_DB (fails loudly without it).
void led_rates_test (bool verbose);

#endif
