/*  `p2c2r-agent peer`: a contributor's agent. It registers with a gateway,
    runs the tasks it is assigned on a pool of worker processes (one per
    slot, see agt_worker.h) and sends the results back; it reconnects
    forever with backoff when the connection drops. */
#ifndef AGT_PEER_H_INCLUDED
#define AGT_PEER_H_INCLUDED

#include <stdbool.h>

#define AGT_VERSION "0.1.0"

//  The `peer` subcommand (argv[0] is "peer"). Returns the exit status.
int agt_peer_main (int argc, char **argv);

//  The server address from --server, or --cloud-ip/--cloud-port (the
//  original demo's flags) when an IP is given. Caller frees.
char *agt_server_url (const char *server, const char *cloud_ip, long long cloud_port);

//  "<prefix><hostname>-<pid>", the default id of a peer or gamer. Caller frees.
char *agt_default_id (const char *prefix);

#endif
