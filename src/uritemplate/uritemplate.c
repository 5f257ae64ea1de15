/*
 * RFC 6570 level 4 expansion and percent-encoding (see uritemplate.h).
 *
 * Two passes over the template: the first checks all of it against the
 * grammar, so a malformed template has no effect at all (no lookup is made,
 * nothing is written); the second expands, and can then fail only for
 * reasons that depend on values (a prefix on a composite, a failed lookup)
 * or on memory. Either way the output buffer is cut back to its old length
 * on failure. Both passes run the same parsing code, so they cannot disagree
 * about where an expression ends.
 *
 * Encoding works on bytes: a value is measured first and the buffer grown
 * once, then written, so a failed append leaves nothing half-written.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gapi.h"
#include "common/buf.h"
#include "uritemplate/uritemplate.h"

enum {
    C_UNRES = 1,   /* RFC 3986 unreserved */
    C_RES = 2,     /* RFC 3986 reserved (gen-delims and sub-delims) */
    C_LIT = 4,     /* ASCII an RFC 6570 literal may hold and copies as-is */
    C_VARCHAR = 8, /* ALPHA DIGIT "_" (pct-encoded is handled apart) */
    C_HEX = 16
};

#define C_NAME  (C_UNRES | C_LIT | C_VARCHAR)
#define C_DELIM (C_RES | C_LIT)

/* Ranges never overlap: -Woverride-init is part of -Wextra. "'" is left out
 * of the literals of RFC 6570's ABNF, yet the RFC's own examples (sections
 * 1.2 and 2.1: "'{var}'" -> "'value'") copy it, and it is an RFC 3986
 * sub-delim, legal in a URI: we follow the examples. */
static const unsigned char cls[256] = {
    ['0' ... '9'] = C_NAME | C_HEX,
    ['A' ... 'F'] = C_NAME | C_HEX,
    ['G' ... 'Z'] = C_NAME,
    ['a' ... 'f'] = C_NAME | C_HEX,
    ['g' ... 'z'] = C_NAME,
    ['_'] = C_NAME,
    ['-'] = C_UNRES | C_LIT,
    ['.'] = C_UNRES | C_LIT,
    ['~'] = C_UNRES | C_LIT,
    [':'] = C_DELIM,
    ['/'] = C_DELIM,
    ['?'] = C_DELIM,
    ['#'] = C_DELIM,
    ['['] = C_DELIM,
    [']'] = C_DELIM,
    ['@'] = C_DELIM,
    ['!'] = C_DELIM,
    ['$'] = C_DELIM,
    ['&'] = C_DELIM,
    ['('] = C_DELIM,
    [')'] = C_DELIM,
    ['*'] = C_DELIM,
    ['+'] = C_DELIM,
    [','] = C_DELIM,
    [';'] = C_DELIM,
    ['='] = C_DELIM,
    ['\''] = C_DELIM,
};

#define IS(c, k) (cls[(unsigned char)(c)] & (k))

static const char hexdig[] = "0123456789ABCDEF";

/* Expression behaviour, RFC 6570 appendix A. */
typedef struct op_def {
    char op;
    char first; /* '\0': nothing before the first value */
    char sep;
    unsigned char named;
    unsigned char ifemp_eq; /* an empty value in a named expansion gets "=" */
    unsigned char reserved; /* U+R: reserved characters and triplets kept */
} op_def;

static const op_def ops[] = {
    {'\0', '\0', ',', 0, 0, 0}, {'+', '\0', ',', 0, 0, 1}, {'#', '#', ',', 0, 0, 1},
    {'.', '.', '.', 0, 0, 0},   {'/', '/', '/', 0, 0, 0},  {';', ';', ';', 1, 0, 0},
    {'?', '?', '&', 1, 1, 0},   {'&', '&', '&', 1, 1, 0},
};

/* ------------------------------------------------------------ errors */

