/*  The JSON dialect of the client protocol (docs/protocol.md) on text
    frames: a JSON object becomes the same ClientMessage a binary frame
    carries, and a ServerMessage becomes the JSON object the original
    demo's clients expect, so one set of handlers serves both dialects.
    Pure functions (no I/O), tested on their own. */
#ifndef GW_JSON_H_INCLUDED
#define GW_JSON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p2c_msg.h"

//  Decodes one text frame. On failure returns NULL, *code_p is the error
//  code to answer ("bad_request" or "invalid_params"), why holds the human
//  text and client_ref the submit's client_ref when one could be read.
//  The result is freed with p2c_msg_client_free.
P2c2r__ClientMessage *gw_json_decode (const char *text, size_t len, size_t max,
                                      const char **code_p, char *why, size_t why_size,
                                      char *client_ref, size_t ref_size);

//  Encodes a server message as JSON text in a fresh buffer with `pre`
//  spare bytes in front (LWS_PRE); NULL when out of memory or the message
//  kind has no JSON form.
uint8_t *gw_json_encode (const P2c2r__ServerMessage *m, size_t pre, size_t *len_p);

//  Formats picodollars as a plain decimal number of dollars, exact, with
//  no exponent and no trailing zeros ("0.0000000347", "0", "-1.5").
//  buf needs 32 bytes.
char *gw_json_usd (int64_t pico, char *buf, size_t size);

void gw_json_test (bool verbose);

#endif
