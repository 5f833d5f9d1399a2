/*  libFuzzer target: the protobuf decoders of common/p2c_msg.c (client
    frames from the internet, server frames for the agent, internal bodies
    from ZeroMQ). What unpacks must pack again and free without a
    sanitizer report; a client message reads back as the same kind. */
#include "p2c_msg.h"

#include <stdlib.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    P2c2r__ClientMessage *c = p2c_msg_unpack_client (data, size, 1 << 20);
    if (c) {
        size_t len = 0;
        uint8_t *buf = p2c_msg_pack_client (c, 16, &len);
        if (!buf)
            abort ();
        //  Not required to read back: protobuf-c keeps unknown fields and
        //  packs them again as it read them, and a tag such as 0x85 0x00
        //  (field 0, non-minimal) is taken on input but refused once packed
        //  canonically. Nothing of ours re-sends a client's message as is.
        P2c2r__ClientMessage *again = p2c_msg_unpack_client (buf + 16, len, 1 << 20);
        if (again && c->base.n_unknown_fields == 0
            && again->msg_case != c->msg_case)
            abort ();           //  the same kind of message, read back
        p2c_msg_client_free (&again);
        free (buf);
        p2c_msg_client_free (&c);
    }
    P2c2r__ServerMessage *s = p2c_msg_unpack_server (data, size, 1 << 20);
    if (s) {
        size_t len = 0;
        uint8_t *buf = p2c_msg_pack_server (s, 0, &len);
        free (buf);
        p2c_msg_server_free (&s);
    }
    P2c2r__Internal *i = p2c_msg_unpack_internal (data, size);
    if (i) {
        (void) p2c_msg_internal_name (i);
        size_t len = 0;
        uint8_t *buf = p2c_msg_pack_internal (i, 0, &len);
        if (!buf || len != p2c_msg_internal_size (i))
            abort ();
        free (buf);
        p2c_msg_internal_free (&i);
    }
    return 0;
}
