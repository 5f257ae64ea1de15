/*
 * Retry policy arithmetic, kept pure (no loop, no request state) so that it
 * can be tested on its own: what is retryable, how long to wait, and how to
 * read Retry-After.
 */
#ifndef GAPI_REQUEST_RETRY_H
#define GAPI_REQUEST_RETRY_H

#include <stdint.h>
#include <time.h>

#include "gapi.h"

struct json_object;

/* Check a caller's policy and fill in the defaults (0 fields). Returns 0, or
 * GAPI_EINVAL with *why (if why is not NULL) naming the field. */
int gapi__retry_policy_resolve(gapi_retry_policy *out, const gapi_retry_policy *in,
                               const char **why);

/* Is this transport error worth another attempt? */
int gapi__retry_err_retryable(int err);

/* Is this HTTP status worth another attempt? json is the parsed body (for
 * 403's error.errors[].reason), or NULL. */
int gapi__retry_status_retryable(int status, struct json_object *json);

/* The wait after failed attempt n (n >= 1), in ms. rnd is a uniform random
 * number in [0, 1) (ignored with GAPI_RETRY_NO_JITTER). */
unsigned gapi__retry_backoff_ms(const gapi_retry_policy *p, unsigned n, double rnd);

/* Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date, relative
 * to now (wall clock). Returns the wait in ms (0 for a date in the past),
 * or -1 when the value is neither. Values over a day are clamped. */
long long gapi__retry_after_ms(const char *value, time_t now);

#endif
