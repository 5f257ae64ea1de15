/*
 * Discovery documents from the network and the on-disk cache
 * (gapi_service_fetch, gapi_service_fetch_sync), against the in-process
 * HTTPS server on 127.0.0.1 serving ../shared/discovery/storage.v1.json.
 *
 * Server hit counts prove which URLs were requested (and that a cache hit
 * requests nothing); each outcome is checked for its exact error code and
 * for a message that names the URLs tried; every callback must run exactly
 * once and never from inside the call; every test ends with no events left
 * on its base. The cache is checked on disk (mode, contents, no temporary
 * files left) in a directory made with mkdtemp and removed at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "gapi.h"
#include "discovery/fetch.h"
#include "server.h"
#include "tap.h"
#include "util.h"

static char *g_doc; /* storage.v1.json */
static size_t g_doc_len;
static char g_tmp[512]; /* mkdtemp directory, removed at exit */

#define PRIMARY_PATH  "/discovery/v1/apis/storage/v1/rest"
#define FALLBACK_PATH "/$discovery/rest"
#define JSON_CT       "Content-Type: application/json; charset=UTF-8\r\n"

/* A small valid document: few allocations, for the allocation-failure runs. */
static const char MINI_DOC[] =
    "{\"kind\":\"discovery#restDescription\",\"name\":\"mini\",\"version\":\"v1\","
    "\"rootUrl\":\"https://mini.googleapis.com/\",\"servicePath\":\"mini/v1/\","
    "\"resources\":{\"things\":{\"methods\":{\"get\":{\"id\":\"mini.things.get\","
    "\"httpMethod\":\"GET\",\"path\":\"things/{id}\",\"parameters\":{\"id\":{\"type\":"
    "\"string\",\"location\":\"path\",\"required\":true}}}}}}}";

/* ------------------------------------------------------------ helpers */

static char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!fp)
        return NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, fp) == (size_t)n) {
            buf[n] = '\0';
            *len = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(fp);
    return buf;
}

