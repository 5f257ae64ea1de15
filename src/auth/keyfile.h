/*
 * Credentials documents and token responses, parsed without I/O (except
 * gapi__keyfile_load, which reads one file). Pure: no libevent, no global
 * state; any thread may call these. Every string handed out comes from
 * gapi__malloc. Secrets (private key text, client secret, refresh token,
 * access tokens) are cleansed with OPENSSL_cleanse from every buffer these
 * functions own before it is freed, and never appear in an error message.
 */
#ifndef GAPI_AUTH_KEYFILE_H
#define GAPI_AUTH_KEYFILE_H

#include <stddef.h>

#include <openssl/evp.h>

struct json_object;

/* Files larger than this are refused by gapi__keyfile_load. */
#define GAPI__KEYFILE_MAX (1024 * 1024)

#define GAPI__DEFAULT_TOKEN_URI       "https://oauth2.googleapis.com/token"
#define GAPI__DEFAULT_UNIVERSE_DOMAIN "googleapis.com"

typedef enum gapi__keyfile_type {
    GAPI__KEY_SERVICE_ACCOUNT = 1,
    GAPI__KEY_AUTHORIZED_USER
} gapi__keyfile_type;

typedef struct gapi__keyfile {
    gapi__keyfile_type type;
    /* service_account (token_uri and universe_domain: both types, with
     * their defaults, as google-auth reads them for authorized_user too) */
    char *client_email, *private_key_id, *token_uri, *universe_domain, *project_id;
    EVP_PKEY *key;
    /* authorized_user */
    char *client_id, *client_secret, *refresh_token;
    char *quota_project_id; /* either type, may be NULL */
} gapi__keyfile;

/* Parses a credentials JSON document json[0..len) (need not be
 * NUL-terminated) with the strict parser of json/parse.h.
 *
 * "type" "service_account" requires client_email (non-empty) and private_key
 * (an unencrypted RSA PEM key, see gapi__rsa_key_from_pem); private_key_id,
 * project_id are optional. "authorized_user" requires client_id,
 * client_secret and refresh_token (non-empty). Either type may carry
 * quota_project_id, token_uri (default GAPI__DEFAULT_TOKEN_URI; must be
 * https://, or http:// to 127.0.0.1, localhost or [::1]) and universe_domain
 * (default GAPI__DEFAULT_UNIVERSE_DOMAIN). A known field that is present
 * must be a string without NUL characters; JSON null counts as absent;
 * optional fields that are empty strings are stored as NULL (token_uri and
 * universe_domain: the default). Unknown fields are ignored.
 *
 * Returns 0 with *out filled (release with gapi__keyfile_clear), or
 * GAPI_ECREDENTIALS with a message in errbuf naming the problem and where,
 * e.g. "not JSON: <parser message> at line L, column C", "\"type\" missing",
 * "unsupported credentials type \"external_account\"",
 * "service_account: \"private_key\" missing", "service_account:
 * \"client_email\" is not a string", "service_account: private_key is not a
 * PEM RSA key: ..."; GAPI_ENOMEM ("out of memory"); GAPI_EINVAL (out NULL,
 * or json NULL with len > 0). On failure *out is untouched. */
int gapi__keyfile_parse(gapi__keyfile *out, const char *json, size_t len, char *errbuf,
                        size_t errbuf_size);

/* Reads path (a regular file of at most GAPI__KEYFILE_MAX bytes; a FIFO or
 * device is refused without blocking on it) and parses it as above. Every
 * message starts with the path: "/x/key.json: ...". Returns the codes of
 * gapi__keyfile_parse; a file that is missing, unreadable, not a regular
 * file or too big is GAPI_ECREDENTIALS (with strerror text where the system
 * gave one). */
int gapi__keyfile_load(gapi__keyfile *out, const char *path, char *errbuf, size_t errbuf_size);

/* A token endpoint receives assertions and refresh tokens: 0 when uri is
 * https://, or http:// to a loopback host (127.0.0.1, localhost, [::1]);
 * else GAPI_ECREDENTIALS with a message beginning with prefix. */
int gapi__check_token_uri(const char *uri, const char *prefix, char *errbuf, size_t errbuf_size);

/* Cleanses and frees every field and zeroes the struct. Safe on a zeroed
 * struct and NULL. */
void gapi__keyfile_clear(gapi__keyfile *k);

/* ------------------------------------------------------------ tokens */

typedef struct gapi__token_result {
    char *access_token;   /* gapi__malloc'd, cleanse before free */
    long long expires_in; /* seconds; -1 when absent */
    int retryable;        /* failure only: 5xx, 408, 429, or OAuth error internal_failure,
                             server_error, temporarily_unavailable */
} gapi__token_result;

/* Parses the HTTP response (status, body[0..len)) of a token request to an
 * OAuth token endpoint or the metadata server. A 2xx response must be a
 * JSON object with "access_token" (a non-empty string of visible ASCII:
 * it goes into an Authorization header), "expires_in" if present a
 * non-negative number (integral JSON number, or a string of decimal digits;
 * a fraction is dropped) no larger than 2^31 - 1, and "token_type" if
 * present "Bearer" in any case.
 *
 * Returns 0 with out->access_token set, out->expires_in (-1 when absent) and
 * out->retryable 0. Otherwise GAPI_EAUTH with out->access_token NULL,
 * out->expires_in -1, out->retryable set, and a one-line message in errbuf
 * starting with `who` ("token endpoint", "metadata server"):
 *   "<who>: HTTP 400: invalid_grant: Invalid JWT Signature."  (OAuth form)
 *   "<who>: HTTP 403: PERMISSION_DENIED: <message>"          (Google form)
 *   "<who>: HTTP 503: <HTML title or first non-blank line, <= 200 bytes>"
 *   "<who>: response has no access_token", "<who>: HTTP 200: response is not
 *   JSON: ...", "<who>: token_type \"mac\" is not Bearer", ...
 * Texts from the body have control characters replaced by spaces. The
 * message never contains the access token. GAPI_ENOMEM ("out of memory");
 * GAPI_EINVAL (out NULL, or body NULL with len > 0). */
int gapi__token_parse(gapi__token_result *out, const char *who, int status, const char *body,
                      size_t len, char *errbuf, size_t errbuf_size);

/* Cleanses and frees the token; leaves expires_in -1 and retryable 0. Safe
 * on a zeroed struct and NULL. */
void gapi__token_result_clear(gapi__token_result *t);

/* Overwrites every string value in a json-c tree with zero bytes (lengths
 * unchanged), so secrets do not outlive the tree in freed memory. Keys and
 * numbers are left alone. NULL is a no-op. */
void gapi__json_cleanse(struct json_object *o);

#endif
