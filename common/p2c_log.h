/*  The one logging API of every P2C2R process (after OpenBSD's log.c).
    One line per event: "<time> <process>[<pid>] <component>: <event> key=value".
    The logger writes the component itself: the process names itself once
    (p2c_log_init, which is also its component), and a file that logs as a
    part of its own ("node", "store", "peer") says so once, before its
    includes: #define P2C_LOG_COMPONENT "node". Messages never start with
    their component. Debug lines appear only with -v. Never log API keys or
    message bodies. */
#ifndef P2C_LOG_H_INCLUDED
#define P2C_LOG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  The component of this file's lines; NULL: the process's
#ifndef P2C_LOG_COMPONENT
#define P2C_LOG_COMPONENT NULL
#endif

typedef enum { P2C_LOG_DEBUG, P2C_LOG_INFO, P2C_LOG_WARN, P2C_LOG_FATAL } p2c_log_level_t;

//  Names the process (the syslog part of every line) and its component
void p2c_log_init (const char *process, bool verbose);
bool p2c_log_verbose (void);

//  One line of a component (NULL: the process's). The macros below are
//  what code calls; this is for a line of another component than its
//  file's (e.g. the client connection, which speaks for peer or gamer).
void p2c_log (p2c_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
//  Logs and exits with status 1
void p2c_log_fatal (const char *component, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3), noreturn));

#define log_debug(...)  p2c_log (P2C_LOG_DEBUG, P2C_LOG_COMPONENT, __VA_ARGS__)
#define log_info(...)   p2c_log (P2C_LOG_INFO, P2C_LOG_COMPONENT, __VA_ARGS__)
#define log_warn(...)   p2c_log (P2C_LOG_WARN, P2C_LOG_COMPONENT, __VA_ARGS__)
//  Logs and exits with status 1, for start-up or resource failures that a
//  supervisor should restart us for.
#define fatal(...)      p2c_log_fatal (P2C_LOG_COMPONENT, __VA_ARGS__)

//  The text of a line after "<time> <process>[<pid>] " into buf (size > 0)
void p2c_log_format (char *buf, size_t size, p2c_log_level_t level, const char *component,
                     const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));

void p2c_log_test (bool verbose);

#endif
