/*  The JSON dialect (see gw_json.h). A decoded object is built as a
    ClientMessage on the stack with borrowed strings, then packed and
    unpacked through p2c_msg, so the caller gets a message with exactly the
    ownership of one decoded from a binary frame. */
#include "gw_json.h"
#include "p2c_money.h"
#include "p2c_tasks.h"
#include "p2c_test.h"

#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_JSON_MAX_TYPES 64    //  task_types kept from one registration

//  Base64 through OpenSSL. Returns a fresh buffer, NULL when the text is
//  not base64.
static uint8_t *
s_b64_decode (const char *text, size_t *len_p)
{
    size_t n = strlen (text);
    if (n % 4)
        return NULL;
    uint8_t *out = (uint8_t *) malloc (n / 4 * 3 + 1);
    if (!out)
        return NULL;
    int got = n ? EVP_DecodeBlock (out, (const unsigned char *) text, (int) n) : 0;
    if (got < 0) {
        free (out);
        return NULL;
    }
    //  EVP_DecodeBlock counts the padding as zero bytes
    size_t pad = (n >= 1 && text [n - 1] == '=') + (n >= 2 && text [n - 2] == '=');
    *len_p = (size_t) got - pad;
    return out;
}

static char *
s_b64_encode (const uint8_t *data, size_t len)
{
    char *out = (char *) malloc ((len + 2) / 3 * 4 + 1);
    if (out)
        EVP_EncodeBlock ((unsigned char *) out, data, (int) len);
    return out;
}

//  The decoder's error: code and text
typedef struct {
    const char *code;
    char *why;
    size_t size;
} s_err_t;

static void
s_fail (s_err_t *e, const char *code, const char *fmt, const char *field)
{
    e->code = code;
    snprintf (e->why, e->size, fmt, field);
}

//  Optional string field: NULL when absent or null; false (answered) when
//  present with another type
static bool
s_opt_str (json_t *obj, const char *field, const char **out, s_err_t *e)
{
    json_t *v = json_object_get (obj, field);
    *out = NULL;
    if (!v || json_is_null (v))
        return true;
    if (!json_is_string (v)) {
        s_fail (e, "bad_request", "field %s must be a string", field);
        return false;
    }
    *out = json_string_value (v);
    if (strlen (*out) != json_string_length (v)) {
        s_fail (e, "bad_request", "field %s holds a NUL character", field);
        return false;
    }
    return true;
}

//  Optional non-negative number field (integer or real, as the demo sent
//  either) up to max; *out keeps its value when absent
static bool
s_opt_num (json_t *obj, const char *field, double max, double *out, s_err_t *e)
{
    json_t *v = json_object_get (obj, field);
    if (!v || json_is_null (v))
        return true;
    if (!json_is_number (v)) {
        s_fail (e, "bad_request", "field %s must be a number", field);
        return false;
    }
    double d = json_number_value (v);
    if (!(d >= 0 && d <= max)) {
        s_fail (e, "bad_request", "field %s is out of range", field);
        return false;
    }
    *out = d;
    return true;
}

static bool
s_decode_caps (json_t *caps, P2c2r__Capabilities *c, const char **types, s_err_t *e)
{
    double cores = 0, ram = 0, vram = 0, slots = 0;
    if (!s_opt_num (caps, "cpu_cores", 1e6, &cores, e)
        || !s_opt_num (caps, "ram_gb", 1e9, &ram, e)
        || !s_opt_num (caps, "gpu_vram_gb", 1e9, &vram, e)
        || !s_opt_num (caps, "slots", 1e6, &slots, e))
        return false;
    c->cpu_cores = (uint32_t) cores;
    c->ram_gb = (uint32_t) ram;
    c->gpu_vram_gb = (uint32_t) vram;
    c->slots = (uint32_t) slots;
    json_t *gpu = json_object_get (caps, "gpu");
    //  The demo sent a boolean; a GPU's name reads as "has a GPU"
    if (json_is_boolean (gpu))
        c->gpu = json_is_true (gpu);
    else
    if (json_is_string (gpu))
        c->gpu = json_string_length (gpu) > 0;
    else
    if (gpu && !json_is_null (gpu)) {
        s_fail (e, "bad_request", "field %s must be a boolean", "capabilities.gpu");
        return false;
    }
    const char *region = NULL, *version = NULL;
    if (!s_opt_str (caps, "region", &region, e) || !s_opt_str (caps, "agent_version", &version, e))
        return false;
    if (region)
        c->region = (char *) region;
    if (version)
        c->agent_version = (char *) version;
    json_t *tt = json_object_get (caps, "task_types");
    if (tt && !json_is_null (tt)) {
        if (!json_is_array (tt)) {
            s_fail (e, "bad_request", "field %s must be an array of strings",
                    "capabilities.task_types");
            return false;
        }
        size_t i;
        json_t *v;
        json_array_foreach (tt, i, v) {
            if (!json_is_string (v)) {
                s_fail (e, "bad_request", "field %s must be an array of strings",
                        "capabilities.task_types");
                return false;
            }
            //  Aliases become canonical names; unknown names are left out
            //  (a newer peer may know kernels this server does not)
            const char *name = p2c_task_canonical (json_string_value (v));
            if (name && c->n_task_types < GW_JSON_MAX_TYPES)
                types [c->n_task_types++] = name;
        }
        c->task_types = (char **) types;
        return true;
    }
    //  A JSON peer that names no types runs every kernel (the demo's peers)
    for (const p2c_task_type_t *t = p2c_task_types (); t->name
         && c->n_task_types < GW_JSON_MAX_TYPES; t++)
        types [c->n_task_types++] = t->name;
    c->task_types = (char **) types;
    return true;
}

