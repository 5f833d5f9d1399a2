/*  Table-driven configuration: defaults, file, environment, flags. */
#include "p2c_cfg.h"
#include "p2c_test.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
s_read_secret_file (const char *path)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return NULL;
    char buf [4096];
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf [n] = 0;
    while (n > 0 && (buf [n - 1] == '\n' || buf [n - 1] == '\r' || buf [n - 1] == ' '))
        buf [--n] = 0;
    return strdup (buf);
}

//  Sets one entry from text; source names where it came from, for errors.
static int
s_set (p2c_cfg_t *e, const char *value, const char *source)
{
    if (e->type == P2C_CFG_STR || e->type == P2C_CFG_SECRET) {
        char **t = (char **) e->target;
        char *copy = NULL;
        if (e->type == P2C_CFG_SECRET && value && value [0] == '@') {
            copy = s_read_secret_file (value + 1);
            if (!copy) {
                fprintf (stderr, "%s: cannot read the file for --%s\n", source, e->name);
                return -1;
            }
        }
        else
            copy = strdup (value ? value : "");
        free (*t);
        *t = copy;
        return 0;
    }
    if (e->type == P2C_CFG_INT) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll (value ? value : "", &end, 10);
        if (!value || !*value || *end || errno) {
            fprintf (stderr, "%s: --%s wants a whole number, not '%s'\n", source, e->name,
                     value ? value : "");
            return -1;
        }
        if (v < e->min || v > e->max) {
            fprintf (stderr, "%s: --%s must be between %lld and %lld, not %lld\n", source,
                     e->name, e->min, e->max, v);
            return -1;
        }
        *(long long *) e->target = v;
        return 0;
    }
    //  BOOL
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
    *(bool *) e->target = v;
    return 0;
}

static p2c_cfg_t *
s_find (p2c_cfg_t *table, const char *name, size_t len)
{
    for (p2c_cfg_t *e = table; e->name; e++)
        if (strlen (e->name) == len && !strncmp (e->name, name, len))
            return e;
    return NULL;
}

static int
s_read_file (p2c_cfg_t *table, const char *path)
{
    FILE *f = fopen (path, "r");
    if (!f) {
        fprintf (stderr, "config: cannot open %s\n", path);
        return -1;
    }
    char line [4096];
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
        p2c_cfg_t *e = s_find (table, s, (size_t) (kend - s));
        if (!e) {
            fprintf (stderr, "%s:%d: unknown setting '%.*s'\n", path, lineno, (int) (kend - s), s);
            rc = -1;
            break;
        }
        char source [300];
        snprintf (source, sizeof source, "%s:%d", path, lineno);
        rc = s_set (e, v, source);
    }
    fclose (f);
    return rc;
}

