/*  Local control of a running peer, like BOINC's boinccmd: `p2c2r-agent
    status|pause|resume|snooze DURATION|prefs [reload]` talk to the peer over
    a UNIX socket that only the agent's user can open (the socket is 0600 in
    a 0700 directory). One request a connection: a line of JSON
    ({"cmd":"status"}), answered by one line of JSON. The server side is
    non-blocking and bounded (a request over 4 KiB, or one not complete
    within its connection's first second, is dropped): the peer's loop
    watches its descriptors. */
#ifndef AGT_CONTROL_H_INCLUDED
#define AGT_CONTROL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _agt_control_t agt_control_t;

//  Answers one request: cmd is "status", "pause", "resume", "snooze",
//  "prefs" or "reload"; arg is the snooze duration in seconds (else 0).
//  Returns the reply object as JSON text (malloc'd), with "ok": true or
//  false and "error" when false.
typedef char *(agt_control_fn) (const char *cmd, int64_t arg, void *self);

//  The socket's path when none is set: $XDG_RUNTIME_DIR/p2c2r-agent/control,
//  else /run/p2c2r-agent/control for root, else /tmp/p2c2r-agent-UID/control.
//  Caller frees.
char *agt_control_default_path (void);

//  Listens at path (its directory is made 0700 when missing; a stale
//  socket is replaced, a live one refused). NULL with why on failure.
agt_control_t *agt_control_new (const char *path, agt_control_fn *fn, void *arg,
                                char *why, size_t why_size);
void agt_control_destroy (agt_control_t **self_p);

//  The listening descriptor, for the owner's loop
int agt_control_fd (agt_control_t *self);

//  Call when the listening descriptor is readable, and on every cron tick
//  (it serves clients without blocking and drops stale ones).
void agt_control_serve (agt_control_t *self, int64_t now_us);

//  The client: `p2c2r-agent CMD [ARG] [--control PATH] [--json]`; prints
//  the reply for a person (or as JSON). Returns the exit status: 0, 1 on
//  an error reply, 2 when no peer answers.
int agt_control_main (int argc, char **argv);

//  "90", "90s", "15m", "2h" to seconds; -1 when not a duration (1 s to 7 d)
int64_t agt_control_duration (const char *text);

void agt_control_test (bool verbose);

#endif
