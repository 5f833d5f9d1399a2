/*  Worker processes: the isolation boundary between the agent and the
    kernels. The worker half (serve loop, resource limits) runs in the child
    after exec; the parent half (spawn, run with a time limit, kill and
    respawn) runs on a peer's slot thread. */
#include "agt_worker.h"
#include "p2c_cfg.h"
#include "p2c_log.h"
#include "p2c_time.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

//  Time the parent grants beyond an assignment's deadline for the reply to
//  cross the socket
#define S_MARGIN_MS 500

//  ---------------------------------------------------------------------
//  Worker side

static char *
s_strdup (const char *s)
{
    return strdup (s ? s : "");
}

static void
s_fail (P2c2r__PeerResult *r, const char *code, const char *text)
{
    r->ok = false;
    r->error_code = s_strdup (code);
    r->error = s_strdup (text);
}

void
agt_worker_execute (agt_kernel_lookup_fn *lookup, const P2c2r__Assign *assign,
                    P2c2r__PeerResult *r)
{
    p2c2r__peer_result__init (r);
    r->task_id = s_strdup (assign->task_id);
    r->attempt = assign->attempt;
    const agt_kernel_t *kernel = lookup (assign->task_type);
    if (!kernel || !kernel->run) {
        char text [200];
        snprintf (text, sizeof text, "this peer has no kernel for type '%.100s'",
                  assign->task_type ? assign->task_type : "");
        s_fail (r, "unknown_task_type", text);
        return;
    }
    r->kernel_version = s_strdup (kernel->version);
    json_error_t jerr;
    json_t *params = json_loads (assign->params_json ? assign->params_json : "", 0, &jerr);
    if (!params || !json_is_object (params)) {
        json_decref (params);
        s_fail (r, "invalid_params", "params are not a JSON object");
        return;
    }
    agt_kernel_out_t out;
    memset (&out, 0, sizeof out);
    int64_t start = p2c_now_us ();
    int rc = kernel->run (params, assign->payload.data, assign->payload.len, &out);
    r->compute_us = (uint64_t) (p2c_now_us () - start);
    json_decref (params);
    if (rc == 0 && out.result && json_is_object (out.result)) {
        //  Sorted and compact, so equal results are equal bytes on every
        //  peer. Kernels round reals to 6 decimals; 15 significant digits
        //  print them as rounded (0.333333, not 0.33333299999999999) and
        //  every double prints the same way on every peer all the same.
        r->result_json = json_dumps (out.result, JSON_COMPACT | JSON_SORT_KEYS
                                                 | JSON_REAL_PRECISION (15));
        if (r->result_json) {
            r->ok = true;
            r->blob.data = out.blob;
            r->blob.len = out.blob ? out.blob_len : 0;
            out.blob = NULL;
            out.blob_len = 0;
        }
        else
            s_fail (r, "kernel_error", "the result cannot be encoded as JSON");
    }
    else
    if (rc == 0)
        s_fail (r, "kernel_error", "the kernel returned no result object");
    else
        s_fail (r, out.error_code [0] ? out.error_code : "kernel_error",
                out.error [0] ? out.error : "the kernel failed without a reason");
    agt_kernel_out_reset (&out);
}

void
agt_worker_result_reset (P2c2r__PeerResult *r)
{
    char **strings [] = { &r->task_id, &r->result_json, &r->error_code, &r->error,
                          &r->kernel_version };
    for (size_t i = 0; i < sizeof strings / sizeof strings [0]; i++)
        if (*strings [i] && *strings [i] != protobuf_c_empty_string)
            free (*strings [i]);
    free (r->blob.data);
    p2c2r__peer_result__init (r);
}

//  Blocking I/O of exactly len bytes. Returns len, 0 at end of input
//  before any byte, -1 on error or a cut message.
static ssize_t
s_read_full (int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read (fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return got == 0 ? 0 : -1;
        got += (size_t) n;
    }
    return (ssize_t) len;
}

static int
s_write_full (int fd, const uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send (fd, buf + done, len - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t) n;
    }
    return 0;
}

static void
s_put_len (uint8_t *p, size_t len)
{
    p [0] = (uint8_t) (len >> 24);
    p [1] = (uint8_t) (len >> 16);
    p [2] = (uint8_t) (len >> 8);
    p [3] = (uint8_t) len;
}

static size_t
s_get_len (const uint8_t *p)
{
    return (size_t) p [0] << 24 | (size_t) p [1] << 16 | (size_t) p [2] << 8 | p [3];
}

