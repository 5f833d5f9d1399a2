/*  Self-tests of the agent's classes, without a server: {i} substitution,
    percentiles and money printing (agt_gamer), and the worker protocol
    end to end with real worker processes.
    The worker processes are this test binary itself, started as
    `test_agent worker --fd 3 ...`: its worker main wraps the agent's real
    one (agt_worker_main) and adds three kernels that exist only here, to
    make a worker crash, hang, or run out of memory. The shipped agent has
    no such kernels. When bin/p2c2r-agent has been built (`make unit` builds
    it first), one task also goes through the real agent's worker. */
#include "agt_bench.h"
#include "agt_config.h"
#include "agt_conn.h"
#include "agt_control.h"
#include "agt_depth.h"
#include "agt_gamer.h"
#include "agt_guest.h"
#include "agt_prefs.h"
#include "agt_sandbox.h"
#include "agt_sources.h"
#include "agt_worker.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <errno.h>
#include <openssl/sha.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

//  ---------------------------------------------------------------------
//  Test-only kernels, reachable only in this binary's workers

static int
s_crash_run (const json_t *params, const uint8_t *payload, size_t len, agt_kernel_out_t *out)
{
    (void) params, (void) payload, (void) len, (void) out;
    raise (SIGSEGV);
    return -1;
}

static int
s_hang_run (const json_t *params, const uint8_t *payload, size_t len, agt_kernel_out_t *out)
{
    (void) params, (void) payload, (void) len, (void) out;
    volatile unsigned long spin = 0;
    while (true)
        spin++;
    return -1;
}

//  Asks for far more than the worker's memory limit allows
static int
s_hog_run (const json_t *params, const uint8_t *payload, size_t len, agt_kernel_out_t *out)
{
    (void) params, (void) payload, (void) len;
    size_t size = (size_t) 512 * 1024 * 1024;
    char *p = malloc (size);
    if (!p)
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    memset (p, 1, size);
    out->result = json_pack ("{s:i}", "sum", p [size - 1]);
    free (p);
    return 0;
}

//  What an exploited kernel would try: reach the network
static int
s_socket_run (const json_t *params, const uint8_t *payload, size_t len, agt_kernel_out_t *out)
{
    (void) params, (void) payload, (void) len;
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    out->result = json_pack ("{s:i}", "fd", fd);
    return 0;
}

static const agt_kernel_t s_test_kernels [] = {
    { "test_socket", "0", s_socket_run, "{}" },
    { "test_crash", "0", s_crash_run, "{}" },
    { "test_hang", "0", s_hang_run, "{}" },
    { "test_hog", "0", s_hog_run, "{}" },
    { NULL, NULL, NULL, NULL }
};

static const agt_kernel_t *
s_test_lookup (const char *name)
{
    for (const agt_kernel_t *k = s_test_kernels; k->name; k++)
        if (!strcmp (k->name, name))
            return k;
    return agt_kernel_find (name);
}

//  ---------------------------------------------------------------------

//  The encryption kernel's formula (docs/kernels.md, the original demo's),
//  computed independently: each round hashes the raw 32-byte digest
static void
s_expected_hash (const char *data, int iterations, char hex [65])
{
    unsigned char cur [200];
    size_t len = strlen (data) < sizeof cur ? strlen (data) : sizeof cur;
    memcpy (cur, data, len);
    for (int i = 0; i < iterations; i++) {
        unsigned char buf [256];
        memcpy (buf, cur, len);
        int n = snprintf ((char *) buf + len, sizeof buf - len, "%d", i);
        SHA256 (buf, len + (size_t) n, cur);
        len = SHA256_DIGEST_LENGTH;
    }
    for (int k = 0; k < SHA256_DIGEST_LENGTH; k++)
        sprintf (hex + 2 * k, "%02x", cur [k]);
    hex [64] = 0;
}

static void
s_assign (P2c2r__Assign *a, const char *id, const char *type, const char *params)
{
    p2c2r__assign__init (a);
    a->task_id = (char *) id;
    a->task_type = (char *) type;
    a->params_json = (char *) params;
}

//  The hash in a result text, or "" (the test's own reading of the JSON)
static void
s_hash_of (const char *result_json, char hex [65])
{
    hex [0] = 0;
    json_t *r = result_json ? json_loads (result_json, 0, NULL) : NULL;
    const char *h = r ? json_string_value (json_object_get (r, "hash")) : NULL;
    if (h)
        snprintf (hex, 65, "%s", h);
    json_decref (r);
}

