/*  physics_rigid_body: spheres falling under gravity in a closed box
    ([-5,5] x [0,10] x [-5,5] metres) with sphere-sphere and wall collisions
    (impulses with a restitution coefficient, then positional correction).
    Semi-implicit Euler at a fixed dt. Bodies come from `objects` or are
    placed from `seed` (num_objects of them). Pairs are tested all against
    all, so n*n*steps is bounded. The result gives the collision counts, the
    final energy and centre of mass, the first 100 final states and a
    SHA-256 over all final states (as rounded text) to compare runs. */
#include "agt_params.h"
#include "agt_kernels_list.h"
#include "agt_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#define MAX_OBJECTS 2000
#define PAIR_BUDGET 400000000.0     //  n * n * steps
#define HALF 5.0
#define TOP 10.0
#define LISTED 100

enum { P_NUM, P_OBJECTS, P_STEPS, P_DT, P_SEED, P_GRAVITY, P_RESTITUTION, P_COUNT };
static const agt_param_t s_params [P_COUNT] = {
    [P_NUM] = { .name = "num_objects", .type = AGT_P_INT, .def = 50, .min = 1, .max = MAX_OBJECTS },
    [P_OBJECTS] = { .name = "objects", .type = AGT_P_ARRAY, .min = 1, .max = MAX_OBJECTS },
    [P_STEPS] = { .name = "simulation_steps", .alias = "steps", .type = AGT_P_INT, .def = 1000, .min = 1, .max = 100000 },
    [P_DT] = { .name = "dt", .type = AGT_P_REAL, .def = 0.01, .min = 0.0001, .max = 0.05 },
    [P_SEED] = { .name = "seed", .type = AGT_P_INT, .def = 1, .min = 0, .max = 9007199254740991.0 },
    [P_GRAVITY] = { .name = "gravity", .type = AGT_P_REAL, .def = -9.81, .min = -100, .max = 100 },
    [P_RESTITUTION] = { .name = "restitution", .type = AGT_P_REAL, .def = 0.8, .min = 0, .max = 1 },
};

typedef struct {
    double p [3], v [3];
    double radius, mass;
} body_t;

//  Reads "key": [x,y,z] of an object, each in [lo, hi]
static bool
s_vec3 (const json_t *object, const char *key, double lo, double hi, double *out, bool required)
{
    const json_t *item = json_object_get (object, key);
    if (!item)
        return !required;
    if (!json_is_array (item) || json_array_size (item) != 3)
        return false;
    for (int k = 0; k < 3; k++)
        if (!agt_json_real (json_array_get (item, (size_t) k), lo, hi, &out [k]))
            return false;
    return true;
}

static void
s_collide_walls (body_t *b, double restitution, uint64_t *bounces)
{
    double lo [3] = { -HALF, 0, -HALF }, hi [3] = { HALF, TOP, HALF };
    for (int a = 0; a < 3; a++) {
        if (b->p [a] - b->radius < lo [a]) {
            b->p [a] = lo [a] + b->radius;
            if (b->v [a] < 0) {
                b->v [a] = -b->v [a] * restitution;
                (*bounces)++;
            }
        }
        if (b->p [a] + b->radius > hi [a]) {
            b->p [a] = hi [a] - b->radius;
            if (b->v [a] > 0) {
                b->v [a] = -b->v [a] * restitution;
                (*bounces)++;
            }
        }
    }
}

