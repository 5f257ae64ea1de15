/*
 * API calls end to end against the in-process HTTPS test server, which
 * plays Cloud Storage: it serves storage.v1.json from ../shared with its
 * rootUrl pointing at the server itself, and answers objects.get,
 * objects.insert and a three-page objects.list. The client loads the
 * document over HTTPS with gapi_service_fetch (the network loader, its
 * discovery URL pointed at the server), then makes calls; the test checks what the server received
 * (method, path, query, headers, body) and what the callbacks got, including Google error bodies
 * turned into GAPI_EHTTP, the page walker (all pages, a stop, a failing page) and a call completed
 * through a future. Every test checks each callback ran once and no event is left on the base.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

#include "gapi.h"
#include "server.h"
#include "tap.h"
#include "util.h"

/* ------------------------------------------------------------ fixture */

typedef struct seen {
    int n;
    char method[16];
    char uri[1024];
    char ua[256], api_client[256], accept[128], accept_encoding[64], ctype[128];
    char body[2048];
    size_t body_len;
} seen;

typedef struct fx {
    struct event_base *base;
    ts_server *srv;
    gapi_client *cli;
    gapi_service *svc;
    int done;
    seen get, list[8], insert;
    int nlist;
    int fail_page; /* the list page (1-based) that answers 500; 0: none */
} fx;

static void record(seen *s, struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    const char *v;

    s->n++;
    snprintf(s->method, sizeof(s->method), "%s",
             evhttp_request_get_command(req) == EVHTTP_REQ_POST  ? "POST"
             : evhttp_request_get_command(req) == EVHTTP_REQ_GET ? "GET"
                                                                 : "OTHER");
    snprintf(s->uri, sizeof(s->uri), "%s", evhttp_request_get_uri(req));
#define HDR(field, name)                                                                           \
    v = evhttp_find_header(h, name);                                                               \
    snprintf(s->field, sizeof(s->field), "%s", v ? v : "(none)");
    HDR(ua, "User-Agent")
    HDR(api_client, "x-goog-api-client")
    HDR(accept, "Accept")
    HDR(accept_encoding, "Accept-Encoding")
    HDR(ctype, "Content-Type")
#undef HDR
    s->body_len = evbuffer_get_length(b);
    if (s->body_len >= sizeof(s->body))
        s->body_len = sizeof(s->body) - 1;
    evbuffer_copyout(b, s->body, s->body_len);
    s->body[s->body_len] = '\0';
}

static void reply(struct evhttp_request *req, int status, const char *ctype, const char *body)
{
    struct evbuffer *out = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evbuffer_add(out, body, strlen(body));
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", out);
    evbuffer_free(out);
}

static void on_get(struct evhttp_request *req, void *arg)
{
    fx *f = arg;

    record(&f->get, req);
    reply(req, 200, "application/json; charset=UTF-8",
          "{\"kind\":\"storage#object\",\"bucket\":\"bkt\",\"name\":\"dir/a b+\",\"size\":\"3\"}");
}

/* GET: objects.list, three pages; POST: objects.insert. */
static void on_objects(struct evhttp_request *req, void *arg)
{
    fx *f = arg;
    struct evkeyvalq q;
    const char *tok, *query;
    int page;

    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        record(&f->insert, req);
        reply(req, 200, "application/json", "{\"kind\":\"storage#object\",\"name\":\"new obj\"}");
        return;
    }
    if (f->nlist < 8)
        record(&f->list[f->nlist], req);
    f->nlist++;
    query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    memset(&q, 0, sizeof(q));
    evhttp_parse_query_str(query ? query : "", &q);
    tok = evhttp_find_header(&q, "pageToken");
    page = !tok ? 1 : strcmp(tok, "p2 +/=") == 0 ? 2 : strcmp(tok, "p3") == 0 ? 3 : 0;
    if (page && page == f->fail_page)
        reply(req, 500, "text/plain", "backend exploded\nstack trace...");
    else if (page == 1)
        reply(req, 200, "application/json",
              "{\"items\":[{\"name\":\"a1\"},{\"name\":\"a2\"}],\"nextPageToken\":\"p2 +/=\"}");
    else if (page == 2)
        reply(req, 200, "application/json",
              "{\"items\":[{\"name\":\"a3\"},{\"name\":\"a4\"}],\"nextPageToken\":\"p3\"}");
    else if (page == 3)
        reply(req, 200, "application/json", "{\"items\":[{\"name\":\"a5\"}]}");
    else
        reply(req, 400, "application/json",
              "{\"error\":{\"code\":400,\"message\":\"bad page token\"}}");
    evhttp_clear_headers(&q);
}

