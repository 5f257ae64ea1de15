/*
 * In-process HTTP(S) test server (see server.h): libevent evhttp for the
 * well-formed side, raw bytes on the connection's bufferevent for faults.
 *
 * Threads: everything that touches libevent runs on the thread that runs
 * s->base. The route table, the per-path records and the counters are also
 * read and written by other threads (ts_route*, ts_last_*, counters), so they
 * live under s->lock. The connection list is loop-thread only.
 *
 * Connection records (struct ts_conn): evhttp gives no hook when it accepts a
 * connection, only the bufferevent callback (bevcb), which runs before the
 * evhttp_connection exists. So the bevcb makes the record and activates the
 * record's event; that event runs before any I/O on the new socket can be
 * dispatched (active events are drained before the next poll) and finds the
 * evhttp_connection through the bufferevent's callback argument (evhttp
 * always registers its callbacks with the connection as argument), then
 * installs a close callback. From then on the record lives exactly as long as
 * the evhttp_connection: evhttp_connection_free -> on_conn_close frees it, so
 * nothing of ours outlives or double-frees an evhttp object.
 *
 * Raw faults take the connection away from evhttp: they replace the
 * bufferevent callbacks with ours and write bytes themselves. The switch and
 * every close or reset run from the record's own event, never from inside
 * evhttp's call stack (evhttp keeps using the connection after the request
 * callback returns). The unanswered request stays queued on the
 * evhttp_connection and is freed with it.
 *
 * Delays: evhttp stops reading once a request is complete, so during a
 * delay we turn reading back on with a read callback that keeps the bytes
 * (watch_for_close) to see a client that gives up; evhttp's event callback
 * then detaches the waiting request and frees the connection, and
 * on_conn_close frees that request.
 *
 * Sequences: a request's position in its path's sequence is taken when it
 * arrives (record) and travels with a delayed request (delay_k): the k-th
 * arrival gets steps[k] whenever its delay ends, or uses it up if the
 * client gives up first.
 *
 * CLOSE_IDLE is not a raw fault: evhttp sends the 200, and on_complete
 * (called once it is flushed) arms the record's event for a clean close.
 *
 * Closing: evhttp_connection_free always does shutdown(SHUT_WR) (a FIN) and
 * the bufferevent closes the fd when libevent runs its deferred finalizers.
 * A "clean close" is SSL_shutdown (close_notify) + evhttp_connection_free.
 * A reset sets SO_LINGER {1, 0} and then dup2()s a spare socket over the fd:
 * that drops the last reference to the connected socket right away, so the
 * kernel sends RST before evhttp's shutdown() could send a FIN, while the fd
 * number stays valid for libevent to close later.
 */
#include "server.h"
#include "certs.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#define ZLIB_CONST
#include <zlib.h>

/* ------------------------------------------------------------ wire bytes */

#define TS_HDR_1000 "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
#define TS_BODY_100                                                                                \
    "0123456789012345678901234567890123456789012345678901234567890123456789"                       \
    "012345678901234567890123456789"
#define TS_CHUNKED_PART                                                                            \
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"                                        \
    "a\r\n0123456789\r\n"                                                                          \
    "a\r\n0123456789\r\n"                                                                          \
    "a\r\n0123456789\r\n"
#define TS_MALFORMED   "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"
#define TS_MID_HEADERS "HTTP/1.1 200 OK\r\nContent-Ty"
#define TS_BAD_HEADER  "HTTP/1.1 200 OK\r\nBad Header Line\r\nContent-Length: 0\r\n\r\n"
#define TS_DRIBBLE                                                                                 \
    "HTTP/1.1 200 OK\r\nContent-Length: 50\r\nConnection: close\r\n\r\n"                           \
    "01234567890123456789012345678901234567890123456789"

/* Longest time the reset-after-headers fault waits for the kernel to send
 * (and the peer to acknowledge) the headers before resetting: a reset
 * discards unsent data, which would turn the fault into "reset before". */
#define TS_OUTQ_POLLS 500

/* ------------------------------------------------------------ types */

enum ts_kind {
    TS_KIND_NONE = 0, /* no route: 404 */
    TS_KIND_STATIC,
    TS_KIND_CHUNKED,
    TS_KIND_GZIP,
    TS_KIND_FAULT,
    TS_KIND_HANDLER,
    TS_KIND_SEQUENCE
};

struct ts_hdr {
    char *name;
    char *value;
};

/* One per path seen by a route call or a request: the route and the record
 * of the last request. Guarded by ts_server.lock. */
struct ts_path {
    struct ts_path *next;
    char *path;

    enum ts_kind kind;
    int status;
    char *headers;       /* "Name: value\r\n..." or NULL */
    unsigned char *body; /* gzip: already compressed */
    size_t body_len;
    size_t chunk_size;
    ts_fault fault;
    unsigned param;
    ts_handler fn;
    void *fn_arg;
    ts_step_resp *steps; /* sequence; strings owned */
    size_t nsteps;
    unsigned since_route; /* requests since the route was set: the next k */
    unsigned delay_ms;

    unsigned hits;
    double *arrivals; /* ms, CLOCK_MONOTONIC, one per hit */
    size_t narrivals, arrivals_cap;
    char *method;
    struct ts_hdr *hdrs;
    size_t nhdrs;
    char *req_body; /* NUL-terminated copy, req_body_len bytes before it */
    size_t req_body_len;
    char *sni;
};

