/*
 * Parameter values of API calls: type checks and normalization, enum
 * checks, and discovery patterns (Python re syntax) matched through POSIX
 * regular expressions.
 *
 * Patterns. The shared documents use Python-only syntax ("(?:...)", "\S",
 * "\w", lazy "{0,61}?"), so a pattern is translated into an ERE before
 * regcomp. Compiling the long compute patterns costs ~90 us with glibc, so
 * compiled patterns are cached for the life of the process: a fixed table
 * keyed by pattern text under a mutex; regexec runs outside the lock
 * (POSIX regexec is thread-safe; glibc serializes uses of one regex_t
 * internally). Entries are never removed, so a pointer to one stays valid
 * without the lock. The table and regcomp's memory use the C library's
 * allocator, not gapi's hook: the cache outlives any allocator a program
 * (or a test) installs and swaps. Patterns that do not fit the table are
 * compiled for each use.
 */
#include <ctype.h>
#include <pthread.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/alloc.h"
#include "discovery/discovery.h"
#include "call/call.h"

/* ---------------------------------------------------------------- messages */

void gapi__quote_value(char *out, size_t out_size, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0, i;

    if (out_size < 8)
        return;
    for (i = 0; v[i]; i++) {
        unsigned char ch = (unsigned char)v[i];
        int esc = ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\';
        size_t need = esc ? 4 : 1;

        /* Stop early enough to leave room for "..." and the NUL. */
        if (o + need + 4 > out_size || i >= 60) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (esc) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
}

/* ---------------------------------------------------------------- standard parameters */

static const char *const alt_enum[] = {"json", "media", "proto"};
static const char *const xgafv_enum[] = {"1", "2"};

#define STD(n, t, k, e, ec)                                                                        \
    {                                                                                              \
        n, t, NULL, NULL, NULL, NULL, NULL, e, ec, GAPI_PARAM_QUERY, k, 0, 0                       \
    }

/* As the shared documents declare them (sorted by name for bsearch). */
static const gapi_param std_params[] = {
    STD("$.xgafv", "string", GAPI__PARAM_STRING, xgafv_enum, 2),
    STD("access_token", "string", GAPI__PARAM_STRING, NULL, 0),
    STD("alt", "string", GAPI__PARAM_STRING, alt_enum, 3),
    STD("callback", "string", GAPI__PARAM_STRING, NULL, 0),
    STD("fields", "string", GAPI__PARAM_STRING, NULL, 0),
    STD("key", "string", GAPI__PARAM_STRING, NULL, 0),
    STD("oauth_token", "string", GAPI__PARAM_STRING, NULL, 0),
    STD("prettyPrint", "boolean", GAPI__PARAM_BOOLEAN, NULL, 0),
    STD("quotaUser", "string", GAPI__PARAM_STRING, NULL, 0),
    STD("uploadType", "string", GAPI__PARAM_STRING, NULL, 0),
    STD("upload_protocol", "string", GAPI__PARAM_STRING, NULL, 0),
    STD("userIp", "string", GAPI__PARAM_STRING, NULL, 0),
};

#undef STD

static int std_cmp(const void *key, const void *item)
{
    return strcmp((const char *)key, ((const gapi_param *)item)->name);
}

const gapi_param *gapi__standard_param(const char *name)
{
    return bsearch(name, std_params, sizeof(std_params) / sizeof(std_params[0]),
                   sizeof(std_params[0]), std_cmp);
}

/* ---------------------------------------------------------------- values */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Checks and rewrites an integer in place. */
static int check_integer(const char *what, const gapi_param *p, char *v, char *errbuf, size_t n)
{
    const char *fmt = p->format ? p->format : "int64";
    char q[80];
    const char *s = v;
    uint64_t mag = 0, max;
    int neg = 0, overflow = 0;
    char digits[24];
    size_t i, k;

    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (!is_digit(*s))
        goto bad;
    for (; is_digit(*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (mag > (UINT64_MAX - d) / 10)
            overflow = 1;
        else
            mag = mag * 10 + d;
    }
    if (*s)
        goto bad;
    if (strcmp(fmt, "int32") == 0)
        max = neg ? (uint64_t)INT32_MAX + 1 : (uint64_t)INT32_MAX;
    else if (strcmp(fmt, "uint32") == 0)
        max = neg ? 0 : UINT32_MAX;
    else if (strcmp(fmt, "uint64") == 0)
        max = neg ? 0 : UINT64_MAX;
    else
        max = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (overflow || mag > max) {
        gapi__quote_value(q, sizeof(q), v);
        gapi__errbuf_printf(
            errbuf, n, "%s: parameter \"%s\" value \"%s\" is out of range for %s", what, p->name, q,
            strcmp(fmt, "int32") && strcmp(fmt, "uint32") && strcmp(fmt, "uint64") ? "int64" : fmt);
        return GAPI_EINVAL;
    }
    /* Canonical text, as Python's str(int(value)) writes it. */
    k = sizeof(digits);
    digits[--k] = '\0';
    do {
        digits[--k] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag);
    i = 0;
    if (neg && strcmp(digits + k, "0") != 0)
        v[i++] = '-';
    memmove(v + i, digits + k, sizeof(digits) - k);
    return GAPI_OK;
bad:
    gapi__quote_value(q, sizeof(q), v);
    gapi__errbuf_printf(
        errbuf, n,
        "%s: parameter \"%s\" value \"%s\" is not an integer (optional sign, then decimal "
        "digits)",
        what, p->name, q);
    return GAPI_EINVAL;
}

static int is_number(const char *s)
{
    int digits = 0;

    if (*s == '+' || *s == '-')
        s++;
    for (; is_digit(*s); s++)
        digits++;
    if (*s == '.')
        for (s++; is_digit(*s); s++)
            digits++;
    if (!digits)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!is_digit(*s))
            return 0;
        while (is_digit(*s))
            s++;
    }
    return *s == '\0';
}

