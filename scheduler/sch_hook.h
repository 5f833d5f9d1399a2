/*  The notification hook of the server's alerts (--alert-exec CMD): runs
    CMD once per change of an alert's state, with the alert in the
    environment (P2C2R_ALERT_NAME, _STATE firing|resolved, _VALUE,
    _THRESHOLD, _SINCE unix seconds, _SINCE_ISO, _SUMMARY, _DETAIL, _HOST),
    so that an operator can mail, page or post (deploy/alerts/mail.sh).
    CMD is split at spaces and run directly (posix_spawnp), never through a
    shell unless shell is set (then /bin/sh -c CMD). The scheduler's loop
    never waits for it: at most max_running run at once, the rest wait in
    a bounded queue (beyond it they are dropped, logged), children are
    reaped at the cron and killed past timeout_ms. */
#ifndef SCH_HOOK_H_INCLUDED
#define SCH_HOOK_H_INCLUDED

#include "sch_alerts.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Changes waiting for a free run
#define SCH_HOOK_QUEUE_MAX 64

typedef struct _sch_hook_t sch_hook_t;

//  NULL when cmd is empty (no hook)
sch_hook_t *sch_hook_new (const char *cmd, bool shell, size_t max_running, int64_t timeout_ms);
void sch_hook_destroy (sch_hook_t **self_p);

//  One change of state: runs CMD now, or queues it
void sch_hook_fire (sch_hook_t *self, const sch_alert_t *alert, int64_t now_ms);

//  Reaps the finished, kills the overdue, starts the queued
void sch_hook_cron (sch_hook_t *self, int64_t now_ms);

size_t sch_hook_running (sch_hook_t *self);
//  runs started, changes dropped (queue full), runs that failed (could
//  not start, exit status not 0, killed)
uint64_t sch_hook_started (sch_hook_t *self);
uint64_t sch_hook_dropped (sch_hook_t *self);
uint64_t sch_hook_failed (sch_hook_t *self);

void sch_hook_test (bool verbose);

#endif
