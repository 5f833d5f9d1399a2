/*  Kernel speed on reference inputs: the `bench` subcommand, and the
    figures a peer advertises at registration (measured in a worker
    process, cached per agent and kernel version). */
#define P2C_LOG_COMPONENT "bench"
#include "agt_bench.h"
#include "agt_config.h"
#include "agt_image.h"
#include "agt_peer.h"
#include "agt_worker.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_tasks.h"
#include "p2c_test.h"
#include "p2c_time.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint8_t *
agt_bench_png (uint32_t width, uint32_t height, size_t *len_p)
{
    *len_p = 0;
    if (width < 2 || height < 2)
        return NULL;
    uint8_t *rgb = malloc ((size_t) width * height * 3);
    if (!rgb)
        return NULL;
    //  A gradient with a diagonal line, as the kernels' unit test uses:
    //  smooth areas and one sharp edge, like a game frame
    for (uint32_t y = 0; y < height; y++)
        for (uint32_t x = 0; x < width; x++) {
            uint8_t *p = rgb + ((size_t) y * width + x) * 3;
            p [0] = (uint8_t) (x * 255 / (width - 1));
            p [1] = (uint8_t) (y * 255 / (height - 1));
            p [2] = x == y ? 255 : 0;
        }
    uint8_t *png = NULL;
    size_t len = 0;
    bool ok = agt_png_encode (rgb, width, height, &png, &len);
    free (rgb);
    if (!ok)
        return NULL;
    *len_p = len;
    return png;
}

uint8_t *
agt_bench_payload (const agt_kernel_t *kernel, size_t *len_p)
{
    *len_p = 0;
    if (strcmp (kernel->name, "frame_upscale"))
        return NULL;
    return agt_bench_png (AGT_BENCH_PNG_WIDTH, AGT_BENCH_PNG_HEIGHT, len_p);
}

static int
s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

int
agt_bench_kernel (const agt_kernel_t *kernel, int runs, int64_t *times_us, char *err,
                  size_t err_size)
{
    err [0] = 0;
    json_error_t jerr;
    json_t *params = json_loads (kernel->reference_params ? kernel->reference_params : "", 0,
                                 &jerr);
    if (!params || !json_is_object (params)) {
        json_decref (params);
        snprintf (err, err_size, "the reference input is not a JSON object");
        return -1;
    }
    size_t payload_len = 0;
    uint8_t *payload = agt_bench_payload (kernel, &payload_len);
    int rc = 0;
    for (int i = 0; i < runs && rc == 0; i++) {
        agt_kernel_out_t out;
        memset (&out, 0, sizeof out);
        int64_t start = p2c_now_us ();
        rc = kernel->run (params, payload, payload_len, &out);
        times_us [i] = p2c_now_us () - start;
        if (rc == 0 && !out.result) {
            snprintf (out.error, sizeof out.error, "no result object");
            rc = -1;
        }
        if (rc != 0)
            snprintf (err, err_size, "%s: %s", out.error_code [0] ? out.error_code : "kernel_error",
                      out.error);
        agt_kernel_out_reset (&out);
    }
    free (payload);
    json_decref (params);
    if (rc == 0)
        qsort (times_us, (size_t) runs, sizeof (int64_t), s_cmp_i64);
    return rc == 0 ? 0 : -1;
}

int64_t
agt_bench_median (const int64_t *sorted, int n)
{
    if (n <= 0)
        return 0;
    if (n % 2)
        return sorted [n / 2];
    return (sorted [n / 2 - 1] + sorted [n / 2]) / 2;
}

