/*
 * Token caches: one per (client, credentials, audience), on the client's
 * loop thread (see auth.h).
 *
 * Single flight: a cache has at most one fetch under way. Requests that
 * find no valid token join its waiters; whoever arrives while a fetch is
 * under way joins the same list. When the fetch ends every waiter is
 * started (or failed) at once.
 *
 * Refresh ahead: a token is used until 10 s before it expires (clock skew),
 * and a background fetch starts 3 min 45 s before that (google-auth's
 * threshold; half the lifetime for short-lived tokens), triggered by the
 * first request that notices. Requests keep using the old token meanwhile,
 * so nobody waits unless the token really is gone.
 *
 * Fetches never start from inside the caller's gapi call: a one-shot event
 * (kick) runs them on the next loop turn, which also lets every request of
 * the current turn join the flight.
 *
 * Secrets: the Authorization line, token request bodies and token
 * responses are cleansed before their memory is released.
 */
#define _GNU_SOURCE 1 /* memmem */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "common/alloc.h"
#include "auth/auth.h"
#include "auth/creds.h"
#include "auth/jwt.h"
#include "auth/keyfile.h"
#include "client/client.h"
#include "request/request.h"

#define SKEW_MS            10000u
#define REFRESH_AHEAD_MS   225000u
#define DEFAULT_LIFETIME_S 3600
#define METADATA_PROBE_MS  3000u

long long gapi__auth_clock_skew_ms;

struct gapi__token_cache {
    gapi__token_cache *next;
    gapi_client *c;
    gapi_credentials *cr; /* a reference */
    char *aud;            /* self-signed JWT audience, or NULL */
    char *line;           /* "Authorization: Bearer ...\r\n", or NULL */
    size_t line_len;
    uint64_t expiry_ms;  /* last moment of use; 0: no usable token */
    uint64_t refresh_ms; /* a background refresh begins here */
    unsigned gen;        /* bumped with each new token */
    int fetching;
    struct gapi__req_list waiters;
    struct event *kick;
    struct event *fetch_timer;     /* bounds a caller's token source */
    gapi_request *fetch_req;       /* the token request in flight */
    struct gapi_token_request *tr; /* a caller's token source in flight */
};

struct gapi_token_request {
    gapi__token_cache *tc; /* NULL once the client is gone */
};

uint64_t gapi__auth_now_ms(void)
{
    return gapi__now_ms() + (uint64_t)gapi__auth_clock_skew_ms;
}

static long long wall_now(void)
{
    return (long long)time(NULL) + gapi__auth_clock_skew_ms / 1000;
}

static void drop_line(gapi__token_cache *tc)
{
    if (tc->line) {
        OPENSSL_cleanse(tc->line, tc->line_len);
        gapi__free(tc->line);
        tc->line = NULL;
        tc->line_len = 0;
    }
}

/* ------------------------------------------------------------ outcomes */

static void wake(gapi__token_cache *tc, int err, const char *msg)
{
    struct gapi__req_list batch;
    gapi_request *r;

    TAILQ_INIT(&batch);
    TAILQ_CONCAT(&batch, &tc->waiters, wait_link);
    while ((r = TAILQ_FIRST(&batch)) != NULL) {
        TAILQ_REMOVE(&batch, r, wait_link);
        gapi__request_token_ready(r, err, tc->line, tc->line_len, tc->gen, msg);
    }
}

static void token_failed(gapi__token_cache *tc, int err, const char *msg)
{
    tc->fetching = 0;
    wake(tc, err, msg);
}

