/*
 * Tests of the RFC 6570 expander and the percent-encoding helpers
 * (src/uritemplate).
 *
 * The four files of the public uritemplate-test suite in
 * ../shared/uritemplate-test are read with json-c: every case is one test
 * point, expanded from an exact-size copy of the template (so ASan and
 * valgrind see any read past its end) into a buffer that already holds
 * text. Where the suite lists several acceptable expansions any of them
 * passes; a negative case must fail with GAPI_EINVAL, a message naming the
 * offset, and the buffer as it was. Then: every method path of the discovery
 * documents in ../shared/discovery (each variable must be a path parameter
 * of its method), the discovery-style "{name}" / "{+name}" encodings, the
 * encoding helpers against the RFC 3986 character classes and against what
 * Python's quote_plus produces, error offsets and messages, lookup
 * failures, and allocation failures at every step.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "gapi.h"
#include "common/buf.h"
#include "json/parse.h"
#include "uritemplate/uritemplate.h"
#include "tap.h"

/* A string literal as pointer and length (the length excludes the NUL). */
#define S(lit) lit, sizeof(lit) - 1

/* ------------------------------------------------------------ helpers */

static char *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
            *len = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static struct json_object *load_json(const char *rel)
{
    char *path = tap_shared_path(rel), *text;
    struct json_object *o = NULL;
    gapi__json_error err;
    size_t len = 0;

    if (!path)
        return NULL;
    text = read_whole(path, &len);
    if (!text || gapi__json_parse(text, len, 0, &o, &err) != 0 || !o) {
        ok(0, "%s: readable JSON", rel);
        o = NULL;
    }
    free(text);
    free(path);
    return o;
}

/* Lookup over a json-c object: strings and numbers are strings (a number
 * keeps its text: json-c serializes a parsed double as written), arrays are
 * lists, objects are associative arrays, null and absent are undefined. */
typedef struct jvars {
    struct json_object *vars;
    gapi__ut_str *items;
    size_t cap;
    int calls;
} jvars;

static void jstr(struct json_object *o, gapi__ut_str *s)
{
    if (!o) {
        s->s = NULL;
        s->len = 0;
    } else if (json_object_is_type(o, json_type_string)) {
        s->s = json_object_get_string(o);
        s->len = (size_t)json_object_get_string_len(o);
    } else {
        s->s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        s->len = strlen(s->s);
    }
}

static int json_lookup(const char *name, size_t name_len, gapi__ut_value *out, void *ud)
{
    jvars *j = ud;
    struct json_object *v;
    char *key = malloc(name_len + 1);
    size_t i, n;
    int found;

    if (!key)
        abort();
    memcpy(key, name, name_len);
    key[name_len] = '\0';
    j->calls++;
    found = json_object_object_get_ex(j->vars, key, &v);
    free(key);
    if (!found || !v)
        return 0;
    if (json_object_is_type(v, json_type_array)) {
        n = json_object_array_length(v);
    } else if (json_object_is_type(v, json_type_object)) {
        n = (size_t)json_object_object_length(v) * 2;
    } else {
        out->type = GAPI__UT_STRING;
        jstr(v, &out->str);
        return 0;
    }
    if (n > j->cap) {
        j->items = realloc(j->items, n * sizeof(*j->items));
        if (!j->items)
            abort();
        j->cap = n;
    }
    if (json_object_is_type(v, json_type_array)) {
        for (i = 0; i < n; i++)
            jstr(json_object_array_get_idx(v, i), &j->items[i]);
        out->type = GAPI__UT_LIST;
        out->n = n;
    } else {
        i = 0;
        json_object_object_foreach(v, k, val)
        {
            j->items[i].s = k;
            j->items[i].len = strlen(k);
            jstr(val, &j->items[i + 1]);
            i += 2;
        }
        out->type = GAPI__UT_ASSOC;
        out->n = n / 2;
    }
    out->items = j->items;
    return 0;
}

/* ------------------------------------------------------------ the suite */

static int suite_pass, suite_total;

static void suite_case(const char *file, const char *group, jvars *j, const char *tmpl,
                       struct json_object *want)
{
    static const char pre[] = "<pre>";
    size_t tlen = strlen(tmpl), i;
    char *copy = malloc(tlen ? tlen : 1);
    gapi__buf out = GAPI__BUF_INIT;
    gapi__ut_error err;
    const char *got;
    int rc, pass = 0;