static int write_file(const char *path, const char *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ssize_t w;

    if (fd < 0)
        return -1;
    w = write(fd, data, len);
    close(fd);
    return w == (ssize_t)len ? 0 : -1;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_rf(const char *p)
{
    nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The names in dir: how many entries, how many hidden (temporary), and the
 * path of the last visible one (into last, if not NULL). */
static int list_dir(const char *dir, int *hidden, char *last, size_t last_size)
{
    struct dirent *de;
    DIR *d = opendir(dir);
    int n = 0;

    *hidden = 0;
    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (de->d_name[0] == '.') {
            (*hidden)++;
            continue;
        }
        n++;
        if (last)
            snprintf(last, last_size, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    return n;
}

static int file_equals(const char *path, const char *data, size_t len)
{
    size_t n = 0;
    char *b = read_all(path, &n);
    int eq = b && n == len && memcmp(b, data, len) == 0;

    free(b);
    return eq;
}

static void set_age(const char *path, long seconds)
{
    struct timeval tv[2];

    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= seconds;
    tv[1] = tv[0];
    utimes(path, tv);
}

/* Does svc match the model built from the same bytes in memory? */
static int same_service(const gapi_service *svc, const char *doc, size_t len)
{
    gapi_service *ref = NULL;
    char err[256];
    size_t i;
    int same;

    if (!svc || gapi_service_from_json(&ref, doc, len, NULL, err, sizeof(err)) != GAPI_OK)
        return 0;
    same = !strcmp(gapi_service_name(svc), gapi_service_name(ref)) &&
           !strcmp(gapi_service_version(svc), gapi_service_version(ref)) &&
           !strcmp(gapi_service_root_url(svc), gapi_service_root_url(ref)) &&
           !strcmp(gapi_service_path(svc), gapi_service_path(ref)) &&
           gapi_service_method_count(svc) == gapi_service_method_count(ref) &&
           gapi_service_param_count(svc) == gapi_service_param_count(ref) &&
           gapi_service_schema_count(svc) == gapi_service_schema_count(ref) &&
           gapi_service_method_count(svc) > 0;
    for (i = 0; same && i < gapi_service_method_count(svc); i++) {
        const gapi_method *a = gapi_service_method_at(svc, i), *b = gapi_service_method_at(ref, i);
        same = !strcmp(gapi_method_name(a), gapi_method_name(b)) &&
               !strcmp(gapi_method_id(a), gapi_method_id(b)) &&
               !strcmp(gapi_method_path(a), gapi_method_path(b)) &&
               gapi_method_param_count(a) == gapi_method_param_count(b);
    }
    gapi_service_unref(ref);
    return same;
}

/* ------------------------------------------------------------ fixture */

typedef struct fx {
    struct event_base *base;
    ts_server *srv;
    gapi_client *cli;
    gapi_service_fetch_options o;
    char primary[256];  /* template */
    char fallback[256]; /* template */
    int in_call;        /* set around gapi_service_fetch */
    int reentered;      /* a callback ran inside it */
} fx;

typedef struct outcome {
    fx *f;
    int calls;
    int err;
    gapi_service *svc;
    char msg[2048];
    int free_client; /* free the client from inside the callback */
} outcome;

static int fx_setup(fx *f, const ts_options *so)
{
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    gapi_service_fetch_options d = GAPI_SERVICE_FETCH_OPTIONS_INIT;
    char err[256];

    memset(f, 0, sizeof(*f));
    f->base = event_base_new();
    if (!(f->srv = ts_server_new(f->base, so)))
        return -1;
    co.ca_pem = ts_server_ca_pem(f->srv);
    if (gapi_client_new(&f->cli, f->base, &co, err, sizeof(err)) != GAPI_OK) {
        diag("gapi_client_new: %s", err);
        return -1;
    }
    snprintf(f->primary, sizeof(f->primary), "%s/discovery/v1/apis/{api}/{version}/rest",
             ts_server_origin(f->srv));
    snprintf(f->fallback, sizeof(f->fallback), "%s/$discovery/rest?version={version}",
             ts_server_origin(f->srv));
    f->o = d;
    f->o.discovery_url = f->primary;
    f->o.fallback_url = f->fallback;
    return 0;
}

static void fx_teardown(fx *f, const char *name)
{
    gapi_client_free(f->cli);
    ts_server_free(f->srv);
    is_int(tu_events_left(f->base), 0, "%s: no events left on the base", name);
    ok(!f->reentered, "%s: no callback ran inside gapi_service_fetch", name);
    event_base_free(f->base);
}

static void on_fetched(gapi_service *svc, int err, const char *errmsg, void *arg)
{
    outcome *o = arg;

    o->calls++;
    if (o->f->in_call)
        o->f->reentered = 1;
    o->err = err;
    if (o->svc)
        gapi_service_unref(o->svc); /* a second call would be a bug; keep no leak */
    o->svc = svc;
    snprintf(o->msg, sizeof(o->msg), "%s", errmsg ? errmsg : "(null)");
    if (o->free_client) {
        gapi_client_free(o->f->cli);
        o->f->cli = NULL;
    }
}

static void outcome_reset(outcome *o, fx *f)
{
    gapi_service_unref(o->svc);
    memset(o, 0, sizeof(*o));
    o->f = f;
}

/* Start a fetch of api/version; returns gapi_service_fetch's code. */
static int start(fx *f, outcome *o, const char *api, const char *version, char *errbuf,
                 size_t errbuf_size)
{
    int rc;

    outcome_reset(o, f);
    f->in_call = 1;
    rc = gapi_service_fetch(f->cli, api, version, &f->o, errbuf, errbuf_size, on_fetched, o);
    f->in_call = 0;
    return rc;
}

/* Fetch storage v1 and wait for the callback; returns the start code. */
static int fetch_storage(fx *f, outcome *o)
{
    char err[512];
    int rc = start(f, o, "storage", "v1", err, sizeof(err));

    if (rc != GAPI_OK) {
        diag("gapi_service_fetch: %s: %s", gapi_error_name(rc), err);
        return rc;
    }
    if (o->calls != 0)
        diag("callback ran inside gapi_service_fetch");
    tu_run_until(f->base, &o->calls, 1, 10000);
    return rc;
}

/* ------------------------------------------------------------ pure parts */

static void test_units(void)
{
    gapi_service_fetch_options o = GAPI_SERVICE_FETCH_OPTIONS_INIT;
    static const char *bad[] = {"",    "a/b",   "..",   ".hidden",  "a..b", "a\nb",
                                "a b", "a%2fb", "a\\b", "\xc3\xa9", "a?b",  "{api}",
                                "a#b", "a\x7f", "a:b",  "~a"};
    static const char *good[] = {"storage", "v1", "directory_v1", "v1beta1", "v2.1", "a-b"};
    char *out = NULL, *urls[2] = {NULL, NULL};
    char *p1, *p2, *p3, err[256], longname[GAPI__FETCH_NAME_MAX + 2];
    size_t i;
    int allbad = 1, allgood = 1;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (gapi__fetch_check_name("api", bad[i], err, sizeof(err)) != GAPI_EINVAL ||
            !strstr(err, "api")) {
            diag("accepted or no message: \"%s\" (%s)", bad[i], err);
            allbad = 0;
        }
    }
    ok(allbad, "names: %zu bad names refused with a message naming the parameter",
       sizeof(bad) / sizeof(bad[0]));
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (gapi__fetch_check_name("version", good[i], err, sizeof(err)) != 0) {
            diag("refused: %s (%s)", good[i], err);
            allgood = 0;
        }
    ok(allgood, "names: real API names and versions accepted");
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    is_int(gapi__fetch_check_name("api", longname, err, sizeof(err)), GAPI_EINVAL,
           "names: %d characters refused", GAPI__FETCH_NAME_MAX + 1);
    longname[GAPI__FETCH_NAME_MAX] = '\0';
    is_int(gapi__fetch_check_name("api", longname, err, sizeof(err)), 0,
           "names: %d characters accepted", GAPI__FETCH_NAME_MAX);
    gapi__fetch_check_name("version", "a/b", err, sizeof(err));
    ok(strstr(err, "version") && strstr(err, "0x2f") && strstr(err, "offset 1"),
       "names: message names parameter, character and offset (%s)", err);

    is_int(gapi__fetch_expand(&out, "t", "x/{api}/{version}/{apiVersion}?v={version}", "drive",
                              "v3", err, sizeof(err)),
           0, "expand: ok");
    is_str(out, "x/drive/v3/v3?v=v3", "expand: every placeholder replaced");
    free(out);
    out = NULL;
    is_int(gapi__fetch_expand(&out, "options.discovery_url", "x/{apiversion}", "a", "b", err,
                              sizeof(err)),
           GAPI_EINVAL, "expand: unknown placeholder refused");
    ok(strstr(err, "options.discovery_url") && strstr(err, "offset 2"),
       "expand: message names the template and offset (%s)", err);
    is_int(gapi__fetch_expand(&out, "t", "x}", "a", "b", err, sizeof(err)), GAPI_EINVAL,
           "expand: stray '}' refused");
    is_int(gapi__fetch_expand(&out, "t", "x/{api", "a", "b", err, sizeof(err)), GAPI_EINVAL,
           "expand: unterminated placeholder refused");
    ok(out == NULL, "expand: nothing allocated on failure");

    /* Default URLs: Python's DISCOVERY_URI, then V2_DISCOVERY_URI. */
    is_int(gapi__fetch_urls(urls, NULL, "storage", "v1", "googleapis.com", err, sizeof(err)), 0,
           "urls: defaults");
    is_str(urls[0], "https://www.googleapis.com/discovery/v1/apis/storage/v1/rest",
           "urls: discovery service first");
    is_str(urls[1], "https://storage.googleapis.com/$discovery/rest?version=v1",
           "urls: the API's own $discovery URL as fallback");
    free(urls[0]);
    free(urls[1]);
    is_int(gapi__fetch_urls(urls, NULL, "pubsub", "v1", "example-universe.goog", err, sizeof(err)),
           0, "urls: other universe");
    is_str(urls[0], "https://www.example-universe.goog/discovery/v1/apis/pubsub/v1/rest",
           "urls: universe domain replaces googleapis.com (primary)");
    is_str(urls[1], "https://pubsub.example-universe.goog/$discovery/rest?version=v1",
           "urls: universe domain replaces googleapis.com (fallback)");
    free(urls[0]);
    free(urls[1]);
    o.discovery_url = "https://127.0.0.1:1/d/{api}/{version}";
    is_int(gapi__fetch_urls(urls, &o, "a", "b", "googleapis.com", err, sizeof(err)), 0,
           "urls: explicit discovery_url");
    is_str(urls[0], "https://127.0.0.1:1/d/a/b", "urls: template expanded");
    ok(urls[1] == NULL, "urls: an explicit discovery_url alone has no fallback (as Python)");
    free(urls[0]);
    o.fallback_url = "https://127.0.0.1:1/f?v={version}";
    gapi__fetch_urls(urls, &o, "a", "b", "googleapis.com", err, sizeof(err));
    is_str(urls[1], "https://127.0.0.1:1/f?v=b", "urls: explicit fallback");
    free(urls[0]);
    free(urls[1]);
    o.discovery_url = NULL;
    o.fallback_url = "";
    gapi__fetch_urls(urls, &o, "a", "b", "googleapis.com", err, sizeof(err));
    ok(urls[0] && urls[1] == NULL, "urls: \"\" disables the default fallback");
    free(urls[0]);
    o.fallback_url = NULL;
    o.discovery_url = "ftp://x/{api}";
    is_int(gapi__fetch_urls(urls, &o, "a", "b", "googleapis.com", err, sizeof(err)), GAPI_EINVAL,
           "urls: non-http URL refused");
    ok(strstr(err, "options.discovery_url") != NULL, "urls: message names the option (%s)", err);
    o.discovery_url = "https://h/{api}";
    o.fallback_url = "https://h/{nope}";
    is_int(gapi__fetch_urls(urls, &o, "a", "b", "googleapis.com", err, sizeof(err)), GAPI_EINVAL,
           "urls: bad fallback template refused");
    ok(strstr(err, "options.fallback_url") != NULL, "urls: message names the fallback (%s)", err);

    /* Cache names: per api, version and URLs. */
    {
        const char *const a[2] = {"https://h/d/storage/v1", "https://f/storage"};
        const char *const b[2] = {"https://other/d/storage/v1", "https://f/storage"};
        const char *const c[2] = {"https://h/d/storage/v1", NULL};
        const char *base;

        p1 = gapi__fetch_cache_path("/c", "storage", "v1", a);
        p2 = gapi__fetch_cache_path("/c", "storage", "v1", b);
        p3 = gapi__fetch_cache_path("/c", "storage", "v1", c);
        ok(p1 && p2 && p3 && strcmp(p1, p2) && strcmp(p1, p3) && strcmp(p2, p3),
           "cache name: another base URL or fallback gives another entry");
        base = p1 ? p1 + 3 : "";
        ok(p1 && !strncmp(p1, "/c/storage.v1.", 14) && strlen(p1) == 14 + 32 + 5 &&
               strspn(p1 + 14, "0123456789abcdef") == 32 && !strcmp(p1 + 46, ".json"),
           "cache name: DIR/API.VERSION.<32 hex>.json (%s)", base);
        free(p2);
        p2 = gapi__fetch_cache_path("/c", "storage", "v1", a);
        is_str(p2, p1, "cache name: stable");
        free(p1);
        free(p2);
        free(p3);
    }
}

/* ------------------------------------------------------------ network */

static void test_primary(void)
{
    gapi_service_options so = GAPI_SERVICE_OPTIONS_INIT;
    char root[256];
    outcome o;
    fx f;

    memset(&o, 0, sizeof(o));
    if (fx_setup(&f, NULL) != 0) {
        ok(0, "primary: setup");
        return;
    }
    ts_route(f.srv, PRIMARY_PATH, 200, JSON_CT, g_doc);
    is_int(fetch_storage(&f, &o), GAPI_OK, "primary: fetch accepted");
    is_int(o.calls, 1, "primary: callback once");
    is_int(o.err, GAPI_OK, "primary: success (%s)", o.msg);
    ok(same_service(o.svc, g_doc, g_doc_len),
       "primary: model equals gapi_service_from_json of the same bytes");
    is_str(gapi_service_name(o.svc), "storage", "primary: name");
    is_str(o.msg, "", "primary: empty message on success");
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), 1, "primary: one request to the primary URL");
    is_int(ts_server_hits(f.srv, FALLBACK_PATH), 0, "primary: none to the fallback");
    is_str(ts_last_method(f.srv, PRIMARY_PATH), "GET", "primary: GET");

    /* Service options reach the loader. */
    snprintf(root, sizeof(root), "%s/", ts_server_origin(f.srv));
    so.endpoint = root;
    f.o.service = &so;
    fetch_storage(&f, &o);
    is_int(o.err, GAPI_OK, "primary: with an endpoint override (%s)", o.msg);
    is_str(gapi_service_root_url(o.svc), root, "primary: endpoint override applied to the model");
    f.o.service = NULL;
    outcome_reset(&o, &f);
    fx_teardown(&f, "primary");
}