static void token_ok(gapi__token_cache *tc, const char *token, long long lifetime_s)
{
    static const char pre[] = "Authorization: Bearer ";
    size_t n = strlen(token);
    uint64_t now = gapi__auth_now_ms(), life, ahead;
    char *line;

    if (!(line = gapi__malloc(sizeof(pre) - 1 + n + 3))) {
        token_failed(tc, GAPI_ENOMEM, "out of memory storing the access token");
        return;
    }
    drop_line(tc);
    memcpy(line, pre, sizeof(pre) - 1);
    memcpy(line + sizeof(pre) - 1, token, n);
    memcpy(line + sizeof(pre) - 1 + n, "\r\n", 3);
    tc->line = line;
    tc->line_len = sizeof(pre) - 1 + n + 2;
    life = (uint64_t)(lifetime_s > 0 ? lifetime_s : DEFAULT_LIFETIME_S) * 1000u;
    tc->expiry_ms = now + (life > 2 * SKEW_MS ? life - SKEW_MS : life / 2);
    ahead = life > 2 * REFRESH_AHEAD_MS ? REFRESH_AHEAD_MS : life / 2;
    tc->refresh_ms = now + life - ahead;
    tc->gen++;
    tc->fetching = 0;
    wake(tc, GAPI_OK, NULL);
}

/* ------------------------------------------------------------ token requests */

/* Token endpoints answer some failures worth a retry with 400 and an
 * OAuth error code; gapi__token_parse knows which. */
static int token_retryable(const gapi_request *r, int err, void *ext)
{
    gapi__token_cache *tc = ext;
    gapi__token_result t;
    const gapi_response *resp = &r->x.resp;
    char msg[64];
    int rc, retry;

    if (err != GAPI_OK) {
        /* ADC's guess that a metadata server exists: nobody there is an
         * answer, not a fault to wait out. */
        if (tc->cr->adc_tried &&
            (err == GAPI_EDNS || err == GAPI_ECONNECT || err == GAPI_ECONNECTTIMEOUT))
            return 0;
        return -1;
    }
    memset(&t, 0, sizeof(t));
    rc = gapi__token_parse(&t, "token", resp->status, resp->body.data ? resp->body.data : "",
                           resp->body.len, msg, sizeof(msg));
    retry = t.retryable;
    gapi__token_result_clear(&t);
    return rc == GAPI_OK ? 0 : retry;
}

static void no_ext(void *ext)
{
    (void)ext;
}

static const gapi__req_ext_ops token_ops = {no_ext, NULL, token_retryable};

/* An endpoint may quote what it was sent ("client_secret mismatch: got
 * ..."): no secret of ours may reach a message. Overwritten in place, so
 * the message never grows. */
static void redact(char *msg, const char *secret, size_t n)
{
    char *p;

    if (!secret || n < 4)
        return;
    while ((p = memmem(msg, strlen(msg), secret, n)) != NULL)
        memset(p, '*', n);
}

static void redact_all(char *msg, const gapi__token_cache *tc, const gapi_request *req)
{
    const gapi__keyfile *kf = &tc->cr->kf;
    const char *a = req->body ? memmem(req->body, req->body_len, "assertion=", 10) : NULL;

    if (kf->client_secret)
        redact(msg, kf->client_secret, strlen(kf->client_secret));
    if (kf->refresh_token)
        redact(msg, kf->refresh_token, strlen(kf->refresh_token));
    if (a) { /* base64url: the form encoding left it as it was */
        const char *end = req->body + req->body_len, *amp;
        a += 10;
        amp = memchr(a, '&', (size_t)(end - a));
        redact(msg, a, (size_t)((amp ? amp : end) - a));
    }
}

static const char *who(const gapi__token_cache *tc)
{
    return tc->cr->kind == GAPI__CR_METADATA ? "metadata server" : "token endpoint";
}

