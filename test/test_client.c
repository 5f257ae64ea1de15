/*
 * Integration tests of the transport and client core against the in-process
 * HTTPS server (real TLS, certificates made at start, 127.0.0.1 only).
 *
 * Every test builds a fresh base + server + client, checks outcomes exactly
 * (error code, message, what the server saw), that each callback ran exactly
 * once, and that nothing is left on the base afterwards.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/util.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "gapi.h"
#include "server.h"
#include "tap.h"
#include "util.h"

/* ------------------------------------------------------------ fixture */

typedef struct fx {
    struct event_base *base;
    ts_server *srv;
    gapi_client *cli;
    int done;      /* callbacks run (all requests of the test) */
    int in_send;   /* set around gapi_request_send: a callback must never see it */
    int reentered; /* a callback ran while in_send */
} fx;

typedef struct res {
    fx *f;
    int calls;
    int err;
    int status;
    char *body;
    size_t body_len;
    char errmsg[256];
    char ctype[128];
    int has_json;
    int has_resp;
} res;

static int fx_setup(fx *f, const ts_options *so, gapi_client_options *co)
{
    gapi_client_options dflt = GAPI_CLIENT_OPTIONS_INIT;
    char err[256];
    int rc;

    memset(f, 0, sizeof(*f));
    f->base = event_base_new();
    f->srv = ts_server_new(f->base, so);
    if (!f->srv)
        return -1;
    if (!co)
        co = &dflt;
    if (!co->ca_pem)
        co->ca_pem = ts_server_ca_pem(f->srv);
    rc = gapi_client_new(&f->cli, f->base, co, err, sizeof(err));
    if (rc != GAPI_OK) {
        diag("gapi_client_new: %s (%s)", gapi_strerror(rc), err);
        return -1;
    }
    return 0;
}

static void fx_teardown(fx *f, const char *name)
{
    gapi_client_free(f->cli);
    ts_server_free(f->srv);
    is_int(tu_events_left(f->base), 0, "%s: no events left on the base", name);
    ok(!f->reentered, "%s: no callback ran inside gapi_request_send", name);
    event_base_free(f->base);
}

static void on_done(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    res *r = arg;
    const char *ct;

    r->calls++;
    r->f->done++;
    if (r->f->in_send)
        r->f->reentered = 1;
    r->err = err;
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", gapi_request_errmsg(req));
    r->has_resp = resp != NULL;
    if (resp) {
        const char *b = gapi_response_body(resp, &r->body_len);
        r->status = gapi_response_status(resp);
        free(r->body);
        r->body = malloc(r->body_len + 1);
        memcpy(r->body, b, r->body_len + 1);
        ct = gapi_response_header(resp, "content-type");
        snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
        r->has_json = gapi_response_json(resp) != NULL;
    }
}

