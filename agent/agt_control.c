/*  Local control of a running peer over a UNIX socket (see agt_control.h). */
#include "agt_control.h"
#include "p2c_log.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_MAX_REQUEST   4096
#define S_MAX_CLIENTS   8
#define S_CLIENT_US     1000000

typedef struct {
    int fd;                         //  -1: free
    int64_t since_us;
    char buf [S_MAX_REQUEST + 1];
    size_t len;
} s_client_t;

struct _agt_control_t {
    char path [108];                //  sun_path's size
    int fd;
    agt_control_fn *fn;
    void *arg;
    s_client_t clients [S_MAX_CLIENTS];
};

char *
agt_control_default_path (void)
{
    char buf [PATH_MAX];
    const char *xdg = getenv ("XDG_RUNTIME_DIR");
    if (xdg && *xdg == '/')
        snprintf (buf, sizeof buf, "%s/p2c2r-agent/control", xdg);
    else
    if (geteuid () == 0)
        snprintf (buf, sizeof buf, "/run/p2c2r-agent/control");
    else
        snprintf (buf, sizeof buf, "/tmp/p2c2r-agent-%u/control", (unsigned) geteuid ());
    return strdup (buf);
}

//  Makes path's directory, owner only, when it does not exist; refuses one
//  that another user owns or others may write
static int
s_make_dir (const char *path, char *why, size_t why_size)
{
    char dir [PATH_MAX];
    snprintf (dir, sizeof dir, "%s", path);
    char *slash = strrchr (dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = 0;
    if (mkdir (dir, 0700) != 0 && errno != EEXIST) {
        snprintf (why, why_size, "cannot make %s: %s", dir, strerror (errno));
        return -1;
    }
    struct stat st;
    if (lstat (dir, &st) != 0 || !S_ISDIR (st.st_mode) || st.st_uid != geteuid ()
        || (st.st_mode & 0022)) {
        snprintf (why, why_size, "%s must be a directory of ours that others cannot write", dir);
        return -1;
    }
    return 0;
}

static int
s_address (const char *path, struct sockaddr_un *sa, char *why, size_t why_size)
{
    memset (sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (strlen (path) >= sizeof sa->sun_path) {
        snprintf (why, why_size, "control socket path too long: %s", path);
        return -1;
    }
    memcpy (sa->sun_path, path, strlen (path));
    return 0;
}

agt_control_t *
agt_control_new (const char *path, agt_control_fn *fn, void *arg, char *why, size_t why_size)
{
    struct sockaddr_un sa;
    if (s_address (path, &sa, why, why_size) != 0 || s_make_dir (path, why, why_size) != 0)
        return NULL;
    //  A live peer answers on the old socket: refuse; a stale one goes
    int probe = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect (probe, (struct sockaddr *) &sa, sizeof sa) == 0) {
        close (probe);
        snprintf (why, why_size, "another agent already listens on %s", path);
        return NULL;
    }
    if (probe >= 0)
        close (probe);
    unlink (path);
    agt_control_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->path, sizeof self->path, "%s", path);
    self->fn = fn;
    self->arg = arg;
    for (int i = 0; i < S_MAX_CLIENTS; i++)
        self->clients [i].fd = -1;
    self->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    mode_t old = umask (0177);
    int rc = self->fd < 0 ? -1 : bind (self->fd, (struct sockaddr *) &sa, sizeof sa);
    umask (old);
    if (rc != 0 || listen (self->fd, S_MAX_CLIENTS) != 0 || chmod (path, 0600) != 0) {
        snprintf (why, why_size, "cannot listen on %s: %s", path, strerror (errno));
        if (self->fd >= 0)
            close (self->fd);
        free (self);
        return NULL;
    }
    return self;
}

static void
s_drop (s_client_t *c)
{
    if (c->fd >= 0)
        close (c->fd);
    c->fd = -1;
    c->len = 0;
}