int
k_rigid_body_run (const json_t *params, const uint8_t *payload, size_t payload_len,
                  agt_kernel_out_t *out)
{
    (void) payload;
    (void) payload_len;
    agt_param_val_t v [P_COUNT];
    if (agt_params_read (s_params, P_COUNT, params, v, out))
        return -1;
    const json_t *list = v [P_OBJECTS].arr;
    size_t n = list? json_array_size (list): (size_t) v [P_NUM].i;
    int64_t steps = v [P_STEPS].i;
    if ((double) n * (double) n * (double) steps > PAIR_BUDGET)
        return agt_kernel_fail (out, "invalid_params",
                                "simulation_steps: objects^2 x steps must be at most %.0f", PAIR_BUDGET);
    body_t *bodies = calloc (n, sizeof *bodies);
    if (!bodies)
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    agt_rng_t rng = { (uint64_t) v [P_SEED].i };
    for (size_t k = 0; k < n; k++) {
        body_t *b = &bodies [k];
        if (list) {
            const json_t *o = json_array_get (list, k);
            b->radius = 0.25;
            b->mass = 1.0;
            const json_t *r = json_object_get (o, "radius"), *m = json_object_get (o, "mass");
            if (!json_is_object (o)
            ||  !s_vec3 (o, "position", -HALF, TOP, b->p, true)
            ||  !s_vec3 (o, "velocity", -100, 100, b->v, false)
            ||  (r && !agt_json_real (r, 0.01, 2.0, &b->radius))
            ||  (m && !agt_json_real (m, 0.001, 1000, &b->mass))) {
                free (bodies);
                return agt_kernel_fail (out, "invalid_params",
                    "objects: element %zu must be {\"position\":[x,y,z] (within the box), "
                    "\"velocity\":[vx,vy,vz] (|v|<=100), \"radius\" 0.01..2, \"mass\" 0.001..1000}", k);
            }
        }
        else {
            b->radius = 0.1 + 0.2 * agt_rng_unit (&rng);
            b->mass = b->radius * b->radius * b->radius * 1000.0;
            b->p [0] = -HALF + 0.5 + (2 * HALF - 1) * agt_rng_unit (&rng);
            b->p [1] = 1.0 + (TOP - 2) * agt_rng_unit (&rng);
            b->p [2] = -HALF + 0.5 + (2 * HALF - 1) * agt_rng_unit (&rng);
            for (int a = 0; a < 3; a++)
                b->v [a] = 4.0 * agt_rng_unit (&rng) - 2.0;
        }
    }
    double dt = v [P_DT].r, g = v [P_GRAVITY].r, e = v [P_RESTITUTION].r;
    uint64_t collisions = 0, bounces = 0;
    for (int64_t step = 0; step < steps; step++) {
        for (size_t k = 0; k < n; k++) {
            body_t *b = &bodies [k];
            b->v [1] += g * dt;
            for (int a = 0; a < 3; a++)
                b->p [a] += b->v [a] * dt;
            s_collide_walls (b, e, &bounces);
        }
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++) {
                body_t *a = &bodies [i], *b = &bodies [j];
                double d [3] = { b->p [0] - a->p [0], b->p [1] - a->p [1], b->p [2] - a->p [2] };
                double dist2 = d [0] * d [0] + d [1] * d [1] + d [2] * d [2];
                double reach = a->radius + b->radius;
                if (dist2 >= reach * reach || dist2 == 0)
                    continue;
                double dist = sqrt (dist2);
                double nrm [3] = { d [0] / dist, d [1] / dist, d [2] / dist };
                double rel = (b->v [0] - a->v [0]) * nrm [0] + (b->v [1] - a->v [1]) * nrm [1]
                           + (b->v [2] - a->v [2]) * nrm [2];
                double inv_a = 1.0 / a->mass, inv_b = 1.0 / b->mass;
                if (rel < 0) {
                    double impulse = -(1 + e) * rel / (inv_a + inv_b);
                    for (int c = 0; c < 3; c++) {
                        a->v [c] -= impulse * inv_a * nrm [c];
                        b->v [c] += impulse * inv_b * nrm [c];
                    }
                    collisions++;
                }
                //  Push the pair apart in proportion to inverse mass
                double overlap = reach - dist;
                for (int c = 0; c < 3; c++) {
                    a->p [c] -= overlap * inv_a / (inv_a + inv_b) * nrm [c];
                    b->p [c] += overlap * inv_b / (inv_a + inv_b) * nrm [c];
                }
            }
    }
    double energy = 0, mass = 0, com [3] = { 0, 0, 0 };
    json_t *states = json_array ();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    bool ok = states && ctx && EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) == 1;
    for (size_t k = 0; k < n && ok; k++) {
        const body_t *b = &bodies [k];
        double speed2 = b->v [0] * b->v [0] + b->v [1] * b->v [1] + b->v [2] * b->v [2];
        energy += 0.5 * b->mass * speed2 + b->mass * -g * b->p [1];
        mass += b->mass;
        for (int a = 0; a < 3; a++)
            com [a] += b->mass * b->p [a];
        char line [256];
        int len = snprintf (line, sizeof line, "%.6f %.6f %.6f %.6f %.6f %.6f\n",
                            agt_round6 (b->p [0]), agt_round6 (b->p [1]), agt_round6 (b->p [2]),
                            agt_round6 (b->v [0]), agt_round6 (b->v [1]), agt_round6 (b->v [2]));
        ok = EVP_DigestUpdate (ctx, line, (size_t) len) == 1;
        if (k < LISTED)
            json_array_append_new (states, json_pack ("{s:I, s:[ooo], s:[ooo], s:o}", "id", (json_int_t) k,
                "position", agt_num (b->p [0]), agt_num (b->p [1]), agt_num (b->p [2]),
                "velocity", agt_num (b->v [0]), agt_num (b->v [1]), agt_num (b->v [2]),
                "radius", agt_num (b->radius)));
    }
    unsigned char digest [32];
    unsigned int digest_len = 0;
    ok = ok && EVP_DigestFinal_ex (ctx, digest, &digest_len) == 1;
    EVP_MD_CTX_free (ctx);
    free (bodies);
    if (!ok || !isfinite (energy)) {
        json_decref (states);
        return agt_kernel_fail (out, "kernel_error", ok? "simulation diverged": "out of memory");
    }
    char hex [65];
    for (int k = 0; k < 32; k++)
        snprintf (hex + 2 * k, 3, "%02x", digest [k]);
    out->result = json_pack ("{s:I, s:I, s:I, s:I, s:o, s:[ooo], s:o, s:s}",
                             "num_objects", (json_int_t) n, "simulation_steps", (json_int_t) steps,
                             "collisions", (json_int_t) collisions, "wall_bounces", (json_int_t) bounces,
                             "total_energy", agt_num (energy),
                             "center_of_mass", agt_num (com [0] / mass), agt_num (com [1] / mass),
                             agt_num (com [2] / mass),
                             "objects", states, "state_sha256", hex);
    return out->result? 0: agt_kernel_fail (out, "kernel_error", "out of memory");
}
