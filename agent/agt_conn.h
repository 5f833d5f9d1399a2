/*  What the agent adds to the library's connection (lib/p2l_conn.h): the
    connection settings every subcommand takes, the start-up checks of its
    TLS settings, and the bridge from the library's log lines to p2c_log. */
#ifndef AGT_CONN_H_INCLUDED
#define AGT_CONN_H_INCLUDED

#include <stdbool.h>

#include "p2l_conn.h"

//  Checks the TLS settings once at start, for `p2c2r-agent <who>`: the CA
//  file must be readable (said on stderr, -1); --insecure is warned about
//  once; either one with a ws:// address is noted as having no effect.
//  Also sets libwebsockets' process-wide log level (its lines with -v
//  only): the agent owns its process, the library does not touch it.
int agt_conn_check_tls (const char *url, const p2l_conn_tls_t *tls, const char *who);

//  An on_log handler (p2l_conn_handlers_t, p2c2r_options_t) that writes the
//  line through p2c_log; arg is unused.
void agt_conn_log (int level, const char *line, void *arg);

//  The connection settings of every agent subcommand, as p2c_cfg table
//  entries over the caller's variables: one place for their names, defaults
//  and help (peer and gamer take the same ones)
#define AGT_CONN_CFG(server_, ca_, insecure_, cloud_ip_, cloud_port_, api_key_) \
    { "server", P2C_CFG_STR, "ws://127.0.0.1:8765", 0, 0, &(server_), \
      "gateway address, ws://HOST[:PORT] or wss://HOST[:PORT] (TLS) [port 8765]" }, \
    { "ca", P2C_CFG_STR, NULL, 0, 0, &(ca_), \
      "wss://: CA certificate file (PEM) that signed the server's [the system's CA store]" }, \
    { "insecure", P2C_CFG_BOOL, "false", 0, 0, &(insecure_), \
      "wss://: accept a self-signed certificate and any host name (development only)" }, \
    { "cloud-ip", P2C_CFG_STR, NULL, 0, 0, &(cloud_ip_), \
      "gateway IP (the original demo's flag; overrides --server)" }, \
    { "cloud-port", P2C_CFG_INT, "8765", 1, 65535, &(cloud_port_), "gateway port with --cloud-ip" }, \
    { "api-key", P2C_CFG_SECRET, NULL, 0, 0, &(api_key_), \
      "API key (optional under open registration)" }

#endif
