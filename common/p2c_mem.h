/*  The one out-of-memory rule of the server processes (docs/internals.md).
    An allocation a process cannot go on without (its own tables, queues,
    copies of ids, replies) that fails ends the process: p2c_oom logs
    "out of memory what=WHERE" and aborts, so the supervisor restarts it
    (as czmq's zmalloc does). Never assert on an allocation (asserts are for
    our mistakes, and vanish under NDEBUG), never answer a peer with an
    error for our own memory. The one exception: an allocation whose size
    the input chose (a frame being reassembled, a kernel's buffers), which a
    budget already bounds, is refused as that input's error. The client
    library (lib/) never aborts the game that links it: it returns errors.
    p2c_malloc and the others below never return NULL. */
#ifndef P2C_MEM_H_INCLUDED
#define P2C_MEM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Logs "out of memory what=WHAT" and aborts
void p2c_oom (const char *what) __attribute__ ((noreturn));

//  malloc, calloc, realloc, strdup and strndup that end in p2c_oom, which
//  names the file and line of the call
#define p2c_malloc(size)        p2c_malloc_at ((size), __FILE__, __LINE__)
#define p2c_calloc(n, size)     p2c_calloc_at ((n), (size), __FILE__, __LINE__)
#define p2c_realloc(ptr, size)  p2c_realloc_at ((ptr), (size), __FILE__, __LINE__)
#define p2c_strdup(s)           p2c_strndup_at ((s), (size_t) -1, __FILE__, __LINE__)
#define p2c_strndup(s, n)       p2c_strndup_at ((s), (n), __FILE__, __LINE__)
//  A formatted string (as zsys_sprintf, which may return NULL), the caller's
//  to free
#define p2c_sprintf(...)        p2c_sprintf_at (__FILE__, __LINE__, __VA_ARGS__)

void *p2c_malloc_at (size_t size, const char *file, int line);
void *p2c_calloc_at (size_t n, size_t size, const char *file, int line);
void *p2c_realloc_at (void *ptr, size_t size, const char *file, int line);
char *p2c_strndup_at (const char *s, size_t n, const char *file, int line);
char *p2c_sprintf_at (const char *file, int line, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

void p2c_mem_test (bool verbose);

#endif
