/*  The agent's side of the connection: settings checks and logging (see
    agt_conn.h); the connection itself is the library's (lib/p2l_conn.c). */
#include "agt_conn.h"
#include "p2c_log.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>

//  libwebsockets' own lines are detail: shown with -v only
static void
s_lws_log (int level, const char *line)
{
    (void) level;
    char copy [512];
    snprintf (copy, sizeof copy, "%s", line);
    size_t n = strlen (copy);
    while (n > 0 && (copy [n - 1] == '\n' || copy [n - 1] == '\r'))
        copy [--n] = 0;
    log_debug ("agent: lws %s", copy);
}

int
agt_conn_check_tls (const char *url, const p2l_conn_tls_t *tls, const char *who)
{
    lws_set_log_level (p2c_log_verbose () ? LLL_ERR | LLL_WARN : 0, s_lws_log);
    bool wss = url && !strncmp (url, "wss://", 6);
    if (tls->ca_file) {
        FILE *f = fopen (tls->ca_file, "r");
        if (!f) {
            fprintf (stderr, "p2c2r-agent %s: cannot read --ca %s: %s\n", who, tls->ca_file,
                     strerror (errno));
            return -1;
        }
        fclose (f);
    }
    if (!wss && (tls->ca_file || tls->insecure))
        log_warn ("%s: --ca and --insecure have no effect on a ws:// address (no TLS)", who);
    else
    if (tls->insecure)
        log_warn ("%s: insecure mode: the server's certificate is not verified (self-signed "
                  "accepted, host name not checked); for a development server only", who);
    return 0;
}

void
agt_conn_log (int level, const char *line, void *arg)
{
    (void) arg;
    if (level >= P2L_LOG_WARN)
        log_warn ("%s", line);
    else
        log_debug ("%s", line);
}
