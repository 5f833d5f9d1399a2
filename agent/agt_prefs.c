/*  A contributor's preferences and the rule that pauses the peer (see
    agt_prefs.h). */
#include "agt_prefs.h"
#include "p2c_test.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char *agt_prefs_names [] = {
    "run-if-user-active", "idle-time-to-run", "exclusive-apps", "cpu-usage-limit",
    "max-ncpus-pct", "run-on-batteries", "suspend-cpu-usage", "run-hours", NULL
};

static const char *s_days [7] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

void
agt_prefs_defaults (agt_prefs_t *self)
{
    memset (self, 0, sizeof *self);
    self->run_if_user_active = true;
    self->idle_time_to_run_min = 3;
    self->cpu_usage_limit = 100;
    self->max_ncpus_pct = 100;
    self->run_on_batteries = false;
    self->suspend_cpu_usage = 0;
}

static int
s_int (const char *value, int lo, int hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol (value, &end, 10);
    if (!*value || *end || errno || v < lo || v > hi)
        return -1;
    *out = (int) v;
    return 0;
}

static int
s_bool (const char *value, bool *out)
{
    if (!strcasecmp (value, "true") || !strcasecmp (value, "yes") || !strcmp (value, "1")
        || !strcasecmp (value, "on"))
        *out = true;
    else
    if (!strcasecmp (value, "false") || !strcasecmp (value, "no") || !strcmp (value, "0")
        || !strcasecmp (value, "off"))
        *out = false;
    else
        return -1;
    return 0;
}

static int
s_day (const char *s, size_t len)
{
    for (int d = 0; d < 7; d++)
        if (len == 3 && !strncasecmp (s, s_days [d], 3))
            return d;
    return -1;
}

//  "HH" or "HH:MM", 00:00 to 24:00, in minutes
static int
s_minutes (const char *s, size_t len)
{
    char buf [8];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy (buf, s, len);
    buf [len] = 0;
    int h = 0, m = 0;
    char *colon = strchr (buf, ':');
    if (colon) {
        *colon = 0;
        if (s_int (colon + 1, 0, 59, &m) != 0 || strlen (colon + 1) != 2)
            return -1;
    }
    if (s_int (buf, 0, 24, &h) != 0 || (h == 24 && m != 0))
        return -1;
    return h * 60 + m;
}

static int
s_add_window (agt_prefs_t *self, int day, int start, int end)
{
    if (start >= end)
        return 0;
    if (self->nhours [day] >= 4)
        return -1;
    self->hours [day][self->nhours [day]++] = (agt_prefs_window_t) { start, end };
    return 0;
}

//  "mon-fri 18:00-23:30, sat,sun 0-24; daily 12-13": entries split by ',' or
//  ';' where a day list may also use ','. A window past midnight (22-6)
//  runs into the next day.
static int
s_parse_hours (agt_prefs_t *self, const char *value, char *why, size_t why_size)
{
    agt_prefs_t t = *self;
    memset (t.nhours, 0, sizeof t.nhours);
    t.hours_set = false;
    bool days [7] = { false };
    bool have_days = false;
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == ';' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *tok = p;
        while (*p && *p != ' ' && *p != ',' && *p != ';' && *p != '\t')
            p++;
        size_t len = (size_t) (p - tok);
        if (isdigit ((unsigned char) tok [0])) {
            const char *dash = memchr (tok, '-', len);
            int start = dash ? s_minutes (tok, (size_t) (dash - tok)) : -1;
            int end = dash ? s_minutes (dash + 1, len - (size_t) (dash - tok) - 1) : -1;
            if (start < 0 || end < 0 || !have_days || start == end) {
                snprintf (why, why_size, "run-hours: '%.*s' is not DAYS HH:MM-HH:MM",
                          (int) (len > 40 ? 40 : len), tok);
                return -1;
            }
            for (int d = 0; d < 7; d++) {
                if (!days [d])
                    continue;
                int rc = start < end ? s_add_window (&t, d, start, end)
                       : s_add_window (&t, d, start, 24 * 60)
                         | s_add_window (&t, (d + 1) % 7, 0, end);
                if (rc != 0) {
                    snprintf (why, why_size, "run-hours: at most 4 windows a day");
                    return -1;
                }
            }
            memset (days, 0, sizeof days);
            have_days = false;
            t.hours_set = true;
            continue;
        }
        if (len == 5 && !strncasecmp (tok, "daily", 5)) {
            for (int d = 0; d < 7; d++)
                days [d] = true;
            have_days = true;
            continue;
        }
        const char *dash = memchr (tok, '-', len);
        int a = s_day (tok, dash ? (size_t) (dash - tok) : len);
        int b = dash ? s_day (dash + 1, len - (size_t) (dash - tok) - 1) : a;
        if (a < 0 || b < 0) {
            snprintf (why, why_size, "run-hours: '%.*s' is not a day (mon..sun, daily)",
                      (int) (len > 40 ? 40 : len), tok);
            return -1;
        }
        for (int d = a; ; d = (d + 1) % 7) {
            days [d] = true;
            if (d == b)
                break;
        }
        have_days = true;
    }
    if (have_days) {
        snprintf (why, why_size, "run-hours: days without hours");
        return -1;
    }
    memcpy (self->hours, t.hours, sizeof t.hours);
    memcpy (self->nhours, t.nhours, sizeof t.nhours);
    self->hours_set = t.hours_set;
    return 0;
}

