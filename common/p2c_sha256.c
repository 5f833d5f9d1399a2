/*  SHA-256 as hex (see p2c_sha256.h). */
#include "p2c_sha256.h"
#include "p2c_test.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

bool
p2c_sha256_hex (const void *data, size_t len, char hex [P2C_SHA256_HEX_LEN + 1])
{
    unsigned char md [EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    hex [0] = 0;
    if (!EVP_Digest (data, len, md, &n, EVP_sha256 (), NULL) || n != 32)
        return false;
    for (unsigned int i = 0; i < n; i++)
        snprintf (hex + 2 * i, 3, "%02x", md [i]);
    explicit_bzero (md, sizeof md);
    return true;
}

void
p2c_sha256_test (bool verbose)
{
    (void) verbose;
    char hex [P2C_SHA256_HEX_LEN + 1];
    P2C_CHECK (p2c_sha256_hex ("abc", 3, hex));
    P2C_CHECK (!strcmp (hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    P2C_CHECK (p2c_sha256_hex ("", 0, hex));
    P2C_CHECK (!strcmp (hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
}
