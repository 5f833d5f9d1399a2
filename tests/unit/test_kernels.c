/*  Tests of the task kernels: golden vectors (SHA-256 of the sorted compact
    result JSON and of the blob, recorded once from outputs checked by hand
    and, where possible, against an independent computation), tables of bad
    parameters that must answer invalid_params naming the field, determinism,
    and PNG outputs that decode to the right size.
    `test_kernels -record` prints the digests of the golden runs instead. */
#include "agt_kernel.h"
#include "agt_params.h"
#include "p2c_cost.h"
#include "p2c_log.h"
#include "p2c_tasks.h"
#include "p2c_test.h"

#include <assert.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static bool s_verbose;
static bool s_record;

//  Runs a kernel on params given as JSON text; out must be reset by the caller
static int
s_run (const char *kernel, const char *params_text, const uint8_t *payload, size_t payload_len,
       agt_kernel_out_t *out)
{
    memset (out, 0, sizeof *out);
    const agt_kernel_t *k = agt_kernel_find (kernel);
    if (!k) {
        fprintf (stderr, "no kernel %s\n", kernel);
        return -2;
    }
    json_error_t jerr;
    json_t *params = json_loads (params_text, 0, &jerr);
    if (!params) {
        fprintf (stderr, "bad test params %s: %s\n", params_text, jerr.text);
        return -2;
    }
    int rc = k->run (params, payload, payload_len, out);
    json_decref (params);
    return rc;
}

static char *
s_dump (const json_t *result)
{
    return json_dumps (result, JSON_SORT_KEYS | JSON_COMPACT);
}

//  Digest of the result text and of the blob ("" when none)
static void
s_digests (const agt_kernel_out_t *out, char result_hex [65], char blob_hex [65])
{
    char *text = s_dump (out->result);
    agt_sha256_hex (text, strlen (text), result_hex);
    free (text);
    if (out->blob)
        agt_sha256_hex (out->blob, out->blob_len, blob_hex);
    else
        blob_hex [0] = 0;
}

//  Decodes a PNG; returns true and its size when it is a valid image
static bool
s_png_size (const uint8_t *data, size_t len, uint32_t *width, uint32_t *height)
{
    png_image image;
    memset (&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory (&image, data, len))
        return false;
    image.format = PNG_FORMAT_RGB;
    size_t size = PNG_IMAGE_SIZE (image);
    uint8_t *pixels = malloc (size);
    bool ok = pixels && png_image_finish_read (&image, NULL, pixels, 0, NULL);
    free (pixels);
    png_image_free (&image);
    *width = image.width;
    *height = image.height;
    return ok;
}

