/*  libFuzzer target: PNG input of the image kernels
    (agent/kernels/agt_image.c), as a task payload brings it. It must
    decode within the side bound, or refuse with a reason; a decoded image
    encodes again. */
#include "agt_image.h"

#include <stdlib.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    uint8_t *rgb = NULL;
    uint32_t w = 0, h = 0;
    char error [128] = "";
    if (agt_png_decode (data, size, 256, &rgb, &w, &h, error, sizeof error)) {
        if (!rgb || w == 0 || h == 0 || w > 256 || h > 256)
            abort ();
        uint8_t *png = NULL;
        size_t len = 0;
        if (!agt_png_encode (rgb, w, h, &png, &len))
            abort ();
        free (png);
        free (rgb);
    }
    else
    if (!error [0] || rgb)
        abort ();
    return 0;
}
