/*  What the contributor's machine is doing (see agt_sources.h). Everything
    here reads small text files; a file that is missing or odd means
    "unknown", never an error. */
#include "agt_sources.h"
#include "p2c_test.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct _agt_sources_t {
    char proc [PATH_MAX];           //  "/proc", or a test's directory
    char sys [PATH_MAX];            //  "/sys", or a test's directory
    unsigned long long input_irqs;  //  input devices' interrupts at the last read
    bool input_seen;                //  the machine has input devices we can count
    int64_t last_input_us;          //  when their count last changed
    unsigned long long cpu_busy, cpu_total;     //  /proc/stat at the last read
    unsigned long long own_ticks;   //  our processes' CPU at the last read
    bool cpu_seen;
    char app [AGT_PREFS_APP_LEN];   //  the exclusive app found running
};

agt_sources_t *
agt_sources_new (const char *proc_root, const char *sys_root)
{
    agt_sources_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->proc, sizeof self->proc, "%s", proc_root && *proc_root ? proc_root : "/proc");
    snprintf (self->sys, sizeof self->sys, "%s", sys_root && *sys_root ? sys_root : "/sys");
    return self;
}

void
agt_sources_destroy (agt_sources_t **self_p)
{
    free (*self_p);
    *self_p = NULL;
}

//  Reads a small file into buf (NUL-terminated). Returns bytes read or -1.
static ssize_t
s_read (const char *path, char *buf, size_t size)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    size_t n = fread (buf, 1, size - 1, f);
    fclose (f);
    buf [n] = 0;
    return (ssize_t) n;
}

static void
s_trim (char *s)
{
    size_t n = strlen (s);
    while (n && isspace ((unsigned char) s [n - 1]))
        s [--n] = 0;
}

//  Sum of the interrupts of keyboards and mice: the i8042 controller's
//  lines and any line naming a keyboard, mouse or HID device
static bool
s_input_irqs (agt_sources_t *self, unsigned long long *sum_p)
{
    char path [PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/interrupts", self->proc);
    FILE *f = fopen (path, "r");
    if (!f)
        return false;
    char line [4096];
    bool found = false;
    unsigned long long sum = 0;
    while (fgets (line, sizeof line, f)) {
        if (!strcasestr (line, "i8042") && !strcasestr (line, "keyboard")
            && !strcasestr (line, "mouse") && !strcasestr (line, "hid"))
            continue;
        char *p = strchr (line, ':');
        if (!p)
            continue;
        p++;
        found = true;
        //  the per-CPU counts come first, then the chip and device names
        while (true) {
            while (*p == ' ' || *p == '\t')
                p++;
            if (!isdigit ((unsigned char) *p))
                break;
            sum += strtoull (p, &p, 10);
        }
    }
    fclose (f);
    *sum_p = sum;
    return found;
}

//  1 on battery, 0 on mains, -1 unknown
static int
s_on_battery (agt_sources_t *self)
{
    char dir [PATH_MAX + 32];
    snprintf (dir, sizeof dir, "%s/class/power_supply", self->sys);
    DIR *d = opendir (dir);
    if (!d)
        return -1;
    int mains = -1, discharging = -1;
    struct dirent *e;
    while ((e = readdir (d))) {
        if (e->d_name [0] == '.')
            continue;
        char path [PATH_MAX + 320], buf [64];
        snprintf (path, sizeof path, "%s/%s/type", dir, e->d_name);
        if (s_read (path, buf, sizeof buf) < 0)
            continue;
        s_trim (buf);
        if (!strcmp (buf, "Mains")) {
            snprintf (path, sizeof path, "%s/%s/online", dir, e->d_name);
            if (s_read (path, buf, sizeof buf) > 0)
                mains = (mains == 1) || atoi (buf) == 1;
        }
        else
        if (!strcmp (buf, "Battery")) {
            snprintf (path, sizeof path, "%s/%s/status", dir, e->d_name);
            if (s_read (path, buf, sizeof buf) > 0) {
                s_trim (buf);
                discharging = (discharging == 1) || !strcmp (buf, "Discharging");
            }
        }
    }
    closedir (d);
    if (mains == 1)
        return 0;
    if (discharging >= 0)
        return discharging;
    return mains == 0 ? 1 : -1;
}

static bool
s_app_match (const agt_prefs_t *prefs, const char *name, char *out, size_t out_size)
{
    for (int i = 0; i < prefs->napps; i++) {
        //  /proc/PID/comm holds at most 15 characters of the name
        size_t len = strlen (name);
        bool hit = len == 15 ? !strncmp (prefs->apps [i], name, 15) : !strcmp (prefs->apps [i], name);
        if (hit) {
            snprintf (out, out_size, "%s", prefs->apps [i]);
            return true;
        }
    }
    return false;
}

static const char *
s_exclusive_app (agt_sources_t *self, const agt_prefs_t *prefs)
{
    if (prefs->napps == 0)
        return NULL;
    DIR *d = opendir (self->proc);
    if (!d)
        return NULL;
    const char *found = NULL;
    struct dirent *e;
    while (!found && (e = readdir (d))) {
        if (!isdigit ((unsigned char) e->d_name [0]))
            continue;
        char path [PATH_MAX + 320], buf [4096];
        snprintf (path, sizeof path, "%s/%s/comm", self->proc, e->d_name);
        if (s_read (path, buf, sizeof buf) > 0) {
            s_trim (buf);
            if (s_app_match (prefs, buf, self->app, sizeof self->app)) {
                found = self->app;
                break;
            }
        }
        //  argv[0]'s base name, for names longer than comm keeps
        snprintf (path, sizeof path, "%s/%s/cmdline", self->proc, e->d_name);
        if (s_read (path, buf, sizeof buf) > 0) {
            const char *base = strrchr (buf, '/');
            base = base ? base + 1 : buf;
            if (*base && s_app_match (prefs, base, self->app, sizeof self->app))
                found = self->app;
        }
    }
    closedir (d);
    return found;
}

//  utime + stime of a process, in clock ticks
static unsigned long long
s_proc_ticks (agt_sources_t *self, int pid)
{
    char path [PATH_MAX + 32], buf [1024];
    snprintf (path, sizeof path, "%s/%d/stat", self->proc, pid);
    if (s_read (path, buf, sizeof buf) <= 0)
        return 0;
    //  the name may hold spaces: fields count from after its ')'
    char *p = strrchr (buf, ')');
    if (!p)
        return 0;
    unsigned long long utime = 0, stime = 0;
    if (sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                &utime, &stime) != 2)
        return 0;
    return utime + stime;
}

