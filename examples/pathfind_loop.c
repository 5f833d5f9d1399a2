/*  A minimal game loop on libp2c2r: 60 frames a second, and every frame
    it asks the server for a path from its unit to the goal around a wall
    whose gap moves. Results arrive a few frames later; the newest one
    that found a path becomes the unit's route, and the unit walks it. The
    frame never waits for the network: the client runs in loop mode and
    p2c2r_step is one non-blocking call per frame.

    Usage: pathfind_loop [--server URL] [--frames N] [--gamer-id ID]
    (the API key, if any, comes from P2C2R_API_KEY; never a flag)
    Prints one line of figures (errors by code at its end); exit 0 when
    results arrived and were used. */
#include <p2c2r.h>

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GRID        32
#define FPS         60
#define MAX_FLIGHT  30          //  half a second of frames in flight at most
#define MAX_PATH    (GRID * GRID)

typedef struct {
    int x, y;
} cell_t;

typedef struct {
    p2c2r_client_t *client;
    uint64_t frame;             //  the frame being simulated
    unsigned run;               //  this run's mark in client_refs: a ref names
                                //  one task for 24 h, and frame numbers start
                                //  again at every run
    cell_t unit, goal;
    int gap_y;                  //  where the wall at x = GRID/2 is open
    cell_t path [MAX_PATH];     //  the route in use, from the unit onwards
    int path_len, path_pos;
    uint64_t path_frame;        //  the frame whose request gave the route
    //  Figures
    uint64_t submitted, results, cached, used, stale, not_found, errors, moves, goals;
    uint64_t by_code [P2C2R_CODE_COUNT];    //  errors by code
    uint64_t disconnects;
    int in_flight;
    char last_error [160];
} game_t;

static double
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

static bool
s_blocked (const game_t *g, int x, int y)
{
    return x == GRID / 2 && (y < g->gap_y - 1 || y > g->gap_y + 1);
}

//  A result: adopt the route if it is newer than the one in use
static void
s_on_path (p2c2r_client_t *client, const p2c2r_result_t *r, void *arg)
{
    (void) client;
    game_t *g = (game_t *) arg;
    g->in_flight--;
    g->results++;
    if (p2c2r_result_code (r) != P2C2R_OK) {
        g->errors++;
        if ((unsigned) p2c2r_result_code (r) < P2C2R_CODE_COUNT)
            g->by_code [p2c2r_result_code (r)]++;
        snprintf (g->last_error, sizeof g->last_error, "%s: %s", p2c2r_result_code_name (r),
                  p2c2r_result_error (r));
        return;
    }
    //  The unit standing still asks the same question again: the server
    //  answers those from its cache, free
    if (p2c2r_result_cached (r))
        g->cached++;
    //  The request's frame number is in its client_ref ("f<frame>.<run>")
    uint64_t frame = strtoull (p2c2r_result_client_ref (r) + 1, NULL, 10);
    if (frame <= g->path_frame) {
        g->stale++;
        return;
    }
    json_t *root = json_loads (p2c2r_result_json (r), 0, NULL);
    json_t *path = json_object_get (root, "path");
    if (!json_is_true (json_object_get (root, "found")) || !json_is_array (path)
        || json_array_size (path) == 0 || json_array_size (path) > MAX_PATH) {
        g->not_found++;
        json_decref (root);
        return;
    }
    //  The unit may have moved since the request: join the route where
    //  the unit stands, or drop it
    int len = 0, at = -1;
    for (size_t i = 0; i < json_array_size (path); i++) {
        json_t *c = json_array_get (path, i);
        g->path [len].x = (int) json_integer_value (json_array_get (c, 0));
        g->path [len].y = (int) json_integer_value (json_array_get (c, 1));
        if (g->path [len].x == g->unit.x && g->path [len].y == g->unit.y)
            at = len;
        len++;
    }
    json_decref (root);
    if (at < 0) {
        g->stale++;
        return;
    }
    g->path_len = len;
    g->path_pos = at;
    g->path_frame = frame;
    g->used++;
}

//  The connection's state: a game would show "reconnecting..." here
static void
s_on_state (p2c2r_client_t *client, p2c2r_state_t state, p2c2r_code_t code, const char *why,
            void *arg)
{
    (void) client;
    game_t *g = (game_t *) arg;
    if (state == P2C2R_DISCONNECTED) {
        g->disconnects++;
        fprintf (stderr, "pathfind_loop: disconnected (%s: %s), reconnecting\n",
                 p2c2r_code_name (code), why);
    }
}

//  Asks for a route from where the unit is now, around the wall as it is now
static void
s_request (game_t *g)
{
    if (p2c2r_state (g->client) != P2C2R_READY || g->in_flight >= MAX_FLIGHT)
        return;
    char params [2048];
    int n = snprintf (params, sizeof params,
                      "{\"grid_size\":[%d,%d],\"start\":[%d,%d],\"goal\":[%d,%d],\"obstacles\":[",
                      GRID, GRID, g->unit.x, g->unit.y, g->goal.x, g->goal.y);
    bool first = true;
    for (int y = 0; y < GRID; y++)
        //  (never the unit's own cell: the gap may have moved onto it)
        if (s_blocked (g, GRID / 2, y) && !(g->unit.x == GRID / 2 && g->unit.y == y)) {
            n += snprintf (params + n, sizeof params - (size_t) n, "%s[%d,%d]", first ? "" : ",",
                           GRID / 2, y);
            first = false;
        }
    snprintf (params + n, sizeof params - (size_t) n, "]}");
    char ref [32];
    snprintf (ref, sizeof ref, "f%llu.%08x", (unsigned long long) g->frame, g->run);
    p2c2r_task_t task = { "ai_pathfinding", params, NULL, 0, ref, 2000 };
    p2c2r_code_t code;
    if (p2c2r_submit (g->client, &task, s_on_path, g, &code)) {
        g->submitted++;
        g->in_flight++;
    }
}