static const char *g_fallback_query;

static void fallback_handler(struct evhttp_request *req, void *arg)
{
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    struct evbuffer *b = evbuffer_new();

    (void)arg;
    g_fallback_query = q && !strcmp(q, "version=v1") ? "version=v1" : "other";
    evbuffer_add(b, g_doc, g_doc_len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void test_fallback(void)
{
    outcome o;
    fx f;

    memset(&o, 0, sizeof(o));
    if (fx_setup(&f, NULL) != 0) {
        ok(0, "fallback: setup");
        return;
    }
    g_fallback_query = NULL;
    ts_route_handler(f.srv, FALLBACK_PATH, fallback_handler, NULL);
    /* No route for the primary path: the server answers 404. */
    fetch_storage(&f, &o);
    is_int(o.calls, 1, "fallback: callback once");
    is_int(o.err, GAPI_OK, "fallback: success after a 404 (%s)", o.msg);
    ok(same_service(o.svc, g_doc, g_doc_len), "fallback: model from the fallback's body");
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), 1, "fallback: primary requested once");
    is_int(ts_server_hits(f.srv, FALLBACK_PATH), 1, "fallback: fallback requested once");
    is_str(g_fallback_query, "version=v1", "fallback: ?version=v1 sent");
    is_str(o.msg, "", "fallback: the primary's 404 is not reported on success");

    /* A 5xx from the primary also falls back. */
    ts_route(f.srv, PRIMARY_PATH, 503, JSON_CT,
             "{\"error\":{\"code\":503,\"message\":\"backend unavailable\"}}");
    fetch_storage(&f, &o);
    is_int(o.err, GAPI_OK, "fallback: success after a 503 (%s)", o.msg);
    is_int(ts_server_hits(f.srv, FALLBACK_PATH), 2, "fallback: used after a 503");

    /* No fallback configured: the primary's status is final. */
    f.o.fallback_url = "";
    fetch_storage(&f, &o);
    is_int(o.err, GAPI_EHTTP, "fallback: disabled: GAPI_EHTTP");
    ok(strstr(o.msg, "503") && strstr(o.msg, "backend unavailable"),
       "fallback: disabled: status and Google's message (%s)", o.msg);
    is_int(ts_server_hits(f.srv, FALLBACK_PATH), 2, "fallback: disabled: not requested");
    outcome_reset(&o, &f);
    fx_teardown(&f, "fallback");
}

static void test_both_fail(void)
{
    char u0[300], u1[300];
    outcome o;
    fx f;

    memset(&o, 0, sizeof(o));
    if (fx_setup(&f, NULL) != 0) {
        ok(0, "both fail: setup");
        return;
    }
    fetch_storage(&f, &o);
    is_int(o.calls, 1, "both fail: callback once");
    is_int(o.err, GAPI_EHTTP, "both fail: GAPI_EHTTP");
    ok(o.svc == NULL, "both fail: no service");
    snprintf(u0, sizeof(u0), "%s" PRIMARY_PATH, ts_server_origin(f.srv));
    snprintf(u1, sizeof(u1), "%s" FALLBACK_PATH "?version=v1", ts_server_origin(f.srv));
    ok(strstr(o.msg, u0) && strstr(o.msg, u1), "both fail: message names both URLs (%s)", o.msg);
    ok(strstr(o.msg, "404") != NULL, "both fail: message has the status");
    ok(strstr(o.msg, u0) < strstr(o.msg, u1), "both fail: in the order tried");
    is_int(ts_server_hits(f.srv, PRIMARY_PATH) + ts_server_hits(f.srv, FALLBACK_PATH), 2,
           "both fail: two requests");
    outcome_reset(&o, &f);
    fx_teardown(&f, "both fail");
}