static char *url(fx *f, const char *path)
{
    static char buf[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s%s", ts_server_origin(f->srv), path);
    return buf[i];
}

/* Send method url with an optional body; returns the send result. */
static int send_req(fx *f, res *r, const char *method, const char *u, const char *body,
                    gapi_request **out)
{
    gapi_request *req;
    int rc;

    memset(r, 0, sizeof(*r));
    r->f = f;
    rc = gapi_request_new(&req, f->cli, method, u);
    if (rc != GAPI_OK)
        return rc;
    if (body)
        gapi_request_set_body(req, body, strlen(body), "application/json");
    f->in_send = 1;
    rc = gapi_request_send(req, on_done, r);
    f->in_send = 0;
    if (rc != GAPI_OK)
        gapi_request_free(req);
    else if (out)
        *out = req;
    return rc;
}

static int get(fx *f, res *r, const char *path)
{
    return send_req(f, r, "GET", url(f, path), NULL, NULL);
}

static void res_free(res *r)
{
    free(r->body);
    r->body = NULL;
}

static const char JSON_BODY[] =
    "{\"kind\":\"storage#objects\",\"items\":[{\"name\":\"a\",\"size\":\"12\"}],"
    "\"nextPageToken\":\"tok\"}";

/* ------------------------------------------------------------ tests */

static void test_basic_get(void)
{
    fx f;
    res r;

    if (fx_setup(&f, NULL, NULL) != 0) {
        ok(0, "basic: setup");
        return;
    }
    ts_route(f.srv, "/json", 200, "Content-Type: application/json; charset=UTF-8\r\n", JSON_BODY);
    is_int(get(&f, &r, "/json?x=1"), GAPI_OK, "basic: send accepted");
    is_int(r.calls, 0, "basic: no callback inside send");
    tu_run_until(f.base, &f.done, 1, 5000);
    is_int(r.calls, 1, "basic: callback once");
    is_int(r.err, GAPI_OK, "basic: success (%s)", r.errmsg);
    is_int(r.status, 200, "basic: status 200");
    is_str(r.body, JSON_BODY, "basic: body as sent");
    ok(r.has_json, "basic: JSON parsed");
    is_str(r.ctype, "application/json; charset=UTF-8", "basic: header lookup");
    is_str(ts_last_method(f.srv, "/json"), "GET", "basic: server saw GET");
    ok(ts_last_header(f.srv, "/json", "user-agent") &&
           strncmp(ts_last_header(f.srv, "/json", "user-agent"), "gapi/", 5) == 0,
       "basic: default user-agent");
    ok(ts_last_header(f.srv, "/json", "accept-encoding") != NULL, "basic: accept-encoding sent");
    res_free(&r);

    /* 404 is a response, not a transport error. */
    get(&f, &r, "/missing");
    tu_run_until(f.base, &f.done, 2, 5000);
    is_int(r.err, GAPI_OK, "basic: 404 completes with GAPI_OK");
    is_int(r.status, 404, "basic: status 404");
    ok(r.has_json, "basic: 404 JSON error body parsed");
    res_free(&r);
    fx_teardown(&f, "basic");
}

static void test_keepalive_reuse(void)
{
    fx f;
    res r;
    int i, fails = 0;
    gapi_client_stats st;

    if (fx_setup(&f, NULL, NULL) != 0) {
        ok(0, "keepalive: setup");
        return;
    }
    ts_route(f.srv, "/k", 200, "Content-Type: application/json\r\n", "{\"ok\":true}");
    for (i = 0; i < 100; i++) {
        get(&f, &r, "/k");
        tu_run_until(f.base, &f.done, i + 1, 5000);
        if (r.calls != 1 || r.err || r.status != 200)
            fails++;
        res_free(&r);
    }
    is_int(fails, 0, "keepalive: 100 sequential requests succeed");
    is_int(ts_server_hits(f.srv, "/k"), 100, "keepalive: server got 100 requests");
    is_int(ts_server_connections(f.srv), 1, "keepalive: over one connection");
    gapi_client_get_stats(f.cli, &st);
    is_int(st.connections_opened, 1, "keepalive: client opened 1 connection");
    is_int(st.connections_reused, 99, "keepalive: 99 reuses");
    is_int(st.connections_idle, 1, "keepalive: connection idle at the end");
    fx_teardown(&f, "keepalive");
}

#define NCONC 1000

static void test_concurrency_and_pool(unsigned max_conns, int n, const char *name)
{
    fx f;
    res *rs = calloc((size_t)n, sizeof(*rs));
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    gapi_client_stats st;
    int i, once = 0, okc = 0;

    co.max_conns_per_origin = max_conns;
    if (fx_setup(&f, NULL, &co) != 0) {
        ok(0, "%s: setup", name);
        free(rs);
        return;
    }
    ts_route(f.srv, "/c", 200, "Content-Type: application/json\r\n", JSON_BODY);
    for (i = 0; i < n; i++)
        get(&f, &rs[i], "/c");
    gapi_client_get_stats(f.cli, &st);
    is_int(st.requests_started, n, "%s: %d requests accepted", name, n);
    ok(st.requests_waiting >= (unsigned)(n - (int)max_conns),
       "%s: requests beyond the pool limit wait (%u waiting)", name, st.requests_waiting);
    tu_run_until(f.base, &f.done, n, 20000);
    for (i = 0; i < n; i++) {
        once += rs[i].calls == 1;
        okc += rs[i].err == GAPI_OK && rs[i].status == 200 && rs[i].body_len == strlen(JSON_BODY);
        res_free(&rs[i]);
    }
    is_int(once, n, "%s: every callback ran exactly once", name);
    is_int(okc, n, "%s: every request succeeded", name);
    ok(ts_server_connections(f.srv) <= max_conns, "%s: server saw %u connections (limit %u)", name,
       ts_server_connections(f.srv), max_conns);
    gapi_client_get_stats(f.cli, &st);
    is_int(st.requests_completed, n, "%s: stats count completions", name);
    fx_teardown(&f, name);
    free(rs);
}

struct fault_case {
    const char *name;
    ts_fault fault;
    unsigned param;
    int want;
    const char *msg_part;
};

static void test_faults(void)
{
    static const struct fault_case cases[] = {
        {"reset before headers", TS_FAULT_RESET_BEFORE_HEADERS, 0, GAPI_ECONNRESET,
         "before responding"},
        {"close before response", TS_FAULT_CLOSE_BEFORE_RESPONSE, 0, GAPI_ECONNRESET,
         "before responding"},
        {"reset after headers", TS_FAULT_RESET_AFTER_HEADERS, 0, GAPI_ETRUNCATED, "closed after"},
        {"truncated body", TS_FAULT_TRUNCATED_BODY, 0, GAPI_ETRUNCATED, "after 100 body bytes"},
        {"truncated chunked", TS_FAULT_TRUNCATED_CHUNKED, 0, GAPI_ETRUNCATED, "chunked"},
        {"stall before headers", TS_FAULT_STALL_BEFORE_HEADERS, 0, GAPI_ESTALL, "no data received"},
        {"stall mid body", TS_FAULT_STALL_MID_BODY, 0, GAPI_ESTALL, "no data received"},
        {"dribble", TS_FAULT_DRIBBLE, 40, GAPI_EDEADLINE, "deadline of 600 ms"},
        {"big headers", TS_FAULT_BIG_HEADERS, 100000, GAPI_EHEADERSIZE, "65536"},
        {"malformed status", TS_FAULT_MALFORMED_STATUS, 0, GAPI_EPROTO, "malformed"},
    };
    size_t i;
    fx f;
    res good[3], bad;

    if (fx_setup(&f, NULL, NULL) != 0) {
        ok(0, "faults: setup");
        return;
    }
    ts_route(f.srv, "/good", 200, "Content-Type: application/json\r\n", JSON_BODY);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct fault_case *fc = &cases[i];
        gapi_request *req;
        char path[64];
        int k, start = f.done, others_ok = 0;

        snprintf(path, sizeof(path), "/fault%zu", i);
        ts_route_fault(f.srv, path, fc->fault, fc->param);
        memset(&bad, 0, sizeof(bad));
        bad.f = &f;
        gapi_request_new(&req, f.cli, "GET", url(&f, path));
        gapi_request_set_timeouts(req, 0, 300, 600);
        gapi_request_send(req, on_done, &bad);
        /* Other requests on the same loop go on unaffected. */
        for (k = 0; k < 3; k++)
            get(&f, &good[k], "/good");
        tu_run_until(f.base, &f.done, start + 4, 5000);
        is_int(bad.calls, 1, "fault %s: callback once", fc->name);
        if (!ok(bad.err == fc->want, "fault %s: %s", fc->name, gapi_error_name(fc->want)))
            diag("  got %s: %s", gapi_error_name(bad.err), bad.errmsg);
        ok(strstr(bad.errmsg, fc->msg_part) != NULL, "fault %s: message names it (%s)", fc->name,
           bad.errmsg);
        for (k = 0; k < 3; k++) {
            others_ok += good[k].calls == 1 && good[k].err == 0 && good[k].status == 200;
            res_free(&good[k]);
        }
        is_int(others_ok, 3, "fault %s: concurrent requests unaffected", fc->name);
        res_free(&bad);
    }
    fx_teardown(&f, "faults");
}

