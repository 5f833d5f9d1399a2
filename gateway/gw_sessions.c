/*  Live sessions by connection number (see gw_sessions.h). */
#include "gw_sessions.h"
#include "p2c_test.h"

//  Keyed by the number itself (as a pointer-sized integer, never 0):
//  every delivered reply and assigned task looks its session up, and a
//  formatted string key cost a snprintf and a string hash each time
struct _gw_sessions_t {
    zhashx_t *by_conn;          //  conn -> gw_session_t (owned)
    uint64_t last_conn;         //  last number handed out
};

static void
s_session_destructor (void **item)
{
    gw_session_destroy ((gw_session_t **) item);
}

static size_t
s_hash (const void *key)
{
    //  Numbers are sequential: spread them (Fibonacci hashing)
    return (size_t) (((uint64_t) (uintptr_t) key * 0x9E3779B97F4A7C15ULL) >> 16);
}

static int
s_compare (const void *a, const void *b)
{
    return a == b ? 0 : (uintptr_t) a < (uintptr_t) b ? -1 : 1;
}

static void *
s_key (uint64_t conn)
{
    return (void *) (uintptr_t) conn;
}

gw_sessions_t *
gw_sessions_new (void)
{
    gw_sessions_t *self = (gw_sessions_t *) zmalloc (sizeof (gw_sessions_t));
    self->by_conn = zhashx_new ();
    zhashx_set_destructor (self->by_conn, s_session_destructor);
    zhashx_set_key_hasher (self->by_conn, s_hash);
    zhashx_set_key_comparator (self->by_conn, s_compare);
    zhashx_set_key_duplicator (self->by_conn, NULL);
    zhashx_set_key_destructor (self->by_conn, NULL);
    return self;
}

void
gw_sessions_destroy (gw_sessions_t **self_p)
{
    gw_sessions_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->by_conn);
    free (self);
    *self_p = NULL;
}

uint64_t
gw_sessions_next_conn (gw_sessions_t *self)
{
    return ++self->last_conn;
}

gw_session_t *
gw_sessions_insert (gw_sessions_t *self, gw_session_t **session_p)
{
    gw_session_t *s = *session_p;
    *session_p = NULL;
    if (s->conn == 0 || zhashx_insert (self->by_conn, s_key (s->conn), s) != 0) {
        gw_session_destroy (&s);
        return NULL;
    }
    return s;
}

gw_session_t *
gw_sessions_lookup (gw_sessions_t *self, uint64_t conn)
{
    return (gw_session_t *) zhashx_lookup (self->by_conn, s_key (conn));
}

void
gw_sessions_remove (gw_sessions_t *self, uint64_t conn)
{
    zhashx_delete (self->by_conn, s_key (conn));
}

size_t
gw_sessions_size (gw_sessions_t *self)
{
    return zhashx_size (self->by_conn);
}

zlistx_t *
gw_sessions_list (gw_sessions_t *self)
{
    zlistx_t *list = zlistx_new ();
    for (gw_session_t *s = (gw_session_t *) zhashx_first (self->by_conn); s;
         s = (gw_session_t *) zhashx_next (self->by_conn))
        zlistx_add_end (list, s);
    return list;
}

void
gw_sessions_test (bool verbose)
{
    (void) verbose;
    gw_sessions_t *t = gw_sessions_new ();
    //  Numbers start at 1 and only grow, even after removals
    uint64_t c1 = gw_sessions_next_conn (t);
    uint64_t c2 = gw_sessions_next_conn (t);
    P2C_CHECK (c1 == 1 && c2 == 2);

    gw_session_t *s = gw_session_new (c1, NULL, 1024, 8, 1024);
    gw_session_t *got = gw_sessions_insert (t, &s);
    P2C_CHECK (got && s == NULL && got->conn == c1);
    s = gw_session_new (c2, NULL, 1024, 8, 1024);
    gw_sessions_insert (t, &s);
    P2C_CHECK (gw_sessions_size (t) == 2);
    P2C_CHECK (gw_sessions_lookup (t, c1) == got);
    P2C_CHECK (gw_sessions_lookup (t, c2) && gw_sessions_lookup (t, c2)->conn == c2);
    P2C_CHECK (gw_sessions_lookup (t, 99) == NULL);

    //  A duplicate number is refused (and the duplicate freed)
    s = gw_session_new (c1, NULL, 1024, 8, 1024);
    P2C_CHECK (gw_sessions_insert (t, &s) == NULL && s == NULL);
    P2C_CHECK (gw_sessions_lookup (t, c1) == got);

    //  Removing closes the number for good: it is not handed out again
    gw_sessions_remove (t, c1);
    P2C_CHECK (gw_sessions_lookup (t, c1) == NULL);
    P2C_CHECK (gw_sessions_size (t) == 1);
    bool fresh = true;
    for (int i = 0; i < 1000; i++) {
        uint64_t c = gw_sessions_next_conn (t);
        if (c == c1 || c == c2)
            fresh = false;
    }
    P2C_CHECK (fresh);

    //  The snapshot survives removing what it lists
    for (int i = 0; i < 10; i++) {
        s = gw_session_new (gw_sessions_next_conn (t), NULL, 1024, 8, 1024);
        gw_sessions_insert (t, &s);
    }
    zlistx_t *list = gw_sessions_list (t);
    P2C_CHECK (zlistx_size (list) == 11);
    size_t walked = 0;
    for (gw_session_t *x = (gw_session_t *) zlistx_first (list); x;
         x = (gw_session_t *) zlistx_next (list)) {
        walked++;
        gw_sessions_remove (t, x->conn);
    }
    zlistx_destroy (&list);
    P2C_CHECK (walked == 11 && gw_sessions_size (t) == 0);

    gw_sessions_destroy (&t);
    P2C_CHECK (t == NULL);
    gw_sessions_destroy (&t);
}
