/*  An indexed binary min-heap of the caller's items. Each item holds its own
    place in the heap (a size_t at a fixed offset inside it), so that an item
    is re-keyed or taken out in O(log n) without a search. The order is the
    caller's `before` function. The scheduler keeps two: the core's timers
    (tasks by the moment they need attention) and each peer index (sch_index:
    peers by expected finish time). The heap never owns its items. */
#ifndef SCH_HEAP_H_INCLUDED
#define SCH_HEAP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#define SCH_HEAP_NONE SIZE_MAX      //  the place of an item that is out

typedef struct _sch_heap_t sch_heap_t;

//  True when item a goes before item b (strictly)
typedef bool (sch_heap_before_fn) (const void *a, const void *b);

//  pos_offset: offsetof the item's size_t place field, which the caller
//  sets to SCH_HEAP_NONE before the item first goes in.
sch_heap_t *sch_heap_new (sch_heap_before_fn *before, size_t pos_offset);

//  Marks the items still in as out, then frees the heap.
void sch_heap_destroy (sch_heap_t **self_p);

//  Puts the item in (when out) or moves it to its place after a key change.
void sch_heap_update (sch_heap_t *self, void *item);

//  Takes the item out; nothing when it is out.
void sch_heap_remove (sch_heap_t *self, void *item);

//  The first item, NULL when empty.
void *sch_heap_top (sch_heap_t *self);

size_t sch_heap_size (sch_heap_t *self);

//  The item at a place (0 the top; the children of i are 2i+1 and 2i+2),
//  for walks in best-first order such as sch_index_best.
void *sch_heap_at (sch_heap_t *self, size_t pos);

void sch_heap_test (bool verbose);

#endif
