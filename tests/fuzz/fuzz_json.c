/*  libFuzzer target: the gateway's JSON dialect decoder (gateway/gw_json.c)
    on any bytes a text frame may carry. It must answer NULL with a code
    and a reason, or a ClientMessage that packs as protobuf again; never
    crash, leak or read out of bounds. */
#include "gw_json.h"

#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *code = NULL;
    char why [256], ref [300];
    P2c2r__ClientMessage *m = gw_json_decode ((const char *) data, size, 1 << 20, &code,
                                              why, sizeof why, ref, sizeof ref);
    if (m) {
        size_t len = 0;
        uint8_t *buf = p2c_msg_pack_client (m, 0, &len);
        if (!buf)
            abort ();           //  a decoded message always packs
        free (buf);
        p2c_msg_client_free (&m);
    }
    else
    if (!code || strnlen (why, sizeof why) == sizeof why)
        abort ();               //  a refusal always says why
    return 0;
}
