/*  The alerts' notification hook (see sch_hook.h). */
#include "sch_hook.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <czmq.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

//  Words of CMD, at most
#define S_ARGS_MAX 32
//  Runs at once, at most, whatever the setting says
#define S_RUNNING_MAX 64

typedef struct {
    pid_t pid;
    int64_t started_ms;
    char name [32];             //  the alert's, for the log
} s_run_t;

struct _sch_hook_t {
    char *cmd;                  //  copy (owned); argv points into it
    char *argv [S_ARGS_MAX + 1];
    bool shell;
    size_t max_running;
    int64_t timeout_ms;
    s_run_t runs [S_RUNNING_MAX];
    size_t nrunning;
    zlistx_t *queue;            //  char ** environment blocks waiting (owned)
    uint64_t started, dropped, failed;
};

static void
s_env_free (char ***env_p)
{
    char **env = *env_p;
    if (!env)
        return;
    for (char **e = env; *e; e++)
        free (*e);
    free (env);
    *env_p = NULL;
}

sch_hook_t *
sch_hook_new (const char *cmd, bool shell, size_t max_running, int64_t timeout_ms)
{
    if (!cmd || !*cmd)
        return NULL;
    sch_hook_t *self = (sch_hook_t *) zmalloc (sizeof (sch_hook_t));
    self->cmd = p2c_strdup (cmd);
    assert (self->cmd);
    self->shell = shell;
    self->max_running = max_running < 1 ? 1 : max_running > S_RUNNING_MAX ? S_RUNNING_MAX
                      : max_running;
    self->timeout_ms = timeout_ms;
    if (shell) {
        self->argv [0] = "/bin/sh";
        self->argv [1] = "-c";
        self->argv [2] = self->cmd;
    }
    else {
        int n = 0;
        char *save = NULL;
        for (char *w = strtok_r (self->cmd, " \t", &save); w && n < S_ARGS_MAX;
             w = strtok_r (NULL, " \t", &save))
            self->argv [n++] = w;
    }
    self->queue = zlistx_new ();
    zlistx_set_destructor (self->queue, (zlistx_destructor_fn *) s_env_free);
    return self;
}

void
sch_hook_destroy (sch_hook_t **self_p)
{
    sch_hook_t *self = *self_p;
    if (!self)
        return;
    //  what still runs finishes on its own (init reaps it)
    for (size_t i = 0; i < self->nrunning; i++)
        waitpid (self->runs [i].pid, NULL, WNOHANG);
    zlistx_destroy (&self->queue);
    free (self->cmd);
    free (self);
    *self_p = NULL;
}

//  The variables we set (an inherited one of the same name is left out;
//  others, such as mail.sh's P2C2R_ALERT_MAIL_TO, pass through)
static const char *s_ours [] = {
    "NAME=", "STATE=", "VALUE=", "THRESHOLD=", "SINCE=", "SINCE_ISO=", "SUMMARY=", "DETAIL=",
    "HOST=", NULL
};

static bool
s_is_ours (const char *var)
{
    if (strncmp (var, "P2C2R_ALERT_", 12))
        return false;
    for (const char **o = s_ours; *o; o++)
        if (!strncmp (var + 12, *o, strlen (*o)))
            return true;
    return false;
}