int gapi__param_check(const char *what, const gapi_param *p, char *value, char *errbuf,
                      size_t errbuf_size)
{
    char q[80];
    uint32_t i;
    int rc;

    switch (p->kind) {
    case GAPI__PARAM_INTEGER:
        if ((rc = check_integer(what, p, value, errbuf, errbuf_size)) != GAPI_OK)
            return rc;
        break;
    case GAPI__PARAM_STRING:
        /* 64-bit integers travel as strings in JSON; as query values they
         * are still decimal integers. */
        if (p->format && (!strcmp(p->format, "int64") || !strcmp(p->format, "uint64")) &&
            (rc = check_integer(what, p, value, errbuf, errbuf_size)) != GAPI_OK)
            return rc;
        break;
    case GAPI__PARAM_NUMBER:
        if (!is_number(value)) {
            gapi__quote_value(q, sizeof(q), value);
            gapi__errbuf_printf(
                errbuf, errbuf_size,
                "%s: parameter \"%s\" value \"%s\" is not a number (decimal text such as "
                "\"-1.5\" or \"2e10\")",
                what, p->name, q);
            return GAPI_EINVAL;
        }
        break;
    case GAPI__PARAM_BOOLEAN:
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
            gapi__quote_value(q, sizeof(q), value);
            gapi__errbuf_printf(
                errbuf, errbuf_size,
                "%s: parameter \"%s\" value \"%s\" is not a boolean (\"true\" or \"false\")", what,
                p->name, q);
            return GAPI_EINVAL;
        }
        break;
    default:
        break;
    }
    if (p->enum_count) {
        char list[160];
        size_t o = 0;

        for (i = 0; i < p->enum_count; i++)
            if (strcmp(value, p->enum_values[i]) == 0)
                return GAPI_OK;
        list[0] = '\0';
        for (i = 0; i < p->enum_count && o < sizeof(list) - 1; i++) {
            int w = snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", p->enum_values[i]);
            if (w < 0 || (size_t)w >= sizeof(list) - o) {
                /* Cut: end with "..." in place of the last characters. */
                memcpy(list + sizeof(list) - 4, "...", 4);
                break;
            }
            o += (size_t)w;
        }
        gapi__quote_value(q, sizeof(q), value);
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "%s: parameter \"%s\" value \"%s\" is not one of: %s", what, p->name, q,
                            list);
        return GAPI_EINVAL;
    }
    return GAPI_OK;
}

/* ---------------------------------------------------------------- patterns */

#define PUTS(s) (rc |= gapi__buf_puts(out, s))
#define PUTC(c) (rc |= gapi__buf_append(out, &(c), 1))

/* Undoes a partial translation and explains what stopped it. */
static int refuse(gapi__buf *out, size_t start, const char *pattern, size_t at, const char *what,
                  char *errbuf, size_t n)
{
    out->len = start;
    if (out->data)
        out->data[start] = '\0';
    gapi__errbuf_printf(errbuf, n, "pattern \"%s\": %s at offset %zu is not supported", pattern,
                        what, at);
    return GAPI_EINVAL;
}

