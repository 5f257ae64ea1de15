/*
 * Client lifecycle and callback delivery (see client.h).
 *
 * Rules that make "exactly once" hold:
 *  - a request is in c->live from acceptance until its callback returns;
 *  - it reaches c->doneq exactly once (gapi__client_complete), from the
 *    transport's done hook, and is delivered from there only;
 *  - freeing the client aborts the pool (every transfer's done runs once,
 *    with GAPI_ESHUTDOWN) and then delivers the whole done queue before
 *    anything is freed. Inside a callback the free waits for the outermost
 *    callback to return (hiredis' REDIS_IN_CALLBACK rule);
 *  - a request submitted from another thread is accepted when it is in the
 *    mailbox (c->q); from then on the loop owns it: it is started, or, if
 *    the client is being torn down, completed with GAPI_ESHUTDOWN. Teardown
 *    empties the mailbox and the done queue until both stay empty.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "common/error.h"
#include "common/alloc.h"
#include "auth/auth.h"
#include "client/client.h"
#include "request/retry.h"
#include "transport/conn.h"

static void deliver_one(gapi_client *c, gapi_request *r)
{
    /* A future's callback hands r to another thread: read what we need
     * before it runs and never touch r after. */
    int kept = r->future != NULL;

    /* The max_pending slot passes to the callback: the first
     * gapi_request_send it makes (the next page, a fallback, a chain)
     * takes it over, so no submitter on another thread can grab it in
     * between. Unused, it is given back after the callback. */
    c->cb_slot = r->counted;
    TAILQ_REMOVE(&c->live, r, live_link);
    r->state = GAPI__REQ_DELIVERING;
    c->completed++;
    r->cb(r, r->err, r->x.have_resp ? &r->x.resp : NULL, r->arg);
    if (!kept)
        gapi__request_destroy(r);
    if (c->cb_slot) {
        c->cb_slot = 0;
        gapi__queue_release(&c->q, 1);
    }
}

static void client_destroy(gapi_client *c);
static void teardown(gapi_client *c);
static void maybe_finish_stop(gapi_client *c);
static void publish_stats(gapi_client *c);

/* Run every queued callback. Completions queued by these callbacks wait for
 * the next activation, so one busy producer cannot starve the loop. */
static void drain_done(gapi_client *c)
{
    struct gapi__req_list batch;
    gapi_request *r;

    TAILQ_INIT(&batch);
    TAILQ_CONCAT(&batch, &c->doneq, done_link);
    c->in_callback++;
    while ((r = TAILQ_FIRST(&batch)) != NULL) {
        TAILQ_REMOVE(&batch, r, done_link);
        deliver_one(c, r);
    }
    c->in_callback--;
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    gapi_client *c = arg;

    (void)fd;
    (void)what;
    drain_done(c);
    if (c->in_callback)
        return;
    publish_stats(c);
    if (c->freeing && !c->owned)
        client_destroy(c);
    else if (c->freeing)
        teardown(c); /* the owned thread's loop ends; the thread frees c */
    else
        maybe_finish_stop(c);
}

void gapi__client_complete(gapi_client *c, gapi_request *r, int err)
{
    r->err = err;
    r->state = GAPI__REQ_DONE;
    TAILQ_INSERT_TAIL(&c->doneq, r, done_link);
    if (c->done_ev)
        event_active(c->done_ev, EV_READ, 1);
}

static void resolve_defaults(gapi_client_options *o)
{
    if (!o->max_conns_per_origin)
        o->max_conns_per_origin = 8;
    if (!o->idle_timeout_ms)
        o->idle_timeout_ms = 30000;
    if (!o->connect_timeout_ms)
        o->connect_timeout_ms = 10000;
    if (!o->stall_timeout_ms)
        o->stall_timeout_ms = 60000;
    if (!o->max_header_bytes)
        o->max_header_bytes = 64 * 1024;
    if (!o->max_body_bytes)
        o->max_body_bytes = 256u * 1024 * 1024;
}

