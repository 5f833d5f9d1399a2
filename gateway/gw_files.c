/*  Static files below a web root (see gw_files.h). */
#include "gw_files.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

struct _gw_files_t {
    char *root;                 //  the root's resolved path (owned), NULL: none
    size_t root_len;
};

gw_files_t *
gw_files_new (const char *root)
{
    gw_files_t *self = (gw_files_t *) zmalloc (sizeof (gw_files_t));
    struct stat st;
    char *real = root && *root ? realpath (root, NULL) : NULL;
    if (real && stat (real, &st) == 0 && S_ISDIR (st.st_mode)) {
        self->root = real;
        self->root_len = strlen (real);
    }
    else {
        free (real);
        if (root && *root)
            log_warn ("no web root, static files are not served path=%s", root);
    }
    return self;
}

void
gw_files_destroy (gw_files_t **self_p)
{
    gw_files_t *self = *self_p;
    if (!self)
        return;
    free (self->root);
    free (self);
    *self_p = NULL;
}

char *
gw_files_share_dir (const char *name)
{
    char exe [PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return p2c_sprintf ("/usr/local/share/p2c2r/%s", name);
    exe [n] = 0;
    char *slash = strrchr (exe, '/');
    if (slash)
        *slash = 0;
    return p2c_sprintf ("%s/../share/p2c2r/%s", exe, name);
}

char *
gw_files_default_root (void)
{
    char exe [PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe [n] = 0;
        char *slash = strrchr (exe, '/');
        if (slash)
            *slash = 0;
        //  the source tree's web/ beside bin/, when the binary runs from it
        char *dir = p2c_sprintf ("%s/../web", exe);
        struct stat st;
        if (stat (dir, &st) == 0 && S_ISDIR (st.st_mode))
            return dir;
        free (dir);
    }
    return gw_files_share_dir ("web");
}

const char *
gw_files_root (gw_files_t *self)
{
    return self->root;
}

const char *
gw_files_type (const char *name)
{
    static const struct { const char *ext; const char *type; } types [] = {
        { "html", "text/html; charset=utf-8" },
        { "htm",  "text/html; charset=utf-8" },
        { "js",   "text/javascript; charset=utf-8" },
        { "mjs",  "text/javascript; charset=utf-8" },
        { "css",  "text/css; charset=utf-8" },
        { "png",  "image/png" },
        { "svg",  "image/svg+xml" },
        { "json", "application/json" },
        { "sh",   "text/x-shellscript; charset=utf-8" },
        { NULL, NULL }
    };
    const char *slash = strrchr (name, '/');
    const char *dot = strrchr (slash ? slash : name, '.');
    for (int i = 0; dot && types [i].ext; i++)
        if (!strcasecmp (dot + 1, types [i].ext))
            return types [i].type;
    return "application/octet-stream";
}

//  A path that names something below the root by itself: absolute, no
//  "." or ".." segment, no backslash (the realpath check below is the
//  guard; this refuses the obvious attempts before touching the disk)
static bool
s_plain_path (const char *path)
{
    size_t n = strnlen (path, GW_FILES_MAX_PATH + 1);
    if (n == 0 || n > GW_FILES_MAX_PATH || path [0] != '/' || strchr (path, '\\'))
        return false;
    for (const char *p = path; *p; ) {
        while (*p == '/')
            p++;
        size_t len = strcspn (p, "/");
        if ((len == 1 && p [0] == '.') || (len == 2 && p [0] == '.' && p [1] == '.'))
            return false;
        p += len;
    }
    return true;
}

//  The resolved path of root + rel when it lies below the root (symlinks
//  followed), else NULL
static char *
s_resolve (gw_files_t *self, const char *rel)
{
    char want [PATH_MAX];
    if (snprintf (want, sizeof want, "%s%s", self->root, rel) >= (int) sizeof want)
        return NULL;
    char *real = realpath (want, NULL);
    if (real && strncmp (real, self->root, self->root_len) == 0
        && (real [self->root_len] == '/' || real [self->root_len] == 0))
        return real;
    free (real);
    return NULL;
}

unsigned
gw_files_read (const char *path, bool nofollow, size_t max, size_t pre, uint8_t **buf_p,
               size_t *len_p)
{
    //  O_NONBLOCK: opening a FIFO would wait for a writer; it is refused below
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (nofollow ? O_NOFOLLOW : 0));
    if (fd < 0)
        return errno == ENOENT ? 404 : 403;
    struct stat st;
    if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) || (size_t) st.st_size > max) {
        close (fd);
        return 403;
    }
    size_t size = (size_t) st.st_size, got = 0;
    uint8_t *buf = (uint8_t *) p2c_malloc (pre + size + 1);
    while (got < size) {
        ssize_t n = read (fd, buf + pre + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t) n;
    }
    close (fd);
    if (got < size) {
        free (buf);
        return 500;
    }
    buf [pre + size] = 0;
    *buf_p = buf;
    *len_p = size;
    return 200;
}

