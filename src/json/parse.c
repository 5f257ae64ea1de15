/*
 * Strict JSON parser building a json-c tree (see parse.h for what is
 * accepted and how values map to json-c).
 *
 * Recursive descent over [start, end) with the cursor in struct parser.
 * Invariants:
 *  - no byte at or past end is read: the input is not NUL-terminated;
 *  - every json_object made here is owned by its parent, held on the vals
 *    stack (elements of arrays still being parsed), or put before an error
 *    is returned, so an error anywhere releases everything;
 *  - scratch is used as a stack: each object key stays in it,
 *    NUL-terminated, while its value is parsed; escaped string values and
 *    long number texts are built past the keys and dropped right after use;
 *  - the first error is the one reported: every function returns at once.
 *
 * Speed comes from what is not done: no locale switch per call, no function
 * call per byte, strings scanned eight bytes at a time, unescaped string
 * values handed to json-c straight from the input (json-c makes the only
 * copy), integers converted inline, arrays allocated at their final size.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strtod_l (glibc; BSD and macOS declare it in xlocale.h) */
#endif
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "gapi.h"
#include <openssl/crypto.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "json/parse.h"

struct parser {
    const char *p; /* cursor */
    const char *start, *end;
    unsigned depth, max_depth;
    gapi__buf scratch;
    struct json_object **vals; /* elements of the arrays being parsed */
    size_t nvals, capvals;
    int saw_nul; /* a \u0000 was decoded since it was last cleared */
    int secret;  /* GAPI__JSON_SECRET: no decoded text left in freed memory */
    gapi__json_error *err;
};

static int parse_value(struct parser *ps, struct json_object **out);

/* ------------------------------------------------------------ errors */

/* Line and column of at; lines end at LF (a CR before it is part of the
 * line, which is how editors count CRLF files). */
static void locate(const char *start, const char *at, gapi__json_error *err)
{
    const char *ls = start, *q;
    size_t line = 1, col;

    while ((q = memchr(ls, '\n', (size_t)(at - ls))) != NULL) {
        line++;
        ls = q + 1;
    }
    col = (size_t)(at - ls) + 1;
    err->line = line > UINT_MAX ? UINT_MAX : (unsigned)line;
    err->column = col > UINT_MAX ? UINT_MAX : (unsigned)col;
}

__attribute__((format(printf, 3, 4))) static int fail_at(struct parser *ps, const char *at,
                                                         const char *fmt, ...)
{
    va_list ap;

    if (!ps->err)
        return GAPI_EJSON;
    ps->err->offset = (size_t)(at - ps->start);
    locate(ps->start, at, ps->err);
    va_start(ap, fmt);
    vsnprintf(ps->err->message, sizeof(ps->err->message), fmt, ap);
    va_end(ap);
    return GAPI_EJSON;
}

static int fail_nomem(struct parser *ps)
{
    fail_at(ps, ps->p, "out of memory");
    return GAPI_ENOMEM;
}

/* "'x'", "byte 0xNN" or "end of input", for messages. */
static const char *describe(const char *at, const char *end, char *buf, size_t size)
{
    unsigned char c;

    if (at >= end)
        return "end of input";
    c = (unsigned char)*at;
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, size, "'%c'", c);
    else
        snprintf(buf, size, "byte 0x%02X", c);
    return buf;
}

static int fail_expected(struct parser *ps, const char *at, const char *what)
{
    char b[16];
    return fail_at(ps, at, "expected %s, found %s", what, describe(at, ps->end, b, sizeof(b)));
}

static int starts_with(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(end - p) >= n && memcmp(p, word, n) == 0;
}

/* A value was expected at p and none starts there: name the usual mistakes
 * (JavaScript literals, JSON5 habits) rather than only the byte. */
