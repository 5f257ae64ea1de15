/*
 * RFC 6570 URI Template expansion, level 4, and the percent-encoding helpers
 * a Google API call builder needs. Pure: no libevent, no global state, no
 * allocation except growing the caller's output buffer; thread-safe.
 *
 * Templates. Every operator of level 4 (none, + # . / ; ? &), the prefix
 * modifier ":N" (1 <= N <= 9999, no leading zero) and the explode modifier
 * "*", on strings, lists and associative arrays. Template text is checked
 * against the RFC's grammar before anything is expanded, so a malformed
 * template never calls the lookup and never writes output. Errors
 * (GAPI_EINVAL, with the byte offset and the problem in the message):
 *  - "{" without its "}", a "}" outside an expression, an empty expression;
 *  - a variable name that is not varchar *( ["."] varchar ) (varchar is
 *    ALPHA / DIGIT / "_" / pct-encoded), e.g. "{x.}", "{with space}";
 *  - a bad prefix (":0", ":01", ":10000", ":", ":x") or ":N" followed by "*";
 *  - the operators "=" "," "!" "@" "|" that RFC 6570 section 2.2 reserves
 *    for future extensions, and any other character where an operator or a
 *    name must start ("{$x}", "{-join|...}");
 *  - a literal byte the grammar does not allow: a control character, space,
 *    '"', "<", ">", "\", "^", "`", "|", a "%" not followed by two hex
 *    digits, bytes that are not UTF-8, or a code point outside ucschar and
 *    iprivate (e.g. C1 controls, U+FFFE). Allowed non-ASCII literals are
 *    percent-encoded as UTF-8, as section 3.1 says ("café" -> "caf%C3%A9").
 *    "'" is accepted and copied: the ABNF leaves it out, but the RFC's own
 *    examples use it ("'{var}'") and it is legal in a URI.
 * and, during expansion:
 *  - a prefix modifier on a list or associative array (section 2.4.1);
 *  - a lookup that fails (its own code is returned) or returns a malformed
 *    value (GAPI_EINVAL);
 *  - GAPI_ENOMEM when the output buffer cannot grow.
 *
 * Values. Strings are byte strings, expected to be UTF-8; each byte outside
 * the allowed set becomes %XX, so UTF-8 comes out as the RFC says. The
 * prefix modifier counts characters, i.e. UTF-8 lead bytes (a continuation
 * byte never starts a character), so "{clef:1}" keeps all four bytes of
 * U+1D11E. For "+" and "#" a "%XX" triplet already in a value is kept
 * (section 3.2.1: pct-encoded is in the reserved-allowed set); a lone "%"
 * becomes "%25". Undefined values are skipped; a list with no defined item
 * and an associative array with no defined value are undefined (section
 * 2.3); the empty string is defined.
 *
 * Non-exploded composites in a named expression always get "=", e.g.
 * "{;list}" -> ";list=red,green,blue" (RFC 6570 appendix A leaves "empty"
 * undefined for composites; this is what the RFC's examples show).
 */
#ifndef GAPI_URITEMPLATE_URITEMPLATE_H
#define GAPI_URITEMPLATE_URITEMPLATE_H

#include <stddef.h>

#include "common/buf.h"

/* A byte string; s may be NULL only where a comment says so. */
typedef struct gapi__ut_str {
    const char *s;
    size_t len;
} gapi__ut_str;

typedef enum gapi__ut_type {
    GAPI__UT_UNDEF = 0, /* no value: the varspec expands to nothing */
    GAPI__UT_STRING,    /* str */
    GAPI__UT_LIST,      /* items[0..n) */
    GAPI__UT_ASSOC      /* n pairs: items[2i] is a name, items[2i+1] its value */
} gapi__ut_type;

/* A variable's value as a lookup returns it. In a list, an item whose s is
 * NULL is undefined (skipped); in an associative array, a pair whose value's
 * s is NULL is undefined, and a NULL name is an error. A STRING whose s is
 * NULL is the empty string when len is 0, an error otherwise. */
typedef struct gapi__ut_value {
    gapi__ut_type type;
    gapi__ut_str str;
    const gapi__ut_str *items;
    size_t n;
} gapi__ut_value;

