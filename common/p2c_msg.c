/*  protobuf-c packing and unpacking with size limits. */
#include "p2c_msg.h"
#include "p2c_test.h"

#include <stdlib.h>
#include <string.h>

P2c2r__Internal *
p2c_msg_unpack_internal (const uint8_t *data, size_t size)
{
    if (!data || size > P2C_MAX_INTERNAL)
        return NULL;
    P2c2r__Internal *msg = p2c2r__internal__unpack (NULL, size, data);
    if (msg && msg->msg_case == P2C2R__INTERNAL__MSG__NOT_SET) {
        p2c2r__internal__free_unpacked (msg, NULL);
        return NULL;
    }
    return msg;
}

P2c2r__ClientMessage *
p2c_msg_unpack_client (const uint8_t *data, size_t size, size_t max)
{
    if (!data || size > max)
        return NULL;
    P2c2r__ClientMessage *msg = p2c2r__client_message__unpack (NULL, size, data);
    if (msg && msg->msg_case == P2C2R__CLIENT_MESSAGE__MSG__NOT_SET) {
        p2c2r__client_message__free_unpacked (msg, NULL);
        return NULL;
    }
    return msg;
}

P2c2r__ServerMessage *
p2c_msg_unpack_server (const uint8_t *data, size_t size, size_t max)
{
    if (!data || size > max)
        return NULL;
    P2c2r__ServerMessage *msg = p2c2r__server_message__unpack (NULL, size, data);
    if (msg && msg->msg_case == P2C2R__SERVER_MESSAGE__MSG__NOT_SET) {
        p2c2r__server_message__free_unpacked (msg, NULL);
        return NULL;
    }
    return msg;
}

void
p2c_msg_internal_free (P2c2r__Internal **msg_p)
{
    if (*msg_p) {
        p2c2r__internal__free_unpacked (*msg_p, NULL);
        *msg_p = NULL;
    }
}

void
p2c_msg_client_free (P2c2r__ClientMessage **msg_p)
{
    if (*msg_p) {
        p2c2r__client_message__free_unpacked (*msg_p, NULL);
        *msg_p = NULL;
    }
}

void
p2c_msg_server_free (P2c2r__ServerMessage **msg_p)
{
    if (*msg_p) {
        p2c2r__server_message__free_unpacked (*msg_p, NULL);
        *msg_p = NULL;
    }
}

static uint8_t *
s_pack (const ProtobufCMessage *msg, size_t pre, size_t *len_p)
{
    size_t len = protobuf_c_message_get_packed_size (msg);
    uint8_t *buf = malloc (pre + len + 1);
    if (!buf)
        return NULL;
    protobuf_c_message_pack (msg, buf + pre);
    *len_p = len;
    return buf;
}

uint8_t *
p2c_msg_pack_internal (const P2c2r__Internal *msg, size_t pre, size_t *len_p)
{
    return s_pack (&msg->base, pre, len_p);
}

size_t
p2c_msg_internal_size (const P2c2r__Internal *msg)
{
    return protobuf_c_message_get_packed_size (&msg->base);
}

size_t
p2c_msg_pack_internal_into (const P2c2r__Internal *msg, uint8_t *buf)
{
    return protobuf_c_message_pack (&msg->base, buf);
}

uint8_t *
p2c_msg_pack_client (const P2c2r__ClientMessage *msg, size_t pre, size_t *len_p)
{
    return s_pack (&msg->base, pre, len_p);
}

uint8_t *
p2c_msg_pack_server (const P2c2r__ServerMessage *msg, size_t pre, size_t *len_p)
{
    return s_pack (&msg->base, pre, len_p);
}

const char *
p2c_msg_internal_name (const P2c2r__Internal *msg)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field (
        &p2c2r__internal__descriptor, (unsigned) msg->msg_case);
    return f ? f->name : "unknown";
}

void
p2c_msg_test (bool verbose)
{
    (void) verbose;
    P2c2r__Internal msg = P2C2R__INTERNAL__INIT;
    P2c2r__SettleRequest req = P2C2R__SETTLE_REQUEST__INIT;
    req.task_id = "abc";
    req.billed_us = 1234;
    msg.msg_case = P2C2R__INTERNAL__MSG_SETTLE_REQUEST;
    msg.settle_request = &req;
    size_t len = 0;
    uint8_t *buf = p2c_msg_pack_internal (&msg, 16, &len);
    P2C_CHECK (buf && len > 0);
    P2c2r__Internal *back = p2c_msg_unpack_internal (buf + 16, len);
    P2C_CHECK (back && back->msg_case == P2C2R__INTERNAL__MSG_SETTLE_REQUEST);
    P2C_CHECK (back && !strcmp (back->settle_request->task_id, "abc")
               && back->settle_request->billed_us == 1234);
    P2C_CHECK (back && !strcmp (p2c_msg_internal_name (back), "settle_request"));
    p2c_msg_internal_free (&back);
    P2C_CHECK (back == NULL);

    //  Packing into the caller's buffer writes the same bytes
    P2C_CHECK (p2c_msg_internal_size (&msg) == len);
    uint8_t into [64];
    P2C_CHECK (len <= sizeof into && p2c_msg_pack_internal_into (&msg, into) == len);
    P2C_CHECK (len <= sizeof into && memcmp (into, buf + 16, len) == 0);
    free (buf);

    //  Garbage and empty messages are refused, not crashed on
    const uint8_t junk [] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01 };
    P2C_CHECK (p2c_msg_unpack_internal (junk, sizeof junk) == NULL);
    P2C_CHECK (p2c_msg_unpack_client (junk, sizeof junk, 1024) == NULL);
    P2C_CHECK (p2c_msg_unpack_client ((const uint8_t *) "", 0, 1024) == NULL);

    //  Oversize client frames are refused before unpacking
    P2c2r__ClientMessage cm = P2C2R__CLIENT_MESSAGE__INIT;
    P2c2r__Heartbeat hb = P2C2R__HEARTBEAT__INIT;
    hb.load = 0.5f;
    cm.msg_case = P2C2R__CLIENT_MESSAGE__MSG_HEARTBEAT;
    cm.heartbeat = &hb;
    buf = p2c_msg_pack_client (&cm, 0, &len);
    P2c2r__ClientMessage *cb = p2c_msg_unpack_client (buf, len, len);
    P2C_CHECK (cb && cb->heartbeat->load == 0.5f);
    p2c_msg_client_free (&cb);
    P2C_CHECK (p2c_msg_unpack_client (buf, len, len - 1) == NULL);
    free (buf);
}
