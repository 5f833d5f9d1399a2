/*  encryption [hash]: iterated SHA-256, exactly as the original Python demo
    computed it, so that its results match:
        for i in range(iterations): data = sha256((data + str(i)).encode()).hexdigest()
    i.e. each round hashes the previous round's lower-case hex digest (the
    input string for round 0) followed by the decimal round number. */
#include "agt_params.h"
#include "agt_kernels_list.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

enum { P_DATA, P_ITERATIONS, P_COUNT };
static const agt_param_t s_params [P_COUNT] = {
    [P_DATA] = { .name = "data", .type = AGT_P_STRING, .def_s = "", .min = 0, .max = 1048576 },
    [P_ITERATIONS] = { .name = "iterations", .type = AGT_P_INT, .def = 1000, .min = 1, .max = 1000000 },
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
    //  Round 0 hashes the input string; every later round a 64-char hex digest
    const char *cur = v [P_DATA].s;
    size_t cur_len = v [P_DATA].slen;
    char hex [65];
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
            for (unsigned k = 0; k < digest_len; k++)
                snprintf (hex + 2 * k, 3, "%02x", digest [k]);
            cur = hex;
            cur_len = 64;
        }
    }
    EVP_MD_CTX_free (ctx);
    if (rc)
        return agt_kernel_fail (out, "kernel_error", "SHA-256 failed");

    out->result = json_pack ("{s:s, s:s, s:I}", "hash", hex, "algorithm", "SHA-256",
                             "iterations", (json_int_t) v [P_ITERATIONS].i);
    return out->result? 0: agt_kernel_fail (out, "kernel_error", "out of memory");
}