/* Supplies the value of the variable named name[0..name_len) (not
 * NUL-terminated; the name as written in the template, so "{Some%20Thing}"
 * looks up "Some%20Thing"). *out is zeroed (GAPI__UT_UNDEF) before the call;
 * leaving it so means "undefined". Everything *out points to must stay valid
 * until the lookup is called again or the expansion returns. Called once per
 * varspec, in template order. Returns 0, or a negative gapi_error that stops
 * the expansion and is returned by it (a positive value counts as
 * GAPI_EINVAL). */
typedef int (*gapi__ut_lookup)(const char *name, size_t name_len, gapi__ut_value *out, void *ud);

/* Where and why a template was refused or an expansion failed. */
typedef struct gapi__ut_error {
    size_t offset;     /* byte offset in the template */
    char message[160]; /* "offset 4: unclosed expression: '{' at offset 0 has no '}'" */
} gapi__ut_error;

/* One varspec, as gapi__uritemplate_check reports it. */
typedef struct gapi__ut_varspec {
    char op;          /* '\0' (simple), '+', '#', '.', '/', ';', '?' or '&' */
    const char *name; /* points into the template */
    size_t name_len;
    unsigned prefix; /* 0 when there is no ":N" */
    int explode;     /* 1 for "*" */
    size_t offset;   /* of the name in the template */
} gapi__ut_varspec;

typedef int (*gapi__ut_visit)(const gapi__ut_varspec *vs, void *ud);

/* Expands tmpl[0..tmpl_len) (need not be NUL-terminated; nothing past it is
 * read) and appends the result to out. On success out->data is non-NULL and
 * NUL-terminated. Returns 0; GAPI_EINVAL (malformed template, prefix on a
 * composite, bad value from the lookup, or tmpl/out/lookup NULL); the
 * lookup's own negative code; GAPI_ENOMEM. On failure out holds what it held
 * before (its capacity may have grown) and err, when not NULL, says where and
 * why. */
int gapi__uritemplate_expand(gapi__buf *out, const char *tmpl, size_t tmpl_len, gapi__ut_error *err,
                             gapi__ut_lookup lookup, void *ud);

/* Checks a template without expanding it (e.g. a discovery document's path
 * at load time). When visit is not NULL and the whole template is valid, it
 * is called for each varspec in order; a non-zero return stops the check and
 * is returned. Returns 0,
 * GAPI_EINVAL (err says where and why), or visit's value. */
int gapi__uritemplate_check(const char *tmpl, size_t tmpl_len, gapi__ut_error *err,
                            gapi__ut_visit visit, void *ud);

/* Appends s[0..len) percent-encoded: unreserved bytes (ALPHA DIGIT - . _ ~)
 * are kept, every other byte becomes %XX with upper-case hex (UTF-8 text thus
 * comes out as RFC 3986 section 2.5 says). With allow_reserved, reserved
 * characters (: / ? # [ ] @ ! $ & ' ( ) * + , ; =) and well-formed %XX
 * triplets are kept too (a "%" not starting one becomes "%25"). This is the
 * encoding of "{name}" (allow_reserved 0: "a/b" -> "a%2Fb") and "{+name}"
 * (1: "a/b" stays). Returns 0 or GAPI_ENOMEM (out unchanged). */
int gapi__pct_encode(gapi__buf *out, const char *s, size_t len, int allow_reserved);

/* Appends s[0..len) encoded for a query-string name or value. Google's
 * Python client builds queries with urllib.parse.urlencode(), i.e.
 * quote_plus() with safe="": every byte but ALPHA DIGIT "_" "." "-" "~" is
 * %XX-encoded and space becomes "+". We encode exactly the same bytes, except
 * space, which becomes "%20": "+" means space only in form encoding, and
 * "%20" means space to every URI parser (Google's front ends decode both the
 * same). So "+" -> "%2B", "&" -> "%26", "=" -> "%3D", "#" -> "%23",
 * "/" -> "%2F". Returns 0 or GAPI_ENOMEM (out unchanged). */
int gapi__query_encode(gapi__buf *out, const char *s, size_t len);

/* Appends one query parameter to the URL in url: "?" when url has no "?"
 * yet, "&" otherwise (nothing when it already ends in "?" or "&"), then the
 * encoded name, "=", the encoded value. Repeated parameters are added by
 * calling it once per value (the Python client repeats the key too). name is
 * a C string; value[0..value_len). Returns 0 or GAPI_ENOMEM (url
 * unchanged). */
int gapi__query_add(gapi__buf *url, const char *name, const char *value, size_t value_len);

#endif
