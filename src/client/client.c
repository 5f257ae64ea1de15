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
 *    callback to return (hiredis' REDIS_IN_CALLBACK rule).
 */
#include <signal.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "common/alloc.h"
#include "client/client.h"
#include "transport/conn.h"

static void deliver_one(gapi_client *c, gapi_request *r)
{
    TAILQ_REMOVE(&c->live, r, live_link);
    r->state = GAPI__REQ_DELIVERING;
    c->completed++;
    r->cb(r, r->err, r->x.have_resp ? &r->x.resp : NULL, r->arg);
    gapi__request_destroy(r);
}

static void client_destroy(gapi_client *c);

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
    if (c->closing && c->in_callback == 0)
        client_destroy(c);
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

static void fail_msg(char *errbuf, size_t n, const char *msg)
{
    if (errbuf && n) {
        strncpy(errbuf, msg, n - 1);
        errbuf[n - 1] = '\0';
    }
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

int gapi_client_new(gapi_client **out, struct event_base *base, const gapi_client_options *opts,
                    char *errbuf, size_t errbuf_size)
{
    gapi_client_options o = GAPI_CLIENT_OPTIONS_INIT;
    gapi__pool_config pc;
    gapi_client *c;
    int rc;

    if (!out || !base) {
        fail_msg(errbuf, errbuf_size, "gapi_client_new: out and base are required");
        return GAPI_EINVAL;
    }
    if (opts) {
        if (opts->version != GAPI_CLIENT_OPTIONS_VERSION) {
            fail_msg(errbuf, errbuf_size,
                     "gapi_client_new: options.version is not GAPI_CLIENT_OPTIONS_VERSION "
                     "(initialise with GAPI_CLIENT_OPTIONS_INIT)");
            return GAPI_EINVAL;
        }
        o = *opts;
    }
    resolve_defaults(&o);
    if (!(o.flags & GAPI_CLIENT_KEEP_SIGPIPE))
        ignore_sigpipe();
    c = gapi__calloc(1, sizeof(*c));
    if (!c) {
        fail_msg(errbuf, errbuf_size, "out of memory");
        return GAPI_ENOMEM;
    }
    c->base = base;
    c->opts = o;
    /* Option strings are only needed to build the TLS context. */
    c->opts.ca_file = c->opts.ca_dir = c->opts.ca_pem = NULL;
    TAILQ_INIT(&c->live);
    TAILQ_INIT(&c->doneq);
    rc = gapi__tls_new(&c->tls, &o, session_hook, errbuf, errbuf_size);
    if (rc != GAPI_OK)
        goto fail;
    c->dns = o.dns_base;
    if (!c->dns) {
        c->dns = make_resolver(base);
        c->own_dns = 1;
        if (!c->dns) {
            fail_msg(errbuf, errbuf_size, "cannot create a DNS resolver");
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
        fail_msg(errbuf, errbuf_size, "out of memory");
        rc = GAPI_ENOMEM;
        goto fail;
    }
    *out = c;
    return GAPI_OK;
fail:
    client_destroy(c);
    return rc;
}

static void client_destroy(gapi_client *c)
{
    c->closing = 1;
    /* Every in-flight transfer ends here with GAPI_ESHUTDOWN ... */
    gapi__pool_free(c->pool, GAPI_ESHUTDOWN);
    c->pool = NULL;
    /* ... and every callback runs before anything is freed. The guard makes
     * a gapi_client_free from these callbacks a no-op. */
    while (!TAILQ_EMPTY(&c->doneq))
        drain_done(c);
    if (c->done_ev)
        event_free(c->done_ev);
    if (c->dns && c->own_dns)
        evdns_base_free(c->dns, 0);
    gapi__tls_free(c->tls);
    gapi__free(c);
}

void gapi_client_free(gapi_client *c)
{
    if (!c)
        return;
    if (c->closing && c->in_callback)
        return; /* already deferred */
    c->closing = 1;
    if (c->in_callback) {
        /* Make sure done_cb runs once more to finish the job even if no
         * other completion is pending. */
        event_active(c->done_ev, EV_READ, 1);
        return;
    }
    client_destroy(c);
}

struct event_base *gapi_client_base(const gapi_client *c)
{
    return c ? c->base : NULL;
}

void gapi_client_get_stats(const gapi_client *c, gapi_client_stats *out)
{
    gapi__pool_stats ps;

    memset(out, 0, sizeof(*out));
    if (!c)
        return;
    out->requests_started = c->started;
    out->requests_completed = c->completed;
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
