/*  Logging to stderr, one line per event, with a UTC timestamp. */
#include "p2c_log.h"
#include "p2c_test.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char s_process [32] = "p2c2r";
static bool s_verbose = false;

void
p2c_log_init (const char *process, bool verbose)
{
    snprintf (s_process, sizeof s_process, "%s", process);
    s_verbose = verbose;
    //  Line-buffered so that lines of several processes interleave whole.
    setvbuf (stderr, NULL, _IOLBF, 0);
}

bool
p2c_log_verbose (void)
{
    return s_verbose;
}

static void
s_vformat (char *buf, size_t size, p2c_log_level_t level, const char *component,
           const char *fmt, va_list ap)
{
    static const char *levels [] = { "", "", "WARN ", "FATAL " };
    if (!component)
        component = s_process;
    int n = snprintf (buf, size, "%s%s%s", levels [level], component, *component ? ": " : "");
    if (n < 0 || (size_t) n >= size)
        n = 0;
    vsnprintf (buf + n, size - (size_t) n, fmt, ap);
}

void
p2c_log_format (char *buf, size_t size, p2c_log_level_t level, const char *component,
                const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    s_vformat (buf, size, level, component, fmt, ap);
    va_end (ap);
}

static void
s_vlog (p2c_log_level_t level, const char *component, const char *fmt, va_list ap)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    struct tm tm;
    gmtime_r (&tv.tv_sec, &tm);
    char text [2048];
    s_vformat (text, sizeof text, level, component, fmt, ap);
    //  syslog style: the process and its pid, then the component and the
    //  event ("node: broker lost ...")
    fprintf (stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%d] %s\n",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
             tm.tm_sec, (int) (tv.tv_usec / 1000), s_process, (int) getpid (), text);
}

void
p2c_log (p2c_log_level_t level, const char *component, const char *fmt, ...)
{
    if (level == P2C_LOG_DEBUG && !s_verbose)
        return;
    va_list ap;
    va_start (ap, fmt);
    s_vlog (level, component, fmt, ap);
    va_end (ap);
}

void
p2c_log_fatal (const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    s_vlog (P2C_LOG_FATAL, component, fmt, ap);
    va_end (ap);
    exit (1);
}

void
p2c_log_test (bool verbose)
{
    (void) verbose;
    char buf [64];
    //  The process's component unless the line names another; never twice
    p2c_log_init ("tester", verbose);
    p2c_log_format (buf, sizeof buf, P2C_LOG_INFO, NULL, "up port=%d", 80);
    P2C_CHECK (!strcmp (buf, "tester: up port=80"));
    p2c_log_format (buf, sizeof buf, P2C_LOG_WARN, "node", "broker lost id=%s", "x");
    P2C_CHECK (!strcmp (buf, "WARN node: broker lost id=x"));
    p2c_log_format (buf, sizeof buf, P2C_LOG_INFO, "", "bare");
    P2C_CHECK (!strcmp (buf, "bare"));
    //  A long line is cut, not overrun
    p2c_log_format (buf, 8, P2C_LOG_INFO, "node", "%s", "0123456789");
    P2C_CHECK (strlen (buf) == 7);
    p2c_log_init ("test", verbose);
}
