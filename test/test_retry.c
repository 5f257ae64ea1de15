/*
 * Retries: the pure policy arithmetic (src/request/retry.h), then the engine
 * (src/request/send.c) against the in-process HTTPS test server.
 *
 * The engine tests script the server with ts_route_sequence, use short
 * delays with GAPI_RETRY_NO_JITTER so that waits can be checked against the
 * server's arrival times (ts_request_times), and check for every request:
 * one callback, its outcome, gapi_request_attempts, how many requests the
 * server saw, what the attempt hook was told, and that the base is empty at
 * the end.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "gapi.h"
#include "request/retry.h"
#include "server.h"
#include "tap.h"
#include "util.h"

#define DAY_MS 86400000LL

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* ================================================================ pure */

static void test_policy_resolve(void)
{
    gapi_retry_policy in = GAPI_RETRY_POLICY_INIT, out, zero;

    memset(&out, 0, sizeof(out));
    is_int(gapi__retry_policy_resolve(&out, &in, NULL), GAPI_OK,
           "resolve: the INIT policy is valid");
    ok(out.max_attempts == 5 && out.initial_delay_ms == 1000 && out.max_delay_ms == 32000 &&
           out.multiplier == 2.0 && out.max_elapsed_ms == 0 && out.flags == 0,
       "resolve: INIT is 5 attempts, 1 s, x2, 32 s cap");

    memset(&zero, 0, sizeof(zero));
    zero.version = GAPI_RETRY_POLICY_VERSION;
    is_int(gapi__retry_policy_resolve(&out, &zero, NULL), GAPI_OK,
           "resolve: all-zero fields accepted");
    is_int(out.initial_delay_ms, 1000, "resolve: initial_delay_ms 0 picks 1000");
    is_int(out.max_delay_ms, 32000, "resolve: max_delay_ms 0 picks 32000");
    ok(out.multiplier == 2.0, "resolve: multiplier 0 picks 2.0");
    is_int(out.max_attempts, 1, "resolve: max_attempts 0 means one attempt (never retry)");

    in = zero;
    in.multiplier = 1.0;
    is_int(gapi__retry_policy_resolve(&out, &in, NULL), GAPI_OK,
           "resolve: multiplier 1 (constant) ok");

    /* Refusals leave *out untouched. */
    memset(&out, 0x5a, sizeof(out));
    in = zero;
    in.version = 0;
    is_int(gapi__retry_policy_resolve(&out, &in, NULL), GAPI_EINVAL, "resolve: version 0 refused");
    in.version = GAPI_RETRY_POLICY_VERSION + 1;
    is_int(gapi__retry_policy_resolve(&out, &in, NULL), GAPI_EINVAL,
           "resolve: future version refused");
    in = zero;
    in.multiplier = 0.5;
    {
        const char *why = NULL;
        is_int(gapi__retry_policy_resolve(&out, &in, &why), GAPI_EINVAL,
               "resolve: multiplier 0.5 refused");
        ok(why && strstr(why, "multiplier"), "resolve: the reason names the multiplier (%s)",
           why ? why : "(null)");
    }
    in.multiplier = -2.0;
    is_int(gapi__retry_policy_resolve(&out, &in, NULL), GAPI_EINVAL,
           "resolve: negative multiplier");
    in.multiplier = NAN;
    is_int(gapi__retry_policy_resolve(&out, &in, NULL), GAPI_EINVAL,
           "resolve: NaN multiplier refused");
    in.multiplier = INFINITY;
    is_int(gapi__retry_policy_resolve(&out, &in, NULL), GAPI_EINVAL,
           "resolve: infinite multiplier");
    in.multiplier = 1e6;
    is_int(gapi__retry_policy_resolve(&out, &in, NULL), GAPI_EINVAL,
           "resolve: multiplier 1e6 refused");
    is_int(out.max_attempts, 0x5a5a5a5a, "resolve: *out untouched on refusal");
}

static void test_backoff(void)
{
    gapi_retry_policy p = GAPI_RETRY_POLICY_INIT;
    static const unsigned want[] = {1, 2, 4, 8, 16, 32, 64, 64, 64, 64};
    static const unsigned dflt[] = {1000, 2000, 4000, 8000, 16000, 32000, 32000};
    unsigned n, bad = 0, over = 0, zeros = 0, distinct = 0, prev = ~0u;
    int i;

    p.initial_delay_ms = 1;
    p.max_delay_ms = 64;
    p.flags = GAPI_RETRY_NO_JITTER;
    for (n = 1; n <= 10; n++)
        bad += gapi__retry_backoff_ms(&p, n, 0.5) != want[n - 1];
    is_int(bad, 0, "backoff: no jitter: 1, 2, 4, ..., 64, then the cap");
    is_int(gapi__retry_backoff_ms(&p, 100000, 0.5), 64,
           "backoff: huge attempt numbers stay at cap");

    p = (gapi_retry_policy)GAPI_RETRY_POLICY_INIT;
    p.flags = GAPI_RETRY_NO_JITTER;
    for (n = 1, bad = 0; n <= 7; n++)
        bad += gapi__retry_backoff_ms(&p, n, 0.0) != dflt[n - 1];
    is_int(bad, 0, "backoff: default policy 1 s, 2 s, ..., 32 s (rnd ignored)");

    p.initial_delay_ms = 100;
    p.multiplier = 1.5;
    p.max_delay_ms = 1000;
    is_int(gapi__retry_backoff_ms(&p, 3, 0.9), 225, "backoff: multiplier 1.5: 100, 150, 225");
    p.multiplier = 1.0;
    is_int(gapi__retry_backoff_ms(&p, 9, 0.9), 100, "backoff: multiplier 1 is constant");

    /* Full jitter: uniform in [0, min(cap, initial * mult^(n-1))]. */
    p = (gapi_retry_policy)GAPI_RETRY_POLICY_INIT;
    p.initial_delay_ms = 10;
    p.max_delay_ms = 300;
    srand(7);
    for (i = 0; i < 20000; i++) {
        double rnd = rand() / ((double)RAND_MAX + 1.0);
        unsigned att = 1 + (unsigned)(i % 12);
        unsigned bound = att >= 6 ? 300 : 10u << (att - 1);
        unsigned d = gapi__retry_backoff_ms(&p, att, rnd);
        over += d > bound;
        zeros += d == 0;
        distinct += d != prev;
        prev = d;
    }
    is_int(over, 0, "backoff: jittered waits never exceed min(cap, exponential)");
    ok(distinct > 10000, "backoff: jitter varies the wait (%u changes in 20000)", distinct);
    is_int(gapi__retry_backoff_ms(&p, 3, 0.0), 0, "backoff: rnd 0 waits 0");
    is_int(gapi__retry_backoff_ms(&p, 3, 0.999999), 39, "backoff: rnd near 1 waits almost 40");
    is_int(gapi__retry_backoff_ms(&p, 50, 0.5), 150, "backoff: jitter applies below the cap");
}

