/*  An account's own figures for its owner (a client's GetEarnings, asked
    through its gateway): balance, what it earned as a peer and spent as a
    gamer today and in all, payouts pending, the payout threshold and the
    rates in force, read in one statement (one snapshot, so the figures
    agree with each other). The job type travels to the database thread
    (led_worker, "EARNINGS"/"EARNED") and back to the server, which answers
    the gateway with an EarningsReply. */
#ifndef LED_EARNINGS_H_INCLUDED
#define LED_EARNINGS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "led_store.h"

typedef enum {
    LED_EARNINGS_OK = 0,
    LED_EARNINGS_NOT_FOUND,     //  no gamer or peer account of that id and role
    LED_EARNINGS_UNAVAILABLE    //  the database failed or is down
} led_earnings_status_t;

//  The figures, picodollars (see proto Earnings)
typedef struct {
    char role [8];              //  "peer" or "gamer": the account's kind
    int64_t balance;
    int64_t earned_today, earned_total;
    int64_t spent_today, spent_total;
    int64_t pending_payout;
    int64_t payout_threshold;
    p2c_rates_t rates;          //  in force at as_of (all zero when none)
    uint64_t tasks_today, tasks_total;
    char as_of [32];            //  UTC, RFC 3339
    int64_t subsidy_per_day;    //  the treasury's daily subsidy budget, -1: no limit
    int64_t subsidy_left_today; //  what is left of it today, -1: no limit
    bool subsidy_spent;         //  nothing left: peers paid from what gamers pay only
    int64_t peer_per_hour_in_force; //  what a peer earns per hour now
} led_earnings_t;

//  A peer's rate in force: the rates' peer rate, or when the day's subsidy
//  is spent at most the gamer's rate less the fee (the settlement's cut)
int64_t led_earnings_peer_rate (const p2c_rates_t *rates, bool subsidy_spent);

//  Reads the figures of account id, which must be of kind role ("peer" or
//  "gamer": a gateway's session can name only its own account, and the
//  kind is checked too so that a mix-up cannot show another's figures).
led_earnings_status_t led_earnings_read (led_store_t *store, int64_t id, const char *role,
                                         led_earnings_t *out);

//  One request on its way through the database thread
typedef struct {
    //  input
    uint64_t corr;
    int64_t account_id;
    char *role, *reply_to;
    //  output
    led_earnings_status_t status;
    led_earnings_t figures;
} led_earnings_job_t;

//  A job for a request (strings copied); never NULL
led_earnings_job_t *led_earnings_job_new (uint64_t corr, int64_t account_id, const char *role,
                                          const char *reply_to);
void led_earnings_job_destroy (led_earnings_job_t **self_p);

//  Self-test; needs P2C2R_TEST_DB (fails loudly without it).
void led_earnings_test (bool verbose);

#endif
