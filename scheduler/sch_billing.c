/*  The scheduler's billing rule (see sch_billing.h). */
#include "sch_billing.h"
#include "p2c_money.h"
#include "p2c_test.h"

#include <stdint.h>

uint64_t
sch_billing_compute (uint64_t claimed_us, uint64_t observed_us)
{
    return claimed_us < observed_us ? claimed_us : observed_us;
}

//  share permille of us, rounded down, without overflow for any input
static uint64_t
s_share (uint64_t us, uint32_t permille)
{
    return us / 1000 * permille + us % 1000 * permille / 1000;
}

//  the same, rounded up: the floor of billing, so that 2 x floor is never
//  below the (rounded down) ceiling and no peer bills more than 2x another
static uint64_t
s_share_up (uint64_t us, uint32_t permille)
{
    return us / 1000 * permille + (us % 1000 * permille + 999) / 1000;
}

uint64_t
sch_billing_billed (const sch_billing_run_t *run)
{
    uint64_t billed = sch_billing_compute (run->claimed_us, run->observed_us);
    if (run->peer_ref_us && run->fleet_ref_us > 0
        && (double) run->peer_ref_us > run->fleet_ref_us)
        billed = (uint64_t) ((double) billed * run->fleet_ref_us / (double) run->peer_ref_us);
    if (run->expected_us && run->max_permille) {
        uint64_t lo = s_share_up (run->expected_us, run->min_permille);
        uint64_t hi = s_share (run->expected_us, run->max_permille);
        if (billed < lo)
            billed = lo;
        if (billed > hi)
            billed = hi;
    }
    if (billed > run->ceiling_us)
        billed = run->ceiling_us;
    return billed;
}

bool
sch_billing_flagged (const sch_billing_run_t *run)
{
    if (!run->expected_us || !run->max_permille || !run->flag_permille)
        return false;
    uint64_t limit = s_share (run->expected_us, run->flag_permille) + run->flag_slack_us;
    return run->claimed_us > limit;
}

int64_t
sch_billing_most (uint32_t deadline_ms, uint64_t ceiling_us, int64_t gamer_rate_per_hour)
{
    uint64_t us = (uint64_t) deadline_ms * 1000;
    if (us > ceiling_us)
        us = ceiling_us;
    p2c_rates_t rates = { gamer_rate_per_hour, 0, 0 };
    p2c_split_t split;
    p2c_money_split (&rates, us, &split);
    return split.gamer_charge;
}

//  --------------------------------------------------------------------------
//  Self-test

void
sch_billing_test (bool verbose)
{
    (void) verbose;
    //  the smaller of claimed and observed (no cost model)
    sch_billing_run_t run = { 400, 900, 0, 0, 1000000, 0, 500, 1500, 4000, 100000 };
    P2C_CHECK (sch_billing_billed (&run) == 400);
    run.claimed_us = 5000;
    P2C_CHECK (sch_billing_billed (&run) == 900);
    P2C_CHECK (sch_billing_compute (5000, 900) == 900 && sch_billing_compute (7, 900) == 7);
    //  a peer twice as slow as the fleet on the reference input bills half
    run.peer_ref_us = 2000;
    run.fleet_ref_us = 1000;
    P2C_CHECK (sch_billing_billed (&run) == 450);
    //  a faster one is not paid more
    run.peer_ref_us = 500;
    P2C_CHECK (sch_billing_billed (&run) == 900);
    //  unknown figures change nothing
    run.peer_ref_us = 2000;
    run.fleet_ref_us = 0;
    P2C_CHECK (sch_billing_billed (&run) == 900);
    run.peer_ref_us = 0;
    run.fleet_ref_us = 1000;
    P2C_CHECK (sch_billing_billed (&run) == 900);
    //  the type's ceiling caps everything
    run.ceiling_us = 300;
    P2C_CHECK (sch_billing_billed (&run) == 300);
    //  the most a task may cost: an hour at 3.6e9 pico/h is 1 pico per us
    P2C_CHECK (sch_billing_most (1000, 1000000000, 3600000000LL) == 1000000);
    //  the ceiling is smaller than the deadline
    P2C_CHECK (sch_billing_most (1000, 2000, 3600000000LL) == 2000);
    P2C_CHECK (sch_billing_most (0, 2000, 3600000000LL) == 0);

    //  the server's measure: expected 10 ms, bounds 0.75x..1.5x (the
    //  defaults: no peer bills more than 2x another for the same params)
    sch_billing_run_t m = { 0, 0, 0, 0, 60000000, 10000, 750, 1500, 4000, 100000 };
    struct { uint64_t claimed, observed, billed; bool flagged; } cases [] = {
        { 9000, 9500, 9000, false },            //  honest: as measured
        { 2000, 3000, 7500, false },            //  fast: at least 0.75x
        { 1000000000000ULL, 2000000, 15000, true }, //  stretched claim, held task: 1.5x, flagged
        { 1000000000000ULL, 12000, 12000, true },   //  stretched claim, quick answer: observed
        { 30000, 30000, 15000, false },         //  slow, within the flag line: 1.5x
        { 140001, 200000, 15000, true },        //  past 4x + 100 ms: flagged
        { 140000, 200000, 15000, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        m.claimed_us = cases [i].claimed;
        m.observed_us = cases [i].observed;
        P2C_CHECK (sch_billing_billed (&m) == cases [i].billed);
        P2C_CHECK (sch_billing_flagged (&m) == cases [i].flagged);
    }
    //  an expected time the bounds do not divide: the floor rounds up, so
    //  that 2 x the floor covers the ceiling (15530 us: 11648 and 23295)
    m.expected_us = 15530;
    m.claimed_us = 1;
    m.observed_us = 1;
    uint64_t lo = sch_billing_billed (&m);
    m.claimed_us = 1000000000000ULL;
    m.observed_us = 2000000;
    uint64_t hi = sch_billing_billed (&m);
    P2C_CHECK (lo == 11648 && hi == 23295 && hi <= 2 * lo);
    m.expected_us = 10000;
    //  the ceiling still caps; the model off (max 0) bills the measure
    m.claimed_us = m.observed_us = 9000;
    m.ceiling_us = 7000;
    P2C_CHECK (sch_billing_billed (&m) == 7000);
    m.ceiling_us = 60000000;
    m.max_permille = 0;
    m.claimed_us = 1000000000000ULL;
    m.observed_us = 2000000;
    P2C_CHECK (sch_billing_billed (&m) == 2000000 && !sch_billing_flagged (&m));
    //  no overflow at the extremes
    m.max_permille = 1500;
    m.expected_us = UINT64_MAX / 2;
    m.ceiling_us = UINT64_MAX;
    P2C_CHECK (sch_billing_billed (&m) >= s_share (UINT64_MAX / 2, 500));
}