typedef struct res {
    fx *f;
    int calls, err, status;
    char errmsg[256];
    char body[2048];
    char gmsg[256], greason[64], gstatus[64];
    int gcode;
    size_t gcount;
} res;

static void on_done(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    res *r = arg;
    const gapi_google_error *ge = gapi_request_google_error(req);
    size_t len = 0;
    const char *b;

    r->calls++;
    r->f->done++;
    r->err = err;
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", gapi_request_errmsg(req));
    r->status = gapi_response_status(resp);
    b = gapi_response_body(resp, &len);
    snprintf(r->body, sizeof(r->body), "%.*s", (int)len, b);
    if (ge) {
        snprintf(r->gmsg, sizeof(r->gmsg), "%s",
                 gapi_google_error_message(ge) ? gapi_google_error_message(ge) : "(null)");
        snprintf(r->greason, sizeof(r->greason), "%s",
                 gapi_google_error_reason(ge, 0) ? gapi_google_error_reason(ge, 0) : "(null)");
        snprintf(r->gstatus, sizeof(r->gstatus), "%s",
                 gapi_google_error_status(ge) ? gapi_google_error_status(ge) : "(null)");
        r->gcode = gapi_google_error_code(ge);
        r->gcount = gapi_google_error_count(ge);
    }
}

typedef struct fetched {
    fx *f;
    gapi_service *svc;
    int err;
    char msg[512];
} fetched;

static void on_fetched(gapi_service *svc, int err, const char *errmsg, void *arg)
{
    fetched *fr = arg;
    fr->svc = svc;
    fr->err = err;
    snprintf(fr->msg, sizeof(fr->msg), "%s", errmsg ? errmsg : "");
    fr->f->done++;
}

/* The storage document with its rootUrl replaced by the server's origin. */
static char *local_document(const char *origin)
{
    char *path = tap_shared_path("discovery/storage.v1.json");
    struct json_object *doc, *root;
    char url[256], *text = NULL;

    if (!path)
        return NULL;
    doc = json_object_from_file(path);
    free(path);
    if (!doc)
        return NULL;
    snprintf(url, sizeof(url), "%s/", origin);
    root = json_object_new_string(url);
    json_object_object_add(doc, "rootUrl", root);
    json_object_object_del(doc, "mtlsRootUrl");
    text = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
    json_object_put(doc);
    return text;
}

static int fx_setup(fx *f)
{
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    gapi_service_fetch_options fo = GAPI_SERVICE_FETCH_OPTIONS_INIT;
    char err[256], url[256];
    fetched fr;
    char *doc;

    memset(f, 0, sizeof(*f));
    f->base = event_base_new();
    if (!(f->srv = ts_server_new(f->base, NULL)))
        return -1;
    co.ca_pem = ts_server_ca_pem(f->srv);
    if (gapi_client_new(&f->cli, f->base, &co, err, sizeof(err)) != GAPI_OK) {
        diag("gapi_client_new: %s", err);
        return -1;
    }
    if (!(doc = local_document(ts_server_origin(f->srv))))
        return -1;
    ts_route(f->srv, "/discovery/v1/apis/storage/v1/rest", 200,
             "Content-Type: application/json; charset=UTF-8\r\n", doc);
    free(doc);
    ts_route_handler(f->srv, "/storage/v1/b/bkt/o/dir%2Fa%20b%2B", on_get, f);
    ts_route_handler(f->srv, "/storage/v1/b/bkt/o", on_objects, f);

    /* The document comes over HTTPS through the client itself, with the
     * network loader (Python's build()), pointed at this server. */
    snprintf(url, sizeof(url), "%s/discovery/v1/apis/{api}/{version}/rest",
             ts_server_origin(f->srv));
    fo.discovery_url = url;
    fo.fallback_url = "";
    memset(&fr, 0, sizeof(fr));
    fr.f = f;
    if (gapi_service_fetch(f->cli, "storage", "v1", &fo, err, sizeof(err), on_fetched, &fr) !=
        GAPI_OK) {
        diag("gapi_service_fetch: %s", err);
        return -1;
    }
    tu_run_until(f->base, &f->done, 1, 5000);
    f->done = 0;
    if (fr.err != GAPI_OK || !fr.svc) {
        diag("fetching the document: %s: %s", gapi_error_name(fr.err), fr.msg);
        return -1;
    }
    f->svc = fr.svc;
    ok(strcmp(gapi_service_root_url(f->svc), ts_server_origin(f->srv)) > 0 &&
           ts_server_hits(f->srv, "/discovery/v1/apis/storage/v1/rest") >= 1,
       "setup: service fetched from the server's discovery URL");
    return 0;
}