static void test_retry_after(void)
{
    /* 2024-01-01 00:00:00 UTC, a Monday. */
    const time_t now = 1704067200;

    is_int(gapi__retry_after_ms("1", now), 1000, "retry-after: 1 -> 1000 ms");
    is_int(gapi__retry_after_ms("0", now), 0, "retry-after: 0 -> 0 ms");
    is_int(gapi__retry_after_ms("120", now), 120000, "retry-after: 120 -> 120000 ms");
    is_int(gapi__retry_after_ms("  7 \t", now), 7000, "retry-after: spaces around seconds");
    is_int(gapi__retry_after_ms("\t5", now), 5000, "retry-after: leading tab");
    is_int(gapi__retry_after_ms("007", now), 7000, "retry-after: leading zeros");
    is_int(gapi__retry_after_ms("86399", now), 86399000LL, "retry-after: just under a day");
    is_int(gapi__retry_after_ms("86400", now), DAY_MS, "retry-after: a day");
    is_int(gapi__retry_after_ms("999999999999999999999999", now), DAY_MS,
           "retry-after: huge number clamped to a day (no overflow)");
    is_int(gapi__retry_after_ms(NULL, now), -1, "retry-after: NULL");
    is_int(gapi__retry_after_ms("", now), -1, "retry-after: empty");
    is_int(gapi__retry_after_ms("   ", now), -1, "retry-after: blank");
    is_int(gapi__retry_after_ms("abc", now), -1, "retry-after: garbage");
    is_int(gapi__retry_after_ms("5s", now), -1, "retry-after: trailing unit refused");
    is_int(gapi__retry_after_ms("-1", now), -1, "retry-after: negative refused");
    is_int(gapi__retry_after_ms("+3", now), -1, "retry-after: sign refused");
    is_int(gapi__retry_after_ms("1.5", now), -1, "retry-after: fraction refused");
    is_int(gapi__retry_after_ms("1 2", now), -1, "retry-after: two numbers refused");

    is_int(gapi__retry_after_ms("Mon, 01 Jan 2024 00:00:10 GMT", now), 10000,
           "retry-after: IMF-fixdate 10 s ahead");
    is_int(gapi__retry_after_ms("Mon, 01 Jan 2024 00:00:10 GMT  ", now), 10000,
           "retry-after: IMF-fixdate with trailing spaces");
    is_int(gapi__retry_after_ms("Tue, 02 Jan 2024 00:00:00 GMT", now), DAY_MS,
           "retry-after: date one day ahead");
    is_int(gapi__retry_after_ms("Wed, 01 Jan 2025 00:00:00 GMT", now), DAY_MS,
           "retry-after: date a year ahead clamped to a day");
    is_int(gapi__retry_after_ms("Sun, 31 Dec 2023 23:59:00 GMT", now), 0,
           "retry-after: date in the past -> 0");
    is_int(gapi__retry_after_ms("Mon, 01 Jan 2024 00:00:00 GMT", now), 0,
           "retry-after: date equal to now -> 0");
    /* 2024-02-29 12:00:00 is 1709208000. */
    is_int(gapi__retry_after_ms("Thu, 29 Feb 2024 12:00:00 GMT", 1709208000 - 30), 30000,
           "retry-after: leap day date");
    is_int(gapi__retry_after_ms("Monday, 01-Jan-24 00:00:10 GMT", now), -1,
           "retry-after: obsolete RFC 850 date refused");
    is_int(gapi__retry_after_ms("Mon Jan  1 00:00:10 2024", now), -1,
           "retry-after: obsolete asctime date refused");
    is_int(gapi__retry_after_ms("Mon, 01 Jan 2024 00:00:10 UTC", now), -1,
           "retry-after: zone other than GMT refused");
    is_int(gapi__retry_after_ms("Mon, 01 jan 2024 00:00:10 GMT", now), -1,
           "retry-after: month names are case-sensitive");
    is_int(gapi__retry_after_ms("Mon, 01 anF 2024 00:00:10 GMT", now), -1,
           "retry-after: a month name across two names refused");
    is_int(gapi__retry_after_ms("Mon, 32 Jan 2024 00:00:10 GMT", now), -1,
           "retry-after: day 32 refused");
    is_int(gapi__retry_after_ms("Mon, 01 Jan 2024 24:00:10 GMT", now), -1,
           "retry-after: hour 24 refused");
    is_int(gapi__retry_after_ms("Mon, 01 Jan 2024 00:60:10 GMT", now), -1,
           "retry-after: minute 60 refused");
    is_int(gapi__retry_after_ms("Mon, 01 Jan 1969 00:00:10 GMT", now), -1,
           "retry-after: year before 1970 refused");
    is_int(gapi__retry_after_ms("Mon, 01 Jan 2024 00:00:10 GMT x", now), -1,
           "retry-after: trailing garbage after a date refused");
    is_int(gapi__retry_after_ms("Mon, 01 Jan 2024", now), -1,
           "retry-after: truncated date refused");
}

static struct json_object *J(const char *s)
{
    struct json_object *j = json_tokener_parse(s);

    if (!j)
        abort();
    return j;
}

static void test_retryable(void)
{
    static const int yes[] = {GAPI_EDNS,       GAPI_ECONNECT, GAPI_ECONNECTTIMEOUT, GAPI_ECONNRESET,
                              GAPI_ETRUNCATED, GAPI_ETLS,     GAPI_ESTALL};
    static const int statuses_yes[] = {408, 429, 500, 502, 503, 504};
    static const int statuses_no[] = {0,   100, 200, 201, 204, 301, 304, 400, 401,
                                      404, 405, 409, 412, 413, 499, 501, 505, 599};
    struct json_object *j;
    int e, bad = 0;
    size_t i;

    /* Every code of the enum: retryable exactly when listed in gapi.h. */
    for (e = 0; e >= GAPI_EAUTH; e--) {
        int want = 0;
        for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
            want |= yes[i] == e;
        if (gapi__retry_err_retryable(e) != want) {
            diag("  %s: got %d", gapi_error_name(e), gapi__retry_err_retryable(e));
            bad++;
        }
    }
    is_int(bad, 0,
           "retryable errors: exactly DNS, connect, connect timeout, reset, truncated, "
           "TLS I/O, stall");
    ok(!gapi__retry_err_retryable(GAPI_ETLSVERIFY),
       "retryable errors: a rejected certificate is not");
    ok(!gapi__retry_err_retryable(GAPI_EDEADLINE) && !gapi__retry_err_retryable(GAPI_ECANCELED) &&
           !gapi__retry_err_retryable(GAPI_ESHUTDOWN),
       "retryable errors: deadline, cancel and shutdown are final");
    ok(!gapi__retry_err_retryable(-1000) && !gapi__retry_err_retryable(7),
       "retryable errors: unknown codes are not");

    for (i = 0, bad = 0; i < sizeof(statuses_yes) / sizeof(statuses_yes[0]); i++)
        bad += gapi__retry_status_retryable(statuses_yes[i], NULL) != 1;
    is_int(bad, 0, "retryable statuses: 408, 429, 500, 502, 503, 504");
    for (i = 0, bad = 0; i < sizeof(statuses_no) / sizeof(statuses_no[0]); i++)
        bad += gapi__retry_status_retryable(statuses_no[i], NULL) != 0;
    is_int(bad, 0, "retryable statuses: none of 2xx, 3xx, other 4xx, 501, 505");

    j = J("{\"error\":{\"code\":503,\"errors\":[{\"reason\":\"backendError\"}]}}");
    is_int(gapi__retry_status_retryable(503, j), 1, "retryable: 503 whatever the body");
    json_object_put(j);

    is_int(gapi__retry_status_retryable(403, NULL), 0, "403: without a body it is not retried");
    j = J("{\"error\":{\"code\":403,\"message\":\"Rate Limit Exceeded\","
          "\"errors\":[{\"domain\":\"usageLimits\",\"reason\":\"rateLimitExceeded\"}]}}");
    is_int(gapi__retry_status_retryable(403, j), 1, "403 rateLimitExceeded is retried");
    json_object_put(j);
    j = J("{\"error\":{\"errors\":[{\"reason\":\"userRateLimitExceeded\"}]}}");
    is_int(gapi__retry_status_retryable(403, j), 1, "403 userRateLimitExceeded is retried");
    json_object_put(j);
    j = J("{\"error\":{\"code\":403,\"message\":\"no\",\"errors\":[{\"reason\":\"forbidden\"}]}}");
    is_int(gapi__retry_status_retryable(403, j), 0, "403 forbidden is not retried");
    json_object_put(j);
    j = J("{\"error\":{\"errors\":[{\"reason\":\"forbidden\"},{\"reason\":"
          "\"rateLimitExceeded\"}]}}");
    is_int(gapi__retry_status_retryable(403, j), 1, "403: a rate-limit reason in any item counts");
    json_object_put(j);
    j = J("{\"error\":{\"errors\":[{\"reason\":42},{}]}}");
    is_int(gapi__retry_status_retryable(403, j), 0, "403: reasons of the wrong type ignored");
    json_object_put(j);
    j = J("{\"error\":{\"errors\":{\"reason\":\"rateLimitExceeded\"}}}");
    is_int(gapi__retry_status_retryable(403, j), 0, "403: errors not an array is not retried");
    json_object_put(j);
    j = J("{\"error\":{\"status\":\"RESOURCE_EXHAUSTED\",\"message\":\"rateLimitExceeded\"}}");
    is_int(gapi__retry_status_retryable(403, j), 0, "403: only errors[].reason counts");
    json_object_put(j);
    j = J("[1,2]");
    is_int(gapi__retry_status_retryable(403, j), 0, "403: a body that is not an object");
    json_object_put(j);
    j = J("{\"error\":{\"errors\":[{\"reason\":\"rateLimitExceeded\"}]}}");
    is_int(gapi__retry_status_retryable(404, j), 0, "404 is not retried, whatever the reason");
    json_object_put(j);
}