//  RLIMIT_CPU counts the whole life of the process, and a worker serves
//  many tasks: so before each task the soft limit is moved to what was used
//  so far plus a generous allowance. It is only a backstop for a wedged
//  worker whose parent is gone; the parent's wall-clock limit comes first.
static void
s_cpu_allowance (uint32_t deadline_ms)
{
    struct rusage ru;
    struct rlimit rl;
    if (getrusage (RUSAGE_SELF, &ru) != 0 || getrlimit (RLIMIT_CPU, &rl) != 0)
        return;
    rlim_t used = (rlim_t) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1);
    rlim_t allow = 60 + 4 * (rlim_t) ((deadline_ms ? deadline_ms : 60000) / 1000);
    rlim_t soft = used + allow;
    if (rl.rlim_max != RLIM_INFINITY && soft > rl.rlim_max)
        soft = rl.rlim_max;
    rl.rlim_cur = soft;
    setrlimit (RLIMIT_CPU, &rl);
}

int
agt_worker_serve (int fd, agt_kernel_lookup_fn *lookup)
{
    while (true) {
        uint8_t head [4];
        ssize_t n = s_read_full (fd, head, 4);
        if (n == 0)
            return 0;
        if (n < 0)
            return -1;
        size_t len = s_get_len (head);
        if (len > AGT_WORKER_MAX_MSG)
            return -1;
        uint8_t *body = malloc (len ? len : 1);
        if (!body)
            return -1;
        if (len && s_read_full (fd, body, len) != (ssize_t) len) {
            free (body);
            return -1;
        }
        P2c2r__ServerMessage *msg = p2c_msg_unpack_server (body, len, AGT_WORKER_MAX_MSG);
        free (body);
        if (!msg || msg->msg_case != P2C2R__SERVER_MESSAGE__MSG_ASSIGN || !msg->assign) {
            p2c_msg_server_free (&msg);
            return -1;
        }
        s_cpu_allowance (msg->assign->deadline_ms);
        P2c2r__PeerResult result;
        agt_worker_execute (lookup, msg->assign, &result);
        p2c_msg_server_free (&msg);

        P2c2r__ClientMessage reply = P2C2R__CLIENT_MESSAGE__INIT;
        reply.msg_case = P2C2R__CLIENT_MESSAGE__MSG_RESULT;
        reply.result = &result;
        size_t rlen = 0;
        uint8_t *buf = p2c_msg_pack_client (&reply, 4, &rlen);
        agt_worker_result_reset (&result);
        if (!buf)
            return -1;
        s_put_len (buf, rlen);
        int rc = s_write_full (fd, buf, rlen + 4);
        free (buf);
        if (rc != 0)
            return -1;
    }
}

int
agt_worker_main (int argc, char **argv, agt_kernel_lookup_fn *lookup)
{
    long long fd = -1, mem_mb = 1024;
    p2c_cfg_t table [] = {
        { "fd", P2C_CFG_INT, "3", 0, 65535, &fd, "the socket to the agent" },
        { "worker-mem-mb", P2C_CFG_INT, "1024", 16, 1048576, &mem_mb,
          "address space limit of the worker, MiB" },
        { NULL, 0, NULL, 0, 0, NULL, NULL }
    };
    bool verbose = false;
    int rc = p2c_cfg_parse (table, &argc, argv, "p2c2r-agent worker", "--fd N (internal: run by the peer)",
                            &verbose);
    if (rc != 0)
        return rc > 0 ? 0 : 1;
    p2c_log_init ("p2c2r-agent", verbose);
    //  The parent may have had these blocked on its slot threads; exec
    //  keeps the mask. Ctrl-C in a terminal reaches the whole group: the
    //  parent decides when its workers stop.
    sigset_t none;
    sigemptyset (&none);
    sigprocmask (SIG_SETMASK, &none, NULL);
    signal (SIGINT, SIG_IGN);
    signal (SIGPIPE, SIG_IGN);
    //  An endless loop must not outlive the agent
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    struct rlimit rl = { (rlim_t) mem_mb * 1024 * 1024, (rlim_t) mem_mb * 1024 * 1024 };
    if (setrlimit (RLIMIT_AS, &rl) != 0)
        log_warn ("worker: cannot limit memory reason=\"%s\"", strerror (errno));
    rc = agt_worker_serve ((int) fd, lookup);
    if (rc != 0)
        log_warn ("worker: broken request from the agent, exiting");
    return rc == 0 ? 0 : 1;
}

//  ---------------------------------------------------------------------
//  Parent side

struct _agt_worker_t {
    char *exe;                  //  what to exec
    char **argv;                //  its arguments (owned copies)
    pid_t pid;                  //  the child, or -1
    int fd;                     //  our end of the socket (non-blocking), or -1
};

