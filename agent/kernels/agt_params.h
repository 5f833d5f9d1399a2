/*  Table-driven kernel parameters (after Redis's config table): each kernel
    declares its parameters once, with type, default and bounds, and reads a
    task's JSON params against that table. A wrong type or an out-of-bound
    value answers invalid_params naming the field; unknown fields are ignored
    so that clients of the original demo, which sent extra keys, still work.
    The same table is printed in docs/kernels.md. */
#ifndef AGT_PARAMS_H_INCLUDED
#define AGT_PARAMS_H_INCLUDED

#include "agt_kernel.h"

typedef enum {
    AGT_P_INT,          //  integer in [min, max] (an integral real such as 5.0 is accepted)
    AGT_P_REAL,         //  finite number in [min, max]
    AGT_P_BOOL,         //  true/false
    AGT_P_STRING,       //  string of min..max bytes
    AGT_P_ENUM,         //  one of the '|'-separated words in choices
    AGT_P_INTVEC,       //  array of len integers, each in [min, max]; a single
                        //  integer is accepted and repeated when scalar_ok
    AGT_P_ARRAY         //  array of min..max elements, checked by the kernel
} agt_param_type_t;

typedef struct {
    const char *name;           //  field name in the params object
    const char *alias;          //  another accepted name (the demo's), or NULL
    agt_param_type_t type;
    bool required;              //  missing is an error (else the default applies)
    double def;                 //  default of INT, REAL, BOOL, and of each INTVEC element
    const char *def_s;          //  default of STRING and ENUM
    double min, max;            //  bounds (of the value, the length, or each element)
    int len;                    //  INTVEC: number of elements
    bool scalar_ok;             //  INTVEC: a bare integer means all elements equal
    const char *choices;        //  ENUM: "a|b|c"
} agt_param_t;

#define AGT_PARAMS_VEC_MAX 4

typedef struct {
    bool given;                 //  present in the params (false: the default)
    int64_t i;                  //  INT, BOOL (0/1), ENUM (index in choices)
    double r;                   //  REAL (also INT as a double)
    const char *s;              //  STRING, ENUM (borrowed from params or the table)
    size_t slen;
    int64_t v [AGT_PARAMS_VEC_MAX]; //  INTVEC
    const json_t *arr;          //  ARRAY (borrowed), or NULL when not given
} agt_param_val_t;

//  Reads params (a JSON object, or NULL meaning {}) against a table of n
//  entries into vals[n]. Returns 0, or -1 with invalid_params set on out.
int agt_params_read (const agt_param_t *table, size_t n, const json_t *params,
                     agt_param_val_t *vals, agt_kernel_out_t *out);

//  A JSON number for a computed double, rounded to 6 decimals so results are
//  byte-stable and short; NULL for a non-finite value.
json_t *agt_num (double x);

//  Rounds to 6 decimals (the rule agt_num prints with).
double agt_round6 (double x);

//  Reads an integer element of a JSON array item (integral reals accepted);
//  false when it is not an integer in [min, max].
bool agt_json_int (const json_t *item, int64_t min, int64_t max, int64_t *value);

//  Reads a finite number in [min, max]; false otherwise.
bool agt_json_real (const json_t *item, double min, double max, double *value);

//  Lower-case hex of a SHA-256 of bytes into hex[65].
void agt_sha256_hex (const void *data, size_t len, char hex [65]);

#endif