void
agt_control_destroy (agt_control_t **self_p)
{
    agt_control_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < S_MAX_CLIENTS; i++)
        s_drop (&self->clients [i]);
    close (self->fd);
    unlink (self->path);
    free (self);
    *self_p = NULL;
}

int
agt_control_fd (agt_control_t *self)
{
    return self->fd;
}

int64_t
agt_control_duration (const char *text)
{
    if (!text || !*text)
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (errno || end == text || v <= 0)
        return -1;
    long long unit = 1;
    if (*end == 'm')
        unit = 60;
    else
    if (*end == 'h')
        unit = 3600;
    else
    if (*end == 'd')
        unit = 86400;
    else
    if (*end && *end != 's')
        return -1;
    if (*end && end [1])
        return -1;
    if (v > 7 * 86400 / unit)
        return -1;
    return v * unit;
}

static char *
s_error (const char *text)
{
    json_t *o = json_pack ("{s:b s:s}", "ok", 0, "error", text);
    char *s = json_dumps (o, JSON_COMPACT);
    json_decref (o);
    return s;
}

//  Answers the request in c->buf and ends the connection
static void
s_answer (agt_control_t *self, s_client_t *c)
{
    c->buf [c->len] = 0;
    json_error_t err;
    json_t *req = json_loads (c->buf, JSON_REJECT_DUPLICATES, &err);
    const char *cmd = req ? json_string_value (json_object_get (req, "cmd")) : NULL;
    json_t *a = req ? json_object_get (req, "arg") : NULL;
    int64_t arg = json_is_integer (a) ? (int64_t) json_integer_value (a) : 0;
    char *reply = NULL;
    if (!cmd)
        reply = s_error ("bad request: want {\"cmd\":...}");
    else
    if (strcmp (cmd, "status") && strcmp (cmd, "pause") && strcmp (cmd, "resume")
        && strcmp (cmd, "snooze") && strcmp (cmd, "prefs") && strcmp (cmd, "reload"))
        reply = s_error ("unknown command");
    else
    if (!strcmp (cmd, "snooze") && (arg < 1 || arg > 7 * 86400))
        reply = s_error ("snooze wants a duration from 1 s to 7 days");
    else
        reply = self->fn (cmd, arg, self->arg);
    json_decref (req);
    if (!reply)
        reply = s_error ("out of memory");
    if (reply) {
        size_t n = strlen (reply);
        //  a fresh UNIX socket takes a few KiB at once; a client that
        //  cannot is dropped rather than waited for
        if (send (c->fd, reply, n, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t) n)
            (void) send (c->fd, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    free (reply);
    s_drop (c);
}

void
agt_control_serve (agt_control_t *self, int64_t now_us)
{
    while (true) {
        int fd = accept4 (self->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            break;
        s_client_t *c = NULL;
        for (int i = 0; i < S_MAX_CLIENTS && !c; i++)
            if (self->clients [i].fd < 0)
                c = &self->clients [i];
        if (!c) {
            close (fd);
            continue;
        }
        c->fd = fd;
        c->since_us = now_us;
        c->len = 0;
    }
    for (int i = 0; i < S_MAX_CLIENTS; i++) {
        s_client_t *c = &self->clients [i];
        if (c->fd < 0)
            continue;
        while (c->len < S_MAX_REQUEST) {
            ssize_t n = recv (c->fd, c->buf + c->len, S_MAX_REQUEST - c->len, MSG_DONTWAIT);
            if (n > 0) {
                c->len += (size_t) n;
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EINTR && errno != EWOULDBLOCK)) {
                //  the client is done sending: answer what came
                if (c->len)
                    s_answer (self, c);
                else
                    s_drop (c);
            }
            break;
        }
        if (c->fd < 0)
            continue;
        if (memchr (c->buf, '\n', c->len))
            s_answer (self, c);
        else
        if (c->len >= S_MAX_REQUEST || now_us - c->since_us > S_CLIENT_US)
            s_drop (c);
    }
}

//  --------------------------------------------------------------------------
//  Client

//  Sends one request, returns the reply (caller frees) or NULL with why
static char *
s_request (const char *path, const char *cmd, int64_t arg, char *why, size_t why_size)
{
    struct sockaddr_un sa;
    if (s_address (path, &sa, why, why_size) != 0)
        return NULL;
    int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect (fd, (struct sockaddr *) &sa, sizeof sa) != 0) {
        snprintf (why, why_size, "no peer agent answers on %s (%s)", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        return NULL;
    }
    char req [128];
    int n = snprintf (req, sizeof req, "{\"cmd\":\"%s\",\"arg\":%lld}\n", cmd, (long long) arg);
    char *reply = NULL;
    if (send (fd, req, (size_t) n, MSG_NOSIGNAL) == n) {
        size_t cap = 65536, len = 0;
        reply = malloc (cap + 1);
        int64_t end = p2c_now_us () + 5000000;
        while (reply && len < cap) {
            struct pollfd p = { fd, POLLIN, 0 };
            int left = (int) ((end - p2c_now_us ()) / 1000);
            if (left <= 0 || poll (&p, 1, left) <= 0)
                break;
            ssize_t got = recv (fd, reply + len, cap - len, 0);
            if (got <= 0)
                break;
            len += (size_t) got;
            if (memchr (reply, '\n', len))
                break;
        }
        if (reply)
            reply [len] = 0;
        if (reply && !len) {
            free (reply);
            reply = NULL;
        }
    }
    close (fd);
    if (!reply)
        snprintf (why, why_size, "the peer agent on %s did not answer", path);
    return reply;
}

static void
s_print_money (const char *label, json_t *o, const char *key)
{
    json_t *v = json_object_get (o, key);
    if (json_is_string (v))
        printf ("  %-14s $%s\n", label, json_string_value (v));
}

static void
s_print_status (json_t *o)
{
    const char *state = json_string_value (json_object_get (o, "state"));
    const char *reason = json_string_value (json_object_get (o, "reason"));
    printf ("state:          %s%s%s\n", state ? state : "?", reason && *reason ? ": " : "",
            reason ? reason : "");
    const char *server = json_string_value (json_object_get (o, "server"));
    json_t *lat = json_object_get (o, "latency_ms");
    printf ("server:         %s, %s", server ? server : "?",
            json_is_true (json_object_get (o, "connected")) ? "connected" : "not connected");
    if (json_is_number (lat))
        printf (", latency %.1f ms", json_number_value (lat));
    printf ("\n");
    printf ("tasks:          %lld running, %lld done today, %lld in all\n",
            (long long) json_integer_value (json_object_get (o, "tasks_running")),
            (long long) json_integer_value (json_object_get (o, "tasks_today")),
            (long long) json_integer_value (json_object_get (o, "tasks_total")));
    printf ("compute:        %.1f s today, %.1f s in all\n",
            json_number_value (json_object_get (o, "compute_s_today")),
            json_number_value (json_object_get (o, "compute_s_total")));
    json_t *earn = json_object_get (o, "earnings");
    if (json_is_object (earn)) {
        printf ("earnings (from the server, %s):\n",
                json_string_value (json_object_get (earn, "as_of")) ?: "?");
        s_print_money ("today", earn, "earned_today");
        s_print_money ("in all", earn, "earned_total");
        s_print_money ("balance", earn, "balance");
        s_print_money ("pending payout", earn, "pending_payout");
        s_print_money ("payout at", earn, "payout_threshold");
        const char *now = json_string_value (json_object_get (earn, "peer_per_hour_in_force"));
        if (now)
            printf ("  %-14s $%s per hour of work\n", "rate now", now);
        const char *rate = json_string_value (json_object_get (earn, "peer_per_hour"));
        const char *left = json_string_value (json_object_get (earn, "subsidy_left_today"));
        if (json_is_true (json_object_get (earn, "subsidy_spent")))
            printf ("  %-14s spent for today: paid from what gamers pay only (full rate $%s"
                    " per hour again tomorrow, UTC)\n", "subsidy", rate ? rate : "?");
        else
        if (left)
            printf ("  %-14s $%s left today\n", "subsidy", left);
        else
        if (rate)
            printf ("  %-14s no limit\n", "subsidy");
    }
    else
        printf ("earnings:       not known yet (the server has not answered)\n");
}

int
agt_control_main (int argc, char **argv)
{
    const char *cmd = argv [0];
    const char *path = NULL, *arg_text = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv [i], "--json"))
            json = true;
        else
        if (!strcmp (argv [i], "--control") && i + 1 < argc)
            path = argv [++i];
        else
        if (!strncmp (argv [i], "--control=", 10))
            path = argv [i] + 10;
        else
        if (!strcmp (argv [i], "--help")) {
            printf ("usage: p2c2r-agent status|pause|resume|snooze DURATION|prefs [reload] "
                    "[--control PATH] [--json]\n"
                    "  talks to the peer agent running as this user (its --control socket)\n"
                    "  DURATION: 90s, 15m, 2h, 1d\n");
            return 0;
        }
        else
        if (!arg_text && argv [i][0] != '-')
            arg_text = argv [i];
        else {
            fprintf (stderr, "p2c2r-agent %s: unexpected argument '%s'\n", cmd, argv [i]);
            return 2;
        }
    }
    const char *wire = cmd;
    int64_t arg = 0;
    if (!strcmp (cmd, "snooze")) {
        arg = agt_control_duration (arg_text);
        if (arg < 0) {
            fprintf (stderr, "p2c2r-agent snooze: want a duration such as 90s, 15m, 2h (at most 7d)\n");
            return 2;
        }
    }
    else
    if (!strcmp (cmd, "prefs") && arg_text && !strcmp (arg_text, "reload"))
        wire = "reload";
    else
    if (arg_text) {
        fprintf (stderr, "p2c2r-agent %s: unexpected argument '%s'\n", cmd, arg_text);
        return 2;
    }
    char *def = path ? NULL : agt_control_default_path ();
    char why [PATH_MAX + 100];
    char *reply = s_request (path ? path : def, wire, arg, why, sizeof why);
    free (def);
    if (!reply) {
        fprintf (stderr, "p2c2r-agent %s: %s\n", cmd, why);
        return 2;
    }
    json_t *o = json_loads (reply, JSON_DISABLE_EOF_CHECK, NULL);
    int rc = o && json_is_true (json_object_get (o, "ok")) ? 0 : 1;
    if (json || !o)
        printf ("%s", reply);
    else
    if (rc != 0)
        fprintf (stderr, "p2c2r-agent %s: %s\n", cmd,
                 json_string_value (json_object_get (o, "error")) ?: "refused");
    else
    if (!strcmp (cmd, "status") || !strcmp (cmd, "pause") || !strcmp (cmd, "resume")
        || !strcmp (cmd, "snooze"))
        s_print_status (o);
    else {
        char *prefs = json_dumps (json_object_get (o, "prefs"), JSON_INDENT (2) | JSON_SORT_KEYS);
        printf ("%s\n", prefs ? prefs : "{}");
        free (prefs);
    }
    json_decref (o);
    free (reply);
    return rc;
}

