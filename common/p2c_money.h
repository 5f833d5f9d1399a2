/*  Money. Amounts are exact integers of picodollars (1e-12 USD): a one-hour
    task at the gamer rate is 10^10, and int64 holds up to 9.2 million dollars
    per amount; sums are taken in PostgreSQL NUMERIC.

    Rounding rule (the only one): each amount is computed from the billed
    microseconds in 128-bit integers and rounded half up to a whole
    picodollar:
        gamer_charge = round(billed_us * gamer_rate_per_hour / 3.6e9)
        peer_earning = round(billed_us * peer_rate_per_hour  / 3.6e9)
        fee          = round(gamer_charge * fee_bp / 10000)
        treasury     = gamer_charge - fee - peer_earning   (may be negative)
    The journal entries are: gamer -charge, fee +fee, peer +earning,
    treasury +treasury; their sum is zero by construction. */
#ifndef P2C_MONEY_H_INCLUDED
#define P2C_MONEY_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#define P2C_PICO_PER_USD 1000000000000LL

typedef struct {
    int64_t gamer_per_hour;     //  what a gamer pays per compute hour, picodollars
    int64_t peer_per_hour;      //  what a peer earns per compute hour, picodollars
    int32_t fee_bp;             //  platform fee, basis points of the gamer charge
} p2c_rates_t;

//  The original guide's rates: gamer $0.01/h, peer $0.15/h, fee 10%.
#define P2C_RATES_DEFAULT { 10000000000LL, 150000000000LL, 1000 }

typedef struct {
    int64_t gamer_charge;       //  debited from the gamer
    int64_t peer_earning;       //  credited to the peer
    int64_t fee;                //  credited to the platform fee account
    int64_t treasury;           //  credited to the treasury (negative: debited)
} p2c_split_t;

void p2c_money_split (const p2c_rates_t *rates, uint64_t billed_us, p2c_split_t *out);

//  Formats picodollars as a decimal USD string with 12 decimals
//  ("-0.000000034722"); buf needs 32 bytes.
char *p2c_money_format (int64_t pico, char *buf, unsigned size);

void p2c_money_test (bool verbose);

#endif
