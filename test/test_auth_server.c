/*
 * Self-test of the auth side of the test server (auth_server.c), TAP output.
 *
 * The client is libevent's evhttp client on the server's own base (one
 * thread), over plain HTTP, plus one HTTPS run through a bufferevent_openssl
 * to check the token audience under TLS. JWTs are signed here with OpenSSL
 * and the RFC 7515 A.2 key from ../shared/jose; nothing of gapi is used, so
 * this checks the server against OpenSSL and the RFC, not against the code
 * it will judge.
 *
 * Every test ends with ta_auth_free, ts_server_free and a check that no
 * event is left on the base.
 */
#include "auth_server.h"
#include "server.h"
#include "tap.h"
#include "util.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define EMAIL          "svc@test-project.iam.gserviceaccount.com"
#define KID            "kid-1"
#define SCOPE          "https://www.googleapis.com/auth/cloud-platform"
#define JWT_GRANT_FORM "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
#define GOOD_HDR       "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"" KID "\"}"
#define FORM_CT        "application/x-www-form-urlencoded"
#define API_401                                                                                    \
    "{\"error\":{\"code\":401,\"message\":\"Request had invalid authentication "                   \
    "credentials.\",\"status\":\"UNAUTHENTICATED\",\"errors\":[{\"reason\":\"authError\","         \
    "\"domain\":\"global\",\"message\":\"Invalid Credentials\"}]}}"

static struct event_base *g_base;
static EVP_PKEY *g_key;       /* RFC 7515 A.2 private key */
static EVP_PKEY *g_other_key; /* RFC 7520 "bilbo" key: right form, wrong key */
static char *g_spki;          /* RFC 7515 A.2 public key, SPKI PEM */
static char *g_rfc_compact;   /* RFC 7515 A.2 compact JWS (no typ, no kid) */
static const char *g_priv_path;

/* What the client sent, counted here so the server's counters are checked
 * against an independent tally. */
static unsigned g_token_reqs, g_token_ok, g_api_reqs, g_api_401;

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        abort();
    return p;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n;
    char *p;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    p = malloc((size_t)n + 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n)
        abort();
    p[n] = '\0';
    fclose(f);
    return p;
}

/* ------------------------------------------------------------ JWT making */

static char *b64url(const unsigned char *in, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n * 4 / 3 + 4);
    size_t i, o = 0;

    if (!out)
        abort();
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
    }
    out[o] = '\0';
    return out;
}

/* header.claims.signature, RS256 with key. */
static char *sign_jwt(EVP_PKEY *key, const char *hdr, const char *claims)
{
    char *h = b64url((const unsigned char *)hdr, strlen(hdr));
    char *c = b64url((const unsigned char *)claims, strlen(claims));
    size_t in_len = strlen(h) + 1 + strlen(c);
    char *input = malloc(in_len + 1), *s, *out;
    unsigned char sig[1024];
    size_t sig_len = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    if (!input || !md)
        abort();
    snprintf(input, in_len + 1, "%s.%s", h, c);
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input, in_len) != 1) {
        ERR_print_errors_fp(stderr);
        abort();
    }
    EVP_MD_CTX_free(md);
    s = b64url(sig, sig_len);
    out = malloc(in_len + strlen(s) + 2);
    if (!out)
        abort();
    sprintf(out, "%s.%s", input, s);
    free(h);
    free(c);
    free(input);
    free(s);
    return out;
}

/* Claims of a jwt-bearer grant; sub NULL: none. */
static char *grant_claims(const char *iss, const char *aud, const char *scope, long long iat,
                          long long exp, const char *sub)
{
    char *p = malloc(2048);

    if (!p)
        abort();
    snprintf(p, 2048,
             "{\"iss\":\"%s\",\"scope\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld%s%s%s}",
             iss, scope, aud, iat, exp, sub ? ",\"sub\":\"" : "", sub ? sub : "", sub ? "\"" : "");
    return p;
}

static char *token_aud(ts_server *s)
{
    char *p = malloc(128);

    if (!p)
        abort();
    snprintf(p, 128, "%s/token", ts_server_origin(s));
    return p;
}

/* A grant JWT for the expected account with one thing changed. */
static char *grant_jwt(ts_server *s, const char *hdr, const char *iss, const char *aud,
                       const char *scope, long long iat_off, long long life, const char *sub)
{
    char *def_aud = token_aud(s);
    long long iat = (long long)time(NULL) + iat_off;
    char *claims = grant_claims(iss ? iss : EMAIL, aud ? aud : def_aud, scope ? scope : SCOPE, iat,
                                iat + life, sub);
    char *jwt = sign_jwt(g_key, hdr ? hdr : GOOD_HDR, claims);

    free(claims);
    free(def_aud);
    return jwt;
}

/* ------------------------------------------------------------ HTTP client */

struct call {
    struct evhttp_connection *evcon;
    int done;
    int status; /* 0: no response */
    char *body;
    char ctype[128], www[128], flavor[64], allow[32];
    double t0, ms;
};

static void copy_hdr(struct evkeyvalq *h, const char *name, char *dst, size_t n)
{
    const char *v = evhttp_find_header(h, name);

    snprintf(dst, n, "%s", v ? v : "");
}

static void on_resp(struct evhttp_request *req, void *arg)
{
    struct call *c = arg;

    c->done = 1;
    c->ms = now_ms() - c->t0;
    if (req && evhttp_request_get_response_code(req) > 0) {
        struct evbuffer *b = evhttp_request_get_input_buffer(req);
        struct evkeyvalq *h = evhttp_request_get_input_headers(req);
        size_t n = evbuffer_get_length(b);

        c->status = evhttp_request_get_response_code(req);
        c->body = malloc(n + 1);
        if (!c->body)
            abort();
        evbuffer_remove(b, c->body, n);
        c->body[n] = '\0';
        copy_hdr(h, "Content-Type", c->ctype, sizeof(c->ctype));
        copy_hdr(h, "WWW-Authenticate", c->www, sizeof(c->www));
        copy_hdr(h, "Metadata-Flavor", c->flavor, sizeof(c->flavor));
        copy_hdr(h, "Allow", c->allow, sizeof(c->allow));
    }
}

static SSL_CTX *client_ctx(const char *ca_pem)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509_STORE *store = X509_STORE_new();
    BIO *bio = BIO_new_mem_buf(ca_pem, -1);
    X509 *ca = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

    if (!ctx || !store || !ca || X509_STORE_add_cert(store, ca) != 1) {
        ERR_print_errors_fp(stderr);
        abort();
    }
    X509_free(ca);
    BIO_free(bio);
    SSL_CTX_set_cert_store(ctx, store);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

/* Starts one request on a new connection. hdrs: name, value, ..., NULL.
 * tls: an SSL_CTX for HTTPS (verifying 127.0.0.1), NULL for plain HTTP. */
