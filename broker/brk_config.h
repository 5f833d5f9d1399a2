/*  The broker's settings: one table binds every option to a field of
    brk_config_t with its default and help (p2c_cfg). */
#ifndef BRK_CONFIG_H_INCLUDED
#define BRK_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char *bind;                 //  ZeroMQ endpoint the nodes connect to
    char *keys;                 //  key directory: the broker's pair and the allow-list
    bool curve;                 //  CURVE and the allow-list (false: anyone joins)
    char *probe;                //  "": serve; else check a running broker for these services
    int64_t probe_ms;           //  how long --probe waits
} brk_config_t;

//  Every setting's default, without parsing. Free with brk_config_free.
void brk_config_defaults (brk_config_t *self);

//  Parses the defaults, --config file, environment and flags into a fresh
//  self. 0 to run (free with brk_config_free), 1 to exit 0 (--help, -n),
//  -1 on a bad setting (printed; nothing to free).
int brk_config_load (brk_config_t *self, int argc, char **argv, bool *verbose_p);

void brk_config_free (brk_config_t *self);

void brk_config_test (bool verbose);

#endif