static void fx_teardown(fx *f, const char *name)
{
    gapi_service_unref(f->svc);
    gapi_client_free(f->cli);
    ts_server_free(f->srv);
    is_int(tu_events_left(f->base), 0, "%s: no events left on the base", name);
    event_base_free(f->base);
}

static const char *origin_path(fx *f, const char *url)
{
    size_t n = strlen(ts_server_origin(f->srv));
    return strncmp(url, ts_server_origin(f->srv), n) == 0 ? url + n : url;
}

/* ------------------------------------------------------------ tests */

static void test_get_and_insert(void)
{
    struct json_object *body;
    gapi_request *req = NULL;
    char err[256];
    fx f;
    res r;
    int rc;

    if (fx_setup(&f) != 0) {
        ok(0, "get/insert: setup");
        return;
    }
    ok(strncmp(gapi_service_root_url(f.svc), "https://127.0.0.1:", 18) == 0,
       "service root URL is the test server (%s)", gapi_service_root_url(f.svc));

    /* objects.get */
    rc = gapi_call_newv(&req, f.cli, f.svc, "objects.get", NULL, err, sizeof(err), "bucket", "bkt",
                        "object", "dir/a b+", "projection", "noAcl", (char *)NULL);
    is_int(rc, 0, "objects.get built (%s)", err);
    is_str(origin_path(&f, gapi_request_url(req)),
           "/storage/v1/b/bkt/o/dir%2Fa%20b%2B?alt=json&projection=noAcl", "objects.get URL");
    memset(&r, 0, sizeof(r));
    r.f = &f;
    is_int(gapi_request_send(req, on_done, &r), 0, "objects.get sent");
    tu_run_until(f.base, &f.done, 1, 5000);
    is_int(r.calls, 1, "objects.get: one callback");
    is_int(r.err, 0, "objects.get: success (%s)", r.errmsg);
    is_int(r.status, 200, "objects.get: 200");
    ok(strstr(r.body, "\"name\":\"dir/a b+\"") != NULL, "objects.get: the object's JSON");
    is_int(f.get.n, 1, "server: one objects.get");
    is_str(f.get.method, "GET", "server: GET");
    is_str(f.get.uri, "/storage/v1/b/bkt/o/dir%2Fa%20b%2B?alt=json&projection=noAcl",
           "server: path and query as built");
    is_str(f.get.ua, "gapi/" GAPI_VERSION_STRING " (gzip)", "server: user-agent with (gzip)");
    ok(strncmp(f.get.api_client, "gl-c/", 5) == 0 &&
           strstr(f.get.api_client, " gdcl/" GAPI_VERSION_STRING),
       "server: x-goog-api-client %s", f.get.api_client);
    is_str(f.get.accept, "application/json", "server: accept");
    is_str(f.get.accept_encoding, "gzip, deflate", "server: accept-encoding");
    is_str(f.get.ctype, "(none)", "server: no content type without a body");

    /* objects.insert with a JSON body */
    body = json_tokener_parse("{\"name\":\"new obj\",\"contentType\":\"text/plain\","
                              "\"metadata\":{\"k\":\"v/w\",\"u\":\"\\u00e9\"}}");
    rc = gapi_call_newv(&req, f.cli, f.svc, "objects.insert", body, err, sizeof(err), "bucket",
                        "bkt", "name", "new obj", "ifGenerationMatch", "0", (char *)NULL);
    is_int(rc, 0, "objects.insert built (%s)", err);
    memset(&r, 0, sizeof(r));
    r.f = &f;
    f.done = 0;
    gapi_request_send(req, on_done, &r);
    tu_run_until(f.base, &f.done, 1, 5000);
    is_int(r.err, 0, "objects.insert: success (%s)", r.errmsg);
    is_int(f.insert.n, 1, "server: one objects.insert");
    is_str(f.insert.method, "POST", "server: POST");
    is_str(f.insert.uri, "/storage/v1/b/bkt/o?alt=json&ifGenerationMatch=0&name=new%20obj",
           "server: insert query");
    is_str(f.insert.ctype, "application/json", "server: content type application/json");
    is_str(f.insert.body,
           "{\"name\":\"new obj\",\"contentType\":\"text/plain\",\"metadata\":{\"k\":\"v/w\","
           "\"u\":\"\xC3\xA9\"}}",
           "server: the body, compact, '/' unescaped, UTF-8");
    is_int(json_object_put(body), 1, "the body object was not kept by the call");
    fx_teardown(&f, "get/insert");
}