static void test_invalid(void)
{
    static const struct {
        const char *ct;
        const char *body;
        const char *name;
    } cases[] = {
        {JSON_CT, "{\"name\":\"storage\",", "truncated JSON"},
        {"Content-Type: text/plain\r\n", "<html>not json</html>", "HTML"},
        {JSON_CT, "{\"kind\":\"storage#bucket\",\"id\":\"b\"}", "JSON, not a discovery document"},
        {JSON_CT, "", "empty body"},
    };
    char first[2048] = "";
    outcome o;
    size_t i;
    fx f;

    memset(&o, 0, sizeof(o));
    if (fx_setup(&f, NULL) != 0) {
        ok(0, "invalid: setup");
        return;
    }
    ts_route(f.srv, FALLBACK_PATH, 200, JSON_CT, g_doc);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ts_route(f.srv, PRIMARY_PATH, 200, cases[i].ct, cases[i].body);
        fetch_storage(&f, &o);
        is_int(o.err, GAPI_EDISCOVERY, "invalid %s: GAPI_EDISCOVERY", cases[i].name);
        ok(strstr(o.msg, PRIMARY_PATH) && strstr(o.msg, "not a valid discovery document"),
           "invalid %s: message names the URL (%s)", cases[i].name, o.msg);
        if (i == 0)
            snprintf(first, sizeof(first), "%s", o.msg);
    }
    ok(strstr(first, "offset") || strstr(first, "line"),
       "invalid: the loader's message says where (%s)", first);
    is_int(ts_server_hits(f.srv, FALLBACK_PATH), 0,
           "invalid: a 2xx with a bad body does not fall back");
    outcome_reset(&o, &f);
    fx_teardown(&f, "invalid");
}

static void test_transport_errors(void)
{
    ts_options so = TS_OPTIONS_INIT;
    char tmpl[256], u[256];
    outcome o;
    fx f;

    memset(&o, 0, sizeof(o));
    so.cert = TS_CERT_UNTRUSTED;
    if (fx_setup(&f, &so) != 0) {
        ok(0, "tls: setup");
        return;
    }
    ts_route(f.srv, PRIMARY_PATH, 200, JSON_CT, g_doc);
    fetch_storage(&f, &o);
    is_int(o.calls, 1, "tls: callback once");
    is_int(o.err, GAPI_ETLSVERIFY, "tls: untrusted certificate is GAPI_ETLSVERIFY");
    snprintf(u, sizeof(u), "%s" PRIMARY_PATH, ts_server_origin(f.srv));
    ok(strstr(o.msg, u) && strstr(o.msg, "certificate"), "tls: message names URL and why (%s)",
       o.msg);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), 0, "tls: no request reached the server");
    outcome_reset(&o, &f);
    fx_teardown(&f, "tls");

    if (fx_setup(&f, NULL) != 0) {
        ok(0, "refused: setup");
        return;
    }
    ts_route(f.srv, FALLBACK_PATH, 200, JSON_CT, g_doc);
    snprintf(tmpl, sizeof(tmpl), "https://127.0.0.1:%d/d/{api}/{version}", tu_closed_port());
    f.o.discovery_url = tmpl;
    fetch_storage(&f, &o);
    is_int(o.err, GAPI_ECONNECT, "refused: GAPI_ECONNECT");
    ok(strstr(o.msg, "https://127.0.0.1:") && strstr(o.msg, "/d/storage/v1") &&
           strstr(o.msg, "refused"),
       "refused: message names the URL (%s)", o.msg);
    is_int(ts_server_hits(f.srv, FALLBACK_PATH), 0, "refused: transport errors do not fall back");
    outcome_reset(&o, &f);
    fx_teardown(&f, "refused");
}

/* ------------------------------------------------------------ cache */

