/*  Frames split into tiles and put back together (see sch_tiles.h). The
    tiles are bands of whole rows, so a tile's decoded pixels are one
    contiguous run of the frame's RGB buffer, and assembling is a copy. The
    frame is encoded with exactly the calls of the agent's encoder
    (agent/kernels/agt_image.c), so equal pixels give equal PNG bytes. */
#include "sch_tiles.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <assert.h>
#include <jansson.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

//  Frames the kernels accept at all (k_raytrace.c: each side 8..4096)
#define SCH_TILES_MIN_SIDE 8
#define SCH_TILES_MAX_SIDE 4096

typedef struct {
    uint32_t y, rows;           //  the band: first row, number of rows
    bool in;                    //  its result is in
    json_int_t rays, hits;      //  its rays_traced and intersections
    json_t *rest;               //  its result without tile and the counts
} s_tile_t;

struct _sch_tiles_t {
    json_t *params;             //  the frame's params (owned)
    uint32_t width, height;
    size_t count;
    s_tile_t tiles [SCH_TILES_MAX];
    uint8_t *rgb;               //  the frame's pixels, width x height x 3, at the first put
    size_t done;
};

static bool s_is_raytracing (const char *type);

sch_tiles_t *
sch_tiles_new (const char *type, const char *params_json, uint64_t split_px, size_t max_tiles)
{
    if (!type || !params_json || !split_px || max_tiles < 2 || !s_is_raytracing (type))
        return NULL;
    json_t *params = json_loads (params_json, JSON_REJECT_DUPLICATES, NULL);
    json_t *res = params ? json_object_get (params, "resolution") : NULL;
    json_t *w = json_array_get (res, 0), *h = json_array_get (res, 1);
    //  Anything the kernel would refuse or read otherwise is not split: the
    //  kernel answers it as one task
    if (!json_is_object (params) || json_object_get (params, "tile")
        || json_array_size (res) != 2 || !json_is_integer (w) || !json_is_integer (h)
        || json_integer_value (w) < SCH_TILES_MIN_SIDE || json_integer_value (w) > SCH_TILES_MAX_SIDE
        || json_integer_value (h) < SCH_TILES_MIN_SIDE || json_integer_value (h) > SCH_TILES_MAX_SIDE) {
        json_decref (params);
        return NULL;
    }
    uint32_t width = (uint32_t) json_integer_value (w), height = (uint32_t) json_integer_value (h);
    uint64_t pixels = (uint64_t) width * height;
    if (pixels <= split_px) {
        json_decref (params);
        return NULL;
    }
    uint64_t n = (pixels + split_px - 1) / split_px;
    if (n > max_tiles)
        n = max_tiles;
    if (n > SCH_TILES_MAX)
        n = SCH_TILES_MAX;
    if (n > height)
        n = height;
    sch_tiles_t *self = (sch_tiles_t *) p2c_calloc (1, sizeof (sch_tiles_t));
    self->params = params;
    self->width = width;
    self->height = height;
    self->count = (size_t) n;
    //  Bands as even as whole rows allow
    for (size_t k = 0; k < self->count; k++) {
        uint32_t y0 = (uint32_t) ((uint64_t) height * k / n);
        uint32_t y1 = (uint32_t) ((uint64_t) height * (k + 1) / n);
        self->tiles [k].y = y0;
        self->tiles [k].rows = y1 - y0;
    }
    return self;
}

void
sch_tiles_destroy (sch_tiles_t **self_p)
{
    sch_tiles_t *self = *self_p;
    if (!self)
        return;
    for (size_t k = 0; k < self->count; k++)
        json_decref (self->tiles [k].rest);
    json_decref (self->params);
    free (self->rgb);
    free (self);
    *self_p = NULL;
}

size_t
sch_tiles_count (sch_tiles_t *self)
{
    return self->count;
}

uint32_t
sch_tiles_width (sch_tiles_t *self)
{
    return self->width;
}

uint32_t
sch_tiles_height (sch_tiles_t *self)
{
    return self->height;
}

char *
sch_tiles_params (sch_tiles_t *self, size_t index)
{
    assert (index < self->count);
    const s_tile_t *t = &self->tiles [index];
    json_t *p = json_copy (self->params);
    if (!p)
        return NULL;
    json_object_set_new (p, "tile", json_pack ("[iiii]", 0, (int) t->y, (int) self->width,
                                               (int) t->rows));
    char *text = json_dumps (p, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION (15));
    json_decref (p);
    return text;
}

