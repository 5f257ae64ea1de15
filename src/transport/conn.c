/*
 * One HTTP/1.1 connection: resolve, connect (every address in turn), TLS
 * handshake, then request/response exchanges with keep-alive.
 *
 * Timing: the connect timeout covers RESOLVING..HANDSHAKING (conn->timer);
 * the stall timeout is the bufferevent's read/write timeout while ACTIVE
 * (libevent re-arms it on every byte moved); the total deadline is the
 * transfer's own timer (pool.c). Errors go to the bound transfer; an error
 * on an IDLE connection just closes it.
 *
 * Nothing here calls user code: x->done only queues the completion.
 */
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>

#include "common/alloc.h"
#include "transport/conn.h"

/* evdns may answer after the connection is gone (a cancelled lookup is
 * reported later), so the lookup's argument is this small record, not the
 * connection; destroying the connection just clears conn. */
struct gapi__dnsq {
    gapi__conn *conn;
    struct evdns_getaddrinfo_request *req;
};

static void try_next_addr(gapi__conn *c);
static void conn_fail(gapi__conn *c, int err);

static struct timeval ms_tv(unsigned ms)
{
    struct timeval tv;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    return tv;
}

/* ------------------------------------------------------------------ errors */

static void set_msg(gapi__conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_msg(gapi__conn *c, const char *fmt, ...)
{
    va_list ap;

    if (!c->x)
        return;
    va_start(ap, fmt);
    vsnprintf(c->x->errmsg, sizeof(c->x->errmsg), fmt, ap);
    va_end(ap);
}

/* Close c and give its transfer err (message already set). */
static void conn_fail(gapi__conn *c, int err)
{
    gapi__xfer *x = c->x;
    gapi__origin *o = c->origin;

    c->x = NULL;
    if (x)
        x->conn = NULL;
    gapi__conn_destroy(c);
    if (x)
        gapi__pool_finish(x, err);
    gapi__pool_conn_gone(o);
}

/* --------------------------------------------------------------- lifecycle */

void gapi__conn_destroy(gapi__conn *c)
{
    gapi__origin *o = c->origin;

    if (c->state == GAPI__CONN_IDLE) {
        TAILQ_REMOVE(&o->idle, c, idle_link);
        o->nidle--;
    }
    TAILQ_REMOVE(&o->conns, c, link);
    o->nconns--;
    if (c->dnsq) {
        struct evdns_getaddrinfo_request *r = c->dnsq->req;
        c->dnsq->conn = NULL;
        c->dnsq = NULL;
        if (r)
            evdns_getaddrinfo_cancel(r);
    }
    if (c->addrs)
        evutil_freeaddrinfo(c->addrs);
    if (c->connect_ev)
        event_free(c->connect_ev);
    if (c->fd >= 0)
        evutil_closesocket(c->fd);
    if (c->timer)
        event_free(c->timer);
    /* OpenSSL marks the session of an SSL freed without a close_notify as
     * not resumable. A handshake that completed produced a good session
     * whatever happened to the TCP stream later, so keep it usable. */
    if (c->ssl && c->state >= GAPI__CONN_IDLE)
        SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    if (c->bev)
        bufferevent_free(c->bev); /* closes the socket and frees the SSL */
    else if (c->ssl)
        SSL_free(c->ssl);
    gapi__inflate_free(c->inflate);
    gapi__free(c);
}

static void connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    gapi__conn *c = arg;
    static const char *const stage[] = {"resolving", "connecting", "in TLS handshake"};

    (void)fd;
    (void)what;
    set_msg(c, "connect to %s:%u timed out after %u ms (%s)", c->origin->host, c->origin->port,
            c->x ? c->x->connect_ms : 0,
            c->state <= GAPI__CONN_HANDSHAKING ? stage[c->state] : "?");
    conn_fail(c, GAPI_ECONNECTTIMEOUT);
}

static void resolved(gapi__conn *c, int result, struct evutil_addrinfo *res)
{
    if (result != 0 || !res) {
        set_msg(c, "cannot resolve %s: %s", c->origin->host,
                result ? evutil_gai_strerror(result) : "no addresses");
        if (res)
            evutil_freeaddrinfo(res);
        conn_fail(c, GAPI_EDNS);
        return;
    }
    c->addrs = res;
    c->next_addr = res;
    c->state = GAPI__CONN_CONNECTING;
    try_next_addr(c);
}