static void test_cache(void)
{
    static const struct {
        const char *name;
        const char *data;
        size_t len; /* 0: strlen */
    } bad[] = {
        {"garbage", "\x01\x02 garbage \xff\xfe", 0},
        {"valid JSON, not a discovery document", "{\"kind\":\"discovery#restDescription\"}", 0},
        {"a JSON array", "[1,2,3]", 0},
        {"empty", "", 0},
    };
    char dir[600], entry[700], other[700], blocker[600], bad_dir[700];
    unsigned hits = 0;
    struct stat st;
    int hidden, n;
    size_t i;
    outcome o;
    fx f;

    memset(&o, 0, sizeof(o));
    if (fx_setup(&f, NULL) != 0) {
        ok(0, "cache: setup");
        return;
    }
    ts_route(f.srv, PRIMARY_PATH, 200, JSON_CT, g_doc);
    snprintf(dir, sizeof(dir), "%s/cache", g_tmp);
    f.o.cache_dir = dir;

    /* 1. Miss: fetched and written. */
    fetch_storage(&f, &o);
    is_int(o.err, GAPI_OK, "cache: first fetch (%s)", o.msg);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), ++hits, "cache: first fetch requested");
    ok(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700,
       "cache: directory made with mode 0700");
    n = list_dir(dir, &hidden, entry, sizeof(entry));
    is_int(n, 1, "cache: one entry written");
    is_int(hidden, 0, "cache: no temporary file left");
    ok(strstr(entry, "/storage.v1.") && strstr(entry, ".json"), "cache: entry name (%s)", entry);
    ok(lstat(entry, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600,
       "cache: regular file, mode 0600 (%o)", (unsigned)(st.st_mode & 0777));
    ok(file_equals(entry, g_doc, g_doc_len), "cache: holds the document as served");

    /* 2. Hit: no request, same model, still later than the call. */
    fetch_storage(&f, &o);
    is_int(o.err, GAPI_OK, "cache: hit (%s)", o.msg);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), hits, "cache: hit makes no request");
    ok(same_service(o.svc, g_doc, g_doc_len), "cache: hit gives the same model");

    /* 3. Expired (default max age, one day): refetched and rewritten. */
    set_age(entry, 86400 + 60);
    fetch_storage(&f, &o);
    is_int(o.err, GAPI_OK, "cache: expired entry (%s)", o.msg);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), ++hits, "cache: expired entry refetched");
    ok(stat(entry, &st) == 0 && time(NULL) - st.st_mtime < 60, "cache: entry rewritten");
    set_age(entry, 86400 - 600);
    fetch_storage(&f, &o);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), hits, "cache: under a day old is used");

    /* 4. cache_max_age_s. */
    f.o.cache_max_age_s = 30;
    set_age(entry, 60);
    fetch_storage(&f, &o);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), ++hits, "cache: older than cache_max_age_s");
    fetch_storage(&f, &o);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), hits, "cache: younger than cache_max_age_s");
    f.o.cache_max_age_s = 0;

    /* 5. Corrupt entries are ignored, refetched and replaced. */
    write_file(entry, g_doc, g_doc_len / 2, 0600);
    fetch_storage(&f, &o);
    is_int(o.err, GAPI_OK, "cache: truncated entry ignored (%s)", o.msg);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), ++hits, "cache: truncated entry refetched");
    ok(file_equals(entry, g_doc, g_doc_len), "cache: truncated entry replaced");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(entry, bad[i].data, bad[i].len ? bad[i].len : strlen(bad[i].data), 0600);
        fetch_storage(&f, &o);
        is_int(o.err, GAPI_OK, "cache: %s entry ignored (%s)", bad[i].name, o.msg);
        is_int(ts_server_hits(f.srv, PRIMARY_PATH), ++hits, "cache: %s entry refetched",
               bad[i].name);
        ok(file_equals(entry, g_doc, g_doc_len), "cache: %s entry replaced", bad[i].name);
        ok(same_service(o.svc, g_doc, g_doc_len), "cache: %s: model from the network", bad[i].name);
    }

    /* 6. Entries others could have written are not trusted. */
    chmod(entry, 0620);
    fetch_storage(&f, &o);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), ++hits, "cache: group-writable entry ignored");
    ok(stat(entry, &st) == 0 && (st.st_mode & 0777) == 0600, "cache: replaced with mode 0600");
    snprintf(other, sizeof(other), "%s/elsewhere.json", g_tmp);
    write_file(other, g_doc, g_doc_len, 0600);
    unlink(entry);
    if (symlink(other, entry) != 0)
        diag("symlink: %s", strerror(errno));
    fetch_storage(&f, &o);
    is_int(o.err, GAPI_OK, "cache: symlinked entry (%s)", o.msg);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), ++hits, "cache: symlinked entry not followed");
    ok(lstat(entry, &st) == 0 && S_ISREG(st.st_mode), "cache: symlink replaced by a file");
    ok(file_equals(other, g_doc, g_doc_len), "cache: the symlink's target untouched");

    /* 6b. One of our entries renamed onto another's name (same owner, mode
     * and age) is not taken for it: the document must be the named one. */
    {
        static const char other_doc[] = "{\"name\":\"evil\",\"version\":\"v1\","
                                        "\"rootUrl\":\"https://evil.example/\"}";
        write_file(entry, other_doc, sizeof(other_doc) - 1, 0600);
        fetch_storage(&f, &o);
        is_int(o.err, GAPI_OK, "cache: entry of another API (%s)", o.msg);
        is_int(ts_server_hits(f.srv, PRIMARY_PATH), ++hits,
               "cache: entry of another API refetched");
        ok(same_service(o.svc, g_doc, g_doc_len), "cache: ...and the model is storage's");
    }
    /* 6c. A cache directory others may write is neither read nor written. */
    chmod(dir, 0770);
    fetch_storage(&f, &o);
    is_int(o.err, GAPI_OK, "cache: group-writable directory: fetch succeeds (%s)", o.msg);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), ++hits, "cache: group-writable directory not read");
    ok(strstr(o.msg, "only we may write") != NULL, "cache: ...and says why (%s)", o.msg);
    chmod(dir, 0700);
    fetch_storage(&f, &o);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), hits, "cache: mode 0700 again: hit");

    /* 7. Another deployment (other URLs) gets its own entry. */
    fetch_storage(&f, &o);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), hits, "cache: hit before changing URLs");
    f.o.fallback_url = "";
    fetch_storage(&f, &o);
    is_int(o.err, GAPI_OK, "cache: other URLs (%s)", o.msg);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), ++hits, "cache: other URLs miss");
    is_int(list_dir(dir, &hidden, NULL, 0), 2, "cache: two entries now");
    f.o.fallback_url = f.fallback;

    /* 8. An unusable cache directory does not fail the fetch. */
    snprintf(blocker, sizeof(blocker), "%s/not-a-dir", g_tmp);
    write_file(blocker, "x", 1, 0600);
    snprintf(bad_dir, sizeof(bad_dir), "%s/cache", blocker);
    f.o.cache_dir = bad_dir;
    fetch_storage(&f, &o);
    is_int(o.err, GAPI_OK, "cache: unwritable directory: fetch succeeds");
    ok(o.svc && same_service(o.svc, g_doc, g_doc_len), "cache: unwritable directory: model");
    ok(strstr(o.msg, "cache") && strstr(o.msg, bad_dir), "cache: unwritable: reported (%s)", o.msg);
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), ++hits, "cache: unwritable: fetched");
    snprintf(bad_dir, sizeof(bad_dir), "%s/missing/parent", g_tmp);
    fetch_storage(&f, &o);
    is_int(o.err, GAPI_OK, "cache: missing parent: fetch succeeds (%s)", o.msg);
    is_int(list_dir(dir, &hidden, NULL, 0), 2, "cache: still two entries");
    is_int(hidden, 0, "cache: no temporary file left at the end");
    f.o.cache_dir = NULL;
    outcome_reset(&o, &f);
    fx_teardown(&f, "cache");
}

/* ------------------------------------------------------------ arguments */

