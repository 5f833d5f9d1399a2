/*  physics_destruction: seeded Voronoi fracture of a box of size [x,y,z]
    metres, voxelised at `resolution` cells per side. Level 1 scatters
    `complexity` seed points around the impact point and gives every voxel
    to its nearest seed; each further level (up to fracture_depth) splits
    again the fragment holding the impact point, with seeds drawn closer to
    the impact, so fragments get smaller near the impact as in real
    fracture. Each fragment gets a volume, centroid, bounding box and an
    outward velocity from the impact (impulse `force` shared by mass). */
#include "agt_params.h"
#include "agt_kernels_list.h"
#include "agt_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAGMENTS 4096
#define LISTED 200
//  Nearest-seed tests: resolution^3 x complexity per level, at most
//  fracture_depth levels; about half a second on a laptop at the bound (the
//  old per-field bounds, 96^3 x 64 x 6, cost 3.4e8)
#define WORK_BUDGET 400000000.0

enum { P_COMPLEXITY, P_DEPTH, P_RES, P_SIZE, P_IMPACT, P_FORCE, P_SEED, P_COUNT };
static const agt_param_t s_params [P_COUNT] = {
    [P_COMPLEXITY] = { .name = "complexity", .type = AGT_P_INT, .def = 8, .min = 2, .max = 1024 },
    [P_DEPTH] = { .name = "fracture_depth", .type = AGT_P_INT, .def = 2, .min = 1, .max = 6 },
    [P_RES] = { .name = "resolution", .type = AGT_P_INT, .def = 32, .min = 4, .max = 96 },
    [P_SIZE] = { .name = "size", .type = AGT_P_ARRAY, .min = 3, .max = 3 },
    [P_IMPACT] = { .name = "impact", .type = AGT_P_ARRAY, .min = 3, .max = 3 },
    [P_FORCE] = { .name = "force", .type = AGT_P_REAL, .def = 10, .min = 0, .max = 10000 },
    [P_SEED] = { .name = "seed", .type = AGT_P_INT, .def = 1, .min = 0, .max = 9007199254740991.0 },
};

typedef struct {
    size_t voxels;
    double sum [3];
    int lo [3], hi [3];
} frag_t;

static bool
s_read3 (const json_t *arr, double lo, double hi, double *out)
{
    for (int k = 0; k < 3; k++)
        if (!agt_json_real (json_array_get (arr, (size_t) k), lo, hi, &out [k]))
            return false;
    return true;
}