static void dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    struct gapi__dnsq *q = arg;
    gapi__conn *c = q->conn;

    gapi__free(q);
    if (!c) {
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    c->dnsq = NULL;
    resolved(c, result, res);
}

static void resolve(gapi__conn *c)
{
    struct evutil_addrinfo hints, *res = NULL;
    char port[8];
    struct gapi__dnsq *q;
    struct evdns_getaddrinfo_request *r;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    snprintf(port, sizeof(port), "%u", c->origin->port);
    if (c->origin->host_is_ip || !c->pool->cfg.dns) {
        /* Literals need no lookup; without a resolver fall back to the
         * blocking system call (only reachable if the client has no evdns). */
        hints.ai_flags = c->origin->host_is_ip ? EVUTIL_AI_NUMERICHOST : 0;
        rc = evutil_getaddrinfo(c->origin->host, port, &hints, &res);
        resolved(c, rc, res);
        return;
    }
    q = gapi__calloc(1, sizeof(*q));
    if (!q) {
        set_msg(c, "out of memory");
        conn_fail(c, GAPI_ENOMEM);
        return;
    }
    q->conn = c;
    c->dnsq = q;
    /* May call dns_cb before returning (hosts file, cache): then it returns
     * NULL and q is already freed. */
    r = evdns_getaddrinfo(c->pool->cfg.dns, c->origin->host, port, &hints, dns_cb, q);
    if (r && c->dnsq == q)
        q->req = r;
}

int gapi__conn_open(gapi__origin *o, gapi__xfer *x)
{
    gapi__pool *p = o->pool;
    gapi__conn *c = gapi__calloc(1, sizeof(*c));
    struct timeval tv;

    if (!c)
        return GAPI_ENOMEM;
    c->pool = p;
    c->origin = o;
    c->fd = -1;
    c->state = GAPI__CONN_RESOLVING;
    c->timer = evtimer_new(p->cfg.base, connect_timeout_cb, c);
    if (!c->timer) {
        gapi__free(c);
        return GAPI_ENOMEM;
    }
    TAILQ_INSERT_TAIL(&o->conns, c, link);
    o->nconns++;
    p->stats.connections_opened++;
    c->x = x;
    x->conn = c;
    x->state = GAPI__XFER_CONNECTING;
    if (x->connect_ms) {
        tv = ms_tv(x->connect_ms);
        evtimer_add(c->timer, &tv);
    }
    resolve(c);
    return GAPI_OK;
}

/* ------------------------------------------------------------------ connect */

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void conn_ready(gapi__conn *c)
{
    gapi__xfer *x = c->x;

    evtimer_del(c->timer);
    if (c->ssl && SSL_session_reused(c->ssl))
        c->pool->stats.tls_resumed++;
    c->x = NULL;
    gapi__conn_start(c, x);
}

static void connected(gapi__conn *c)
{
    gapi__origin *o = c->origin;
    struct event_base *base = c->pool->cfg.base;
    int fd = c->fd;
    int one = 1;

    event_free(c->connect_ev);
    c->connect_ev = NULL;
    evutil_freeaddrinfo(c->addrs);
    c->addrs = c->next_addr = NULL;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (o->tls) {
        c->ssl = gapi__tls_ssl_new(c->pool->cfg.tls, o->host, o->host_is_ip, o->session, c);
        if (!c->ssl) {
            set_msg(c, "cannot create TLS session for %s", o->host);
            conn_fail(c, GAPI_ENOMEM);
            return;
        }
        c->bev = bufferevent_openssl_socket_new(base, fd, c->ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE);
    } else {
        c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!c->bev) {
        set_msg(c, "out of memory");
        conn_fail(c, GAPI_ENOMEM);
        return;
    }
    c->fd = -1; /* the bufferevent owns it now */
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    if (o->tls) {
        /* Many servers close without close_notify. Framing (Content-Length,
         * chunked) detects truncation, so an unclean EOF is reported as EOF. */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        c->state = GAPI__CONN_HANDSHAKING;
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    } else {
        conn_ready(c);
    }
}

