/*  The money summary the ledger shows in its stats (issue 19): what gamers
    spent, peers earned, the platform fee, the treasury's net and the
    subsidy it granted, today (UTC) and in all, as exact decimal USD text.
    Read in one statement from the per-day tables settlement keeps
    (money_days, subsidy_days: a row per day, so the read costs the same at
    any load), on the database thread ("MONEY"/"MONEYED"), every
    money-refresh-ms; the server answers stats from the last figures read,
    never waiting on the database. The same sums as p2c2r-ctl revenue
    (settlements as written: refunds and reversals are not taken off). */
#ifndef LED_MONEY_H_INCLUDED
#define LED_MONEY_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "led_store.h"

//  spent, earned, fee, treasury, subsidy: the stats' <name>_today and
//  <name>_total fields
#define LED_MONEY_KINDS 5
extern const char *const led_money_names [LED_MONEY_KINDS];

//  Longest decimal text kept (a NUMERIC sum with 12 decimals)
#define LED_MONEY_TEXT 48

typedef struct {
    bool ok;                    //  read (false: the database failed or is down)
    char today [LED_MONEY_KINDS][LED_MONEY_TEXT];   //  USD, "12.345678000000"
    char total [LED_MONEY_KINDS][LED_MONEY_TEXT];
    int64_t tasks_today, tasks_total;               //  tasks settled
    char day [16];              //  the UTC day "today" is, "2026-12-02"
} led_money_t;

//  Reads the figures into out (out->ok says whether it could)
void led_money_read (led_store_t *store, led_money_t *out);

//  Adds the figures to a stats object: <name>_today, <name>_total (strings),
//  money_tasks_today, money_tasks_total, money_day. Nothing when !ok.
void led_money_json (const led_money_t *self, json_t *stats);

void led_money_test (bool verbose);

#endif