    if (!copy)
        abort();
    memcpy(copy, tmpl, tlen);
    memset(&err, 0, sizeof(err));
    if (gapi__buf_append(&out, pre, sizeof(pre) - 1) != 0)
        abort();
    rc = gapi__uritemplate_expand(&out, copy, tlen, &err, json_lookup, j);
    got = out.data + sizeof(pre) - 1;

    if (json_object_is_type(want, json_type_boolean) && !json_object_get_boolean(want)) {
        pass = rc == GAPI_EINVAL && strncmp(err.message, "offset ", 7) == 0 &&
               out.len == sizeof(pre) - 1 && strcmp(out.data, pre) == 0;
        if (!ok(pass, "%s: %s: \"%s\" is refused", file, group, tmpl))
            diag("  rc %d, got \"%s\", message \"%s\"", rc, got, err.message);
        else
            diag("  %s", err.message);
    } else {
        if (rc == 0 && strncmp(out.data, pre, sizeof(pre) - 1) == 0) {
            if (json_object_is_type(want, json_type_string)) {
                pass = strcmp(got, json_object_get_string(want)) == 0;
            } else if (json_object_is_type(want, json_type_array)) {
                for (i = 0; i < json_object_array_length(want); i++)
                    if (strcmp(got, json_object_get_string(json_object_array_get_idx(want, i))) ==
                        0)
                        pass = 1;
            }
        }
        if (!ok(pass, "%s: %s: \"%s\" -> \"%s\"", file, group, tmpl, rc == 0 ? got : "(error)"))
            diag("  rc %d (%s), want %s", rc, err.message,
                 json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN));
    }
    suite_total++;
    suite_pass += pass;
    gapi__buf_free(&out);
    free(copy);
}

static void test_suite_file(const char *file)
{
    char rel[128];
    struct json_object *doc, *vars, *cases, *c;
    jvars j;
    size_t i;

    snprintf(rel, sizeof(rel), "uritemplate-test/%s", file);
    if ((doc = load_json(rel)) == NULL)
        return;
    memset(&j, 0, sizeof(j));
    json_object_object_foreach(doc, group, g)
    {
        if (!json_object_object_get_ex(g, "variables", &vars) ||
            !json_object_object_get_ex(g, "testcases", &cases)) {
            ok(0, "%s: %s has variables and testcases", file, group);
            continue;
        }
        j.vars = vars;
        for (i = 0; i < json_object_array_length(cases); i++) {
            c = json_object_array_get_idx(cases, i);
            suite_case(file, group, &j, json_object_get_string(json_object_array_get_idx(c, 0)),
                       json_object_array_get_idx(c, 1));
        }
    }
    free(j.items);
    json_object_put(doc);
}

static void test_suite(void)
{
    test_suite_file("spec-examples.json");
    test_suite_file("spec-examples-by-section.json");
    test_suite_file("extended-tests.json");
    test_suite_file("negative-tests.json");
    diag("uritemplate-test: %d of %d cases pass", suite_pass, suite_total);
}

/* ------------------------------------------------------------ simple lookups */

/* Variables given as a NULL-terminated array of name, value pairs (strings
 * only). */
typedef struct svars {
    const char *const *kv;
    int calls;
} svars;

static int str_lookup(const char *name, size_t name_len, gapi__ut_value *out, void *ud)
{
    svars *v = ud;
    int i;

    v->calls++;
    for (i = 0; v->kv[i]; i += 2) {
        if (strlen(v->kv[i]) == name_len && memcmp(v->kv[i], name, name_len) == 0) {
            out->type = GAPI__UT_STRING;
            out->str.s = v->kv[i + 1];
            out->str.len = strlen(v->kv[i + 1]);
            return 0;
        }
    }
    return 0;
}

/* Expands tmpl with the string variables kv; returns a malloc'd result or
 * NULL on error (message in err). */
static char *expand_kv(const char *tmpl, const char *const *kv, gapi__ut_error *err)
{
    gapi__buf out = GAPI__BUF_INIT;
    svars v = {kv, 0};

    if (gapi__uritemplate_expand(&out, tmpl, strlen(tmpl), err, str_lookup, &v) != 0) {
        gapi__buf_free(&out);
        return NULL;
    }
    return out.data; /* allocated with the default allocator: free() */
}

