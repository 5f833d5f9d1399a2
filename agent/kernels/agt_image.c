/*  PNG in and out of memory: see agt_image.h. */
#include "agt_image.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
agt_png_encode (const uint8_t *rgb, uint32_t width, uint32_t height, uint8_t **png, size_t *png_len)
{
    png_image image;
    memset (&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = width;
    image.height = height;
    image.format = PNG_FORMAT_RGB;
    //  One pass into a buffer of the largest size the PNG can have, then
    //  trimmed: asking libpng for the size first encodes the image twice
    //  (the same bytes, twice the time: a full-HD frame is a few hundred ms)
    png_alloc_size_t size = PNG_IMAGE_PNG_SIZE_MAX (image);
    uint8_t *buffer = malloc (size);
    if (!buffer)
        return false;
    if (!png_image_write_to_memory (&image, buffer, &size, 0, rgb, 0, NULL)) {
        free (buffer);
        return false;
    }
    uint8_t *trimmed = realloc (buffer, size);
    if (trimmed)
        buffer = trimmed;
    *png = buffer;
    *png_len = size;
    return true;
}

bool
agt_png_decode (const uint8_t *png, size_t png_len, uint32_t max_side,
                uint8_t **rgb, uint32_t *width, uint32_t *height, char *error, size_t size)
{
    png_image image;
    memset (&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png || png_len == 0) {
        snprintf (error, size, "no image given");
        return false;
    }
    if (!png_image_begin_read_from_memory (&image, png, png_len)) {
        snprintf (error, size, "not a PNG: %s", image.message);
        return false;
    }
    //  Check the size from the header before allocating for the pixels
    if (image.width == 0 || image.height == 0 || image.width > max_side || image.height > max_side) {
        snprintf (error, size, "image is %ux%u, at most %ux%u accepted",
                  image.width, image.height, max_side, max_side);
        png_image_free (&image);
        return false;
    }
    image.format = PNG_FORMAT_RGB;
    uint8_t *pixels = malloc (PNG_IMAGE_SIZE (image));
    if (!pixels) {
        snprintf (error, size, "out of memory");
        png_image_free (&image);
        return false;
    }
    if (!png_image_finish_read (&image, NULL, pixels, 0, NULL)) {
        snprintf (error, size, "corrupt PNG: %s", image.message);
        free (pixels);
        png_image_free (&image);
        return false;
    }
    *rgb = pixels;
    *width = image.width;
    *height = image.height;
    return true;
}
