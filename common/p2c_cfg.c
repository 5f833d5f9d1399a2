/*  Table-driven configuration: defaults, file, environment, flags, each
    written into the field an entry names (see p2c_cfg.h). */
#include "p2c_cfg.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Longest value read from a line of --config or an @FILE secret
#define P2C_CFG_LINE_MAX    4096

static void *
s_field (const p2c_cfg_t *e, void *settings)
{
    return (char *) settings + e->offset;
}

static bool
s_is_str (const p2c_cfg_t *e)
{
    return e->type == P2C_CFG_STR || e->type == P2C_CFG_SECRET;
}

static bool
s_is_number (const p2c_cfg_t *e)
{
    return e->type == P2C_CFG_INT || e->type == P2C_CFG_UINT32 || e->type == P2C_CFG_INT64
        || e->type == P2C_CFG_UINT64 || e->type == P2C_CFG_LLONG || e->type == P2C_CFG_SIZE
        || e->type == P2C_CFG_DOUBLE;
}

static long long
s_scale (const p2c_cfg_t *e)
{
    return e->scale > 0 ? e->scale : 1;
}

//  A table that does not fit its fields is a programming mistake: the
//  field's size must be the type's, and the bounds (times the scale) must
//  fit the field, so that no value that passes the bounds can overflow.
static void
s_entry_assert (const p2c_cfg_t *e)
{
    size_t want = 0;
    long long lo = LLONG_MIN, hi = LLONG_MAX;
    switch (e->type) {
        case P2C_CFG_STR:
        case P2C_CFG_SECRET: want = sizeof (char *); break;
        case P2C_CFG_BOOL:   want = sizeof (bool); break;
        case P2C_CFG_INT:    want = sizeof (int); lo = INT_MIN; hi = INT_MAX; break;
        case P2C_CFG_ENUM:   want = sizeof (int); break;
        case P2C_CFG_UINT32: want = sizeof (uint32_t); lo = 0; hi = UINT32_MAX; break;
        case P2C_CFG_INT64:  want = sizeof (int64_t); break;
        case P2C_CFG_UINT64: want = sizeof (uint64_t); lo = 0; break;
        case P2C_CFG_LLONG:  want = sizeof (long long); break;
        case P2C_CFG_SIZE:   want = sizeof (size_t); lo = 0;
                             hi = SIZE_MAX < LLONG_MAX ? (long long) SIZE_MAX : LLONG_MAX; break;
        case P2C_CFG_DOUBLE: want = sizeof (double); break;
    }
    assert (e->size == want);
    assert (e->type != P2C_CFG_ENUM || (e->names && e->names [0]));
    if (s_is_number (e)) {
        long long min, max;
        assert (e->min <= e->max);
        assert (!__builtin_mul_overflow (e->min, s_scale (e), &min));
        assert (!__builtin_mul_overflow (e->max, s_scale (e), &max));
        assert (min >= lo && max <= hi);
        (void) min, (void) max, (void) lo, (void) hi;
    }
    (void) want;
}

static char *
s_read_secret_file (const char *path)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return NULL;
    char buf [P2C_CFG_LINE_MAX];
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf [n] = 0;
    while (n > 0 && (buf [n - 1] == '\n' || buf [n - 1] == '\r' || buf [n - 1] == ' '))
        buf [--n] = 0;
    return strdup (buf);
}

static int
s_set_str (const p2c_cfg_t *e, void *settings, const char *value, const char *source)
{
    char *copy = NULL;
    if (e->type == P2C_CFG_SECRET && value [0] == '@') {
        copy = s_read_secret_file (value + 1);
        if (!copy) {
            fprintf (stderr, "%s: cannot read the file for --%s\n", source, e->name);
            return -1;
        }
    }
    else
        copy = p2c_strdup (value);
    char **field = (char **) s_field (e, settings);
    free (*field);
    *field = copy;
    return 0;
}

