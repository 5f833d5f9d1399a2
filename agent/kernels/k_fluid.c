/*  physics_fluid: Stam's "stable fluids" (GDC 2003) on a 3-D grid of
    grid_size [x,y,z] cells: each step adds density and an upward velocity
    at a source near the bottom centre, then diffuses (Gauss-Seidel,
    solver_iterations sweeps), advects (semi-Lagrangian, trilinear) and
    projects the velocity to be divergence-free. Walls are closed. The
    result is a summary: total density, maximum and mean speed, the centre
    of density, and a SHA-256 over the final density field (rounded text). */
#include "agt_params.h"
#include "agt_kernels_list.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#define WORK_BUDGET 60000000.0      //  cells x iterations x solver_iterations

enum { P_GRID, P_ITER, P_DT, P_DIFF, P_VISC, P_SOLVER, P_COUNT };
static const agt_param_t s_params [P_COUNT] = {
    [P_GRID] = { .name = "grid_size", .type = AGT_P_INTVEC, .len = 3, .scalar_ok = true, .def = 16, .min = 4, .max = 128 },
    [P_ITER] = { .name = "iterations", .alias = "steps", .type = AGT_P_INT, .def = 20, .min = 1, .max = 1000 },
    [P_DT] = { .name = "dt", .type = AGT_P_REAL, .def = 0.1, .min = 0.001, .max = 1 },
    [P_DIFF] = { .name = "diffusion", .type = AGT_P_REAL, .def = 0.0001, .min = 0, .max = 1 },
    [P_VISC] = { .name = "viscosity", .type = AGT_P_REAL, .def = 0.0001, .min = 0, .max = 1 },
    [P_SOLVER] = { .name = "solver_iterations", .type = AGT_P_INT, .def = 10, .min = 1, .max = 50 },
};

typedef struct {
    int nx, ny, nz;             //  interior cells; arrays have a one-cell border
    size_t cells;               //  (nx+2)(ny+2)(nz+2)
    int solver;
} grid_t;

#define IX(g, i, j, k) ((size_t) (i) + (size_t) ((g)->nx + 2) * ((size_t) (j) + (size_t) ((g)->ny + 2) * (size_t) (k)))

//  Walls: b = 1, 2, 3 mirrors the x, y, z velocity component, 0 copies
static void
s_set_bnd (const grid_t *g, int b, double *x)
{
    for (int k = 1; k <= g->nz; k++)
        for (int j = 1; j <= g->ny; j++) {
            x [IX (g, 0, j, k)] = b == 1? -x [IX (g, 1, j, k)]: x [IX (g, 1, j, k)];
            x [IX (g, g->nx + 1, j, k)] = b == 1? -x [IX (g, g->nx, j, k)]: x [IX (g, g->nx, j, k)];
        }
    for (int k = 1; k <= g->nz; k++)
        for (int i = 0; i <= g->nx + 1; i++) {
            x [IX (g, i, 0, k)] = b == 2? -x [IX (g, i, 1, k)]: x [IX (g, i, 1, k)];
            x [IX (g, i, g->ny + 1, k)] = b == 2? -x [IX (g, i, g->ny, k)]: x [IX (g, i, g->ny, k)];
        }
    for (int j = 0; j <= g->ny + 1; j++)
        for (int i = 0; i <= g->nx + 1; i++) {
            x [IX (g, i, j, 0)] = b == 3? -x [IX (g, i, j, 1)]: x [IX (g, i, j, 1)];
            x [IX (g, i, j, g->nz + 1)] = b == 3? -x [IX (g, i, j, g->nz)]: x [IX (g, i, j, g->nz)];
        }
}

static void
s_lin_solve (const grid_t *g, int b, double *x, const double *x0, double a, double c)
{
    for (int it = 0; it < g->solver; it++) {
        for (int k = 1; k <= g->nz; k++)
            for (int j = 1; j <= g->ny; j++)
                for (int i = 1; i <= g->nx; i++)
                    x [IX (g, i, j, k)] = (x0 [IX (g, i, j, k)]
                        + a * (x [IX (g, i - 1, j, k)] + x [IX (g, i + 1, j, k)]
                             + x [IX (g, i, j - 1, k)] + x [IX (g, i, j + 1, k)]
                             + x [IX (g, i, j, k - 1)] + x [IX (g, i, j, k + 1)])) / c;
        s_set_bnd (g, b, x);
    }
}

static void
s_diffuse (const grid_t *g, int b, double *x, const double *x0, double rate, double dt)
{
    double a = dt * rate * g->nx * g->ny;
    s_lin_solve (g, b, x, x0, a, 1 + 6 * a);
}