/* ================================================================ engine */

/* Timing checks compare the server's arrival times (CLOCK_MONOTONIC) with
 * waits on the loop: libevent's default clock is CLOCK_MONOTONIC_COARSE
 * (one tick, often 4 ms, behind), so the tests' bases use the precise one. */
static struct event_base *new_base(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *b;

    if (!cfg)
        abort();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!b)
        abort();
    return b;
}

#define MAX_ATT 16

typedef struct att {
    const gapi_request *req;
    gapi_attempt_info info;
    char reason[192];
} att;

typedef struct fx {
    struct event_base *base;
    ts_server *srv;
    gapi_client *cli;
    int done;
    att a[MAX_ATT];
    int na;
    int hook_bad; /* the hook saw a NULL reason or an attempt out of order */
} fx;

typedef struct res {
    fx *f;
    gapi_request *req; /* valid until the callback returns */
    int calls, err, status, has_resp;
    unsigned attempts;
    char body[256];
    char errmsg[256];
    double t_done;
} res;

static void on_attempt(const gapi_request *req, const gapi_attempt_info *info, void *arg)
{
    fx *f = arg;
    att *a;

    if (!info->reason || !*info->reason)
        f->hook_bad++;
    if (gapi_request_attempts(req) != info->attempt)
        f->hook_bad++;
    if (f->na >= MAX_ATT)
        return;
    a = &f->a[f->na++];
    a->req = req;
    a->info = *info;
    snprintf(a->reason, sizeof(a->reason), "%s", info->reason ? info->reason : "");
    a->info.reason = a->reason;
}

static int fx_setup(fx *f, const gapi_retry_policy *policy)
{
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    char err[256];
    int rc;

    memset(f, 0, sizeof(*f));
    f->base = new_base();
    if (!f->base || !(f->srv = ts_server_new(f->base, NULL)))
        return -1;
    co.ca_pem = ts_server_ca_pem(f->srv);
    co.retry = policy;
    co.on_attempt = on_attempt;
    co.on_attempt_arg = f;
    rc = gapi_client_new(&f->cli, f->base, &co, err, sizeof(err));
    if (rc != GAPI_OK) {
        diag("gapi_client_new: %s (%s)", gapi_error_name(rc), err);
        return -1;
    }
    return 0;
}

static void fx_teardown(fx *f, const char *name)
{
    gapi_client_free(f->cli);
    ts_server_free(f->srv);
    is_int(tu_events_left(f->base), 0, "%s: no events left on the base", name);
    is_int(f->hook_bad, 0, "%s: the attempt hook always had a reason and the right number", name);
    event_base_free(f->base);
}

static void on_done(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    res *r = arg;

    r->calls++;
    r->f->done++;
    r->err = err;
    r->attempts = gapi_request_attempts(req);
    r->has_resp = resp != NULL;
    r->status = resp ? gapi_response_status(resp) : 0;
    if (resp) {
        size_t n;
        const char *b = gapi_response_body(resp, &n);
        snprintf(r->body, sizeof(r->body), "%.*s", (int)n, b);
    }
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", gapi_request_errmsg(req));
    r->t_done = now_ms();
    r->req = NULL;
}

static gapi_request *mk(fx *f, const char *method, const char *path)
{
    char u[256];
    gapi_request *req = NULL;

    snprintf(u, sizeof(u), "%s%s", ts_server_origin(f->srv), path);
    if (gapi_request_new(&req, f->cli, method, u) != GAPI_OK)
        abort();
    return req;
}

static int send_r(fx *f, res *r, gapi_request *req)
{
    int rc;

    memset(r, 0, sizeof(*r));
    r->f = f;
    r->req = req;
    rc = gapi_request_send(req, on_done, r);
    if (rc != GAPI_OK) {
        diag("send: %s (%s)", gapi_error_name(rc), gapi_request_errmsg(req));
        gapi_request_free(req);
        r->req = NULL;
    }
    return rc;
}

/* Send and run the loop until it completes. */
static void run1(fx *f, res *r, gapi_request *req)
{
    int want = f->done + 1;

    if (send_r(f, r, req) == GAPI_OK)
        tu_run_until(f->base, &f->done, want, 20000);
}

static gapi_retry_policy quick(unsigned attempts, unsigned initial_ms)
{
    gapi_retry_policy p = GAPI_RETRY_POLICY_INIT;

    p.max_attempts = attempts;
    p.initial_delay_ms = initial_ms;
    p.max_delay_ms = 10000;
    p.flags = GAPI_RETRY_NO_JITTER;
    return p;
}

static const ts_step_resp S503 = {503, "Content-Type: text/plain\r\n", "busy", TS_FAULT_NONE, 0};
static const ts_step_resp S200 = {200, "Content-Type: text/plain\r\n", "ok", TS_FAULT_NONE, 0};

/* 503, 503, 200 with three attempts: success on the third, after waits of
 * 50 then 100 ms; the hook sees each attempt. */
