/*  ai_pathfinding: shortest path on a grid with A* (Manhattan or octile
    heuristic) or Dijkstra. Moves are 4-neighbour (cost 1) or, with
    diagonal, 8-neighbour (diagonals cost sqrt 2, no corner cutting).
    Ties in the open list break on lower h, then on insertion order, so the
    path and nodes_explored are the same on every run. Obstacles come as a
    list of [x,y] cells and/or a seeded random density (for benchmarks). */
#include "agt_params.h"
#include "agt_kernels_list.h"
#include "agt_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIDE 1024

enum { P_GRID, P_WIDTH, P_HEIGHT, P_START, P_GOAL, P_OBSTACLES, P_ALGORITHM, P_DIAGONAL,
       P_RANDOM, P_SEED, P_COUNT };
static const agt_param_t s_params [P_COUNT] = {
    [P_GRID] = { .name = "grid_size", .type = AGT_P_INTVEC, .len = 2, .scalar_ok = true, .def = 32, .min = 1, .max = MAX_SIDE },
    [P_WIDTH] = { .name = "width", .type = AGT_P_INT, .def = 0, .min = 1, .max = MAX_SIDE },
    [P_HEIGHT] = { .name = "height", .type = AGT_P_INT, .def = 0, .min = 1, .max = MAX_SIDE },
    [P_START] = { .name = "start", .type = AGT_P_INTVEC, .len = 2, .def = 0, .min = 0, .max = MAX_SIDE - 1 },
    [P_GOAL] = { .name = "goal", .alias = "end", .type = AGT_P_INTVEC, .len = 2, .def = 0, .min = 0, .max = MAX_SIDE - 1 },
    [P_OBSTACLES] = { .name = "obstacles", .type = AGT_P_ARRAY, .min = 0, .max = MAX_SIDE * MAX_SIDE },
    [P_ALGORITHM] = { .name = "algorithm", .type = AGT_P_ENUM, .def_s = "astar", .choices = "astar|dijkstra|a*" },
    [P_DIAGONAL] = { .name = "diagonal", .type = AGT_P_BOOL, .def = 0 },
    [P_RANDOM] = { .name = "random_obstacles", .type = AGT_P_REAL, .def = 0, .min = 0, .max = 0.9 },
    [P_SEED] = { .name = "seed", .type = AGT_P_INT, .def = 1, .min = 0, .max = 9007199254740991.0 },
};

typedef struct {
    double f, h;
    uint32_t order;             //  insertion counter: the last tie-break
    uint32_t cell;
} open_t;

typedef struct {
    open_t *items;
    size_t size, alloc;
} heap_t;

static bool
s_less (const open_t *a, const open_t *b)
{
    if (a->f != b->f)
        return a->f < b->f;
    if (a->h != b->h)
        return a->h < b->h;
    return a->order < b->order;
}

static bool
s_heap_push (heap_t *heap, open_t item)
{
    if (heap->size == heap->alloc) {
        size_t alloc = heap->alloc? heap->alloc * 2: 1024;
        open_t *items = realloc (heap->items, alloc * sizeof *items);
        if (!items)
            return false;
        heap->items = items;
        heap->alloc = alloc;
    }
    size_t k = heap->size++;
    while (k > 0) {
        size_t parent = (k - 1) / 2;
        if (!s_less (&item, &heap->items [parent]))
            break;
        heap->items [k] = heap->items [parent];
        k = parent;
    }
    heap->items [k] = item;
    return true;
}

static open_t
s_heap_pop (heap_t *heap)
{
    open_t top = heap->items [0];
    open_t last = heap->items [--heap->size];
    size_t k = 0;
    while (true) {
        size_t child = 2 * k + 1;
        if (child >= heap->size)
            break;
        if (child + 1 < heap->size && s_less (&heap->items [child + 1], &heap->items [child]))
            child++;
        if (!s_less (&heap->items [child], &last))
            break;
        heap->items [k] = heap->items [child];
        k = child;
    }
    if (heap->size)
        heap->items [k] = last;
    return top;
}

static double
s_heuristic (int x, int y, int gx, int gy, bool diagonal)
{
    int dx = abs (x - gx), dy = abs (y - gy);
    if (!diagonal)
        return dx + dy;
    int lo = dx < dy? dx: dy, hi = dx < dy? dy: dx;
    return (hi - lo) + lo * M_SQRT2;
}

