/*  Peers' payouts (handlers of led_admin's table): a request moves a
    peer's whole payable balance, at least the policy's threshold, to the
    payouts pending account; marking it paid moves it on to the external
    account, once. */
#ifndef LED_PAYOUTS_H_INCLUDED
#define LED_PAYOUTS_H_INCLUDED

#include "led_admin.h"

//  payout-request {account_id}
led_admin_fn led_payouts_request;

//  payout-mark-paid {payout_id, reference}
led_admin_fn led_payouts_mark_paid;

//  Self-test; needs P2C2R_TEST_DB (fails loudly without it).
void led_payouts_test (bool verbose);

#endif