unsigned
gw_files_get (gw_files_t *self, const char *path, size_t pre, uint8_t **buf_p,
              size_t *len_p, const char **type_p)
{
    *buf_p = NULL;
    *len_p = 0;
    if (!self->root || !path || !s_plain_path (path))
        return 404;
    char *real = s_resolve (self, path);
    struct stat st;
    if (real && stat (real, &st) == 0 && S_ISDIR (st.st_mode)) {
        //  A directory stands for its index.html
        char rel [PATH_MAX];
        snprintf (rel, sizeof rel, "%s/index.html", real + self->root_len);
        free (real);
        real = s_resolve (self, rel);
    }
    if (!real)
        return 404;
    unsigned status = gw_files_read (real, true, GW_FILES_MAX_BYTES, pre, buf_p, len_p);
    if (status == 200)
        *type_p = gw_files_type (real);
    free (real);
    return status;
}

// ---------------------------------------------------------------------------
//  Self-test

static void
s_write (const char *dir, const char *name, const char *text)
{
    char *path = p2c_sprintf ("%s/%s", dir, name);
    FILE *f = fopen (path, "w");
    assert (f);
    fputs (text, f);
    fclose (f);
    zstr_free (&path);
}

//  The status of a path, and when 200 that its content and type are these
static bool
s_serves (gw_files_t *files, const char *path, unsigned status, const char *content,
          const char *type)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    const char *got_type = NULL;
    unsigned got = gw_files_get (files, path, 16, &buf, &len, &got_type);
    bool ok = got == status;
    if (ok && status == 200)
        ok = len == strlen (content) && !memcmp (buf + 16, content, len)
          && !strcmp (got_type, type);
    else
        ok = ok && !buf;
    free (buf);
    return ok;
}

static void
s_test_types (void)
{
    P2C_CHECK (!strcmp (gw_files_type ("a/index.html"), "text/html; charset=utf-8"));
    P2C_CHECK (!strcmp (gw_files_type ("sdk/p2c2r.js"), "text/javascript; charset=utf-8"));
    P2C_CHECK (!strcmp (gw_files_type ("x.CSS"), "text/css; charset=utf-8"));
    P2C_CHECK (!strcmp (gw_files_type ("logo.png"), "image/png"));
    P2C_CHECK (!strcmp (gw_files_type ("logo.svg"), "image/svg+xml"));
    P2C_CHECK (!strcmp (gw_files_type ("m.json"), "application/json"));
    P2C_CHECK (!strcmp (gw_files_type ("install.sh"), "text/x-shellscript; charset=utf-8"));
    P2C_CHECK (!strcmp (gw_files_type ("blob.bin"), "application/octet-stream"));
    P2C_CHECK (!strcmp (gw_files_type ("v1.2/README"), "application/octet-stream"));
}

//  A web root with what may and may not be served, below a temporary
//  directory; returns its path (top/web) and sets top/secret outside it
static char *
s_make_tree (const char *top)
{
    char *root = p2c_sprintf ("%s/web", top);
    char *sub = p2c_sprintf ("%s/web/sub", top);
    P2C_CHECK (mkdir (root, 0755) == 0 && mkdir (sub, 0755) == 0);
    s_write (top, "secret", "outside\n");
    s_write (root, "index.html", "<p>home</p>\n");
    s_write (root, "app.js", "let x = 1;\n");
    s_write (sub, "index.html", "<p>sub</p>\n");
    char *p = p2c_sprintf ("%s/out", root);
    P2C_CHECK (symlink ("../secret", p) == 0);              //  a symlink out of the root
    zstr_free (&p);
    p = p2c_sprintf ("%s/home.html", root);
    P2C_CHECK (symlink ("index.html", p) == 0);             //  one that stays inside
    zstr_free (&p);
    p = p2c_sprintf ("%s/outdir", root);
    P2C_CHECK (symlink ("..", p) == 0);                     //  a directory out of it
    zstr_free (&p);
    p = p2c_sprintf ("%s/big.bin", root);
    int fd = open (p, O_WRONLY | O_CREAT, 0644);
    P2C_CHECK (fd >= 0 && ftruncate (fd, GW_FILES_MAX_BYTES + 1) == 0);
    close (fd);
    zstr_free (&p);
    p = p2c_sprintf ("%s/fifo", root);
    P2C_CHECK (mkfifo (p, 0644) == 0);
    zstr_free (&p);
    zstr_free (&sub);
    return root;
}

