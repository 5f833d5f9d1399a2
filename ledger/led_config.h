/*  The ledger's settings: one table binds every option to a field of the
    server's arguments (led_server_args_t) with its default, bounds and
    help (p2c_cfg), so that the binary and the unit tests start from the
    same values. A check step finds the migrations directory when none is
    given, after parsing and after the defaults alike. */
#ifndef LED_CONFIG_H_INCLUDED
#define LED_CONFIG_H_INCLUDED

#include "led_server.h"
#include "p2c_node.h"

#include <stdbool.h>

//  Where `make install` puts the migrations
#define LED_SHARE_SQL "/usr/local/share/p2c2r/sql"

typedef struct {
    led_server_args_t server;   //  what the server actor runs with
    p2c_node_bus_t bus;         //  the bus's keys
} led_config_t;

//  Every setting's default (and the migrations directory), without
//  parsing. Free with led_config_free.
void led_config_defaults (led_config_t *self);

//  Parses the defaults, --config file, environment and flags into a fresh
//  self and checks them; a database (--db) is required. 0 to run (free with
//  led_config_free), 1 to exit 0 (--help, -n), -1 on a bad setting
//  (printed; nothing to free).
int led_config_load (led_config_t *self, int argc, char **argv, bool *verbose_p);

void led_config_free (led_config_t *self);

void led_config_test (bool verbose);

#endif