//  Decodes a PNG of exactly width x rows into out (RGB); false otherwise.
//  The size is checked from the header before any pixel is decoded.
static bool
s_decode_into (const uint8_t *png, size_t png_size, uint32_t width, uint32_t rows, uint8_t *out)
{
    png_image image;
    memset (&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png || !png_size || !png_image_begin_read_from_memory (&image, png, png_size))
        return false;
    if (image.width != width || image.height != rows) {
        png_image_free (&image);
        return false;
    }
    image.format = PNG_FORMAT_RGB;
    return png_image_finish_read (&image, NULL, out, 0, NULL) != 0;
}

bool
sch_tiles_put (sch_tiles_t *self, size_t index, const char *result_json, const uint8_t *png,
               size_t png_size)
{
    if (index >= self->count || !result_json)
        return false;
    s_tile_t *t = &self->tiles [index];
    json_t *r = json_loads (result_json, 0, NULL);
    json_t *tile = r ? json_object_get (r, "tile") : NULL;
    json_t *rays = r ? json_object_get (r, "rays_traced") : NULL;
    json_t *hits = r ? json_object_get (r, "intersections") : NULL;
    bool ok = json_is_object (r) && json_is_integer (rays) && json_is_integer (hits)
           && json_array_size (tile) == 4
           && json_integer_value (json_array_get (tile, 0)) == 0
           && json_integer_value (json_array_get (tile, 1)) == t->y
           && json_integer_value (json_array_get (tile, 2)) == self->width
           && json_integer_value (json_array_get (tile, 3)) == t->rows
           && json_integer_value (json_object_get (r, "width")) == self->width
           && json_integer_value (json_object_get (r, "height")) == self->height;
    if (ok && !self->rgb) {
        self->rgb = (uint8_t *) p2c_malloc ((size_t) self->width * self->height * 3);
        ok = self->rgb != NULL;
    }
    //  decoded aside first: a refused tile leaves what was in untouched
    size_t band = (size_t) self->width * t->rows * 3;
    uint8_t *pixels = ok ? (uint8_t *) malloc (band) : NULL;
    ok = ok && pixels && s_decode_into (png, png_size, self->width, t->rows, pixels);
    if (ok) {
        json_t *rest = json_copy (r);
        json_object_del (rest, "tile");
        json_object_del (rest, "rays_traced");
        json_object_del (rest, "intersections");
        //  every tile must describe the same frame
        for (size_t k = 0; ok && k < self->count; k++)
            if (k != index && self->tiles [k].in && !json_equal (self->tiles [k].rest, rest))
                ok = false;
        if (ok) {
            memcpy (self->rgb + (size_t) self->width * t->y * 3, pixels, band);
            json_decref (t->rest);
            t->rest = rest;
            t->rays = json_integer_value (rays);
            t->hits = json_integer_value (hits);
            if (!t->in)
                self->done++;
            t->in = true;
        }
        else
            json_decref (rest);
    }
    free (pixels);
    json_decref (r);
    return ok;
}

size_t
sch_tiles_done (sch_tiles_t *self)
{
    return self->done;
}

//  The agent's encoder (agt_png_encode): libpng's simplified writer, 8-bit
//  RGB, default settings
static bool
s_encode (const uint8_t *rgb, uint32_t width, uint32_t height, uint8_t **png, size_t *png_size)
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
    uint8_t *buffer = (uint8_t *) malloc (size);
    if (!buffer)
        return false;
    if (!png_image_write_to_memory (&image, buffer, &size, 0, rgb, 0, NULL)) {
        free (buffer);
        return false;
    }
    uint8_t *trimmed = (uint8_t *) realloc (buffer, size);
    if (trimmed)
        buffer = trimmed;
    *png = buffer;
    *png_size = size;
    return true;
}

bool
sch_tiles_assemble (sch_tiles_t *self, char **result_json_p, uint8_t **png_p, size_t *png_size_p)
{
    if (self->done != self->count)
        return false;
    json_int_t rays = 0, hits = 0;
    for (size_t k = 0; k < self->count; k++) {
        rays += self->tiles [k].rays;
        hits += self->tiles [k].hits;
    }
    json_t *r = json_copy (self->tiles [0].rest);
    if (!r)
        return false;
    json_object_set_new (r, "rays_traced", json_integer (rays));
    json_object_set_new (r, "intersections", json_integer (hits));
    char *text = json_dumps (r, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION (15));
    json_decref (r);
    uint8_t *png = NULL;
    size_t size = 0;
    if (!text || !s_encode (self->rgb, self->width, self->height, &png, &size)) {
        free (text);
        return false;
    }
    *result_json_p = text;
    *png_p = png;
    *png_size_p = size;
    return true;
}