//  Others' CPU use since the last read, percent of all CPUs, or -1
static int
s_other_load (agt_sources_t *self, const int *own, int nown)
{
    char path [PATH_MAX + 32], buf [512];
    snprintf (path, sizeof path, "%s/stat", self->proc);
    if (s_read (path, buf, sizeof buf) <= 0 || strncmp (buf, "cpu ", 4))
        return -1;
    unsigned long long v [8] = { 0 };
    if (sscanf (buf + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v [0], &v [1], &v [2],
                &v [3], &v [4], &v [5], &v [6], &v [7]) < 4)
        return -1;
    unsigned long long total = 0;
    for (int i = 0; i < 8; i++)
        total += v [i];
    unsigned long long busy = total - v [3] - v [4];
    unsigned long long mine = 0;
    for (int i = 0; i < nown; i++)
        mine += own [i] > 0 ? s_proc_ticks (self, own [i]) : 0;
    int pct = -1;
    if (self->cpu_seen && total > self->cpu_total) {
        long long others = (long long) (busy - self->cpu_busy) - (long long) (mine - self->own_ticks);
        if (others < 0)
            others = 0;
        pct = (int) (100 * others / (long long) (total - self->cpu_total));
        if (pct > 100)
            pct = 100;
    }
    self->cpu_busy = busy;
    self->cpu_total = total;
    self->own_ticks = mine;
    self->cpu_seen = true;
    return pct;
}

void
agt_sources_read (agt_sources_t *self, const agt_prefs_t *prefs, const int *own, int nown,
                  int64_t now_us, agt_prefs_sources_t *out)
{
    memset (out, 0, sizeof *out);
    unsigned long long irqs = 0;
    if (s_input_irqs (self, &irqs)) {
        if (!self->input_seen || irqs != self->input_irqs)
            self->last_input_us = now_us;
        self->input_seen = true;
        self->input_irqs = irqs;
        out->idle_s = (now_us - self->last_input_us) / 1000000;
    }
    else {
        self->input_seen = false;
        out->idle_s = -1;
    }
    out->on_battery = s_on_battery (self);
    out->app_running = s_exclusive_app (self, prefs);
    out->other_load_pct = s_other_load (self, own, nown);
    time_t t = time (NULL);
    localtime_r (&t, &out->local);
}

//  --------------------------------------------------------------------------

static void
s_write (const char *dir, const char *name, const char *text)
{
    char path [2 * PATH_MAX];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen (path, "w");
    if (f) {
        fputs (text, f);
        fclose (f);
    }
}

