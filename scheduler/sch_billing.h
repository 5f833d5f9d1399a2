/*  The billing rule of the scheduler as pure functions (ARCHITECTURE.md,
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
} sch_billing_run_t;

//  Billed time: the smaller of the claimed and the observed time (claims
//  are evidence, never paid beyond what we saw), scaled down for a peer
//  slower than the fleet on the reference input, capped by the ceiling.
uint64_t sch_billing_billed (const sch_billing_run_t *run);

//  The compute time a result teaches about the peer's speed: the smaller
//  of claimed and observed.
uint64_t sch_billing_compute (uint64_t claimed_us, uint64_t observed_us);

//  The most a task may cost its gamer, in picodollars: its deadline or its
//  type's ceiling of billed time, whichever is smaller, at the gamer rate.
int64_t sch_billing_most (uint32_t deadline_ms, uint64_t ceiling_us,
                          int64_t gamer_rate_per_hour);

void sch_billing_test (bool verbose);

#endif
