/*  The catalogue of task types (PROTOCOL.md): canonical names, the original
    demo's aliases, and the per-type ceiling on billed time. */
#ifndef P2C_TASKS_H_INCLUDED
#define P2C_TASKS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *name;           //  canonical name
    const char *alias;          //  the demo's name, or NULL
    uint64_t max_billed_us;     //  ceiling on billed compute time per task
} p2c_task_type_t;

//  The canonical name for a name or alias; NULL when unknown.
const char *p2c_task_canonical (const char *name);

//  The entry of a canonical name; NULL when unknown.
const p2c_task_type_t *p2c_task_type (const char *canonical);

//  The whole catalogue, terminated by an entry with name NULL.
const p2c_task_type_t *p2c_task_types (void);

void p2c_tasks_test (bool verbose);

#endif
