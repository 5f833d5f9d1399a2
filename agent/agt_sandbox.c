/*  The worker's sandbox (see agt_sandbox.h for what and why). */
#define P2C_LOG_COMPONENT "worker"
#include "agt_sandbox.h"
#include "p2c_log.h"
#include "p2c_test.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

//  Descriptors a worker needs: stdin/out/err, its socket, and a spare
#define S_NOFILE 8

//  What a kernel process may call. Everything else kills it. Kept short on
//  purpose; a kernel that needs more is a change to review, not to allow
//  by default.
static const char *s_allowed [] = {
    //  its socket and stderr
    //  (sendto/recvfrom on the socket it was given: it cannot make another)
    "read", "write", "readv", "writev", "sendto", "recvfrom", "close", "fstat", "newfstatat",
    "lseek",
    //  memory
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
    //  the C library's locks, time and its own limits (the CPU allowance)
    "futex", "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep",
    "clock_nanosleep", "getrusage", "getrlimit", "prlimit64", "setrlimit", "getrandom",
    "sched_yield", "getpid", "gettid", "getpriority", "sched_getscheduler",
    //  signals, and leaving
    "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "sigaltstack", "restart_syscall",
    "exit", "exit_group",
    NULL
};

static int
s_set_user (const char *user, char *why, size_t why_size)
{
    if (geteuid () != 0)
        return 0;
    struct passwd *pw = getpwnam (user && *user ? user : "nobody");
    if (!pw || pw->pw_uid == 0) {
        snprintf (why, why_size, "no unprivileged user '%s' to run kernels as", user ? user : "");
        return -1;
    }
    if (setgroups (0, NULL) != 0 || setgid (pw->pw_gid) != 0 || setuid (pw->pw_uid) != 0) {
        snprintf (why, why_size, "cannot become user '%s': %s", pw->pw_name, strerror (errno));
        return -1;
    }
    if (setuid (0) == 0) {
        snprintf (why, why_size, "could regain root after switching users");
        return -1;
    }
    return 0;
}

static int
s_limits (char *why, size_t why_size)
{
    struct { int resource; rlim_t value; const char *name; } limits [] = {
        { RLIMIT_NPROC, 0, "NPROC" },
        { RLIMIT_FSIZE, 0, "FSIZE" },
        { RLIMIT_NOFILE, S_NOFILE, "NOFILE" },
        { RLIMIT_CORE, 0, "CORE" },
    };
    for (size_t i = 0; i < sizeof limits / sizeof limits [0]; i++) {
        struct rlimit rl = { limits [i].value, limits [i].value };
        if (setrlimit (limits [i].resource, &rl) != 0) {
            snprintf (why, why_size, "cannot set RLIMIT_%s: %s", limits [i].name,
                      strerror (errno));
            return -1;
        }
    }
    //  With FSIZE 0 a log line to a regular file fails (EFBIG) rather than
    //  killing the worker; to a terminal, a pipe or the journal it goes out
    signal (SIGXFSZ, SIG_IGN);
    return 0;
}

static int
s_filter (char *why, size_t why_size)
{
    scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_KILL_PROCESS);
    if (!ctx) {
        snprintf (why, why_size, "cannot make a seccomp filter");
        return -1;
    }
    int rc = 0;
    for (int i = 0; s_allowed [i] && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name (s_allowed [i]);
        if (nr != __NR_SCMP_ERROR)
            rc = seccomp_rule_add (ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    //  raise() and abort() signal this process only (a crash must stay a
    //  crash the agent can report)
    //  (the comparison spelled out: SCMP_A0 leaves datum_b to the compiler,
    //  which clang's -Wmissing-field-initializers refuses)
    struct scmp_arg_cmp own_pid = { .arg = 0, .op = SCMP_CMP_EQ,
                                    .datum_a = (scmp_datum_t) getpid (), .datum_b = 0 };
    if (rc == 0)
        rc = seccomp_rule_add (ctx, SCMP_ACT_ALLOW, SCMP_SYS (tgkill), 1, own_pid);
    //  Files: every open fails, none kills (the C library may probe)
    if (rc == 0)
        rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EACCES), SCMP_SYS (openat), 0);
    if (rc == 0)
        rc = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EACCES), SCMP_SYS (open), 0);
    if (rc == 0)
        rc = seccomp_load (ctx);
    seccomp_release (ctx);
    if (rc != 0) {
        snprintf (why, why_size, "cannot load the seccomp filter: %s", strerror (-rc));
        return -1;
    }
    return 0;
}

