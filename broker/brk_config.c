/*  The broker's settings table (see brk_config.h). */
#include "brk_config.h"
#include "p2c_cfg.h"
#include "p2c_test.h"

#include <stdio.h>
#include <string.h>

static const p2c_cfg_t s_table [] = {
    { "bind", P2C_CFG_STR, P2C_CFG_FIELD (brk_config_t, bind), "tcp://127.0.0.1:5555",
      .help = "ZeroMQ endpoint the nodes connect to" },
    { "keys", P2C_CFG_STR, P2C_CFG_FIELD (brk_config_t, keys), "var/keys",
      .help = "key directory: the broker's pair and the allow-list (p2c2r-ctl keys)" },
    { "curve", P2C_CFG_BOOL, P2C_CFG_FIELD (brk_config_t, curve), "true",
      .help = "CURVE and the allow-list; false lets any process join (to measure the cost"
      " only)" },
    { "probe", P2C_CFG_STR, P2C_CFG_FIELD (brk_config_t, probe), "",
      .help = "do not serve: exit 0 when the broker at --bind beats and has a live node of each"
      " of these services (comma-separated; 'broker': the broker alone), else 1; it joins as a"
      " ctl node with the ctl key of --keys" },
    { "probe-ms", P2C_CFG_INT64, P2C_CFG_FIELD (brk_config_t, probe_ms), "3000", 100, 60000,
      .help = "how long --probe waits" },
    { .name = NULL }
};

static const p2c_cfg_spec_t s_spec = { "p2c2r-broker", "[options]", s_table, NULL };

//  brk_config_defaults, brk_config_load, brk_config_free
P2C_CFG_FUNCTIONS (brk_config, brk_config_t, &s_spec)

void
brk_config_test (bool verbose)
{
    (void) verbose;
    brk_config_t cfg;
    brk_config_defaults (&cfg);
    P2C_CHECK (!strcmp (cfg.bind, "tcp://127.0.0.1:5555"));
    brk_config_free (&cfg);
    P2C_CHECK (cfg.bind == NULL);

    char a0 [] = "p2c2r-broker", a1 [] = "--bind", a2 [] = "tcp://127.0.0.1:0", a3 [] = "x";
    char *argv [] = { a0, a1, a2, NULL };
    P2C_CHECK (brk_config_load (&cfg, 3, argv, NULL) == 0);
    P2C_CHECK (!strcmp (cfg.bind, "tcp://127.0.0.1:0"));
    brk_config_free (&cfg);
    char *argv2 [] = { a0, a3, NULL };
    P2C_CHECK (brk_config_load (&cfg, 2, argv2, NULL) == -1);
}