static void test_bodies(void)
{
    fx f;
    res r;
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    char big[5000];
    static char zeros[2000001];

    co.max_body_bytes = 1000000;
    if (fx_setup(&f, NULL, &co) != 0) {
        ok(0, "bodies: setup");
        return;
    }
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ts_route_chunked(f.srv, "/chunked", 200, "Content-Type: application/json\r\n", JSON_BODY, 7);
    ts_route_gzip(f.srv, "/gzip", 200, "Content-Type: application/json\r\n", JSON_BODY);
    ts_route(f.srv, "/badjson", 200, "Content-Type: application/json\r\n", "{\"a\":");
    ts_route(f.srv, "/text", 200, "Content-Type: text/plain\r\n", "{not json");
    memset(zeros, '0', sizeof(zeros) - 1);
    ts_route(f.srv, "/huge", 200, NULL, zeros);
    ts_route_gzip(f.srv, "/bomb", 200, NULL, zeros);
    ts_route(f.srv, "/head", 200, "Content-Type: text/plain\r\n", big);

    get(&f, &r, "/chunked");
    tu_run_until(f.base, &f.done, 1, 5000);
    ok(r.err == 0 && r.body && !strcmp(r.body, JSON_BODY), "bodies: chunked decoded (%s)",
       gapi_error_name(r.err));
    ok(r.has_json, "bodies: chunked JSON parsed");
    res_free(&r);

    get(&f, &r, "/gzip");
    tu_run_until(f.base, &f.done, 2, 5000);
    ok(r.err == 0 && r.body && !strcmp(r.body, JSON_BODY), "bodies: gzip decoded (%s)", r.errmsg);
    res_free(&r);

    get(&f, &r, "/badjson");
    tu_run_until(f.base, &f.done, 3, 5000);
    is_int(r.err, GAPI_EJSON, "bodies: invalid JSON is GAPI_EJSON");
    ok(r.has_resp && r.status == 200 && !r.has_json, "bodies: response still available");
    ok(strstr(r.errmsg, "not valid JSON") != NULL, "bodies: message (%s)", r.errmsg);
    ok(strstr(r.errmsg, "line 1, column 6") != NULL, "bodies: message says where");
    ok(r.body && !strcmp(r.body, "{\"a\":"), "bodies: raw body kept");
    res_free(&r);

    get(&f, &r, "/text");
    tu_run_until(f.base, &f.done, 4, 5000);
    ok(r.err == 0 && !r.has_json, "bodies: non-JSON content type not parsed");
    res_free(&r);

    get(&f, &r, "/huge");
    tu_run_until(f.base, &f.done, 5, 5000);
    is_int(r.err, GAPI_EBODYSIZE, "bodies: Content-Length over limit");
    ok(strstr(r.errmsg, "1000000") != NULL, "bodies: message names the limit (%s)", r.errmsg);
    res_free(&r);

    get(&f, &r, "/bomb");
    tu_run_until(f.base, &f.done, 6, 5000);
    is_int(r.err, GAPI_EBODYSIZE, "bodies: gzip expanding over the limit stopped");
    res_free(&r);

    send_req(&f, &r, "HEAD", url(&f, "/head"), NULL, NULL);
    tu_run_until(f.base, &f.done, 7, 5000);
    ok(r.err == 0 && r.status == 200 && r.body_len == 0, "bodies: HEAD has no body (%s)", r.errmsg);
    res_free(&r);

    /* The connection survived HEAD: the next request works. */
    get(&f, &r, "/chunked");
    tu_run_until(f.base, &f.done, 8, 5000);
    is_int(r.err, 0, "bodies: request after HEAD");
    res_free(&r);
    fx_teardown(&f, "bodies");
}

struct reader_state {
    const char *data;
    size_t len, off;
    size_t piece;
};

static long read_piece(void *buf, size_t len, void *arg)
{
    struct reader_state *s = arg;
    size_t n = s->len - s->off;

    if (n > s->piece)
        n = s->piece;
    if (n > len)
        n = len;
    memcpy(buf, s->data + s->off, n);
    s->off += n;
    return (long)n;
}

static void test_uploads(void)
{
    fx f;
    res r;
    gapi_request *req;
    size_t len;
    const char *got;
    static char big[200001];
    struct reader_state rs;

    if (fx_setup(&f, NULL, NULL) != 0) {
        ok(0, "uploads: setup");
        return;
    }
    ts_route(f.srv, "/up", 200, "Content-Type: application/json\r\n", "{}");
    send_req(&f, &r, "POST", url(&f, "/up"), "{\"name\":\"x\"}", NULL);
    tu_run_until(f.base, &f.done, 1, 5000);
    is_int(r.err, 0, "uploads: POST with body");
    got = ts_last_body(f.srv, "/up", &len);
    ok(got && len == 12 && !memcmp(got, "{\"name\":\"x\"}", 12), "uploads: server got the body");
    is_str(ts_last_header(f.srv, "/up", "content-type"), "application/json",
           "uploads: content-type sent");
    res_free(&r);

    /* Large fixed body (sent by reference, not inlined). */
    memset(big, 'b', sizeof(big) - 1);
    send_req(&f, &r, "PUT", url(&f, "/up"), big, NULL);
    tu_run_until(f.base, &f.done, 2, 5000);
    got = ts_last_body(f.srv, "/up", &len);
    ok(r.err == 0 && got && len == sizeof(big) - 1 && !memcmp(got, big, len),
       "uploads: 200 KB body arrives intact");
    res_free(&r);

    /* Streamed, chunked. */
    rs.data = big;
    rs.len = sizeof(big) - 1;
    rs.off = 0;
    rs.piece = 7000;
    memset(&r, 0, sizeof(r));
    r.f = &f;
    gapi_request_new(&req, f.cli, "POST", url(&f, "/up"));
    gapi_request_set_body_reader(req, -1, "application/octet-stream", read_piece, &rs);
    gapi_request_send(req, on_done, &r);
    tu_run_until(f.base, &f.done, 3, 5000);
    got = ts_last_body(f.srv, "/up", &len);
    ok(r.err == 0 && got && len == rs.len && !memcmp(got, big, len),
       "uploads: chunked streamed body arrives intact (%s)", r.errmsg);
    is_str(ts_last_header(f.srv, "/up", "transfer-encoding"), "chunked", "uploads: sent chunked");
    res_free(&r);

    /* Streamed with a length, reader lying about it. */
    rs.off = 0;
    memset(&r, 0, sizeof(r));
    r.f = &f;
    gapi_request_new(&req, f.cli, "POST", url(&f, "/up"));
    gapi_request_set_body_reader(req, (long long)rs.len + 10, NULL, read_piece, &rs);
    gapi_request_send(req, on_done, &r);
    tu_run_until(f.base, &f.done, 4, 5000);
    is_int(r.err, GAPI_EUPLOAD, "uploads: short reader is GAPI_EUPLOAD");
    ok(strstr(r.errmsg, "announced") != NULL, "uploads: message (%s)", r.errmsg);
    res_free(&r);
    fx_teardown(&f, "uploads");
}