//  Encodes a small test image (a gradient with a diagonal line) as PNG
static uint8_t *
s_make_png (uint32_t width, uint32_t height, size_t *len)
{
    uint8_t *pixels = malloc ((size_t) width * height * 3);
    for (uint32_t y = 0; y < height; y++)
        for (uint32_t x = 0; x < width; x++) {
            uint8_t *p = pixels + ((size_t) y * width + x) * 3;
            p [0] = (uint8_t) (x * 255 / (width - 1));
            p [1] = (uint8_t) (y * 255 / (height - 1));
            p [2] = x == y? 255: 0;
        }
    png_image image;
    memset (&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = width;
    image.height = height;
    image.format = PNG_FORMAT_RGB;
    png_alloc_size_t size = 0;
    png_image_write_to_memory (&image, NULL, &size, 0, pixels, 0, NULL);
    uint8_t *png = malloc (size);
    if (!png_image_write_to_memory (&image, png, &size, 0, pixels, 0, NULL)) {
        free (png);
        png = NULL;
    }
    free (pixels);
    *len = size;
    return png;
}

//  The demo's formula computed independently with the one-shot SHA256():
//  each round hashes the previous round's raw 32-byte digest (the input
//  bytes in round 0) followed by the decimal round number
static void
s_iterated_sha256 (const char *data, int iterations, char hex [65])
{
    size_t len = strlen (data);
    uint8_t *cur = (uint8_t *) strdup (data);
    for (int i = 0; i < iterations; i++) {
        char number [16];
        int number_len = snprintf (number, sizeof number, "%d", i);
        uint8_t *input = malloc (len + (size_t) number_len);
        assert (input);
        memcpy (input, cur, len);
        memcpy (input + len, number, (size_t) number_len);
        free (cur);
        cur = malloc (SHA256_DIGEST_LENGTH);
        assert (cur);
        SHA256 (input, len + (size_t) number_len, cur);
        free (input);
        len = SHA256_DIGEST_LENGTH;
    }
    for (size_t k = 0; k < 32; k++)
        snprintf (hex + 2 * k, 3, "%02x", cur [k]);
    free (cur);
}

static void
s_test_encryption (void)
{
    agt_kernel_out_t out;
    //  Values from Python's hashlib with the original demo's formula:
    //    cur = data.encode(); for i in range(n):
    //        h = sha256(); h.update(cur); h.update(str(i).encode()); cur = h.digest()
    //    cur.hex()
    struct { const char *params; const char *hash; } python [] = {
        { "{\"data\":\"abc\",\"iterations\":1}",
          "56abfbd7d2ea606e667945422de5a368b8b0272b8f29081cb058b594dd7e3249" },
        { "{\"data\":\"abc\",\"iterations\":2}",
          "d2dc2bbfe2d6ffeae312a8e6f09ca98821b406fa28b6a94bf621b1fdacef8ff7" },
        { "{\"data\":\"abc\",\"iterations\":3}",
          "e152715915bba915a58c3d6831503201d6c0c172064657efbd1f90844116416c" },
        { "{\"data\":\"abc\",\"iterations\":1000}",
          "cfcaf40f9805d01f2460dae29bca410d2ce3b3e475e0b2b977fc46d7dc32c469" },
        { "{\"data\":\"p2c2r\",\"iterations\":100000}",
          "4c7c49f9c69d87d958e398ea8c32408a27b325dc86d933c89139ad0de6320c09" },
        //  default params: data "", 1000 iterations
        { "{}", "694e4c43dc784dc920b8e7ac75182bbdca8c78b477b25241efd569bca7f6a9cd" },
    };
    for (size_t k = 0; k < sizeof python / sizeof python [0]; k++) {
        P2C_CHECK (s_run ("encryption", python [k].params, NULL, 0, &out) == 0);
        P2C_CHECK (out.result && !strcmp (json_string_value (json_object_get (out.result, "hash")),
                                          python [k].hash));
        agt_kernel_out_reset (&out);
    }
    P2C_CHECK (s_run ("encryption", "{\"data\":\"abc\",\"iterations\":3}", NULL, 0, &out) == 0);
    P2C_CHECK (json_integer_value (json_object_get (out.result, "iterations")) == 3);
    P2C_CHECK (!strcmp (json_string_value (json_object_get (out.result, "algorithm")), "SHA-256"));
    agt_kernel_out_reset (&out);

    const char *inputs [] = { "", "hello world", "p2c2r \xc3\xa9t\xc3\xa9", "x" };
    int counts [] = { 1, 17, 250, 1000 };
    for (int k = 0; k < 4; k++) {
        char params [128], expect [65];
        snprintf (params, sizeof params, "{\"data\":\"%s\",\"iterations\":%d}", inputs [k], counts [k]);
        s_iterated_sha256 (inputs [k], counts [k], expect);
        P2C_CHECK (s_run ("encryption", params, NULL, 0, &out) == 0);
        P2C_CHECK (out.result && !strcmp (json_string_value (json_object_get (out.result, "hash")), expect));
        agt_kernel_out_reset (&out);
    }
}

static void
s_test_compression (void)
{
    const char *data = "hello hello hello hello, the quick brown fox jumps over the lazy dog";
    for (int level = 0; level <= 9; level++) {
        char params [256];
        snprintf (params, sizeof params, "{\"data\":\"%s\",\"level\":%d}", data, level);
        uLongf expect_len = compressBound (strlen (data));
        uint8_t *expect = malloc (expect_len);
        P2C_CHECK (compress2 (expect, &expect_len, (const Bytef *) data, strlen (data), level) == Z_OK);
        free (expect);
        agt_kernel_out_t out;
        P2C_CHECK (s_run ("compression", params, NULL, 0, &out) == 0);
        P2C_CHECK (out.result
                   && json_integer_value (json_object_get (out.result, "compressed_size")) == (json_int_t) expect_len
                   && json_integer_value (json_object_get (out.result, "original_size")) == (json_int_t) strlen (data)
                   && json_is_true (json_object_get (out.result, "verified")));
        agt_kernel_out_reset (&out);
    }
    //  Python: len(zlib.compress(b'hello hello hello hello', 6)) == 16
    agt_kernel_out_t out;
    P2C_CHECK (s_run ("compression", "{\"data\":\"hello hello hello hello\"}", NULL, 0, &out) == 0);
    P2C_CHECK (out.result && json_integer_value (json_object_get (out.result, "compressed_size")) == 16);
    P2C_CHECK (out.result && json_real_value (json_object_get (out.result, "compression_ratio")) == 1.4375);
    agt_kernel_out_reset (&out);
    //  Repetition compresses far better than the unit alone
    P2C_CHECK (s_run ("compression", "{\"data\":\"abcdefgh\",\"repeat\":100000,\"level\":9}", NULL, 0, &out) == 0);
    P2C_CHECK (out.result && json_integer_value (json_object_get (out.result, "original_size")) == 800000);
    P2C_CHECK (out.result && json_real_value (json_object_get (out.result, "compression_ratio")) > 100);
    agt_kernel_out_reset (&out);
    P2C_CHECK (s_run ("compression", "{\"data\":\"\"}", NULL, 0, &out) == 0);
    P2C_CHECK (out.result && json_integer_value (json_object_get (out.result, "original_size")) == 0);
    agt_kernel_out_reset (&out);
}

//  Golden vectors: kernel, params, digest of the result text, digest of the blob
typedef struct {
    const char *kernel;
    const char *params;
    const char *result_sha;
    const char *blob_sha;       //  "" when the kernel gives no blob
} golden_t;

static const golden_t s_golden [] = {
    { "encryption", "{\"data\":\"golden\",\"iterations\":5000}", 
      "7b13c1faeac0e30679435cf4fd31061090f10b2e0743c0aff8c97525e2e5e0d4",
      "" },
    { "compression", "{\"data\":\"golden golden vector\",\"level\":9,\"repeat\":50}", 
      "ba3b641736a4998212b693b31de5c7b2ae9d78d0555372341123d0de94a12aac",
      "" },
    { "ai_dialogue", "{\"player_input\":\"Hello! Any quest for me?\",\"npc_name\":\"Mira\",\"personality\":\"wise\",\"context\":\"quest board\"}", 
      "a464a9b6546c8d3a7a85124ffafa9dbf20a4d0bd2866fae010ee032af014feaf",
      "" },
    { "ai_pathfinding", "{\"grid_size\":[64,48],\"start\":[1,1],\"end\":[60,40],\"random_obstacles\":0.25,\"seed\":9,\"diagonal\":true}", 
      "e22a25c5ac433fbad2b90c0aa658f3acae6899eb4817a5a027105bb55eaa75b5",
      "" },
    { "ai_pathfinding", "{\"width\":40,\"height\":30,\"start\":[0,0],\"goal\":[39,29],\"random_obstacles\":0.3,\"seed\":3,\"algorithm\":\"dijkstra\"}", 
      "e0d3ef9361fd76b4f7a716c3b7fdced7c94053e3bc244db3bf9163a888bdf16f",
      "" },
    { "ai_procedural", "{\"size\":[48,32],\"type\":\"dungeon\",\"seed\":7}", 
      "e03d7d4ed321b506ca4e98c9e5cbf9ec560a998a1feadead09078657adeca3ef",
      "" },
    { "ai_procedural", "{\"size\":[48,32],\"type\":\"cave\",\"seed\":7}", 
      "912ffed653ba5035c901e9a9c8bee9e8d46090d3f9592163cbd3f02a65440610",
      "" },
    { "rt_reflections", "{\"resolution\":[64,48],\"bounces\":3,\"lights\":2,\"samples_per_pixel\":2,\"seed\":5}", 
      "dd733d7e363469417d0d7863344e91213397c3bb373df16ae41901528a508383",
      "1abed015e2e2a42f21fd761c96a7e5b226111003eb8d105f3d6263eec93a2345" },
    { "rt_shadows", "{\"resolution\":[64,48],\"lights\":3,\"samples_per_pixel\":4,\"seed\":5}", 
      "e5fb5671399328a9c81ce8aabb7eca584d56149f008376c964dc6cdc0e42dc3c",
      "bfc7eb15c59e01d81706ebce6e5503ef217cf83cc0a4d385491d58f6cdbb76b5" },
    { "rt_global_illumination", "{\"resolution\":[48,32],\"bounces\":2,\"samples_per_pixel\":4,\"seed\":5}", 
      "66c9fe6e6e59adbfb1667dc2a21720e9d4b2308330ed20cdd7a70384ba754ff4",
      "185fd0ce0d6273ce2217ce84f7ffb100f27c9ddedcae96844ea3e0a19409af2a" },
    { "physics_rigid_body", "{\"num_objects\":30,\"steps\":500,\"dt\":0.01,\"seed\":4}", 
      "163c50a71bd308588539eafcab748bca2bf212f586ebd6a9e2fe73bb67031fa0",
      "" },
    { "physics_cloth", "{\"grid_size\":[16,12],\"timesteps\":120,\"iterations\":6,\"pinned\":\"top\",\"wind\":3.5}", 
      "75ece57732c6154085637f891c81a6334c376924d6b992632adb156a5123985d",
      "" },
    { "physics_fluid", "{\"grid_size\":[12,16,10],\"iterations\":10,\"solver_iterations\":8}", 
      "7ae636f9bfef420d4ea0ec10a7f372b238f673b80917072329e9890e405ffdf7",
      "" },
    { "physics_destruction", "{\"complexity\":10,\"fracture_depth\":3,\"resolution\":24,\"size\":[2,1,0.5],\"impact\":[0.2,0.9,0.5],\"seed\":11}", 
      "c991b062497fd01a55e4aa1fa817b2455477373011093e2530c542b48921e1d7",
      "" },
    { "frame_upscale", "{\"output_res\":[97,61],\"method\":\"lanczos\"}", 
      "7c3a385b807611e00b6c5f1f60e4ce4862dbbac2383a36aa0ab1339bdacf2c47",
      "0d4d250334ddea20e16fa1acf17cbb5fb8d77e001c2d77c6880017fc4e6d736e" },
    { "frame_upscale", "{\"scale\":3,\"method\":\"bilinear\"}", 
      "d0240c83572cd50d2558504dd9ee2eeba627716527a223ea9d787d48ede4f6e3",
      "cf2e9c9446383ca4264dc968987ca9d6c7f8389ea1d742a0b3246e71f2791798" },
    { "frame_upscale", "{\"output_res\":[20,15],\"method\":\"bicubic\"}", 
      "0b58e8ddde695eb248ad7044069c125b669795536515675b808ec03c1d23b1b1",
      "39f2a2bb8e0ed9779a84af7d6755de544a520a5ca1968d8ac97638ac8ba6715d" },
    { NULL, NULL, NULL, NULL }
};

static void
s_test_golden (const uint8_t *png, size_t png_len)
{
    for (const golden_t *g = s_golden; g->kernel; g++) {
        bool image_in = !strcmp (g->kernel, "frame_upscale");
        agt_kernel_out_t first, second;
        int rc = s_run (g->kernel, g->params, image_in? png: NULL, image_in? png_len: 0, &first);
        P2C_CHECK (rc == 0);
        if (rc) {
            fprintf (stderr, "golden %s failed: %s %s\n", g->kernel, first.error_code, first.error);
            continue;
        }
        char result_hex [65], blob_hex [65];
        s_digests (&first, result_hex, blob_hex);
        if (first.blob) {
            //  Images decode and have the size the result announces
            uint32_t w = 0, h = 0;
            P2C_CHECK (s_png_size (first.blob, first.blob_len, &w, &h));
            P2C_CHECK ((json_int_t) w == json_integer_value (json_object_get (first.result, "width")));
            P2C_CHECK ((json_int_t) h == json_integer_value (json_object_get (first.result, "height")));
        }
        if (s_record || s_verbose) {
            char *text = s_dump (first.result);
            printf ("%s %s\n  result=%.300s\n  { \"%s\", \"%s\", \"%s\", \"%s\" },\n",
                    g->kernel, g->params, text, g->kernel, "", result_hex, blob_hex);
            free (text);
        }
        if (!s_record) {
            P2C_CHECK (!strcmp (result_hex, g->result_sha));
            P2C_CHECK (!strcmp (blob_hex, g->blob_sha));
        }
        //  Determinism: a second run gives the same bytes
        P2C_CHECK (s_run (g->kernel, g->params, image_in? png: NULL, image_in? png_len: 0, &second) == 0);
        char result2 [65], blob2 [65];
        s_digests (&second, result2, blob2);
        P2C_CHECK (!strcmp (result_hex, result2) && !strcmp (blob_hex, blob2));
        agt_kernel_out_reset (&first);
        agt_kernel_out_reset (&second);
    }
}

//  Bad parameters: each must answer invalid_params with the field named first
typedef struct {
    const char *kernel;
    const char *params;
    const char *field;
} bad_t;

static const bad_t s_bad [] = {
    { "encryption", "{\"data\":42}", "data" },
    { "encryption", "{\"iterations\":0}", "iterations" },
    { "encryption", "{\"iterations\":10000001}", "iterations" },
    { "encryption", "{\"iterations\":\"5\"}", "iterations" },
    { "encryption", "{\"iterations\":2.5}", "iterations" },
    { "encryption", "[1,2]", "params" },
    { "compression", "{\"data\":[1]}", "data" },
    { "compression", "{\"level\":10}", "level" },
    { "compression", "{\"level\":-1}", "level" },
    { "compression", "{\"data\":\"abcdefgh\",\"repeat\":1000000000}", "repeat" },
    { "compression", "{\"data\":\"abcdefghijklmnopqrstuvwxyz\",\"repeat\":1000000}", "repeat" },
    { "ai_dialogue", "{\"player_input\":5}", "player_input" },
    { "ai_dialogue", "{\"context\":7}", "context" },
    { "ai_dialogue", "{\"player_input\":\"hi\",\"character\":[]}", "npc_name" },
    { "ai_dialogue", "{\"player_input\":\"hi\",\"context\":{}}", "context" },
    { "ai_pathfinding", "{\"grid_size\":[0,10]}", "grid_size" },
    { "ai_pathfinding", "{\"grid_size\":[2000,10]}", "grid_size" },
    { "ai_pathfinding", "{\"grid_size\":[10,10],\"start\":[10,0]}", "start" },
    { "ai_pathfinding", "{\"grid_size\":[10,10],\"end\":[3]}", "goal" },
    { "ai_pathfinding", "{\"grid_size\":[10,10],\"goal\":[3,12]}", "goal" },
    { "ai_pathfinding", "{\"grid_size\":[10,10],\"obstacles\":[[1,1],[11,2]]}", "obstacles" },
    { "ai_pathfinding", "{\"grid_size\":[10,10],\"obstacles\":[\"x\"]}", "obstacles" },
    { "ai_pathfinding", "{\"algorithm\":\"bfs\"}", "algorithm" },
    { "ai_pathfinding", "{\"diagonal\":1}", "diagonal" },
    { "ai_procedural", "{\"size\":[4,4]}", "size" },
    { "ai_procedural", "{\"size\":[64,1000]}", "size" },
    { "ai_procedural", "{\"type\":\"maze\"}", "type" },
    { "ai_procedural", "{\"seed\":-1}", "seed" },
    { "rt_reflections", "{\"resolution\":[4097,64]}", "resolution" },
    { "rt_reflections", "{\"resolution\":[4096,4096]}", "samples_per_pixel" },
    { "rt_reflections", "{\"resolution\":[1920,1080],\"bounces\":4}", "samples_per_pixel" },
    { "rt_reflections", "{\"resolution\":\"64x64\"}", "resolution" },
    { "rt_reflections", "{\"bounces\":11}", "bounces" },
    { "rt_reflections", "{\"resolution\":[64,48],\"tile\":[0,40,64,9]}", "tile" },
    { "rt_reflections", "{\"resolution\":[64,48],\"tile\":[60,0,5,48]}", "tile" },
    { "rt_reflections", "{\"resolution\":[64,48],\"tile\":[0,0,0,48]}", "tile" },
    { "rt_shadows", "{\"tile\":[0,0,8]}", "tile" },
    { "rt_global_illumination", "{\"tile\":\"top\"}", "tile" },
    { "rt_shadows", "{\"lights\":0}", "lights" },
    { "rt_shadows", "{\"samples_per_pixel\":0}", "samples_per_pixel" },
    { "rt_global_illumination", "{\"resolution\":[512,512],\"samples_per_pixel\":64,\"bounces\":10}", "samples_per_pixel" },
    { "rt_global_illumination", "{\"spheres\":33}", "spheres" },
    { "physics_rigid_body", "{\"num_objects\":0}", "num_objects" },
    { "physics_rigid_body", "{\"steps\":0}", "simulation_steps" },
    { "physics_rigid_body", "{\"dt\":1}", "dt" },
    { "physics_rigid_body", "{\"num_objects\":2000,\"steps\":100000}", "simulation_steps" },
    { "physics_rigid_body", "{\"objects\":[{\"velocity\":[0,0,0]}]}", "objects" },
    { "physics_rigid_body", "{\"objects\":[{\"position\":[0,50,0]}]}", "objects" },
    { "physics_rigid_body", "{\"objects\":[]}", "objects" },
    { "physics_cloth", "{\"grid_size\":[1,1]}", "grid_size" },
    { "physics_cloth", "{\"timesteps\":10001}", "timesteps" },
    { "physics_cloth", "{\"grid_size\":256,\"timesteps\":10000}", "timesteps" },
    { "physics_cloth", "{\"pinned\":\"left\"}", "pinned" },
    { "physics_fluid", "{\"grid_size\":[16,16]}", "grid_size" },
    { "physics_fluid", "{\"grid_size\":[3,16,16]}", "grid_size" },
    { "physics_fluid", "{\"iterations\":0}", "iterations" },
    { "physics_fluid", "{\"grid_size\":128,\"iterations\":1000}", "iterations" },
    { "physics_fluid", "{\"dt\":\"fast\"}", "dt" },
    { "physics_destruction", "{\"complexity\":1}", "complexity" },
    { "physics_destruction", "{\"complexity\":1025}", "complexity" },
    { "physics_destruction", "{\"complexity\":1024,\"resolution\":96,\"fracture_depth\":2}", "complexity" },
    { "physics_destruction", "{\"fracture_depth\":7}", "fracture_depth" },
    { "physics_destruction", "{\"size\":[1,1]}", "size" },
    { "physics_destruction", "{\"size\":[1,-1,1]}", "size" },
    { "physics_destruction", "{\"impact\":[0.5,0.5,2]}", "impact" },
    { "frame_upscale", "{}", "image" },
    { "frame_upscale", "{\"image_b64\":\"bm90IGEgcG5n\"}", "image" },
    { "frame_upscale", "{\"image_b64\":\"***\"}", "image" },
    { "frame_upscale", "{\"method\":\"nearest\"}", "method" },
    { "frame_upscale", "{\"output_res\":[5000,10]}", "output_res" },
    { NULL, NULL, NULL }
};

static void
s_test_bad_params (void)
{
    for (const bad_t *b = s_bad; b->kernel; b++) {
        agt_kernel_out_t out;
        int rc = s_run (b->kernel, b->params, NULL, 0, &out);
        size_t len = strlen (b->field);
        bool named = !strncmp (out.error, b->field, len) && out.error [len] == ':';
        bool ok = rc == -1 && !strcmp (out.error_code, "invalid_params") && named && !out.result;
        P2C_CHECK (ok);
        if (!ok || s_verbose)
            fprintf (stderr, "%s %s %s -> rc=%d %s: %s\n", ok? "ok": "BAD", b->kernel, b->params, rc,
                     out.error_code, out.error);
        agt_kernel_out_reset (&out);
    }
}

static json_int_t
s_int (const agt_kernel_out_t *out, const char *key)
{
    return out->result? json_integer_value (json_object_get (out->result, key)): -1;
}

//  What a user of each kernel would check about its answer
static void
s_test_semantics (const uint8_t *png, size_t png_len)
{
    agt_kernel_out_t out;
    //  A wall with one gap: the path must go through the gap
    P2C_CHECK (s_run ("ai_pathfinding", "{\"grid_size\":[5,5],\"start\":[0,0],\"goal\":[4,0],"
                      "\"obstacles\":[[2,0],[2,1],[2,2],[2,3]]}", NULL, 0, &out) == 0);
    P2C_CHECK (json_is_true (json_object_get (out.result, "found")));
    P2C_CHECK (json_real_value (json_object_get (out.result, "distance")) == 12.0);
    P2C_CHECK (json_array_size (json_object_get (out.result, "path")) == 13);
    json_t *via = json_array_get (json_object_get (out.result, "path"), 6);
    P2C_CHECK (json_integer_value (json_array_get (via, 0)) == 2 && json_integer_value (json_array_get (via, 1)) == 4);
    agt_kernel_out_reset (&out);
    //  Dijkstra finds the same distance and explores at least as much
    P2C_CHECK (s_run ("ai_pathfinding", "{\"grid_size\":[5,5],\"start\":[0,0],\"goal\":[4,0],"
                      "\"obstacles\":[[2,0],[2,1],[2,2],[2,3]],\"algorithm\":\"dijkstra\"}", NULL, 0, &out) == 0);
    P2C_CHECK (json_real_value (json_object_get (out.result, "distance")) == 12.0);
    P2C_CHECK (!strcmp (json_string_value (json_object_get (out.result, "algorithm")), "dijkstra"));
    agt_kernel_out_reset (&out);
    //  A closed wall: no path, found false, empty path
    P2C_CHECK (s_run ("ai_pathfinding", "{\"grid_size\":[5,5],\"start\":[0,0],\"goal\":[4,0],"
                      "\"obstacles\":[[2,0],[2,1],[2,2],[2,3],[2,4]]}", NULL, 0, &out) == 0);
    P2C_CHECK (json_is_false (json_object_get (out.result, "found")));
    P2C_CHECK (json_array_size (json_object_get (out.result, "path")) == 0);
    agt_kernel_out_reset (&out);

    //  The grid has the asked size and only walls and floor; rooms are floor
    P2C_CHECK (s_run ("ai_procedural", "{\"size\":[40,25],\"seed\":3}", NULL, 0, &out) == 0);
    json_t *grid = json_object_get (out.result, "grid");
    P2C_CHECK (json_array_size (grid) == 25);
    bool shape_ok = true;
    for (size_t y = 0; y < json_array_size (grid); y++) {
        const char *row = json_string_value (json_array_get (grid, y));
        shape_ok = shape_ok && row && strlen (row) == 40 && strspn (row, "#.") == 40;
    }
    P2C_CHECK (shape_ok);
    json_t *room = json_array_get (json_object_get (out.result, "rooms"), 0);
    int rx = (int) json_integer_value (json_object_get (room, "x"));
    int ry = (int) json_integer_value (json_object_get (room, "y"));
    P2C_CHECK (room && json_string_value (json_array_get (grid, (size_t) ry)) [rx] == '.');
    P2C_CHECK (json_array_size (json_object_get (out.result, "connections")) + 1
               == json_array_size (json_object_get (out.result, "rooms")));
    agt_kernel_out_reset (&out);
    //  Another seed gives another level
    agt_kernel_out_t other;
    P2C_CHECK (s_run ("ai_procedural", "{\"size\":[40,25],\"seed\":3}", NULL, 0, &out) == 0);
    P2C_CHECK (s_run ("ai_procedural", "{\"size\":[40,25],\"seed\":4}", NULL, 0, &other) == 0);
    P2C_CHECK (!json_equal (json_object_get (out.result, "grid"), json_object_get (other.result, "grid")));
    agt_kernel_out_reset (&out);
    agt_kernel_out_reset (&other);

    //  Dialogue: intents are recognised
    P2C_CHECK (s_run ("ai_dialogue", "{\"player_input\":\"I want to buy a sword, what is the price?\"}", NULL, 0, &out) == 0);
    P2C_CHECK (!strcmp (json_string_value (json_object_get (out.result, "category")), "trade"));
    agt_kernel_out_reset (&out);
    P2C_CHECK (s_run ("ai_dialogue", "{\"player_input\":\"Hello!\",\"character\":\"Bob\",\"personality\":\"friendly\"}", NULL, 0, &out) == 0);
    P2C_CHECK (!strcmp (json_string_value (json_object_get (out.result, "category")), "greeting"));
    P2C_CHECK (strstr (json_string_value (json_object_get (out.result, "dialogue")), "Bob") != NULL);
    agt_kernel_out_reset (&out);
    P2C_CHECK (s_run ("ai_dialogue", "{\"player_input\":\"zzz qqq\"}", NULL, 0, &out) == 0);
    P2C_CHECK (!strcmp (json_string_value (json_object_get (out.result, "category")), "unknown"));
    P2C_CHECK (json_real_value (json_object_get (out.result, "confidence")) == 0.0);
    agt_kernel_out_reset (&out);
    //  No player_input (the original menu): the NPC speaks first, the
    //  context drives the line, the same line every time
    const char *menu_npc = "{\"character\":\"Shopkeeper\",\"context\":\"greeting\",\"personality\":\"friendly\"}";
    P2C_CHECK (s_run ("ai_dialogue", menu_npc, NULL, 0, &out) == 0);
    P2C_CHECK (out.result && !strcmp (json_string_value (json_object_get (out.result, "category")), "greeting"));
    P2C_CHECK (out.result && strstr (json_string_value (json_object_get (out.result, "dialogue")), "Shopkeeper"));
    P2C_CHECK (out.result && !strcmp (json_string_value (json_object_get (out.result, "personality")), "friendly"));
    char *first = out.result ? s_dump (out.result) : NULL;
    agt_kernel_out_reset (&out);
    P2C_CHECK (s_run ("ai_dialogue", menu_npc, NULL, 0, &out) == 0);
    char *second = out.result ? s_dump (out.result) : NULL;
    P2C_CHECK (first && second && !strcmp (first, second));
    free (first);
    free (second);
    agt_kernel_out_reset (&out);
    P2C_CHECK (s_run ("ai_dialogue", "{\"character\":\"Bram\",\"context\":\"trade\",\"personality\":\"grumpy\"}", NULL, 0, &out) == 0);
    P2C_CHECK (out.result && !strcmp (json_string_value (json_object_get (out.result, "category")), "trade"));
    agt_kernel_out_reset (&out);
    P2C_CHECK (s_run ("ai_dialogue", "{\"character\":\"Bram\",\"context\":\"quests\"}", NULL, 0, &out) == 0);
    P2C_CHECK (out.result && !strcmp (json_string_value (json_object_get (out.result, "category")), "quest"));
    agt_kernel_out_reset (&out);
    //  a given player_input still decides alone with the context at half
    //  weight ("greeting" is no keyword of it): results of 1.0.0 stand
    P2C_CHECK (s_run ("ai_dialogue", "{\"player_input\":\"zzz\",\"context\":\"greeting\"}", NULL, 0, &out) == 0);
    P2C_CHECK (out.result && !strcmp (json_string_value (json_object_get (out.result, "category")), "unknown"));
    agt_kernel_out_reset (&out);

    //  Fracture conserves the volume of the box
    P2C_CHECK (s_run ("physics_destruction", "{\"size\":[2,1,0.5],\"complexity\":12,\"fracture_depth\":3}", NULL, 0, &out) == 0);
    P2C_CHECK (json_real_value (json_object_get (out.result, "total_volume")) == 1.0);
    P2C_CHECK (s_int (&out, "fragments") > 12);
    agt_kernel_out_reset (&out);

    //  Two spheres at rest: the upper one ends resting on the lower one
    P2C_CHECK (s_run ("physics_rigid_body", "{\"objects\":[{\"position\":[0,1,0],\"radius\":0.5},"
                      "{\"position\":[0,3,0],\"radius\":0.25}],\"steps\":400}", NULL, 0, &out) == 0);
    json_t *upper = json_array_get (json_object_get (out.result, "objects"), 1);
    double top_y = json_real_value (json_array_get (json_object_get (upper, "position"), 1));
    P2C_CHECK (top_y > 1.2 && top_y < 1.3);
    P2C_CHECK (s_int (&out, "collisions") > 0);
    agt_kernel_out_reset (&out);

    //  Pinned cloth: the top row stays at y = 2, the rest hangs below it
    P2C_CHECK (s_run ("physics_cloth", "{\"grid_size\":10,\"timesteps\":100,\"pinned\":\"top\",\"wind\":0}", NULL, 0, &out) == 0);
    json_t *box = json_object_get (out.result, "bounding_box");
    P2C_CHECK (json_real_value (json_array_get (json_object_get (box, "max"), 1)) == 2.0);
    P2C_CHECK (json_real_value (json_array_get (json_object_get (box, "min"), 1)) < 1.05);
    P2C_CHECK (json_real_value (json_object_get (out.result, "max_stretch")) < 1.2);
    agt_kernel_out_reset (&out);

    //  Fluid: density was added and moves
    P2C_CHECK (s_run ("physics_fluid", "{\"grid_size\":8,\"iterations\":5}", NULL, 0, &out) == 0);
    P2C_CHECK (json_real_value (json_object_get (out.result, "total_density")) > 0);
    P2C_CHECK (json_real_value (json_object_get (out.result, "max_velocity")) > 0);
    agt_kernel_out_reset (&out);

    //  The same PNG as base64 in image_b64 gives the same image as the payload
    int b64_len = 4 * (((int) png_len + 2) / 3);
    char *b64 = malloc ((size_t) b64_len + 1);
    EVP_EncodeBlock ((unsigned char *) b64, png, (int) png_len);
    char *params = NULL;
    P2C_CHECK (asprintf (&params, "{\"image_b64\":\"%s\",\"output_res\":[80,60]}", b64) > 0);
    P2C_CHECK (s_run ("frame_upscale", params, NULL, 0, &out) == 0);
    P2C_CHECK (s_run ("frame_upscale", "{\"output_res\":[80,60]}", png, png_len, &other) == 0);
    P2C_CHECK (out.blob && other.blob && out.blob_len == other.blob_len
               && !memcmp (out.blob, other.blob, out.blob_len));
    P2C_CHECK (s_int (&out, "input_width") == 40 && s_int (&out, "width") == 80);
    free (params);
    free (b64);
    agt_kernel_out_reset (&out);
    agt_kernel_out_reset (&other);
    //  Truncated PNG: invalid_params naming image
    P2C_CHECK (s_run ("frame_upscale", "{}", png, png_len / 2, &out) == -1);
    P2C_CHECK (!strcmp (out.error_code, "invalid_params") && !strncmp (out.error, "image:", 6));
    agt_kernel_out_reset (&out);
}

//  Decodes a PNG to RGB with libpng's simplified API (the test's own reader)
static uint8_t *
s_png_rgb (const uint8_t *png, size_t len, uint32_t *w, uint32_t *h)
{
    png_image image;
    memset (&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory (&image, png, len))
        return NULL;
    image.format = PNG_FORMAT_RGB;
    uint8_t *rgb = malloc (PNG_IMAGE_SIZE (image));
    if (!rgb || !png_image_finish_read (&image, NULL, rgb, 0, NULL)) {
        free (rgb);
        png_image_free (&image);
        return NULL;
    }
    *w = image.width;
    *h = image.height;
    return rgb;
}

//  A tile of a frame has exactly the pixels of that region of the whole
//  render, for every ray-tracing mode; rows of tiles add up to the frame's
//  rays and intersections
static void
s_test_tiles (void)
{
    const char *kernels [] = { "rt_reflections", "rt_shadows", "rt_global_illumination" };
    const char *frame = "\"resolution\":[64,48],\"bounces\":2,\"lights\":2,\"samples_per_pixel\":2,\"seed\":5";
    //  three bands of rows, and a rectangle inside
    const int tiles [][4] = { { 0, 0, 64, 17 }, { 0, 17, 64, 17 }, { 0, 34, 64, 14 }, { 9, 5, 30, 21 } };
    for (size_t k = 0; k < 3; k++) {
        char params [256];
        snprintf (params, sizeof params, "{%s}", frame);
        agt_kernel_out_t full;
        P2C_CHECK (s_run (kernels [k], params, NULL, 0, &full) == 0);
        uint32_t fw = 0, fh = 0;
        uint8_t *whole = full.blob ? s_png_rgb (full.blob, full.blob_len, &fw, &fh) : NULL;
        P2C_CHECK (whole && fw == 64 && fh == 48);
        json_int_t rays = 0, hits = 0;
        for (size_t t = 0; whole && t < 4; t++) {
            const int *r = tiles [t];
            snprintf (params, sizeof params, "{%s,\"tile\":[%d,%d,%d,%d]}", frame, r [0], r [1], r [2], r [3]);
            agt_kernel_out_t out;
            P2C_CHECK (s_run (kernels [k], params, NULL, 0, &out) == 0);
            uint32_t w = 0, h = 0;
            uint8_t *part = out.blob ? s_png_rgb (out.blob, out.blob_len, &w, &h) : NULL;
            P2C_CHECK (part && w == (uint32_t) r [2] && h == (uint32_t) r [3]);
            bool same = part != NULL;
            for (int y = 0; same && y < r [3]; y++)
                same = !memcmp (part + (size_t) y * r [2] * 3,
                                whole + ((size_t) (r [1] + y) * 64 + (size_t) r [0]) * 3, (size_t) r [2] * 3);
            P2C_CHECK (same);
            //  the frame's size and the tile are in the result
            json_t *echo = out.result ? json_object_get (out.result, "tile") : NULL;
            P2C_CHECK (s_int (&out, "width") == 64 && s_int (&out, "height") == 48
                       && json_array_size (echo) == 4
                       && json_integer_value (json_array_get (echo, 1)) == r [1]);
            if (t < 3) {
                rays += s_int (&out, "rays_traced");
                hits += s_int (&out, "intersections");
            }
            free (part);
            agt_kernel_out_reset (&out);
        }
        P2C_CHECK (rays == s_int (&full, "rays_traced") && hits == s_int (&full, "intersections"));
        P2C_CHECK (json_object_get (full.result, "tile") == NULL);
        free (whole);
        agt_kernel_out_reset (&full);
    }
}

//  The original demo's gamer menu, exactly as it sends its nine tasks: every
//  one accepted and answered
static void
s_test_menu (void)
{
    const char *menu [][2] = {
        { "ai_dialogue", "{\"character\":\"Shopkeeper\",\"context\":\"greeting\",\"personality\":\"friendly\"}" },
        { "ai_pathfinding", "{\"start\":[0,0],\"end\":[5,5],\"obstacles\":[[2,2]]}" },
        { "ai_procedural", "{\"type\":\"dungeon\",\"size\":[8,8],\"seed\":42}" },
        { "rt_reflections", "{\"resolution\":[1920,1080],\"bounces\":2,\"lights\":2}" },
        { "rt_shadows", "{\"quality\":\"medium\",\"lights\":3}" },
        { "rt_global_illumination", "{\"bounces\":2,\"samples_per_pixel\":100}" },
        { "physics_rigid_body", "{\"num_objects\":20,\"simulation_steps\":5}" },
        { "physics_fluid", "{\"grid_size\":[32,32,32],\"iterations\":10}" },
        { "physics_destruction", "{\"complexity\":100,\"fracture_depth\":2}" },
    };
    for (size_t k = 0; k < sizeof menu / sizeof menu [0]; k++) {
        agt_kernel_out_t out;
        int rc = s_run (menu [k][0], menu [k][1], NULL, 0, &out);
        if (rc)
            fprintf (stderr, "menu %s: %s %s\n", menu [k][0], out.error_code, out.error);
        P2C_CHECK (rc == 0 && out.result);
        agt_kernel_out_reset (&out);
    }
    //  the full-HD frame is the size asked for
    agt_kernel_out_t out;
    P2C_CHECK (s_run ("rt_reflections", menu [3][1], NULL, 0, &out) == 0);
    P2C_CHECK (s_int (&out, "width") == 1920 && s_int (&out, "height") == 1080);
    agt_kernel_out_reset (&out);
    P2C_CHECK (s_run ("physics_destruction", menu [8][1], NULL, 0, &out) == 0);
    P2C_CHECK (s_int (&out, "fragments") > 100);
    agt_kernel_out_reset (&out);
}

static void
s_test_registry (void)
{
    //  Every registered kernel is a catalogue type with a version and a
    //  reference input that it accepts
    int count = 0;
    for (const agt_kernel_t *k = agt_kernels (); k->name; k++) {
        count++;
        P2C_CHECK (p2c_task_type (k->name) != NULL);
        P2C_CHECK (agt_kernel_find (k->name) == k);
        P2C_CHECK (k->version && *k->version);
        //  (s_test_catalogue: its version is the catalogue's current one)
        bool image_in = !strcmp (k->name, "frame_upscale");
        size_t png_len = 0;
        uint8_t *png = image_in? s_make_png (480, 270, &png_len): NULL;
        agt_kernel_out_t out;
        P2C_CHECK (s_run (k->name, k->reference_params, png, png_len, &out) == 0);
        agt_kernel_out_reset (&out);
        free (png);
    }
    P2C_CHECK (count == 13);
    P2C_CHECK (agt_kernel_find ("mining") == NULL);
    P2C_CHECK (agt_kernel_find (NULL) == NULL);
    agt_kernel_out_t out;
    memset (&out, 0, sizeof out);
    P2C_CHECK (agt_kernel_fail (&out, "kernel_error", "x=%d", 5) == -1);
    P2C_CHECK (!strcmp (out.error_code, "kernel_error") && !strcmp (out.error, "x=5"));
    agt_kernel_out_reset (&out);
    agt_kernel_out_reset (&out);
}

//  The server's catalogue knows what the agent runs (issue 14): every
//  kernel's version is the catalogue's current one (a result of another
//  version is invalid), and the cost model's reference input is the
//  kernel's own, so billing and `p2c2r-agent bench` measure the same work
static void
s_test_catalogue (void)
{
    for (const agt_kernel_t *k = agt_kernels (); k->name; k++) {
        const p2c_task_type_t *t = p2c_task_type (k->name);
        char current [64];
        P2C_CHECK (t && p2c_task_version_known (t, k->version));
        P2C_CHECK (t && !strcmp (p2c_task_version_current (t, current, sizeof current),
                                 k->version));
        const char *ref = NULL;
        uint64_t ref_us = 0;
        P2C_CHECK (p2c_cost_reference (k->name, &ref, &ref_us) && ref_us > 0);
        P2C_CHECK (ref && !strcmp (ref, k->reference_params));
        if (!t || !ref || strcmp (ref, k->reference_params))
            printf ("catalogue mismatch: %s version %s\n", k->name, k->version);
    }
}

int
main (int argc, char **argv)
{
    for (int k = 1; k < argc; k++) {
        if (!strcmp (argv [k], "-v"))
            s_verbose = true;
        if (!strcmp (argv [k], "-record"))
            s_record = true;
    }
    p2c_log_init ("test", s_verbose);
    size_t png_len = 0;
    uint8_t *png = s_make_png (40, 30, &png_len);
    P2C_CHECK (png != NULL);
    s_test_registry ();
    s_test_catalogue ();
    s_test_encryption ();
    s_test_menu ();
    s_test_tiles ();
    s_test_compression ();
    s_test_bad_params ();
    s_test_semantics (png, png_len);
    s_test_golden (png, png_len);
    free (png);
    return p2c_test_report ("kernels");
}