static int
s_set_number (const p2c_cfg_t *e, void *settings, const char *value, const char *source)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll (value, &end, 10);
    if (!*value || *end || errno) {
        fprintf (stderr, "%s: --%s wants a whole number, not '%s'\n", source, e->name, value);
        return -1;
    }
    if (v < e->min || v > e->max) {
        fprintf (stderr, "%s: --%s must be between %lld and %lld, not %lld\n", source,
                 e->name, e->min, e->max, v);
        return -1;
    }
    //  Cannot overflow: s_entry_assert checked the bounds times the scale
    v *= s_scale (e);
    void *field = s_field (e, settings);
    switch (e->type) {
        case P2C_CFG_INT:    *(int *) field = (int) v; break;
        case P2C_CFG_UINT32: *(uint32_t *) field = (uint32_t) v; break;
        case P2C_CFG_INT64:  *(int64_t *) field = (int64_t) v; break;
        case P2C_CFG_UINT64: *(uint64_t *) field = (uint64_t) v; break;
        case P2C_CFG_LLONG:  *(long long *) field = v; break;
        case P2C_CFG_SIZE:   *(size_t *) field = (size_t) v; break;
        case P2C_CFG_DOUBLE: *(double *) field = (double) v; break;
        default:             assert (false);
    }
    return 0;
}

static int
s_set_bool (const p2c_cfg_t *e, void *settings, const char *value, const char *source)
{
    bool v;
    if (!value || !strcmp (value, "1") || !strcasecmp (value, "true") || !strcasecmp (value, "yes")
        || !strcasecmp (value, "on"))
        v = true;
    else
    if (!strcmp (value, "0") || !strcasecmp (value, "false") || !strcasecmp (value, "no")
        || !strcasecmp (value, "off"))
        v = false;
    else {
        fprintf (stderr, "%s: --%s wants true or false, not '%s'\n", source, e->name, value);
        return -1;
    }
    *(bool *) s_field (e, settings) = v;
    return 0;
}

static int
s_set_enum (const p2c_cfg_t *e, void *settings, const char *value, const char *source)
{
    for (int i = 0; e->names [i]; i++)
        if (!strcmp (e->names [i], value)) {
            *(int *) s_field (e, settings) = i;
            return 0;
        }
    fprintf (stderr, "%s: --%s is one of", source, e->name);
    for (int i = 0; e->names [i]; i++)
        fprintf (stderr, "%s %s", i ? "," : "", e->names [i]);
    fprintf (stderr, "; not '%s'\n", value);
    return -1;
}

//  Sets one entry from text; source names where it came from, for errors.
//  value is NULL only for a BOOL flag given without one.
static int
s_set (const p2c_cfg_t *e, void *settings, const char *value, const char *source)
{
    if (e->type == P2C_CFG_BOOL)
        return s_set_bool (e, settings, value, source);
    assert (value);
    if (s_is_str (e))
        return s_set_str (e, settings, value, source);
    if (e->type == P2C_CFG_ENUM)
        return s_set_enum (e, settings, value, source);
    return s_set_number (e, settings, value, source);
}

static const char *
s_default (const p2c_cfg_t *e)
{
    if (e->def)
        return e->def;
    return e->type == P2C_CFG_BOOL ? "false"
         : e->type == P2C_CFG_ENUM ? e->names [0]
         : s_is_number (e) ? "0" : "";
}

void
p2c_cfg_defaults (const p2c_cfg_t *table, void *settings)
{
    assert (table);
    assert (settings);
    for (const p2c_cfg_t *e = table; e->name; e++) {
        s_entry_assert (e);
        if (s_is_str (e))
            *(char **) s_field (e, settings) = NULL;
        //  A default the entry refuses is a mistake in the table
        int rc = s_set (e, settings, s_default (e), "default");
        assert (rc == 0);
        (void) rc;
    }
}

void
p2c_cfg_free (const p2c_cfg_t *table, void *settings)
{
    for (const p2c_cfg_t *e = table; e->name; e++)
        if (s_is_str (e)) {
            char **field = (char **) s_field (e, settings);
            free (*field);
            *field = NULL;
        }
}

static const p2c_cfg_t *
s_find (const p2c_cfg_t *table, const char *name, size_t len)
{
    for (const p2c_cfg_t *e = table; e->name; e++)
        if (strlen (e->name) == len && !strncmp (e->name, name, len))
            return e;
    return NULL;
}

