/*  The peer as a good guest on its owner's PC: it follows the owner's
    preferences (agt_prefs) against what the machine is doing (agt_sources),
    pauses and resumes, holds the workers to the CPU usage limit with a
    duty cycle (SIGSTOP/SIGCONT, as BOINC does), answers `p2c2r-agent
    status|pause|resume|snooze|prefs` (agt_control), and keeps the counts
    of work done today and in all across restarts (a small JSON file in
    the state directory). The peer drives it from its loop: agt_guest_tick
    on every cron tick, the task and connection events as they happen. */
#ifndef AGT_GUEST_H_INCLUDED
#define AGT_GUEST_H_INCLUDED

#include "agt_prefs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _agt_guest_t agt_guest_t;

typedef struct {
    const char *config_path;        //  the agent's --config file, read again on reload; or NULL
    const char *control_path;       //  the control socket; NULL: the default; "off": none
    const char *proc_root;          //  "/proc", or a test's staged directory
    const char *sys_root;           //  "/sys", likewise
    const char *state_path;         //  the counters' file; NULL: not kept
    const char *server;             //  the server's address, for status
} agt_guest_opts_t;

//  prefs: the preferences from flags and config at start (copied). NULL
//  with why when the control socket cannot be made.
agt_guest_t *agt_guest_new (const agt_guest_opts_t *opts, const agt_prefs_t *prefs,
                            char *why, size_t why_size);
void agt_guest_destroy (agt_guest_t **self_p);

//  The control socket's listening descriptor (to watch), or -1
int agt_guest_control_fd (agt_guest_t *self);
//  The control socket is readable
void agt_guest_control_ready (agt_guest_t *self, int64_t now_us);

//  Every cron tick: re-judges the preferences (once a second), runs the
//  duty cycle over the worker pids and serves control clients. Returns
//  true when the peer went from running to paused or back.
bool agt_guest_tick (agt_guest_t *self, int64_t now_us, const int *pids, int npids);

bool agt_guest_paused (agt_guest_t *self);
//  Why paused ("" when running)
const char *agt_guest_reason (agt_guest_t *self);

//  Reads the config file's preferences again (SIGHUP): they replace the
//  running ones, and a preference the file does not name takes its default;
//  a file with a bad line changes nothing. Logs what it did.
void agt_guest_reload (agt_guest_t *self);

//  Facts from the peer, for status
void agt_guest_task_done (agt_guest_t *self, bool ok, uint64_t compute_us);
void agt_guest_set_link (agt_guest_t *self, bool connected, double latency_ms);
void agt_guest_set_running (agt_guest_t *self, int tasks_running);
//  The account's figures as the server reported them (a JSON object text,
//  copied); shown by status
void agt_guest_set_earnings (agt_guest_t *self, const char *json);
//  True once after an owner asked for status (the peer may then refresh
//  the earnings for the next status; this one is answered at once)
bool agt_guest_take_status_asked (agt_guest_t *self);

const agt_prefs_t *agt_guest_prefs (agt_guest_t *self);

void agt_guest_test (bool verbose);

#endif
