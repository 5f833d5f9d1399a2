/*  The peer as a good guest on its owner's PC (see agt_guest.h). */
#define P2C_LOG_COMPONENT "peer"
#include "agt_guest.h"
#include "agt_control.h"
#include "agt_sources.h"
#include "p2c_log.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

//  How often the machine's state is read (reading /proc for every process
//  costs a little; an owner starting a game waits at most this long)
#define S_JUDGE_US      1000000
//  The duty cycle's period (BOINC uses one second too)
#define S_DUTY_US       1000000
//  The counters are written at most this often, and when stopping
#define S_SAVE_US       10000000
#define S_MAX_PIDS      256

struct _agt_guest_t {
    agt_prefs_t prefs;
    char *config_path, *state_path, *server;
    agt_sources_t *sources;
    agt_control_t *control;
    //  Why paused: the preferences' rule, or the owner's command
    char reason [200];
    bool paused;
    bool told;                      //  the state agt_guest_tick last reported
    bool user_paused;               //  `pause` until `resume`
    int64_t snooze_until_us;        //  `snooze`: paused until then
    int64_t judged_us;
    //  The duty cycle
    bool stopped;                   //  the workers are SIGSTOPped now
    int stopped_pids [S_MAX_PIDS];
    int nstopped;
    //  For status
    bool connected;
    double latency_ms;
    int running;
    char *earnings;                 //  JSON object text from the server, or NULL
    bool status_asked;              //  a status command came since the peer last looked
    //  Counters, kept in state_path
    char day [16];                  //  YYYY-MM-DD of the "today" counters
    long long tasks_today, tasks_total;
    long long compute_us_today, compute_us_total;
    bool dirty;
    int64_t saved_us;
};

static void
s_today (char day [16])
{
    time_t t = time (NULL);
    struct tm tm;
    localtime_r (&t, &tm);
    strftime (day, 16, "%Y-%m-%d", &tm);
}

static void
s_load_counters (agt_guest_t *self)
{
    s_today (self->day);
    if (!self->state_path)
        return;
    json_t *o = json_load_file (self->state_path, 0, NULL);
    if (!json_is_object (o)) {
        json_decref (o);
        return;
    }
    self->tasks_total = json_integer_value (json_object_get (o, "tasks_total"));
    self->compute_us_total = json_integer_value (json_object_get (o, "compute_us_total"));
    const char *day = json_string_value (json_object_get (o, "day"));
    if (day && !strcmp (day, self->day)) {
        self->tasks_today = json_integer_value (json_object_get (o, "tasks_today"));
        self->compute_us_today = json_integer_value (json_object_get (o, "compute_us_today"));
    }
    json_decref (o);
}

//  Written to a new file and renamed, so a crash leaves the old or the new
static void
s_save_counters (agt_guest_t *self)
{
    if (!self->state_path || !self->dirty)
        return;
    json_t *o = json_pack ("{s:s s:I s:I s:I s:I}", "day", self->day,
                           "tasks_today", (json_int_t) self->tasks_today,
                           "tasks_total", (json_int_t) self->tasks_total,
                           "compute_us_today", (json_int_t) self->compute_us_today,
                           "compute_us_total", (json_int_t) self->compute_us_total);
    char tmp [PATH_MAX];
    snprintf (tmp, sizeof tmp, "%s.new", self->state_path);
    if (o && json_dump_file (o, tmp, JSON_COMPACT) == 0 && rename (tmp, self->state_path) == 0)
        self->dirty = false;
    else
        log_warn ("cannot save counters path=%s reason=\"%s\"", self->state_path,
                  strerror (errno));
    json_decref (o);
}

