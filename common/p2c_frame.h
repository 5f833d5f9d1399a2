/*  Reassembly of one WebSocket message from the pieces libwebsockets hands
    over (a message may come in several WebSocket fragments, and lws cuts
    big fragments at its rx buffer size). Messages over the limit are not
    kept: the piece where that becomes known (from lws' announced length,
    or from what came) is reported as too large, once per message, and
    the rest of the message is discarded; memory is reserved only for
    bytes that came, never from an announced length. An optional budget
    shared by many reassemblers bounds what they hold together. */
#ifndef P2C_FRAME_H_INCLUDED
#define P2C_FRAME_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    P2C_FRAME_MORE,              //  the message goes on (or is being discarded)
    P2C_FRAME_DONE,              //  a whole message is in p2c_frame_data
    P2C_FRAME_TOO_LARGE,         //  the message is over the limit (said once)
    P2C_FRAME_NO_BUDGET          //  the shared budget cannot hold it (said once)
} p2c_frame_status_t;

//  Bytes held by all the reassemblers that share it, and their bound
typedef struct {
    size_t used;
    size_t max;
} p2c_frame_budget_t;

typedef struct _p2c_frame_t p2c_frame_t;

//  max: the largest message kept, in bytes
p2c_frame_t *p2c_frame_new (size_t max);
void p2c_frame_destroy (p2c_frame_t **self_p);

//  Charges what this reassembler holds to budget (borrowed; outlives it),
//  from now on; NULL: no shared bound.
void p2c_frame_set_budget (p2c_frame_t *self, p2c_frame_budget_t *budget);

//  Adds one piece. remaining: bytes lws says are still to come in the
//  current fragment (a claim of the client's, used only to refuse an
//  oversize frame early, never to reserve memory); final: this piece ends
//  the message; binary: the message's opcode. After a final piece the
//  next one starts a new message.
p2c_frame_status_t p2c_frame_add (p2c_frame_t *self, const void *data, size_t len,
                                size_t remaining, bool final, bool binary);

//  The message after DONE; valid until the next p2c_frame_add.
const uint8_t *p2c_frame_data (p2c_frame_t *self);
size_t p2c_frame_size (p2c_frame_t *self);
bool p2c_frame_binary (p2c_frame_t *self);

//  Bytes the reassembler holds now (for tests and metrics).
size_t p2c_frame_held (p2c_frame_t *self);

void p2c_frame_test (bool verbose);

#endif