enum ts_step {
    TS_STEP_ATTACH = 0, /* find the evhttp_connection (first run) */
    TS_STEP_IDLE,
    TS_STEP_RAW,     /* take the connection over and start the fault */
    TS_STEP_DRIBBLE, /* send the next byte */
    TS_STEP_OUTQ,    /* wait for the send queue to drain, then reset */
    TS_STEP_CLOSE    /* clean close */
};

enum ts_after { TS_AFTER_NOTHING = 0, TS_AFTER_RESET, TS_AFTER_CLOSE };

/* One per accepted connection; loop thread only. */
struct ts_conn {
    struct ts_conn *prev, *next;
    ts_server *s;
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* NULL until attached */
    SSL *ssl;                        /* owned by bev; NULL in plain mode */
    struct event *ev;                /* drives enum ts_step */
    enum ts_step step;
    unsigned answered; /* responses flushed by evhttp */

    ts_fault fault;
    unsigned param;
    enum ts_after after; /* what the raw write callback does once flushed */
    size_t dribble_off;
    unsigned outq_polls;

    struct event *delay_ev;           /* lazily made */
    struct evhttp_request *delay_req; /* request waiting for its delay */
    unsigned delay_k;                 /* its position in a sequence */

    int idle_close; /* the response being sent is CLOSE_IDLE's */
    unsigned idle_ms;
};

struct ts_server {
    struct event_base *base;
    struct evhttp *http;
    SSL_CTX *ssl_ctx;
    ts_options opts;
    int port;
    char origin[64];
    char *ca_pem;
    struct ts_conn *conns;

    pthread_mutex_t lock; /* guards everything below */
    struct ts_path *paths;
    unsigned accepted;
    unsigned requests;
    unsigned open;
};

/* ------------------------------------------------------------ helpers */

/* Test infrastructure: running out of memory is not a case worth handling. */
static void ts_die(const char *what)
{
    fprintf(stderr, "ts_server: %s\n", what);
    abort();
}

static void *ts_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        ts_die("out of memory");
    return p;
}

static void *ts_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        ts_die("out of memory");
    return p;
}

static char *ts_xstrdup(const char *s)
{
    size_t n;
    char *p;

    if (!s)
        return NULL;
    n = strlen(s) + 1;
    p = ts_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

static unsigned char *ts_xmemdup(const void *src, size_t n)
{
    unsigned char *p = ts_xmalloc(n + 1);
    if (n)
        memcpy(p, src, n);
    p[n] = '\0';
    return p;
}

static double mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
    static const struct {
        enum evhttp_cmd_type cmd;
        const char *name;
    } names[] = {
        {EVHTTP_REQ_GET, "GET"},       {EVHTTP_REQ_POST, "POST"},
        {EVHTTP_REQ_HEAD, "HEAD"},     {EVHTTP_REQ_PUT, "PUT"},
        {EVHTTP_REQ_DELETE, "DELETE"}, {EVHTTP_REQ_OPTIONS, "OPTIONS"},
        {EVHTTP_REQ_TRACE, "TRACE"},   {EVHTTP_REQ_CONNECT, "CONNECT"},
        {EVHTTP_REQ_PATCH, "PATCH"},
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].cmd == cmd)
            return names[i].name;
    return "UNKNOWN";
}

/* evhttp only knows the RFC 2616 phrases ("Client Error" for 429); NULL
 * lets it pick one for codes not listed here. */
static const char *status_reason(int status)
{
    static const struct {
        int code;
        const char *text;
    } reasons[] = {
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {412, "Precondition Failed"},
        {413, "Payload Too Large"},
        {416, "Range Not Satisfiable"},
        {429, "Too Many Requests"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    size_t i;

    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].code == status)
            return reasons[i].text;
    return NULL;
}

/* The path as sent (percent-encoding kept), without the query. */
static const char *request_path(struct evhttp_request *req)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *p = uri ? evhttp_uri_get_path(uri) : NULL;

    return (p && *p) ? p : "/";
}

