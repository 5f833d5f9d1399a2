/*  Counters behind P2C_CHECK. */
#include "p2c_test.h"

int p2c_test_passed = 0;
int p2c_test_failed = 0;

int
p2c_test_report (const char *suite)
{
    printf ("%s: %d passed, %d failed\n", suite, p2c_test_passed, p2c_test_failed);
    return p2c_test_failed == 0 && p2c_test_passed > 0 ? 0 : 1;
}
