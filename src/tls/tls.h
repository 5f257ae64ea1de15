/*
 * TLS configuration: one SSL_CTX per client. Peer verification is always on
 * (SSL_VERIFY_PEER, host name or IP checked against the certificate, TLS 1.2
 * minimum); the only knobs choose which CAs are trusted. Client sessions are
 * cached per origin by the pool for resumption (see pool.c).
 */
#ifndef GAPI_TLS_TLS_H
#define GAPI_TLS_TLS_H

#include <openssl/ssl.h>

#include "gapi.h"

typedef struct gapi__tls gapi__tls;

/* Called when the server hands out a session; the owner takes the reference
 * (return 1) or not (return 0), as with SSL_CTX_sess_set_new_cb. */
typedef int (*gapi__tls_session_cb)(SSL *ssl, SSL_SESSION *sess);

int gapi__tls_new(gapi__tls **out, const gapi_client_options *o, gapi__tls_session_cb on_session,
                  char *errbuf, size_t errlen);
void gapi__tls_free(gapi__tls *t);

/* A client SSL for host: SNI (names only, never IP literals), host name or IP
 * verification, ALPN http/1.1, optional session to resume. app_data is
 * stored with SSL_set_app_data. NULL on ENOMEM. */
SSL *gapi__tls_ssl_new(gapi__tls *t, const char *host, int host_is_ip, SSL_SESSION *resume,
                       void *app_data);

/* Describe why a TLS connection failed into buf: the certificate verify
 * result when verification failed (returns GAPI_ETLSVERIFY), else the
 * OpenSSL error queue entries given (returns GAPI_ETLS). Clears the queue. */
int gapi__tls_describe_failure(SSL *ssl, unsigned long first_err, char *buf, size_t len);

#endif