int
k_pathfinding_run (const json_t *params, const uint8_t *payload, size_t payload_len,
                   agt_kernel_out_t *out)
{
    (void) payload;
    (void) payload_len;
    agt_param_val_t v [P_COUNT];
    if (agt_params_read (s_params, P_COUNT, params, v, out))
        return -1;
    int width = (int) (v [P_WIDTH].given? v [P_WIDTH].i: v [P_GRID].v [0]);
    int height = (int) (v [P_HEIGHT].given? v [P_HEIGHT].i: v [P_GRID].v [1]);
    int sx = (int) v [P_START].v [0], sy = (int) v [P_START].v [1];
    int gx = v [P_GOAL].given? (int) v [P_GOAL].v [0]: width - 1;
    int gy = v [P_GOAL].given? (int) v [P_GOAL].v [1]: height - 1;
    if (sx >= width || sy >= height)
        return agt_kernel_fail (out, "invalid_params", "start: must lie inside the %dx%d grid", width, height);
    if (gx >= width || gy >= height)
        return agt_kernel_fail (out, "invalid_params", "goal: must lie inside the %dx%d grid", width, height);
    bool dijkstra = v [P_ALGORITHM].i == 1;
    bool diagonal = v [P_DIAGONAL].i;
    size_t cells = (size_t) width * (size_t) height;

    uint8_t *blocked = calloc (cells, 1);
    double *cost = malloc (cells * sizeof *cost);
    int32_t *came = malloc (cells * sizeof *came);
    uint8_t *closed = calloc (cells, 1);
    heap_t heap = { NULL, 0, 0 };
    if (!blocked || !cost || !came || !closed) {
        free (blocked);
        free (cost);
        free (came);
        free (closed);
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    }
    int rc = 0;
    if (v [P_OBSTACLES].arr) {
        size_t index;
        const json_t *item;
        json_array_foreach (v [P_OBSTACLES].arr, index, item) {
            int64_t ox, oy;
            if (!json_is_array (item) || json_array_size (item) != 2
            ||  !agt_json_int (json_array_get (item, 0), 0, width - 1, &ox)
            ||  !agt_json_int (json_array_get (item, 1), 0, height - 1, &oy)) {
                rc = agt_kernel_fail (out, "invalid_params",
                                      "obstacles: element %zu must be [x,y] inside the %dx%d grid",
                                      index, width, height);
                break;
            }
            blocked [(size_t) oy * width + ox] = 1;
        }
    }
    if (rc == 0 && v [P_RANDOM].r > 0) {
        agt_rng_t rng = { (uint64_t) v [P_SEED].i };
        for (size_t c = 0; c < cells; c++)
            if (agt_rng_unit (&rng) < v [P_RANDOM].r)
                blocked [c] = 1;
        //  Random walls never cover the endpoints: the request names them
        blocked [(size_t) sy * width + sx] = 0;
        blocked [(size_t) gy * width + gx] = 0;
    }

    size_t explored = 0;
    bool found = false;
    size_t start = (size_t) sy * width + sx, goal = (size_t) gy * width + gx;
    static const int dirs [8][2] = { {1,0}, {0,1}, {-1,0}, {0,-1}, {1,1}, {-1,1}, {-1,-1}, {1,-1} };
    int ndirs = diagonal? 8: 4;
    if (rc == 0 && !blocked [start] && !blocked [goal]) {
        for (size_t c = 0; c < cells; c++) {
            cost [c] = INFINITY;
            came [c] = -1;
        }
        uint32_t order = 0;
        cost [start] = 0;
        double h0 = dijkstra? 0: s_heuristic (sx, sy, gx, gy, diagonal);
        if (!s_heap_push (&heap, (open_t) { h0, h0, order++, (uint32_t) start }))
            rc = agt_kernel_fail (out, "kernel_error", "out of memory");
        while (rc == 0 && heap.size) {
            open_t cur = s_heap_pop (&heap);
            if (closed [cur.cell])
                continue;
            closed [cur.cell] = 1;
            explored++;
            if (cur.cell == goal) {
                found = true;
                break;
            }
            int x = (int) (cur.cell % width), y = (int) (cur.cell / width);
            for (int d = 0; d < ndirs; d++) {
                int nx = x + dirs [d][0], ny = y + dirs [d][1];
                if (nx < 0 || ny < 0 || nx >= width || ny >= height)
                    continue;
                size_t next = (size_t) ny * width + nx;
                if (blocked [next] || closed [next])
                    continue;
                //  No squeezing diagonally between two walls
                if (d >= 4 && (blocked [(size_t) y * width + nx] || blocked [(size_t) ny * width + x]))
                    continue;
                double g = cost [cur.cell] + (d >= 4? M_SQRT2: 1.0);
                if (g < cost [next]) {
                    cost [next] = g;
                    came [next] = (int32_t) cur.cell;
                    double h = dijkstra? 0: s_heuristic (nx, ny, gx, gy, diagonal);
                    if (!s_heap_push (&heap, (open_t) { g + h, h, order++, (uint32_t) next })) {
                        rc = agt_kernel_fail (out, "kernel_error", "out of memory");
                        break;
                    }
                }
            }
        }
    }
    json_t *path = json_array ();
    if (rc == 0 && found) {
        //  Walk back from the goal, then reverse into the JSON array
        size_t length = 0;
        for (int64_t c = (int64_t) goal; c >= 0; c = came [c])
            length++;
        int32_t *cells_on_path = malloc (length * sizeof *cells_on_path);
        if (!cells_on_path)
            rc = agt_kernel_fail (out, "kernel_error", "out of memory");
        else {
            size_t k = length;
            for (int64_t c = (int64_t) goal; c >= 0; c = came [c])
                cells_on_path [--k] = (int32_t) c;
            for (k = 0; k < length; k++)
                json_array_append_new (path, json_pack ("[ii]", cells_on_path [k] % width,
                                                        cells_on_path [k] / width));
            free (cells_on_path);
        }
    }
    double distance = found? cost [goal]: -1;
    free (blocked);
    free (cost);
    free (came);
    free (closed);
    free (heap.items);
    if (rc) {
        json_decref (path);
        return rc;
    }
    out->result = json_pack ("{s:o, s:b, s:o, s:I, s:s, s:[ii]}",
                             "path", path, "found", found,
                             "distance", found? agt_num (distance): json_null (),
                             "nodes_explored", (json_int_t) explored,
                             "algorithm", dijkstra? "dijkstra": "astar",
                             "grid_size", width, height);
    return out->result? 0: agt_kernel_fail (out, "kernel_error", "out of memory");
}
