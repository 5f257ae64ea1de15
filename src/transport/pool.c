/*
 * Per-origin keep-alive pool (see pool.h, conn.h).
 *
 * Invariants:
 *  - o->nconns counts every connection of the origin, whatever its state,
 *    and never exceeds cfg.max_conns_per_origin;
 *  - a transfer is in exactly one place: an origin's wait queue (WAITING),
 *    bound to a connection (CONNECTING/ACTIVE), or nowhere (IDLE);
 *  - a waiting transfer is started as soon as a connection of its origin
 *    becomes reusable, or a slot frees up (then a new connection is opened).
 * Idle connections are reused last-in first-out, so the warmest is used and
 * the others age out by the idle timeout.
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "common/alloc.h"
#include "transport/conn.h"
#include "transport/pool.h"

int gapi__pool_new(gapi__pool **out, const gapi__pool_config *cfg)
{
    gapi__pool *p = gapi__calloc(1, sizeof(*p));

    if (!p)
        return GAPI_ENOMEM;
    p->cfg = *cfg;
    if (!p->cfg.max_conns_per_origin)
        p->cfg.max_conns_per_origin = 8;
    if (!p->cfg.idle_timeout_ms)
        p->cfg.idle_timeout_ms = 30000;
    TAILQ_INIT(&p->origins);
    *out = p;
    return GAPI_OK;
}

static gapi__origin *origin_get(gapi__pool *p, const gapi__url *u)
{
    gapi__origin *o;

    TAILQ_FOREACH(o, &p->origins, link)
    {
        if (strcmp(o->key, u->origin) == 0) {
            /* Keep the busiest origin first: lookups stay O(1) in practice. */
            if (o != TAILQ_FIRST(&p->origins)) {
                TAILQ_REMOVE(&p->origins, o, link);
                TAILQ_INSERT_HEAD(&p->origins, o, link);
            }
            return o;
        }
    }
    o = gapi__calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->key = gapi__strdup(u->origin);
    o->host = gapi__strdup(u->host);
    if (!o->key || !o->host) {
        gapi__free(o->key);
        gapi__free(o->host);
        gapi__free(o);
        return NULL;
    }
    o->pool = p;
    o->port = u->port;
    o->tls = u->tls;
    o->host_is_ip = u->host_is_ip;
    TAILQ_INIT(&o->conns);
    TAILQ_INIT(&o->idle);
    TAILQ_INIT(&o->waitq);
    TAILQ_INSERT_HEAD(&p->origins, o, link);
    return o;
}

static void origin_free(gapi__origin *o)
{
    if (o->session)
        SSL_SESSION_free(o->session);
    gapi__free(o->key);
    gapi__free(o->host);
    gapi__free(o);
}

void gapi__pool_finish(gapi__xfer *x, int err)
{
    if (x->state == GAPI__XFER_IDLE)
        return;
    if (x->state == GAPI__XFER_WAITING) {
        TAILQ_REMOVE(&x->origin->waitq, x, wait_link);
        x->pool->stats.waiting--;
    }
    x->state = GAPI__XFER_IDLE;
    x->conn = NULL;
    if (err != GAPI_OK && !x->errmsg[0])
        snprintf(x->errmsg, sizeof(x->errmsg), "%s", gapi_strerror(err));
    x->done(x, err);
}

/* Give x a connection: an idle one, a new one, or a place in the queue. */
static void dispatch(gapi__origin *o, gapi__xfer *x)
{
    gapi__pool *p = o->pool;
    gapi__conn *c = x->fresh_only ? NULL : TAILQ_FIRST(&o->idle);
    int rc;

    if (c) {
        TAILQ_REMOVE(&o->idle, c, idle_link);
        o->nidle--;
        p->stats.connections_reused++;
        gapi__conn_start(c, x);
        return;
    }
    if (o->nconns < p->cfg.max_conns_per_origin) {
        rc = gapi__conn_open(o, x);
        if (rc != GAPI_OK)
            gapi__pool_finish(x, rc);
        return;
    }
    x->state = GAPI__XFER_WAITING;
    TAILQ_INSERT_TAIL(&o->waitq, x, wait_link);
    p->stats.waiting++;
}