static char *
s_status_json (agt_guest_t *self)
{
    json_t *o = json_pack ("{s:b s:s s:s s:s s:b s:i s:I s:I s:f s:f}",
                           "ok", 1,
                           "state", self->paused ? "paused" : "running",
                           "reason", self->reason,
                           "server", self->server ? self->server : "",
                           "connected", self->connected,
                           "tasks_running", self->running,
                           "tasks_today", (json_int_t) self->tasks_today,
                           "tasks_total", (json_int_t) self->tasks_total,
                           "compute_s_today", (double) self->compute_us_today / 1e6,
                           "compute_s_total", (double) self->compute_us_total / 1e6);
    if (o && self->connected && self->latency_ms >= 0)
        json_object_set_new (o, "latency_ms", json_real (self->latency_ms));
    if (o && self->snooze_until_us) {
        int64_t left = (self->snooze_until_us - p2c_now_us ()) / 1000000;
        json_object_set_new (o, "snooze_s", json_integer (left > 0 ? left : 0));
    }
    json_t *earn = self->earnings ? json_loads (self->earnings, 0, NULL) : NULL;
    if (o && json_is_object (earn))
        json_object_set (o, "earnings", earn);
    json_decref (earn);
    char *text = o ? json_dumps (o, JSON_COMPACT) : NULL;
    json_decref (o);
    return text;
}

static void s_judge (agt_guest_t *self, int64_t now_us, const int *pids, int npids);

//  The control socket's commands, on the peer's loop
static char *
s_on_control (const char *cmd, int64_t arg, void *arg_self)
{
    agt_guest_t *self = (agt_guest_t *) arg_self;
    int64_t now = p2c_now_us ();
    if (!strcmp (cmd, "status"))
        self->status_asked = true;
    if (!strcmp (cmd, "pause"))
        self->user_paused = true;
    else
    if (!strcmp (cmd, "resume")) {
        self->user_paused = false;
        self->snooze_until_us = 0;
    }
    else
    if (!strcmp (cmd, "snooze"))
        self->snooze_until_us = now + arg * 1000000;
    else
    if (!strcmp (cmd, "reload"))
        agt_guest_reload (self);
    if (!strcmp (cmd, "prefs") || !strcmp (cmd, "reload")) {
        char *prefs = agt_prefs_json (&self->prefs);
        json_t *p = prefs ? json_loads (prefs, 0, NULL) : NULL;
        free (prefs);
        json_t *o = json_pack ("{s:b s:o}", "ok", 1, "prefs", p ? p : json_object ());
        char *text = o ? json_dumps (o, JSON_COMPACT) : NULL;
        json_decref (o);
        return text;
    }
    //  A state change shows in the reply at once; the peer learns of it
    //  at its next tick (judged_us reset)
    self->judged_us = 0;
    s_judge (self, now, NULL, -1);
    return s_status_json (self);
}

agt_guest_t *
agt_guest_new (const agt_guest_opts_t *opts, const agt_prefs_t *prefs, char *why,
               size_t why_size)
{
    agt_guest_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->prefs = *prefs;
    self->config_path = opts->config_path ? strdup (opts->config_path) : NULL;
    self->state_path = opts->state_path ? strdup (opts->state_path) : NULL;
    self->server = strdup (opts->server ? opts->server : "");
    self->sources = agt_sources_new (opts->proc_root, opts->sys_root);
    self->latency_ms = -1;
    if (!self->sources || !self->server) {
        agt_guest_destroy (&self);
        return NULL;
    }
    if (!opts->control_path || strcmp (opts->control_path, "off")) {
        char *def = opts->control_path ? NULL : agt_control_default_path ();
        self->control = agt_control_new (opts->control_path ? opts->control_path : def,
                                         s_on_control, self, why, why_size);
        free (def);
        //  A second agent of the same user goes on without local control
        //  when it was not given a socket of its own; one that was, stops
        if (!self->control && !opts->control_path)
            log_warn ("no local control (p2c2r-agent status): %s; give --control PATH",
                      why);
        else
        if (!self->control) {
            agt_guest_destroy (&self);
            return NULL;
        }
    }
    s_load_counters (self);
    return self;
}

