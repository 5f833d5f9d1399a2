/*  SHA-256 as 64 lowercase hex digits (OpenSSL's digest): API keys' hashes
    (gateway and ledger) and the checksums the gateway publishes. */
#ifndef P2C_SHA256_H_INCLUDED
#define P2C_SHA256_H_INCLUDED
#include <stdbool.h>
#include <stddef.h>

#define P2C_SHA256_HEX_LEN 64

//  hex gets the digest of data (len bytes) and a NUL; false (hex "") when
//  the digest cannot be made. The digest's bytes are wiped after use (the
//  data may be a secret).
bool p2c_sha256_hex (const void *data, size_t len, char hex [P2C_SHA256_HEX_LEN + 1]);

void p2c_sha256_test (bool verbose);
#endif