static struct evdns_base *make_resolver(struct event_base *base)
{
    /* DISABLE_WHEN_INACTIVE: the resolver's socket leaves the loop when no
     * lookup is pending, so it never keeps a caller's loop alive. */
    struct evdns_base *dns =
        evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!dns) {
        /* No usable resolv.conf: still resolve literals and /etc/hosts. */
        dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (dns)
            evdns_base_load_hosts(dns, NULL);
    }
    return dns;
}

/* Only replaces the default action (termination): a handler or SIG_IGN the
 * program chose stays. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;

    if (sigaction(SIGPIPE, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) &&
        sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

static int session_hook(SSL *ssl, SSL_SESSION *sess)
{
    return gapi__conn_on_tls_session(ssl, sess);
}

/* ------------------------------------------------------------ mailbox */

int gapi__client_is_shut(gapi_client *c)
{
    return __atomic_load_n(&c->shut, __ATOMIC_ACQUIRE);
}

int gapi__client_on_loop(const gapi_client *c)
{
    return pthread_equal(pthread_self(), c->loop_thread);
}

int gapi__client_reserve(gapi_request *r)
{
    gapi_client *c = r->client;
    int rc;

    if (!c->q.max_pending)
        return GAPI_OK;
    if (c->cb_slot) { /* handed over by the completion whose callback runs */
        c->cb_slot = 0;
        r->counted = 1;
        return GAPI_OK;
    }
    if ((rc = gapi__queue_reserve(&c->q)) == GAPI_OK)
        r->counted = 1;
    return rc;
}

void gapi__client_unreserve(gapi_request *r)
{
    if (r->counted) {
        r->counted = 0;
        gapi__queue_release(&r->client->q, 1);
    }
}

/* A submitted request reached the loop: start it, or complete it with the
 * reason it cannot start. Either way it is in c->live and gets one
 * callback through the done queue. */
static void start_submitted(gapi_client *c, gapi_request *r)
{
    int rc = gapi__request_start(r);

    if (rc != GAPI_OK) {
        r->state = GAPI__REQ_INFLIGHT;
        TAILQ_INSERT_TAIL(&c->live, r, live_link);
        c->started++;
        snprintf(r->x.errmsg, sizeof(r->x.errmsg), "%s",
                 rc == GAPI_ESHUTDOWN ? "client shut down before the request started"
                                      : "the request could not be started");
        gapi__client_complete(c, r, rc);
    }
}

static void stop_begin(gapi_client *c);

static void on_mail(gapi__qnode *n, void *arg)
{
    gapi_client *c = arg;
    gapi__qnode *next;
    int stop = 0;

    for (; n; n = next) {
        next = n->next; /* n may be freed by its handler */
        switch (n->kind) {
        case GAPI__MSG_SUBMIT:
            start_submitted(c, (gapi_request *)((char *)n - offsetof(gapi_request, qnode)));
            break;
        case GAPI__MSG_CANCEL:
            gapi__future_on_cancel_msg(n);
            break;
        case GAPI__MSG_STOP:
            stop = 1; /* after the rest of the batch: teardown drains the mailbox */
            break;
        }
    }
    publish_stats(c);
    if (stop)
        stop_begin(c);
}

int gapi_request_submit(gapi_request *r, gapi_response_cb cb, void *arg)
{
    gapi_client *c;
    int rc;

    if ((rc = gapi__request_prepare(r, cb, arg)) != GAPI_OK)
        return rc;
    c = r->client;
    r->qnode.kind = GAPI__MSG_SUBMIT;
    r->counted = c->q.max_pending != 0;
    r->state = GAPI__REQ_QUEUED; /* before the push: the loop may run it at once */
    /* Never block the loop thread on its own queue. */
    rc = gapi__queue_push(&c->q, &r->qnode,
                          (c->opts.flags & GAPI_CLIENT_SUBMIT_BLOCKS) && !gapi__client_on_loop(c));
    if (rc != GAPI_OK) {
        r->counted = 0;
        r->state = GAPI__REQ_NEW;
    }
    return rc;
}

