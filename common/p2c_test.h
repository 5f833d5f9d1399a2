/*  Minimal self-test support: every class's *_test(bool verbose) uses
    P2C_CHECK; a test runner prints "N passed, N failed" from the counters. */
#ifndef P2C_TEST_H_INCLUDED
#define P2C_TEST_H_INCLUDED

#include <stdio.h>

extern int p2c_test_passed;
extern int p2c_test_failed;

#define P2C_CHECK(cond) do { \
    if (cond) p2c_test_passed++; \
    else { p2c_test_failed++; \
        fprintf (stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

//  Prints the closing line and returns the exit status for main.
int p2c_test_report (const char *suite);

#endif
