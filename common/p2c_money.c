/*  Exact money arithmetic: see the rounding rule in p2c_money.h. */
#include "p2c_money.h"
#include "p2c_test.h"

#include <stdio.h>
#include <string.h>

//  round(a * b / d) half up, for non-negative a, b and positive d
static int64_t
s_muldiv_round (uint64_t a, uint64_t b, uint64_t d)
{
    unsigned __int128 p = (unsigned __int128) a * b;
    return (int64_t) ((p + d / 2) / d);
}

void
p2c_money_split (const p2c_rates_t *rates, uint64_t billed_us, p2c_split_t *out)
{
    const uint64_t us_per_hour = 3600000000ULL;
    out->gamer_charge = s_muldiv_round (billed_us, (uint64_t) rates->gamer_per_hour, us_per_hour);
    out->peer_earning = s_muldiv_round (billed_us, (uint64_t) rates->peer_per_hour, us_per_hour);
    out->fee = s_muldiv_round ((uint64_t) out->gamer_charge, (uint64_t) rates->fee_bp, 10000);
    out->treasury = out->gamer_charge - out->fee - out->peer_earning;
}

char *
p2c_money_format (int64_t pico, char *buf, unsigned size)
{
    uint64_t mag = pico < 0 ? (uint64_t) 0 - (uint64_t) pico : (uint64_t) pico;
    snprintf (buf, size, "%s%llu.%012llu", pico < 0 ? "-" : "",
              (unsigned long long) (mag / P2C_PICO_PER_USD),
              (unsigned long long) (mag % P2C_PICO_PER_USD));
    return buf;
}

void
p2c_money_test (bool verbose)
{
    (void) verbose;
    p2c_rates_t rates = P2C_RATES_DEFAULT;
    p2c_split_t s;
    //  One hour: $0.01 charged, $0.15 earned, $0.001 fee
    p2c_money_split (&rates, 3600000000ULL, &s);
    P2C_CHECK (s.gamer_charge == 10000000000LL);
    P2C_CHECK (s.peer_earning == 150000000000LL);
    P2C_CHECK (s.fee == 1000000000LL);
    P2C_CHECK (s.treasury == 10000000000LL - 1000000000LL - 150000000000LL);
    //  12.5 ms: the docs/protocol.md example, cost $0.0000000347 (rounded there)
    p2c_money_split (&rates, 12500, &s);
    P2C_CHECK (s.gamer_charge == 34722);            //  34722.2 -> 34722
    P2C_CHECK (s.peer_earning == 520833);           //  520833.3 -> 520833
    P2C_CHECK (s.fee == 3472);                      //  3472.2 -> 3472
    //  Half rounds up: 18 us * 1e10 / 3.6e9 = 50 exactly; 9 us = 25; 1 us = 2.77 -> 3
    p2c_money_split (&rates, 1, &s);
    P2C_CHECK (s.gamer_charge == 3);
    P2C_CHECK (s.peer_earning == 42);               //  41.67 -> 42
    P2C_CHECK (s.fee == 0);                         //  0.3 -> 0
    rates.fee_bp = 5000;
    p2c_money_split (&rates, 1, &s);
    P2C_CHECK (s.fee == 2);                         //  1.5 -> 2
    rates.fee_bp = 1000;
    //  Zero billed time costs nothing
    p2c_money_split (&rates, 0, &s);
    P2C_CHECK (s.gamer_charge == 0 && s.peer_earning == 0 && s.fee == 0 && s.treasury == 0);
    //  Every split sums to zero
    bool zero = true;
    for (uint64_t us = 0; us < 100000; us += 7) {
        p2c_money_split (&rates, us, &s);
        if (-s.gamer_charge + s.peer_earning + s.fee + s.treasury != 0)
            zero = false;
    }
    P2C_CHECK (zero);
    //  No overflow on the largest billed time
    p2c_money_split (&rates, 1000000000000ULL, &s);     //  about 11.6 days
    P2C_CHECK (s.peer_earning == 41666666666667LL);
    char buf [32];
    P2C_CHECK (!strcmp (p2c_money_format (34722, buf, sizeof buf), "0.000000034722"));
    P2C_CHECK (!strcmp (p2c_money_format (-150000000000LL, buf, sizeof buf), "-0.150000000000"));
}
