/*  frame_upscale [upscale]: resamples a PNG frame to output_res [w,h] (or
    by an integer `scale`) with a separable filter: bilinear (tent, a=1),
    bicubic (Keys, a=-0.5, support 2) or lanczos (a=3). Weights are computed
    once per output column and row, normalised to sum 1, and the two passes
    run in doubles with edge pixels clamped, then round to 8 bits.
    The input is the task payload (protobuf clients) or base64 in the
    image_b64 parameter (JSON clients). A bad image answers invalid_params
    naming "image". */
#include "agt_image.h"
#include "agt_params.h"
#include "agt_kernels_list.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IN 2048
#define MAX_OUT 4096
#define MAX_OUT_PIXELS (4096u * 2160u)
#define MAX_B64 (48u * 1024 * 1024)

enum { P_OUT, P_SCALE, P_METHOD, P_IMAGE, P_COUNT };
static const agt_param_t s_params [P_COUNT] = {
    [P_OUT] = { .name = "output_res", .type = AGT_P_INTVEC, .len = 2, .def = 0, .min = 1, .max = MAX_OUT },
    [P_SCALE] = { .name = "scale", .type = AGT_P_INT, .def = 2, .min = 1, .max = 8 },
    [P_METHOD] = { .name = "method", .type = AGT_P_ENUM, .def_s = "bicubic", .choices = "bilinear|bicubic|lanczos" },
    [P_IMAGE] = { .name = "image_b64", .type = AGT_P_STRING, .def_s = "", .min = 0, .max = MAX_B64 },
};

static double
s_kernel (int method, double x)
{
    x = fabs (x);
    if (method == 0)
        return x < 1? 1 - x: 0;
    if (method == 1) {
        const double a = -0.5;
        if (x < 1)
            return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2)
            return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
        return 0;
    }
    if (x == 0)
        return 1;
    if (x >= 3)
        return 0;
    double px = M_PI * x;
    return 3 * sin (px) * sin (px / 3) / (px * px);
}

typedef struct {
    int first;                  //  first source index (may be clamped per tap)
    int taps;
    double *weights;
} filter_t;

//  Weights for every output index along one axis
static filter_t *
s_filters (int in, int outn, int method)
{
    double support = method == 0? 1: method == 1? 2: 3;
    double scale = (double) in / outn;
    //  When shrinking, widen the filter so it averages instead of aliasing
    double widen = scale > 1? scale: 1;
    int taps = (int) ceil (support * widen) * 2 + 1;
    filter_t *filters = calloc ((size_t) outn, sizeof *filters);
    double *weights = calloc ((size_t) outn * taps, sizeof *weights);
    if (!filters || !weights) {
        free (filters);
        free (weights);
        return NULL;
    }
    for (int o = 0; o < outn; o++) {
        double centre = (o + 0.5) * scale - 0.5;
        filter_t *f = &filters [o];
        f->first = (int) floor (centre) - taps / 2;
        f->taps = taps;
        f->weights = weights + (size_t) o * taps;
        double sum = 0;
        for (int t = 0; t < taps; t++) {
            double w = s_kernel (method, (f->first + t - centre) / widen);
            f->weights [t] = w;
            sum += w;
        }
        for (int t = 0; t < taps; t++)
            f->weights [t] = sum != 0? f->weights [t] / sum: 0;
    }
    return filters;
}

static void
s_filters_free (filter_t **filters)
{
    if (*filters) {
        free ((*filters) [0].weights);
        free (*filters);
        *filters = NULL;
    }
}

static int
s_clampi (int v, int hi)
{
    return v < 0? 0: v > hi? hi: v;
}