//  Our environment and the alert's variables, owned
static char **
s_env (const sch_alert_t *alert)
{
    size_t n = 0;
    while (environ && environ [n])
        n++;
    char **env = (char **) zmalloc ((n + 12) * sizeof (char *));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!s_is_ours (environ [i]))
            env [k++] = p2c_strdup (environ [i]);
    char iso [32] = "";
    time_t since = (time_t) alert->since_unix;
    struct tm tm;
    if (gmtime_r (&since, &tm))
        strftime (iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char host [256] = "";
    gethostname (host, sizeof host - 1);
    env [k++] = p2c_sprintf ("P2C2R_ALERT_NAME=%s", alert->name);
    env [k++] = p2c_sprintf ("P2C2R_ALERT_STATE=%s", alert->firing ? "firing" : "resolved");
    env [k++] = p2c_sprintf ("P2C2R_ALERT_VALUE=%g", alert->value);
    env [k++] = p2c_sprintf ("P2C2R_ALERT_THRESHOLD=%g", alert->threshold);
    env [k++] = p2c_sprintf ("P2C2R_ALERT_SINCE=%lld", (long long) alert->since_unix);
    env [k++] = p2c_sprintf ("P2C2R_ALERT_SINCE_ISO=%s", iso);
    env [k++] = p2c_sprintf ("P2C2R_ALERT_SUMMARY=%s", alert->summary);
    env [k++] = p2c_sprintf ("P2C2R_ALERT_DETAIL=%s", alert->detail);
    env [k++] = p2c_sprintf ("P2C2R_ALERT_HOST=%s", host);
    return env;
}

//  Starts CMD with env (taken)
static void
s_start (sch_hook_t *self, char **env, int64_t now_ms)
{
    const char *name = "";
    for (char **e = env; *e; e++)
        if (!strncmp (*e, "P2C2R_ALERT_NAME=", 17))
            name = *e + 17;
    pid_t pid;
    int rc = posix_spawnp (&pid, self->argv [0], NULL, NULL, self->argv, env);
    if (rc != 0) {
        self->failed++;
        log_warn ("alert hook cannot start alert=%s errno=%d", name, rc);
    }
    else {
        s_run_t *run = &self->runs [self->nrunning++];
        run->pid = pid;
        run->started_ms = now_ms;
        snprintf (run->name, sizeof run->name, "%s", name);
        self->started++;
        log_debug ("alert hook started alert=%s pid=%d", name, (int) pid);
    }
    s_env_free (&env);
}

void
sch_hook_fire (sch_hook_t *self, const sch_alert_t *alert, int64_t now_ms)
{
    if (zlistx_size (self->queue) >= SCH_HOOK_QUEUE_MAX) {
        self->dropped++;
        log_warn ("alert hook queue full: dropped alert=%s state=%s", alert->name,
                  alert->firing ? "firing" : "resolved");
        return;
    }
    //  in order: a change waits behind the queued ones
    zlistx_add_end (self->queue, s_env (alert));
    sch_hook_cron (self, now_ms);
}

void
sch_hook_cron (sch_hook_t *self, int64_t now_ms)
{
    for (size_t i = 0; i < self->nrunning; ) {
        s_run_t *run = &self->runs [i];
        int status = 0;
        pid_t got = waitpid (run->pid, &status, WNOHANG);
        if (got == 0 && now_ms - run->started_ms >= self->timeout_ms) {
            log_warn ("alert hook overdue, killed alert=%s pid=%d", run->name, (int) run->pid);
            kill (run->pid, SIGKILL);
            got = waitpid (run->pid, &status, 0);
            status = -1;
        }
        if (got == 0) {
            i++;
            continue;
        }
        if (got < 0 || status != 0) {
            self->failed++;
            log_warn ("alert hook failed alert=%s status=%d", run->name, status);
        }
        self->runs [i] = self->runs [--self->nrunning];
    }
    char **env;
    while (self->nrunning < self->max_running
       && (env = (char **) zlistx_detach (self->queue, NULL)))
        s_start (self, env, now_ms);
}

size_t
sch_hook_running (sch_hook_t *self)
{
    return self->nrunning;
}

uint64_t
sch_hook_started (sch_hook_t *self)
{
    return self->started;
}

uint64_t
sch_hook_dropped (sch_hook_t *self)
{
    return self->dropped;
}

uint64_t
sch_hook_failed (sch_hook_t *self)
{
    return self->failed;
}

//  --------------------------------------------------------------------------
//  Self-test: real children