static int fail_value(struct parser *ps, const char *p)
{
    const char *end = ps->end;

    if (p == ps->start && starts_with(p, end, "\xEF\xBB\xBF"))
        return fail_at(ps, p, "byte order mark is not allowed");
    if (p < end) {
        switch (*p) {
        case '\'':
            return fail_at(ps, p, "single-quoted strings are not allowed");
        case '/':
            return fail_at(ps, p, "comments are not allowed");
        case '+':
            return fail_at(ps, p, "numbers must not start with '+'");
        case '.':
            return fail_at(ps, p, "numbers must start with a digit");
        default:
            break;
        }
        if (starts_with(p, end, "NaN") || starts_with(p, end, "Infinity"))
            return fail_at(ps, p, "NaN and Infinity are not allowed");
    }
    return fail_expected(ps, p, "a value");
}

/* ------------------------------------------------------------ helpers */

/* Grow b for n more bytes without realloc, which could leave a copy of
 * the decoded text (a private key, a token) in the block it gives back. */
static int scratch_grow_wiped(gapi__buf *b, size_t n)
{
    gapi__buf bigger = GAPI__BUF_INIT;

    if (n < b->cap - b->len)
        return GAPI_OK;
    if (gapi__buf_reserve(&bigger, b->len + n) != GAPI_OK)
        return GAPI_ENOMEM;
    if (b->data) {
        memcpy(bigger.data, b->data, b->len + 1);
        OPENSSL_cleanse(b->data, b->cap);
    }
    bigger.len = b->len;
    gapi__buf_free(b);
    *b = bigger;
    return GAPI_OK;
}

/* Append to scratch. Inline fast path: keys go through here one by one. */
static inline int scratch_put(struct parser *ps, const char *p, size_t n)
{
    gapi__buf *b = &ps->scratch;

    if (n < b->cap - b->len) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0'; /* gapi__buf's invariant */
        return 0;
    }
    if (ps->secret && scratch_grow_wiped(b, n) != GAPI_OK)
        return fail_nomem(ps);
    return gapi__buf_append(b, p, n) == GAPI_OK ? 0 : fail_nomem(ps);
}

static inline int is_digit(char c)
{
    return (unsigned char)(c - '0') < 10;
}

/* JSON whitespace is exactly space, tab, CR and LF. Any byte above ' ' ends
 * the run at once, which is the common case between tokens. */
static inline const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= ' ' &&
           (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* ------------------------------------------------------------ strings */

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* A byte that ends a run of plain string bytes: '"', '\\', a control
 * character (< 0x20) or a non-ASCII byte (checked as UTF-8). */
static inline int is_stop(char c)
{
    unsigned char u = (unsigned char)c;
    return (unsigned char)(u - 0x20) > 0x5f || u == '"' || u == '\\';
}

/* First stop byte in [p, end), or end. Eight bytes at a time: for each byte
 * b, b - 0x20 sets its high bit when b < 0x20 (or b >= 0xA0), (b ^ c) - 1
 * when b == c, and b itself when b >= 0x80. A borrow only propagates upward
 * from a byte that is itself a stop byte, so the lowest flagged byte is the
 * first stop byte and "no flag" means "no stop byte". */
static const char *scan_plain(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t x, m;
        memcpy(&x, p, 8);
        m = ((x - ONES * 0x20) | ((x ^ (ONES * '"')) - ONES) | ((x ^ (ONES * '\\')) - ONES) | x) &
            HIGHS;
        if (m) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return p + (__builtin_ctzll(m) >> 3);
#else
            break;
#endif
        }
        p += 8;
    }
    while (p < end && !is_stop(*p))
        p++;
    return p;
}

