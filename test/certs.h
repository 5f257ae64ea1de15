/*
 * Test certificates made at run time with the OpenSSL 3 API; nothing is
 * written to disk.
 *
 * Made once per process (on first use) and cached: a test CA, a second,
 * unrelated CA, one P-256 server key, and one server certificate per
 * ts_cert_kind:
 *
 *   TS_CERT_GOOD        test CA, SAN DNS:localhost, IP:127.0.0.1, IP:::1
 *   TS_CERT_WRONG_HOST  test CA, SAN DNS:wrong.example.invalid only
 *   TS_CERT_EXPIRED     test CA, good SAN, notBefore -2 days, notAfter -1 day
 *   TS_CERT_UNTRUSTED   the second CA, good SAN
 *
 * Server certificates carry keyUsage digitalSignature, extendedKeyUsage
 * serverAuth and subject/authority key identifiers; the CAs carry a
 * critical basicConstraints CA:TRUE and keyUsage keyCertSign, cRLSign.
 *
 * All functions are safe to call from any thread (one internal mutex), except
 * that ts_certs_cleanup() must not run while a pointer returned here is in use.
 */
#ifndef GAPI_TEST_CERTS_H
#define GAPI_TEST_CERTS_H

#include <openssl/ssl.h>

#include "server.h"

/* Makes the certificates if they are not cached yet. Returns 0, or -1 after
 * printing the OpenSSL error queue to stderr. The cache is freed at exit
 * (atexit) or by ts_certs_cleanup(). */
int ts_certs_init(void);

/* PEM text of the test CA (the one clients should trust), or NULL if the
 * certificates cannot be made. Owned by the cache. */
const char *ts_certs_ca_pem(void);

/* PEM text of the second CA, which signs only TS_CERT_UNTRUSTED. A test that
 * wants the "untrusted" server to verify can trust this one. */
const char *ts_certs_other_ca_pem(void);

/* Installs the server certificate of the given kind and its key into ctx
 * (the leaf only: no chain is sent, so an untrusted issuer is reported as
 * X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY). Returns 0 or -1. ctx keeps
 * its own references; the cache may be cleaned up afterwards. */
int ts_certs_use(SSL_CTX *ctx, ts_cert_kind kind);

/* Frees the cache now; the next call above makes new certificates (with new
 * keys). Idempotent. */
void ts_certs_cleanup(void);

#endif