static void test_recovers(void)
{
    gapi_retry_policy p = quick(3, 50);
    ts_step_resp steps[3];
    gapi_client_stats st;
    double t[4];
    fx f;
    res r;

    if (fx_setup(&f, &p) != 0) {
        ok(0, "recovers: setup");
        return;
    }
    steps[0] = S503, steps[1] = S503, steps[2] = S200;
    ts_route_sequence(f.srv, "/s", steps, 3);
    run1(&f, &r, mk(&f, "GET", "/s"));
    is_int(r.calls, 1, "recovers: one callback");
    is_int(r.err, GAPI_OK, "recovers: success (%s)", r.errmsg);
    is_int(r.status, 200, "recovers: status 200");
    is_str(r.body, "ok", "recovers: the 200's body");
    is_int(r.attempts, 3, "recovers: gapi_request_attempts says 3");
    is_int(ts_server_hits(f.srv, "/s"), 3, "recovers: the server saw 3 requests");
    is_int(ts_server_connections(f.srv), 1, "recovers: 503s keep the connection; one was used");
    if (ts_request_times(f.srv, "/s", t, 4) == 3) {
        ok(t[1] - t[0] >= 50.0, "recovers: first wait >= 50 ms (%.1f)", t[1] - t[0]);
        ok(t[2] - t[1] >= 100.0, "recovers: second wait >= 100 ms (x2) (%.1f)", t[2] - t[1]);
        ok(t[2] - t[0] < 2000.0, "recovers: no wait far beyond the backoff (%.1f)", t[2] - t[0]);
    } else {
        ok(0, "recovers: three arrival times recorded");
    }
    is_int(f.na, 3, "recovers: the hook saw 3 attempts");
    if (f.na == 3) {
        ok(f.a[0].info.attempt == 1 && f.a[0].info.err == 0 && f.a[0].info.status == 503 &&
               f.a[0].info.retrying == 1 && f.a[0].info.delay_ms == 50,
           "recovers: hook 1: HTTP 503, retrying after 50 ms");
        ok(strstr(f.a[0].reason, "503") != NULL, "recovers: hook 1 reason (%s)", f.a[0].reason);
        ok(f.a[1].info.attempt == 2 && f.a[1].info.status == 503 && f.a[1].info.retrying == 1 &&
               f.a[1].info.delay_ms == 100,
           "recovers: hook 2: HTTP 503, retrying after 100 ms");
        ok(f.a[2].info.attempt == 3 && f.a[2].info.err == 0 && f.a[2].info.status == 200 &&
               f.a[2].info.retrying == 0 && f.a[2].info.delay_ms == 0,
           "recovers: hook 3: HTTP 200, final");
        ok(f.a[0].req == f.a[2].req, "recovers: the hook is given the request");
    }
    gapi_client_get_stats(f.cli, &st);
    is_int(st.retries, 2, "recovers: stats.retries 2");
    is_int(st.requests_started, 1, "recovers: stats: one request started");
    is_int(st.requests_completed, 1, "recovers: stats: one completed");
    fx_teardown(&f, "recovers");
}

/* A transport error, then success on a new connection. */
static void test_reset_then_ok(void)
{
    gapi_retry_policy p = quick(3, 20);
    ts_step_resp steps[2];
    fx f;
    res r;

    if (fx_setup(&f, &p) != 0) {
        ok(0, "reset: setup");
        return;
    }
    memset(&steps[0], 0, sizeof(steps[0]));
    steps[0].fault = TS_FAULT_RESET_BEFORE_HEADERS;
    steps[1] = S200;
    ts_route_sequence(f.srv, "/r", steps, 2);
    run1(&f, &r, mk(&f, "GET", "/r"));
    is_int(r.err, GAPI_OK, "reset: success after a reset (%s)", r.errmsg);
    is_int(r.attempts, 2, "reset: 2 attempts");
    is_int(ts_server_hits(f.srv, "/r"), 2, "reset: server saw 2");
    is_int(ts_server_connections(f.srv), 2, "reset: the retry used a new connection");
    if (f.na == 2) {
        ok(f.a[0].info.err == GAPI_ECONNRESET && f.a[0].info.status == 0 && f.a[0].info.retrying &&
               f.a[0].info.delay_ms == 20,
           "reset: hook 1: GAPI_ECONNRESET, no status, retrying after 20 ms (%s)", f.a[0].reason);
        ok(strstr(f.a[0].reason, "GAPI_ECONNRESET") != NULL, "reset: the reason names the error");
        ok(f.a[1].info.err == 0 && f.a[1].info.status == 200 && !f.a[1].info.retrying,
           "reset: hook 2: 200, final");
    } else {
        is_int(f.na, 2, "reset: hook saw 2 attempts");
    }
    fx_teardown(&f, "reset");
}

static int find_service(gapi_service **out, fx *f)
{
    gapi_service_options so = GAPI_SERVICE_OPTIONS_INIT;
    char ep[256], err[256];
    char *path = tap_shared_path("discovery/storage.v1.json");
    int rc;

    if (!path)
        return -1;
    snprintf(ep, sizeof(ep), "%s/", ts_server_origin(f->srv));
    so.endpoint = ep;
    rc = gapi_service_from_file(out, path, &so, err, sizeof(err));
    free(path);
    if (rc != GAPI_OK) {
        diag("storage.v1.json: %s", err);
        return -1;
    }
    return 0;
}

/* Attempts exhausted: the last 503 is the outcome (err 0 for a plain
 * request, GAPI_EHTTP for a call). */
static void test_exhausted(void)
{
    gapi_retry_policy p = quick(3, 5);
    gapi_service *svc = NULL;
    gapi_request *req;
    char err[256];
    fx f;
    res r;

    if (fx_setup(&f, &p) != 0) {
        ok(0, "exhausted: setup");
        return;
    }
    ts_route(f.srv, "/busy", 503, "Content-Type: text/plain\r\n", "busy");
    run1(&f, &r, mk(&f, "GET", "/busy"));
    is_int(r.calls, 1, "exhausted: one callback");
    is_int(r.err, GAPI_OK, "exhausted: err 0 (a whole response arrived)");
    is_int(r.status, 503, "exhausted: the last 503 delivered");
    is_str(r.body, "busy", "exhausted: with its body");
    is_int(r.attempts, 3, "exhausted: 3 attempts");
    is_int(ts_server_hits(f.srv, "/busy"), 3, "exhausted: server saw 3");
    is_int(f.na, 3, "exhausted: hook saw 3");
    if (f.na == 3) {
        ok(!f.a[2].info.retrying && f.a[2].info.delay_ms == 0 && f.a[2].info.status == 503,
           "exhausted: the last attempt is final");
        ok(strstr(f.a[2].reason, "exhausted") != NULL, "exhausted: reason says so (%s)",
           f.a[2].reason);
    }

    /* The same as a call built from a discovery method: GAPI_EHTTP. */
    ts_route(f.srv, "/storage/v1/b/bkt/o/obj", 503, "Content-Type: application/json\r\n",
             "{\"error\":{\"code\":503,\"message\":\"Backend Error\",\"errors\":[{\"reason\":"
             "\"backendError\"}]}}");
    if (find_service(&svc, &f) == 0) {
        if (gapi_call_newv(&req, f.cli, svc, "objects.get", NULL, err, sizeof(err), "bucket", "bkt",
                           "object", "obj", (char *)NULL) == GAPI_OK) {
            f.na = 0;
            run1(&f, &r, req);
            is_int(r.err, GAPI_EHTTP, "exhausted call: GAPI_EHTTP");
            is_int(r.status, 503, "exhausted call: status 503");
            is_int(r.attempts, 3, "exhausted call: 3 attempts");
            ok(strstr(r.errmsg, "503") && strstr(r.errmsg, "Backend Error"),
               "exhausted call: message (%s)", r.errmsg);
            is_int(ts_server_hits(f.srv, "/storage/v1/b/bkt/o/obj"), 3,
                   "exhausted call: server saw 3");
        } else {
            ok(0, "exhausted call: built (%s)", err);
        }
        gapi_service_unref(svc);
    }
    fx_teardown(&f, "exhausted");
}

