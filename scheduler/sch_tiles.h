/*  Full-HD frames across peers. A ray-tracing task whose frame has more
    pixels than a threshold is split into bands of rows, each run as a task
    of its own with the kernels' `tile` parameter; the bands' PNGs are put
    back together into the frame's PNG and result JSON, byte-identical to
    what a single peer renders for the same params (the kernels render a
    tile with the whole frame's camera and pixel seeds, docs/kernels.md).
    Pure: no sockets, no clock; sch_core decides when to use it. */
#ifndef SCH_TILES_H_INCLUDED
#define SCH_TILES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _sch_tiles_t sch_tiles_t;

//  The most tiles a frame is split into
#define SCH_TILES_MAX 64

//  A frame split into tiles, or NULL when the task is not split: not a
//  ray-tracing type (canonical name), params not a JSON object, a `tile`
//  given already, no valid `resolution`, or at most split_px pixels (0:
//  never split). The frame is cut into ceil(pixels / split_px) bands of
//  rows, at most max_tiles (and SCH_TILES_MAX) and at most one per row.
sch_tiles_t *sch_tiles_new (const char *type, const char *params_json, uint64_t split_px,
                            size_t max_tiles);
void sch_tiles_destroy (sch_tiles_t **self_p);

//  Number of tiles (at least 2).
size_t sch_tiles_count (sch_tiles_t *self);

//  Frame width and height in pixels.
uint32_t sch_tiles_width (sch_tiles_t *self);
uint32_t sch_tiles_height (sch_tiles_t *self);

//  The params of tile index: the frame's params plus "tile":[0,y,w,h],
//  compact with sorted keys. The caller frees it.
char *sch_tiles_params (sch_tiles_t *self, size_t index);

//  Takes the result of tile index: true when it is that tile of this frame
//  (its JSON echoes the tile and the frame's size, its PNG has the tile's
//  size and decodes); its pixels and counts are kept. False otherwise (a
//  peer with an older kernel renders the whole frame instead), and nothing
//  is kept. A tile already in is replaced.
bool sch_tiles_put (sch_tiles_t *self, size_t index, const char *result_json,
                    const uint8_t *png, size_t png_size);

//  Number of tiles whose result is in.
size_t sch_tiles_done (sch_tiles_t *self);

//  The frame's result once every tile is in: the tiles' JSON with their
//  rays and intersections summed and without "tile", compact with sorted
//  keys as the agent prints it; the PNG encoded as the agent encodes it.
//  The caller frees both. False when a tile is missing or on failure.
bool sch_tiles_assemble (sch_tiles_t *self, char **result_json_p, uint8_t **png_p,
                         size_t *png_size_p);

void sch_tiles_test (bool verbose);

#endif