/* ------------------------------------------------------------ discovery */

static void discovery_style(void)
{
    static const char *const kv[] = {"name",   "a/b c",
                                     "bucket", "my-bucket",
                                     "object", "dir/file name+v1.txt",
                                     "topic",  "projects/p/topics/t",
                                     "enc",    "x%2Fy",
                                     NULL};
    static const struct {
        const char *tmpl, *want;
    } cases[] = {
        {"{name}", "a%2Fb%20c"},
        {"{+name}", "a/b%20c"},
        {"b/{bucket}/o/{object}", "b/my-bucket/o/dir%2Ffile%20name%2Bv1.txt"},
        {"v1/{+topic}:publish", "v1/projects/p/topics/t:publish"},
        {"v1/{topic}:publish", "v1/projects%2Fp%2Ftopics%2Ft:publish"},
        {"{enc}", "x%252Fy"},
        {"{+enc}", "x%2Fy"},
        {"{missing}/x{+missing}", "/x"},
    };
    gapi__ut_error err;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = expand_kv(cases[i].tmpl, kv, &err);
        is_str(got, cases[i].want, "discovery style: %s", cases[i].tmpl);
        free(got);
    }
}

typedef struct path_check {
    struct json_object *params;
    int bad;
    int nvars;
    char first_bad[128];
} path_check;

static int visit_path_var(const gapi__ut_varspec *vs, void *ud)
{
    path_check *pc = ud;
    struct json_object *p, *loc;
    char name[128];

    pc->nvars++;
    snprintf(name, sizeof(name), "%.*s", (int)vs->name_len, vs->name);
    if (!pc->params || !json_object_object_get_ex(pc->params, name, &p) ||
        !json_object_object_get_ex(p, "location", &loc) ||
        strcmp(json_object_get_string(loc), "path") != 0 || (vs->op != '\0' && vs->op != '+')) {
        if (!pc->bad++)
            snprintf(pc->first_bad, sizeof(pc->first_bad), "%.100s (op '%c')", name,
                     vs->op ? vs->op : ' ');
    }
    return 0;
}

static void check_methods(struct json_object *res, int *paths, int *vars, int *bad, char *why,
                          size_t whylen)
{
    struct json_object *methods, *resources, *path;
    gapi__ut_error err;

    if (json_object_object_get_ex(res, "methods", &methods)) {
        json_object_object_foreach(methods, mname, m)
        {
            path_check pc;
            const char *t;

            memset(&pc, 0, sizeof(pc));
            if (!json_object_object_get_ex(m, "path", &path))
                continue;
            json_object_object_get_ex(m, "parameters", &pc.params);
            t = json_object_get_string(path);
            (*paths)++;
            if (gapi__uritemplate_check(t, strlen(t), &err, visit_path_var, &pc) != 0 || pc.bad) {
                if (!(*bad)++)
                    snprintf(why, whylen, "%s: %s %s", mname, t,
                             pc.bad ? pc.first_bad : err.message);
            }
            *vars += pc.nvars;
        }
    }
    if (json_object_object_get_ex(res, "resources", &resources)) {
        json_object_object_foreach(resources, rname, r)
        {
            (void)rname;
            check_methods(r, paths, vars, bad, why, whylen);
        }
    }
}

static void discovery_paths(void)
{
    static const char *const docs[] = {"bigquery.v2.json", "compute.v1.json", "drive.v3.json",
                                       "gmail.v1.json",    "iam.v1.json",     "logging.v2.json",
                                       "pubsub.v1.json",   "sheets.v4.json",  "storage.v1.json",
                                       "youtube.v3.json"};
    size_t i;

    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        char rel[128], why[512] = "";
        struct json_object *doc;
        int paths = 0, vars = 0, bad = 0;

        snprintf(rel, sizeof(rel), "discovery/%s", docs[i]);
        if ((doc = load_json(rel)) == NULL)
            continue;
        check_methods(doc, &paths, &vars, &bad, why, sizeof(why));
        if (!ok(paths > 0 && bad == 0,
                "%s: all %d method paths are valid templates naming path parameters (%d vars)",
                docs[i], paths, vars))
            diag("  %d bad, first: %s", bad, why);
        json_object_put(doc);
    }
}

