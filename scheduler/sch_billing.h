/*  The billing rule of the scheduler as pure functions (docs/architecture.md,
    "Money"; docs/scheduler.md): how much compute time of a result is
    billed, and the most a task may cost its gamer (the funds reserve).
    No state, no clock: the core passes in what it knows. */
#ifndef SCH_BILLING_H_INCLUDED
#define SCH_BILLING_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

//  What is known of one finished run when it is billed
typedef struct {
    uint64_t claimed_us;        //  compute time the peer claims
    uint64_t observed_us;       //  assignment to result, as the scheduler saw it
    uint64_t peer_ref_us;       //  the peer's time on the kernel's reference input, 0 unknown
    double fleet_ref_us;        //  the live peers' mean of that time, 0 unknown
    uint64_t ceiling_us;        //  the type's most billed time
    //  the server's measure (issue 14)
    uint64_t expected_us;       //  the cost model's time for the params, 0: no model
    uint32_t min_permille;      //  billed at least this share of the expected time
    uint32_t max_permille;      //  and at most this share (0: the model is off)
    uint32_t flag_permille;     //  a claim past this share of expected (plus slack)
    uint64_t flag_slack_us;     //  is flagged
} sch_billing_run_t;

//  Billed time. The measured time is the smaller of the claimed and the
//  observed time (claims are evidence, never paid beyond what we saw),
//  scaled down for a peer slower than the fleet on the reference input.
//  With a cost model, the billed time is the expected time for the params
//  moved toward the measured one within [min, max] permille of it: a peer
//  that stretches its claim or holds the task gets at most max, one that
//  is fast at least min. Then capped by the type's ceiling.
uint64_t sch_billing_billed (const sch_billing_run_t *run);

//  True when the claim is far beyond the expected time (flag share of it
//  plus the slack): counted against the peer's reputation.
bool sch_billing_flagged (const sch_billing_run_t *run);

//  The compute time a result teaches about the peer's speed: the smaller
//  of claimed and observed.
uint64_t sch_billing_compute (uint64_t claimed_us, uint64_t observed_us);

//  The most a task may cost its gamer, in picodollars: its deadline or its
//  type's ceiling of billed time, whichever is smaller, at the gamer rate.
int64_t sch_billing_most (uint32_t deadline_ms, uint64_t ceiling_us,
                          int64_t gamer_rate_per_hour);

void sch_billing_test (bool verbose);

#endif
