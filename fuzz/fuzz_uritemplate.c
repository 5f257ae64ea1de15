/*
 * Fuzzes src/uritemplate two ways with every input.
 *
 * As a template, expanded against a fixed set of variables (the RFC's
 * level-4 examples plus values with multibyte, binary, "%" and undefined
 * members). Invariants:
 *  - the result is 0 or GAPI_EINVAL, and check() agrees on the syntax: a
 *    template check() refuses fails expansion with the same offset and
 *    message, without any lookup; one it accepts can only fail for a prefix
 *    on a composite value;
 *  - a failure leaves the output buffer as it was and names an offset
 *    inside the template;
 *  - a success is a URI fragment: only unreserved and reserved characters
 *    and well-formed %XX triplets, and so also a fixed point (expanding the
 *    output as a template gives it back unchanged);
 *  - the visitor sees as many varspecs as the expansion looks up;
 *  - when an allocation fails, the result is GAPI_ENOMEM with the output as
 *    it was (and nothing leaked), or the same as without the failure.
 * As a value (bytes split at '\n' for lists and '=' for pairs), through
 * "{v}", "{+v}", "{?v}", "{;v}", "{v:N}", "{/list*}" and "{?keys*}", and
 * as a query parameter's value and name (gapi__query_add): the results
 * match the encoding helpers and percent-decode back to the input
 * (or, for a prefix, to a prefix of it of at most N characters).
 */
#include <string.h>

#include "gapi.h"
#include "common/buf.h"
#include "uritemplate/uritemplate.h"
#include "fuzz.h"

/* ------------------------------------------------------------ variables */

typedef struct var {
    const char *name;
    gapi__ut_type type;
    const char *str; /* STRING */
    size_t str_len;  /* 0: strlen(str) */
    const gapi__ut_str *items;
    size_t n;
} var;

static const gapi__ut_str v_list[] = {{"red", 3}, {"green", 5}, {"blue", 4}};
static const gapi__ut_str v_keys[] = {{"semi", 4}, {";", 1},     {"dot", 3},
                                      {".", 1},    {"comma", 5}, {",", 1}};
static const gapi__ut_str v_holes[] = {{"a b", 3}, {NULL, 0}, {"", 0}, {"\xC3\xA9/", 3}};
static const gapi__ut_str v_assoc_holes[] = {{"k 1", 3}, {NULL, 0},  {"k\xC3\xA9", 3},
                                             {"", 0},    {"%41", 3}, {"%zz", 3}};
static const gapi__ut_str v_undef_assoc[] = {{"k", 1}, {NULL, 0}};

static const var vars[] = {
    {"var", GAPI__UT_STRING, "value", 0, NULL, 0},
    {"hello", GAPI__UT_STRING, "Hello World!", 0, NULL, 0},
    {"half", GAPI__UT_STRING, "50%", 0, NULL, 0},
    {"empty", GAPI__UT_STRING, "", 0, NULL, 0},
    {"dub", GAPI__UT_STRING, "me/too", 0, NULL, 0},
    {"base", GAPI__UT_STRING, "http://example.com/home/", 0, NULL, 0},
    {"path", GAPI__UT_STRING, "/foo/bar", 0, NULL, 0},
    {"v", GAPI__UT_STRING, "6", 0, NULL, 0},
    {"x", GAPI__UT_STRING, "1024", 0, NULL, 0},
    {"y", GAPI__UT_STRING, "768", 0, NULL, 0},
    {"who", GAPI__UT_STRING, "fred", 0, NULL, 0},
    {"pct", GAPI__UT_STRING, "%2F%zz%", 0, NULL, 0},
    {"uni", GAPI__UT_STRING, "\xCE\xB1\xCE\xB2\xE2\x82\xAC\xF0\x9D\x84\x9Estave", 0, NULL, 0},
    {"bin", GAPI__UT_STRING, "\x00\xFF\x80/\xC3 ", 6, NULL, 0},
    {"name", GAPI__UT_STRING, "projects/p/topics/t", 0, NULL, 0},
    {"bucket", GAPI__UT_STRING, "my-bucket", 0, NULL, 0},
    {"object", GAPI__UT_STRING, "dir/o b+c.txt", 0, NULL, 0},
    {"project", GAPI__UT_STRING, "p-1", 0, NULL, 0},
    {"Some%20Thing", GAPI__UT_STRING, "foo", 0, NULL, 0},
    {"list", GAPI__UT_LIST, NULL, 0, v_list, 3},
    {"keys", GAPI__UT_ASSOC, NULL, 0, v_keys, 3},
    {"holes", GAPI__UT_LIST, NULL, 0, v_holes, 4},
    {"aholes", GAPI__UT_ASSOC, NULL, 0, v_assoc_holes, 3},
    {"empty_list", GAPI__UT_LIST, NULL, 0, NULL, 0},
    {"empty_keys", GAPI__UT_ASSOC, NULL, 0, NULL, 0},
    {"undef_keys", GAPI__UT_ASSOC, NULL, 0, v_undef_assoc, 1},
};