static bool
s_is_raytracing (const char *type)
{
    return !strcmp (type, "rt_reflections") || !strcmp (type, "rt_shadows")
        || !strcmp (type, "rt_global_illumination");
}

//  --------------------------------------------------------------------------
//  Self-test

//  A frame's pixels that differ in every row and column
static uint8_t *
s_pattern (uint32_t width, uint32_t height)
{
    uint8_t *rgb = (uint8_t *) p2c_malloc ((size_t) width * height * 3);
    for (uint32_t y = 0; y < height; y++)
        for (uint32_t x = 0; x < width; x++) {
            uint8_t *p = rgb + ((size_t) y * width + x) * 3;
            p [0] = (uint8_t) (x * 7 + y);
            p [1] = (uint8_t) (y * 13);
            p [2] = (uint8_t) ((x ^ y) * 3);
        }
    return rgb;
}

//  What a 1.1.0 kernel answers for a band
static char *
s_band_result (uint32_t width, uint32_t height, uint32_t y, uint32_t rows, long rays)
{
    char *text = NULL;
    if (asprintf (&text, "{\"bounces\":2,\"format\":\"png\",\"height\":%u,\"intersections\":%ld,"
                  "\"lights\":2,\"rays_traced\":%ld,\"samples_per_pixel\":1,\"tile\":[0,%u,%u,%u],"
                  "\"width\":%u}", height, rays / 2, rays, y, width, rows, width) < 0)
        return NULL;
    return text;
}

