/*  Reassembly of one WebSocket message from the pieces libwebsockets hands
    over (a message may come in several WebSocket fragments, and lws cuts
    big fragments at its rx buffer size). Messages over the limit are not
    kept: their pieces are discarded up to the final one, which is then
    reported as too large so the caller answers once per message. */
#ifndef P2C_FRAME_H_INCLUDED
#define P2C_FRAME_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    P2C_FRAME_MORE,              //  the message goes on
    P2C_FRAME_DONE,              //  a whole message is in p2c_frame_data
    P2C_FRAME_TOO_LARGE          //  the message ended and was over the limit
} p2c_frame_status_t;

typedef struct _p2c_frame_t p2c_frame_t;

//  max: the largest message kept, in bytes
p2c_frame_t *p2c_frame_new (size_t max);
void p2c_frame_destroy (p2c_frame_t **self_p);

//  Adds one piece. remaining: bytes lws says are still to come in the
//  current fragment (a hint that lets an oversize frame be refused before
//  it is buffered); final: this piece ends the message; binary: the
//  message's opcode. After DONE or TOO_LARGE the next piece starts a new
//  message.
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
