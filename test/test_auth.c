/*
 * Credentials end to end (issue 5), TAP output.
 *
 * The client under test talks HTTPS to the in-process test server, on whose
 * routes test/auth_server.c plays Google: a token endpoint that verifies the
 * RS256 JWTs it receives with the public key of ../shared/jose's RFC 7515
 * A.2 key, the refresh-token grant, a metadata server (on a plain-HTTP
 * server, as on a VM) and an API that demands a credential. Neither server
 * uses gapi code, so what they count and record (token requests, the claims
 * of the last JWT, the headers of the last API request) is an independent
 * witness of what the library sent.
 *
 * Covered: API keys (header and query), fixed tokens, service accounts
 * (token grant, delegation, self-signed JWTs, other universes), authorized
 * users, the metadata server, the ADC search (temporary HOME and
 * environment), the quota project order, malformed key files, a caller's
 * token source; the cache: reuse, single flight under 1000 concurrent
 * requests, expiry and refresh ahead (gapi__auth_clock_skew_ms moves the
 * caches' clock), the 401 refresh-and-retry-once, token endpoint outages;
 * exactly-once completion when a request waiting for a token is cancelled,
 * runs out of time or its client is freed; allocation failure at every step
 * of a service-account request. Every error and attempt message seen on the
 * way is checked for secrets. Every test ends with no event left on its
 * base.
 */
#include <errno.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "gapi.h"
#include "auth/auth.h" /* gapi__auth_clock_skew_ms */
#include "auth_server.h"
#include "server.h"
#include "tap.h"
#include "util.h"

#define SA_EMAIL  "gapi-it@test-project.iam.gserviceaccount.com"
#define SA_KID    "a2-key-id"
#define CLOUD     "https://www.googleapis.com/auth/cloud-platform"
#define U_ID      "1234-test.apps.googleusercontent.com"
#define U_SECRET  "client-secret-S3cr3tValue"
#define U_REFRESH "1//refresh-token-R3fr3shValue"
#define API_KEY   "AIzaSyTestKey-0123456789"
#define BOGUS_TOK "static-bogus-token-B0gus"
#define MD_PATH   "/computeMetadata/v1/instance/service-accounts/default/token"

static char *g_priv_pem; /* RFC 7515 A.2 private key, PKCS#8 PEM */
static char *g_pub_pem;  /* its public key, SPKI PEM */
static char g_tmp[64];   /* scratch directory, removed at the end */

/* Fast token retries: 4 attempts, 20 ms, x2, no jitter. */
static const gapi_retry_policy g_fast = {GAPI_RETRY_POLICY_VERSION, 4, 20, 100, 2.0, 0,
                                         GAPI_RETRY_NO_JITTER};

static double mono_ms(void)
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

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    if (!fp)
        return NULL;
    if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return NULL;
    }
    if (!(buf = malloc((size_t)n + 1)))
        abort();
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    } else {
        buf[n] = '\0';
    }
    fclose(fp);
    return buf;
}

static int write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    int rc;

    if (!fp)
        return -1;
    rc = fputs(text, fp) < 0 ? -1 : 0;
    return fclose(fp) == 0 ? rc : -1;
}

/* Remove dir and everything under it (no symlinks are made here). */
static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    struct stat st;

    while (d && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* ------------------------------------------------------------ secrets */

/* Every message the library hands out in this program (errors, attempt
 * reasons, URLs of attempts) passes through collect(): none may hold an
 * access token (ya29.), a JWT (eyJ...: base64url of '{"'), the refresh
 * token, the client secret, the private key, a fixed token or the API key. */
static const char *const g_secrets[] = {"ya29.",      "eyJ",  U_SECRET,  U_REFRESH,
                                        "-----BEGIN", "MIIE", BOGUS_TOK, API_KEY};
static unsigned g_collected, g_leaks;

static void collect(const char *s)
{
    size_t i;

    if (!s || !*s)
        return;
    g_collected++;
    for (i = 0; i < sizeof(g_secrets) / sizeof(g_secrets[0]); i++) {
        if (strstr(s, g_secrets[i])) {
            g_leaks++;
            diag("secret \"%s\" in a message: %s", g_secrets[i], s);
        }
    }
}

/* ------------------------------------------------------------ attempts */

typedef struct seen_attempt {
    unsigned attempt;
    int err, status, retrying, api;
    char reason[160];
} seen_attempt;

#define MAX_SEEN 64
static seen_attempt g_att[MAX_SEEN];
static int g_natt;

static void on_attempt(const gapi_request *req, const gapi_attempt_info *info, void *arg)
{
    const char *url = gapi_request_url(req);
    seen_attempt *a;

    (void)arg;
    collect(info->reason);
    collect(gapi_request_errmsg(req));
    collect(url);
    if (g_natt < MAX_SEEN) {
        a = &g_att[g_natt];
        a->attempt = info->attempt;
        a->err = info->err;
        a->status = info->status;
        a->retrying = info->retrying;
        a->api = url && strstr(url, "/api/v1/") != NULL;
        snprintf(a->reason, sizeof(a->reason), "%s", info->reason ? info->reason : "(null)");
    }
    g_natt++;
}

/* ------------------------------------------------------------ fixture */

typedef struct fx {
    struct event_base *base;
    ts_server *srv;
    ta_auth *auth;
    gapi_client *cli;
    int done;
    char api[256], api2[256], token_uri[256], aud[256];
} fx;

/* A server (HTTPS unless so says otherwise) with the auth routes, expecting
 * this program's service account and user. */
static int fx_server(fx *f, const ts_options *so)
{
    const char *origin;

    memset(f, 0, sizeof(*f));
    gapi__auth_clock_skew_ms = 0;
    if (!(f->base = event_base_new()))
        abort();
    if (!(f->srv = ts_server_new(f->base, so)))
        return -1;
    if (!(f->auth = ta_auth_new(f->srv, g_pub_pem)))
        return -1;
    origin = ts_server_origin(f->srv);
    snprintf(f->api, sizeof(f->api), "%s/api/v1/items", origin);
    snprintf(f->api2, sizeof(f->api2), "%s/api/v1/items2", origin);
    snprintf(f->token_uri, sizeof(f->token_uri), "%s/token", origin);
    snprintf(f->aud, sizeof(f->aud), "%s/", origin);
    ta_auth_expect_service_account(f->auth, SA_EMAIL, SA_KID, CLOUD, NULL);
    ta_auth_expect_user(f->auth, U_ID, U_SECRET, U_REFRESH);
    return 0;
}

static int fx_client(fx *f, gapi_client_options *co)
{
    gapi_client_options def = GAPI_CLIENT_OPTIONS_INIT;
    char err[256] = "";

    if (!co)
        co = &def;
    co->ca_pem = ts_server_ca_pem(f->srv);
    co->on_attempt = on_attempt;
    co->on_attempt_arg = f;
    if (gapi_client_new(&f->cli, f->base, co, err, sizeof(err)) != GAPI_OK) {
        diag("gapi_client_new: %s", err);
        return -1;
    }
    return 0;
}

static int fx_init(fx *f, const char *name)
{
    if (fx_server(f, NULL) == 0 && fx_client(f, NULL) == 0)
        return 0;
    ok(0, "%s: setup", name);
    return -1;
}

static void fx_free(fx *f, const char *name)
{
    gapi_client_free(f->cli);
    ta_auth_free(f->auth);
    ts_server_free(f->srv);
    is_int(tu_events_left(f->base), 0, "%s: no events left on the base", name);
    event_base_free(f->base);
    gapi__auth_clock_skew_ms = 0;
}

static unsigned long long fetches(const fx *f)
{
    gapi_client_stats st;

    gapi_client_get_stats(f->cli, &st);
    return (unsigned long long)st.token_fetches;
}

/* Run f's loop until the server has seen n token requests. */
static int run_until_tokens(fx *f, unsigned n, unsigned timeout_ms)
{
    double t0 = mono_ms();

    while (ta_auth_token_requests(f->auth) < n) {
        if (mono_ms() - t0 > timeout_ms)
            return -1;
        tu_run_for(f->base, 2);
    }
    return 0;
}

/* ------------------------------------------------------------ requests */

typedef struct res {
    fx *f;
    int calls, err, status;
    unsigned attempts;
    double t_sent, t_done;
    char errmsg[512], who[64];
} res;

static void on_res(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    res *r = arg;
    struct json_object *j, *w;

    r->calls++;
    r->err = err;
    r->status = resp ? gapi_response_status(resp) : 0;
    r->attempts = gapi_request_attempts(req);
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", gapi_request_errmsg(req));
    collect(r->errmsg);
    j = resp ? gapi_response_json(resp) : NULL;
    if (j && json_object_object_get_ex(j, "who", &w))
        snprintf(r->who, sizeof(r->who), "%s", json_object_get_string(w));
    r->t_done = mono_ms();
    r->f->done++;
}

/* Send GET url with cr (set: gapi_request_set_credentials is called, with
 * cr even when NULL). *out, when given, gets the sent request. */
static int send_req(fx *f, gapi_credentials *cr, int set, const char *url, res *r,
                    gapi_request **out)
{
    gapi_request *req = NULL;
    int rc;

    memset(r, 0, sizeof(*r));
    r->f = f;
    if ((rc = gapi_request_new(&req, f->cli, "GET", url)) != GAPI_OK)
        return rc;
    if (set && (rc = gapi_request_set_credentials(req, cr)) != GAPI_OK) {
        gapi_request_free(req);
        return rc;
    }
    r->t_sent = mono_ms();
    if ((rc = gapi_request_send(req, on_res, r)) != GAPI_OK) {
        gapi_request_free(req);
        return rc;
    }
    if (out)
        *out = req;
    return GAPI_OK;
}

/* One request with cr, to completion. */
static void get1(fx *f, gapi_credentials *cr, const char *url, res *r)
{
    int target = f->done + 1;
    int rc = send_req(f, cr, 1, url, r, NULL);

    if (rc != GAPI_OK) {
        diag("send: %s", gapi_error_name(rc));
        r->err = rc;
        return;
    }
    if (tu_run_until(f->base, &f->done, target, 20000) != 0)
        diag("request to %s did not complete", url);
}

/* Send n at once with cr, run until all completed. Returns how many got a
 * 200 from the API as `who`, each with exactly one callback. */
static int get_n(fx *f, gapi_credentials *cr, const char *url, res *rs, int n, const char *who,
                 unsigned timeout_ms)
{
    int i, target = f->done + n, good = 0;

    for (i = 0; i < n; i++)
        if (send_req(f, cr, 1, url, &rs[i], NULL) != GAPI_OK)
            diag("send %d failed", i);
    tu_run_until(f->base, &f->done, target, timeout_ms);
    for (i = 0; i < n; i++)
        good += rs[i].calls == 1 && rs[i].err == 0 && rs[i].status == 200 &&
                (!who || !strcmp(rs[i].who, who));
    return good;
}

/* ------------------------------------------------------------ key files */

static json_object *sa_obj(const char *token_uri)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "type", json_object_new_string("service_account"));
    json_object_object_add(o, "project_id", json_object_new_string("test-project"));
    json_object_object_add(o, "private_key_id", json_object_new_string(SA_KID));
    json_object_object_add(o, "private_key", json_object_new_string(g_priv_pem));
    json_object_object_add(o, "client_email", json_object_new_string(SA_EMAIL));
    json_object_object_add(o, "client_id", json_object_new_string("1122334455"));
    if (token_uri)
        json_object_object_add(o, "token_uri", json_object_new_string(token_uri));
    return o;
}

