/*  A contributor's preferences: when the peer may use the PC it runs on.
    Named after BOINC's global preferences where they mean the same thing
    (run_if_user_active, idle_time_to_run, exclusive apps, cpu_usage_limit,
    max_ncpus_pct, run_on_batteries, suspend_cpu_usage, start/end hours per
    day). This class holds the settings and the rule; what the machine is
    doing comes in as an agt_prefs_sources_t (agt_sources reads it from
    /proc and /sys), so the rule is tested with any situation.
    The settings come from the agent's flags and its config file, and are
    read again from the file on SIGHUP or `p2c2r-agent prefs reload`. */
#ifndef AGT_PREFS_H_INCLUDED
#define AGT_PREFS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define AGT_PREFS_MAX_APPS 32
#define AGT_PREFS_APP_LEN  64

//  One window of a day, in minutes after midnight: start <= t < end
typedef struct {
    int start, end;
} agt_prefs_window_t;

typedef struct {
    bool run_if_user_active;        //  run while someone uses the PC
    int idle_time_to_run_min;       //  else: minutes without input before running
    char apps [AGT_PREFS_MAX_APPS][AGT_PREFS_APP_LEN];  //  exclusive apps: pause while one runs
    int napps;
    int cpu_usage_limit;            //  percent of the time workers run (duty cycle), 1-100
    int max_ncpus_pct;              //  percent of the CPUs used for workers, 1-100
    bool run_on_batteries;          //  else pause while on battery
    int suspend_cpu_usage;          //  pause while others use more than this % of the CPU (0: never)
    bool hours_set;                 //  false: any time
    agt_prefs_window_t hours [7][4];//  per weekday (0 Sunday), up to 4 windows
    int nhours [7];
} agt_prefs_t;

//  What the machine is doing now
typedef struct {
    int64_t idle_s;                 //  seconds since the last keyboard/mouse input; -1: unknown
    int on_battery;                 //  1, 0, or -1 unknown
    const char *app_running;        //  an exclusive app found running, or NULL
    int other_load_pct;             //  CPU used by others, 0-100; -1 unknown
    struct tm local;                //  the local time now
} agt_prefs_sources_t;

//  BOINC's defaults, but for the other-load rule (off: a game's load is
//  what exclusive apps are for)
void agt_prefs_defaults (agt_prefs_t *self);

//  Sets one preference by its name ("cpu-usage-limit", ...) from text.
//  Returns 0, 1 when name is not a preference, -1 with why on a bad value.
int agt_prefs_set (agt_prefs_t *self, const char *name, const char *value,
                   char *why, size_t why_size);

//  Reads the preferences in a config file ("name = value" lines, # comments;
//  other settings are skipped). Returns 0, or -1 with why (self unchanged).
int agt_prefs_load (agt_prefs_t *self, const char *path, char *why, size_t why_size);

//  The rule: NULL when workers may run, else why not, written into why
//  ("exclusive app 'game' is running", "on battery", ...)
const char *agt_prefs_pause_reason (const agt_prefs_t *self, const agt_prefs_sources_t *src,
                                    char *why, size_t why_size);

//  The preferences as a JSON object text (caller frees)
char *agt_prefs_json (const agt_prefs_t *self);

//  The worker processes to use on a machine with cores CPUs: max_ncpus_pct
//  of them, at least 1
int agt_prefs_ncpus (const agt_prefs_t *self, int cores);

//  The names agt_prefs_set takes, NULL-terminated (for the flags table)
extern const char *agt_prefs_names [];

void agt_prefs_test (bool verbose);

#endif
