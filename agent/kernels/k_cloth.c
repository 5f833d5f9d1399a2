/*  physics_cloth: a square cloth of grid_size x grid_size particles (1 m
    wide, hanging in the x-y plane), position Verlet integration under
    gravity and a steady wind along z, with structural and shear distance
    constraints relaxed `iterations` times per step (Jakobsen 2001).
    Pinned particles (top corners, the whole top row, or none) never move.
    The result is a summary of bounded size: bounding box, centre, maximum
    stretch of any structural spring, a 5x5 subsample of positions and a
    SHA-256 over all final positions (as rounded text). */
#include "agt_params.h"
#include "agt_kernels_list.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#define WORK_BUDGET 30000000.0     //  particles x timesteps x iterations

enum { P_GRID, P_STEPS, P_DT, P_ITER, P_PINNED, P_WIND, P_COUNT };
static const agt_param_t s_params [P_COUNT] = {
    [P_GRID] = { .name = "grid_size", .type = AGT_P_INTVEC, .len = 2, .scalar_ok = true, .def = 32, .min = 2, .max = 256 },
    [P_STEPS] = { .name = "timesteps", .alias = "steps", .type = AGT_P_INT, .def = 200, .min = 1, .max = 10000 },
    [P_DT] = { .name = "dt", .type = AGT_P_REAL, .def = 0.016, .min = 0.001, .max = 0.05 },
    [P_ITER] = { .name = "iterations", .type = AGT_P_INT, .def = 5, .min = 1, .max = 50 },
    [P_PINNED] = { .name = "pinned", .type = AGT_P_ENUM, .def_s = "corners", .choices = "corners|top|none" },
    [P_WIND] = { .name = "wind", .type = AGT_P_REAL, .def = 2.0, .min = -50, .max = 50 },
};

typedef struct {
    int a, b;
    double rest;
} spring_t;