static void connect_done_cb(evutil_socket_t fd, short what, void *arg)
{
    gapi__conn *c = arg;
    int err = 0;
    socklen_t len = sizeof(err);

    (void)what;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == 0) {
        connected(c);
        return;
    }
    snprintf(c->connect_err, sizeof(c->connect_err), "%s", strerror(err));
    event_free(c->connect_ev);
    c->connect_ev = NULL;
    evutil_closesocket(c->fd);
    c->fd = -1;
    try_next_addr(c);
}

static void try_next_addr(gapi__conn *c)
{
    while (c->next_addr) {
        struct evutil_addrinfo *ai = c->next_addr;
        int fd;

        c->next_addr = ai->ai_next;
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(c->connect_err, sizeof(c->connect_err), "socket: %s", strerror(errno));
            continue;
        }
        if (connect(fd, ai->ai_addr, (socklen_t)ai->ai_addrlen) == 0) {
            c->fd = fd;
            c->connect_ev = NULL;
            connected(c);
            return;
        }
        if (errno != EINPROGRESS) {
            snprintf(c->connect_err, sizeof(c->connect_err), "%s", strerror(errno));
            close(fd);
            continue;
        }
        c->fd = fd;
        c->connect_ev = event_new(c->pool->cfg.base, fd, EV_WRITE, connect_done_cb, c);
        if (!c->connect_ev) {
            set_msg(c, "out of memory");
            conn_fail(c, GAPI_ENOMEM);
            return;
        }
        event_add(c->connect_ev, NULL);
        return;
    }
    set_msg(c, "cannot connect to %s port %u: %s", c->origin->host, c->origin->port,
            c->connect_err[0] ? c->connect_err : "no usable address");
    conn_fail(c, GAPI_ECONNECT);
}

int gapi__conn_on_tls_session(SSL *ssl, SSL_SESSION *sess)
{
    gapi__conn *c = SSL_get_app_data(ssl);

    if (!c)
        return 0;
    if (c->origin->session)
        SSL_SESSION_free(c->origin->session);
    c->origin->session = sess;
    return 1;
}

/* ---------------------------------------------------------------- exchange */

static int p_on_status(void *ud, int minor, int status, const char *reason, size_t len)
{
    gapi__conn *c = ud;

    (void)reason;
    (void)len;
    c->x->resp.status = status;
    c->x->resp.http_minor = minor;
    return 0;
}

static int p_on_header(void *ud, const char *n, size_t nl, const char *v, size_t vl)
{
    gapi__conn *c = ud;

    if (gapi__response_add_header(&c->x->resp, n, nl, v, vl) != GAPI_OK) {
        c->cb_err = GAPI_ENOMEM;
        return -1;
    }
    return 0;
}

static int body_append(gapi__conn *c, const char *data, size_t len)
{
    gapi__xfer *x = c->x;

    if (x->max_body_bytes && x->resp.body.len + len > x->max_body_bytes) {
        snprintf(x->errmsg, sizeof(x->errmsg), "response body exceeds the limit of %zu bytes",
                 x->max_body_bytes);
        c->cb_err = GAPI_EBODYSIZE;
        return -1;
    }
    if (gapi__buf_append(&x->resp.body, data, len) != GAPI_OK) {
        c->cb_err = GAPI_ENOMEM;
        return -1;
    }
    return 0;
}

static int inflate_sink(void *ud, const char *data, size_t len)
{
    return body_append(ud, data, len);
}