/* Length of the well-formed UTF-8 sequence at p (whose lead byte is
 * >= 0x80), or 0 after recording the error. Well-formed means the shortest
 * form of a Unicode scalar value (Unicode table 3-7): no overlong forms, no
 * surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(struct parser *ps, const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t avail = (size_t)(ps->end - p), n, i;
    unsigned c = u[0];
    const char *why;

    if (c < 0xC0)
        why = "stray continuation byte";
    else if (c < 0xC2)
        why = "overlong encoding";
    else if (c > 0xF4)
        why = "byte that never appears in UTF-8";
    else
        why = NULL;
    if (why) {
        fail_at(ps, p, "invalid UTF-8 in string: %s 0x%02X", why, c);
        return 0;
    }
    n = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    for (i = 1; i < n; i++) {
        if (i >= avail || u[i] < 0x80 || u[i] > 0xBF) {
            fail_at(ps, p, "invalid UTF-8 in string: truncated sequence");
            return 0;
        }
    }
    /* Only the second byte can still be out of range for these leads. */
    if ((c == 0xE0 && u[1] < 0xA0) || (c == 0xF0 && u[1] < 0x90))
        why = "overlong encoding";
    else if (c == 0xED && u[1] > 0x9F)
        why = "encoded surrogate (U+D800..U+DFFF)";
    else if (c == 0xF4 && u[1] > 0x8F)
        why = "code point above U+10FFFF";
    if (why) {
        fail_at(ps, p, "invalid UTF-8 in string: %s", why);
        return 0;
    }
    return n;
}

/* Four hex digits at p into *v; -1 if there are not four. */
static int hex4(const char *p, const char *end, unsigned *v)
{
    unsigned r = 0, c;
    int i;

    if (end - p < 4)
        return -1;
    for (i = 0; i < 4; i++) {
        c = (unsigned char)p[i];
        if (c - '0' < 10)
            c -= '0';
        else if ((c | 0x20) - 'a' < 6)
            c = (c | 0x20) - 'a' + 10;
        else
            return -1;
        r = r << 4 | c;
    }
    *v = r;
    return 0;
}

static size_t utf8_put(unsigned cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* \uXXXX at *pp (the backslash), with its low surrogate if it is a high
 * one; appends the UTF-8 form to scratch and moves *pp past it. */
static int decode_u(struct parser *ps, const char **pp)
{
    const char *esc = *pp, *p = esc + 6, *end = ps->end;
    unsigned cp, lo;
    char o[4];

    if (hex4(esc + 2, end, &cp) != 0)
        return fail_at(ps, esc, "invalid \\u escape: expected four hex digits");
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail_at(ps, esc, "unpaired low surrogate \\u%04X in string", cp);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - p < 2 || p[0] != '\\' || p[1] != 'u')
            return fail_at(ps, esc, "unpaired high surrogate \\u%04X in string", cp);
        if (hex4(p + 2, end, &lo) != 0)
            return fail_at(ps, p, "invalid \\u escape: expected four hex digits");
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fail_at(ps, esc, "unpaired high surrogate \\u%04X in string", cp);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
    }
    ps->saw_nul |= cp == 0;
    *pp = p;
    return scratch_put(ps, o, utf8_put(cp, o));
}

/* The escape at *pp (the backslash): append its bytes to scratch and move
 * *pp past it. */
static int decode_escape(struct parser *ps, const char **pp)
{
    const char *p = *pp;
    char c, b[16];

    if (ps->end - p < 2)
        return fail_at(ps, ps->end, "unterminated string: input ends inside an escape");
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
        c = p[1];
        break;
    case 'b':
        c = '\b';
        break;
    case 'f':
        c = '\f';
        break;
    case 'n':
        c = '\n';
        break;
    case 'r':
        c = '\r';
        break;
    case 't':
        c = '\t';
        break;
    case 'u':
        return decode_u(ps, pp);
    default:
        return fail_at(ps, p, "invalid escape: backslash followed by %s",
                       describe(p + 1, ps->end, b, sizeof(b)));
    }
    *pp = p + 2;
    return scratch_put(ps, &c, 1);
}

/* The string whose opening quote is at ps->p; ps->p ends past the closing
 * quote. Without escapes and unless copy is set, the text is left in the
 * input ([*sp, *sp + *lenp)); otherwise it is appended to scratch and *sp
 * points there (valid until scratch grows). */
