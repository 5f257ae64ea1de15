/*
 * Sending: one accepted request, any number of attempts, one callback.
 *
 * An accepted request moves between phases (request.h) until it completes:
 *
 *   start -> [AUTH: waits for a token] -> XFER -> done?
 *                 ^                                 | retryable, budget left
 *                 +------ BACKOFF (a timer) <-------+
 *
 * Every phase can be left early by gapi__request_abort (cancel, the total
 * deadline, client teardown); whatever happens, the request reaches
 * finish() once, and finish() hands it to the client's done queue.
 *
 * Nothing here sleeps: waits are timers on the loop. A retry never starts
 * from inside the transport's done hook (the connection that just ended is
 * still on the stack): even the immediate retry after a 401 goes through
 * the BACKOFF timer with a zero delay.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "auth/auth.h"
#include "client/client.h"
#include "request/request.h"
#include "request/retry.h"

uint64_t gapi__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)(ts.tv_nsec / 1000000);
}

static void set_msg(gapi_request *r, const char *msg)
{
    if (msg)
        snprintf(r->x.errmsg, sizeof(r->x.errmsg), "%s", msg);
}

static void clear_timers(gapi_request *r)
{
    if (r->dl_ev) {
        event_free(r->dl_ev);
        r->dl_ev = NULL;
    }
    if (r->wait_ev) {
        event_free(r->wait_ev);
        r->wait_ev = NULL;
    }
}

/* The one way out: the higher layer's verdict, then the done queue. */
static void finish(gapi_request *r, int err)
{
    r->phase = GAPI__PH_NONE;
    clear_timers(r); /* events belong to the loop thread; r may be freed elsewhere */
    if (r->ext_ops && r->ext_ops->done)
        err = r->ext_ops->done(r, err, r->ext);
    gapi__client_complete(r->client, r, err);
}

/* Start one transfer, with the token line when the request has one. */
static int transfer(gapi_request *r, const char *line, size_t len)
{
    int rc;

    if (r->tc && (rc = gapi__request_finish_head(r, line, len)) != GAPI_OK)
        return rc;
    r->phase = GAPI__PH_XFER;
    r->attempts++;
    rc = gapi__pool_submit(r->client->pool, &r->x);
    if (rc != GAPI_OK) {
        r->phase = GAPI__PH_NONE;
        r->attempts--;
    }
    return rc;
}

/* Begin the next attempt: get a token (or wait for one), then transfer.
 * Returns 0 when the attempt is under way or waiting. */
static int attempt(gapi_request *r)
{
    gapi_client *c = r->client;
    const char *line;
    size_t len;
    int rc;

    if (c->closing) {
        set_msg(r, "client shut down before the request started");
        return GAPI_ESHUTDOWN;
    }
    gapi__response_reset(&r->x.resp);
    r->x.have_resp = 0;
    if (!r->creds || !gapi__creds_need_token(r->creds))
        return transfer(r, NULL, 0);
    if (!r->tc && !(r->tc = gapi__auth_cache_for(c, r->creds, &r->url)))
        return GAPI_ENOMEM;
    rc = gapi__auth_token(r->tc, r, &line, &len, &r->token_gen);
    if (rc == GAPI__AUTH_WAIT) {
        r->phase = GAPI__PH_AUTH;
        return GAPI_OK;
    }
    if (rc != GAPI_OK)
        return rc;
    return transfer(r, line, len);
}

void gapi__request_token_ready(gapi_request *r, int err, const char *line, size_t len, unsigned gen,
                               const char *msg)
{
    r->phase = GAPI__PH_NONE;
    if (err == GAPI_OK) {
        r->token_gen = gen;
        err = transfer(r, line, len);
        msg = "out of memory starting the request";
    }
    if (err != GAPI_OK) {
        set_msg(r, msg);
        finish(r, err);
    }
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    gapi_request *r = arg;
    char msg[96];

    (void)fd;
    (void)what;
    snprintf(msg, sizeof(msg), "total deadline of %u ms exceeded", r->total_ms);
    gapi__request_abort(r, GAPI_EDEADLINE, msg);
}

static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
    gapi_request *r = arg;
    int rc;

    (void)fd;
    (void)what;
    r->phase = GAPI__PH_NONE;
    if ((rc = attempt(r)) != GAPI_OK)
        finish(r, rc);
}

