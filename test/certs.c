/*
 * Run-time test PKI (see certs.h).
 *
 * Everything is generated with the non-deprecated OpenSSL 3 API: EVP_EC_gen
 * for P-256 keys (milliseconds, against ~100 ms for RSA-2048, and still cheap
 * under valgrind), X509_new + X509V3_EXT_conf_nid for the extensions,
 * X509_sign with SHA-256.
 *
 * Invariant: g_certs is NULL or complete (a failed build leaves it NULL). The
 * lock is held while building, so concurrent first users wait instead of
 * building twice.
 */
#include "certs.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define TS_DAY      (24L * 60 * 60)
#define TS_GOOD_SAN "DNS:localhost,IP:127.0.0.1,IP:::1"
#define TS_NKINDS   4

struct ts_certs {
    EVP_PKEY *ca_key;
    EVP_PKEY *other_ca_key;
    EVP_PKEY *leaf_key; /* one key serves every server certificate */
    X509 *ca;
    X509 *other_ca;
    X509 *leaf[TS_NKINDS]; /* indexed by ts_cert_kind */
    char *ca_pem;
    char *other_ca_pem;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ts_certs *g_certs;
static int g_atexit_done;

static void certs_free(struct ts_certs *c)
{
    int i;

    if (!c)
        return;
    EVP_PKEY_free(c->ca_key);
    EVP_PKEY_free(c->other_ca_key);
    EVP_PKEY_free(c->leaf_key);
    X509_free(c->ca);
    X509_free(c->other_ca);
    for (i = 0; i < TS_NKINDS; i++)
        X509_free(c->leaf[i]);
    free(c->ca_pem);
    free(c->other_ca_pem);
    free(c);
}

static int add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    /* X509V3_EXT_conf_nid takes a non-const value it does not modify. */
    char buf[256];
    X509_EXTENSION *ext;
    int ok;

    if (strlen(value) >= sizeof(buf))
        return 0;
    memcpy(buf, value, strlen(value) + 1);
    ext = X509V3_EXT_conf_nid(NULL, v3, nid, buf);
    if (!ext)
        return 0;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Random positive 63-bit serial: certificates from one issuer must not share
 * a serial, and a fresh CA key per process makes cross-run clashes moot. */
static int set_serial(X509 *x)
{
    unsigned char raw[8];
    BIGNUM *bn;
    int ok;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return 0;
    raw[0] &= 0x7f;
    raw[0] |= 0x01; /* never zero */
    bn = BN_bin2bn(raw, sizeof(raw), NULL);
    if (!bn)
        return 0;
    ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

/* issuer == NULL makes a self-signed certificate (issuer_key must be key). */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       long not_before, long not_after, int is_ca, const char *san)
{
    X509 *x = X509_new();
    X509_NAME *name;
    X509V3_CTX v3;

    if (!x)
        return NULL;
    if (!X509_set_version(x, X509_VERSION_3) || !set_serial(x))
        goto fail;
    if (!X509_gmtime_adj(X509_getm_notBefore(x), not_before) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), not_after))
        goto fail;
    if (!X509_set_pubkey(x, key))
        goto fail;
    name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"gapi test", -1,
                                    -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0))
        goto fail;
    if (!X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name))
        goto fail;

    /* The subject key identifier must exist before the authority key
     * identifier: for a self-signed CA the AKID is copied from it. */
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    if (!add_ext(x, &v3, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
        !add_ext(x, &v3, NID_key_usage,
                 is_ca ? "critical,keyCertSign,cRLSign"
                       : "critical,digitalSignature,keyEncipherment") ||
        !add_ext(x, &v3, NID_subject_key_identifier, "hash") ||
        !add_ext(x, &v3, NID_authority_key_identifier, "keyid:always"))
        goto fail;
    if (!is_ca && !add_ext(x, &v3, NID_ext_key_usage, "serverAuth"))
        goto fail;
    if (san && !add_ext(x, &v3, NID_subject_alt_name, san))
        goto fail;

    if (X509_sign(x, issuer_key, EVP_sha256()) <= 0)
        goto fail;
    return x;

fail:
    X509_free(x);
    return NULL;
}