static int p_on_headers_complete(void *ud)
{
    gapi__conn *c = ud;
    gapi__xfer *x = c->x;
    const char *enc;
    gapi__coding coding = GAPI__CODING_IDENTITY;

    x->have_resp = 1;
    if (c->parser.framing == GAPI__HTTP_FRAMING_NONE)
        return 0;
    enc = gapi__response_find(&x->resp, "content-encoding");
    if (enc)
        coding = gapi__coding_from_header(enc, strlen(enc));
    if (coding == GAPI__CODING_GZIP || coding == GAPI__CODING_DEFLATE) {
        c->inflate = gapi__inflate_new(coding, x->max_body_bytes, inflate_sink, c);
        if (!c->inflate) {
            c->cb_err = GAPI_ENOMEM;
            return -1;
        }
        return 0;
    }
    /* Identity (or an unknown coding, passed through as curl does). */
    if (c->parser.content_length >= 0) {
        if (x->max_body_bytes && (uint64_t)c->parser.content_length > x->max_body_bytes) {
            snprintf(x->errmsg, sizeof(x->errmsg),
                     "response Content-Length %lld exceeds the limit of %zu bytes",
                     (long long)c->parser.content_length, x->max_body_bytes);
            c->cb_err = GAPI_EBODYSIZE;
            return -1;
        }
        if (gapi__buf_reserve(&x->resp.body, (size_t)c->parser.content_length) != GAPI_OK) {
            c->cb_err = GAPI_ENOMEM;
            return -1;
        }
    }
    return 0;
}

static int p_on_body(void *ud, const char *data, size_t len)
{
    gapi__conn *c = ud;
    int rc;

    if (!c->inflate)
        return body_append(c, data, len);
    rc = gapi__inflate_feed(c->inflate, data, len);
    if (rc == GAPI__INFLATE_OK)
        return 0;
    if (c->cb_err)
        return -1; /* the sink failed: its error stands */
    if (rc == GAPI__INFLATE_ELIMIT) {
        snprintf(c->x->errmsg, sizeof(c->x->errmsg),
                 "decoded response body exceeds the limit of %zu bytes", c->x->max_body_bytes);
        c->cb_err = GAPI_EBODYSIZE;
    } else if (rc == GAPI__INFLATE_ENOMEM) {
        c->cb_err = GAPI_ENOMEM;
    } else {
        snprintf(c->x->errmsg, sizeof(c->x->errmsg), "response body is not valid %s data",
                 gapi__response_find(&c->x->resp, "content-encoding"));
        c->cb_err = GAPI_EDECODE;
    }
    return -1;
}

static int p_on_complete(void *ud)
{
    (void)ud;
    return 0;
}

static const gapi__http_callbacks parser_cbs = {
    NULL, p_on_status, p_on_header, p_on_headers_complete, p_on_body, NULL, p_on_complete,
};

/* Upload pump for streamed bodies: keep up to 64 KiB queued. */
#define UPLOAD_HIGH  (64 * 1024)
#define UPLOAD_PIECE (16 * 1024)

/* Output is queued with writing disabled: some libevent versions write (and
 * may report a failure through on_event) from inside evbuffer_add, which
 * would destroy the connection under our feet. Writing resumes from the
 * loop once enabled again. */
static void hold_writes(gapi__conn *c)
{
    bufferevent_disable(c->bev, EV_WRITE);
}

