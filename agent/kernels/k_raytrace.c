/*  rt_reflections, rt_shadows, rt_global_illumination: one ray tracer with
    three shading modes over the same kind of scene, rendered to a PNG.
    Scene: a checkered ground plane (y = 0), `spheres` spheres placed from
    the seed, `lights` point or spherical lights above, a sky gradient.
    - rt_shadows: direct light with soft shadows (shadow rays aimed at random
      points on spherical lights), anti-aliased by samples_per_pixel.
    - rt_reflections: direct light with hard shadows and a specular
      highlight, plus mirror reflections followed for up to `bounces`.
    - rt_global_illumination: path tracing: at each hit, direct light by a
      shadow ray per light, then one cosine-weighted bounce; the sky lights
      the scene too; `bounces` bounds the path length.
    Randomness: splitmix64 seeded per pixel from (seed, pixel index), so the
    image does not depend on the order pixels are rendered in.
    `tile` [x, y, w, h] renders only that rectangle of the frame, as a PNG
    of w x h: the camera, the pixel seeds and the work budget are the whole
    frame's, so its pixels are byte-identical to the same region of the
    whole render, and the scheduler (sch_tiles) can run a full-HD frame as
    tiles on several peers and assemble the same PNG. Only + - * /
    and sqrt on doubles in the hot path (-ffp-contract=off): byte-equal PNGs
    on every x86_64 build. */
#include "agt_image.h"
#include "agt_params.h"
#include "agt_kernels_list.h"
#include "agt_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

//  Work per task: ray segments (pixels x samples x (bounces+1)) times the
//  cost of each (a test per sphere, a shadow ray per light); keeps a task
//  to about a second and a half on a laptop
#define SEGMENT_BUDGET (1u << 23)
#define WORK_BUDGET 600000000.0
#define MAX_SPHERES 32
//  Frames up to 4K (4096 x 2160 and 3840 x 2160 alike); the work budget
//  above bounds what a frame may cost, whatever its shape
#define MAX_SIDE 4096
#define MAX_LIGHTS 8

typedef enum { MODE_SHADOWS, MODE_REFLECTIONS, MODE_GI } mode_t_;

enum { P_RES, P_BOUNCES, P_LIGHTS, P_SPP, P_SPHERES, P_SEED, P_TILE, P_COUNT };

//  One table per kernel: the defaults differ by what each mode needs
static const agt_param_t s_params_shadows [P_COUNT] = {
    [P_RES] = { .name = "resolution", .type = AGT_P_INTVEC, .len = 2, .def = 256, .min = 8, .max = MAX_SIDE },
    [P_BOUNCES] = { .name = "bounces", .type = AGT_P_INT, .def = 0, .min = 0, .max = 10 },
    [P_LIGHTS] = { .name = "lights", .type = AGT_P_INT, .def = 2, .min = 1, .max = MAX_LIGHTS },
    [P_SPP] = { .name = "samples_per_pixel", .type = AGT_P_INT, .def = 4, .min = 1, .max = 256 },
    [P_SPHERES] = { .name = "spheres", .type = AGT_P_INT, .def = 5, .min = 1, .max = MAX_SPHERES },
    [P_SEED] = { .name = "seed", .type = AGT_P_INT, .def = 1, .min = 0, .max = 9007199254740991.0 },
    [P_TILE] = { .name = "tile", .type = AGT_P_INTVEC, .len = 4, .def = 0, .min = 0, .max = MAX_SIDE },
};
static const agt_param_t s_params_reflections [P_COUNT] = {
    [P_RES] = { .name = "resolution", .type = AGT_P_INTVEC, .len = 2, .def = 256, .min = 8, .max = MAX_SIDE },
    [P_BOUNCES] = { .name = "bounces", .type = AGT_P_INT, .def = 3, .min = 0, .max = 10 },
    [P_LIGHTS] = { .name = "lights", .type = AGT_P_INT, .def = 2, .min = 1, .max = MAX_LIGHTS },
    [P_SPP] = { .name = "samples_per_pixel", .type = AGT_P_INT, .def = 1, .min = 1, .max = 256 },
    [P_SPHERES] = { .name = "spheres", .type = AGT_P_INT, .def = 5, .min = 1, .max = MAX_SPHERES },
    [P_SEED] = { .name = "seed", .type = AGT_P_INT, .def = 1, .min = 0, .max = 9007199254740991.0 },
    [P_TILE] = { .name = "tile", .type = AGT_P_INTVEC, .len = 4, .def = 0, .min = 0, .max = MAX_SIDE },
};
static const agt_param_t s_params_gi [P_COUNT] = {
    [P_RES] = { .name = "resolution", .type = AGT_P_INTVEC, .len = 2, .def = 128, .min = 8, .max = MAX_SIDE },
    [P_BOUNCES] = { .name = "bounces", .type = AGT_P_INT, .def = 3, .min = 0, .max = 10 },
    [P_LIGHTS] = { .name = "lights", .type = AGT_P_INT, .def = 1, .min = 1, .max = MAX_LIGHTS },
    [P_SPP] = { .name = "samples_per_pixel", .type = AGT_P_INT, .def = 16, .min = 1, .max = 256 },
    [P_SPHERES] = { .name = "spheres", .type = AGT_P_INT, .def = 5, .min = 1, .max = MAX_SPHERES },
    [P_SEED] = { .name = "seed", .type = AGT_P_INT, .def = 1, .min = 0, .max = 9007199254740991.0 },
    [P_TILE] = { .name = "tile", .type = AGT_P_INTVEC, .len = 4, .def = 0, .min = 0, .max = MAX_SIDE },
};