static double
s_clamp (double v, double lo, double hi)
{
    return v < lo? lo: v > hi? hi: v;
}

static void
s_advect (const grid_t *g, int b, double *d, const double *d0,
          const double *u, const double *v, const double *w, double dt)
{
    for (int k = 1; k <= g->nz; k++)
        for (int j = 1; j <= g->ny; j++)
            for (int i = 1; i <= g->nx; i++) {
                size_t c = IX (g, i, j, k);
                double x = s_clamp (i - dt * g->nx * u [c], 0.5, g->nx + 0.5);
                double y = s_clamp (j - dt * g->ny * v [c], 0.5, g->ny + 0.5);
                double z = s_clamp (k - dt * g->nz * w [c], 0.5, g->nz + 0.5);
                int i0 = (int) x, j0 = (int) y, k0 = (int) z;
                double s1 = x - i0, s0 = 1 - s1, t1 = y - j0, t0 = 1 - t1, r1 = z - k0, r0 = 1 - r1;
                d [c] = s0 * (t0 * (r0 * d0 [IX (g, i0, j0, k0)] + r1 * d0 [IX (g, i0, j0, k0 + 1)])
                            + t1 * (r0 * d0 [IX (g, i0, j0 + 1, k0)] + r1 * d0 [IX (g, i0, j0 + 1, k0 + 1)]))
                      + s1 * (t0 * (r0 * d0 [IX (g, i0 + 1, j0, k0)] + r1 * d0 [IX (g, i0 + 1, j0, k0 + 1)])
                            + t1 * (r0 * d0 [IX (g, i0 + 1, j0 + 1, k0)] + r1 * d0 [IX (g, i0 + 1, j0 + 1, k0 + 1)]));
            }
    s_set_bnd (g, b, d);
}

static void
s_project (const grid_t *g, double *u, double *v, double *w, double *p, double *div)
{
    for (int k = 1; k <= g->nz; k++)
        for (int j = 1; j <= g->ny; j++)
            for (int i = 1; i <= g->nx; i++) {
                div [IX (g, i, j, k)] = -0.5 * ((u [IX (g, i + 1, j, k)] - u [IX (g, i - 1, j, k)]) / g->nx
                                              + (v [IX (g, i, j + 1, k)] - v [IX (g, i, j - 1, k)]) / g->ny
                                              + (w [IX (g, i, j, k + 1)] - w [IX (g, i, j, k - 1)]) / g->nz);
                p [IX (g, i, j, k)] = 0;
            }
    s_set_bnd (g, 0, div);
    s_set_bnd (g, 0, p);
    s_lin_solve (g, 0, p, div, 1, 6);
    for (int k = 1; k <= g->nz; k++)
        for (int j = 1; j <= g->ny; j++)
            for (int i = 1; i <= g->nx; i++) {
                u [IX (g, i, j, k)] -= 0.5 * g->nx * (p [IX (g, i + 1, j, k)] - p [IX (g, i - 1, j, k)]);
                v [IX (g, i, j, k)] -= 0.5 * g->ny * (p [IX (g, i, j + 1, k)] - p [IX (g, i, j - 1, k)]);
                w [IX (g, i, j, k)] -= 0.5 * g->nz * (p [IX (g, i, j, k + 1)] - p [IX (g, i, j, k - 1)]);
            }
    s_set_bnd (g, 1, u);
    s_set_bnd (g, 2, v);
    s_set_bnd (g, 3, w);
}