void
gw_files_test (bool verbose)
{
    (void) verbose;
    s_test_types ();
    //  top/web is the root; top/secret lies outside it
    char top [] = "/tmp/gw_files_test.XXXXXX";
    P2C_CHECK (mkdtemp (top) != NULL);
    char *root = s_make_tree (top);
    gw_files_t *files = gw_files_new (root);
    P2C_CHECK (gw_files_root (files) != NULL);
    P2C_CHECK (s_serves (files, "/", 200, "<p>home</p>\n", "text/html; charset=utf-8"));
    P2C_CHECK (s_serves (files, "/index.html", 200, "<p>home</p>\n", "text/html; charset=utf-8"));
    P2C_CHECK (s_serves (files, "/app.js", 200, "let x = 1;\n", "text/javascript; charset=utf-8"));
    P2C_CHECK (s_serves (files, "/sub/", 200, "<p>sub</p>\n", "text/html; charset=utf-8"));
    P2C_CHECK (s_serves (files, "/sub", 200, "<p>sub</p>\n", "text/html; charset=utf-8"));
    P2C_CHECK (s_serves (files, "//sub//index.html", 200, "<p>sub</p>\n",
                         "text/html; charset=utf-8"));
    P2C_CHECK (s_serves (files, "/home.html", 200, "<p>home</p>\n", "text/html; charset=utf-8"));
    P2C_CHECK (s_serves (files, "/missing.html", 404, NULL, NULL));
    P2C_CHECK (s_serves (files, "/sub/missing/", 404, NULL, NULL));
    //  Ways out of the root
    P2C_CHECK (s_serves (files, "/../secret", 404, NULL, NULL));
    P2C_CHECK (s_serves (files, "/sub/../../secret", 404, NULL, NULL));
    P2C_CHECK (s_serves (files, "/./index.html", 404, NULL, NULL));
    P2C_CHECK (s_serves (files, "/..", 404, NULL, NULL));
    P2C_CHECK (s_serves (files, "/out", 404, NULL, NULL));
    P2C_CHECK (s_serves (files, "/outdir/secret", 404, NULL, NULL));
    //  ... but back in through it is below the root again
    P2C_CHECK (s_serves (files, "/outdir/web/index.html", 200, "<p>home</p>\n",
                         "text/html; charset=utf-8"));
    P2C_CHECK (s_serves (files, "/..\\secret", 404, NULL, NULL));
    P2C_CHECK (s_serves (files, "index.html", 404, NULL, NULL));
    P2C_CHECK (s_serves (files, "", 404, NULL, NULL));
    P2C_CHECK (s_serves (files, NULL, 404, NULL, NULL));
    char *long_path = (char *) zmalloc (GW_FILES_MAX_PATH + 2);
    memset (long_path, 'a', GW_FILES_MAX_PATH + 1);
    long_path [0] = '/';
    P2C_CHECK (s_serves (files, long_path, 404, NULL, NULL));
    free (long_path);
    //  Not served: too large, not a regular file
    P2C_CHECK (s_serves (files, "/big.bin", 403, NULL, NULL));
    P2C_CHECK (s_serves (files, "/fifo", 403, NULL, NULL));
    gw_files_destroy (&files);
    gw_files_destroy (&files);

    //  No root: nothing is served
    files = gw_files_new ("/nonexistent/gw_files_test");
    P2C_CHECK (gw_files_root (files) == NULL);
    P2C_CHECK (s_serves (files, "/", 404, NULL, NULL));
    gw_files_destroy (&files);

    char *cmd = p2c_sprintf ("rm -rf '%s'", top);
    P2C_CHECK (system (cmd) == 0);
    zstr_free (&cmd);
    zstr_free (&root);
}