static void call_start(struct call *c, ts_server *s, SSL_CTX *tls, enum evhttp_cmd_type cmd,
                       const char *uri, const char *const *hdrs, const char *body)
{
    struct evhttp_request *req;
    struct evkeyvalq *out;
    char host[64];

    memset(c, 0, sizeof(*c));
    if (tls) {
        SSL *ssl = SSL_new(tls);
        struct bufferevent *bev;

        if (!ssl)
            abort();
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
        bev = bufferevent_openssl_socket_new(g_base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!bev)
            abort();
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        c->evcon = evhttp_connection_base_bufferevent_new(g_base, NULL, bev, "127.0.0.1",
                                                          (unsigned short)ts_server_port(s));
    } else {
        c->evcon = evhttp_connection_base_new(g_base, NULL, "127.0.0.1",
                                              (unsigned short)ts_server_port(s));
    }
    req = evhttp_request_new(on_resp, c);
    if (!c->evcon || !req)
        abort();
    out = evhttp_request_get_output_headers(req);
    snprintf(host, sizeof(host), "127.0.0.1:%d", ts_server_port(s));
    evhttp_add_header(out, "Host", host);
    for (; hdrs && hdrs[0]; hdrs += 2)
        evhttp_add_header(out, hdrs[0], hdrs[1]);
    if (body)
        evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    c->t0 = now_ms();
    if (evhttp_make_request(c->evcon, req, cmd, uri) != 0)
        abort(); /* evhttp freed req */
}

static int call_wait(struct call *c, unsigned ms)
{
    return tu_run_until(g_base, &c->done, 1, ms);
}

static void call_end(struct call *c)
{
    if (c->evcon)
        evhttp_connection_free(c->evcon);
    free(c->body);
    memset(c, 0, sizeof(*c));
}

/* A whole request; the caller call_end()s. */
static int do_call(struct call *c, ts_server *s, enum evhttp_cmd_type cmd, const char *uri,
                   const char *const *hdrs, const char *body)
{
    call_start(c, s, NULL, cmd, uri, hdrs, body);
    if (call_wait(c, 5000) != 0)
        diag("no answer to %s within 5 s", uri);
    return c->status;
}

/* ------------------------------------------------------------ token replies */

struct tok {
    int status;
    char ctype[128];
    char error[64];
    char desc[512];
    char access_token[64];
    enum json_type expires_type;
    long long expires_in;
    char token_type[32];
    char raw[512];
};

static void str_member(json_object *o, const char *key, char *dst, size_t n)
{
    json_object *v;

    dst[0] = '\0';
    if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
        snprintf(dst, n, "%s", json_object_get_string(v));
}

static void parse_tok(struct tok *t, const struct call *c)
{
    json_object *o = c->body ? json_tokener_parse(c->body) : NULL;
    json_object *v;

    memset(t, 0, sizeof(*t));
    t->status = c->status;
    snprintf(t->ctype, sizeof(t->ctype), "%s", c->ctype);
    snprintf(t->raw, sizeof(t->raw), "%s", c->body ? c->body : "");
    t->expires_type = json_type_null;
    if (o && json_object_is_type(o, json_type_object)) {
        str_member(o, "error", t->error, sizeof(t->error));
        str_member(o, "error_description", t->desc, sizeof(t->desc));
        str_member(o, "access_token", t->access_token, sizeof(t->access_token));
        str_member(o, "token_type", t->token_type, sizeof(t->token_type));
        if (json_object_object_get_ex(o, "expires_in", &v)) {
            t->expires_type = json_object_get_type(v);
            t->expires_in = json_object_is_type(v, json_type_string)
                                ? atoll(json_object_get_string(v))
                                : (long long)json_object_get_int64(v);
        }
    }
    json_object_put(o);
    g_token_reqs++;
    if (t->status == 200 && t->access_token[0])
        g_token_ok++;
}

static struct tok post_token_ct(ts_server *s, const char *ctype, const char *form)
{
    const char *hdrs[] = {"Content-Type", ctype, NULL};
    struct call c;
    struct tok t;

    do_call(&c, s, EVHTTP_REQ_POST, "/token", ctype ? hdrs : NULL, form);
    parse_tok(&t, &c);
    call_end(&c);
    return t;
}

static struct tok post_token(ts_server *s, const char *form)
{
    return post_token_ct(s, FORM_CT, form);
}

static struct tok post_jwt(ts_server *s, const char *jwt)
{
    char *form = malloc(strlen(JWT_GRANT_FORM) + strlen(jwt) + 1);
    struct tok t;

    if (!form)
        abort();
    sprintf(form, "%s%s", JWT_GRANT_FORM, jwt);
    t = post_token(s, form);
    free(form);
    return t;
}

/* Posts the JWT and checks it is refused as invalid_grant with a reason
 * that contains want (and that the same reason is ta_auth_last_error). */
static void refused(ts_server *s, ta_auth *a, char *jwt, const char *want, const char *what)
{
    struct tok t = post_jwt(s, jwt);

    is_int(t.status, 400, "%s: 400", what);
    if (!ok(strcmp(t.error, "invalid_grant") == 0 && strstr(t.desc, want) != NULL,
            "%s: invalid_grant, \"%s\"", what, want))
        diag("  got %s", t.raw);
    is_str(ta_auth_last_error(a), t.desc, "%s: last_error is the description", what);
    free(jwt);
}

/* ------------------------------------------------------------ set-up */

static ts_server *plain_server(void)
{
    ts_options o = TS_OPTIONS_INIT;

    o.plain_http = 1;
    return ts_server_new(g_base, &o);
}

static void teardown(ts_server *s, ta_auth *a, const char *what)
{
    ta_auth_free(a);
    ts_server_free(s);
    is_int(tu_events_left(g_base), 0, "%s: no events left after ta_auth_free + ts_server_free",
           what);
}

static void reset_tally(void)
{
    g_token_reqs = g_token_ok = g_api_reqs = g_api_401 = 0;
}

static void check_tally(ta_auth *a, const char *what)
{
    is_int(ta_auth_token_requests(a), g_token_reqs, "%s: token requests counted", what);
    is_int(ta_auth_tokens_issued(a), g_token_ok, "%s: tokens issued counted", what);
    is_int(ta_auth_api_requests(a), g_api_reqs, "%s: API requests counted", what);
    is_int(ta_auth_api_rejected(a), g_api_401, "%s: API rejections counted", what);
}

/* ------------------------------------------------------------ tests */

static void test_new(void)
{
    ts_server *s = plain_server();
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long n;
    ta_auth *a;

    if (!s || !ec || !bio || PEM_write_bio_PUBKEY(bio, ec) != 1)
        abort();
    n = BIO_get_mem_data(bio, &pem);
    pem = strndup(pem, (size_t)n);
    diag("four refusals follow on stderr");
    ok(ta_auth_new(NULL, g_spki) == NULL, "new: NULL server refused");
    ok(ta_auth_new(s, "not a pem") == NULL, "new: garbage key refused");
    ok(ta_auth_new(s, pem) == NULL, "new: an EC public key refused (RS256 needs RSA)");
    {
        char *priv = read_file(g_priv_path);

        ok(ta_auth_new(s, priv) == NULL, "new: a private key PEM refused (SPKI wanted)");
        free(priv);
    }
    a = ta_auth_new(s, NULL);
    ok(a != NULL, "new: no key is allowed");
    ta_auth_expect_service_account(a, EMAIL, KID, SCOPE, NULL);
    reset_tally();
    {
        char *jwt = grant_jwt(s, NULL, NULL, NULL, NULL, 0, 3600, NULL);
        refused(s, a, jwt, "no public key configured", "no key");
    }
    check_tally(a, "no key");
    free(pem);
    BIO_free(bio);
    EVP_PKEY_free(ec);
    teardown(s, a, "new");
}