int
k_upscale_run (const json_t *params, const uint8_t *payload, size_t payload_len, agt_kernel_out_t *out)
{
    agt_param_val_t v [P_COUNT];
    if (agt_params_read (s_params, P_COUNT, params, v, out))
        return -1;
    uint8_t *decoded = NULL;
    if ((!payload || payload_len == 0) && v [P_IMAGE].slen > 0) {
        decoded = malloc (v [P_IMAGE].slen / 4 * 3 + 4);
        if (!decoded)
            return agt_kernel_fail (out, "kernel_error", "out of memory");
        int n = EVP_DecodeBlock (decoded, (const unsigned char *) v [P_IMAGE].s, (int) v [P_IMAGE].slen);
        if (n <= 0) {
            free (decoded);
            return agt_kernel_fail (out, "invalid_params", "image: image_b64 is not valid base64");
        }
        payload = decoded;
        payload_len = (size_t) n;
    }
    uint8_t *src = NULL;
    uint32_t in_w = 0, in_h = 0;
    char why [160];
    bool read = agt_png_decode (payload, payload_len, MAX_IN, &src, &in_w, &in_h, why, sizeof why);
    free (decoded);
    if (!read)
        return agt_kernel_fail (out, "invalid_params", "image: %s", why);
    int out_w = (int) (v [P_OUT].given? v [P_OUT].v [0]: in_w * v [P_SCALE].i);
    int out_h = (int) (v [P_OUT].given? v [P_OUT].v [1]: in_h * v [P_SCALE].i);
    if (out_w > MAX_OUT || out_h > MAX_OUT || (uint64_t) out_w * out_h > MAX_OUT_PIXELS) {
        free (src);
        return agt_kernel_fail (out, "invalid_params",
                                "%s: output of %dx%d is larger than %u pixels (%dx%d at most)",
                                v [P_OUT].given? "output_res": "scale", out_w, out_h, MAX_OUT_PIXELS,
                                MAX_OUT, MAX_OUT);
    }
    int method = (int) v [P_METHOD].i;
    filter_t *fx = s_filters ((int) in_w, out_w, method);
    filter_t *fy = s_filters ((int) in_h, out_h, method);
    double *mid = malloc ((size_t) out_w * in_h * 3 * sizeof *mid);
    uint8_t *dst = malloc ((size_t) out_w * out_h * 3);
    if (!fx || !fy || !mid || !dst) {
        s_filters_free (&fx);
        s_filters_free (&fy);
        free (mid);
        free (dst);
        free (src);
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    }
    //  Horizontal pass: in_h rows of out_w pixels
    for (uint32_t y = 0; y < in_h; y++)
        for (int x = 0; x < out_w; x++) {
            const filter_t *f = &fx [x];
            double acc [3] = { 0, 0, 0 };
            for (int t = 0; t < f->taps; t++) {
                double w = f->weights [t];
                if (w == 0)
                    continue;
                const uint8_t *p = src + ((size_t) y * in_w + (size_t) s_clampi (f->first + t, (int) in_w - 1)) * 3;
                acc [0] += w * p [0];
                acc [1] += w * p [1];
                acc [2] += w * p [2];
            }
            double *m = mid + ((size_t) y * out_w + x) * 3;
            m [0] = acc [0];
            m [1] = acc [1];
            m [2] = acc [2];
        }
    //  Vertical pass, then round and clamp (bicubic and lanczos overshoot)
    for (int y = 0; y < out_h; y++) {
        const filter_t *f = &fy [y];
        for (int x = 0; x < out_w; x++) {
            double acc [3] = { 0, 0, 0 };
            for (int t = 0; t < f->taps; t++) {
                double w = f->weights [t];
                if (w == 0)
                    continue;
                const double *m = mid + ((size_t) s_clampi (f->first + t, (int) in_h - 1) * out_w + x) * 3;
                acc [0] += w * m [0];
                acc [1] += w * m [1];
                acc [2] += w * m [2];
            }
            uint8_t *d = dst + ((size_t) y * out_w + x) * 3;
            for (int c = 0; c < 3; c++) {
                double r = floor (acc [c] + 0.5);
                d [c] = (uint8_t) (r < 0? 0: r > 255? 255: r);
            }
        }
    }
    s_filters_free (&fx);
    s_filters_free (&fy);
    free (mid);
    free (src);
    uint8_t *png = NULL;
    size_t png_len = 0;
    bool encoded = agt_png_encode (dst, (uint32_t) out_w, (uint32_t) out_h, &png, &png_len);
    free (dst);
    if (!encoded)
        return agt_kernel_fail (out, "kernel_error", "PNG encoding failed");
    static const char *names [] = { "bilinear", "bicubic", "lanczos" };
    out->result = json_pack ("{s:i, s:i, s:s, s:i, s:i, s:s}", "width", out_w, "height", out_h,
                             "method", names [method], "input_width", (int) in_w,
                             "input_height", (int) in_h, "format", "png");
    if (!out->result) {
        free (png);
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    }
    out->blob = png;
    out->blob_len = png_len;
    return 0;
}
