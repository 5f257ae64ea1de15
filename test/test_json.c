/*
 * Tests of the JSON parser (src/json/parse.c).
 *
 * Every parse goes through parse_twice(): once from the caller's buffer and
 * once from a malloc'd copy of exactly len bytes (no NUL after it), so ASan
 * and valgrind see any read past the end; both must agree. The discovery
 * documents in ../shared/discovery are parsed by ours and by json-c's
 * tokener and the trees compared. Hand-written tables then cover every
 * value kind, escapes, every class of error with its offset and message,
 * integer limits, number texts, UTF-8 validation, duplicate keys, depth,
 * a locale whose decimal point is ',', allocation failures and threads.
 * Last, a deterministic mutation loop checks that whatever ours accepts,
 * json-c accepts too, with an equal tree.
 */
#include <dirent.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "gapi.h"
#include "common/buf.h"
#include "json/parse.h"
#include "tap.h"

/* A string literal as pointer and length (the length excludes the NUL). */
#define S(lit) lit, sizeof(lit) - 1

/* ------------------------------------------------------------ helpers */

static int twice_mismatches; /* parse_twice runs whose two parses differed */
static int twice_runs;

static const char *plain(struct json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
}

/* Same tree and same serialization (NULL is JSON null). */
static int same_tree(struct json_object *a, struct json_object *b)
{
    return json_object_equal(a, b) && strcmp(plain(a), plain(b)) == 0;
}

/* Parse s twice (in place and from an exact-size copy); returns the first
 * result. The two runs must agree on the code, the error and the tree. */
static int parse_twice(const char *s, size_t len, unsigned depth, struct json_object **out,
                       gapi__json_error *err)
{
    struct json_object *a = NULL, *b = NULL;
    gapi__json_error ea, eb;
    char *copy = malloc(len ? len : 1);
    int ra, rb;

    if (!copy)
        abort();
    if (len)
        memcpy(copy, s, len);
    memset(&ea, 0, sizeof(ea));
    memset(&eb, 0, sizeof(eb));
    ra = gapi__json_parse(s, len, depth, &a, &ea);
    rb = gapi__json_parse(copy, len, depth, &b, &eb);
    free(copy);
    twice_runs++;
    if (ra != rb || (ra == 0 && !same_tree(a, b)) ||
        (ra != 0 && (ea.offset != eb.offset || strcmp(ea.message, eb.message) != 0))) {
        twice_mismatches++;
        diag("in-place and exact-copy parses differ for %.40s", s);
    }
    json_object_put(b);
    if (ra == 0)
        *out = a;
    if (err)
        *err = ea;
    return ra;
}

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
            buf[n] = '\0'; /* for json_tokener_parse */
            *len = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

/* ------------------------------------------------------------ differential */

static void differential_one(const char *path, const char *name)
{
    size_t len = 0;
    char *s = read_whole(path, &len);
    struct json_object *ours = NULL, *ref, *again = NULL;
    gapi__json_error err;
    int rc;

    if (!s) {
        ok(0, "%s: readable", name);
        return;
    }
    rc = parse_twice(s, len, 0, &ours, &err);
    if (!ok(rc == 0, "%s: ours parses it", name))
        diag("  offset %zu (line %u col %u): %s", err.offset, err.line, err.column, err.message);
    ref = json_tokener_parse(s);
    ok(ref != NULL, "%s: json-c parses it", name);
    ok(rc == 0 && ref && json_object_equal(ours, ref), "%s: json_object_equal", name);
    ok(rc == 0 && ref && strcmp(plain(ours), plain(ref)) == 0, "%s: same plain serialization",
       name);
    /* Our tree serialized and parsed again gives the same tree. */
    if (rc == 0) {
        const char *text = plain(ours);
        rc = parse_twice(text, strlen(text), 0, &again, NULL);
        ok(rc == 0 && same_tree(ours, again), "%s: serialization parses back equal", name);
    } else {
        ok(0, "%s: serialization parses back equal", name);
    }
    json_object_put(again);
    json_object_put(ours);
    json_object_put(ref);
    free(s);
}

static const char *const discovery_docs[] = {
    "bigquery.v2.json",
    "compute.v1.json",
    "drive.v3.json",
    "gmail.v1.json",
    "iam.v1.json",
    "logging.v2.json",
    "pubsub.v1.json",
    "sheets.v4.json",
    "storage.v1.json",
    "youtube.v3.json",
    NULL,
};

static int is_known_doc(const char *name)
{
    int i;
    for (i = 0; discovery_docs[i]; i++)
        if (strcmp(discovery_docs[i], name) == 0)
            return 1;
    return 0;
}

static void test_differential(void)
{
    char rel[256], *path, *dir;
    struct dirent *e;
    DIR *d;
    int i;

    for (i = 0; discovery_docs[i]; i++) {
        snprintf(rel, sizeof(rel), "discovery/%s", discovery_docs[i]);
        if ((path = tap_shared_path(rel)) != NULL) {
            differential_one(path, discovery_docs[i]);
            free(path);
        }
    }
    /* Documents added to the directory later are covered too. */
    if ((dir = tap_shared_path("discovery")) == NULL)
        return;
    if ((d = opendir(dir)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            size_t l = strlen(e->d_name);
            char full[4096];
            if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0 || is_known_doc(e->d_name))
                continue;
            snprintf(full, sizeof(full), "%s/%s", dir, e->d_name);
            differential_one(full, e->d_name);
        }
        closedir(d);
    }
    free(dir);
}

