/*  ai_procedural: seeded level generation on a w x h grid of '#' (wall) and
    '.' (floor), returned as one string per row.
    dungeon: up to max_rooms rectangles placed at random without overlap,
      each joined to the previous one by an L-shaped corridor.
    cave: cellular automaton (fill, then smoothing by the 4-5 rule), then the
      floor regions (4-connected) are found and each smaller region is joined
      to the largest by a straight tunnel, so the cave is one piece.
    All randomness comes from splitmix64 seeded with seed. */
#include "agt_params.h"
#include "agt_kernels_list.h"
#include "agt_rng.h"

#include <stdlib.h>
#include <string.h>

enum { P_SIZE, P_TYPE, P_SEED, P_MAX_ROOMS, P_FILL, P_SMOOTH, P_COUNT };
static const agt_param_t s_params [P_COUNT] = {
    [P_SIZE] = { .name = "size", .type = AGT_P_INTVEC, .len = 2, .scalar_ok = true, .def = 64, .min = 8, .max = 512 },
    [P_TYPE] = { .name = "type", .type = AGT_P_ENUM, .def_s = "dungeon", .choices = "dungeon|cave" },
    [P_SEED] = { .name = "seed", .type = AGT_P_INT, .def = 42, .min = 0, .max = 9007199254740991.0 },
    [P_MAX_ROOMS] = { .name = "max_rooms", .type = AGT_P_INT, .def = 12, .min = 1, .max = 200 },
    [P_FILL] = { .name = "fill", .type = AGT_P_REAL, .def = 0.45, .min = 0.3, .max = 0.7 },
    [P_SMOOTH] = { .name = "smoothing", .type = AGT_P_INT, .def = 5, .min = 0, .max = 20 },
};

typedef struct {
    int x, y, w, h;
} rect_t;

typedef struct {
    int w, h;
    char *cells;                //  w*h of '#' or '.'
} map_t;

static void
s_carve (map_t *map, int x, int y)
{
    if (x > 0 && y > 0 && x < map->w - 1 && y < map->h - 1)
        map->cells [(size_t) y * map->w + x] = '.';
}

//  An L-shaped corridor: horizontal first, then vertical
static void
s_corridor (map_t *map, int x1, int y1, int x2, int y2)
{
    for (int x = x1; x != x2; x += x2 > x1? 1: -1)
        s_carve (map, x, y1);
    for (int y = y1; y != y2; y += y2 > y1? 1: -1)
        s_carve (map, x2, y);
    s_carve (map, x2, y2);
}

static void
s_dungeon (map_t *map, agt_rng_t *rng, int max_rooms, json_t *rooms, json_t *links)
{
    rect_t *placed = malloc ((size_t) max_rooms * sizeof *placed);
    if (!placed)
        return;
    int count = 0;
    int max_side = map->w < map->h? map->w: map->h;
    int room_max = max_side / 4 < 4? 4: max_side / 4;
    if (room_max > 16)
        room_max = 16;
    //  A bounded number of tries: a crowded map just gets fewer rooms
    for (int attempt = 0; attempt < max_rooms * 10 && count < max_rooms; attempt++) {
        rect_t r;
        r.w = 3 + (int) agt_rng_below (rng, (uint32_t) (room_max - 2));
        r.h = 3 + (int) agt_rng_below (rng, (uint32_t) (room_max - 2));
        if (r.w > map->w - 2 || r.h > map->h - 2)
            continue;
        r.x = 1 + (int) agt_rng_below (rng, (uint32_t) (map->w - r.w - 1));
        r.y = 1 + (int) agt_rng_below (rng, (uint32_t) (map->h - r.h - 1));
        bool overlaps = false;
        for (int k = 0; k < count && !overlaps; k++) {
            const rect_t *o = &placed [k];
            //  Keep one wall cell between rooms
            overlaps = r.x <= o->x + o->w && o->x <= r.x + r.w && r.y <= o->y + o->h && o->y <= r.y + r.h;
        }
        if (overlaps)
            continue;
        for (int y = r.y; y < r.y + r.h; y++)
            for (int x = r.x; x < r.x + r.w; x++)
                s_carve (map, x, y);
        if (count > 0) {
            const rect_t *p = &placed [count - 1];
            s_corridor (map, p->x + p->w / 2, p->y + p->h / 2, r.x + r.w / 2, r.y + r.h / 2);
            json_array_append_new (links, json_pack ("[ii]", count - 1, count));
        }
        placed [count++] = r;
        json_array_append_new (rooms, json_pack ("{s:i, s:i, s:i, s:i}", "x", r.x, "y", r.y,
                                                 "w", r.w, "h", r.h));
    }
    free (placed);
}

static int
s_wall_neighbours (const map_t *map, int x, int y)
{
    int walls = 0;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
            if (!dx && !dy)
                continue;
            int nx = x + dx, ny = y + dy;
            if (nx < 0 || ny < 0 || nx >= map->w || ny >= map->h || map->cells [(size_t) ny * map->w + nx] == '#')
                walls++;
        }
    return walls;
}

