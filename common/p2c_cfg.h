/*  Configuration: one table per process declares every setting with its
    name, default, bounds and help (after Redis' config.c). A setting is read
    from, in rising priority: its default, a file given with --config (lines
    "name = value", # comments), the environment (P2C2R_NAME, upper case,
    dashes as underscores), then the command line (--name value).
    Every binary gets --help, -v/--verbose, -n/--check and --config. */
#ifndef P2C_CFG_H_INCLUDED
#define P2C_CFG_H_INCLUDED

#include <stdbool.h>

typedef enum {
    P2C_CFG_STR,        //  target is char ** (owned: freed by p2c_cfg_free)
    P2C_CFG_INT,        //  target is long long *
    P2C_CFG_BOOL,       //  target is bool *; a flag without a value sets true
    P2C_CFG_SECRET      //  like STR, but never shown; "@FILE" reads the file
} p2c_cfg_type_t;

typedef struct {
    const char *name;       //  long option name, e.g. "listen"
    p2c_cfg_type_t type;
    const char *def;        //  default, as text (NULL: empty/unset)
    long long min, max;     //  bounds for INT
    void *target;           //  where the value goes
    const char *help;
} p2c_cfg_t;

//  Parses the table. Returns 0 to go on, 1 when the process should exit 0
//  (after --help or a successful --check), -1 on a bad setting (printed).
//  argv keeps only the positional arguments afterwards (*argc_p updated).
//  usage is the one-line synopsis printed by --help.
int p2c_cfg_parse (p2c_cfg_t *table, int *argc_p, char **argv,
                   const char *prog, const char *usage, bool *verbose_p);

//  Frees the strings the table holds.
void p2c_cfg_free (p2c_cfg_t *table);

//  Self-test
void p2c_cfg_test (bool verbose);

#endif