/* ------------------------------------------------------------ shutdown */

static void client_free_struct(gapi_client *c);

/* Loop thread, from one of our own event callbacks, as its last action:
 * end everything. A gapi_client_free made inside a callback delivered by
 * this teardown has no done event left to finish it, so finish it here. */
static void stop_now(gapi_client *c)
{
    teardown(c);
    if (c->freeing && !c->owned)
        client_free_struct(c);
}

static void drain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    gapi_client *c = arg;

    (void)fd;
    (void)what;
    stop_now(c);
}

/* Loop thread: the stop message arrived. Work accepted before it is let
 * run for stop_drain_ms, then whatever is left ends with GAPI_ESHUTDOWN. */
static void stop_begin(gapi_client *c)
{
    struct timeval tv;

    if (c->stopping || c->closing) {
        c->stopping = 1;
        return;
    }
    c->stopping = 1;
    if (c->stop_drain_ms && !TAILQ_EMPTY(&c->live)) {
        tv.tv_sec = c->stop_drain_ms / 1000;
        tv.tv_usec = (c->stop_drain_ms % 1000) * 1000;
        c->drain_timer = evtimer_new(c->base, drain_timer_cb, c);
        if (c->drain_timer && evtimer_add(c->drain_timer, &tv) == 0)
            return;
    }
    stop_now(c);
}

static void maybe_finish_stop(gapi_client *c)
{
    if (c->stopping && !c->closing && TAILQ_EMPTY(&c->live))
        stop_now(c);
}

int gapi_client_shutdown(gapi_client *c, unsigned drain_ms)
{
    int first;

    if (!c)
        return GAPI_EINVAL;
    pthread_mutex_lock(&c->q.mu);
    first = !c->stop_queued;
    if (first) {
        c->stop_queued = 1;
        c->stop_drain_ms = drain_ms;
        __atomic_store_n(&c->shut, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&c->q.mu);
    if (!first)
        return GAPI_OK;
    gapi__queue_close(&c->q);
    c->stop_msg.kind = GAPI__MSG_STOP;
    gapi__queue_push_msg(&c->q, &c->stop_msg);
    return GAPI_OK;
}

/* Requests between attempts (waiting for a token or a retry) are not in
 * the pool, so gapi__pool_free did not end them. */
static void end_waiting(gapi_client *c)
{
    gapi_request *r;

    TAILQ_FOREACH(r, &c->live, live_link)
    {
        if (r->state == GAPI__REQ_INFLIGHT &&
            (r->phase == GAPI__PH_AUTH || r->phase == GAPI__PH_BACKOFF))
            gapi__request_abort(r, GAPI_ESHUTDOWN, "client shut down");
    }
}

/* Loop thread, never inside a user callback. Ends everything: in-flight
 * transfers and mailbox submissions complete with GAPI_ESHUTDOWN, every
 * callback runs, then every event of ours leaves the base. The struct
 * itself stays for gapi_client_free. */
static void teardown(gapi_client *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    __atomic_store_n(&c->shut, 1, __ATOMIC_RELEASE);
    if (c->q.ev)
        gapi__queue_close(&c->q);
    gapi__pool_free(c->pool, GAPI_ESHUTDOWN);
    c->pool = NULL;
    /* Callbacks may cancel or drop futures (queueing messages); loop until
     * nothing new appears. */
    for (;;) {
        if (c->q.ev)
            gapi__queue_drain_now(&c->q);
        end_waiting(c);
        if (TAILQ_EMPTY(&c->doneq))
            break;
        while (!TAILQ_EMPTY(&c->doneq))
            drain_done(c);
    }
    gapi__auth_client_free(c);
    /* The mailbox's lock and descriptors stay until the struct is freed:
     * other threads may still call submit (and get GAPI_ESHUTDOWN). */
    gapi__queue_detach(&c->q);
    if (c->drain_timer) {
        event_free(c->drain_timer);
        c->drain_timer = NULL;
    }
    if (c->done_ev) {
        event_free(c->done_ev);
        c->done_ev = NULL;
    }
    if (c->dns && c->own_dns) {
        evdns_base_free(c->dns, 0);
        c->dns = NULL;
    }
    gapi__tls_free(c->tls);
    c->tls = NULL;
    publish_stats(c);
    if (c->owned)
        event_base_loopbreak(c->base);
}

static void client_free_struct(gapi_client *c)
{
    gapi_credentials_unref(c->creds);
    gapi__queue_destroy(&c->q);
    pthread_mutex_destroy(&c->stats_mu);
    gapi__free(c->user_agent);
    gapi__free(c);
}

static void client_destroy(gapi_client *c)
{
    teardown(c);
    client_free_struct(c);
}

/* ------------------------------------------------------------ lifecycle */

/* The whole User-Agent header line, made once. */
static int make_user_agent(gapi_client *c, const char *app, char *errbuf, size_t errbuf_size)
{
    static const char tail[] = "gapi/" GAPI_VERSION_STRING "\r\n";
    size_t n = app ? strlen(app) : 0;

    for (size_t i = 0; i < n; i++) {
        if (app[i] < 0x20 || app[i] > 0x7e) {
            gapi__errbuf_printf(
                errbuf, errbuf_size,
                "gapi_client_new: application_name has a character that is not printable "
                "ASCII");
            return GAPI_EINVAL;
        }
    }
    c->user_agent = gapi__malloc(sizeof("User-Agent: ") + n + 1 + sizeof(tail));
    if (!c->user_agent) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return GAPI_ENOMEM;
    }
    snprintf(c->user_agent, sizeof("User-Agent: ") + n + 1 + sizeof(tail), "User-Agent: %s%s%s",
             n ? app : "", n ? " " : "", tail);
    return GAPI_OK;
}