static int
s_read_file (const p2c_cfg_t *table, void *settings, const char *path)
{
    FILE *f = fopen (path, "r");
    if (!f) {
        fprintf (stderr, "config: cannot open %s\n", path);
        return -1;
    }
    char line [P2C_CFG_LINE_MAX];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets (line, sizeof line, f)) {
        lineno++;
        char *s = line;
        while (isspace ((unsigned char) *s))
            s++;
        if (!*s || *s == '#')
            continue;
        char *eq = strchr (s, '=');
        if (!eq) {
            fprintf (stderr, "%s:%d: expected name = value\n", path, lineno);
            rc = -1;
            break;
        }
        char *kend = eq;
        while (kend > s && isspace ((unsigned char) kend [-1]))
            kend--;
        char *v = eq + 1;
        while (isspace ((unsigned char) *v))
            v++;
        size_t vl = strlen (v);
        while (vl > 0 && isspace ((unsigned char) v [vl - 1]))
            v [--vl] = 0;
        const p2c_cfg_t *e = s_find (table, s, (size_t) (kend - s));
        if (!e) {
            fprintf (stderr, "%s:%d: unknown setting '%.*s'\n", path, lineno, (int) (kend - s), s);
            rc = -1;
            break;
        }
        char source [300];
        snprintf (source, sizeof source, "%s:%d", path, lineno);
        rc = s_set (e, settings, v, source);
    }
    fclose (f);
    return rc;
}

static void
s_help (const p2c_cfg_spec_t *spec)
{
    printf ("Usage: %s %s\n\nOptions (each also P2C2R_NAME in the environment or 'name = value' in --config FILE):\n",
            spec->prog, spec->usage);
    for (const p2c_cfg_t *e = spec->table; e->name; e++) {
        char left [64];
        snprintf (left, sizeof left, "--%s%s", e->name,
                  e->type == P2C_CFG_BOOL ? "" : s_is_number (e) ? " N" : " VALUE");
        printf ("  %-26s %s", left, e->help);
        if (s_is_number (e))
            printf (" [%s; %lld..%lld]", s_default (e), e->min, e->max);
        else
        if (e->type == P2C_CFG_SECRET)
            printf (" (@FILE reads it from a file)");
        else
        if (e->def && *e->def)
            printf (" [%s]", e->def);
        printf ("\n");
    }
    printf ("  %-26s %s\n", "--config FILE", "read settings from FILE");
    printf ("  %-26s %s\n", "-n, --check", "check the configuration and exit");
    printf ("  %-26s %s\n", "-v, --verbose", "log debug lines");
    printf ("  %-26s %s\n", "-h, --help", "show this help");
}

static int
s_read_env (const p2c_cfg_t *table, void *settings)
{
    for (const p2c_cfg_t *e = table; e->name; e++) {
        char env [128] = "P2C2R_";
        size_t k = strlen (env);
        for (const char *c = e->name; *c && k < sizeof env - 1; c++)
            env [k++] = *c == '-' ? '_' : (char) toupper ((unsigned char) *c);
        env [k] = 0;
        const char *v = getenv (env);
        if (v && s_set (e, settings, v, env) != 0)
            return -1;
    }
    return 0;
}

//  The flags, over the whole argv; positional arguments are kept in order
//  at the front. 0, or -1 on a bad flag.
static int
s_read_flags (const p2c_cfg_spec_t *spec, void *settings, int *argc_p, char **argv,
              bool *check_p, bool *verbose_p)
{
    int argc = *argc_p;
    int out = 1;
    for (int i = 1; i < argc; i++) {
        char *a = argv [i];
        if (!strcmp (a, "--config")) {
            i++;
            continue;
        }
        if (!strcmp (a, "-n") || !strcmp (a, "--check")) {
            *check_p = true;
            continue;
        }
        if (!strcmp (a, "-v") || !strcmp (a, "--verbose")) {
            *verbose_p = true;
            continue;
        }
        if (!strcmp (a, "--")) {
            while (++i < argc)
                argv [out++] = argv [i];
            break;
        }
        if (strncmp (a, "--", 2) || !a [2]) {
            argv [out++] = a;
            continue;
        }
        char *name = a + 2;
        char *eq = strchr (name, '=');
        size_t len = eq ? (size_t) (eq - name) : strlen (name);
        const p2c_cfg_t *e = s_find (spec->table, name, len);
        if (!e) {
            fprintf (stderr, "%s: unknown option --%.*s (see --help)\n", spec->prog, (int) len,
                     name);
            return -1;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && e->type != P2C_CFG_BOOL) {
            if (i + 1 >= argc) {
                fprintf (stderr, "%s: --%s wants a value\n", spec->prog, e->name);
                return -1;
            }
            value = argv [++i];
        }
        if (s_set (e, settings, value, "command line") != 0)
            return -1;
    }
    argv [out] = NULL;
    *argc_p = out;
    return 0;
}

