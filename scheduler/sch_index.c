/*  The per-type peer index of the scheduler (see sch_index.h). */
#include "sch_index.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>

struct _sch_index_t {
    sch_heap_t *heap;           //  of entries (not owned), best first
};

//  True when a goes before b: lower score, then more free slots, then the
//  one assigned least recently (spreads work over equal peers).
static inline bool
s_before (const sch_index_entry_t *a, const sch_index_entry_t *b)
{
    if (a->score != b->score)
        return a->score < b->score;
    if (a->free != b->free)
        return a->free > b->free;
    return a->last < b->last;
}

static bool
s_heap_before (const void *a, const void *b)
{
    return s_before ((const sch_index_entry_t *) a, (const sch_index_entry_t *) b);
}

sch_index_t *
sch_index_new (void)
{
    sch_index_t *self = (sch_index_t *) p2c_calloc (1, sizeof (sch_index_t));
    self->heap = sch_heap_new (s_heap_before, offsetof (sch_index_entry_t, pos));
    return self;
}

void
sch_index_destroy (sch_index_t **self_p)
{
    sch_index_t *self = *self_p;
    if (!self)
        return;
    sch_heap_destroy (&self->heap);     //  marks the entries out
    free (self);
    *self_p = NULL;
}

size_t
sch_index_size (sch_index_t *self)
{
    return sch_heap_size (self->heap);
}

void
sch_index_update (sch_index_t *self, sch_index_entry_t *entry)
{
    sch_heap_update (self->heap, entry);
}

void
sch_index_remove (sch_index_t *self, sch_index_entry_t *entry)
{
    sch_heap_remove (self->heap, entry);
}

//  Best-first walk of the heap: a small frontier of heap positions, the
//  best of which is looked at next; its children join the frontier.
sch_index_entry_t *
sch_index_best (sch_index_t *self, sch_index_pred_fn *pred, void *arg, size_t max_visits)
{
    size_t size = sch_heap_size (self->heap);
    if (!size)
        return NULL;
    if (!pred)
        return (sch_index_entry_t *) sch_heap_top (self->heap);
    enum { FRONTIER = 256 };
    size_t frontier [FRONTIER];
    size_t n = 0;
    frontier [n++] = 0;
    for (size_t visits = 0; n && visits < max_visits; visits++) {
        size_t best = 0;
        for (size_t k = 1; k < n; k++)
            if (s_before ((sch_index_entry_t *) sch_heap_at (self->heap, frontier [k]),
                          (sch_index_entry_t *) sch_heap_at (self->heap, frontier [best])))
                best = k;
        size_t i = frontier [best];
        frontier [best] = frontier [--n];
        sch_index_entry_t *entry = (sch_index_entry_t *) sch_heap_at (self->heap, i);
        if (pred (arg, entry))
            return entry;
        for (size_t c = 2 * i + 1; c <= 2 * i + 2 && c < size; c++)
            if (n < FRONTIER)
                frontier [n++] = c;
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Self-test

static bool
s_not_item (void *arg, const sch_index_entry_t *entry)
{
    return entry->item != arg;
}

void
sch_index_test (bool verbose)
{
    (void) verbose;
    sch_index_t *index = sch_index_new ();
    P2C_CHECK (index && sch_index_best (index, NULL, NULL, 10) == NULL);
    enum { N = 200 };
    sch_index_entry_t e [N];
    int items [N];
    for (int i = 0; i < N; i++) {
        e [i].item = &items [i];
        e [i].score = (double) ((i * 37) % N);     //  a permutation of 0..N-1
        e [i].free = 1;
        e [i].last = 0;
        e [i].pos = SCH_INDEX_NONE;
        sch_index_update (index, &e [i]);
    }
    P2C_CHECK (sch_index_size (index) == N);
    sch_index_entry_t *top = sch_index_best (index, NULL, NULL, 1);
    P2C_CHECK (top && top->score == 0);
    //  the best one but the top, through the predicate
    sch_index_entry_t *second = sch_index_best (index, s_not_item, top->item, 8);
    P2C_CHECK (second && second->score == 1);
    //  re-keying moves an entry
    top->score = 500;
    sch_index_update (index, top);
    P2C_CHECK (sch_index_best (index, NULL, NULL, 1)->score == 1);
    //  removal keeps the order; popping all gives ascending scores
    sch_index_remove (index, top);
    sch_index_remove (index, top);
    P2C_CHECK (top->pos == SCH_INDEX_NONE && sch_index_size (index) == N - 1);
    double prev = -1;
    bool ordered = true;
    while (sch_index_size (index)) {
        sch_index_entry_t *t = sch_index_best (index, NULL, NULL, 1);
        if (t->score < prev)
            ordered = false;
        prev = t->score;
        sch_index_remove (index, t);
    }
    P2C_CHECK (ordered && prev == N - 1);
    //  ties: more free slots first, then the least recently assigned
    sch_index_entry_t a = { &items [0], 5, 1, 9, SCH_INDEX_NONE };
    sch_index_entry_t b = { &items [1], 5, 2, 9, SCH_INDEX_NONE };
    sch_index_entry_t c = { &items [2], 5, 2, 3, SCH_INDEX_NONE };
    sch_index_update (index, &a);
    sch_index_update (index, &b);
    sch_index_update (index, &c);
    P2C_CHECK (sch_index_best (index, NULL, NULL, 1) == &c);
    //  a bounded walk gives up
    P2C_CHECK (sch_index_best (index, s_not_item, &items [2], 1) == NULL);
    P2C_CHECK (sch_index_best (index, s_not_item, &items [2], 3) == &b);
    sch_index_destroy (&index);
    P2C_CHECK (index == NULL);
    P2C_CHECK (a.pos == SCH_INDEX_NONE);
}