static void test_args(void)
{
    gapi_service_fetch_options bad = GAPI_SERVICE_FETCH_OPTIONS_INIT;
    gapi_service_options sbad = GAPI_SERVICE_OPTIONS_INIT;
    gapi_service *svc = NULL;
    char err[512];
    outcome o;
    fx f;

    memset(&o, 0, sizeof(o));
    if (fx_setup(&f, NULL) != 0) {
        ok(0, "args: setup");
        return;
    }
    err[0] = '\0';
    is_int(gapi_service_fetch(NULL, "storage", "v1", NULL, err, sizeof(err), on_fetched, &o),
           GAPI_EINVAL, "args: NULL client");
    ok(strstr(err, "client") != NULL, "args: message (%s)", err);
    is_int(gapi_service_fetch(f.cli, "storage", "v1", NULL, err, sizeof(err), NULL, NULL),
           GAPI_EINVAL, "args: NULL callback");
    ok(strstr(err, "callback") != NULL, "args: message (%s)", err);
    is_int(start(&f, &o, NULL, "v1", err, sizeof(err)), GAPI_EINVAL, "args: NULL api");
    is_int(start(&f, &o, "../etc", "v1", err, sizeof(err)), GAPI_EINVAL, "args: api with '/'");
    ok(strstr(err, "api") != NULL, "args: message names api (%s)", err);
    is_int(start(&f, &o, "storage", "v1/../../x", err, sizeof(err)), GAPI_EINVAL,
           "args: version with '/'");
    ok(strstr(err, "version") != NULL, "args: message names version (%s)", err);
    is_int(start(&f, &o, "storage", "v1\r\nHost: x", err, sizeof(err)), GAPI_EINVAL,
           "args: control characters in version");
    is_int(gapi_service_fetch(f.cli, "storage", "v1", &f.o, NULL, 0, on_fetched, &o), GAPI_OK,
           "args: NULL errbuf accepted");
    tu_run_until(f.base, &o.calls, 1, 10000);
    is_int(o.calls, 1, "args: that fetch completes");
    is_int(o.err, GAPI_EHTTP, "args: (nothing routed: GAPI_EHTTP)");
    outcome_reset(&o, &f);
    bad.version = 99;
    is_int(gapi_service_fetch(f.cli, "storage", "v1", &bad, err, sizeof(err), on_fetched, &o),
           GAPI_EINVAL, "args: options version");
    ok(strstr(err, "GAPI_SERVICE_FETCH_OPTIONS_VERSION") != NULL, "args: message (%s)", err);
    bad.version = GAPI_SERVICE_FETCH_OPTIONS_VERSION;
    sbad.version = 42;
    bad.service = &sbad;
    is_int(gapi_service_fetch(f.cli, "storage", "v1", &bad, err, sizeof(err), on_fetched, &o),
           GAPI_EINVAL, "args: service options version");
    ok(strstr(err, "options.service") != NULL, "args: message (%s)", err);
    sbad.version = GAPI_SERVICE_OPTIONS_VERSION;
    sbad.universe_domain = "bad domain";
    is_int(gapi_service_fetch(f.cli, "storage", "v1", &bad, err, sizeof(err), on_fetched, &o),
           GAPI_EINVAL, "args: bad universe domain");
    bad.service = NULL;
    bad.discovery_url = "https://h/{api}/{ver}";
    is_int(gapi_service_fetch(f.cli, "storage", "v1", &bad, err, sizeof(err), on_fetched, &o),
           GAPI_EINVAL, "args: unknown placeholder");
    ok(strstr(err, "options.discovery_url") != NULL, "args: message (%s)", err);
    bad.discovery_url = "https://h/{api}";
    bad.cache_dir = "";
    is_int(gapi_service_fetch(f.cli, "storage", "v1", &bad, err, sizeof(err), on_fetched, &o),
           GAPI_EINVAL, "args: empty cache_dir");
    ok(strstr(err, "cache_dir") != NULL, "args: message (%s)", err);
    /* The blocking form on the loop thread (this thread runs f's loop). */
    is_int(gapi_service_fetch_sync(&svc, f.cli, "storage", "v1", &f.o, 1000, err, sizeof(err)),
           GAPI_EDEADLK, "args: fetch_sync on the loop thread: GAPI_EDEADLK");
    ok(strstr(err, "loop thread") != NULL, "args: message (%s)", err);
    ok(svc == NULL, "args: *out untouched");
    is_int(gapi_service_fetch_sync(NULL, f.cli, "storage", "v1", NULL, 0, err, sizeof(err)),
           GAPI_EINVAL, "args: fetch_sync without out");
    is_int(o.calls, 0, "args: no callback for refused calls");

    gapi_client_shutdown(f.cli, 0);
    is_int(start(&f, &o, "storage", "v1", err, sizeof(err)), GAPI_ESHUTDOWN,
           "args: after shutdown: GAPI_ESHUTDOWN");
    ok(strstr(err, "shut down") != NULL, "args: message (%s)", err);
    tu_run_for(f.base, 20);
    outcome_reset(&o, &f);
    fx_teardown(&f, "args");
}

/* ------------------------------------------------------------ shutdown */

static void wait_hits(fx *f, const char *path, unsigned n)
{
    int i;

    for (i = 0; i < 500 && ts_server_hits(f->srv, path) < n; i++)
        tu_run_for(f->base, 10);
}

static void test_free_in_flight(void)
{
    char dir[600], err[256];
    outcome o;
    fx f;

    memset(&o, 0, sizeof(o));
    /* Primary stalls: free with the fetch in flight. */
    if (fx_setup(&f, NULL) != 0) {
        ok(0, "free: setup");
        return;
    }
    ts_route_fault(f.srv, PRIMARY_PATH, TS_FAULT_STALL_BEFORE_HEADERS, 0);
    is_int(start(&f, &o, "storage", "v1", err, sizeof(err)), GAPI_OK, "free: fetch accepted");
    wait_hits(&f, PRIMARY_PATH, 1);
    is_int(o.calls, 0, "free: still in flight");
    gapi_client_free(f.cli);
    f.cli = NULL;
    is_int(o.calls, 1, "free: callback once, before gapi_client_free returned");
    is_int(o.err, GAPI_ESHUTDOWN, "free: GAPI_ESHUTDOWN");
    ok(strstr(o.msg, PRIMARY_PATH) != NULL, "free: message names the URL (%s)", o.msg);
    tu_run_for(f.base, 10);
    is_int(o.calls, 1, "free: no second callback");
    outcome_reset(&o, &f);
    fx_teardown(&f, "free in flight");

    /* Primary 404, fallback stalls: free during the second request. */
    if (fx_setup(&f, NULL) != 0) {
        ok(0, "free fallback: setup");
        return;
    }
    ts_route_fault(f.srv, FALLBACK_PATH, TS_FAULT_STALL_BEFORE_HEADERS, 0);
    start(&f, &o, "storage", "v1", err, sizeof(err));
    wait_hits(&f, FALLBACK_PATH, 1);
    gapi_client_free(f.cli);
    f.cli = NULL;
    is_int(o.calls, 1, "free fallback: callback once");
    is_int(o.err, GAPI_ESHUTDOWN, "free fallback: GAPI_ESHUTDOWN");
    ok(strstr(o.msg, PRIMARY_PATH) && strstr(o.msg, FALLBACK_PATH),
       "free fallback: message names both URLs (%s)", o.msg);
    outcome_reset(&o, &f);
    fx_teardown(&f, "free during fallback");

    /* A cache hit not yet delivered when the client is freed. */
    if (fx_setup(&f, NULL) != 0) {
        ok(0, "free cache hit: setup");
        return;
    }
    ts_route(f.srv, PRIMARY_PATH, 200, JSON_CT, g_doc);
    snprintf(dir, sizeof(dir), "%s/cache-free", g_tmp);
    f.o.cache_dir = dir;
    fetch_storage(&f, &o);
    is_int(o.err, GAPI_OK, "free cache hit: primed (%s)", o.msg);
    is_int(start(&f, &o, "storage", "v1", err, sizeof(err)), GAPI_OK, "free cache hit: accepted");
    is_int(o.calls, 0, "free cache hit: not delivered inside the call");
    gapi_client_free(f.cli);
    f.cli = NULL;
    is_int(o.calls, 1, "free cache hit: delivered once by gapi_client_free");
    is_int(o.err, GAPI_OK, "free cache hit: the completed result is delivered");
    ok(o.svc != NULL, "free cache hit: with its service");
    is_int(ts_server_hits(f.srv, PRIMARY_PATH), 1, "free cache hit: no request");
    outcome_reset(&o, &f);
    fx_teardown(&f, "free with a cache hit pending");

    /* Freed from inside the fetch callback. */
    if (fx_setup(&f, NULL) != 0) {
        ok(0, "free in callback: setup");
        return;
    }
    ts_route(f.srv, PRIMARY_PATH, 200, JSON_CT, g_doc);
    start(&f, &o, "storage", "v1", err, sizeof(err));
    o.free_client = 1;
    tu_run_until(f.base, &o.calls, 1, 10000);
    is_int(o.calls, 1, "free in callback: callback once");
    is_int(o.err, GAPI_OK, "free in callback: success");
    ok(f.cli == NULL, "free in callback: freed");
    tu_run_for(f.base, 10);
    outcome_reset(&o, &f);
    fx_teardown(&f, "free in callback");
}