static int
s_spawn (agt_worker_t *self)
{
    int sv [2];
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        log_warn ("agent: cannot make a worker socket reason=\"%s\"", strerror (errno));
        return -1;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        log_warn ("agent: cannot fork a worker reason=\"%s\"", strerror (errno));
        close (sv [0]);
        close (sv [1]);
        return -1;
    }
    if (pid == 0) {
        //  Only async-signal-safe calls until exec (the parent has threads)
        if (sv [1] == AGT_WORKER_FD)
            fcntl (sv [1], F_SETFD, 0);
        else
        if (dup2 (sv [1], AGT_WORKER_FD) < 0)
            _exit (127);
        execv (self->exe, self->argv);
        _exit (127);
    }
    close (sv [1]);
    fcntl (sv [0], F_SETFL, fcntl (sv [0], F_GETFL) | O_NONBLOCK);
    self->pid = pid;
    self->fd = sv [0];
    log_debug ("agent: worker started pid=%d", (int) pid);
    return 0;
}

//  Ends the child for good and tells how it ended (for the error text).
static void
s_kill (agt_worker_t *self, bool wait_a_little, char *how, size_t how_size)
{
    if (self->fd >= 0)
        close (self->fd);
    self->fd = -1;
    if (self->pid <= 0)
        return;
    int status = 0;
    pid_t got = 0;
    //  A worker that closed its socket is on its way out: let it finish so
    //  that its real cause of death is reported, then force it
    for (int i = 0; wait_a_little && i < 100 && got == 0; i++) {
        got = waitpid (self->pid, &status, WNOHANG);
        if (got == 0)
            usleep (10000);
    }
    if (got <= 0) {
        kill (self->pid, SIGKILL);
        while ((got = waitpid (self->pid, &status, 0)) < 0 && errno == EINTR)
            ;
    }
    if (how && how_size) {
        if (got > 0 && WIFSIGNALED (status))
            snprintf (how, how_size, "signal %d", WTERMSIG (status));
        else
        if (got > 0 && WIFEXITED (status))
            snprintf (how, how_size, "exit status %d", WEXITSTATUS (status));
        else
            snprintf (how, how_size, "unknown");
    }
    log_debug ("agent: worker ended pid=%d", (int) self->pid);
    self->pid = -1;
}

agt_worker_t *
agt_worker_new (const char *exe, char *const argv [])
{
    agt_worker_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->pid = -1;
    self->fd = -1;
    size_t n = 0;
    while (argv [n])
        n++;
    self->exe = strdup (exe);
    self->argv = calloc (n + 1, sizeof (char *));
    bool ok = self->exe && self->argv;
    for (size_t i = 0; ok && i < n; i++)
        ok = (self->argv [i] = strdup (argv [i])) != NULL;
    if (!ok || s_spawn (self) != 0) {
        agt_worker_destroy (&self);
        return NULL;
    }
    return self;
}

void
agt_worker_destroy (agt_worker_t **self_p)
{
    agt_worker_t *self = *self_p;
    if (!self)
        return;
    s_kill (self, false, NULL, 0);
    if (self->argv)
        for (size_t i = 0; self->argv [i]; i++)
            free (self->argv [i]);
    free (self->argv);
    free (self->exe);
    free (self);
    *self_p = NULL;
}

bool
agt_worker_alive (agt_worker_t *self)
{
    return self->pid > 0;
}

int
agt_worker_pid (agt_worker_t *self)
{
    return self->pid > 0 ? (int) self->pid : -1;
}

typedef enum { S_IO_OK, S_IO_EOF, S_IO_TIMEOUT, S_IO_ABANDONED, S_IO_ERROR } s_io_t;

//  Waits for the fd in slices of 100 ms so that an abandoned task is
//  noticed quickly; deadline_us is on the monotonic clock.
static s_io_t
s_wait (agt_worker_t *self, short events, int64_t deadline_us, agt_worker_abandon_fn *abandon,
        void *arg)
{
    while (true) {
        if (abandon && abandon (arg))
            return S_IO_ABANDONED;
        int64_t left_ms = (deadline_us - p2c_now_us () + 999) / 1000;
        if (left_ms <= 0)
            return S_IO_TIMEOUT;
        struct pollfd pfd = { self->fd, events, 0 };
        int n = poll (&pfd, 1, left_ms > 100 ? 100 : (int) left_ms);
        if (n < 0 && errno != EINTR)
            return S_IO_ERROR;
        if (n > 0 && (pfd.revents & events))
            return S_IO_OK;
        if (n > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)))
            return S_IO_EOF;
    }
}

