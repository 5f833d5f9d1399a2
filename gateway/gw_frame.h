/*  Reassembly of one WebSocket message from the pieces libwebsockets hands
    over (a message may come in several WebSocket fragments, and lws cuts
    big fragments at its rx buffer size). Messages over the limit are not
    kept: their pieces are discarded up to the final one, which is then
    reported as too large so the caller answers once per message. */
#ifndef GW_FRAME_H_INCLUDED
#define GW_FRAME_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    GW_FRAME_MORE,              //  the message goes on
    GW_FRAME_DONE,              //  a whole message is in gw_frame_data
    GW_FRAME_TOO_LARGE          //  the message ended and was over the limit
} gw_frame_status_t;

typedef struct _gw_frame_t gw_frame_t;

//  max: the largest message kept, in bytes
gw_frame_t *gw_frame_new (size_t max);
void gw_frame_destroy (gw_frame_t **self_p);

//  Adds one piece. remaining: bytes lws says are still to come in the
//  current fragment (a hint that lets an oversize frame be refused before
//  it is buffered); final: this piece ends the message; binary: the
//  message's opcode. After DONE or TOO_LARGE the next piece starts a new
//  message.
gw_frame_status_t gw_frame_add (gw_frame_t *self, const void *data, size_t len,
                                size_t remaining, bool final, bool binary);

//  The message after DONE; valid until the next gw_frame_add.
const uint8_t *gw_frame_data (gw_frame_t *self);
size_t gw_frame_size (gw_frame_t *self);
bool gw_frame_binary (gw_frame_t *self);

//  Bytes the reassembler holds now (for tests and metrics).
size_t gw_frame_held (gw_frame_t *self);

void gw_frame_test (bool verbose);

#endif
