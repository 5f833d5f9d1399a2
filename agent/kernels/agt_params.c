/*  Table-driven kernel parameters: see agt_params.h. */
#include "agt_params.h"

#include <math.h>
#include <openssl/sha.h>
#include <string.h>

bool
agt_json_int (const json_t *item, int64_t min, int64_t max, int64_t *value)
{
    int64_t v;
    if (json_is_integer (item))
        v = (int64_t) json_integer_value (item);
    else
    if (json_is_real (item)) {
        //  Python clients send 5.0 for 5 at times; accept integral reals only
        double r = json_real_value (item);
        if (!isfinite (r) || r != floor (r) || r < -9e15 || r > 9e15)
            return false;
        v = (int64_t) r;
    }
    else
        return false;
    if (v < min || v > max)
        return false;
    *value = v;
    return true;
}

bool
agt_json_real (const json_t *item, double min, double max, double *value)
{
    if (!json_is_number (item))
        return false;
    double r = json_number_value (item);
    if (!isfinite (r) || r < min || r > max)
        return false;
    *value = r;
    return true;
}

//  Index of word in a '|'-separated list, or -1.
static int
s_choice_index (const char *choices, const char *word, size_t len)
{
    int index = 0;
    const char *p = choices;
    while (*p) {
        const char *end = strchr (p, '|');
        size_t n = end? (size_t) (end - p): strlen (p);
        if (n == len && !memcmp (p, word, n))
            return index;
        index++;
        p += n;
        if (*p == '|')
            p++;
    }
    return -1;
}

//  Why a value was refused, for the error text.
static void
s_describe (const agt_param_t *p, char *buf, size_t size)
{
    switch (p->type) {
        case AGT_P_INT:
            snprintf (buf, size, "an integer in [%.0f, %.0f]", p->min, p->max);
            break;
        case AGT_P_REAL:
            snprintf (buf, size, "a number in [%g, %g]", p->min, p->max);
            break;
        case AGT_P_BOOL:
            snprintf (buf, size, "a boolean");
            break;
        case AGT_P_STRING:
            snprintf (buf, size, "a string of %.0f to %.0f bytes", p->min, p->max);
            break;
        case AGT_P_ENUM:
            snprintf (buf, size, "one of %s", p->choices);
            break;
        case AGT_P_INTVEC:
            snprintf (buf, size, "an array of %d integers in [%.0f, %.0f]%s",
                      p->len, p->min, p->max, p->scalar_ok? " (or one integer)": "");
            break;
        case AGT_P_ARRAY:
            snprintf (buf, size, "an array of %.0f to %.0f elements", p->min, p->max);
            break;
    }
}

static bool
s_read_one (const agt_param_t *p, const json_t *item, agt_param_val_t *val)
{
    switch (p->type) {
        case AGT_P_INT:
            if (!agt_json_int (item, (int64_t) p->min, (int64_t) p->max, &val->i))
                return false;
            val->r = (double) val->i;
            return true;
        case AGT_P_REAL:
            return agt_json_real (item, p->min, p->max, &val->r);
        case AGT_P_BOOL:
            if (!json_is_boolean (item))
                return false;
            val->i = json_is_true (item);
            return true;
        case AGT_P_STRING:
        case AGT_P_ENUM: {
            if (!json_is_string (item))
                return false;
            val->s = json_string_value (item);
            val->slen = json_string_length (item);
            if (p->type == AGT_P_STRING)
                return val->slen >= (size_t) p->min && val->slen <= (size_t) p->max;
            val->i = s_choice_index (p->choices, val->s, val->slen);
            return val->i >= 0;
        }
        case AGT_P_INTVEC:
            if (p->scalar_ok && json_is_number (item)) {
                int64_t v;
                if (!agt_json_int (item, (int64_t) p->min, (int64_t) p->max, &v))
                    return false;
                for (int k = 0; k < p->len; k++)
                    val->v [k] = v;
                return true;
            }
            if (!json_is_array (item) || json_array_size (item) != (size_t) p->len)
                return false;
            for (int k = 0; k < p->len; k++)
                if (!agt_json_int (json_array_get (item, (size_t) k),
                                   (int64_t) p->min, (int64_t) p->max, &val->v [k]))
                    return false;
            return true;
        case AGT_P_ARRAY:
            if (!json_is_array (item))
                return false;
            if (json_array_size (item) < (size_t) p->min || json_array_size (item) > (size_t) p->max)
                return false;
            val->arr = item;
            return true;
    }
    return false;
}

int
agt_params_read (const agt_param_t *table, size_t n, const json_t *params,
                 agt_param_val_t *vals, agt_kernel_out_t *out)
{
    if (params && !json_is_object (params))
        return agt_kernel_fail (out, "invalid_params", "params: must be a JSON object");
    for (size_t k = 0; k < n; k++) {
        const agt_param_t *p = &table [k];
        agt_param_val_t *val = &vals [k];
        memset (val, 0, sizeof *val);
        const json_t *item = params? json_object_get (params, p->name): NULL;
        if (!item && p->alias && params)
            item = json_object_get (params, p->alias);
        //  JSON null means "not given", as Python clients send None for defaults
        if (item && json_is_null (item))
            item = NULL;
        if (!item) {
            if (p->required)
                return agt_kernel_fail (out, "invalid_params", "%s: required", p->name);
            val->i = (int64_t) p->def;
            val->r = p->def;
            val->s = p->def_s;
            val->slen = p->def_s? strlen (p->def_s): 0;
            if (p->type == AGT_P_ENUM)
                val->i = s_choice_index (p->choices, val->s, val->slen);
            for (int e = 0; e < p->len && e < AGT_PARAMS_VEC_MAX; e++)
                val->v [e] = (int64_t) p->def;
            continue;
        }
        val->given = true;
        if (!s_read_one (p, item, val)) {
            char what [160];
            s_describe (p, what, sizeof what);
            return agt_kernel_fail (out, "invalid_params", "%s: must be %s", p->name, what);
        }
    }
    return 0;
}

double
agt_round6 (double x)
{
    double r = round (x * 1e6) / 1e6;
    //  Avoid printing -0 for tiny negatives: both are "0" to a user
    return r == 0.0? 0.0: r;
}

json_t *
agt_num (double x)
{
    if (!isfinite (x))
        return NULL;
    return json_real (agt_round6 (x));
}

void
agt_sha256_hex (const void *data, size_t len, char hex [65])
{
    unsigned char digest [SHA256_DIGEST_LENGTH];
    SHA256 (data, len, digest);
    for (int k = 0; k < SHA256_DIGEST_LENGTH; k++)
        snprintf (hex + 2 * k, 3, "%02x", digest [k]);
}