static int arm(struct event **ev, gapi_client *c, event_callback_fn fn, gapi_request *r,
               unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    if (!*ev && !(*ev = evtimer_new(c->base, fn, r)))
        return GAPI_ENOMEM;
    return evtimer_add(*ev, &tv) == 0 ? GAPI_OK : GAPI_ENOMEM;
}

int gapi__request_start(gapi_request *r)
{
    gapi_client *c = r->client;
    int rc;

    r->state = GAPI__REQ_INFLIGHT;
    TAILQ_INSERT_TAIL(&c->live, r, live_link);
    r->attempts = 0;
    r->auth_retried = 0;
    r->t0_ms = gapi__now_ms();
    rc = c->closing ? GAPI_ESHUTDOWN : GAPI_OK;
    if (rc == GAPI_OK && r->total_ms) {
        /* Timers count from the loop's cached time, which is stale by
         * whatever the current callback has spent: the deadline must count
         * from now, as decide() does. */
        event_base_update_cache_time(c->base);
        rc = arm(&r->dl_ev, c, deadline_cb, r, r->total_ms);
    }
    if (rc == GAPI_OK)
        rc = attempt(r);
    if (rc != GAPI_OK) {
        clear_timers(r);
        TAILQ_REMOVE(&c->live, r, live_link);
        r->state = GAPI__REQ_NEW;
        return rc;
    }
    c->started++;
    return GAPI_OK;
}

/* ------------------------------------------------------------ retries */

static double jitter(void)
{
    /* Spreading retries needs no cryptographic quality; rand_r keeps no
     * shared state between clients on different threads. */
    static __thread unsigned seed;

    if (!seed)
        seed = (unsigned)gapi__now_ms() ^ (unsigned)(uintptr_t)&seed;
    return rand_r(&seed) / ((double)RAND_MAX + 1.0);
}

static int classify(const gapi_request *r, int err, int status)
{
    int v = -1;

    if (r->ext_ops && r->ext_ops->retryable)
        v = r->ext_ops->retryable(r, err, r->ext);
    if (v >= 0)
        return v;
    /* A whole response whose JSON is broken is judged by its status: a
     * 503 from a proxy is worth a retry whatever its body says. */
    if (err == GAPI_EJSON && r->x.have_resp)
        return gapi__retry_status_retryable(status, NULL);
    if (err != GAPI_OK)
        return gapi__retry_err_retryable(err);
    return gapi__retry_status_retryable(status, r->x.resp.json);
}

/* Failures before a single byte of the request left: repeating any
 * method is safe. */
static int never_sent(int err)
{
    return err == GAPI_EDNS || err == GAPI_ECONNECT || err == GAPI_ECONNECTTIMEOUT;
}

static void outcome_name(char *buf, size_t n, int err, int status)
{
    if (err == GAPI_EJSON && status)
        snprintf(buf, n, "HTTP %d (body not valid JSON)", status);
    else if (err != GAPI_OK)
        snprintf(buf, n, "%s", gapi_error_name(err));
    else
        snprintf(buf, n, "HTTP %d", status);
}

/* Decide whether the attempt that just ended gets a successor; tell the
 * attempt hook either way. Returns the wait in ms, or -1 for "final". */