static json_object *user_obj(const char *token_uri, const char *secret, const char *quota)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "type", json_object_new_string("authorized_user"));
    json_object_object_add(o, "client_id", json_object_new_string(U_ID));
    json_object_object_add(o, "client_secret", json_object_new_string(secret));
    json_object_object_add(o, "refresh_token", json_object_new_string(U_REFRESH));
    if (token_uri)
        json_object_object_add(o, "token_uri", json_object_new_string(token_uri));
    if (quota)
        json_object_object_add(o, "quota_project_id", json_object_new_string(quota));
    return o;
}

/* The JSON text of o (o is released). */
static char *text_of(json_object *o)
{
    char *t = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return t;
}

static int creds_json(gapi_credentials **out, json_object *o, const gapi_credentials_options *opts,
                      char *err, size_t errlen)
{
    char *t = text_of(o);
    int rc = gapi_credentials_from_json(out, t, strlen(t), opts, err, errlen);

    free(t);
    return rc;
}

/* The service account of this program, its token_uri the server's. */
static gapi_credentials *make_sa(fx *f, const gapi_credentials_options *opts)
{
    gapi_credentials *cr = NULL;
    char err[256] = "";

    if (creds_json(&cr, sa_obj(f->token_uri), opts, err, sizeof(err)) != GAPI_OK)
        diag("service account credentials: %s", err);
    return cr;
}

static gapi_credentials *make_user(fx *f, const char *secret, const char *quota)
{
    gapi_credentials *cr = NULL;
    char err[256] = "";

    if (creds_json(&cr, user_obj(f->token_uri, secret, quota), NULL, err, sizeof(err)) != GAPI_OK)
        diag("authorized user credentials: %s", err);
    return cr;
}

/* A claim of the last JWT the token endpoint verified, as text ("" when
 * absent). */
static const char *claim(const fx *f, const char *name, char *buf, size_t n)
{
    json_object *c = json_tokener_parse(ta_auth_last_claims(f->auth));
    json_object *v;

    buf[0] = '\0';
    if (c && json_object_object_get_ex(c, name, &v))
        snprintf(buf, n, "%s", json_object_get_string(v));
    json_object_put(c);
    return buf;
}

static long long claim_int(const fx *f, const char *name)
{
    json_object *c = json_tokener_parse(ta_auth_last_claims(f->auth));
    json_object *v;
    long long x = -1;

    if (c && json_object_object_get_ex(c, name, &v))
        x = json_object_get_int64(v);
    json_object_put(c);
    return x;
}

/* ------------------------------------------------------------ tests */

static void test_api_key_and_fixed_token(void)
{
    gapi_credentials_options o = GAPI_CREDENTIALS_OPTIONS_INIT;
    gapi_credentials *key = NULL, *qkey = NULL, *bad = NULL, *tok = NULL, *bogus = NULL, *sa = NULL;
    gapi_credentials *sentinel = (gapi_credentials *)&o;
    char url[320];
    fx f;
    res r;

    if (fx_init(&f, "api key") != 0) {
        fx_free(&f, "api key");
        return;
    }
    ta_auth_accept_api_key(f.auth, API_KEY);

    /* Header. */
    is_int(gapi_credentials_api_key(&key, API_KEY, NULL), 0, "api key: credentials made");
    is_str(gapi_credentials_type(key), "api_key", "api key: type");
    get1(&f, key, f.api, &r);
    ok(r.calls == 1 && r.err == 0 && r.status == 200, "api key: 200 (%s)", r.errmsg);
    is_str(r.who, "key", "api key: the API took the key");
    is_str(ta_auth_last_header(f.auth, "x-goog-api-key"), API_KEY,
           "api key: sent as x-goog-api-key");
    ok(ta_auth_last_header(f.auth, "Authorization") == NULL, "api key: no Authorization header");

    /* Query parameter, after a query the URL already has. */
    o.flags = GAPI_CREDENTIALS_KEY_IN_QUERY;
    is_int(gapi_credentials_api_key(&qkey, API_KEY, &o), 0, "key in query: credentials made");
    snprintf(url, sizeof(url), "%s?fields=a%%2Cb", f.api);
    get1(&f, qkey, url, &r);
    ok(r.err == 0 && r.status == 200 && !strcmp(r.who, "key"),
       "key in query: 200 with the key taken (%s, %d)", r.who, r.status);
    ok(ta_auth_last_header(f.auth, "x-goog-api-key") == NULL,
       "key in query: no x-goog-api-key header (so the key came in the query)");
    get1(&f, qkey, f.api, &r);
    ok(r.err == 0 && r.status == 200 && !strcmp(r.who, "key"),
       "key in query: also on a URL without a query");

    /* A wrong key: the 401 is delivered as is, once (no token to refresh). */
    is_int(gapi_credentials_api_key(&bad, "AIzaWrongKey", NULL), 0, "wrong key: made");
    get1(&f, bad, f.api, &r);
    ok(r.calls == 1 && r.err == 0 && r.status == 401 && r.attempts == 1,
       "wrong key: 401 after one attempt (status %d, attempts %u)", r.status, r.attempts);
    is_str(ta_auth_last_error(f.auth), "api key mismatch: got AIzaWrongKey",
           "wrong key: the server saw that key");

    /* Without credentials. */
    get1(&f, NULL, f.api, &r);
    ok(r.err == 0 && r.status == 401, "no credentials: 401");
    is_str(ta_auth_last_error(f.auth), "no credentials", "no credentials: nothing was sent");

    /* Refused keys; *out untouched. */
    {
        gapi_credentials *x = sentinel;
        is_int(gapi_credentials_api_key(&x, "", NULL), GAPI_EINVAL, "api key \"\": GAPI_EINVAL");
        is_int(gapi_credentials_api_key(&x, "a\r\nX-Evil: 1", NULL), GAPI_EINVAL,
               "api key with CRLF: GAPI_EINVAL");
        is_int(gapi_credentials_api_key(&x, NULL, NULL), GAPI_EINVAL, "api key NULL: GAPI_EINVAL");
        is_int(gapi_credentials_access_token(&x, "tok\n", NULL), GAPI_EINVAL,
               "access token with LF: GAPI_EINVAL");
        ok(x == sentinel, "refused credentials leave *out untouched");
    }

    /* A fixed token: one the server issued (to a service account first). */
    sa = make_sa(&f, NULL);
    get1(&f, sa, f.api, &r);
    is_str(r.who, "ya29.t1", "fixed token: the server issued ya29.t1");
    is_int(gapi_credentials_access_token(&tok, "ya29.t1", NULL), 0, "fixed token: made");
    is_str(gapi_credentials_type(tok), "access_token", "fixed token: type");
    get1(&f, tok, f.api, &r);
    ok(r.err == 0 && r.status == 200 && !strcmp(r.who, "ya29.t1"), "fixed token: accepted (%s)",
       r.who);
    is_str(ta_auth_last_header(f.auth, "Authorization"), "Bearer ya29.t1",
           "fixed token: Authorization: Bearer ya29.t1");
    is_int(ta_auth_token_requests(f.auth), 1, "fixed token: no token request of its own");

    /* A fixed token the API refuses: nothing to refresh, so no retry. */
    is_int(gapi_credentials_access_token(&bogus, BOGUS_TOK, NULL), 0, "bogus fixed token: made");
    get1(&f, bogus, f.api, &r);
    ok(r.calls == 1 && r.err == 0 && r.status == 401 && r.attempts == 1,
       "bogus fixed token: 401 after one attempt (attempts %u)", r.attempts);
    ok(!strncmp(ta_auth_last_error(f.auth), "unknown token: ", 15),
       "bogus fixed token: the server saw an unknown token");
    is_int(ta_auth_token_requests(f.auth), 1, "bogus fixed token: no token request");
    is_int(fetches(&f), 1, "stats: one token fetch in all (the service account's)");

    gapi_credentials_unref(key);
    gapi_credentials_unref(qkey);
    gapi_credentials_unref(bad);
    gapi_credentials_unref(tok);
    gapi_credentials_unref(bogus);
    gapi_credentials_unref(sa);
    fx_free(&f, "api key");
}