//  Moves a base64 "image_b64" string out of obj into bytes; true when
//  absent or decoded, false (answered) when not base64
static bool
s_take_image (json_t *obj, ProtobufCBinaryData *out, uint8_t **owned, s_err_t *e)
{
    json_t *v = json_object_get (obj, "image_b64");
    if (!v || json_is_null (v) || *owned)
        return true;
    size_t n = 0;
    uint8_t *bytes = json_is_string (v) ? s_b64_decode (json_string_value (v), &n) : NULL;
    if (!bytes) {
        s_fail (e, "invalid_params", "field %s must be a base64 string", "image_b64");
        return false;
    }
    *owned = bytes;
    out->data = bytes;
    out->len = n;
    json_object_del (obj, "image_b64");
    return true;
}

P2c2r__ClientMessage *
gw_json_decode (const char *text, size_t len, size_t max, const char **code_p, char *why,
                size_t why_size, char *client_ref, size_t ref_size)
{
    s_err_t e = { "bad_request", why, why_size };
    if (ref_size)
        client_ref [0] = 0;
    json_error_t jerr;
    json_t *root = json_loadb (text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object (root)) {
        s_fail (&e, "bad_request", "%s", root ? "a message must be a JSON object"
                                              : "malformed JSON");
        json_decref (root);
        *code_p = e.code;
        return NULL;
    }
    P2c2r__ClientMessage msg = P2C2R__CLIENT_MESSAGE__INIT;
    P2c2r__RegisterPeer rp = P2C2R__REGISTER_PEER__INIT;
    P2c2r__RegisterGamer rg = P2C2R__REGISTER_GAMER__INIT;
    const char *api_key = NULL;     //  jansson's copy of a key, wiped before it is freed
    P2c2r__Capabilities caps = P2C2R__CAPABILITIES__INIT;
    P2c2r__Submit sub = P2C2R__SUBMIT__INIT;
    P2c2r__PeerResult res = P2C2R__PEER_RESULT__INIT;
    P2c2r__Heartbeat hb = P2C2R__HEARTBEAT__INIT;
    P2c2r__GetEarnings ge = P2C2R__GET_EARNINGS__INIT;
    P2c2r__Subscribe subscribe = P2C2R__SUBSCRIBE__INIT;
    const char *types [GW_JSON_MAX_TYPES];
    char *params = NULL, *result = NULL;
    char ref_num [32];
    uint8_t *bytes = NULL;
    bool ok = false;
    const char *type = NULL;
    if (!s_opt_str (root, "type", &type, &e))
        goto done;
    if (!type) {
        s_fail (&e, "bad_request", "missing field %s", "type");
        goto done;
    }
    if (!strcmp (type, "register_peer")) {
        const char *id = NULL, *key = NULL;
        if (!s_opt_str (root, "peer_id", &id, &e) || !s_opt_str (root, "api_key", &key, &e))
            goto done;
        if (!id) {
            s_fail (&e, "bad_request", "missing field %s", "peer_id");
            goto done;
        }
        rp.peer_id = (char *) id;
        if (key)
            rp.api_key = (char *) (api_key = key);
        json_t *c = json_object_get (root, "capabilities");
        if (c && !json_is_null (c) && !json_is_object (c)) {
            s_fail (&e, "bad_request", "field %s must be an object", "capabilities");
            goto done;
        }
        json_t *none = json_is_object (c) ? NULL : json_object ();
        bool caps_ok = s_decode_caps (none ? none : c, &caps, types, &e);
        json_decref (none);
        if (!caps_ok)
            goto done;
        rp.capabilities = &caps;
        msg.msg_case = P2C2R__CLIENT_MESSAGE__MSG_REGISTER_PEER;
        msg.register_peer = &rp;
    }
    else
    if (!strcmp (type, "register_gamer")) {
        const char *id = NULL, *key = NULL;
        if (!s_opt_str (root, "gamer_id", &id, &e) || !s_opt_str (root, "api_key", &key, &e))
            goto done;
        if (!id) {
            s_fail (&e, "bad_request", "missing field %s", "gamer_id");
            goto done;
        }
        rg.gamer_id = (char *) id;
        if (key)
            rg.api_key = (char *) (api_key = key);
        msg.msg_case = P2C2R__CLIENT_MESSAGE__MSG_REGISTER_GAMER;
        msg.register_gamer = &rg;
    }
    else
    if (!strcmp (type, "submit_task")) {
        //  client_ref first, so that every later error can echo it
        json_t *ref = json_object_get (root, "client_ref");
        if (json_is_integer (ref)) {
            snprintf (ref_num, sizeof ref_num, "%" JSON_INTEGER_FORMAT, json_integer_value (ref));
            sub.client_ref = ref_num;
        }
        else {
            const char *r = NULL;
            if (!s_opt_str (root, "client_ref", &r, &e))
                goto done;
            if (r)
                sub.client_ref = (char *) r;
        }
        if (ref_size)
            snprintf (client_ref, ref_size, "%s", sub.client_ref);
        json_t *task = json_object_get (root, "task");
        if (!json_is_object (task)) {
            s_fail (&e, "bad_request", "field %s must be an object {type, data}", "task");
            goto done;
        }
        const char *ttype = NULL;
        if (!s_opt_str (task, "type", &ttype, &e))
            goto done;
        if (!ttype) {
            s_fail (&e, "bad_request", "missing field %s", "task.type");
            goto done;
        }
        sub.task_type = (char *) ttype;
        double deadline = 0;
        if (!s_opt_num (root, "deadline_ms", 4294967295.0, &deadline, &e))
            goto done;
        sub.deadline_ms = (uint32_t) deadline;
        json_t *data = json_object_get (task, "data");
        if (!data || json_is_null (data))
            data = json_object ();
        else
            json_incref (data);
        //  The input frame travels as bytes, not inside the parameters
        if (json_is_object (data) && (!s_take_image (data, &sub.payload, &bytes, &e)
                                      || !s_take_image (task, &sub.payload, &bytes, &e)
                                      || !s_take_image (root, &sub.payload, &bytes, &e))) {
            json_decref (data);
            goto done;
        }
        //  A data that is not an object is passed on as it is, so that the
        //  submit handler answers invalid_params like for a binary client
        params = json_dumps (data, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref (data);
        if (!params)
            goto done;
        sub.params_json = params;
        msg.msg_case = P2C2R__CLIENT_MESSAGE__MSG_SUBMIT;
        msg.submit = &sub;
    }
    else
    if (!strcmp (type, "task_result")) {
        const char *id = NULL, *err = NULL, *code = NULL;
        if (!s_opt_str (root, "task_id", &id, &e) || !s_opt_str (root, "error", &err, &e)
            || !s_opt_str (root, "code", &code, &e))
            goto done;
        if (!id) {
            s_fail (&e, "bad_request", "missing field %s", "task_id");
            goto done;
        }
        res.task_id = (char *) id;
        double ms = 0;
        if (!s_opt_num (root, "processing_time_ms", 1e9, &ms, &e))
            goto done;
        res.compute_us = (uint64_t) llround (ms * 1000.0);
        if (err) {
            res.ok = false;
            res.error = (char *) err;
            //  Only the codes a kernel may report; the rest is a kernel error
            res.error_code = (char *) (code && !strcmp (code, "invalid_params") ? "invalid_params"
                                                                               : "kernel_error");
        }
        else {
            json_t *r = json_object_get (root, "result");
            if (!json_is_object (r)) {
                s_fail (&e, "bad_request", "field %s must be an object (or send error)", "result");
                goto done;
            }
            r = json_deep_copy (r);
            if (!r || !s_take_image (r, &res.blob, &bytes, &e)) {
                json_decref (r);
                goto done;
            }
            result = json_dumps (r, JSON_COMPACT);
            json_decref (r);
            if (!result)
                goto done;
            res.ok = true;
            res.result_json = result;
        }
        msg.msg_case = P2C2R__CLIENT_MESSAGE__MSG_RESULT;
        msg.result = &res;
    }
    else
    if (!strcmp (type, "heartbeat")) {
        double load = 0, slots = 0;
        if (!s_opt_num (root, "load", 1e6, &load, &e) || !s_opt_num (root, "slots", 1e6, &slots, &e))
            goto done;
        hb.load = (float) load;
        hb.slots = (uint32_t) slots;
        msg.msg_case = P2C2R__CLIENT_MESSAGE__MSG_HEARTBEAT;
        msg.heartbeat = &hb;
    }
    else
    if (!strcmp (type, "get_earnings")) {
        //  Any other field (an account id, say) is ignored: the answer is
        //  always the session's own account
        msg.msg_case = P2C2R__CLIENT_MESSAGE__MSG_GET_EARNINGS;
        msg.get_earnings = &ge;
    }
    else
    if (!strcmp (type, "subscribe")) {
        //  As get_earnings: what is pushed is the session's own account's
        json_t *stop = json_object_get (root, "stop");
        if (stop && !json_is_null (stop) && !json_is_boolean (stop)) {
            s_fail (&e, "bad_request", "field %s must be true or false", "stop");
            goto done;
        }
        subscribe.stop = json_is_true (stop);
        msg.msg_case = P2C2R__CLIENT_MESSAGE__MSG_SUBSCRIBE;
        msg.subscribe = &subscribe;
    }
    else {
        s_fail (&e, "bad_request", "unknown message type '%.40s'", type);
        goto done;
    }
    ok = true;
done:;
    P2c2r__ClientMessage *out = NULL;
    if (ok) {
        size_t n = 0;
        uint8_t *buf = p2c_msg_pack_client (&msg, 0, &n);
        out = buf ? p2c_msg_unpack_client (buf, n, max + max / 2 + 1024) : NULL;
        if (buf && api_key)
            explicit_bzero (buf, n);        //  it held an API key
        free (buf);
        if (!out)
            s_fail (&e, "too_large", "%s", "message too large or out of memory");
    }
    free (params);
    free (result);
    free (bytes);
    if (api_key)
        explicit_bzero ((char *) api_key, strlen (api_key));
    json_decref (root);
    *code_p = e.code;
    return out;
}

char *
gw_json_usd (int64_t pico, char *buf, size_t size)
{
    //  Exact: integer dollars and twelve decimals, trailing zeros cut
    uint64_t mag = pico < 0 ? (uint64_t) (-(pico + 1)) + 1 : (uint64_t) pico;
    snprintf (buf, size, "%s%llu.%012llu", pico < 0 ? "-" : "",
              (unsigned long long) (mag / 1000000000000ULL),
              (unsigned long long) (mag % 1000000000000ULL));
    size_t n = strlen (buf);
    while (n > 0 && buf [n - 1] == '0')
        buf [--n] = 0;
    if (n > 0 && buf [n - 1] == '.')
        buf [--n] = 0;
    return buf;
}

//  The parsed result object (an empty one when the text is not an object)
static json_t *
s_object (const char *text)
{
    json_t *v = text && *text ? json_loads (text, 0, NULL) : NULL;
    if (!json_is_object (v)) {
        json_decref (v);
        v = json_object ();
    }
    return v;
}

//  Sets key to the exact decimal text of pico dollars and key_pico to the
//  integer: a script reads either, neither goes through a double
static void
s_money (json_t *obj, const char *key, int64_t pico)
{
    char text [40], name [64];
    json_object_set_new (obj, key, json_string (p2c_money_format (pico, text, sizeof text)));
    snprintf (name, sizeof name, "%s_pico", key);
    json_object_set_new (obj, name, json_integer ((json_int_t) pico));
}

//  The answer to get_earnings
static json_t *
s_earnings (const P2c2r__Earnings *e)
{
    json_t *obj = json_pack ("{s:s, s:s, s:s}", "type", "earnings", "role", e->role,
                             "as_of", e->as_of);
    json_t *rates = json_object ();
    if (!obj || !rates) {
        json_decref (obj);
        json_decref (rates);
        return NULL;
    }
    s_money (obj, "balance", e->balance_pico);
    s_money (obj, "earned_today", e->earned_today_pico);
    s_money (obj, "earned_total", e->earned_total_pico);
    s_money (obj, "spent_today", e->spent_today_pico);
    s_money (obj, "spent_total", e->spent_total_pico);
    s_money (obj, "pending_payout", e->pending_payout_pico);
    s_money (obj, "payout_threshold", e->payout_threshold_pico);
    s_money (rates, "gamer_per_hour", e->gamer_pico_per_hour);
    s_money (rates, "peer_per_hour", e->peer_pico_per_hour);
    json_object_set_new (rates, "fee_bp", json_integer (e->fee_bp));
    s_money (rates, "peer_per_hour_in_force", e->peer_pico_per_hour_in_force);
    json_object_set_new (obj, "rates", rates);
    //  The treasury's subsidy: null amounts when it has no limit
    json_t *subsidy = json_object ();
    if (subsidy) {
        if (e->subsidy_limited) {
            s_money (subsidy, "per_day", e->subsidy_pico_per_day);
            s_money (subsidy, "left_today", e->subsidy_left_today_pico);
        }
        else {
            json_object_set_new (subsidy, "per_day", json_null ());
            json_object_set_new (subsidy, "left_today", json_null ());
        }
        json_object_set_new (subsidy, "spent", json_boolean (e->subsidy_spent));
        json_object_set_new (obj, "subsidy", subsidy);
    }
    json_object_set_new (obj, "tasks_today", json_integer ((json_int_t) e->tasks_today));
    json_object_set_new (obj, "tasks_total", json_integer ((json_int_t) e->tasks_total));
    return obj;
}

uint8_t *
gw_json_encode (const P2c2r__ServerMessage *m, size_t pre, size_t *len_p)
{
    json_t *obj = NULL;
    char usd [40] = "";
    switch (m->msg_case) {
        case P2C2R__SERVER_MESSAGE__MSG_ERROR:
            obj = json_pack ("{s:s, s:s, s:s}", "type", "error", "code", m->error->code,
                             "error", m->error->message);
            if (obj && *m->error->client_ref)
                json_object_set_new (obj, "client_ref", json_string (m->error->client_ref));
            break;
        case P2C2R__SERVER_MESSAGE__MSG_REGISTERED: {
            const P2c2r__Registered *r = m->registered;
            obj = json_pack ("{s:s, s:s, s:s, s:s}", "type", "registered", "message", r->message,
                             "role", r->role, "id", r->id);
            if (obj)
                json_object_set_new (obj, !strcmp (r->role, "peer") ? "peer_id" : "gamer_id",
                                     json_string (r->id));
            break;
        }
        case P2C2R__SERVER_MESSAGE__MSG_ASSIGN: {
            const P2c2r__Assign *a = m->assign;
            json_t *data = s_object (a->params_json);
            if (a->payload.len) {
                char *b64 = s_b64_encode (a->payload.data, a->payload.len);
                if (!b64) {
                    json_decref (data);
                    return NULL;
                }
                json_object_set_new (data, "image_b64", json_string (b64));
                free (b64);
            }
            obj = json_pack ("{s:s, s:s, s:s, s:o, s:I, s:I}", "type", "execute_task",
                             "task_id", a->task_id, "task_type", a->task_type, "task_data", data,
                             "deadline_ms", (json_int_t) a->deadline_ms,
                             "attempt", (json_int_t) a->attempt);
            break;
        }
        case P2C2R__SERVER_MESSAGE__MSG_TASK_RESULT: {
            const P2c2r__TaskReply *r = m->task_result;
            obj = json_pack ("{s:s, s:s, s:s, s:s}", "type", "task_result", "task_id", r->task_id,
                             "client_ref", r->client_ref, "status", r->ok ? "completed" : "error");
            if (!obj)
                break;
            if (r->replayed) {
                //  the outcome of an earlier submit of this client_ref
                json_object_set_new (obj, "replayed", json_true ());
                json_object_set_new (obj, "replay_of", json_string (r->replay_of ? r->replay_of
                                                                                 : ""));
            }
            if (r->ok) {
                json_t *result = s_object (r->result_json);
                if (r->blob.len) {
                    char *b64 = s_b64_encode (r->blob.data, r->blob.len);
                    if (b64)
                        json_object_set_new (result, "image_b64", json_string (b64));
                    free (b64);
                }
                json_object_set_new (obj, "result", result);
                json_object_set_new (obj, "processing_time_ms",
                                     json_real ((double) r->compute_us / 1000.0));
                json_object_set_new (obj, "cached", json_boolean (r->cached));
                gw_json_usd (r->cost_pico, usd, sizeof usd);
            }
            else {
                json_object_set_new (obj, "code", json_string (r->error_code));
                json_object_set_new (obj, "error", json_string (r->error));
                json_object_set_new (obj, "cached", json_false ());
            }
            break;
        }
        case P2C2R__SERVER_MESSAGE__MSG_EARNINGS:
            obj = s_earnings (m->earnings);
            break;
        case P2C2R__SERVER_MESSAGE__MSG_REPUTATION: {
            const P2c2r__Reputation *r = m->reputation;
            obj = json_pack ("{s:s, s:b, s:f, s:f, s:b}", "type", "reputation", "known", r->known,
                             "valid", round (r->valid * 100) / 100,
                             "invalid", round (r->invalid * 100) / 100, "banned", r->banned);
            break;
        }
        case P2C2R__SERVER_MESSAGE__MSG_AGENTS: {
            json_t *list = json_array ();
            for (size_t i = 0; list && i < m->agents->n_agents; i++) {
                const P2c2r__AgentState *a = m->agents->agents [i];
                json_array_append_new (list, json_pack ("{s:s, s:s, s:I, s:I}", "id", a->id,
                                       "state", a->paused ? "paused" : a->tasks ? "working" : "idle",
                                       "tasks", (json_int_t) a->tasks,
                                       "connected_s", (json_int_t) a->connected_s));
            }
            obj = list ? json_pack ("{s:s, s:o}", "type", "agents", "agents", list) : NULL;
            break;
        }
        default:
            break;
    }
    if (!obj)
        return NULL;
    char *text = json_dumps (obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref (obj);
    if (!text)
        return NULL;
    size_t len = strlen (text);
    //  cost_usd is spliced in as text: a JSON number written exactly, which
    //  a double printed by the library would not be ("3.47e-08")
    char tail [64] = "";
    if (*usd && len > 0 && text [len - 1] == '}') {
        snprintf (tail, sizeof tail, ",\"cost_usd\":%s}", usd);
        len--;
    }
    size_t tlen = strlen (tail);
    uint8_t *buf = (uint8_t *) malloc (pre + len + tlen + 1);
    if (buf) {
        memcpy (buf + pre, text, len);
        memcpy (buf + pre + len, tail, tlen);
        buf [pre + len + tlen] = 0;
        *len_p = len + tlen;
    }
    free (text);
    return buf;
}

// ---------------------------------------------------------------------------

static P2c2r__ClientMessage *
s_dec (const char *text, const char **code, char *why, char *ref)
{
    return gw_json_decode (text, strlen (text), 1 << 20, code, why, 200, ref, 64);
}

static json_t *
s_enc (const P2c2r__ServerMessage *m)
{
    size_t n = 0;
    uint8_t *buf = gw_json_encode (m, 16, &n);
    json_t *v = buf ? json_loadb ((char *) buf + 16, n, 0, NULL) : NULL;
    free (buf);
    return v;
}

void
gw_json_test (bool verbose)
{
    (void) verbose;
    char why [200], ref [64], usd [40];
    const char *code = NULL;

    P2C_CHECK (!strcmp (gw_json_usd (34700, usd, sizeof usd), "0.0000000347"));
    P2C_CHECK (!strcmp (gw_json_usd (0, usd, sizeof usd), "0"));
    P2C_CHECK (!strcmp (gw_json_usd (1500000000000LL, usd, sizeof usd), "1.5"));
    P2C_CHECK (!strcmp (gw_json_usd (-1, usd, sizeof usd), "-0.000000000001"));
    P2C_CHECK (!strcmp (gw_json_usd (INT64_MIN, usd, sizeof usd), "-9223372.036854775808"));

    //  The demo's peer registration, with an alias and an unknown type
    P2c2r__ClientMessage *m = s_dec ("{\"type\":\"register_peer\",\"peer_id\":\"laptop-1\","
        "\"capabilities\":{\"cpu_cores\":8,\"ram_gb\":15.6,\"gpu\":true,\"slots\":4,"
        "\"task_types\":[\"hash\",\"mining\",\"physics_cloth\"],\"region\":\"eu\"}}",
        &code, why, ref);
    P2C_CHECK (m && m->msg_case == P2C2R__CLIENT_MESSAGE__MSG_REGISTER_PEER);
    if (m) {
        P2c2r__Capabilities *c = m->register_peer->capabilities;
        P2C_CHECK (!strcmp (m->register_peer->peer_id, "laptop-1") && !*m->register_peer->api_key);
        P2C_CHECK (c && c->cpu_cores == 8 && c->ram_gb == 15 && c->gpu && c->slots == 4);
        P2C_CHECK (c && c->n_task_types == 2 && !strcmp (c->task_types [0], "encryption")
                   && !strcmp (c->region, "eu"));
    }
    p2c_msg_client_free (&m);
    //  No task_types: every kernel
    m = s_dec ("{\"type\":\"register_peer\",\"peer_id\":\"p\",\"api_key\":\"k\"}", &code, why, ref);
    size_t all = 0;
    for (const p2c_task_type_t *t = p2c_task_types (); t->name; t++)
        all++;
    P2C_CHECK (m && m->register_peer->capabilities->n_task_types == all
               && !strcmp (m->register_peer->api_key, "k"));
    p2c_msg_client_free (&m);

    m = s_dec ("{\"type\":\"submit_task\",\"task\":{\"type\":\"hash\",\"data\":{\"data\":\"abc\","
               "\"iterations\":3}},\"client_ref\":\"my-42\",\"deadline_ms\":5000}", &code, why, ref);
    P2C_CHECK (m && m->msg_case == P2C2R__CLIENT_MESSAGE__MSG_SUBMIT);
    if (m) {
        P2C_CHECK (!strcmp (m->submit->task_type, "hash") && !strcmp (m->submit->client_ref, "my-42"));
        P2C_CHECK (!strcmp (m->submit->params_json, "{\"data\":\"abc\",\"iterations\":3}"));
        P2C_CHECK (m->submit->deadline_ms == 5000 && m->submit->payload.len == 0);
    }
    p2c_msg_client_free (&m);
    //  image_b64 becomes the payload; a numeric client_ref is kept as text
    m = s_dec ("{\"type\":\"submit_task\",\"client_ref\":7,\"task\":{\"type\":\"upscale\","
               "\"data\":{\"image_b64\":\"aGk=\",\"output_res\":[4,4]}}}", &code, why, ref);
    P2C_CHECK (m && m->submit->payload.len == 2 && !memcmp (m->submit->payload.data, "hi", 2)
               && !strstr (m->submit->params_json, "image_b64")
               && !strcmp (m->submit->client_ref, "7"));
    p2c_msg_client_free (&m);
    //  data that is not an object passes, for the handler's invalid_params
    m = s_dec ("{\"type\":\"submit_task\",\"task\":{\"type\":\"hash\",\"data\":[1]}}", &code, why, ref);
    P2C_CHECK (m && !strcmp (m->submit->params_json, "[1]"));
    p2c_msg_client_free (&m);

    m = s_dec ("{\"type\":\"task_result\",\"task_id\":\"t1\",\"result\":{\"hash\":\"ab\","
               "\"image_b64\":\"aGk=\"},\"processing_time_ms\":12.5}", &code, why, ref);
    P2C_CHECK (m && m->result->ok && m->result->compute_us == 12500 && m->result->attempt == 0
               && m->result->blob.len == 2 && !strcmp (m->result->result_json, "{\"hash\":\"ab\"}"));
    p2c_msg_client_free (&m);
    m = s_dec ("{\"type\":\"task_result\",\"task_id\":\"t1\",\"error\":\"boom\"}", &code, why, ref);
    P2C_CHECK (m && !m->result->ok && !strcmp (m->result->error_code, "kernel_error")
               && !strcmp (m->result->error, "boom"));
    p2c_msg_client_free (&m);
    m = s_dec ("{\"type\":\"heartbeat\",\"load\":0.5}", &code, why, ref);
    P2C_CHECK (m && m->msg_case == P2C2R__CLIENT_MESSAGE__MSG_HEARTBEAT && m->heartbeat->load == 0.5f
               && m->heartbeat->slots == 0);
    p2c_msg_client_free (&m);
    m = s_dec ("{\"type\":\"heartbeat\",\"slots\":24}", &code, why, ref);
    P2C_CHECK (m && m->heartbeat->slots == 24);
    p2c_msg_client_free (&m);

    //  The bad-input table: each with its code and a text naming the field
    struct { const char *in, *code, *word; } bad [] = {
        { "{not json", "bad_request", "malformed" },
        { "[1,2]", "bad_request", "object" },
        { "{\"peer_id\":\"x\"}", "bad_request", "type" },
        { "{\"type\":7}", "bad_request", "type" },
        { "{\"type\":\"dance\"}", "bad_request", "dance" },
        { "{\"type\":\"register_peer\"}", "bad_request", "peer_id" },
        { "{\"type\":\"register_peer\",\"peer_id\":5}", "bad_request", "peer_id" },
        { "{\"type\":\"register_peer\",\"peer_id\":\"p\",\"capabilities\":{\"slots\":\"x\"}}",
          "bad_request", "slots" },
        { "{\"type\":\"register_peer\",\"peer_id\":\"p\",\"capabilities\":{\"task_types\":\"x\"}}",
          "bad_request", "task_types" },
        { "{\"type\":\"register_gamer\",\"gamer_id\":\"g\",\"api_key\":[]}", "bad_request", "api_key" },
        { "{\"type\":\"submit_task\",\"client_ref\":\"r9\"}", "bad_request", "task" },
        { "{\"type\":\"submit_task\",\"task\":{\"data\":{}}}", "bad_request", "task.type" },
        { "{\"type\":\"submit_task\",\"task\":{\"type\":\"hash\"},\"deadline_ms\":-1}",
          "bad_request", "deadline_ms" },
        { "{\"type\":\"submit_task\",\"task\":{\"type\":\"upscale\",\"data\":{\"image_b64\":\"!!\"}}}",
          "invalid_params", "image_b64" },
        { "{\"type\":\"task_result\",\"result\":{}}", "bad_request", "task_id" },
        { "{\"type\":\"task_result\",\"task_id\":\"t\",\"result\":3}", "bad_request", "result" },
        { "{\"type\":\"task_result\",\"task_id\":\"t\",\"result\":{},\"processing_time_ms\":\"x\"}",
          "bad_request", "processing_time_ms" },
        { "{\"type\":\"a\",\"type\":\"b\"}", "bad_request", "malformed" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        m = s_dec (bad [i].in, &code, why, ref);
        P2C_CHECK (m == NULL && !strcmp (code, bad [i].code) && strstr (why, bad [i].word));
        if (m || strcmp (code, bad [i].code) || !strstr (why, bad [i].word))
            printf ("  case %zu: code=%s why=%s\n", i, code, why);
        p2c_msg_client_free (&m);
    }
    m = s_dec ("{\"type\":\"submit_task\",\"client_ref\":\"r9\"}", &code, why, ref);
    P2C_CHECK (!strcmp (ref, "r9"));

    //  Encoding
    P2c2r__TaskReply r = P2C2R__TASK_REPLY__INIT;
    r.task_id = "t1";
    r.client_ref = "my-42";
    r.ok = true;
    r.result_json = "{\"hash\":\"ab\"}";
    r.blob.data = (uint8_t *) "hi";
    r.blob.len = 2;
    r.compute_us = 12500;
    r.cost_pico = 34700;
    P2c2r__ServerMessage sm = P2C2R__SERVER_MESSAGE__INIT;
    sm.msg_case = P2C2R__SERVER_MESSAGE__MSG_TASK_RESULT;
    sm.task_result = &r;
    size_t n = 0;
    uint8_t *buf = gw_json_encode (&sm, 0, &n);
    P2C_CHECK (buf && strstr ((char *) buf, "\"cost_usd\":0.0000000347}") != NULL);
    free (buf);
    json_t *v = s_enc (&sm);
    P2C_CHECK (v && !strcmp (json_string_value (json_object_get (v, "status")), "completed"));
    P2C_CHECK (v && !strcmp (json_string_value (json_object_get (
        json_object_get (v, "result"), "image_b64")), "aGk="));
    P2C_CHECK (v && json_real_value (json_object_get (v, "processing_time_ms")) == 12.5
               && json_is_false (json_object_get (v, "cached"))
               && fabs (json_number_value (json_object_get (v, "cost_usd")) - 3.47e-8) < 1e-15);
    P2C_CHECK (v && json_object_get (v, "replayed") == NULL);
    json_decref (v);
    //  a repeat of the client_ref: the first task's outcome, named
    r.replayed = true;
    r.replay_of = "t0";
    v = s_enc (&sm);
    P2C_CHECK (v && json_is_true (json_object_get (v, "replayed"))
               && !strcmp (json_string_value (json_object_get (v, "replay_of")), "t0")
               && !strcmp (json_string_value (json_object_get (v, "task_id")), "t1"));
    json_decref (v);
    r.replayed = false;
    r.replay_of = "";
    r.ok = false;
    r.error_code = "no_peers";
    r.error = "No peers available";
    v = s_enc (&sm);
    P2C_CHECK (v && !strcmp (json_string_value (json_object_get (v, "status")), "error")
               && !strcmp (json_string_value (json_object_get (v, "code")), "no_peers")
               && !json_object_get (v, "cost_usd"));
    json_decref (v);

    P2c2r__Assign a = P2C2R__ASSIGN__INIT;
    a.task_id = "t2";
    a.task_type = "encryption";
    a.params_json = "{\"data\":\"x\"}";
    a.attempt = 2;
    sm.msg_case = P2C2R__SERVER_MESSAGE__MSG_ASSIGN;
    sm.assign = &a;
    v = s_enc (&sm);
    P2C_CHECK (v && !strcmp (json_string_value (json_object_get (v, "type")), "execute_task")
               && !strcmp (json_string_value (json_object_get (v, "task_type")), "encryption")
               && !strcmp (json_string_value (json_object_get (
                   json_object_get (v, "task_data"), "data")), "x"));
    json_decref (v);

    P2c2r__Registered reg = P2C2R__REGISTERED__INIT;
    reg.role = "peer";
    reg.id = "laptop-1";
    reg.message = "Registered as peer: laptop-1";
    sm.msg_case = P2C2R__SERVER_MESSAGE__MSG_REGISTERED;
    sm.registered = &reg;
    v = s_enc (&sm);
    P2C_CHECK (v && !strcmp (json_string_value (json_object_get (v, "type")), "registered")
               && !strcmp (json_string_value (json_object_get (v, "peer_id")), "laptop-1"));
    json_decref (v);

    //  get_earnings names no account (one given is ignored); the answer's
    //  money is exact text and integer picodollars
    m = s_dec ("{\"type\":\"get_earnings\",\"account_id\":3}", &code, why, ref);
    P2C_CHECK (m && m->msg_case == P2C2R__CLIENT_MESSAGE__MSG_GET_EARNINGS);
    p2c_msg_client_free (&m);
    P2c2r__Earnings e = P2C2R__EARNINGS__INIT;
    e.role = "peer";
    e.as_of = "2026-12-02T10:00:00Z";
    e.balance_pico = 41666667;
    e.earned_total_pico = 42187500;
    e.spent_total_pico = -1;
    e.payout_threshold_pico = 10 * 1000000000000LL;
    e.peer_pico_per_hour = 150000000000LL;
    e.fee_bp = 1000;
    e.tasks_total = 2;
    sm.msg_case = P2C2R__SERVER_MESSAGE__MSG_EARNINGS;
    sm.earnings = &e;
    v = s_enc (&sm);
    P2C_CHECK (v && !strcmp (json_string_value (json_object_get (v, "type")), "earnings")
               && !strcmp (json_string_value (json_object_get (v, "role")), "peer")
               && !strcmp (json_string_value (json_object_get (v, "as_of")), e.as_of));
    P2C_CHECK (v && !strcmp (json_string_value (json_object_get (v, "balance")), "0.000041666667")
               && json_integer_value (json_object_get (v, "balance_pico")) == 41666667
               && !strcmp (json_string_value (json_object_get (v, "earned_total")),
                           "0.000042187500")
               && !strcmp (json_string_value (json_object_get (v, "earned_today")),
                           "0.000000000000")
               && !strcmp (json_string_value (json_object_get (v, "spent_total")),
                           "-0.000000000001")
               && !strcmp (json_string_value (json_object_get (v, "payout_threshold")),
                           "10.000000000000")
               && json_integer_value (json_object_get (v, "tasks_total")) == 2);
    json_t *rates = v ? json_object_get (v, "rates") : NULL;
    P2C_CHECK (rates && !strcmp (json_string_value (json_object_get (rates, "peer_per_hour")),
                                 "0.150000000000")
               && json_integer_value (json_object_get (rates, "peer_per_hour_pico"))
                  == 150000000000LL
               && json_integer_value (json_object_get (rates, "fee_bp")) == 1000);
    //  No subsidy limit: null amounts, not spent
    json_t *sub = v ? json_object_get (v, "subsidy") : NULL;
    P2C_CHECK (sub && json_is_null (json_object_get (sub, "per_day"))
               && json_is_false (json_object_get (sub, "spent")));
    json_decref (v);
    //  Spent: the rate in force is the capped one
    e.subsidy_limited = true;
    e.subsidy_pico_per_day = 5000000000000LL;
    e.subsidy_left_today_pico = 0;
    e.subsidy_spent = true;
    e.peer_pico_per_hour_in_force = 9000000000LL;
    v = s_enc (&sm);
    sub = v ? json_object_get (v, "subsidy") : NULL;
    rates = v ? json_object_get (v, "rates") : NULL;
    P2C_CHECK (sub && !strcmp (json_string_value (json_object_get (sub, "per_day")),
                               "5.000000000000")
               && !strcmp (json_string_value (json_object_get (sub, "left_today")),
                           "0.000000000000")
               && json_is_true (json_object_get (sub, "spent")));
    P2C_CHECK (rates && !strcmp (json_string_value (json_object_get (rates,
                                 "peer_per_hour_in_force")), "0.009000000000"));
    json_decref (v);

    //  subscribe, and its stop; agents pushed with their state
    m = s_dec ("{\"type\":\"subscribe\",\"account_id\":3}", &code, why, ref);
    P2C_CHECK (m && m->msg_case == P2C2R__CLIENT_MESSAGE__MSG_SUBSCRIBE && !m->subscribe->stop);
    p2c_msg_client_free (&m);
    m = s_dec ("{\"type\":\"subscribe\",\"stop\":true}", &code, why, ref);
    P2C_CHECK (m && m->msg_case == P2C2R__CLIENT_MESSAGE__MSG_SUBSCRIBE && m->subscribe->stop);
    p2c_msg_client_free (&m);
    m = s_dec ("{\"type\":\"subscribe\",\"stop\":1}", &code, why, ref);
    P2C_CHECK (!m && !strcmp (code, "bad_request") && strstr (why, "stop"));
    P2c2r__AgentState a1 = P2C2R__AGENT_STATE__INIT, a2 = P2C2R__AGENT_STATE__INIT;
    a1.id = "<img src=x>";
    a1.tasks = 2;
    a1.connected_s = 61;
    a2.id = "b";
    a2.paused = true;
    P2c2r__AgentState *list [] = { &a1, &a2 };
    P2c2r__Agents agents = P2C2R__AGENTS__INIT;
    agents.n_agents = 2;
    agents.agents = list;
    sm.msg_case = P2C2R__SERVER_MESSAGE__MSG_AGENTS;
    sm.agents = &agents;
    v = s_enc (&sm);
    json_t *arr = v ? json_object_get (v, "agents") : NULL;
    P2C_CHECK (v && !strcmp (json_string_value (json_object_get (v, "type")), "agents")
               && json_array_size (arr) == 2);
    json_t *first = json_array_get (arr, 0), *second = json_array_get (arr, 1);
    P2C_CHECK (first && !strcmp (json_string_value (json_object_get (first, "id")), "<img src=x>")
               && !strcmp (json_string_value (json_object_get (first, "state")), "working")
               && json_integer_value (json_object_get (first, "tasks")) == 2
               && json_integer_value (json_object_get (first, "connected_s")) == 61);
    P2C_CHECK (second && !strcmp (json_string_value (json_object_get (second, "state")), "paused"));
    json_decref (v);
    P2c2r__Reputation rep = P2C2R__REPUTATION__INIT;
    rep.known = true;
    rep.valid = 12.3456;
    rep.invalid = 1;
    sm.msg_case = P2C2R__SERVER_MESSAGE__MSG_REPUTATION;
    sm.reputation = &rep;
    v = s_enc (&sm);
    P2C_CHECK (v && !strcmp (json_string_value (json_object_get (v, "type")), "reputation")
               && json_is_true (json_object_get (v, "known"))
               && json_real_value (json_object_get (v, "valid")) == 12.35
               && json_real_value (json_object_get (v, "invalid")) == 1
               && json_is_false (json_object_get (v, "banned")));
    json_decref (v);
}
