/*  Logging to stderr, one line per event, with a UTC timestamp. */
#include "p2c_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char s_component [32] = "p2c2r";
static bool s_verbose = false;

void
p2c_log_init (const char *component, bool verbose)
{
    snprintf (s_component, sizeof s_component, "%s", component);
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
s_vlog (const char *level, const char *fmt, va_list ap)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    struct tm tm;
    gmtime_r (&tv.tv_sec, &tm);
    char line [2048];
    //  syslog style: the process and its pid, then the message, which names
    //  its own component ("node: broker lost ...")
    int n = snprintf (line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%d] %s",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                      tm.tm_min, tm.tm_sec, (int) (tv.tv_usec / 1000), s_component,
                      (int) getpid (), level);
    if (n < 0 || n >= (int) sizeof line)
        n = 0;
    vsnprintf (line + n, sizeof line - (size_t) n, fmt, ap);
    fprintf (stderr, "%s\n", line);
}

void
log_debug (const char *fmt, ...)
{
    if (!s_verbose)
        return;
    va_list ap;
    va_start (ap, fmt);
    s_vlog ("", fmt, ap);
    va_end (ap);
}

void
log_info (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    s_vlog ("", fmt, ap);
    va_end (ap);
}

void
log_warn (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    s_vlog ("WARN ", fmt, ap);
    va_end (ap);
}

void
fatal (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    s_vlog ("FATAL ", fmt, ap);
    va_end (ap);
    exit (1);
}
