/*  encryption [hash]: iterated SHA-256, exactly as the original Python demo
    computes it (EncryptionExecutor.hash_data), so that a mixed fleet of its
    peers and ours agrees on every result:
        current = data.encode('utf-8')
        for i in range(iterations):
            h = sha256(); h.update(current); h.update(str(i).encode())
            current = h.digest()                    # the raw 32 bytes
        hash = current.hex()
    Round 0 hashes the input bytes, every later round the previous round's
    raw 32-byte digest, each followed by the decimal round number. Version
    1.0.0 chained the 64-character hex text instead; 2.0.0 is this one. */
#include "agt_params.h"
#include "agt_kernels_list.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

enum { P_DATA, P_ITERATIONS, P_COUNT };
static const agt_param_t s_params [P_COUNT] = {
    [P_DATA] = { .name = "data", .type = AGT_P_STRING, .def_s = "", .min = 0, .max = 1048576 },
    //  about 3 s at the bound, as 1.0.0's million rounds of hex formatting took
    [P_ITERATIONS] = { .name = "iterations", .type = AGT_P_INT, .def = 1000, .min = 1, .max = 10000000 },
};

int
k_encryption_run (const json_t *params, const uint8_t *payload, size_t payload_len,
                  agt_kernel_out_t *out)
{
    (void) payload;
    (void) payload_len;
    agt_param_val_t v [P_COUNT];
    if (agt_params_read (s_params, P_COUNT, params, v, out))
        return -1;

    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    if (!ctx)
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    const EVP_MD *md = EVP_sha256 ();
    //  Round 0 hashes the input bytes; every later round the raw digest
    const unsigned char *cur = (const unsigned char *) v [P_DATA].s;
    size_t cur_len = v [P_DATA].slen;
    unsigned char digest [EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    int rc = 0;
    for (int64_t i = 0; i < v [P_ITERATIONS].i && rc == 0; i++) {
        char number [24];
        int number_len = snprintf (number, sizeof number, "%lld", (long long) i);
        if (EVP_DigestInit_ex (ctx, md, NULL) != 1
        ||  EVP_DigestUpdate (ctx, cur, cur_len) != 1
        ||  EVP_DigestUpdate (ctx, number, (size_t) number_len) != 1
        ||  EVP_DigestFinal_ex (ctx, digest, &digest_len) != 1)
            rc = -1;
        else {
            cur = digest;
            cur_len = digest_len;
        }
    }
    EVP_MD_CTX_free (ctx);
    if (rc || digest_len != 32)
        return agt_kernel_fail (out, "kernel_error", "SHA-256 failed");
    char hex [65];
    for (unsigned k = 0; k < 32; k++)
        snprintf (hex + 2 * k, 3, "%02x", digest [k]);

    out->result = json_pack ("{s:s, s:s, s:I}", "hash", hex, "algorithm", "SHA-256",
                             "iterations", (json_int_t) v [P_ITERATIONS].i);
    return out->result? 0: agt_kernel_fail (out, "kernel_error", "out of memory");
}
