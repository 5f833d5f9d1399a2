/*  WebSocket message reassembly with a size limit (see p2c_frame.h). */
#include "p2c_frame.h"
#include "p2c_test.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct _p2c_frame_t {
    size_t max;                 //  largest message kept
    uint8_t *buf;               //  the message so far
    size_t size;                //  bytes in buf
    size_t cap;                 //  bytes allocated
    bool in_message;            //  a message has started and not ended
    bool discard;               //  this message was refused: drop its pieces
    bool binary;                //  opcode of this message
    p2c_frame_budget_t *budget; //  shared bound on what is held, or NULL
};

p2c_frame_t *
p2c_frame_new (size_t max)
{
    p2c_frame_t *self = (p2c_frame_t *) calloc (1, sizeof (p2c_frame_t));
    if (self)
        self->max = max;
    return self;
}

void
p2c_frame_destroy (p2c_frame_t **self_p)
{
    p2c_frame_t *self = *self_p;
    if (!self)
        return;
    if (self->budget)
        self->budget->used -= self->cap;
    free (self->buf);
    free (self);
    *self_p = NULL;
}

void
p2c_frame_set_budget (p2c_frame_t *self, p2c_frame_budget_t *budget)
{
    if (self->budget)
        self->budget->used -= self->cap;
    self->budget = budget;
    if (budget)
        budget->used += self->cap;
}

//  Gives back memory after a big message so an idle connection holds little
static void
s_release (p2c_frame_t *self)
{
    if (self->cap > 64 * 1024) {
        if (self->budget)
            self->budget->used -= self->cap;
        free (self->buf);
        self->buf = NULL;
        self->cap = 0;
    }
    self->size = 0;
}

//  Makes room for `need` bytes in all, growing by doubling up to the
//  limit. 0; -1 out of memory; -2 over the shared budget.
static int
s_reserve (p2c_frame_t *self, size_t need)
{
    if (need <= self->cap)
        return 0;
    size_t cap = self->cap ? self->cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > self->max)
        cap = self->max;
    if (self->budget) {
        size_t room = self->budget->used < self->budget->max
                    ? self->budget->max - self->budget->used : 0;
        if (cap - self->cap > room)
            cap = need;         //  doubling would pass it: just what is needed
        if (cap - self->cap > room)
            return -2;
    }
    uint8_t *buf = (uint8_t *) realloc (self->buf, cap);
    if (!buf)
        return -1;
    if (self->budget)
        self->budget->used += cap - self->cap;
    self->buf = buf;
    self->cap = cap;
    return 0;
}

p2c_frame_status_t
p2c_frame_add (p2c_frame_t *self, const void *data, size_t len, size_t remaining,
              bool final, bool binary)
{
    if (!self->in_message) {
        s_release (self);
        self->in_message = true;
        self->discard = false;
        self->binary = binary;
    }
    p2c_frame_status_t status = P2C_FRAME_MORE;
    if (!self->discard) {
        int rc = 0;
        //  Compared without adding, so that huge announced lengths (up to
        //  2^63 in a WebSocket header) cannot overflow
        if (len > self->max - self->size || remaining > self->max - self->size - len)
            status = P2C_FRAME_TOO_LARGE;
        else
        if ((rc = s_reserve (self, self->size + len)) != 0)
            //  Out of memory for this message: refuse it as too large
            //  rather than fail the process
            status = rc == -2 ? P2C_FRAME_NO_BUDGET : P2C_FRAME_TOO_LARGE;
        else {
            if (len)
                memcpy (self->buf + self->size, data, len);
            self->size += len;
            if (final)
                status = P2C_FRAME_DONE;
        }
        if (status == P2C_FRAME_TOO_LARGE || status == P2C_FRAME_NO_BUDGET) {
            self->discard = true;
            s_release (self);
        }
    }
    if (final)
        self->in_message = false;
    return status;
}

const uint8_t *
p2c_frame_data (p2c_frame_t *self)
{
    //  An empty message still has a valid pointer for the decoder
    static const uint8_t empty [1] = { 0 };
    return self->buf ? self->buf : empty;
}

size_t
p2c_frame_size (p2c_frame_t *self)
{
    return self->size;
}

bool
p2c_frame_binary (p2c_frame_t *self)
{
    return self->binary;
}

size_t
p2c_frame_held (p2c_frame_t *self)
{
    return self->cap;
}

