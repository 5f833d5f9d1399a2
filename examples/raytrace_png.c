/*  One ray-traced frame, rendered by the P2C2R network and saved as PNG.
    The client runs in thread mode: its own thread talks to the server and
    runs the callback; the main thread just waits for the frame.

    Usage: raytrace_png [--server URL] [--out FILE] [--width W] [--height H]
    (the API key, if any, comes from P2C2R_API_KEY; never a flag)
    Exit 0 when the PNG was saved. */
#include <p2c2r.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int rc;
    const char *out;
} frame_t;

//  Runs on the client's thread
static void
s_on_frame (p2c2r_client_t *client, const p2c2r_result_t *r, void *arg)
{
    (void) client;
    frame_t *f = (frame_t *) arg;
    int rc = 1;
    size_t len = 0;
    const uint8_t *png = p2c2r_result_blob (r, &len);
    if (p2c2r_result_code (r) != P2C2R_OK)
        fprintf (stderr, "raytrace_png: %s: %s\n", p2c2r_result_code_name (r),
                 p2c2r_result_error (r));
    else
    if (!png || len < 8 || memcmp (png, "\x89PNG\r\n\x1a\n", 8))
        fprintf (stderr, "raytrace_png: the result has no PNG\n");
    else {
        FILE *file = fopen (f->out, "wb");
        if (file && fwrite (png, 1, len, file) == len && fclose (file) == 0) {
            printf ("saved %s bytes=%zu latency_ms=%.1f cost_pico=%lld cached=%d result=%s\n",
                    f->out, len, p2c2r_result_latency_ms (r),
                    (long long) p2c2r_result_cost_pico (r), p2c2r_result_cached (r),
                    p2c2r_result_json (r));
            rc = 0;
        }
        else
            fprintf (stderr, "raytrace_png: cannot write %s\n", f->out);
    }
    pthread_mutex_lock (&f->lock);
    f->done = true;
    f->rc = rc;
    pthread_cond_signal (&f->cond);
    pthread_mutex_unlock (&f->lock);
}

int
main (int argc, char **argv)
{
    const char *server = "ws://127.0.0.1:8765";
    frame_t f = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 1, "frame.png" };
    long width = 320, height = 240;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp (argv [i], "--server"))
            server = argv [i + 1];
        else
        if (!strcmp (argv [i], "--out"))
            f.out = argv [i + 1];
        else
        if (!strcmp (argv [i], "--width"))
            width = strtol (argv [i + 1], NULL, 10);
        else
        if (!strcmp (argv [i], "--height"))
            height = strtol (argv [i + 1], NULL, 10);
    }
    if (width < 8 || width > 1920 || height < 8 || height > 1080) {
        fprintf (stderr, "raytrace_png: --width 8..1920, --height 8..1080\n");
        return 2;
    }
    signal (SIGPIPE, SIG_IGN);
    p2c2r_options_t opt;
    p2c2r_options_init (&opt);
    opt.url = server;
    opt.api_key = getenv ("P2C2R_API_KEY");
    opt.gamer_id = "raytrace-example";
    opt.threaded = true;
    p2c2r_code_t code;
    p2c2r_client_t *client = p2c2r_new (&opt, &code);
    if (!client) {
        fprintf (stderr, "raytrace_png: %s\n", p2c2r_code_text (code));
        return 1;
    }
    char params [160];
    snprintf (params, sizeof params,
              "{\"resolution\":[%ld,%ld],\"bounces\":2,\"lights\":2,\"samples_per_pixel\":1}",
              width, height);
    p2c2r_task_t task = { "rt_reflections", params, NULL, 0, NULL, 30000 };
    //  Sent as soon as the client has registered
    if (!p2c2r_submit (client, &task, s_on_frame, &f, &code)) {
        fprintf (stderr, "raytrace_png: %s\n", p2c2r_code_text (code));
        p2c2r_destroy (&client);
        return 1;
    }
    struct timespec until;
    clock_gettime (CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock (&f.lock);
    while (!f.done)
        if (pthread_cond_timedwait (&f.cond, &f.lock, &until) != 0)
            break;
    bool done = f.done;
    pthread_mutex_unlock (&f.lock);
    if (!done)
        fprintf (stderr, "raytrace_png: no frame within 60 s\n");
    p2c2r_destroy (&client);
    return done ? f.rc : 1;
}
