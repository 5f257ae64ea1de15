/*
 * Futures: submit from any thread, then wait, poll or cancel; and the
 * blocking gapi_request_execute built on them.
 *
 * Ownership. A future has up to three references: its owner (until
 * gapi_future_free), the loop (until the request completes) and a queued
 * cancel message (until the loop has read it). The last one to go frees it.
 * Everything below is guarded by f->mu. While the request is in flight the
 * loop owns it; at completion it is handed to the owner (or destroyed, if
 * the owner already let go), so the owner reads the response with no lock
 * and no copy.
 *
 * Lock order: f->mu, then the client's mailbox lock (a cancel is queued
 * while f->mu is held, so it is in the mailbox before the completion that
 * would make it moot; teardown drains the mailbox after every completion).
 */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "client/client.h"

struct gapi_future {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    int done;
    int owner_gone;
    int cancel_queued;
    int err;
    gapi_request *req;
    gapi_client *client;
    gapi__qnode cancel_msg;
};

static void init_cond(pthread_cond_t *cv)
{
    pthread_condattr_t a;

    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

static void future_unref_locked(gapi_future *f)
{
    /* Called with f->mu held; releases it. */
    int last = --f->refs == 0;
    gapi_request *req = last && f->done ? f->req : NULL;

    pthread_mutex_unlock(&f->mu);
    if (!last)
        return;
    if (req)
        gapi__request_destroy(req);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    gapi__free(f);
}

/* Loop thread: the request's callback. */
static void future_complete(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    gapi_future *f = arg;

    (void)req;
    (void)resp;
    pthread_mutex_lock(&f->mu);
    f->err = err;
    f->done = 1;
    pthread_cond_broadcast(&f->cv);
    future_unref_locked(f); /* the loop's reference */
}

void gapi__future_on_cancel_msg(gapi__qnode *n)
{
    gapi_future *f = (gapi_future *)((char *)n - offsetof(gapi_future, cancel_msg));
    gapi_request *req = NULL;

    pthread_mutex_lock(&f->mu);
    f->cancel_queued = 0;
    if (!f->done)
        req = f->req; /* still the loop's: safe to touch here, on the loop */
    future_unref_locked(f);
    if (req)
        gapi_request_cancel(req); /* completes later, through the done queue */
}

int gapi_request_submit_future(gapi_request *req, gapi_future **out)
{
    gapi_future *f;
    int rc;

    if (!req || !out)
        return GAPI_EINVAL;
    /* Refuse before touching req: a request already handed over belongs to
     * the loop (and maybe to another future). */
    if (req->state != GAPI__REQ_NEW)
        return GAPI_EBUSY;
    if (!(f = gapi__calloc(1, sizeof(*f))))
        return GAPI_ENOMEM;
    pthread_mutex_init(&f->mu, NULL);
    init_cond(&f->cv);
    f->refs = 2; /* owner + loop */
    f->req = req;
    f->client = req->client;
    f->cancel_msg.kind = GAPI__MSG_CANCEL;
    req->future = f;
    if ((rc = gapi_request_submit(req, future_complete, f)) != GAPI_OK) {
        req->future = NULL;
        pthread_cond_destroy(&f->cv);
        pthread_mutex_destroy(&f->mu);
        gapi__free(f);
        return rc;
    }
    *out = f;
    return GAPI_OK;
}

/* With f->mu held. */
static void queue_cancel_locked(gapi_future *f)
{
    if (f->done || f->cancel_queued)
        return;
    f->cancel_queued = 1;
    f->refs++;
    gapi__queue_push_msg(&f->client->q, &f->cancel_msg);
}

int gapi_future_cancel(gapi_future *f)
{
    int rc = GAPI_OK;

    if (!f)
        return GAPI_EINVAL;
    pthread_mutex_lock(&f->mu);
    if (f->done)
        rc = GAPI_EBUSY;
    else
        queue_cancel_locked(f);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void gapi_future_free(gapi_future *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->owner_gone = 1;
    queue_cancel_locked(f); /* nobody will read the result */
    future_unref_locked(f);
}

/* Absolute CLOCK_MONOTONIC time timeout_ms from now: the condition
 * variables use that clock (init_cond), so a step of the wall clock neither
 * shortens nor stretches a wait. */
static void deadline_in(struct timespec *ts, unsigned timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int wait_until(gapi_future *f, const struct timespec *deadline)
{
    int rc = GAPI_OK;

    pthread_mutex_lock(&f->mu);
    if (!f->done && gapi__client_on_loop(f->client))
        rc = GAPI_EDEADLK;
    while (rc == GAPI_OK && !f->done) {
        if (!deadline)
            pthread_cond_wait(&f->cv, &f->mu);
        else if (pthread_cond_timedwait(&f->cv, &f->mu, deadline) == ETIMEDOUT && !f->done)
            rc = GAPI_ETIMEDOUT;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

int gapi_future_wait(gapi_future *f, unsigned timeout_ms)
{
    struct timespec ts;

    if (!f)
        return GAPI_EINVAL;
    if (timeout_ms == 0)
        return wait_until(f, NULL);
    deadline_in(&ts, timeout_ms);
    return wait_until(f, &ts);
}

int gapi_future_wait_all(gapi_future *const *fs, size_t n, unsigned timeout_ms)
{
    struct timespec ts;
    size_t i;
    int rc;

    if (!fs && n)
        return GAPI_EINVAL;
    if (timeout_ms)
        deadline_in(&ts, timeout_ms);
    for (i = 0; i < n; i++) {
        if (!fs[i])
            return GAPI_EINVAL;
        if ((rc = wait_until(fs[i], timeout_ms ? &ts : NULL)) != GAPI_OK)
            return rc;
    }
    return GAPI_OK;
}

int gapi_future_done(gapi_future *f)
{
    int done;

    if (!f)
        return 0;
    pthread_mutex_lock(&f->mu);
    done = f->done;
    pthread_mutex_unlock(&f->mu);
    return done;
}

/* The result accessors read fields written before done was set under f->mu;
 * the caller has seen done (wait or done() returned), which orders them. */
static int is_done(gapi_future *f)
{
    return gapi_future_done(f);
}

int gapi_future_error(gapi_future *f)
{
    if (!f)
        return GAPI_EINVAL;
    return is_done(f) ? f->err : GAPI_EBUSY;
}

const gapi_response *gapi_future_response(gapi_future *f)
{
    if (!f || !is_done(f) || !f->req->x.have_resp)
        return NULL;
    return &f->req->x.resp;
}

const char *gapi_future_errmsg(gapi_future *f)
{
    if (!f || !is_done(f))
        return "";
    return f->req->x.errmsg;
}

gapi_request *gapi_future_request(gapi_future *f)
{
    return f && is_done(f) ? f->req : NULL;
}

int gapi_request_execute(gapi_request *req, unsigned timeout_ms, gapi_future **out)
{
    gapi_future *f;
    int rc;

    if (!req || !out)
        return GAPI_EINVAL;
    if (gapi__client_on_loop(req->client))
        return GAPI_EDEADLK;
    if ((rc = gapi_request_submit_future(req, &f)) != GAPI_OK)
        return rc;
    if (gapi_future_wait(f, timeout_ms) == GAPI_ETIMEDOUT) {
        /* Cancel and wait for the cancellation (one loop iteration), so
         * that req is never left half-owned: on 0 the caller always gets a
         * done future. A response that won the race is kept. */
        gapi_future_cancel(f);
        wait_until(f, NULL);
        if (f->err == GAPI_ECANCELED) {
            f->err = GAPI_ETIMEDOUT;
            snprintf(f->req->x.errmsg, sizeof(f->req->x.errmsg),
                     "no response within %u ms (gapi_request_execute timeout)", timeout_ms);
        }
    }
    *out = f;
    return GAPI_OK;
}
