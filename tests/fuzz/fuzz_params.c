/*  libFuzzer target: kernel parameters (agent/kernels/agt_params.c). The
    input is a task's params text; it is parsed as JSON and read against a
    table with every parameter type, as each kernel does first. It must
    answer 0 with values in bounds, or -1 with invalid_params. */
#include "agt_params.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { P_INT, P_REAL, P_BOOL, P_STR, P_ENUM, P_VEC, P_ARR, P_COUNT };

static const agt_param_t s_table [P_COUNT] = {
    { "n", "count", AGT_P_INT, false, 5, NULL, 1, 1000, 0, false, NULL },
    { "x", NULL, AGT_P_REAL, false, 0.5, NULL, -10, 10, 0, false, NULL },
    { "flag", NULL, AGT_P_BOOL, false, 0, NULL, 0, 1, 0, false, NULL },
    { "data", NULL, AGT_P_STRING, false, 0, "abc", 0, 64, 0, false, NULL },
    { "mode", NULL, AGT_P_ENUM, false, 0, "fast", 0, 0, 0, false, "fast|slow|exact" },
    { "size", NULL, AGT_P_INTVEC, false, 4, NULL, 1, 256, 3, true, NULL },
    { "points", NULL, AGT_P_ARRAY, false, 0, NULL, 0, 16, 0, false, NULL },
};

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    json_t *params = json_loadb ((const char *) data, size, JSON_REJECT_DUPLICATES, NULL);
    agt_param_val_t vals [P_COUNT];
    agt_kernel_out_t out;
    memset (&out, 0, sizeof out);
    int rc = agt_params_read (s_table, P_COUNT, params, vals, &out);
    if (rc == 0) {
        if (vals [P_INT].i < 1 || vals [P_INT].i > 1000
            || !(vals [P_REAL].r >= -10 && vals [P_REAL].r <= 10)
            || vals [P_STR].slen > 64 || vals [P_ENUM].i < 0 || vals [P_ENUM].i > 2)
            abort ();           //  accepted out of bounds
        for (int k = 0; k < 3; k++)
            if (vals [P_VEC].v [k] < 1 || vals [P_VEC].v [k] > 256)
                abort ();
        if (vals [P_ARR].arr) {
            for (size_t k = 0; k < json_array_size (vals [P_ARR].arr); k++) {
                double r;
                int64_t i;
                (void) agt_json_real (json_array_get (vals [P_ARR].arr, k), -1e9, 1e9, &r);
                (void) agt_json_int (json_array_get (vals [P_ARR].arr, k), -1000, 1000, &i);
            }
        }
        json_t *num = agt_num (vals [P_REAL].r);
        json_decref (num);
    }
    else
    if (strcmp (out.error_code, "invalid_params") || !*out.error)
        abort ();               //  a refusal names its code and field
    agt_kernel_out_reset (&out);
    json_decref (params);
    return 0;
}
