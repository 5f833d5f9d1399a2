/*  The per-type peer index of the scheduler (see sch_index.h). */
#include "sch_index.h"
#include "p2c_test.h"

#include <assert.h>
#include <stdlib.h>

struct _sch_index_t {
    sch_index_entry_t **heap;   //  min-heap of entries (not owned)
    size_t size;
    size_t cap;
};

sch_index_t *
sch_index_new (void)
{
    sch_index_t *self = (sch_index_t *) calloc (1, sizeof (sch_index_t));
    return self;
}

void
sch_index_destroy (sch_index_t **self_p)
{
    sch_index_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->size; i++)
        self->heap [i]->pos = SCH_INDEX_NONE;
    free (self->heap);
    free (self);
    *self_p = NULL;
}

size_t
sch_index_size (sch_index_t *self)
{
    return self->size;
}

//  True when a goes before b: lower score, then more free slots, then the
//  one assigned least recently (spreads work over equal peers).
static bool
s_before (const sch_index_entry_t *a, const sch_index_entry_t *b)
{
    if (a->score != b->score)
        return a->score < b->score;
    if (a->free != b->free)
        return a->free > b->free;
    return a->last < b->last;
}

static void
s_swap (sch_index_t *self, size_t a, size_t b)
{
    sch_index_entry_t *t = self->heap [a];
    self->heap [a] = self->heap [b];
    self->heap [b] = t;
    self->heap [a]->pos = a;
    self->heap [b]->pos = b;
}

static void
s_up (sch_index_t *self, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!s_before (self->heap [i], self->heap [parent]))
            break;
        s_swap (self, i, parent);
        i = parent;
    }
}

static void
s_down (sch_index_t *self, size_t i)
{
    while (true) {
        size_t l = 2 * i + 1, r = l + 1, min = i;
        if (l < self->size && s_before (self->heap [l], self->heap [min]))
            min = l;
        if (r < self->size && s_before (self->heap [r], self->heap [min]))
            min = r;
        if (min == i)
            break;
        s_swap (self, i, min);
        i = min;
    }
}

void
sch_index_update (sch_index_t *self, sch_index_entry_t *entry)
{
    if (entry->pos == SCH_INDEX_NONE) {
        if (self->size == self->cap) {
            size_t cap = self->cap ? self->cap * 2 : 64;
            sch_index_entry_t **heap = (sch_index_entry_t **) realloc (self->heap,
                                                            cap * sizeof (*heap));
            assert (heap);
            self->heap = heap;
            self->cap = cap;
        }
        entry->pos = self->size++;
        self->heap [entry->pos] = entry;
    }
    assert (entry->pos < self->size && self->heap [entry->pos] == entry);
    s_up (self, entry->pos);
    s_down (self, entry->pos);
}

void
sch_index_remove (sch_index_t *self, sch_index_entry_t *entry)
{
    size_t i = entry->pos;
    if (i == SCH_INDEX_NONE)
        return;
    assert (i < self->size && self->heap [i] == entry);
    size_t last = --self->size;
    if (i != last) {
        self->heap [i] = self->heap [last];
        self->heap [i]->pos = i;
        s_down (self, i);
        s_up (self, i);
    }
    entry->pos = SCH_INDEX_NONE;
}

//  Best-first walk of the heap: a small frontier of heap positions, the
//  best of which is looked at next; its children join the frontier.
sch_index_entry_t *
sch_index_best (sch_index_t *self, sch_index_pred_fn *pred, void *arg, size_t max_visits)
{
    if (!self->size)
        return NULL;
    if (!pred)
        return self->heap [0];
    enum { FRONTIER = 256 };
    size_t frontier [FRONTIER];
    size_t n = 0;
    frontier [n++] = 0;
    for (size_t visits = 0; n && visits < max_visits; visits++) {
        size_t best = 0;
        for (size_t k = 1; k < n; k++)
            if (s_before (self->heap [frontier [k]], self->heap [frontier [best]]))
                best = k;
        size_t i = frontier [best];
        frontier [best] = frontier [--n];
        if (pred (arg, self->heap [i]))
            return self->heap [i];
        for (size_t c = 2 * i + 1; c <= 2 * i + 2 && c < self->size; c++)
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
