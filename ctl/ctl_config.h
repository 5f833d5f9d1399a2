/*  p2c2r-ctl's settings: one table binds every option to a field of ctl_t
    with its default and help (p2c_cfg). */
#ifndef CTL_CONFIG_H_INCLUDED
#define CTL_CONFIG_H_INCLUDED

#include "ctl.h"

#include <stdbool.h>

//  Every setting's default, without parsing. Free with ctl_config_free.
void ctl_config_defaults (ctl_t *self);

//  Parses the defaults, --config file, environment and flags into a fresh
//  self; a database (--db) is required. Positional arguments stay in argv
//  (*argc_p updated). 0 to run (free with ctl_config_free), 1 to exit 0
//  (--help, -n), -1 on a bad setting (printed; nothing to free).
int ctl_config_load (ctl_t *self, int *argc_p, char **argv, bool *verbose_p);

void ctl_config_free (ctl_t *self);

void ctl_config_test (bool verbose);

#endif