/* ------------------------------------------------------------ encoding */

static char *enc_str(const char *s, size_t len, int mode) /* 0, 1: pct_encode; 2: query */
{
    gapi__buf out = GAPI__BUF_INIT;
    int rc = mode == 2 ? gapi__query_encode(&out, s, len) : gapi__pct_encode(&out, s, len, mode);
    if (rc != 0)
        abort();
    return out.data;
}

static void test_encoding(void)
{
    static const struct {
        const char *in;
        size_t len;
        int mode;
        const char *want;
    } cases[] = {
        {S("a/b c"), 0, "a%2Fb%20c"},
        {S("a/b c"), 1, "a/b%20c"},
        {S("%2F"), 0, "%252F"},
        {S("%2F%2f"), 1, "%2F%2f"},
        {S("%zz%4"), 1, "%25zz%254"},
        {S("100%"), 1, "100%25"},
        {S("caf\xC3\xA9"), 0, "caf%C3%A9"},
        {S("\xF0\x9D\x84\x9E"), 1, "%F0%9D%84%9E"},
        {S("a\0b"), 0, "a%00b"},
        {S("\xFF\x80"), 1, "%FF%80"},
        {S(""), 0, ""},
        {S(":/?#[]@!$&'()*+,;="), 1, ":/?#[]@!$&'()*+,;="},
        {S(":/?#[]@!$&'()*+,;="), 0, "%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D"},
        {S("<>\"\\^`{|}"), 1, "%3C%3E%22%5C%5E%60%7B%7C%7D"},
        /* The query encoder: what Python's urllib.parse.quote_plus(s, safe="")
         * gives, with %20 for space instead of "+". */
        {S("a b+c&d=e#f/g"), 2, "a%20b%2Bc%26d%3De%23f%2Fg"},
        {S("AZaz09-._~"), 2, "AZaz09-._~"},
        {S("*'()!"), 2, "%2A%27%28%29%21"},
        {S("name:\"x y\" AND z>1"), 2, "name%3A%22x%20y%22%20AND%20z%3E1"},
        {S("\xC3\xBC"), 2, "%C3%BC"},
    };
    static const char unreserved[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789-._~";
    static const char reserved[] = ":/?#[]@!$&'()*+,;=";
    size_t i;
    int c, mode, good = 1;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = enc_str(cases[i].in, cases[i].len, cases[i].mode);
        is_str(got, cases[i].want, "%s(\"%s\")",
               cases[i].mode == 2 ? "query_encode"
               : cases[i].mode    ? "pct_encode+R"
                                  : "pct_encode",
               cases[i].want);
        free(got);
    }
    /* Every byte, against the RFC 3986 classes written out here. */
    for (mode = 0; mode < 3; mode++) {
        for (c = 0; c < 256; c++) {
            char in = (char)c, want[4];
            char *got = enc_str(&in, 1, mode);
            int kept = (c && strchr(unreserved, c)) || (mode == 1 && c && strchr(reserved, c));
            if (kept)
                snprintf(want, sizeof(want), "%c", c);
            else
                snprintf(want, sizeof(want), "%%%02X", c);
            if (strcmp(got, want) != 0) {
                if (good)
                    diag("  mode %d byte 0x%02X: got %s want %s", mode, c, got, want);
                good = 0;
            }
            free(got);
        }
    }
    ok(good, "all 256 bytes encode as RFC 3986 says (U, U+R, query)");
}

static void test_query_add(void)
{
    gapi__buf url = GAPI__BUF_INIT;

    gapi__buf_puts(&url, "https://storage.googleapis.com/storage/v1/b");
    ok(gapi__query_add(&url, "project", S("my project")) == 0 &&
           gapi__query_add(&url, "prefix", S("a&b=c")) == 0 &&
           gapi__query_add(&url, "fields", S("items(name,size)")) == 0,
       "query_add: three parameters");
    is_str(url.data,
           "https://storage.googleapis.com/storage/v1/b?project=my%20project&prefix=a%26b%3Dc"
           "&fields=items%28name%2Csize%29",
           "query_add: '?' then '&', names and values encoded");
    gapi__buf_reset(&url);
    gapi__buf_puts(&url, "/x?");
    gapi__query_add(&url, "id", S("1"));
    gapi__query_add(&url, "id", S("2"));
    gapi__query_add(&url, "e", NULL, 0);
    is_str(url.data, "/x?id=1&id=2&e=", "query_add: repeated key, empty value, no '&' after '?'");
    gapi__buf_free(&url);
}