static void test_jwt_grant(void)
{
    ts_server *s = plain_server();
    ta_auth *a = ta_auth_new(s, g_spki);
    char *aud = token_aud(s);
    struct tok t;
    char *jwt, *claims;
    json_object *rec;

    reset_tally();
    /* Before any expectation: nothing to match. */
    refused(s, a, grant_jwt(s, NULL, NULL, NULL, NULL, 0, 3600, NULL),
            "no service account expected", "unconfigured");

    ta_auth_expect_service_account(a, EMAIL, KID, SCOPE, NULL);
    is_str(ta_auth_last_claims(a), NULL, "no claims recorded before a signature verifies");
    jwt = grant_jwt(s, NULL, NULL, NULL, NULL, 0, 3600, NULL);
    t = post_jwt(s, jwt);
    is_int(t.status, 200, "good JWT: 200");
    is_str(t.access_token, "ya29.t1", "good JWT: first token ya29.t1");
    ok(t.expires_type == json_type_int && t.expires_in == 3599, "good JWT: expires_in 3599 (int)");
    is_str(t.token_type, "Bearer", "good JWT: token_type Bearer");
    ok(strncmp(t.ctype, "application/json", 16) == 0, "good JWT: application/json (%s)", t.ctype);
    is_str(ta_auth_last_error(a), "", "good JWT: last_error empty");
    rec = ta_auth_last_claims(a) ? json_tokener_parse(ta_auth_last_claims(a)) : NULL;
    {
        json_object *v;
        ok(rec && json_object_object_get_ex(rec, "aud", &v) &&
               strcmp(json_object_get_string(v), aud) == 0 &&
               json_object_object_get_ex(rec, "iss", &v) &&
               strcmp(json_object_get_string(v), EMAIL) == 0,
           "good JWT: last_claims is the claim set (%s)", ta_auth_last_claims(a));
        ok(ta_auth_last_claims(a) && !strchr(ta_auth_last_claims(a), ' ') &&
               !strstr(ta_auth_last_claims(a), "\\/"),
           "good JWT: last_claims is compact, '/' unescaped");
    }
    json_object_put(rec);

    /* The same assertion again (Google accepts replays within its life): a
     * new token each time. */
    t = post_jwt(s, jwt);
    is_str(t.access_token, "ya29.t2", "second success: a new token ya29.t2");
    free(jwt);

    /* Signature. */
    jwt = grant_jwt(s, NULL, NULL, NULL, NULL, 0, 3600, NULL);
    {
        char *sig = strrchr(jwt, '.') + 10;
        *sig = *sig == 'A' ? 'B' : 'A';
    }
    refused(s, a, jwt, "bad signature", "one signature character changed");
    claims =
        grant_claims(EMAIL, aud, SCOPE, (long long)time(NULL), (long long)time(NULL) + 3600, NULL);
    refused(s, a, sign_jwt(g_other_key, GOOD_HDR, claims), "bad signature",
            "signed with another RSA key");
    jwt = sign_jwt(g_key, GOOD_HDR, claims);
    {
        /* Claims swapped for others after signing. */
        char *c2 = grant_claims(EMAIL, aud, SCOPE, (long long)time(NULL) + 1,
                                (long long)time(NULL) + 3601, NULL);
        char *other = sign_jwt(g_key, GOOD_HDR, c2);
        char *d1 = strchr(jwt, '.'), *d2 = strrchr(jwt, '.');
        char *o1 = strchr(other, '.'), *o2 = strrchr(other, '.');
        char *mix = malloc(strlen(jwt) + strlen(other) + 1);

        if (!mix)
            abort();
        sprintf(mix, "%.*s%.*s%s", (int)(d1 - jwt), jwt, (int)(o2 - o1), o1, d2);
        refused(s, a, mix, "bad signature", "claims of another JWT");
        free(c2);
        free(other);
        free(jwt);
    }
    free(claims);

    /* The RFC 7515 A.2 JWS is signed by this very key: it gets past the
     * signature and fails on the header's missing typ. */
    if (g_rfc_compact)
        refused(s, a, xstrdup(g_rfc_compact), "typ missing", "RFC 7515 A.2 JWS (no typ)");
    else
        skip(3, "RFC 7515 A.2 vector not loaded");

    /* Header. */
    refused(s, a,
            grant_jwt(s, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", NULL, NULL, NULL, 0, 3600, NULL),
            "kid missing", "missing kid");
    refused(s, a,
            grant_jwt(s, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"kid-2\"}", NULL, NULL, NULL,
                      0, 3600, NULL),
            "kid mismatch: got kid-2", "wrong kid");
    refused(s, a,
            grant_jwt(s, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"kid-1\"}", NULL, NULL, NULL,
                      0, 3600, NULL),
            "alg mismatch: got HS256", "alg HS256");
    refused(s, a,
            grant_jwt(s, "{\"alg\":\"RS256\",\"typ\":\"JWS\",\"kid\":\"kid-1\"}", NULL, NULL, NULL,
                      0, 3600, NULL),
            "typ mismatch: got JWS", "typ JWS");
    refused(s, a, grant_jwt(s, "[1]", NULL, NULL, NULL, 0, 3600, NULL),
            "header is not a JSON object", "header an array");
    refused(s, a, grant_jwt(s, "{\"alg\":\"RS256\"", NULL, NULL, NULL, 0, 3600, NULL),
            "header: not JSON (unexpected end at offset 14)", "header truncated JSON");
    refused(s, a, grant_jwt(s, GOOD_HDR " x", NULL, NULL, NULL, 0, 3600, NULL),
            "header: not JSON (unexpected character at offset 42)", "header with trailing bytes");

    /* Claims. */
    refused(s, a,
            grant_jwt(s, NULL, NULL, "https://oauth2.googleapis.com/token", NULL, 0, 3600, NULL),
            "aud mismatch: got https://oauth2.googleapis.com/token", "wrong aud");
    refused(s, a, grant_jwt(s, NULL, "other@x.iam.gserviceaccount.com", NULL, NULL, 0, 3600, NULL),
            "iss mismatch: got other@x.iam.gserviceaccount.com", "wrong iss");
    refused(s, a,
            grant_jwt(s, NULL, NULL, NULL, "https://www.googleapis.com/auth/devstorage.read_only",
                      0, 3600, NULL),
            "scope mismatch", "wrong scope");
    refused(s, a, grant_jwt(s, NULL, NULL, NULL, NULL, -4000, 3600, NULL), "iat out of range",
            "expired (iat an hour old)");
    refused(s, a, grant_jwt(s, NULL, NULL, NULL, NULL, 400, 3600, NULL), "iat out of range",
            "iat 400 s ahead");
    t = post_jwt(s, jwt = grant_jwt(s, NULL, NULL, NULL, NULL, -250, 3600, NULL));
    is_int(t.status, 200, "iat 250 s old: within the skew");
    free(jwt);
    refused(s, a, grant_jwt(s, NULL, NULL, NULL, NULL, 0, 7200, NULL), "exp is not iat + 3600",
            "lifetime 7200 s");
    refused(s, a, grant_jwt(s, NULL, NULL, NULL, NULL, 0, 3600, "user@example.com"),
            "sub present but none expected: got user@example.com", "sub not expected");
    {
        long long now = (long long)time(NULL);
        char c[512];

        snprintf(c, sizeof(c),
                 "{\"iss\":\"%s\",\"scope\":\"%s\",\"aud\":\"%s\",\"iat\":%lld.5,\"exp\":%lld}",
                 EMAIL, SCOPE, aud, now, now + 3600);
        refused(s, a, sign_jwt(g_key, GOOD_HDR, c), "iat is not an integer", "iat a fraction");
        snprintf(c, sizeof(c), "{\"iss\":\"%s\",\"scope\":\"%s\",\"aud\":\"%s\",\"iat\":%lld}",
                 EMAIL, SCOPE, aud, now);
        refused(s, a, sign_jwt(g_key, GOOD_HDR, c), "exp missing", "exp missing");
        ok(ta_auth_last_claims(a) && strstr(ta_auth_last_claims(a), "\"iat\":"),
           "a refused JWT's claims are still recorded once its signature verified");
    }

    /* Subject expected (domain-wide delegation). */
    ta_auth_expect_service_account(a, EMAIL, KID, SCOPE, "user@example.com");
    refused(s, a, grant_jwt(s, NULL, NULL, NULL, NULL, 0, 3600, NULL), "sub missing",
            "sub expected, absent");
    refused(s, a, grant_jwt(s, NULL, NULL, NULL, NULL, 0, 3600, "eve@example.com"),
            "sub mismatch: got eve@example.com", "sub expected, other");
    t = post_jwt(s, jwt = grant_jwt(s, NULL, NULL, NULL, NULL, 0, 3600, "user@example.com"));
    is_int(t.status, 200, "sub expected and sent: 200");
    free(jwt);

    /* Form of the JWT. */
    refused(s, a, xstrdup("abc.def"), "JWT has 2 parts, want 3", "two parts");
    refused(s, a, xstrdup("a.b.c.d"), "JWT has 4 parts, want 3", "four parts");
    refused(s, a, xstrdup("..sig"), "JWT header part empty", "empty header");
    jwt = grant_jwt(s, NULL, NULL, NULL, NULL, 0, 3600, "user@example.com");
    {
        /* Padding is not base64url as JWS uses it. */
        char *p = malloc(strlen(jwt) + 3);
        if (!p)
            abort();
        sprintf(p, "%s==", jwt);
        refused(s, a, p, "signature: bad base64url character", "signature padded with '='");
    }
    free(jwt);
    refused(s, a, xstrdup("eyJhbGciOiJSUzI1NiJ9x.e30.c2ln"), "header: base64url length",
            "header of impossible length");
    refused(s, a, xstrdup("eyJhbGciOiJSUzI1NiJ9.e30.c2l"), "non-canonical",
            "signature with trailing bits set");

    ta_auth_expect_service_account(a, EMAIL, NULL, SCOPE, NULL);
    refused(s, a, grant_jwt(s, NULL, NULL, NULL, NULL, 0, 3600, NULL),
            "kid present but none expected: got kid-1", "kid sent, none expected");
    t = post_jwt(s, jwt = grant_jwt(s, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", NULL, NULL, NULL, 0,
                                    3600, NULL));
    is_int(t.status, 200, "no kid expected, none sent: 200");
    free(jwt);

    check_tally(a, "jwt grant");
    free(aud);
    teardown(s, a, "jwt grant");
}

static void test_form(void)
{
    ts_server *s = plain_server();
    ta_auth *a = ta_auth_new(s, g_spki);
    struct tok t;
    struct call c;
    char *jwt, *form;

    reset_tally();
    ta_auth_expect_service_account(a, EMAIL, KID, SCOPE, NULL);
    jwt = grant_jwt(s, NULL, NULL, NULL, NULL, 0, 3600, NULL);

    /* Everything percent-encoded, even the dots: the server must decode. */
    form = malloc(strlen(jwt) * 3 + 200);
    if (!form)
        abort();
    {
        char *o = form + sprintf(form, "%s", JWT_GRANT_FORM);
        const char *p;
        for (p = jwt; *p; p++)
            o += *p == '.' ? sprintf(o, "%%2E") : sprintf(o, "%c", *p);
    }
    t = post_token(s, form);
    is_int(t.status, 200, "form: %%2E-encoded dots decoded");
    free(form);

    form = malloc(strlen(jwt) + 200);
    if (!form)
        abort();
    sprintf(form, "assertion=%s&&grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&x=1", jwt);
    t = post_token(s, form);
    is_int(t.status, 200, "form: order, empty pieces and unknown parameters do not matter");
    t = post_token_ct(s, "application/x-www-form-urlencoded; charset=utf-8", form);
    is_int(t.status, 200, "form: Content-Type with a charset parameter");
    t = post_token_ct(s, "application/json", form);
    ok(t.status == 400 && strcmp(t.error, "invalid_request") == 0 &&
           strstr(t.desc, "Content-Type is application/json"),
       "form: JSON Content-Type -> 400 invalid_request (%s)", t.desc);
    t = post_token_ct(s, NULL, form);
    ok(t.status == 400 && strstr(t.desc, "Content-Type is (absent)"),
       "form: no Content-Type -> 400 (%s)", t.desc);
    sprintf(form, "%s%s&assertion=x", JWT_GRANT_FORM, jwt);
    t = post_token(s, form);
    ok(t.status == 400 && strcmp(t.error, "invalid_request") == 0 &&
           strstr(t.desc, "parameter assertion given twice"),
       "form: repeated parameter -> invalid_request (%s)", t.desc);
    free(form);
    free(jwt);

    t = post_token(s, "grant_type=refresh_token&refresh_token=%2");
    ok(t.status == 400 && strcmp(t.error, "invalid_request") == 0 &&
           strcmp(t.desc, "bad percent-encoding at offset 39") == 0,
       "form: truncated %%XX -> offset named (%s)", t.desc);
    t = post_token(s, "grant_type=refresh%zztoken");
    ok(t.status == 400 && strcmp(t.desc, "bad percent-encoding at offset 18") == 0,
       "form: %%zz -> offset named (%s)", t.desc);
    t = post_token(s, "grant_type=refresh_token&client_id=a%00b");
    ok(t.status == 400 && strstr(t.desc, "%00 at offset 36"), "form: %%00 refused (%s)", t.desc);
    t = post_token(s, JWT_GRANT_FORM);
    ok(t.status == 400 && strcmp(t.error, "invalid_grant") == 0 &&
           strcmp(t.desc, "JWT has 1 parts, want 3") == 0,
       "form: empty assertion -> invalid_grant (%s)", t.desc);
    t = post_token(s, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer");
    ok(t.status == 400 && strcmp(t.error, "invalid_grant") == 0 &&
           strcmp(t.desc, "assertion missing") == 0,
       "form: no assertion -> invalid_grant \"assertion missing\" (%s)", t.desc);
    t = post_token(s, "grant_type=password&username=u&password=p");
    ok(t.status == 400 && strcmp(t.error, "unsupported_grant_type") == 0 &&
           strcmp(t.desc, "Invalid grant_type: password") == 0,
       "form: grant_type password -> unsupported_grant_type (%s)", t.desc);
    is_str(ta_auth_last_error(a), "Invalid grant_type: password", "last_error names the grant");
    t = post_token(s, "");
    ok(t.status == 400 && strcmp(t.error, "unsupported_grant_type") == 0,
       "form: empty body -> unsupported_grant_type (%s)", t.desc);

    do_call(&c, s, EVHTTP_REQ_GET, "/token", NULL, NULL);
    g_token_reqs++;
    ok(c.status == 405 && strcmp(c.allow, "POST") == 0 && c.body &&
           strstr(c.body, "\"invalid_request\""),
       "GET /token -> 405, Allow: POST, invalid_request (%d %s)", c.status, c.body);
    call_end(&c);

    check_tally(a, "form");
    teardown(s, a, "form");
}

static void test_refresh(void)
{
    ts_server *s = plain_server();
    ta_auth *a = ta_auth_new(s, g_spki);
    struct tok t;

    reset_tally();
    t = post_token(s, "grant_type=refresh_token&client_id=c&client_secret=s&refresh_token=r");
    ok(t.status == 400 && strcmp(t.desc, "no authorized user expected") == 0,
       "refresh before expect_user: refused (%s)", t.desc);
    ta_auth_expect_user(a, "123.apps.googleusercontent.com", "sec ret/+", "1//0g-refresh");
    t = post_token(s, "grant_type=refresh_token&client_id=123.apps.googleusercontent.com"
                      "&client_secret=sec+ret%2F%2B&refresh_token=1%2F%2F0g-refresh");
    is_int(t.status, 200, "refresh grant good ('+' and %%XX decoded)");
    is_str(t.access_token, "ya29.t1", "refresh grant: a token");
    t = post_token(s, "grant_type=refresh_token&client_id=123.apps.googleusercontent.com"
                      "&client_secret=sec+ret%2F%2B&refresh_token=1%2F%2F0g-refresh");
    is_str(t.access_token, "ya29.t2", "refresh grant again: a new token");
    t = post_token(s, "grant_type=refresh_token&client_id=123.apps.googleusercontent.com"
                      "&client_secret=wrong&refresh_token=1%2F%2F0g-refresh");
    ok(t.status == 400 && strcmp(t.error, "invalid_grant") == 0 &&
           strcmp(t.desc, "client_secret mismatch: got wrong") == 0,
       "refresh: wrong secret (%s)", t.desc);
    t = post_token(s, "grant_type=refresh_token&client_id=other&client_secret=sec+ret%2F%2B"
                      "&refresh_token=1%2F%2F0g-refresh");
    ok(t.status == 400 && strcmp(t.desc, "client_id mismatch: got other") == 0,
       "refresh: wrong client_id (%s)", t.desc);
    t = post_token(s, "grant_type=refresh_token&client_id=123.apps.googleusercontent.com"
                      "&client_secret=sec+ret%2F%2B&refresh_token=1//revoked");
    ok(t.status == 400 && strcmp(t.desc, "refresh_token mismatch: got 1//revoked") == 0,
       "refresh: wrong refresh_token (%s)", t.desc);
    t = post_token(s, "grant_type=refresh_token&client_id=123.apps.googleusercontent.com"
                      "&client_secret=sec+ret%2F%2B");
    ok(t.status == 400 && strcmp(t.desc, "refresh_token missing") == 0,
       "refresh: refresh_token missing (%s)", t.desc);
    is_str(ta_auth_last_error(a), "refresh_token missing", "refresh: last_error");
    check_tally(a, "refresh");
    teardown(s, a, "refresh");
}

static void test_metadata(void)
{
    ts_server *s = plain_server();
    ta_auth *a = ta_auth_new(s, NULL);
    const char *flavor[] = {"Metadata-Flavor", "Google", NULL};
    const char *lower[] = {"Metadata-Flavor", "google", NULL};
    struct call c;
    struct tok t;

    reset_tally();
    do_call(&c, s, EVHTTP_REQ_GET, "/computeMetadata/v1/", NULL, NULL);
    ok(c.status == 200 && c.body && strcmp(c.body, "ok") == 0 && strcmp(c.flavor, "Google") == 0,
       "metadata probe: 200 ok with Metadata-Flavor: Google");
    call_end(&c);

    do_call(&c, s, EVHTTP_REQ_GET, "/computeMetadata/v1/instance/service-accounts/default/token",
            NULL, NULL);
    g_token_reqs++;
    ok(c.status == 403 && strstr(c.ctype, "text/plain") && c.body &&
           strcmp(c.body, "Missing Metadata-Flavor:Google header.") == 0,
       "metadata token without the header: 403 text (%d %s)", c.status, c.body);
    is_str(ta_auth_last_error(a), "Metadata-Flavor missing", "metadata 403: last_error");
    call_end(&c);
    do_call(&c, s, EVHTTP_REQ_GET, "/computeMetadata/v1/instance/service-accounts/default/token",
            lower, NULL);
    g_token_reqs++;
    is_int(c.status, 403, "metadata token with Metadata-Flavor: google (wrong case): 403");
    call_end(&c);

    do_call(&c, s, EVHTTP_REQ_GET, "/computeMetadata/v1/instance/service-accounts/default/token",
            flavor, NULL);
    parse_tok(&t, &c);
    call_end(&c);
    ok(t.status == 200 && strcmp(t.access_token, "ya29.t1") == 0 && t.expires_in == 3599 &&
           strcmp(t.token_type, "Bearer") == 0,
       "metadata token with the header: 200 (%s)", t.raw);
    is_str(ta_auth_last_scopes(a), NULL, "no scopes query: last_scopes NULL");

    do_call(&c, s, EVHTTP_REQ_GET,
            "/computeMetadata/v1/instance/service-accounts/default/token?scopes="
            "https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform%2Cemail",
            flavor, NULL);
    ok(strcmp(c.flavor, "Google") == 0, "metadata token answer carries Metadata-Flavor");
    parse_tok(&t, &c);
    call_end(&c);
    is_str(t.access_token, "ya29.t2", "metadata token with scopes: a new token");
    is_str(ta_auth_last_scopes(a), "https://www.googleapis.com/auth/cloud-platform,email",
           "last_scopes is the decoded value");
    do_call(&c, s, EVHTTP_REQ_GET,
            "/computeMetadata/v1/instance/service-accounts/default/token?scopes=a,b", flavor, NULL);
    parse_tok(&t, &c);
    call_end(&c);
    is_str(ta_auth_last_scopes(a), "a,b", "last_scopes a,b");

    do_call(&c, s, EVHTTP_REQ_POST, "/computeMetadata/v1/instance/service-accounts/default/token",
            flavor, "x");
    g_token_reqs++;
    ok(c.status == 405 && strcmp(c.allow, "GET") == 0, "metadata token POST: 405, Allow: GET");
    call_end(&c);

    check_tally(a, "metadata");
    teardown(s, a, "metadata");
}

/* An API call; returns the status and, on 200, checks the body's fields. */
static int api(ts_server *s, enum evhttp_cmd_type cmd, const char *uri, const char *const *hdrs,
               char *who, size_t who_len, long long *n)
{
    struct call c;
    int status = do_call(&c, s, cmd, uri, hdrs, NULL);

    g_api_reqs++;
    if (who)
        who[0] = '\0';
    if (status == 200 && c.body) {
        json_object *o = json_tokener_parse(c.body), *v;

        if (who && o && json_object_object_get_ex(o, "who", &v))
            snprintf(who, who_len, "%s", json_object_get_string(v));
        if (n && o && json_object_object_get_ex(o, "n", &v))
            *n = json_object_get_int64(v);
        json_object_put(o);
    }
    if (status == 401) {
        g_api_401++;
        if (!ok(strcmp(c.body ? c.body : "", API_401) == 0 &&
                    strcmp(c.www, "Bearer realm=\"https://accounts.google.com/\"") == 0 &&
                    strncmp(c.ctype, "application/json", 16) == 0,
                "401 to %s: Google's error body, WWW-Authenticate, JSON", uri))
            diag("  body %s / www %s / ct %s", c.body, c.www, c.ctype);
    }
    call_end(&c);
    return status;
}

static void bearer(char *hdr, size_t n, const char *tok)
{
    snprintf(hdr, n, "Bearer %s", tok);
}

static void test_api(void)
{
    ts_server *s = plain_server();
    ta_auth *a = ta_auth_new(s, g_spki);
    char tok1[64], tok2[64], auth[4096], who[64], aud[128];
    const char *hdrs[] = {"Authorization", auth, "x-goog-user-project", "quota-proj", NULL};
    const char *key_hdr[] = {"x-goog-api-key", "AIzaTestKey", NULL};
    const char *bad_key_hdr[] = {"x-goog-api-key", "AIzaWrong", NULL};
    const char *both[] = {"Authorization", "Bearer ya29.t999", "x-goog-api-key", "AIzaTestKey",
                          NULL};
    struct tok t;
    struct call c;
    long long n = 0;
    char *jwt, claims[1024];
    long long now = (long long)time(NULL);

    reset_tally();
    ta_auth_expect_user(a, "id", "secret", "refresh");
    t = post_token(s, "grant_type=refresh_token&client_id=id&client_secret=secret"
                      "&refresh_token=refresh");
    snprintf(tok1, sizeof(tok1), "%s", t.access_token);

    bearer(auth, sizeof(auth), tok1);
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", hdrs, who, sizeof(who), &n), 200,
           "API with a good token: 200");
    is_str(who, tok1, "who is the token");
    is_int(n, 1, "n counts API requests");
    is_str(ta_auth_last_header(a, "X-Goog-User-Project"), "quota-proj",
           "x-goog-user-project recorded (case-insensitive lookup)");
    is_str(ta_auth_last_header(a, "x-goog-api-client"), NULL, "absent header: NULL");
    do_call(&c, s, EVHTTP_REQ_POST, "/upload/api/v1/items", hdrs, "data");
    g_api_reqs++;
    ok(c.status == 200 && c.body && strstr(c.body, "\"method\":\"POST\"") &&
           strstr(c.body, "\"n\":2") && strstr(c.body, "\"ok\":true"),
       "upload path, POST: method and n in the body (%s)", c.body);
    call_end(&c);
    is_int(api(s, EVHTTP_REQ_DELETE, "/api/v1/items2", hdrs, who, sizeof(who), NULL), 200,
           "second API path, DELETE: 200");
    do_call(&c, s, EVHTTP_REQ_HEAD, "/api/v1/items", hdrs, NULL);
    g_api_reqs++;
    ok(c.status == 200 && c.body && c.body[0] == '\0', "HEAD: 200, no body");
    call_end(&c);

    bearer(auth, sizeof(auth), "ya29.t999");
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", hdrs, NULL, 0, NULL), 401,
           "API with an unknown token: 401");
    is_str(ta_auth_last_error(a), "unknown token: ya29.t999", "unknown token: last_error");
    bearer(auth, sizeof(auth), "ya29.t01");
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", hdrs, NULL, 0, NULL), 401,
           "API with ya29.t01 (not a token we issued): 401");
    snprintf(auth, sizeof(auth), "bearer %s", tok1);
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", hdrs, NULL, 0, NULL), 200,
           "scheme is case-insensitive");
    snprintf(auth, sizeof(auth), "Basic dXNlcjpwYXNz");
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", hdrs, NULL, 0, NULL), 401,
           "Basic credentials: 401");
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", NULL, NULL, 0, NULL), 401,
           "no credentials: 401");
    is_str(ta_auth_last_error(a), "no credentials", "no credentials: last_error");
    is_str(ta_auth_last_header(a, "x-goog-user-project"), NULL,
           "headers are those of the last API request");

    ta_auth_revoke_all(a);
    bearer(auth, sizeof(auth), tok1);
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", hdrs, NULL, 0, NULL), 401,
           "API with a revoked token: 401");
    is_str(ta_auth_last_error(a), "revoked token: ya29.t1", "revoked: last_error");
    t = post_token(s, "grant_type=refresh_token&client_id=id&client_secret=secret"
                      "&refresh_token=refresh");
    snprintf(tok2, sizeof(tok2), "%s", t.access_token);
    ok(strcmp(tok2, tok1) != 0, "a new token after revoke_all (%s)", tok2);
    bearer(auth, sizeof(auth), tok2);
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", hdrs, who, sizeof(who), NULL), 200,
           "the new token works");
    is_str(ta_auth_last_error(a), "", "accepted request: last_error empty");

    /* API keys. */
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", key_hdr, NULL, 0, NULL), 401,
           "API key before accept_api_key: 401");
    is_str(ta_auth_last_error(a), "API keys not accepted", "API key refused: last_error");
    ta_auth_accept_api_key(a, "AIzaTestKey");
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", key_hdr, who, sizeof(who), NULL), 200,
           "API key in x-goog-api-key: 200");
    is_str(who, "key", "who is 'key'");
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items?alt=json&key=AIzaTestKey", NULL, who, sizeof(who),
               NULL),
           200, "API key in the query: 200");
    is_str(who, "key", "query key: who is 'key'");
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items?key=AIzaWrong", NULL, NULL, 0, NULL), 401,
           "wrong key in the query: 401");
    is_str(ta_auth_last_error(a), "api key mismatch: got AIzaWrong", "wrong key: last_error");
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items?key=AIzaTestKey", bad_key_hdr, NULL, 0, NULL), 401,
           "the header is looked at before the query");
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", both, NULL, 0, NULL), 401,
           "a bad Authorization decides even with a good key");
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items?key=%zz", NULL, NULL, 0, NULL), 401,
           "bad %%XX in the query: 401");
    is_str(ta_auth_last_error(a), "query: bad percent-encoding at offset 4",
           "bad query: offset named");
    ta_auth_accept_api_key(a, NULL);
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", key_hdr, NULL, 0, NULL), 401,
           "accept_api_key(NULL): keys refused again");

    /* Self-signed JWTs. */
    snprintf(aud, sizeof(aud), "%s/", ts_server_origin(s));
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld}", EMAIL,
             EMAIL, aud, now, now + 3600);
    jwt = sign_jwt(g_key, GOOD_HDR, claims);
    bearer(auth, sizeof(auth), jwt);
    free(jwt);
    ta_auth_expect_service_account(a, EMAIL, KID, SCOPE, NULL);
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", hdrs, NULL, 0, NULL), 401,
           "self-signed JWT before accept_self_signed: 401");
    is_str(ta_auth_last_error(a), "self-signed JWTs not accepted", "refused: last_error");
    ta_auth_accept_self_signed(a, aud);
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", hdrs, who, sizeof(who), NULL), 200,
           "self-signed JWT: 200");
    is_str(who, "jwt", "who is 'jwt'");
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items2", hdrs, who, sizeof(who), NULL), 200,
           "the same self-signed JWT again: 200");

    snprintf(claims, sizeof(claims),
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"https://storage.googleapis.com/\","
             "\"iat\":%lld,\"exp\":%lld}",
             EMAIL, EMAIL, now, now + 3600);
    jwt = sign_jwt(g_key, GOOD_HDR, claims);
    bearer(auth, sizeof(auth), jwt);
    free(jwt);
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", hdrs, NULL, 0, NULL), 401,
           "self-signed JWT, wrong aud: 401");
    is_str(ta_auth_last_error(a), "aud mismatch: got https://storage.googleapis.com/",
           "wrong aud: last_error");
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld}", EMAIL,
             EMAIL, aud, now - 3700, now - 100);
    jwt = sign_jwt(g_key, GOOD_HDR, claims);
    bearer(auth, sizeof(auth), jwt);
    free(jwt);
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", hdrs, NULL, 0, NULL), 401,
           "expired self-signed JWT: 401");
    ok(strncmp(ta_auth_last_error(a), "exp in the past", 15) == 0, "expired: last_error (%s)",
       ta_auth_last_error(a));
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"%s\",\"sub\":\"other@x\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld}", EMAIL,
             aud, now, now + 3600);
    jwt = sign_jwt(g_key, GOOD_HDR, claims);
    bearer(auth, sizeof(auth), jwt);
    free(jwt);
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", hdrs, NULL, 0, NULL), 401,
           "self-signed JWT with sub != iss: 401");
    is_str(ta_auth_last_error(a), "sub mismatch: got other@x", "sub != iss: last_error");
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld}", EMAIL,
             EMAIL, aud, now, now + 3600);
    jwt = sign_jwt(g_other_key, GOOD_HDR, claims);
    bearer(auth, sizeof(auth), jwt);
    free(jwt);
    is_int(api(s, EVHTTP_REQ_GET, "/api/v1/items", hdrs, NULL, 0, NULL), 401,
           "self-signed JWT, other key: 401");
    is_str(ta_auth_last_error(a), "bad signature", "other key: bad signature");

    check_tally(a, "api");
    teardown(s, a, "api");
}