/* A Python quantifier "{m}", "{m,}", "{m,n}" or "{,n}" starting at s[0]
 * == '{'; returns its length (0 when the brace is a literal, as Python
 * reads it) and writes the ERE form into q. */
static size_t brace_quantifier(const char *s, char *q, size_t qsize)
{
    const char *p = s + 1;
    const char *m0 = p, *m1, *n0 = NULL, *n1 = NULL;

    while (is_digit(*p))
        p++;
    m1 = p;
    if (*p == ',') {
        n0 = ++p;
        while (is_digit(*p))
            p++;
        n1 = p;
    }
    if (*p != '}' || (m0 == m1 && (!n0 || n0 == n1)))
        return 0;
    if (m1 - m0 > 5 || (n0 && n1 - n0 > 5))
        return 0; /* far beyond RE_DUP_MAX: regcomp will refuse the literal text */
    snprintf(q, qsize, "{%.*s%s%.*s}", m0 == m1 ? 1 : (int)(m1 - m0), m0 == m1 ? "0" : m0,
             n0 ? "," : "", n0 ? (int)(n1 - n0) : 0, n0 ? n0 : "");
    return (size_t)(p - s) + 1;
}

/* Python's class escapes, outside and inside a bracket expression. */
static const char *class_escape(char d, int in_bracket)
{
    switch (d) {
    case 'w':
        return in_bracket ? "[:alnum:]_" : "[[:alnum:]_]";
    case 'd':
        return in_bracket ? "0-9" : "[0-9]";
    case 's':
        return in_bracket ? "[:space:]" : "[[:space:]]";
    case 'W':
        return in_bracket ? NULL : "[^[:alnum:]_]";
    case 'D':
        return in_bracket ? NULL : "[^0-9]";
    case 'S':
        return in_bracket ? NULL : "[^[:space:]]";
    case 'n':
        return "\n";
    case 't':
        return "\t";
    default:
        return NULL;
    }
}

int gapi__pattern_translate(gapi__buf *out, const char *pattern, char *errbuf, size_t errbuf_size)
{
    const char *s = pattern;
    size_t start = out->len, i, j;
    int rc = 0, depth = 0;
    char what[48];

    PUTS("^(");
    for (i = 0; s[i]; i++) {
        char c = s[i];
        const char *cls;

        if (c == '\\') {
            char d = s[i + 1];

            if ((cls = class_escape(d, 0)) != NULL) {
                PUTS(cls);
            } else if (d && !isalnum((unsigned char)d) && (unsigned char)d < 0x80) {
                /* An escaped punctuation character is itself; ERE wants the
                 * backslash only before its own special characters. */
                if (strchr(".[]()*+?{}|^$\\", d))
                    PUTS("\\");
                PUTC(d);
            } else {
                snprintf(what, sizeof(what), d ? "the escape \\%c" : "a trailing backslash", d);
                return refuse(out, start, pattern, i, what, errbuf, errbuf_size);
            }
            i++;
        } else if (c == '[') {
            PUTS("[");
            j = i + 1;
            if (s[j] == '^')
                PUTC(s[j++]);
            if (s[j] == ']')
                PUTC(s[j++]); /* a literal ']' first, in both syntaxes */
            for (; s[j] && s[j] != ']'; j++) {
                if (s[j] == '\\') {
                    char d = s[j + 1];
                    if ((cls = class_escape(d, 1)) != NULL) {
                        PUTS(cls);
                    } else if (d && strchr(".*+?(){}|$/:,_@#&!=<>'\"", d)) {
                        PUTC(d); /* nothing is special there in ERE */
                    } else {
                        snprintf(what, sizeof(what), "the escape \\%c inside [...]", d ? d : ' ');
                        return refuse(out, start, pattern, j, what, errbuf, errbuf_size);
                    }
                    j++;
                } else if (s[j] == '[' && (s[j + 1] == ':' || s[j + 1] == '.' || s[j + 1] == '=')) {
                    return refuse(out, start, pattern, j, "\"[:\", \"[.\" or \"[=\" inside [...]",
                                  errbuf, errbuf_size);
                } else {
                    PUTC(s[j]);
                }
            }
            if (!s[j])
                return refuse(out, start, pattern, i, "an unclosed '['", errbuf, errbuf_size);
            PUTS("]");
            i = j;
        } else if (c == '(') {
            if (s[i + 1] == '?') {
                if (s[i + 2] != ':')
                    return refuse(out, start, pattern, i, "a \"(?\" group other than \"(?:\"",
                                  errbuf, errbuf_size);
                i += 2;
            }
            depth++;
            PUTS("(");
        } else if (c == ')') {
            if (depth-- == 0)
                return refuse(out, start, pattern, i, "an unbalanced ')'", errbuf, errbuf_size);
            PUTS(")");
        } else if (c == '*' || c == '+' || c == '?') {
            PUTC(c);
            if (s[i + 1] == '?')
                i++; /* lazy: the same prefixes match */
        } else if (c == '{') {
            char q[24];
            size_t len = brace_quantifier(s + i, q, sizeof(q));

            if (len) {
                PUTS(q);
                i += len - 1;
                if (s[i + 1] == '?')
                    i++;
            } else {
                PUTS("\\{");
            }
        } else if (c == '}') {
            PUTS("\\}");
        } else {
            PUTC(c);
        }
    }
    if (depth)
        return refuse(out, start, pattern, i, "an unclosed '('", errbuf, errbuf_size);
    PUTS(")");
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return GAPI_ENOMEM;
    }
    return GAPI_OK;
}