static void test_errors(void)
{
    gapi_request *req = NULL;
    char err[256];
    fx f;
    res r;

    if (fx_setup(&f) != 0) {
        ok(0, "errors: setup");
        return;
    }
    ts_route(f.srv, "/storage/v1/b/bkt/o/missing", 404, "Content-Type: application/json\r\n",
             "{\"error\":{\"code\":404,\"message\":\"No such object: bkt/missing\",\"errors\":[{"
             "\"message\":\"No such object: bkt/missing\",\"domain\":\"global\",\"reason\":"
             "\"notFound\"}]}}");
    gapi_call_newv(&req, f.cli, f.svc, "objects.get", NULL, err, sizeof(err), "bucket", "bkt",
                   "object", "missing", (char *)NULL);
    memset(&r, 0, sizeof(r));
    r.f = &f;
    gapi_request_send(req, on_done, &r);
    tu_run_until(f.base, &f.done, 1, 5000);
    is_int(r.calls, 1, "404: one callback");
    is_int(r.err, GAPI_EHTTP, "404: GAPI_EHTTP");
    is_str(r.errmsg, "HTTP 404: No such object: bkt/missing (notFound)", "404: errmsg");
    is_int(r.status, 404, "404: the response is there");
    ok(r.gcode == 404 && r.gcount == 1 && !strcmp(r.greason, "notFound") &&
           !strcmp(r.gmsg, "No such object: bkt/missing"),
       "404: parsed error (code %d, reason %s)", r.gcode, r.greason);

    /* Status from an error body with "status", sent as text/html: parsed
     * whatever the content type. */
    ts_route(f.srv, "/storage/v1/b/bkt/o/denied", 403, "Content-Type: text/html\r\n",
             "{\"error\":{\"code\":403,\"message\":\"Denied\",\"status\":\"PERMISSION_DENIED\"}}");
    gapi_call_newv(&req, f.cli, f.svc, "objects.get", NULL, err, sizeof(err), "bucket", "bkt",
                   "object", "denied", (char *)NULL);
    memset(&r, 0, sizeof(r));
    r.f = &f;
    f.done = 0;
    gapi_request_send(req, on_done, &r);
    tu_run_until(f.base, &f.done, 1, 5000);
    ok(r.err == GAPI_EHTTP && !strcmp(r.errmsg, "HTTP 403: Denied (PERMISSION_DENIED)") &&
           !strcmp(r.gstatus, "PERMISSION_DENIED"),
       "403 JSON as text/html: %s", r.errmsg);

    /* Broken JSON on an error status: still GAPI_EHTTP. */
    ts_route(f.srv, "/storage/v1/b/bkt/o/broken", 502, "Content-Type: application/json\r\n",
             "{\"error\":");
    gapi_call_newv(&req, f.cli, f.svc, "objects.get", NULL, err, sizeof(err), "bucket", "bkt",
                   "object", "broken", (char *)NULL);
    memset(&r, 0, sizeof(r));
    r.f = &f;
    f.done = 0;
    gapi_request_send(req, on_done, &r);
    tu_run_until(f.base, &f.done, 1, 5000);
    ok(r.err == GAPI_EHTTP && !strcmp(r.errmsg, "HTTP 502"),
       "502 with broken JSON: GAPI_EHTTP, \"%s\"", r.errmsg);

    /* An HTML error page. */
    ts_route(f.srv, "/storage/v1/b/bkt/o/html", 404, "Content-Type: text/html\r\n",
             "<html><head><title>Error 404 (Not Found)!!1</title></head></html>");
    gapi_call_newv(&req, f.cli, f.svc, "objects.get", NULL, err, sizeof(err), "bucket", "bkt",
                   "object", "html", (char *)NULL);
    memset(&r, 0, sizeof(r));
    r.f = &f;
    f.done = 0;
    gapi_request_send(req, on_done, &r);
    tu_run_until(f.base, &f.done, 1, 5000);
    ok(r.err == GAPI_EHTTP && !strcmp(r.errmsg, "HTTP 404: Error 404 (Not Found)!!1"),
       "HTML 404: \"%s\"", r.errmsg);

    /* The same 404 through a plain request: err 0, no parsed error. */
    {
        char url[256];
        snprintf(url, sizeof(url), "%s/storage/v1/b/bkt/o/missing", ts_server_origin(f.srv));
        gapi_request_new(&req, f.cli, "GET", url);
        memset(&r, 0, sizeof(r));
        r.f = &f;
        f.done = 0;
        gapi_request_send(req, on_done, &r);
        tu_run_until(f.base, &f.done, 1, 5000);
        ok(r.err == 0 && r.status == 404 && r.gcode == 0,
           "plain request: a 404 completes with 0, nothing parsed");
    }

    /* Through a future: the outcome and the parsed error are there. */
    {
        gapi_future *fu = NULL;
        const gapi_google_error *ge;

        gapi_call_newv(&req, f.cli, f.svc, "objects.get", NULL, err, sizeof(err), "bucket", "bkt",
                       "object", "missing", (char *)NULL);
        is_int(gapi_request_submit_future(req, &fu), 0, "future: submitted");
        while (!gapi_future_done(fu))
            event_base_loop(f.base, EVLOOP_ONCE);
        is_int(gapi_future_error(fu), GAPI_EHTTP, "future: GAPI_EHTTP");
        is_str(gapi_future_errmsg(fu), "HTTP 404: No such object: bkt/missing (notFound)",
               "future: errmsg");
        ge = gapi_request_google_error(gapi_future_request(fu));
        ok(ge && gapi_google_error_code(ge) == 404, "future: parsed error on its request");
        gapi_future_free(fu);
    }
    fx_teardown(&f, "errors");
}