static void test_fail_next(void)
{
    ts_server *s = plain_server();
    ta_auth *a = ta_auth_new(s, g_spki);
    const char *flavor[] = {"Metadata-Flavor", "Google", NULL};
    const char *good = "grant_type=refresh_token&client_id=i&client_secret=s&refresh_token=r";
    struct tok t;
    struct call c;

    reset_tally();
    ta_auth_expect_user(a, "i", "s", "r");
    ta_auth_fail_next(a, 2, 503, "{\"error\":\"backend_error\"}");
    t = post_token(s, good);
    ok(t.status == 503 && strcmp(t.error, "backend_error") == 0 &&
           strncmp(t.ctype, "application/json", 16) == 0,
       "fail_next 1/2: 503, body verbatim, JSON");
    t = post_token(s, "grant_type=nonsense");
    ok(t.status == 503, "fail_next 2/2: replaces even a bad request");
    t = post_token(s, good);
    ok(t.status == 200 && strcmp(t.access_token, "ya29.t1") == 0,
       "after fail_next: success, first token");

    ta_auth_fail_next(a, 1, 500, "oops");
    do_call(&c, s, EVHTTP_REQ_GET, "/computeMetadata/v1/instance/service-accounts/default/token",
            flavor, NULL);
    g_token_reqs++;
    ok(c.status == 500 && c.body && strcmp(c.body, "oops") == 0 && strstr(c.ctype, "text/plain"),
       "fail_next on the metadata endpoint: 500 text (%d %s)", c.status, c.ctype);
    call_end(&c);

    ta_auth_fail_next(a, 1, 429, "{\"error\":\"rate_limit_exceeded\"}");
    ta_auth_fail_next(a, 0, 0, NULL);
    t = post_token(s, good);
    is_int(t.status, 200, "fail_next(0) cancels a queued failure");

    ta_auth_set_expires_in(a, 120, 1);
    t = post_token(s, good);
    ok(t.expires_type == json_type_string && t.expires_in == 120,
       "set_expires_in(120, as_string): \"expires_in\":\"120\" (%s)", t.raw);
    ta_auth_set_expires_in(a, 5, 0);
    t = post_token(s, good);
    ok(t.expires_type == json_type_int && t.expires_in == 5, "set_expires_in(5): 5 (%s)", t.raw);

    check_tally(a, "fail_next");
    teardown(s, a, "fail_next");
}