static long decide(gapi_request *r, int err, char *why, size_t n)
{
    const gapi_retry_policy *p = &r->retry;
    int status = r->x.have_resp ? r->x.resp.status : 0;
    uint64_t elapsed = gapi__now_ms() - r->t0_ms;
    unsigned delay;
    long long ra;
    char what[48];

    outcome_name(what, sizeof(what), err, status);
    if (r->reader) { /* already read: a second attempt would send nothing */
        snprintf(why, n, "%s%s", what,
                 err == GAPI_OK && status < 400 ? "" : ": a streamed body cannot be sent again");
        return -1;
    }
    if (err == GAPI_OK && status == 401 && r->tc && !r->auth_retried) {
        r->auth_retried = 1;
        gapi__auth_invalidate(r->tc, r->token_gen);
        snprintf(why, n, "HTTP 401: token refreshed, retrying once");
        return 0;
    }
    if (err == GAPI_OK && status < 400) {
        snprintf(why, n, "%s", what);
        return -1;
    }
    if (!classify(r, err, status)) {
        snprintf(why, n, "%s is not retryable", what);
        return -1;
    }
    if (p->max_attempts <= 1) {
        snprintf(why, n, "%s is retryable but no retry policy is set", what);
        return -1;
    }
    if (!r->idempotent && !(p->flags & GAPI_RETRY_NON_IDEMPOTENT) && !never_sent(err)) {
        snprintf(why, n, "%s is retryable but %s is not idempotent", what, r->method);
        return -1;
    }
    if (r->attempts >= p->max_attempts) {
        snprintf(why, n, "%s: attempts exhausted (%u)", what, r->attempts);
        return -1;
    }
    delay = gapi__retry_backoff_ms(p, r->attempts, jitter());
    ra = status ? gapi__retry_after_ms(gapi__response_find(&r->x.resp, "retry-after"), time(NULL))
                : -1;
    if (ra > (long long)delay)
        delay = (unsigned)ra;
    if (p->max_elapsed_ms && elapsed + delay > p->max_elapsed_ms) {
        snprintf(why, n, "%s: retry budget of %u ms would be spent", what, p->max_elapsed_ms);
        return -1;
    }
    if (r->total_ms && elapsed + delay >= r->total_ms) {
        snprintf(why, n, "%s: the deadline would pass during a %u ms wait", what, delay);
        return -1;
    }
    snprintf(why, n, "%s is retryable", what);
    return (long)delay;
}

static void tell(gapi_request *r, int err, long delay, const char *why)
{
    gapi_client *c = r->client;
    gapi_attempt_info info;

    if (!c->on_attempt || r->internal) /* token requests carry secrets */
        return;
    info.attempt = r->attempts;
    info.err = err;
    info.status = r->x.have_resp ? r->x.resp.status : 0;
    info.retrying = delay >= 0;
    info.delay_ms = delay >= 0 ? (unsigned)delay : 0;
    info.reason = why;
    c->on_attempt(r, &info, c->on_attempt_arg);
}

void gapi__request_xfer_done(gapi__xfer *x, int err)
{
    gapi_request *r = (gapi_request *)((char *)x - offsetof(gapi_request, x));
    char why[160];
    long delay;

    r->phase = GAPI__PH_NONE;
    if (err == GAPI_OK && !r->x.head_request && !r->raw_body)
        err = gapi__request_parse_json(r);
    /* Aborts (cancel, deadline, shutdown) are final whatever the policy. */
    if (err == GAPI_ECANCELED || err == GAPI_EDEADLINE || err == GAPI_ESHUTDOWN)
        delay = -1, snprintf(why, sizeof(why), "%s", gapi_error_name(err));
    else
        delay = decide(r, err, why, sizeof(why));
    tell(r, err, delay, why);
    if (delay >= 0 && arm(&r->wait_ev, r->client, wait_cb, r, (unsigned)delay) == GAPI_OK) {
        r->phase = GAPI__PH_BACKOFF;
        r->client->retries++;
        return;
    }
    finish(r, err);
}

/* ------------------------------------------------------------ aborts */

void gapi__request_abort(gapi_request *r, int err, const char *msg)
{
    switch (r->phase) {
    case GAPI__PH_XFER:
        /* The transport calls gapi__request_xfer_done, which finishes. */
        gapi__pool_abort(r->client->pool, &r->x, err, msg);
        return;
    case GAPI__PH_AUTH:
        gapi__auth_unwait(r);
        break;
    case GAPI__PH_BACKOFF:
        /* The failed attempt's response is not this outcome's. */
        gapi__response_reset(&r->x.resp);
        r->x.have_resp = 0;
        break;
    case GAPI__PH_NONE:
    default:
        return;
    }
    set_msg(r, msg);
    finish(r, err);
}

int gapi_request_send(gapi_request *r, gapi_response_cb cb, void *arg)
{
    int rc;

    if ((rc = gapi__request_prepare(r, cb, arg)) != GAPI_OK)
        return rc;
    if ((rc = gapi__client_reserve(r)) != GAPI_OK)
        return rc;
    if ((rc = gapi__request_start(r)) != GAPI_OK)
        gapi__client_unreserve(r);
    return rc;
}

int gapi_request_cancel(gapi_request *r)
{
    if (!r || r->state != GAPI__REQ_INFLIGHT)
        return GAPI_EBUSY;
    gapi__request_abort(r, GAPI_ECANCELED, "request cancelled");
    return GAPI_OK;
}