int
k_destruction_run (const json_t *params, const uint8_t *payload, size_t payload_len,
                   agt_kernel_out_t *out)
{
    (void) payload;
    (void) payload_len;
    agt_param_val_t v [P_COUNT];
    if (agt_params_read (s_params, P_COUNT, params, v, out))
        return -1;
    double size [3] = { 1, 1, 1 }, impact [3] = { 0.5, 0.5, 0.5 };
    if (v [P_SIZE].arr && !s_read3 (v [P_SIZE].arr, 0.01, 1000, size))
        return agt_kernel_fail (out, "invalid_params", "size: must be [x,y,z] in metres, each in [0.01, 1000]");
    //  The impact point is given relative to the box: [0,1] on each axis
    if (v [P_IMPACT].arr && !s_read3 (v [P_IMPACT].arr, 0, 1, impact))
        return agt_kernel_fail (out, "invalid_params", "impact: must be [x,y,z] relative to the box, each in [0, 1]");
    int res = (int) v [P_RES].i, seeds = (int) v [P_COMPLEXITY].i, depth = (int) v [P_DEPTH].i;
    double work = (double) res * res * res * seeds * depth;
    if (work > WORK_BUDGET)
        return agt_kernel_fail (out, "invalid_params",
                                "complexity: resolution^3 x complexity x fracture_depth is %.0f, "
                                "at most %.0f allowed", work, WORK_BUDGET);
    size_t cells = (size_t) res * res * res;
    int32_t *owner = calloc (cells, sizeof *owner);
    double (*points) [3] = malloc ((size_t) seeds * sizeof *points);
    frag_t *frags = calloc (MAX_FRAGMENTS, sizeof *frags);
    if (!owner || !points || !frags) {
        free (owner);
        free (points);
        free (frags);
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    }
    agt_rng_t rng = { (uint64_t) v [P_SEED].i };
    int count = 1;                  //  fragment 0: the whole box
    int ix = (int) (impact [0] * (res - 1) + 0.5), iy = (int) (impact [1] * (res - 1) + 0.5);
    int iz = (int) (impact [2] * (res - 1) + 0.5);
    double spread = 0.6;            //  seed scatter around the impact, relative to the box
    for (int level = 0; level < depth && count + seeds <= MAX_FRAGMENTS; level++) {
        int32_t target = owner [((size_t) iz * res + iy) * res + ix];
        for (int s = 0; s < seeds; s++)
            for (int a = 0; a < 3; a++)
                points [s][a] = (impact [a] + spread * (2 * agt_rng_unit (&rng) - 1)) * res;
        //  Voxels of the fragment being split go to their nearest seed; a
        //  seed that gets no voxel just yields no fragment
        int first = count;
        for (int z = 0; z < res; z++)
            for (int y = 0; y < res; y++)
                for (int x = 0; x < res; x++) {
                    size_t c = ((size_t) z * res + y) * res + x;
                    if (owner [c] != target)
                        continue;
                    double best = INFINITY;
                    int nearest = 0;
                    for (int s = 0; s < seeds; s++) {
                        double dx = x + 0.5 - points [s][0], dy = y + 0.5 - points [s][1];
                        double dz = z + 0.5 - points [s][2];
                        double d2 = dx * dx + dy * dy + dz * dz;
                        if (d2 < best) {
                            best = d2;
                            nearest = s;
                        }
                    }
                    owner [c] = first + nearest;
                }
        count += seeds;
        spread *= 0.5;
    }
    for (int f = 0; f < count; f++)
        for (int a = 0; a < 3; a++) {
            frags [f].lo [a] = res;
            frags [f].hi [a] = -1;
        }
    for (int z = 0; z < res; z++)
        for (int y = 0; y < res; y++)
            for (int x = 0; x < res; x++) {
                frag_t *f = &frags [owner [((size_t) z * res + y) * res + x]];
                int p [3] = { x, y, z };
                f->voxels++;
                for (int a = 0; a < 3; a++) {
                    f->sum [a] += p [a] + 0.5;
                    f->lo [a] = p [a] < f->lo [a]? p [a]: f->lo [a];
                    f->hi [a] = p [a] > f->hi [a]? p [a]: f->hi [a];
                }
            }
    double cell [3] = { size [0] / res, size [1] / res, size [2] / res };
    double cell_volume = cell [0] * cell [1] * cell [2];
    double total_volume = 0, largest = 0, smallest = INFINITY;
    double hit [3] = { impact [0] * size [0], impact [1] * size [1], impact [2] * size [2] };
    int fragments = 0;
    json_t *list = json_array ();
    for (int f = 0; f < count && list; f++) {
        const frag_t *fr = &frags [f];
        if (fr->voxels == 0)
            continue;
        fragments++;
        double volume = (double) fr->voxels * cell_volume;
        total_volume += volume;
        largest = volume > largest? volume: largest;
        smallest = volume < smallest? volume: smallest;
        if (json_array_size (list) >= LISTED)
            continue;
        double c [3], dir [3], len2 = 0;
        for (int a = 0; a < 3; a++) {
            c [a] = fr->sum [a] / (double) fr->voxels * cell [a];
            dir [a] = c [a] - hit [a];
            len2 += dir [a] * dir [a];
        }
        //  Density 1000 kg/m3; an impulse of `force` shared evenly, pointing away from the impact
        double mass = volume * 1000.0, speed = v [P_FORCE].r / mass / count;
        double len = sqrt (len2);
        for (int a = 0; a < 3; a++)
            dir [a] = len > 0? dir [a] / len * speed: 0;
        json_array_append_new (list, json_pack ("{s:i, s:I, s:o, s:o, s:[ooo], s:[ooo], s:{s:[ooo], s:[ooo]}}",
            "id", fragments - 1, "voxels", (json_int_t) fr->voxels, "volume", agt_num (volume),
            "mass", agt_num (mass), "centroid", agt_num (c [0]), agt_num (c [1]), agt_num (c [2]),
            "velocity", agt_num (dir [0]), agt_num (dir [1]), agt_num (dir [2]),
            "bbox", "min", agt_num (fr->lo [0] * cell [0]), agt_num (fr->lo [1] * cell [1]), agt_num (fr->lo [2] * cell [2]),
                    "max", agt_num ((fr->hi [0] + 1) * cell [0]), agt_num ((fr->hi [1] + 1) * cell [1]),
                    agt_num ((fr->hi [2] + 1) * cell [2])));
    }
    free (owner);
    free (points);
    free (frags);
    if (!list)
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    out->result = json_pack ("{s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:i}",
        "fragments", fragments, "fracture_depth", depth,
        "total_volume", agt_num (total_volume), "original_volume", agt_num (size [0] * size [1] * size [2]),
        "largest_volume", agt_num (largest), "smallest_volume", agt_num (smallest),
        "fragment_list", list, "resolution", res);
    return out->result? 0: agt_kernel_fail (out, "kernel_error", "out of memory");
}