//  The game's own update: the wall's gap moves, the unit walks its route
static void
s_simulate (game_t *g)
{
    g->gap_y = GRID / 2 + (int) ((g->frame / 90) % 9) - 4;
    if (g->frame % 6 != 0 || g->path_pos + 1 >= g->path_len)
        return;
    cell_t next = g->path [g->path_pos + 1];
    if (s_blocked (g, next.x, next.y))
        return;     //  the wall moved across the route: wait for a newer one
    g->unit = next;
    g->path_pos++;
    g->moves++;
    if (g->unit.x == g->goal.x && g->unit.y == g->goal.y) {
        g->goals++;
        g->goal.x = GRID - 1 - g->goal.x;
        g->goal.y = GRID - 1 - g->goal.y;
        g->path_len = g->path_pos = 0;
    }
}

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
    const char *server = "ws://127.0.0.1:8765", *gamer_id = "pathfind-example";
    long frames = 300;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp (argv [i], "--server"))
            server = argv [i + 1];
        else
        if (!strcmp (argv [i], "--frames"))
            frames = strtol (argv [i + 1], NULL, 10);
        else
        if (!strcmp (argv [i], "--gamer-id"))
            gamer_id = argv [i + 1];
    }
    if (frames < 1 || frames > 1000000) {
        fprintf (stderr, "usage: pathfind_loop [--server URL] [--frames 1..1000000] [--gamer-id ID]\n");
        return 2;
    }
    signal (SIGPIPE, SIG_IGN);
    game_t g;
    memset (&g, 0, sizeof g);
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    g.run = (unsigned) now.tv_sec * 2654435761u ^ (unsigned) now.tv_nsec ^ (unsigned) getpid ();
    g.goal.x = g.goal.y = GRID - 1;

    p2c2r_options_t opt;
    p2c2r_options_init (&opt);
    opt.url = server;
    opt.api_key = getenv ("P2C2R_API_KEY");
    opt.gamer_id = gamer_id;
    opt.on_state = s_on_state;
    opt.arg = &g;
    p2c2r_code_t code;
    g.client = p2c2r_new (&opt, &code);
    if (!g.client) {
        fprintf (stderr, "pathfind_loop: %s\n", p2c2r_code_text (code));
        return 1;
    }
    double *frame_ms = calloc ((size_t) frames, sizeof (double));
    if (!frame_ms)
        return 1;
    long late = 0;
    const double period = 1000.0 / FPS;
    struct timespec next;
    clock_gettime (CLOCK_MONOTONIC, &next);
    double start = s_now_ms ();
    for (g.frame = 1; g.frame <= (uint64_t) frames; g.frame++) {
        double t0 = s_now_ms ();
        p2c2r_step (g.client);      //  replies, sends: never blocks
        s_request (&g);
        s_simulate (&g);
        double work = s_now_ms () - t0;
        frame_ms [g.frame - 1] = work;
        if (work > period)
            late++;
        //  Wait for the next frame's time, as vsync would
        next.tv_nsec += (long) (1e9 / FPS);
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    double wall = s_now_ms () - start;
    //  Collect what is still in flight (at most 5 s), so every request is counted
    double until = s_now_ms () + 5000;
    while (g.in_flight > 0 && s_now_ms () < until) {
        p2c2r_step (g.client);
        struct timespec ts = { 0, 5000000 };
        nanosleep (&ts, NULL);
    }
    qsort (frame_ms, (size_t) frames, sizeof (double), s_cmp);
    double sum = 0;
    for (long i = 0; i < frames; i++)
        sum += frame_ms [i];
    printf ("frames=%ld fps=%.1f frame_ms_avg=%.3f frame_ms_p99=%.3f frame_ms_max=%.3f "
            "late_frames=%ld submitted=%llu results=%llu cached=%llu used=%llu stale=%llu not_found=%llu "
            "errors=%llu unanswered=%d disconnects=%llu moves=%llu goals=%llu",
            frames, (double) frames / (wall / 1000.0), sum / (double) frames,
            frame_ms [(size_t) ((double) frames * 0.99) < (size_t) frames
                      ? (size_t) ((double) frames * 0.99) : (size_t) frames - 1],
            frame_ms [frames - 1], late, (unsigned long long) g.submitted,
            (unsigned long long) g.results, (unsigned long long) g.cached,
            (unsigned long long) g.used,
            (unsigned long long) g.stale, (unsigned long long) g.not_found,
            (unsigned long long) g.errors, g.in_flight, (unsigned long long) g.disconnects,
            (unsigned long long) g.moves,
            (unsigned long long) g.goals);
    //  ... then the errors by code, e.g. " connection_lost=1"
    for (int c = 1; c < P2C2R_CODE_COUNT; c++)
        if (g.by_code [c])
            printf (" %s=%llu", p2c2r_code_name ((p2c2r_code_t) c),
                    (unsigned long long) g.by_code [c]);
    printf ("\n");
    if (g.errors)
        printf ("last error: %s\n", g.last_error);
    free (frame_ms);
    p2c2r_destroy (&g.client);
    return g.used > 0 ? 0 : 1;
}
