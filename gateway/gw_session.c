/*  A client connection's state and send queue (see gw_session.h). */
#include "gw_session.h"
#include "p2c_mem.h"
#include "p2c_test.h"

void
gw_outframe_destroy (gw_outframe_t **self_p)
{
    gw_outframe_t *self = *self_p;
    if (!self)
        return;
    free (self->buf);
    free (self);
    *self_p = NULL;
}

static void
s_outframe_destructor (void **item)
{
    gw_outframe_destroy ((gw_outframe_t **) item);
}

gw_session_t *
gw_session_new (uint64_t conn, struct lws *wsi, size_t max_frame, size_t outq_max,
                size_t outq_max_bytes)
{
    gw_session_t *self = (gw_session_t *) zmalloc (sizeof (gw_session_t));
    self->conn = conn;
    self->wsi = wsi;
    self->state = GW_STATE_NEW;
    self->role = GW_ROLE_NONE;
    self->rx = p2c_frame_new (max_frame);
    self->outq = zlistx_new ();
    zlistx_set_destructor (self->outq, s_outframe_destructor);
    self->outq_max = outq_max;
    self->outq_max_bytes = outq_max_bytes;
    self->assigned = zhashx_new ();
    if (!self->rx) {
        gw_session_destroy (&self);
        return NULL;
    }
    return self;
}

void
gw_session_destroy (gw_session_t **self_p)
{
    gw_session_t *self = *self_p;
    if (!self)
        return;
    free (self->name);
    free (self->owner);
    p2c_msg_client_free (&self->reg);
    p2c_frame_destroy (&self->rx);
    zlistx_destroy (&self->outq);
    zhashx_destroy (&self->assigned);
    free (self);
    *self_p = NULL;
}

int
gw_session_queue (gw_session_t *self, uint8_t **buf_p, size_t pre, size_t len, bool binary)
{
    //  One frame always fits an empty queue, so a single big reply (up to
    //  the frame limit) is never refused for its size alone
    if (zlistx_size (self->outq) >= self->outq_max
        || (zlistx_size (self->outq) > 0 && self->outq_bytes + len > self->outq_max_bytes)) {
        free (*buf_p);
        *buf_p = NULL;
        return -1;
    }
    gw_outframe_t *f = (gw_outframe_t *) zmalloc (sizeof (gw_outframe_t));
    f->buf = *buf_p;
    f->pre = pre;
    f->len = len;
    f->binary = binary;
    *buf_p = NULL;
    zlistx_add_end (self->outq, f);
    self->outq_bytes += len;
    return 0;
}

gw_outframe_t *
gw_session_pop (gw_session_t *self)
{
    gw_outframe_t *f = (gw_outframe_t *) zlistx_first (self->outq);
    if (!f)
        return NULL;
    //  Detach without destroying: the caller owns the frame now
    zlistx_detach_cur (self->outq);
    self->outq_bytes -= f->len;
    return f;
}

size_t
gw_session_queued (gw_session_t *self)
{
    return zlistx_size (self->outq);
}

size_t
gw_ws_header (uint8_t *out, size_t len, bool binary)
{
    //  RFC 6455 5.2: FIN and the opcode, then the shortest length form
    out [0] = 0x80 | (binary ? 0x2 : 0x1);
    if (len < 126) {
        out [1] = (uint8_t) len;
        return 2;
    }
    if (len <= 0xffff) {
        out [1] = 126;
        out [2] = (uint8_t) (len >> 8);
        out [3] = (uint8_t) len;
        return 4;
    }
    out [1] = 127;
    for (int i = 0; i < 8; i++)
        out [2 + i] = (uint8_t) ((uint64_t) len >> (56 - 8 * i));
    return 10;
}

size_t
gw_session_take_batch (gw_session_t *self, uint8_t **buf_p, size_t *size_p, size_t pre,
                       size_t cap)
{
    size_t used = 0;
    gw_outframe_t *f;
    while ((f = (gw_outframe_t *) zlistx_first (self->outq))) {
        size_t need = used + 10 + f->len;
        if (need > cap)
            break;
        if (pre + need > *size_p) {
            uint8_t *buf = (uint8_t *) realloc (*buf_p, pre + need);
            if (!buf)
                break;
            *buf_p = buf;
            *size_p = pre + need;
        }
        uint8_t *at = *buf_p + pre + used;
        size_t hlen = gw_ws_header (at, f->len, f->binary);
        memcpy (at + hlen, f->buf + f->pre, f->len);
        used += hlen + f->len;
        f = gw_session_pop (self);
        gw_outframe_destroy (&f);
    }
    return used;
}