static gapi__xfer *pop_waiter(gapi__origin *o)
{
    gapi__xfer *x = TAILQ_FIRST(&o->waitq);

    if (x) {
        TAILQ_REMOVE(&o->waitq, x, wait_link);
        o->pool->stats.waiting--;
        /* Still in flight: about to be dispatched or finished. */
        x->state = GAPI__XFER_CONNECTING;
    }
    return x;
}

static void idle_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    gapi__conn *c = arg;
    gapi__origin *o = c->origin;

    (void)fd;
    (void)what;
    gapi__conn_destroy(c);
    gapi__pool_conn_gone(o);
}

void gapi__pool_conn_reusable(gapi__conn *c)
{
    gapi__origin *o = c->origin;
    gapi__xfer *x = pop_waiter(o);
    struct timeval tv;

    if (x) {
        o->pool->stats.connections_reused++;
        gapi__conn_start(c, x);
        return;
    }
    c->state = GAPI__CONN_IDLE;
    TAILQ_INSERT_HEAD(&o->idle, c, idle_link);
    o->nidle++;
    tv.tv_sec = o->pool->cfg.idle_timeout_ms / 1000;
    tv.tv_usec = (o->pool->cfg.idle_timeout_ms % 1000) * 1000;
    event_assign(c->timer, o->pool->cfg.base, -1, 0, idle_timeout_cb, c);
    event_add(c->timer, &tv);
}

void gapi__pool_conn_gone(gapi__origin *o)
{
    gapi__xfer *x;

    if (o->nconns >= o->pool->cfg.max_conns_per_origin)
        return;
    x = pop_waiter(o);
    if (x)
        dispatch(o, x);
}

void gapi__pool_replay(gapi__xfer *x)
{
    x->replays++;
    x->fresh_only = 1;
    x->pool->stats.replays++;
    x->state = GAPI__XFER_CONNECTING;
    x->have_resp = 0;
    gapi__response_reset(&x->resp);
    dispatch(x->origin, x);
}

int gapi__pool_submit(gapi__pool *p, gapi__xfer *x)
{
    gapi__origin *o = origin_get(p, x->url);

    if (!o)
        return GAPI_ENOMEM;
    x->pool = p;
    x->origin = o;
    x->replays = 0;
    x->fresh_only = 0;
    x->errmsg[0] = '\0';
    x->have_resp = 0;
    /* Marked in flight before dispatch: dispatch may finish it at once. */
    x->state = GAPI__XFER_CONNECTING;
    dispatch(o, x);
    return GAPI_OK;
}

void gapi__pool_abort(gapi__pool *p, gapi__xfer *x, int err, const char *msg)
{
    gapi__conn *c = x->conn;
    gapi__origin *o = x->origin;

    (void)p;
    if (x->state == GAPI__XFER_IDLE)
        return;
    if (msg)
        snprintf(x->errmsg, sizeof(x->errmsg), "%s", msg);
    if (c) {
        c->x = NULL;
        x->conn = NULL;
        gapi__conn_destroy(c);
    }
    gapi__pool_finish(x, err);
    if (c)
        gapi__pool_conn_gone(o);
}

void gapi__pool_free(gapi__pool *p, int err)
{
    gapi__origin *o;
    gapi__conn *c;
    gapi__xfer *x;

    if (!p)
        return;
    while ((o = TAILQ_FIRST(&p->origins)) != NULL) {
        while ((x = pop_waiter(o)) != NULL) {
            snprintf(x->errmsg, sizeof(x->errmsg), "%s", gapi_strerror(err));
            gapi__pool_finish(x, err);
        }
        while ((c = TAILQ_FIRST(&o->conns)) != NULL) {
            x = c->x;
            c->x = NULL;
            if (x)
                x->conn = NULL;
            gapi__conn_destroy(c);
            if (x) {
                snprintf(x->errmsg, sizeof(x->errmsg), "%s", gapi_strerror(err));
                gapi__pool_finish(x, err);
            }
        }
        TAILQ_REMOVE(&p->origins, o, link);
        origin_free(o);
    }
    gapi__free(p);
}

void gapi__pool_get_stats(const gapi__pool *p, gapi__pool_stats *out)
{
    const gapi__origin *o;

    *out = p->stats;
    out->connections_open = 0;
    out->connections_idle = 0;
    TAILQ_FOREACH(o, &p->origins, link)
    {
        out->connections_open += o->nconns;
        out->connections_idle += o->nidle;
    }
}
