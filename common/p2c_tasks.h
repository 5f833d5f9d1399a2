/*  The catalogue of task types (docs/protocol.md): canonical names, the
    original demo's aliases, the per-type ceiling on billed time, and the
    kernel versions the server knows, current first: a result of any other
    version is invalid. Only results of the current version enter the
    scheduler's result cache, and the cache key carries it, so that results
    of an older kernel are never served for the current one. The current
    version equals the agent's kernel version (agent/kernels/agt_kernels_list.h;
    test_kernels checks that they agree). */
#ifndef P2C_TASKS_H_INCLUDED
#define P2C_TASKS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;           //  canonical name
    const char *alias;          //  the demo's name, or NULL
    uint64_t max_billed_us;     //  ceiling on billed compute time per task
    const char *versions;       //  known kernel versions, comma-separated, current first
} p2c_task_type_t;

//  The canonical name for a name or alias; NULL when unknown.
const char *p2c_task_canonical (const char *name);

//  The entry of a canonical name; NULL when unknown.
const p2c_task_type_t *p2c_task_type (const char *canonical);

//  True when the server knows that kernel version of the type (canonical).
bool p2c_task_version_known (const p2c_task_type_t *type, const char *version);

//  The current kernel version of the type (the first it knows), into buf.
const char *p2c_task_version_current (const p2c_task_type_t *type, char *buf, size_t size);

//  The whole catalogue, terminated by an entry with name NULL.
const p2c_task_type_t *p2c_task_types (void);

void p2c_tasks_test (bool verbose);

#endif