static void token_req_cb(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    gapi__token_cache *tc = arg;
    gapi_credentials *cr = tc->cr;
    gapi__token_result t;
    char msg[512];
    int rc;

    tc->fetch_req = NULL;
    memset(&t, 0, sizeof(t));
    if (err != GAPI_OK) {
        /* ADC found no file and the metadata server does not answer: that
         * is "no credentials", not a failing token source. */
        int absent = cr->adc_tried && (err == GAPI_EDNS || err == GAPI_ECONNECT ||
                                       err == GAPI_ECONNECTTIMEOUT || err == GAPI_ECONNRESET);
        if (absent)
            snprintf(msg, sizeof(msg),
                     "no credentials found: tried %s; metadata server %s: %s (set "
                     "GOOGLE_APPLICATION_CREDENTIALS to a key file)",
                     cr->adc_tried, req->url.authority, gapi_request_errmsg(req));
        else
            snprintf(msg, sizeof(msg), "%s %s: %s", who(tc), req->url.authority,
                     gapi_request_errmsg(req));
        redact_all(msg, tc, req);
        token_failed(tc, absent ? GAPI_ECREDENTIALS : GAPI_EAUTH, msg);
        return;
    }
    rc = gapi__token_parse(&t, who(tc), resp->status, resp->body.data ? resp->body.data : "",
                           resp->body.len, msg, sizeof(msg));
    if (resp->body.data) /* the body holds the token */
        OPENSSL_cleanse(resp->body.data, resp->body.len);
    if (rc == GAPI_OK) {
        token_ok(tc, t.access_token, t.expires_in);
    } else {
        redact_all(msg, tc, req);
        token_failed(tc, rc, msg);
    }
    gapi__token_result_clear(&t);
}

/* Send a token request (POST form or metadata GET) from the library
 * itself: no credentials, no max_pending slot (the requests waiting for
 * the token may fill every slot), retried by the credentials' policy. */
static int send_token_request(gapi__token_cache *tc, const char *method, const char *url,
                              const gapi__buf *form)
{
    gapi_request *r;
    int rc;

    if ((rc = gapi_request_new(&r, tc->c, method, url)) != GAPI_OK)
        return rc;
    r->internal = 1;
    r->secret = 1;
    r->raw_body = 1;
    r->idempotent = 1;
    r->ext_ops = &token_ops;
    r->ext = tc;
    r->retry = tc->cr->token_retry;
    r->has_retry = 1;
    if (tc->cr->kind == GAPI__CR_METADATA) {
        rc = gapi_request_add_header(r, "Metadata-Flavor", "Google");
        if (rc == GAPI_OK && tc->cr->adc_tried)
            r->connect_ms = METADATA_PROBE_MS;
    } else {
        rc = gapi_request_set_body(r, form->data, form->len, "application/x-www-form-urlencoded");
    }
    if (rc == GAPI_OK)
        rc = gapi__request_prepare(r, token_req_cb, tc);
    if (rc == GAPI_OK)
        rc = gapi__request_start(r);
    if (rc != GAPI_OK) {
        gapi__request_destroy(r);
        return rc;
    }
    tc->fetch_req = r;
    return GAPI_OK;
}

/* The form holds secrets: reserve it whole before writing, so that no
 * realloc leaves a partial copy behind in freed memory. */
static int reserve_form(gapi__buf *b, const char *const *v, size_t n)
{
    size_t need = 64, i;

    for (i = 0; i < n; i++)
        need += 3 * strlen(v[i]) + 32;
    return gapi__buf_reserve(b, need);
}

static int put_param(gapi__buf *b, const char *name, const char *value)
{
    int rc = 0;

    if (b->len)
        rc |= gapi__buf_append(b, "&", 1);
    rc |= gapi__buf_puts(b, name);
    rc |= gapi__buf_append(b, "=", 1);
    return rc ? GAPI_ENOMEM : gapi__form_encode(b, value);
}

static int sign(gapi__token_cache *tc, char **jwt, int self)
{
    const gapi__keyfile *kf = &tc->cr->kf;
    gapi__jwt_claims cl;

    memset(&cl, 0, sizeof(cl));
    cl.iss = kf->client_email;
    cl.iat = wall_now();
    cl.exp = cl.iat + DEFAULT_LIFETIME_S;
    if (self) {
        cl.sub = kf->client_email;
        cl.aud = tc->aud;
    } else {
        cl.sub = tc->cr->subject;
        cl.aud = tc->cr->token_uri;
        cl.scope = tc->cr->scopes;
    }
    return gapi__jwt_sign(jwt, kf->key, kf->private_key_id, &cl);
}

static void fetch_timeout_cb(evutil_socket_t fd, short what, void *arg);

