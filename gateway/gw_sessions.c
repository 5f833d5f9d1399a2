/*  Live sessions by connection number (see gw_sessions.h). */
#include "gw_sessions.h"
#include "p2c_test.h"

struct _gw_sessions_t {
    zhashx_t *by_conn;          //  "%llx" of conn -> gw_session_t (owned)
    uint64_t last_conn;         //  last number handed out
};

static void
s_session_destructor (void **item)
{
    gw_session_destroy ((gw_session_t **) item);
}

static void
s_key (uint64_t conn, char *key, size_t size)
{
    snprintf (key, size, "%llx", (unsigned long long) conn);
}

gw_sessions_t *
gw_sessions_new (void)
{
    gw_sessions_t *self = (gw_sessions_t *) zmalloc (sizeof (gw_sessions_t));
    self->by_conn = zhashx_new ();
    zhashx_set_destructor (self->by_conn, s_session_destructor);
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
    char key [24];
    s_key (s->conn, key, sizeof key);
    if (zhashx_insert (self->by_conn, key, s) != 0) {
        gw_session_destroy (&s);
        return NULL;
    }
    return s;
}

gw_session_t *
gw_sessions_lookup (gw_sessions_t *self, uint64_t conn)
{
    char key [24];
    s_key (conn, key, sizeof key);
    return (gw_session_t *) zhashx_lookup (self->by_conn, key);
}

void
gw_sessions_remove (gw_sessions_t *self, uint64_t conn)
{
    char key [24];
    s_key (conn, key, sizeof key);
    zhashx_delete (self->by_conn, key);
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
