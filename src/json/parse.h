/*
 * Strict JSON (RFC 8259) parser that builds a json-c tree. Pure: no
 * libevent. We keep json-c's object model (struct json_object) but not its
 * tokener, which is slow per call (it switches locale on every call) and per
 * byte (a byte-at-a-time state machine).
 *
 * What is accepted, and how values are represented:
 *  - Exactly one JSON text; whitespace (space, tab, CR, LF) around it. No
 *    byte order mark, comments, trailing commas, single quotes, NaN,
 *    Infinity, leading zeros, '+' signs, unescaped control characters.
 *  - Strings must be valid UTF-8: overlong forms, UTF-16 surrogates encoded
 *    in UTF-8, code points above U+10FFFF and truncated sequences are errors
 *    (json-c's tokener passes such bytes through). \uXXXX escapes must form
 *    valid UTF-16: a high surrogate followed by a low one becomes one UTF-8
 *    character, any unpaired surrogate is an error (json-c substitutes
 *    U+FFFD). \u0000 is kept in string values (json_object_get_string_len
 *    counts it); in object keys it is an error, because json-c keys are C
 *    strings and would be silently truncated.
 *  - null is a NULL json_object pointer, as everywhere in json-c (a document
 *    that is just "null" parses to 0 with *out == NULL).
 *  - Integers that fit int64 are json_type_int (int64); larger positive ones
 *    that fit uint64 are json_type_int (uint64), as json-c does. "-0" is the
 *    integer 0, as in json-c.
 *  - Numbers with a fraction or exponent, and integers outside
 *    [INT64_MIN, UINT64_MAX], are json_type_double made with
 *    json_object_new_double_s, so serialization writes the original text
 *    back. The double value is converted in the "C" locale whatever the
 *    caller's locale. json-c clamps out-of-range integers to INT64_MIN or
 *    UINT64_MAX instead; we do not lose the value. Exponents beyond double
 *    range give +-inf or 0 (text kept), as json-c does.
 *  - Duplicate object keys: the last one wins and keeps the first one's
 *    position, as in json-c.
 *  - Arrays are allocated once, at their final size plus one slot (json-c
 *    grows an array when its last free slot is filled); json-c's tokener
 *    instead grows them and shrinks them at the end. Memory is the same
 *    within 0.1%.
 */
#ifndef GAPI_JSON_PARSE_H
#define GAPI_JSON_PARSE_H

#include <stddef.h>

struct json_object;

/* Default for max_depth == 0. */
#define GAPI__JSON_DEFAULT_DEPTH 512

typedef struct gapi__json_error {
    size_t offset;         /* byte offset of the problem */
    unsigned line, column; /* 1-based; lines end at LF, columns count bytes */
    char message[128];     /* e.g. "expected ',' or '}' after object member" */
} gapi__json_error;

/* Parse exactly one JSON text from s[0..len) into a json-c tree. s need not
 * be NUL-terminated; no byte past s[len - 1] is read.
 *
 * max_depth limits nesting of arrays and objects (0 picks
 * GAPI__JSON_DEFAULT_DEPTH); a document nested deeper fails with "nesting
 * deeper than N". The parser recurses once per level (about 150 bytes of
 * stack at -O2, under 300 unoptimized), so the default needs < 160 KiB of
 * stack; a caller choosing a much larger limit must have the stack for it.
 *
 * Returns 0 with *out set (the caller owns one reference; NULL for a JSON
 * null), GAPI_EJSON when the text is not valid JSON (err, when not NULL,
 * says where and why), GAPI_ENOMEM (err says "out of memory"), or
 * GAPI_EINVAL when out is NULL or s is NULL with len > 0. On failure *out is
 * untouched and nothing is leaked. Thread-safe: calls share no mutable
 * state. */
int gapi__json_parse(const char *s, size_t len, unsigned max_depth, struct json_object **out,
                     gapi__json_error *err);

/* The same with flags: GAPI__JSON_SECRET for documents holding secrets
 * (key files, token responses): the parser's own buffers are wiped before
 * they are released. The tree's strings are the caller's to wipe. */
#define GAPI__JSON_SECRET 0x1u
int gapi__json_parse_ex(const char *s, size_t len, unsigned max_depth, unsigned flags,
                        struct json_object **out, gapi__json_error *err);

#endif
