/*  Task id generator (see gw_taskid.h). */
#include "gw_taskid.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct _gw_taskid_t {
    char prefix [17];           //  16 hex digits, random per process
    uint64_t counter;           //  ids made so far
};

gw_taskid_t *
gw_taskid_new (void)
{
    uint8_t rnd [8];
    if (getrandom (rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
        return NULL;
    gw_taskid_t *self = (gw_taskid_t *) calloc (1, sizeof (gw_taskid_t));
    if (!self)
        return NULL;
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf (self->prefix + 2 * i, 3, "%02x", rnd [i]);
    return self;
}

void
gw_taskid_destroy (gw_taskid_t **self_p)
{
    if (*self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

char *
gw_taskid_next (gw_taskid_t *self)
{
    //  Starts at 1 so that no id ends in "-0", which reads like a default
    self->counter++;
    char *id = (char *) p2c_malloc (17 + 1 + 16 + 1);
    sprintf (id, "%s-%llx", self->prefix, (unsigned long long) self->counter);
    return id;
}

const char *
gw_taskid_prefix (gw_taskid_t *self)
{
    return self->prefix;
}

void
gw_taskid_test (bool verbose)
{
    (void) verbose;
    gw_taskid_t *a = gw_taskid_new ();
    gw_taskid_t *b = gw_taskid_new ();
    P2C_CHECK (a && b);
    if (!a || !b) {
        gw_taskid_destroy (&a);
        gw_taskid_destroy (&b);
        return;
    }
    //  The prefix is 16 lower-case hex digits, and two processes differ
    const char *p = gw_taskid_prefix (a);
    P2C_CHECK (strlen (p) == 16 && strspn (p, "0123456789abcdef") == 16);
    P2C_CHECK (strcmp (gw_taskid_prefix (a), gw_taskid_prefix (b)) != 0);

    char *first = gw_taskid_next (a);
    P2C_CHECK (first && strlen (first) == 18 && first [16] == '-'
               && !strncmp (first, p, 16) && !strcmp (first + 17, "1"));
    free (first);

    //  Many ids from one generator and some from another: all distinct,
    //  all of the documented shape
    zhashx_t *seen = zhashx_new ();
    const int n = 100000;
    bool all_unique = true, all_shaped = true;
    for (int i = 0; i < n; i++) {
        char *id = gw_taskid_next (i % 10 ? a : b);
        if (!id) {
            all_shaped = false;
            break;
        }
        if (id [16] != '-' || strspn (id + 17, "0123456789abcdef") != strlen (id + 17))
            all_shaped = false;
        if (zhashx_insert (seen, id, (void *) 1) != 0)
            all_unique = false;
        free (id);
    }
    P2C_CHECK (all_unique);
    P2C_CHECK (all_shaped);
    P2C_CHECK (zhashx_size (seen) == (size_t) n);
    zhashx_destroy (&seen);

    gw_taskid_destroy (&a);
    P2C_CHECK (a == NULL);
    gw_taskid_destroy (&a);
    gw_taskid_destroy (&b);
}