//  Parses in order of rising priority; 0, 1 (exit after --help) or -1.
static int
s_parse (const p2c_cfg_spec_t *spec, void *settings, int *argc_p, char **argv,
         bool *check_p, bool *verbose_p)
{
    //  First pass over argv: --help and --config, which come before the
    //  environment whatever their place
    int argc = *argc_p;
    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv [i], "--help") || !strcmp (argv [i], "-h")) {
            s_help (spec);
            return 1;
        }
        if (!strcmp (argv [i], "--config")) {
            if (i + 1 >= argc) {
                fprintf (stderr, "%s: --config wants a file\n", spec->prog);
                return -1;
            }
            if (s_read_file (spec->table, settings, argv [i + 1]) != 0)
                return -1;
        }
    }
    if (s_read_env (spec->table, settings) != 0)
        return -1;
    if (s_read_flags (spec, settings, argc_p, argv, check_p, verbose_p) != 0)
        return -1;
    if (spec->check && spec->check (settings) != 0)
        return -1;
    return 0;
}

int
p2c_cfg_parse (const p2c_cfg_spec_t *spec, void *settings, int *argc_p, char **argv,
               bool *verbose_p)
{
    assert (spec);
    assert (settings);
    p2c_cfg_defaults (spec->table, settings);
    bool check = false, verbose = false;
    int rc = s_parse (spec, settings, argc_p, argv, &check, &verbose);
    if (rc == 0 && check) {
        printf ("%s: configuration OK\n", spec->prog);
        rc = 1;
    }
    if (rc != 0)
        p2c_cfg_free (spec->table, settings);
    if (verbose_p)
        *verbose_p = verbose;
    return rc;
}

void
p2c_cfg_init (const p2c_cfg_spec_t *spec, void *settings, size_t size)
{
    assert (spec);
    assert (settings);
    memset (settings, 0, size);
    p2c_cfg_defaults (spec->table, settings);
    int rc = spec->check ? spec->check (settings) : 0;
    assert (rc == 0);
    (void) rc;
}

int
p2c_cfg_load (const p2c_cfg_spec_t *spec, void *settings, size_t size, int *argc_p,
              char **argv, bool *verbose_p)
{
    memset (settings, 0, size);
    int rc = p2c_cfg_parse (spec, settings, argc_p, argv, verbose_p);
    if (rc == 0 && *argc_p > 1) {
        fprintf (stderr, "%s: unexpected argument '%s' (see --help)\n", spec->prog, argv [1]);
        p2c_cfg_free (spec->table, settings);
        rc = -1;
    }
    return rc;
}

//  ---------------------------------------------------------------------
//  Self-test

typedef struct {
    char *listen;
    const char *key;            //  a const field, as settings structs hold
    bool open;
    int slots;
    uint32_t permille;
    int64_t ttl_ms;
    size_t bytes;
    double rate;
    int mode;
    int checks;                 //  set by the check step
} s_test_settings_t;

static const char *const s_test_modes [] = { "none", "spot", "quorum", NULL };

#define S_F(field) P2C_CFG_FIELD (s_test_settings_t, field)
static const p2c_cfg_t s_test_table [] = {
    { "listen", P2C_CFG_STR, S_F (listen), "127.0.0.1:8765", .help = "address" },
    { "key", P2C_CFG_SECRET, S_F (key), NULL, .help = "key" },
    { "open", P2C_CFG_BOOL, S_F (open), "false", .help = "open" },
    { "slots", P2C_CFG_INT, S_F (slots), "4", 1, 64, .help = "slots" },
    { "permille", P2C_CFG_UINT32, S_F (permille), "50", 0, 1000, .help = "share" },
    { "ttl-s", P2C_CFG_INT64, S_F (ttl_ms), "86400", 1, 31536000, .help = "ttl", .scale = 1000 },
    { "max-mb", P2C_CFG_SIZE, S_F (bytes), "256", 1, 1048576, .help = "bytes",
      .scale = 1024 * 1024 },
    { "rate", P2C_CFG_DOUBLE, S_F (rate), "10000", 1, 1000000, .help = "rate" },
    { "mode", P2C_CFG_ENUM, S_F (mode), "spot", .help = "mode", .names = s_test_modes },
    { .name = NULL }
};
#undef S_F