static int scan_string(struct parser *ps, int copy, const char **sp, size_t *lenp)
{
    const char *open = ps->p, *end = ps->end, *p = open + 1, *run = p;
    size_t mark = ps->scratch.len, n;
    unsigned char c;
    int rc;

    for (;;) {
        p = scan_plain(p, end);
        if (p == end)
            return fail_at(ps, end, "unterminated string (opened at offset %zu)",
                           (size_t)(open - ps->start));
        c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c >= 0x80) {
            if ((n = utf8_seq(ps, p)) == 0)
                return GAPI_EJSON;
            p += n;
            continue;
        }
        if (c != '\\')
            return fail_at(ps, p, "unescaped control character 0x%02X in string", c);
        if ((rc = scratch_put(ps, run, (size_t)(p - run))) != 0 ||
            (rc = decode_escape(ps, &p)) != 0)
            return rc;
        run = p;
        copy = 1;
    }
    ps->p = p + 1;
    if (!copy) {
        *sp = run;
        *lenp = (size_t)(p - run);
        return 0;
    }
    if ((rc = scratch_put(ps, run, (size_t)(p - run))) != 0)
        return rc;
    *sp = ps->scratch.data + mark;
    *lenp = ps->scratch.len - mark;
    return 0;
}

static int parse_string(struct parser *ps, struct json_object **out)
{
    size_t mark = ps->scratch.len, n;
    const char *s;
    int rc = scan_string(ps, 0, &s, &n);

    if (rc == 0) {
        if (n > INT_MAX)
            rc = fail_at(ps, ps->p, "string longer than %d bytes", INT_MAX);
        else if ((*out = json_object_new_string_len(s, (int)n)) == NULL)
            rc = fail_nomem(ps);
    }
    ps->scratch.len = mark;
    return rc;
}

/* An object key, left NUL-terminated in scratch (from the current length)
 * so that the value parsed next, which uses scratch past it, leaves it be.
 * *lenp is its length without the NUL. */
static int parse_key(struct parser *ps, size_t *lenp)
{
    const char *open = ps->p, *s;
    int rc;

    ps->saw_nul = 0;
    if ((rc = scan_string(ps, 1, &s, lenp)) != 0)
        return rc;
    if (ps->saw_nul)
        return fail_at(ps, open, "object key contains \\u0000 (json-c keys are C strings)");
    return scratch_put(ps, "", 1);
}

