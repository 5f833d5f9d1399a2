/*  The one-line install's files (see gw_install.h). */
#include "gw_install.h"
#include "gw_files.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_sha256.h"
#include "p2c_test.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

//  The line of the script the gateway fills in with its address
#define S_MARKER "P2C2R_FROM="

struct _gw_install_t {
    char *public_url;           //  normalised (no trailing "/"), NULL: from requests
    char *script_head;          //  the script up to its marker line (owned), NULL: none
    char *script_tail;          //  ... and after that line
    uint8_t *agent;             //  the binary (owned), NULL: none
    size_t agent_len;
    char sha256 [65];           //  computed from agent, "" when none
    char *sha_file;             //  the .sha256 served (owned)
    char *unit;                 //  the systemd unit the script installs (owned), NULL: none
};

//  Reads a whole regular file of at most max bytes (gw_files_read);
//  NULL when it cannot
static uint8_t *
s_slurp (const char *path, size_t max, size_t *len_p)
{
    uint8_t *buf = NULL;
    unsigned status = gw_files_read (path, false, max, 0, &buf, len_p);
    if (status == 403)
        log_warn ("not served (not a file, or over %zu bytes) path=%s", max, path);
    return status == 200 ? buf : NULL;
}

//  Splits the script around its marker line (a line that is exactly the
//  marker); false when it has none
static bool
s_load_script (gw_install_t *self, const char *path)
{
    size_t len = 0;
    char *text = (char *) s_slurp (path, GW_INSTALL_MAX_SCRIPT, &len);
    if (!text)
        return false;
    char *line = text;
    while (line && *line) {
        char *nl = strchr (line, '\n');
        if (nl && (size_t) (nl - line) == strlen (S_MARKER)
            && !memcmp (line, S_MARKER, strlen (S_MARKER))) {
            self->script_head = p2c_strndup (text, (size_t) (line - text));
            self->script_tail = p2c_strdup (nl + 1);
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    free (text);
    if (!self->script_head)
        log_warn ("the install script has no '%s' line, not served path=%s",
                  S_MARKER, path);
    return self->script_head != NULL;
}

//  The binary and its checksum: the directory's .sha256 when present (a
//  mismatch is logged and served as it is: the script refuses it), else
//  computed
static void
s_load_agent (gw_install_t *self, const char *dir)
{
    char *path = p2c_sprintf ("%s/%s", dir, GW_INSTALL_AGENT);
    self->agent = s_slurp (path, GW_INSTALL_MAX_BINARY, &self->agent_len);
    zstr_free (&path);
    if (!self->agent)
        return;
    p2c_sha256_hex (self->agent, self->agent_len, self->sha256);
    path = p2c_sprintf ("%s/%s.sha256", dir, GW_INSTALL_AGENT);
    size_t len = 0;
    self->sha_file = (char *) s_slurp (path, 4096, &len);
    zstr_free (&path);
    if (self->sha_file && strncmp (self->sha_file, self->sha256, 64) != 0)
        log_warn ("%s.sha256 does not match the binary beside it (sha256=%s):"
                  " the install script will refuse it", GW_INSTALL_AGENT, self->sha256);
    if (!self->sha_file)
        self->sha_file = p2c_sprintf ("%s  %s\n", self->sha256, GW_INSTALL_AGENT);
    path = p2c_sprintf ("%s/%s", dir, GW_INSTALL_UNIT);
    self->unit = (char *) s_slurp (path, 65536, &len);
    zstr_free (&path);
}

gw_install_t *
gw_install_new (const char *dir, const char *public_url)
{
    gw_install_t *self = (gw_install_t *) zmalloc (sizeof (gw_install_t));
    if (public_url && *public_url) {
        assert (gw_install_url_ok (public_url));
        self->public_url = p2c_strdup (public_url);
        size_t n = strlen (self->public_url);
        if (self->public_url [n - 1] == '/')
            self->public_url [n - 1] = 0;
    }
    char *def = dir && *dir ? NULL : gw_install_default_dir ();
    const char *d = def ? def : dir;
    char *script = p2c_sprintf ("%s/install.sh", d);
    s_load_script (self, script);
    zstr_free (&script);
    s_load_agent (self, d);
    if (!self->script_head || !self->agent || !self->unit)
        log_info ("downloads dir=%s install.sh=%s agent=%s unit=%s", d,
                  self->script_head ? "served" : "missing",
                  self->agent ? "served" : "missing", self->unit ? "served" : "missing");
    else
        log_info ("downloads dir=%s install.sh, its unit and %s served sha256=%s", d,
                  GW_INSTALL_AGENT, self->sha256);
    free (def);
    return self;
}

void
gw_install_destroy (gw_install_t **self_p)
{
    gw_install_t *self = *self_p;
    if (!self)
        return;
    free (self->public_url);
    free (self->script_head);
    free (self->script_tail);
    free (self->agent);
    free (self->sha_file);
    free (self->unit);
    free (self);
    *self_p = NULL;
}

char *
gw_install_default_dir (void)
{
    return gw_files_share_dir ("downloads");
}

const char *
gw_install_sha256 (gw_install_t *self)
{
    return self->agent ? self->sha256 : NULL;
}

bool
gw_install_owns (const char *path)
{
    return path && (!strcmp (path, "/install.sh") || !strcmp (path, "/downloads")
                    || !strncmp (path, "/downloads/", 11));
}

//  ":PORT" with 1-65535, or ""
static bool
s_port_ok (const char *p)
{
    if (!*p)
        return true;
    if (*p != ':' || !p [1] || strlen (p + 1) > 5)
        return false;
    long v = 0;
    for (const char *c = p + 1; *c; c++) {
        if (*c < '0' || *c > '9')
            return false;
        v = v * 10 + (*c - '0');
    }
    return v >= 1 && v <= 65535;
}

bool
gw_install_host_ok (const char *host)
{
    if (!host || !*host || strnlen (host, 262) > 261)
        return false;
    const char *p = host;
    if (*p == '[') {
        size_t n = strspn (p + 1, "0123456789abcdefABCDEF:.");
        if (n < 2 || p [1 + n] != ']')
            return false;
        return s_port_ok (p + n + 2);
    }
    //  Labels of letters, digits and hyphens, joined by single dots
    size_t n = strspn (p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
    if (n == 0 || n > 253 || p [0] == '.' || p [0] == '-' || strstr (p, "..")
        || (n > 0 && p [n - 1] == '-'))
        return false;
    return s_port_ok (p + n);
}

bool
gw_install_url_ok (const char *url)
{
    if (!url)
        return false;
    const char *rest = !strncmp (url, "https://", 8) ? url + 8
                     : !strncmp (url, "http://", 7) ? url + 7 : NULL;
    if (!rest)
        return false;
    char host [263];
    size_t n = strnlen (rest, sizeof host);
    if (n == 0 || n >= sizeof host)
        return false;
    memcpy (host, rest, n + 1);
    if (host [n - 1] == '/')
        host [n - 1] = 0;
    return gw_install_host_ok (host);
}

int
gw_install_base_url (gw_install_t *self, const gw_install_request_t *req, char *out,
                     size_t size)
{
    if (self->public_url) {
        int n = snprintf (out, size, "%s", self->public_url);
        return n > 0 && (size_t) n < size ? 0 : -1;
    }
    if (!req || !gw_install_host_ok (req->host))
        return -1;
    bool https = req->tls || (req->proto && !strcasecmp (req->proto, "https"));
    int n = snprintf (out, size, "%s://%s", https ? "https" : "http", req->host);
    return n > 0 && (size_t) n < size ? 0 : -1;
}

//  A fresh buffer: pre spare bytes, then the parts one after another
static uint8_t *
s_join (size_t pre, size_t *len_p, const char *a, size_t alen, const char *b, size_t blen,
        const char *c, size_t clen)
{
    uint8_t *buf = (uint8_t *) p2c_malloc (pre + alen + blen + clen + 1);
    if (!buf)
        return NULL;
    memcpy (buf + pre, a, alen);
    if (blen)
        memcpy (buf + pre + alen, b, blen);
    if (clen)
        memcpy (buf + pre + alen + blen, c, clen);
    *len_p = alen + blen + clen;
    return buf;
}

static unsigned
s_text (size_t pre, uint8_t **buf_p, size_t *len_p, const char **type_p, const char *text)
{
    *buf_p = s_join (pre, len_p, text, strlen (text), NULL, 0, NULL, 0);
    *type_p = "text/plain; charset=utf-8";
    return *buf_p ? 200 : 500;
}

unsigned
gw_install_get (gw_install_t *self, const char *path, const gw_install_request_t *req,
                size_t pre, uint8_t **buf_p, size_t *len_p, const char **type_p)
{
    *buf_p = NULL;
    *len_p = 0;
    if (!path)
        return 404;
    if (!strcmp (path, "/install.sh")) {
        if (!self->script_head)
            return 404;
        char base [GW_INSTALL_URL_MAX + 1];
        if (gw_install_base_url (self, req, base, sizeof base) != 0) {
            unsigned rc = s_text (pre, buf_p, len_p, type_p,
                                  "bad or missing Host header (the operator may set"
                                  " --public-url)\n");
            return rc == 200 ? 400 : rc;
        }
        char line [GW_INSTALL_URL_MAX + 32];
        snprintf (line, sizeof line, S_MARKER "'%s'\n", base);
        *buf_p = s_join (pre, len_p, self->script_head, strlen (self->script_head), line,
                         strlen (line), self->script_tail, strlen (self->script_tail));
        *type_p = "text/x-shellscript; charset=utf-8";
        return *buf_p ? 200 : 500;
    }
    if (!strcmp (path, "/downloads/" GW_INSTALL_UNIT) && self->unit)
        return s_text (pre, buf_p, len_p, type_p, self->unit);
    if (!self->agent)
        return 404;
    if (!strcmp (path, "/downloads/" GW_INSTALL_AGENT)) {
        *buf_p = s_join (pre, len_p, (const char *) self->agent, self->agent_len, NULL, 0,
                         NULL, 0);
        *type_p = "application/octet-stream";
        return *buf_p ? 200 : 500;
    }
    if (!strcmp (path, "/downloads/" GW_INSTALL_AGENT ".sha256"))
        return s_text (pre, buf_p, len_p, type_p, self->sha_file);
    return 404;
}

// ---------------------------------------------------------------------------
//  Self-test

static void
s_write (const char *dir, const char *name, const char *text)
{
    char *path = p2c_sprintf ("%s/%s", dir, name);
    FILE *f = fopen (path, "w");
    assert (f);
    fputs (text, f);
    fclose (f);
    zstr_free (&path);
}

//  The body of a GET with its status, NULL-terminated, or NULL when the
//  status is not the one expected
static char *
s_get (gw_install_t *self, const char *path, const gw_install_request_t *req, unsigned want)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    const char *type = NULL;
    unsigned got = gw_install_get (self, path, req, 8, &buf, &len, &type);
    if (got != want) {
        free (buf);
        return NULL;
    }
    char *text = p2c_strndup (buf ? (char *) buf + 8 : "", len);
    free (buf);
    return text;
}

static void
s_test_hosts (void)
{
    const char *good [] = { "p2c2r.example.org", "example.org:8443", "127.0.0.1",
                            "172.17.0.1:8765", "[::1]", "[2001:db8::1]:443", "localhost",
                            "a-b.c", NULL };
    const char *bad [] = { "", "a;b", "a b", "$(id)", "`id`", "a'b", "a\"b", "x:0", "x:65536",
                           "x:", "x:12a", "[::1", "[]", "-a.b", ".a", "a..b", "a-", "a/b",
                           "a\\b", "a\nb", "a:1:2", "[::1]x", "ex*mple", "a|b", "a&b", "{a}",
                           NULL };
    for (int i = 0; good [i]; i++)
        P2C_CHECK (gw_install_host_ok (good [i]));
    for (int i = 0; bad [i]; i++)
        P2C_CHECK (!gw_install_host_ok (bad [i]));
    P2C_CHECK (!gw_install_host_ok (NULL));
    char longhost [300];
    memset (longhost, 'a', sizeof longhost - 1);
    longhost [sizeof longhost - 1] = 0;
    P2C_CHECK (!gw_install_host_ok (longhost));
    P2C_CHECK (gw_install_url_ok ("https://p2c2r.example.org"));
    P2C_CHECK (gw_install_url_ok ("http://127.0.0.1:8765/"));
    P2C_CHECK (!gw_install_url_ok ("ftp://x"));
    P2C_CHECK (!gw_install_url_ok ("https://"));
    P2C_CHECK (!gw_install_url_ok ("https://x/path"));
    P2C_CHECK (!gw_install_url_ok ("https://x;rm"));
    P2C_CHECK (!gw_install_url_ok ("x.org"));
    P2C_CHECK (!gw_install_url_ok (NULL));
}

//  A directory with a script, an agent "abc" and a unit: the address from
//  the request (the Host header, the scheme from TLS or a trusted proxy);
//  the binary, its computed checksum, the unit; nothing else
static void
s_test_from_request (const char *dir)
{
    gw_install_t *inst = gw_install_new (dir, NULL);
    const char *abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    P2C_CHECK (gw_install_sha256 (inst) && !strcmp (gw_install_sha256 (inst), abc));
    gw_install_request_t req = { "gw.example.org:8765", NULL, false };
    char *s = s_get (inst, "/install.sh", &req, 200);
    P2C_CHECK (s && !strcmp (s, "#!/bin/sh\n# P2C2R_FROM= in a comment stays\n"
                             "P2C2R_FROM='http://gw.example.org:8765'\necho \"$P2C2R_FROM\"\n"));
    free (s);
    req.proto = "https";
    s = s_get (inst, "/install.sh", &req, 200);
    P2C_CHECK (s && strstr (s, "\nP2C2R_FROM='https://gw.example.org:8765'\n"));
    free (s);
    req.proto = NULL;
    req.tls = true;
    s = s_get (inst, "/install.sh", &req, 200);
    P2C_CHECK (s && strstr (s, "\nP2C2R_FROM='https://gw.example.org:8765'\n"));
    free (s);
    req.host = "x';rm -rf /;'";
    s = s_get (inst, "/install.sh", &req, 400);
    P2C_CHECK (s && !strstr (s, "rm -rf"));
    free (s);
    req.host = NULL;
    s = s_get (inst, "/install.sh", &req, 400);
    free (s);
    P2C_CHECK (s != NULL);
    //  The binary and its computed checksum; nothing else under /downloads
    s = s_get (inst, "/downloads/" GW_INSTALL_AGENT, &req, 200);
    P2C_CHECK (s && !strcmp (s, "abc"));
    free (s);
    s = s_get (inst, "/downloads/" GW_INSTALL_AGENT ".sha256", &req, 200);
    char *want = p2c_sprintf ("%s  %s\n", abc, GW_INSTALL_AGENT);
    P2C_CHECK (s && !strcmp (s, want));
    free (s);
    zstr_free (&want);
    s = s_get (inst, "/downloads/" GW_INSTALL_UNIT, &req, 200);
    P2C_CHECK (s && !strcmp (s, "[Unit]\n"));
    free (s);
    const char *nothing [] = { "/downloads", "/downloads/", "/downloads/../install.sh",
                               "/downloads/" GW_INSTALL_AGENT "/", "/downloads/x", NULL };
    for (int i = 0; nothing [i]; i++) {
        s = s_get (inst, nothing [i], &req, 404);
        P2C_CHECK (s != NULL);
        free (s);
    }
    gw_install_destroy (&inst);
    gw_install_destroy (&inst);
}

void
gw_install_test (bool verbose)
{
    (void) verbose;
    s_test_hosts ();
    char dir [] = "/tmp/gw_install_test.XXXXXX";
    P2C_CHECK (mkdtemp (dir) != NULL);
    s_write (dir, "install.sh", "#!/bin/sh\n# P2C2R_FROM= in a comment stays\n"
                                "P2C2R_FROM=\necho \"$P2C2R_FROM\"\n");
    s_write (dir, GW_INSTALL_AGENT, "abc");
    s_write (dir, GW_INSTALL_UNIT, "[Unit]\n");
    s_test_from_request (dir);

    //  --public-url wins over the Host header; a published .sha256 is served as it is
    gw_install_request_t req = { "evil.example.org", NULL, false };
    char *s = NULL;
    gw_install_t *inst = NULL;
    s_write (dir, GW_INSTALL_AGENT ".sha256", "0000  " GW_INSTALL_AGENT "\n");
    inst = gw_install_new (dir, "https://p2c2r.example.org/");
    s = s_get (inst, "/install.sh", &req, 200);
    P2C_CHECK (s && strstr (s, "\nP2C2R_FROM='https://p2c2r.example.org'\n"));
    free (s);
    req.host = NULL;
    s = s_get (inst, "/install.sh", &req, 200);
    P2C_CHECK (s != NULL);
    free (s);
    s = s_get (inst, "/downloads/" GW_INSTALL_AGENT ".sha256", &req, 200);
    P2C_CHECK (s && !strcmp (s, "0000  " GW_INSTALL_AGENT "\n"));
    free (s);
    gw_install_destroy (&inst);

    //  A script without its line, a directory without files: nothing served
    s_write (dir, "install.sh", "#!/bin/sh\nP2C2R_FROM=x\n");
    char *p = p2c_sprintf ("%s/%s", dir, GW_INSTALL_AGENT);
    P2C_CHECK (unlink (p) == 0);
    zstr_free (&p);
    inst = gw_install_new (dir, NULL);
    req.host = "gw.example.org";
    P2C_CHECK (gw_install_sha256 (inst) == NULL);
    s = s_get (inst, "/install.sh", &req, 404);
    free (s);
    P2C_CHECK (s != NULL);
    s = s_get (inst, "/downloads/" GW_INSTALL_AGENT, &req, 404);
    free (s);
    P2C_CHECK (s != NULL);
    gw_install_destroy (&inst);

    P2C_CHECK (gw_install_owns ("/install.sh") && gw_install_owns ("/downloads/x")
               && gw_install_owns ("/downloads") && !gw_install_owns ("/install.sh.x")
               && !gw_install_owns ("/downloadsx") && !gw_install_owns ("/")
               && !gw_install_owns (NULL));
    char *cmd = p2c_sprintf ("rm -rf '%s'", dir);
    P2C_CHECK (system (cmd) == 0);
    zstr_free (&cmd);
}
