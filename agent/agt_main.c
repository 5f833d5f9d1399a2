/*  p2c2r-agent: the contributor's worker (`peer`) and the player's client
    (`gamer`) in one binary; `worker` is the hidden subcommand the peer
    runs its kernels in (see agt_worker.h). */
#include "agt_bench.h"
#include "agt_control.h"
#include "agt_gamer.h"
#include "agt_peer.h"
#include "agt_worker.h"

#include <stdio.h>
#include <string.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
             "Usage: p2c2r-agent peer [options]    lend this machine's CPU to P2C2R\n"
             "       p2c2r-agent gamer [options]   submit tasks and print the replies\n"
             "       p2c2r-agent bench [options]   time each kernel on its reference input\n"
             "       p2c2r-agent status|pause|resume|snooze DURATION|prefs [reload]\n"
             "                                     ask the peer running as this user\n"
             "       p2c2r-agent --version\n"
             "Each subcommand has --help.\n");
}

int
main (int argc, char **argv)
{
    if (argc < 2) {
        s_usage (stderr);
        return 1;
    }
    const char *cmd = argv [1];
    //  The subcommand's own parser sees its name as argv[0]
    if (!strcmp (cmd, "peer"))
        return agt_peer_main (argc - 1, argv + 1);
    if (!strcmp (cmd, "gamer"))
        return agt_gamer_main (argc - 1, argv + 1);
    if (!strcmp (cmd, "bench"))
        return agt_bench_main (argc - 1, argv + 1);
    if (!strcmp (cmd, "status") || !strcmp (cmd, "pause") || !strcmp (cmd, "resume")
        || !strcmp (cmd, "snooze") || !strcmp (cmd, "prefs"))
        return agt_control_main (argc - 1, argv + 1);
    if (!strcmp (cmd, "worker"))
        return agt_worker_main (argc - 1, argv + 1, agt_kernel_find);
    if (!strcmp (cmd, "--version")) {
        printf ("p2c2r-agent %s\n", AGT_VERSION);
        return 0;
    }
    if (!strcmp (cmd, "--help") || !strcmp (cmd, "-h")) {
        s_usage (stdout);
        return 0;
    }
    fprintf (stderr, "p2c2r-agent: unknown subcommand '%s'\n", cmd);
    s_usage (stderr);
    return 1;
}
