/*  What the contributor's machine is doing, for the preferences' rule
    (agt_prefs): time since the last keyboard or mouse input (from the
    input devices' interrupt counts in /proc/interrupts; a machine without
    them, a server, counts as idle), whether it runs on battery
    (/sys/class/power_supply), whether an exclusive app runs (the process
    names in /proc), how much CPU others use (/proc/stat less our own
    processes), and the local time. The roots of /proc and /sys are
    settings, so that a test can stage any situation in a directory. */
#ifndef AGT_SOURCES_H_INCLUDED
#define AGT_SOURCES_H_INCLUDED

#include "agt_prefs.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct _agt_sources_t agt_sources_t;

agt_sources_t *agt_sources_new (const char *proc_root, const char *sys_root);
void agt_sources_destroy (agt_sources_t **self_p);

//  Reads the machine's state now (now_us: monotonic clock; own: our
//  processes' pids, whose CPU is not "others'"). out->app_running points
//  into self until the next call.
void agt_sources_read (agt_sources_t *self, const agt_prefs_t *prefs, const int *own, int nown,
                       int64_t now_us, agt_prefs_sources_t *out);

void agt_sources_test (bool verbose);

#endif