int
agt_bench_main (int argc, char **argv)
{
    agt_bench_config_t cfg;
    bool verbose = false;
    int rc = p2c_cfg_parse (&agt_config_bench, &cfg, &argc, argv, &verbose);
    if (rc != 0)
        return rc > 0 ? 0 : 1;
    p2c_log_init ("p2c2r-agent", verbose);
    const agt_kernel_t *single = NULL;
    if (cfg.kernel && *cfg.kernel) {
        const char *canonical = p2c_task_canonical (cfg.kernel);
        single = agt_kernel_find (canonical ? canonical : cfg.kernel);
        if (!single) {
            fprintf (stderr, "p2c2r-agent bench: no kernel '%s' (see p2c2r-agent peer "
                     "--list-kernels)\n", cfg.kernel);
            p2c_cfg_free (agt_config_bench.table, &cfg);
            return 1;
        }
    }
    if (argc > 1) {
        fprintf (stderr, "p2c2r-agent bench: unexpected argument '%s' (see --help)\n", argv [1]);
        p2c_cfg_free (agt_config_bench.table, &cfg);
        return 1;
    }
    p2c_cfg_free (agt_config_bench.table, &cfg);
    int64_t *times = p2c_calloc ((size_t) cfg.runs, sizeof (int64_t));
    json_t *list = json_array ();
    if (!cfg.json) {
        long cores = sysconf (_SC_NPROCESSORS_ONLN);
        printf ("p2c2r-agent %s bench: %d runs per kernel, one thread, %ld cores online\n",
                AGT_VERSION, cfg.runs, cores);
        printf ("%-24s %-8s %5s %11s %10s\n", "kernel", "version", "runs", "median_ms", "runs/s");
    }
    int failed = 0;
    for (const agt_kernel_t *k = agt_kernels (); k->name; k++) {
        if (single && k != single)
            continue;
        char err [320];
        int krc = agt_bench_kernel (k, (int) cfg.runs, times, err, sizeof err);
        double median_ms = (double) agt_bench_median (times, (int) cfg.runs) / 1000.0;
        double per_s = median_ms > 0 ? 1000.0 / median_ms : 0;
        if (krc != 0) {
            failed++;
            fprintf (stderr, "p2c2r-agent bench: %s failed on its reference input: %s\n", k->name,
                     err);
        }
        if (cfg.json) {
            json_t *o = json_pack ("{s:s, s:s, s:s, s:I}", "task_type", k->name, "version",
                                   k->version, "reference_params", k->reference_params,
                                   "runs", (json_int_t) cfg.runs);
            if (krc == 0) {
                json_object_set_new (o, "median_ms", json_real (median_ms));
                json_object_set_new (o, "min_ms", json_real ((double) times [0] / 1000.0));
                json_object_set_new (o, "max_ms",
                                     json_real ((double) times [cfg.runs - 1] / 1000.0));
                json_object_set_new (o, "runs_per_s", json_real (per_s));
            }
            else
                json_object_set_new (o, "error", json_string (err));
            json_array_append_new (list, o);
        }
        else
        if (krc == 0)
            printf ("%-24s %-8s %5d %11.3f %10.2f\n", k->name, k->version, cfg.runs, median_ms,
                    per_s);
        else
            printf ("%-24s %-8s %5d %11s %10s\n", k->name, k->version, cfg.runs, "error", "-");
        fflush (stdout);
    }
    if (cfg.json) {
        json_t *doc = json_pack ("{s:s, s:I, s:o}", "agent_version", AGT_VERSION, "runs",
                                 (json_int_t) cfg.runs, "kernels", list);
        char *text = json_dumps (doc, JSON_INDENT (2) | JSON_PRESERVE_ORDER
                                     | JSON_REAL_PRECISION (10));
        if (text)
            printf ("%s\n", text);
        free (text);
        json_decref (doc);
    }
    else
        json_decref (list);
    free (times);
    return failed ? 1 : 0;
}

//  ---------------------------------------------------------------------
//  Peer side

char *
agt_bench_cache_path (void)
{
    //  A systemd service writes only below its StateDirectory (the unit's
    //  ProtectSystem/ProtectHome); XDG: a relative XDG_CACHE_HOME is
    //  invalid and ignored
    const char *state = getenv ("STATE_DIRECTORY");
    const char *xdg = getenv ("XDG_CACHE_HOME");
    const char *home = getenv ("HOME");
    char buf [4096];
    if (state && state [0] == '/' && !strchr (state, ':'))
        snprintf (buf, sizeof buf, "%s/bench.json", state);
    else
    if (xdg && xdg [0] == '/')
        snprintf (buf, sizeof buf, "%s/p2c2r/bench.json", xdg);
    else
    if (home && home [0] == '/')
        snprintf (buf, sizeof buf, "%s/.cache/p2c2r/bench.json", home);
    else
        return NULL;
    return strdup (buf);
}

size_t
agt_bench_cache_load (const char *path, uint64_t *ref_us, size_t n)
{
    memset (ref_us, 0, n * sizeof (uint64_t));
    json_error_t jerr;
    json_t *doc = path ? json_load_file (path, 0, &jerr) : NULL;
    const char *version = json_string_value (json_object_get (doc, "agent_version"));
    json_t *kernels = json_object_get (doc, "kernels");
    size_t found = 0;
    if (version && !strcmp (version, AGT_VERSION) && json_is_object (kernels)) {
        const agt_kernel_t *k = agt_kernels ();
        for (size_t i = 0; i < n && k [i].name; i++) {
            json_t *entry = json_object_get (kernels, k [i].name);
            const char *kv = json_string_value (json_object_get (entry, "version"));
            json_t *us = json_object_get (entry, "reference_us");
            //  A figure of another kernel version says nothing about this one
            if (kv && !strcmp (kv, k [i].version) && json_is_integer (us)
                && json_integer_value (us) > 0) {
                ref_us [i] = (uint64_t) json_integer_value (us);
                found++;
            }
        }
    }
    json_decref (doc);
    return found;
}