static s_io_t
s_send_all (agt_worker_t *self, const uint8_t *buf, size_t len, int64_t deadline_us,
            agt_worker_abandon_fn *abandon, void *arg)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send (self->fd, buf + done, len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return S_IO_EOF;
        s_io_t rc = s_wait (self, POLLOUT, deadline_us, abandon, arg);
        if (rc != S_IO_OK)
            return rc;
    }
    return S_IO_OK;
}

static s_io_t
s_recv_all (agt_worker_t *self, uint8_t *buf, size_t len, int64_t deadline_us,
            agt_worker_abandon_fn *abandon, void *arg)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv (self->fd, buf + got, len - got, 0);
        if (n > 0) {
            got += (size_t) n;
            continue;
        }
        if (n == 0)
            return S_IO_EOF;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return S_IO_EOF;
        s_io_t rc = s_wait (self, POLLIN, deadline_us, abandon, arg);
        if (rc != S_IO_OK)
            return rc;
    }
    return S_IO_OK;
}

//  The worker failed: say why, end it, and start a fresh one.
static void
s_replace (agt_worker_t *self, s_io_t rc, char *why, size_t why_size)
{
    char how [64] = "";
    s_kill (self, rc == S_IO_EOF, how, sizeof how);
    if (rc == S_IO_TIMEOUT)
        snprintf (why, why_size, "time limit exceeded");
    else
    if (rc == S_IO_ABANDONED)
        snprintf (why, why_size, "task abandoned");
    else
    if (rc == S_IO_EOF && !strncmp (how, "signal", 6))
        snprintf (why, why_size, "worker crashed: %s", how);
    else
    if (rc == S_IO_EOF)
        snprintf (why, why_size, "worker exited: %s", how);
    else
        snprintf (why, why_size, "worker protocol error");
    s_spawn (self);
}

P2c2r__ClientMessage *
agt_worker_run (agt_worker_t *self, const P2c2r__Assign *assign, int64_t timeout_ms,
                agt_worker_abandon_fn *abandon, void *abandon_arg, char *why, size_t why_size)
{
    snprintf (why, why_size, "worker unavailable");
    //  A worker that died between tasks (killed from outside) has not
    //  failed this task: replace it before handing the task over
    int status;
    if (self->pid > 0 && waitpid (self->pid, &status, WNOHANG) == self->pid) {
        log_warn ("agent: worker died while idle pid=%d", (int) self->pid);
        self->pid = -1;
        s_kill (self, false, NULL, 0);
    }
    if (self->pid <= 0 && s_spawn (self) != 0)
        return NULL;
    P2c2r__ServerMessage req = P2C2R__SERVER_MESSAGE__INIT;
    req.msg_case = P2C2R__SERVER_MESSAGE__MSG_ASSIGN;
    req.assign = (P2c2r__Assign *) assign;
    size_t len = 0;
    uint8_t *buf = p2c_msg_pack_server (&req, 4, &len);
    if (!buf) {
        snprintf (why, why_size, "out of memory");
        return NULL;
    }
    if (len > AGT_WORKER_MAX_MSG) {
        free (buf);
        snprintf (why, why_size, "task too large");
        return NULL;
    }
    s_put_len (buf, len);
    int64_t deadline_us = p2c_now_us () + (timeout_ms + S_MARGIN_MS) * 1000;
    s_io_t rc = s_send_all (self, buf, len + 4, deadline_us, abandon, abandon_arg);
    free (buf);
    uint8_t head [4];
    if (rc == S_IO_OK)
        rc = s_recv_all (self, head, 4, deadline_us, abandon, abandon_arg);
    P2c2r__ClientMessage *reply = NULL;
    if (rc == S_IO_OK) {
        size_t rlen = s_get_len (head);
        uint8_t *body = rlen <= AGT_WORKER_MAX_MSG ? malloc (rlen ? rlen : 1) : NULL;
        if (!body)
            rc = S_IO_ERROR;
        else {
            rc = s_recv_all (self, body, rlen, deadline_us, abandon, abandon_arg);
            if (rc == S_IO_OK)
                reply = p2c_msg_unpack_client (body, rlen, AGT_WORKER_MAX_MSG);
            free (body);
            //  Only a result for this very task is an answer
            if (rc == S_IO_OK && (!reply || reply->msg_case != P2C2R__CLIENT_MESSAGE__MSG_RESULT
                                  || !reply->result || !reply->result->task_id
                                  || strcmp (reply->result->task_id, assign->task_id))) {
                p2c_msg_client_free (&reply);
                rc = S_IO_ERROR;
            }
        }
    }
    if (rc == S_IO_OK) {
        why [0] = 0;
        return reply;
    }
    s_replace (self, rc, why, why_size);
    return NULL;
}