//  Lets stopped workers go on (before a pause, a change of limit, the end)
static void
s_continue (agt_guest_t *self)
{
    for (int i = 0; i < self->nstopped; i++)
        kill (self->stopped_pids [i], SIGCONT);
    self->nstopped = 0;
    self->stopped = false;
}

void
agt_guest_destroy (agt_guest_t **self_p)
{
    agt_guest_t *self = *self_p;
    if (!self)
        return;
    s_continue (self);
    self->dirty = true;
    s_save_counters (self);
    agt_control_destroy (&self->control);
    agt_sources_destroy (&self->sources);
    free (self->config_path);
    free (self->state_path);
    free (self->server);
    free (self->earnings);
    free (self);
    *self_p = NULL;
}

int
agt_guest_control_fd (agt_guest_t *self)
{
    return self->control ? agt_control_fd (self->control) : -1;
}

void
agt_guest_control_ready (agt_guest_t *self, int64_t now_us)
{
    if (self->control)
        agt_control_serve (self->control, now_us);
}

//  Applies the rule; npids < 0: keep the last load sample
static void
s_judge (agt_guest_t *self, int64_t now_us, const int *pids, int npids)
{
    char why [200];
    const char *reason = NULL;
    if (self->user_paused)
        reason = "paused by the owner";
    else
    if (self->snooze_until_us && now_us < self->snooze_until_us)
        reason = "snoozed by the owner";
    else {
        self->snooze_until_us = 0;
        if (npids >= 0 || !self->judged_us) {
            agt_prefs_sources_t src;
            agt_sources_read (self->sources, &self->prefs, pids, npids < 0 ? 0 : npids, now_us,
                              &src);
            reason = agt_prefs_pause_reason (&self->prefs, &src, why, sizeof why);
        }
        else
        if (self->paused && strcmp (self->reason, "paused by the owner")
                 && strcmp (self->reason, "snoozed by the owner"))
            reason = self->reason [0] ? self->reason : NULL;
    }
    self->judged_us = now_us;
    bool paused = reason != NULL;
    if (paused != self->paused || (reason && strcmp (reason, self->reason))) {
        if (paused)
            log_info ("paused reason=\"%s\"", reason);
        else
            log_info ("running again");
    }
    if (reason && reason != self->reason)
        snprintf (self->reason, sizeof self->reason, "%s", reason);
    if (!reason)
        self->reason [0] = 0;
    self->paused = paused;
}

//  The CPU usage limit: in each second the workers run limit% of it and
//  are stopped for the rest. A pause lets them go on (tasks in flight end).
static void
s_duty (agt_guest_t *self, int64_t now_us, const int *pids, int npids)
{
    int limit = self->prefs.cpu_usage_limit;
    if (limit >= 100 || self->paused || npids <= 0) {
        if (self->stopped)
            s_continue (self);
        return;
    }
    int64_t phase = now_us % S_DUTY_US;
    bool stop = phase >= (int64_t) limit * S_DUTY_US / 100;
    if (stop && !self->stopped) {
        self->nstopped = 0;
        for (int i = 0; i < npids && i < S_MAX_PIDS; i++)
            if (pids [i] > 0 && kill (pids [i], SIGSTOP) == 0)
                self->stopped_pids [self->nstopped++] = pids [i];
        self->stopped = true;
    }
    else
    if (!stop && self->stopped)
        s_continue (self);
}

bool
agt_guest_tick (agt_guest_t *self, int64_t now_us, const int *pids, int npids)
{
    if (self->control)
        agt_control_serve (self->control, now_us);
    if (!self->judged_us || now_us - self->judged_us >= S_JUDGE_US
        || (self->snooze_until_us && now_us >= self->snooze_until_us))
        s_judge (self, now_us, pids, npids);
    s_duty (self, now_us, pids, npids);
    char day [16];
    s_today (day);
    if (strcmp (day, self->day)) {
        snprintf (self->day, sizeof self->day, "%s", day);
        self->tasks_today = self->compute_us_today = 0;
        self->dirty = true;
    }
    if (self->dirty && now_us - self->saved_us >= S_SAVE_US) {
        self->saved_us = now_us;
        s_save_counters (self);
    }
    //  A change made by a control command between ticks counts too
    bool changed = self->told != self->paused;
    self->told = self->paused;
    return changed;
}