static int
s_parse_apps (agt_prefs_t *self, const char *value, char *why, size_t why_size)
{
    int n = 0;
    char apps [AGT_PREFS_MAX_APPS][AGT_PREFS_APP_LEN];
    const char *p = value;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        size_t len = (size_t) (p - start);
        while (len && start [len - 1] == ' ')
            len--;
        if (!len)
            continue;
        if (n == AGT_PREFS_MAX_APPS || len >= AGT_PREFS_APP_LEN) {
            snprintf (why, why_size, "exclusive-apps: at most %d names of %d characters",
                      AGT_PREFS_MAX_APPS, AGT_PREFS_APP_LEN - 1);
            return -1;
        }
        memcpy (apps [n], start, len);
        apps [n][len] = 0;
        n++;
    }
    memcpy (self->apps, apps, sizeof apps);
    self->napps = n;
    return 0;
}

int
agt_prefs_set (agt_prefs_t *self, const char *name, const char *value, char *why,
               size_t why_size)
{
    value = value ? value : "";
    int rc = 0;
    if (!strcmp (name, "run-if-user-active"))
        rc = s_bool (value, &self->run_if_user_active);
    else
    if (!strcmp (name, "idle-time-to-run"))
        rc = s_int (value, 0, 24 * 60, &self->idle_time_to_run_min);
    else
    if (!strcmp (name, "cpu-usage-limit"))
        rc = s_int (value, 1, 100, &self->cpu_usage_limit);
    else
    if (!strcmp (name, "max-ncpus-pct"))
        rc = s_int (value, 1, 100, &self->max_ncpus_pct);
    else
    if (!strcmp (name, "run-on-batteries"))
        rc = s_bool (value, &self->run_on_batteries);
    else
    if (!strcmp (name, "suspend-cpu-usage"))
        rc = s_int (value, 0, 100, &self->suspend_cpu_usage);
    else
    if (!strcmp (name, "exclusive-apps"))
        return s_parse_apps (self, value, why, why_size);
    else
    if (!strcmp (name, "run-hours"))
        return s_parse_hours (self, value, why, why_size);
    else
        return 1;
    if (rc != 0)
        snprintf (why, why_size, "%s: bad value '%.40s'", name, value);
    return rc;
}

int
agt_prefs_load (agt_prefs_t *self, const char *path, char *why, size_t why_size)
{
    FILE *f = fopen (path, "r");
    if (!f) {
        snprintf (why, why_size, "cannot read %s: %s", path, strerror (errno));
        return -1;
    }
    agt_prefs_t t = *self;
    char line [1024];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets (line, sizeof line, f)) {
        lineno++;
        char *hash = strchr (line, '#');
        if (hash)
            *hash = 0;
        char *eq = strchr (line, '=');
        if (!eq)
            continue;
        *eq = 0;
        char *name = line, *value = eq + 1;
        while (isspace ((unsigned char) *name))
            name++;
        for (char *e = name + strlen (name); e > name && isspace ((unsigned char) e [-1]); )
            *--e = 0;
        while (isspace ((unsigned char) *value))
            value++;
        for (char *e = value + strlen (value); e > value && isspace ((unsigned char) e [-1]); )
            *--e = 0;
        char err [200] = "";
        if (agt_prefs_set (&t, name, value, err, sizeof err) < 0) {
            snprintf (why, why_size, "%s:%d: %s", path, lineno, err);
            rc = -1;
        }
    }
    fclose (f);
    if (rc == 0)
        *self = t;
    return rc;
}

static bool
s_in_hours (const agt_prefs_t *self, const struct tm *t)
{
    if (!self->hours_set)
        return true;
    int wday = t->tm_wday < 0 || t->tm_wday > 6 ? 0 : t->tm_wday;
    int now = t->tm_hour * 60 + t->tm_min;
    for (int i = 0; i < self->nhours [wday]; i++)
        if (now >= self->hours [wday][i].start && now < self->hours [wday][i].end)
            return true;
    return false;
}