/* ------------------------------------------------------------ valid input */

struct valid_case {
    const char *in;
    size_t len;
    const char *plain; /* expected json-c PLAIN serialization */
    json_type type;    /* json-c's tokener must give an equal tree too */
};

static const struct valid_case valid_cases[] = {
    {S("null"), "null", json_type_null},
    {S("true"), "true", json_type_boolean},
    {S("false"), "false", json_type_boolean},
    {S("0"), "0", json_type_int},
    {S("-0"), "0", json_type_int}, /* json-c: integer 0 */
    {S("7"), "7", json_type_int},
    {S("-123"), "-123", json_type_int},
    {S("1.5"), "1.5", json_type_double},
    {S("1.0"), "1.0", json_type_double},
    {S("-0.0"), "-0.0", json_type_double},
    {S("1e5"), "1e5", json_type_double},
    {S("1E+2"), "1E+2", json_type_double},
    {S("-1.5e-3"), "-1.5e-3", json_type_double},
    {S("0.1e-400"), "0.1e-400", json_type_double},
    {S("1E400"), "1E400", json_type_double},
    {S("\"\""), "\"\"", json_type_string},
    {S("\"abc\""), "\"abc\"", json_type_string},
    {S("[]"), "[]", json_type_array},
    {S("{}"), "{}", json_type_object},
    {S("[[]]"), "[[]]", json_type_array},
    {S("[1,\"a\",null,true,false,{\"b\":[]},-2.5]"), "[1,\"a\",null,true,false,{\"b\":[]},-2.5]",
     json_type_array},
    {S("{\"a\":{\"b\":{\"c\":null}},\"d\":[{}]}"), "{\"a\":{\"b\":{\"c\":null}},\"d\":[{}]}",
     json_type_object},
    {S(" \t\r\n[ 1 ,\t2\r\n, {\n\"k\" : \"v\" } ]\n\t "), "[1,2,{\"k\":\"v\"}]", json_type_array},
    {S("{\"a\":1,\"a\":2,\"b\":3,\"a\":4}"), "{\"a\":4,\"b\":3}", json_type_object},
    {S("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", json_type_string},
    {S("\"caf\\u00e9 \\u20AC\""), "\"caf\xC3\xA9 \xE2\x82\xAC\"", json_type_string},
    {S("\"\\uD834\\uDD1E\\ud83d\\ude00\""), "\"\xF0\x9D\x84\x9E\xF0\x9F\x98\x80\"",
     json_type_string},
    {S("\"a\\u0000b\""), "\"a\\u0000b\"", json_type_string},
    {S("\"\x7F \xC2\x80 \xDF\xBF \xE0\xA0\x80 \xED\x9F\xBF \xEE\x80\x80 \xEF\xBF\xBF\""),
     "\"\x7F \xC2\x80 \xDF\xBF \xE0\xA0\x80 \xED\x9F\xBF \xEE\x80\x80 \xEF\xBF\xBF\"",
     json_type_string},
    {S("\"\xF0\x90\x80\x80 \xF4\x8F\xBF\xBF\""), "\"\xF0\x90\x80\x80 \xF4\x8F\xBF\xBF\"",
     json_type_string},
    /* Runs longer than 8 bytes with specials at every alignment. */
    {S("\"0123456789abcdef\\n0123456\xC3\xA9\\t01234567\""),
     "\"0123456789abcdef\\n0123456\xC3\xA9\\t01234567\"", json_type_string},
    {S("{\"key with \\\"escapes\\\" in it\":\"v\",\"k\\u00e9y\":\"\xC3\xA9\"}"),
     "{\"key with \\\"escapes\\\" in it\":\"v\",\"k\xC3\xA9y\":\"\xC3\xA9\"}", json_type_object},
};

static void test_valid(void)
{
    size_t i;

    for (i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct valid_case *c = &valid_cases[i];
        struct json_object *o = (struct json_object *)&o, *ref;
        gapi__json_error err;
        int rc = parse_twice(c->in, c->len, 0, &o, &err);

        if (!ok(rc == 0, "valid %zu (%s) parses", i, c->plain)) {
            diag("  rc %d at %zu: %s", rc, err.offset, err.message);
            continue;
        }
        ok(json_object_get_type(o) == c->type, "valid %zu: type %s", i, json_type_to_name(c->type));
        is_str(plain(o), c->plain, "valid %zu: serializes", i);
        ref = json_tokener_parse(c->in);
        ok(same_tree(o, ref), "valid %zu: same tree as json-c", i);
        json_object_put(ref);
        json_object_put(o);
    }
}

/* Values a serialization does not show: lengths with NUL, exact doubles. */
static void test_values(void)
{
    struct json_object *o = NULL;
    const char *s;

    if (parse_twice(S("\"a\\u0000b\\u0000\""), 0, &o, NULL) == 0) {
        is_int(json_object_get_string_len(o), 4, "\\u0000 kept: length 4");
        s = json_object_get_string(o);
        ok(memcmp(s, "a\0b\0", 5) == 0, "\\u0000 kept: bytes");
        json_object_put(o);
    } else {
        ok(0, "\\u0000 string parses");
    }
    if (parse_twice(S("[0.1, 3.141592653589793, 1.5e-10, 2.2250738585072014e-308, 1e999]"), 0, &o,
                    NULL) == 0) {
        ok(json_object_get_double(json_object_array_get_idx(o, 0)) == 0.1, "0.1 exact");
        ok(json_object_get_double(json_object_array_get_idx(o, 1)) == 3.141592653589793,
           "pi exact");
        ok(json_object_get_double(json_object_array_get_idx(o, 2)) == 1.5e-10, "1.5e-10 exact");
        ok(json_object_get_double(json_object_array_get_idx(o, 3)) == 2.2250738585072014e-308,
           "DBL_MIN exact");
        ok(isinf(json_object_get_double(json_object_array_get_idx(o, 4))), "1e999 is inf");
        is_str(plain(o), "[0.1,3.141592653589793,1.5e-10,2.2250738585072014e-308,1e999]",
               "double texts kept");
        json_object_put(o);
    } else {
        ok(0, "doubles parse");
    }
}

/* A number text longer than the 64-byte stack buffer goes through scratch. */
static void test_long_number(void)
{
    char text[300];
    struct json_object *o = NULL, *ref;
    size_t n;

    strcpy(text, "0.");
    for (n = 2; n < 250; n++)
        text[n] = (char)('0' + n % 10);
    strcpy(text + n, "e-3");
    if (parse_twice(text, strlen(text), 0, &o, NULL) != 0) {
        ok(0, "250-character number parses");
        return;
    }
    is_str(plain(o), text, "250-character number keeps its text");
    ref = json_tokener_parse(text);
    ok(same_tree(o, ref), "250-character number: same as json-c");
    json_object_put(ref);
    json_object_put(o);
}

/* ------------------------------------------------------------ integers */

struct int_case {
    const char *in;
    int is_uint, is_double; /* expected representation */
    int64_t i64;
    uint64_t u64;
    int jsonc_same;
};

static const struct int_case int_cases[] = {
    {"9223372036854775807", 0, 0, INT64_MAX, 0, 1},
    {"9223372036854775808", 1, 0, 0, (uint64_t)INT64_MAX + 1, 1},
    {"18446744073709551615", 1, 0, 0, UINT64_MAX, 1},
    {"10000000000000000000", 1, 0, 0, 10000000000000000000ULL, 1},
    {"-9223372036854775808", 0, 0, INT64_MIN, 0, 1},
    {"-9223372036854775807", 0, 0, -INT64_MAX, 0, 1},
    {"1234567890123456789", 0, 0, 1234567890123456789LL, 0, 1},
    /* Out of range: json-c clamps to UINT64_MAX / INT64_MIN; we keep the
     * value as a double with its text. */
    {"18446744073709551616", 0, 1, 0, 0, 0},
    {"99999999999999999999", 0, 1, 0, 0, 0},
    {"-9223372036854775809", 0, 1, 0, 0, 0},
    {"123456789012345678901234567890", 0, 1, 0, 0, 0},
};

static void test_integers(void)
{
    const struct int_case *c;

    for (c = int_cases; c < int_cases + sizeof(int_cases) / sizeof(int_cases[0]); c++) {
        struct json_object *o = NULL, *ref;
        int rc = parse_twice(c->in, strlen(c->in), 0, &o, NULL);

        if (!ok(rc == 0, "integer %s parses", c->in))
            continue;
        is_str(plain(o), c->in, "integer %s: text round-trips", c->in);
        if (c->is_double) {
            ok(json_object_is_type(o, json_type_double) &&
                   json_object_get_double(o) == strtod(c->in, NULL),
               "integer %s: double with the nearest value", c->in);
        } else if (c->is_uint) {
            ok(json_object_is_type(o, json_type_int) && json_object_get_uint64(o) == c->u64 &&
                   json_object_get_int64(o) == INT64_MAX,
               "integer %s: uint64", c->in);
        } else {
            ok(json_object_is_type(o, json_type_int) && json_object_get_int64(o) == c->i64,
               "integer %s: int64", c->in);
        }
        ref = json_tokener_parse(c->in);
        if (c->jsonc_same)
            ok(same_tree(o, ref), "integer %s: same as json-c", c->in);
        else
            ok(ref && !json_object_equal(o, ref), "integer %s: json-c clamps it to %s", c->in,
               plain(ref));
        json_object_put(ref);
        json_object_put(o);
    }
}

/* ------------------------------------------------------------ errors */

struct error_case {
    const char *in;
    size_t len;
    size_t offset;
    const char *message; /* substring of the message */
};

static const struct error_case error_cases[] = {
    /* empty input, trailing garbage */
    {S(""), 0, "empty"},
    {S(" \t\r\n "), 5, "empty"},
    {S("[1] x"), 4, "unexpected 'x' after the JSON value"},
    {S("1 2"), 2, "unexpected '2' after"},
    {S("{}}"), 2, "unexpected '}' after"},
    {S("123abc"), 3, "unexpected 'a' after"},
    {S("truex"), 4, "unexpected 'x' after"},
    {S("[1]\0"), 3, "unexpected byte 0x00 after"},
    /* literals and non-JSON values */
    {S("tru"), 0, "invalid literal"},
    {S("nul"), 0, "invalid literal"},
    {S("True"), 0, "expected a value, found 'T'"},
    {S("NaN"), 0, "NaN and Infinity"},
    {S("[Infinity]"), 1, "NaN and Infinity"},
    {S("-Infinity"), 1, "expected a digit after '-'"},
    {S("'a'"), 0, "single-quoted"},
    {S("/*c*/1"), 0, "comments"},
    {S("[1,//x\n2]"), 3, "comments"},
    {S("[1]//x"), 3, "unexpected '/' after"},
    {S("\xEF\xBB\xBF{}"), 0, "byte order mark"},
    /* structure */
    {S("[1,]"), 3, "trailing comma before ']'"},
    {S("{\"a\":1,}"), 7, "trailing comma before '}'"},
    {S("[,1]"), 1, "expected a value, found ','"},
    {S("[1 2]"), 3, "expected ',' or ']' after array element, found '2'"},
    {S("[1"), 2, "expected ',' or ']' after array element, found end of input"},
    {S("["), 1, "expected a value, found end of input"},
    {S("]"), 0, "expected a value, found ']'"},
    {S("{"), 1, "object key) or '}', found end of input"},
    {S("{,}"), 1, "object key) or '}', found ','"},
    {S("{1:2}"), 1, "object key) or '}', found '1'"},
    {S("{'a':1}"), 1, "found '''"},
    {S("{\"a\" 1}"), 5, "expected ':' after object key, found '1'"},
    {S("{\"a\""), 4, "expected ':' after object key, found end of input"},
    {S("{\"a\":}"), 5, "expected a value, found '}'"},
    {S("{\"a\":1 \"b\":2}"), 7, "expected ',' or '}' after object member"},
    {S("{\"a\":1,,}"), 7, "object key), found ','"},
    {S("{\"a\":1"), 6, "expected ',' or '}' after object member, found end of input"},
    /* numbers */
    {S("01"), 1, "leading zeros"},
    {S("-01"), 2, "leading zeros"},
    {S("[00]"), 2, "leading zeros"},
    {S("-"), 1, "expected a digit after '-', found end of input"},
    {S("-a"), 1, "expected a digit after '-', found 'a'"},
    {S("1."), 2, "digit after the decimal point"},
    {S("1.e5"), 2, "digit after the decimal point"},
    {S(".5"), 0, "must start with a digit"},
    {S("+1"), 0, "'+'"},
    {S("1e"), 2, "digit in the exponent"},
    {S("1e+"), 3, "digit in the exponent"},
    {S("1E-x"), 3, "digit in the exponent"},
    {S("0x10"), 1, "unexpected 'x' after"},
    /* strings */
    {S("\"abc"), 4, "unterminated string (opened at offset 0)"},
    {S("[\"abcdefghijklmnop"), 18, "unterminated string (opened at offset 1)"},
    {S("\"a\x01"
       "b\""),
     2, "unescaped control character 0x01"},
    {S("\"a\tb\""), 2, "unescaped control character 0x09"},
    {S("\"abcdefghij\nb\""), 11, "unescaped control character 0x0A"},
    {S("\"a\0b\""), 2, "unescaped control character 0x00"},
    {S("\"\\x\""), 1, "invalid escape: backslash followed by 'x'"},
    {S("\"\\'\""), 1, "invalid escape"},
    {S("\"\\U0041\""), 1, "invalid escape"},
    {S("\"\\"), 2, "ends inside an escape"},
    {S("\"\\u12\""), 1, "expected four hex digits"},
    {S("\"\\u12G4\""), 1, "expected four hex digits"},
    {S("\"\\u123"), 1, "expected four hex digits"},
    {S("\"\\uD800\""), 1, "unpaired high surrogate \\uD800"},
    {S("\"\\udbff\""), 1, "unpaired high surrogate \\uDBFF"},
    {S("\"\\uDC00\""), 1, "unpaired low surrogate \\uDC00"},
    {S("\"\\uDC00\\uD800\""), 1, "unpaired low surrogate"},
    {S("\"\\uD800\\u0041\""), 1, "unpaired high surrogate"},
    {S("\"\\uD800\\uD800\""), 1, "unpaired high surrogate"},
    {S("\"\\uD800x\""), 1, "unpaired high surrogate"},
    {S("\"\\uD800\\n\""), 1, "unpaired high surrogate"},
    {S("\"\\uD800\\uZZZZ\""), 7, "expected four hex digits"},
    {S("{\"a\\u0000b\":1}"), 1, "object key contains \\u0000"},
    /* UTF-8 */
    {S("\"\xFF\""), 1, "invalid UTF-8 in string: byte that never appears in UTF-8 0xFF"},
    {S("\"\xF5\x80\x80\x80\""), 1, "never appears"},
    {S("\"\x80\""), 1, "stray continuation byte 0x80"},
    {S("\"abc\xBF\""), 4, "stray continuation byte 0xBF"},
    {S("\"\xC0\xAF\""), 1, "overlong"},
    {S("\"\xC1\xBF\""), 1, "overlong"},
    {S("\"\xE0\x80\xAF\""), 1, "overlong"},
    {S("\"\xE0\x9F\xBF\""), 1, "overlong"},
    {S("\"\xF0\x80\x80\xAF\""), 1, "overlong"},
    {S("\"\xF0\x8F\xBF\xBF\""), 1, "overlong"},
    {S("\"\xED\xA0\x80\""), 1, "encoded surrogate"},
    {S("\"\xED\xBF\xBF\""), 1, "encoded surrogate"},
    {S("\"\xF4\x90\x80\x80\""), 1, "above U+10FFFF"},
    {S("\"\xC3\""), 1, "truncated"},
    {S("\"\xE2\x82\""), 1, "truncated"},
    {S("\"\xE2\x82"), 1, "truncated"},
    {S("\"\xF0\x9F\x98"), 1, "truncated"},
    {S("\"\xE2x\x82\""), 1, "truncated"},
    {S("\"0123456789\xC3\x28\""), 11, "truncated"},
    {S("[\"ok\", \"\xC3\xA9\", \"\xE9t\xE9\"]"), 14, "truncated"},
};

static void test_errors(void)
{
    size_t i;

    for (i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        const struct error_case *c = &error_cases[i];
        struct json_object *sentinel = (struct json_object *)&sentinel, *o = sentinel;
        gapi__json_error err;
        int rc = parse_twice(c->in, c->len, 0, &o, &err);

        if (!ok(rc == GAPI_EJSON, "error %zu (%s): GAPI_EJSON", i, c->message)) {
            if (rc == 0) {
                diag("  accepted as %s", plain(o));
                json_object_put(o);
            }
            continue;
        }
        ok(o == sentinel, "error %zu: *out untouched", i);
        if (!ok(err.offset == c->offset && strstr(err.message, c->message) != NULL,
                "error %zu: offset %zu, message", i, c->offset))
            diag("  got offset %zu \"%s\"", err.offset, err.message);
    }
}

static void test_error_position(void)
{
    static const char doc[] = "{\n  \"a\": [1, 2],\r\n  \"b\": tru\n}";
    struct json_object *o = NULL;
    gapi__json_error err;

    ok(parse_twice(doc, sizeof(doc) - 1, 0, &o, &err) == GAPI_EJSON, "multi-line error");
    is_int(err.offset, 25, "multi-line error: offset");
    is_int(err.line, 3, "multi-line error: line");
    is_int(err.column, 8, "multi-line error: column");
    ok(parse_twice(S("[1,\n\n  x]"), 0, &o, &err) == GAPI_EJSON && err.line == 3 && err.column == 3,
       "line 3 column 3");
    ok(parse_twice(S("x"), 0, &o, &err) == GAPI_EJSON && err.line == 1 && err.column == 1,
       "line 1 column 1");
}

static void test_arguments(void)
{
    struct json_object *o = NULL;
    gapi__json_error err;

    is_int(gapi__json_parse("1", 1, 0, NULL, &err), GAPI_EINVAL, "out NULL: GAPI_EINVAL");
    is_int(gapi__json_parse(NULL, 1, 0, &o, &err), GAPI_EINVAL, "s NULL, len 1: GAPI_EINVAL");
    is_int(gapi__json_parse(NULL, 0, 0, &o, &err), GAPI_EJSON, "s NULL, len 0: empty input");
    is_int(gapi__json_parse("[1,]", 4, 0, &o, NULL), GAPI_EJSON, "err NULL is allowed");
    ok(gapi__json_parse("[1] trailing", 3, 0, &o, NULL) == 0 && json_object_array_length(o) == 1,
       "only len bytes are read");
    json_object_put(o);
    o = (struct json_object *)&o;
    ok(gapi__json_parse("null", 4, 0, &o, NULL) == 0 && o == NULL, "null gives *out == NULL");
}

/* ------------------------------------------------------------ depth */

static char *nested(unsigned n, int objects)
{
    char *s = malloc(n * 6 + 8), *p = s;
    unsigned i;

    if (!s)
        abort();
    for (i = 0; i < n; i++) {
        if (objects) {
            memcpy(p, "{\"a\":", 5);
            p += 5;
        } else {
            *p++ = '[';
        }
    }
    *p++ = '1';
    for (i = 0; i < n; i++)
        *p++ = objects ? '}' : ']';
    *p = '\0';
    return s;
}

static void test_depth(void)
{
    struct json_object *o = NULL;
    gapi__json_error err;
    char *s;
    int objects;

    for (objects = 0; objects < 2; objects++) {
        const char *kind = objects ? "objects" : "arrays";
        unsigned step = objects ? 5 : 1;

        o = NULL;
        s = nested(3, objects);
        ok(parse_twice(s, strlen(s), 3, &o, NULL) == 0, "%s: depth 3 with limit 3", kind);
        json_object_put(o);
        free(s);
        s = nested(4, objects);
        ok(parse_twice(s, strlen(s), 3, &o, &err) == GAPI_EJSON && err.offset == 3 * step &&
               strcmp(err.message, "nesting deeper than 3") == 0,
           "%s: depth 4 with limit 3 fails at the 4th opening", kind);
        free(s);
        o = NULL;
        s = nested(512, objects);
        ok(parse_twice(s, strlen(s), 0, &o, NULL) == 0, "%s: depth 512 by default", kind);
        json_object_put(o);
        free(s);
        s = nested(513, objects);
        ok(parse_twice(s, strlen(s), 0, &o, &err) == GAPI_EJSON && err.offset == 512 * step &&
               strcmp(err.message, "nesting deeper than 512") == 0,
           "%s: depth 513 fails by default", kind);
        free(s);
        s = nested(100000, objects);
        ok(parse_twice(s, strlen(s), 0, &o, &err) == GAPI_EJSON && err.offset == 512 * step,
           "%s: depth 100000 fails without exhausting the stack", kind);
        free(s);
    }
    /* Depth counts open containers, not values: a wide document is fine. */
    o = NULL;
    ok(parse_twice(S("[[1],[2],[3],{\"a\":4}]"), 2, &o, NULL) == 0, "siblings do not add depth");
    json_object_put(o);
}

/* ------------------------------------------------------------ objects */

static void test_duplicates(void)
{
    gapi__buf doc = GAPI__BUF_INIT;
    struct json_object *o = NULL, *ref, *v;
    char key[32];
    int i, good = 1, rc = 0;

    /* 1000 keys, then each again with a new value in reverse order: the key
     * filter fills up, and every duplicate must still replace. */
    rc |= gapi__buf_puts(&doc, "{");
    for (i = 0; i < 1000; i++)
        rc |= gapi__buf_printf(&doc, "\"key%d\":%d,", i, i);
    for (i = 999; i >= 0; i--)
        rc |= gapi__buf_printf(&doc, "\"key%d\":%d%s", i, i + 5000, i ? "," : "}");
    if (rc != 0)
        abort();
    if (parse_twice(doc.data, doc.len, 0, &o, NULL) != 0) {
        ok(0, "1000 duplicated keys parse");
        gapi__buf_free(&doc);
        return;
    }
    is_int(json_object_object_length(o), 1000, "1000 duplicated keys: 1000 members");
    for (i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        if (!json_object_object_get_ex(o, key, &v) || json_object_get_int(v) != i + 5000)
            good = 0;
    }
    ok(good, "1000 duplicated keys: the last value wins");
    ref = json_tokener_parse(doc.data);
    ok(same_tree(o, ref), "1000 duplicated keys: same as json-c (order too)");
    json_object_put(ref);
    json_object_put(o);
    gapi__buf_free(&doc);

    o = NULL;
    ok(parse_twice(S("{\"\":1,\"\":2}"), 0, &o, NULL) == 0 && strcmp(plain(o), "{\"\":2}") == 0,
       "empty key duplicated");
    json_object_put(o);
    o = NULL;
    ok(parse_twice(S("{\"a\":{\"a\":1},\"a\":{\"b\":2}}"), 0, &o, NULL) == 0 &&
           strcmp(plain(o), "{\"a\":{\"b\":2}}") == 0,
       "duplicate replaces a whole subtree (no leak)");
    json_object_put(o);
    o = NULL;
    ok(parse_twice(S("{\"a\\u0062\":1,\"ab\":2}"), 0, &o, NULL) == 0 &&
           strcmp(plain(o), "{\"ab\":2}") == 0,
       "escaped and plain spellings of a key are duplicates");
    json_object_put(o);
}

/* ------------------------------------------------------------ locale */

/* Switch LC_NUMERIC to a locale whose decimal point is ',': an installed
 * one, else one built with localedef into tmpdir (found through LOCPATH).
 * setlocale rather than newlocale: glibc's newlocale leaks its copy of
 * LOCPATH, which LeakSanitizer would report. Returns 0 when none works. */
static int set_comma_locale(char *tmpdir, size_t size)
{
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8",  "de_DE",       "fr_FR.UTF-8",
                                        "fr_FR.utf8",  "fr_FR",       "nl_NL.UTF-8", "ru_RU.UTF-8",
                                        "es_ES.UTF-8", "it_IT.UTF-8", NULL};
    char cmd[512];
    int i, found;

    tmpdir[0] = '\0';
    for (i = 0; names[i]; i++)
        if (setlocale(LC_NUMERIC, names[i]) != NULL)
            return 1;
    snprintf(tmpdir, size, "/tmp/gapi-test-json-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = '\0';
        return 0;
    }
    snprintf(cmd, sizeof(cmd), "localedef -i de_DE -f ISO-8859-1 %s/de_DE >/dev/null 2>&1", tmpdir);
    if (system(cmd) == -1)
        return 0;
    setenv("LOCPATH", tmpdir, 1);
    found = setlocale(LC_NUMERIC, "de_DE") != NULL;
    unsetenv("LOCPATH");
    return found;
}

