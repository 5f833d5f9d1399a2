/*  The operator's token for the admin listener (see gw_admin.h). */
#include "gw_admin.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <assert.h>
#include <czmq.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>

struct _gw_admin_t {
    bool has_token;             //  a token was loaded
    unsigned char hash [32];    //  SHA-256 of the token (the token itself is not kept)
};

static void
s_sha256 (const char *data, size_t len, unsigned char out [32])
{
    unsigned int n = 0;
    int rc = EVP_Digest (data, len, out, &n, EVP_sha256 (), NULL);
    assert (rc == 1 && n == 32);
    (void) rc;
}

//  Reads the token (one line) into buf; NULL or the reason
static const char *
s_read (const char *path, char *buf, size_t size, size_t *len_p)
{
    FILE *f = fopen (path, "r");
    if (!f)
        return "cannot open the token file";
    struct stat st;
    if (fstat (fileno (f), &st) != 0 || !S_ISREG (st.st_mode)) {
        fclose (f);
        return "the token file is not a regular file";
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        fclose (f);
        return "the token file may be read or written by others than its owner (chmod 600)";
    }
    size_t n = fread (buf, 1, size - 1, f);
    bool more = fgetc (f) != EOF;
    fclose (f);
    buf [n] = 0;
    char *nl = strchr (buf, '\n');
    if (nl && nl [strspn (nl, " \t\r\n")] == 0)
        *nl = 0;
    else
    if (nl || more)
        return "the token file holds more than one line of at most 512 bytes";
    n = strlen (buf);
    while (n > 0 && (buf [n - 1] == ' ' || buf [n - 1] == '\t' || buf [n - 1] == '\r'))
        buf [--n] = 0;
    if (n < GW_ADMIN_TOKEN_MIN)
        return "the token is shorter than 16 bytes";
    for (size_t i = 0; i < n; i++)
        if (buf [i] <= ' ' || buf [i] > '~')
            return "the token holds a byte that is not printable ASCII";
    *len_p = n;
    return NULL;
}

gw_admin_t *
gw_admin_new (const char *path, const char **error)
{
    gw_admin_t *self = (gw_admin_t *) zmalloc (sizeof (gw_admin_t));
    *error = NULL;
    if (!path || !*path)
        return self;
    char buf [GW_ADMIN_TOKEN_MAX + 2];
    size_t len = 0;
    *error = s_read (path, buf, sizeof buf, &len);
    if (!*error) {
        s_sha256 (buf, len, self->hash);
        self->has_token = true;
    }
    OPENSSL_cleanse (buf, sizeof buf);
    if (*error)
        gw_admin_destroy (&self);
    return self;
}

void
gw_admin_destroy (gw_admin_t **self_p)
{
    gw_admin_t *self = *self_p;
    if (!self)
        return;
    OPENSSL_cleanse (self->hash, sizeof self->hash);
    free (self);
    *self_p = NULL;
}

bool
gw_admin_has_token (gw_admin_t *self)
{
    return self->has_token;
}

bool
gw_admin_allows (gw_admin_t *self, const char *authorization)
{
    if (!self->has_token || !authorization || strncasecmp (authorization, "Bearer ", 7))
        return false;
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    size_t len = strnlen (token, GW_ADMIN_TOKEN_MAX + 1);
    if (len > GW_ADMIN_TOKEN_MAX)
        return false;
    unsigned char hash [32];
    s_sha256 (token, len, hash);
    return CRYPTO_memcmp (hash, self->hash, sizeof hash) == 0;
}

// ---------------------------------------------------------------------------
//  Self-test

static char *
s_file (const char *dir, const char *name, const char *text, mode_t mode)
{
    char *path = p2c_sprintf ("%s/%s", dir, name);
    FILE *f = fopen (path, "w");
    assert (f);
    fputs (text, f);
    fclose (f);
    chmod (path, mode);
    return path;
}

void
gw_admin_test (bool verbose)
{
    (void) verbose;
    char dir [] = "/tmp/gw_admin_test.XXXXXX";
    P2C_CHECK (mkdtemp (dir) != NULL);
    const char *error = NULL;

    //  No token: every request refused
    gw_admin_t *admin = gw_admin_new ("", &error);
    P2C_CHECK (admin && !error && !gw_admin_has_token (admin));
    P2C_CHECK (!gw_admin_allows (admin, "Bearer "));
    P2C_CHECK (!gw_admin_allows (admin, NULL));
    gw_admin_destroy (&admin);
    gw_admin_destroy (&admin);

    //  A good file: only "Bearer" and the exact token pass
    char *good = s_file (dir, "good", "0123456789abcdef0123\n", 0600);
    admin = gw_admin_new (good, &error);
    P2C_CHECK (admin && !error && gw_admin_has_token (admin));
    P2C_CHECK (gw_admin_allows (admin, "Bearer 0123456789abcdef0123"));
    P2C_CHECK (gw_admin_allows (admin, "bearer 0123456789abcdef0123"));
    P2C_CHECK (!gw_admin_allows (admin, "Bearer 0123456789abcdef012"));
    P2C_CHECK (!gw_admin_allows (admin, "Bearer 0123456789abcdef01234"));
    P2C_CHECK (!gw_admin_allows (admin, "Basic 0123456789abcdef0123"));
    P2C_CHECK (!gw_admin_allows (admin, "0123456789abcdef0123"));
    P2C_CHECK (!gw_admin_allows (admin, NULL));
    char big [GW_ADMIN_TOKEN_MAX + 20];
    memset (big, 'a', sizeof big - 1);
    big [sizeof big - 1] = 0;
    memcpy (big, "Bearer ", 7);
    P2C_CHECK (!gw_admin_allows (admin, big));
    gw_admin_destroy (&admin);

    //  Refused files: readable by others, missing, short, two lines
    char *open_file = s_file (dir, "open", "0123456789abcdef0123\n", 0644);
    P2C_CHECK (!gw_admin_new (open_file, &error) && error && strstr (error, "chmod 600"));
    char *missing = p2c_sprintf ("%s/missing", dir);
    P2C_CHECK (!gw_admin_new (missing, &error) && error);
    char *shortf = s_file (dir, "short", "abc\n", 0600);
    P2C_CHECK (!gw_admin_new (shortf, &error) && error && strstr (error, "shorter"));
    char *two = s_file (dir, "two", "0123456789abcdef0123\nmore\n", 0600);
    P2C_CHECK (!gw_admin_new (two, &error) && error && strstr (error, "one line"));
    char *blank = s_file (dir, "blank", "0123456789 abcdef0123\n", 0600);
    P2C_CHECK (!gw_admin_new (blank, &error) && error && strstr (error, "printable"));
    const char *paths [] = { good, open_file, missing, shortf, two, blank };
    for (size_t i = 0; i < sizeof paths / sizeof paths [0]; i++) {
        unlink (paths [i]);
        free ((char *) paths [i]);
    }
    rmdir (dir);
}
