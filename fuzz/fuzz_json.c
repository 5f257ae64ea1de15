/*
 * Fuzzes the strict JSON parser (src/json/parse.h). Invariants:
 *  - the result is 0 or GAPI_EJSON; on GAPI_EJSON *out is untouched and the
 *    error names an offset inside the input, a 1-based line and column, and
 *    a message;
 *  - an accepted document round-trips through json-c: its serialization
 *    (plain, and pretty with spaces and unescaped slashes) parses again to
 *    an equal tree that serializes to the same text;
 *  - whitespace around a document changes nothing: accepted inputs stay
 *    accepted with an equal tree, refused ones stay refused;
 *  - a depth limit only ever refuses with "nesting deeper than N": with a
 *    limit the input either parses to the same tree, fails the same way, or
 *    fails for its depth;
 *  - when an allocation fails, the result is GAPI_ENOMEM with *out untouched
 *    and nothing leaked, or the same as without the failure.
 */
#include <string.h>

#include <json-c/json.h>

#include "gapi.h"
#include "common/buf.h"
#include "json/parse.h"
#include "fuzz.h"

static int same_tree(struct json_object *a, struct json_object *b)
{
    return json_object_equal(a, b) &&
           strcmp(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
                  json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN)) == 0;
}

static void round_trip(struct json_object *o, int flags)
{
    /* A copy: json-c serializes into a buffer of the object, which the next
     * serialization of it (in same_tree) overwrites. */
    char *text = strdup(json_object_to_json_string_ext(o, flags));
    struct json_object *again = (struct json_object *)&again;
    gapi__json_error err;
    int rc;

    CHECK(text != NULL);
    rc = gapi__json_parse(text, strlen(text), 0, &again, &err);

    if (rc != 0)
        fprintf(stderr, "serialization refused at %zu: %s\n%s\n", err.offset, err.message, text);
    CHECK(rc == 0);
    CHECK(same_tree(o, again));
    CHECK(strcmp(json_object_to_json_string_ext(again, flags), text) == 0);
    json_object_put(again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = size ? (const char *)data : "";
    struct json_object *sentinel = (struct json_object *)&sentinel;
    struct json_object *o = sentinel, *o2 = sentinel, *o3 = sentinel;
    gapi__json_error err, err2;
    gapi__buf padded = GAPI__BUF_INIT;
    unsigned depth = size ? 1u + data[size - 1] % 8u : 1u;
    int rc, rc2, rc3;

    memset(&err, 0, sizeof(err));
    rc = gapi__json_parse(s, size, 0, &o, &err);
    CHECK(rc == 0 || rc == GAPI_EJSON);
    if (rc != 0) {
        CHECK(o == sentinel);
        CHECK(err.offset <= size && err.line >= 1 && err.column >= 1 && err.message[0]);
    } else {
        CHECK(o != sentinel);
        round_trip(o, JSON_C_TO_STRING_PLAIN);
        round_trip(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                          JSON_C_TO_STRING_NOSLASHESCAPE);
    }

    /* The same document with whitespace around it. */
    CHECK(gapi__buf_append(&padded, " \r\n\t", 4) == 0 && gapi__buf_append(&padded, s, size) == 0 &&
          gapi__buf_append(&padded, "\n ", 2) == 0);
    rc2 = gapi__json_parse(padded.data, padded.len, 0, &o2, &err2);
    CHECK(rc2 == rc);
    if (rc == 0) {
        CHECK(same_tree(o, o2));
        json_object_put(o2);
    }
    gapi__buf_free(&padded);

    /* A depth limit refuses only for depth. */
    memset(&err2, 0, sizeof(err2));
    rc3 = gapi__json_parse(s, size, depth, &o3, &err2);
    if (rc3 == 0) {
        CHECK(rc == 0 && same_tree(o, o3));
        json_object_put(o3);
    } else if (strncmp(err2.message, "nesting deeper than", 19) != 0) {
        CHECK(rc == rc3 && err.offset == err2.offset && strcmp(err.message, err2.message) == 0);
    }

    /* Out of memory after a data-derived number of allocations: the same
     * outcome, or GAPI_ENOMEM with *out untouched (and no leak). */
    o3 = sentinel;
    fuzz_fail_after((long)(fuzz_hash(data, size) % 3));
    rc3 = gapi__json_parse(s, size, 0, &o3, &err2);
    fuzz_alloc_restore();
    if (rc3 == GAPI_ENOMEM) {
        CHECK(o3 == sentinel && strcmp(err2.message, "out of memory") == 0);
    } else {
        CHECK(rc3 == rc);
        if (rc == 0) {
            CHECK(same_tree(o, o3));
            json_object_put(o3);
        } else {
            CHECK(err.offset == err2.offset && strcmp(err.message, err2.message) == 0);
        }
    }

    if (rc == 0)
        json_object_put(o);
    return 0;
}