/* ------------------------------------------------------------ numbers */

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_init(void)
{
    /* glibc returns its static C locale here without allocating. */
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* A double from the number text [text, text + n), kept as its serialization
 * (json_object_new_double_s needs it NUL-terminated, strtod_l too). */
static int make_double(struct parser *ps, const char *text, size_t n, struct json_object **out)
{
    char small[64], *buf = small;
    size_t mark = ps->scratch.len;
    int rc = 0;

    pthread_once(&c_locale_once, c_locale_init);
    if (c_locale == (locale_t)0)
        return fail_nomem(ps);
    if (n < sizeof(small)) {
        memcpy(small, text, n);
        small[n] = '\0';
    } else {
        if ((rc = scratch_put(ps, text, n)) != 0 || (rc = scratch_put(ps, "", 1)) != 0)
            return rc;
        buf = ps->scratch.data + mark;
    }
    /* Out-of-range values become +-HUGE_VAL or 0 (ERANGE), as in json-c. */
    *out = json_object_new_double_s(strtod_l(buf, NULL, c_locale), buf);
    if (*out == NULL)
        rc = fail_nomem(ps);
    ps->scratch.len = mark;
    return rc;
}

/* The value of n decimal digits, or 0 if it is above UINT64_MAX. */
static int digits_u64(const char *d, size_t n, uint64_t *v)
{
    uint64_t r = 0;
    unsigned c;

    if (n > 20)
        return 0;
    while (n--) {
        c = (unsigned)(*d++ - '0');
        if (r > (UINT64_MAX - c) / 10)
            return 0;
        r = r * 10 + c;
    }
    *v = r;
    return 1;
}

/* Skip one or more digits at p; NULL if there is none. */
static const char *digits(const char *p, const char *end)
{
    if (p == end || !is_digit(*p))
        return NULL;
    while (++p < end && is_digit(*p))
        ;
    return p;
}

static int parse_number(struct parser *ps, struct json_object **out)
{
    const char *start = ps->p, *end = ps->end, *p = start, *d, *q;
    int neg = *p == '-', frac = 0;
    uint64_t v = 0;

    p += neg;
    d = p;
    if (p == end || !is_digit(*p))
        return fail_expected(ps, p, "a digit after '-'");
    if (*p == '0') {
        if (++p < end && is_digit(*p))
            return fail_at(ps, p, "leading zeros are not allowed in numbers");
    } else {
        /* Wraps past 19 digits; digits_u64 redoes those. */
        for (; p < end && is_digit(*p); p++)
            v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p < end && *p == '.') {
        if ((q = digits(p + 1, end)) == NULL)
            return fail_expected(ps, p + 1, "a digit after the decimal point");
        p = q;
        frac = 1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        q = p + 1;
        q += q < end && (*q == '+' || *q == '-');
        if ((p = digits(q, end)) == NULL)
            return fail_expected(ps, q, "a digit in the exponent");
        frac = 1;
    }
    ps->p = p;
    if (!frac && (p - d <= 19 || digits_u64(d, (size_t)(p - d), &v))) {
        if (!neg && v <= INT64_MAX)
            *out = json_object_new_int64((int64_t)v);
        else if (!neg)
            *out = json_object_new_uint64(v);
        else if (v <= (uint64_t)INT64_MAX + 1)
            *out = json_object_new_int64(v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v);
        else
            return make_double(ps, start, (size_t)(p - start), out);
        return *out ? 0 : fail_nomem(ps);
    }
    return make_double(ps, start, (size_t)(p - start), out);
}

/* ------------------------------------------------------------ literals */

static int parse_literal(struct parser *ps, struct json_object **out)
{
    const char *p = ps->p, *end = ps->end;

    if (starts_with(p, end, "true") || starts_with(p, end, "false")) {
        ps->p += *p == 't' ? 4 : 5;
        *out = json_object_new_boolean(*p == 't');
        return *out ? 0 : fail_nomem(ps);
    }
    if (starts_with(p, end, "null")) {
        ps->p += 4;
        *out = NULL; /* json-c's null */
        return 0;
    }
    return fail_at(ps, p, "invalid literal: expected true, false or null");
}

/* ------------------------------------------------------------ containers */

static int enter(struct parser *ps)
{
    if (++ps->depth > ps->max_depth)
        return fail_at(ps, ps->p, "nesting deeper than %u", ps->max_depth);
    return 0;
}

static int push_val(struct parser *ps, struct json_object *v)
{
    struct json_object **nv;
    size_t cap;

    if (ps->nvals == ps->capvals) {
        cap = ps->capvals ? ps->capvals * 2 : 64;
        if (cap > SIZE_MAX / sizeof(*nv) ||
            (nv = gapi__realloc(ps->vals, cap * sizeof(*nv))) == NULL) {
            json_object_put(v);
            return fail_nomem(ps);
        }
        ps->vals = nv;
        ps->capvals = cap;
    }
    ps->vals[ps->nvals++] = v;
    return 0;
}

/* Move vals[base..] into a new array. Sized n + 1 because json-c grows an
 * array when its last free slot is filled. */
static int make_array(struct parser *ps, size_t base, struct json_object **out)
{
    size_t n = ps->nvals - base, i;
    struct json_object *arr;

    if (n >= INT_MAX)
        return fail_at(ps, ps->p, "array with more than %d elements", INT_MAX - 1);
    if ((arr = json_object_new_array_ext((int)n + 1)) == NULL)
        return fail_nomem(ps);
    for (i = 0; i < n; i++) {
        if (json_object_array_add(arr, ps->vals[base + i]) != 0) {
            ps->nvals = base + i; /* the rest is put by the caller */
            json_object_put(arr);
            return fail_nomem(ps);
        }
    }
    ps->nvals = base;
    *out = arr;
    return 0;
}

static int parse_array(struct parser *ps, struct json_object **out)
{
    const char *p, *end = ps->end;
    size_t base = ps->nvals;
    struct json_object *v;
    int rc;

    if ((rc = enter(ps)) != 0)
        return rc;
    p = ps->p = skip_ws(ps->p + 1, end);
    if (p < end && *p == ']') {
        ps->p = p + 1;
    } else {
        for (;;) {
            if ((rc = parse_value(ps, &v)) != 0 || (rc = push_val(ps, v)) != 0)
                goto fail;
            p = skip_ws(ps->p, end);
            if (p < end && *p == ']') {
                ps->p = p + 1;
                break;
            }
            if (p == end || *p != ',') {
                rc = fail_expected(ps, p, "',' or ']' after array element");
                goto fail;
            }
            p = ps->p = skip_ws(p + 1, end);
            if (p < end && *p == ']') {
                rc = fail_at(ps, p, "trailing comma before ']'");
                goto fail;
            }
        }
    }
    if ((rc = make_array(ps, base, out)) != 0)
        goto fail;
    ps->depth--;
    return 0;
fail:
    while (ps->nvals > base)
        json_object_put(ps->vals[--ps->nvals]);
    return rc;
}

/* Which of the 256 bits of an object's key filter stands for key k of n
 * bytes. Equal keys always get the same bit; the hash only has to spread
 * the keys of one object. */
static inline unsigned key_bit(const char *k, size_t n)
{
    uint64_t a = 0, b = 0;
    uint32_t a4, b4;

    /* First and last bytes, in at most two loads each (they may overlap). */
    if (n >= 8) {
        memcpy(&a, k, 8);
        memcpy(&b, k + n - 8, 8);
    } else if (n >= 4) {
        memcpy(&a4, k, 4);
        memcpy(&b4, k + n - 4, 4);
        a = a4;
        b = b4;
    } else if (n > 0) {
        a = (uint64_t)(unsigned char)k[0] << 16 | (uint64_t)(unsigned char)k[n / 2] << 8 |
            (unsigned char)k[n - 1];
    }
    a = (a * 0x9E3779B97F4A7C15ULL) ^ (b * 0xC2B2AE3D27D4EB4FULL) ^ n;
    return (unsigned)((a * 0x9E3779B97F4A7C15ULL) >> 56);
}

/* One "key": value member at ps->p (the key's quote) added to obj. seen is
 * the object's key filter: a key whose bit is clear cannot be a duplicate,
 * so json-c is told it is new and skips its lookup (which compares strings
 * all along the probe sequence). A set bit may be a true duplicate: then
 * json-c looks up and replaces, as it must. */
static int parse_member(struct parser *ps, struct json_object *obj, uint64_t seen[4])
{
    const char *p, *end = ps->end, *key;
    size_t mark = ps->scratch.len, n;
    struct json_object *v;
    unsigned bit, flags = 0;
    int rc;

    if ((rc = parse_key(ps, &n)) != 0)
        return rc;
    bit = key_bit(ps->scratch.data + mark, n);
    if (!(seen[bit >> 6] >> (bit & 63) & 1)) {
        seen[bit >> 6] |= 1ULL << (bit & 63);
        flags = JSON_C_OBJECT_ADD_KEY_IS_NEW;
    }
    p = skip_ws(ps->p, end);
    if (p == end || *p != ':')
        return fail_expected(ps, p, "':' after object key");
    ps->p = skip_ws(p + 1, end);
    if ((rc = parse_value(ps, &v)) != 0)
        return rc;
    /* scratch may have moved while the value was parsed: index it again.
     * json-c copies the key. */
    key = ps->scratch.data + mark;
    if (json_object_object_add_ex(obj, key, v, flags) != 0) {
        json_object_put(v);
        return fail_nomem(ps);
    }
    ps->scratch.len = mark;
    return 0;
}

static int parse_object(struct parser *ps, struct json_object **out)
{
    const char *p, *end = ps->end;
    size_t mark = ps->scratch.len;
    struct json_object *obj;
    uint64_t seen[4] = {0, 0, 0, 0};
    int rc;

    if ((rc = enter(ps)) != 0)
        return rc;
    if ((obj = json_object_new_object()) == NULL)
        return fail_nomem(ps);
    p = ps->p = skip_ws(ps->p + 1, end);
    if (p < end && *p == '}') {
        ps->p = p + 1;
        goto done;
    }
    for (;;) {
        if (p == end || *p != '"') {
            rc = fail_expected(ps, p,
                               json_object_object_length(obj) ? "'\"' (an object key)"
                                                              : "'\"' (an object key) or '}'");
            goto fail;
        }
        if ((rc = parse_member(ps, obj, seen)) != 0)
            goto fail;
        p = skip_ws(ps->p, end);
        if (p < end && *p == '}') {
            ps->p = p + 1;
            break;
        }
        if (p == end || *p != ',') {
            rc = fail_expected(ps, p, "',' or '}' after object member");
            goto fail;
        }
        p = ps->p = skip_ws(p + 1, end);
        if (p < end && *p == '}') {
            rc = fail_at(ps, p, "trailing comma before '}'");
            goto fail;
        }
    }
done:
    ps->depth--;
    *out = obj;
    return 0;
fail:
    ps->scratch.len = mark;
    json_object_put(obj);
    return rc;
}

/* ------------------------------------------------------------ values */

static int parse_value(struct parser *ps, struct json_object **out)
{
    const char *p = ps->p;

    if (p == ps->end)
        return fail_value(ps, p);
    switch (*p) {
    case '"':
        return parse_string(ps, out);
    case '{':
        return parse_object(ps, out);
    case '[':
        return parse_array(ps, out);
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        return parse_number(ps, out);
    case 't':
    case 'f':
    case 'n':
        return parse_literal(ps, out);
    default:
        return fail_value(ps, p);
    }
}

int gapi__json_parse(const char *s, size_t len, unsigned max_depth, struct json_object **out,
                     gapi__json_error *err)
{
    return gapi__json_parse_ex(s, len, max_depth, 0, out, err);
}

int gapi__json_parse_ex(const char *s, size_t len, unsigned max_depth, unsigned flags,
                        struct json_object **out, gapi__json_error *err)
{
    struct parser ps;
    struct json_object *v = NULL;
    char b[16];
    int rc;

    if (!out || (!s && len))
        return GAPI_EINVAL;
    memset(&ps, 0, sizeof(ps));
    ps.start = s ? s : "";
    ps.end = ps.start + len;
    ps.max_depth = max_depth ? max_depth : GAPI__JSON_DEFAULT_DEPTH;
    ps.secret = (flags & GAPI__JSON_SECRET) != 0;
    ps.err = err;
    ps.p = skip_ws(ps.start, ps.end);
    if (ps.p == ps.end) {
        rc = fail_at(&ps, ps.p, "no JSON value: input is empty or only whitespace");
    } else if ((rc = parse_value(&ps, &v)) == 0) {
        ps.p = skip_ws(ps.p, ps.end);
        if (ps.p != ps.end) {
            rc = fail_at(&ps, ps.p, "unexpected %s after the JSON value",
                         describe(ps.p, ps.end, b, sizeof(b)));
            json_object_put(v);
        }
    }
    if (ps.secret && ps.scratch.data)
        OPENSSL_cleanse(ps.scratch.data, ps.scratch.cap);
    gapi__buf_free(&ps.scratch);
    gapi__free(ps.vals);
    if (rc == 0)
        *out = v;
    return rc;
}