static unsigned char *gzip_bytes(const char *in, size_t n, size_t *out_len)
{
    z_stream z;
    unsigned char *out;
    uLong cap;

    memset(&z, 0, sizeof(z));
    /* windowBits 31 = 15 + 16: a gzip wrapper rather than zlib's. */
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        ts_die("deflateInit2 failed");
    cap = deflateBound(&z, (uLong)n);
    out = ts_xmalloc(cap);
    z.next_in = (const Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        ts_die("deflate failed");
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

/* Parses "Name: value\r\n..." (LF alone is accepted too) into out. */
static void add_header_text(struct evkeyvalq *out, const char *text)
{
    const char *line = text;

    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        char *copy = (char *)ts_xmemdup(line, len);
        char *colon, *name, *value, *end;

        if (len && copy[len - 1] == '\r')
            copy[len - 1] = '\0';
        colon = strchr(copy, ':');
        if (colon) {
            *colon = '\0';
            name = copy;
            value = colon + 1;
            while (*value == ' ' || *value == '\t')
                value++;
            end = value + strlen(value);
            while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
                *--end = '\0';
            if (*name)
                evhttp_add_header(out, name, value);
        }
        free(copy);
        line = eol ? eol + 1 : NULL;
    }
}

/* ------------------------------------------------------------ path table */

static void path_clear_route(struct ts_path *p)
{
    size_t i;

    for (i = 0; i < p->nsteps; i++) {
        free((char *)p->steps[i].headers);
        free((char *)p->steps[i].body);
    }
    free(p->steps);
    p->steps = NULL;
    p->nsteps = 0;
    p->since_route = 0;
    free(p->headers);
    free(p->body);
    p->headers = NULL;
    p->body = NULL;
    p->body_len = 0;
    p->chunk_size = 0;
    p->kind = TS_KIND_NONE;
    p->fault = TS_FAULT_NONE;
    p->param = 0;
    p->fn = NULL;
    p->fn_arg = NULL;
}

static void path_clear_record(struct ts_path *p)
{
    size_t i;

    free(p->method);
    for (i = 0; i < p->nhdrs; i++) {
        free(p->hdrs[i].name);
        free(p->hdrs[i].value);
    }
    free(p->hdrs);
    free(p->req_body);
    free(p->sni);
    p->method = NULL;
    p->hdrs = NULL;
    p->nhdrs = 0;
    p->req_body = NULL;
    p->req_body_len = 0;
    p->sni = NULL;
}

/* Requires s->lock. */
static struct ts_path *path_find(const ts_server *s, const char *path)
{
    struct ts_path *p;

    if (!path)
        return NULL;
    for (p = s->paths; p; p = p->next)
        if (strcmp(p->path, path) == 0)
            return p;
    return NULL;
}

/* Requires s->lock. */
static struct ts_path *path_get(ts_server *s, const char *path)
{
    struct ts_path *p = path_find(s, path);

    if (p)
        return p;
    p = ts_xcalloc(1, sizeof(*p));
    p->path = ts_xstrdup(path);
    p->next = s->paths;
    s->paths = p;
    return p;
}

/* ------------------------------------------------------------ connections */

static void conn_ev_cb(evutil_socket_t fd, short what, void *arg);

static struct ts_conn *conn_find(ts_server *s, struct evhttp_connection *evcon)
{
    struct ts_conn *c;

    if (!evcon)
        return NULL;
    for (c = s->conns; c; c = c->next)
        if (c->evcon == evcon)
            return c;
    return NULL;
}

/* Frees our record only; the evhttp_connection is evhttp's business. */
static void conn_destroy(struct ts_conn *c)
{
    ts_server *s = c->s;

    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    event_free(c->ev);
    if (c->delay_ev)
        event_free(c->delay_ev);
    pthread_mutex_lock(&s->lock);
    s->open--;
    pthread_mutex_unlock(&s->lock);
    free(c);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    struct ts_conn *c = arg;

    evhttp_connection_set_closecb(evcon, NULL, NULL);
    /* A request waiting for its delay is normally still queued on evcon and
     * freed by evhttp after this callback. If the peer went away first,
     * evhttp has already detached it (connection NULL) and left it to us. */
    if (c->delay_req && !evhttp_request_get_connection(c->delay_req))
        evhttp_request_free(c->delay_req);
    c->delay_req = NULL;
    conn_destroy(c);
}

static struct bufferevent *on_bev(struct event_base *base, void *arg)
{
    ts_server *s = arg;
    struct ts_conn *c = ts_xcalloc(1, sizeof(*c));

    c->s = s;
    if (s->ssl_ctx) {
        c->ssl = SSL_new(s->ssl_ctx);
        if (!c->ssl)
            ts_die("SSL_new failed");
        c->bev = bufferevent_openssl_socket_new(base, -1, c->ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
    } else {
        c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    c->ev = evtimer_new(base, conn_ev_cb, c);
    /* Returning NULL would make evhttp fall back to a plain bufferevent. */
    if (!c->bev || !c->ev)
        ts_die("cannot make a bufferevent");
    /* Highest priority: if the base uses priorities, the attach step must
     * still run before the new socket's first I/O callback. */
    event_priority_set(c->ev, 0);

    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    pthread_mutex_lock(&s->lock);
    s->accepted++;
    s->open++;
    pthread_mutex_unlock(&s->lock);

    c->step = TS_STEP_ATTACH;
    event_active(c->ev, EV_TIMEOUT, 1);
    return c->bev;
}

static void conn_attach(struct ts_conn *c)
{
    void *cbarg = NULL;
    evutil_socket_t fd;
    int one = 1;

    bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
    c->evcon = cbarg;
    if (!c->evcon || evhttp_connection_get_bufferevent(c->evcon) != c->bev)
        ts_die("cannot find the evhttp connection of a bufferevent");
    evhttp_connection_set_closecb(c->evcon, on_conn_close, c);
    c->step = TS_STEP_IDLE;

    /* Without it a dribble's one-byte writes wait for delayed ACKs. */
    fd = bufferevent_getfd(c->bev);
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Clean close: close_notify (TLS), then FIN. Frees c (via on_conn_close). */
static void conn_close_clean(struct ts_conn *c)
{
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
    evhttp_connection_free(c->evcon);
}

/* TCP reset, no close_notify. Frees c (via on_conn_close). */
static void conn_reset(struct ts_conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    struct linger lg;
    int spare;

    if (fd >= 0) {
        lg.l_onoff = 1;
        lg.l_linger = 0;
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        /* If no spare socket can be had, the linger option still turns
         * libevent's later close() into a reset, only after a FIN. */
        spare = socket(AF_INET, SOCK_STREAM, 0);
        if (spare >= 0) {
            if (dup2(spare, fd) >= 0)
                evutil_make_socket_closeonexec(fd); /* dup2 clears it */
            close(spare);
        }
    }
    evhttp_connection_free(c->evcon);
}

/* ------------------------------------------------------------ raw faults */

static void raw_readcb(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);

    evbuffer_drain(in, evbuffer_get_length(in));
}

static void raw_writecb(struct bufferevent *bev, void *arg)
{
    struct ts_conn *c = arg;

    if (c->after == TS_AFTER_NOTHING)
        return;
    c->step = c->after == TS_AFTER_RESET ? TS_STEP_OUTQ : TS_STEP_CLOSE;
    c->after = TS_AFTER_NOTHING;
    event_active(c->ev, EV_TIMEOUT, 1);
}

static void raw_eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct ts_conn *c = arg;

    /* The peer went away (or a write failed): nothing left to script. */
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        evhttp_connection_free(c->evcon);
}

static void raw_take_over(struct ts_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    bufferevent_setcb(c->bev, raw_readcb, raw_writecb, raw_eventcb, c);
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void raw_send(struct ts_conn *c, const char *bytes, enum ts_after after)
{
    c->after = after;
    bufferevent_write(c->bev, bytes, strlen(bytes));
}

static void timer_ms(struct event *ev, unsigned ms)
{
    struct timeval tv;

    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    evtimer_add(ev, &tv);
}

static void raw_dribble(struct ts_conn *c)
{
    static const char bytes[] = TS_DRIBBLE;
    size_t n = sizeof(bytes) - 1;

    /* Set before writing: the write callback of the last byte closes. */
    if (c->dribble_off + 1 == n)
        c->after = TS_AFTER_CLOSE;
    bufferevent_write(c->bev, bytes + c->dribble_off, 1);
    c->dribble_off++;
    if (c->dribble_off < n)
        timer_ms(c->ev, c->param);
    else
        c->step = TS_STEP_IDLE;
}

static void raw_wait_outq(struct ts_conn *c)
{
#ifdef SIOCOUTQ
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    int queued = 0;

    /* SIOCOUTQ counts bytes not yet acknowledged by the peer. */
    if (fd >= 0 && ioctl(fd, SIOCOUTQ, &queued) == 0 && queued > 0 &&
        c->outq_polls++ < TS_OUTQ_POLLS) {
        timer_ms(c->ev, 1);
        return;
    }
#else
    if (c->outq_polls++ == 0) {
        timer_ms(c->ev, 20);
        return;
    }
#endif
    conn_reset(c);
}

static void raw_start(struct ts_conn *c)
{
    raw_take_over(c);
    c->step = TS_STEP_IDLE;
    switch (c->fault) {
    case TS_FAULT_RESET_BEFORE_HEADERS:
        conn_reset(c);
        return;
    case TS_FAULT_CLOSE_BEFORE_RESPONSE:
        conn_close_clean(c);
        return;
    case TS_FAULT_RESET_AFTER_HEADERS:
        raw_send(c, TS_HDR_1000, TS_AFTER_RESET);
        return;
    case TS_FAULT_TRUNCATED_BODY:
        raw_send(c, TS_HDR_1000 TS_BODY_100, TS_AFTER_CLOSE);
        return;
    case TS_FAULT_TRUNCATED_CHUNKED:
        raw_send(c, TS_CHUNKED_PART, TS_AFTER_CLOSE);
        return;
    case TS_FAULT_STALL_BEFORE_HEADERS:
        return;
    case TS_FAULT_STALL_MID_BODY:
        raw_send(c, TS_HDR_1000 TS_BODY_100, TS_AFTER_NOTHING);
        return;
    case TS_FAULT_MALFORMED_STATUS:
        raw_send(c, TS_MALFORMED, TS_AFTER_CLOSE);
        return;
    case TS_FAULT_RESET_MID_HEADERS:
        raw_send(c, TS_MID_HEADERS, TS_AFTER_RESET);
        return;
    case TS_FAULT_MALFORMED_HEADER:
        raw_send(c, TS_BAD_HEADER, TS_AFTER_CLOSE);
        return;
    case TS_FAULT_RESET_MID_BODY:
        raw_send(c, TS_HDR_1000 TS_BODY_100, TS_AFTER_RESET);
        return;
    case TS_FAULT_DRIBBLE:
        c->step = TS_STEP_DRIBBLE;
        c->dribble_off = 0;
        raw_dribble(c);
        return;
    case TS_FAULT_NONE:
    case TS_FAULT_BIG_HEADERS:
    case TS_FAULT_CLOSE_IDLE:
    default:
        /* Not raw faults; dispatch never sends them here. */
        conn_close_clean(c);
        return;
    }
}

static void conn_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ts_conn *c = arg;

    switch (c->step) {
    case TS_STEP_ATTACH:
        conn_attach(c);
        break;
    case TS_STEP_RAW:
        raw_start(c);
        break;
    case TS_STEP_DRIBBLE:
        raw_dribble(c);
        break;
    case TS_STEP_OUTQ:
        raw_wait_outq(c);
        break;
    case TS_STEP_CLOSE:
        conn_close_clean(c);
        break;
    case TS_STEP_IDLE:
    default:
        break;
    }
}

/* ------------------------------------------------------------ responses */

static void send_404(struct evhttp_request *req, const char *path)
{
    struct json_object *root = json_object_new_object();
    struct json_object *err = json_object_new_object();
    struct evbuffer *body = evbuffer_new();
    char *msg;
    const char *text;
    size_t n = strlen(path) + sizeof("no route for ");

    if (!root || !err || !body)
        ts_die("out of memory");
    msg = ts_xmalloc(n);
    snprintf(msg, n, "no route for %s", path);
    json_object_object_add(err, "code", json_object_new_int(404));
    json_object_object_add(err, "message", json_object_new_string(msg));
    json_object_object_add(err, "status", json_object_new_string("NOT_FOUND"));
    json_object_object_add(root, "error", err);
    text = json_object_to_json_string_ext(root,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    evbuffer_add(body, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 404, "Not Found", body);
    evbuffer_free(body);
    json_object_put(root);
    free(msg);
}

static void send_big_headers(struct evhttp_request *req, unsigned param)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    struct evbuffer *body = evbuffer_new();
    size_t remaining = param, i = 0;
    char name[32];
    char *value = ts_xmalloc(1024);

    if (!body)
        ts_die("out of memory");
    /* Each "X-Pad-N: xxx\r\n" line is at most 1000 bytes; the last lines are
     * sized so the total is exactly param (a line is at least 11 bytes, so
     * smaller params round up to 11). */
    while (remaining > 0) {
        size_t overhead, line, vlen;

        snprintf(name, sizeof(name), "X-Pad-%zu", i++);
        overhead = strlen(name) + 4; /* ": " and CRLF */
        line = remaining > 1024 ? 1000 : remaining;
        if (line < overhead)
            line = overhead;
        vlen = line - overhead;
        memset(value, 'x', vlen);
        value[vlen] = '\0';
        evhttp_add_header(out, name, value);
        remaining -= line < remaining ? line : remaining;
    }
    free(value);
    evhttp_add_header(out, "Content-Type", "text/plain");
    evbuffer_add(body, "ok", 2);
    evhttp_send_reply(req, 200, "OK", body);
    evbuffer_free(body);
}

/* A normal keep-alive answer; on_complete schedules the close once it has
 * been flushed (the close must not start while evhttp still writes). */
static void send_close_idle(struct ts_conn *c, struct evhttp_request *req, unsigned ms)
{
    struct evbuffer *body = evbuffer_new();

    if (!body)
        ts_die("out of memory");
    if (c) {
        c->idle_close = 1;
        c->idle_ms = ms;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evbuffer_add(body, "ok", 2);
    evhttp_send_reply(req, 200, "OK", body);
    evbuffer_free(body);
}

static int no_body(int status, struct evhttp_request *req)
{
    return status < 200 || status == 204 || status == 304 ||
           evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
}

static void start_raw(struct ts_conn *c, ts_fault fault, unsigned param)
{
    c->fault = fault;
    c->param = param;
    c->step = TS_STEP_RAW;
    event_active(c->ev, EV_TIMEOUT, 1);
}

/* Answers req as its path is routed now; k is its position in a sequence
 * (taken at arrival, see record). */
static void dispatch(ts_server *s, struct ts_conn *c, struct evhttp_request *req, unsigned k)
{
    const char *path = request_path(req);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    struct evbuffer *body = evbuffer_new();
    struct ts_path *p;
    enum ts_kind kind = TS_KIND_NONE;
    int status = 200;
    size_t chunk = 0;
    ts_fault fault = TS_FAULT_NONE;
    unsigned param = 0;
    ts_handler fn = NULL;
    void *fn_arg = NULL;

    if (!body)
        ts_die("out of memory");
    /* Copy what we need under the lock: another thread may re-route. */
    pthread_mutex_lock(&s->lock);
    p = path_find(s, path);
    if (p) {
        kind = p->kind;
        status = p->status;
        chunk = p->chunk_size;
        fault = p->fault;
        param = p->param;
        fn = p->fn;
        fn_arg = p->fn_arg;
        if (kind == TS_KIND_SEQUENCE) {
            const ts_step_resp *st = &p->steps[k < p->nsteps ? k : p->nsteps - 1];

            if (st->fault != TS_FAULT_NONE) {
                kind = TS_KIND_FAULT;
                fault = st->fault;
                param = st->param;
            } else {
                kind = TS_KIND_STATIC;
                status = st->status;
                if (st->headers)
                    add_header_text(out, st->headers);
                if (st->body)
                    evbuffer_add(body, st->body, strlen(st->body));
            }
        } else if (kind == TS_KIND_STATIC || kind == TS_KIND_CHUNKED || kind == TS_KIND_GZIP) {
            if (p->headers)
                add_header_text(out, p->headers);
            evbuffer_add(body, p->body, p->body_len);
        }
    }
    pthread_mutex_unlock(&s->lock);

    switch (kind) {
    case TS_KIND_NONE:
    case TS_KIND_SEQUENCE: /* turned into STATIC or FAULT above */
        send_404(req, path);
        break;
    case TS_KIND_GZIP:
        evhttp_remove_header(out, "Content-Encoding");
        evhttp_add_header(out, "Content-Encoding", "gzip");
        /* fall through */
    case TS_KIND_STATIC:
        if (no_body(status, req))
            evbuffer_drain(body, evbuffer_get_length(body));
        evhttp_send_reply(req, status, status_reason(status), body);
        break;
    case TS_KIND_CHUNKED:
        evhttp_send_reply_start(req, status, status_reason(status));
        if (!no_body(status, req)) {
            while (evbuffer_get_length(body) > 0) {
                struct evbuffer *piece = evbuffer_new();
                size_t n = evbuffer_get_length(body);

                if (!piece)
                    ts_die("out of memory");
                if (chunk && chunk < n)
                    n = chunk;
                evbuffer_remove_buffer(body, piece, n);
                evhttp_send_reply_chunk(req, piece);
                evbuffer_free(piece);
            }
        }
        evhttp_send_reply_end(req);
        break;
    case TS_KIND_HANDLER:
        fn(req, fn_arg);
        break;
    case TS_KIND_FAULT:
        if (fault == TS_FAULT_NONE) {
            evhttp_send_reply(req, 200, "OK", body);
        } else if (fault == TS_FAULT_BIG_HEADERS) {
            send_big_headers(req, param);
        } else if (fault == TS_FAULT_CLOSE_IDLE) {
            send_close_idle(c, req, param);
        } else if (c) {
            start_raw(c, fault, param);
        } else {
            /* Unreachable unless attach failed; say so on the wire. */
            evhttp_send_reply(req, 500, "No connection record", body);
        }
        break;
    }
    evbuffer_free(body);
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
    struct ts_conn *c = arg;
    struct evhttp_request *req = c->delay_req;

    c->delay_req = NULL;
    if (req)
        dispatch(c->s, c, req, c->delay_k);
}

static void on_complete(struct evhttp_request *req, void *arg)
{
    struct ts_conn *c = arg;
    unsigned limit = c->s->opts.close_after;

    /* The response is flushed. Closing here would pull the connection from
     * under evhttp_send_done, so the record's event does it. */
    c->answered++;
    if (c->idle_close) {
        c->idle_close = 0;
        if (c->step == TS_STEP_IDLE) {
            c->step = TS_STEP_CLOSE;
            if (c->idle_ms)
                timer_ms(c->ev, c->idle_ms);
            else
                event_active(c->ev, EV_TIMEOUT, 1);
            return;
        }
    }
    if (limit && c->answered >= limit && c->step == TS_STEP_IDLE) {
        c->step = TS_STEP_CLOSE;
        event_active(c->ev, EV_TIMEOUT, 1);
    }
}

static void hold_readcb(struct bufferevent *bev, void *arg)
{
    /* Leave the bytes in the input buffer; evhttp parses them after the
     * reply, when it starts reading the next request. */
}

/* evhttp stops reading while a request waits for its answer, so it would
 * notice a client that gives up only when the answer is written. For a
 * delayed answer we want the close seen at once (tests check that a
 * cancelled request's connection goes away), so reading goes back on with a
 * read callback that leaves the bytes alone; evhttp's event callback then
 * sees the EOF, detaches the request and frees the connection
 * (on_conn_close frees the request). evhttp puts its own read callback back
 * when it starts reading the next request. */
static void watch_for_close(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev;
    bufferevent_data_cb wcb = NULL;
    bufferevent_event_cb ecb = NULL;
    void *cbarg = NULL;

    if (!evcon)
        return;
    bev = evhttp_connection_get_bufferevent(evcon);
    bufferevent_getcb(bev, NULL, &wcb, &ecb, &cbarg);
    bufferevent_setcb(bev, hold_readcb, wcb, ecb, cbarg);
    bufferevent_enable(bev, EV_READ);
}

/* Records req on its path; sets *delay_ms and *k (the request's position
 * in a sequence: requests on the path since its route was set). */
static void record(ts_server *s, struct ts_conn *c, struct evhttp_request *req, const char *path,
                   unsigned *delay_ms, unsigned *k)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    const char *sni = c && c->ssl ? SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
    struct evkeyval *kv;
    struct ts_path *p;
    size_t n = 0, len = evbuffer_get_length(body);
    double now = mono_ms();

    pthread_mutex_lock(&s->lock);
    s->requests++;
    p = path_get(s, path);
    p->hits++;
    if (p->narrivals == p->arrivals_cap) {
        size_t cap = p->arrivals_cap ? 2 * p->arrivals_cap : 16;
        double *a = realloc(p->arrivals, cap * sizeof(*a));

        if (!a)
            ts_die("out of memory");
        p->arrivals = a;
        p->arrivals_cap = cap;
    }
    p->arrivals[p->narrivals++] = now;
    *k = p->since_route++;
    path_clear_record(p);
    p->method = ts_xstrdup(method_name(evhttp_request_get_command(req)));
    for (kv = in->tqh_first; kv; kv = kv->next.tqe_next)
        n++;
    p->hdrs = ts_xcalloc(n, sizeof(*p->hdrs));
    for (kv = in->tqh_first; kv; kv = kv->next.tqe_next) {
        p->hdrs[p->nhdrs].name = ts_xstrdup(kv->key);
        p->hdrs[p->nhdrs].value = ts_xstrdup(kv->value);
        p->nhdrs++;
    }
    p->req_body = ts_xmalloc(len + 1);
    evbuffer_copyout(body, p->req_body, len);
    p->req_body[len] = '\0';
    p->req_body_len = len;
    p->sni = ts_xstrdup(sni);
    *delay_ms = p->delay_ms;
    pthread_mutex_unlock(&s->lock);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    ts_server *s = arg;
    struct ts_conn *c = conn_find(s, evhttp_request_get_connection(req));
    unsigned delay_ms = 0, k = 0;

    record(s, c, req, request_path(req), &delay_ms, &k);
    if (c)
        evhttp_request_set_on_complete_cb(req, on_complete, c);
    if (delay_ms && c) {
        if (!c->delay_ev && !(c->delay_ev = evtimer_new(s->base, on_delay, c)))
            ts_die("cannot make a timer");
        c->delay_req = req;
        c->delay_k = k;
        timer_ms(c->delay_ev, delay_ms);
        watch_for_close(req);
        return;
    }
    dispatch(s, c, req, k);
}

/* ------------------------------------------------------------ lifecycle */

static evutil_socket_t listen_loopback(int ipv6)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr *sa;
    socklen_t len;
    evutil_socket_t fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    if (ipv6) {
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        sin6.sin6_addr = in6addr_loopback;
        sa = (struct sockaddr *)&sin6;
        len = sizeof(sin6);
    } else {
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa = (struct sockaddr *)&sin;
        len = sizeof(sin);
    }
    if (evutil_make_socket_nonblocking(fd) < 0 || evutil_make_socket_closeonexec(fd) < 0 ||
        bind(fd, sa, len) < 0 || listen(fd, 128) < 0) {
        int saved = errno;
        evutil_closesocket(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

ts_server *ts_server_new(struct event_base *base, const ts_options *opts)
{
    static const ts_options defaults = TS_OPTIONS_INIT;
    ts_server *s;
    evutil_socket_t fd;
    struct evhttp_bound_socket *bound;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    const char *pem;

    if (!base) {
        fprintf(stderr, "ts_server_new: no event_base\n");
        return NULL;
    }
    s = ts_xcalloc(1, sizeof(*s));
    s->base = base;
    s->opts = opts ? *opts : defaults;
    pthread_mutex_init(&s->lock, NULL);

    pem = ts_certs_ca_pem();
    if (!pem) {
        fprintf(stderr, "ts_server_new: cannot make test certificates\n");
        goto fail;
    }
    s->ca_pem = ts_xstrdup(pem);
    if (!s->opts.plain_http) {
        s->ssl_ctx = SSL_CTX_new(TLS_server_method());
        if (!s->ssl_ctx || SSL_CTX_set_min_proto_version(s->ssl_ctx, TLS1_2_VERSION) != 1 ||
            ts_certs_use(s->ssl_ctx, s->opts.cert) != 0) {
            fprintf(stderr, "ts_server_new: cannot set up TLS\n");
            ERR_print_errors_fp(stderr);
            goto fail;
        }
    }

    s->http = evhttp_new(base);
    if (!s->http) {
        fprintf(stderr, "ts_server_new: evhttp_new failed\n");
        goto fail;
    }
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    /* Otherwise every response without one gets text/html; ISO-8859-1. */
    evhttp_set_default_content_type(s->http, NULL);
    evhttp_set_gencb(s->http, on_request, s);
    evhttp_set_bevcb(s->http, on_bev, s);

    /* Our own socket rather than evhttp_bind_socket_with_handle: that one
     * resolves "::1" with AI_ADDRCONFIG, which fails on hosts whose only
     * IPv6 address is the loopback. */
    fd = listen_loopback(s->opts.ipv6);
    if (fd < 0) {
        fprintf(stderr, "ts_server_new: cannot listen on %s: %s\n",
                s->opts.ipv6 ? "[::1]" : "127.0.0.1", strerror(errno));
        goto fail;
    }
    bound = evhttp_accept_socket_with_handle(s->http, fd);
    if (!bound) {
        fprintf(stderr, "ts_server_new: evhttp_accept_socket failed\n");
        evutil_closesocket(fd);
        goto fail;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        fprintf(stderr, "ts_server_new: getsockname: %s\n", strerror(errno));
        goto fail;
    }
    if (ss.ss_family == AF_INET6)
        s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    else
        s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    snprintf(s->origin, sizeof(s->origin), "%s://%s:%d", s->opts.plain_http ? "http" : "https",
             s->opts.ipv6 ? "[::1]" : "127.0.0.1", s->port);
    return s;

fail:
    ts_server_free(s);
    return NULL;
}

void ts_server_free(ts_server *s)
{
    struct ts_path *p;

    if (!s)
        return;
    /* Closes the listener and every connection; on_conn_close frees the
     * records of attached connections. */
    if (s->http)
        evhttp_free(s->http);
    /* Records whose attach event has not run yet (freed before the loop got
     * back to them): evhttp freed their connection without telling us. */
    while (s->conns)
        conn_destroy(s->conns);
    SSL_CTX_free(s->ssl_ctx);
    while ((p = s->paths) != NULL) {
        s->paths = p->next;
        path_clear_route(p);
        path_clear_record(p);
        free(p->arrivals);
        free(p->path);
        free(p);
    }
    free(s->ca_pem);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int ts_server_port(const ts_server *s)
{
    return s ? s->port : 0;
}

const char *ts_server_origin(const ts_server *s)
{
    return s ? s->origin : NULL;
}

const char *ts_server_ca_pem(const ts_server *s)
{
    return s ? s->ca_pem : NULL;
}

/* ------------------------------------------------------------ scripting */

static void set_body_route(ts_server *s, const char *path, enum ts_kind kind, int status,
                           const char *headers, unsigned char *body, size_t len, size_t chunk)
{
    struct ts_path *p;

    pthread_mutex_lock(&s->lock);
    p = path_get(s, path);
    path_clear_route(p);
    p->kind = kind;
    p->status = status;
    p->headers = ts_xstrdup(headers);
    p->body = body;
    p->body_len = len;
    p->chunk_size = chunk;
    pthread_mutex_unlock(&s->lock);
}

void ts_route(ts_server *s, const char *path, int status, const char *headers, const char *body)
{
    size_t n = body ? strlen(body) : 0;

    if (!s || !path)
        return;
    set_body_route(s, path, TS_KIND_STATIC, status, headers, ts_xmemdup(body ? body : "", n), n, 0);
}

void ts_route_chunked(ts_server *s, const char *path, int status, const char *headers,
                      const char *body, size_t chunk_size)
{
    size_t n = body ? strlen(body) : 0;

    if (!s || !path)
        return;
    set_body_route(s, path, TS_KIND_CHUNKED, status, headers, ts_xmemdup(body ? body : "", n), n,
                   chunk_size);
}

void ts_route_gzip(ts_server *s, const char *path, int status, const char *headers,
                   const char *body)
{
    size_t n = 0;
    unsigned char *gz;

    if (!s || !path)
        return;
    gz = gzip_bytes(body ? body : "", body ? strlen(body) : 0, &n);
    set_body_route(s, path, TS_KIND_GZIP, status, headers, gz, n, 0);
}

void ts_route_fault(ts_server *s, const char *path, ts_fault fault, unsigned param)
{
    struct ts_path *p;

    if (!s || !path)
        return;
    pthread_mutex_lock(&s->lock);
    p = path_get(s, path);
    path_clear_route(p);
    p->kind = TS_KIND_FAULT;
    p->fault = fault;
    p->param = param;
    pthread_mutex_unlock(&s->lock);
}

void ts_route_delay(ts_server *s, const char *path, unsigned ms)
{
    if (!s || !path)
        return;
    pthread_mutex_lock(&s->lock);
    path_get(s, path)->delay_ms = ms;
    pthread_mutex_unlock(&s->lock);
}

void ts_route_handler(ts_server *s, const char *path, ts_handler fn, void *arg)
{
    struct ts_path *p;

    if (!s || !path || !fn)
        return;
    pthread_mutex_lock(&s->lock);
    p = path_get(s, path);
    path_clear_route(p);
    p->kind = TS_KIND_HANDLER;
    p->fn = fn;
    p->fn_arg = arg;
    pthread_mutex_unlock(&s->lock);
}

void ts_route_sequence(ts_server *s, const char *path, const ts_step_resp *steps, size_t n)
{
    ts_step_resp *copy;
    struct ts_path *p;
    size_t i;

    if (!s || !path || !steps || n == 0)
        return;
    /* Copied before taking the lock: the caller's strings may be long. */
    copy = ts_xcalloc(n, sizeof(*copy));
    for (i = 0; i < n; i++) {
        copy[i] = steps[i];
        copy[i].headers = ts_xstrdup(steps[i].headers);
        copy[i].body = ts_xstrdup(steps[i].body);
    }
    pthread_mutex_lock(&s->lock);
    p = path_get(s, path);
    path_clear_route(p);
    p->kind = TS_KIND_SEQUENCE;
    p->steps = copy;
    p->nsteps = n;
    pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------ observation */

/* The getters take a const server but must lock its mutex. */
static pthread_mutex_t *lock_of(const ts_server *s)
{
    return (pthread_mutex_t *)&s->lock;
}

unsigned ts_server_connections(const ts_server *s)
{
    unsigned n;

    if (!s)
        return 0;
    pthread_mutex_lock(lock_of(s));
    n = s->accepted;
    pthread_mutex_unlock(lock_of(s));
    return n;
}

unsigned ts_server_requests(const ts_server *s)
{
    unsigned n;

    if (!s)
        return 0;
    pthread_mutex_lock(lock_of(s));
    n = s->requests;
    pthread_mutex_unlock(lock_of(s));
    return n;
}

unsigned ts_server_hits(const ts_server *s, const char *path)
{
    const struct ts_path *p;
    unsigned n;

    if (!s)
        return 0;
    pthread_mutex_lock(lock_of(s));
    p = path_find(s, path);
    n = p ? p->hits : 0;
    pthread_mutex_unlock(lock_of(s));
    return n;
}

unsigned ts_server_open_connections(const ts_server *s)
{
    unsigned n;

    if (!s)
        return 0;
    pthread_mutex_lock(lock_of(s));
    n = s->open;
    pthread_mutex_unlock(lock_of(s));
    return n;
}

const char *ts_last_method(const ts_server *s, const char *path)
{
    const struct ts_path *p;
    const char *r;

    if (!s)
        return NULL;
    pthread_mutex_lock(lock_of(s));
    p = path_find(s, path);
    r = p ? p->method : NULL;
    pthread_mutex_unlock(lock_of(s));
    return r;
}

const char *ts_last_header(const ts_server *s, const char *path, const char *name)
{
    const struct ts_path *p;
    const char *r = NULL;
    size_t i;

    if (!s || !name)
        return NULL;
    pthread_mutex_lock(lock_of(s));
    p = path_find(s, path);
    for (i = 0; p && i < p->nhdrs; i++) {
        if (strcasecmp(p->hdrs[i].name, name) == 0) {
            r = p->hdrs[i].value;
            break;
        }
    }
    pthread_mutex_unlock(lock_of(s));
    return r;
}

const char *ts_last_body(const ts_server *s, const char *path, size_t *len)
{
    const struct ts_path *p;
    const char *r;

    if (len)
        *len = 0;
    if (!s)
        return NULL;
    pthread_mutex_lock(lock_of(s));
    p = path_find(s, path);
    r = p ? p->req_body : NULL;
    if (r && len)
        *len = p->req_body_len;
    pthread_mutex_unlock(lock_of(s));
    return r;
}

const char *ts_last_sni(const ts_server *s, const char *path)
{
    const struct ts_path *p;
    const char *r;

    if (!s)
        return NULL;
    pthread_mutex_lock(lock_of(s));
    p = path_find(s, path);
    r = p ? p->sni : NULL;
    pthread_mutex_unlock(lock_of(s));
    return r;
}

int ts_request_times(const ts_server *s, const char *path, double *out_ms, size_t max)
{
    const struct ts_path *p;
    size_t n;

    if (!s)
        return 0;
    pthread_mutex_lock(lock_of(s));
    p = path_find(s, path);
    n = p ? p->narrivals : 0;
    if (out_ms) {
        if (n > max)
            n = max;
        if (n)
            memcpy(out_ms, p->arrivals, n * sizeof(*out_ms));
    }
    pthread_mutex_unlock(lock_of(s));
    return (int)n;
}

void ts_server_reset_counts(ts_server *s)
{
    struct ts_path *p;

    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->accepted = 0;
    s->requests = 0;
    for (p = s->paths; p; p = p->next) {
        p->hits = 0;
        p->narrivals = 0;
        p->since_route = 0;
    }
    pthread_mutex_unlock(&s->lock);
}
