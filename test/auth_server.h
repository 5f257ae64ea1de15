/*
 * Google's auth side for the integration tests: an OAuth token endpoint, a
 * GCE metadata server and an API that demands credentials, as routes on the
 * in-process test server (server.h). Like server.c it uses only libevent,
 * OpenSSL and json-c: no gapi code, so a broken gapi cannot fake a pass.
 */
#ifndef GAPI_TEST_AUTH_SERVER_H
#define GAPI_TEST_AUTH_SERVER_H

#include "server.h"

typedef struct ta_auth ta_auth;

/* Register the auth routes on s (which may be HTTPS or plain HTTP). public_key_pem: the RSA
 * public key (SPKI PEM) that verifies service-account JWTs (NULL: every JWT is refused with
 * "no public key configured"). Returns NULL (and prints why) on failure. Free before
 * ts_server_free. Loop thread of s. Getters/setters below may be called from any thread
 * (take a mutex). */
ta_auth *ta_auth_new(ts_server *s, const char *public_key_pem);
/* Answers every token response still waiting for its delay (at once, as prepared), frees the
 * timers and routes the auth paths to a static 503 so a late request cannot reach freed
 * memory. NULL is a no-op. Loop thread of s (or while its loop is not running). */
void ta_auth_free(ta_auth *a);

/* Routes:
 *  POST /token  (application/x-www-form-urlencoded; decode %XX and '+')
 *    grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT
 *       JWT checks: 3 base64url parts; header alg "RS256", typ "JWT", kid == expected kid;
 *       RS256 signature verifies with the public key (EVP_DigestVerify); claims: iss ==
 *       expected email; aud == ts_server_origin(s) + "/token"; scope == expected scope
 *       (string compare); iat within +-300 s of now; exp == iat + 3600; sub == expected
 *       subject when one is expected, else absent.
 *    grant_type=refresh_token&client_id=&client_secret=&refresh_token= : all three must match.
 *    Success: 200 application/json
 * {"access_token":"ya29.t<N>","expires_in":E,"token_type":"Bearer"} N = 1,2,3... (a new token per
 * success), E from ta_auth_set_expires_in (default 3599), sent as a JSON string when as_string was
 * set. Failure: 400 {"error":"invalid_grant","error_description":"<what failed, e.g. 'bad
 * signature', 'aud mismatch: got X'>"} (unsupported grant_type -> "unsupported_grant_type"). GET
 * /computeMetadata/v1/instance/service-accounts/default/token  (query ?scopes=a,b optional)
 *       Requires header "Metadata-Flavor: Google" (else 403 text). Same success JSON (new token).
 *       Records the scopes query value (ta_auth_last_scopes).
 *  GET /computeMetadata/v1/  -> 200 "ok" with header "Metadata-Flavor: Google" (availability probe)
 *  ANY /api/v1/items and /api/v1/items2 and /upload/api/v1/items (the "API"): requires
 *       "Authorization: Bearer <tok>" where tok is a token issued and not revoked, OR a
 *       self-signed JWT accepted by ta_auth_accept_self_signed; or "x-goog-api-key: <key>"
 *       or a "key=<key>" query parameter matching ta_auth_accept_api_key.
 *       OK: 200 application/json {"ok":true,"who":"<token or 'jwt' or
 * 'key'>","method":"GET","n":<api request count>} Else: 401 application/json, Google error format
 *       {"error":{"code":401,"message":"Request had invalid authentication
 * credentials.","status":"UNAUTHENTICATED","errors":[{"reason":"authError","domain":"global","message":"Invalid
 * Credentials"}]}} with header WWW-Authenticate: Bearer realm="https://accounts.google.com/".
 *       Records the x-goog-user-project header of the last API request (ta_auth_last_header).
 *
 * Details the list above leaves open (decided here; the self-test checks them):
 *  - A request that is malformed rather than wrong gets 400 "invalid_request" (POST /token
 *    with another Content-Type, bad %XX, a repeated parameter); any other method on /token
 *    gets 405 "invalid_request" with "Allow: POST"; a missing grant_type gets
 *    "unsupported_grant_type" (as Google does). Every refusal of a grant or JWT, whatever
 *    its error code, is "invalid_grant" with the reason in error_description.
 *  - JWT order: base64url (no padding, canonical) -> header JSON -> alg -> signature -> typ
 *    -> kid -> claims. A NULL expected kid means the header must carry none. Claims are
 *    recorded (ta_auth_last_claims) as soon as the signature verifies, so a test sees what
 *    a refused JWT claimed.
 *  - Self-signed JWTs presented to the API: the same header and signature checks; iss ==
 *    sub == expected email; aud == the audience given to ta_auth_accept_self_signed;
 *    exp > now (checked before iat); iat an integer not more than 300 s ahead and
 *    exp - iat <= 3600. A bearer value with two dots is taken for a JWT.
 *  - The Authorization header, when present, decides alone (a bad one is 401 even with a
 *    good API key); the x-goog-api-key header is looked at before the key query parameter.
 *  - Other methods on the metadata token path get 405 (text). Every metadata response
 *    carries "Metadata-Flavor: Google"; the 403 says "Missing Metadata-Flavor:Google header.".
 *  - fail_next is consumed by any token request (either endpoint) before it is looked at, so
 *    it also replaces a 403 or 405. The delay applies to every response of a token request.
 *  - A token is minted (and counted) when its request is handled, not when the delayed
 *    response leaves; ta_auth_revoke_all during the delay revokes it too.
 *  - ta_auth_last_error is the reason the latest token or API request was refused ("" when
 *    that request was accepted, or before any; "failure injected by ta_auth_fail_next" for
 *    a fail_next answer). ta_auth_last_claims is NULL until a JWT's signature verifies;
 *    ta_auth_last_scopes is the %-decoded value.
 *  - Responses to HEAD carry no body.
 */