static void test_injection(void)
{
    fx f;
    gapi_request *req = NULL;

    if (fx_setup(&f, NULL, NULL) != 0) {
        ok(0, "injection: setup");
        return;
    }
    is_int(gapi_request_new(&req, f.cli, "GET", "https://127.0.0.1/a b"), GAPI_EINVAL,
           "injection: space in URL refused");
    is_int(gapi_request_new(&req, f.cli, "GET", "https://127.0.0.1/a\r\nX: y"), GAPI_EINVAL,
           "injection: CRLF in URL refused");
    is_int(gapi_request_new(&req, f.cli, "GE T", "https://127.0.0.1/"), GAPI_EINVAL,
           "injection: method must be a token");
    is_int(gapi_request_new(&req, f.cli, "GET", "ftp://127.0.0.1/"), GAPI_EINVAL,
           "injection: non-http scheme refused");
    is_int(gapi_request_new(&req, f.cli, "GET", "https://user:pw@127.0.0.1/"), GAPI_EINVAL,
           "injection: user-info refused");
    is_int(gapi_request_new(&req, f.cli, "GET", "https://127.0.0.1:99999/"), GAPI_EINVAL,
           "injection: bad port refused");
    is_int(gapi_request_new(&req, f.cli, "GET", url(&f, "/x")), GAPI_OK, "injection: good URL");
    is_int(gapi_request_add_header(req, "X-A", "v\r\nInjected: 1"), GAPI_EINVAL,
           "injection: CRLF in value refused");
    ok(strstr(gapi_request_errmsg(req), "X-A") != NULL, "injection: message names header (%s)",
       gapi_request_errmsg(req));
    is_int(gapi_request_add_header(req, "X-A", "v\nb"), GAPI_EINVAL, "injection: LF refused");
    is_int(gapi_request_add_header(req, "X A", "v"), GAPI_EINVAL, "injection: space in name");
    is_int(gapi_request_add_header(req, "X:A", "v"), GAPI_EINVAL, "injection: colon in name");
    is_int(gapi_request_add_header(req, "Host", "evil"), GAPI_EINVAL, "injection: Host refused");
    is_int(gapi_request_add_header(req, "content-length", "1"), GAPI_EINVAL,
           "injection: Content-Length refused");
    is_int(gapi_request_add_header(req, "Transfer-Encoding", "chunked"), GAPI_EINVAL,
           "injection: Transfer-Encoding refused");
    is_int(gapi_request_add_header(req, "X-Tab", "a\tb"), GAPI_OK, "injection: HTAB allowed");
    is_int(gapi_request_send(req, NULL, NULL), GAPI_EINVAL, "injection: NULL callback refused");
    gapi_request_free(req);
    fx_teardown(&f, "injection");
}

static void test_tls_rejections(void)
{
    static const struct {
        ts_cert_kind kind;
        const char *name;
        const char *reason;
    } kinds[] = {
        {TS_CERT_UNTRUSTED, "untrusted", "unable to get local issuer certificate"},
        {TS_CERT_WRONG_HOST, "wrong host", "IP address mismatch"},
        {TS_CERT_EXPIRED, "expired", "certificate has expired"},
    };
    size_t i;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        ts_options so = TS_OPTIONS_INIT;
        fx f;
        res r;
        char name[64];

        so.cert = kinds[i].kind;
        snprintf(name, sizeof(name), "tls %s", kinds[i].name);
        if (fx_setup(&f, &so, NULL) != 0) {
            ok(0, "%s: setup", name);
            continue;
        }
        ts_route(f.srv, "/t", 200, NULL, "secret");
        get(&f, &r, "/t");
        tu_run_until(f.base, &f.done, 1, 5000);
        is_int(r.calls, 1, "%s: callback once", name);
        if (!ok(r.err == GAPI_ETLSVERIFY, "%s: GAPI_ETLSVERIFY", name))
            diag("  got %s: %s", gapi_error_name(r.err), r.errmsg);
        ok(strstr(r.errmsg, kinds[i].reason) != NULL, "%s: reason given (%s)", name, r.errmsg);
        is_int(ts_server_hits(f.srv, "/t"), 0, "%s: no request reached the server", name);
        res_free(&r);
        fx_teardown(&f, name);
    }

    /* Wrong host by name: localhost against a cert naming wrong.example.invalid. */
    {
        ts_options so = TS_OPTIONS_INIT;
        fx f;
        res r;
        char u[128];

        so.cert = TS_CERT_WRONG_HOST;
        if (fx_setup(&f, &so, NULL) == 0) {
            snprintf(u, sizeof(u), "https://localhost:%d/t", ts_server_port(f.srv));
            send_req(&f, &r, "GET", u, NULL, NULL);
            tu_run_until(f.base, &f.done, 1, 5000);
            ok(r.err == GAPI_ETLSVERIFY && strstr(r.errmsg, "hostname mismatch"),
               "tls wrong host by name: hostname mismatch (%s)", r.errmsg);
            res_free(&r);
            fx_teardown(&f, "tls wrong host by name");
        } else {
            ok(0, "tls wrong host by name: setup");
        }
    }

    /* The system store alone does not trust the test CA. */
    {
        fx f;
        res r;
        gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;

        co.ca_pem = NULL;
        memset(&f, 0, sizeof(f));
        f.base = event_base_new();
        f.srv = ts_server_new(f.base, NULL);
        gapi_client_new(&f.cli, f.base, &co, NULL, 0);
        get(&f, &r, "/t");
        tu_run_until(f.base, &f.done, 1, 5000);
        is_int(r.err, GAPI_ETLSVERIFY, "tls system store: test CA not trusted by default");
        res_free(&r);
        fx_teardown(&f, "tls system store");
    }
}