//  --------------------------------------------------------------------------

static char *
s_test_fn (const char *cmd, int64_t arg, void *self)
{
    int *calls = (int *) self;
    (*calls)++;
    char buf [200];
    snprintf (buf, sizeof buf, "{\"ok\":true,\"cmd\":\"%s\",\"arg\":%lld}", cmd, (long long) arg);
    return strdup (buf);
}

//  A client in a child process, so that the server side runs here
static char *
s_test_call (agt_control_t *srv, const char *path, const char *cmd, int64_t arg)
{
    int p [2];
    if (pipe (p) != 0)
        return NULL;
    pid_t pid = fork ();
    if (pid == 0) {
        close (p [0]);
        char why [300];
        char *r = s_request (path, cmd, arg, why, sizeof why);
        const char *out = r ? r : why;
        if (write (p [1], out, strlen (out)) < 0)
            _exit (1);
        _exit (0);
    }
    close (p [1]);
    int64_t end = p2c_now_us () + 3000000;
    while (p2c_now_us () < end) {
        struct pollfd pf [2] = { { agt_control_fd (srv), POLLIN, 0 }, { p [0], POLLIN, 0 } };
        poll (pf, 2, 50);
        agt_control_serve (srv, p2c_now_us ());
        if (pf [1].revents)
            break;
    }
    char buf [512];
    ssize_t n = read (p [0], buf, sizeof buf - 1);
    buf [n > 0 ? n : 0] = 0;
    close (p [0]);
    waitpid (pid, NULL, 0);
    return strdup (buf);
}