/* 429 with Retry-After: the wait is what the server asked. */
static void test_retry_after_engine(void)
{
    gapi_retry_policy p = quick(3, 5);
    ts_step_resp steps[2];
    char hdr[128];
    struct tm tm;
    time_t when;
    gapi_request *req;
    double t[2];
    fx f;
    res r;

    if (fx_setup(&f, &p) != 0) {
        ok(0, "retry-after: setup");
        return;
    }
    steps[0] = (ts_step_resp){429, "Retry-After: 1\r\nContent-Type: text/plain\r\n", "slow down",
                              TS_FAULT_NONE, 0};
    steps[1] = S200;
    ts_route_sequence(f.srv, "/ra", steps, 2);
    run1(&f, &r, mk(&f, "GET", "/ra"));
    is_int(r.err, GAPI_OK, "retry-after: success");
    is_int(r.status, 200, "retry-after: 200 in the end");
    is_int(r.attempts, 2, "retry-after: 2 attempts");
    if (ts_request_times(f.srv, "/ra", t, 2) == 2)
        ok(t[1] - t[0] >= 1000.0, "retry-after: waited >= 1 s (%.1f ms)", t[1] - t[0]);
    else
        ok(0, "retry-after: two arrivals");
    ok(f.na == 2 && f.a[0].info.status == 429 && f.a[0].info.delay_ms == 1000,
       "retry-after: the hook's delay is the server's 1000 ms, not the 5 ms backoff");

    /* An HTTP-date 2 s ahead: a wait of 1-2 s (the date has whole seconds). */
    when = time(NULL) + 2;
    gmtime_r(&when, &tm);
    strftime(hdr, sizeof(hdr), "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    steps[0].headers = hdr;
    ts_route_sequence(f.srv, "/ra2", steps, 2);
    f.na = 0;
    run1(&f, &r, mk(&f, "GET", "/ra2"));
    is_int(r.err, GAPI_OK, "retry-after date: success");
    is_int(r.attempts, 2, "retry-after date: 2 attempts");
    ok(f.na == 2 && f.a[0].info.delay_ms >= 1000 && f.a[0].info.delay_ms <= 2000,
       "retry-after date: waited %u ms for a date 2 s ahead", f.na ? f.a[0].info.delay_ms : 0);

    /* A date in the past does not hold the retry back: the backoff rules. */
    steps[0].headers = "Retry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\n";
    ts_route_sequence(f.srv, "/ra3", steps, 2);
    f.na = 0;
    run1(&f, &r, mk(&f, "GET", "/ra3"));
    ok(r.err == 0 && r.status == 200 && f.na == 2 && f.a[0].info.delay_ms == 5,
       "retry-after past date: retried after the 5 ms backoff");

    /* Unparseable Retry-After: ignored, the backoff rules. */
    steps[0].headers = "Retry-After: soon\r\n";
    ts_route_sequence(f.srv, "/ra4", steps, 2);
    f.na = 0;
    run1(&f, &r, mk(&f, "GET", "/ra4"));
    ok(r.err == 0 && r.status == 200 && f.na == 2 && f.a[0].info.delay_ms == 5,
       "retry-after garbage: ignored, retried after the 5 ms backoff");

    /* A Retry-After beyond the deadline: final at once, no waiting. */
    steps[0].headers = "Retry-After: 30\r\n";
    ts_route_sequence(f.srv, "/ra5", steps, 2);
    f.na = 0;
    req = mk(&f, "GET", "/ra5");
    gapi_request_set_timeouts(req, 0, 0, 2000);
    run1(&f, &r, req);
    is_int(r.err, GAPI_OK, "retry-after beyond deadline: err 0");
    is_int(r.status, 429, "retry-after beyond deadline: the 429 delivered");
    is_int(r.attempts, 1, "retry-after beyond deadline: 1 attempt");
    ok(f.na == 1 && !f.a[0].info.retrying && strstr(f.a[0].reason, "deadline"),
       "retry-after beyond deadline: reason (%s)", f.na ? f.a[0].reason : "");
    fx_teardown(&f, "retry-after");
}

static const char UPLOAD[] = "streamed body";

typedef struct reader {
    size_t off;
    int calls;
} reader;

static long read_body(void *buf, size_t len, void *arg)
{
    reader *rd = arg;
    size_t n = sizeof(UPLOAD) - 1 - rd->off;

    rd->calls++;
    if (n > len)
        n = len;
    memcpy(buf, UPLOAD + rd->off, n);
    rd->off += n;
    return (long)n;
}

/* Idempotency: POST and PATCH only when asked; a streamed body never. */
static void test_idempotency(void)
{
    gapi_retry_policy p = quick(3, 5), always = quick(3, 5);
    gapi_request *req;
    reader rd;
    fx f;
    res r;
    size_t n;

    if (fx_setup(&f, &p) != 0) {
        ok(0, "idempotency: setup");
        return;
    }
    ts_route(f.srv, "/w", 503, NULL, "busy");

    req = mk(&f, "POST", "/w");
    gapi_request_set_body(req, "{}", 2, "application/json");
    run1(&f, &r, req);
    ok(r.err == 0 && r.status == 503 && r.attempts == 1, "idempotency: POST not retried");
    is_int(ts_server_hits(f.srv, "/w"), 1, "idempotency: server saw the POST once");
    ok(f.na == 1 && strstr(f.a[0].reason, "not idempotent"), "idempotency: reason (%s)",
       f.na ? f.a[0].reason : "");

    ts_server_reset_counts(f.srv);
    req = mk(&f, "PATCH", "/w");
    gapi_request_set_body(req, "{}", 2, "application/json");
    run1(&f, &r, req);
    ok(r.status == 503 && r.attempts == 1 && ts_server_hits(f.srv, "/w") == 1,
       "idempotency: PATCH not retried");

    ts_server_reset_counts(f.srv);
    req = mk(&f, "POST", "/w");
    gapi_request_set_body(req, "{}", 2, "application/json");
    is_int(gapi_request_set_idempotent(req, 1), GAPI_OK, "idempotency: POST marked idempotent");
    run1(&f, &r, req);
    ok(r.status == 503 && r.attempts == 3 && ts_server_hits(f.srv, "/w") == 3,
       "idempotency: marked POST retried (3 attempts, server saw %u)", ts_server_hits(f.srv, "/w"));
    is_str(ts_last_body(f.srv, "/w", &n), "{}", "idempotency: the body sent again in full");

    ts_server_reset_counts(f.srv);
    always.flags |= GAPI_RETRY_NON_IDEMPOTENT;
    req = mk(&f, "POST", "/w");
    gapi_request_set_body(req, "{}", 2, "application/json");
    gapi_request_set_retry(req, &always);
    run1(&f, &r, req);
    ok(r.status == 503 && r.attempts == 3 && ts_server_hits(f.srv, "/w") == 3,
       "idempotency: GAPI_RETRY_NON_IDEMPOTENT retries a POST");

    ts_server_reset_counts(f.srv);
    req = mk(&f, "GET", "/w");
    gapi_request_set_idempotent(req, 0);
    run1(&f, &r, req);
    ok(r.status == 503 && r.attempts == 1, "idempotency: a GET marked non-idempotent is not");

    ts_server_reset_counts(f.srv);
    req = mk(&f, "PUT", "/w");
    gapi_request_set_body(req, "x", 1, "text/plain");
    run1(&f, &r, req);
    ok(r.status == 503 && r.attempts == 3, "idempotency: PUT retried");
    ts_server_reset_counts(f.srv);
    run1(&f, &r, mk(&f, "DELETE", "/w"));
    ok(r.status == 503 && r.attempts == 3 && ts_server_hits(f.srv, "/w") == 3,
       "idempotency: DELETE retried");

    /* A streamed body cannot be read twice: never retried, even with the
     * always-retry policy. */
    ts_server_reset_counts(f.srv);
    memset(&rd, 0, sizeof(rd));
    req = mk(&f, "PUT", "/w");
    gapi_request_set_body_reader(req, (long long)sizeof(UPLOAD) - 1, "text/plain", read_body, &rd);
    gapi_request_set_retry(req, &always);
    f.na = 0;
    run1(&f, &r, req);
    ok(r.err == 0 && r.status == 503 && r.attempts == 1, "streamed: not retried (attempts %u)",
       r.attempts);
    is_int(ts_server_hits(f.srv, "/w"), 1, "streamed: server saw one request");
    is_str(ts_last_body(f.srv, "/w", &n), UPLOAD, "streamed: with the whole body");
    ok(f.na == 1 && strstr(f.a[0].reason, "stream"), "streamed: reason (%s)",
       f.na ? f.a[0].reason : "");
    fx_teardown(&f, "idempotency");
}

/* Which statuses are retried, end to end. */
static void test_statuses(void)
{
    gapi_retry_policy p = quick(3, 5);
    ts_step_resp steps[2];
    fx f;
    res r;

    if (fx_setup(&f, &p) != 0) {
        ok(0, "statuses: setup");
        return;
    }
    ts_route(f.srv, "/nf", 404, "Content-Type: application/json\r\n",
             "{\"error\":{\"code\":404,\"message\":\"Not Found\"}}");
    run1(&f, &r, mk(&f, "GET", "/nf"));
    ok(r.err == 0 && r.status == 404 && r.attempts == 1 && ts_server_hits(f.srv, "/nf") == 1,
       "404: not retried");
    ok(f.na == 1 && strstr(f.a[0].reason, "not retryable"), "404: reason (%s)",
       f.na ? f.a[0].reason : "");

    steps[0] = (ts_step_resp){403, "Content-Type: application/json; charset=UTF-8\r\n",
                              "{\"error\":{\"code\":403,\"message\":\"Rate Limit Exceeded\","
                              "\"errors\":[{\"domain\":\"usageLimits\",\"reason\":"
                              "\"rateLimitExceeded\"}]}}",
                              TS_FAULT_NONE, 0};
    steps[1] = S200;
    ts_route_sequence(f.srv, "/rl", steps, 2);
    run1(&f, &r, mk(&f, "GET", "/rl"));
    ok(r.err == 0 && r.status == 200 && r.attempts == 2,
       "403 rateLimitExceeded: retried, then 200");

    steps[0].body = "{\"error\":{\"errors\":[{\"reason\":\"userRateLimitExceeded\"}]}}";
    ts_route_sequence(f.srv, "/url", steps, 2);
    run1(&f, &r, mk(&f, "GET", "/url"));
    ok(r.err == 0 && r.status == 200 && r.attempts == 2, "403 userRateLimitExceeded: retried");

    steps[0].body = "{\"error\":{\"code\":403,\"message\":\"Forbidden\",\"errors\":[{\"reason\":"
                    "\"forbidden\"}]}}";
    ts_route_sequence(f.srv, "/fb", steps, 2);
    run1(&f, &r, mk(&f, "GET", "/fb"));
    ok(r.err == 0 && r.status == 403 && r.attempts == 1 && ts_server_hits(f.srv, "/fb") == 1,
       "403 forbidden: not retried");

    steps[0] = (ts_step_resp){500, NULL, "oops", TS_FAULT_NONE, 0};
    ts_route_sequence(f.srv, "/500", steps, 2);
    run1(&f, &r, mk(&f, "GET", "/500"));
    ok(r.status == 200 && r.attempts == 2, "500: retried");
    steps[0].status = 502;
    ts_route_sequence(f.srv, "/502", steps, 2);
    run1(&f, &r, mk(&f, "GET", "/502"));
    ok(r.status == 200 && r.attempts == 2, "502: retried");
    steps[0].status = 504;
    ts_route_sequence(f.srv, "/504", steps, 2);
    run1(&f, &r, mk(&f, "GET", "/504"));
    ok(r.status == 200 && r.attempts == 2, "504: retried");
    steps[0].status = 408;
    ts_route_sequence(f.srv, "/408", steps, 2);
    run1(&f, &r, mk(&f, "GET", "/408"));
    ok(r.status == 200 && r.attempts == 2, "408: retried");
    steps[0].status = 501;
    ts_route_sequence(f.srv, "/501", steps, 2);
    run1(&f, &r, mk(&f, "GET", "/501"));
    ok(r.status == 501 && r.attempts == 1, "501: not retried");

    /* A 503 whose JSON body is broken is still a 503: the status decides,
     * as it does for a call's GAPI_EHTTP (call.c: "still, first, an HTTP
     * error"). */
    steps[0] = (ts_step_resp){503, "Content-Type: application/json\r\n", "{\"error\": oops",
                              TS_FAULT_NONE, 0};
    ts_route_sequence(f.srv, "/503j", steps, 2);
    f.na = 0;
    run1(&f, &r, mk(&f, "GET", "/503j"));
    ok(r.err == 0 && r.status == 200 && r.attempts == 2,
       "503 with a broken JSON body: retried like any 503 (err %s, status %d, attempts %u: %s)",
       gapi_error_name(r.err), r.status, r.attempts, f.na ? f.a[0].reason : "");
    fx_teardown(&f, "statuses");
}

static void block_then_send(evutil_socket_t fd, short what, void *arg);

typedef struct blocked {
    fx *f;
    res *r;
    gapi_request *req;
    unsigned block_ms;
    int rc;
} blocked;

/* Runs inside the loop: block it, then send. The loop's cached clock is
 * then block_ms behind the real one. */
static void block_then_send(evutil_socket_t fd, short what, void *arg)
{
    blocked *b = arg;

    (void)fd;
    (void)what;
    usleep(b->block_ms * 1000);
    b->rc = send_r(b->f, b->r, b->req);
}

/* The total deadline covers every attempt and wait. */
static void test_deadline(void)
{
    gapi_retry_policy p = quick(10, 200), budget = quick(10, 200);
    ts_step_resp steps[2];
    gapi_request *req;
    struct timeval zero = {0, 0};
    blocked b;
    double t0;
    fx f;
    res r;

    if (fx_setup(&f, &p) != 0) {
        ok(0, "deadline: setup");
        return;
    }
    ts_route(f.srv, "/d", 503, NULL, "busy");
    /* A kept-alive connection first, so that the attempts below take
     * milliseconds even under valgrind: the margins are ~150 ms. */
    ts_route(f.srv, "/warm", 200, NULL, "ok");
    run1(&f, &r, mk(&f, "GET", "/warm"));
    f.na = 0;

    /* Waits 200, 400, 800: after the second wait the third would end past
     * 1000 ms, so the third attempt's 503 is final. */
    req = mk(&f, "GET", "/d");
    gapi_request_set_timeouts(req, 0, 0, 1000);
    t0 = now_ms();
    run1(&f, &r, req);
    is_int(r.calls, 1, "deadline: one callback");
    ok(r.err == 0 && r.status == 503, "deadline: the last 503 delivered (err %s)",
       gapi_error_name(r.err));
    is_int(r.attempts, 3, "deadline: 3 attempts fit in 1000 ms");
    is_int(ts_server_hits(f.srv, "/d"), 3, "deadline: server saw 3");
    ok(r.t_done - t0 < 1000.0, "deadline: finished before the deadline (%.0f ms)", r.t_done - t0);
    ok(f.na == 3 && strstr(f.a[2].reason, "deadline"), "deadline: reason (%s)",
       f.na == 3 ? f.a[2].reason : "");

    /* max_elapsed_ms: the same waits against a 400 ms budget. */
    ts_server_reset_counts(f.srv);
    budget.max_elapsed_ms = 400;
    req = mk(&f, "GET", "/d");
    gapi_request_set_retry(req, &budget);
    f.na = 0;
    run1(&f, &r, req);
    ok(r.err == 0 && r.status == 503 && r.attempts == 2,
       "max_elapsed: 2 attempts (200 ms, then 400 more would pass 400)");
    is_int(ts_server_hits(f.srv, "/d"), 2, "max_elapsed: server saw 2");
    ok(f.na == 2 && strstr(f.a[1].reason, "budget"), "max_elapsed: reason (%s)",
       f.na == 2 ? f.a[1].reason : "");

    /* The engine never starts a wait that would end past the deadline.
     * The deadline counts from the send even when the callback that sends
     * has blocked the loop first (libevent's cached clock is then stale):
     * after 400 ms of blocking, a 700 ms deadline still leaves room for
     * the 500 ms wait and the second attempt. */
    ts_server_reset_counts(f.srv);
    steps[0] = S503, steps[1] = S200;
    ts_route_sequence(f.srv, "/dw", steps, 2);
    memset(&b, 0, sizeof(b));
    b.f = &f;
    b.r = &r;
    b.req = mk(&f, "GET", "/dw");
    b.block_ms = 400;
    b.rc = -1;
    p = quick(3, 500);
    gapi_request_set_retry(b.req, &p);
    gapi_request_set_timeouts(b.req, 0, 0, 700);
    f.na = 0;
    event_base_once(f.base, -1, EV_TIMEOUT, block_then_send, &b, &zero);
    tu_run_until(f.base, &f.done, f.done + 1, 5000);
    is_int(b.rc, GAPI_OK, "blocked send: sent");
    is_int(r.calls, 1, "blocked send: one callback");
    ok(r.err == 0 && r.status == 200, "blocked send: the deadline did not fire early (err %s, %d)",
       gapi_error_name(r.err), r.status);
    is_int(r.attempts, 2, "blocked send: 2 attempts");
    ok(f.na == 2 && f.a[0].info.retrying && f.a[0].info.delay_ms == 500,
       "blocked send: the first attempt was retried after 500 ms");
    is_int(ts_server_hits(f.srv, "/dw"), 2, "blocked send: the server saw both attempts");
    fx_teardown(&f, "deadline");
}

static void test_cancel_and_free(void)
{
    gapi_retry_policy p = quick(5, 300);
    gapi_client_stats st;
    gapi_request *req;
    fx f;
    res r;

    if (fx_setup(&f, &p) != 0) {
        ok(0, "cancel: setup");
        return;
    }
    ts_route(f.srv, "/c", 503, NULL, "busy");
    send_r(&f, &r, mk(&f, "GET", "/c"));
    req = r.req;
    tu_run_until(f.base, &f.na, 1, 5000);
    ok(f.na == 1 && f.a[0].info.retrying && f.a[0].info.delay_ms == 300,
       "cancel: first attempt failed, 300 ms wait begun");
    is_int(r.calls, 0, "cancel: no callback yet");
    is_int(gapi_request_cancel(req), GAPI_OK, "cancel: accepted during the wait");
    is_int(r.calls, 0, "cancel: callback not from inside gapi_request_cancel");
    tu_run_until(f.base, &f.done, 1, 5000);
    tu_run_for(f.base, 500);
    is_int(r.calls, 1, "cancel: exactly one callback");
    is_int(r.err, GAPI_ECANCELED, "cancel: GAPI_ECANCELED");
    ok(!r.has_resp, "cancel: no response");
    is_int(r.attempts, 1, "cancel: 1 attempt");
    is_int(ts_server_hits(f.srv, "/c"), 1, "cancel: no further attempt reached the server");
    is_int(f.na, 1, "cancel: no further attempt told to the hook");
    gapi_client_get_stats(f.cli, &st);
    is_int(st.retries, 1, "cancel: stats.retries counts the retry that was scheduled");

    /* The client freed during the wait: GAPI_ESHUTDOWN, once, inside free. */
    ts_server_reset_counts(f.srv);
    f.na = 0;
    send_r(&f, &r, mk(&f, "GET", "/c"));
    tu_run_until(f.base, &f.na, 1, 5000);
    ok(f.na == 1 && f.a[0].info.retrying, "free: first attempt failed, wait begun");
    gapi_client_free(f.cli);
    f.cli = NULL;
    is_int(r.calls, 1, "free: the callback ran once, inside gapi_client_free");
    is_int(r.err, GAPI_ESHUTDOWN, "free: GAPI_ESHUTDOWN");
    ok(strstr(r.errmsg, "shut") != NULL, "free: message (%s)", r.errmsg);
    tu_run_for(f.base, 400);
    is_int(r.calls, 1, "free: still once");
    is_int(ts_server_hits(f.srv, "/c"), 1, "free: no further attempt");
    fx_teardown(&f, "cancel/free");
}

/* Policies: per-request over the client's, max_attempts 1, none at all,
 * bad ones refused. */
static void test_policies(void)
{
    gapi_retry_policy client_p = quick(2, 5), four = quick(4, 5), one = quick(1, 5), bad;
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    gapi_client_stats st;
    gapi_client *c2 = NULL;
    gapi_request *req;
    char err[256];
    fx f;
    res r;
    int rc;

    if (fx_setup(&f, &client_p) != 0) {
        ok(0, "policies: setup");
        return;
    }
    ts_route(f.srv, "/p", 503, NULL, "busy");
    run1(&f, &r, mk(&f, "GET", "/p"));
    is_int(r.attempts, 2, "policies: the client's policy (2 attempts)");

    req = mk(&f, "GET", "/p");
    is_int(gapi_request_set_retry(req, &four), GAPI_OK, "policies: request policy set");
    run1(&f, &r, req);
    is_int(r.attempts, 4, "policies: the request's policy overrides (4 attempts)");

    req = mk(&f, "GET", "/p");
    gapi_request_set_retry(req, &four);
    is_int(gapi_request_set_retry(req, NULL), GAPI_OK, "policies: NULL restores the client's");
    run1(&f, &r, req);
    is_int(r.attempts, 2, "policies: back to 2 attempts");

    req = mk(&f, "GET", "/p");
    gapi_request_set_retry(req, &one);
    f.na = 0;
    run1(&f, &r, req);
    is_int(r.attempts, 1, "policies: max_attempts 1 disables retries");
    ok(f.na == 1 && !f.a[0].info.retrying, "policies: the hook is told the one attempt is final");

    gapi_client_get_stats(f.cli, &st);
    is_int(st.retries, 1 + 3 + 1, "policies: stats.retries sums every request's retries");

    /* Refusals, with a message. */
    req = mk(&f, "GET", "/p");
    bad = four;
    bad.multiplier = 0.5;
    is_int(gapi_request_set_retry(req, &bad), GAPI_EINVAL, "policies: multiplier 0.5 refused");
    ok(strstr(gapi_request_errmsg(req), "multiplier") != NULL, "policies: message (%s)",
       gapi_request_errmsg(req));
    bad = four;
    bad.version = 99;
    is_int(gapi_request_set_retry(req, &bad), GAPI_EINVAL, "policies: bad version refused");
    is_int(gapi_request_set_retry(NULL, &four), GAPI_EINVAL, "policies: NULL request");
    run1(&f, &r, req);
    is_int(r.attempts, 2, "policies: a refused policy left the request's as it was");
    req = mk(&f, "GET", "/p");
    send_r(&f, &r, req);
    is_int(gapi_request_set_retry(req, &four), GAPI_EBUSY, "policies: EBUSY once sent");
    tu_run_until(f.base, &f.done, f.done + 1, 5000);

    co.ca_pem = ts_server_ca_pem(f.srv);
    co.retry = &bad;
    err[0] = '\0';
    rc = gapi_client_new(&c2, f.base, &co, err, sizeof(err));
    is_int(rc, GAPI_EINVAL, "policies: gapi_client_new refuses a bad policy");
    ok(c2 == NULL && strstr(err, "retry") != NULL, "policies: client message (%s)", err);
    fx_teardown(&f, "policies");

    /* No policy at all: one attempt, and the hook says why. */
    if (fx_setup(&f, NULL) != 0) {
        ok(0, "no policy: setup");
        return;
    }
    ts_route(f.srv, "/p", 503, NULL, "busy");
    run1(&f, &r, mk(&f, "GET", "/p"));
    ok(r.status == 503 && r.attempts == 1, "no policy: one attempt");
    ok(f.na == 1 && strstr(f.a[0].reason, "no retry policy"), "no policy: reason (%s)",
       f.na ? f.a[0].reason : "");
    gapi_client_get_stats(f.cli, &st);
    is_int(st.retries, 0, "no policy: stats.retries 0");
    fx_teardown(&f, "no policy");
}

/* ================================================================ alloc */

static long alloc_n, fail_at;
static int failed_one;

static int should_fail(void)
{
    if (++alloc_n == fail_at) {
        failed_one = 1;
        return 1;
    }
    return 0;
}

static void *t_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n);
}

