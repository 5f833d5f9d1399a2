/*  The scheduler's settings: one table binds every option to a field of
    sch_config_t with its default, bounds and help (p2c_cfg), so that the
    binary and the unit tests (sch_core_config_default) start from the same
    values. A check step derives the per-type arrays of the rules' settings
    from --validation-types and --needs, after parsing and after the
    defaults alike. */
#ifndef SCH_CONFIG_H_INCLUDED
#define SCH_CONFIG_H_INCLUDED

#include "p2c_node.h"
#include "sch_core.h"

#include <stdbool.h>

typedef struct {
    char *broker;               //  the broker's endpoint
    char *node_id;              //  "": made up by p2c_node
    char *validation_types;     //  per task type modes, as given (into core.validation_type)
    char *needs;                //  resources per task type, as given (into core.needs_*)
    char *metrics_listen;       //  HOST:PORT of /metrics; "": none
    char *alert_exec;           //  the alerts' hook command; "": none
    bool alert_exec_shell;      //  run it through /bin/sh -c
    size_t alert_exec_max;      //  hook runs at once
    int64_t alert_exec_timeout_ms;  //  a run still going after this is killed
    sch_core_config_t core;     //  the rules' settings
    p2c_node_bus_t bus;         //  the bus's keys
} sch_config_t;

//  Every setting's default, and the derived arrays, without parsing.
//  Free with sch_config_free.
void sch_config_defaults (sch_config_t *self);

//  Parses the defaults, --config file, environment and flags into a fresh
//  self, checks them and, when --seed is 0, seeds the spot-check draw from
//  the clock. 0 to run (free with sch_config_free), 1 to exit 0 (--help,
//  -n), -1 on a bad setting (printed; nothing to free).
int sch_config_load (sch_config_t *self, int argc, char **argv, bool *verbose_p);

//  The name of a validation mode, for log lines
const char *sch_config_validation_name (sch_val_mode_t mode);

void sch_config_free (sch_config_t *self);

void sch_config_test (bool verbose);

#endif