static void
s_test_execute (void)
{
    char want [65], got [65];
    s_expected_hash ("abc", 1000, want);
    P2c2r__Assign a;
    P2c2r__PeerResult r;
    s_assign (&a, "t-1", "encryption", "{\"data\":\"abc\",\"iterations\":1000}");
    agt_worker_execute (agt_kernel_find, &a, &r);
    P2C_CHECK (r.ok);
    P2C_CHECK (!strcmp (r.task_id, "t-1"));
    s_hash_of (r.result_json, got);
    P2C_CHECK (!strcmp (got, want));
    //  Sorted, compact keys: the same bytes on every peer
    P2C_CHECK (r.result_json && r.result_json [0] == '{' && !strchr (r.result_json, ' ')
               && strstr (r.result_json, "\"algorithm\"") < strstr (r.result_json, "\"hash\""));
    char *first = strdup (r.result_json);
    agt_worker_result_reset (&r);
    agt_worker_execute (agt_kernel_find, &a, &r);
    P2C_CHECK (first && r.result_json && !strcmp (first, r.result_json));
    free (first);
    agt_worker_result_reset (&r);

    s_assign (&a, "t-2", "no_such_type", "{}");
    agt_worker_execute (agt_kernel_find, &a, &r);
    P2C_CHECK (!r.ok && !strcmp (r.error_code, "unknown_task_type"));
    P2C_CHECK (strstr (r.error, "no_such_type") != NULL);
    agt_worker_result_reset (&r);

    const char *not_objects [] = { "[1,2]", "not json", "", "\"text\"", "{\"a\":" };
    for (size_t i = 0; i < sizeof not_objects / sizeof not_objects [0]; i++) {
        s_assign (&a, "t-3", "encryption", not_objects [i]);
        agt_worker_execute (agt_kernel_find, &a, &r);
        P2C_CHECK (!r.ok && !strcmp (r.error_code, "invalid_params"));
        agt_worker_result_reset (&r);
    }
    //  Reals print as the kernels rounded them, not with 17 digits
    s_assign (&a, "t-5", "compression", "{\"data\":\"golden golden vector\",\"level\":9,\"repeat\":50}");
    agt_worker_execute (agt_kernel_find, &a, &r);
    P2C_CHECK (r.ok && strstr (r.result_json, "\"compression_ratio\":30.303,") != NULL);
    agt_worker_result_reset (&r);

    //  A kernel's own refusal passes through with its code
    s_assign (&a, "t-4", "encryption", "{\"iterations\":\"many\"}");
    agt_worker_execute (agt_kernel_find, &a, &r);
    P2C_CHECK (!r.ok && !strcmp (r.error_code, "invalid_params") && r.error [0]);
    agt_worker_result_reset (&r);
}

//  Runs an encryption task on w and checks the reply is right.
static bool
s_run_ok (agt_worker_t *w, const char *id, int iterations)
{
    char params [100], want [65], got [65], why [128];
    snprintf (params, sizeof params, "{\"data\":\"%s\",\"iterations\":%d}", id, iterations);
    s_expected_hash (id, iterations, want);
    P2c2r__Assign a;
    s_assign (&a, id, "encryption", params);
    P2c2r__ClientMessage *reply = agt_worker_run (w, &a, 5000, NULL, NULL, why, sizeof why);
    bool ok = reply && reply->result->ok && !strcmp (reply->result->task_id, id);
    if (ok) {
        s_hash_of (reply->result->result_json, got);
        ok = !strcmp (got, want);
    }
    p2c_msg_client_free (&reply);
    return ok;
}

typedef struct {
    int64_t after_us;
} s_abandon_arg_t;

static bool
s_abandon_later (void *arg)
{
    return p2c_now_us () >= ((s_abandon_arg_t *) arg)->after_us;
}

//  A worker process of this test binary, as the peer starts them
static agt_worker_t *
s_worker_new (const char *exe)
{
    char *argv [] = { "test_agent", "worker", "--fd", "3", "--worker-mem-mb", "128", NULL };
    return agt_worker_new (exe, argv);
}

