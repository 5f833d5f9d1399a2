/*  The broker's allow-list and ZAP handler (see brk_auth.h). */
#include "brk_auth.h"
#include "p2c_auth.h"
#include "p2c_drain.h"
#include "p2c_keys.h"
#include "p2c_log.h"
#include "p2c_mem.h"
#include "p2c_test.h"

#include <sys/stat.h>

struct _brk_auth_t {
    char *dir;                  //  the key directory
    zhashx_t *keys;             //  public Z85 -> brk_key_t (owned), listed keys
    zhashx_t *revoked;          //  public Z85 -> name, revoked keys
    struct timespec allow_mtime;    //  allow/ and revoked/ when last read
    struct timespec revoked_mtime;
    uint64_t refused;           //  handshakes refused
};

static void
s_key_destroy (brk_key_t **self_p)
{
    brk_key_t *self = *self_p;
    if (!self)
        return;
    free (self->name);
    free (self->service);
    free (self->stamp);
    free (self->public_txt);
    free (self);
    *self_p = NULL;
}

static void
s_add (void *arg, const char *name, const char *service, const char *public_txt, bool revoked)
{
    brk_auth_t *self = (brk_auth_t *) arg;
    if (revoked) {
        zhashx_update (self->revoked, public_txt, (void *) name);
        return;
    }
    unsigned role = p2c_auth_role (service);
    if (!role) {
        log_warn ("key skipped name=%s service=%s (not a service)", name, service);
        return;
    }
    brk_key_t *key = (brk_key_t *) zmalloc (sizeof (brk_key_t));
    key->name = p2c_strdup (name);
    key->service = p2c_strdup (service);
    key->role = role;
    key->stamp = p2c_sprintf ("%s:%s", service, name);
    key->stamp_len = strlen (key->stamp);
    key->public_txt = p2c_strdup (public_txt);
    zhashx_update (self->keys, public_txt, key);
}

static struct timespec
s_mtime (const char *dir, const char *sub)
{
    struct timespec t = { 0, 0 };
    char *path = p2c_sprintf ("%s/%s", dir, sub);
    struct stat st;
    if (stat (path, &st) == 0)
        t = st.st_mtim;
    zstr_free (&path);
    return t;
}

static void
s_load (brk_auth_t *self)
{
    self->allow_mtime = s_mtime (self->dir, "allow");
    self->revoked_mtime = s_mtime (self->dir, "revoked");
    zhashx_purge (self->keys);
    zhashx_purge (self->revoked);
    p2c_keys_each (self->dir, s_add, self);
    //  A key both listed and revoked (copied back by hand) stays revoked
    for (const char *name = (const char *) zhashx_first (self->revoked); name;
         name = (const char *) zhashx_next (self->revoked))
        zhashx_delete (self->keys, zhashx_cursor (self->revoked));
}

brk_auth_t *
brk_auth_new (const char *dir)
{
    char *allow = p2c_sprintf ("%s/allow", dir);
    struct stat st;
    bool ok = stat (allow, &st) == 0 && S_ISDIR (st.st_mode);
    zstr_free (&allow);
    if (!ok) {
        log_warn ("no allow-list dir=%s/allow (p2c2r-ctl keys init)", dir);
        return NULL;
    }
    brk_auth_t *self = (brk_auth_t *) zmalloc (sizeof (brk_auth_t));
    self->dir = p2c_strdup (dir);
    self->keys = zhashx_new ();
    zhashx_set_destructor (self->keys, (zhashx_destructor_fn *) s_key_destroy);
    self->revoked = zhashx_new ();
    zhashx_set_duplicator (self->revoked, (zhashx_duplicator_fn *) strdup);
    zhashx_set_destructor (self->revoked, (zhashx_destructor_fn *) zstr_free);
    s_load (self);
    log_info ("allow-list keys=%zu revoked=%zu", zhashx_size (self->keys),
              zhashx_size (self->revoked));
    return self;
}

void
brk_auth_destroy (brk_auth_t **self_p)
{
    brk_auth_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->keys);
    zhashx_destroy (&self->revoked);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

