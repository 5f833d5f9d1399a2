/*  Configuration: one const table per process declares every setting with
    its name, the field of the process's settings struct it sets (by
    offset, so that one table serves any instance: the binary's and a
    test's), its default (written once, here), bounds and help (after
    Redis' config.c). A setting is read from, in rising priority: its
    default, a file given with --config (lines "name = value", # comments),
    the environment (P2C2R_NAME, upper case, dashes as underscores), then
    the command line (--name value). Every binary gets --help, -v/--verbose,
    -n/--check and --config. */
#ifndef P2C_CFG_H_INCLUDED
#define P2C_CFG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  The kind of value and the C type of the field it goes to. Numbers are
//  whole numbers on every source; the type only names the field's width.
typedef enum {
    P2C_CFG_STR,        //  char * or const char * (owned: freed by p2c_cfg_free)
    P2C_CFG_SECRET,     //  like STR, but never shown; "@FILE" reads the file
    P2C_CFG_BOOL,       //  bool; a flag without a value sets true
    P2C_CFG_INT,        //  int
    P2C_CFG_UINT32,     //  uint32_t
    P2C_CFG_INT64,      //  int64_t
    P2C_CFG_UINT64,     //  uint64_t (bounds: 0..LLONG_MAX)
    P2C_CFG_LLONG,      //  long long
    P2C_CFG_SIZE,       //  size_t
    P2C_CFG_DOUBLE,     //  double (still given as a whole number)
    P2C_CFG_ENUM        //  int (or an enum type): the index of the value in names
} p2c_cfg_type_t;

typedef struct {
    const char *name;       //  long option name, e.g. "listen"; NULL ends the table
    p2c_cfg_type_t type;
    size_t offset;          //  of the field in the settings struct
    size_t size;            //  of the field, checked against the type
    const char *def;        //  default, as text; NULL: "" (STR), false, 0
    long long min, max;     //  bounds of a number, as given (before scale)
    const char *help;
    long long scale;        //  numbers: the field holds the value times this
                            //  (e.g. 1000 for seconds into a field in ms); 0: 1
    const char *const *names;   //  ENUM: the values, NULL-terminated
} p2c_cfg_t;

//  offset and size of a field, for a table entry. Entries name the help
//  (and, where needed, scale and names) by designator, so that text and
//  flag entries need no bounds:
//  { "pay-checks", P2C_CFG_BOOL, P2C_CFG_FIELD (sch_config_t, core.pay_checks), "true",
//    .help = "the treasury pays the peers of valid check runs" },
//  { "slots", P2C_CFG_INT, P2C_CFG_FIELD (agt_peer_config_t, slots), "0", 0, 256,
//    .help = "tasks run at once" },
//  and the table ends with { .name = NULL }.
#define P2C_CFG_FIELD(type, field) \
    offsetof (type, field), sizeof (((type *) 0)->field)

//  Runs after the values are read (on parsing, before -n says OK; and by
//  a process's defaults): derives fields from the settings (e.g. a list
//  into arrays) and checks what one entry's bounds cannot. 0, or -1 after
//  printing the reason to stderr.
typedef int (p2c_cfg_check_fn) (void *settings);

//  One process's settings: its table and what runs after parsing
typedef struct {
    const char *prog;           //  in messages and --help, e.g. "p2c2r-scheduler"
    const char *usage;          //  one-line synopsis after prog in --help
    const p2c_cfg_t *table;
    p2c_cfg_check_fn *check;    //  may be NULL
} p2c_cfg_spec_t;

//  Sets every field of the table to its default, without parsing. The
//  struct's strings must not be owned yet (fresh, zeroed, or after
//  p2c_cfg_free): they are overwritten, not freed.
void p2c_cfg_defaults (const p2c_cfg_t *table, void *settings);

//  Sets the defaults, then reads the file, environment and flags, then
//  runs spec->check. Returns 0 to go on, 1 when the process should exit 0
//  (after --help or a successful --check), -1 on a bad setting (printed).
//  Unless 0 is returned, the strings are freed again (p2c_cfg_free).
//  argv keeps only the positional arguments afterwards (*argc_p updated).
//  verbose_p (may be NULL) tells whether -v was given.
int p2c_cfg_parse (const p2c_cfg_spec_t *spec, void *settings, int *argc_p, char **argv,
                   bool *verbose_p);

//  What every process's X_config_defaults does: zeroes the settings struct
//  of `size` bytes, sets every default and runs spec->check, which the
//  defaults must pass (a table that breaks its own check is a mistake)
void p2c_cfg_init (const p2c_cfg_spec_t *spec, void *settings, size_t size);

//  What every process's X_config_load does: zeroes the struct, then
//  p2c_cfg_parse; positional arguments left over are refused (-1, printed,
//  freed): a process that takes operands (ctl) calls p2c_cfg_parse itself.
//  Same returns as p2c_cfg_parse.
int p2c_cfg_load (const p2c_cfg_spec_t *spec, void *settings, size_t size, int *argc_p,
                  char **argv, bool *verbose_p);

//  Frees the strings the table's fields hold and NULLs them.
void p2c_cfg_free (const p2c_cfg_t *table, void *settings);

//  The functions every process's settings offer, written once: for a
//  PREFIX of T with its spec, PREFIX_defaults (T *self) (p2c_cfg_init),
//  PREFIX_free (T *self) (p2c_cfg_free), and with P2C_CFG_FUNCTIONS also
//  PREFIX_load (T *self, int argc, char **argv, bool *verbose_p)
//  (p2c_cfg_load; a process whose load does more writes its own)
#define P2C_CFG_FUNCTIONS_BUT_LOAD(prefix, T, spec) \
    void prefix##_defaults (T *self) { p2c_cfg_init (spec, self, sizeof *self); } \
    void prefix##_free (T *self) { p2c_cfg_free ((spec)->table, self); }
#define P2C_CFG_FUNCTIONS(prefix, T, spec) \
    P2C_CFG_FUNCTIONS_BUT_LOAD (prefix, T, spec) \
    int prefix##_load (T *self, int argc, char **argv, bool *verbose_p) \
    { return p2c_cfg_load (spec, self, sizeof *self, &argc, argv, verbose_p); }

//  Self-test
void p2c_cfg_test (bool verbose);

#endif
