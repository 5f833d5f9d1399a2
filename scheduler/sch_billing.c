/*  The scheduler's billing rule (see sch_billing.h). */
#include "sch_billing.h"
#include "p2c_money.h"
#include "p2c_test.h"

uint64_t
sch_billing_compute (uint64_t claimed_us, uint64_t observed_us)
{
    return claimed_us < observed_us ? claimed_us : observed_us;
}

uint64_t
sch_billing_billed (const sch_billing_run_t *run)
{
    uint64_t billed = sch_billing_compute (run->claimed_us, run->observed_us);
    if (run->peer_ref_us && run->fleet_ref_us > 0
        && (double) run->peer_ref_us > run->fleet_ref_us)
        billed = (uint64_t) ((double) billed * run->fleet_ref_us / (double) run->peer_ref_us);
    if (billed > run->ceiling_us)
        billed = run->ceiling_us;
    return billed;
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
    //  the smaller of claimed and observed
    sch_billing_run_t run = { 400, 900, 0, 0, 1000000 };
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
}