void
gw_session_clear (gw_session_t *self)
{
    zlistx_purge (self->outq);
    self->outq_bytes = 0;
}

void
gw_session_assigned_add (gw_session_t *self, const char *task_id, uint32_t attempt)
{
    //  A peer that never answers must not grow this without bound: its
    //  oldest knowledge is dropped (its late results then carry attempt 0,
    //  which the scheduler treats as stale)
    if (zhashx_size (self->assigned) >= GW_SESSION_MAX_ASSIGNED)
        zhashx_purge (self->assigned);
    zhashx_update (self->assigned, task_id, (void *) (uintptr_t) ((uintptr_t) attempt + 1));
}

bool
gw_session_assigned_take (gw_session_t *self, const char *task_id, uint32_t *attempt_p)
{
    uintptr_t v = (uintptr_t) zhashx_lookup (self->assigned, task_id);
    if (!v)
        return false;
    zhashx_delete (self->assigned, task_id);
    *attempt_p = (uint32_t) (v - 1);
    return true;
}

size_t
gw_session_assigned (gw_session_t *self)
{
    return zhashx_size (self->assigned);
}

void
gw_session_close (gw_session_t *self, int code, const char *reason)
{
    if (self->closing)
        return;
    self->closing = true;
    self->close_code = code;
    snprintf (self->close_reason, sizeof self->close_reason, "%s", reason);
}

const char *
gw_role_name (gw_role_t role)
{
    return role == GW_ROLE_PEER ? "peer" : role == GW_ROLE_GAMER ? "gamer" : "none";
}

static uint8_t *
s_buf (const char *text, size_t pre)
{
    size_t len = strlen (text);
    uint8_t *buf = (uint8_t *) p2c_malloc (pre + len);
    memcpy (buf + pre, text, len);
    return buf;
}