/* ------------------------------------------------------------ errors */

static void test_errors(void)
{
    static const char *const kv[] = {"var", "value", NULL};
    static const struct {
        const char *tmpl;
        size_t offset;
        const char *msg;
    } cases[] = {
        {"{/id*", 5, "unclosed expression: '{' at offset 0 has no '}'"},
        {"ab{var", 6, "unclosed expression: '{' at offset 2 has no '}'"},
        {"{var:1", 6, "unclosed"},
        {"/id*}", 4, "'}' outside an expression"},
        {"{}", 1, "empty expression"},
        {"{var,}", 5, "expected a variable name, found '}'"},
        {"{!hello}", 1, "operator '!' is reserved for future extensions"},
        {"{|var}", 1, "operator '|' is reserved"},
        {"{$var}", 1, "expected an operator or a variable name, found '$'"},
        {"{with space}", 5, "unexpected byte 0x20 after variable 'with'"},
        {"{x.}", 2, "'.' in variable name 'x.' is not followed by a name character"},
        {"{x..y}", 2, "'.' in variable name"},
        {"{var:0}", 5, "prefix length may not start with '0'"},
        {"{var:}", 5, "prefix ':' is not followed by a length from 1 to 9999"},
        {"{var:10000}", 5, "prefix length is over 9999"},
        {"{var:2*}", 6, "variable 'var' has both a prefix and an explode modifier"},
        {"{%2x}", 1, "'%' in a variable name is not followed by two hex digits"},
        {"a%2", 1, "'%' is not followed by two hex digits"},
        {"a%g0", 1, "'%' is not followed by two hex digits"},
        {"a b", 1, "byte 0x20 is not allowed in a template"},
        {"a^b", 1, "'^' is not allowed"},
        {"a\"b", 1, "'\"' is not allowed"},
        {"x\x01", 1, "byte 0x01 is not allowed"},
        {"\xC3", 0, "invalid UTF-8 in the template"},
        {"\xC0\x80", 0, "invalid UTF-8"},
        {"\xED\xA0\x80", 0, "invalid UTF-8"},
        {"\xC2\x80", 0, "character U+0080 is not allowed in a template"},
        {"\xEF\xBF\xBE", 0, "character U+FFFE is not allowed"},
        {"\xF3\xA0\x80\x81", 0, "character U+E0001 is not allowed"},
    };
    gapi__ut_error err;
    svars v = {kv, 0};
    gapi__buf out = GAPI__BUF_INIT;
    size_t i;
    int rc;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = cases[i].tmpl;
        char want[200];

        memset(&err, 0, sizeof(err));
        v.calls = 0;
        rc = gapi__uritemplate_expand(&out, t, strlen(t), &err, str_lookup, &v);
        snprintf(want, sizeof(want), "offset %zu: %s", cases[i].offset, cases[i].msg);
        if (!ok(rc == GAPI_EINVAL && err.offset == cases[i].offset &&
                    strncmp(err.message, want, strlen(want)) == 0 && v.calls == 0 && out.len == 0,
                "error: \"%s\" -> %s", t, want))
            diag("  rc %d, offset %zu, \"%s\", %d lookups", rc, err.offset, err.message, v.calls);
    }
    /* The check call gives the same verdicts. */
    rc = 0;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gapi__ut_error e2;
        if (gapi__uritemplate_check(cases[i].tmpl, strlen(cases[i].tmpl), &e2, NULL, NULL) !=
                GAPI_EINVAL ||
            e2.offset != cases[i].offset)
            rc = 1;
    }
    ok(rc == 0, "check() refuses the same templates at the same offsets");
    /* Literals the grammar allows, including ucschar and iprivate. */
    {
        char *got = expand_kv("!#$&'()*+,-./09:;=?@AZ[]_az~%41\xC2\xA0\xEE\x80\x80{var}", kv, &err);
        is_str(got, "!#$&'()*+,-./09:;=?@AZ[]_az~%41%C2%A0%EE%80%80value",
               "every allowed literal is kept or encoded");
        free(got);
    }
    ok(gapi__uritemplate_expand(NULL, "x", 1, &err, str_lookup, &v) == GAPI_EINVAL &&
           strstr(err.message, "out is NULL") != NULL,
       "NULL out refused");
    ok(gapi__uritemplate_expand(&out, "x", 1, &err, NULL, &v) == GAPI_EINVAL &&
           strstr(err.message, "lookup is NULL") != NULL,
       "NULL lookup refused");
    ok(gapi__uritemplate_expand(&out, NULL, 1, NULL, str_lookup, &v) == GAPI_EINVAL,
       "NULL template refused (err may be NULL)");
    ok(gapi__uritemplate_expand(&out, NULL, 0, &err, str_lookup, &v) == 0 && out.data &&
           out.len == 0 && out.data[0] == '\0',
       "empty template gives an empty C string");
    gapi__buf_free(&out);
}

