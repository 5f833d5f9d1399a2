/*  The gateway server: one libwebsockets loop that holds the clients'
    WebSocket connections (ws:// or wss://) and HTTP on the same port
    (/healthz, /readyz, /metrics, /api/stats, static files), joined with the broker
    connection (p2c_node) whose ZeroMQ descriptor is adopted into the same
    loop, and one 100 ms cron (node heartbeat, registration and deadline
    guards; every second: registration timeouts, API key re-checks, table
    sweeps, the drain's progress). This is the glue: the gateway's rules
    are gw_core's (tested without sockets), the HTTP answers gw_http's.
    docs/gateway.md describes the settings. */
#ifndef GW_SERVER_H_INCLUDED
#define GW_SERVER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Settings (from gw_main's p2c_cfg table)
typedef struct {
    const char *host;           //  listen address, NULL or "" for all
    int port;                   //  listen port; 0 picks a free one
    const char *broker;         //  broker endpoint
    const char *node_id;        //  NULL or "" to make one
    bool auth_open;             //  open registration (accounts made on use)
    size_t max_frame;           //  largest client message, bytes
    size_t max_input_bytes;     //  unfinished client messages held together, bytes
    uint32_t default_deadline_ms;
    uint32_t max_deadline_ms;
    int64_t guard_grace_ms;     //  the deadline guard fires this long after the deadline
    int64_t auth_timeout_ms;    //  registration gives up without an AuthReply
    size_t send_queue;          //  frames queued per connection at most
    size_t send_queue_bytes;    //  bytes queued per connection at most
    unsigned max_bad_frames;    //  bad frames in a row before a close
    int64_t auth_cache_ms;      //  an accepted API key is trusted this long without asking
    int64_t auth_recheck_ms;    //  keys of live sessions are asked again this often
    const char *tls_cert;       //  PEM certificate: serve wss:// and https (NULL: plain)
    const char *tls_key;        //  its private key
    double rate_msgs;           //  messages per second per connection
    double rate_burst;          //  ... allowed in a burst
    size_t max_conns_per_ip;    //  live connections per client address
    double connect_rate;        //  connects per second per client address
    double connect_burst;       //  ... allowed in a burst
    const char *trusted_proxies;//  comma-separated addresses whose X-Forwarded-For is believed
    int ping_s;                 //  an idle connection is pinged after this many seconds
    int pong_timeout_s;         //  ... and dropped when nothing came back this much later
    int64_t register_timeout_ms;//  a connection must register within this
    int64_t drain_ms;           //  on SIGTERM, in-flight tasks get this long to finish
    int64_t stats_timeout_ms;   //  /api/stats waits this long for the scheduler and ledger
    const char *region;         //  this gateway's region; its gamers' tasks go to peers
                                //  of the same region first ("" none)
    const char *web_root;       //  static files served over HTTP; NULL or "": the
                                //  default (gw_files_default_root)
    const char *public_url;     //  this server's address in /install.sh; NULL or "":
                                //  from each request's Host header (gw_install)
    const char *downloads_dir;  //  /install.sh and the agent binary; NULL or "":
                                //  the default (gw_install_default_dir)
    const char *vendor_root;    //  Chart.js's directory, served as /vendor/chart.js/
    const char *admin_host;     //  the admin listener's address (NULL: the listener is off)
    int admin_port;             //  ... and port (0 picks a free one)
    const char *admin_token_file;   //  the operator's token ("": admin figures refused)
    size_t max_subscriptions;   //  live subscriptions (JSON subscribe) at once, all clients
} gw_settings_t;

typedef struct _gw_server_t gw_server_t;

//  Listens and connects to the broker. NULL (logged) on failure.
gw_server_t *gw_server_new (const gw_settings_t *settings);
void gw_server_destroy (gw_server_t **self_p);

//  Runs the loop until gw_server_stop.
void gw_server_run (gw_server_t *self);

//  Asks the loop to end. Safe from a signal handler. The first call
//  drains (stops accepting, lets in-flight tasks finish within drain_ms,
//  closes clients with 1001 going away); a second ends at once.
void gw_server_stop (gw_server_t *self);

//  The port listened on (useful with port 0).
int gw_server_port (gw_server_t *self);

//  The admin listener's port, -1 when it is off
int gw_server_admin_port (gw_server_t *self);

const char *gw_server_node_id (gw_server_t *self);

//  Parses "HOST:PORT" (HOST may be empty or a bracketless IPv4 name).
//  0, or -1 when malformed. *host_p is the caller's to free.
int gw_parse_listen (const char *text, char **host_p, int *port_p);

void gw_server_test (bool verbose);

#endif