static int client_init(gapi_client **out, struct event_base *base, const gapi_client_options *opts,
                       char *errbuf, size_t errbuf_size)
{
    gapi_client_options o = GAPI_CLIENT_OPTIONS_INIT;
    gapi_retry_policy retry;
    const char *why;
    gapi__pool_config pc;
    gapi_client *c;
    int rc;

    if (!out || !base) {
        gapi__errbuf_printf(errbuf, errbuf_size, "gapi_client_new: out and base are required");
        return GAPI_EINVAL;
    }
    if (opts) {
        /* Version 1 had everything before max_pending, version 2 everything
         * before credentials. */
        if (opts->version == 1 || opts->version == 2) {
            memcpy(&o, opts,
                   opts->version == 1 ? offsetof(gapi_client_options, max_pending)
                                      : offsetof(gapi_client_options, credentials));
            o.version = GAPI_CLIENT_OPTIONS_VERSION;
        } else if (opts->version == GAPI_CLIENT_OPTIONS_VERSION) {
            o = *opts;
        } else {
            gapi__errbuf_printf(
                errbuf, errbuf_size,
                "gapi_client_new: options.version is not GAPI_CLIENT_OPTIONS_VERSION "
                "(initialise with GAPI_CLIENT_OPTIONS_INIT)");
            return GAPI_EINVAL;
        }
    }
    if (o.retry && gapi__retry_policy_resolve(&retry, o.retry, &why) != GAPI_OK) {
        gapi__errbuf_printf(errbuf, errbuf_size, "gapi_client_new: options.retry: %s", why);
        return GAPI_EINVAL;
    }
    resolve_defaults(&o);
    if (!(o.flags & GAPI_CLIENT_KEEP_SIGPIPE))
        ignore_sigpipe();
    c = gapi__calloc(1, sizeof(*c));
    if (!c) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return GAPI_ENOMEM;
    }
    c->base = base;
    c->opts = o;
    c->loop_thread = pthread_self();
    pthread_mutex_init(&c->stats_mu, NULL);
    /* Option strings are only needed to build the TLS context. */
    c->opts.ca_file = c->opts.ca_dir = c->opts.ca_pem = NULL;
    c->opts.application_name = NULL;
    if (o.retry)
        c->retry = retry;
    c->opts.retry = NULL;
    c->creds = gapi_credentials_ref(o.credentials);
    c->opts.credentials = NULL;
    c->on_attempt = o.on_attempt;
    c->on_attempt_arg = o.on_attempt_arg;
    TAILQ_INIT(&c->live);
    TAILQ_INIT(&c->doneq);
    if ((rc = make_user_agent(c, o.application_name, errbuf, errbuf_size)) != GAPI_OK) {
        pthread_mutex_destroy(&c->stats_mu);
        gapi__free(c);
        return rc;
    }
    rc = gapi__queue_init(&c->q, base, o.max_pending, on_mail, c);
    if (rc != GAPI_OK) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            rc == GAPI_ENOMEM ? "out of memory"
                                              : "cannot make the wake-up descriptor");
        gapi__free(c->user_agent);
        pthread_mutex_destroy(&c->stats_mu);
        gapi__free(c);
        return rc;
    }
    rc = gapi__tls_new(&c->tls, &o, session_hook, errbuf, errbuf_size);
    if (rc != GAPI_OK)
        goto fail;
    c->dns = o.dns_base;
    if (!c->dns) {
        c->dns = make_resolver(base);
        c->own_dns = 1;
        if (!c->dns) {
            gapi__errbuf_printf(errbuf, errbuf_size, "cannot create a DNS resolver");
            rc = GAPI_EDNS;
            goto fail;
        }
    }
    c->done_ev = event_new(base, -1, 0, done_cb, c);
    memset(&pc, 0, sizeof(pc));
    pc.base = base;
    pc.dns = c->dns;
    pc.tls = c->tls;
    pc.max_conns_per_origin = o.max_conns_per_origin;
    pc.idle_timeout_ms = o.idle_timeout_ms;
    if (!c->done_ev || gapi__pool_new(&c->pool, &pc) != GAPI_OK) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        rc = GAPI_ENOMEM;
        goto fail;
    }
    *out = c;
    return GAPI_OK;
