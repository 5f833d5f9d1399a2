/*  Allocations that cannot fail gracefully (see p2c_mem.h). */
#include "p2c_mem.h"
#include "p2c_log.h"
#include "p2c_test.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
p2c_oom (const char *what)
{
    p2c_log (P2C_LOG_FATAL, NULL, "out of memory what=%s", what);
    abort ();
}

static void
s_oom_at (const char *file, int line)
{
    char where [128];
    const char *slash = strrchr (file, '/');
    snprintf (where, sizeof where, "%s:%d", slash ? slash + 1 : file, line);
    p2c_oom (where);
}

void *
p2c_malloc_at (size_t size, const char *file, int line)
{
    void *p = malloc (size ? size : 1);
    if (!p)
        s_oom_at (file, line);
    return p;
}

void *
p2c_calloc_at (size_t n, size_t size, const char *file, int line)
{
    void *p = calloc (n ? n : 1, size ? size : 1);
    if (!p)
        s_oom_at (file, line);
    return p;
}

void *
p2c_realloc_at (void *ptr, size_t size, const char *file, int line)
{
    void *p = realloc (ptr, size ? size : 1);
    if (!p)
        s_oom_at (file, line);
    return p;
}

char *
p2c_strndup_at (const char *s, size_t n, const char *file, int line)
{
    char *p = strndup (s, n);
    if (!p)
        s_oom_at (file, line);
    return p;
}

char *
p2c_sprintf_at (const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    char *p = NULL;
    int n = vasprintf (&p, fmt, ap);
    va_end (ap);
    if (n < 0)
        s_oom_at (file, line);
    return p;
}

void
p2c_mem_test (bool verbose)
{
    (void) verbose;
    char *s = p2c_strdup ("abc");
    P2C_CHECK (s && !strcmp (s, "abc"));
    char *t = p2c_strndup ("abcdef", 2);
    P2C_CHECK (t && !strcmp (t, "ab"));
    char *f = p2c_sprintf ("%s/%d", "dir", 7);
    P2C_CHECK (f && !strcmp (f, "dir/7"));
    free (f);
    //  Zero sizes still give a pointer to free, never NULL
    void *z = p2c_malloc (0);
    int *c = (int *) p2c_calloc (4, sizeof (int));
    P2C_CHECK (z && c && c [3] == 0);
    c = (int *) p2c_realloc (c, 8 * sizeof (int));
    P2C_CHECK (c != NULL);
    free (s);
    free (t);
    free (z);
    free (c);
    //  The abort itself is not run here: it would end the suite
}