//  Reaps until nothing runs (bounded: 5 s)
static void
s_test_wait (sch_hook_t *self)
{
    for (int i = 0; i < 500 && (sch_hook_running (self) || zlistx_size (self->queue)); i++) {
        zclock_sleep (10);
        sch_hook_cron (self, p2c_now_ms ());
    }
}

void
sch_hook_test (bool verbose)
{
    (void) verbose;
    P2C_CHECK (sch_hook_new ("", false, 1, 1000) == NULL);
    P2C_CHECK (s_is_ours ("P2C2R_ALERT_NAME=x") && s_is_ours ("P2C2R_ALERT_SINCE_ISO=")
               && !s_is_ours ("P2C2R_ALERT_MAIL_TO=ops") && !s_is_ours ("PATH=/bin"));
    char dir [] = "/tmp/sch_hook_XXXXXX";
    P2C_CHECK (mkdtemp (dir) != NULL);
    char out [128], cmd [512];
    snprintf (out, sizeof out, "%s/out", dir);
    sch_alert_t alert = { .name = "peers_low", .summary = "few", .firing = true,
                          .since_unix = 1700000000, .value = 1, .threshold = 2 };

    //  through a shell, when asked: the variables reach the command
    snprintf (cmd, sizeof cmd, "sleep 0.1; echo \"$P2C2R_ALERT_NAME $P2C2R_ALERT_STATE"
              " $P2C2R_ALERT_VALUE $P2C2R_ALERT_THRESHOLD $P2C2R_ALERT_SINCE_ISO\" >> %s", out);
    sch_hook_t *self = sch_hook_new (cmd, true, 1, 5000);
    sch_hook_fire (self, &alert, p2c_now_ms ());
    alert.firing = false;
    sch_hook_fire (self, &alert, p2c_now_ms ());
    //  one at a time: the second waits for the first
    P2C_CHECK (sch_hook_running (self) == 1 && zlistx_size (self->queue) == 1);
    s_test_wait (self);
    P2C_CHECK (sch_hook_started (self) == 2 && sch_hook_failed (self) == 0);
    char *text = NULL;
    FILE *f = fopen (out, "r");
    if (f) {
        text = (char *) zmalloc (256);
        size_t n = fread (text, 1, 255, f);
        text [n] = 0;
        fclose (f);
    }
    P2C_CHECK (text && !strcmp (text, "peers_low firing 1 2 2023-11-14T22:13:20Z\n"
                                      "peers_low resolved 1 2 2023-11-14T22:13:20Z\n"));
    free (text);
    sch_hook_destroy (&self);

    //  without a shell, the words are the arguments as they are: a shell's
    //  characters mean nothing
    snprintf (cmd, sizeof cmd, "/bin/touch %s/a>b", dir);
    self = sch_hook_new (cmd, false, 2, 5000);
    sch_hook_fire (self, &alert, p2c_now_ms ());
    s_test_wait (self);
    char path [256];
    snprintf (path, sizeof path, "%s/a", dir);
    P2C_CHECK (access (path, F_OK) != 0);
    snprintf (path, sizeof path, "%s/a>b", dir);
    P2C_CHECK (access (path, F_OK) == 0);
    unlink (path);
    sch_hook_destroy (&self);

    //  a missing program and a failing one are counted; an overdue one killed
    self = sch_hook_new ("/nonexistent/hook", false, 1, 5000);
    sch_hook_fire (self, &alert, p2c_now_ms ());
    s_test_wait (self);
    P2C_CHECK (sch_hook_failed (self) == 1);
    sch_hook_destroy (&self);
    self = sch_hook_new ("/bin/sleep 30", false, 1, 50);
    sch_hook_fire (self, &alert, p2c_now_ms ());
    P2C_CHECK (sch_hook_running (self) == 1);
    s_test_wait (self);
    P2C_CHECK (sch_hook_running (self) == 0 && sch_hook_failed (self) == 1);
    sch_hook_destroy (&self);
    unlink (out);
    rmdir (dir);
}