typedef struct walk {
    fx *f;
    int pages, done_calls, done_err, stop_after;
    char names[128];
    char errmsg[256];
    int last_status;
} walk;

static int on_page(gapi_request *req, const gapi_response *resp, void *arg)
{
    walk *w = arg;
    struct json_object *items;
    size_t i;

    (void)req;
    w->pages++;
    if (json_object_object_get_ex(gapi_response_json(resp), "items", &items)) {
        for (i = 0; i < json_object_array_length(items); i++) {
            struct json_object *name =
                json_object_object_get(json_object_array_get_idx(items, i), "name");
            size_t o = strlen(w->names);
            snprintf(w->names + o, sizeof(w->names) - o, "%s%s", o ? "," : "",
                     json_object_get_string(name));
        }
    }
    return w->stop_after && w->pages >= w->stop_after;
}

static void on_walk_done(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    walk *w = arg;

    w->done_calls++;
    w->done_err = err;
    w->last_status = gapi_response_status(resp);
    snprintf(w->errmsg, sizeof(w->errmsg), "%s", gapi_request_errmsg(req));
    w->f->done++;
}

static void test_pages(void)
{
    gapi_request *req = NULL;
    char err[256];
    walk w;
    fx f;
    int rc;

    if (fx_setup(&f) != 0) {
        ok(0, "pages: setup");
        return;
    }
    /* Every page. */
    rc = gapi_call_newv(&req, f.cli, f.svc, "objects.list", NULL, err, sizeof(err), "bucket", "bkt",
                        "maxResults", "2", "prefix", "a b", (char *)NULL);
    is_int(rc, 0, "objects.list built");
    gapi_request_add_header(req, "x-goog-user-project", "bill");
    memset(&w, 0, sizeof(w));
    w.f = &f;
    is_int(gapi_call_pages(req, on_page, on_walk_done, &w), 0, "walk started");
    is_int(w.done_calls, 0, "no callback inside gapi_call_pages");
    tu_run_until(f.base, &f.done, 1, 10000);
    is_int(w.done_calls, 1, "walk: done once");
    is_int(w.done_err, 0, "walk: ended well (%s)", w.errmsg);
    is_int(w.pages, 3, "walk: three pages");
    is_str(w.names, "a1,a2,a3,a4,a5", "walk: every item in order");
    is_int(f.nlist, 3, "server: three list requests");
    is_str(f.list[0].uri, "/storage/v1/b/bkt/o?alt=json&maxResults=2&prefix=a%20b",
           "server: page 1 query");
    is_str(f.list[1].uri,
           "/storage/v1/b/bkt/o?alt=json&maxResults=2&pageToken=p2%20%2B%2F%3D&prefix=a%20b",
           "server: page 2 query, token encoded");
    is_str(f.list[2].uri, "/storage/v1/b/bkt/o?alt=json&maxResults=2&pageToken=p3&prefix=a%20b",
           "server: page 3 query");
    is_str(f.list[2].ua, "gapi/" GAPI_VERSION_STRING " (gzip)", "server: page 3 headers as page 1");
    ok(f.list[0].n == 1 && f.list[2].n == 1, "server: each page once");
    ok(ts_last_header(f.srv, "/storage/v1/b/bkt/o", "x-goog-user-project") &&
           !strcmp(ts_last_header(f.srv, "/storage/v1/b/bkt/o", "x-goog-user-project"), "bill"),
       "server: the caller's header on the last page too");

    /* A stop after the first page. */
    f.nlist = 0;
    f.done = 0;
    gapi_call_newv(&req, f.cli, f.svc, "objects.list", NULL, err, sizeof(err), "bucket", "bkt",
                   (char *)NULL);
    memset(&w, 0, sizeof(w));
    w.f = &f;
    w.stop_after = 1;
    gapi_call_pages(req, on_page, on_walk_done, &w);
    tu_run_until(f.base, &f.done, 1, 10000);
    tu_run_for(f.base, 50);
    ok(w.done_calls == 1 && w.done_err == 0 && w.pages == 1 && f.nlist == 1,
       "stop: done once with 0 after one page, one request");

    /* Page 2 fails. */
    f.nlist = 0;
    f.done = 0;
    f.fail_page = 2;
    gapi_call_newv(&req, f.cli, f.svc, "objects.list", NULL, err, sizeof(err), "bucket", "bkt",
                   (char *)NULL);
    memset(&w, 0, sizeof(w));
    w.f = &f;
    gapi_call_pages(req, on_page, on_walk_done, &w);
    tu_run_until(f.base, &f.done, 1, 10000);
    tu_run_for(f.base, 50);
    ok(w.done_calls == 1 && w.done_err == GAPI_EHTTP && w.pages == 1 && w.last_status == 500,
       "failing page: done once with GAPI_EHTTP after one page");
    is_str(w.errmsg, "HTTP 500: backend exploded", "failing page: the page's errmsg");

    /* Refused walks. */
    {
        char url[256];
        gapi_request *plain = NULL;
        snprintf(url, sizeof(url), "%s/x", ts_server_origin(f.srv));
        gapi_request_new(&plain, f.cli, "GET", url);
        is_int(gapi_call_pages(plain, on_page, on_walk_done, &w), GAPI_EINVAL,
               "a plain request cannot be walked");
        is_int(gapi_call_pages(NULL, on_page, on_walk_done, &w), GAPI_EINVAL, "NULL first");
        gapi_request_free(plain);
    }
    fx_teardown(&f, "pages");
}

int main(void)
{
    tu_watchdog(120);
    test_get_and_insert();
    test_errors();
    test_pages();
    return tap_done();
}
