/*  The scheduler's indexed heap (see sch_heap.h). */
#include "sch_heap.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

struct _sch_heap_t {
    void **item;                //  the heap array (items not owned)
    size_t size;
    size_t cap;
    sch_heap_before_fn *before; //  the order
    size_t pos_offset;          //  of the place field inside an item
};

//  The place field of an item
static inline size_t *
s_pos (sch_heap_t *self, void *item)
{
    return (size_t *) ((char *) item + self->pos_offset);
}

sch_heap_t *
sch_heap_new (sch_heap_before_fn *before, size_t pos_offset)
{
    assert (before);
    sch_heap_t *self = (sch_heap_t *) p2c_calloc (1, sizeof (sch_heap_t));
    self->before = before;
    self->pos_offset = pos_offset;
    return self;
}

void
sch_heap_destroy (sch_heap_t **self_p)
{
    sch_heap_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->size; i++)
        *s_pos (self, self->item [i]) = SCH_HEAP_NONE;
    free (self->item);
    free (self);
    *self_p = NULL;
}

size_t
sch_heap_size (sch_heap_t *self)
{
    return self->size;
}

void *
sch_heap_top (sch_heap_t *self)
{
    return self->size ? self->item [0] : NULL;
}

void *
sch_heap_at (sch_heap_t *self, size_t pos)
{
    assert (pos < self->size);
    return self->item [pos];
}

static inline void
s_swap (sch_heap_t *self, size_t a, size_t b)
{
    void *t = self->item [a];
    self->item [a] = self->item [b];
    self->item [b] = t;
    *s_pos (self, self->item [a]) = a;
    *s_pos (self, self->item [b]) = b;
}

static void
s_up (sch_heap_t *self, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!self->before (self->item [i], self->item [parent]))
            break;
        s_swap (self, i, parent);
        i = parent;
    }
}

static void
s_down (sch_heap_t *self, size_t i)
{
    while (true) {
        size_t l = 2 * i + 1, r = l + 1, min = i;
        if (l < self->size && self->before (self->item [l], self->item [min]))
            min = l;
        if (r < self->size && self->before (self->item [r], self->item [min]))
            min = r;
        if (min == i)
            break;
        s_swap (self, i, min);
        i = min;
    }
}

void
sch_heap_update (sch_heap_t *self, void *item)
{
    size_t *pos = s_pos (self, item);
    if (*pos == SCH_HEAP_NONE) {
        if (self->size == self->cap) {
            size_t cap = self->cap ? self->cap * 2 : 64;
            void **grown = (void **) p2c_realloc (self->item, cap * sizeof (void *));
            self->item = grown;
            self->cap = cap;
        }
        *pos = self->size++;
        self->item [*pos] = item;
    }
    assert (*pos < self->size && self->item [*pos] == item);
    //  a key that went down moves up, one that went up moves down: only one
    //  of the two does anything
    s_up (self, *pos);
    s_down (self, *pos);
}

void
sch_heap_remove (sch_heap_t *self, void *item)
{
    size_t *pos = s_pos (self, item);
    size_t i = *pos;
    if (i == SCH_HEAP_NONE)
        return;
    assert (i < self->size && self->item [i] == item);
    size_t last = --self->size;
    if (i != last) {
        self->item [i] = self->item [last];
        *s_pos (self, self->item [i]) = i;
        s_down (self, i);
        s_up (self, i);
    }
    *pos = SCH_HEAP_NONE;
}

//  --------------------------------------------------------------------------
//  Self-test

typedef struct {
    int64_t key;
    size_t pos;
} s_item_t;

static bool
s_item_before (const void *a, const void *b)
{
    return ((const s_item_t *) a)->key < ((const s_item_t *) b)->key;
}

void
sch_heap_test (bool verbose)
{
    (void) verbose;
    sch_heap_t *heap = sch_heap_new (s_item_before, offsetof (s_item_t, pos));
    P2C_CHECK (heap && sch_heap_size (heap) == 0 && sch_heap_top (heap) == NULL);
    enum { N = 300 };
    s_item_t items [N];
    for (int i = 0; i < N; i++) {
        items [i].key = (i * 101) % N;              //  a permutation of 0..N-1
        items [i].pos = SCH_HEAP_NONE;
        sch_heap_update (heap, &items [i]);
    }
    P2C_CHECK (sch_heap_size (heap) == N);
    s_item_t *top = (s_item_t *) sch_heap_top (heap);
    P2C_CHECK (top && top->key == 0 && top->pos == 0 && sch_heap_at (heap, 0) == top);
    //  every item knows its place
    bool placed = true;
    for (int i = 0; i < N; i++)
        placed = placed && items [i].pos < N && sch_heap_at (heap, items [i].pos) == &items [i];
    P2C_CHECK (placed);
    //  re-keying moves an item both ways
    top->key = 1000;
    sch_heap_update (heap, top);
    P2C_CHECK (((s_item_t *) sch_heap_top (heap))->key == 1);
    top->key = -1;
    sch_heap_update (heap, top);
    P2C_CHECK (sch_heap_top (heap) == top);
    //  removal, twice is nothing
    sch_heap_remove (heap, top);
    sch_heap_remove (heap, top);
    P2C_CHECK (top->pos == SCH_HEAP_NONE && sch_heap_size (heap) == N - 1);
    //  taking a middle item out keeps the order; popping gives ascending keys
    s_item_t *mid = &items [N / 2];
    sch_heap_remove (heap, mid);
    int64_t prev = -1;
    bool ordered = true;
    size_t popped = 0;
    s_item_t *t;
    while ((t = (s_item_t *) sch_heap_top (heap))) {
        ordered = ordered && t->key > prev;
        prev = t->key;
        sch_heap_remove (heap, t);
        popped++;
    }
    P2C_CHECK (ordered && popped == N - 2 && prev == N - 1);
    //  destroy marks what is still in as out
    s_item_t a = { 5, SCH_HEAP_NONE };
    sch_heap_update (heap, &a);
    P2C_CHECK (a.pos == 0);
    sch_heap_destroy (&heap);
    P2C_CHECK (heap == NULL && a.pos == SCH_HEAP_NONE);
    sch_heap_destroy (&heap);
}