void
p2c_frame_test (bool verbose)
{
    (void) verbose;
    p2c_frame_t *f = p2c_frame_new (100);
    P2C_CHECK (f);

    //  One piece, one message
    P2C_CHECK (p2c_frame_add (f, "hello", 5, 0, true, true) == P2C_FRAME_DONE);
    P2C_CHECK (p2c_frame_size (f) == 5 && !memcmp (p2c_frame_data (f), "hello", 5));
    P2C_CHECK (p2c_frame_binary (f));

    //  Three pieces joined in order; the opcode is the first piece's
    P2C_CHECK (p2c_frame_add (f, "ab", 2, 3, false, false) == P2C_FRAME_MORE);
    P2C_CHECK (p2c_frame_add (f, "cde", 3, 0, false, false) == P2C_FRAME_MORE);
    P2C_CHECK (p2c_frame_add (f, "fg", 2, 0, true, false) == P2C_FRAME_DONE);
    P2C_CHECK (p2c_frame_size (f) == 7 && !memcmp (p2c_frame_data (f), "abcdefg", 7));
    P2C_CHECK (!p2c_frame_binary (f));

    //  Exactly the limit is accepted
    uint8_t big [150];
    memset (big, 'x', sizeof big);
    P2C_CHECK (p2c_frame_add (f, big, 60, 40, false, true) == P2C_FRAME_MORE);
    P2C_CHECK (p2c_frame_add (f, big, 40, 0, true, true) == P2C_FRAME_DONE);
    P2C_CHECK (p2c_frame_size (f) == 100);

    //  One byte over, found only at the last piece: too large, once
    P2C_CHECK (p2c_frame_add (f, big, 50, 0, false, true) == P2C_FRAME_MORE);
    P2C_CHECK (p2c_frame_add (f, big, 50, 0, false, true) == P2C_FRAME_MORE);
    P2C_CHECK (p2c_frame_add (f, big, 1, 0, true, true) == P2C_FRAME_TOO_LARGE);

    //  Announced as too large by lws' remaining count: said at once (the
    //  rest may never come), nothing is buffered for it, and later pieces
    //  of the same message are discarded without a second answer
    P2C_CHECK (p2c_frame_add (f, big, 10, 1000000, false, true) == P2C_FRAME_TOO_LARGE);
    P2C_CHECK (p2c_frame_size (f) == 0);
    P2C_CHECK (p2c_frame_add (f, big, 150, 0, false, true) == P2C_FRAME_MORE);
    P2C_CHECK (p2c_frame_size (f) == 0);
    P2C_CHECK (p2c_frame_add (f, big, 10, 0, true, true) == P2C_FRAME_MORE);

    //  A huge hint (2^62, as a WebSocket header may claim) does not
    //  overflow the arithmetic
    P2C_CHECK (p2c_frame_add (f, big, 1, (size_t) -1, true, true) == P2C_FRAME_TOO_LARGE);
    P2C_CHECK (p2c_frame_add (f, big, 1, (size_t) 1 << 62, false, true) == P2C_FRAME_TOO_LARGE);
    P2C_CHECK (p2c_frame_held (f) <= 4096);
    P2C_CHECK (p2c_frame_add (f, big, 1, 0, true, true) == P2C_FRAME_MORE);

    //  After an oversize message the next one is whole again
    P2C_CHECK (p2c_frame_add (f, "ok", 2, 0, true, true) == P2C_FRAME_DONE);
    P2C_CHECK (p2c_frame_size (f) == 2 && !memcmp (p2c_frame_data (f), "ok", 2));

    //  An empty message is a message
    P2C_CHECK (p2c_frame_add (f, NULL, 0, 0, true, true) == P2C_FRAME_DONE);
    P2C_CHECK (p2c_frame_size (f) == 0 && p2c_frame_data (f) != NULL);
    p2c_frame_destroy (&f);
    P2C_CHECK (f == NULL);
    p2c_frame_destroy (&f);

    //  A big message's memory is given back when the next one starts
    f = p2c_frame_new (1024 * 1024);
    //  (calloc: this file is also the client library's, which never
    //  aborts the game that links it, and has no p2c_mem)
    uint8_t *chunk = (uint8_t *) calloc (1, 512 * 1024);
    assert (chunk);
    P2C_CHECK (p2c_frame_add (f, chunk, 512 * 1024, 0, true, true) == P2C_FRAME_DONE);
    P2C_CHECK (p2c_frame_held (f) >= 512 * 1024);
    P2C_CHECK (p2c_frame_add (f, "x", 1, 0, true, true) == P2C_FRAME_DONE);
    P2C_CHECK (p2c_frame_held (f) <= 64 * 1024);

    //  An announced length reserves nothing: only bytes that came are held
    P2C_CHECK (p2c_frame_add (f, "x", 1, 1000 * 1000, false, true) == P2C_FRAME_MORE);
    P2C_CHECK (p2c_frame_held (f) <= 4096);
    P2C_CHECK (p2c_frame_add (f, chunk, 100, 0, true, true) == P2C_FRAME_DONE);

    //  A shared budget: two reassemblers hold at most its bytes together;
    //  the one that would pass it is refused once, and its memory returns
    p2c_frame_budget_t budget = { 0, 300 * 1024 };
    p2c_frame_t *g = p2c_frame_new (1024 * 1024);
    p2c_frame_set_budget (f, &budget);
    p2c_frame_set_budget (g, &budget);
    size_t before = budget.used;
    P2C_CHECK (before == p2c_frame_held (f) + p2c_frame_held (g));
    P2C_CHECK (p2c_frame_add (f, chunk, 200 * 1024, 0, false, true) == P2C_FRAME_MORE);
    P2C_CHECK (budget.used <= budget.max);
    P2C_CHECK (p2c_frame_add (g, chunk, 200 * 1024, 0, false, true) == P2C_FRAME_NO_BUDGET);
    P2C_CHECK (budget.used <= budget.max);
    P2C_CHECK (p2c_frame_add (g, chunk, 10, 0, true, true) == P2C_FRAME_MORE);
    P2C_CHECK (p2c_frame_add (f, chunk, 1, 0, true, true) == P2C_FRAME_DONE);
    P2C_CHECK (p2c_frame_size (f) == 200 * 1024 + 1);
    //  Once f's big message is given back, g fits again
    P2C_CHECK (p2c_frame_add (f, "y", 1, 0, true, true) == P2C_FRAME_DONE);
    P2C_CHECK (p2c_frame_add (g, chunk, 200 * 1024, 0, true, true) == P2C_FRAME_DONE);
    p2c_frame_destroy (&g);
    p2c_frame_destroy (&f);
    P2C_CHECK (budget.used == 0);
    free (chunk);
}