static long allocs_at_first_attempt;

static void count_hook(const gapi_request *req, const gapi_attempt_info *info, void *arg)
{
    (void)req;
    (void)arg;
    if (info->attempt == 1)
        allocs_at_first_attempt = alloc_n;
}

/* Fail the Nth allocation for every N along a retried request (503, reset,
 * 200): every run ends with a refusal (GAPI_ENOMEM) or exactly one
 * callback, and nothing is left on the base. Leaks are ASan's and
 * valgrind's to find. */
static void test_alloc_sweep(void)
{
    struct event_base *base = new_base();
    ts_server *srv = ts_server_new(base, NULL);
    gapi_retry_policy p = quick(3, 1);
    ts_step_resp steps[3];
    char u[256];
    int runs = 0, bad = 0, oks = 0, enomem = 0;

    if (!srv) {
        ok(0, "alloc: server");
        event_base_free(base);
        return;
    }
    steps[0] = S503;
    memset(&steps[1], 0, sizeof(steps[1]));
    steps[1].fault = TS_FAULT_RESET_BEFORE_HEADERS;
    steps[2] = S200;
    ts_route_sequence(srv, "/a", steps, 3);
    snprintf(u, sizeof(u), "%s/a", ts_server_origin(srv));
    for (fail_at = 1; fail_at < 20000; fail_at++) {
        gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
        gapi_client *c = NULL;
        gapi_request *req = NULL;
        fx f;
        res r;
        int rc;

        memset(&f, 0, sizeof(f));
        memset(&r, 0, sizeof(r));
        f.base = base;
        r.f = &f;
        ts_server_reset_counts(srv);
        co.ca_pem = ts_server_ca_pem(srv);
        co.retry = &p;
        co.on_attempt = count_hook;
        alloc_n = 0;
        failed_one = 0;
        runs++;
        gapi_set_allocator(t_malloc, t_realloc, free);
        rc = gapi_client_new(&c, base, &co, NULL, 0);
        if (rc == GAPI_OK) {
            rc = gapi_request_new(&req, c, "GET", u);
            if (rc == GAPI_OK && (rc = gapi_request_send(req, on_done, &r)) != GAPI_OK)
                gapi_request_free(req);
            if (rc == GAPI_OK) {
                tu_run_until(base, &f.done, 1, 5000);
                bad += r.calls != 1;
                oks += r.err == GAPI_OK && r.status == 200;
                enomem += r.err == GAPI_ENOMEM;
            }
            gapi_client_free(c);
        }
        if (rc != GAPI_OK) {
            bad += rc != GAPI_ENOMEM;
            enomem++;
        }
        gapi_set_allocator(malloc, realloc, free);
        if (!failed_one)
            break;
    }
    ok(runs > 10, "alloc: the sweep covered the path (%d allocations)", runs - 1);
    /* The last run failed nothing: it made every allocation of the path. */
    ok(allocs_at_first_attempt > 0 && allocs_at_first_attempt < alloc_n,
       "alloc: allocations after the first attempt were failed too (%ld of %ld)",
       alloc_n - allocs_at_first_attempt, alloc_n);
    is_int(bad, 0, "alloc: every run refused with GAPI_ENOMEM or called back exactly once");
    ok(enomem > 0, "alloc: %d runs ended in GAPI_ENOMEM", enomem);
    ok(oks >= 1, "alloc: the run without a failure succeeded (%d successes)", oks);
    ts_server_free(srv);
    is_int(tu_events_left(base), 0, "alloc: no events left on the base");
    event_base_free(base);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    tu_watchdog(120);
    test_policy_resolve();
    test_backoff();
    test_retry_after();
    test_retryable();
    test_recovers();
    test_reset_then_ok();
    test_exhausted();
    test_retry_after_engine();
    test_idempotency();
    test_statuses();
    test_deadline();
    test_cancel_and_free();
    test_policies();
    test_alloc_sweep();
    return tap_done();
}