//  A kernel that opens a socket is killed by the sandbox: the task gets a
//  failure naming the sandbox, a fresh worker takes the next task
static void
s_test_worker_sandbox (const char *exe)
{
    agt_worker_t *w = s_worker_new (exe);
    P2C_CHECK (w != NULL);
    if (!w)
        return;
    int pid = agt_worker_pid (w);
    char why [200] = "";
    P2c2r__Assign a;
    s_assign (&a, "sb-1", "test_socket", "{}");
    P2c2r__ClientMessage *reply = agt_worker_run (w, &a, 5000, NULL, NULL, why, sizeof why);
    P2C_CHECK (reply == NULL && strstr (why, "killed by the sandbox") != NULL);
    p2c_msg_client_free (&reply);
    P2C_CHECK (agt_worker_alive (w) && agt_worker_pid (w) != pid);
    P2C_CHECK (s_run_ok (w, "sb-2", 100));
    agt_worker_destroy (&w);

    //  The same kernel without the filter (--sandbox=false) gets its socket,
    //  so the kill above is the filter's doing
    char *argv [] = { "test_agent", "worker", "--fd", "3", "--worker-mem-mb", "128",
                      "--sandbox=false", NULL };
    w = agt_worker_new (exe, argv);
    P2C_CHECK (w != NULL);
    if (!w)
        return;
    s_assign (&a, "sb-3", "test_socket", "{}");
    reply = agt_worker_run (w, &a, 5000, NULL, NULL, why, sizeof why);
    P2C_CHECK (reply && reply->result->ok && strstr (reply->result->result_json, "\"fd\":-1") == NULL);
    p2c_msg_client_free (&reply);
    agt_worker_destroy (&w);
}

static void
s_test_worker_process (const char *exe)
{
    agt_worker_t *w = s_worker_new (exe);
    P2C_CHECK (w != NULL);
    if (!w)
        return;
    int pid = agt_worker_pid (w);
    P2C_CHECK (pid > 0 && pid != getpid ());

    //  A normal task, twice on the same process; compute time is measured
    P2C_CHECK (s_run_ok (w, "w-1", 2000));
    P2C_CHECK (s_run_ok (w, "w-2", 10));
    P2C_CHECK (agt_worker_pid (w) == pid);
    char why [128];
    P2c2r__Assign a;
    s_assign (&a, "w-3", "encryption", "{\"data\":\"x\",\"iterations\":20000}");
    P2c2r__ClientMessage *reply = agt_worker_run (w, &a, 5000, NULL, NULL, why, sizeof why);
    P2C_CHECK (reply && reply->result->ok && reply->result->compute_us > 0);
    p2c_msg_client_free (&reply);

    //  Errors inside the worker are answers, not failures of the worker
    s_assign (&a, "w-4", "no_such_type", "{}");
    reply = agt_worker_run (w, &a, 5000, NULL, NULL, why, sizeof why);
    P2C_CHECK (reply && !reply->result->ok
               && !strcmp (reply->result->error_code, "unknown_task_type"));
    p2c_msg_client_free (&reply);
    s_assign (&a, "w-5", "encryption", "[]");
    reply = agt_worker_run (w, &a, 5000, NULL, NULL, why, sizeof why);
    P2C_CHECK (reply && !reply->result->ok
               && !strcmp (reply->result->error_code, "invalid_params"));
    p2c_msg_client_free (&reply);
    P2C_CHECK (agt_worker_pid (w) == pid);

    //  Memory beyond --worker-mem-mb is refused inside the worker, which lives on
    s_assign (&a, "w-6", "test_hog", "{}");
    reply = agt_worker_run (w, &a, 5000, NULL, NULL, why, sizeof why);
    P2C_CHECK (reply && !reply->result->ok
               && !strcmp (reply->result->error_code, "kernel_error"));
    p2c_msg_client_free (&reply);
    P2C_CHECK (agt_worker_pid (w) == pid);

    //  A crash: answered with the signal, a fresh worker serves the next task
    s_assign (&a, "w-7", "test_crash", "{}");
    reply = agt_worker_run (w, &a, 5000, NULL, NULL, why, sizeof why);
    P2C_CHECK (reply == NULL);
    P2C_CHECK (!strcmp (why, "worker crashed: signal 11"));
    int pid2 = agt_worker_pid (w);
    P2C_CHECK (pid2 > 0 && pid2 != pid);
    P2C_CHECK (kill (pid, 0) == -1 && errno == ESRCH);     //  the old one was reaped
    P2C_CHECK (s_run_ok (w, "w-8", 100));

    //  A hang: cut at the deadline (plus the reply margin), then served again
    s_assign (&a, "w-9", "test_hang", "{}");
    a.deadline_ms = 300;
    int64_t start = p2c_now_us ();
    reply = agt_worker_run (w, &a, a.deadline_ms, NULL, NULL, why, sizeof why);
    int64_t took_ms = (p2c_now_us () - start) / 1000;
    P2C_CHECK (reply == NULL);
    P2C_CHECK (!strcmp (why, "time limit exceeded"));
    //  Not cut before its deadline; that it returned at all shows the cut
    //  (test_hang never ends), and the reason says which limit did it
    P2C_CHECK (took_ms >= 300);
    int pid3 = agt_worker_pid (w);
    P2C_CHECK (pid3 > 0 && pid3 != pid2);
    P2C_CHECK (kill (pid2, 0) == -1 && errno == ESRCH);
    P2C_CHECK (s_run_ok (w, "w-10", 100));

    //  An abandoned task (the connection it came on dropped) stops early
    s_assign (&a, "w-11", "test_hang", "{}");
    s_abandon_arg_t ab = { p2c_now_us () + 200 * 1000 };
    start = p2c_now_us ();
    reply = agt_worker_run (w, &a, 60000, s_abandon_later, &ab, why, sizeof why);
    took_ms = (p2c_now_us () - start) / 1000;
    P2C_CHECK (reply == NULL && !strcmp (why, "task abandoned"));
    //  The reason shows it ended on the abandon, not its 60 s deadline
    P2C_CHECK (took_ms >= 200);
    P2C_CHECK (s_run_ok (w, "w-12", 100));

    int last = agt_worker_pid (w);
    agt_worker_destroy (&w);
    P2C_CHECK (w == NULL);
    P2C_CHECK (kill (last, 0) == -1 && errno == ESRCH);
    agt_worker_destroy (&w);        //  safe twice
}