int
k_fluid_run (const json_t *params, const uint8_t *payload, size_t payload_len, agt_kernel_out_t *out)
{
    (void) payload;
    (void) payload_len;
    agt_param_val_t pv [P_COUNT];
    if (agt_params_read (s_params, P_COUNT, params, pv, out))
        return -1;
    grid_t grid = { (int) pv [P_GRID].v [0], (int) pv [P_GRID].v [1], (int) pv [P_GRID].v [2], 0,
                    (int) pv [P_SOLVER].i };
    grid_t *g = &grid;
    g->cells = (size_t) (g->nx + 2) * (g->ny + 2) * (g->nz + 2);
    int64_t steps = pv [P_ITER].i;
    double interior = (double) g->nx * g->ny * g->nz;
    if (interior * (double) steps * (double) g->solver > WORK_BUDGET)
        return agt_kernel_fail (out, "invalid_params",
                                "iterations: cells x iterations x solver_iterations must be at most %.0f", WORK_BUDGET);
    double *f [10];
    bool ok = true;
    for (int k = 0; k < 10; k++) {
        f [k] = calloc (g->cells, sizeof (double));
        ok = ok && f [k];
    }
    if (!ok) {
        for (int k = 0; k < 10; k++)
            free (f [k]);
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    }
    double *u = f [0], *v = f [1], *w = f [2], *u0 = f [3], *v0 = f [4], *w0 = f [5];
    double *dens = f [6], *dens0 = f [7], *tmp_p = f [8], *tmp_div = f [9];
    double dt = pv [P_DT].r, diff = pv [P_DIFF].r, visc = pv [P_VISC].r;
    int si = g->nx / 2 + 1, sj = 2, sk = g->nz / 2 + 1;
    for (int64_t step = 0; step < steps; step++) {
        //  Source: a puff of density pushed upwards, with a slight sideways swirl
        dens [IX (g, si, sj, sk)] += 10.0 * dt * g->nx;
        v [IX (g, si, sj, sk)] += 2.0 * dt;
        u [IX (g, si, sj, sk)] += 0.5 * dt;
        //  Velocity step
        memcpy (u0, u, g->cells * sizeof *u);
        memcpy (v0, v, g->cells * sizeof *v);
        memcpy (w0, w, g->cells * sizeof *w);
        s_diffuse (g, 1, u, u0, visc, dt);
        s_diffuse (g, 2, v, v0, visc, dt);
        s_diffuse (g, 3, w, w0, visc, dt);
        s_project (g, u, v, w, tmp_p, tmp_div);
        memcpy (u0, u, g->cells * sizeof *u);
        memcpy (v0, v, g->cells * sizeof *v);
        memcpy (w0, w, g->cells * sizeof *w);
        s_advect (g, 1, u, u0, u0, v0, w0, dt);
        s_advect (g, 2, v, v0, u0, v0, w0, dt);
        s_advect (g, 3, w, w0, u0, v0, w0, dt);
        s_project (g, u, v, w, tmp_p, tmp_div);
        //  Density step
        memcpy (dens0, dens, g->cells * sizeof *dens);
        s_diffuse (g, 0, dens, dens0, diff, dt);
        memcpy (dens0, dens, g->cells * sizeof *dens);
        s_advect (g, 0, dens, dens0, u, v, w, dt);
    }
    double total = 0, max_speed = 0, sum_speed = 0, centre [3] = { 0, 0, 0 };
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    ok = ctx && EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) == 1;
    for (int k = 1; k <= g->nz && ok; k++)
        for (int j = 1; j <= g->ny && ok; j++)
            for (int i = 1; i <= g->nx && ok; i++) {
                size_t c = IX (g, i, j, k);
                total += dens [c];
                centre [0] += dens [c] * i;
                centre [1] += dens [c] * j;
                centre [2] += dens [c] * k;
                double speed = sqrt (u [c] * u [c] + v [c] * v [c] + w [c] * w [c]);
                max_speed = speed > max_speed? speed: max_speed;
                sum_speed += speed;
                char text [40];
                int len = snprintf (text, sizeof text, "%.6f\n", agt_round6 (dens [c]));
                ok = EVP_DigestUpdate (ctx, text, (size_t) len) == 1;
            }
    unsigned char digest [32];
    unsigned int digest_len = 0;
    ok = ok && EVP_DigestFinal_ex (ctx, digest, &digest_len) == 1;
    EVP_MD_CTX_free (ctx);
    for (int k = 0; k < 10; k++)
        free (f [k]);
    if (!ok || !isfinite (total) || !isfinite (sum_speed))
        return agt_kernel_fail (out, "kernel_error", ok? "simulation diverged": "out of memory");
    char hex [65];
    for (int k = 0; k < 32; k++)
        snprintf (hex + 2 * k, 3, "%02x", digest [k]);
    //  Centre of density in cell units from 0 (the grid's own coordinates)
    double inv = total > 0? 1.0 / total: 0;
    out->result = json_pack ("{s:[iii], s:I, s:o, s:o, s:o, s:[ooo], s:s}",
        "grid_size", g->nx, g->ny, g->nz, "iterations", (json_int_t) steps,
        "total_density", agt_num (total), "max_velocity", agt_num (max_speed),
        "mean_velocity", agt_num (sum_speed / interior),
        "density_center", agt_num (centre [0] * inv - 0.5), agt_num (centre [1] * inv - 0.5),
        agt_num (centre [2] * inv - 0.5),
        "density_sha256", hex);
    return out->result? 0: agt_kernel_fail (out, "kernel_error", "out of memory");
}
