/*  The one logging API of every P2C2R process (after OpenBSD's log.c).
    One line per event: "<time> <process>[<pid>] <component>: <event> key=value",
    where the message itself starts with its component ("node: broker lost").
    Debug lines appear only with -v. Never log API keys or message bodies. */
#ifndef P2C_LOG_H_INCLUDED
#define P2C_LOG_H_INCLUDED

#include <stdbool.h>

void p2c_log_init (const char *component, bool verbose);
bool p2c_log_verbose (void);
void log_debug (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void log_info (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void log_warn (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
//  Logs and exits with status 1, for start-up or resource failures that a
//  supervisor should restart us for.
void fatal (const char *fmt, ...) __attribute__ ((format (printf, 1, 2), noreturn));

#endif