void
gw_session_test (bool verbose)
{
    (void) verbose;
    gw_session_t *s = gw_session_new (5, NULL, 1024, 3, 100);
    P2C_CHECK (s && s->conn == 5 && s->state == GW_STATE_NEW && s->role == GW_ROLE_NONE);
    P2C_CHECK (gw_session_queued (s) == 0);
    P2C_CHECK (gw_session_pop (s) == NULL);

    //  Frames come out in the order they went in, with their framing
    uint8_t *b = s_buf ("one", 16);
    P2C_CHECK (gw_session_queue (s, &b, 16, 3, true) == 0 && b == NULL);
    b = s_buf ("two", 16);
    P2C_CHECK (gw_session_queue (s, &b, 16, 3, false) == 0);
    b = s_buf ("three", 16);
    P2C_CHECK (gw_session_queue (s, &b, 16, 5, true) == 0);
    //  The frame bound: a fourth is refused and its buffer freed
    b = s_buf ("four", 16);
    P2C_CHECK (gw_session_queue (s, &b, 16, 4, true) == -1 && b == NULL);
    P2C_CHECK (gw_session_queued (s) == 3);

    gw_outframe_t *f = gw_session_pop (s);
    P2C_CHECK (f && f->len == 3 && f->binary && !memcmp (f->buf + f->pre, "one", 3));
    gw_outframe_destroy (&f);
    f = gw_session_pop (s);
    P2C_CHECK (f && !f->binary && !memcmp (f->buf + f->pre, "two", 3));
    gw_outframe_destroy (&f);
    P2C_CHECK (f == NULL);
    P2C_CHECK (gw_session_queued (s) == 1);
    f = gw_session_pop (s);
    gw_outframe_destroy (&f);

    //  The byte bound: a big frame fits an empty queue, but nothing fits
    //  after it until it is written
    b = (uint8_t *) p2c_calloc (1, 16 + 500);
    P2C_CHECK (gw_session_queue (s, &b, 16, 500, true) == 0);
    b = s_buf ("x", 16);
    P2C_CHECK (gw_session_queue (s, &b, 16, 1, true) == -1);
    f = gw_session_pop (s);
    P2C_CHECK (f && f->len == 500);
    gw_outframe_destroy (&f);
    b = s_buf ("x", 16);
    P2C_CHECK (gw_session_queue (s, &b, 16, 1, true) == 0);

    //  A batch is the queued frames as WebSocket frames, oldest first,
    //  as many as fit the cap
    gw_session_clear (s);
    b = s_buf ("ab", 16);
    P2C_CHECK (gw_session_queue (s, &b, 16, 2, true) == 0);
    b = s_buf ("cde", 16);
    P2C_CHECK (gw_session_queue (s, &b, 16, 3, false) == 0);
    uint8_t *batch = NULL;
    size_t bsize = 0;
    size_t blen = gw_session_take_batch (s, &batch, &bsize, 4, 1024);
    const uint8_t want [] = { 0x82, 2, 'a', 'b', 0x81, 3, 'c', 'd', 'e' };
    P2C_CHECK (blen == sizeof want && bsize >= 4 + blen && !memcmp (batch + 4, want, blen));
    P2C_CHECK (gw_session_queued (s) == 0 && s->outq_bytes == 0);
    P2C_CHECK (gw_session_take_batch (s, &batch, &bsize, 4, 1024) == 0);
    b = s_buf ("fg", 16);
    gw_session_queue (s, &b, 16, 2, true);
    b = s_buf ("hi", 16);
    gw_session_queue (s, &b, 16, 2, true);
    P2C_CHECK (gw_session_take_batch (s, &batch, &bsize, 4, 12) == 4);
    P2C_CHECK (gw_session_queued (s) == 1);
    //  A first frame bigger than the cap is left for a write of its own
    P2C_CHECK (gw_session_take_batch (s, &batch, &bsize, 4, 11) == 0);
    P2C_CHECK (gw_session_queued (s) == 1);
    P2C_CHECK (gw_session_take_batch (s, &batch, &bsize, 4, 12) == 4
               && !memcmp (batch + 4, "\x82\x02hi", 4));
    free (batch);
    //  The three length forms
    uint8_t h [10];
    P2C_CHECK (gw_ws_header (h, 125, false) == 2 && h [0] == 0x81 && h [1] == 125);
    P2C_CHECK (gw_ws_header (h, 126, true) == 4 && h [1] == 126 && h [2] == 0 && h [3] == 126);
    P2C_CHECK (gw_ws_header (h, 65535, true) == 4 && h [2] == 0xff && h [3] == 0xff);
    P2C_CHECK (gw_ws_header (h, 65536, true) == 10 && h [1] == 127 && h [7] == 1 && h [9] == 0);
    b = s_buf ("x", 16);
    P2C_CHECK (gw_session_queue (s, &b, 16, 1, true) == 0);

    //  Close keeps the first reason
    P2C_CHECK (!s->closing);
    gw_session_close (s, 1008, "too many bad frames");
    gw_session_close (s, 1000, "later");
    P2C_CHECK (s->closing && s->close_code == 1008
               && !strcmp (s->close_reason, "too many bad frames"));

    //  Attempts of assigned tasks, for peers that do not echo them
    uint32_t att = 99;
    gw_session_assigned_add (s, "t1", 0);
    gw_session_assigned_add (s, "t2", 3);
    gw_session_assigned_add (s, "t2", 4);
    P2C_CHECK (gw_session_assigned (s) == 2);
    P2C_CHECK (gw_session_assigned_take (s, "t1", &att) && att == 0);
    P2C_CHECK (gw_session_assigned_take (s, "t2", &att) && att == 4);
    P2C_CHECK (!gw_session_assigned_take (s, "t2", &att) && gw_session_assigned (s) == 0);
    //  The queue can be emptied at once
    b = s_buf ("y", 16);
    P2C_CHECK (gw_session_queue (s, &b, 16, 1, true) == 0 && gw_session_queued (s) == 2);
    gw_session_clear (s);
    P2C_CHECK (gw_session_queued (s) == 0 && s->outq_bytes == 0);

    P2C_CHECK (!strcmp (gw_role_name (GW_ROLE_PEER), "peer"));
    P2C_CHECK (!strcmp (gw_role_name (GW_ROLE_GAMER), "gamer"));

    //  Destroy frees what is still queued
    gw_session_destroy (&s);
    P2C_CHECK (s == NULL);
    gw_session_destroy (&s);
}