int
agt_sandbox_enter (const agt_sandbox_t *opts, char *why, size_t why_size)
{
    //  Priority first: it holds whatever else happens, and cannot be undone
    //  by the kernel (NO_NEW_PRIVS and the filter below)
    struct sched_param sp = { 0 };
    if (sched_setscheduler (0, SCHED_IDLE, &sp) != 0)
        log_warn ("cannot use SCHED_IDLE reason=\"%s\"", strerror (errno));
    if (setpriority (PRIO_PROCESS, 0, 19) != 0)
        log_warn ("cannot lower priority reason=\"%s\"", strerror (errno));
    if (!opts->filter)
        return 0;
    if (s_set_user (opts->user, why, why_size) != 0 || s_limits (why, why_size) != 0)
        return -1;
    if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf (why, why_size, "cannot set no_new_privs: %s", strerror (errno));
        return -1;
    }
    return s_filter (why, why_size);
}

bool
agt_sandbox_killed (int term_signal)
{
    return term_signal == SIGSYS;
}

//  --------------------------------------------------------------------------
//  Self-test: real child processes under the real filter

typedef enum { S_TRY_WORK, S_TRY_SOCKET, S_TRY_EXEC, S_TRY_OPEN, S_TRY_FORK } s_try_t;

//  Forks a child that enters the sandbox and tries one thing; returns its
//  wait status, and what it wrote to the pipe in out.
static int
s_child (s_try_t what, bool filter, char *out, size_t out_size)
{
    int p [2];
    if (pipe (p) != 0)
        return -1;
    pid_t pid = fork ();
    if (pid == 0) {
        close (p [0]);
        agt_sandbox_t opts = { filter, "nobody" };
        char why [200] = "";
        if (agt_sandbox_enter (&opts, why, sizeof why) != 0)
            _exit (90);
        char line [128] = "";
        switch (what) {
            case S_TRY_WORK: {
                //  what a kernel does: allocate, compute, write its socket
                size_t n = 4 << 20;
                char *buf = malloc (n);
                if (!buf)
                    _exit (91);
                memset (buf, 7, n);
                errno = 0;
                int nice_now = getpriority (PRIO_PROCESS, 0);
                snprintf (line, sizeof line, "nice=%d idle=%d sum=%d", nice_now,
                          sched_getscheduler (0) == SCHED_IDLE, buf [n - 1]);
                free (buf);
                break;
            }
            case S_TRY_SOCKET:
                snprintf (line, sizeof line, "socket=%d", socket (AF_INET, SOCK_STREAM, 0));
                break;
            case S_TRY_EXEC: {
                char *argv [] = { "/bin/true", NULL };
                execv ("/bin/true", argv);
                snprintf (line, sizeof line, "exec failed");
                break;
            }
            case S_TRY_OPEN: {
                int fd = open ("/etc/hostname", O_RDONLY);
                snprintf (line, sizeof line, "open=%d errno=%d", fd, fd < 0 ? errno : 0);
                break;
            }
            case S_TRY_FORK: {
                pid_t c = fork ();
                if (c == 0)
                    _exit (0);
                snprintf (line, sizeof line, "fork=%d", c < 0 ? -1 : 1);
                break;
            }
        }
        if (write (p [1], line, strlen (line)) < 0)
            _exit (92);
        _exit (0);
    }
    close (p [1]);
    ssize_t n = read (p [0], out, out_size - 1);
    out [n > 0 ? n : 0] = 0;
    close (p [0]);
    int status = 0;
    waitpid (pid, &status, 0);
    return status;
}

void
agt_sandbox_test (bool verbose)
{
    (void) verbose;
    char out [128];
    //  Work a kernel does goes through, at idle priority
    int st = s_child (S_TRY_WORK, true, out, sizeof out);
    P2C_CHECK (WIFEXITED (st) && WEXITSTATUS (st) == 0);
    P2C_CHECK (!strcmp (out, "nice=19 idle=1 sum=7"));

    //  A socket, an exec, a fork: killed by the filter, nothing written
    s_try_t killed [] = { S_TRY_SOCKET, S_TRY_EXEC, S_TRY_FORK };
    for (size_t i = 0; i < sizeof killed / sizeof killed [0]; i++) {
        st = s_child (killed [i], true, out, sizeof out);
        P2C_CHECK (WIFSIGNALED (st) && agt_sandbox_killed (WTERMSIG (st)));
        P2C_CHECK (out [0] == 0);
    }
    //  An open fails, the worker lives
    st = s_child (S_TRY_OPEN, true, out, sizeof out);
    P2C_CHECK (WIFEXITED (st) && WEXITSTATUS (st) == 0);
    char expect [64];
    snprintf (expect, sizeof expect, "open=-1 errno=%d", EACCES);
    P2C_CHECK (!strcmp (out, expect));

    //  Without the filter (a test's --sandbox off) the same socket works,
    //  which shows the kill above is the filter's doing
    st = s_child (S_TRY_SOCKET, false, out, sizeof out);
    P2C_CHECK (WIFEXITED (st) && WEXITSTATUS (st) == 0 && strncmp (out, "socket=", 7) == 0
               && atoi (out + 7) >= 0);
    P2C_CHECK (!agt_sandbox_killed (SIGSEGV));
}
