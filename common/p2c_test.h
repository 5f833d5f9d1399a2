/*  Minimal self-test support: every class's *_test(bool verbose) uses
    P2C_CHECK; a suite's main lists its classes in a p2c_test_entry_t table
    and calls p2c_test_main, which runs them all, or only the one named by
    --test NAME (as czmq's selftest does), and prints "N passed, N failed". */
#ifndef P2C_TEST_H_INCLUDED
#define P2C_TEST_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

extern int p2c_test_passed;
extern int p2c_test_failed;

#define P2C_CHECK(cond) do { \
    if (cond) p2c_test_passed++; \
    else { p2c_test_failed++; \
        fprintf (stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

//  One class's (or one group's) self-test, by name
typedef struct {
    const char *name;               //  e.g. "sch_peers"; what --test takes
    void (*fn) (bool verbose);
} p2c_test_entry_t;

//  Runs a suite: "-v" for verbose, "--test NAME" (repeatable) for only those
//  entries, "--list" to print the names. The table ends with {NULL, NULL}.
//  Initialises logging, prints the closing line and returns main's status;
//  an unknown name is an error (exit 2), so a typo never passes as green.
int p2c_test_main (int argc, char **argv, const char *suite,
                   const p2c_test_entry_t *table);

//  Prints the closing line and returns the exit status for main.
int p2c_test_report (const char *suite);

#endif