void
agt_control_test (bool verbose)
{
    (void) verbose;
    P2C_CHECK (agt_control_duration ("90") == 90 && agt_control_duration ("15m") == 900
               && agt_control_duration ("2h") == 7200 && agt_control_duration ("1d") == 86400);
    P2C_CHECK (agt_control_duration ("8d") == -1 && agt_control_duration ("0") == -1
               && agt_control_duration ("5x") == -1 && agt_control_duration ("") == -1
               && agt_control_duration ("1hh") == -1 && agt_control_duration ("-5") == -1);
    char dir [] = "/tmp/agt-control-XXXXXX";
    P2C_CHECK (mkdtemp (dir) != NULL);
    char path [200];
    snprintf (path, sizeof path, "%s/run/control", dir);
    int calls = 0;
    char why [300] = "";
    agt_control_t *srv = agt_control_new (path, s_test_fn, &calls, why, sizeof why);
    P2C_CHECK (srv != NULL);
    if (!srv)
        return;
    struct stat st;
    P2C_CHECK (stat (path, &st) == 0 && (st.st_mode & 0777) == 0600);
    char run [220];
    snprintf (run, sizeof run, "%s/run", dir);
    P2C_CHECK (stat (run, &st) == 0 && (st.st_mode & 0777) == 0700);
    //  A second server on the same live socket is refused
    agt_control_t *two = agt_control_new (path, s_test_fn, &calls, why, sizeof why);
    P2C_CHECK (two == NULL && strstr (why, "already listens"));

    char *r = s_test_call (srv, path, "snooze", 60);
    P2C_CHECK (r && strstr (r, "\"cmd\":\"snooze\"") && strstr (r, "\"arg\":60"));
    free (r);
    r = s_test_call (srv, path, "status", 0);
    P2C_CHECK (r && strstr (r, "\"cmd\":\"status\""));
    free (r);
    //  Refused before the handler: unknown commands, bad durations
    r = s_test_call (srv, path, "format-disk", 0);
    P2C_CHECK (r && strstr (r, "unknown command"));
    free (r);
    r = s_test_call (srv, path, "snooze", 0);
    P2C_CHECK (r && strstr (r, "\"ok\":false"));
    free (r);
    P2C_CHECK (calls == 2);
    agt_control_destroy (&srv);
    P2C_CHECK (srv == NULL && stat (path, &st) != 0);
    //  Nobody listening: the client says so
    r = s_request (path, "status", 0, why, sizeof why);
    P2C_CHECK (r == NULL && strstr (why, "no peer agent answers"));
    //  A stale socket file is replaced
    srv = agt_control_new (path, s_test_fn, &calls, why, sizeof why);
    P2C_CHECK (srv != NULL);
    agt_control_destroy (&srv);
    rmdir (run);
    rmdir (dir);
}