typedef struct {
    double x, y, z;
} vec_t;

static inline vec_t v_make (double x, double y, double z) { return (vec_t) { x, y, z }; }
static inline vec_t v_add (vec_t a, vec_t b) { return v_make (a.x + b.x, a.y + b.y, a.z + b.z); }
static inline vec_t v_sub (vec_t a, vec_t b) { return v_make (a.x - b.x, a.y - b.y, a.z - b.z); }
static inline vec_t v_scale (vec_t a, double s) { return v_make (a.x * s, a.y * s, a.z * s); }
static inline vec_t v_mul (vec_t a, vec_t b) { return v_make (a.x * b.x, a.y * b.y, a.z * b.z); }
static inline double v_dot (vec_t a, vec_t b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
static inline vec_t v_cross (vec_t a, vec_t b)
{
    return v_make (a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}
static inline vec_t v_norm (vec_t a) { return v_scale (a, 1.0 / sqrt (v_dot (a, a))); }

typedef struct {
    vec_t center;
    double radius;
    vec_t albedo;
    double mirror;              //  share of light reflected as by a mirror
} sphere_t;

typedef struct {
    vec_t position;
    double radius;              //  0: a point light (hard shadows)
    vec_t intensity;
} light_t;

typedef struct {
    mode_t_ mode;
    sphere_t spheres [MAX_SPHERES];
    int sphere_count;
    light_t lights [MAX_LIGHTS];
    int light_count;
    int bounces;
    uint64_t rays;              //  every ray cast: camera, bounce, shadow
    uint64_t hits;              //  rays that met an object
} scene_t;

typedef struct {
    double t;
    vec_t point, normal, albedo;
    double mirror;
} hit_t;

//  Nearest hit in (1e-6, tmax), or false
static bool
s_intersect (scene_t *scene, vec_t origin, vec_t dir, double tmax, hit_t *hit)
{
    scene->rays++;
    double best = tmax;
    int found = -2;
    for (int k = 0; k < scene->sphere_count; k++) {
        const sphere_t *s = &scene->spheres [k];
        vec_t oc = v_sub (origin, s->center);
        double b = v_dot (oc, dir);
        double c = v_dot (oc, oc) - s->radius * s->radius;
        double disc = b * b - c;
        if (disc < 0)
            continue;
        double root = sqrt (disc);
        double t = -b - root;
        if (t <= 1e-6)
            t = -b + root;
        if (t > 1e-6 && t < best) {
            best = t;
            found = k;
        }
    }
    if (dir.y < 0) {
        double t = -origin.y / dir.y;
        if (t > 1e-6 && t < best) {
            best = t;
            found = -1;
        }
    }
    if (found == -2)
        return false;
    scene->hits++;
    hit->t = best;
    hit->point = v_add (origin, v_scale (dir, best));
    if (found >= 0) {
        const sphere_t *s = &scene->spheres [found];
        hit->normal = v_scale (v_sub (hit->point, s->center), 1.0 / s->radius);
        hit->albedo = s->albedo;
        hit->mirror = s->mirror;
    }
    else {
        hit->normal = v_make (0, 1, 0);
        //  Checkerboard of 1-unit tiles
        long cx = (long) floor (hit->point.x), cz = (long) floor (hit->point.z);
        hit->albedo = ((cx + cz) & 1)? v_make (0.85, 0.85, 0.85): v_make (0.25, 0.25, 0.3);
        hit->mirror = scene->mode == MODE_REFLECTIONS? 0.15: 0.0;
    }
    return true;
}

static vec_t
s_sky (vec_t dir)
{
    double t = 0.5 * (dir.y + 1.0);
    return v_add (v_scale (v_make (1.0, 1.0, 1.0), 1.0 - t), v_scale (v_make (0.45, 0.65, 1.0), t));
}

//  A uniform random point in the unit ball (rejection: bounded tries)
static vec_t
s_random_in_ball (agt_rng_t *rng)
{
    for (int tries = 0; tries < 64; tries++) {
        vec_t p = v_make (2 * agt_rng_unit (rng) - 1, 2 * agt_rng_unit (rng) - 1, 2 * agt_rng_unit (rng) - 1);
        if (v_dot (p, p) <= 1.0)
            return p;
    }
    return v_make (0, 0, 0);
}

//  Light arriving at a hit directly from every light, times the albedo
static vec_t
s_direct (scene_t *scene, const hit_t *hit, vec_t view, agt_rng_t *rng, bool specular)
{
    vec_t sum = v_make (0, 0, 0);
    for (int k = 0; k < scene->light_count; k++) {
        const light_t *light = &scene->lights [k];
        vec_t target = light->position;
        if (light->radius > 0)
            target = v_add (target, v_scale (s_random_in_ball (rng), light->radius));
        vec_t to_light = v_sub (target, hit->point);
        double dist2 = v_dot (to_light, to_light);
        double dist = sqrt (dist2);
        vec_t l = v_scale (to_light, 1.0 / dist);
        double cosine = v_dot (hit->normal, l);
        if (cosine <= 0)
            continue;
        hit_t blocker;
        vec_t origin = v_add (hit->point, v_scale (hit->normal, 1e-6));
        if (s_intersect (scene, origin, l, dist, &blocker))
            continue;
        vec_t arriving = v_scale (light->intensity, 1.0 / dist2);
        sum = v_add (sum, v_scale (v_mul (hit->albedo, arriving), cosine));
        if (specular) {
            //  Blinn-Phong highlight, exponent 64 by repeated squaring (no pow)
            vec_t half = v_norm (v_sub (l, view));
            double s = v_dot (hit->normal, half);
            if (s > 0) {
                for (int i = 0; i < 6; i++)
                    s = s * s;
                sum = v_add (sum, v_scale (arriving, 0.6 * s));
            }
        }
    }
    return sum;
}

//  Whitted-style: direct light plus mirror reflections (iterative)
static vec_t
s_trace_whitted (scene_t *scene, vec_t origin, vec_t dir, agt_rng_t *rng)
{
    vec_t color = v_make (0, 0, 0);
    vec_t weight = v_make (1, 1, 1);
    for (int depth = 0; depth <= scene->bounces; depth++) {
        hit_t hit;
        if (!s_intersect (scene, origin, dir, INFINITY, &hit)) {
            color = v_add (color, v_mul (weight, s_sky (dir)));
            break;
        }
        vec_t local = v_add (v_scale (hit.albedo, 0.08),
                             s_direct (scene, &hit, dir, rng, scene->mode == MODE_REFLECTIONS));
        double mirror = scene->mode == MODE_REFLECTIONS && depth < scene->bounces? hit.mirror: 0.0;
        color = v_add (color, v_mul (weight, v_scale (local, 1.0 - mirror)));
        if (mirror <= 0)
            break;
        weight = v_scale (weight, mirror);
        dir = v_sub (dir, v_scale (hit.normal, 2 * v_dot (dir, hit.normal)));
        origin = v_add (hit.point, v_scale (hit.normal, 1e-6));
    }
    return color;
}

//  Path tracing: direct light at each vertex plus one cosine-weighted bounce
static vec_t
s_trace_path (scene_t *scene, vec_t origin, vec_t dir, agt_rng_t *rng)
{
    vec_t color = v_make (0, 0, 0);
    vec_t weight = v_make (1, 1, 1);
    for (int depth = 0; depth <= scene->bounces + 1; depth++) {
        hit_t hit;
        if (!s_intersect (scene, origin, dir, INFINITY, &hit)) {
            color = v_add (color, v_mul (weight, v_scale (s_sky (dir), 0.6)));
            break;
        }
        color = v_add (color, v_mul (weight, s_direct (scene, &hit, dir, rng, false)));
        if (depth == scene->bounces)
            break;
        //  Cosine-weighted direction around the normal: the pdf cancels the
        //  cosine and 1/pi of the diffuse BRDF, leaving the albedo as weight
        vec_t n = hit.normal;
        vec_t a = fabs (n.x) > 0.9? v_make (0, 1, 0): v_make (1, 0, 0);
        vec_t u = v_norm (v_cross (a, n));
        vec_t w = v_cross (n, u);
        double r1 = agt_rng_unit (rng), r2 = agt_rng_unit (rng);
        double radius = sqrt (r1);
        double angle = 2 * M_PI * r2;
        vec_t local = v_add (v_scale (u, radius * cos (angle)), v_scale (w, radius * sin (angle)));
        dir = v_norm (v_add (local, v_scale (n, sqrt (1 - r1))));
        origin = v_add (hit.point, v_scale (n, 1e-6));
        weight = v_mul (weight, hit.albedo);
    }
    return color;
}

static void
s_build_scene (scene_t *scene, mode_t_ mode, int spheres, int lights, int bounces, uint64_t seed)
{
    memset (scene, 0, sizeof *scene);
    scene->mode = mode;
    scene->bounces = bounces;
    agt_rng_t rng = { seed };
    //  Spheres on rings around the origin, every third a mirror in reflections mode
    for (int k = 0; k < spheres; k++) {
        sphere_t *s = &scene->spheres [k];
        double angle = 2 * M_PI * (k + 0.5 * agt_rng_unit (&rng)) / spheres;
        double ring = k == 0? 0: 1.6 + 2.2 * agt_rng_unit (&rng);
        s->radius = k == 0? 1.0: 0.35 + 0.5 * agt_rng_unit (&rng);
        s->center = v_make (ring * cos (angle), s->radius, ring * sin (angle));
        s->albedo = v_make (0.2 + 0.75 * agt_rng_unit (&rng), 0.2 + 0.75 * agt_rng_unit (&rng),
                            0.2 + 0.75 * agt_rng_unit (&rng));
        if (mode == MODE_REFLECTIONS)
            s->mirror = k % 3 == 0? 0.8: 0.25;
    }
    scene->sphere_count = spheres;
    for (int k = 0; k < lights; k++) {
        light_t *l = &scene->lights [k];
        double angle = 2 * M_PI * k / lights + 0.8;
        l->position = v_make (5 * cos (angle), 6.5, 5 * sin (angle) - 1.5);
        l->radius = mode == MODE_SHADOWS? 0.9: mode == MODE_GI? 0.3: 0.0;
        double power = 70.0 / lights;
        l->intensity = v_make (power, power * 0.95, power * 0.85);
    }
    scene->light_count = lights;
}

static uint8_t
s_to_byte (double c)
{
    //  Clamp, then gamma 2 (sqrt) so mid-tones look right on a display
    if (!(c > 0))
        return 0;
    if (c >= 1)
        return 255;
    return (uint8_t) (sqrt (c) * 255.0 + 0.5);
}

static int
s_render (mode_t_ mode, const agt_param_t *table, const json_t *params, agt_kernel_out_t *out)
{
    agt_param_val_t v [P_COUNT];
    if (agt_params_read (table, P_COUNT, params, v, out))
        return -1;
    int width = (int) v [P_RES].v [0], height = (int) v [P_RES].v [1];
    int spp = (int) v [P_SPP].i, bounces = (int) v [P_BOUNCES].i;
    //  The rectangle to render: the whole frame unless a tile is given
    int tx = 0, ty = 0, tw = width, th = height;
    if (v [P_TILE].given) {
        tx = (int) v [P_TILE].v [0];
        ty = (int) v [P_TILE].v [1];
        tw = (int) v [P_TILE].v [2];
        th = (int) v [P_TILE].v [3];
        if (tw < 1 || th < 1 || tx + tw > width || ty + th > height)
            return agt_kernel_fail (out, "invalid_params",
                                    "tile: must be [x,y,w,h] with w, h >= 1 inside the %dx%d frame",
                                    width, height);
    }
    uint64_t segments = (uint64_t) width * height * spp * (uint64_t) (bounces + 1);
    if (segments > SEGMENT_BUDGET)
        return agt_kernel_fail (out, "invalid_params",
                                "samples_per_pixel: width x height x samples_per_pixel x (bounces+1) "
                                "is %llu, at most %u allowed", (unsigned long long) segments, SEGMENT_BUDGET);
    double work = (double) segments * (double) (v [P_LIGHTS].i + 1) * (double) (v [P_SPHERES].i + 2);
    if (work > WORK_BUDGET)
        return agt_kernel_fail (out, "invalid_params",
                                "samples_per_pixel: width x height x samples_per_pixel x (bounces+1) x "
                                "(lights+1) x (spheres+2) must be at most %.0f", WORK_BUDGET);
    scene_t *scene = malloc (sizeof *scene);
    uint8_t *rgb = malloc ((size_t) tw * th * 3);
    if (!scene || !rgb) {
        free (scene);
        free (rgb);
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    }
    uint64_t seed = (uint64_t) v [P_SEED].i;
    s_build_scene (scene, mode, (int) v [P_SPHERES].i, (int) v [P_LIGHTS].i, bounces, seed);

    //  Pinhole camera looking at the scene centre, 55 degree vertical field
    vec_t eye = v_make (0, 3.0, -9.0);
    vec_t forward = v_norm (v_sub (v_make (0, 0.8, 0), eye));
    vec_t right = v_norm (v_cross (v_make (0, 1, 0), forward));
    vec_t up = v_cross (forward, right);
    double half_h = 0.52057;    //  tan (27.5 degrees)
    double half_w = half_h * width / height;
    for (int y = ty; y < ty + th; y++)
        for (int x = tx; x < tx + tw; x++) {
            size_t pixel = (size_t) y * width + x;
            size_t out_px = (size_t) (y - ty) * tw + (size_t) (x - tx);
            agt_rng_t rng = { seed * 0x9E3779B97F4A7C15ull + pixel };
            vec_t sum = v_make (0, 0, 0);
            for (int s = 0; s < spp; s++) {
                //  The first sample goes through the pixel centre
                double jx = s? agt_rng_unit (&rng): 0.5, jy = s? agt_rng_unit (&rng): 0.5;
                double px = (2 * (x + jx) / width - 1) * half_w;
                double py = (1 - 2 * (y + jy) / height) * half_h;
                vec_t dir = v_norm (v_add (forward, v_add (v_scale (right, px), v_scale (up, py))));
                vec_t c = mode == MODE_GI? s_trace_path (scene, eye, dir, &rng)
                                         : s_trace_whitted (scene, eye, dir, &rng);
                sum = v_add (sum, c);
            }
            sum = v_scale (sum, 1.0 / spp);
            rgb [out_px * 3] = s_to_byte (sum.x);
            rgb [out_px * 3 + 1] = s_to_byte (sum.y);
            rgb [out_px * 3 + 2] = s_to_byte (sum.z);
        }
    uint64_t rays = scene->rays, hits = scene->hits;
    free (scene);
    uint8_t *png = NULL;
    size_t png_len = 0;
    bool encoded = agt_png_encode (rgb, (uint32_t) tw, (uint32_t) th, &png, &png_len);
    free (rgb);
    if (!encoded)
        return agt_kernel_fail (out, "kernel_error", "PNG encoding failed");
    out->result = json_pack ("{s:I, s:I, s:i, s:i, s:i, s:i, s:i, s:s}",
                             "rays_traced", (json_int_t) rays, "intersections", (json_int_t) hits,
                             "width", width, "height", height, "samples_per_pixel", spp,
                             "bounces", bounces, "lights", (int) v [P_LIGHTS].i, "format", "png");
    if (out->result && v [P_TILE].given)
        json_object_set_new (out->result, "tile", json_pack ("[iiii]", tx, ty, tw, th));
    if (!out->result) {
        free (png);
        return agt_kernel_fail (out, "kernel_error", "out of memory");
    }
    out->blob = png;
    out->blob_len = png_len;
    return 0;
}

int
k_rt_shadows_run (const json_t *params, const uint8_t *payload, size_t payload_len, agt_kernel_out_t *out)
{
    (void) payload;
    (void) payload_len;
    return s_render (MODE_SHADOWS, s_params_shadows, params, out);
}

int
k_rt_reflections_run (const json_t *params, const uint8_t *payload, size_t payload_len, agt_kernel_out_t *out)
{
    (void) payload;
    (void) payload_len;
    return s_render (MODE_REFLECTIONS, s_params_reflections, params, out);
}

int
k_rt_gi_run (const json_t *params, const uint8_t *payload, size_t payload_len, agt_kernel_out_t *out)
{
    (void) payload;
    (void) payload_len;
    return s_render (MODE_GI, s_params_gi, params, out);
}