/* Lookups that fail or return malformed values. */
static int bad_lookup(const char *name, size_t name_len, gapi__ut_value *out, void *ud)
{
    static const gapi__ut_str pairs[] = {{NULL, 0}, {"v", 1}};
    static const gapi__ut_str items[] = {{"a", 1}, {NULL, 0}, {"c", 1}};
    static const gapi__ut_str undef_pairs[] = {{"k", 1}, {NULL, 0}};
    (void)ud;
    if (name_len == 4 && memcmp(name, "fail", 4) == 0)
        return GAPI_ENOMEM;
    if (name_len == 3 && memcmp(name, "pos", 3) == 0)
        return 7;
    if (name_len == 4 && memcmp(name, "nstr", 4) == 0) {
        out->type = GAPI__UT_STRING;
        out->str.len = 3;
    } else if (name_len == 5 && memcmp(name, "nlist", 5) == 0) {
        out->type = GAPI__UT_LIST;
        out->n = 2;
    } else if (name_len == 4 && memcmp(name, "nkey", 4) == 0) {
        out->type = GAPI__UT_ASSOC;
        out->items = pairs;
        out->n = 1;
    } else if (name_len == 4 && memcmp(name, "type", 4) == 0) {
        out->type = (gapi__ut_type)42;
    } else if (name_len == 5 && memcmp(name, "holes", 5) == 0) {
        out->type = GAPI__UT_LIST;
        out->items = items;
        out->n = 3;
    } else if (name_len == 5 && memcmp(name, "undef", 5) == 0) {
        out->type = GAPI__UT_ASSOC; /* every value undefined: undefined */
        out->items = undef_pairs;
        out->n = 1;
    } else if (name_len == 5 && memcmp(name, "empty", 5) == 0) {
        out->type = GAPI__UT_STRING; /* NULL with length 0 is "" */
    } else if (name_len == 4 && memcmp(name, "keys", 4) == 0) {
        out->type = GAPI__UT_ASSOC;
        out->items = items; /* "a" -> NULL (undefined) */
        out->n = 1;
    }
    return 0;
}