static void test_tls_config_errors(void)
{
    struct event_base *base = event_base_new();
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    gapi_client *c = (gapi_client *)0x1;
    char err[256] = "";

    co.ca_file = "/nonexistent/ca.pem";
    is_int(gapi_client_new(&c, base, &co, err, sizeof(err)), GAPI_ETLSCONFIG,
           "tls config: missing CA file");
    ok(strstr(err, "/nonexistent/ca.pem") != NULL, "tls config: message names file (%s)", err);
    ok(c == (gapi_client *)0x1, "tls config: *out untouched on failure");
    co.ca_file = NULL;
    co.ca_pem = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
    is_int(gapi_client_new(&c, base, &co, err, sizeof(err)), GAPI_ETLSCONFIG,
           "tls config: garbage PEM refused");
    co.ca_pem = NULL;
    co.version = 99;
    is_int(gapi_client_new(&c, base, &co, err, sizeof(err)), GAPI_EINVAL,
           "tls config: wrong options version refused");
    is_int(tu_events_left(base), 0, "tls config: no events left");
    event_base_free(base);
}

static void test_connect_errors(void)
{
    fx f;
    res r;
    char u[128];
    int lfd, lport;
    gapi_request *req;

    if (fx_setup(&f, NULL, NULL) != 0) {
        ok(0, "connect: setup");
        return;
    }
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/", tu_closed_port());
    send_req(&f, &r, "GET", u, NULL, NULL);
    tu_run_until(f.base, &f.done, 1, 5000);
    is_int(r.err, GAPI_ECONNECT, "connect: refused is GAPI_ECONNECT");
    ok(strstr(r.errmsg, "refused") != NULL, "connect: message (%s)", r.errmsg);
    res_free(&r);

    lfd = tu_silent_listener(&lport);
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/", lport);
    memset(&r, 0, sizeof(r));
    r.f = &f;
    gapi_request_new(&req, f.cli, "GET", u);
    gapi_request_set_timeouts(req, 200, 0, 0);
    gapi_request_send(req, on_done, &r);
    tu_run_until(f.base, &f.done, 2, 5000);
    is_int(r.err, GAPI_ECONNECTTIMEOUT, "connect: silent server is GAPI_ECONNECTTIMEOUT");
    ok(strstr(r.errmsg, "TLS handshake") != NULL, "connect: message says where (%s)", r.errmsg);
    close(lfd);
    res_free(&r);

    /* Resolution through evdns: localhost from the hosts file works. */
    snprintf(u, sizeof(u), "https://localhost:%d/k", ts_server_port(f.srv));
    ts_route(f.srv, "/k", 200, NULL, "ok");
    send_req(&f, &r, "GET", u, NULL, NULL);
    tu_run_until(f.base, &f.done, 3, 5000);
    ok(r.err == 0 && r.status == 200, "connect: localhost resolved (%s)", r.errmsg);
    is_str(ts_last_sni(f.srv, "/k"), "localhost", "connect: SNI sent for a host name");
    res_free(&r);
    fx_teardown(&f, "connect");
}

/* A real DNS server on 127.0.0.1 (libevent's evdns server side): api.test has
 * an A record for 127.0.0.1; every other name is NXDOMAIN. */
static void dns_server_cb(struct evdns_server_request *req, void *arg)
{
    int i, answered = 0;

    (void)arg;
    for (i = 0; i < req->nquestions; i++) {
        const struct evdns_server_question *q = req->questions[i];
        if (q->type == EVDNS_TYPE_A && strcasecmp(q->name, "api.test") == 0) {
            uint32_t a = htonl(INADDR_LOOPBACK);
            evdns_server_request_add_a_reply(req, q->name, 1, &a, 60);
            answered = 1;
        } else if (strcasecmp(q->name, "api.test") == 0) {
            answered = 1; /* the name exists, without AAAA */
        }
    }
    evdns_server_request_respond(req, answered ? 0 : DNS_ERR_NOTEXIST);
}