static char *to_pem(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *out = NULL;
    long n;

    if (!bio)
        return NULL;
    if (PEM_write_bio_X509(bio, x) == 1) {
        n = BIO_get_mem_data(bio, &data);
        if (n > 0 && (out = malloc((size_t)n + 1)) != NULL) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(bio);
    return out;
}

static struct ts_certs *certs_make(void)
{
    struct ts_certs *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->ca_key = EVP_EC_gen("P-256");
    c->other_ca_key = EVP_EC_gen("P-256");
    c->leaf_key = EVP_EC_gen("P-256");
    if (!c->ca_key || !c->other_ca_key || !c->leaf_key)
        goto fail;

    c->ca = make_cert("gapi test CA", c->ca_key, NULL, c->ca_key, -TS_DAY, 3650 * TS_DAY, 1, NULL);
    c->other_ca = make_cert("gapi other test CA", c->other_ca_key, NULL, c->other_ca_key, -TS_DAY,
                            3650 * TS_DAY, 1, NULL);
    if (!c->ca || !c->other_ca)
        goto fail;

    c->leaf[TS_CERT_GOOD] =
        make_cert("localhost", c->leaf_key, c->ca, c->ca_key, -TS_DAY, 30 * TS_DAY, 0, TS_GOOD_SAN);
    c->leaf[TS_CERT_WRONG_HOST] = make_cert("wrong.example.invalid", c->leaf_key, c->ca, c->ca_key,
                                            -TS_DAY, 30 * TS_DAY, 0, "DNS:wrong.example.invalid");
    c->leaf[TS_CERT_EXPIRED] =
        make_cert("localhost", c->leaf_key, c->ca, c->ca_key, -2 * TS_DAY, -TS_DAY, 0, TS_GOOD_SAN);
    c->leaf[TS_CERT_UNTRUSTED] = make_cert("localhost", c->leaf_key, c->other_ca, c->other_ca_key,
                                           -TS_DAY, 30 * TS_DAY, 0, TS_GOOD_SAN);
    if (!c->leaf[0] || !c->leaf[1] || !c->leaf[2] || !c->leaf[3])
        goto fail;

    c->ca_pem = to_pem(c->ca);
    c->other_ca_pem = to_pem(c->other_ca);
    if (!c->ca_pem || !c->other_ca_pem)
        goto fail;
    return c;

fail:
    certs_free(c);
    return NULL;
}

void ts_certs_cleanup(void)
{
    pthread_mutex_lock(&g_lock);
    certs_free(g_certs);
    g_certs = NULL;
    pthread_mutex_unlock(&g_lock);
}

/* Requires g_lock. */
static struct ts_certs *certs_get_locked(void)
{
    if (g_certs)
        return g_certs;
    /* Initialise OpenSSL before registering our atexit handler, so that
     * handler runs (LIFO) before OpenSSL's own cleanup. */
    if (OPENSSL_init_ssl(0, NULL) != 1)
        return NULL;
    g_certs = certs_make();
    if (!g_certs) {
        fprintf(stderr, "ts_certs: cannot make test certificates\n");
        ERR_print_errors_fp(stderr);
        return NULL;
    }
    if (!g_atexit_done) {
        g_atexit_done = 1;
        atexit(ts_certs_cleanup);
    }
    return g_certs;
}

int ts_certs_init(void)
{
    struct ts_certs *c;

    pthread_mutex_lock(&g_lock);
    c = certs_get_locked();
    pthread_mutex_unlock(&g_lock);
    return c ? 0 : -1;
}

const char *ts_certs_ca_pem(void)
{
    struct ts_certs *c;

    pthread_mutex_lock(&g_lock);
    c = certs_get_locked();
    pthread_mutex_unlock(&g_lock);
    return c ? c->ca_pem : NULL;
}

const char *ts_certs_other_ca_pem(void)
{
    struct ts_certs *c;

    pthread_mutex_lock(&g_lock);
    c = certs_get_locked();
    pthread_mutex_unlock(&g_lock);
    return c ? c->other_ca_pem : NULL;
}

int ts_certs_use(SSL_CTX *ctx, ts_cert_kind kind)
{
    struct ts_certs *c;
    int rc = -1;

    if (!ctx || (int)kind < 0 || (int)kind >= TS_NKINDS)
        return -1;
    pthread_mutex_lock(&g_lock);
    c = certs_get_locked();
    if (c && SSL_CTX_use_certificate(ctx, c->leaf[kind]) == 1 &&
        SSL_CTX_use_PrivateKey(ctx, c->leaf_key) == 1 && SSL_CTX_check_private_key(ctx) == 1)
        rc = 0;
    pthread_mutex_unlock(&g_lock);
    if (rc != 0) {
        fprintf(stderr, "ts_certs: cannot install certificate kind %d\n", (int)kind);
        ERR_print_errors_fp(stderr);
    }
    return rc;
}