static void test_lookup_errors(void)
{
    static const struct {
        const char *tmpl;
        int rc;
        const char *msg; /* or the expansion when rc == 0 */
    } cases[] = {
        {"ab{x}{fail}", GAPI_ENOMEM, "offset 6: lookup of variable 'fail' failed: out of memory"},
        {"{pos}", GAPI_EINVAL, "offset 1: lookup of variable 'pos' failed: invalid argument"},
        {"{+nstr}", GAPI_EINVAL,
         "offset 2: lookup of variable 'nstr' returned a NULL string with a non-zero length"},
        {"{nlist}", GAPI_EINVAL, "offset 1: lookup of variable 'nlist' returned a list with NULL"},
        {"{nkey}", GAPI_EINVAL,
         "offset 1: lookup of variable 'nkey' returned an associative array with a NULL name"},
        {"{type}", GAPI_EINVAL, "offset 1: lookup of variable 'type' returned an unknown"},
        {"x{holes:1}", GAPI_EINVAL,
         "offset 2: prefix modifier ':1' applied to variable 'holes', which is a list"},
        {"{?holes}{&holes*}", 0, "?holes=a,c&holes=a&holes=c"},
        {"{/undef,keys,undef*}{;empty}", 0, ";empty"},
        {"{?empty}{&empty*}{#empty}", 0, "?empty=&empty=#"},
    };
    gapi__buf out = GAPI__BUF_INIT;
    gapi__ut_error err;
    size_t i;
    int rc;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = cases[i].tmpl;
        gapi__buf_puts(&out, "keep");
        memset(&err, 0, sizeof(err));
        rc = gapi__uritemplate_expand(&out, t, strlen(t), &err, bad_lookup, NULL);
        if (cases[i].rc) {
            if (!ok(rc == cases[i].rc &&
                        strncmp(err.message, cases[i].msg, strlen(cases[i].msg)) == 0 &&
                        strcmp(out.data, "keep") == 0,
                    "lookup: \"%s\" -> %s", t, cases[i].msg))
                diag("  rc %d \"%s\" out \"%s\"", rc, err.message, out.data);
        } else {
            ok(rc == 0 && strncmp(out.data, "keep", 4) == 0 &&
                   strcmp(out.data + 4, cases[i].msg) == 0,
               "lookup: \"%s\" -> \"%s\" (got \"%s\")", t, cases[i].msg, out.data);
        }
        gapi__buf_reset(&out);
    }
    gapi__buf_free(&out);
}

/* ------------------------------------------------------------ visitor */

static int collect(const gapi__ut_varspec *vs, void *ud)
{
    gapi__buf *b = ud;
    gapi__buf_printf(b, "[%c %.*s %u %d @%zu]", vs->op ? vs->op : '_', (int)vs->name_len, vs->name,
                     vs->prefix, vs->explode, vs->offset);
    return vs->name_len == 4 && memcmp(vs->name, "stop", 4) == 0 ? 99 : 0;
}

static void test_visitor(void)
{
    static const char t[] = "x{+a,b.c:3}{?c*}/{d%41}{e:9999}";
    gapi__buf b = GAPI__BUF_INIT;
    gapi__ut_error err;

    ok(gapi__uritemplate_check(S(t), &err, collect, &b) == 0, "check: valid template");
    is_str(b.data, "[+ a 0 0 @3][+ b.c 3 0 @5][? c 0 1 @13][_ d%41 0 0 @18][_ e 9999 0 @24]",
           "check: visitor sees every varspec with its modifiers and offset");
    gapi__buf_reset(&b);
    ok(gapi__uritemplate_check(S("{a}{stop}{b}{"), &err, collect, &b) == GAPI_EINVAL,
       "check: a malformed tail is found before any visit");
    ok(b.len == 0, "check: ... and nothing was visited");
    gapi__buf_reset(&b);
    ok(gapi__uritemplate_check(S("{a}{stop}{b}"), &err, collect, &b) == 99 &&
           strcmp(err.message, "offset 4: stopped by the visitor at variable 'stop'") == 0,
       "check: the visitor's non-zero value stops it and is returned");
    gapi__buf_free(&b);
}

/* ------------------------------------------------------------ big values */

static void test_long_values(void)
{
    size_t n = 1u << 20, i;
    char *v = malloc(n + 1);
    const char *kv[] = {"v", NULL, NULL};
    gapi__buf want = GAPI__BUF_INIT;
    gapi__ut_error err;
    char *got;

    if (!v)
        abort();
    for (i = 0; i < n; i++)
        v[i] = "a/% \xC3\xA9~"[i % 7];
    v[n] = '\0';
    kv[1] = v;
    got = expand_kv("{+v}{v:5000}", kv, &err);
    gapi__pct_encode(&want, v, n, 1);
    /* 5000 characters: 833 cycles of 6 characters in 7 bytes, then "a/". */
    gapi__pct_encode(&want, v, 833 * 7 + 2, 0);
    ok(got && strcmp(got, want.data) == 0, "a 1 MiB value, and a 5000-character prefix of it");
    free(got);
    free(v);
    gapi__buf_free(&want);
}

/* ------------------------------------------------------------ allocation */

static long alloc_budget = -1; /* allocations left; -1: unlimited */

static void *failing_malloc(size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return malloc(n);
}

static void *failing_realloc(void *p, size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return realloc(p, n);
}

