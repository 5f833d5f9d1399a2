/*  A game's program written only against the installed libp2c2r: it
    includes <p2c2r.h> and is built with `pkg-config --cflags --libs p2c2r`
    (test_sdk_install.sh). It submits N encryption tasks and one of an
    unknown type, in loop or thread mode, and prints one line per result:
        result REF ok HASH     or     result REF error CODE
    then "done ok=N errors=M". Exit 0 when every task was answered.
    Mode "lost": N long tasks only; once all are sent it prints
    "in_flight N", and the test kills the gateway under them. */
#define _POSIX_C_SOURCE 200809L
#include <p2c2r.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    pthread_mutex_t lock;
    int answered, ok, errors;
} tally_t;

static void
s_done (p2c2r_client_t *client, const p2c2r_result_t *r, void *arg)
{
    (void) client;
    tally_t *t = (tally_t *) arg;
    pthread_mutex_lock (&t->lock);
    if (p2c2r_result_code (r) == P2C2R_OK) {
        //  {"hash":"<64 hex>",...}: print the hash alone
        const char *h = strstr (p2c2r_result_json (r), "\"hash\":\"");
        printf ("result %s ok %.64s\n", p2c2r_result_client_ref (r), h ? h + 8 : "none");
        t->ok++;
    }
    else {
        printf ("result %s error %s\n", p2c2r_result_client_ref (r), p2c2r_result_code_name (r));
        t->errors++;
    }
    t->answered++;
    fflush (stdout);
    pthread_mutex_unlock (&t->lock);
}

int
main (int argc, char **argv)
{
    if (argc < 3) {
        fprintf (stderr, "usage: client URL N [threaded|lost]\n");
        return 2;
    }
    signal (SIGPIPE, SIG_IGN);
    int n = atoi (argv [2]);
    tally_t t = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0 };
    p2c2r_options_t opt;
    p2c2r_options_init (&opt);
    opt.url = argv [1];
    opt.gamer_id = "installed-client";
    opt.threaded = argc > 3 && !strcmp (argv [3], "threaded");
    bool lost = argc > 3 && !strcmp (argv [3], "lost");
    p2c2r_code_t code;
    p2c2r_client_t *c = p2c2r_new (&opt, &code);
    if (!c) {
        fprintf (stderr, "p2c2r_new: %s\n", p2c2r_code_name (code));
        return 1;
    }
    //  "lost": the contract without resubmission (p2c2r_set_resubmit): a
    //  task lost with its connection fails with connection_lost
    if (lost)
        p2c2r_set_resubmit (c, false);
    for (int i = 0; i < n; i++) {
        char ref [32], params [96];
        //  refs of their own per mode: a repeated client_ref is a repeat
        snprintf (ref, sizeof ref, "%s-%d", opt.threaded ? "t" : lost ? "x" : "l", i);
        snprintf (params, sizeof params, "{\"data\":\"inst-%d\",\"iterations\":%d}", i,
                  lost ? 1000000 : 100);
        p2c2r_task_t task = { "encryption", params, NULL, 0, ref, 0 };
        if (!p2c2r_submit (c, &task, s_done, &t, &code)) {
            fprintf (stderr, "p2c2r_submit: %s\n", p2c2r_code_name (code));
            return 1;
        }
    }
    p2c2r_task_t bad = { "no_such_kernel", "{}", NULL, 0, "bad", 0 };
    if (!lost)
        p2c2r_submit (c, &bad, s_done, &t, &code);
    int want = lost ? n : n + 1;
    bool said = false;
    time_t until = time (NULL) + 60;
    int answered = 0;
    while (answered < want && time (NULL) < until) {
        if (opt.threaded) {
            struct timespec ts = { 0, 10000000 };
            nanosleep (&ts, NULL);
        }
        else {
            struct pollfd pfd = { p2c2r_fd (c), POLLIN, 0 };
            poll (&pfd, 1, 100);
            p2c2r_step (c);
        }
        pthread_mutex_lock (&t.lock);
        answered = t.answered;
        pthread_mutex_unlock (&t.lock);
        p2c2r_stats_t st;
        p2c2r_stats (c, &st);
        if (lost && !said && st.in_flight == (uint64_t) n) {
            printf ("in_flight %d\n", n);
            fflush (stdout);
            said = true;
        }
    }
    p2c2r_destroy (&c);
    printf ("done ok=%d errors=%d\n", t.ok, t.errors);
    return answered == want ? 0 : 1;
}