void
sch_tiles_test (bool verbose)
{
    (void) verbose;
    //  not split: other types, small frames, a tile given, bad params
    const char *frame = "{\"bounces\":2,\"lights\":2,\"resolution\":[1920,1080]}";
    P2C_CHECK (sch_tiles_new ("encryption", frame, 518400, 16) == NULL);
    P2C_CHECK (sch_tiles_new ("rt_reflections", "{\"resolution\":[960,540]}", 518400, 16) == NULL);
    P2C_CHECK (sch_tiles_new ("rt_reflections", "{}", 100, 16) == NULL);
    P2C_CHECK (sch_tiles_new ("rt_reflections", "{\"resolution\":[1920,1080],\"tile\":[0,0,8,8]}",
                              518400, 16) == NULL);
    P2C_CHECK (sch_tiles_new ("rt_reflections", "{\"resolution\":[8000,1080]}", 518400, 16) == NULL);
    P2C_CHECK (sch_tiles_new ("rt_reflections", "{\"resolution\":\"1920x1080\"}", 518400, 16) == NULL);
    P2C_CHECK (sch_tiles_new ("rt_reflections", "[1,2]", 518400, 16) == NULL);
    P2C_CHECK (sch_tiles_new ("rt_reflections", "{\"resolution\":[1920,1080]", 518400, 16) == NULL);
    P2C_CHECK (sch_tiles_new ("rt_reflections", frame, 0, 16) == NULL);

    //  a full-HD frame: 2073600 pixels over 518400 a tile are 4 bands of 270 rows
    sch_tiles_t *tiles = sch_tiles_new ("rt_reflections", frame, 518400, 16);
    P2C_CHECK (tiles && sch_tiles_count (tiles) == 4 && sch_tiles_width (tiles) == 1920
               && sch_tiles_height (tiles) == 1080);
    char *p2 = tiles ? sch_tiles_params (tiles, 2) : NULL;
    P2C_CHECK (p2 && !strcmp (p2, "{\"bounces\":2,\"lights\":2,\"resolution\":[1920,1080],"
                                  "\"tile\":[0,540,1920,270]}"));
    free (p2);
    sch_tiles_destroy (&tiles);
    P2C_CHECK (tiles == NULL);
    sch_tiles_destroy (&tiles);
    //  capped by max_tiles and by rows
    tiles = sch_tiles_new ("rt_shadows", frame, 1000, 6);
    P2C_CHECK (tiles && sch_tiles_count (tiles) == 6);
    sch_tiles_destroy (&tiles);
    tiles = sch_tiles_new ("rt_shadows", "{\"resolution\":[4096,9]}", 8, 1000);
    P2C_CHECK (tiles && sch_tiles_count (tiles) == 9);
    sch_tiles_destroy (&tiles);

    //  assembled bytes equal the whole frame's encoding, whatever the order
    //  the bands come in; counts add up; a band that is not that band of
    //  this frame is refused and changes nothing
    uint32_t w = 50, h = 37;
    uint8_t *rgb = s_pattern (w, h);
    uint8_t *whole = NULL;
    size_t whole_size = 0;
    P2C_CHECK (s_encode (rgb, w, h, &whole, &whole_size));
    tiles = sch_tiles_new ("rt_global_illumination", "{\"resolution\":[50,37],\"seed\":3}", 500, 8);
    P2C_CHECK (tiles && sch_tiles_count (tiles) == 4);
    size_t n = tiles ? sch_tiles_count (tiles) : 0;
    char *json = NULL;
    uint8_t *png = NULL;
    size_t png_size = 0;
    P2C_CHECK (tiles && !sch_tiles_assemble (tiles, &json, &png, &png_size));
    for (size_t i = 0; i < n; i++) {
        size_t k = n - 1 - i;
        char *params = sch_tiles_params (tiles, k);
        json_t *pj = params ? json_loads (params, 0, NULL) : NULL;
        json_t *tile = json_object_get (pj, "tile");
        uint32_t y = (uint32_t) json_integer_value (json_array_get (tile, 1));
        uint32_t rows = (uint32_t) json_integer_value (json_array_get (tile, 3));
        P2C_CHECK (json_integer_value (json_object_get (pj, "seed")) == 3 && rows >= 9 && rows <= 10);
        uint8_t *band = NULL;
        size_t band_size = 0;
        P2C_CHECK (s_encode (rgb + (size_t) y * w * 3, w, rows, &band, &band_size));
        char *result = s_band_result (w, h, y, rows, 100 + (long) k);
        //  the whole frame in place of a band (an older kernel): refused
        char *old = s_band_result (w, h, y, rows, 1);
        P2C_CHECK (!sch_tiles_put (tiles, k, old, whole, whole_size));
        free (old);
        //  another band's echo: refused
        char *other = s_band_result (w, h, y + 1, rows, 1);
        P2C_CHECK (!sch_tiles_put (tiles, k, other, band, band_size));
        free (other);
        //  a truncated PNG: refused
        P2C_CHECK (!sch_tiles_put (tiles, k, result, band, band_size / 2));
        P2C_CHECK (!sch_tiles_put (tiles, k, "not json", band, band_size));
        P2C_CHECK (sch_tiles_done (tiles) == i);
        P2C_CHECK (sch_tiles_put (tiles, k, result, band, band_size));
        P2C_CHECK (sch_tiles_done (tiles) == i + 1);
        free (result);
        free (band);
        free (params);
        json_decref (pj);
    }
    P2C_CHECK (!sch_tiles_put (tiles, n, "{}", whole, whole_size));
    P2C_CHECK (tiles && sch_tiles_assemble (tiles, &json, &png, &png_size));
    P2C_CHECK (png && png_size == whole_size && !memcmp (png, whole, whole_size));
    //  100+101+102+103 rays, half of each (integer) as intersections
    P2C_CHECK (json && !strcmp (json, "{\"bounces\":2,\"format\":\"png\",\"height\":37,"
                                      "\"intersections\":202,\"lights\":2,\"rays_traced\":406,"
                                      "\"samples_per_pixel\":1,\"width\":50}"));
    free (json);
    free (png);
    //  a band describing another frame (other params) is refused
    char *odd = NULL;
    P2C_CHECK (asprintf (&odd, "{\"bounces\":3,\"format\":\"png\",\"height\":37,\"intersections\":1,"
                         "\"lights\":2,\"rays_traced\":1,\"samples_per_pixel\":1,"
                         "\"tile\":[0,0,50,9],\"width\":50}") > 0);
    uint8_t *band = NULL;
    size_t band_size = 0;
    P2C_CHECK (s_encode (rgb, w, 9, &band, &band_size));
    P2C_CHECK (!sch_tiles_put (tiles, 0, odd, band, band_size));
    free (odd);
    free (band);
    sch_tiles_destroy (&tiles);
    free (whole);
    free (rgb);
}