//  mkdir -p of the directory part of path
static int
s_make_dirs (const char *path)
{
    char buf [4096];
    snprintf (buf, sizeof buf, "%s", path);
    char *slash = strrchr (buf, '/');
    if (!slash || slash == buf)
        return 0;
    *slash = 0;
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir (buf, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir (buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int
agt_bench_cache_save (const char *path, const uint64_t *ref_us, size_t n)
{
    if (!path || s_make_dirs (path) != 0)
        return -1;
    json_t *kernels = json_object ();
    const agt_kernel_t *k = agt_kernels ();
    for (size_t i = 0; i < n && k [i].name; i++)
        if (ref_us [i] > 0)
            json_object_set_new (kernels, k [i].name,
                                 json_pack ("{s:s, s:I}", "version", k [i].version,
                                            "reference_us", (json_int_t) ref_us [i]));
    json_t *doc = json_pack ("{s:s, s:o}", "agent_version", AGT_VERSION, "kernels", kernels);
    //  Several peers may start at once: each writes its own file, and the
    //  rename makes whichever lands last the whole cache
    char tmp [4200];
    snprintf (tmp, sizeof tmp, "%s.tmp.%d", path, (int) getpid ());
    int rc = json_dump_file (doc, tmp, JSON_INDENT (2) | JSON_SORT_KEYS);
    json_decref (doc);
    if (rc == 0 && rename (tmp, path) != 0)
        rc = -1;
    if (rc != 0)
        unlink (tmp);
    return rc == 0 ? 0 : -1;
}

size_t
agt_bench_measure (const char *exe, char *const argv [], int64_t limit_ms,
                   volatile sig_atomic_t *stop, uint64_t *ref_us, size_t n)
{
    memset (ref_us, 0, n * sizeof (uint64_t));
    agt_worker_t *worker = agt_worker_new (exe, argv);
    if (!worker) {
        log_warn ("cannot start a worker process, kernels not measured");
        return 0;
    }
    size_t measured = 0;
    const agt_kernel_t *k = agt_kernels ();
    for (size_t i = 0; i < n && k [i].name && !(stop && *stop); i++) {
        char id [96], why [128];
        snprintf (id, sizeof id, "bench-%s", k [i].name);
        size_t payload_len = 0;
        uint8_t *payload = agt_bench_payload (&k [i], &payload_len);
        P2c2r__Assign a = P2C2R__ASSIGN__INIT;
        a.task_id = id;
        a.task_type = (char *) k [i].name;
        a.params_json = (char *) k [i].reference_params;
        a.payload.data = payload;
        a.payload.len = payload_len;
        a.deadline_ms = (uint32_t) limit_ms;
        P2c2r__ClientMessage *reply = agt_worker_run (worker, &a, limit_ms, NULL, NULL, why,
                                                      sizeof why);
        free (payload);
        if (reply && reply->result->ok) {
            //  0 means "not measured": a kernel faster than a microsecond is 1
            ref_us [i] = reply->result->compute_us ? reply->result->compute_us : 1;
            measured++;
        }
        else
            log_warn ("kernel not measured type=%s reason=\"%s\"", k [i].name,
                      reply ? reply->result->error : why);
        p2c_msg_client_free (&reply);
    }
    agt_worker_destroy (&worker);
    return measured;
}

void
agt_bench_test (bool verbose)
{
    (void) verbose;
    int64_t odd [] = { 1, 2, 9 }, even [] = { 1, 3, 5, 100 };
    P2C_CHECK (agt_bench_median (odd, 3) == 2);
    P2C_CHECK (agt_bench_median (even, 4) == 4);
    P2C_CHECK (agt_bench_median (odd, 0) == 0);

    //  The generated frame is a PNG of the announced size
    size_t len = 0;
    uint8_t *png = agt_bench_png (AGT_BENCH_PNG_WIDTH, AGT_BENCH_PNG_HEIGHT, &len);
    uint8_t *rgb = NULL;
    uint32_t w = 0, h = 0;
    char err [128];
    P2C_CHECK (png && agt_png_decode (png, len, 4096, &rgb, &w, &h, err, sizeof err));
    P2C_CHECK (w == AGT_BENCH_PNG_WIDTH && h == AGT_BENCH_PNG_HEIGHT);
    P2C_CHECK (rgb && rgb [0] == 0 && rgb [(size_t) (w - 1) * 3] == 255);
    free (rgb);
    free (png);

    //  A reference run is timed; a kernel refusing its reference input is
    //  reported with its error (every real kernel's reference input is
    //  run by test_kernels and by the peer test below)
    int64_t times [3];
    const agt_kernel_t *enc = agt_kernel_find ("encryption");
    agt_kernel_t small = *enc, broken = *enc;
    small.reference_params = "{\"data\":\"x\",\"iterations\":2000}";
    broken.reference_params = "{\"iterations\":\"many\"}";
    P2C_CHECK (agt_bench_kernel (&small, 3, times, err, sizeof err) == 0);
    P2C_CHECK (times [0] > 0 && times [0] <= times [1] && times [1] <= times [2] && !err [0]);
    P2C_CHECK (agt_bench_kernel (&broken, 3, times, err, sizeof err) == -1);
    P2C_CHECK (strstr (err, "invalid_params") && strstr (err, "iterations"));
}