static void test_delay(void)
{
    ts_server *s = plain_server();
    ta_auth *a = ta_auth_new(s, g_spki);
    const char *form_hdr[] = {"Content-Type", FORM_CT, NULL};
    const char *good = "grant_type=refresh_token&client_id=i&client_secret=s&refresh_token=r";
    char auth[128];
    const char *api_hdr[] = {"Authorization", auth, NULL};
    struct call tc, ac, tc2;
    struct tok t;
    double t0;
    reset_tally();
    ta_auth_expect_user(a, "i", "s", "r");
    t = post_token(s, good);
    bearer(auth, sizeof(auth), t.access_token);

    ta_auth_set_token_delay(a, 300);
    call_start(&tc, s, NULL, EVHTTP_REQ_POST, "/token", form_hdr, good);
    call_start(&ac, s, NULL, EVHTTP_REQ_GET, "/api/v1/items", api_hdr, NULL);
    g_api_reqs++;
    call_wait(&ac, 5000);
    ok(ac.status == 200 && !tc.done,
       "the API answers while a token response waits (loop not blocked): %.0f ms", ac.ms);
    is_int(ta_auth_tokens_issued(a), 2, "the delayed token is minted when its request is handled");
    call_wait(&tc, 5000);
    parse_tok(&t, &tc);
    ok(t.status == 200 && tc.ms >= 295 && tc.ms < 2000, "token answered after the delay: %.0f ms",
       tc.ms);
    call_end(&tc);
    call_end(&ac);

    ta_auth_fail_next(a, 1, 503, "down");
    call_start(&tc, s, NULL, EVHTTP_REQ_POST, "/token", form_hdr, good);
    call_wait(&tc, 5000);
    ok(tc.status == 503 && tc.ms >= 295, "a failure is delayed too: %.0f ms", tc.ms);
    parse_tok(&t, &tc);
    call_end(&tc);

    /* Two at once wait in parallel, not in turn (in turn would take 1000). */
    ta_auth_set_token_delay(a, 500);
    t0 = now_ms();
    call_start(&tc, s, NULL, EVHTTP_REQ_POST, "/token", form_hdr, good);
    call_start(&tc2, s, NULL, EVHTTP_REQ_POST, "/token", form_hdr, good);
    call_wait(&tc, 5000);
    call_wait(&tc2, 5000);
    ok(tc.status == 200 && tc2.status == 200 && now_ms() - t0 < 900,
       "two delayed token requests overlap: %.0f ms", now_ms() - t0);
    parse_tok(&t, &tc);
    parse_tok(&t, &tc2);
    call_end(&tc);
    call_end(&tc2);

    /* ta_auth_free answers a response still waiting. */
    ta_auth_set_token_delay(a, 10000);
    call_start(&tc, s, NULL, EVHTTP_REQ_POST, "/token", form_hdr, good);
    t0 = now_ms();
    while (ta_auth_token_requests(a) < g_token_reqs + 1 && now_ms() - t0 < 5000)
        event_base_loop(g_base, EVLOOP_ONCE);
    g_token_reqs++;
    g_token_ok++;
    check_tally(a, "delay");
    ta_auth_free(a);
    call_wait(&tc, 2000);
    ok(tc.status == 200 && tc.ms < 5000, "ta_auth_free sends a waiting response at once (%.0f ms)",
       tc.ms);
    call_end(&tc);
    call_start(&ac, s, NULL, EVHTTP_REQ_GET, "/api/v1/items", api_hdr, NULL);
    call_wait(&ac, 5000);
    ok(ac.status == 503 && ac.body && strstr(ac.body, "auth server freed"),
       "after ta_auth_free the paths answer 503 (%d)", ac.status);
    call_end(&ac);
    teardown(s, NULL, "delay");
}

