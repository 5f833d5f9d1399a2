/*  The gateway's settings: one table binds every option to a field of
    gw_config_t (mostly of the server's gw_settings_t) with its default,
    bounds and help (p2c_cfg), so that the binary and the unit tests start
    from the same values. A check step derives the listen host and port,
    the registration mode and the deadline cut, after parsing and after the
    defaults alike. */
#ifndef GW_CONFIG_H_INCLUDED
#define GW_CONFIG_H_INCLUDED

#include "gw_server.h"
#include "p2c_node.h"

#include <stdbool.h>

//  Longest host name in --listen (a DNS name is at most 253)
#define GW_CONFIG_HOST_MAX  255

typedef enum {
    GW_CONFIG_AUTH_OPEN,        //  accounts made on first use
    GW_CONFIG_AUTH_APIKEY       //  registration needs a key the ledger knows
} gw_config_auth_t;

typedef struct {
    char *listen;               //  HOST:PORT as given (into server.host and server.port)
    int auth;                   //  gw_config_auth_t (into server.auth_open)
    char *admin_listen;         //  HOST:PORT of the admin listener, "" off
    char host [GW_CONFIG_HOST_MAX + 1];     //  server.host points here
    char admin_host [GW_CONFIG_HOST_MAX + 1];   //  server.admin_host points here
    gw_settings_t server;       //  what the server runs with
    p2c_node_bus_t bus;         //  the bus's keys
} gw_config_t;

//  Every setting's default and what derives from them, without parsing.
//  Free with gw_config_free.
void gw_config_defaults (gw_config_t *self);

//  Parses the defaults, --config file, environment and flags into a fresh
//  self and checks them. 0 to run (free with gw_config_free), 1 to exit 0
//  (--help, -n), -1 on a bad setting (printed; nothing to free).
int gw_config_load (gw_config_t *self, int argc, char **argv, bool *verbose_p);

void gw_config_free (gw_config_t *self);

void gw_config_test (bool verbose);

#endif
