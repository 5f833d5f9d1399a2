/*  Counters behind P2C_CHECK and the suite runner behind every
    tests/unit/test_*.c. */
#include "p2c_test.h"
#include "p2c_log.h"

#include <string.h>

int p2c_test_passed = 0;
int p2c_test_failed = 0;

int
p2c_test_report (const char *suite)
{
    printf ("%s: %d passed, %d failed\n", suite, p2c_test_passed, p2c_test_failed);
    return p2c_test_failed == 0 && p2c_test_passed > 0 ? 0 : 1;
}

static const p2c_test_entry_t *
s_find (const p2c_test_entry_t *table, const char *name)
{
    for (const p2c_test_entry_t *e = table; e->name; e++)
        if (!strcmp (e->name, name))
            return e;
    return NULL;
}

int
p2c_test_main (int argc, char **argv, const char *suite,
               const p2c_test_entry_t *table)
{
    bool verbose = false;
    const char *only [64];
    int nonly = 0;
    for (int k = 1; k < argc; k++) {
        if (!strcmp (argv [k], "-v") || !strcmp (argv [k], "--verbose"))
            verbose = true;
        else
        if (!strcmp (argv [k], "--list")) {
            for (const p2c_test_entry_t *e = table; e->name; e++)
                printf ("%s\n", e->name);
            return 0;
        }
        else
        if (!strcmp (argv [k], "--test") && k + 1 < argc && nonly < 64) {
            if (!s_find (table, argv [k + 1])) {
                fprintf (stderr, "%s: no test named '%s' (--list names them)\n",
                         suite, argv [k + 1]);
                return 2;
            }
            only [nonly++] = argv [++k];
        }
        else {
            fprintf (stderr, "usage: %s [-v] [--list] [--test NAME]...\n", argv [0]);
            return 2;
        }
    }
    p2c_log_init ("test", verbose);
    for (const p2c_test_entry_t *e = table; e->name; e++) {
        bool run = nonly == 0;
        for (int i = 0; i < nonly && !run; i++)
            run = !strcmp (only [i], e->name);
        if (run) {
            if (verbose)
                printf (" * %s\n", e->name);
            e->fn (verbose);
        }
    }
    return p2c_test_report (suite);
}