static void test_locale(void)
{
    static const char doc[] = "[1.5, -2.25e3, 0.1, 12345.678]";
    char tmpdir[64], cmd[128];
    struct json_object *o = NULL, *ref = NULL;
    int rc;

    if (!set_comma_locale(tmpdir, sizeof(tmpdir))) {
        skip(4, "no locale with a decimal comma (none installed, localedef failed)");
    } else {
        if (!ok(strcmp(localeconv()->decimal_point, ",") == 0 && strtod("1.5", NULL) == 1.0,
                "locale with ',' active: plain strtod(\"1.5\") gives 1"))
            diag("  decimal point \"%s\"", localeconv()->decimal_point);
        rc = parse_twice(doc, sizeof(doc) - 1, 0, &o, NULL);
        ref = json_tokener_parse(doc);
        ok(rc == 0 && json_object_get_double(json_object_array_get_idx(o, 0)) == 1.5 &&
               json_object_get_double(json_object_array_get_idx(o, 1)) == -2250.0 &&
               json_object_get_double(json_object_array_get_idx(o, 2)) == 0.1 &&
               json_object_get_double(json_object_array_get_idx(o, 3)) == 12345.678,
           "decimal-comma locale: doubles converted in the C locale");
        ok(rc == 0 && same_tree(o, ref), "decimal-comma locale: same tree as json-c");
        ok(rc == 0 && strcmp(plain(o), "[1.5,-2.25e3,0.1,12345.678]") == 0,
           "decimal-comma locale: texts kept");
        setlocale(LC_NUMERIC, "C");
        json_object_put(o);
        json_object_put(ref);
    }
    if (tmpdir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            diag("could not remove %s", tmpdir);
    }
}