//  Refuses a rate above 10000 per slot, to show a cross-field check
static int
s_test_check (void *arg)
{
    s_test_settings_t *self = (s_test_settings_t *) arg;
    self->checks++;
    if (self->rate > self->slots * 10000.0) {
        fprintf (stderr, "test: --rate above 10000 per slot\n");
        return -1;
    }
    return 0;
}

static const p2c_cfg_spec_t s_test_spec = { "prog", "", s_test_table, s_test_check };

//  Parses a NULL-terminated list of arguments (copied: parsing reorders)
static int
s_test_parse (s_test_settings_t *self, int *argc_p, char **argv_out, const char **args)
{
    int argc = 0;
    static char store [16][64];
    for (; args [argc]; argc++) {
        snprintf (store [argc], sizeof store [argc], "%s", args [argc]);
        argv_out [argc] = store [argc];
    }
    argv_out [argc] = NULL;
    *argc_p = argc;
    return p2c_cfg_parse (&s_test_spec, self, argc_p, argv_out, NULL);
}

void
p2c_cfg_test (bool verbose)
{
    (void) verbose;
    unsetenv ("P2C2R_LISTEN");
    unsetenv ("P2C2R_SLOTS");

    //  The defaults, as the table writes them, without parsing
    s_test_settings_t st;
    memset (&st, 0, sizeof st);
    p2c_cfg_defaults (s_test_table, &st);
    P2C_CHECK (st.listen && !strcmp (st.listen, "127.0.0.1:8765"));
    P2C_CHECK (st.key && !strcmp (st.key, ""));
    P2C_CHECK (!st.open && st.slots == 4 && st.permille == 50);
    P2C_CHECK (st.ttl_ms == 86400LL * 1000 && st.bytes == 256u * 1024 * 1024);
    P2C_CHECK (st.rate == 10000.0 && st.mode == 1);
    p2c_cfg_free (s_test_table, &st);
    P2C_CHECK (st.listen == NULL && st.key == NULL);

    //  Flags of each type; positional arguments stay, in order
    char *argv [16];
    int argc = 0;
    const char *a1 [] = { "prog", "--slots", "8", "pos", "--open", "--ttl-s=2", "--max-mb", "3",
                          "--rate", "7", "--mode", "quorum", "--permille", "1000", "--", "--x",
                          NULL };
    memset (&st, 0, sizeof st);
    P2C_CHECK (s_test_parse (&st, &argc, argv, a1) == 0);
    P2C_CHECK (st.slots == 8 && st.open && st.ttl_ms == 2000 && st.bytes == 3u * 1024 * 1024);
    P2C_CHECK (st.rate == 7.0 && st.mode == 2 && st.permille == 1000);
    P2C_CHECK (st.checks == 1);
    P2C_CHECK (argc == 3 && !strcmp (argv [1], "pos") && !strcmp (argv [2], "--x"));
    P2C_CHECK (argv [3] == NULL);
    p2c_cfg_free (s_test_table, &st);

    //  Out of bounds, not a number, an unknown value or flag, a missing
    //  value, a failed check: refused, and nothing stays allocated (run
    //  under valgrind to see it: make unit && valgrind build/test/test_common)
    const char *bad [][6] = {
        { "prog", "--listen", "x", "--slots", "65", NULL },
        { "prog", "--listen", "x", "--slots", "4x", NULL },
        { "prog", "--listen", "x", "--mode", "most", NULL },
        { "prog", "--listen", "x", "--nope", NULL },
        { "prog", "--listen", "x", "--open=maybe", NULL },
        { "prog", "--listen", "x", "--slots", NULL },
        { "prog", "--slots=1", "--rate", "20000", NULL },
        { "prog", "--key", "@/nonexistent/p2c2r-key", NULL },
        { "prog", "--listen", "x", "--config", NULL },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        memset (&st, 0, sizeof st);
        P2C_CHECK (s_test_parse (&st, &argc, argv, bad [i]) == -1);
        P2C_CHECK (st.listen == NULL && st.key == NULL);
    }

    //  Rising priority: default < file < environment < flag
    char path [] = "/tmp/p2c_cfg_test_XXXXXX";
    int fd = mkstemp (path);
    P2C_CHECK (fd >= 0);
    FILE *f = fdopen (fd, "w");
    fprintf (f, "# a comment\n\n  listen = 10.0.0.1:1 \nslots = 16\nrate = 5\nkey = @%s\n", path);
    fclose (f);
    setenv ("P2C2R_SLOTS", "32", 1);
    const char *a2 [] = { "prog", "--rate", "6", "--config", path, NULL };
    memset (&st, 0, sizeof st);
    P2C_CHECK (s_test_parse (&st, &argc, argv, a2) == 0);
    P2C_CHECK (st.listen && !strcmp (st.listen, "10.0.0.1:1"));
    P2C_CHECK (st.slots == 32 && st.rate == 6.0);
    //  The secret is the file's first line... here the file itself
    P2C_CHECK (st.key && !strncmp (st.key, "# a comment", 11));
    P2C_CHECK (argc == 1);
    p2c_cfg_free (s_test_table, &st);
    unsetenv ("P2C2R_SLOTS");

    //  A bad line in the file is refused
    f = fopen (path, "w");
    fprintf (f, "listen = 10.0.0.1:1\nno equals sign\n");
    fclose (f);
    const char *a3 [] = { "prog", "--config", path, NULL };
    memset (&st, 0, sizeof st);
    P2C_CHECK (s_test_parse (&st, &argc, argv, a3) == -1);
    P2C_CHECK (st.listen == NULL);
    unlink (path);

    //  -n runs the check, then says exit; --help says exit
    const char *a4 [] = { "prog", "-n", "--slots", "1", "--rate", "20000", NULL };
    memset (&st, 0, sizeof st);
    P2C_CHECK (s_test_parse (&st, &argc, argv, a4) == -1);
    const char *a5 [] = { "prog", "-n", NULL };
    memset (&st, 0, sizeof st);
    P2C_CHECK (s_test_parse (&st, &argc, argv, a5) == 1);
    P2C_CHECK (st.checks == 1 && st.listen == NULL);

    //  The environment overrides the default
    setenv ("P2C2R_LISTEN", "0.0.0.0:9000", 1);
    const char *a6 [] = { "prog", NULL };
    memset (&st, 0, sizeof st);
    P2C_CHECK (s_test_parse (&st, &argc, argv, a6) == 0);
    P2C_CHECK (!strcmp (st.listen, "0.0.0.0:9000"));
    unsetenv ("P2C2R_LISTEN");
    p2c_cfg_free (s_test_table, &st);
    P2C_CHECK (st.listen == NULL);

    //  A process's defaults: the struct zeroed, the table's values, the
    //  check run; its load refuses what no flag takes
    memset (&st, 0xff, sizeof st);
    st.listen = NULL;
    st.key = NULL;
    p2c_cfg_init (&s_test_spec, &st, sizeof st);
    P2C_CHECK (st.listen && !strcmp (st.listen, "127.0.0.1:8765") && st.slots == 4);
    P2C_CHECK (st.checks == 1);
    p2c_cfg_free (s_test_table, &st);
    const char *a7 [] = { "prog", "--slots", "8", "pos", NULL };
    for (argc = 0; a7 [argc]; argc++)
        argv [argc] = (char *) a7 [argc];
    argv [argc] = NULL;
    P2C_CHECK (p2c_cfg_load (&s_test_spec, &st, sizeof st, &argc, argv, NULL) == -1);
    P2C_CHECK (st.listen == NULL && st.key == NULL);
    const char *a8 [] = { "prog", "--slots", "8", NULL };
    for (argc = 0; a8 [argc]; argc++)
        argv [argc] = (char *) a8 [argc];
    argv [argc] = NULL;
    P2C_CHECK (p2c_cfg_load (&s_test_spec, &st, sizeof st, &argc, argv, NULL) == 0);
    P2C_CHECK (st.slots == 8 && argc == 1);
    p2c_cfg_free (s_test_table, &st);
}
