/*  Clocks. Monotonic for durations and deadlines, wall clock for logs. */
#ifndef P2C_TIME_H_INCLUDED
#define P2C_TIME_H_INCLUDED

#include <stdint.h>
#include <time.h>

static inline int64_t
p2c_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t
p2c_now_ms (void)
{
    return p2c_now_us () / 1000;
}

#endif