/* ------------------------------------------------------------ allocation */

static long alloc_budget = -1; /* allocations left before failing; -1: no limit */

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

/* Fail each of our own (scratch and value stack) allocations in turn:
 * GAPI_ENOMEM, *out untouched, nothing leaked (ASan / valgrind). json-c's
 * own allocations use plain malloc and are not covered here. */
static void test_alloc_failure(void)
{
    struct json_object *big = json_object_new_array(), *o;
    const char *text;
    gapi__json_error err;
    int i, rc = GAPI_ENOMEM, good = 1;
    long n;

    /* Enough array elements to grow the value stack, long escaped strings
     * and numbers to grow scratch, nested keys to hold scratch. */
    for (i = 0; i < 300; i++) {
        struct json_object *m = json_object_new_object();
        char k[600];
        memset(k, 'k', sizeof(k) - 1);
        k[sizeof(k) - 1] = '\0';
        k[i % 500] = '\n'; /* an escape */
        json_object_object_add(m, k, json_object_new_string(k));
        json_object_object_add(m, "n",
                               json_object_new_double_s(1.5, "1.50000000000000000000000"
                                                             "00000000000000000000000000"
                                                             "000000000000000000"));
        json_object_array_add(big, m);
    }
    text = plain(big);
    for (n = 0; rc == GAPI_ENOMEM && n < 10000; n++) {
        o = (struct json_object *)&o;
        alloc_budget = n;
        gapi_set_allocator(failing_malloc, failing_realloc, free);
        rc = gapi__json_parse(text, strlen(text), 0, &o, &err);
        gapi_set_allocator(malloc, realloc, free);
        alloc_budget = -1;
        if (rc == GAPI_ENOMEM &&
            (o != (struct json_object *)&o || strcmp(err.message, "out of memory") != 0))
            good = 0;
    }
    ok(rc == 0 && n > 1, "allocation failures: succeeds once %ld allocations are allowed", n - 1);
    ok(good, "allocation failures: each gives GAPI_ENOMEM, \"out of memory\", *out untouched");
    ok(rc == 0 && same_tree(o, big), "allocation failures: final tree is right");
    if (rc == 0)
        json_object_put(o);
    json_object_put(big);
}

