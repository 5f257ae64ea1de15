/*
 * TLS context and per-connection setup; see tls.h.
 *
 * Why no "verify off" switch: a boolean that disables verification is one
 * typo away from shipping. Tests that need a private CA pass it as PEM in
 * gapi_client_options.ca_pem instead, which keeps every check on.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/alloc.h"
#include "tls/tls.h"

struct gapi__tls {
    SSL_CTX *ctx;
    gapi__tls_session_cb on_session;
};

static int tls_ctx_index = -1;
static pthread_once_t tls_index_once = PTHREAD_ONCE_INIT;

static void make_index(void)
{
    tls_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static void set_err(char *buf, size_t len, const char *what)
{
    unsigned long e = ERR_get_error();
    char ebuf[256];

    if (!buf || !len)
        return;
    if (e) {
        ERR_error_string_n(e, ebuf, sizeof(ebuf));
        snprintf(buf, len, "%s: %s", what, ebuf);
    } else {
        snprintf(buf, len, "%s", what);
    }
    ERR_clear_error();
}

static int add_pem_cas(SSL_CTX *ctx, const char *pem, char *errbuf, size_t errlen)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x;
    int n = 0;

    if (!bio)
        return GAPI_ENOMEM;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, x) != 1) {
            X509_free(x);
            BIO_free(bio);
            set_err(errbuf, errlen, "ca_pem: cannot add certificate");
            return GAPI_ETLSCONFIG;
        }
        X509_free(x);
        n++;
    }
    BIO_free(bio);
    /* The loop ends with a "no start line" error at end of input. */
    ERR_clear_error();
    if (n == 0) {
        set_err(errbuf, errlen, "ca_pem: no PEM certificate found");
        return GAPI_ETLSCONFIG;
    }
    return GAPI_OK;
}

static int load_trust(SSL_CTX *ctx, const gapi_client_options *o, char *errbuf, size_t errlen)
{
    if (o && (o->ca_file || o->ca_dir)) {
        if (SSL_CTX_load_verify_locations(ctx, o->ca_file, o->ca_dir) != 1) {
            char what[512];
            snprintf(what, sizeof(what), "cannot load CA %s %s", o->ca_file ? o->ca_file : "",
                     o->ca_dir ? o->ca_dir : "");
            set_err(errbuf, errlen, what);
            return GAPI_ETLSCONFIG;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        set_err(errbuf, errlen, "cannot load the system CA store");
        return GAPI_ETLSCONFIG;
    }
    if (o && o->ca_pem)
        return add_pem_cas(ctx, o->ca_pem, errbuf, errlen);
    return GAPI_OK;
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    gapi__tls *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_ctx_index);
    return t && t->on_session ? t->on_session(ssl, sess) : 0;
}

int gapi__tls_new(gapi__tls **out, const gapi_client_options *o, gapi__tls_session_cb on_session,
                  char *errbuf, size_t errlen)
{
    static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    gapi__tls *t;
    int rc;

    /* Clients may be made on several threads (one loop each). */
    pthread_once(&tls_index_once, make_index);
    t = gapi__calloc(1, sizeof(*t));
    if (!t)
        return GAPI_ENOMEM;
    t->on_session = on_session;
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (!t->ctx) {
        gapi__free(t);
        set_err(errbuf, errlen, "SSL_CTX_new failed");
        return GAPI_ENOMEM;
    }
    SSL_CTX_set_ex_data(t->ctx, tls_ctx_index, t);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_alpn_protos(t->ctx, alpn, sizeof(alpn));
    /* Sessions are kept per origin by the pool, not in OpenSSL's internal
     * cache, so a connection to one origin never offers another's ticket. */
    SSL_CTX_set_session_cache_mode(t->ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(t->ctx, new_session_cb);
    rc = load_trust(t->ctx, o, errbuf, errlen);
    if (rc != GAPI_OK) {
        gapi__tls_free(t);
        return rc;
    }
    *out = t;
    return GAPI_OK;
}

void gapi__tls_free(gapi__tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    gapi__free(t);
}

SSL *gapi__tls_ssl_new(gapi__tls *t, const char *host, int host_is_ip, SSL_SESSION *resume,
                       void *app_data)
{
    SSL *ssl = SSL_new(t->ctx);
    X509_VERIFY_PARAM *param;

    if (!ssl)
        return NULL;
    param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (host_is_ip) {
        /* RFC 6066: SNI carries host names only; IPs are matched to SANs. */
        if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1)
            goto fail;
    } else {
        if (SSL_set1_host(ssl, host) != 1 || SSL_set_tlsext_host_name(ssl, host) != 1)
            goto fail;
    }
    if (resume)
        SSL_set_session(ssl, resume);
    SSL_set_app_data(ssl, app_data);
    return ssl;
fail:
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
}

int gapi__tls_describe_failure(SSL *ssl, unsigned long first_err, char *buf, size_t len)
{
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    char ebuf[256];

    if (vr != X509_V_OK) {
        snprintf(buf, len, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
        ERR_clear_error();
        return GAPI_ETLSVERIFY;
    }
    if (!first_err)
        first_err = ERR_get_error();
    if (first_err) {
        ERR_error_string_n(first_err, ebuf, sizeof(ebuf));
        snprintf(buf, len, "TLS failure: %s", ebuf);
    } else {
        snprintf(buf, len, "TLS failure (connection closed during handshake)");
    }
    ERR_clear_error();
    return GAPI_ETLS;
}