static int
s_cave (map_t *map, agt_rng_t *rng, double fill, int smoothing, json_t *rooms, json_t *links)
{
    size_t cells = (size_t) map->w * map->h;
    for (int y = 1; y < map->h - 1; y++)
        for (int x = 1; x < map->w - 1; x++)
            map->cells [(size_t) y * map->w + x] = agt_rng_unit (rng) < fill? '#': '.';
    char *next = malloc (cells);
    int32_t *region = malloc (cells * sizeof *region);
    int32_t *stack = malloc (cells * sizeof *stack);
    if (!next || !region || !stack) {
        free (next);
        free (region);
        free (stack);
        return -1;
    }
    for (int pass = 0; pass < smoothing; pass++) {
        memcpy (next, map->cells, cells);
        for (int y = 1; y < map->h - 1; y++)
            for (int x = 1; x < map->w - 1; x++) {
                int walls = s_wall_neighbours (map, x, y);
                next [(size_t) y * map->w + x] = walls > 4? '#': walls < 4? '.': map->cells [(size_t) y * map->w + x];
            }
        memcpy (map->cells, next, cells);
    }
    //  Label floor regions by flood fill, in row-major order of their first cell
    for (size_t c = 0; c < cells; c++)
        region [c] = -1;
    int regions = 0, largest = -1;
    size_t largest_size = 0;
    typedef struct { int x0, y0, x1, y1; size_t size; int fx, fy; } info_t;
    info_t *info = NULL;
    for (size_t c = 0; c < cells; c++) {
        if (map->cells [c] != '.' || region [c] >= 0)
            continue;
        info_t *grown = realloc (info, (size_t) (regions + 1) * sizeof *info);
        if (!grown)
            break;
        info = grown;
        info_t *r = &info [regions];
        *r = (info_t) { map->w, map->h, -1, -1, 0, (int) (c % map->w), (int) (c / map->w) };
        size_t top = 0;
        stack [top++] = (int32_t) c;
        region [c] = regions;
        while (top) {
            int32_t cur = stack [--top];
            int x = cur % map->w, y = cur / map->w;
            r->size++;
            if (x < r->x0) r->x0 = x;
            if (y < r->y0) r->y0 = y;
            if (x > r->x1) r->x1 = x;
            if (y > r->y1) r->y1 = y;
            static const int dirs [4][2] = { {1,0}, {-1,0}, {0,1}, {0,-1} };
            for (int d = 0; d < 4; d++) {
                int nx = x + dirs [d][0], ny = y + dirs [d][1];
                size_t n = (size_t) ny * map->w + nx;
                if (nx >= 0 && ny >= 0 && nx < map->w && ny < map->h
                &&  map->cells [n] == '.' && region [n] < 0) {
                    region [n] = regions;
                    stack [top++] = (int32_t) n;
                }
            }
        }
        if (r->size > largest_size) {
            largest_size = r->size;
            largest = regions;
        }
        regions++;
    }
    for (int k = 0; k < regions; k++) {
        const info_t *r = &info [k];
        json_array_append_new (rooms, json_pack ("{s:i, s:i, s:i, s:i, s:I}", "x", r->x0, "y", r->y0,
                                                 "w", r->x1 - r->x0 + 1, "h", r->y1 - r->y0 + 1,
                                                 "cells", (json_int_t) r->size));
        if (k != largest) {
            const info_t *main_region = &info [largest];
            s_corridor (map, r->fx, r->fy, main_region->fx, main_region->fy);
            json_array_append_new (links, json_pack ("[ii]", k, largest));
        }
    }
    free (info);
    free (next);
    free (region);
    free (stack);
    return 0;
}

int
k_procedural_run (const json_t *params, const uint8_t *payload, size_t payload_len,
                  agt_kernel_out_t *out)
{
    (void) payload;
    (void) payload_len;
    agt_param_val_t v [P_COUNT];
    if (agt_params_read (s_params, P_COUNT, params, v, out))
        return -1;
    map_t map = { (int) v [P_SIZE].v [0], (int) v [P_SIZE].v [1], NULL };
    map.cells = malloc ((size_t) map.w * map.h);
    json_t *rooms = json_array (), *links = json_array (), *grid = json_array ();
    if (!map.cells || !rooms || !links || !grid) {
        free (map.cells);
        json_decref (rooms);
        json_decref (links);
        json_decref (grid);
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    }
    memset (map.cells, '#', (size_t) map.w * map.h);
    agt_rng_t rng = { (uint64_t) v [P_SEED].i };
    bool cave = v [P_TYPE].i == 1;
    int rc = 0;
    if (cave)
        rc = s_cave (&map, &rng, v [P_FILL].r, (int) v [P_SMOOTH].i, rooms, links);
    else
        s_dungeon (&map, &rng, (int) v [P_MAX_ROOMS].i, rooms, links);
    size_t floor = 0;
    for (int y = 0; y < map.h; y++) {
        const char *row = map.cells + (size_t) y * map.w;
        for (int x = 0; x < map.w; x++)
            floor += row [x] == '.';
        json_array_append_new (grid, json_stringn (row, (size_t) map.w));
    }
    free (map.cells);
    if (rc) {
        json_decref (rooms);
        json_decref (links);
        json_decref (grid);
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    }
    out->result = json_pack ("{s:o, s:o, s:o, s:I, s:s, s:[ii], s:I}",
                             "grid", grid, "rooms", rooms, "connections", links,
                             "seed", (json_int_t) v [P_SEED].i, "type", cave? "cave": "dungeon",
                             "size", map.w, map.h, "floor_cells", (json_int_t) floor);
    return out->result? 0: agt_kernel_fail (out, "kernel_error", "out of memory");
}
