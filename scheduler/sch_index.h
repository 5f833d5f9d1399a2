/*  A peer index for one task type (and optionally one region): an indexed
    binary min-heap of the peers that have a free slot, ordered by expected
    finish time. The scheduler picks the top in O(1) and re-keys a peer in
    O(log n) when its load or speed changes, so no assignment scans the
    peers (issue 6: 100,000 peers). Entries live inside the caller's peer
    struct; the index never owns them. The heap is sch_heap's. */
#ifndef SCH_INDEX_H_INCLUDED
#define SCH_INDEX_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sch_heap.h"

#define SCH_INDEX_NONE SCH_HEAP_NONE

//  One peer's place in one index. The caller fills the key fields and
//  calls sch_index_update after every change.
typedef struct {
    void *item;                 //  the caller's peer
    double score;               //  expected finish time, microseconds: lower first
    uint32_t free;              //  free slots: more first on equal score
    uint64_t last;              //  last assignment sequence: older first on ties
    size_t pos;                 //  place in the heap, SCH_INDEX_NONE when out
} sch_index_entry_t;

typedef struct _sch_index_t sch_index_t;

//  Returns true when the entry may be chosen.
typedef bool (sch_index_pred_fn) (void *arg, const sch_index_entry_t *entry);

sch_index_t *sch_index_new (void);
void sch_index_destroy (sch_index_t **self_p);

//  Puts the entry in (when out) or moves it to its place after a key change.
void sch_index_update (sch_index_t *self, sch_index_entry_t *entry);
//  Takes the entry out; nothing when it is out.
void sch_index_remove (sch_index_t *self, sch_index_entry_t *entry);
size_t sch_index_size (sch_index_t *self);

//  The best entry that pred accepts (pred NULL: the top), looking at no
//  more than max_visits entries in best-first order: the cost stays bounded
//  when many entries are refused. NULL when none was found.
sch_index_entry_t *sch_index_best (sch_index_t *self, sch_index_pred_fn *pred, void *arg,
                                   size_t max_visits);

void sch_index_test (bool verbose);

#endif