__attribute__((format(printf, 4, 5))) static int fail(gapi__ut_error *err, size_t off, int code,
                                                      const char *fmt, ...)
{
    va_list ap;
    int n;

    if (err) {
        err->offset = off;
        n = snprintf(err->message, sizeof(err->message), "offset %zu: ", off);
        if (n < 0 || (size_t)n >= sizeof(err->message))
            n = 0;
        va_start(ap, fmt);
        vsnprintf(err->message + n, sizeof(err->message) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* A byte for a message: 'c' when printable ASCII, else its hex value. */
static const char *show(unsigned char c, char buf[16])
{
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02X", c);
    return buf;
}

static int unclosed(gapi__ut_error *err, size_t len, size_t open)
{
    return fail(err, len, GAPI_EINVAL, "unclosed expression: '{' at offset %zu has no '}'", open);
}

/* ------------------------------------------------------------ encoding */

/* How many bytes at s[i] are copied as they are: 1 for an allowed
 * character, 3 for a kept %XX triplet, 0 when s[i] must be encoded. */
static size_t keep(const char *s, size_t i, size_t len, int reserved)
{
    unsigned char c = (unsigned char)s[i];

    if (IS(c, C_UNRES))
        return 1;
    if (!reserved)
        return 0;
    if (IS(c, C_RES))
        return 1;
    if (c == '%' && len - i >= 3 && IS(s[i + 1], C_HEX) && IS(s[i + 2], C_HEX))
        return 3;
    return 0;
}

int gapi__pct_encode(gapi__buf *out, const char *s, size_t len, int allow_reserved)
{
    size_t i, k, n = 0;
    char *d;

    if (len > ((size_t)-1 - 1) / 3)
        return GAPI_ENOMEM;
    for (i = 0; i < len; i += k ? k : 1) {
        k = keep(s, i, len, allow_reserved);
        n += k ? k : 3;
    }
    if (gapi__buf_reserve(out, n) != GAPI_OK)
        return GAPI_ENOMEM;
    d = out->data + out->len;
    for (i = 0; i < len; i += k ? k : 1) {
        k = keep(s, i, len, allow_reserved);
        if (k) {
            memcpy(d, s + i, k);
            d += k;
        } else {
            d[0] = '%';
            d[1] = hexdig[(unsigned char)s[i] >> 4];
            d[2] = hexdig[(unsigned char)s[i] & 15];
            d += 3;
        }
    }
    out->len += n;
    out->data[out->len] = '\0';
    return GAPI_OK;
}

int gapi__query_encode(gapi__buf *out, const char *s, size_t len)
{
    /* Unreserved only: quote_plus's safe set ("_.-~" and alphanumerics),
     * with space as %20 rather than "+" (see the header). */
    return gapi__pct_encode(out, s, len, 0);
}

int gapi__query_add(gapi__buf *url, const char *name, const char *value, size_t value_len)
{
    size_t start = url->len;
    char sep = '?';

    if (url->len && memchr(url->data, '?', url->len)) {
        char last = url->data[url->len - 1];
        sep = last == '?' || last == '&' ? '\0' : '&';
    }
    if ((sep && gapi__buf_append(url, &sep, 1) != GAPI_OK) ||
        gapi__query_encode(url, name, strlen(name)) != GAPI_OK ||
        gapi__buf_append(url, "=", 1) != GAPI_OK ||
        gapi__query_encode(url, value, value_len) != GAPI_OK) {
        url->len = start;
        if (url->data)
            url->data[start] = '\0';
        return GAPI_ENOMEM;
    }
    return GAPI_OK;
}

/* ------------------------------------------------------------ UTF-8 */

/* Length of the well-formed UTF-8 sequence at s[0..n) (its code point in
 * *cp), or 0 when it is malformed: overlong, surrogate, above U+10FFFF,
 * truncated, or a stray continuation byte. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t need, i;
    uint32_t c;

    if (s[0] < 0xC2)
        return 0;
    if (s[0] < 0xE0) {
        need = 2;
        c = s[0] & 0x1Fu;
    } else if (s[0] < 0xF0) {
        need = 3;
        c = s[0] & 0x0Fu;
    } else if (s[0] < 0xF5) {
        need = 4;
        c = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if ((need == 3 && c < 0x800) || (need == 4 && c < 0x10000) || c > 0x10FFFF ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return need;
}

/* ucschar / iprivate of RFC 6570 section 1.5 (from RFC 3987). */
static int ucs_allowed(uint32_t c)
{
    if (c < 0x10000)
        return (c >= 0xA0 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFDCF) ||
               (c >= 0xFDF0 && c <= 0xFFEF);
    if ((c & 0xFFFF) > 0xFFFD)
        return 0;
    return c < 0xE0000 || c >= 0xE1000;
}

/* ------------------------------------------------------------ parsing */

static int parse_op(const char *t, size_t len, size_t open, size_t *pos, const op_def **op,
                    gapi__ut_error *err)
{
    size_t i;
    char c, sb[16];

    if (*pos >= len)
        return unclosed(err, len, open);
    c = t[*pos];
    for (i = 1; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (ops[i].op == c) {
            *op = &ops[i];
            (*pos)++;
            return GAPI_OK;
        }
    }
    if (c == '=' || c == ',' || c == '!' || c == '@' || c == '|')
        return fail(err, *pos, GAPI_EINVAL,
                    "operator '%c' is reserved for future extensions (RFC 6570 section 2.2)", c);
    if (c == '}')
        return fail(err, *pos, GAPI_EINVAL, "empty expression");
    if (!IS(c, C_VARCHAR) && c != '%')
        return fail(err, *pos, GAPI_EINVAL, "expected an operator or a variable name, found %s",
                    show((unsigned char)c, sb));
    *op = &ops[0];
    return GAPI_OK;
}

/* One varspec at *pos; on success *pos is at the ',' or '}' after it. */
static int parse_varspec(const char *t, size_t len, size_t open, size_t *pos, gapi__ut_varspec *vs,
                         gapi__ut_error *err)
{
    size_t p = *pos, start = *pos, digits;
    int need = 1; /* a varchar must come next */
    unsigned v;
    char sb[16];

    for (;;) {
        if (p >= len)
            return unclosed(err, len, open);
        if (IS(t[p], C_VARCHAR)) {
            p++;
            need = 0;
        } else if (t[p] == '%') {
            if (len - p < 3 || !IS(t[p + 1], C_HEX) || !IS(t[p + 2], C_HEX))
                return fail(err, p, GAPI_EINVAL,
                            "'%%' in a variable name is not followed by two hex digits");
            p += 3;
            need = 0;
        } else if (t[p] == '.' && !need) {
            p++;
            need = 1;
        } else if (need && p == start) {
            return fail(err, p, GAPI_EINVAL, "expected a variable name, found %s",
                        show((unsigned char)t[p], sb));
        } else if (need) {
            return fail(err, p - 1, GAPI_EINVAL,
                        "'.' in variable name '%.*s' is not followed by a name character",
                        (int)(p - start > 40 ? 40 : p - start), t + start);
        } else {
            break;
        }
    }
    memset(vs, 0, sizeof(*vs));
    vs->name = t + start;
    vs->name_len = p - start;
    vs->offset = start;

    if (t[p] == ':') {
        p++;
        if (p >= len)
            return unclosed(err, len, open);
        if (t[p] < '1' || t[p] > '9')
            return fail(err, p, GAPI_EINVAL,
                        t[p] == '0' ? "prefix length may not start with '0'"
                                    : "prefix ':' is not followed by a length from 1 to 9999");
        v = 0;
        for (digits = 0; p < len && t[p] >= '0' && t[p] <= '9'; p++, digits++) {
            if (digits == 4)
                return fail(err, p - 4, GAPI_EINVAL, "prefix length is over 9999");
            v = v * 10 + (unsigned)(t[p] - '0');
        }
        vs->prefix = v;
        if (p < len && t[p] == '*')
            return fail(err, p, GAPI_EINVAL,
                        "variable '%.*s' has both a prefix and an explode modifier",
                        (int)(vs->name_len > 40 ? 40 : vs->name_len), vs->name);
    } else if (t[p] == '*') {
        vs->explode = 1;
        p++;
    }
    if (p >= len)
        return unclosed(err, len, open);
    if (t[p] != ',' && t[p] != '}')
        return fail(err, p, GAPI_EINVAL, "unexpected %s after variable '%.*s'",
                    show((unsigned char)t[p], sb), (int)(vs->name_len > 40 ? 40 : vs->name_len),
                    vs->name);
    *pos = p;
    return GAPI_OK;
}

/* ------------------------------------------------------------ expansion */

typedef struct expand_ctx {
    gapi__buf *out;
    gapi__ut_lookup lookup;
    void *ud;
    int rc; /* sticky GAPI_ENOMEM from put/enc */
} expand_ctx;

static void put(expand_ctx *x, const char *s, size_t n)
{
    if (!x->rc && gapi__buf_append(x->out, s, n) != GAPI_OK)
        x->rc = GAPI_ENOMEM;
}

static void put_c(expand_ctx *x, char c)
{
    put(x, &c, 1);
}

static void enc(expand_ctx *x, const char *s, size_t n, int reserved)
{
    if (!x->rc && gapi__pct_encode(x->out, s, n, reserved) != GAPI_OK)
        x->rc = GAPI_ENOMEM;
}

/* Bytes of s[0..len) that hold its first `chars` characters (UTF-8 lead
 * bytes start characters; continuation bytes never do). */
static size_t prefix_bytes(const char *s, size_t len, unsigned chars)
{
    size_t i;
    unsigned n = 0;

    for (i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (n == chars)
                return i;
            n++;
        }
    }
    return len;
}

/* "name=value", "name" or "name=" (named operators), or "value". */
static void named_value(expand_ctx *x, const op_def *op, const char *name, size_t name_len,
                        int encode_name, const gapi__ut_str *v)
{
    if (encode_name)
        enc(x, name, name_len, op->reserved);
    else
        put(x, name, name_len);
    if (v->len == 0) {
        if (op->ifemp_eq)
            put_c(x, '=');
        return;
    }
    put_c(x, '=');
    enc(x, v->s, v->len, op->reserved);
}

/* Checks a lookup's value; returns how many items (LIST) or pairs (ASSOC) are
 * defined, 1 for a STRING, 0 for undefined, or -1 when it is malformed
 * (*why set). */
static long long defined_count(const gapi__ut_value *v, const char **why)
{
    size_t i;
    long long n = 0;

    switch (v->type) {
    case GAPI__UT_UNDEF:
        return 0;
    case GAPI__UT_STRING:
        if (!v->str.s && v->str.len) {
            *why = "a NULL string with a non-zero length";
            return -1;
        }
        return 1;
    case GAPI__UT_LIST:
        if (!v->items && v->n) {
            *why = "a list with NULL items";
            return -1;
        }
        for (i = 0; i < v->n; i++)
            n += v->items[i].s != NULL;
        return n;
    case GAPI__UT_ASSOC:
        if ((!v->items && v->n) || v->n > ((size_t)-1) / (2 * sizeof(gapi__ut_str))) {
            *why = "an associative array with NULL items";
            return -1;
        }
        for (i = 0; i < v->n; i++) {
            if (!v->items[2 * i].s) {
                *why = "an associative array with a NULL name";
                return -1;
            }
            n += v->items[2 * i + 1].s != NULL;
        }
        return n;
    }
    *why = "an unknown value type";
    return -1;
}

static int expand_varspec(expand_ctx *x, const op_def *op, const gapi__ut_varspec *vs, int *first,
                          gapi__ut_error *err)
{
    gapi__ut_value v;
    gapi__ut_str s;
    const char *why = "";
    int nl = (int)(vs->name_len > 40 ? 40 : vs->name_len);
    int rc, one = 1;
    long long ndef;
    size_t i;

    memset(&v, 0, sizeof(v));
    rc = x->lookup(vs->name, vs->name_len, &v, x->ud);
    if (rc) {
        rc = rc < 0 ? rc : GAPI_EINVAL;
        return fail(err, vs->offset, rc, "lookup of variable '%.*s' failed: %s", nl, vs->name,
                    gapi_strerror(rc));
    }
    ndef = defined_count(&v, &why);
    if (ndef < 0)
        return fail(err, vs->offset, GAPI_EINVAL, "lookup of variable '%.*s' returned %s", nl,
                    vs->name, why);
    if (ndef == 0)
        return GAPI_OK;
    if (vs->prefix && v.type != GAPI__UT_STRING)
        return fail(err, vs->offset, GAPI_EINVAL,
                    "prefix modifier ':%u' applied to variable '%.*s', which is %s", vs->prefix, nl,
                    vs->name, v.type == GAPI__UT_LIST ? "a list" : "an associative array");

    if (*first) {
        if (op->first)
            put_c(x, op->first);
        *first = 0;
    } else {
        put_c(x, op->sep);
    }

    if (v.type == GAPI__UT_STRING) {
        s.s = v.str.s ? v.str.s : "";
        s.len = vs->prefix ? prefix_bytes(s.s, v.str.len, vs->prefix) : v.str.len;
        if (op->named)
            named_value(x, op, vs->name, vs->name_len, 0, &s);
        else
            enc(x, s.s, s.len, op->reserved);
    } else if (!vs->explode) {
        /* One value: members (or names and values) joined by ",". */
        if (op->named) {
            put(x, vs->name, vs->name_len);
            put_c(x, '=');
        }
        for (i = 0; i < v.n; i++) {
            const gapi__ut_str *m = v.type == GAPI__UT_LIST ? &v.items[i] : &v.items[2 * i + 1];
            if (!m->s)
                continue;
            if (!one)
                put_c(x, ',');
            one = 0;
            if (v.type == GAPI__UT_ASSOC) {
                enc(x, v.items[2 * i].s, v.items[2 * i].len, op->reserved);
                put_c(x, ',');
            }
            enc(x, m->s, m->len, op->reserved);
        }
    } else {
        /* Exploded: each member is its own value, separated by op->sep. */
        for (i = 0; i < v.n; i++) {
            const gapi__ut_str *m = v.type == GAPI__UT_LIST ? &v.items[i] : &v.items[2 * i + 1];
            if (!m->s)
                continue;
            if (!one)
                put_c(x, op->sep);
            one = 0;
            if (v.type == GAPI__UT_LIST) {
                if (op->named)
                    named_value(x, op, vs->name, vs->name_len, 0, m);
                else
                    enc(x, m->s, m->len, op->reserved);
            } else if (op->named) {
                named_value(x, op, v.items[2 * i].s, v.items[2 * i].len, 1, m);
            } else {
                enc(x, v.items[2 * i].s, v.items[2 * i].len, op->reserved);
                put_c(x, '=');
                enc(x, m->s, m->len, op->reserved);
            }
        }
    }
    if (x->rc)
        return fail(err, vs->offset, x->rc, "out of memory");
    return GAPI_OK;
}

/* The one walk over a template. x == NULL: check only. */
static int walk(const char *t, size_t len, gapi__ut_error *err, expand_ctx *x, gapi__ut_visit visit,
                void *ud)
{
    size_t pos = 0, run, open, k;
    const op_def *op = &ops[0];
    gapi__ut_varspec vs;
    uint32_t cp;
    char sb[16];
    int rc, first;

    while (pos < len) {
        unsigned char c = (unsigned char)t[pos];

        if (IS(c, C_LIT)) {
            for (run = pos + 1; run < len && IS(t[run], C_LIT); run++)
                ;
            if (x)
                put(x, t + pos, run - pos);
            pos = run;
        } else if (c == '{') {
            open = pos++;
            rc = parse_op(t, len, open, &pos, &op, err);
            if (rc)
                return rc;
            first = 1;
            for (;;) {
                rc = parse_varspec(t, len, open, &pos, &vs, err);
                if (rc)
                    return rc;
                vs.op = op->op;
                if (visit && (rc = visit(&vs, ud)) != 0)
                    return fail(err, vs.offset, rc, "stopped by the visitor at variable '%.*s'",
                                (int)(vs.name_len > 40 ? 40 : vs.name_len), vs.name);
                if (x && (rc = expand_varspec(x, op, &vs, &first, err)) != 0)
                    return rc;
                if (t[pos++] == '}')
                    break;
            }
        } else if (c == '}') {
            return fail(err, pos, GAPI_EINVAL, "'}' outside an expression");
        } else if (c == '%') {
            if (len - pos < 3 || !IS(t[pos + 1], C_HEX) || !IS(t[pos + 2], C_HEX))
                return fail(err, pos, GAPI_EINVAL, "'%%' is not followed by two hex digits");
            if (x)
                put(x, t + pos, 3);
            pos += 3;
        } else if (c < 0x80) {
            return fail(err, pos, GAPI_EINVAL, "%s is not allowed in a template", show(c, sb));
        } else {
            k = utf8_decode((const unsigned char *)t + pos, len - pos, &cp);
            if (!k)
                return fail(err, pos, GAPI_EINVAL, "invalid UTF-8 in the template");
            if (!ucs_allowed(cp))
                return fail(err, pos, GAPI_EINVAL, "character U+%04X is not allowed in a template",
                            (unsigned)cp);
            if (x)
                enc(x, t + pos, k, 0);
            pos += k;
        }
        if (x && x->rc)
            return fail(err, pos, x->rc, "out of memory");
    }
    return GAPI_OK;
}

int gapi__uritemplate_check(const char *tmpl, size_t tmpl_len, gapi__ut_error *err,
                            gapi__ut_visit visit, void *ud)
{
    int rc;

    if (!tmpl && tmpl_len)
        return fail(err, 0, GAPI_EINVAL, "template is NULL");
    /* A visitor sees the varspecs of valid templates only. */
    rc = walk(tmpl, tmpl_len, err, NULL, NULL, NULL);
    if (rc || !visit)
        return rc;
    return walk(tmpl, tmpl_len, err, NULL, visit, ud);
}

int gapi__uritemplate_expand(gapi__buf *out, const char *tmpl, size_t tmpl_len, gapi__ut_error *err,
                             gapi__ut_lookup lookup, void *ud)
{
    expand_ctx x;
    size_t start;
    int rc;

    if (!out || !lookup || (!tmpl && tmpl_len))
        return fail(err, 0, GAPI_EINVAL, "%s is NULL",
                    !out      ? "out"
                    : !lookup ? "lookup"
                              : "template");
    rc = walk(tmpl, tmpl_len, err, NULL, NULL, NULL);
    if (rc)
        return rc;
    start = out->len;
    x.out = out;
    x.lookup = lookup;
    x.ud = ud;
    x.rc = 0;
    rc = walk(tmpl, tmpl_len, err, &x, NULL, NULL);
    /* Hand back a C string even when the expansion is empty. */
    if (!rc && gapi__buf_reserve(out, 0) != GAPI_OK)
        rc = fail(err, tmpl_len, GAPI_ENOMEM, "out of memory");
    if (!rc)
        out->data[out->len] = '\0';
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}
