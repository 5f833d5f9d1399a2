/*  Worker processes: the isolation boundary between the agent and the
    kernels. The worker half (serve loop, resource limits) runs in the child
    after exec; the parent half (spawn, run with a time limit, kill and
    respawn) runs on a peer's slot thread. */
#define P2C_LOG_COMPONENT "agent"
#include "agt_worker.h"
#include "agt_config.h"
#include "agt_sandbox.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_time.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

//  Built with AddressSanitizer (gcc says __SANITIZE_ADDRESS__, clang
//  __has_feature)
#if defined (__SANITIZE_ADDRESS__)
#   define AGT_ASAN 1
#elif defined (__has_feature)
#   if __has_feature (address_sanitizer)
#       define AGT_ASAN 1
#   endif
#endif
#ifndef AGT_ASAN
#   define AGT_ASAN 0
#endif

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

//  This process's CPU time (every thread of it), in microseconds
static int64_t
s_cpu_us (void)
{
    struct timespec ts;
    if (clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return p2c_now_us ();
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
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
    //  The claim is the CPU time the kernel used in this worker, not the
    //  wall time: a contributor's PC runs kernels at idle priority beside a
    //  game, and the CPU limit stops the worker part of the time, so the
    //  wall time of an honest peer can be many times the work; the
    //  scheduler flags claims far past the expected time
    int64_t start = s_cpu_us ();
    int rc = kernel->run (params, assign->payload.data, assign->payload.len, &out);
    int64_t used = s_cpu_us () - start;
    r->compute_us = used > 0 ? (uint64_t) used : 1;
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
//  many tasks: so the soft limit is kept at what was used so far plus a
//  generous allowance. It is only a backstop for a wedged worker whose
//  parent is gone; the parent's wall-clock limit comes first. Three system
//  calls a task add up at thousands of tasks a second, so the limit moves
//  only when the deadline changes or a second has passed: the allowance
//  (at least 60 s of CPU) dwarfs that second.
static void
s_cpu_allowance (uint32_t deadline_ms)
{
    static int64_t last_us = 0;
    static uint32_t last_deadline = 0;
    int64_t now = p2c_now_us ();
    if (last_us && deadline_ms == last_deadline && now - last_us < 1000000)
        return;
    last_us = now;
    last_deadline = deadline_ms;
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

//  Reads until buf holds at least need bytes (it may hold more: the next
//  request). Returns 0, 1 at end of input before any byte, -1 on error.
static int
s_fill (int fd, uint8_t **buf_p, size_t *cap_p, size_t *len_p, size_t need)
{
    size_t start = *len_p;
    while (*len_p < need) {
        if (*cap_p < need) {
            size_t cap = need < 65536 ? 65536 : need;
            uint8_t *buf = realloc (*buf_p, cap);
            if (!buf)
                return -1;
            *buf_p = buf;
            *cap_p = cap;
        }
        ssize_t n = read (fd, *buf_p + *len_p, *cap_p - *len_p);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return *len_p == 0 && start == 0 ? 1 : -1;
        *len_p += (size_t) n;
    }
    return 0;
}

int
agt_worker_serve (int fd, agt_kernel_lookup_fn *lookup)
{
    uint8_t *in = NULL;
    size_t cap = 0, have = 0;
    int rc = 0;
    while (true) {
        int got = s_fill (fd, &in, &cap, &have, 4);
        if (got != 0) {
            rc = got > 0 ? 0 : -1;
            break;
        }
        size_t len = s_get_len (in);
        if (len > AGT_WORKER_MAX_MSG || s_fill (fd, &in, &cap, &have, 4 + len) != 0) {
            rc = -1;
            break;
        }
        P2c2r__ServerMessage *msg = p2c_msg_unpack_server (in + 4, len, AGT_WORKER_MAX_MSG);
        have -= 4 + len;
        memmove (in, in + 4 + len, have);
        if (!msg || msg->msg_case != P2C2R__SERVER_MESSAGE__MSG_ASSIGN || !msg->assign) {
            p2c_msg_server_free (&msg);
            rc = -1;
            break;
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
        if (!buf) {
            rc = -1;
            break;
        }
        s_put_len (buf, rlen);
        int wrc = s_write_full (fd, buf, rlen + 4);
        free (buf);
        if (wrc != 0) {
            rc = -1;
            break;
        }
        //  A big request's buffer is not kept
        if (cap > 1024 * 1024 && have < 65536) {
            uint8_t *small = malloc (65536);
            if (small) {
                memcpy (small, in, have);
                free (in);
                in = small;
                cap = 65536;
            }
        }
    }
    free (in);
    return rc;
}

int
agt_worker_main (int argc, char **argv, agt_kernel_lookup_fn *lookup)
{
    agt_worker_config_t cfg;
    bool verbose = false;
    int rc = p2c_cfg_parse (&agt_config_worker, &cfg, &argc, argv, &verbose);
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
#if AGT_ASAN
    //  ASan has mapped terabytes of shadow address space by now, so any
    //  address-space limit would fail every later mmap: the ASan build
    //  (make asan, make test-asan) runs its workers without one
    (void) cfg.mem_mb;
#else
    struct rlimit rl = { (rlim_t) cfg.mem_mb * 1024 * 1024, (rlim_t) cfg.mem_mb * 1024 * 1024 };
    if (setrlimit (RLIMIT_AS, &rl) != 0)
        p2c_log (P2C_LOG_WARN, "worker", "cannot limit memory reason=\"%s\"", strerror (errno));
#endif
    //  The sanitizers' own machinery (LeakSanitizer's exit check forks,
    //  ptraces and reads /proc) cannot live under the filter: the ASan
    //  build runs its kernels at idle priority but unfiltered
    agt_sandbox_t opts = { cfg.sandbox && !AGT_ASAN, cfg.user };
    char why [256] = "";
    if (agt_sandbox_enter (&opts, why, sizeof why) != 0) {
        p2c_log (P2C_LOG_WARN, "worker",
                 "cannot enter the sandbox, no kernel runs reason=\"%s\"", why);
        p2c_cfg_free (agt_config_worker.table, &cfg);
        return 1;
    }
    rc = agt_worker_serve (cfg.fd, lookup);
    p2c_cfg_free (agt_config_worker.table, &cfg);
    if (rc != 0)
        p2c_log (P2C_LOG_WARN, "worker", "broken request from the agent, exiting");
    return rc == 0 ? 0 : 1;
}

//  ---------------------------------------------------------------------
//  Parent side

//  Room kept in front of a reply so that it goes to the gateway from the
//  buffer it was read into: the 4-byte length ends where the message
//  starts, at AGT_WORKER_REPLY_PRE
#define S_IN_SPARE (AGT_WORKER_REPLY_PRE - 4)

//  Bytes asked of the socket per read: a usual reply comes in one
#define S_READ_CHUNK 16384

struct _agt_worker_t {
    char *exe;                  //  what to exec
    char **argv;                //  its arguments (owned copies)
    pid_t pid;                  //  the child, or -1
    int fd;                     //  our end of the socket (non-blocking), or -1
    uint64_t serial;            //  bumped per spawn: a new fd may reuse the old number
    int last_signal;            //  the signal that ended the last child, or 0
    //  The task in flight
    bool busy;
    char *task_id;              //  its id: only a result for it is an answer
    int64_t deadline_us;        //  monotonic; past it the worker is killed
    uint8_t *out;               //  request bytes not yet written, or NULL
    size_t out_len, out_done;
    //  Reply bytes read so far, from in + S_IN_SPARE (also bytes of a
    //  following reply: the socket is a stream)
    uint8_t *in;
    size_t in_len, in_cap;      //  counted from in + S_IN_SPARE
    //  The finished reply, until taken
    uint8_t *reply;             //  the buffer; the message at AGT_WORKER_REPLY_PRE
    size_t reply_len;
    P2c2r__ClientMessage *reply_msg;
};

static int
s_spawn (agt_worker_t *self)
{
    int sv [2];
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        log_warn ("cannot make a worker socket reason=\"%s\"", strerror (errno));
        return -1;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        log_warn ("cannot fork a worker reason=\"%s\"", strerror (errno));
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
    self->serial++;
    log_debug ("worker started pid=%d", (int) pid);
    return 0;
}

//  Forgets the task in flight and every byte of it
static void
s_clear_task (agt_worker_t *self)
{
    self->busy = false;
    free (self->task_id);
    self->task_id = NULL;
    free (self->out);
    self->out = NULL;
    self->out_len = self->out_done = 0;
    free (self->in);
    self->in = NULL;
    self->in_len = self->in_cap = 0;
    free (self->reply);
    self->reply = NULL;
    self->reply_len = 0;
    p2c_msg_client_free (&self->reply_msg);
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
    //  A worker that closed its socket is on its way out (its descriptors
    //  close as it exits): let it finish so that its real cause of death is
    //  reported, then force it. Bounded short: this runs on the peer's
    //  event loop.
    for (int i = 0; wait_a_little && i < 200 && got == 0; i++) {
        got = waitpid (self->pid, &status, WNOHANG);
        if (got == 0)
            usleep (1000);
    }
    if (got <= 0) {
        kill (self->pid, SIGKILL);
        while ((got = waitpid (self->pid, &status, 0)) < 0 && errno == EINTR)
            ;
    }
    self->last_signal = got > 0 && WIFSIGNALED (status) ? WTERMSIG (status) : 0;
    if (how && how_size) {
        if (got > 0 && WIFSIGNALED (status))
            snprintf (how, how_size, "signal %d", WTERMSIG (status));
        else
        if (got > 0 && WIFEXITED (status))
            snprintf (how, how_size, "exit status %d", WEXITSTATUS (status));
        else
            snprintf (how, how_size, "unknown");
    }
    log_debug ("worker ended pid=%d", (int) self->pid);
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
    self->argv = p2c_calloc (n + 1, sizeof (char *));
    bool ok = self->exe && self->argv;
    for (size_t i = 0; ok && i < n; i++)
        ok = (self->argv [i] = p2c_strdup (argv [i])) != NULL;
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
    s_clear_task (self);
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

int
agt_worker_fd (agt_worker_t *self)
{
    return self->fd;
}

uint64_t
agt_worker_serial (agt_worker_t *self)
{
    return self->serial;
}

bool
agt_worker_busy (agt_worker_t *self)
{
    return self->busy;
}

bool
agt_worker_wants_write (agt_worker_t *self)
{
    return self->busy && self->out != NULL;
}

typedef enum { S_IO_OK, S_IO_AGAIN, S_IO_EOF, S_IO_ERROR } s_io_t;

//  The worker failed: say why, end it, and start a fresh one (the task,
//  if any, is over).
static void
s_replace (agt_worker_t *self, const char *cause, s_io_t rc, char *why, size_t why_size)
{
    char how [64] = "";
    s_kill (self, rc == S_IO_EOF, how, sizeof how);
    if (cause)
        snprintf (why, why_size, "%s", cause);
    else
    if (rc == S_IO_EOF && agt_sandbox_killed (self->last_signal))
        snprintf (why, why_size, "worker killed by the sandbox: a kernel made a forbidden "
                  "system call");
    else
    if (rc == S_IO_EOF && !strncmp (how, "signal", 6))
        snprintf (why, why_size, "worker crashed: %s", how);
    else
    if (rc == S_IO_EOF)
        snprintf (why, why_size, "worker exited: %s", how);
    else
        snprintf (why, why_size, "worker protocol error");
    s_clear_task (self);
    s_spawn (self);
}

//  Writes what the socket takes of the pending request
static s_io_t
s_flush (agt_worker_t *self)
{
    while (self->out_done < self->out_len) {
        ssize_t n = send (self->fd, self->out + self->out_done, self->out_len - self->out_done,
                          MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            self->out_done += (size_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return S_IO_AGAIN;
        return S_IO_EOF;
    }
    free (self->out);
    self->out = NULL;
    self->out_len = self->out_done = 0;
    return S_IO_OK;
}

int
agt_worker_start (agt_worker_t *self, const char *task_id, const uint8_t *request, size_t len,
                  int64_t timeout_ms, char *why, size_t why_size)
{
    assert (!self->busy);
    if (len > AGT_WORKER_MAX_MSG) {
        snprintf (why, why_size, "task too large");
        return -1;
    }
    if (self->pid <= 0 && s_spawn (self) != 0) {
        snprintf (why, why_size, "worker unavailable");
        return -1;
    }
    self->task_id = strdup (task_id);
    if (!self->task_id) {
        snprintf (why, why_size, "out of memory");
        return -1;
    }
    self->busy = true;
    self->deadline_us = p2c_now_us () + (timeout_ms + S_MARGIN_MS) * 1000;
    uint8_t head [4];
    s_put_len (head, len);
    //  Straight from the caller's buffer when the socket takes it all (the
    //  usual case: a request is small and the worker is waiting); what is
    //  left is copied and written as the socket drains
    for (int attempt = 0; attempt < 2; attempt++) {
        struct iovec iov [2] = { { head, 4 }, { (void *) request, len } };
        struct msghdr mh;
        memset (&mh, 0, sizeof mh);
        mh.msg_iov = iov;
        mh.msg_iovlen = 2;
        ssize_t n;
        while ((n = sendmsg (self->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT)) < 0 && errno == EINTR)
            ;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            n = 0;
        if (n >= 0) {
            size_t sent = (size_t) n;
            if (sent == len + 4)
                return 0;
            self->out_len = len + 4 - sent;
            self->out = malloc (self->out_len);
            if (!self->out) {
                s_replace (self, "out of memory", S_IO_ERROR, why, why_size);
                return -1;
            }
            size_t head_left = sent < 4 ? 4 - sent : 0;
            memcpy (self->out, head + 4 - head_left, head_left);
            memcpy (self->out + head_left, request + (sent > 4 ? sent - 4 : 0),
                    self->out_len - head_left);
            return 0;
        }
        //  Nothing written and the socket is broken: the worker died while
        //  idle (killed from outside). That is no failure of this task:
        //  replace it and hand the task to the fresh one.
        log_warn ("worker died while idle pid=%d", (int) self->pid);
        char *id = self->task_id;
        self->task_id = NULL;
        s_kill (self, false, NULL, 0);
        s_clear_task (self);
        if (s_spawn (self) != 0) {
            free (id);
            snprintf (why, why_size, "worker unavailable");
            return -1;
        }
        self->task_id = id;
        self->busy = true;
    }
    s_replace (self, "worker unavailable", S_IO_ERROR, why, why_size);
    return -1;
}

//  Reads what the socket holds. S_IO_OK when a whole reply is in.
static s_io_t
s_read (agt_worker_t *self)
{
    while (true) {
        size_t need = 4;
        if (self->in_len >= 4) {
            need = 4 + s_get_len (self->in + S_IN_SPARE);
            if (need - 4 > AGT_WORKER_MAX_MSG)
                return S_IO_ERROR;
        }
        if (self->in_len >= need)
            return S_IO_OK;
        //  Room for the whole reply at once when its length is known
        size_t want = need > self->in_len + S_READ_CHUNK ? need : self->in_len + S_READ_CHUNK;
        if (want > self->in_cap) {
            uint8_t *in = realloc (self->in, S_IN_SPARE + want);
            if (!in)
                return S_IO_ERROR;
            self->in = in;
            self->in_cap = want;
        }
        ssize_t n = recv (self->fd, self->in + S_IN_SPARE + self->in_len,
                          self->in_cap - self->in_len, MSG_DONTWAIT);
        if (n > 0) {
            self->in_len += (size_t) n;
            continue;
        }
        if (n == 0)
            return S_IO_EOF;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return S_IO_AGAIN;
        return S_IO_EOF;
    }
}

agt_worker_status_t
agt_worker_pump (agt_worker_t *self, char *why, size_t why_size)
{
    if (self->fd < 0)
        return self->busy ? AGT_WORKER_RUNNING : AGT_WORKER_IDLE;
    if (!self->busy) {
        //  Idle: nothing should come; an end of input is a worker that died
        //  between tasks (replaced now, no task failed), anything else is
        //  nonsense
        uint8_t byte;
        ssize_t n = recv (self->fd, &byte, 1, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            log_warn ("worker died while idle pid=%d", (int) self->pid);
            s_kill (self, true, NULL, 0);
            s_spawn (self);
        }
        else
        if (n > 0) {
            log_warn ("worker spoke while idle pid=%d, replaced", (int) self->pid);
            s_kill (self, false, NULL, 0);
            s_spawn (self);
        }
        return AGT_WORKER_IDLE;
    }
    if (self->reply)
        return AGT_WORKER_DONE;
    s_io_t rc = S_IO_OK;
    if (self->out)
        rc = s_flush (self);
    if (rc == S_IO_OK || rc == S_IO_AGAIN)
        rc = s_read (self);
    if (rc == S_IO_AGAIN) {
        if (p2c_now_us () < self->deadline_us)
            return AGT_WORKER_RUNNING;
        s_replace (self, "time limit exceeded", rc, why, why_size);
        return AGT_WORKER_FAILED;
    }
    if (rc != S_IO_OK) {
        s_replace (self, NULL, rc, why, why_size);
        return AGT_WORKER_FAILED;
    }
    //  A whole reply: only a result for this very task is an answer
    size_t len = s_get_len (self->in + S_IN_SPARE);
    P2c2r__ClientMessage *msg = p2c_msg_unpack_client (self->in + AGT_WORKER_REPLY_PRE, len,
                                                       AGT_WORKER_MAX_MSG);
    if (!msg || msg->msg_case != P2C2R__CLIENT_MESSAGE__MSG_RESULT || !msg->result
        || !msg->result->task_id || strcmp (msg->result->task_id, self->task_id)
        || self->in_len != 4 + len) {
        //  (one request, one reply: more bytes than the reply are nonsense too)
        p2c_msg_client_free (&msg);
        s_replace (self, NULL, S_IO_ERROR, why, why_size);
        return AGT_WORKER_FAILED;
    }
    self->reply = self->in;
    self->reply_len = len;
    self->reply_msg = msg;
    self->in = NULL;
    self->in_len = self->in_cap = 0;
    return AGT_WORKER_DONE;
}

uint8_t *
agt_worker_take_reply (agt_worker_t *self, size_t *len_p, P2c2r__ClientMessage **msg_p)
{
    assert (self->reply);
    uint8_t *buf = self->reply;
    *len_p = self->reply_len;
    *msg_p = self->reply_msg;
    self->reply = NULL;
    self->reply_msg = NULL;
    s_clear_task (self);
    return buf;
}

void
agt_worker_abandon (agt_worker_t *self)
{
    if (!self->busy)
        return;
    char why [64];
    s_replace (self, "task abandoned", S_IO_ERROR, why, sizeof why);
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
        log_warn ("worker died while idle pid=%d", (int) self->pid);
        self->pid = -1;
        s_kill (self, false, NULL, 0);
    }
    P2c2r__ServerMessage req = P2C2R__SERVER_MESSAGE__INIT;
    req.msg_case = P2C2R__SERVER_MESSAGE__MSG_ASSIGN;
    req.assign = (P2c2r__Assign *) assign;
    size_t len = 0;
    uint8_t *buf = p2c_msg_pack_server (&req, 0, &len);
    if (!buf) {
        snprintf (why, why_size, "out of memory");
        return NULL;
    }
    int rc = agt_worker_start (self, assign->task_id, buf, len, timeout_ms, why, why_size);
    free (buf);
    if (rc != 0)
        return NULL;
    while (true) {
        agt_worker_status_t st = agt_worker_pump (self, why, why_size);
        if (st == AGT_WORKER_FAILED)
            return NULL;
        if (st == AGT_WORKER_DONE) {
            P2c2r__ClientMessage *reply = NULL;
            size_t rlen;
            free (agt_worker_take_reply (self, &rlen, &reply));
            why [0] = 0;
            return reply;
        }
        if (abandon && abandon (abandon_arg)) {
            agt_worker_abandon (self);
            snprintf (why, why_size, "task abandoned");
            return NULL;
        }
        //  Slices of 100 ms so that an abandoned task is noticed quickly
        struct pollfd pfd = { self->fd, agt_worker_wants_write (self) ? POLLOUT : POLLIN, 0 };
        int64_t left_ms = (self->deadline_us - p2c_now_us () + 999) / 1000;
        int n = poll (&pfd, 1, left_ms <= 0 ? 0 : left_ms > 100 ? 100 : (int) left_ms);
        if (n < 0 && errno != EINTR) {
            s_replace (self, NULL, S_IO_ERROR, why, why_size);
            return NULL;
        }
    }
}