bool
agt_guest_paused (agt_guest_t *self)
{
    return self->paused;
}

const char *
agt_guest_reason (agt_guest_t *self)
{
    return self->reason;
}

void
agt_guest_reload (agt_guest_t *self)
{
    if (!self->config_path) {
        log_info ("preferences reload asked, but no --config file was given");
        return;
    }
    //  The file is the whole truth after a reload: a preference it no
    //  longer names goes back to its default (not to a flag given at start)
    char why [512];
    agt_prefs_t fresh;
    agt_prefs_defaults (&fresh);
    if (agt_prefs_load (&fresh, self->config_path, why, sizeof why) != 0) {
        log_warn ("preferences not reloaded, the old ones stay reason=\"%s\"", why);
        return;
    }
    self->prefs = fresh;
    if (self->stopped)
        s_continue (self);
    self->judged_us = 0;
    log_info ("preferences reloaded path=%s cpu_usage_limit=%d", self->config_path,
              self->prefs.cpu_usage_limit);
}

void
agt_guest_task_done (agt_guest_t *self, bool ok, uint64_t compute_us)
{
    if (!ok)
        return;
    self->tasks_today++;
    self->tasks_total++;
    self->compute_us_today += (long long) compute_us;
    self->compute_us_total += (long long) compute_us;
    self->dirty = true;
}

void
agt_guest_set_link (agt_guest_t *self, bool connected, double latency_ms)
{
    self->connected = connected;
    self->latency_ms = latency_ms;
}

void
agt_guest_set_running (agt_guest_t *self, int tasks_running)
{
    self->running = tasks_running;
}

void
agt_guest_set_earnings (agt_guest_t *self, const char *json)
{
    free (self->earnings);
    self->earnings = json ? strdup (json) : NULL;
}

bool
agt_guest_take_status_asked (agt_guest_t *self)
{
    bool asked = self->status_asked;
    self->status_asked = false;
    return asked;
}

const agt_prefs_t *
agt_guest_prefs (agt_guest_t *self)
{
    return &self->prefs;
}

//  --------------------------------------------------------------------------

