/*  The server's measure of a task's work (issue 14): a cost model per
    kernel gives work units from the task's parameters (iterations x bytes,
    pixels x samples x bounces, cells x steps, ...), and the catalogue's
    reference time of the kernel's reference input, measured with
    `p2c2r-agent bench` on the reference machine, turns units into an
    expected compute time. Billing starts from it, not from what a peer
    claims (docs/scheduler.md, "Billed time"). */
#ifndef P2C_COST_H_INCLUDED
#define P2C_COST_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Work units of a task of the type (canonical name) with these
//  parameters and payload size; parameters a kernel would refuse are taken
//  at their bounds, missing ones at the kernel's defaults. 0 when the type
//  is unknown.
double p2c_cost_units (const char *type, const char *params_json, size_t payload_size);

//  The expected compute time of such a task on the reference machine, in
//  microseconds: a fixed part per task plus the reference time scaled by
//  units against the reference input's units. 0 when the type is unknown.
uint64_t p2c_cost_expected_us (const char *type, const char *params_json, size_t payload_size);

//  The catalogue's reference figures of the type: the reference input and
//  its time on the reference machine. false when unknown.
bool p2c_cost_reference (const char *type, const char **params_json, uint64_t *ref_us);

void p2c_cost_test (bool verbose);

#endif
