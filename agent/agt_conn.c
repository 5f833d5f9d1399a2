/*  The agent's side of the connection: settings checks and logging (see
    agt_conn.h); the connection itself is the library's (lib/p2l_conn.c). */
#define P2C_LOG_COMPONENT "agent"
#include "agt_conn.h"
#include "p2c_log.h"
#include "p2c_test.h"

#include <arpa/inet.h>
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
    log_debug ("lws %s", copy);
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
        p2c_log (P2C_LOG_WARN, who,
                 "--ca and --insecure have no effect on a ws:// address (no TLS)");
    else
    if (tls->insecure)
        p2c_log (P2C_LOG_WARN, who,
                 "insecure mode: the server's certificate is not verified (self-signed "
                 "accepted, host name not checked); for a development server only");
    return 0;
}

bool
agt_conn_url_loopback (const char *url)
{
    const char *host = url ? strstr (url, "://") : NULL;
    if (!host)
        return false;
    host += 3;
    char buf [256];
    size_t n;
    if (*host == '[') {
        host++;
        n = strcspn (host, "]");
        if (host [n] != ']')
            return false;
    }
    else
        n = strcspn (host, ":/?#");
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy (buf, host, n);
    buf [n] = 0;
    if (!strcasecmp (buf, "localhost"))
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton (AF_INET, buf, &a4) == 1)
        return (ntohl (a4.s_addr) >> 24) == 127;
    if (inet_pton (AF_INET6, buf, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK (&a6))
            return true;
        return IN6_IS_ADDR_V4MAPPED (&a6) && a6.s6_addr [12] == 127;
    }
    return false;
}

int
agt_conn_check_key (const char *url, bool has_key, bool allow_insecure_ws, const char *who)
{
    bool plain = url && !strncmp (url, "ws://", 5);
    if (!has_key || !plain || agt_conn_url_loopback (url))
        return 0;
    if (!allow_insecure_ws) {
        fprintf (stderr, "p2c2r-agent %s: refusing to send the API key in clear text to %s:"
                 " use a wss:// address (TLS), or --allow-insecure-ws if this network is"
                 " trusted\n", who, url);
        return -1;
    }
    p2c_log (P2C_LOG_WARN, who,
             "--allow-insecure-ws: the API key goes in clear text over ws:// to a"
             " non-loopback address; anyone on the path can read and reuse it");
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

void
agt_conn_test (bool verbose)
{
    (void) verbose;
    P2C_CHECK (agt_conn_url_loopback ("ws://127.0.0.1:8765/"));
    P2C_CHECK (agt_conn_url_loopback ("ws://127.8.9.10"));
    P2C_CHECK (agt_conn_url_loopback ("ws://localhost:8765"));
    P2C_CHECK (agt_conn_url_loopback ("ws://[::1]:8765/"));
    P2C_CHECK (agt_conn_url_loopback ("ws://[::ffff:127.0.0.1]:1/"));
    P2C_CHECK (!agt_conn_url_loopback ("ws://10.0.0.1:8765/"));
    P2C_CHECK (!agt_conn_url_loopback ("ws://128.0.0.1/"));
    P2C_CHECK (!agt_conn_url_loopback ("ws://localhost.example.com:8765/"));
    P2C_CHECK (!agt_conn_url_loopback ("ws://127.0.0.1.example.com/"));
    P2C_CHECK (!agt_conn_url_loopback ("ws://[2001:db8::1]:8765/"));
    P2C_CHECK (!agt_conn_url_loopback ("ws://[::1"));
    P2C_CHECK (!agt_conn_url_loopback ("no-scheme"));
    P2C_CHECK (!agt_conn_url_loopback (NULL));
    //  A key over ws:// leaves only for a loopback address, or when allowed;
    //  over wss://, or without a key, always
    P2C_CHECK (agt_conn_check_key ("ws://192.0.2.7:8765/", true, false, "test") == -1);
    P2C_CHECK (agt_conn_check_key ("ws://192.0.2.7:8765/", true, true, "test") == 0);
    P2C_CHECK (agt_conn_check_key ("ws://192.0.2.7:8765/", false, false, "test") == 0);
    P2C_CHECK (agt_conn_check_key ("wss://192.0.2.7:8765/", true, false, "test") == 0);
    P2C_CHECK (agt_conn_check_key ("ws://127.0.0.1:8765/", true, false, "test") == 0);
}
