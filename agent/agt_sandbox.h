/*  The worker's sandbox: what a kernel process may do on a contributor's
    PC. A kernel parses untrusted parameters and images, so a bug in it (or
    in zlib or libpng below it) must not become a way into the owner's
    machine. The worker applies, in this order, once, before it reads its
    first task:
    - idle priority: SCHED_IDLE and nice 19, however the agent was started,
      so the owner's game always comes first;
    - resource limits: no new processes (NPROC 0), no file growth (FSIZE 0),
      a handful of descriptors (NOFILE), beside the address-space limit the
      worker already had;
    - another user, when the agent runs as root (the `nobody` account by
      default): a kernel never runs with the agent's own rights;
    - a seccomp filter (libseccomp) that allows only what kernels use:
      memory, reading and writing its socket, time, signals for its own
      exit. A socket, an exec, a fork, an open for writing: the process is
      killed (SIGSYS); the agent reports kernel_error and starts a fresh
      worker. Opening any file fails with EACCES instead (the C library may
      try, harmlessly, and a kernel has no file to read).
    A test may turn the filter off (`--sandbox=false`); the agent logs it. */
#ifndef AGT_SANDBOX_H_INCLUDED
#define AGT_SANDBOX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    bool filter;                //  the seccomp filter and the limits
    const char *user;           //  the account to switch to when root ("nobody")
} agt_sandbox_t;

//  Applies the sandbox to this process. Returns 0, or -1 with why filled
//  (the worker then exits: an unsandboxed kernel never runs by accident).
int agt_sandbox_enter (const agt_sandbox_t *opts, char *why, size_t why_size);

//  True when the worker's exit status says the filter killed it.
bool agt_sandbox_killed (int term_signal);

void agt_sandbox_test (bool verbose);

#endif