void
agt_sources_test (bool verbose)
{
    (void) verbose;
    char root [] = "/tmp/agt-sources-XXXXXX";
    P2C_CHECK (mkdtemp (root) != NULL);
    char proc [256], sys [256], dir [512];
    snprintf (proc, sizeof proc, "%s/proc", root);
    snprintf (sys, sizeof sys, "%s/sys", root);
    mkdir (proc, 0700);
    agt_prefs_t prefs;
    agt_prefs_defaults (&prefs);
    agt_sources_t *src = agt_sources_new (proc, sys);
    agt_prefs_sources_t s;

    //  Nothing staged: everything unknown, which runs
    agt_sources_read (src, &prefs, NULL, 0, 1000000, &s);
    P2C_CHECK (s.idle_s == -1 && s.on_battery == -1 && !s.app_running && s.other_load_pct == -1);

    //  Input: the count moves, then stays for 90 s
    s_write (proc, "interrupts", "           CPU0       CPU1\n  1:      10      5   IO-APIC   1-edge      i8042\n"
                                 " 12:     100     50   IO-APIC  12-edge      i8042\n"
                                 " 16:    9999      0   IO-APIC  16-fasteoi   eth0\n");
    agt_sources_read (src, &prefs, NULL, 0, 2000000, &s);
    P2C_CHECK (s.idle_s == 0);
    agt_sources_read (src, &prefs, NULL, 0, 92000000, &s);
    P2C_CHECK (s.idle_s == 90);
    s_write (proc, "interrupts", "           CPU0       CPU1\n  1:      11      5   IO-APIC   1-edge      i8042\n");
    agt_sources_read (src, &prefs, NULL, 0, 95000000, &s);
    P2C_CHECK (s.idle_s == 0);

    //  Battery: discharging, then mains online
    snprintf (dir, sizeof dir, "%s/class", sys);
    mkdir (sys, 0700);
    mkdir (dir, 0700);
    snprintf (dir, sizeof dir, "%s/class/power_supply", sys);
    mkdir (dir, 0700);
    char bat [600], ac [600];
    snprintf (bat, sizeof bat, "%s/BAT0", dir);
    snprintf (ac, sizeof ac, "%s/AC", dir);
    mkdir (bat, 0700);
    mkdir (ac, 0700);
    s_write (bat, "type", "Battery\n");
    s_write (bat, "status", "Discharging\n");
    s_write (ac, "type", "Mains\n");
    s_write (ac, "online", "0\n");
    agt_sources_read (src, &prefs, NULL, 0, 96000000, &s);
    P2C_CHECK (s.on_battery == 1);
    s_write (ac, "online", "1\n");
    s_write (bat, "status", "Charging\n");
    agt_sources_read (src, &prefs, NULL, 0, 97000000, &s);
    P2C_CHECK (s.on_battery == 0);

    //  Exclusive apps by comm, and by argv[0] for a long name
    char pdir [300];
    snprintf (pdir, sizeof pdir, "%s/4242", proc);
    mkdir (pdir, 0700);
    s_write (pdir, "comm", "SuperLongGameNa\n");
    s_write (pdir, "cmdline", "/opt/game/SuperLongGameName.x86_64");
    agt_prefs_set (&prefs, "exclusive-apps", "steam", NULL, 0);
    agt_sources_read (src, &prefs, NULL, 0, 98000000, &s);
    P2C_CHECK (s.app_running == NULL);
    char why [100];
    agt_prefs_set (&prefs, "exclusive-apps", "steam, SuperLongGameName.x86_64", why, sizeof why);
    agt_sources_read (src, &prefs, NULL, 0, 99000000, &s);
    P2C_CHECK (s.app_running && !strcmp (s.app_running, "SuperLongGameName.x86_64"));

    //  Others' load: 1000 ticks pass, 600 busy of which 200 are ours
    s_write (proc, "stat", "cpu  1000 0 0 9000 0 0 0 0\n");
    s_write (pdir, "stat", "4242 (game) S 1 1 1 0 -1 0 0 0 0 0 100 0 0 0\n");
    int own [1] = { 4242 };
    agt_sources_read (src, &prefs, own, 1, 100000000, &s);
    P2C_CHECK (s.other_load_pct == -1);             //  first sample
    s_write (proc, "stat", "cpu  1600 0 0 9400 0 0 0 0\n");
    s_write (pdir, "stat", "4242 (game) S 1 1 1 0 -1 0 0 0 0 0 250 50 0 0\n");
    agt_sources_read (src, &prefs, own, 1, 101000000, &s);
    P2C_CHECK (s.other_load_pct == 40);
    agt_sources_destroy (&src);
    P2C_CHECK (src == NULL);

    //  The real machine reads without trouble
    src = agt_sources_new (NULL, NULL);
    agt_sources_read (src, &prefs, NULL, 0, 1, &s);
    P2C_CHECK (s.local.tm_year > 100);
    agt_sources_destroy (&src);
    char cmd [PATH_MAX + 16];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", root);
    P2C_CHECK (system (cmd) == 0);
}