struct hammer {
    ta_auth *a;
    int stop; /* __atomic */
    unsigned loops;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;

    while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
        ta_auth_set_expires_in(h->a, 3599, 0);
        ta_auth_accept_api_key(h->a, "k");
        ta_auth_expect_user(h->a, "i", "s", "r");
        (void)ta_auth_tokens_issued(h->a);
        (void)ta_auth_token_requests(h->a);
        (void)ta_auth_last_error(h->a);
        (void)ta_auth_last_header(h->a, "Host");
        h->loops++;
        /* Valgrind runs one thread at a time: a tight loop would starve
         * the loop thread. */
        {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static void test_threads(void)
{
    ts_server *s = plain_server();
    ta_auth *a = ta_auth_new(s, g_spki);
    const char *key[] = {"x-goog-api-key", "k", NULL};
    struct hammer h;
    pthread_t th;
    int i, good = 0;

    reset_tally();
    h.a = a;
    h.stop = 0;
    h.loops = 0;
    ta_auth_expect_user(a, "i", "s", "r");
    ta_auth_accept_api_key(a, "k");
    if (pthread_create(&th, NULL, hammer_main, &h) != 0)
        abort();
    for (i = 0; i < 20; i++) {
        struct tok t =
            post_token(s, "grant_type=refresh_token&client_id=i&client_secret=s&refresh_token=r");
        good += t.status == 200;
        good += api(s, EVHTTP_REQ_GET, "/api/v1/items", key, NULL, 0, NULL) == 200;
    }
    __atomic_store_n(&h.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    is_int(good, 40, "requests answered while another thread sets and reads (%u loops)", h.loops);
    check_tally(a, "threads");
    teardown(s, a, "threads");
}

static void test_https(void)
{
    ts_server *s = ts_server_new(g_base, NULL);
    ta_auth *a;
    SSL_CTX *ctx;
    const char *form_hdr[] = {"Content-Type", FORM_CT, NULL};
    char *jwt, *form, *aud;
    struct call c;
    struct tok t;

    if (!s) {
        ok(0, "https server made");
        return;
    }
    a = ta_auth_new(s, g_spki);
    ctx = client_ctx(ts_server_ca_pem(s));
    reset_tally();
    ta_auth_expect_service_account(a, EMAIL, KID, SCOPE, NULL);
    aud = token_aud(s);
    ok(strncmp(aud, "https://127.0.0.1:", 18) == 0, "https: audience %s", aud);
    jwt = grant_jwt(s, NULL, NULL, NULL, NULL, 0, 3600, NULL);
    form = malloc(strlen(jwt) + 200);
    if (!form)
        abort();
    sprintf(form, "%s%s", JWT_GRANT_FORM, jwt);
    call_start(&c, s, ctx, EVHTTP_REQ_POST, "/token", form_hdr, form);
    call_wait(&c, 5000);
    parse_tok(&t, &c);
    call_end(&c);
    ok(t.status == 200 && strcmp(t.access_token, "ya29.t1") == 0, "https: good JWT -> token (%s)",
       t.raw);
    free(jwt);
    free(form);
    jwt = grant_jwt(s, NULL, NULL, "http://127.0.0.1/token", NULL, 0, 3600, NULL);
    form = malloc(strlen(jwt) + 200);
    if (!form)
        abort();
    sprintf(form, "%s%s", JWT_GRANT_FORM, jwt);
    call_start(&c, s, ctx, EVHTTP_REQ_POST, "/token", form_hdr, form);
    call_wait(&c, 5000);
    parse_tok(&t, &c);
    call_end(&c);
    ok(t.status == 400 && strstr(t.desc, "aud mismatch: got http://127.0.0.1/token"),
       "https: an http:// audience is refused (%s)", t.desc);
    free(jwt);
    free(form);
    free(aud);
    check_tally(a, "https");
    SSL_CTX_free(ctx);
    teardown(s, a, "https");
}

/* ------------------------------------------------------------ main */

static EVP_PKEY *load_private(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

    if (f)
        fclose(f);
    return k;
}

int main(void)
{
    double t0 = now_ms();
    char *priv = tap_shared_path("jose/derived/rfc7515-A.2-key.pkcs8.pem");
    char *spki = priv ? tap_shared_path("jose/derived/rfc7515-A.2-key.spki.pem") : NULL;
    char *other = spki ? tap_shared_path("jose/derived/rfc7520-bilbo-key.pkcs8.pem") : NULL;
    char *vec = other ? tap_shared_path("jose/rfc7515-A.2-RS256.json") : NULL;

    signal(SIGPIPE, SIG_IGN);
    tu_watchdog(120);
    if (!vec) {
        free(priv);
        free(spki);
        free(other);
        return tap_done();
    }
    if (evthread_use_pthreads() != 0 || !(g_base = event_base_new()))
        abort();
    g_key = load_private(priv);
    g_other_key = load_private(other);
    g_spki = read_file(spki);
    ok(g_key && g_other_key && g_spki, "RFC 7515 A.2 and RFC 7520 keys loaded");
    {
        json_object *j = json_object_from_file(vec), *v;

        if (j && json_object_object_get_ex(j, "compact", &v))
            g_rfc_compact = xstrdup(json_object_get_string(v));
        json_object_put(j);
    }
    g_priv_path = priv;
    if (g_key && g_other_key && g_spki) {
        test_new();
        test_jwt_grant();
        test_form();
        test_refresh();
        test_metadata();
        test_api();
        test_fail_next();
        test_delay();
        test_threads();
        test_https();
    }

    EVP_PKEY_free(g_key);
    EVP_PKEY_free(g_other_key);
    free(g_spki);
    free(g_rfc_compact);
    free(priv);
    free(spki);
    free(other);
    free(vec);
    event_base_free(g_base);
    diag("total %.0f ms", now_ms() - t0);
    return tap_done();
}