static void test_dns(void)
{
    fx f;
    res r;
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    struct event_base *base = event_base_new();
    struct evdns_base *dns = evdns_base_new(base, 0);
    struct evdns_server_port *port;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    char ns[64], u[128];
    int udp = socket(AF_INET, SOCK_DGRAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(udp, (struct sockaddr *)&sa, sizeof(sa));
    getsockname(udp, (struct sockaddr *)&sa, &len);
    evutil_make_socket_nonblocking(udp);
    port = evdns_add_server_port_with_base(base, udp, 0, dns_server_cb, NULL);
    snprintf(ns, sizeof(ns), "127.0.0.1:%d", ntohs(sa.sin_port));
    evdns_base_nameserver_ip_add(dns, ns);

    memset(&f, 0, sizeof(f));
    f.base = base;
    f.srv = ts_server_new(base, NULL);
    co.dns_base = dns;
    co.ca_pem = ts_server_ca_pem(f.srv);
    gapi_client_new(&f.cli, base, &co, NULL, 0);
    send_req(&f, &r, "GET", "https://no-such-host.test/x", NULL, NULL);
    tu_run_until(f.base, &f.done, 1, 5000);
    is_int(r.err, GAPI_EDNS, "dns: NXDOMAIN is GAPI_EDNS");
    ok(strstr(r.errmsg, "no-such-host.test") != NULL, "dns: message names host (%s)", r.errmsg);
    res_free(&r);

    /* Resolved through the DNS server, then verified by name: the test
     * certificate does not name api.test. */
    snprintf(u, sizeof(u), "https://api.test:%d/x", ts_server_port(f.srv));
    send_req(&f, &r, "GET", u, NULL, NULL);
    tu_run_until(f.base, &f.done, 2, 5000);
    ok(r.err == GAPI_ETLSVERIFY && strstr(r.errmsg, "hostname mismatch"),
       "dns: api.test resolved, then rejected by name (%s)", r.errmsg);
    ok(ts_server_connections(f.srv) == 1, "dns: connected to the resolved address");
    res_free(&r);
    gapi_client_free(f.cli);
    f.cli = NULL;
    evdns_base_free(dns, 0);
    evdns_close_server_port(port);
    close(udp);
    fx_teardown(&f, "dns");
}

static void test_replay(void)
{
    fx f;
    res r;
    gapi_client_stats st;
    ts_options so = TS_OPTIONS_INIT;
    int i, fails = 0;

    /* A reused connection that dies before answering: replayed once on a
     * fresh connection; it dies again there, so the error surfaces. */
    if (fx_setup(&f, NULL, NULL) != 0) {
        ok(0, "replay: setup");
        return;
    }
    ts_route(f.srv, "/ok", 200, NULL, "ok");
    ts_route_fault(f.srv, "/drop", TS_FAULT_CLOSE_BEFORE_RESPONSE, 0);
    get(&f, &r, "/ok");
    tu_run_until(f.base, &f.done, 1, 5000);
    res_free(&r);
    get(&f, &r, "/drop");
    tu_run_until(f.base, &f.done, 2, 5000);
    is_int(r.err, GAPI_ECONNRESET, "replay: fails after one replay");
    is_int(ts_server_hits(f.srv, "/drop"), 2, "replay: server saw the request twice");
    gapi_client_get_stats(f.cli, &st);
    is_int(st.replays, 1, "replay: exactly one replay");
    res_free(&r);

    /* POST is not idempotent: no replay. */
    send_req(&f, &r, "GET", url(&f, "/ok"), NULL, NULL);
    tu_run_until(f.base, &f.done, 3, 5000);
    res_free(&r);
    send_req(&f, &r, "POST", url(&f, "/drop"), "{}", NULL);
    tu_run_until(f.base, &f.done, 4, 5000);
    is_int(r.err, GAPI_ECONNRESET, "replay: POST fails without replay");
    is_int(ts_server_hits(f.srv, "/drop"), 3, "replay: POST sent once");
    res_free(&r);
    fx_teardown(&f, "replay");

    /* Server closes every connection after one response: all succeed. */
    so.close_after = 1;
    if (fx_setup(&f, &so, NULL) != 0) {
        ok(0, "close-after: setup");
        return;
    }
    ts_route(f.srv, "/ok", 200, NULL, "ok");
    for (i = 0; i < 20; i++) {
        get(&f, &r, "/ok");
        tu_run_until(f.base, &f.done, i + 1, 5000);
        fails += r.err != 0 || r.status != 200;
        res_free(&r);
    }
    is_int(fails, 0, "close-after: 20 requests succeed though the server closes each time");
    is_int(ts_server_hits(f.srv, "/ok"), 20, "close-after: no request duplicated");
    gapi_client_get_stats(f.cli, &st);
    ok(st.tls_resumed >= 1, "close-after: TLS sessions resumed (%llu of %llu connections)",
       (unsigned long long)st.tls_resumed, (unsigned long long)st.connections_opened);
    fx_teardown(&f, "close-after");
}

static void test_idle_timeout(void)
{
    fx f;
    res r;
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    gapi_client_stats st;

    co.idle_timeout_ms = 100;
    if (fx_setup(&f, NULL, &co) != 0) {
        ok(0, "idle: setup");
        return;
    }
    ts_route(f.srv, "/ok", 200, NULL, "ok");
    get(&f, &r, "/ok");
    tu_run_until(f.base, &f.done, 1, 5000);
    res_free(&r);
    gapi_client_get_stats(f.cli, &st);
    is_int(st.connections_idle, 1, "idle: one idle connection");
    tu_run_for(f.base, 300);
    gapi_client_get_stats(f.cli, &st);
    is_int(st.connections_open, 0, "idle: closed after the idle timeout");
    get(&f, &r, "/ok");
    tu_run_until(f.base, &f.done, 2, 5000);
    is_int(r.err, 0, "idle: next request opens a new connection");
    is_int(ts_server_connections(f.srv), 2, "idle: server saw 2 connections");
    res_free(&r);
    fx_teardown(&f, "idle");
}

static void test_cancel(void)
{
    fx f;
    res r[3];
    gapi_request *req[3];
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    int rc;

    co.max_conns_per_origin = 1;
    if (fx_setup(&f, NULL, &co) != 0) {
        ok(0, "cancel: setup");
        return;
    }
    ts_route(f.srv, "/slow", 200, NULL, "slow");
    ts_route_delay(f.srv, "/slow", 300);
    send_req(&f, &r[0], "GET", url(&f, "/slow"), NULL, &req[0]); /* on the connection */
    send_req(&f, &r[1], "GET", url(&f, "/slow"), NULL, &req[1]); /* waiting */
    send_req(&f, &r[2], "GET", url(&f, "/slow"), NULL, &req[2]); /* waiting */
    tu_run_for(f.base, 50);
    f.in_send = 1; /* callbacks must not run inside cancel either */
    rc = gapi_request_cancel(req[1]);
    f.in_send = 0;
    is_int(rc, 0, "cancel: waiting request cancelled");
    is_int(r[1].calls, 0, "cancel: callback not run inside cancel");
    f.in_send = 1;
    rc = gapi_request_cancel(req[0]);
    f.in_send = 0;
    is_int(rc, 0, "cancel: active request cancelled");
    tu_run_until(f.base, &f.done, 3, 5000);
    is_int(r[0].err, GAPI_ECANCELED, "cancel: active gets GAPI_ECANCELED");
    is_int(r[1].err, GAPI_ECANCELED, "cancel: waiting gets GAPI_ECANCELED");
    is_int(r[2].err, 0, "cancel: the third still succeeds");
    ok(r[0].calls == 1 && r[1].calls == 1 && r[2].calls == 1, "cancel: each callback once");
    res_free(&r[0]);
    res_free(&r[1]);
    res_free(&r[2]);
    fx_teardown(&f, "cancel");
}

/* Cancel and deadline while a connection is still being opened, and a
 * deadline that fires while waiting for a pool slot. */
static void test_cancel_connecting(void)
{
    fx f;
    res r[3];
    gapi_request *req[3];
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    gapi_client_stats st;
    char u[128];
    int lfd, lport;

    co.max_conns_per_origin = 1;
    if (fx_setup(&f, NULL, &co) != 0) {
        ok(0, "cancel connecting: setup");
        return;
    }
    lfd = tu_silent_listener(&lport); /* TCP accepts, TLS never answers */
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/x", lport);
    send_req(&f, &r[0], "GET", u, NULL, &req[0]);
    memset(&r[1], 0, sizeof(r[1]));
    r[1].f = &f;
    gapi_request_new(&req[1], f.cli, "GET", u);
    gapi_request_set_timeouts(req[1], 0, 0, 150); /* waits for the only slot */
    gapi_request_send(req[1], on_done, &r[1]);
    tu_run_for(f.base, 50);
    gapi_client_get_stats(f.cli, &st);
    is_int(st.requests_waiting, 1, "cancel connecting: second request waits for the slot");
    tu_run_until(f.base, &f.done, 1, 2000);
    is_int(r[1].err, GAPI_EDEADLINE, "cancel connecting: deadline fires in the wait queue");
    is_int(r[0].calls, 0, "cancel connecting: first still connecting");
    is_int(gapi_request_cancel(req[0]), 0, "cancel connecting: cancel accepted");
    tu_run_until(f.base, &f.done, 2, 2000);
    is_int(r[0].err, GAPI_ECANCELED, "cancel connecting: GAPI_ECANCELED");
    gapi_client_get_stats(f.cli, &st);
    is_int(st.connections_open, 0, "cancel connecting: the half-open connection is closed");

    /* Deadline during the handshake. */
    memset(&r[2], 0, sizeof(r[2]));
    r[2].f = &f;
    gapi_request_new(&req[2], f.cli, "GET", u);
    gapi_request_set_timeouts(req[2], 5000, 0, 100);
    gapi_request_send(req[2], on_done, &r[2]);
    tu_run_until(f.base, &f.done, 3, 2000);
    is_int(r[2].err, GAPI_EDEADLINE, "cancel connecting: deadline during the handshake");
    ok(r[0].calls == 1 && r[1].calls == 1 && r[2].calls == 1, "cancel connecting: each once");
    close(lfd);
    fx_teardown(&f, "cancel connecting");
}

/* Free the client while requests are in flight, from outside and inside a
 * callback. */
static int g_free_in_cb_calls;
static gapi_client *g_free_target;

static void free_in_cb(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    g_free_in_cb_calls++;
    gapi_client_free(g_free_target); /* deferred until this callback returns */
    gapi_client_free(g_free_target); /* a second call is harmless */
    on_done(req, err, resp, arg);
}

static void test_free_in_flight(void)
{
    fx f;
    res r[20];
    int i, once = 0, shut = 0;
    gapi_client_stats st;

    if (fx_setup(&f, NULL, NULL) != 0) {
        ok(0, "free: setup");
        return;
    }
    ts_route_fault(f.srv, "/stall", TS_FAULT_STALL_BEFORE_HEADERS, 0);
    for (i = 0; i < 20; i++)
        get(&f, &r[i], "/stall");
    tu_run_for(f.base, 100);
    gapi_client_get_stats(f.cli, &st);
    is_int(st.requests_completed, 0, "free: nothing completed yet");
    gapi_client_free(f.cli);
    f.cli = NULL;
    for (i = 0; i < 20; i++) {
        once += r[i].calls == 1;
        shut += r[i].err == GAPI_ESHUTDOWN;
    }
    is_int(once, 20, "free: each callback once, before free returned");
    is_int(shut, 20, "free: all GAPI_ESHUTDOWN");
    fx_teardown(&f, "free");

    /* Inside a callback. */
    if (fx_setup(&f, NULL, NULL) != 0) {
        ok(0, "free in callback: setup");
        return;
    }
    ts_route(f.srv, "/fast", 200, NULL, "x");
    ts_route_fault(f.srv, "/stall", TS_FAULT_STALL_BEFORE_HEADERS, 0);
    g_free_target = f.cli;
    g_free_in_cb_calls = 0;
    memset(&r[0], 0, sizeof(r[0]));
    r[0].f = &f;
    {
        gapi_request *req;
        gapi_request_new(&req, f.cli, "GET", url(&f, "/fast"));
        gapi_request_send(req, free_in_cb, &r[0]);
    }
    for (i = 1; i < 10; i++) /* 8 on connections, 1 waiting for a slot */
        get(&f, &r[i], "/stall");
    tu_run_until(f.base, &f.done, 10, 5000);
    f.cli = NULL; /* freed by the callback */
    once = shut = 0;
    for (i = 0; i < 10; i++) {
        once += r[i].calls == 1;
        shut += r[i].err == GAPI_ESHUTDOWN;
    }
    is_int(g_free_in_cb_calls, 1, "free in callback: the freeing callback ran once");
    is_int(r[0].err, 0, "free in callback: its own request succeeded");
    is_int(once, 10, "free in callback: every callback once");
    is_int(shut, 9, "free in callback: the others got GAPI_ESHUTDOWN");
    for (i = 0; i < 10; i++)
        res_free(&r[i]);
    fx_teardown(&f, "free in callback");
}

/* Send from inside a callback, and send on a closing client. */
static void chain_cb(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    res *r = arg;
    on_done(req, err, resp, arg);
    if (r->calls == 1 && r->f->done < 5) {
        gapi_request *n;
        if (gapi_request_new(&n, r->f->cli, "GET", url(r->f, "/ok")) == 0 &&
            gapi_request_send(n, chain_cb, arg) != 0)
            gapi_request_free(n);
        r->calls = 0;
    }
}

static void test_send_from_callback(void)
{
    fx f;
    res r;
    gapi_request *req;

    if (fx_setup(&f, NULL, NULL) != 0) {
        ok(0, "chain: setup");
        return;
    }
    ts_route(f.srv, "/ok", 200, NULL, "ok");
    memset(&r, 0, sizeof(r));
    r.f = &f;
    gapi_request_new(&req, f.cli, "GET", url(&f, "/ok"));
    gapi_request_send(req, chain_cb, &r);
    tu_run_until(f.base, &f.done, 5, 5000);
    is_int(f.done, 5, "chain: 5 requests sent one from another's callback");
    is_int(ts_server_connections(f.srv), 1, "chain: all on one connection");
    res_free(&r);
    fx_teardown(&f, "chain");
}

static void test_ipv6(void)
{
    ts_options so = TS_OPTIONS_INIT;
    fx f;
    res r;

    so.ipv6 = 1;
    memset(&f, 0, sizeof(f));
    f.base = event_base_new();
    f.srv = ts_server_new(f.base, &so);
    if (!f.srv) {
        event_base_free(f.base);
        skip(4, "IPv6 loopback unavailable");
        return;
    }
    {
        gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
        co.ca_pem = ts_server_ca_pem(f.srv);
        gapi_client_new(&f.cli, f.base, &co, NULL, 0);
    }
    ts_route(f.srv, "/v6", 200, NULL, "six");
    get(&f, &r, "/v6");
    tu_run_until(f.base, &f.done, 1, 5000);
    ok(r.err == 0 && r.body && !strcmp(r.body, "six"), "ipv6: request over [::1] (%s)", r.errmsg);
    ok(strstr(ts_server_origin(f.srv), "[::1]") != NULL, "ipv6: origin is [::1]");
    res_free(&r);
    fx_teardown(&f, "ipv6");
}

static void test_plain_http(void)
{
    ts_options so = TS_OPTIONS_INIT;
    fx f;
    res r;

    so.plain_http = 1;
    if (fx_setup(&f, &so, NULL) != 0) {
        ok(0, "http: setup");
        return;
    }
    ts_route(f.srv, "/p", 200, "Content-Type: application/json\r\n", JSON_BODY);
    get(&f, &r, "/p");
    tu_run_until(f.base, &f.done, 1, 5000);
    ok(r.err == 0 && r.has_json, "http: plain HTTP request (%s)", r.errmsg);
    res_free(&r);
    fx_teardown(&f, "http");
}

static void my_sigpipe(int sig)
{
    (void)sig;
}

static void test_application_name(void)
{
    gapi_client_options o = GAPI_CLIENT_OPTIONS_INIT;
    struct event_base *base = event_base_new();
    gapi_client *c = NULL;
    char err[256] = "";
    fx f;
    res r;

    o.application_name = "bad\nname";
    is_int(gapi_client_new(&c, base, &o, err, sizeof(err)), GAPI_EINVAL,
           "user-agent: control character in application_name refused");
    ok(strstr(err, "application_name") != NULL, "user-agent: message names it (%s)", err);
    event_base_free(base);

    o.application_name = "myapp/1.2";
    if (fx_setup(&f, NULL, &o) != 0) {
        ok(0, "user-agent: setup");
        return;
    }
    ts_route(f.srv, "/ua", 200, NULL, "x");
    get(&f, &r, "/ua");
    tu_run_until(f.base, &f.done, 1, 5000);
    is_str(ts_last_header(f.srv, "/ua", "user-agent"), "myapp/1.2 gapi/" GAPI_VERSION_STRING,
           "user-agent: application name first, then gapi/VERSION");
    res_free(&r);
    fx_teardown(&f, "user-agent");
}

static void test_sigpipe(void)
{
    struct event_base *base = event_base_new();
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    struct sigaction sa;
    gapi_client *c;

    signal(SIGPIPE, my_sigpipe);
    gapi_client_new(&c, base, NULL, NULL, 0);
    gapi_client_free(c);
    sigaction(SIGPIPE, NULL, &sa);
    ok(sa.sa_handler == my_sigpipe, "sigpipe: the program's own handler is kept");

    signal(SIGPIPE, SIG_DFL);
    co.flags = GAPI_CLIENT_KEEP_SIGPIPE;
    gapi_client_new(&c, base, &co, NULL, 0);
    gapi_client_free(c);
    sigaction(SIGPIPE, NULL, &sa);
    ok(sa.sa_handler == SIG_DFL, "sigpipe: GAPI_CLIENT_KEEP_SIGPIPE leaves SIG_DFL");

    gapi_client_new(&c, base, NULL, NULL, 0);
    gapi_client_free(c);
    sigaction(SIGPIPE, NULL, &sa);
    ok(sa.sa_handler == SIG_IGN, "sigpipe: default action replaced by SIG_IGN");
    event_base_free(base);
}

int main(void)
{
    tu_watchdog(240);
    test_sigpipe();
    test_basic_get();
    test_keepalive_reuse();
    test_concurrency_and_pool(4, 200, "pool limit 4");
    test_concurrency_and_pool(8, NCONC, "concurrency 1000");
    test_faults();
    test_bodies();
    test_uploads();
    test_injection();
    test_tls_rejections();
    test_tls_config_errors();
    test_connect_errors();
    test_dns();
    test_replay();
    test_idle_timeout();
    test_cancel();
    test_cancel_connecting();
    test_free_in_flight();
    test_send_from_callback();
    test_ipv6();
    test_plain_http();
    test_application_name();
    return tap_done();
}
