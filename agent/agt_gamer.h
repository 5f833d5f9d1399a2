/*  `p2c2r-agent gamer`: a player's client. It registers, submits N tasks
    with at most C outstanding, prints one line per reply and a summary,
    and checks that every task got exactly one reply. */
#ifndef AGT_GAMER_H_INCLUDED
#define AGT_GAMER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  The `gamer` subcommand (argv[0] is "gamer"). Returns the exit status:
//  0 every task answered exactly once, 1 bad settings, refused registration
//  or a protocol error, 2 the run timed out, 3 the connection was lost.
int agt_gamer_main (int argc, char **argv);

//  The params text of task `index`: every "{i}" replaced by the index in
//  decimal. Caller frees (never NULL: p2c_mem.h).
char *agt_gamer_subst (const char *params, uint64_t index);

//  Nearest-rank percentile p (0..100] of n sorted values; 0 when n is 0.
double agt_gamer_percentile (const double *sorted, size_t n, double p);

//  "$D.DDDDDDDDDDDD" for an amount in picodollars (exact, no float).
void agt_gamer_usd (int64_t pico, char *buf, size_t size);

void agt_gamer_test (bool verbose);

#endif