static void release_writes(gapi__conn *c)
{
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static int pump_upload(gapi__conn *c)
{
    gapi__xfer *x = c->x;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char piece[UPLOAD_PIECE];

    while (!c->upload_done && evbuffer_get_length(out) < UPLOAD_HIGH) {
        long n = x->reader(piece, sizeof(piece), x->reader_arg);

        if (n < 0 || (size_t)n > sizeof(piece)) {
            set_msg(c, "request body reader failed");
            return GAPI_EUPLOAD;
        }
        if (n == 0) {
            if (x->reader_length >= 0 && c->upload_sent != x->reader_length) {
                set_msg(c, "request body reader gave %lld bytes, %lld announced", c->upload_sent,
                        x->reader_length);
                return GAPI_EUPLOAD;
            }
            if (x->reader_length < 0)
                evbuffer_add(out, "0\r\n\r\n", 5);
            c->upload_done = 1;
            break;
        }
        if (x->reader_length >= 0 && c->upload_sent + n > x->reader_length) {
            set_msg(c, "request body reader gave more than the %lld bytes announced",
                    x->reader_length);
            return GAPI_EUPLOAD;
        }
        if (x->reader_length < 0)
            evbuffer_add_printf(out, "%lx\r\n", n);
        evbuffer_add(out, piece, (size_t)n);
        if (x->reader_length < 0)
            evbuffer_add(out, "\r\n", 2);
        c->upload_sent += n;
    }
    return GAPI_OK;
}

void gapi__conn_start(gapi__conn *c, gapi__xfer *x)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct timeval stall;
    int rc;

    if (c->state == GAPI__CONN_IDLE)
        evtimer_del(c->timer);
    c->state = GAPI__CONN_ACTIVE;
    c->x = x;
    x->conn = c;
    x->state = GAPI__XFER_ACTIVE;
    c->got_bytes = 0;
    c->cb_err = 0;
    c->upload_sent = 0;
    c->upload_done = x->reader == NULL;
    gapi__inflate_free(c->inflate);
    c->inflate = NULL;
    gapi__http_parser_init(&c->parser, &parser_cbs, c, x->head_request, x->max_header_bytes);
    /* While the request is being written only the write side can stall;
     * the read timeout is armed once the output has drained (on_write), so
     * a long upload is not mistaken for a silent server. */
    if (x->stall_ms) {
        stall = ms_tv(x->stall_ms);
        bufferevent_set_timeouts(c->bev, NULL, &stall);
    } else {
        bufferevent_set_timeouts(c->bev, NULL, NULL);
    }
    hold_writes(c);
    evbuffer_add(out, x->head->data, x->head->len);
    if (x->body_len)
        evbuffer_add_reference(out, x->body, x->body_len, NULL, NULL);
    if (x->reader) {
        rc = pump_upload(c);
        if (rc != GAPI_OK) {
            conn_fail(c, rc);
            return;
        }
    }
    release_writes(c);
}

/* The response is complete: hand the connection back (or close it), then
 * report the transfer. */
static void exchange_done(gapi__conn *c, int leftover)
{
    gapi__xfer *x = c->x;
    gapi__origin *o = c->origin;
    /* Not reusable with request bytes still queued (the server answered
     * early): they may reference the request's body, which is about to go. */
    int reusable = c->parser.keep_alive && !leftover && c->upload_done &&
                   evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;

    if (c->inflate) {
        int rc = gapi__inflate_finish(c->inflate);
        if (rc != GAPI__INFLATE_OK) {
            snprintf(x->errmsg, sizeof(x->errmsg), "%s response body is %s",
                     gapi__response_find(&x->resp, "content-encoding"),
                     rc == GAPI__INFLATE_ETRUNCATED ? "truncated" : "corrupt");
            conn_fail(c, rc == GAPI__INFLATE_ELIMIT ? GAPI_EBODYSIZE : GAPI_EDECODE);
            return;
        }
        gapi__inflate_free(c->inflate);
        c->inflate = NULL;
    }
    c->x = NULL;
    x->conn = NULL;
    c->served++;
    if (reusable) {
        bufferevent_set_timeouts(c->bev, NULL, NULL);
        gapi__pool_conn_reusable(c);
    } else {
        gapi__conn_destroy(c);
    }
    gapi__pool_finish(x, GAPI_OK);
    if (!reusable)
        gapi__pool_conn_gone(o);
}