static bool
s_same (struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool
brk_auth_reload (brk_auth_t *self)
{
    if (s_same (s_mtime (self->dir, "allow"), self->allow_mtime)
        && s_same (s_mtime (self->dir, "revoked"), self->revoked_mtime))
        return false;
    s_load (self);
    log_info ("allow-list reread keys=%zu revoked=%zu", zhashx_size (self->keys),
              zhashx_size (self->revoked));
    return true;
}

const brk_key_t *
brk_auth_key (brk_auth_t *self, const char *public_txt)
{
    return public_txt ? (const brk_key_t *) zhashx_lookup (self->keys, public_txt) : NULL;
}

const char *
brk_auth_name (brk_auth_t *self, const char *public_txt)
{
    if (!public_txt)
        return "none";
    const brk_key_t *key = brk_auth_key (self, public_txt);
    if (key)
        return key->name;
    const char *name = (const char *) zhashx_lookup (self->revoked, public_txt);
    return name ? name : "unknown";
}

uint64_t
brk_auth_refused (brk_auth_t *self)
{
    return self->refused;
}

size_t
brk_auth_size (brk_auth_t *self)
{
    return zhashx_size (self->keys);
}

//  One ZAP request (RFC 27): version, request id, domain, address,
//  identity, mechanism, credentials. Only CURVE with a listed key passes;
//  its user id is the public key, so the broker can look the key up for
//  every message of the connection.
static void
s_zap_one (brk_auth_t *self, zmsg_t *req, zsock_t *zap)
{
    char *version = zmsg_popstr (req);
    char *request_id = zmsg_popstr (req);
    char *domain = zmsg_popstr (req);
    char *address = zmsg_popstr (req);
    char *identity = zmsg_popstr (req);
    char *mechanism = zmsg_popstr (req);
    zframe_t *cred = zmsg_pop (req);
    const char *status = "400", *text = "not allowed";
    char user [41] = "";
    if (version && !strcmp (version, "1.0") && mechanism && !strcmp (mechanism, "CURVE")
        && cred && zframe_size (cred) == 32) {
        char pub [41];
        zmq_z85_encode (pub, zframe_data (cred), 32);
        const brk_key_t *key = brk_auth_key (self, pub);
        if (key) {
            status = "200";
            text = "OK";
            snprintf (user, sizeof user, "%s", pub);
            log_debug ("handshake ok key=%s service=%s address=%s", key->name,
                       key->service, address ? address : "");
        }
        else {
            self->refused++;
            const char *name = brk_auth_name (self, pub);
            if (self->refused <= 20 || self->refused % 100 == 0)
                log_warn ("refused handshake key=%s public=%s reason=%s address=%s"
                          " refused=%llu", name, pub,
                          strcmp (name, "unknown") ? "revoked" : "not-listed",
                          address ? address : "", (unsigned long long) self->refused);
        }
    }
    else {
        self->refused++;
        if (self->refused <= 20 || self->refused % 100 == 0)
            log_warn ("refused handshake key=none mechanism=%s address=%s refused=%llu",
                      mechanism ? mechanism : "?", address ? address : "",
                      (unsigned long long) self->refused);
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    zmsg_addstr (reply, request_id ? request_id : "");
    zmsg_addstr (reply, status);
    zmsg_addstr (reply, text);
    zmsg_addstr (reply, user);
    zmsg_addmem (reply, "", 0);
    zmsg_send (&reply, zap);
    zframe_destroy (&cred);
    zstr_free (&version);
    zstr_free (&request_id);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&identity);
    zstr_free (&mechanism);
}

typedef struct {
    brk_auth_t *self;
    zsock_t *zap;
} s_zap_ctx_t;

//  One request off the ZAP socket, answered at once (a REP socket takes
//  its next request only after the answer)
static void
s_on_zap (void *arg, zmq_msg_t *parts, size_t nparts)
{
    s_zap_ctx_t *ctx = (s_zap_ctx_t *) arg;
    zmsg_t *req = zmsg_new ();
    for (size_t i = 0; i < nparts && i < P2C_DRAIN_PARTS; i++)
        zmsg_addmem (req, zmq_msg_data (&parts [i]), zmq_msg_size (&parts [i]));
    s_zap_one (ctx->self, req, ctx->zap);
    zmsg_destroy (&req);
}

void
brk_auth_zap_drain (brk_auth_t *self, zsock_t *zap)
{
    s_zap_ctx_t ctx = { self, zap };
    p2c_drain (zsock_resolve (zap), SIZE_MAX, s_on_zap, &ctx);
}

void
brk_auth_test (bool verbose)
{
    (void) verbose;
    char dir [] = "/tmp/brk-auth-test.XXXXXX";
    P2C_CHECK (mkdtemp (dir) != NULL);
    char *keys = p2c_sprintf ("%s/keys", dir);
    P2C_CHECK (brk_auth_new (keys) == NULL);
    P2C_CHECK (p2c_keys_init (keys) == 0);
    P2C_CHECK (p2c_keys_add (keys, "gw-2", "gateway", NULL) == 0);
    brk_auth_t *auth = brk_auth_new (keys);
    P2C_CHECK (auth && brk_auth_size (auth) == 5);
    zcert_t *gw2 = p2c_keys_load (keys, "gw-2");
    const char *pub = gw2 ? zcert_public_txt (gw2) : "";
    const brk_key_t *key = auth ? brk_auth_key (auth, pub) : NULL;
    P2C_CHECK (key && !strcmp (key->name, "gw-2") && !strcmp (key->stamp, "gateway:gw-2"));
    P2C_CHECK (auth && !brk_auth_reload (auth));
    //  A revoked key: gone from the list at the next reread, still named
    P2C_CHECK (p2c_keys_revoke (keys, "gw-2") == 0);
    P2C_CHECK (auth && brk_auth_reload (auth));
    P2C_CHECK (auth && brk_auth_key (auth, pub) == NULL);
    P2C_CHECK (auth && !strcmp (brk_auth_name (auth, pub), "gw-2"));
    P2C_CHECK (auth && !strcmp (brk_auth_name (auth, "x"), "unknown"));
    P2C_CHECK (auth && brk_auth_size (auth) == 4);
    zcert_destroy (&gw2);
    brk_auth_destroy (&auth);
    brk_auth_destroy (&auth);
    char *cmd = p2c_sprintf ("rm -rf '%s'", dir);
    P2C_CHECK (system (cmd) == 0);
    zstr_free (&cmd);
    zstr_free (&keys);
}
