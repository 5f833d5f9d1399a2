/*  p2c2r-ctl keys: the bus's allow-list (p2c_keys.h, docs/trust.md). It
    works on the files alone: the broker notices a change of allow/ or
    revoked/ within a second and applies it, so adding or revoking one
    node's key restarts nothing. */
#include "ctl.h"
#include "p2c_keys.h"

#include <czmq.h>

static void
s_print (void *arg, const char *name, const char *service, const char *public_z85, bool revoked)
{
    (void) arg;
    printf ("%-24s %-10s %-8s %s\n", name, service, revoked ? "revoked" : "allowed", public_z85);
}

int
ctl_keys (const char *dir, int argc, char **argv)
{
    const char *cmd = argc > 0 ? argv [0] : "";
    int rc = -1;
    if (!strcmp (cmd, "init") && argc == 1) {
        rc = p2c_keys_init (dir);
        if (rc == 0)
            printf ("keys ready in %s\n", dir);
    }
    else
    if (!strcmp (cmd, "list") && argc == 1) {
        printf ("%-24s %-10s %-8s %s\n", "name", "service", "state", "public key");
        p2c_keys_each (dir, s_print, NULL);
        rc = 0;
    }
    else
    if (!strcmp (cmd, "add") && (argc == 3 || argc == 4)) {
        rc = p2c_keys_add (dir, argv [1], argv [2], argc == 4 ? argv [3] : NULL);
        if (rc == 0 && argc == 3)
            printf ("added %s (%s): its pair is %s/%s.key_secret, for that node only\n",
                    argv [1], argv [2], dir, argv [1]);
        else
        if (rc == 0)
            printf ("added %s (%s)\n", argv [1], argv [2]);
    }
    else
    if (!strcmp (cmd, "revoke") && argc == 2) {
        rc = p2c_keys_revoke (dir, argv [1]);
        if (rc == 0)
            printf ("revoked %s\n", argv [1]);
    }
    else {
        fprintf (stderr, "usage: p2c2r-ctl keys init | list | add NAME SERVICE [PUBLIC_KEY]"
                 " | revoke NAME\n");
        return CTL_EXIT_ERROR;
    }
    return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}