static int parser_error(gapi__conn *c)
{
    gapi__xfer *x = c->x;
    gapi__http_parser *p = &c->parser;

    if (p->error == GAPI__HPE_CALLBACK)
        return c->cb_err ? c->cb_err : GAPI_EPROTO;
    if (p->error == GAPI__HPE_HEADER_TOO_LARGE) {
        snprintf(x->errmsg, sizeof(x->errmsg), "response headers exceed the limit of %zu bytes",
                 p->max_header_bytes);
        return GAPI_EHEADERSIZE;
    }
    snprintf(x->errmsg, sizeof(x->errmsg), "malformed HTTP response: %s",
             p->error_reason && *p->error_reason ? p->error_reason : gapi__hpe_name(p->error));
    return GAPI_EPROTO;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    gapi__conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec vec[8];
    int n, i;

    if (c->state != GAPI__CONN_ACTIVE) {
        /* Bytes on an idle connection: the server is confused; drop it. */
        gapi__origin *o = c->origin;
        gapi__conn_destroy(c);
        gapi__pool_conn_gone(o);
        return;
    }
    c->got_bytes = 1;
    while (evbuffer_get_length(in) > 0) {
        size_t used = 0;
        n = evbuffer_peek(in, -1, NULL, vec, 8);
        if (n > 8)
            n = 8;
        for (i = 0; i < n; i++) {
            size_t k = gapi__http_parser_execute(&c->parser, vec[i].iov_base, vec[i].iov_len);
            used += k;
            if (c->parser.error) {
                conn_fail(c, parser_error(c));
                return;
            }
            if (c->parser.complete) {
                int leftover = k < vec[i].iov_len || i + 1 < n || evbuffer_get_length(in) > used;
                evbuffer_drain(in, used);
                exchange_done(c, leftover);
                return;
            }
        }
        evbuffer_drain(in, used);
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    gapi__conn *c = arg;
    int rc;

    if (c->state != GAPI__CONN_ACTIVE)
        return;
    if (!c->upload_done) {
        hold_writes(c);
        rc = pump_upload(c);
        if (rc != GAPI_OK) {
            conn_fail(c, rc);
            return;
        }
        release_writes(c);
        return;
    }
    /* Everything is written: from now on the server owes us bytes. */
    if (c->x->stall_ms && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        struct timeval stall = ms_tv(c->x->stall_ms);
        bufferevent_set_timeouts(bev, &stall, &stall);
    }
}

/* EOF or reset while ACTIVE. */
static void active_closed(gapi__conn *c, const char *why)
{
    gapi__xfer *x = c->x;
    gapi__origin *o = c->origin;

    if (c->got_bytes && gapi__http_parser_finish(&c->parser) == GAPI__HPE_OK &&
        c->parser.complete) {
        exchange_done(c, 0);
        return;
    }
    if (!c->got_bytes) {
        if (c->served > 0 && x->idempotent && !x->reader && x->replays == 0) {
            /* A reused connection the server had already closed: the request
             * never reached it, so sending it again is safe. */
            c->x = NULL;
            x->conn = NULL;
            gapi__conn_destroy(c);
            gapi__pool_replay(x);
            return;
        }
        set_msg(c, "%s:%u closed the connection before responding (%s)", o->host, o->port, why);
        conn_fail(c, GAPI_ECONNRESET);
        return;
    }
    if (!x->have_resp)
        set_msg(c, "connection closed in the middle of the response headers (%s)", why);
    else
        set_msg(c, "connection closed after %zu body bytes%s (%s)", x->resp.body.len,
                c->parser.framing == GAPI__HTTP_FRAMING_CHUNKED ? " of a chunked body" : "", why);
    conn_fail(c, GAPI_ETRUNCATED);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    gapi__conn *c = arg;
    unsigned long ssl_err = 0;
    int sock_err = EVUTIL_SOCKET_ERROR();
    char why[160];

    if (what & BEV_EVENT_CONNECTED) {
        conn_ready(c);
        return;
    }
    if (c->ssl) {
        unsigned long e;
        while ((e = bufferevent_get_openssl_error(bev)) != 0)
            if (!ssl_err)
                ssl_err = e;
    }
    switch (c->state) {
    case GAPI__CONN_HANDSHAKING: {
        int rc = gapi__tls_describe_failure(c->ssl, ssl_err, why, sizeof(why));
        set_msg(c, "TLS handshake with %s:%u failed: %s", c->origin->host, c->origin->port, why);
        conn_fail(c, rc);
        return;
    }
    case GAPI__CONN_IDLE: {
        gapi__origin *o = c->origin;
        gapi__conn_destroy(c);
        gapi__pool_conn_gone(o);
        return;
    }
    case GAPI__CONN_ACTIVE:
        break;
    default:
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        set_msg(c, "no data %s for %u ms", (what & BEV_EVENT_READING) ? "received" : "sent",
                c->x->stall_ms);
        conn_fail(c, GAPI_ESTALL);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        active_closed(c, "EOF");
        return;
    }
    if (ssl_err)
        ERR_error_string_n(ssl_err, why, sizeof(why));
    else
        snprintf(why, sizeof(why), "%s", sock_err ? strerror(sock_err) : "connection error");
    active_closed(c, why);
}