/* ------------------------------------------------------------ blocking form */

static struct {
    struct event_base *base;
    ts_server *srv;
    pthread_t thread;
    int stop_pipe[2];
    struct event *stop_ev;
} S;

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    char c;

    (void)what;
    (void)arg;
    if (read(fd, &c, 1) == 1)
        event_base_loopbreak(S.base);
}

static void *server_main(void *arg)
{
    (void)arg;
    event_base_dispatch(S.base);
    return NULL;
}

static int server_start(void)
{
    S.base = event_base_new();
    if (!(S.srv = ts_server_new(S.base, NULL)) || pipe(S.stop_pipe) != 0)
        return -1;
    S.stop_ev = event_new(S.base, S.stop_pipe[0], EV_READ, on_stop, NULL);
    event_add(S.stop_ev, NULL);
    pthread_create(&S.thread, NULL, server_main, NULL);
    return 0;
}

static void server_stop(void)
{
    if (write(S.stop_pipe[1], "x", 1) == 1)
        pthread_join(S.thread, NULL);
    event_free(S.stop_ev);
    ts_server_free(S.srv);
    event_base_loop(S.base, EVLOOP_NONBLOCK);
    is_int(tu_events_left(S.base), 0, "sync: no events left on the server's base");
    event_base_free(S.base);
    close(S.stop_pipe[0]);
    close(S.stop_pipe[1]);
}

typedef struct sync_job {
    gapi_client *cli;
    const gapi_service_fetch_options *o;
    unsigned timeout_ms;
    int rc;
    gapi_service *svc;
    char msg[2048];
    long elapsed_ms;
} sync_job;

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void *sync_worker(void *arg)
{
    sync_job *j = arg;
    long t0 = now_ms();

    j->svc = NULL;
    j->rc = gapi_service_fetch_sync(&j->svc, j->cli, "storage", "v1", j->o, j->timeout_ms, j->msg,
                                    sizeof(j->msg));
    j->elapsed_ms = now_ms() - t0;
    return NULL;
}

static void run_worker(sync_job *j)
{
    pthread_t t;

    pthread_create(&t, NULL, sync_worker, j);
    pthread_join(t, NULL);
}

/* On the owned loop thread, from a request's callback: the blocking form
 * must refuse, the async form must work there. */
typedef struct loop_probe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gapi_client *cli;
    const gapi_service_fetch_options *o;
    int sync_rc;
    char sync_msg[256];
    int async_rc;
    int fetched; /* async callbacks run */
    int fetch_err;
    int on_loop_ok;
} loop_probe;

static void probe_fetched(gapi_service *svc, int err, const char *errmsg, void *arg)
{
    loop_probe *p = arg;

    (void)errmsg;
    gapi_service_unref(svc);
    pthread_mutex_lock(&p->mu);
    p->fetched++;
    p->fetch_err = err;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void probe_cb(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    loop_probe *p = arg;
    gapi_service *svc = NULL;
    char e[256];

    (void)req;
    (void)err;
    (void)resp;
    p->sync_rc = gapi_service_fetch_sync(&svc, p->cli, "storage", "v1", p->o, 1000, p->sync_msg,
                                         sizeof(p->sync_msg));
    p->async_rc = gapi_service_fetch(p->cli, "storage", "v1", p->o, e, sizeof(e), probe_fetched, p);
    if (p->async_rc != GAPI_OK)
        probe_fetched(NULL, p->async_rc, e, p);
}

static void test_sync(void)
{
    gapi_service_fetch_options o = GAPI_SERVICE_FETCH_OPTIONS_INIT;
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    char primary[256], fallback[256], slow[256], dir[600], err[256], url[256];
    gapi_client *cli = NULL;
    gapi_request *req = NULL;
    loop_probe p;
    sync_job j;

    if (server_start() != 0) {
        ok(0, "sync: server");
        return;
    }
    co.ca_pem = ts_server_ca_pem(S.srv);
    if (gapi_client_start(&cli, &co, err, sizeof(err)) != GAPI_OK) {
        ok(0, "sync: gapi_client_start (%s)", err);
        server_stop();
        return;
    }
    snprintf(primary, sizeof(primary), "%s/discovery/v1/apis/{api}/{version}/rest",
             ts_server_origin(S.srv));
    snprintf(fallback, sizeof(fallback), "%s/$discovery/rest?version={version}",
             ts_server_origin(S.srv));
    o.discovery_url = primary;
    o.fallback_url = fallback;
    ts_route(S.srv, FALLBACK_PATH, 200, JSON_CT, g_doc);

    memset(&j, 0, sizeof(j));
    j.cli = cli;
    j.o = &o;
    j.timeout_ms = 10000;
    run_worker(&j);
    is_int(j.rc, GAPI_OK, "sync: worker thread fetch (%s)", j.msg);
    ok(same_service(j.svc, g_doc, g_doc_len), "sync: model equals the in-memory one");
    is_str(j.msg, "", "sync: empty message on success");
    is_int(ts_server_hits(S.srv, PRIMARY_PATH), 1, "sync: primary tried (404)");
    is_int(ts_server_hits(S.srv, FALLBACK_PATH), 1, "sync: fallback used");
    gapi_service_unref(j.svc);

    /* With a cache: the second call reads it, on the worker. */
    snprintf(dir, sizeof(dir), "%s/cache-sync", g_tmp);
    o.cache_dir = dir;
    run_worker(&j);
    is_int(j.rc, GAPI_OK, "sync: with cache, miss (%s)", j.msg);
    gapi_service_unref(j.svc);
    run_worker(&j);
    is_int(j.rc, GAPI_OK, "sync: with cache, hit (%s)", j.msg);
    ok(same_service(j.svc, g_doc, g_doc_len), "sync: cached model");
    is_int(ts_server_hits(S.srv, FALLBACK_PATH), 2, "sync: the hit made no request");
    gapi_service_unref(j.svc);
    o.cache_dir = NULL;

    /* Both fail. */
    ts_route(S.srv, FALLBACK_PATH, 410, JSON_CT, "{\"error\":{\"code\":410,\"message\":\"gone\"}}");
    run_worker(&j);
    is_int(j.rc, GAPI_EHTTP, "sync: both fail: GAPI_EHTTP");
    ok(strstr(j.msg, PRIMARY_PATH) && strstr(j.msg, FALLBACK_PATH) && strstr(j.msg, "410") &&
           strstr(j.msg, "gone"),
       "sync: both fail: message names both URLs and the status (%s)", j.msg);
    ok(j.svc == NULL, "sync: *out untouched on failure");

    /* Timeout covers the whole fetch. */
    snprintf(slow, sizeof(slow), "%s/slow/{api}/{version}", ts_server_origin(S.srv));
    ts_route(S.srv, "/slow/storage/v1", 200, JSON_CT, g_doc);
    ts_route_delay(S.srv, "/slow/storage/v1", 3000);
    o.discovery_url = slow;
    o.fallback_url = "";
    j.timeout_ms = 200;
    run_worker(&j);
    is_int(j.rc, GAPI_ETIMEDOUT, "sync: GAPI_ETIMEDOUT");
    ok(j.elapsed_ms >= 150 && j.elapsed_ms < 2500, "sync: returned after ~200 ms (%ld ms)",
       j.elapsed_ms);
    ok(strstr(j.msg, "/slow/storage/v1") != NULL, "sync: timeout message names the URL (%s)",
       j.msg);
    o.discovery_url = primary;
    o.fallback_url = fallback;
    ts_route(S.srv, FALLBACK_PATH, 200, JSON_CT, g_doc);

    /* The async form is for the loop thread only. */
    err[0] = '\0';
    is_int(gapi_service_fetch(cli, "storage", "v1", &o, err, sizeof(err), probe_fetched, &p),
           GAPI_EINVAL, "sync: async form refused off the loop thread");
    ok(strstr(err, "loop thread") != NULL, "sync: message (%s)", err);

    /* On the owned loop thread (inside a request callback). */
    memset(&p, 0, sizeof(p));
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    p.cli = cli;
    p.o = &o;
    snprintf(url, sizeof(url), "%s/ping", ts_server_origin(S.srv));
    ts_route(S.srv, "/ping", 200, NULL, "pong");
    if (gapi_request_new(&req, cli, "GET", url) == GAPI_OK &&
        gapi_request_submit(req, probe_cb, &p) == GAPI_OK) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 10;
        pthread_mutex_lock(&p.mu);
        while (!p.fetched && pthread_cond_timedwait(&p.cv, &p.mu, &ts) == 0)
            ;
        pthread_mutex_unlock(&p.mu);
    } else {
        gapi_request_free(req);
    }
    is_int(p.sync_rc, GAPI_EDEADLK, "sync: on the owned loop thread: GAPI_EDEADLK");
    ok(strstr(p.sync_msg, "loop thread") != NULL, "sync: message (%s)", p.sync_msg);
    is_int(p.async_rc, GAPI_OK, "sync: the async form works on the owned loop thread");
    is_int(p.fetched, 1, "sync: its callback ran once");
    is_int(p.fetch_err, GAPI_OK, "sync: and succeeded");

    gapi_client_free(cli);
    j.cli = NULL;
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    server_stop();
}