fail:
    client_destroy(c);
    return rc;
}

int gapi_client_new(gapi_client **out, struct event_base *base, const gapi_client_options *opts,
                    char *errbuf, size_t errbuf_size)
{
    return client_init(out, base, opts, errbuf, errbuf_size);
}

/* Own-loop-thread mode. */
struct start_sync {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running;
};

static void *loop_main(void *arg)
{
    void **args = arg;
    gapi_client *c = args[0];
    struct start_sync *ss = args[1];
    struct event_base *base = c->base;

    c->loop_thread = pthread_self();
    pthread_mutex_lock(&ss->mu);
    ss->running = 1;
    pthread_cond_signal(&ss->cv);
    pthread_mutex_unlock(&ss->mu); /* ss and args are gone after this */
    event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
    /* Teardown freed our bufferevents; libevent finishes freeing them
     * (and their SSL objects) in finalizer callbacks that only a loop pass
     * runs. */
    event_base_loop(base, EVLOOP_NONBLOCK);
    if (c->self_free) {
        /* gapi_client_free ran on this thread: nobody will join us. */
        client_free_struct(c);
        event_base_free(base);
    }
    return NULL;
}

int gapi_client_start(gapi_client **out, const gapi_client_options *opts, char *errbuf,
                      size_t errbuf_size)
{
    struct event_base *base;
    struct start_sync ss;
    gapi_client *c;
    void *args[2];
    int rc;

    if (!out) {
        gapi__errbuf_printf(errbuf, errbuf_size, "gapi_client_start: out is required");
        return GAPI_EINVAL;
    }
    if (!(base = event_base_new())) {
        gapi__errbuf_printf(errbuf, errbuf_size, "cannot create an event_base");
        return GAPI_ENOMEM;
    }
    if ((rc = client_init(&c, base, opts, errbuf, errbuf_size)) != GAPI_OK) {
        event_base_free(base);
        return rc;
    }
    c->owned = 1;
    pthread_mutex_init(&ss.mu, NULL);
    pthread_cond_init(&ss.cv, NULL);
    ss.running = 0;
    args[0] = c;
    args[1] = &ss;
    if ((rc = pthread_create(&c->thread, NULL, loop_main, args)) != 0) {
        gapi__errbuf_printf(errbuf, errbuf_size, "cannot start the loop thread");
        c->owned = 0;
        client_destroy(c);
        event_base_free(base);
        pthread_cond_destroy(&ss.cv);
        pthread_mutex_destroy(&ss.mu);
        return rc == EAGAIN ? GAPI_ENOMEM : GAPI_EINVAL;
    }
    /* Wait until the thread runs, so c->loop_thread is set before any
     * other thread can ask gapi__client_on_loop. */
    pthread_mutex_lock(&ss.mu);
    while (!ss.running)
        pthread_cond_wait(&ss.cv, &ss.mu);
    pthread_mutex_unlock(&ss.mu);
    pthread_cond_destroy(&ss.cv);
    pthread_mutex_destroy(&ss.mu);
    *out = c;
    return GAPI_OK;
}

