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

//  Refuses, once at start, to send an API key in clear text: with a key, a
//  ws:// address whose host is not a loopback one (127.0.0.0/8, ::1,
//  localhost) is refused (said on stderr, -1) unless allow_insecure_ws
//  (--allow-insecure-ws; then warned about). 0 when the key may go.
int agt_conn_check_key (const char *url, bool has_key, bool allow_insecure_ws, const char *who);

//  True when the host of a ws:// or wss:// url is a loopback address
bool agt_conn_url_loopback (const char *url);

//  An on_log handler (p2l_conn_handlers_t, p2c2r_options_t) that writes the
//  line through p2c_log; arg is unused.
void agt_conn_log (int level, const char *line, void *arg);

void agt_conn_test (bool verbose);

#endif