const char *
agt_prefs_pause_reason (const agt_prefs_t *self, const agt_prefs_sources_t *src, char *why,
                        size_t why_size)
{
    if (src->app_running)
        snprintf (why, why_size, "exclusive app '%.60s' is running", src->app_running);
    else
    if (!self->run_on_batteries && src->on_battery == 1)
        snprintf (why, why_size, "on battery");
    else
    if (!s_in_hours (self, &src->local))
        snprintf (why, why_size, "outside run-hours");
    else
    if (!self->run_if_user_active && src->idle_s >= 0
        && src->idle_s < (int64_t) self->idle_time_to_run_min * 60)
        snprintf (why, why_size, "computer in use (input %llds ago)", (long long) src->idle_s);
    else
    if (self->suspend_cpu_usage > 0 && src->other_load_pct > self->suspend_cpu_usage)
        snprintf (why, why_size, "other CPU use %d%% above %d%%", src->other_load_pct,
                  self->suspend_cpu_usage);
    else
        return NULL;
    return why;
}

int
agt_prefs_ncpus (const agt_prefs_t *self, int cores)
{
    int n = (cores * self->max_ncpus_pct + 99) / 100;
    return n < 1 ? 1 : n;
}

char *
agt_prefs_json (const agt_prefs_t *self)
{
    json_t *apps = json_array ();
    for (int i = 0; i < self->napps; i++)
        json_array_append_new (apps, json_string (self->apps [i]));
    json_t *hours = json_object ();
    for (int d = 0; d < 7 && self->hours_set; d++) {
        json_t *list = json_array ();
        for (int i = 0; i < self->nhours [d]; i++) {
            char w [48];
            snprintf (w, sizeof w, "%02d:%02d-%02d:%02d", self->hours [d][i].start / 60,
                      self->hours [d][i].start % 60, self->hours [d][i].end / 60,
                      self->hours [d][i].end % 60);
            json_array_append_new (list, json_string (w));
        }
        json_object_set_new (hours, s_days [d], list);
    }
    json_t *o = json_pack ("{s:b s:i s:o s:i s:i s:b s:i s:o}",
                           "run_if_user_active", self->run_if_user_active,
                           "idle_time_to_run", self->idle_time_to_run_min,
                           "exclusive_apps", apps,
                           "cpu_usage_limit", self->cpu_usage_limit,
                           "max_ncpus_pct", self->max_ncpus_pct,
                           "run_on_batteries", self->run_on_batteries,
                           "suspend_cpu_usage", self->suspend_cpu_usage,
                           "run_hours", hours);
    char *text = o ? json_dumps (o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref (o);
    return text;
}

//  --------------------------------------------------------------------------

static agt_prefs_sources_t
s_src (int wday, int hour, int min)
{
    agt_prefs_sources_t s;
    memset (&s, 0, sizeof s);
    s.idle_s = -1;
    s.on_battery = -1;
    s.other_load_pct = -1;
    s.local.tm_wday = wday;
    s.local.tm_hour = hour;
    s.local.tm_min = min;
    return s;
}

void
agt_prefs_test (bool verbose)
{
    (void) verbose;
    agt_prefs_t p;
    agt_prefs_defaults (&p);
    char why [200];
    agt_prefs_sources_t s = s_src (1, 12, 0);
    //  Defaults: run, but not on battery
    P2C_CHECK (agt_prefs_pause_reason (&p, &s, why, sizeof why) == NULL);
    s.on_battery = 1;
    P2C_CHECK (agt_prefs_pause_reason (&p, &s, why, sizeof why)
               && !strcmp (why, "on battery"));
    P2C_CHECK (agt_prefs_set (&p, "run-on-batteries", "yes", why, sizeof why) == 0);
    P2C_CHECK (agt_prefs_pause_reason (&p, &s, why, sizeof why) == NULL);

    //  Exclusive apps come first
    s.app_running = "steam";
    P2C_CHECK (agt_prefs_pause_reason (&p, &s, why, sizeof why)
               && strstr (why, "'steam'"));
    s.app_running = NULL;

    //  Idle only: input 30 s ago pauses, 10 minutes ago runs; unknown runs
    P2C_CHECK (agt_prefs_set (&p, "run-if-user-active", "false", why, sizeof why) == 0);
    P2C_CHECK (agt_prefs_set (&p, "idle-time-to-run", "5", why, sizeof why) == 0);
    s.idle_s = 30;
    P2C_CHECK (agt_prefs_pause_reason (&p, &s, why, sizeof why)
               && strstr (why, "computer in use"));
    s.idle_s = 600;
    P2C_CHECK (agt_prefs_pause_reason (&p, &s, why, sizeof why) == NULL);
    s.idle_s = -1;
    P2C_CHECK (agt_prefs_pause_reason (&p, &s, why, sizeof why) == NULL);

    //  Other load
    P2C_CHECK (agt_prefs_set (&p, "suspend-cpu-usage", "50", why, sizeof why) == 0);
    s.other_load_pct = 80;
    P2C_CHECK (agt_prefs_pause_reason (&p, &s, why, sizeof why)
               && strstr (why, "80% above 50%"));
    s.other_load_pct = 20;
    P2C_CHECK (agt_prefs_pause_reason (&p, &s, why, sizeof why) == NULL);

    //  Hours: weekdays in the evening, a night window across midnight
    P2C_CHECK (agt_prefs_set (&p, "run-hours", "mon-fri 18:00-23:30, sat,sun 22-6", why,
                              sizeof why) == 0);
    agt_prefs_sources_t t = s_src (1, 12, 0);           //  Monday noon
    P2C_CHECK (agt_prefs_pause_reason (&p, &t, why, sizeof why)
               && !strcmp (why, "outside run-hours"));
    t = s_src (1, 18, 0);
    P2C_CHECK (agt_prefs_pause_reason (&p, &t, why, sizeof why) == NULL);
    t = s_src (1, 23, 30);
    P2C_CHECK (agt_prefs_pause_reason (&p, &t, why, sizeof why) != NULL);
    t = s_src (0, 3, 0);                                //  Sunday 3:00, from Saturday night
    P2C_CHECK (agt_prefs_pause_reason (&p, &t, why, sizeof why) == NULL);
    t = s_src (1, 3, 0);                                //  Monday 3:00, from Sunday night
    P2C_CHECK (agt_prefs_pause_reason (&p, &t, why, sizeof why) == NULL);
    t = s_src (1, 6, 0);
    P2C_CHECK (agt_prefs_pause_reason (&p, &t, why, sizeof why) != NULL);
    //  Bad hours leave the old ones
    P2C_CHECK (agt_prefs_set (&p, "run-hours", "funday 1-2", why, sizeof why) == -1
               && strstr (why, "funday"));
    P2C_CHECK (agt_prefs_set (&p, "run-hours", "mon 25-26", why, sizeof why) == -1);
    P2C_CHECK (agt_prefs_set (&p, "run-hours", "mon", why, sizeof why) == -1);
    t = s_src (1, 18, 0);
    P2C_CHECK (agt_prefs_pause_reason (&p, &t, why, sizeof why) == NULL);
    P2C_CHECK (agt_prefs_set (&p, "run-hours", "", why, sizeof why) == 0 && !p.hours_set);

    //  Limits and names
    P2C_CHECK (agt_prefs_set (&p, "cpu-usage-limit", "0", why, sizeof why) == -1);
    P2C_CHECK (agt_prefs_set (&p, "cpu-usage-limit", "50", why, sizeof why) == 0
               && p.cpu_usage_limit == 50);
    P2C_CHECK (agt_prefs_set (&p, "max-ncpus-pct", "50", why, sizeof why) == 0);
    P2C_CHECK (agt_prefs_ncpus (&p, 8) == 4 && agt_prefs_ncpus (&p, 1) == 1
               && agt_prefs_ncpus (&p, 3) == 2);
    P2C_CHECK (agt_prefs_set (&p, "server", "x", why, sizeof why) == 1);
    P2C_CHECK (agt_prefs_set (&p, "exclusive-apps", "game.x86_64, steam,,", why, sizeof why) == 0
               && p.napps == 2 && !strcmp (p.apps [0], "game.x86_64")
               && !strcmp (p.apps [1], "steam"));
    char *j = agt_prefs_json (&p);
    P2C_CHECK (j && strstr (j, "\"cpu_usage_limit\":50") && strstr (j, "\"steam\""));
    free (j);

    //  A file: preferences taken, other settings skipped, a bad line refused whole
    char path [] = "/tmp/agt-prefs-XXXXXX";
    int fd = mkstemp (path);
    P2C_CHECK (fd >= 0);
    FILE *f = fdopen (fd, "w");
    fprintf (f, "# my PC\nserver = ws://x\ncpu-usage-limit = 30  # a third\n"
                "exclusive-apps = hl2_linux\n");
    fclose (f);
    P2C_CHECK (agt_prefs_load (&p, path, why, sizeof why) == 0 && p.cpu_usage_limit == 30
               && p.napps == 1 && !strcmp (p.apps [0], "hl2_linux"));
    f = fopen (path, "w");
    fprintf (f, "cpu-usage-limit = 70\nmax-ncpus-pct = 900\n");
    fclose (f);
    P2C_CHECK (agt_prefs_load (&p, path, why, sizeof why) == -1 && strstr (why, ":2:")
               && p.cpu_usage_limit == 30);
    unlink (path);
    P2C_CHECK (agt_prefs_load (&p, path, why, sizeof why) == -1);
}
