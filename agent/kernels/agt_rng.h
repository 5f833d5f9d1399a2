/*  The kernels' one PRNG: splitmix64 (Steele, Lea, Flood 2014). Fixed
    arithmetic on uint64_t, so a seed gives the same stream on every machine
    and build; rand() would depend on the C library. */
#ifndef AGT_RNG_H_INCLUDED
#define AGT_RNG_H_INCLUDED

#include <stdint.h>

typedef struct {
    uint64_t state;
} agt_rng_t;

static inline uint64_t
agt_rng_next (agt_rng_t *self)
{
    uint64_t z = (self->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

//  Uniform double in [0, 1) from the top 53 bits
static inline double
agt_rng_unit (agt_rng_t *self)
{
    return (double) (agt_rng_next (self) >> 11) * (1.0 / 9007199254740992.0);
}

//  Uniform integer in [0, n) for n > 0 (the tiny modulo bias does not matter here)
static inline uint32_t
agt_rng_below (agt_rng_t *self, uint32_t n)
{
    return (uint32_t) (agt_rng_next (self) % n);
}

#endif
