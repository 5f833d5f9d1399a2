/*  The metrics listener (see p2c_metrics_http.h). */
#define P2C_LOG_COMPONENT "metrics"
#include "p2c_metrics_http.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

//  Connections taken from the listener per wake-up
#define S_ACCEPT_BATCH 16

typedef struct {
    int fd;                     //  -1: free
    char req [P2C_METRICS_HTTP_MAX_REQUEST + 1];    //  the request so far, NUL-ended
    size_t got;                 //  bytes of it
    char *out;                  //  the answer, once the request is whole (owned)
    size_t out_len, out_off;    //  its length, and how much is written
    int64_t opened_ms;          //  for the idle limit
} s_conn_t;

struct _p2c_metrics_http_t {
    int fd;                     //  the listener
    int port;                   //  bound
    p2c_metrics_render_fn *render;
    void *arg;
    s_conn_t *conns;            //  max_conns slots (owned)
    size_t max_conns;
    size_t nconns;              //  slots in use
    zloop_t *loop;              //  NULL: a poll(2) loop drives us
    uint64_t served;            //  answers written
    uint64_t refused;           //  connections closed at accept (full)
};

static int s_on_zloop (zloop_t *loop, zmq_pollitem_t *item, void *arg);

//  Splits "HOST:PORT" or "[V6]:PORT" and resolves it for a listener
static struct addrinfo *
s_resolve (const char *address)
{
    char host [256];
    const char *colon = strrchr (address, ':');
    if (!colon || colon == address || strlen (address) >= sizeof host)
        return NULL;
    size_t hlen = (size_t) (colon - address);
    const char *h = address;
    if (*h == '[' && hlen >= 2 && h [hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy (host, h, hlen);
    host [hlen] = 0;
    char *end = NULL;
    long port = strtol (colon + 1, &end, 10);
    if (!colon [1] || *end || port < 0 || port > 65535)
        return NULL;
    struct addrinfo hints, *res = NULL;
    memset (&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo (*host ? host : NULL, colon + 1, &hints, &res) != 0)
        return NULL;
    return res;
}

p2c_metrics_http_t *
p2c_metrics_http_new (const char *address, size_t max_conns, p2c_metrics_render_fn *render,
                      void *arg)
{
    assert (address && render);
    struct addrinfo *ai = s_resolve (address);
    if (!ai) {
        log_warn ("bad listen address '%.80s' (HOST:PORT)", address);
        return NULL;
    }
    int fd = socket (ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind (fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen (fd, 16) != 0) {
        log_warn ("cannot listen on %.80s errno=%d", address, errno);
        if (fd >= 0)
            close (fd);
        freeaddrinfo (ai);
        return NULL;
    }
    freeaddrinfo (ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int port = 0;
    if (getsockname (fd, (struct sockaddr *) &ss, &sl) == 0)
        port = ss.ss_family == AF_INET6 ? ntohs (((struct sockaddr_in6 *) &ss)->sin6_port)
                                        : ntohs (((struct sockaddr_in *) &ss)->sin_port);
    p2c_metrics_http_t *self = (p2c_metrics_http_t *) zmalloc (sizeof (p2c_metrics_http_t));
    self->fd = fd;
    self->port = port;
    self->render = render;
    self->arg = arg;
    self->max_conns = max_conns < 1 ? 1
                    : max_conns > P2C_METRICS_HTTP_MAX_CONNS ? P2C_METRICS_HTTP_MAX_CONNS
                    : max_conns;
    self->conns = (s_conn_t *) zmalloc (self->max_conns * sizeof (s_conn_t));
    for (size_t i = 0; i < self->max_conns; i++)
        self->conns [i].fd = -1;
    log_info ("listening on %s port=%d", address, port);
    return self;
}

//  Stops watching and closes a connection
static void
s_conn_close (p2c_metrics_http_t *self, s_conn_t *c)
{
    if (c->fd < 0)
        return;
    if (self->loop) {
        zmq_pollitem_t item = { NULL, c->fd, 0, 0 };
        zloop_poller_end (self->loop, &item);
    }
    close (c->fd);
    free (c->out);
    c->out = NULL;
    c->fd = -1;
    c->got = c->out_len = c->out_off = 0;
    self->nconns--;
}

void
p2c_metrics_http_destroy (p2c_metrics_http_t **self_p)
{
    p2c_metrics_http_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->max_conns; i++)
        s_conn_close (self, &self->conns [i]);
    if (self->loop) {
        zmq_pollitem_t item = { NULL, self->fd, 0, 0 };
        zloop_poller_end (self->loop, &item);
    }
    close (self->fd);
    free (self->conns);
    free (self);
    *self_p = NULL;
}

int
p2c_metrics_http_port (p2c_metrics_http_t *self)
{
    return self->port;
}

size_t
p2c_metrics_http_conns (p2c_metrics_http_t *self)
{
    return self->nconns;
}

uint64_t
p2c_metrics_http_served (p2c_metrics_http_t *self)
{
    return self->served;
}

//  Watches fd on the zloop for events (ZMQ_POLLIN or ZMQ_POLLOUT)
static int
s_watch (p2c_metrics_http_t *self, int fd, short events)
{
    if (!self->loop)
        return 0;
    zmq_pollitem_t item = { NULL, fd, 0, 0 };
    zloop_poller_end (self->loop, &item);
    item.events = events;
    if (zloop_poller (self->loop, &item, s_on_zloop, self) != 0)
        return -1;
    //  an error on a connection is ours to handle (it closes), not a
    //  reason for zloop to drop the poller and leave the socket open
    zloop_poller_set_tolerant (self->loop, &item);
    return 0;
}

int
p2c_metrics_http_zloop (p2c_metrics_http_t *self, zloop_t *loop)
{
    assert (!self->loop);
    self->loop = loop;
    return s_watch (self, self->fd, ZMQ_POLLIN);
}

static void
s_accept (p2c_metrics_http_t *self)
{
    for (int i = 0; i < S_ACCEPT_BATCH; i++) {
        int fd = accept4 (self->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        s_conn_t *c = NULL;
        for (size_t k = 0; k < self->max_conns && !c; k++)
            if (self->conns [k].fd < 0)
                c = &self->conns [k];
        if (!c) {
            //  a scraper that keeps more than a few connections open is
            //  misbehaving; the others keep being served
            self->refused++;
            close (fd);
            continue;
        }
        c->fd = fd;
        c->got = 0;
        c->opened_ms = p2c_now_ms ();
        self->nconns++;
        if (s_watch (self, fd, ZMQ_POLLIN) != 0)
            s_conn_close (self, c);
    }
}

//  The answer to a whole request, into c->out
static void
s_answer (p2c_metrics_http_t *self, s_conn_t *c, bool too_long)
{
    char method [8] = "", path [128] = "";
    if (!too_long)
        sscanf (c->req, "%7s %127s", method, path);
    char *q = strchr (path, '?');
    if (q)
        *q = 0;
    unsigned status = 200;
    const char *type = "text/plain; version=0.0.4; charset=utf-8";
    char *body = NULL;
    size_t blen = 0;
    FILE *f = open_memstream (&body, &blen);
    if (!f)
        return;
    if (too_long)
        status = 431, fputs ("request too long\n", f);
    else
    if (strcmp (method, "GET") && strcmp (method, "HEAD"))
        status = 405, fputs ("GET only\n", f);
    else
    if (!strcmp (path, "/metrics"))
        self->render (self->arg, f);
    else
    if (!strcmp (path, "/healthz"))
        fputs ("ok\n", f);
    else
        status = 404, fputs ("not found\n", f);
    fclose (f);
    if (status != 200)
        type = "text/plain";
    const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found"
                       : status == 405 ? "Method Not Allowed" : "Request Header Fields Too Large";
    bool head = !strcmp (method, "HEAD");
    char *out = NULL;
    size_t olen = 0;
    f = open_memstream (&out, &olen);
    if (f) {
        fprintf (f, "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                    "Cache-Control: no-store\r\nConnection: close\r\n\r\n", status, reason,
                 type, blen);
        if (!head && blen)
            fwrite (body, 1, blen, f);
        fclose (f);
    }
    free (body);
    c->out = out;
    c->out_len = out ? olen : 0;
    c->out_off = 0;
}

//  Writes what the socket takes; closes when all is out
static void
s_write (p2c_metrics_http_t *self, s_conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send (c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (s_watch (self, c->fd, ZMQ_POLLOUT) != 0)
                s_conn_close (self, c);
            return;
        }
        if (n <= 0) {
            s_conn_close (self, c);
            return;
        }
        c->out_off += (size_t) n;
    }
    self->served++;
    s_conn_close (self, c);
}

static void
s_read (p2c_metrics_http_t *self, s_conn_t *c)
{
    ssize_t n = recv (c->fd, c->req + c->got, P2C_METRICS_HTTP_MAX_REQUEST - c->got, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        s_conn_close (self, c);
        return;
    }
    c->got += (size_t) n;
    c->req [c->got] = 0;
    bool whole = strstr (c->req, "\r\n\r\n") || strstr (c->req, "\n\n");
    bool too_long = !whole && c->got >= P2C_METRICS_HTTP_MAX_REQUEST;
    if (!whole && !too_long)
        return;
    s_answer (self, c, too_long);
    if (!c->out)
        s_conn_close (self, c);
    else
        s_write (self, c);
}

static void
s_on_fd (p2c_metrics_http_t *self, int fd, short revents)
{
    if (fd == self->fd) {
        if (revents & POLLIN)
            s_accept (self);
        return;
    }
    for (size_t i = 0; i < self->max_conns; i++) {
        s_conn_t *c = &self->conns [i];
        if (c->fd != fd)
            continue;
        if (c->out)
            s_write (self, c);
        else
        if (revents & (POLLIN | POLLERR | POLLHUP))
            s_read (self, c);
        return;
    }
}

static int
s_on_zloop (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    short revents = 0;
    if (item->revents & ZMQ_POLLIN)
        revents |= POLLIN;
    if (item->revents & ZMQ_POLLOUT)
        revents |= POLLOUT;
    if (item->revents & ZMQ_POLLERR)
        revents |= POLLERR;
    s_on_fd ((p2c_metrics_http_t *) arg, item->fd, revents);
    return 0;
}

size_t
p2c_metrics_http_pollfds (p2c_metrics_http_t *self, struct pollfd *items, size_t max)
{
    size_t n = 0;
    if (n < max)
        items [n++] = (struct pollfd) { self->fd, POLLIN, 0 };
    for (size_t i = 0; i < self->max_conns && n < max; i++)
        if (self->conns [i].fd >= 0)
            items [n++] = (struct pollfd) { self->conns [i].fd,
                                            self->conns [i].out ? POLLOUT : POLLIN, 0 };
    return n;
}

void
p2c_metrics_http_handle (p2c_metrics_http_t *self, const struct pollfd *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (items [i].revents)
            s_on_fd (self, items [i].fd, items [i].revents);
}

void
p2c_metrics_http_cron (p2c_metrics_http_t *self, int64_t now_ms)
{
    for (size_t i = 0; i < self->max_conns; i++)
        if (self->conns [i].fd >= 0
        &&  now_ms - self->conns [i].opened_ms >= P2C_METRICS_HTTP_IDLE_MS)
            s_conn_close (self, &self->conns [i]);
}

//  --------------------------------------------------------------------------
//  Self-test: real sockets on loopback, the poll(2) way and the zloop way
//  (one long function: the limits are checked on the same listener)

static void
s_test_render (void *arg, FILE *f)
{
    fprintf (f, "# TYPE test_up gauge\ntest_up %d\n", *(int *) arg);
}

//  A blocking client: sends req, reads the answer until the server closes
static char *
s_test_fetch (int port, const char *req, p2c_metrics_http_t *self, bool use_poll)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (connect (fd, (struct sockaddr *) &sa, sizeof sa) != 0) {
        close (fd);
        return NULL;
    }
    if (send (fd, req, strlen (req), MSG_NOSIGNAL) < 0) {
        close (fd);
        return NULL;
    }
    static char buf [65536];
    size_t got = 0;
    //  drive the server until our answer is whole (bounded: 200 turns)
    for (int turn = 0; turn < 200; turn++) {
        if (use_poll) {
            struct pollfd items [1 + P2C_METRICS_HTTP_MAX_CONNS];
            size_t n = p2c_metrics_http_pollfds (self, items, 1 + P2C_METRICS_HTTP_MAX_CONNS);
            if (poll (items, n, 10) > 0)
                p2c_metrics_http_handle (self, items, n);
        }
        struct pollfd me = { fd, POLLIN, 0 };
        if (poll (&me, 1, use_poll ? 0 : 10) > 0) {
            ssize_t r = recv (fd, buf + got, sizeof buf - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t) r;
        }
    }
    close (fd);
    buf [got] = 0;
    return buf;
}

//  Ends a turn of the zloop
static int
s_test_stop (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id; (void) arg;
    return -1;
}

void
p2c_metrics_http_test (bool verbose)
{
    (void) verbose;
    int up = 1;
    P2C_CHECK (p2c_metrics_http_new ("nonsense", 4, s_test_render, &up) == NULL);
    P2C_CHECK (p2c_metrics_http_new ("127.0.0.1:99999", 4, s_test_render, &up) == NULL);
    p2c_metrics_http_t *self = p2c_metrics_http_new ("127.0.0.1:0", 2, s_test_render, &up);
    P2C_CHECK (self && p2c_metrics_http_port (self) > 0);
    if (!self)
        return;
    int port = p2c_metrics_http_port (self);
    //  a second listener on the same port is refused
    char taken [64];
    snprintf (taken, sizeof taken, "127.0.0.1:%d", port);
    P2C_CHECK (p2c_metrics_http_new (taken, 4, s_test_render, &up) == NULL);

    const char *a = s_test_fetch (port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", self, true);
    P2C_CHECK (a && !strncmp (a, "HTTP/1.1 200 OK\r\n", 17) && strstr (a, "\r\n\r\n# TYPE test_up")
               && strstr (a, "test_up 1\n") && strstr (a, "Content-Length: 31\r\n"));
    a = s_test_fetch (port, "GET /nope HTTP/1.0\r\n\r\n", self, true);
    P2C_CHECK (a && !strncmp (a, "HTTP/1.1 404", 12));
    a = s_test_fetch (port, "POST /metrics HTTP/1.0\r\n\r\n", self, true);
    P2C_CHECK (a && !strncmp (a, "HTTP/1.1 405", 12));
    //  a request that never ends is cut at the limit
    char *big = (char *) p2c_malloc (P2C_METRICS_HTTP_MAX_REQUEST + 100);
    memset (big, 'a', P2C_METRICS_HTTP_MAX_REQUEST + 99);
    big [P2C_METRICS_HTTP_MAX_REQUEST + 99] = 0;
    a = s_test_fetch (port, big, self, true);
    P2C_CHECK (a && !strncmp (a, "HTTP/1.1 431", 12));
    free (big);
    P2C_CHECK (p2c_metrics_http_served (self) == 4 && p2c_metrics_http_conns (self) == 0);

    //  the connection limit: two held open, the third is closed at once,
    //  and the idle ones go at the cron
    int held [3];
    for (int i = 0; i < 3; i++) {
        held [i] = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
        sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
        P2C_CHECK (connect (held [i], (struct sockaddr *) &sa, sizeof sa) == 0);
    }
    for (int turn = 0; turn < 50 && p2c_metrics_http_conns (self) < 2; turn++) {
        struct pollfd items [4];
        size_t n = p2c_metrics_http_pollfds (self, items, 4);
        if (poll (items, n, 10) > 0)
            p2c_metrics_http_handle (self, items, n);
    }
    P2C_CHECK (p2c_metrics_http_conns (self) == 2 && self->refused == 1);
    p2c_metrics_http_cron (self, p2c_now_ms () + P2C_METRICS_HTTP_IDLE_MS);
    P2C_CHECK (p2c_metrics_http_conns (self) == 0);
    for (int i = 0; i < 3; i++)
        close (held [i]);

    //  the zloop way: the loop runs in this thread, so the client's turns
    //  drive it with zloop timers of one tick each
    zloop_t *loop = zloop_new ();
    P2C_CHECK (p2c_metrics_http_zloop (self, loop) == 0);
    up = 7;
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    P2C_CHECK (connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0);
    const char *req = "GET /metrics HTTP/1.1\r\n\r\n";
    P2C_CHECK (send (fd, req, strlen (req), MSG_NOSIGNAL) == (ssize_t) strlen (req));
    char buf [4096];
    size_t got = 0;
    for (int turn = 0; turn < 100; turn++) {
        zloop_timer (loop, 5, 1, s_test_stop, NULL);
        zloop_start (loop);
        struct pollfd me = { fd, POLLIN, 0 };
        if (poll (&me, 1, 0) > 0) {
            ssize_t r = recv (fd, buf + got, sizeof buf - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t) r;
        }
    }
    buf [got] = 0;
    close (fd);
    P2C_CHECK (strstr (buf, "HTTP/1.1 200") && strstr (buf, "test_up 7\n"));
    p2c_metrics_http_destroy (&self);
    P2C_CHECK (self == NULL);
    zloop_destroy (&loop);
}
