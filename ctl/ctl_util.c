/*  p2c2r-ctl helpers: exact money parsing and the printing of query
    results as human tables, JSON or CSV. */
#include "ctl.h"
#include "p2c_mem.h"
#include "p2c_money.h"
#include "p2c_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL_MAX_USD 1000000LL

int
ctl_parse_usd (const char *text, int64_t *pico_p)
{
    if (!text)
        return -1;
    if (*text == '$')
        text++;
    const char *c = text;
    int64_t whole = 0, frac = 0;
    int digits = 0, decimals = 0;
    while (*c >= '0' && *c <= '9') {
        whole = whole * 10 + (*c - '0');
        if (whole > CTL_MAX_USD)
            return -1;
        c++;
        digits++;
    }
    if (*c == '.') {
        c++;
        while (*c >= '0' && *c <= '9') {
            if (++decimals > 12)
                return -1;
            frac = frac * 10 + (*c - '0');
            c++;
        }
    }
    if (*c || (digits == 0 && decimals == 0))
        return -1;
    for (int i = decimals; i < 12; i++)
        frac *= 10;
    int64_t pico = whole * P2C_PICO_PER_USD + frac;
    if (pico > CTL_MAX_USD * P2C_PICO_PER_USD)
        return -1;
    *pico_p = pico;
    return 0;
}

//  PostgreSQL type oids we print as JSON numbers or booleans
#define CTL_OID_BOOL 16
#define CTL_OID_INT8 20
#define CTL_OID_INT2 21
#define CTL_OID_INT4 23

static json_t *
s_json_value (PGresult *res, int row, int col)
{
    if (PQgetisnull (res, row, col))
        return json_null ();
    const char *v = PQgetvalue (res, row, col);
    Oid type = PQftype (res, col);
    if (type == CTL_OID_BOOL)
        return json_boolean (!strcmp (v, "t"));
    if (type == CTL_OID_INT8 || type == CTL_OID_INT2 || type == CTL_OID_INT4)
        return json_integer (strtoll (v, NULL, 10));
    return json_string (v);
}

void
ctl_print_json (json_t *value)
{
    char *text = json_dumps (value, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
    if (text)
        printf ("%s\n", text);
    free (text);
}

static bool
s_numeric_col (PGresult *res, int col)
{
    Oid type = PQftype (res, col);
    //  int2/4/8 and NUMERIC (1700) align right
    return type == CTL_OID_INT8 || type == CTL_OID_INT2 || type == CTL_OID_INT4 || type == 1700;
}

void
ctl_print_result (PGresult *res, bool json, bool single)
{
    int rows = PQntuples (res), cols = PQnfields (res);
    if (json) {
        json_t *list = json_array ();
        for (int r = 0; r < rows; r++) {
            json_t *o = json_object ();
            for (int c = 0; c < cols; c++)
                json_object_set_new (o, PQfname (res, c), s_json_value (res, r, c));
            json_array_append_new (list, o);
        }
        if (single)
            ctl_print_json (rows > 0 ? json_array_get (list, 0) : json_null ());
        else
            ctl_print_json (list);
        json_decref (list);
        return;
    }
    if (single && rows == 1) {
        //  One record: a name per line
        int width = 0;
        for (int c = 0; c < cols; c++)
            if ((int) strlen (PQfname (res, c)) > width)
                width = (int) strlen (PQfname (res, c));
        for (int c = 0; c < cols; c++) {
            const char *v = PQgetisnull (res, 0, c) ? "-" : PQgetvalue (res, 0, c);
            if (PQftype (res, c) == CTL_OID_BOOL)
                v = !strcmp (v, "t") ? "yes" : !strcmp (v, "f") ? "no" : v;
            printf ("%-*s  %s\n", width, PQfname (res, c), v);
        }
        return;
    }
    int *width = (int *) p2c_calloc ((size_t) cols + 1, sizeof (int));
    for (int c = 0; c < cols; c++) {
        width [c] = (int) strlen (PQfname (res, c));
        for (int r = 0; r < rows; r++)
            if (PQgetlength (res, r, c) > width [c])
                width [c] = PQgetlength (res, r, c);
        if (width [c] > 60)
            width [c] = 60;
    }
    for (int c = 0; c < cols; c++) {
        char head [128];
        snprintf (head, sizeof head, "%s", PQfname (res, c));
        for (char *h = head; *h; h++)
            *h = (*h >= 'a' && *h <= 'z') ? (char) (*h - 32) : *h == '_' ? ' ' : *h;
        printf (s_numeric_col (res, c) ? "%*s%s" : "%-*s%s", width [c], head,
                c + 1 < cols ? "  " : "\n");
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            const char *v = PQgetisnull (res, r, c) ? "" : PQgetvalue (res, r, c);
            if (PQftype (res, c) == CTL_OID_BOOL)
                v = !strcmp (v, "t") ? "yes" : !strcmp (v, "f") ? "no" : v;
            printf (s_numeric_col (res, c) ? "%*s%s" : "%-*s%s", width [c], v,
                    c + 1 < cols ? "  " : "\n");
        }
    printf ("(%d row%s)\n", rows, rows == 1 ? "" : "s");
    free (width);
}

void
ctl_csv_field (const char *value, bool last)
{
    bool quote = strpbrk (value, ",\"\r\n") != NULL;
    if (quote) {
        putchar ('"');
        for (const char *c = value; *c; c++) {
            if (*c == '"')
                putchar ('"');
            putchar (*c);
        }
        putchar ('"');
    }
    else
        fputs (value, stdout);
    fputs (last ? "\r\n" : ",", stdout);
}

void
ctl_util_test (bool verbose)
{
    (void) verbose;
    int64_t p = -1;
    P2C_CHECK (ctl_parse_usd ("12.5", &p) == 0 && p == 12500000000000LL);
    P2C_CHECK (ctl_parse_usd ("$0.000000000001", &p) == 0 && p == 1);
    P2C_CHECK (ctl_parse_usd ("7", &p) == 0 && p == 7000000000000LL);
    P2C_CHECK (ctl_parse_usd (".25", &p) == 0 && p == 250000000000LL);
    P2C_CHECK (ctl_parse_usd ("1000000", &p) == 0 && p == 1000000LL * P2C_PICO_PER_USD);
    P2C_CHECK (ctl_parse_usd ("1000000.000000000001", &p) == -1);
    P2C_CHECK (ctl_parse_usd ("0.0000000000001", &p) == -1);     //  13 decimals
    P2C_CHECK (ctl_parse_usd ("-5", &p) == -1);
    P2C_CHECK (ctl_parse_usd ("5e3", &p) == -1);
    P2C_CHECK (ctl_parse_usd ("", &p) == -1);
    P2C_CHECK (ctl_parse_usd (".", &p) == -1);
    P2C_CHECK (ctl_parse_usd ("1.2.3", &p) == -1);
    P2C_CHECK (ctl_parse_usd ("99999999999999999999", &p) == -1);
    P2C_CHECK (ctl_parse_usd (NULL, &p) == -1);
}