int
k_cloth_run (const json_t *params, const uint8_t *payload, size_t payload_len, agt_kernel_out_t *out)
{
    (void) payload;
    (void) payload_len;
    agt_param_val_t v [P_COUNT];
    if (agt_params_read (s_params, P_COUNT, params, v, out))
        return -1;
    int nx = (int) v [P_GRID].v [0], ny = (int) v [P_GRID].v [1];
    size_t count = (size_t) nx * ny;
    int64_t steps = v [P_STEPS].i, iterations = v [P_ITER].i;
    if ((double) count * (double) steps * (double) iterations > WORK_BUDGET)
        return agt_kernel_fail (out, "invalid_params",
                                "timesteps: particles x timesteps x iterations must be at most %.0f", WORK_BUDGET);
    double *pos = malloc (count * 3 * sizeof *pos);
    double *prev = malloc (count * 3 * sizeof *prev);
    uint8_t *pinned = calloc (count, 1);
    size_t spring_max = count * 4;
    spring_t *springs = malloc (spring_max * sizeof *springs);
    if (!pos || !prev || !pinned || !springs) {
        free (pos);
        free (prev);
        free (pinned);
        free (springs);
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    }
    //  1 m wide, spacing kept equal in both directions; row 0 is the top
    double spacing = 1.0 / (nx - 1);
    for (int y = 0; y < ny; y++)
        for (int x = 0; x < nx; x++) {
            size_t k = (size_t) y * nx + x;
            pos [k * 3] = x * spacing;
            pos [k * 3 + 1] = 2.0 - y * spacing;
            pos [k * 3 + 2] = 0;
            if ((v [P_PINNED].i == 0 && y == 0 && (x == 0 || x == nx - 1)) || (v [P_PINNED].i == 1 && y == 0))
                pinned [k] = 1;
        }
    memcpy (prev, pos, count * 3 * sizeof *pos);
    size_t springs_n = 0;
    double diagonal = spacing * M_SQRT2;
    for (int y = 0; y < ny; y++)
        for (int x = 0; x < nx; x++) {
            int k = y * nx + x;
            if (x + 1 < nx)
                springs [springs_n++] = (spring_t) { k, k + 1, spacing };
            if (y + 1 < ny)
                springs [springs_n++] = (spring_t) { k, k + nx, spacing };
            if (x + 1 < nx && y + 1 < ny) {
                springs [springs_n++] = (spring_t) { k, k + nx + 1, diagonal };
                springs [springs_n++] = (spring_t) { k + 1, k + nx, diagonal };
            }
        }
    size_t structural_end = springs_n;      //  stretch is measured over every spring, against its rest length
    double dt2 = v [P_DT].r * v [P_DT].r;
    double accel [3] = { 0, -9.81, v [P_WIND].r };
    const double damping = 0.99;            //  air drag, keeps the cloth from ringing forever
    for (int64_t step = 0; step < steps; step++) {
        for (size_t k = 0; k < count; k++) {
            if (pinned [k])
                continue;
            for (int a = 0; a < 3; a++) {
                double cur = pos [k * 3 + a];
                double next = cur + (cur - prev [k * 3 + a]) * damping + accel [a] * dt2;
                prev [k * 3 + a] = cur;
                pos [k * 3 + a] = next;
            }
        }
        for (int64_t it = 0; it < iterations; it++)
            for (size_t s = 0; s < springs_n; s++) {
                const spring_t *sp = &springs [s];
                double *pa = pos + (size_t) sp->a * 3, *pb = pos + (size_t) sp->b * 3;
                double d [3] = { pb [0] - pa [0], pb [1] - pa [1], pb [2] - pa [2] };
                double len = sqrt (d [0] * d [0] + d [1] * d [1] + d [2] * d [2]);
                if (len == 0)
                    continue;
                double wa = pinned [sp->a]? 0: 1, wb = pinned [sp->b]? 0: 1;
                if (wa + wb == 0)
                    continue;
                double corr = (len - sp->rest) / len / (wa + wb);
                for (int c = 0; c < 3; c++) {
                    pa [c] += d [c] * corr * wa;
                    pb [c] -= d [c] * corr * wb;
                }
            }
    }
    double lo [3] = { INFINITY, INFINITY, INFINITY }, hi [3] = { -INFINITY, -INFINITY, -INFINITY };
    double centre [3] = { 0, 0, 0 }, stretch = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    bool ok = ctx && EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) == 1;
    for (size_t k = 0; k < count && ok; k++) {
        char line [128];
        for (int a = 0; a < 3; a++) {
            double p = pos [k * 3 + a];
            lo [a] = p < lo [a]? p: lo [a];
            hi [a] = p > hi [a]? p: hi [a];
            centre [a] += p;
        }
        int len = snprintf (line, sizeof line, "%.6f %.6f %.6f\n", agt_round6 (pos [k * 3]),
                            agt_round6 (pos [k * 3 + 1]), agt_round6 (pos [k * 3 + 2]));
        ok = EVP_DigestUpdate (ctx, line, (size_t) len) == 1;
    }
    for (size_t s = 0; s < structural_end; s++) {
        const double *pa = pos + (size_t) springs [s].a * 3, *pb = pos + (size_t) springs [s].b * 3;
        double d [3] = { pb [0] - pa [0], pb [1] - pa [1], pb [2] - pa [2] };
        double ratio = sqrt (d [0] * d [0] + d [1] * d [1] + d [2] * d [2]) / springs [s].rest;
        stretch = ratio > stretch? ratio: stretch;
    }
    unsigned char digest [32];
    unsigned int digest_len = 0;
    ok = ok && EVP_DigestFinal_ex (ctx, digest, &digest_len) == 1;
    EVP_MD_CTX_free (ctx);
    json_t *sample = json_array ();
    for (int sy = 0; sy < 5 && sample; sy++)
        for (int sx = 0; sx < 5; sx++) {
            int x = sx * (nx - 1) / 4, y = sy * (ny - 1) / 4;
            const double *p = pos + ((size_t) y * nx + x) * 3;
            json_array_append_new (sample, json_pack ("{s:[ii], s:[ooo]}", "index", x, y,
                                   "position", agt_num (p [0]), agt_num (p [1]), agt_num (p [2])));
        }
    free (pos);
    free (prev);
    free (pinned);
    free (springs);
    if (!ok || !sample || !isfinite (centre [0] + centre [1] + centre [2])) {
        json_decref (sample);
        return agt_kernel_fail (out, "kernel_error", ok? "simulation diverged": "out of memory");
    }
    char hex [65];
    for (int k = 0; k < 32; k++)
        snprintf (hex + 2 * k, 3, "%02x", digest [k]);
    out->result = json_pack ("{s:[ii], s:I, s:I, s:{s:[ooo], s:[ooo]}, s:[ooo], s:o, s:o, s:s}",
        "grid_size", nx, ny, "timesteps", (json_int_t) steps, "springs", (json_int_t) springs_n,
        "bounding_box", "min", agt_num (lo [0]), agt_num (lo [1]), agt_num (lo [2]),
                        "max", agt_num (hi [0]), agt_num (hi [1]), agt_num (hi [2]),
        "center", agt_num (centre [0] / count), agt_num (centre [1] / count), agt_num (centre [2] / count),
        "max_stretch", agt_num (stretch), "sample", sample, "positions_sha256", hex);
    return out->result? 0: agt_kernel_fail (out, "kernel_error", "out of memory");
}