static const gapi__ut_str fx_list[] = {{"red", 3}, {"gr\xC3\xBCn", 5}, {"blue sky", 8}};
static const gapi__ut_str fx_assoc[] = {{"semi", 4}, {";", 1}, {"k\xC3\xA9y", 4}, {"a b/c", 5}};

static int fixed_lookup(const char *name, size_t name_len, gapi__ut_value *out, void *ud)
{
    (void)ud;
    if (name_len == 4 && memcmp(name, "list", 4) == 0) {
        out->type = GAPI__UT_LIST;
        out->items = fx_list;
        out->n = 3;
    } else if (name_len == 4 && memcmp(name, "keys", 4) == 0) {
        out->type = GAPI__UT_ASSOC;
        out->items = fx_assoc;
        out->n = 2;
    } else if (name_len == 3 && memcmp(name, "var", 3) == 0) {
        out->type = GAPI__UT_STRING;
        out->str.s = "value with spaces and / and \xE2\x82\xAC, long enough to need growth";
        out->str.len = strlen(out->str.s);
    }
    return 0;
}

static void test_alloc_failures(void)
{
    static const char t[] = "https://example.com/caf\xC3\xA9{/list*}{;keys*}{?var,list,keys*}"
                            "{&var:7}{#keys}/{+var}/x{.list}{undefined}";
    gapi__buf ref = GAPI__BUF_INIT, out = GAPI__BUF_INIT;
    gapi__ut_error err;
    long n;
    int rc = -1, good = 1, failures = 0, pre;

    if (gapi__uritemplate_expand(&ref, S(t), &err, fixed_lookup, NULL) != 0)
        abort();
    for (pre = 0; pre < 2; pre++) {
        for (n = 0; n < 100; n++) {
            gapi__buf_free(&out);
            if (pre)
                gapi__buf_puts(&out, "prefix:");
            alloc_budget = n;
            gapi_set_allocator(failing_malloc, failing_realloc, free);
            rc = gapi__uritemplate_expand(&out, S(t), &err, fixed_lookup, NULL);
            gapi_set_allocator(malloc, realloc, free);
            alloc_budget = -1;
            if (rc == 0)
                break;
            failures++;
            if (rc != GAPI_ENOMEM || strstr(err.message, "out of memory") == NULL ||
                out.len != (pre ? 7u : 0u) || (out.data && strcmp(out.data, pre ? "prefix:" : "")))
                good = 0;
        }
        ok(rc == 0 && n > 0 && strcmp(out.data + (pre ? 7 : 0), ref.data) == 0,
           "allocation failures%s: succeeds once %ld allocations are allowed, same result",
           pre ? " (appending)" : "", n);
    }
    ok(good && failures > 1, "allocation failures: each of %d gives GAPI_ENOMEM, out unchanged",
       failures);

    /* The helpers, too. */
    good = 1;
    for (n = 0; n < 20; n++) {
        gapi__buf_free(&out);
        gapi__buf_puts(&out, "/p");
        alloc_budget = n;
        gapi_set_allocator(failing_malloc, failing_realloc, free);
        rc = gapi__query_add(&out, "q",
                             S("a long value that needs the buffer to grow: \xE2\x82\xAC"));
        if (rc == 0)
            rc = gapi__query_add(&out, "k", S("v"));
        gapi_set_allocator(malloc, realloc, free);
        alloc_budget = -1;
        if (rc == 0)
            break;
        if (rc != GAPI_ENOMEM ||
            (strcmp(out.data, "/p") != 0 && strncmp(out.data, "/p?q=a%20long", 13) != 0))
            good = 0;
    }
    ok(rc == 0 && good &&
           strcmp(out.data, "/p?q=a%20long%20value%20that%20needs%20the%20buffer%20to%20grow%3A%20%"
                            "E2%82%AC&k=v") == 0,
       "query_add under allocation failures: GAPI_ENOMEM leaves the URL as it was");
    gapi__buf_free(&out);
    gapi__buf_free(&ref);
}

int main(void)
{
    test_suite();
    discovery_style();
    discovery_paths();
    test_encoding();
    test_query_add();
    test_errors();
    test_lookup_errors();
    test_visitor();
    test_long_values();
    test_alloc_failures();
    return tap_done();
}