static int arm_fetch_timeout(gapi__token_cache *tc)
{
    unsigned ms = tc->c->opts.stall_timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    if (!tc->fetch_timer && !(tc->fetch_timer = evtimer_new(tc->c->base, fetch_timeout_cb, tc)))
        return GAPI_ENOMEM;
    return evtimer_add(tc->fetch_timer, &tv) == 0 ? GAPI_OK : GAPI_ENOMEM;
}

static int fetch(gapi__token_cache *tc)
{
    gapi_credentials *cr = tc->cr;
    gapi__buf form = GAPI__BUF_INIT;
    char *jwt = NULL;
    int rc;

    tc->c->token_fetches++;
    switch (cr->kind) {
    case GAPI__CR_SERVICE_ACCOUNT:
        if ((rc = sign(tc, &jwt, cr->self_signed)) != GAPI_OK)
            break;
        if (cr->self_signed) {
            token_ok(tc, jwt, DEFAULT_LIFETIME_S);
            break;
        }
        rc = reserve_form(&form, (const char *const[]){jwt}, 1);
        if (rc == GAPI_OK)
            rc = put_param(&form, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
        if (rc == GAPI_OK)
            rc = put_param(&form, "assertion", jwt);
        if (rc == GAPI_OK)
            rc = send_token_request(tc, "POST", cr->token_uri, &form);
        break;
    case GAPI__CR_AUTHORIZED_USER: {
        const char *v[] = {cr->kf.client_id, cr->kf.client_secret, cr->kf.refresh_token};
        rc = reserve_form(&form, v, 3);
        if (rc == GAPI_OK)
            rc = put_param(&form, "grant_type", "refresh_token");
        if (rc == GAPI_OK)
            rc = put_param(&form, "client_id", cr->kf.client_id);
        if (rc == GAPI_OK)
            rc = put_param(&form, "client_secret", cr->kf.client_secret);
        if (rc == GAPI_OK)
            rc = put_param(&form, "refresh_token", cr->kf.refresh_token);
        if (rc == GAPI_OK)
            rc = send_token_request(tc, "POST", cr->token_uri, &form);
        break;
    }
    case GAPI__CR_METADATA:
        rc = send_token_request(tc, "GET", cr->metadata_url, NULL);
        break;
    case GAPI__CR_TOKEN_SOURCE:
        if (!(tc->tr = gapi__calloc(1, sizeof(*tc->tr)))) {
            rc = GAPI_ENOMEM;
            break;
        }
        tc->tr->tc = tc;
        if (arm_fetch_timeout(tc) != GAPI_OK) {
            gapi__free(tc->tr);
            tc->tr = NULL;
            rc = GAPI_ENOMEM;
            break;
        }
        cr->fetch(tc->c, tc->tr, cr->fetch_arg); /* may complete at once */
        rc = GAPI_OK;
        break;
    default:
        rc = GAPI_EINVAL;
    }
    if (jwt) {
        OPENSSL_cleanse(jwt, strlen(jwt));
        gapi__free(jwt);
    }
    if (form.data)
        OPENSSL_cleanse(form.data, form.cap);
    gapi__buf_free(&form);
    return rc;
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    gapi__token_cache *tc = arg;
    int rc;

    (void)fd;
    (void)what;
    if ((rc = fetch(tc)) != GAPI_OK) {
        char msg[160];
        snprintf(msg, sizeof(msg), "could not %s the token request: %s",
                 rc == GAPI_ESHUTDOWN ? "send" : "sign or send", gapi_strerror(rc));
        token_failed(tc, rc == GAPI_ENOMEM || rc == GAPI_ESHUTDOWN ? rc : GAPI_EAUTH, msg);
    }
}

static int start_fetch(gapi__token_cache *tc)
{
    if (!tc->kick && !(tc->kick = event_new(tc->c->base, -1, 0, kick_cb, tc)))
        return GAPI_ENOMEM;
    tc->fetching = 1;
    event_active(tc->kick, EV_TIMEOUT, 1);
    return GAPI_OK;
}

void gapi_token_request_done(gapi_token_request *tr, int err, const char *token,
                             unsigned expires_in_s, const char *errmsg)
{
    gapi__token_cache *tc;

    if (!tr)
        return;
    tc = tr->tc;
    gapi__free(tr);
    if (!tc)
        return; /* the client went away meanwhile */
    tc->tr = NULL;
    if (tc->fetch_timer)
        evtimer_del(tc->fetch_timer);
    if (err == GAPI_OK && !gapi__header_value_ok(token, 0)) /* visible ASCII */
        token_failed(tc, GAPI_EAUTH,
                     token && *token ? "the token source gave a token with characters not "
                                       "allowed in a header"
                                     : "the token source gave no token");
    else if (err == GAPI_OK)
        token_ok(tc, token, expires_in_s);
    else
        token_failed(tc, err, errmsg ? errmsg : "the token source failed");
}

/* A caller's token source that never answers must not hold requests
 * forever: after the client's stall timeout the waiters fail, and a late
 * answer only frees its handle. */
static void fetch_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    gapi__token_cache *tc = arg;
    char msg[96];

    (void)fd;
    (void)what;
    if (!tc->tr)
        return;
    tc->tr->tc = NULL;
    tc->tr = NULL;
    snprintf(msg, sizeof(msg), "the token source did not answer within %u ms",
             tc->c->opts.stall_timeout_ms);
    token_failed(tc, GAPI_EAUTH, msg);
}

