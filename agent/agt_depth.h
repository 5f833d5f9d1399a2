/*  How many tasks a peer advertises per worker process when the owner did
    not fix it (--worker-queue 0, the default): enough to keep each worker
    busy while a result travels to the scheduler and the next task comes
    back, and no more. That is the bandwidth-delay product of the link:
    with a round trip of R between a result leaving and the next task
    arriving, and a task taking T on a worker, 1 + ceil (R / T) tasks per
    worker leave no gap. The agent measures both: T from its own workers
    (a moving average), R as the time from a result sent while every
    advertised place was taken (the scheduler had nowhere else to put our
    next task) to the next assignment, the shortest of the last 32: a
    pause, a lull in the work or a queue at the scheduler only add to it,
    and taking them for the link would queue tasks here past their time.
    A pure rule: no sockets, the clock passed in. */
#ifndef AGT_DEPTH_H_INCLUDED
#define AGT_DEPTH_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct _agt_depth_t agt_depth_t;

//  The most tasks per worker the agent adapts to (--worker-queue's bound)
#define AGT_DEPTH_MAX 16

//  A rule that starts at one task per worker and never goes above max
agt_depth_t *agt_depth_new (int max);
void agt_depth_destroy (agt_depth_t **self_p);

//  A task ran on a worker for task_us (start to reply)
void agt_depth_task (agt_depth_t *self, int64_t task_us);

//  A result left at now_us; full: the peer held as many tasks as it
//  advertised (running and waiting), so the next one it gets answers this
void agt_depth_freed (agt_depth_t *self, int64_t now_us, bool full);

//  An assignment arrived at now_us
void agt_depth_assigned (agt_depth_t *self, int64_t now_us);

//  The connection ended: results in flight will not be answered
void agt_depth_reset (agt_depth_t *self);

//  Tasks per worker to advertise now. It moves at most once a second and
//  only after 8 samples of each kind, so one slow task or a lull does not
//  swing it; *changed is set when it differs from the last answer.
int agt_depth_get (agt_depth_t *self, int64_t now_us, bool *changed);

//  The round trip and task time the rule holds (us, 0: not measured yet)
int64_t agt_depth_rtt_us (agt_depth_t *self);
int64_t agt_depth_task_us (agt_depth_t *self);

void agt_depth_test (bool verbose);

#endif
