/*  compression: zlib DEFLATE (compress2, zlib format) of data at a level,
    verified by inflating the output and comparing it with the input. The
    ratio is original/compressed rounded to 4 decimals so results are
    byte-stable and readable. */
#include "agt_params.h"
#include "agt_kernels_list.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

//  Largest input after repetition: bounds memory (input + output + check copy)
#define MAX_TOTAL (16u * 1024 * 1024)

enum { P_DATA, P_LEVEL, P_REPEAT, P_COUNT };
static const agt_param_t s_params [P_COUNT] = {
    [P_DATA] = { .name = "data", .type = AGT_P_STRING, .def_s = "", .min = 0, .max = 1048576 },
    [P_LEVEL] = { .name = "level", .type = AGT_P_INT, .def = 6, .min = 0, .max = 9 },
    [P_REPEAT] = { .name = "repeat", .type = AGT_P_INT, .def = 1, .min = 1, .max = 1000000 },
};

int
k_compression_run (const json_t *params, const uint8_t *payload, size_t payload_len,
                   agt_kernel_out_t *out)
{
    (void) payload;
    (void) payload_len;
    agt_param_val_t v [P_COUNT];
    if (agt_params_read (s_params, P_COUNT, params, v, out))
        return -1;
    size_t unit = v [P_DATA].slen;
    size_t repeat = (size_t) v [P_REPEAT].i;
    if (unit > 0 && repeat > MAX_TOTAL / unit)
        return agt_kernel_fail (out, "invalid_params",
                                "repeat: data length times repeat must be at most %u bytes", MAX_TOTAL);
    size_t total = unit * repeat;

    uint8_t *input = malloc (total + 1);
    uLongf bound = compressBound ((uLong) total);
    uint8_t *packed = malloc (bound);
    uint8_t *check = malloc (total + 1);
    if (!input || !packed || !check) {
        free (input);
        free (packed);
        free (check);
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    }
    for (size_t k = 0; k < repeat; k++)
        memcpy (input + k * unit, v [P_DATA].s, unit);

    uLongf packed_len = bound;
    int zrc = compress2 (packed, &packed_len, input, (uLong) total, (int) v [P_LEVEL].i);
    bool verified = false;
    if (zrc == Z_OK) {
        uLongf check_len = (uLongf) total;
        //  uncompress wants room for at least one byte even for empty data
        if (total == 0)
            check_len = 1;
        int urc = uncompress (check, &check_len, packed, packed_len);
        verified = urc == Z_OK && check_len == total && !memcmp (check, input, total);
    }
    free (input);
    free (check);
    free (packed);
    if (zrc != Z_OK)
        return agt_kernel_fail (out, "kernel_error", "zlib compress2 failed: %d", zrc);
    if (!verified)
        return agt_kernel_fail (out, "kernel_error", "round trip through zlib did not give the input back");

    double ratio = round ((double) total / (double) packed_len * 10000.0) / 10000.0;
    out->result = json_pack ("{s:I, s:I, s:o, s:b, s:s, s:i}",
                             "original_size", (json_int_t) total,
                             "compressed_size", (json_int_t) packed_len,
                             "compression_ratio", json_real (ratio),
                             "verified", verified,
                             "algorithm", "DEFLATE",
                             "level", (int) v [P_LEVEL].i);
    return out->result? 0: agt_kernel_fail (out, "kernel_error", "out of memory");
}