//  The non-blocking calls the peer's event loop makes: the request goes
//  from the caller's buffer, the reply comes back in a buffer that can go
//  to the gateway as it is (the message at AGT_WORKER_REPLY_PRE), and a
//  worker killed while idle is noticed and replaced without failing a task
static void
s_test_worker_async (const char *exe)
{
    agt_worker_t *w = s_worker_new (exe);
    P2C_CHECK (w != NULL);
    if (!w)
        return;
    for (int round = 0; round < 2; round++) {
        P2c2r__Assign a;
        s_assign (&a, round ? "as-2" : "as-1", "encryption", "{\"data\":\"as\",\"iterations\":3}");
        P2c2r__ServerMessage req = P2C2R__SERVER_MESSAGE__INIT;
        req.msg_case = P2C2R__SERVER_MESSAGE__MSG_ASSIGN;
        req.assign = &a;
        size_t len = 0;
        uint8_t *buf = p2c_msg_pack_server (&req, 0, &len);
        char why [128] = "";
        P2C_CHECK (!agt_worker_busy (w));
        P2C_CHECK (agt_worker_start (w, a.task_id, buf, len, 5000, why, sizeof why) == 0);
        free (buf);
        P2C_CHECK (agt_worker_busy (w) && !agt_worker_wants_write (w));
        agt_worker_status_t st = AGT_WORKER_RUNNING;
        for (int i = 0; i < 500 && st == AGT_WORKER_RUNNING; i++) {
            struct pollfd pfd = { agt_worker_fd (w), POLLIN, 0 };
            poll (&pfd, 1, 10);
            st = agt_worker_pump (w, why, sizeof why);
        }
        P2C_CHECK (st == AGT_WORKER_DONE);
        if (st != AGT_WORKER_DONE)
            break;
        size_t rlen = 0;
        P2c2r__ClientMessage *msg = NULL;
        uint8_t *reply = agt_worker_take_reply (w, &rlen, &msg);
        P2C_CHECK (!agt_worker_busy (w));
        P2C_CHECK (msg && msg->result && msg->result->ok && !strcmp (msg->result->task_id, a.task_id));
        //  The bytes in the buffer are that very message
        P2c2r__ClientMessage *again = p2c_msg_unpack_client (reply + AGT_WORKER_REPLY_PRE, rlen,
                                                             rlen);
        P2C_CHECK (again && !strcmp (again->result->result_json, msg->result->result_json));
        p2c_msg_client_free (&again);
        p2c_msg_client_free (&msg);
        free (reply);
        if (round == 0) {
            //  Killed from outside while idle: the loop sees its socket end
            int pid = agt_worker_pid (w);
            uint64_t serial = agt_worker_serial (w);
            kill (pid, SIGKILL);
            struct pollfd pfd = { agt_worker_fd (w), POLLIN, 0 };
            P2C_CHECK (poll (&pfd, 1, 2000) == 1);
            P2C_CHECK (agt_worker_pump (w, why, sizeof why) == AGT_WORKER_IDLE);
            P2C_CHECK (agt_worker_serial (w) != serial && agt_worker_pid (w) != pid
                       && agt_worker_alive (w));
            P2C_CHECK (kill (pid, 0) == -1 && errno == ESRCH);
        }
    }
    //  Killed while idle and not noticed before the next task: the task
    //  goes to a fresh worker all the same
    int pid = agt_worker_pid (w);
    kill (pid, SIGKILL);
    usleep (50000);
    P2c2r__Assign a;
    s_assign (&a, "as-3", "encryption", "{\"data\":\"as\",\"iterations\":3}");
    P2c2r__ServerMessage req = P2C2R__SERVER_MESSAGE__INIT;
    req.msg_case = P2C2R__SERVER_MESSAGE__MSG_ASSIGN;
    req.assign = &a;
    size_t len = 0;
    uint8_t *buf = p2c_msg_pack_server (&req, 0, &len);
    char why [128] = "";
    P2C_CHECK (agt_worker_start (w, a.task_id, buf, len, 5000, why, sizeof why) == 0);
    free (buf);
    P2C_CHECK (agt_worker_pid (w) != pid && agt_worker_busy (w));
    agt_worker_status_t st = AGT_WORKER_RUNNING;
    for (int i = 0; i < 500 && st == AGT_WORKER_RUNNING; i++) {
        struct pollfd pfd = { agt_worker_fd (w), POLLIN, 0 };
        poll (&pfd, 1, 10);
        st = agt_worker_pump (w, why, sizeof why);
    }
    P2C_CHECK (st == AGT_WORKER_DONE);
    if (st == AGT_WORKER_DONE) {
        size_t rlen;
        P2c2r__ClientMessage *msg = NULL;
        free (agt_worker_take_reply (w, &rlen, &msg));
        P2C_CHECK (msg && msg->result->ok && !strcmp (msg->result->task_id, "as-3"));
        p2c_msg_client_free (&msg);
    }
    agt_worker_destroy (&w);
}