/* ------------------------------------------------------------ threads */

#define THREADS 4

static void *thread_main(void *arg)
{
    static const char doc[] = "{\"a\":[0.5,1e3,-2.75,\"x\\u00e9\"],\"b\":12345678901234567890}";
    struct json_object *o, *first = NULL;
    int i, *good = arg;

    *good = 1;
    for (i = 0; i < 2000; i++) {
        if (gapi__json_parse(doc, sizeof(doc) - 1, 0, &o, NULL) != 0) {
            *good = 0;
            break;
        }
        if (!first)
            first = o;
        else if (!json_object_equal(first, o))
            *good = 0;
        if (o != first)
            json_object_put(o);
    }
    json_object_put(first);
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[THREADS];
    int good[THREADS], i, all = 1, started = 0;

    for (i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, thread_main, &good[i]) == 0)
            started++;
    for (i = 0; i < started; i++) {
        pthread_join(t[i], NULL);
        all &= good[i];
    }
    ok(started == THREADS && all, "%d threads parse at once (first use of the C locale too)",
       THREADS);
}

/* ------------------------------------------------------------ mutations */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint32_t rnd(void)
{
    /* xorshift64*: deterministic, good enough to pick mutations */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Seeds: valid documents with every construct, and no integers long enough
 * that joining two by a mutation would leave the int64/uint64 range (json-c
 * clamps those; we do not). */
static const char *const seeds[] = {
    "{\"kind\": \"storage#object\", \"name\": \"a/b c.txt\", \"size\": \"1024\",\n"
    " \"metadata\": {\"k\": \"v\", \"e\": \"caf\\u00e9 \\uD83D\\uDE00 \\\"q\\\" \\\\ \\/ \\t\"},\n"
    " \"acl\": [{\"role\": \"OWNER\", \"n\": 12, \"f\": -0.5e+3}, {\"role\": \"READER\"}],\n"
    " \"ok\": true, \"no\": false, \"none\": null, \"pi\": 3.14159, \"z\": 0, \"neg\": -7}",
    "[1, -2, 3.5, 1e5, -0, 0.25E-2, \"\", \"x\", [], {}, [[[\"deep\"]]], "
    "{\"a\": {\"b\": {\"c\": [null, true]}}}]",
    "{\"error\": {\"code\": 404, \"message\": \"No such object: b/o\", \"errors\": [{\"message\": "
    "\"No such object\", \"domain\": \"global\", \"reason\": \"notFound\"}]}}",
    "\"just a string with \\u00e9scapes \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 and "
    "\\n newlines\"",
    "{\"items\": [{\"id\": \"1\", \"tags\": [\"a\", \"b\"]}, {\"id\": \"2\", \"tags\": []}], "
    "\"nextPageToken\": \"CgRhYmNk\", \"dup\": 1, \"dup\": 2}",
};

static const char interesting[] = "{}[],:\"\\0123456789-+.eEtrufalsn \t\r\nu/'x\x01\x7f\x80\xbf"
                                  "\xc0\xc3\xe2\xed\xf0\xf4\xff";

/* Mutate buf[0..*len) in place (capacity cap). */
static void mutate(char *buf, size_t *len, size_t cap)
{
    size_t n = *len, at, k;
    unsigned ops = 1 + rnd() % 3;

    while (ops--) {
        at = n ? rnd() % n : 0;
        switch (rnd() % 6) {
        case 0: /* random byte */
            if (n)
                buf[at] = (char)(rnd() & 0xff);
            break;
        case 1: /* interesting byte */
            if (n)
                buf[at] = interesting[rnd() % (sizeof(interesting) - 1)];
            break;
        case 2: /* delete */
            if (n) {
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
            }
            break;
        case 3: /* insert an interesting byte */
            if (n < cap) {
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = interesting[rnd() % (sizeof(interesting) - 1)];
                n++;
            }
            break;
        case 4: /* duplicate a short span */
            k = 1 + rnd() % 8;
            if (at + k <= n && n + k <= cap) {
                memmove(buf + at + k, buf + at, n - at);
                n += k;
            }
            break;
        default: /* truncate */
            n = at;
            break;
        }
    }
    *len = n;
}

static void test_mutations(void)
{
    enum { ROUNDS = 4000, CAP = 2048 };
    char buf[CAP + 1];
    size_t nseeds = sizeof(seeds) / sizeof(seeds[0]), len;
    int i, accepted = 0, ref_accepted = 0, bad_accept = 0, bad_error = 0, crashes_none = 1;
    struct json_object *o, *ref;
    gapi__json_error err;

    for (i = 0; (size_t)i < nseeds; i++) {
        o = NULL;
        ok(parse_twice(seeds[i], strlen(seeds[i]), 32, &o, NULL) == 0, "mutation seed %d is valid",
           i);
        json_object_put(o);
    }
    for (i = 0; i < ROUNDS; i++) {
        const char *seed = seeds[(size_t)i % nseeds];
        int rc;

        len = strlen(seed);
        memcpy(buf, seed, len);
        mutate(buf, &len, CAP);
        buf[len] = '\0';
        o = NULL;
        /* json_tokener_parse's default depth is 32: use the same limit. */
        rc = parse_twice(buf, len, 32, &o, &err);
        if (rc != 0 && rc != GAPI_EJSON)
            crashes_none = 0;
        if (rc == GAPI_EJSON && (err.offset > len || !err.message[0] || !err.line || !err.column))
            bad_error++;
        /* json_tokener_parse stops at a NUL; ours rejects any raw NUL. */
        ref = memchr(buf, '\0', len) ? NULL : json_tokener_parse(buf);
        ref_accepted += ref != NULL;
        if (rc == 0) {
            accepted++;
            if (!ref || !same_tree(o, ref)) {
                if (bad_accept++ < 5)
                    diag("  ours accepts, json-c %s: %s", ref ? "differs" : "rejects", buf);
            }
            json_object_put(o);
        }
        json_object_put(ref);
    }
    diag("mutations: %d, accepted by ours %d, by json-c %d", ROUNDS, accepted, ref_accepted);
    ok(crashes_none, "mutations: only 0 or GAPI_EJSON");
    ok(bad_error == 0, "mutations: every error has an offset within the input and a message");
    ok(bad_accept == 0, "mutations: whatever ours accepts json-c accepts, with an equal tree");
    ok(accepted > 50 && accepted < ROUNDS, "mutations: some accepted (%d), some not", accepted);
}

int main(void)
{
    test_differential();
    test_valid();
    test_values();
    test_long_number();
    test_integers();
    test_errors();
    test_error_position();
    test_arguments();
    test_depth();
    test_duplicates();
    test_locale();
    test_alloc_failure();
    test_threads();
    test_mutations();
    ok(twice_mismatches == 0, "all %d inputs parse the same in place and from an exact copy",
       twice_runs);
    return tap_done();
}
