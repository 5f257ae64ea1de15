/*
 * API calls built from discovery methods (gapi_call_* in gapi.h): parameter
 * validation, URL and header building, pagination, and Google's error
 * format. This header holds the pieces the tests and the fuzz harness reach
 * directly.
 *
 * Layering: call sits above request (it builds gapi_request objects and
 * attaches its state through request.h's ext hooks) and above discovery
 * (it reads the immutable service model). Nothing below includes it.
 */
#ifndef GAPI_CALL_CALL_H
#define GAPI_CALL_CALL_H

#include <stddef.h>

#include "gapi.h"
#include "common/buf.h"

/* ---------------------------------------------------------------- params.c */

/* Checks value against parameter p's type and format, and normalizes it in
 * place (it never grows): integers (type integer, or type string with
 * format int64/uint64) must be an optional sign and decimal digits within
 * the range of the format (int32, uint32, int64, uint64; int64 when there is
 * none) and are rewritten canonically ("+007" -> "7", "-0" -> "0");
 * numbers must be decimal text ("-1.5", ".5", "2e10"; no "nan" or "inf");
 * booleans must be exactly "true" or "false". Other types take any text.
 * Then the value must be one of p's enum values (when it has some). Returns
 * 0 or GAPI_EINVAL with a message that names the parameter; what prefixes
 * the message (e.g. the method id). */
int gapi__param_check(const char *what, const gapi_param *p, char *value, char *errbuf,
                      size_t errbuf_size);

/* Matches value against a discovery pattern the way Google's Python client
 * does (re.match: anchored at the start of the value; the pattern's own "$"
 * anchors the end). Patterns are written in Python's re syntax; they are
 * translated to POSIX extended regular expressions (see
 * gapi__pattern_translate) and compiled once per process (a bounded cache
 * shared by all threads). Returns 1 (match), 0 (no match), or GAPI_EINVAL
 * when the pattern uses syntax that cannot be translated or compiled (the
 * message says which); GAPI_ENOMEM. */
int gapi__pattern_match(const char *pattern, const char *value, char *errbuf, size_t errbuf_size);

/* Translates a Python re pattern into a POSIX ERE anchored at the start:
 * "^(" translated ")". Supported: literals, ".", "^", "$", "|", groups
 * "(...)" and "(?:...)", bracket expressions (with \w \d \s inside),
 * "\w \W \d \D \s \S", escaped punctuation, the quantifiers * + ? {m}
 * {m,} {m,n} {,n} and their lazy forms (laziness does not change whether a
 * prefix matches, so it is dropped). Anything else (look-arounds, named
 * groups, flags, back-references, \b, \A, \Z) is GAPI_EINVAL with the
 * offset. Returns 0, GAPI_EINVAL or GAPI_ENOMEM. */
int gapi__pattern_translate(gapi__buf *out, const char *pattern, char *errbuf, size_t errbuf_size);

/* The standard (system) parameters every Google API accepts. A document's
 * own top-level parameter of the same name is used instead; these fill in
 * the ones a document leaves out (storage has no "$.xgafv", most have no
 * "userIp"). NULL when name is not one of them. */
const gapi_param *gapi__standard_param(const char *name);

/* Writes v into out (out_size >= 8) for an error message: at most about 60
 * bytes, control characters, '"' and '\' as \xNN, "..." when cut. */
void gapi__quote_value(char *out, size_t out_size, const char *v);

/* ---------------------------------------------------------------- google_error.c */

/* Writes the one-line summary of e used as a call's errmsg: "HTTP 404: No
 * such object: b/o (notFound)" — the message when there is one, then the
 * first reason (else the status) in parentheses. Control characters become
 * spaces; the text is cut to size (NUL-terminated). */
void gapi__google_error_format(const gapi_google_error *e, char *buf, size_t size);

#endif