/* ------------------------------------------------------------ allocation failure */

static long g_fail_at = -1; /* fail the allocation with this number */
static long g_allocs;

static void *f_malloc(size_t n)
{
    if (++g_allocs == g_fail_at)
        return NULL;
    return malloc(n);
}

static void *f_realloc(void *p, size_t n)
{
    if (++g_allocs == g_fail_at)
        return NULL;
    return realloc(p, n);
}

/* Fail each allocation in turn until a run completes without reaching
 * the failure point. Every run must end exactly once, in success or
 * GAPI_ENOMEM, with nothing leaked (ASan / valgrind check that). */
static void alloc_runs(fx *f, const char *name, const char *entry)
{
    int bad = 0, enomem = 0, runs = 0, done = 0;
    char err[512];
    outcome o;
    long n;
    int rc;

    memset(&o, 0, sizeof(o));
    for (n = 1; n < 5000 && !done; n++) {
        if (entry)
            unlink(entry);
        g_allocs = 0;
        g_fail_at = n;
        rc = start(f, &o, "mini", "v1", err, sizeof(err));
        if (rc == GAPI_OK)
            tu_run_until(f->base, &o.calls, 1, 10000);
        g_fail_at = -1;
        runs++;
        if (rc != GAPI_OK) {
            if (rc != GAPI_ENOMEM || o.calls != 0) {
                diag("%s: run %ld: start %s (%s)", name, n, gapi_error_name(rc), err);
                bad++;
            }
            enomem++;
        } else if (o.calls != 1 || (o.err != GAPI_OK && o.err != GAPI_ENOMEM) ||
                   (o.err == GAPI_OK) != (o.svc != NULL)) {
            diag("%s: run %ld: %d calls, %s (%s)", name, n, o.calls, gapi_error_name(o.err), o.msg);
            bad++;
        } else if (o.err == GAPI_ENOMEM) {
            enomem++;
        } else if (g_allocs < n) {
            done = 1; /* no allocation failed: the whole path was covered */
        }
        outcome_reset(&o, f);
    }
    ok(done, "alloc %s: a run without failure reached after %d runs", name, runs);
    is_int(bad, 0, "alloc %s: every run ends once, in success or GAPI_ENOMEM", name);
    ok(enomem > 0, "alloc %s: %d runs failed with GAPI_ENOMEM", name, enomem);
}

static void test_alloc_failures(void)
{
    char dir[600], entry[700];
    int hidden;
    outcome o;
    fx f;

    memset(&o, 0, sizeof(o));
    if (fx_setup(&f, NULL) != 0) {
        ok(0, "alloc: setup");
        return;
    }
    ts_route(f.srv, "/discovery/v1/apis/mini/v1/rest", 200, JSON_CT, MINI_DOC);
    snprintf(dir, sizeof(dir), "%s/cache-alloc", g_tmp);
    f.o.cache_dir = dir;
    /* Prime the cache and find the entry's name. */
    start(&f, &o, "mini", "v1", NULL, 0);
    tu_run_until(f.base, &o.calls, 1, 10000);
    is_int(o.err, GAPI_OK, "alloc: primed (%s)", o.msg);
    list_dir(dir, &hidden, entry, sizeof(entry));
    outcome_reset(&o, &f);

    gapi_set_allocator(f_malloc, f_realloc, free);
    alloc_runs(&f, "network + cache write", entry);
    alloc_runs(&f, "cache hit", NULL);
    gapi_set_allocator(malloc, realloc, free);
    is_int(list_dir(dir, &hidden, NULL, 0), 1, "alloc: one cache entry");
    is_int(hidden, 0, "alloc: no temporary file left by failed runs");
    f.o.cache_dir = NULL;
    fx_teardown(&f, "alloc");
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    char *path;

    signal(SIGPIPE, SIG_IGN);
    tu_watchdog(300);
    test_units();
    path = tap_shared_path("discovery/storage.v1.json");
    if (!path)
        return tap_done();
    g_doc = read_all(path, &g_doc_len);
    free(path);
    if (!ok(g_doc != NULL, "storage.v1.json read"))
        return tap_done();
    snprintf(g_tmp, sizeof(g_tmp), "%s/gapi-fetch-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(g_tmp)) {
        ok(0, "mkdtemp %s: %s", g_tmp, strerror(errno));
        return tap_done();
    }
    test_primary();
    test_fallback();
    test_both_fail();
    test_invalid();
    test_transport_errors();
    test_cache();
    test_args();
    test_free_in_flight();
    test_sync();
    test_alloc_failures();
    rm_rf(g_tmp);
    ok(access(g_tmp, F_OK) != 0, "temporary directory removed");
    free(g_doc);
    return tap_done();
}
