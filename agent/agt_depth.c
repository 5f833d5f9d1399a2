/*  The advertised queue per worker, from the measured round trip and task
    time (see agt_depth.h for the rule and why it is honest). */
#include "agt_depth.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <assert.h>
#include <stdlib.h>

#define S_RING          1024        //  results awaiting their next task (older ones are dropped)
#define S_MIN_SAMPLES   8           //  of each kind before the depth moves
#define S_LULL_US       2000000     //  a longer wait is a lull in the work, not a round trip
#define S_MOVE_EVERY_US 1000000     //  the depth changes at most this often
#define S_RTT_WINDOW    32          //  round trips the shortest is taken of

struct _agt_depth_t {
    int max;                        //  tasks per worker at most
    int depth;                      //  the last answer of agt_depth_get
    //  The round trip is the shortest of the last S_RTT_WINDOW: a pause,
    //  a lull or a queue at the scheduler only ever adds to it, and would
    //  make the peer take more than it can start in time
    int64_t rtts [S_RTT_WINDOW];
    int rtt_next;                   //  where the next sample goes
    double task_us;                 //  moving average of a task's time on a worker
    int n_rtt;                      //  round trips held (up to S_RTT_WINDOW)
    int n_task;                     //  task times taken (capped at S_MIN_SAMPLES)
    int64_t ring [S_RING];          //  when each awaited result left, oldest first
    int head, count;
    int64_t moved_us;               //  when the depth last changed
};

agt_depth_t *
agt_depth_new (int max)
{
    agt_depth_t *self = (agt_depth_t *) p2c_calloc (1, sizeof (agt_depth_t));
    if (!self)
        return NULL;
    self->max = max > 0 ? max : 1;
    self->depth = 1;
    return self;
}