typedef struct lookups {
    int calls;
} lookups;

static int fixed_lookup(const char *name, size_t name_len, gapi__ut_value *out, void *ud)
{
    lookups *l = ud;
    size_t i;

    l->calls++;
    for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const var *v = &vars[i];
        if (strlen(v->name) != name_len || memcmp(v->name, name, name_len) != 0)
            continue;
        out->type = v->type;
        if (v->type == GAPI__UT_STRING) {
            out->str.s = v->str;
            out->str.len = v->str_len ? v->str_len : strlen(v->str);
        } else {
            out->items = v->items;
            out->n = v->n;
        }
        return 0;
    }
    return 0; /* undefined */
}

static int count_visit(const gapi__ut_varspec *vs, void *ud)
{
    (void)vs;
    (*(int *)ud)++;
    return 0;
}

/* ------------------------------------------------------------ helpers */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Only unreserved, reserved and %XX (RFC 3986 sections 2.1 to 2.3). */
static int is_uri_text(const char *s, size_t n)
{
    static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                             "-._~:/?#[]@!$&'()*+,;=";
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (n - i < 3 || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
                return 0;
            i += 2;
        } else if (!s[i] || !strchr(ok, s[i])) {
            return 0;
        }
    }
    return 1;
}

/* Percent-decodes s[0..n) into out; every '%' must start a triplet. */
static void pct_decode(const char *s, size_t n, gapi__buf *out)
{
    size_t i;
    char c;

    gapi__buf_reset(out);
    for (i = 0; i < n; i++) {
        c = s[i];
        if (c == '%') {
            CHECK(n - i >= 3 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0);
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        CHECK(gapi__buf_append(out, &c, 1) == 0);
    }
}

static int same(const gapi__buf *b, const void *p, size_t n)
{
    return b->len == n && (n == 0 || memcmp(b->data, p, n) == 0);
}

/* ------------------------------------------------------------ template mode */

static void as_template(const char *t, size_t n)
{
    static const char pre[] = "pre:";
    gapi__buf out = GAPI__BUF_INIT, again = GAPI__BUF_INIT;
    gapi__ut_error e1, e2;
    lookups l = {0};
    int rc, crc, visits = 0;

    memset(&e1, 0, sizeof(e1));
    memset(&e2, 0, sizeof(e2));
    CHECK(gapi__buf_append(&out, pre, 4) == 0);
    crc = gapi__uritemplate_check(t, n, &e1, count_visit, &visits);
    rc = gapi__uritemplate_expand(&out, t, n, &e2, fixed_lookup, &l);
    CHECK(crc == 0 || crc == GAPI_EINVAL);
    CHECK(rc == 0 || rc == GAPI_EINVAL);
    if (crc != 0) {
        CHECK(rc == GAPI_EINVAL && l.calls == 0 && visits == 0);
        CHECK(e1.offset == e2.offset && strcmp(e1.message, e2.message) == 0);
    } else if (rc != 0) {
        CHECK(strstr(e2.message, "prefix modifier") != NULL && l.calls <= visits);
    } else {
        CHECK(l.calls == visits);
    }
    if (rc != 0) {
        CHECK(e2.offset <= n && strncmp(e2.message, "offset ", 7) == 0);
        CHECK(same(&out, pre, 4) && out.data[4] == '\0');
    } else {
        CHECK(out.len >= 4 && memcmp(out.data, pre, 4) == 0 && out.data[out.len] == '\0');
        CHECK(is_uri_text(out.data + 4, out.len - 4));
        /* A URI fragment is a template without expressions that expands to
         * itself. */
        l.calls = 0;
        CHECK(gapi__uritemplate_expand(&again, out.data + 4, out.len - 4, &e1, fixed_lookup, &l) ==
              0);
        CHECK(l.calls == 0 && same(&again, out.data + 4, out.len - 4));
    }

    /* Out of memory after a data-derived number of allocations: the same
     * outcome, or GAPI_ENOMEM with the output as it was. */
    gapi__buf_reset(&again);
    CHECK(gapi__buf_append(&again, pre, 4) == 0);
    fuzz_fail_after((long)(fuzz_hash((const uint8_t *)t, n) % 4));
    crc = gapi__uritemplate_expand(&again, t, n, &e1, fixed_lookup, &l);
    fuzz_alloc_restore();
    if (crc == GAPI_ENOMEM) {
        CHECK(same(&again, pre, 4) && strstr(e1.message, "out of memory") != NULL);
    } else {
        CHECK(crc == rc && same(&again, out.data, out.len));
        if (rc != 0)
            CHECK(e1.offset == e2.offset && strcmp(e1.message, e2.message) == 0);
    }
    gapi__buf_free(&out);
    gapi__buf_free(&again);
}

/* ------------------------------------------------------------ value mode */

typedef struct value_ctx {
    const char *v;
    size_t n;
    gapi__ut_str items[64]; /* the input split at '\n' */
    size_t nitems;
    gapi__ut_str pairs[128]; /* lines split at the first '=' */
    size_t npairs;
} value_ctx;

static int value_lookup(const char *name, size_t name_len, gapi__ut_value *out, void *ud)
{
    value_ctx *c = ud;

    if (name_len == 1 && name[0] == 'v') {
        out->type = GAPI__UT_STRING;
        out->str.s = c->v;
        out->str.len = c->n;
    } else if (name_len == 4 && memcmp(name, "list", 4) == 0) {
        out->type = GAPI__UT_LIST;
        out->items = c->items;
        out->n = c->nitems;
    } else if (name_len == 4 && memcmp(name, "keys", 4) == 0) {
        out->type = GAPI__UT_ASSOC;
        out->items = c->pairs;
        out->n = c->npairs;
    }
    return 0;
}

static void expand_value(value_ctx *c, const char *t, gapi__buf *out)
{
    gapi__ut_error e;

    gapi__buf_reset(out);
    CHECK(gapi__uritemplate_expand(out, t, strlen(t), &e, value_lookup, c) == 0);
    CHECK(is_uri_text(out->data, out->len));
}

static void as_value(const uint8_t *data, size_t size)
{
    value_ctx c;
    gapi__buf out = GAPI__BUF_INIT, ref = GAPI__BUF_INIT, dec = GAPI__BUF_INIT;
    char tmpl[32];
    unsigned prefix = size ? 1u + data[0] % 40u : 1u, leads = 0;
    size_t i, start, part;

    memset(&c, 0, sizeof(c));
    c.v = size ? (const char *)data : "";
    c.n = size;

    /* {v}: the unreserved-only encoding, which decodes back to v. */
    expand_value(&c, "{v}", &out);
    CHECK(gapi__pct_encode(&ref, c.v, c.n, 0) == 0);
    CHECK(same(&out, ref.data, ref.len));
    pct_decode(out.data, out.len, &dec);
    CHECK(same(&dec, c.v, c.n));
    gapi__buf_reset(&ref);
    CHECK(gapi__query_encode(&ref, c.v, c.n) == 0 && same(&ref, out.data, out.len));

    /* As a query parameter's value, then as a name: "?k=" + the same
     * encoding, then "&" + it + "=x". */
    gapi__buf_reset(&ref);
    CHECK(gapi__buf_append(&ref, "/p", 2) == 0 && gapi__query_add(&ref, "k", c.v, c.n) == 0);
    CHECK(ref.len == 5 + out.len && memcmp(ref.data, "/p?k=", 5) == 0 &&
          memcmp(ref.data + 5, out.data, out.len) == 0);
    gapi__buf_reset(&dec);
    CHECK(gapi__buf_append(&dec, c.v, c.n) == 0); /* a C string for the name */
    CHECK(gapi__query_add(&ref, dec.data, "x", 1) == 0);
    CHECK(ref.len >= 5 + out.len + 3 && ref.data[5 + out.len] == '&' &&
          memcmp(ref.data + ref.len - 2, "=x", 2) == 0);
    pct_decode(ref.data + 6 + out.len, ref.len - 8 - out.len, &dec);
    CHECK(dec.len == strnlen(c.v, c.n) && memcmp(dec.data, c.v, dec.len) == 0);

    /* {+v}: the reserved-allowing encoding. */
    expand_value(&c, "{+v}", &out);
    gapi__buf_reset(&ref);
    CHECK(gapi__pct_encode(&ref, c.v, c.n, 1) == 0);
    CHECK(same(&out, ref.data, ref.len));

    /* Named forms: "?v=" always, ";v" alone when empty. */
    expand_value(&c, "{?v}", &out);
    CHECK(out.len >= 3 && memcmp(out.data, "?v=", 3) == 0);
    pct_decode(out.data + 3, out.len - 3, &dec);
    CHECK(same(&dec, c.v, c.n));
    expand_value(&c, "{;v}", &out);
    CHECK(c.n ? out.len > 3 && memcmp(out.data, ";v=", 3) == 0 : same(&out, ";v", 2));

    /* {v:N}: a prefix of at most N characters, cut before a lead byte. */
    snprintf(tmpl, sizeof(tmpl), "{v:%u}", prefix);
    expand_value(&c, tmpl, &out);
    pct_decode(out.data, out.len, &dec);
    CHECK(dec.len <= c.n && (dec.len == 0 || memcmp(dec.data, c.v, dec.len) == 0));
    for (i = 0; i < dec.len; i++)
        leads += ((unsigned char)dec.data[i] & 0xC0) != 0x80;
    CHECK(leads <= prefix);
    if (dec.len < c.n)
        CHECK(leads == prefix && ((unsigned char)c.v[dec.len] & 0xC0) != 0x80);

    /* Lists and pairs from the lines of the input. */
    for (start = 0, i = 0; i <= size && c.nitems < 64; i++) {
        if (i == size || data[i] == '\n') {
            gapi__ut_str *it = &c.items[c.nitems++];
            const char *eq;
            it->s = c.v + start;
            it->len = i - start;
            eq = memchr(it->s, '=', it->len);
            c.pairs[2 * c.npairs].s = it->s;
            c.pairs[2 * c.npairs].len = eq ? (size_t)(eq - it->s) : it->len;
            c.pairs[2 * c.npairs + 1].s = eq ? eq + 1 : "";
            c.pairs[2 * c.npairs + 1].len = eq ? it->len - (size_t)(eq - it->s) - 1 : 0;
            c.npairs++;
            start = i + 1;
        }
    }
    /* "{/list*}": "/" then one encoded item per segment. */
    expand_value(&c, "{/list*}", &out);
    CHECK(out.len >= 1 && out.data[0] == '/');
    for (start = 1, part = 0, i = 1; i <= out.len; i++) {
        if (i == out.len || out.data[i] == '/') {
            CHECK(part < c.nitems);
            pct_decode(out.data + start, i - start, &dec);
            CHECK(same(&dec, c.items[part].s, c.items[part].len));
            part++;
            start = i + 1;
        }
    }
    CHECK(part == c.nitems);
    /* "{?keys*}": "?" then name=value pairs joined by "&". */
    expand_value(&c, "{?keys*}", &out);
    CHECK(out.len >= 1 && out.data[0] == '?');
    for (start = 1, part = 0, i = 1; i <= out.len; i++) {
        if (i == out.len || out.data[i] == '&') {
            const char *eq = memchr(out.data + start, '=', i - start);
            CHECK(eq != NULL && part < c.npairs);
            pct_decode(out.data + start, (size_t)(eq - (out.data + start)), &dec);
            CHECK(same(&dec, c.pairs[2 * part].s, c.pairs[2 * part].len));
            pct_decode(eq + 1, (size_t)(out.data + i - eq - 1), &dec);
            CHECK(same(&dec, c.pairs[2 * part + 1].s, c.pairs[2 * part + 1].len));
            part++;
            start = i + 1;
        }
    }
    CHECK(part == c.npairs);

    gapi__buf_free(&out);
    gapi__buf_free(&ref);
    gapi__buf_free(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    as_template((const char *)data, size);
    /* Value checks walk the bytes a dozen times; longer values find nothing
     * more and would only slow the run down. */
    as_value(data, size < 512 ? size : 512);
    return 0;
}