void gapi_client_free(gapi_client *c)
{
    struct event_base *base;

    if (!c)
        return;
    if (c->owned && !gapi__client_on_loop(c)) {
        /* Another thread: stop the loop (after any drain already asked
         * for) and wait for it. */
        gapi_client_shutdown(c, 0);
        pthread_join(c->thread, NULL);
        base = c->base;
        client_free_struct(c);
        event_base_free(base);
        return;
    }
    if (c->freeing)
        return; /* already deferred */
    c->freeing = 1;
    if (c->owned) {
        /* From the owned loop thread (a callback): nobody can join it, so
         * the thread frees everything when its loop ends. */
        c->self_free = 1;
        pthread_detach(c->thread);
    }
    if (c->in_callback) {
        /* Make sure done_cb runs once more to finish the job even if no
         * other completion is pending. */
        if (c->done_ev)
            event_active(c->done_ev, EV_READ, 1);
        return;
    }
    if (c->owned)
        teardown(c);
    else
        client_destroy(c);
}

struct event_base *gapi_client_base(const gapi_client *c)
{
    return c ? c->base : NULL;
}

static void live_stats(const gapi_client *c, gapi_client_stats *out)
{
    gapi__pool_stats ps;

    memset(out, 0, sizeof(*out));
    out->requests_started = c->started;
    out->requests_completed = c->completed;
    out->retries = c->retries;
    out->token_fetches = c->token_fetches;
    if (!c->pool)
        return;
    gapi__pool_get_stats(c->pool, &ps);
    out->connections_opened = ps.connections_opened;
    out->connections_reused = ps.connections_reused;
    out->tls_resumed = ps.tls_resumed;
    out->replays = ps.replays;
    out->connections_open = ps.connections_open;
    out->connections_idle = ps.connections_idle;
    out->requests_waiting = ps.waiting;
}

/* Loop thread: copy the counters where other threads may read them. Done
 * once per batch of completions or submissions, so a reader off the loop
 * sees them at most one batch late, for the price of one uncontended lock
 * per batch instead of an atomic per counter update. */
static void publish_stats(gapi_client *c)
{
    gapi_client_stats st;

    live_stats(c, &st);
    pthread_mutex_lock(&c->stats_mu);
    c->stats_pub = st;
    pthread_mutex_unlock(&c->stats_mu);
}

void gapi_client_get_stats(const gapi_client *c, gapi_client_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!c)
        return;
    if (gapi__client_on_loop(c)) {
        live_stats(c, out);
        return;
    }
    pthread_mutex_lock((pthread_mutex_t *)&c->stats_mu);
    *out = c->stats_pub;
    pthread_mutex_unlock((pthread_mutex_t *)&c->stats_mu);
}