static void test_service_account(void)
{
    gapi_credentials_options o = GAPI_CREDENTIALS_OPTIONS_INIT;
    gapi_credentials *sa = NULL, *dwd = NULL, *ff = NULL, *wrong = NULL;
    char buf[512], path[128], err[256] = "";
    res rs[5], r;
    fx f;
    int same;

    if (fx_init(&f, "service account") != 0) {
        fx_free(&f, "service account");
        return;
    }
    sa = make_sa(&f, NULL);
    is_str(gapi_credentials_type(sa), "service_account", "sa: type");
    is_str(gapi_credentials_email(sa), SA_EMAIL, "sa: email");
    get1(&f, sa, f.api, &r);
    ok(r.calls == 1 && r.err == 0 && r.status == 200, "sa: first request 200 (%s)", r.errmsg);
    is_str(r.who, "ya29.t1", "sa: with the token the endpoint issued");
    is_int(ta_auth_token_requests(f.auth), 1, "sa: one token request");
    is_str(ta_auth_last_error(f.auth), "", "sa: the API accepted it");
    is_str(claim(&f, "iss", buf, sizeof(buf)), SA_EMAIL, "sa: JWT iss is the client email");
    is_str(claim(&f, "aud", buf, sizeof(buf)), f.token_uri, "sa: JWT aud is the token URI");
    is_str(claim(&f, "scope", buf, sizeof(buf)), CLOUD, "sa: JWT scope defaults to cloud-platform");
    is_str(claim(&f, "sub", buf, sizeof(buf)), "", "sa: no sub without a subject");
    is_int(claim_int(&f, "exp") - claim_int(&f, "iat"), 3600, "sa: exp = iat + 3600");
    ok(llabs(claim_int(&f, "iat") - (long long)time(NULL)) <= 5, "sa: iat is now");
    is_str(ts_last_header(f.srv, "/token", "Content-Type"), "application/x-www-form-urlencoded",
           "sa: token request is a form");

    /* Reuse: five more, no token request. */
    same = get_n(&f, sa, f.api, rs, 5, "ya29.t1", 20000);
    is_int(same, 5, "sa: five more requests, all with ya29.t1");
    is_int(ta_auth_token_requests(f.auth), 1, "sa: still one token request");
    is_int(fetches(&f), 1, "sa: stats count one token fetch");
    get1(&f, sa, f.api2, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t1"), "sa: another path of the host, same token");

    /* Delegation and explicit scopes. */
    ta_auth_expect_service_account(f.auth, SA_EMAIL, SA_KID,
                                   "https://www.googleapis.com/auth/devstorage.read_only "
                                   "https://www.googleapis.com/auth/logging.write",
                                   "someone@example.com");
    o.scopes = "https://www.googleapis.com/auth/devstorage.read_only "
               "https://www.googleapis.com/auth/logging.write";
    o.subject = "someone@example.com";
    dwd = make_sa(&f, &o);
    get1(&f, dwd, f.api, &r);
    ok(r.err == 0 && r.status == 200 && !strcmp(r.who, "ya29.t2"),
       "delegation: its own token (%s, %s)", r.who, r.errmsg);
    is_str(claim(&f, "sub", buf, sizeof(buf)), "someone@example.com", "delegation: JWT sub");
    is_str(claim(&f, "scope", buf, sizeof(buf)),
           "https://www.googleapis.com/auth/devstorage.read_only "
           "https://www.googleapis.com/auth/logging.write",
           "delegation: JWT scope is the scopes, space-separated");
    is_int(ta_auth_token_requests(f.auth), 2, "delegation: a second token request");
    get1(&f, sa, f.api, &r);
    is_str(r.who, "ya29.t1", "the first credentials keep their own token");

    /* From a file. */
    ta_auth_expect_service_account(f.auth, SA_EMAIL, SA_KID, CLOUD, NULL);
    snprintf(path, sizeof(path), "%s/sa.json", g_tmp);
    {
        char *t = text_of(sa_obj(f.token_uri));
        write_file(path, t);
        free(t);
    }
    is_int(gapi_credentials_from_file(&ff, path, NULL, err, sizeof(err)), 0, "from file: made (%s)",
           err);
    get1(&f, ff, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t3"), "from file: own token ya29.t3 (%s)", r.who);

    /* The endpoint refuses the JWT (expects another key id): the reason
     * reaches the caller. */
    ta_auth_expect_service_account(f.auth, SA_EMAIL, "another-kid", CLOUD, NULL);
    wrong = make_sa(&f, NULL);
    get1(&f, wrong, f.api, &r);
    is_int(r.err, GAPI_EAUTH, "refused JWT: GAPI_EAUTH");
    ok(strstr(r.errmsg, "token endpoint") && strstr(r.errmsg, "HTTP 400") &&
           strstr(r.errmsg, "invalid_grant") && strstr(r.errmsg, "kid"),
       "refused JWT: message names the endpoint, status, error and reason: %s", r.errmsg);
    is_int(ta_auth_token_requests(f.auth), 4, "refused JWT: one token request, not retried");

    /* Expiry re-signs a JWT the server accepts: a 250 s token lives 240 s
     * (10 s early), refreshed ahead from 125 s (half its life); 245 s later
     * the next request waits for a new one. */
    ta_auth_expect_service_account(f.auth, SA_EMAIL, SA_KID, CLOUD, NULL);
    ta_auth_set_expires_in(f.auth, 250, 0);
    gapi_credentials_unref(wrong);
    wrong = make_sa(&f, NULL);
    get1(&f, wrong, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t4"), "short-lived token ya29.t4 (%s)", r.errmsg);
    gapi__auth_clock_skew_ms = 100000;
    get1(&f, wrong, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t4"), "100 s later: still ya29.t4");
    tu_run_for(f.base, 20);
    is_int(ta_auth_token_requests(f.auth), 5, "100 s later: no token request");
    gapi__auth_clock_skew_ms = 245000;
    get1(&f, wrong, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t5"), "245 s later: a new token ya29.t5 (%s %s)", r.who,
       r.errmsg);
    is_int(ta_auth_token_requests(f.auth), 6, "245 s later: one more token request");
    ok(claim_int(&f, "iat") >= (long long)time(NULL) + 240,
       "the new JWT's iat is on the moved clock");

    gapi_credentials_unref(sa);
    gapi_credentials_unref(dwd);
    gapi_credentials_unref(ff);
    gapi_credentials_unref(wrong);
    unlink(path);
    fx_free(&f, "service account");
}

static int stress_n(void)
{
    const char *s = getenv("GAPI_STRESS_N");
    int n = s ? atoi(s) : 0;

    return n > 0 && n <= 1000 ? n : 1000;
}

static void test_single_flight(void)
{
    int n = stress_n(), good, early;
    gapi_credentials *sa;
    double t0;
    res *rs;
    fx f;

    if (fx_init(&f, "single flight") != 0) {
        fx_free(&f, "single flight");
        return;
    }
    if (!(rs = calloc((size_t)n, sizeof(*rs))))
        abort();
    sa = make_sa(&f, NULL);
    ta_auth_set_token_delay(f.auth, 50);
    t0 = mono_ms();
    good = get_n(&f, sa, f.api, rs, n, "ya29.t1", 60000);
    diag("%d requests with one token fetch: %.0f ms", n, mono_ms() - t0);
    is_int(good, n, "single flight: all %d requests 200 with ya29.t1", n);
    is_int(ta_auth_token_requests(f.auth), 1, "single flight: exactly one token request");
    is_int(ta_auth_tokens_issued(f.auth), 1, "single flight: one token issued");
    is_int(ta_auth_api_requests(f.auth), n, "single flight: %d API requests", n);
    is_int(ta_auth_api_rejected(f.auth), 0, "single flight: none refused");
    is_int(fetches(&f), 1, "single flight: stats count one fetch");
    {
        int i;
        for (early = 0, i = 0; i < n; i++)
            early += rs[i].t_done - t0 < 45;
    }
    is_int(early, 0, "single flight: nobody completed before the 50 ms token delay");
    gapi_credentials_unref(sa);
    free(rs);
    fx_free(&f, "single flight");
}

static void test_expiry_and_refresh_ahead(void)
{
    gapi_credentials *u;
    res r, rs[3];
    double t0;
    fx f;

    if (fx_init(&f, "expiry") != 0) {
        fx_free(&f, "expiry");
        return;
    }
    /* An authorized user: its grant has no time claims, so the clock can
     * move by hours. expires_in as a JSON string, as some servers send it. */
    ta_auth_set_expires_in(f.auth, 3599, 1);
    u = make_user(&f, U_SECRET, NULL);
    get1(&f, u, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t1"), "user token ya29.t1 (%s)", r.errmsg);

    /* 3599 s token: refresh ahead from 3599 - 225 = 3374 s on. */
    gapi__auth_clock_skew_ms = 3370000;
    get1(&f, u, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t1"), "3370 s: ya29.t1");
    tu_run_for(f.base, 50);
    is_int(ta_auth_token_requests(f.auth), 1, "3370 s: before the window, no refresh");

    ta_auth_set_token_delay(f.auth, 1000);
    gapi__auth_clock_skew_ms = 3380000;
    t0 = mono_ms();
    get1(&f, u, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t1"),
       "3380 s (last 3 min 45 s): the request went on with ya29.t1 (%s)", r.who);
    ok(r.t_done - t0 < 1000, "3380 s: it did not wait for the 1 s token response (%.0f ms)",
       r.t_done - t0);
    is_int(run_until_tokens(&f, 2, 3000), 0, "3380 s: a background token request went out");
    is_int(get_n(&f, u, f.api, rs, 3, "ya29.t1", 5000), 3,
           "during the refresh: three more requests use ya29.t1 at once");
    is_int(ta_auth_token_requests(f.auth), 2, "during the refresh: still one refresh");
    tu_run_for(f.base, 1200);
    get1(&f, u, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t2"), "after the refresh: ya29.t2 (%s)", r.who);
    is_int(ta_auth_token_requests(f.auth), 2, "after the refresh: no more token requests");

    /* Past ya29.t2's expiry (fetched at 3380 s, lives 3589 s): wait. */
    gapi__auth_clock_skew_ms = 3380000 + 3600000;
    t0 = mono_ms();
    get1(&f, u, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t3"), "expired: the request waited for ya29.t3 (%s)",
       r.who);
    ok(r.t_done - t0 >= 950, "expired: it waited for the 1 s token response (%.0f ms)",
       r.t_done - t0);
    is_int(ta_auth_token_requests(f.auth), 3, "expired: 3 token requests in all");
    is_int(fetches(&f), 3, "stats: 3 fetches");

    /* A background refresh that fails costs the requests nothing while the
     * token is good; the next request in the window tries again. */
    ta_auth_set_token_delay(f.auth, 0);
    ta_auth_fail_next(f.auth, 1, 400, "{\"error\":\"invalid_grant\"}");
    gapi__auth_clock_skew_ms = 3380000 + 3600000 + 3380000;
    get1(&f, u, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t3"),
       "failing refresh: the request went on with ya29.t3");
    is_int(run_until_tokens(&f, 4, 3000), 0, "failing refresh: the refresh went out");
    tu_run_for(f.base, 50);
    get1(&f, u, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t3"),
       "failing refresh: the next request still has ya29.t3, no error (%s)", r.errmsg);
    is_int(run_until_tokens(&f, 5, 3000), 0, "failing refresh: and it asks again");
    tu_run_for(f.base, 50);
    get1(&f, u, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t4"), "failing refresh: then ya29.t4 (%s)", r.who);
    is_int(ta_auth_token_requests(f.auth), 5, "failing refresh: 5 token requests in all");
    gapi_credentials_unref(u);
    fx_free(&f, "expiry");
}

/* Revokes every token once the server has issued `at` of them: the token
 * minted for a refresh is dead before its (delayed) response leaves. */
typedef struct revoker {
    fx *f;
    unsigned at;
    int fired;
    struct event *ev;
} revoker;

static void revoke_tick(evutil_socket_t fd, short what, void *arg)
{
    revoker *rv = arg;
    struct timeval tv = {0, 2000};

    (void)fd;
    (void)what;
    if (ta_auth_tokens_issued(rv->f->auth) >= rv->at) {
        ta_auth_revoke_all(rv->f->auth);
        rv->fired = 1;
        return;
    }
    evtimer_add(rv->ev, &tv);
}

static void test_401_retry(void)
{
    gapi_credentials *sa;
    struct timeval tv = {0, 2000};
    revoker rv;
    res r, rs[20];
    unsigned api_before;
    int i, a1 = -1, a2 = -1, good;
    fx f;

    if (fx_init(&f, "401") != 0) {
        fx_free(&f, "401");
        return;
    }
    sa = make_sa(&f, NULL);
    get1(&f, sa, f.api, &r);
    is_str(r.who, "ya29.t1", "401: token ya29.t1");

    ta_auth_revoke_all(f.auth);
    g_natt = 0;
    get1(&f, sa, f.api, &r);
    ok(r.calls == 1 && r.err == 0 && r.status == 200, "revoked: success after a refresh (%d, %s)",
       r.status, r.errmsg);
    is_str(r.who, "ya29.t2", "revoked: the retry carried ya29.t2");
    is_int(r.attempts, 2, "revoked: two attempts");
    is_int(ta_auth_token_requests(f.auth), 2, "revoked: one refresh");
    is_int(ta_auth_api_rejected(f.auth), 1, "revoked: one 401 at the API");
    for (i = 0; i < g_natt && i < MAX_SEEN; i++) {
        if (g_att[i].api && g_att[i].attempt == 1)
            a1 = i;
        if (g_att[i].api && g_att[i].attempt == 2)
            a2 = i;
    }
    ok(a1 >= 0 && g_att[a1].status == 401 && g_att[a1].retrying &&
           !strcmp(g_att[a1].reason, "HTTP 401: token refreshed, retrying once"),
       "revoked: attempt 1 told: 401, retrying (%s)", a1 >= 0 ? g_att[a1].reason : "none");
    ok(a2 >= 0 && g_att[a2].status == 200 && !g_att[a2].retrying,
       "revoked: attempt 2 told: 200, final");

    /* Every token refused: the refreshed one is revoked as soon as it is
     * minted. The 401 comes back after one retry, not a loop. */
    ta_auth_revoke_all(f.auth);
    ta_auth_set_token_delay(f.auth, 300);
    memset(&rv, 0, sizeof(rv));
    rv.f = &f;
    rv.at = 3;
    rv.ev = evtimer_new(f.base, revoke_tick, &rv);
    evtimer_add(rv.ev, &tv);
    api_before = ta_auth_api_requests(f.auth);
    get1(&f, sa, f.api, &r);
    ok(rv.fired, "refused: ya29.t3 was revoked before it arrived");
    ok(r.calls == 1 && r.err == 0 && r.status == 401,
       "refused: the 401 is delivered (err %d, status %d)", r.err, r.status);
    is_int(r.attempts, 2, "refused: after exactly one retry");
    is_int(ta_auth_token_requests(f.auth), 3, "refused: one refresh");
    tu_run_for(f.base, 400);
    is_int(ta_auth_api_requests(f.auth) - api_before, 2, "refused: two API requests, no more");
    is_int(ta_auth_token_requests(f.auth), 3, "refused: no further token request");
    event_free(rv.ev);
    ta_auth_set_token_delay(f.auth, 0);

    /* The cache still holds the revoked ya29.t3: the next request refreshes
     * once more and succeeds. */
    get1(&f, sa, f.api, &r);
    ok(r.err == 0 && r.status == 200 && !strcmp(r.who, "ya29.t4") && r.attempts == 2,
       "next request: refresh and ya29.t4 (%s, attempts %u)", r.who, r.attempts);

    /* Twenty requests in flight with a token that dies: one refresh. */
    ta_auth_revoke_all(f.auth);
    api_before = ta_auth_api_rejected(f.auth);
    good = get_n(&f, sa, f.api, rs, 20, "ya29.t5", 20000);
    is_int(good, 20, "20 concurrent 401s: all 200 with ya29.t5");
    for (i = 0, a1 = 0; i < 20; i++)
        a1 += rs[i].attempts == 2;
    is_int(a1, 20, "20 concurrent 401s: each after two attempts");
    is_int(ta_auth_api_rejected(f.auth) - api_before, 20, "20 concurrent 401s: 20 refused");
    is_int(ta_auth_token_requests(f.auth), 5, "20 concurrent 401s: exactly one refresh");
    gapi_credentials_unref(sa);
    fx_free(&f, "401");
}

static void test_token_outage(void)
{
    gapi_credentials_options o = GAPI_CREDENTIALS_OPTIONS_INIT;
    gapi_credentials *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    unsigned tok0, api0;
    res r, rs[3];
    int i, n;
    fx f;

    if (fx_init(&f, "outage") != 0) {
        fx_free(&f, "outage");
        return;
    }
    o.token_retry = &g_fast;

    /* Two 503s, then a token. */
    a = make_sa(&f, &o);
    ta_auth_fail_next(f.auth, 2, 503, "backend unavailable");
    get1(&f, a, f.api, &r);
    ok(r.err == 0 && r.status == 200 && !strcmp(r.who, "ya29.t1"),
       "two 503s: success after retries (%s)", r.errmsg);
    is_int(ta_auth_token_requests(f.auth), 3, "two 503s: three token requests");
    is_int(fetches(&f), 1, "two 503s: one fetch");
    ta_auth_fail_next(f.auth, 0, 0, NULL);

    /* A long outage: every waiting request fails with the endpoint's word. */
    b = make_sa(&f, &o);
    tok0 = ta_auth_token_requests(f.auth);
    api0 = ta_auth_api_requests(f.auth);
    ta_auth_fail_next(f.auth, 1000, 503, "backend unavailable");
    get_n(&f, b, f.api, rs, 3, NULL, 20000);
    for (i = 0, n = 0; i < 3; i++)
        n += rs[i].calls == 1 && rs[i].err == GAPI_EAUTH && strstr(rs[i].errmsg, "HTTP 503") &&
             strstr(rs[i].errmsg, "backend unavailable");
    is_int(n, 3, "outage: the 3 waiting requests fail with GAPI_EAUTH, \"HTTP 503\" (%s)",
           rs[0].errmsg);
    is_int(ta_auth_token_requests(f.auth) - tok0, 4, "outage: 4 token requests (the policy's)");
    is_int(ta_auth_api_requests(f.auth) - api0, 0, "outage: nothing reached the API");
    ta_auth_fail_next(f.auth, 0, 0, NULL);

    /* invalid_grant: final at once. */
    c = make_sa(&f, &o);
    tok0 = ta_auth_token_requests(f.auth);
    ta_auth_fail_next(f.auth, 1, 400,
                      "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT "
                      "Signature.\"}");
    get1(&f, c, f.api, &r);
    is_int(r.err, GAPI_EAUTH, "invalid_grant: GAPI_EAUTH");
    ok(strstr(r.errmsg, "invalid_grant") && strstr(r.errmsg, "Invalid JWT Signature."),
       "invalid_grant: message has the error and its description: %s", r.errmsg);
    is_int(ta_auth_token_requests(f.auth) - tok0, 1,
           "invalid_grant: one token request, not retried");
    /* The failure is not cached: the next request asks again. */
    get1(&f, c, f.api, &r);
    ok(r.err == 0 && r.status == 200 && !strncmp(r.who, "ya29.t", 6),
       "after invalid_grant: next request asks again and gets a token (%s)", r.who);
    is_int(ta_auth_token_requests(f.auth) - tok0, 2, "after invalid_grant: one more token request");

    /* An OAuth error that says "try again", with a 400. */
    d = make_sa(&f, &o);
    tok0 = ta_auth_token_requests(f.auth);
    ta_auth_fail_next(f.auth, 1, 400,
                      "{\"error\":\"temporarily_unavailable\",\"error_description\":\"busy\"}");
    get1(&f, d, f.api, &r);
    ok(r.err == 0 && r.status == 200, "temporarily_unavailable: retried to success (%s)", r.errmsg);
    is_int(ta_auth_token_requests(f.auth) - tok0, 2, "temporarily_unavailable: two token requests");

    /* A 401 whose refresh fails (c holds a token): the endpoint's error,
     * after one API attempt. */
    ta_auth_revoke_all(f.auth);
    tok0 = ta_auth_token_requests(f.auth);
    ta_auth_fail_next(f.auth, 1, 400,
                      "{\"error\":\"invalid_grant\",\"error_description\":\"Token has been expired "
                      "or revoked.\"}");
    get1(&f, c, f.api, &r);
    ok(r.calls == 1 && r.err == GAPI_EAUTH &&
           strstr(r.errmsg, "Token has been expired or revoked."),
       "401, refresh refused: GAPI_EAUTH with the endpoint's message (%s)", r.errmsg);
    is_int(r.attempts, 1, "401, refresh refused: one API attempt");
    is_int(ta_auth_token_requests(f.auth) - tok0, 1, "401, refresh refused: one token request");

    gapi_credentials_unref(a);
    gapi_credentials_unref(b);
    gapi_credentials_unref(c);
    gapi_credentials_unref(d);
    fx_free(&f, "outage");
}

static void test_authorized_user(void)
{
    gapi_credentials_options o = GAPI_CREDENTIALS_OPTIONS_INIT;
    gapi_credentials *u = NULL, *bad = NULL, *viaopt = NULL;
    char err[256] = "";
    res r;
    fx f;

    if (fx_init(&f, "user") != 0) {
        fx_free(&f, "user");
        return;
    }
    u = make_user(&f, U_SECRET, NULL);
    is_str(gapi_credentials_type(u), "authorized_user", "user: type");
    ok(gapi_credentials_email(u) == NULL, "user: no email");
    get1(&f, u, f.api, &r);
    ok(r.err == 0 && r.status == 200 && !strcmp(r.who, "ya29.t1"), "user: 200 with ya29.t1 (%s)",
       r.errmsg);
    is_int(ta_auth_token_requests(f.auth), 1, "user: one token request");
    get1(&f, u, f.api, &r);
    is_int(ta_auth_token_requests(f.auth), 1, "user: token reused");

    bad = make_user(&f, "wrong-secret-W0ng", NULL);
    get1(&f, bad, f.api, &r);
    is_int(r.err, GAPI_EAUTH, "bad secret: GAPI_EAUTH");
    ok(strstr(r.errmsg, "HTTP 400") && strstr(r.errmsg, "invalid_grant"), "bad secret: message: %s",
       r.errmsg);
    ok(!strstr(r.errmsg, "wrong-secret"), "bad secret: the secret is not in the message");
    is_int(ta_auth_token_requests(f.auth), 2, "bad secret: one token request");

    /* Google's token URI replaced by the option (gcloud files have none). */
    o.token_uri = f.token_uri;
    is_int(creds_json(&viaopt, user_obj(NULL, U_SECRET, NULL), &o, err, sizeof(err)), 0,
           "user, token_uri from options: made (%s)", err);
    get1(&f, viaopt, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t2"), "user, token_uri from options: ya29.t2 (%s)",
       r.errmsg);
    gapi_credentials_unref(u);
    gapi_credentials_unref(bad);
    gapi_credentials_unref(viaopt);
    fx_free(&f, "user");
}

static void test_metadata(void)
{
    ts_options so = TS_OPTIONS_INIT;
    gapi_credentials_options o = GAPI_CREDENTIALS_OPTIONS_INIT;
    gapi_credentials *md = NULL, *md2 = NULL, *md3 = NULL, *md4 = NULL, *x;
    char host[64], url[256];
    res r;
    fx f;

    so.plain_http = 1; /* http://metadata.google.internal is plain HTTP */
    if (fx_server(&f, &so) != 0 || fx_client(&f, NULL) != 0) {
        ok(0, "metadata: setup");
        fx_free(&f, "metadata");
        return;
    }
    snprintf(host, sizeof(host), "127.0.0.1:%d", ts_server_port(f.srv));
    o.metadata_host = host;
    is_int(gapi_credentials_metadata(&md, &o), 0, "metadata: credentials made");
    is_str(gapi_credentials_type(md), "metadata", "metadata: type");
    get1(&f, md, f.api, &r);
    ok(r.err == 0 && r.status == 200 && !strcmp(r.who, "ya29.t1"),
       "metadata: 200 with ya29.t1 (%s)", r.errmsg);
    is_int(ta_auth_token_requests(f.auth), 1, "metadata: one token request");
    is_int(ts_server_hits(f.srv, MD_PATH), 1, "metadata: on the metadata token path");
    is_str(ts_last_method(f.srv, MD_PATH), "GET", "metadata: GET");
    is_str(ts_last_header(f.srv, MD_PATH, "Metadata-Flavor"), "Google",
           "metadata: Metadata-Flavor: Google");
    ok(ta_auth_last_scopes(f.auth) == NULL, "metadata: no scopes asked without scopes");
    get1(&f, md, f.api, &r);
    is_int(ta_auth_token_requests(f.auth), 1, "metadata: token reused");

    /* Without the header the server refuses: the check above is real. */
    snprintf(url, sizeof(url), "http://%s%s", host, MD_PATH);
    get1(&f, NULL, url, &r);
    is_int(r.status, 403, "metadata: a request without the header gets 403");

    o.scopes = CLOUD " https://www.googleapis.com/auth/userinfo.email";
    is_int(gapi_credentials_metadata(&md2, &o), 0, "metadata with scopes: made");
    get1(&f, md2, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t2"), "metadata with scopes: its own token (%s)", r.who);
    is_str(ta_auth_last_scopes(f.auth), CLOUD ",https://www.googleapis.com/auth/userinfo.email",
           "metadata with scopes: ?scopes= comma-separated");

    /* GCE_METADATA_HOST when no option says. */
    setenv("GCE_METADATA_HOST", host, 1);
    is_int(gapi_credentials_metadata(&md3, NULL), 0, "GCE_METADATA_HOST: made");
    unsetenv("GCE_METADATA_HOST");
    get1(&f, md3, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t3"), "GCE_METADATA_HOST: used (%s, %s)", r.who,
       r.errmsg);
    is_int(ts_server_hits(f.srv, MD_PATH), 4, "GCE_METADATA_HOST: the request came here");

    /* The metadata server failing. */
    o.scopes = NULL;
    o.token_retry = &g_fast;
    is_int(gapi_credentials_metadata(&md4, &o), 0, "metadata 404: made");
    ta_auth_fail_next(f.auth, 1, 404, "no such service account");
    get1(&f, md4, f.api, &r);
    ok(r.err == GAPI_EAUTH && strstr(r.errmsg, "metadata server") && strstr(r.errmsg, "HTTP 404"),
       "metadata 404: GAPI_EAUTH naming the metadata server: %s", r.errmsg);

    x = (gapi_credentials *)&o;
    o.metadata_host = "evil.example/path";
    is_int(gapi_credentials_metadata(&x, &o), GAPI_EINVAL, "metadata host with '/': GAPI_EINVAL");
    ok(x == (gapi_credentials *)&o, "metadata host with '/': *out untouched");
    gapi_credentials_unref(md);
    gapi_credentials_unref(md2);
    gapi_credentials_unref(md3);
    gapi_credentials_unref(md4);
    fx_free(&f, "metadata");
}

static void test_self_signed(void)
{
    gapi_credentials_options o = GAPI_CREDENTIALS_OPTIONS_INIT;
    gapi_credentials *ss = NULL, *uni = NULL, *refused = NULL, *x;
    json_object *obj;
    const char *authz;
    char err[256] = "";
    res r, rs[3];
    fx f;

    if (fx_init(&f, "self-signed") != 0) {
        fx_free(&f, "self-signed");
        return;
    }
    ta_auth_accept_self_signed(f.auth, f.aud);
    o.flags = GAPI_CREDENTIALS_SELF_SIGNED_JWT;
    ss = make_sa(&f, &o);
    get1(&f, ss, f.api, &r);
    ok(r.err == 0 && r.status == 200 && !strcmp(r.who, "jwt"),
       "self-signed: the API took the JWT (%s, %s)", r.who, ta_auth_last_error(f.auth));
    authz = ta_auth_last_header(f.auth, "Authorization");
    ok(authz && !strncmp(authz, "Bearer eyJ", 10), "self-signed: Authorization: Bearer <JWT>");
    is_int(ta_auth_token_requests(f.auth), 0, "self-signed: no token request");
    is_int(get_n(&f, ss, f.api, rs, 3, "jwt", 10000), 3, "self-signed: three more");
    get1(&f, ss, f.api2, &r);
    ok(r.err == 0 && !strcmp(r.who, "jwt"), "self-signed: another path, same host");
    is_int(fetches(&f), 1, "self-signed: one JWT signed for the host");
    is_int(ta_auth_token_requests(f.auth), 0, "self-signed: still no token request");

    /* Another universe: self-signed without being asked. */
    obj = sa_obj(f.token_uri);
    json_object_object_add(obj, "universe_domain", json_object_new_string("example-cloud.test"));
    is_int(creds_json(&uni, obj, NULL, err, sizeof(err)), 0, "universe: made (%s)", err);
    get1(&f, uni, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "jwt"), "universe example-cloud.test: self-signed JWT (%s)",
       r.who);
    is_int(ta_auth_token_requests(f.auth), 0, "universe: no token request");

    /* ...where delegation is impossible. */
    x = (gapi_credentials *)&o;
    o.flags = 0;
    o.subject = "someone@example.com";
    obj = sa_obj(f.token_uri);
    json_object_object_add(obj, "universe_domain", json_object_new_string("example-cloud.test"));
    is_int(creds_json(&x, obj, &o, err, sizeof(err)), GAPI_EINVAL,
           "universe + subject: GAPI_EINVAL");
    ok(strstr(err, "subject") && strstr(err, "example-cloud.test"),
       "universe + subject: message names both: %s", err);
    ok(x == (gapi_credentials *)&o, "universe + subject: *out untouched");

    /* An API that refuses the JWT: re-signed once, then the 401. */
    ta_auth_accept_self_signed(f.auth, NULL);
    o.subject = NULL;
    o.flags = GAPI_CREDENTIALS_SELF_SIGNED_JWT;
    refused = make_sa(&f, &o);
    get1(&f, refused, f.api, &r);
    ok(r.err == 0 && r.status == 401 && r.attempts == 2,
       "refused JWT: 401 after one retry (status %d, attempts %u)", r.status, r.attempts);
    is_int(ta_auth_token_requests(f.auth), 0, "refused JWT: no token request");
    gapi_credentials_unref(ss);
    gapi_credentials_unref(uni);
    gapi_credentials_unref(refused);
    fx_free(&f, "self-signed");
}

/* ------------------------------------------------------------ ADC */

static const char *const g_env_names[] = {"HOME", "GOOGLE_APPLICATION_CREDENTIALS",
                                          "CLOUDSDK_CONFIG", "GCE_METADATA_HOST",
                                          "GOOGLE_CLOUD_QUOTA_PROJECT"};
#define N_ENV (sizeof(g_env_names) / sizeof(g_env_names[0]))

static void test_adc(void)
{
    gapi_credentials_options o = GAPI_CREDENTIALS_OPTIONS_INIT;
    gapi_credentials *cr = NULL, *x;
    char *saved[N_ENV];
    char home[128], gdir[160], cfg[128], cfgfile[192], homefile[256], sa_path[128], missing[128],
        broken[128], host[64], err[512] = "";
    ts_options so = TS_OPTIONS_INIT;
    ts_server *mds = NULL;
    ta_auth *mda = NULL;
    size_t i;
    res r;
    fx f;

    if (fx_init(&f, "adc") != 0) {
        fx_free(&f, "adc");
        return;
    }
    for (i = 0; i < N_ENV; i++) {
        const char *v = getenv(g_env_names[i]);
        saved[i] = v ? xstrdup(v) : NULL;
        unsetenv(g_env_names[i]);
    }
    snprintf(home, sizeof(home), "%s/home", g_tmp);
    snprintf(gdir, sizeof(gdir), "%s/.config", home);
    mkdir(home, 0700);
    mkdir(gdir, 0700);
    snprintf(gdir, sizeof(gdir), "%s/.config/gcloud", home);
    mkdir(gdir, 0700);
    snprintf(homefile, sizeof(homefile), "%s/application_default_credentials.json", gdir);
    snprintf(cfg, sizeof(cfg), "%s/cloudsdk", g_tmp);
    mkdir(cfg, 0700);
    snprintf(cfgfile, sizeof(cfgfile), "%s/application_default_credentials.json", cfg);
    snprintf(sa_path, sizeof(sa_path), "%s/adc-sa.json", g_tmp);
    snprintf(missing, sizeof(missing), "%s/no-such-key.json", g_tmp);
    snprintf(broken, sizeof(broken), "%s/broken.json", g_tmp);
    setenv("HOME", home, 1);
    o.token_retry = &g_fast;
    {
        json_object *sa = sa_obj(f.token_uri);
        char *t;
        json_object_object_add(sa, "quota_project_id", json_object_new_string("file-proj"));
        t = text_of(sa);
        write_file(sa_path, t);
        free(t);
        t = text_of(user_obj(f.token_uri, U_SECRET, "cfg-proj"));
        write_file(cfgfile, t);
        free(t);
        t = text_of(user_obj(f.token_uri, U_SECRET, "home-proj"));
        write_file(homefile, t);
        free(t);
        write_file(broken, "{\"type\": \"service_account\", \"client_email\": 7}");
    }

    /* 1. GOOGLE_APPLICATION_CREDENTIALS wins over the gcloud files. */
    setenv("CLOUDSDK_CONFIG", cfg, 1);
    setenv("GOOGLE_APPLICATION_CREDENTIALS", sa_path, 1);
    is_int(gapi_credentials_default(&cr, &o, err, sizeof(err)), 0, "adc GAC: found (%s)", err);
    is_str(gapi_credentials_type(cr), "service_account", "adc GAC: the service account file");
    get1(&f, cr, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t1"), "adc GAC: request 200 (%s)", r.errmsg);
    is_str(ta_auth_last_header(f.auth, "x-goog-user-project"), "file-proj",
           "quota project: the file's quota_project_id");
    gapi_credentials_unref(cr);
    cr = NULL;

    /* Quota project: the environment, then the option, win over the file. */
    setenv("GOOGLE_CLOUD_QUOTA_PROJECT", "env-proj", 1);
    is_int(gapi_credentials_default(&cr, &o, err, sizeof(err)), 0, "quota env: made");
    get1(&f, cr, f.api, &r);
    is_str(ta_auth_last_header(f.auth, "x-goog-user-project"), "env-proj",
           "quota project: GOOGLE_CLOUD_QUOTA_PROJECT over the file");
    gapi_credentials_unref(cr);
    cr = NULL;
    o.quota_project = "opt-proj";
    is_int(gapi_credentials_default(&cr, &o, err, sizeof(err)), 0, "quota option: made");
    get1(&f, cr, f.api, &r);
    is_str(ta_auth_last_header(f.auth, "x-goog-user-project"), "opt-proj",
           "quota project: the option over GOOGLE_CLOUD_QUOTA_PROJECT");
    gapi_credentials_unref(cr);
    cr = NULL;
    o.quota_project = NULL;
    unsetenv("GOOGLE_CLOUD_QUOTA_PROJECT");

    /* 2. GOOGLE_APPLICATION_CREDENTIALS set but unusable: an error, no
     * fallback (as in google-auth). */
    x = (gapi_credentials *)&o;
    setenv("GOOGLE_APPLICATION_CREDENTIALS", missing, 1);
    is_int(gapi_credentials_default(&x, &o, err, sizeof(err)), GAPI_ECREDENTIALS,
           "adc GAC missing file: GAPI_ECREDENTIALS");
    ok(strstr(err, "GOOGLE_APPLICATION_CREDENTIALS") && strstr(err, missing) &&
           strstr(err, strerror(ENOENT)),
       "adc GAC missing file: message names the variable and file: %s", err);
    setenv("GOOGLE_APPLICATION_CREDENTIALS", broken, 1);
    is_int(gapi_credentials_default(&x, &o, err, sizeof(err)), GAPI_ECREDENTIALS,
           "adc GAC broken file: GAPI_ECREDENTIALS");
    ok(!strncmp(err, broken, strlen(broken)) && strstr(err, "client_email"),
       "adc GAC broken file: message starts with the path, names the field: %s", err);
    setenv("GOOGLE_APPLICATION_CREDENTIALS", "", 1);
    is_int(gapi_credentials_default(&x, &o, err, sizeof(err)), GAPI_ECREDENTIALS,
           "adc GAC empty: GAPI_ECREDENTIALS");
    ok(strstr(err, "GOOGLE_APPLICATION_CREDENTIALS") && strstr(err, "empty"),
       "adc GAC empty: message: %s", err);
    ok(x == (gapi_credentials *)&o, "adc failures leave *out untouched");
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");

    /* 3. $CLOUDSDK_CONFIG's file before ~/.config/gcloud's. */
    is_int(gapi_credentials_default(&cr, &o, err, sizeof(err)), 0, "adc CLOUDSDK_CONFIG: found");
    is_str(gapi_credentials_type(cr), "authorized_user", "adc CLOUDSDK_CONFIG: authorized user");
    get1(&f, cr, f.api, &r);
    ok(r.err == 0 && r.status == 200, "adc CLOUDSDK_CONFIG: request 200 (%s)", r.errmsg);
    is_str(ta_auth_last_header(f.auth, "x-goog-user-project"), "cfg-proj",
           "adc CLOUDSDK_CONFIG: its file (cfg-proj)");
    gapi_credentials_unref(cr);
    cr = NULL;

    /* 4. ~/.config/gcloud. */
    unsetenv("CLOUDSDK_CONFIG");
    is_int(gapi_credentials_default(&cr, &o, err, sizeof(err)), 0, "adc HOME: found");
    get1(&f, cr, f.api, &r);
    ok(r.err == 0 && r.status == 200, "adc HOME: request 200 (%s)", r.errmsg);
    is_str(ta_auth_last_header(f.auth, "x-goog-user-project"), "home-proj",
           "adc HOME: ~/.config/gcloud's file (home-proj)");
    gapi_credentials_unref(cr);
    cr = NULL;

    /* 5. No file; a metadata server at GCE_METADATA_HOST. */
    unlink(homefile);
    so.plain_http = 1;
    if ((mds = ts_server_new(f.base, &so)) != NULL && (mda = ta_auth_new(mds, NULL)) != NULL) {
        char mdapi[256];
        snprintf(host, sizeof(host), "127.0.0.1:%d", ts_server_port(mds));
        snprintf(mdapi, sizeof(mdapi), "%s/api/v1/items", ts_server_origin(mds));
        setenv("GCE_METADATA_HOST", host, 1);
        is_int(gapi_credentials_default(&cr, &o, err, sizeof(err)), 0, "adc metadata: made");
        is_str(gapi_credentials_type(cr), "metadata", "adc metadata: type");
        get1(&f, cr, mdapi, &r);
        ok(r.err == 0 && r.status == 200 && !strcmp(r.who, "ya29.t1"),
           "adc metadata: token from the metadata server (%s)", r.errmsg);
        is_int(ta_auth_token_requests(mda), 1, "adc metadata: one metadata token request");
        gapi_credentials_unref(cr);
        cr = NULL;
    } else {
        ok(0, "adc metadata: second server");
    }

    /* 6. Nothing at all: the metadata host refuses connections. */
    snprintf(host, sizeof(host), "127.0.0.1:%d", tu_closed_port());
    setenv("GCE_METADATA_HOST", host, 1);
    is_int(gapi_credentials_default(&cr, &o, err, sizeof(err)), 0,
           "adc nothing: made (metadata is tried on first use)");
    {
        res rs[3];
        int i2, n = 0;
        get_n(&f, cr, f.api, rs, 3, NULL, 20000);
        for (i2 = 0; i2 < 3; i2++)
            n += rs[i2].calls == 1 && rs[i2].err == GAPI_ECREDENTIALS;
        is_int(n, 3, "adc nothing: the 3 requests fail with GAPI_ECREDENTIALS (%s)",
               gapi_error_name(rs[0].err));
        ok(strstr(rs[0].errmsg, "GOOGLE_APPLICATION_CREDENTIALS") &&
               strstr(rs[0].errmsg, homefile) && strstr(rs[0].errmsg, host),
           "adc nothing: the message lists what was tried: %s", rs[0].errmsg);
        ok(strstr(rs[0].errmsg, "Connection refused") &&
               strstr(rs[0].errmsg, "(set GOOGLE_APPLICATION_CREDENTIALS to a key file)"),
           "adc nothing: the message is whole (%zu bytes, ends with the hint)",
           strlen(rs[0].errmsg));
    }
    gapi_credentials_unref(cr);

    for (i = 0; i < N_ENV; i++) {
        if (saved[i])
            setenv(g_env_names[i], saved[i], 1);
        else
            unsetenv(g_env_names[i]);
        free(saved[i]);
    }
    gapi_client_free(f.cli);
    f.cli = NULL;
    ta_auth_free(mda);
    ts_server_free(mds);
    fx_free(&f, "adc");
}

/* ------------------------------------------------------------ malformed */

static void bad_json(json_object *o, const char *what, const char *want)
{
    gapi_credentials *x = (gapi_credentials *)&x;
    char err[512] = "";
    int rc = creds_json(&x, o, NULL, err, sizeof(err));

    collect(err);
    ok(rc == GAPI_ECREDENTIALS && strstr(err, want) && x == (gapi_credentials *)&x &&
           !strstr(err, "MIIE") && !strstr(err, "AAAA"),
       "malformed (%s): GAPI_ECREDENTIALS, \"%s\" (%s: %s)", what, want, gapi_error_name(rc), err);
}

static void test_malformed(void)
{
    gapi_credentials *x = (gapi_credentials *)&x;
    char err[512], path[128];
    json_object *o;
    int rc;

    rc = gapi_credentials_from_json(&x, "{\"type\": ", 9, NULL, err, sizeof(err));
    ok(rc == GAPI_ECREDENTIALS && !strncmp(err, "not JSON", 8), "malformed (not JSON): %s", err);
    bad_json(json_object_new_object(), "no type", "\"type\" missing");
    o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("external_account"));
    bad_json(o, "unknown type", "unsupported credentials type \"external_account\"");
    o = sa_obj("https://oauth2.googleapis.com/token");
    json_object_object_del(o, "private_key");
    bad_json(o, "no private_key", "\"private_key\" missing");
    o = sa_obj("https://oauth2.googleapis.com/token");
    json_object_object_add(o, "private_key",
                           json_object_new_string("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END "
                                                  "PRIVATE KEY-----\n"));
    bad_json(o, "garbage key", "private_key is not a PEM RSA key");
    o = sa_obj("https://oauth2.googleapis.com/token");
    json_object_object_add(o, "client_email", json_object_new_int(42));
    bad_json(o, "email a number", "\"client_email\" is not a string");
    o = user_obj(NULL, U_SECRET, NULL);
    json_object_object_del(o, "refresh_token");
    bad_json(o, "user without refresh_token", "\"refresh_token\" missing");
    o = sa_obj("http://token.example.com/token");
    bad_json(o, "plain-HTTP token_uri", "token_uri");

    snprintf(path, sizeof(path), "%s/absent.json", g_tmp);
    rc = gapi_credentials_from_file(&x, path, NULL, err, sizeof(err));
    ok(rc == GAPI_ECREDENTIALS && !strncmp(err, path, strlen(path)) &&
           strstr(err, strerror(ENOENT)),
       "from_file missing: GAPI_ECREDENTIALS, path and reason: %s", err);
    rc = gapi_credentials_from_file(&x, g_tmp, NULL, err, sizeof(err));
    ok(rc == GAPI_ECREDENTIALS && !strncmp(err, g_tmp, strlen(g_tmp)),
       "from_file directory: GAPI_ECREDENTIALS naming it: %s", err);
    snprintf(path, sizeof(path), "%s/notjson.json", g_tmp);
    write_file(path, "hello");
    rc = gapi_credentials_from_file(&x, path, NULL, err, sizeof(err));
    ok(rc == GAPI_ECREDENTIALS && !strncmp(err, path, strlen(path)) && strstr(err, "not JSON"),
       "from_file not JSON: message starts with the path: %s", err);
    unlink(path);
    {
        gapi_credentials_options co = GAPI_CREDENTIALS_OPTIONS_INIT;
        char *text;
        co.token_uri = "http://token.example.com/token";
        o = sa_obj("https://oauth2.googleapis.com/token");
        text = text_of(o);
        rc = gapi_credentials_from_json(&x, text, strlen(text), &co, err, sizeof(err));
        ok(rc == GAPI_EINVAL && strstr(err, "options.token_uri") && strstr(err, "https"),
           "options.token_uri over plain HTTP to a public host: GAPI_EINVAL (%s)", err);
        free(text);
    }
    ok(x == (gapi_credentials *)&x, "malformed: *out untouched throughout");
}

/* ------------------------------------------------------------ token source */

typedef struct src {
    fx *f;
    int fetches, at_once, err;
    const char *token, *msg;
    gapi_client *seen;
    gapi_token_request *pending;
    struct event *ev;
} src;

static void src_timer(evutil_socket_t fd, short what, void *arg)
{
    src *s = arg;
    gapi_token_request *tr = s->pending;

    (void)fd;
    (void)what;
    s->pending = NULL;
    gapi_token_request_done(tr, s->err, s->token, 0, s->msg);
}

static void src_fetch(gapi_client *c, gapi_token_request *tr, void *arg)
{
    src *s = arg;
    struct timeval tv = {0, 50000};

    s->fetches++;
    s->seen = c;
    if (s->at_once) {
        gapi_token_request_done(tr, s->err, s->token, 0, s->msg);
        return;
    }
    s->pending = tr;
    evtimer_add(s->ev, &tv);
}

static void src_init(src *s, fx *f, const char *token, int err, const char *msg)
{
    memset(s, 0, sizeof(*s));
    s->f = f;
    s->token = token;
    s->err = err;
    s->msg = msg;
    s->ev = evtimer_new(f->base, src_timer, s);
}

/* Keeps the fetch and never answers it. */
static void silent_fetch(gapi_client *c, gapi_token_request *tr, void *arg)
{
    src *s = arg;

    (void)c;
    s->fetches++;
    s->pending = tr;
}

static void test_token_source(void)
{
    gapi_credentials *u, *ts1 = NULL, *ts2 = NULL, *ts3 = NULL, *ts4 = NULL, *ts5 = NULL;
    src s1, s2, s3, s4, s5;
    res r, rs[3];
    double t0;
    int i, n;
    fx f;

    if (fx_init(&f, "token source") != 0) {
        fx_free(&f, "token source");
        return;
    }
    u = make_user(&f, U_SECRET, NULL);
    get1(&f, u, f.api, &r); /* the server issues ya29.t1 */
    is_str(r.who, "ya29.t1", "token source: the server issued ya29.t1 first");

    /* Completes 50 ms later from a timer; three requests, one fetch. */
    src_init(&s1, &f, "ya29.t1", 0, NULL);
    is_int(gapi_credentials_token_source(&ts1, src_fetch, &s1, NULL), 0, "token source: made");
    is_str(gapi_credentials_type(ts1), "token_source", "token source: type");
    t0 = mono_ms();
    is_int(get_n(&f, ts1, f.api, rs, 3, "ya29.t1", 5000), 3,
           "token source: three requests 200 with its token");
    is_int(s1.fetches, 1, "token source: fetched once");
    ok(s1.seen == f.cli, "token source: told its client");
    ok(rs[0].t_done - t0 >= 45, "token source: the requests waited for the timer (%.0f ms)",
       rs[0].t_done - t0);
    get1(&f, ts1, f.api, &r);
    is_int(s1.fetches, 1, "token source: its token is cached");
    is_int(ta_auth_token_requests(f.auth), 1, "token source: no token request at the server");

    /* Fails: the waiting requests get its code and message. */
    src_init(&s2, &f, NULL, GAPI_EAUTH, "vault sealed: no token for you");
    gapi_credentials_token_source(&ts2, src_fetch, &s2, NULL);
    get_n(&f, ts2, f.api, rs, 3, NULL, 5000);
    for (i = 0, n = 0; i < 3; i++)
        n += rs[i].calls == 1 && rs[i].err == GAPI_EAUTH &&
             !strcmp(rs[i].errmsg, "vault sealed: no token for you");
    is_int(n, 3, "token source error: 3 requests fail with its code and message (%s)",
           rs[0].errmsg);
    is_int(s2.fetches, 1, "token source error: one fetch for the three");

    /* Another code passes through too; no token and no message. */
    src_init(&s3, &f, NULL, GAPI_ECREDENTIALS, NULL);
    s3.at_once = 1;
    gapi_credentials_token_source(&ts3, src_fetch, &s3, NULL);
    get1(&f, ts3, f.api, &r);
    ok(r.err == GAPI_ECREDENTIALS && r.errmsg[0],
       "token source at once, GAPI_ECREDENTIALS without a message: code kept, a message given "
       "(%s)",
       r.errmsg);

    /* Completes inside fetch. */
    src_init(&s4, &f, "ya29.t1", 0, NULL);
    s4.at_once = 1;
    gapi_credentials_token_source(&ts4, src_fetch, &s4, NULL);
    get1(&f, ts4, f.api, &r);
    ok(r.err == 0 && !strcmp(r.who, "ya29.t1"), "token source at once: 200 (%s)", r.errmsg);

    /* A token the API refuses: fetched again once, then the 401. */
    src_init(&s5, &f, BOGUS_TOK, 0, NULL);
    gapi_credentials_token_source(&ts5, src_fetch, &s5, NULL);
    get1(&f, ts5, f.api, &r);
    ok(r.err == 0 && r.status == 401 && r.attempts == 2,
       "refused source token: 401 after one retry (attempts %u)", r.attempts);
    is_int(s5.fetches, 2, "refused source token: fetched twice, not more");

    event_free(s1.ev);
    event_free(s2.ev);
    event_free(s3.ev);
    event_free(s4.ev);
    event_free(s5.ev);
    gapi_credentials_unref(u);
    gapi_credentials_unref(ts1);
    gapi_credentials_unref(ts2);
    gapi_credentials_unref(ts3);
    gapi_credentials_unref(ts4);
    gapi_credentials_unref(ts5);
    fx_free(&f, "token source");
}

/* ------------------------------------------------------------ review regressions */

typedef struct once_reader {
    int calls, after_eof;
    size_t left;
} once_reader;

static long read_once(void *buf, size_t len, void *arg)
{
    once_reader *o = arg;
    size_t n = o->left < len ? o->left : len;

    o->calls++;
    if (!o->left) {
        o->after_eof += o->calls > 2;
        return 0;
    }
    memset(buf, 'u', n);
    o->left -= n;
    return (long)n;
}

/* Fixed after review: a 401 must not resend a streamed body; a caller's
 * token must not inject headers; a silent token source must not hold
 * requests forever; a graceful shutdown must let waiting requests get
 * their token; the attempt hook must not see token requests. */
static void test_review_regressions(void)
{
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    gapi_credentials *sa, *bad = NULL, *silent = NULL;
    gapi_request *req;
    once_reader o;
    src s1, s2;
    res r, rs[20];
    int i, n, api_before;
    fx f;

    if (fx_server(&f, NULL) != 0) {
        ok(0, "review: setup");
        return;
    }
    co.stall_timeout_ms = 300;
    if (fx_client(&f, &co) != 0) {
        ok(0, "review: client");
        fx_free(&f, "review");
        return;
    }
    sa = make_sa(&f, NULL);

    /* The hook sees API attempts only, never the token request. */
    g_natt = 0;
    get1(&f, sa, f.api, &r);
    is_int(r.status, 200, "review: service account request 200");
    for (i = 0, n = 0; i < g_natt && i < MAX_SEEN; i++)
        n += g_att[i].api;
    ok(g_natt >= 1 && n == g_natt, "review: the attempt hook saw %d attempts, all to the API",
       g_natt);

    /* A streamed upload that meets a 401 is not sent again. */
    ta_auth_revoke_all(f.auth);
    memset(&o, 0, sizeof(o));
    o.left = 1000;
    memset(&r, 0, sizeof(r));
    r.f = &f;
    gapi_request_new(&req, f.cli, "POST", f.api);
    gapi_request_set_credentials(req, sa);
    gapi_request_set_body_reader(req, -1, "application/octet-stream", read_once, &o);
    n = f.done + 1;
    is_int(gapi_request_send(req, on_res, &r), 0, "review: streamed POST sent");
    tu_run_until(f.base, &f.done, n, 10000);
    ok(r.calls == 1 && r.err == 0 && r.status == 401 && r.attempts == 1,
       "review: streamed body + 401: the 401 is final, one attempt (status %d, attempts %u)",
       r.status, r.attempts);
    is_int(o.after_eof, 0, "review: the reader was not called again after its end");

    /* A token with CR LF from a caller's source fails instead of injecting. */
    src_init(&s1, &f, "abc\r\nX-Injected: yes", 0, NULL);
    s1.at_once = 1;
    gapi_credentials_token_source(&bad, src_fetch, &s1, NULL);
    api_before = (int)ta_auth_api_requests(f.auth);
    get1(&f, bad, f.api, &r);
    ok(r.err == GAPI_EAUTH && strstr(r.errmsg, "not allowed in a header"),
       "review: CR LF token refused with GAPI_EAUTH (%s)", r.errmsg);
    is_int((int)ta_auth_api_requests(f.auth), api_before, "review: nothing reached the API");

    /* A token source that never answers: the stall timeout (300 ms). */
    src_init(&s2, &f, NULL, 0, NULL);
    gapi_credentials_token_source(&silent, silent_fetch, &s2, NULL);
    get1(&f, silent, f.api, &r);
    ok(r.err == GAPI_EAUTH && strstr(r.errmsg, "did not answer within 300 ms"),
       "review: a silent token source fails its waiters (%s)", r.errmsg);
    gapi_token_request_done(s2.pending, 0, "late", 0, NULL); /* late: only freed */

    /* A POST that never left (connection refused) is retried although
     * POST is not idempotent: nothing was sent. */
    {
        char url[64];
        snprintf(url, sizeof(url), "https://127.0.0.1:%d/x", tu_closed_port());
        memset(&r, 0, sizeof(r));
        r.f = &f;
        gapi_request_new(&req, f.cli, "POST", url);
        gapi_request_set_retry(req, &g_fast);
        n = f.done + 1;
        gapi_request_send(req, on_res, &r);
        tu_run_until(f.base, &f.done, n, 10000);
        ok(r.err == GAPI_ECONNECT && r.attempts == 4,
           "review: refused POST retried (nothing was sent): %s after %u attempts",
           gapi_error_name(r.err), r.attempts);
    }

    /* Graceful shutdown while 20 requests wait for a fresh token. */
    {
        gapi_credentials *sa2 = make_sa(&f, NULL);
        ta_auth_set_token_delay(f.auth, 50);
        for (i = 0; i < 20; i++)
            send_req(&f, sa2, 1, f.api, &rs[i], NULL);
        gapi_client_shutdown(f.cli, 5000);
        tu_run_until(f.base, &f.done, f.done + 20, 10000);
        for (i = 0, n = 0; i < 20; i++)
            n += rs[i].calls == 1 && rs[i].err == 0 && rs[i].status == 200;
        is_int(n, 20, "review: drain lets 20 requests waiting for a token finish (%s)",
               rs[0].errmsg);
        ta_auth_set_token_delay(f.auth, 0);
        gapi_credentials_unref(sa2);
    }
    event_free(s1.ev);
    event_free(s2.ev);
    gapi_credentials_unref(sa);
    gapi_credentials_unref(bad);
    gapi_credentials_unref(silent);
    fx_free(&f, "review");
}

/* ------------------------------------------------------------ exactly once */

static void test_shutdown_cancel_deadline(void)
{
    gapi_credentials *sa, *tsrc = NULL;
    gapi_request *req = NULL, *mid = NULL;
    res *rs, r;
    src s;
    int i, n, rc;
    fx f;

    /* Client freed while 100 requests wait for a token. */
    if (fx_init(&f, "shutdown") != 0) {
        fx_free(&f, "shutdown");
        return;
    }
    if (!(rs = calloc(100, sizeof(*rs))))
        abort();
    sa = make_sa(&f, NULL);
    ta_auth_set_token_delay(f.auth, 2000);
    for (i = 0; i < 100; i++)
        send_req(&f, sa, 1, f.api, &rs[i], NULL);
    is_int(run_until_tokens(&f, 1, 3000), 0, "shutdown: the token request is at the server");
    is_int(f.done, 0, "shutdown: all 100 still waiting");
    gapi_client_free(f.cli);
    f.cli = NULL;
    for (i = 0, n = 0; i < 100; i++)
        n += rs[i].calls == 1 && rs[i].err == GAPI_ESHUTDOWN;
    is_int(n, 100, "shutdown: each of the 100 called once with GAPI_ESHUTDOWN (%s)", rs[0].errmsg);
    is_int(ta_auth_api_requests(f.auth), 0, "shutdown: none reached the API");
    gapi_credentials_unref(sa);
    fx_free(&f, "shutdown");

    /* A token source still holding its request when the client goes. */
    if (fx_init(&f, "shutdown, token source") != 0) {
        fx_free(&f, "shutdown, token source");
        free(rs);
        return;
    }
    memset(&s, 0, sizeof(s));
    s.f = &f;
    s.token = "ya29.never";
    s.ev = evtimer_new(f.base, src_timer, &s);
    gapi_credentials_token_source(&tsrc, src_fetch, &s, NULL);
    send_req(&f, tsrc, 1, f.api, &rs[0], NULL);
    while (!s.pending && f.done == 0)
        event_base_loop(f.base, EVLOOP_ONCE);
    evtimer_del(s.ev);
    ok(s.pending != NULL, "shutdown, token source: the fetch is under way");
    gapi_client_free(f.cli);
    f.cli = NULL;
    ok(rs[0].calls == 1 && rs[0].err == GAPI_ESHUTDOWN,
       "shutdown, token source: the request completed with GAPI_ESHUTDOWN");
    gapi_token_request_done(s.pending, 0, "ya29.late", 0, NULL); /* safe after the client */
    s.pending = NULL;
    ok(rs[0].calls == 1, "shutdown, token source: a late completion calls nobody");
    event_free(s.ev);
    gapi_credentials_unref(tsrc);
    fx_free(&f, "shutdown, token source");

    /* Cancel one of three waiting requests; a deadline that passes while
     * waiting. */
    if (fx_init(&f, "cancel") != 0) {
        fx_free(&f, "cancel");
        free(rs);
        return;
    }
    sa = make_sa(&f, NULL);
    ta_auth_set_token_delay(f.auth, 800);
    send_req(&f, sa, 1, f.api, &rs[0], NULL);
    send_req(&f, sa, 1, f.api, &rs[1], &mid);
    send_req(&f, sa, 1, f.api, &rs[2], NULL);
    is_int(run_until_tokens(&f, 1, 3000), 0, "cancel: the token request is at the server");
    rc = gapi_request_cancel(mid);
    is_int(rc, 0, "cancel: accepted while waiting for the token");
    is_int(rs[1].calls, 0, "cancel: no callback from inside the call");
    /* A request with a 200 ms deadline joins the wait. */
    if (gapi_request_new(&req, f.cli, "GET", f.api) == GAPI_OK) {
        memset(&r, 0, sizeof(r));
        r.f = &f;
        gapi_request_set_credentials(req, sa);
        gapi_request_set_timeouts(req, 0, 0, 200);
        r.t_sent = mono_ms();
        if (gapi_request_send(req, on_res, &r) != GAPI_OK)
            gapi_request_free(req);
    }
    tu_run_until(f.base, &f.done, 4, 5000);
    ok(rs[1].calls == 1 && rs[1].err == GAPI_ECANCELED, "cancel: GAPI_ECANCELED once (%s)",
       gapi_error_name(rs[1].err));
    ok(r.calls == 1 && r.err == GAPI_EDEADLINE && strstr(r.errmsg, "deadline"),
       "deadline while waiting for a token: GAPI_EDEADLINE once (%s)", r.errmsg);
    ok(r.t_done - r.t_sent >= 190 && r.t_done - r.t_sent < 750,
       "deadline: completed at its deadline, not the token's arrival (%.0f ms)",
       r.t_done - r.t_sent);
    ok(rs[0].calls == 1 && rs[0].err == 0 && !strcmp(rs[0].who, "ya29.t1") && rs[2].calls == 1 &&
           rs[2].err == 0 && !strcmp(rs[2].who, "ya29.t1"),
       "cancel: the two others went on with ya29.t1");
    is_int(ta_auth_api_requests(f.auth), 2, "cancel: two API requests");
    is_int(ta_auth_token_requests(f.auth), 1, "cancel: one token request");
    gapi_credentials_unref(sa);
    free(rs);
    fx_free(&f, "cancel");
}

/* ------------------------------------------------------------ API calls */

static void test_calls(void)
{
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    gapi_credentials *sa = NULL, *key = NULL;
    gapi_service *svc = NULL;
    gapi_request *req;
    char doc[1024], err[256] = "";
    res r;
    fx f;

    if (fx_server(&f, NULL) != 0) {
        ok(0, "calls: setup");
        fx_free(&f, "calls");
        return;
    }
    sa = make_sa(&f, NULL);
    co.credentials = sa;
    if (fx_client(&f, &co) != 0) {
        ok(0, "calls: client");
        gapi_credentials_unref(sa);
        fx_free(&f, "calls");
        return;
    }
    gapi_credentials_unref(sa); /* the client holds its own reference */
    snprintf(doc, sizeof(doc),
             "{\"kind\":\"discovery#restDescription\",\"name\":\"authtest\",\"version\":\"v1\","
             "\"rootUrl\":\"%s/\",\"servicePath\":\"api/v1/\",\"resources\":{\"items\":{"
             "\"methods\":{\"list\":{\"id\":\"authtest.items.list\",\"httpMethod\":\"GET\","
             "\"path\":\"items\",\"response\":{\"$ref\":\"Items\"}}}}},\"schemas\":{\"Items\":{"
             "\"id\":\"Items\",\"type\":\"object\"}}}",
             ts_server_origin(f.srv));
    is_int(gapi_service_from_json(&svc, doc, strlen(doc), NULL, err, sizeof(err)), 0,
           "calls: service built (%s)", err);

    /* A call carries the client's credentials. */
    is_int(gapi_call_newv(&req, f.cli, svc, "items.list", NULL, err, sizeof(err), (char *)NULL), 0,
           "calls: items.list built (%s)", err);
    memset(&r, 0, sizeof(r));
    r.f = &f;
    gapi_request_send(req, on_res, &r);
    tu_run_until(f.base, &f.done, 1, 10000);
    ok(r.err == 0 && r.status == 200 && !strcmp(r.who, "ya29.t1"),
       "calls: with the client's service account (%s, %s)", r.who, r.errmsg);
    is_int(ta_auth_token_requests(f.auth), 1, "calls: one token request");

    /* A low-level request does not. */
    send_req(&f, NULL, 0, f.api, &r, NULL);
    tu_run_until(f.base, &f.done, 2, 10000);
    ok(r.err == 0 && r.status == 401 && r.attempts == 1,
       "calls: a gapi_request_new request goes without the client's credentials (%d)", r.status);
    is_str(ta_auth_last_error(f.auth), "no credentials", "calls: the server saw none");

    /* A call told to go without: GAPI_EHTTP with Google's message. */
    gapi_call_newv(&req, f.cli, svc, "items.list", NULL, err, sizeof(err), (char *)NULL);
    gapi_request_set_credentials(req, NULL);
    memset(&r, 0, sizeof(r));
    r.f = &f;
    gapi_request_send(req, on_res, &r);
    tu_run_until(f.base, &f.done, 3, 10000);
    ok(r.err == GAPI_EHTTP && !strcmp(r.errmsg, "HTTP 401: Request had invalid authentication "
                                                "credentials. (authError)"),
       "calls: a call without credentials: GAPI_EHTTP \"%s\"", r.errmsg);

    /* A call with other credentials. */
    ta_auth_accept_api_key(f.auth, API_KEY);
    gapi_credentials_api_key(&key, API_KEY, NULL);
    gapi_call_newv(&req, f.cli, svc, "items.list", NULL, err, sizeof(err), (char *)NULL);
    gapi_request_set_credentials(req, key);
    memset(&r, 0, sizeof(r));
    r.f = &f;
    gapi_request_send(req, on_res, &r);
    tu_run_until(f.base, &f.done, 4, 10000);
    ok(r.err == 0 && !strcmp(r.who, "key"), "calls: per-request credentials replace the client's");

    /* The 401 refresh for a call. */
    ta_auth_revoke_all(f.auth);
    gapi_call_newv(&req, f.cli, svc, "items.list", NULL, err, sizeof(err), (char *)NULL);
    memset(&r, 0, sizeof(r));
    r.f = &f;
    gapi_request_send(req, on_res, &r);
    tu_run_until(f.base, &f.done, 5, 10000);
    ok(r.err == 0 && r.status == 200 && !strcmp(r.who, "ya29.t2") && r.attempts == 2,
       "calls: a revoked token is refreshed and the call retried (%s, %u)", r.who, r.attempts);
    gapi_credentials_unref(key);
    gapi_service_unref(svc);
    fx_free(&f, "calls");
}

/* ------------------------------------------------------------ allocation */

static long g_alloc_n, g_fail_at;
static int g_failed_one;

static void *t_malloc(size_t n)
{
    if (++g_alloc_n == g_fail_at) {
        g_failed_one = 1;
        return NULL;
    }
    return malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    if (++g_alloc_n == g_fail_at) {
        g_failed_one = 1;
        return NULL;
    }
    return realloc(p, n);
}

static void test_alloc_sweep(void)
{
    int runs = 0, refused = 0, cb_err = 0, bad = 0, finished = 0;
    char *text;
    fx f;

    if (fx_init(&f, "alloc") != 0) {
        fx_free(&f, "alloc");
        return;
    }
    text = text_of(sa_obj(f.token_uri));
    for (g_fail_at = 1; g_fail_at < 20000; g_fail_at++) {
        gapi_credentials *cr = NULL;
        char err[256] = "";
        int rc, target = f.done + 1;
        res r;

        runs++;
        g_alloc_n = 0;
        g_failed_one = 0;
        gapi_set_allocator(t_malloc, t_realloc, free);
        rc = gapi_credentials_from_json(&cr, text, strlen(text), NULL, err, sizeof(err));
        if (rc == GAPI_OK)
            rc = send_req(&f, cr, 1, f.api, &r, NULL);
        else if (rc != GAPI_ENOMEM || strcmp(err, "out of memory") != 0)
            bad++, diag("fail_at %ld: credentials: %s: %s", g_fail_at, gapi_error_name(rc), err);
        if (rc == GAPI_OK) {
            tu_run_until(f.base, &f.done, target, 10000);
            if (r.calls != 1)
                bad++, diag("fail_at %ld: %d callbacks", g_fail_at, r.calls);
            else if (r.err != 0 || r.status != 200) {
                cb_err++;
                if (!r.errmsg[0] || !g_failed_one)
                    bad++, diag("fail_at %ld: %s without a message or an allocation failure: %s",
                                g_fail_at, gapi_error_name(r.err), r.errmsg);
            }
        } else {
            refused++;
            if (rc != GAPI_ENOMEM)
                bad++, diag("fail_at %ld: refused with %s", g_fail_at, gapi_error_name(rc));
        }
        gapi_set_allocator(malloc, realloc, free);
        gapi_credentials_unref(cr);
        if (!g_failed_one) {
            finished = rc == GAPI_OK && r.err == 0 && r.status == 200;
            break;
        }
    }
    diag("alloc sweep: %d runs, %d refused with GAPI_ENOMEM, %d callbacks with an error", runs,
         refused, cb_err);
    ok(finished, "alloc: the run past the last allocation succeeds (after %d runs)", runs);
    ok(runs > 20, "alloc: the sweep covered the path (%d allocations)", runs - 1);
    is_int(bad, 0, "alloc: every failure is GAPI_ENOMEM or a callback with a message, once");
    free(text);
    fx_free(&f, "alloc");
}

/* ------------------------------------------------------------ main */

int main(void)
{
    double t0 = mono_ms();
    char *priv = tap_shared_path("jose/derived/rfc7515-A.2-key.pkcs8.pem");
    char *pub = priv ? tap_shared_path("jose/derived/rfc7515-A.2-key.spki.pem") : NULL;

    signal(SIGPIPE, SIG_IGN);
    tu_watchdog(300);
    if (!pub) {
        free(priv);
        return tap_done();
    }
    g_priv_pem = slurp(priv);
    g_pub_pem = slurp(pub);
    free(priv);
    free(pub);
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/gapi-test-auth-XXXXXX");
    if (!g_priv_pem || !g_pub_pem || !mkdtemp(g_tmp)) {
        ok(0, "read the RFC 7515 A.2 keys and make a scratch directory");
        return tap_done();
    }

    test_api_key_and_fixed_token();
    test_service_account();
    test_single_flight();
    test_expiry_and_refresh_ahead();
    test_401_retry();
    test_token_outage();
    test_authorized_user();
    test_metadata();
    test_self_signed();
    test_adc();
    test_malformed();
    test_token_source();
    test_shutdown_cancel_deadline();
    test_review_regressions();
    test_calls();
    test_alloc_sweep();

    ok(g_collected > 100, "secrets: %u messages and attempt reasons collected", g_collected);
    is_int(g_leaks, 0, "secrets: no token, JWT, refresh token, client secret or key in any");

    rm_tree(g_tmp);
    free(g_priv_pem);
    free(g_pub_pem);
    diag("total %.0f ms", mono_ms() - t0);
    return tap_done();
}
