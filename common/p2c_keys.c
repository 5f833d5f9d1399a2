/*  The bus's key files (see p2c_keys.h). Secrets are written under umask
    077 so that no other user can read them even for an instant; public
    files are then opened to 0644 on purpose. Files reach allow/ by a
    rename, so the broker never reads a half-written certificate. */
#include "p2c_keys.h"
#include "p2c_auth.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

bool
p2c_keys_name_ok (const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > P2C_KEYS_NAME_MAX || name [0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int
s_mkdir (const char *path)
{
    if (mkdir (path, 0700) == 0 || errno == EEXIST)
        return 0;
    fprintf (stderr, "keys: cannot make %s: %s\n", path, strerror (errno));
    return -1;
}

static bool
s_exists (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0;
}

//  Saves the public part as DIR/SUB/NAME.key through a temporary file and
//  a rename
static int
s_save_public (zcert_t *cert, const char *dir, const char *sub, const char *name)
{
    char *tmp = p2c_sprintf ("%s/%s/.%s.tmp", dir, sub, name);
    char *path = p2c_sprintf ("%s/%s/%s.key", dir, sub, name);
    int rc = zcert_save_public (cert, tmp);
    if (rc == 0)
        rc = chmod (tmp, 0644);
    if (rc == 0)
        rc = rename (tmp, path);
    if (rc != 0) {
        fprintf (stderr, "keys: cannot write %s: %s\n", path, strerror (errno));
        unlink (tmp);
    }
    zstr_free (&tmp);
    zstr_free (&path);
    return rc == 0 ? 0 : -1;
}

//  A new pair DIR/NAME.key(_secret), the secret readable by its owner only
static zcert_t *
s_make_pair (const char *dir, const char *name, const char *service)
{
    zcert_t *cert = zcert_new ();
    if (!cert)
        return NULL;
    zcert_set_meta (cert, "name", "%s", name);
    zcert_set_meta (cert, "service", "%s", service);
    char *path = p2c_sprintf ("%s/%s.key", dir, name);
    mode_t old = umask (077);
    int rc = zcert_save (cert, path);
    umask (old);
    if (rc == 0)
        rc = chmod (path, 0644);
    if (rc != 0) {
        fprintf (stderr, "keys: cannot write %s: %s\n", path, strerror (errno));
        zcert_destroy (&cert);
    }
    zstr_free (&path);
    return cert;
}

static bool
s_listed (const char *dir, const char *name)
{
    char *a = p2c_sprintf ("%s/allow/%s.key", dir, name);
    char *r = p2c_sprintf ("%s/revoked/%s.key", dir, name);
    bool found = s_exists (a) || s_exists (r);
    zstr_free (&a);
    zstr_free (&r);
    return found;
}

int
p2c_keys_add (const char *dir, const char *name, const char *service, const char *public_z85)
{
    if (!p2c_keys_name_ok (name)) {
        fprintf (stderr, "keys: a key name is 1 to %d of A-Z a-z 0-9 . _ -, not '%s'\n",
                 P2C_KEYS_NAME_MAX, name ? name : "");
        return -1;
    }
    if (!p2c_auth_role (service)) {
        fprintf (stderr, "keys: the service is gateway, scheduler, ledger or ctl, not '%s'\n",
                 service ? service : "");
        return -1;
    }
    if (!strcmp (name, "broker")) {
        fprintf (stderr, "keys: 'broker' is the broker's own key\n");
        return -1;
    }
    if (s_mkdir (dir) != 0)
        return -1;
    char *allow = p2c_sprintf ("%s/allow", dir), *revoked = p2c_sprintf ("%s/revoked", dir);
    int rc = s_mkdir (allow) || s_mkdir (revoked) ? -1 : 0;
    zstr_free (&allow);
    zstr_free (&revoked);
    if (rc != 0)
        return -1;
    if (s_listed (dir, name)) {
        fprintf (stderr, "keys: %s is listed or revoked already (a revoked name is not reused)\n",
                 name);
        return -1;
    }
    zcert_t *cert = NULL;
    if (public_z85) {
        byte pub [32], zero [32] = { 0 };
        if (strlen (public_z85) != 40 || !zmq_z85_decode (pub, public_z85)) {
            fprintf (stderr, "keys: a public key is 40 Z85 characters\n");
            return -1;
        }
        cert = zcert_new_from (pub, zero);
        if (cert) {
            zcert_set_meta (cert, "name", "%s", name);
            zcert_set_meta (cert, "service", "%s", service);
        }
    }
    else
        cert = s_make_pair (dir, name, service);
    if (!cert)
        return -1;
    rc = s_save_public (cert, dir, "allow", name);
    zcert_destroy (&cert);
    return rc;
}

int
p2c_keys_revoke (const char *dir, const char *name)
{
    if (!p2c_keys_name_ok (name)) {
        fprintf (stderr, "keys: no such key name '%s'\n", name ? name : "");
        return -1;
    }
    char *from = p2c_sprintf ("%s/allow/%s.key", dir, name);
    char *to = p2c_sprintf ("%s/revoked/%s.key", dir, name);
    int rc = rename (from, to);
    if (rc != 0)
        fprintf (stderr, "keys: %s is not on the allow-list (%s)\n", name, strerror (errno));
    zstr_free (&from);
    zstr_free (&to);
    return rc == 0 ? 0 : -1;
}

int
p2c_keys_init (const char *dir)
{
    char *allow = p2c_sprintf ("%s/allow", dir), *revoked = p2c_sprintf ("%s/revoked", dir);
    int rc = s_mkdir (dir) || s_mkdir (allow) || s_mkdir (revoked) ? -1 : 0;
    zstr_free (&allow);
    zstr_free (&revoked);
    if (rc != 0)
        return -1;
    char *secret = p2c_sprintf ("%s/broker.key_secret", dir);
    if (!s_exists (secret)) {
        zcert_t *cert = s_make_pair (dir, "broker", "broker");
        if (!cert)
            rc = -1;
        zcert_destroy (&cert);
    }
    zstr_free (&secret);
    const char *services [] = { "gateway", "scheduler", "ledger", "ctl" };
    for (size_t i = 0; rc == 0 && i < 4; i++) {
        char *path = p2c_sprintf ("%s/%s.key_secret", dir, services [i]);
        if (!s_exists (path) && !s_listed (dir, services [i]))
            rc = p2c_keys_add (dir, services [i], services [i], NULL);
        zstr_free (&path);
    }
    return rc;
}

zcert_t *
p2c_keys_load (const char *dir, const char *name)
{
    char *path = p2c_sprintf ("%s/%s.key", dir, name);
    char *secret = p2c_sprintf ("%s/%s.key_secret", dir, name);
    zcert_t *cert = s_exists (secret) ? zcert_load (path) : NULL;
    if (!cert)
        fprintf (stderr, "keys: no key pair %s (make one: p2c2r-ctl keys init or keys add)\n",
                 secret);
    zstr_free (&path);
    zstr_free (&secret);
    return cert;
}

int
p2c_keys_private (const char *dir, const char *name)
{
    char *secret = zsys_sprintf ("%s/%s.key_secret", dir, name);
    struct stat st;
    int rc = -1;
    //  lstat: a link could point at a file whose mode says nothing of ours
    if (lstat (secret, &st) != 0)
        fprintf (stderr, "keys: no key pair %s (make one: p2c2r-ctl keys init or keys add)\n",
                 secret);
    else
    if (!S_ISREG (st.st_mode))
        fprintf (stderr, "keys: %s is not a regular file; refusing to use it\n", secret);
    else
    if (st.st_uid != geteuid ())
        fprintf (stderr, "keys: %s belongs to uid %u, not to us (uid %u); refusing to use it\n",
                 secret, (unsigned) st.st_uid, (unsigned) geteuid ());
    else
    if (st.st_mode & 077)
        fprintf (stderr, "keys: %s is readable by others (mode %04o); refusing to use it:"
                 " make it its owner's alone (chmod 600 %s)\n", secret,
                 (unsigned) (st.st_mode & 07777), secret);
    else
        rc = 0;
    zstr_free (&secret);
    return rc;
}

int
p2c_keys_public (const char *dir, const char *name, char *buf)
{
    char *path = p2c_sprintf ("%s/%s.key", dir, name);
    zconfig_t *root = zconfig_load (path);
    zstr_free (&path);
    const char *pub = root ? zconfig_get (root, "curve/public-key", NULL) : NULL;
    int rc = pub && strlen (pub) == 40 ? 0 : -1;
    if (rc == 0)
        memcpy (buf, pub, 41);
    zconfig_destroy (&root);
    return rc;
}

static void
s_each_in (const char *dir, const char *sub, bool revoked, p2c_keys_fn *fn, void *arg)
{
    char *path = p2c_sprintf ("%s/%s", dir, sub);
    DIR *d = opendir (path);
    struct dirent *e;
    while (d && (e = readdir (d))) {
        size_t len = strlen (e->d_name);
        if (e->d_name [0] == '.' || len < 5 || strcmp (e->d_name + len - 4, ".key"))
            continue;
        char name [P2C_KEYS_NAME_MAX + 1];
        if (len - 4 > P2C_KEYS_NAME_MAX)
            continue;
        memcpy (name, e->d_name, len - 4);
        name [len - 4] = 0;
        if (!p2c_keys_name_ok (name))
            continue;
        char *file = p2c_sprintf ("%s/%s", path, e->d_name);
        zcert_t *cert = zcert_load (file);
        const char *service = cert ? zcert_meta (cert, "service") : NULL;
        if (cert && service)
            fn (arg, name, service, zcert_public_txt (cert), revoked);
        zcert_destroy (&cert);
        zstr_free (&file);
    }
    if (d)
        closedir (d);
    zstr_free (&path);
}

void
p2c_keys_each (const char *dir, p2c_keys_fn *fn, void *arg)
{
    s_each_in (dir, "allow", false, fn, arg);
    s_each_in (dir, "revoked", true, fn, arg);
}

static void
s_test_count (void *arg, const char *name, const char *service, const char *public_z85,
              bool revoked)
{
    int *counts = (int *) arg;
    (void) public_z85;
    if (!strcmp (name, "gw-2") && !strcmp (service, "gateway"))
        counts [revoked ? 1 : 0]++;
    counts [2]++;
}

void
p2c_keys_test (bool verbose)
{
    (void) verbose;
    P2C_CHECK (p2c_keys_name_ok ("gateway-1.a_b"));
    P2C_CHECK (!p2c_keys_name_ok (""));
    P2C_CHECK (!p2c_keys_name_ok (".hidden"));
    P2C_CHECK (!p2c_keys_name_ok ("../x"));
    P2C_CHECK (!p2c_keys_name_ok ("a b"));

    char dir [] = "/tmp/p2c-keys-test.XXXXXX";
    P2C_CHECK (mkdtemp (dir) != NULL);
    char *keys = p2c_sprintf ("%s/keys", dir);
    //  init makes the broker's pair and one per service; twice keeps them
    P2C_CHECK (p2c_keys_init (keys) == 0);
    zcert_t *gw = p2c_keys_load (keys, "gateway");
    P2C_CHECK (gw && !strcmp (zcert_meta (gw, "service"), "gateway"));
    P2C_CHECK (p2c_keys_init (keys) == 0);
    zcert_t *again = p2c_keys_load (keys, "gateway");
    P2C_CHECK (gw && again && zcert_eq (gw, again));
    zcert_destroy (&gw);
    zcert_destroy (&again);
    //  The secret is its owner's alone, the directory too
    struct stat st;
    char *secret = p2c_sprintf ("%s/ledger.key_secret", keys);
    P2C_CHECK (stat (secret, &st) == 0 && (st.st_mode & 0777) == 0600);
    P2C_CHECK (stat (keys, &st) == 0 && (st.st_mode & 0777) == 0700);
    //  An operator's key: its owner's alone, else refused
    P2C_CHECK (p2c_keys_private (keys, "ledger") == 0);
    P2C_CHECK (chmod (secret, 0640) == 0 && p2c_keys_private (keys, "ledger") == -1);
    P2C_CHECK (chmod (secret, 0604) == 0 && p2c_keys_private (keys, "ledger") == -1);
    P2C_CHECK (chmod (secret, 0400) == 0 && p2c_keys_private (keys, "ledger") == 0);
    P2C_CHECK (p2c_keys_private (keys, "nobody") == -1);
    char *link = zsys_sprintf ("%s/link.key_secret", keys);
    P2C_CHECK (symlink (secret, link) == 0 && p2c_keys_private (keys, "link") == -1);
    zstr_free (&link);
    zstr_free (&secret);

    //  add, refuse a second one of the same name, revoke, list
    P2C_CHECK (p2c_keys_add (keys, "gw-2", "gateway", NULL) == 0);
    P2C_CHECK (p2c_keys_add (keys, "gw-2", "gateway", NULL) == -1);
    P2C_CHECK (p2c_keys_add (keys, "x", "treasury", NULL) == -1);
    P2C_CHECK (p2c_keys_add (keys, "broker", "gateway", NULL) == -1);
    P2C_CHECK (p2c_keys_add (keys, "ext", "ctl", "not-a-key") == -1);
    zcert_t *ext = zcert_new ();
    P2C_CHECK (p2c_keys_add (keys, "ext", "ctl", zcert_public_txt (ext)) == 0);
    zcert_destroy (&ext);
    int counts [3] = { 0, 0, 0 };
    p2c_keys_each (keys, s_test_count, counts);
    P2C_CHECK (counts [0] == 1 && counts [1] == 0 && counts [2] == 6);
    P2C_CHECK (p2c_keys_revoke (keys, "gw-2") == 0);
    P2C_CHECK (p2c_keys_revoke (keys, "gw-2") == -1);
    memset (counts, 0, sizeof counts);
    p2c_keys_each (keys, s_test_count, counts);
    P2C_CHECK (counts [0] == 0 && counts [1] == 1 && counts [2] == 6);
    P2C_CHECK (p2c_keys_add (keys, "gw-2", "gateway", NULL) == -1);
    P2C_CHECK (p2c_keys_load (keys, "nobody") == NULL);

    char *cmd = p2c_sprintf ("rm -rf '%s'", dir);
    P2C_CHECK (system (cmd) == 0);
    zstr_free (&cmd);
    zstr_free (&keys);
}