void
agt_guest_test (bool verbose)
{
    (void) verbose;
    char dir [] = "/tmp/agt-guest-XXXXXX";
    P2C_CHECK (mkdtemp (dir) != NULL);
    char proc [200], state [200], conf [200];
    snprintf (proc, sizeof proc, "%s/proc", dir);
    snprintf (state, sizeof state, "%s/counters.json", dir);
    snprintf (conf, sizeof conf, "%s/agent.conf", dir);
    mkdir (proc, 0700);
    agt_prefs_t prefs;
    agt_prefs_defaults (&prefs);
    agt_prefs_set (&prefs, "exclusive-apps", "mygame", NULL, 0);
    agt_guest_opts_t opts = { conf, "off", proc, dir, state, "ws://x" };
    char why [200];
    agt_guest_t *g = agt_guest_new (&opts, &prefs, why, sizeof why);
    P2C_CHECK (g != NULL && agt_guest_control_fd (g) == -1);
    if (!g)
        return;
    int64_t t = 1000000;
    P2C_CHECK (!agt_guest_tick (g, t, NULL, 0) && !agt_guest_paused (g));

    //  The game starts: paused within a second; it ends: running again
    char pdir [300], path [400];
    snprintf (pdir, sizeof pdir, "%s/77", proc);
    mkdir (pdir, 0700);
    snprintf (path, sizeof path, "%s/comm", pdir);
    FILE *f = fopen (path, "w");
    fputs ("mygame\n", f);
    fclose (f);
    P2C_CHECK (!agt_guest_tick (g, t + 500000, NULL, 0));     //  not judged yet
    P2C_CHECK (agt_guest_tick (g, t + 1000000, NULL, 0) && agt_guest_paused (g)
               && strstr (agt_guest_reason (g), "mygame"));
    unlink (path);
    P2C_CHECK (agt_guest_tick (g, t + 2000000, NULL, 0) && !agt_guest_paused (g));

    //  The duty cycle stops and continues a real process
    pid_t child = fork ();
    if (child == 0) {
        while (true)
            pause ();
    }
    int pids [1] = { child };
    f = fopen (conf, "w");
    fputs ("cpu-usage-limit = 40\nexclusive-apps = mygame\n", f);
    fclose (f);
    agt_guest_reload (g);
    P2C_CHECK (agt_guest_prefs (g)->cpu_usage_limit == 40);
    int64_t base = 10 * S_DUTY_US;
    agt_guest_tick (g, base + 100000, pids, 1);                //  running phase
    agt_guest_tick (g, base + 500000, pids, 1);                //  stopped phase
    int status = 0;
    P2C_CHECK (waitpid (child, &status, WUNTRACED) == child && WIFSTOPPED (status));
    agt_guest_tick (g, base + S_DUTY_US + 100000, pids, 1);    //  running again
    P2C_CHECK (waitpid (child, &status, WCONTINUED) == child && WIFCONTINUED (status));
    //  A bad file keeps the old preferences
    f = fopen (conf, "w");
    fputs ("cpu-usage-limit = 400\n", f);
    fclose (f);
    agt_guest_reload (g);
    P2C_CHECK (agt_guest_prefs (g)->cpu_usage_limit == 40);

    //  Counters survive a restart
    agt_guest_task_done (g, true, 1500000);
    agt_guest_task_done (g, false, 99);
    agt_guest_destroy (&g);
    P2C_CHECK (g == NULL);
    kill (child, SIGKILL);
    waitpid (child, NULL, 0);
    g = agt_guest_new (&opts, &prefs, why, sizeof why);
    P2C_CHECK (g != NULL);
    if (!g)
        return;
    agt_guest_task_done (g, true, 500000);
    char *s = s_status_json (g);
    P2C_CHECK (s && strstr (s, "\"tasks_today\":2") && strstr (s, "\"tasks_total\":2")
               && strstr (s, "\"compute_s_total\":2.0") && strstr (s, "\"state\":\"running\""));
    free (s);
    //  The owner's commands
    P2C_CHECK (!agt_guest_tick (g, 50000000, NULL, 0));
    s = s_on_control ("pause", 0, g);
    P2C_CHECK (s && strstr (s, "\"state\":\"paused\"") && strstr (s, "paused by the owner"));
    free (s);
    //  the peer learns of a command's change at its next tick, once
    P2C_CHECK (agt_guest_tick (g, 50100000, NULL, 0) && agt_guest_paused (g));
    P2C_CHECK (!agt_guest_tick (g, 50200000, NULL, 0));
    s = s_on_control ("resume", 0, g);
    P2C_CHECK (s && strstr (s, "\"state\":\"running\""));
    free (s);
    s = s_on_control ("snooze", 60, g);
    P2C_CHECK (s && strstr (s, "snoozed") && strstr (s, "\"snooze_s\":"));
    free (s);
    s = s_on_control ("prefs", 0, g);
    P2C_CHECK (s && strstr (s, "\"exclusive_apps\":[\"mygame\"]"));
    free (s);
    //  A status is answered at once with what is known; the peer hears
    //  that one was asked, once
    P2C_CHECK (!agt_guest_take_status_asked (g));
    agt_guest_set_earnings (g, "{\"balance\":\"0.000000520833\"}");
    s = s_on_control ("status", 0, g);
    P2C_CHECK (s && strstr (s, "\"earnings\":{\"balance\":\"0.000000520833\"}"));
    free (s);
    P2C_CHECK (agt_guest_take_status_asked (g) && !agt_guest_take_status_asked (g));
    agt_guest_destroy (&g);
    char cmd [300];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    P2C_CHECK (system (cmd) == 0);
}
