/*  The one module that packs and unpacks protobuf (proto/p2c2r.proto).
    Sizes are checked before unpacking; unpacked messages are freed with
    the matching p2c_msg_*_free. */
#ifndef P2C_MSG_H_INCLUDED
#define P2C_MSG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/p2c2r.pb-c.h"

//  Largest internal body accepted from ZeroMQ.
#define P2C_MAX_INTERNAL (16 * 1024 * 1024)

//  Unpack; NULL when the bytes are oversize or not a valid message.
P2c2r__Internal *p2c_msg_unpack_internal (const uint8_t *data, size_t size);
P2c2r__ClientMessage *p2c_msg_unpack_client (const uint8_t *data, size_t size, size_t max);
P2c2r__ServerMessage *p2c_msg_unpack_server (const uint8_t *data, size_t size, size_t max);

void p2c_msg_internal_free (P2c2r__Internal **msg_p);
void p2c_msg_client_free (P2c2r__ClientMessage **msg_p);
void p2c_msg_server_free (P2c2r__ServerMessage **msg_p);

//  Pack into a fresh buffer with `pre` spare bytes in front (libwebsockets
//  wants LWS_PRE). The message starts at buf + pre; *len_p is its length.
//  The caller frees the buffer. NULL only when out of memory.
uint8_t *p2c_msg_pack_internal (const P2c2r__Internal *msg, size_t pre, size_t *len_p);
uint8_t *p2c_msg_pack_client (const P2c2r__ClientMessage *msg, size_t pre, size_t *len_p);
uint8_t *p2c_msg_pack_server (const P2c2r__ServerMessage *msg, size_t pre, size_t *len_p);

//  Packed size of msg, and packing into a buffer of at least that size the
//  caller owns (a zmq_msg_t's data, say, so the bytes are written once and
//  never copied). Returns the bytes written.
size_t p2c_msg_internal_size (const P2c2r__Internal *msg);
size_t p2c_msg_pack_internal_into (const P2c2r__Internal *msg, uint8_t *buf);

//  Name of the internal message's case, for logs and counters.
const char *p2c_msg_internal_name (const P2c2r__Internal *msg);

void p2c_msg_test (bool verbose);

#endif