/* ------------------------------------------------------------ per request */

gapi__token_cache *gapi__auth_cache_for(gapi_client *c, gapi_credentials *cr, const gapi__url *url)
{
    gapi__token_cache *tc;
    char aud[300];
    int self = cr->kind == GAPI__CR_SERVICE_ACCOUNT && cr->self_signed;

    if (self)
        snprintf(aud, sizeof(aud), "https://%s/", url->authority);
    for (tc = c->caches; tc; tc = tc->next)
        if (tc->cr == cr && (!self || !strcmp(tc->aud, aud)))
            return tc;
    if (!(tc = gapi__calloc(1, sizeof(*tc))))
        return NULL;
    if (self && !(tc->aud = gapi__strdup(aud))) {
        gapi__free(tc);
        return NULL;
    }
    tc->c = c;
    tc->cr = gapi_credentials_ref(cr);
    TAILQ_INIT(&tc->waiters);
    tc->next = c->caches;
    c->caches = tc;
    return tc;
}

int gapi__auth_token(gapi__token_cache *tc, gapi_request *r, const char **line, size_t *len,
                     unsigned *gen)
{
    uint64_t now = gapi__auth_now_ms();

    if (tc->line && now < tc->expiry_ms) {
        if (now >= tc->refresh_ms && !tc->fetching)
            (void)start_fetch(tc); /* best effort: the token is still good */
        *line = tc->line;
        *len = tc->line_len;
        *gen = tc->gen;
        return GAPI_OK;
    }
    if (!tc->fetching && start_fetch(tc) != GAPI_OK)
        return GAPI_ENOMEM;
    TAILQ_INSERT_TAIL(&tc->waiters, r, wait_link);
    return GAPI__AUTH_WAIT;
}

void gapi__auth_unwait(gapi_request *r)
{
    TAILQ_REMOVE(&r->tc->waiters, r, wait_link);
}

void gapi__auth_invalidate(gapi__token_cache *tc, unsigned gen)
{
    if (gen == tc->gen)
        tc->expiry_ms = 0;
}

void gapi__auth_client_free(gapi_client *c)
{
    gapi__token_cache *tc, *next;

    for (tc = c->caches; tc; tc = next) {
        next = tc->next;
        if (tc->tr)
            tc->tr->tc = NULL;
        if (tc->kick)
            event_free(tc->kick);
        if (tc->fetch_timer)
            event_free(tc->fetch_timer);
        drop_line(tc);
        gapi_credentials_unref(tc->cr);
        gapi__free(tc->aud);
        gapi__free(tc);
    }
    c->caches = NULL;
}