//  A program that is not a worker: its silence is a protocol failure
static void
s_test_worker_not_a_worker (void)
{
    char *argv [] = { "true", NULL };
    agt_worker_t *w = agt_worker_new ("/bin/true", argv);
    P2C_CHECK (w != NULL);
    if (!w)
        return;
    char why [128];
    P2c2r__Assign a;
    s_assign (&a, "n-1", "encryption", "{}");
    P2c2r__ClientMessage *reply = agt_worker_run (w, &a, 2000, NULL, NULL, why, sizeof why);
    P2C_CHECK (reply == NULL && !strncmp (why, "worker exited", 13));
    agt_worker_destroy (&w);
}

int
main (int argc, char **argv)
{
    if (argc >= 2 && !strcmp (argv [1], "worker"))
        return agt_worker_main (argc - 1, argv + 1, s_test_lookup);
    bool verbose = argc >= 2 && !strcmp (argv [1], "-v");
    signal (SIGPIPE, SIG_IGN);

    agt_gamer_test (verbose);
    agt_bench_test (verbose);
    agt_config_test (verbose);
    agt_conn_test (verbose);
    s_test_execute ();
    agt_sandbox_test (verbose);
    agt_prefs_test (verbose);
    agt_sources_test (verbose);
    agt_control_test (verbose);
    agt_guest_test (verbose);
    agt_depth_test (verbose);
    s_test_worker_process ("/proc/self/exe");
    s_test_worker_sandbox ("/proc/self/exe");
    s_test_worker_async ("/proc/self/exe");
    s_test_worker_not_a_worker ();

    //  The shipped agent's worker subcommand speaks the same protocol
    if (access ("bin/p2c2r-agent", X_OK) == 0) {
        char *argv2 [] = { "p2c2r-agent", "worker", "--fd", "3", NULL };
        agt_worker_t *w = agt_worker_new ("bin/p2c2r-agent", argv2);
        P2C_CHECK (w && s_run_ok (w, "real-1", 500));
        //  and has none of this test's kernels
        char why [128];
        P2c2r__Assign a;
        s_assign (&a, "real-2", "test_crash", "{}");
        P2c2r__ClientMessage *reply = w ? agt_worker_run (w, &a, 5000, NULL, NULL, why, sizeof why)
                                        : NULL;
        P2C_CHECK (reply && !reply->result->ok
                   && !strcmp (reply->result->error_code, "unknown_task_type"));
        p2c_msg_client_free (&reply);
        agt_worker_destroy (&w);
    }
    else
        printf ("note: bin/p2c2r-agent not built, its worker was not tried (make bin/p2c2r-agent)\n");
    return p2c_test_report ("agent");
}