#undef PUTS
#undef PUTC

/* Compiles pattern into *re (the caller regfrees it). */
static int compile(regex_t *re, const char *pattern, char *errbuf, size_t n)
{
    gapi__buf ere = GAPI__BUF_INIT;
    int rc = gapi__pattern_translate(&ere, pattern, errbuf, n);

    if (rc == GAPI_OK) {
        int r = regcomp(re, ere.data, REG_EXTENDED | REG_NOSUB);
        if (r == REG_ESPACE) {
            gapi__errbuf_printf(errbuf, n, "out of memory");
            rc = GAPI_ENOMEM;
        } else if (r != 0) {
            char why[96];
            regerror(r, re, why, sizeof(why));
            gapi__errbuf_printf(errbuf, n, "pattern \"%s\" does not compile: %s", pattern, why);
            rc = GAPI_EINVAL;
        }
    }
    gapi__buf_free(&ere);
    return rc;
}

#define CACHE_SLOTS   128
#define CACHE_KEY_MAX 384

typedef struct cache_entry {
    int used;
    char key[CACHE_KEY_MAX];
    regex_t re;
} cache_entry;

static cache_entry *cache; /* CACHE_SLOTS entries, made on first use */
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

static uint32_t key_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* Under cache_mu: the entry of pattern, or the free slot where it would
 * go (used == 0), or NULL when the table is full or missing. */
static cache_entry *cache_slot(const char *pattern, uint32_t h)
{
    uint32_t k;

    for (k = 0; cache && k < CACHE_SLOTS; k++) {
        cache_entry *e = &cache[(h + k) % CACHE_SLOTS];
        if (!e->used || strcmp(e->key, pattern) == 0)
            return e;
    }
    return NULL;
}

int gapi__pattern_match(const char *pattern, const char *value, char *errbuf, size_t errbuf_size)
{
    size_t len = strlen(pattern);
    uint32_t h = key_hash(pattern);
    cache_entry *e = NULL;
    regex_t re;
    int rc, hit;

    if (len < CACHE_KEY_MAX) {
        pthread_mutex_lock(&cache_mu);
        if (!cache)
            cache = calloc(CACHE_SLOTS, sizeof(*cache));
        e = cache_slot(pattern, h);
        hit = e && e->used;
        pthread_mutex_unlock(&cache_mu);
        /* Entries are never removed or changed once used; the lock ordered
         * our read after the entry was filled. */
        if (hit)
            return regexec(&e->re, value, 0, NULL, 0) == 0;
    }
    /* Compile outside the lock; another thread may insert the same pattern
     * meanwhile, and then ours is dropped. */
    if ((rc = compile(&re, pattern, errbuf, errbuf_size)) != GAPI_OK)
        return rc;
    if (len < CACHE_KEY_MAX) {
        int inserted = 0;

        pthread_mutex_lock(&cache_mu);
        e = cache_slot(pattern, h);
        if (e && !e->used) {
            memcpy(e->key, pattern, len + 1);
            e->re = re;
            e->used = 1;
            inserted = 1;
        }
        pthread_mutex_unlock(&cache_mu);
        if (e) {
            if (!inserted)
                regfree(&re); /* lost the race: use the winner's */
            return regexec(&e->re, value, 0, NULL, 0) == 0;
        }
    }
    rc = regexec(&re, value, 0, NULL, 0) == 0;
    regfree(&re);
    return rc;
}
