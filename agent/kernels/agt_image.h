/*  PNG in and out of memory for the image kernels (libpng's simplified
    API): 8-bit RGB, rows top to bottom, no gaps between rows. */
#ifndef AGT_IMAGE_H_INCLUDED
#define AGT_IMAGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Encodes rgb (width*height*3 bytes) as PNG into a malloc'd buffer; false on failure.
bool agt_png_encode (const uint8_t *rgb, uint32_t width, uint32_t height,
                     uint8_t **png, size_t *png_len);

//  Decodes a PNG of any colour type to RGB (alpha composited on black) into
//  a malloc'd buffer, refusing images wider or taller than max_side; false
//  with a reason in error[size] on failure.
bool agt_png_decode (const uint8_t *png, size_t png_len, uint32_t max_side,
                     uint8_t **rgb, uint32_t *width, uint32_t *height,
                     char *error, size_t size);

#endif
