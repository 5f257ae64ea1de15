/*
 * Credentials inside the library.
 *
 * A gapi_credentials (creds.c) is immutable configuration shared by any
 * number of threads and clients. What changes, the tokens, lives in token
 * caches (cache.c) that belong to one client and are touched only on its
 * loop thread: one cache per (credentials, audience) pair, the audience
 * being set only for self-signed JWTs (one per API host).
 *
 * A request meets its credentials twice:
 *  - gapi__request_prepare (any thread) writes the static headers: an API
 *    key, a fixed token, x-goog-user-project;
 *  - each attempt (loop thread) asks its cache for the Authorization line
 *    (gapi__auth_token) and, when none is valid yet, waits in the cache's
 *    list until gapi__request_token_ready is called for it.
 */
#ifndef GAPI_AUTH_AUTH_H
#define GAPI_AUTH_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "gapi.h"
#include "common/buf.h"
#include "transport/url.h"

typedef struct gapi__token_cache gapi__token_cache;

/* Whether requests with these credentials need a token from a cache. */
int gapi__creds_need_token(const gapi_credentials *cr);

/* Append the static header lines ("Name: value\r\n") of cr to h, and the
 * API key to the query of target when asked so (*target replaced by a new
 * gapi__malloc string; left NULL otherwise). */
int gapi__creds_static_headers(const gapi_credentials *cr, gapi__buf *h);
int gapi__creds_key_query(const gapi_credentials *cr, const char *target, char **out);

/* Whether v can go into a header line as it is: not empty, printable
 * ASCII only (no CR, LF or other controls), spaces only when allow_space,
 * so nothing from a caller or a file can end the line early. */
int gapi__header_value_ok(const char *v, int allow_space);

/* Append s percent-encoded (all but RFC 3986 unreserved characters). */
int gapi__form_encode(gapi__buf *b, const char *s);

/* Loop thread. The cache of cr for a request to url (made on first use). */
gapi__token_cache *gapi__auth_cache_for(gapi_client *c, gapi_credentials *cr, const gapi__url *url);

/* Loop thread. The Authorization header line for r: 0 with *line (valid
 * until the cache changes: copy it now) and *gen (the token's
 * generation), GAPI__AUTH_WAIT when r now waits (gapi__request_token_ready
 * follows, exactly once, unless gapi__auth_unwait comes first), or an
 * error (message in r). */
#define GAPI__AUTH_WAIT 1
int gapi__auth_token(gapi__token_cache *tc, gapi_request *r, const char **line, size_t *len,
                     unsigned *gen);

/* Loop thread. r stops waiting (cancel, deadline, shutdown). */
void gapi__auth_unwait(gapi_request *r);

/* Loop thread. The API refused token generation gen (HTTP 401): forget it
 * unless a newer one has come meanwhile. */
void gapi__auth_invalidate(gapi__token_cache *tc, unsigned gen);

/* Loop thread, at client teardown once no request is left: free every
 * cache of c. */
void gapi__auth_client_free(gapi_client *c);

/* Tests move the auth clock forward (ms added to the monotonic and wall
 * clocks the caches read). */
extern long long gapi__auth_clock_skew_ms;

/* Monotonic ms (with the skew), for the cache and the request engine. */
uint64_t gapi__auth_now_ms(void);

#endif
