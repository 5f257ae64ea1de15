/*
 * JSON Web Tokens signed with RS256 (RFC 7515, RFC 7518 section 3.3), the
 * assertion of Google's service-account flows, and the base64url they are
 * made of. Pure: no libevent, no I/O, no global state; any thread may call
 * these. Memory comes from gapi__malloc; OpenSSL allocates its own.
 */
#ifndef GAPI_AUTH_JWT_H
#define GAPI_AUTH_JWT_H

#include <stddef.h>

#include <openssl/evp.h>

#include "common/buf.h"

/* Appends the base64url form of data[0..len) without padding (RFC 7515
 * section 2). Returns 0 or GAPI_ENOMEM (out unchanged). */
int gapi__b64url_encode(gapi__buf *out, const void *data, size_t len);

/* Appends the bytes that s[0..len) encodes. '=' padding is optional, but when
 * present it must be correct (only at the end, making the length a multiple
 * of four). Non-canonical text (unused low bits not zero, or a length of 1
 * mod 4) is refused, so each byte string has exactly one accepted encoding.
 * Returns 0, GAPI_EINVAL (a character outside [A-Za-z0-9_-], bad padding or
 * length, non-canonical; out unchanged) or GAPI_ENOMEM (out unchanged). */
int gapi__b64url_decode(gapi__buf *out, const char *s, size_t len);

/* Loads an RSA private key of at least 2048 bits (RFC 7518 section 3.3) from
 * the first PEM block in pem[0..len): "BEGIN PRIVATE KEY" (PKCS#8) or "BEGIN
 * RSA PRIVATE KEY" (PKCS#1). Text before and after the block is ignored.
 * Encrypted keys, other key types, other PEM labels and truncated blocks are
 * refused. OpenSSL never prompts for a password.
 *
 * Returns 0 with *out set (the caller frees it with EVP_PKEY_free), or
 * GAPI_ECREDENTIALS with the reason in errbuf (never any of the key's text),
 * or GAPI_EINVAL (out NULL, or pem NULL with len > 0). On failure *out is
 * untouched and OpenSSL's error queue is left empty. */
int gapi__rsa_key_from_pem(EVP_PKEY **out, const char *pem, size_t len, char *errbuf,
                           size_t errbuf_size);

/* Appends the base64url RS256 signature (RSASSA-PKCS1-v1_5 with SHA-256) of
 * input[0..len). Returns 0, GAPI_EINVAL (key NULL or not RSA), GAPI_ENOMEM,
 * or GAPI_ECREDENTIALS (OpenSSL refused to sign with the key). On failure
 * out is unchanged. */
int gapi__rs256_sign_b64url(gapi__buf *out, EVP_PKEY *key, const void *input, size_t len);

typedef struct gapi__jwt_claims {
    const char *iss, *sub, *aud, *scope; /* NULL: claim omitted */
    long long iat, exp;
} gapi__jwt_claims;

/* Signs a JWT: b64url(header) "." b64url(claims) "." b64url(signature).
 * The header is {"alg":"RS256","typ":"JWT","kid":kid} ("kid" left out when
 * kid is NULL); the claims are a compact JSON object whose keys come in the
 * order iss, sub, aud, scope, iat, exp (NULL strings left out; iat and exp
 * always present). Strings are JSON-escaped: '"', '\\' and control
 * characters; '/' and non-ASCII UTF-8 are written as they are.
 *
 * Returns 0 with *out a NUL-terminated string from gapi__malloc (the caller
 * frees it, and should cleanse it first: it is a credential until exp), or
 * GAPI_EINVAL (out, key or c NULL; a string that is not valid UTF-8; a key
 * that is not RSA), GAPI_ENOMEM, GAPI_ECREDENTIALS (OpenSSL refused to sign).
 * On failure *out is untouched. The output is built in one allocation of its
 * exact final size, so no copy of it is left in freed memory. */
int gapi__jwt_sign(char **out, EVP_PKEY *key, const char *kid, const gapi__jwt_claims *c);

#endif