void ta_auth_expect_service_account(ta_auth *a, const char *email, const char *kid,
                                    const char *scope, const char *subject /* NULL: none */);
void ta_auth_expect_user(ta_auth *a, const char *client_id, const char *client_secret,
                         const char *refresh_token);
void ta_auth_accept_self_signed(ta_auth *a, const char *audience /* NULL: refuse them */);
void ta_auth_accept_api_key(ta_auth *a, const char *key /* NULL: none */);
void ta_auth_set_expires_in(ta_auth *a, int seconds, int as_string);
/* The next n token requests (token endpoint or metadata token) get this response instead
 * (status and body verbatim, Content-Type application/json when body starts with '{',
 * text/plain otherwise; body NULL: empty). */
void ta_auth_fail_next(ta_auth *a, unsigned n, int status, const char *body);
/* Delay every token response (success or failure) by ms (use an evtimer; do not block). */
void ta_auth_set_token_delay(ta_auth *a, unsigned ms);
/* Every token issued so far is refused by the API from now on (401). */
void ta_auth_revoke_all(ta_auth *a);

unsigned
ta_auth_token_requests(const ta_auth *a); /* POST /token + metadata token requests received */
unsigned ta_auth_tokens_issued(const ta_auth *a);
unsigned ta_auth_api_requests(const ta_auth *a); /* API requests received */
unsigned ta_auth_api_rejected(const ta_auth *a); /* of which answered 401 */
/* Last reason a JWT or grant was refused ("" if none); last verified claims as compact JSON;
 * last metadata scopes query value (NULL if none); a header of the last API request.
 * Strings owned by a, valid until the next request. */
const char *ta_auth_last_error(const ta_auth *a);
const char *ta_auth_last_claims(const ta_auth *a);
const char *ta_auth_last_scopes(const ta_auth *a);
const char *ta_auth_last_header(const ta_auth *a, const char *name);

#endif