void
agt_depth_destroy (agt_depth_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

static void
s_average (double *avg, int *n, double sample)
{
    *avg = *n ? *avg + (sample - *avg) / 8.0 : sample;
    if (*n < S_MIN_SAMPLES)
        (*n)++;
}

void
agt_depth_task (agt_depth_t *self, int64_t task_us)
{
    if (task_us >= 0)
        s_average (&self->task_us, &self->n_task, (double) (task_us > 0 ? task_us : 1));
}

void
agt_depth_freed (agt_depth_t *self, int64_t now_us, bool full)
{
    if (!full)
        return;
    if (self->count == S_RING) {            //  the oldest is dropped
        self->head = (self->head + 1) % S_RING;
        self->count--;
    }
    self->ring [(self->head + self->count) % S_RING] = now_us;
    self->count++;
}

void
agt_depth_assigned (agt_depth_t *self, int64_t now_us)
{
    //  The oldest result still awaiting its successor is the one answered
    while (self->count) {
        int64_t sent = self->ring [self->head];
        self->head = (self->head + 1) % S_RING;
        self->count--;
        int64_t gap = now_us - sent;
        if (gap < 0 || gap > S_LULL_US)
            continue;               //  stale: its answer never came in time
        self->rtts [self->rtt_next] = gap;
        self->rtt_next = (self->rtt_next + 1) % S_RTT_WINDOW;
        if (self->n_rtt < S_RTT_WINDOW)
            self->n_rtt++;
        return;
    }
}

void
agt_depth_reset (agt_depth_t *self)
{
    self->head = self->count = 0;
}

int
agt_depth_get (agt_depth_t *self, int64_t now_us, bool *changed)
{
    *changed = false;
    if (self->n_rtt < S_MIN_SAMPLES || self->n_task < S_MIN_SAMPLES
        || (self->moved_us && now_us - self->moved_us < S_MOVE_EVERY_US))
        return self->depth;
    double extra = (double) agt_depth_rtt_us (self) / self->task_us;
    //  (a round trip under a thousandth of a task is not worth a queued task)
    int want = extra >= self->max ? self->max : 1 + (int) (extra + 0.999);
    if (want > self->max)
        want = self->max;
    if (want != self->depth) {
        self->depth = want;
        self->moved_us = now_us;
        *changed = true;
    }
    return self->depth;
}

int64_t
agt_depth_rtt_us (agt_depth_t *self)
{
    int64_t min = -1;
    for (int i = 0; i < self->n_rtt; i++)
        if (min < 0 || self->rtts [i] < min)
            min = self->rtts [i];
    return min < 0 ? 0 : min;
}

int64_t
agt_depth_task_us (agt_depth_t *self)
{
    return self->n_task ? (int64_t) self->task_us : 0;
}

//  ---------------------------------------------------------------------
//  Self-test

//  n tasks of task_us each, each result answered rtt_us later (the peer full)
static void
s_feed (agt_depth_t *d, int64_t *now, int n, int64_t task_us, int64_t rtt_us)
{
    for (int i = 0; i < n; i++) {
        agt_depth_task (d, task_us);
        agt_depth_freed (d, *now, true);
        *now += rtt_us;
        agt_depth_assigned (d, *now);
    }
}

void
agt_depth_test (bool verbose)
{
    (void) verbose;
    bool changed;
    int64_t now = 1000000;
    agt_depth_t *d = agt_depth_new (16);
    assert (d);
    //  Nothing measured: one task per worker, as a fixed peer
    P2C_CHECK (agt_depth_get (d, now, &changed) == 1 && !changed);
    P2C_CHECK (agt_depth_rtt_us (d) == 0 && agt_depth_task_us (d) == 0);
    //  Too few samples: still one
    s_feed (d, &now, 7, 100, 300);
    P2C_CHECK (agt_depth_get (d, now, &changed) == 1 && !changed);
    //  A round trip of 3 tasks' time: 1 + 3 per worker
    s_feed (d, &now, 1, 100, 300);
    P2C_CHECK (agt_depth_rtt_us (d) == 300 && agt_depth_task_us (d) == 100);
    P2C_CHECK (agt_depth_get (d, now, &changed) == 4 && changed);
    P2C_CHECK (agt_depth_get (d, now, &changed) == 4 && !changed);
    //  One long wait (a pause, a lull) among them does not move it
    s_feed (d, &now, 1, 100, 200000);
    now += S_MOVE_EVERY_US;
    P2C_CHECK (agt_depth_rtt_us (d) == 300 && agt_depth_get (d, now, &changed) == 4 && !changed);
    //  Partial tasks round up: 250 / 100 is 3 more
    agt_depth_destroy (&d);
    d = agt_depth_new (16);
    s_feed (d, &now, 8, 100, 250);
    P2C_CHECK (agt_depth_get (d, now, &changed) == 4);
    //  A distant link with short tasks: capped at max
    s_feed (d, &now, 64, 10, 50000);
    P2C_CHECK (agt_depth_get (d, now, &changed) == 16 && changed);
    //  Long tasks on a near link: back down, but not within a second
    s_feed (d, &now, 64, 50000, 10);
    P2C_CHECK (agt_depth_get (d, now, &changed) == 16 && !changed);
    now += S_MOVE_EVERY_US;
    //  (a round trip under a thousandth of a task is not worth a queued task)
    P2C_CHECK (agt_depth_get (d, now, &changed) == 1 && changed);
    s_feed (d, &now, 64, 50000, 5000);
    now += S_MOVE_EVERY_US;
    P2C_CHECK (agt_depth_get (d, now, &changed) == 2 && changed);
    agt_depth_destroy (&d);
    P2C_CHECK (d == NULL);
    agt_depth_destroy (&d);

    //  Only results sent while full count, and a lull is not a round trip
    d = agt_depth_new (8);
    for (int i = 0; i < 8; i++) {
        agt_depth_task (d, 100);
        agt_depth_freed (d, now, false);
        now += 5000;
        agt_depth_assigned (d, now);
    }
    P2C_CHECK (agt_depth_rtt_us (d) == 0);
    agt_depth_freed (d, now, true);
    now += S_LULL_US + 1;
    agt_depth_assigned (d, now);
    P2C_CHECK (agt_depth_rtt_us (d) == 0);
    //  An assignment with no result awaiting it (the first fill) is no sample
    agt_depth_assigned (d, now);
    P2C_CHECK (agt_depth_rtt_us (d) == 0);
    //  A result sent on a connection that then ended is never answered
    agt_depth_freed (d, now, true);
    agt_depth_reset (d);
    now += 100;
    agt_depth_assigned (d, now);
    P2C_CHECK (agt_depth_rtt_us (d) == 0);
    //  The ring keeps the newest when more results await than it holds
    for (int i = 0; i < S_RING + 10; i++)
        agt_depth_freed (d, now + i, true);
    agt_depth_assigned (d, now + S_RING + 10);
    P2C_CHECK (agt_depth_rtt_us (d) == S_RING);
    //  max bounds the depth of an endless round trip; zero tasks count as 1 us
    agt_depth_reset (d);
    s_feed (d, &now, 8, 0, 1000);
    P2C_CHECK (agt_depth_get (d, now, &changed) == 8 && changed);
    agt_depth_destroy (&d);
    //  A max below one is one
    d = agt_depth_new (0);
    s_feed (d, &now, 8, 1, 1000);
    P2C_CHECK (agt_depth_get (d, now, &changed) == 1 && !changed);
    agt_depth_destroy (&d);
}