static void
s_help (p2c_cfg_t *table, const char *prog, const char *usage)
{
    printf ("Usage: %s %s\n\nOptions (each also P2C2R_NAME in the environment or 'name = value' in --config FILE):\n",
            prog, usage);
    for (p2c_cfg_t *e = table; e->name; e++) {
        char left [64];
        snprintf (left, sizeof left, "--%s%s", e->name,
                  e->type == P2C_CFG_BOOL ? "" : e->type == P2C_CFG_INT ? " N" : " VALUE");
        printf ("  %-26s %s", left, e->help);
        if (e->type == P2C_CFG_INT)
            printf (" [%s; %lld..%lld]", e->def ? e->def : "0", e->min, e->max);
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

int
p2c_cfg_parse (p2c_cfg_t *table, int *argc_p, char **argv, const char *prog,
               const char *usage, bool *verbose_p)
{
    //  Defaults
    for (p2c_cfg_t *e = table; e->name; e++) {
        if (e->type == P2C_CFG_STR || e->type == P2C_CFG_SECRET)
            *(char **) e->target = NULL;
        if (s_set (e, e->def ? e->def : (e->type == P2C_CFG_INT ? "0" : e->type == P2C_CFG_BOOL ? "false" : ""),
                   "default") != 0)
            return -1;
    }
    bool check = false, verbose = false;
    //  First pass over argv: --config, --help, --check, -v
    int argc = *argc_p;
    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv [i], "--help") || !strcmp (argv [i], "-h")) {
            s_help (table, prog, usage);
            return 1;
        }
        if (!strcmp (argv [i], "--config")) {
            if (i + 1 >= argc) {
                fprintf (stderr, "%s: --config wants a file\n", prog);
                return -1;
            }
            if (s_read_file (table, argv [i + 1]) != 0)
                return -1;
        }
    }
    //  Environment
    for (p2c_cfg_t *e = table; e->name; e++) {
        char env [128] = "P2C2R_";
        size_t k = strlen (env);
        for (const char *c = e->name; *c && k < sizeof env - 1; c++)
            env [k++] = *c == '-' ? '_' : (char) toupper ((unsigned char) *c);
        env [k] = 0;
        const char *v = getenv (env);
        if (v && s_set (e, v, env) != 0)
            return -1;
    }
    //  Flags; positional arguments are kept in order
    int out = 1;
    for (int i = 1; i < argc; i++) {
        char *a = argv [i];
        if (!strcmp (a, "--config")) {
            i++;
            continue;
        }
        if (!strcmp (a, "-n") || !strcmp (a, "--check")) {
            check = true;
            continue;
        }
        if (!strcmp (a, "-v") || !strcmp (a, "--verbose")) {
            verbose = true;
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
        p2c_cfg_t *e = s_find (table, name, len);
        if (!e) {
            fprintf (stderr, "%s: unknown option --%.*s (see --help)\n", prog, (int) len, name);
            return -1;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && e->type != P2C_CFG_BOOL) {
            if (i + 1 >= argc) {
                fprintf (stderr, "%s: --%s wants a value\n", prog, e->name);
                return -1;
            }
            value = argv [++i];
        }
        if (s_set (e, value, "command line") != 0)
            return -1;
    }
    argv [out] = NULL;
    *argc_p = out;
    if (verbose_p)
        *verbose_p = verbose;
    if (check) {
        printf ("%s: configuration OK\n", prog);
        return 1;
    }
    return 0;
}

void
p2c_cfg_free (p2c_cfg_t *table)
{
    for (p2c_cfg_t *e = table; e->name; e++)
        if (e->type == P2C_CFG_STR || e->type == P2C_CFG_SECRET) {
            free (*(char **) e->target);
            *(char **) e->target = NULL;
        }
}

void
p2c_cfg_test (bool verbose)
{
    (void) verbose;
    char *listen = NULL;
    long long slots = 0;
    bool open = false;
    p2c_cfg_t table [] = {
        { "listen", P2C_CFG_STR, "127.0.0.1:8765", 0, 0, &listen, "address" },
        { "slots", P2C_CFG_INT, "4", 1, 64, &slots, "slots" },
        { "open", P2C_CFG_BOOL, "false", 0, 0, &open, "open" },
        { NULL, 0, NULL, 0, 0, NULL, NULL }
    };
    char a0 [] = "prog", a1 [] = "--slots", a2 [] = "8", a3 [] = "pos", a4 [] = "--open";
    char *argv [] = { a0, a1, a2, a3, a4, NULL };
    int argc = 5;
    unsetenv ("P2C2R_LISTEN");
    int rc = p2c_cfg_parse (table, &argc, argv, "prog", "", NULL);
    P2C_CHECK (rc == 0);
    P2C_CHECK (slots == 8);
    P2C_CHECK (open);
    P2C_CHECK (listen && !strcmp (listen, "127.0.0.1:8765"));
    P2C_CHECK (argc == 2 && !strcmp (argv [1], "pos"));

    //  Out of bounds is refused, and so is an unknown flag
    char b1 [] = "--slots", b2 [] = "65";
    char *argv2 [] = { a0, b1, b2, NULL };
    argc = 3;
    P2C_CHECK (p2c_cfg_parse (table, &argc, argv2, "prog", "", NULL) == -1);
    char c1 [] = "--nope";
    char *argv3 [] = { a0, c1, NULL };
    argc = 2;
    P2C_CHECK (p2c_cfg_parse (table, &argc, argv3, "prog", "", NULL) == -1);

    //  The environment overrides the default, the flag the environment
    setenv ("P2C2R_LISTEN", "0.0.0.0:9000", 1);
    char *argv4 [] = { a0, NULL };
    argc = 1;
    P2C_CHECK (p2c_cfg_parse (table, &argc, argv4, "prog", "", NULL) == 0);
    P2C_CHECK (!strcmp (listen, "0.0.0.0:9000"));
    unsetenv ("P2C2R_LISTEN");
    p2c_cfg_free (table);
    P2C_CHECK (listen == NULL);
}
