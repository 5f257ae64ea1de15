/*
 * Self-test of the test server (server.c, certs.c), TAP output.
 *
 * The client side is deliberately independent of both gapi and evhttp: a
 * small blocking OpenSSL/socket client that runs on its own pthread while the
 * main thread runs the server's event loop. It trusts the CA from
 * ts_server_ca_pem() through an X509_STORE filled from memory, sends raw
 * HTTP/1.1 and looks at raw bytes, so each fault is checked on the wire.
 * Two more set-ups are covered: the server on a second thread's base with
 * the client on the main thread, and a nonblocking bufferevent client on the
 * server's own base in one thread.
 *
 * Every test ends with ts_server_free, one EVLOOP_NONBLOCK pass and a check
 * that no event is left on the base.
 */
#include "certs.h"
#include "dns_server.h"
#include "server.h"
#include "tap.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <event2/util.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#define ZLIB_CONST
#include <zlib.h>

#define RBUF (256 * 1024)

static struct event_base *g_base;

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ run a client */

struct run {
    void (*fn)(void *);
    void *arg;
    struct event *done;
};

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(g_base);
}

static void *client_thread(void *arg)
{
    struct run *r = arg;

    r->fn(r->arg);
    /* Thread-safe (evthread_use_pthreads); stays active until the loop runs,
     * so it cannot be lost if the main thread is not in the loop yet. */
    event_active(r->done, EV_TIMEOUT, 1);
    return NULL;
}

/* Runs fn(arg) on a new thread while the main thread runs g_base. */
static void run_client(void (*fn)(void *), void *arg)
{
    struct run r;
    pthread_t t;

    r.fn = fn;
    r.arg = arg;
    r.done = event_new(g_base, -1, 0, on_done, NULL);
    if (!r.done || pthread_create(&t, NULL, client_thread, &r) != 0) {
        fprintf(stderr, "cannot start client thread\n");
        exit(1);
    }
    event_base_dispatch(g_base);
    pthread_join(t, NULL);
    event_free(r.done);
}

static int events_on(struct event_base *base)
{
    return event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
}

/* Runs the loop until the server has seen every connection close (the
 * client thread's last close may still be in flight when it reports done). */
static void settle(ts_server *s)
{
    struct timeval tv = {0, 5000};
    struct event *tick = evtimer_new(g_base, on_tick, NULL);
    double end = now_ms() + 2000;

    while (ts_server_open_connections(s) > 0 && now_ms() < end) {
        evtimer_add(tick, &tv);
        event_base_loop(g_base, EVLOOP_ONCE);
    }
    event_free(tick);
}

/* Frees s and checks the documented "no events left" rule. */
static void server_done(ts_server *s, const char *what)
{
    ts_server_free(s);
    event_base_loop(g_base, EVLOOP_NONBLOCK);
    is_int(events_on(g_base), 0, "%s: no events left on the base after free", what);
}

/* ------------------------------------------------------------ raw client */

enum { RD_DATA, RD_EOF, RD_EOF_DIRTY, RD_RESET, RD_TIMEOUT, RD_ERROR };

static const char *how_name(int how)
{
    static const char *names[] = {"data", "eof", "dirty-eof", "reset", "timeout", "error"};
    return how >= 0 && how <= RD_ERROR ? names[how] : "?";
}

struct cl {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    long verify;
    char *rest; /* bytes read past the end of the last response */
    size_t rest_len;
};

struct cl_opts {
    int ipv6;
    const char *ca_pem;     /* NULL: plain TCP */
    const char *check_ip;   /* X509_VERIFY_PARAM_set1_ip_asc */
    const char *check_host; /* X509_VERIFY_PARAM_set1_host */
    const char *sni;
    int timeout_ms; /* SO_RCVTIMEO; 0: 2000 */
};

static void cl_set_timeout(struct cl *c, int ms)
{
    struct timeval tv;

    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static SSL_CTX *client_ctx(const char *ca_pem)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509_STORE *store = X509_STORE_new();
    BIO *bio = BIO_new_mem_buf(ca_pem, -1);
    X509 *ca = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

    if (!ctx || !store || !ca || X509_STORE_add_cert(store, ca) != 1) {
        fprintf(stderr, "cannot build the client trust store\n");
        ERR_print_errors_fp(stderr);
        exit(1);
    }
    X509_free(ca);
    BIO_free(bio);
    SSL_CTX_set_cert_store(ctx, store); /* takes ownership */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

/* 0 ok, -1 connect failed, -2 handshake failed (c->verify says why). */
static int cl_open(struct cl *c, int port, const struct cl_opts *o)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr *sa;
    socklen_t len;
    int one = 1;

    memset(c, 0, sizeof(*c));
    c->verify = -1;
    c->fd = socket(o->ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    if (o->ipv6) {
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        sin6.sin6_addr = in6addr_loopback;
        sin6.sin6_port = htons((unsigned short)port);
        sa = (struct sockaddr *)&sin6;
        len = sizeof(sin6);
    } else {
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sin.sin_port = htons((unsigned short)port);
        sa = (struct sockaddr *)&sin;
        len = sizeof(sin);
    }
    cl_set_timeout(c, o->timeout_ms ? o->timeout_ms : 2000);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, sa, len) < 0)
        return -1;
    if (!o->ca_pem)
        return 0;

    c->ctx = client_ctx(o->ca_pem);
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
        return -1;
    if (o->sni)
        SSL_set_tlsext_host_name(c->ssl, o->sni);
    if (o->check_ip)
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), o->check_ip);
    if (o->check_host)
        X509_VERIFY_PARAM_set1_host(SSL_get0_param(c->ssl), o->check_host, 0);
    ERR_clear_error();
    if (SSL_connect(c->ssl) != 1) {
        c->verify = SSL_get_verify_result(c->ssl);
        ERR_clear_error();
        return -2;
    }
    c->verify = SSL_get_verify_result(c->ssl);
    return 0;
}

static void cl_close(struct cl *c)
{
    free(c->rest);
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

static int cl_write(struct cl *c, const char *buf, size_t n)
{
    if (c->ssl)
        return SSL_write(c->ssl, buf, (int)n) == (int)n ? 0 : -1;
    return send(c->fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* > 0: bytes; 0: the stream ended, *how says how. */
static int cl_read(struct cl *c, char *buf, size_t cap, int *how)
{
    int n;

    errno = 0;
    if (c->ssl) {
        ERR_clear_error();
        n = SSL_read(c->ssl, buf, (int)cap);
        if (n > 0) {
            *how = RD_DATA;
            return n;
        }
        switch (SSL_get_error(c->ssl, n)) {
        case SSL_ERROR_ZERO_RETURN:
            *how = RD_EOF; /* close_notify */
            break;
        case SSL_ERROR_WANT_READ:
            *how = RD_TIMEOUT; /* SO_RCVTIMEO on a blocking socket */
            break;
        case SSL_ERROR_SYSCALL:
            if (errno == ECONNRESET)
                *how = RD_RESET;
            else if (errno == EAGAIN || errno == EWOULDBLOCK)
                *how = RD_TIMEOUT;
            else
                *how = errno == 0 ? RD_EOF_DIRTY : RD_ERROR;
            break;
        case SSL_ERROR_SSL:
            *how = ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING
                       ? RD_EOF_DIRTY
                       : RD_ERROR;
            break;
        default:
            *how = RD_ERROR;
        }
        ERR_clear_error();
        return 0;
    }
    n = (int)recv(c->fd, buf, cap, 0);
    if (n > 0) {
        *how = RD_DATA;
        return n;
    }
    if (n == 0)
        *how = RD_EOF;
    else if (errno == ECONNRESET)
        *how = RD_RESET;
    else if (errno == EAGAIN || errno == EWOULDBLOCK)
        *how = RD_TIMEOUT;
    else
        *how = RD_ERROR;
    return 0;
}

/* Reads until the stream ends; returns how it ended. */
static int cl_read_all(struct cl *c, char *buf, size_t cap, size_t *len, int *nreads)
{
    int how = RD_ERROR, n;

    *len = 0;
    if (nreads)
        *nreads = 0;
    while (*len < cap && (n = cl_read(c, buf + *len, cap - *len, &how)) > 0) {
        *len += (size_t)n;
        if (nreads)
            (*nreads)++;
    }
    return how;
}

static int cl_request(struct cl *c, const char *method, const char *target, const char *extra,
                      const char *body)
{
    char head[2048];
    size_t blen = body ? strlen(body) : 0;
    int n;

    n = snprintf(head, sizeof(head),
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %zu\r\n\r\n", method,
                 target, extra ? extra : "", blen);
    if (n < 0 || (size_t)n >= sizeof(head))
        return -1;
    if (cl_write(c, head, (size_t)n) != 0)
        return -1;
    return blen ? cl_write(c, body, blen) : 0;
}

/* ------------------------------------------------------------ responses */

struct resp {
    char *raw;
    size_t len;
    size_t hdr_len; /* through the blank line; 0: none seen */
    int status;
    char *body; /* decoded (chunked) or copied */
    size_t body_len;
    int chunks;
    int how; /* how the stream ended, RD_DATA if it did not */
};

/* Value of header name in the response head (first match), or 0. */
static int resp_header(const struct resp *r, const char *name, char *out, size_t cap)
{
    const char *p = r->raw, *end = r->raw + r->hdr_len;
    size_t nlen = strlen(name);

    p = memchr(p, '\n', (size_t)(end - p));
    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            size_t vlen;
            while (*v == ' ')
                v++;
            vlen = (size_t)(eol - v);
            if (vlen && v[vlen - 1] == '\r')
                vlen--;
            if (vlen >= cap)
                vlen = cap - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 1;
        }
        p = eol;
    }
    return 0;
}

/* 1 complete (*used: bytes of chunked framing), 0 need more, -1 malformed. */
static int decode_chunked(const char *p, size_t n, char **body, size_t *blen, int *chunks,
                          size_t *used)
{
    size_t off = 0;
    char *out = malloc(n + 1);

    *blen = 0;
    *chunks = 0;
    if (!out)
        return -1;
    for (;;) {
        const char *eol = memchr(p + off, '\n', n - off);
        unsigned long size;
        char *endp;

        if (!eol)
            break;
        size = strtoul(p + off, &endp, 16);
        if (endp == p + off) {
            free(out);
            return -1;
        }
        off = (size_t)(eol - p) + 1;
        if (size == 0) {
            if (n - off >= 2 && p[off] == '\r' && p[off + 1] == '\n') {
                out[*blen] = '\0';
                *body = out;
                *used = off + 2;
                return 1;
            }
            break;
        }
        if (n - off < size + 2)
            break;
        memcpy(out + *blen, p + off, size);
        *blen += size;
        (*chunks)++;
        off += size + 2;
    }
    free(out);
    return 0;
}

static void resp_free(struct resp *r);

/* Keeps the bytes after the first `used` ones for the next response. */
static int resp_done(struct cl *c, struct resp *r, size_t used)
{
    if (r->len > used) {
        c->rest = malloc(r->len - used);
        if (!c->rest)
            return -1;
        memcpy(c->rest, r->raw + used, r->len - used);
        c->rest_len = r->len - used;
        r->len = used;
        r->raw[used] = '\0';
    }
    return 0;
}

/* Reads one response, framed by Content-Length or chunked. 0 if complete.
 * Bytes of a following (pipelined) response are kept for the next call. */
static int resp_read(struct cl *c, struct resp *r)
{
    char val[64];
    int n, how;

    resp_free(r); /* r is zeroed or holds an earlier response */
    r->how = RD_DATA;
    r->raw = malloc(RBUF);
    if (!r->raw)
        return -1;
    r->raw[0] = '\0';
    if (c->rest) {
        memcpy(r->raw, c->rest, c->rest_len);
        r->len = c->rest_len;
        r->raw[r->len] = '\0';
        free(c->rest);
        c->rest = NULL;
        c->rest_len = 0;
    }
    for (;;) {
        if (!r->hdr_len) {
            char *e = NULL;
            size_t i;
            for (i = 3; i < r->len && !e; i++)
                if (memcmp(r->raw + i - 3, "\r\n\r\n", 4) == 0)
                    e = r->raw + i + 1;
            if (e) {
                r->hdr_len = (size_t)(e - r->raw);
                if (sscanf(r->raw, "HTTP/1.%*d %d", &r->status) != 1)
                    r->status = -1;
            }
        }
        if (r->hdr_len) {
            const char *b = r->raw + r->hdr_len;
            size_t avail = r->len - r->hdr_len;
            if (resp_header(r, "Transfer-Encoding", val, sizeof(val)) &&
                strcasecmp(val, "chunked") == 0) {
                size_t used = 0;
                int d = decode_chunked(b, avail, &r->body, &r->body_len, &r->chunks, &used);
                if (d != 0)
                    return d == 1 ? resp_done(c, r, r->hdr_len + used) : -1;
            } else if (resp_header(r, "Content-Length", val, sizeof(val))) {
                size_t want = strtoul(val, NULL, 10);
                if (avail >= want) {
                    r->body = malloc(want + 1);
                    memcpy(r->body, b, want);
                    r->body[want] = '\0';
                    r->body_len = want;
                    return resp_done(c, r, r->hdr_len + want);
                }
            } else if (r->status == 204 || r->status == 304) {
                return resp_done(c, r, r->hdr_len);
            }
        }
        if (r->len + 1 >= RBUF)
            return -1;
        n = cl_read(c, r->raw + r->len, RBUF - 1 - r->len, &how);
        if (n == 0) {
            r->how = how;
            return -1;
        }
        r->len += (size_t)n;
        r->raw[r->len] = '\0'; /* sscanf and strstr look at raw */
    }
}

static void resp_free(struct resp *r)
{
    free(r->raw);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static int resp_header_is(const struct resp *r, const char *name, const char *want)
{
    char v[256];

    return resp_header(r, name, v, sizeof(v)) && strcmp(v, want) == 0;
}

/* ------------------------------------------------------------ shared state */

/* What a client thread needs to know about the server it talks to. */
struct ctx {
    ts_server *s;
    int tls;
    int ipv6;
    unsigned param;     /* dribble ms per byte */
    struct cl conns[4]; /* teardown: connections left open for the main thread */
};

static void copts(struct cl_opts *o, const struct ctx *x)
{
    memset(o, 0, sizeof(*o));
    o->ipv6 = x->ipv6;
    o->ca_pem = x->tls ? ts_server_ca_pem(x->s) : NULL;
    o->check_ip = x->tls ? (x->ipv6 ? "::1" : "127.0.0.1") : NULL;
}

/* ------------------------------------------------------------ basic */

static void client_basic(void *arg)
{
    struct ctx *x = arg;
    struct cl_opts o;
    struct cl c;
    struct resp r = {NULL, 0, 0, 0, NULL, 0, 0, RD_DATA};
    int rc;

    copts(&o, x);
    rc = cl_open(&c, ts_server_port(x->s), &o);
    is_int(rc, 0, "basic: connect + TLS handshake with IP check");
    is_int(c.verify, X509_V_OK, "basic: certificate verifies");
    if (rc == 0 && cl_request(&c, "GET", "/hello?x=1&y=2", "X-Custom: abc\r\n", NULL) == 0 &&
        resp_read(&c, &r) == 0) {
        is_int(r.status, 200, "basic: status 200");
        is_str(r.body, "hello world", "basic: body");
        ok(resp_header_is(&r, "X-Test", "yes"), "basic: route header X-Test");
        ok(resp_header_is(&r, "Content-Type", "text/plain"), "basic: Content-Type");
        ok(resp_header_is(&r, "Content-Length", "11"), "basic: Content-Length");
        resp_free(&r);
    } else {
        ok(0, "basic: request/response");
    }
    resp_free(&r);
    cl_close(&c);
}

static void test_basic(void)
{
    struct ctx x;

    memset(&x, 0, sizeof(x));
    x.s = ts_server_new(g_base, NULL);
    x.tls = 1;
    ok(x.s != NULL, "server starts (defaults: HTTPS, good cert)");
    if (!x.s)
        return;
    ok(strncmp(ts_server_origin(x.s), "https://127.0.0.1:", 18) == 0,
       "origin is https://127.0.0.1:PORT (%s)", ts_server_origin(x.s));
    ok(ts_server_port(x.s) > 0, "port is set");
    ok(ts_server_ca_pem(x.s) && strstr(ts_server_ca_pem(x.s), "BEGIN CERTIFICATE"),
       "CA PEM is exported");
    ts_route(x.s, "/hello", 200, "Content-Type: text/plain\r\nX-Test: yes\r\n", "hello world");
    run_client(client_basic, &x);

    is_int(ts_server_connections(x.s), 1, "basic: one connection accepted");
    is_int(ts_server_requests(x.s), 1, "basic: one request");
    is_int(ts_server_hits(x.s, "/hello"), 1, "basic: one hit on /hello (query ignored)");
    is_int(ts_server_hits(x.s, "/other"), 0, "basic: no hit on /other");
    is_str(ts_last_method(x.s, "/hello"), "GET", "basic: method recorded");
    is_str(ts_last_header(x.s, "/hello", "x-custom"), "abc",
           "basic: header recorded (case-insensitive)");
    is_str(ts_last_header(x.s, "/hello", "Host"), "127.0.0.1", "basic: Host recorded");
    is_str(ts_last_sni(x.s, "/hello"), NULL, "basic: no SNI for an IP literal");
    settle(x.s);
    is_int(ts_server_open_connections(x.s), 0, "basic: server saw the close");
    server_done(x.s, "basic");
}

/* ------------------------------------------------------------ keep-alive etc */

static void client_keepalive(void *arg)
{
    struct ctx *x = arg;
    struct cl_opts o;
    struct cl c;
    struct resp r = {NULL, 0, 0, 0, NULL, 0, 0, RD_DATA};
    int i;

    copts(&o, x);
    if (cl_open(&c, ts_server_port(x->s), &o) != 0) {
        ok(0, "keepalive: connect");
        cl_close(&c);
        return;
    }
    for (i = 0; i < 3; i++) {
        if (cl_request(&c, "GET", "/hello", NULL, NULL) != 0 || resp_read(&c, &r) != 0) {
            ok(0, "keepalive: request %d", i + 1);
            continue;
        }
        ok(r.status == 200 && strcmp(r.body, "hello world") == 0,
           "keepalive: request %d answered on the same connection", i + 1);
        ok(!resp_header_is(&r, "Connection", "close"), "keepalive: no Connection: close");
        resp_free(&r);
    }
    if (cl_request(&c, "POST", "/echo", "Content-Type: application/json\r\n", "{\"a\":1}") == 0 &&
        resp_read(&c, &r) == 0) {
        is_int(r.status, 201, "keepalive: POST answered 201");
        ok(resp_header_is(&r, "Location", "/echo/1"), "keepalive: Location header");
        resp_free(&r);
    } else {
        ok(0, "keepalive: POST");
    }
    if (cl_request(&c, "PATCH", "/missing/x%20y?q=1", NULL, "z") == 0 && resp_read(&c, &r) == 0) {
        is_int(r.status, 404, "404: status");
        ok(resp_header_is(&r, "Content-Type", "application/json"),
           "404: Content-Type application/json");
        is_str(r.body,
               "{\"error\":{\"code\":404,\"message\":\"no route for /missing/x%20y\","
               "\"status\":\"NOT_FOUND\"}}",
               "404: JSON body");
        resp_free(&r);
    } else {
        ok(0, "404: request");
    }
    resp_free(&r);
    cl_close(&c);
}

static void test_keepalive(int tls)
{
    struct ctx x;
    ts_options opts = TS_OPTIONS_INIT;
    size_t len = 0;
    const char *body;

    memset(&x, 0, sizeof(x));
    opts.plain_http = !tls;
    x.tls = tls;
    x.s = ts_server_new(g_base, &opts);
    if (!x.s) {
        ok(0, "server starts");
        return;
    }
    diag("keep-alive, recorders and 404 over %s", tls ? "TLS" : "plain HTTP");
    ts_route(x.s, "/hello", 200, "Content-Type: text/plain\r\n", "hello world");
    ts_route(x.s, "/echo", 201, "Location: /echo/1\r\n", NULL);
    run_client(client_keepalive, &x);
    is_int(ts_server_connections(x.s), 1, "keepalive: 5 requests, 1 connection");
    is_int(ts_server_requests(x.s), 5, "keepalive: 5 requests counted");
    is_int(ts_server_hits(x.s, "/hello"), 3, "keepalive: 3 hits on /hello");
    is_int(ts_server_hits(x.s, "/missing/x%20y"), 1, "keepalive: unrouted path counted");
    is_str(ts_last_method(x.s, "/echo"), "POST", "recorder: POST");
    is_str(ts_last_method(x.s, "/missing/x%20y"), "PATCH", "recorder: PATCH allowed");
    body = ts_last_body(x.s, "/echo", &len);
    is_str(body, "{\"a\":1}", "recorder: body");
    is_int(len, 7, "recorder: body length");
    is_str(ts_last_header(x.s, "/echo", "content-type"), "application/json",
           "recorder: request header");
    is_str(ts_last_header(x.s, "/echo", "X-Absent"), NULL, "recorder: absent header");
    is_str(ts_last_method(x.s, "/never"), NULL, "recorder: unseen path");
    server_done(x.s, tls ? "keepalive tls" : "keepalive plain");
}

/* ------------------------------------------------------------ bodies */

static const char *g_long_body = "The quick brown fox jumps over the lazy dog. 0123456789 "
                                 "The quick brown fox jumps over the lazy dog. abcdefghij";

static const char *g_json_body =
    "{\"kind\":\"storage#objects\",\"items\":[{\"name\":\"a\"},{\"name\":\"b\"},"
    "{\"name\":\"c\"},{\"name\":\"d\"},{\"name\":\"e\"},{\"name\":\"f\"}]}";

static char *gunzip(const char *in, size_t n, size_t *out_len)
{
    z_stream z;
    char *out = malloc(65536);
    int rc;

    memset(&z, 0, sizeof(z));
    if (!out || inflateInit2(&z, 31) != Z_OK) {
        free(out);
        return NULL;
    }
    z.next_in = (const Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out;
    z.avail_out = 65535;
    rc = inflate(&z, Z_FINISH);
    *out_len = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    out[*out_len] = '\0';
    return out;
}

static void handler(struct evhttp_request *req, void *arg)
{
    struct evbuffer *b = evbuffer_new();

    evbuffer_add_printf(b, "handled %s %s", (const char *)arg, evhttp_request_get_uri(req));
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Handler", "1");
    evhttp_send_reply(req, 202, "Accepted", b);
    evbuffer_free(b);
}

static void client_bodies(void *arg)
{
    struct ctx *x = arg;
    struct cl_opts o;
    struct cl c;
    struct resp r = {NULL, 0, 0, 0, NULL, 0, 0, RD_DATA};
    char *plain;
    size_t plen = 0;
    double t0;

    copts(&o, x);
    if (cl_open(&c, ts_server_port(x->s), &o) != 0) {
        ok(0, "bodies: connect");
        cl_close(&c);
        return;
    }
    if (cl_request(&c, "GET", "/chunked", NULL, NULL) == 0 && resp_read(&c, &r) == 0) {
        is_int(r.status, 200, "chunked: status");
        ok(resp_header_is(&r, "Transfer-Encoding", "chunked"), "chunked: header");
        ok(!resp_header(&r, "Content-Length", (char[8]){0}, 8), "chunked: no Content-Length");
        is_str(r.body, g_long_body, "chunked: body reassembled");
        is_int(r.chunks, (int)((strlen(g_long_body) + 15) / 16), "chunked: pieces of 16 bytes");
        resp_free(&r);
    } else {
        ok(0, "chunked: request");
    }
    if (cl_request(&c, "GET", "/gz", "Accept-Encoding: gzip\r\n", NULL) == 0 &&
        resp_read(&c, &r) == 0) {
        is_int(r.status, 200, "gzip: status");
        ok(resp_header_is(&r, "Content-Encoding", "gzip"), "gzip: Content-Encoding");
        ok(resp_header_is(&r, "Content-Type", "application/json"), "gzip: Content-Type");
        ok(r.body_len >= 18 && (unsigned char)r.body[0] == 0x1f && (unsigned char)r.body[1] == 0x8b,
           "gzip: gzip magic");
        plain = gunzip(r.body, r.body_len, &plen);
        is_str(plain, g_json_body, "gzip: inflates to the routed body");
        free(plain);
        resp_free(&r);
    } else {
        ok(0, "gzip: request");
    }
    if (cl_request(&c, "DELETE", "/handler?id=7", NULL, NULL) == 0 && resp_read(&c, &r) == 0) {
        is_int(r.status, 202, "handler: status");
        is_str(r.body, "handled arg /handler?id=7", "handler: body from handler");
        ok(resp_header_is(&r, "X-Handler", "1"), "handler: header from handler");
        resp_free(&r);
    } else {
        ok(0, "handler: request");
    }
    t0 = now_ms();
    if (cl_request(&c, "GET", "/slow", NULL, NULL) == 0 && resp_read(&c, &r) == 0) {
        double dt = now_ms() - t0;
        ok(dt >= 145, "delay: response after >= 150 ms (%.0f ms)", dt);
        is_str(r.body, "late", "delay: routed body");
        resp_free(&r);
    } else {
        ok(0, "delay: request");
    }
    if (cl_request(&c, "GET", "/nocontent", NULL, NULL) == 0 && resp_read(&c, &r) == 0) {
        /* 204 has neither Content-Length nor body: framed by the head. */
        is_int(r.status, 204, "204: status");
        ok(r.hdr_len == r.len, "204: no body bytes");
        resp_free(&r);
    } else {
        ok(0, "204: request");
    }
    resp_free(&r);
    cl_close(&c);
}

static void test_bodies(void)
{
    struct ctx x;
    static char handler_arg[] = "arg";

    memset(&x, 0, sizeof(x));
    x.tls = 1;
    x.s = ts_server_new(g_base, NULL);
    if (!x.s) {
        ok(0, "server starts");
        return;
    }
    ts_route_chunked(x.s, "/chunked", 200, "Content-Type: text/plain\r\n", g_long_body, 16);
    ts_route_gzip(x.s, "/gz", 200, "Content-Type: application/json\r\n", g_json_body);
    ts_route_handler(x.s, "/handler", handler, handler_arg);
    ts_route_delay(x.s, "/slow", 150); /* delay before the route exists */
    ts_route(x.s, "/slow", 200, NULL, "late");
    ts_route(x.s, "/nocontent", 204, NULL, "dropped");
    run_client(client_bodies, &x);
    is_int(ts_server_connections(x.s), 1, "bodies: all on one connection");
    is_str(ts_last_method(x.s, "/handler"), "DELETE", "bodies: DELETE recorded");
    server_done(x.s, "bodies");
}

/* ------------------------------------------------------------ delays */

static void client_delays(void *arg)
{
    struct ctx *x = arg;
    struct cl_opts o;
    struct cl c;
    struct resp r = {NULL, 0, 0, 0, NULL, 0, 0, RD_DATA};
    int i;

    copts(&o, x);
    /* A second request written while the first waits for its delay: evhttp
     * must not see it until the first is answered. */
    if (cl_open(&c, ts_server_port(x->s), &o) == 0 &&
        cl_request(&c, "GET", "/slow", NULL, NULL) == 0) {
        sleep_ms(30);
        if (cl_request(&c, "GET", "/fast", NULL, NULL) != 0)
            ok(0, "pipelined: second request sent");
        if (resp_read(&c, &r) == 0)
            is_str(r.body, "slow", "pipelined: first response first");
        else
            ok(0, "pipelined: first response");
        resp_free(&r);
        if (resp_read(&c, &r) == 0)
            is_str(r.body, "fast", "pipelined: then the second");
        else
            ok(0, "pipelined: second response (%zu bytes, %s)", r.len, how_name(r.how));
        resp_free(&r);
    } else {
        ok(0, "pipelined: connect");
    }
    cl_close(&c);

    /* The client gives up while its request waits: the server must drop the
     * connection (and the request) without waiting for the delay. */
    if (cl_open(&c, ts_server_port(x->s), &o) == 0 &&
        cl_request(&c, "GET", "/slower", NULL, NULL) == 0) {
        for (i = 0; i < 200 && ts_server_hits(x->s, "/slower") == 0; i++)
            sleep_ms(5);
        cl_close(&c);
        for (i = 0; i < 100 && ts_server_open_connections(x->s) > 0; i++)
            sleep_ms(5);
        is_int(ts_server_open_connections(x->s), 0,
               "abandoned delay: connection dropped before the delay ends");
    } else {
        ok(0, "abandoned delay: request sent");
        cl_close(&c);
    }
}

static void test_delays(int tls)
{
    struct ctx x;
    ts_options opts = TS_OPTIONS_INIT;

    memset(&x, 0, sizeof(x));
    opts.plain_http = !tls;
    x.tls = tls;
    x.s = ts_server_new(g_base, &opts);
    if (!x.s) {
        ok(0, "server starts");
        return;
    }
    diag("delays over %s", tls ? "TLS" : "plain HTTP");
    ts_route(x.s, "/slow", 200, NULL, "slow");
    ts_route_delay(x.s, "/slow", 100);
    ts_route(x.s, "/fast", 200, NULL, "fast");
    ts_route(x.s, "/slower", 200, NULL, "never sent");
    ts_route_delay(x.s, "/slower", 2000);
    run_client(client_delays, &x);
    is_int(ts_server_connections(x.s), 2, "delays: 2 connections");
    server_done(x.s, tls ? "delays tls" : "delays plain");
}

/* ------------------------------------------------------------ faults */

#define HDR_1000 "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
#define BODY_100                                                                                   \
    "0123456789012345678901234567890123456789012345678901234567890123456789"                       \
    "012345678901234567890123456789"
#define DRIBBLE_BYTES                                                                              \
    "HTTP/1.1 200 OK\r\nContent-Length: 50\r\nConnection: close\r\n\r\n"                           \
    "01234567890123456789012345678901234567890123456789"

struct fault_case {
    ts_fault fault;
    const char *name;
    const char *want; /* exact bytes before the stream ends */
    int how;          /* how it ends */
    int timeout_ms;
};

static const struct fault_case g_faults[] = {
    {TS_FAULT_RESET_BEFORE_HEADERS, "reset-before-headers", "", RD_RESET, 2000},
    {TS_FAULT_RESET_AFTER_HEADERS, "reset-after-headers", HDR_1000, RD_RESET, 2000},
    {TS_FAULT_TRUNCATED_BODY, "truncated-body", HDR_1000 BODY_100, RD_EOF, 2000},
    {TS_FAULT_TRUNCATED_CHUNKED, "truncated-chunked",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "a\r\n0123456789\r\na\r\n0123456789\r\na\r\n0123456789\r\n",
     RD_EOF, 2000},
    {TS_FAULT_STALL_BEFORE_HEADERS, "stall-before-headers", "", RD_TIMEOUT, 300},
    {TS_FAULT_STALL_MID_BODY, "stall-mid-body", HDR_1000 BODY_100, RD_TIMEOUT, 300},
    {TS_FAULT_MALFORMED_STATUS, "malformed-status", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
     RD_EOF, 2000},
    {TS_FAULT_CLOSE_BEFORE_RESPONSE, "close-before-response", "", RD_EOF, 2000},
    {TS_FAULT_RESET_MID_HEADERS, "reset-mid-headers", "HTTP/1.1 200 OK\r\nContent-Ty", RD_RESET,
     2000},
    {TS_FAULT_MALFORMED_HEADER, "malformed-header",
     "HTTP/1.1 200 OK\r\nBad Header Line\r\nContent-Length: 0\r\n\r\n", RD_EOF, 2000},
    {TS_FAULT_RESET_MID_BODY, "reset-mid-body", HDR_1000 BODY_100, RD_RESET, 2000},
};

static void client_faults(void *arg)
{
    struct ctx *x = arg;
    const char *proto = x->tls ? "tls" : "plain";
    char *buf = malloc(RBUF);
    size_t i, len;
    int how, nreads;
    struct cl_opts o;
    struct cl c;
    struct resp r = {NULL, 0, 0, 0, NULL, 0, 0, RD_DATA};
    double t0, dt;
    char path[64];

    if (!buf)
        return;
    for (i = 0; i < sizeof(g_faults) / sizeof(g_faults[0]); i++) {
        const struct fault_case *f = &g_faults[i];
        copts(&o, x);
        o.timeout_ms = f->timeout_ms;
        snprintf(path, sizeof(path), "/fault/%d", (int)f->fault);
        if (cl_open(&c, ts_server_port(x->s), &o) != 0 ||
            cl_request(&c, "GET", path, NULL, NULL) != 0) {
            ok(0, "%s %s: request sent", proto, f->name);
            cl_close(&c);
            continue;
        }
        how = cl_read_all(&c, buf, RBUF - 1, &len, NULL);
        buf[len] = '\0';
        ok(len == strlen(f->want) && memcmp(buf, f->want, len) == 0,
           "%s %s: %zu bytes as documented", proto, f->name, strlen(f->want));
        if (len != strlen(f->want) || memcmp(buf, f->want, len) != 0)
            diag("  got %zu bytes: %.80s", len, buf);
        ok(how == f->how, "%s %s: stream ends with %s (got %s)", proto, f->name, how_name(f->how),
           how_name(how));
        if (f->how == RD_TIMEOUT)
            ok(ts_server_open_connections(x->s) >= 1, "%s %s: server keeps the connection open",
               proto, f->name);
        cl_close(&c);
    }

    /* dribble: the whole response, one byte per param ms, then a clean close */
    copts(&o, x);
    if (cl_open(&c, ts_server_port(x->s), &o) == 0 &&
        cl_request(&c, "GET", "/dribble", NULL, NULL) == 0) {
        t0 = now_ms();
        how = cl_read_all(&c, buf, RBUF - 1, &len, &nreads);
        dt = now_ms() - t0;
        buf[len] = '\0';
        is_str(buf, DRIBBLE_BYTES, "%s dribble: complete valid response", proto);
        ok(how == RD_EOF, "%s dribble: clean close after it (got %s)", proto, how_name(how));
        ok(dt >= 0.9 * (strlen(DRIBBLE_BYTES) - 1) * x->param,
           "%s dribble: took %.0f ms for %zu bytes at %u ms/byte", proto, dt, strlen(DRIBBLE_BYTES),
           x->param);
        ok(nreads >= (int)strlen(DRIBBLE_BYTES) / 2, "%s dribble: arrived in pieces (%d reads)",
           proto, nreads);
    } else {
        ok(0, "%s dribble: request sent", proto);
    }
    cl_close(&c);

    /* big headers: valid, exact padding, connection reusable */
    copts(&o, x);
    if (cl_open(&c, ts_server_port(x->s), &o) == 0 &&
        cl_request(&c, "GET", "/big", NULL, NULL) == 0 && resp_read(&c, &r) == 0) {
        size_t pad = 0;
        const char *p = r.raw;
        while ((p = strstr(p, "\r\nX-Pad-")) != NULL && p < r.raw + r.hdr_len) {
            const char *eol = strstr(p + 2, "\r\n");
            pad += (size_t)(eol - (p + 2)) + 2;
            p = eol;
        }
        is_int(r.status, 200, "%s big-headers: status 200", proto);
        is_int(pad, 20000, "%s big-headers: X-Pad lines total param bytes", proto);
        ok(r.hdr_len > 20000, "%s big-headers: header section %zu bytes", proto, r.hdr_len);
        is_str(r.body, "ok", "%s big-headers: body", proto);
        resp_free(&r);
        if (cl_request(&c, "GET", "/big", NULL, NULL) == 0 && resp_read(&c, &r) == 0)
            ok(r.status == 200, "%s big-headers: connection reusable", proto);
        else
            ok(0, "%s big-headers: connection reusable", proto);
        resp_free(&r);
    } else {
        ok(0, "%s big-headers: request", proto);
    }
    resp_free(&r);
    cl_close(&c);
    free(buf);
}

static void test_faults(int tls)
{
    struct ctx x;
    ts_options opts = TS_OPTIONS_INIT;
    size_t i;
    char path[64];

    memset(&x, 0, sizeof(x));
    opts.plain_http = !tls;
    x.tls = tls;
    x.param = tls ? 2 : 1;
    x.s = ts_server_new(g_base, &opts);
    if (!x.s) {
        ok(0, "server starts");
        return;
    }
    diag("faults over %s", tls ? "TLS" : "plain HTTP");
    for (i = 0; i < sizeof(g_faults) / sizeof(g_faults[0]); i++) {
        snprintf(path, sizeof(path), "/fault/%d", (int)g_faults[i].fault);
        ts_route_fault(x.s, path, g_faults[i].fault, 0);
    }
    ts_route_fault(x.s, "/dribble", TS_FAULT_DRIBBLE, x.param);
    ts_route_fault(x.s, "/big", TS_FAULT_BIG_HEADERS, 20000);
    run_client(client_faults, &x);
    is_int(ts_server_hits(x.s, "/big"), 2, "%s faults: hits counted", tls ? "tls" : "plain");
    server_done(x.s, tls ? "faults tls" : "faults plain");
}

/* ------------------------------------------------------------ close_after */

static void client_close_after(void *arg)
{
    struct ctx *x = arg;
    struct cl_opts o;
    struct cl c;
    struct resp r = {NULL, 0, 0, 0, NULL, 0, 0, RD_DATA};
    char buf[64];
    size_t len;
    int i, how;

    copts(&o, x);
    o.timeout_ms = 1000;
    if (cl_open(&c, ts_server_port(x->s), &o) != 0) {
        ok(0, "close_after: connect");
        cl_close(&c);
        return;
    }
    for (i = 0; i < 2; i++) {
        if (cl_request(&c, "GET", "/hello", NULL, NULL) == 0 && resp_read(&c, &r) == 0) {
            ok(r.status == 200 && !resp_header_is(&r, "Connection", "close"),
               "close_after: response %d normal, no Connection: close", i + 1);
        } else {
            ok(0, "close_after: response %d", i + 1);
        }
        resp_free(&r);
    }
    /* Idle keep-alive connection: the server closes it by itself. */
    how = cl_read_all(&c, buf, sizeof(buf), &len, NULL);
    is_int(len, 0, "close_after: no bytes after the 2nd response");
    ok(how == RD_EOF, "close_after: idle connection closed (got %s)", how_name(how));
    cl_close(&c);

    if (cl_open(&c, ts_server_port(x->s), &o) == 0 &&
        cl_request(&c, "GET", "/hello", NULL, NULL) == 0 && resp_read(&c, &r) == 0)
        is_int(r.status, 200, "close_after: a new connection works");
    else
        ok(0, "close_after: a new connection works");
    resp_free(&r);
    cl_close(&c);
}

static void test_close_after(void)
{
    struct ctx x;
    ts_options opts = TS_OPTIONS_INIT;

    memset(&x, 0, sizeof(x));
    opts.close_after = 2;
    x.tls = 1;
    x.s = ts_server_new(g_base, &opts);
    if (!x.s) {
        ok(0, "server starts");
        return;
    }
    ts_route(x.s, "/hello", 200, NULL, "hi");
    run_client(client_close_after, &x);
    is_int(ts_server_connections(x.s), 2, "close_after: 2 connections in all");
    is_int(ts_server_requests(x.s), 3, "close_after: 3 requests in all");
    server_done(x.s, "close_after");
}

/* ------------------------------------------------------------ close idle */

/* Reads one response and then waits for the server to close the idle
 * connection; returns the ms between the end of the response and the close
 * (-1 if it did not come). */
static double idle_close_after(struct cl *c, const char *proto, const char *path)
{
    struct resp r = {NULL, 0, 0, 0, NULL, 0, 0, RD_DATA};
    char buf[64];
    size_t len = 0;
    double t0;
    int how;

    if (cl_request(c, "GET", path, NULL, NULL) != 0 || resp_read(c, &r) != 0) {
        ok(0, "%s close-idle %s: response", proto, path);
        resp_free(&r);
        return -1;
    }
    t0 = now_ms();
    ok(r.status == 200 && strcmp(r.body, "ok") == 0 && resp_header_is(&r, "Content-Length", "2"),
       "%s close-idle %s: a normal 200 \"ok\" with Content-Length", proto, path);
    ok(!resp_header(&r, "Connection", (char[16]){0}, 16),
       "%s close-idle %s: no Connection header (keep-alive)", proto, path);
    resp_free(&r);
    how = cl_read_all(c, buf, sizeof(buf), &len, NULL);
    is_int(len, 0, "%s close-idle %s: no byte after the response", proto, path);
    ok(how == RD_EOF, "%s close-idle %s: then a clean close (got %s)", proto, path, how_name(how));
    return how == RD_EOF ? now_ms() - t0 : -1;
}

static void client_close_idle(void *arg)
{
    struct ctx *x = arg;
    const char *proto = x->tls ? "tls" : "plain";
    struct cl_opts o;
    struct cl c;
    struct resp r = {NULL, 0, 0, 0, NULL, 0, 0, RD_DATA};
    char buf[64];
    size_t len;
    double dt;
    int how;

    copts(&o, x);
    o.timeout_ms = 2000;
    if (cl_open(&c, ts_server_port(x->s), &o) == 0) {
        dt = idle_close_after(&c, proto, "/idle");
        ok(dt >= 150 && dt < 1500, "%s close-idle: closed %.0f ms after the response (param 200)",
           proto, dt);
    } else {
        ok(0, "%s close-idle: connect", proto);
    }
    cl_close(&c);

    if (cl_open(&c, ts_server_port(x->s), &o) == 0) {
        dt = idle_close_after(&c, proto, "/idle0");
        ok(dt >= 0 && dt < 150, "%s close-idle: param 0 closes at once (%.0f ms)", proto, dt);
    } else {
        ok(0, "%s close-idle 0: connect", proto);
    }
    cl_close(&c);

    /* A request sent while the close is pending is answered (it arrives
     * well before the close) and does not cancel the close. */
    if (cl_open(&c, ts_server_port(x->s), &o) == 0 &&
        cl_request(&c, "GET", "/idle", NULL, NULL) == 0 && resp_read(&c, &r) == 0 &&
        cl_request(&c, "GET", "/hello", NULL, NULL) == 0 && resp_read(&c, &r) == 0) {
        is_str(r.body, "hi", "%s close-idle: a second request in the window is answered", proto);
        how = cl_read_all(&c, buf, sizeof(buf), &len, NULL);
        ok(len == 0 && how == RD_EOF, "%s close-idle: and the close still comes (got %s)", proto,
           how_name(how));
    } else {
        ok(0, "%s close-idle: two requests", proto);
    }
    resp_free(&r);
    cl_close(&c);
}

static void test_close_idle(int tls)
{
    struct ctx x;
    ts_options opts = TS_OPTIONS_INIT;

    memset(&x, 0, sizeof(x));
    opts.plain_http = !tls;
    x.tls = tls;
    x.s = ts_server_new(g_base, &opts);
    if (!x.s) {
        ok(0, "server starts");
        return;
    }
    ts_route_fault(x.s, "/idle", TS_FAULT_CLOSE_IDLE, 200);
    ts_route_fault(x.s, "/idle0", TS_FAULT_CLOSE_IDLE, 0);
    ts_route(x.s, "/hello", 200, NULL, "hi");
    run_client(client_close_idle, &x);
    settle(x.s);
    is_int(ts_server_open_connections(x.s), 0, "%s close-idle: every connection closed",
           tls ? "tls" : "plain");
    is_int(ts_server_connections(x.s), 3, "%s close-idle: 3 connections", tls ? "tls" : "plain");
    server_done(x.s, tls ? "close-idle tls" : "close-idle plain");
}

/* ------------------------------------------------------------ sequences */

static void client_sequence(void *arg)
{
    struct ctx *x = arg;
    struct cl_opts o;
    struct cl c;
    struct resp r = {NULL, 0, 0, 0, NULL, 0, 0, RD_DATA};
    char buf[256];
    size_t len;
    int how, i;

    copts(&o, x);
    if (cl_open(&c, ts_server_port(x->s), &o) != 0) {
        ok(0, "sequence: connect");
        cl_close(&c);
        return;
    }
    if (cl_request(&c, "GET", "/seq", NULL, NULL) == 0 && resp_read(&c, &r) == 0) {
        is_int(r.status, 503, "sequence: 1st request gets step 0 (503)");
        ok(resp_header_is(&r, "Retry-After", "1"), "sequence: step 0's header");
        is_str(r.body, "busy", "sequence: step 0's body");
        ok(strncmp(r.raw, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0,
           "sequence: 503 status line");
    } else {
        ok(0, "sequence: 1st request");
    }
    if (cl_request(&c, "GET", "/seq?attempt=2", NULL, NULL) == 0 && resp_read(&c, &r) == 0) {
        is_int(r.status, 429, "sequence: 2nd request (same connection) gets step 1 (429)");
        ok(strncmp(r.raw, "HTTP/1.1 429 Too Many Requests\r\n", 32) == 0,
           "sequence: 429 status line");
        ok(resp_header_is(&r, "Content-Type", "application/json"), "sequence: step 1's header");
        is_str(r.body, "{\"error\":{\"code\":429}}", "sequence: step 1's body");
    } else {
        ok(0, "sequence: 2nd request");
    }
    resp_free(&r);
    if (cl_request(&c, "GET", "/seq", NULL, NULL) == 0) {
        how = cl_read_all(&c, buf, sizeof(buf), &len, NULL);
        ok(len == 0 && how == RD_RESET, "sequence: 3rd request gets step 2 (reset; got %zu, %s)",
           len, how_name(how));
    } else {
        ok(0, "sequence: 3rd request");
    }
    cl_close(&c);

    if (cl_open(&c, ts_server_port(x->s), &o) == 0 &&
        cl_request(&c, "GET", "/seq", NULL, NULL) == 0 && resp_read(&c, &r) == 0) {
        ok(r.status == 200 && strcmp(r.body, "done") == 0, "sequence: 4th gets step 3 (200)");
        resp_free(&r);
        sleep_ms(60);
        if (cl_request(&c, "GET", "/seq", NULL, NULL) == 0 && resp_read(&c, &r) == 0)
            ok(r.status == 200 && strcmp(r.body, "done") == 0,
               "sequence: 5th gets the last step again");
        else
            ok(0, "sequence: 5th request");
    } else {
        ok(0, "sequence: 4th request");
    }
    if (cl_request(&c, "GET", "/empty", NULL, NULL) == 0 && resp_read(&c, &r) == 0)
        is_int(r.status, 404, "sequence: n == 0 routes nothing (404)");
    else
        ok(0, "sequence: /empty request");
    resp_free(&r);
    cl_close(&c);

    /* Delayed: the step is taken at arrival, so a request abandoned during
     * its delay uses up step 0 and the next one gets step 1. */
    if (cl_open(&c, ts_server_port(x->s), &o) == 0 &&
        cl_request(&c, "GET", "/seqd", NULL, NULL) == 0) {
        for (i = 0; i < 200 && ts_server_hits(x->s, "/seqd") == 0; i++)
            sleep_ms(5);
        cl_close(&c);
        if (cl_open(&c, ts_server_port(x->s), &o) == 0 &&
            cl_request(&c, "GET", "/seqd", NULL, NULL) == 0 && resp_read(&c, &r) == 0)
            ok(r.status == 200 && strcmp(r.body, "second") == 0,
               "sequence + delay: an abandoned request used step 0 (got %d %s)", r.status,
               r.body ? r.body : "");
        else
            ok(0, "sequence + delay: 2nd request");
    } else {
        ok(0, "sequence + delay: 1st request");
    }
    resp_free(&r);
    cl_close(&c);
}

/* After ts_server_reset_counts: the sequence starts over; then a plain
 * route replaces it. */
static void client_sequence_again(void *arg)
{
    struct ctx *x = arg;
    struct cl_opts o;
    struct cl c;
    struct resp r = {NULL, 0, 0, 0, NULL, 0, 0, RD_DATA};

    copts(&o, x);
    if (cl_open(&c, ts_server_port(x->s), &o) == 0 &&
        cl_request(&c, "GET", "/seq", NULL, NULL) == 0 && resp_read(&c, &r) == 0) {
        is_int(r.status, 503, "reset counts: the sequence starts over at step 0");
        ts_route(x->s, "/seq", 200, NULL, "plain");
        if (cl_request(&c, "GET", "/seq", NULL, NULL) == 0 && resp_read(&c, &r) == 0)
            is_str(r.body, "plain", "sequence: ts_route replaces it");
        else
            ok(0, "sequence: request after ts_route");
    } else {
        ok(0, "reset counts: request");
    }
    resp_free(&r);
    cl_close(&c);
}

static void test_sequence(void)
{
    struct ctx x;
    char hdr0[] = "Retry-After: 1\r\n", body0[] = "busy";
    char hdr1[] = "Retry-After: 1\r\nContent-Type: application/json\r\n";
    char body1[] = "{\"error\":{\"code\":429}}";
    ts_step_resp steps[4];
    const ts_step_resp seqd[2] = {{500, NULL, "first", TS_FAULT_NONE, 0},
                                  {200, NULL, "second", TS_FAULT_NONE, 0}};
    double t[16], t2[2];
    int n, i, ordered;

    memset(&x, 0, sizeof(x));
    x.tls = 1;
    x.s = ts_server_new(g_base, NULL);
    if (!x.s) {
        ok(0, "server starts");
        return;
    }
    memset(steps, 0, sizeof(steps));
    steps[0].status = 503;
    steps[0].headers = hdr0;
    steps[0].body = body0;
    steps[1].status = 429;
    steps[1].headers = hdr1;
    steps[1].body = body1;
    steps[2].fault = TS_FAULT_RESET_BEFORE_HEADERS;
    steps[3].status = 200;
    steps[3].body = "done";
    ts_route_sequence(x.s, "/seq", steps, 4);
    ts_route_sequence(x.s, "/empty", steps, 0);
    ts_route_sequence(x.s, "/seqd", seqd, 2);
    ts_route_delay(x.s, "/seqd", 150);
    /* The server must have copied the steps and their strings. */
    memset(hdr0, 'X', sizeof(hdr0) - 1);
    memset(body0, 'Y', sizeof(body0) - 1);
    memset(hdr1, 'X', sizeof(hdr1) - 1);
    memset(body1, 'Y', sizeof(body1) - 1);
    memset(steps, 0, sizeof(steps));
    run_client(client_sequence, &x);

    is_int(ts_server_hits(x.s, "/seq"), 5, "sequence: 5 hits");
    n = ts_request_times(x.s, "/seq", t, 16);
    is_int(n, 5, "request times: one per request");
    for (i = 1, ordered = 1; i < n; i++)
        ordered = ordered && t[i] >= t[i - 1];
    ok(n == 5 && ordered, "request times: in arrival order");
    ok(n == 5 && t[4] - t[3] >= 55 && t[4] - t[3] < 1000,
       "request times: 60 ms pause seen as %.1f ms", n == 5 ? t[4] - t[3] : -1.0);
    ok(n == 5 && t[0] <= now_ms() && now_ms() - t[0] < 10000,
       "request times: CLOCK_MONOTONIC milliseconds");
    is_int(ts_request_times(x.s, "/seq", t2, 2), 2, "request times: at most max");
    ok(n == 5 && t2[0] == t[0] && t2[1] == t[1], "request times: the first max of them");
    is_int(ts_request_times(x.s, "/seq", NULL, 0), 5, "request times: NULL out gives the count");
    is_int(ts_request_times(x.s, "/never", t, 16), 0, "request times: unseen path");

    ts_server_reset_counts(x.s);
    is_int(ts_server_connections(x.s), 0, "reset counts: connections");
    is_int(ts_server_requests(x.s), 0, "reset counts: requests");
    is_int(ts_server_hits(x.s, "/seq"), 0, "reset counts: hits");
    is_int(ts_request_times(x.s, "/seq", t, 16), 0, "reset counts: request times");
    is_str(ts_last_method(x.s, "/seq"), "GET", "reset counts: last-request record kept");
    run_client(client_sequence_again, &x);
    is_int(ts_server_connections(x.s), 1, "reset counts: counting again (connections)");
    is_int(ts_server_requests(x.s), 2, "reset counts: counting again (requests)");
    is_int(ts_request_times(x.s, "/seq", t, 16), 2, "reset counts: counting again (times)");
    server_done(x.s, "sequence");
}

/* ------------------------------------------------------------ bad listeners */

#define GARBAGE "HTTP/1.1 400 Bad Request\r\n\r\n this is not TLS"

struct lctx {
    int garbage_port, reset_port;
};

static void client_listeners(void *arg)
{
    struct lctx *x = arg;
    struct cl_opts o;
    struct cl c;
    char buf[256];
    size_t len = 0;
    int how, rc;

    memset(&o, 0, sizeof(o));
    o.timeout_ms = 2000;
    if (cl_open(&c, x->garbage_port, &o) == 0) {
        how = cl_read_all(&c, buf, sizeof(buf) - 1, &len, NULL);
        buf[len] = '\0';
        is_str(buf, GARBAGE, "garbage listener: the documented bytes");
        ok(how == RD_EOF, "garbage listener: then a clean FIN (got %s)", how_name(how));
    } else {
        ok(0, "garbage listener: connect");
    }
    cl_close(&c);

    o.ca_pem = ts_certs_ca_pem();
    o.check_ip = "127.0.0.1";
    rc = cl_open(&c, x->garbage_port, &o);
    is_int(rc, -2, "garbage listener: a TLS handshake fails");
    cl_close(&c);

    memset(&o, 0, sizeof(o));
    o.timeout_ms = 2000;
    if (cl_open(&c, x->reset_port, &o) == 0) {
        how = cl_read_all(&c, buf, sizeof(buf), &len, NULL);
        ok(len == 0 && how == RD_RESET, "reset listener: no byte, then RST (got %zu, %s)", len,
           how_name(how));
    } else {
        ok(0, "reset listener: connect");
    }
    cl_close(&c);

    o.ca_pem = ts_certs_ca_pem();
    o.check_ip = "127.0.0.1";
    rc = cl_open(&c, x->reset_port, &o);
    is_int(rc, -2, "reset listener: a TLS handshake fails");
    cl_close(&c);
}

static void test_listeners(void)
{
    struct lctx x;
    tu_listener *g, *r;

    memset(&x, 0, sizeof(x));
    g = tu_garbage_listener(g_base, &x.garbage_port);
    r = tu_reset_listener(g_base, &x.reset_port);
    ok(g && r && x.garbage_port > 0 && x.reset_port > 0 && x.garbage_port != x.reset_port,
       "listeners: garbage on %d, reset on %d", x.garbage_port, x.reset_port);
    if (!g || !r) {
        tu_listener_free(g);
        tu_listener_free(r);
        return;
    }
    run_client(client_listeners, &x);
    is_int(tu_listener_accepted(g), 2, "garbage listener: 2 connections accepted");
    is_int(tu_listener_accepted(r), 2, "reset listener: 2 connections accepted");
    tu_listener_free(g);
    tu_listener_free(r);
    tu_listener_free(NULL);
    is_int(tu_events_left(g_base), 0, "listeners: no events left after free");
}

/* A garbage listener freed while a client still holds its connection open
 * (the listener waits for the client's close): the free closes it. */
static void test_listener_teardown(void)
{
    struct cl_opts o;
    struct cl c;
    tu_listener *g;
    char buf[256];
    size_t len;
    int port = 0, how;

    g = tu_garbage_listener(g_base, &port);
    memset(&o, 0, sizeof(o));
    if (!g || cl_open(&c, port, &o) != 0) {
        ok(0, "garbage teardown: connect");
        tu_listener_free(g);
        return;
    }
    /* Accept, write, FIN; the connection stays until the client closes. */
    for (how = 0; how < 100 && tu_listener_accepted(g) == 0; how++)
        tu_run_for(g_base, 5);
    tu_run_for(g_base, 20);
    tu_listener_free(g);
    is_int(tu_events_left(g_base), 0, "garbage teardown: no events left after free");
    how = cl_read_all(&c, buf, sizeof(buf), &len, NULL);
    ok(len == strlen(GARBAGE) && how == RD_EOF,
       "garbage teardown: the client got the bytes and the end (%zu, %s)", len, how_name(how));
    cl_close(&c);
}

/* ------------------------------------------------------------ DNS server */

struct dns_res {
    int done;
    int err;
    int count;
    char addrs[4][INET6_ADDRSTRLEN];
    int family;
    int port;
    int v6;
};

static void dns_cb(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    struct dns_res *r = arg;
    int i;

    (void)ttl;
    r->err = result;
    r->count = count;
    for (i = 0; result == DNS_ERR_NONE && type == DNS_IPv4_A && i < count && i < 4; i++)
        inet_ntop(AF_INET, (const struct in_addr *)addresses + i, r->addrs[i], sizeof(r->addrs[i]));
    r->done = 1;
}

static void gai_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    struct dns_res *r = arg;
    struct evutil_addrinfo *ai;

    r->err = result;
    for (ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET && r->count < 4) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)ai->ai_addr;
            inet_ntop(AF_INET, &sin->sin_addr, r->addrs[r->count], sizeof(r->addrs[0]));
            r->port = ntohs(sin->sin_port);
            r->count++;
        } else if (ai->ai_family == AF_INET6) {
            r->v6++;
        }
    }
    if (res)
        evutil_freeaddrinfo(res);
    r->done = 1;
}

static void test_dns(void)
{
    td_dns *d = td_dns_new(g_base);
    struct evdns_base *dns;
    struct evutil_addrinfo hints;
    struct dns_res r;
    char ns[32];
    double t0, dt;

    ok(d != NULL && td_dns_port(d) > 0, "dns: server on 127.0.0.1:%d", td_dns_port(d));
    if (!d)
        return;
    td_dns_add_a(d, "api.gapi.test", "127.0.0.1");
    td_dns_add_a(d, "multi.gapi.test.", "10.0.0.1"); /* trailing dot ignored */
    td_dns_add_a(d, "multi.gapi.test", "10.0.0.2");
    dns = evdns_base_new(g_base, 0);
    snprintf(ns, sizeof(ns), "127.0.0.1:%d", td_dns_port(d));
    if (!dns || evdns_base_nameserver_ip_add(dns, ns) != 0) {
        ok(0, "dns: evdns_base pointed at %s", ns);
        if (dns)
            evdns_base_free(dns, 0);
        td_dns_free(d);
        return;
    }

    memset(&r, 0, sizeof(r));
    evdns_base_resolve_ipv4(dns, "api.gapi.test", 0, dns_cb, &r);
    tu_run_until(g_base, &r.done, 1, 3000);
    ok(r.done && r.err == DNS_ERR_NONE && r.count == 1 && strcmp(r.addrs[0], "127.0.0.1") == 0,
       "dns: known name resolves to 127.0.0.1 (%s, %d, %s)", evdns_err_to_string(r.err), r.count,
       r.addrs[0]);

    memset(&r, 0, sizeof(r));
    evdns_base_resolve_ipv4(dns, "MULTI.Gapi.TEST", 0, dns_cb, &r);
    tu_run_until(g_base, &r.done, 1, 3000);
    ok(r.done && r.err == DNS_ERR_NONE && r.count == 2 && strcmp(r.addrs[0], "10.0.0.1") == 0 &&
           strcmp(r.addrs[1], "10.0.0.2") == 0,
       "dns: case-insensitive, two A records in the order added (%d: %s %s)", r.count, r.addrs[0],
       r.addrs[1]);

    memset(&r, 0, sizeof(r));
    t0 = now_ms();
    evdns_base_resolve_ipv4(dns, "nope.gapi.test", 0, dns_cb, &r);
    tu_run_until(g_base, &r.done, 1, 3000);
    dt = now_ms() - t0;
    is_int(r.err, DNS_ERR_NOTEXIST, "dns: unknown name gets NXDOMAIN (%s)",
           evdns_err_to_string(r.err));
    ok(r.done && dt < 500, "dns: NXDOMAIN in %.1f ms (not a timeout)", dt);

    memset(&r, 0, sizeof(r));
    evdns_base_resolve_ipv6(dns, "api.gapi.test", 0, dns_cb, &r);
    tu_run_until(g_base, &r.done, 1, 3000);
    ok(r.done && r.err == DNS_ERR_NODATA && r.count == 0,
       "dns: AAAA of a known name is an empty NOERROR answer (%s)", evdns_err_to_string(r.err));

    memset(&r, 0, sizeof(r));
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    evdns_getaddrinfo(dns, "api.gapi.test", "443", &hints, gai_cb, &r);
    tu_run_until(g_base, &r.done, 1, 3000);
    ok(r.done && r.err == 0 && r.count == 1 && r.v6 == 0 && strcmp(r.addrs[0], "127.0.0.1") == 0 &&
           r.port == 443,
       "dns: getaddrinfo (A + AAAA) gives 127.0.0.1:443 only (%s)", evutil_gai_strerror(r.err));

    memset(&r, 0, sizeof(r));
    hints.ai_family = AF_INET;
    t0 = now_ms();
    evdns_getaddrinfo(dns, "nope.gapi.test", "443", &hints, gai_cb, &r);
    tu_run_until(g_base, &r.done, 1, 3000);
    dt = now_ms() - t0;
    ok(r.done && r.err == EVUTIL_EAI_NONAME && dt < 500,
       "dns: getaddrinfo of an unknown name fails fast with EAI_NONAME (%s, %.1f ms)",
       evutil_gai_strerror(r.err), dt);

    is_int(td_dns_queries(d), 7, "dns: 7 queries (getaddrinfo asks A and AAAA)");
    evdns_base_free(dns, 0);
    td_dns_free(d);
    td_dns_free(NULL);
    is_int(tu_events_left(g_base), 0, "dns: no events left after free");
}

/* ------------------------------------------------------------ certificates */

struct cert_case {
    ts_cert_kind kind;
    const char *name;
    const char *ip;
    const char *host;
    long want;
};

static const struct cert_case g_certs[] = {
    {TS_CERT_GOOD, "good/ip", "127.0.0.1", NULL, X509_V_OK},
    {TS_CERT_GOOD, "good/localhost", NULL, "localhost", X509_V_OK},
    {TS_CERT_WRONG_HOST, "wrong-host/ip", "127.0.0.1", NULL, X509_V_ERR_IP_ADDRESS_MISMATCH},
    {TS_CERT_WRONG_HOST, "wrong-host/localhost", NULL, "localhost", X509_V_ERR_HOSTNAME_MISMATCH},
    {TS_CERT_EXPIRED, "expired", "127.0.0.1", NULL, X509_V_ERR_CERT_HAS_EXPIRED},
    {TS_CERT_UNTRUSTED, "untrusted", "127.0.0.1", NULL,
     X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY},
};

struct cert_ctx {
    ts_server *s;
    const struct cert_case *cc;
};

static void client_cert(void *arg)
{
    struct cert_ctx *x = arg;
    struct cl_opts o;
    struct cl c;
    struct resp r = {NULL, 0, 0, 0, NULL, 0, 0, RD_DATA};
    int rc;

    memset(&o, 0, sizeof(o));
    o.ca_pem = ts_server_ca_pem(x->s);
    o.check_ip = x->cc->ip;
    o.check_host = x->cc->host;
    o.sni = x->cc->host;
    rc = cl_open(&c, ts_server_port(x->s), &o);
    is_int(rc, x->cc->want == X509_V_OK ? 0 : -2, "cert %s: handshake %s", x->cc->name,
           x->cc->want == X509_V_OK ? "succeeds" : "fails");
    is_int(c.verify, x->cc->want, "cert %s: verify result %s", x->cc->name,
           X509_verify_cert_error_string(x->cc->want));
    if (rc == 0 && x->cc->host) {
        if (cl_request(&c, "GET", "/sni", NULL, NULL) == 0 && resp_read(&c, &r) == 0)
            is_int(r.status, 404, "cert %s: request over verified TLS", x->cc->name);
        else
            ok(0, "cert %s: request", x->cc->name);
        resp_free(&r);
    }
    cl_close(&c);

    if (x->cc->kind == TS_CERT_UNTRUSTED) {
        o.ca_pem = ts_certs_other_ca_pem();
        rc = cl_open(&c, ts_server_port(x->s), &o);
        ok(rc == 0 && c.verify == X509_V_OK, "cert untrusted: verifies against the other CA");
        cl_close(&c);
    }
}

static void test_certs(void)
{
    size_t i;
    struct cert_ctx x;
    ts_options opts = TS_OPTIONS_INIT;
    char name[64];

    for (i = 0; i < sizeof(g_certs) / sizeof(g_certs[0]); i++) {
        opts.cert = g_certs[i].kind;
        x.cc = &g_certs[i];
        x.s = ts_server_new(g_base, &opts);
        if (!x.s) {
            ok(0, "server starts (cert %s)", g_certs[i].name);
            continue;
        }
        run_client(client_cert, &x);
        if (g_certs[i].host && g_certs[i].want == X509_V_OK) {
            is_str(ts_last_sni(x.s, "/sni"), "localhost", "cert %s: SNI recorded", g_certs[i].name);
            is_str(ts_last_header(x.s, "/sni", "host"), "127.0.0.1",
                   "cert %s: Host header recorded", g_certs[i].name);
        }
        snprintf(name, sizeof(name), "cert %s", g_certs[i].name);
        server_done(x.s, name);
    }
}

/* ------------------------------------------------------------ IPv6 */

static void test_ipv6(void)
{
    struct ctx x;
    ts_options opts = TS_OPTIONS_INIT;
    char want[64];

    memset(&x, 0, sizeof(x));
    opts.ipv6 = 1;
    x.tls = 1;
    x.ipv6 = 1;
    x.s = ts_server_new(g_base, &opts);
    if (!x.s) {
        skip(8, "cannot listen on [::1]");
        return;
    }
    snprintf(want, sizeof(want), "https://[::1]:%d", ts_server_port(x.s));
    is_str(ts_server_origin(x.s), want, "ipv6: origin");
    ts_route(x.s, "/hello", 200, "Content-Type: text/plain\r\nX-Test: yes\r\n", "hello world");
    run_client(client_basic, &x);
    is_int(ts_server_hits(x.s, "/hello"), 1, "ipv6: request served over ::1");
    server_done(x.s, "ipv6");
}

/* ------------------------------------------------------------ plain mode */

static void test_plain_origin(void)
{
    ts_options opts = TS_OPTIONS_INIT;
    ts_server *s;
    char want[64];

    opts.plain_http = 1;
    s = ts_server_new(g_base, &opts);
    if (!s) {
        ok(0, "plain server starts");
        return;
    }
    snprintf(want, sizeof(want), "http://127.0.0.1:%d", ts_server_port(s));
    is_str(ts_server_origin(s), want, "plain: origin is http://");
    server_done(s, "plain origin");
}

/* ------------------------------------------------------------ own thread */

static void *loop_thread(void *arg)
{
    event_base_dispatch(arg);
    return NULL;
}

static void test_own_thread(void)
{
    struct event_base *base = event_base_new();
    ts_server *s = base ? ts_server_new(base, NULL) : NULL;
    pthread_t t;
    struct ctx x;
    int i;

    if (!s) {
        ok(0, "server on its own thread starts");
        if (base)
            event_base_free(base);
        return;
    }
    ts_route(s, "/hello", 200, "Content-Type: text/plain\r\nX-Test: yes\r\n", "hello world");
    if (pthread_create(&t, NULL, loop_thread, base) != 0) {
        ok(0, "loop thread starts");
        return;
    }
    memset(&x, 0, sizeof(x));
    x.s = s;
    x.tls = 1;
    client_basic(&x); /* blocking, on this thread */
    /* Route while the loop runs on the other thread (mutex-protected). */
    ts_route(s, "/hello", 200, "Content-Type: text/plain\r\nX-Test: yes\r\n", "hello world");
    client_basic(&x);
    for (i = 0; i < 100 && ts_server_open_connections(s) > 0; i++)
        sleep_ms(5);
    is_int(ts_server_hits(s, "/hello"), 2, "own thread: hits read from another thread");
    is_int(ts_server_open_connections(s), 0, "own thread: connections closed");
    event_base_loopexit(base, NULL);
    pthread_join(t, NULL);
    ts_server_free(s);
    event_base_loop(base, EVLOOP_NONBLOCK);
    is_int(events_on(base), 0, "own thread: no events left after free");
    event_base_free(base);
}

/* ------------------------------------------------------------ shared base */

struct nb {
    struct evbuffer *got;
    int ended;
};

static void nb_read(struct bufferevent *bev, void *arg)
{
    struct nb *n = arg;

    evbuffer_add_buffer(n->got, bufferevent_get_input(bev));
}

static void nb_event(struct bufferevent *bev, short what, void *arg)
{
    struct nb *n = arg;

    static const char req[] = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Connection: close\r\n\r\n";

    if (what & BEV_EVENT_CONNECTED) {
        bufferevent_write(bev, req, sizeof(req) - 1);
        return;
    }
    evbuffer_add_buffer(n->got, bufferevent_get_input(bev));
    n->ended = 1;
    event_base_loopbreak(g_base);
}

/* One thread, one base: a nonblocking TLS client (bufferevent_openssl, not
 * evhttp) and the server side by side. */
static void test_shared_base(void)
{
    ts_server *s = ts_server_new(g_base, NULL);
    SSL_CTX *ctx;
    SSL *ssl;
    struct bufferevent *bev;
    struct sockaddr_in sin;
    struct nb n;
    struct event *watchdog;
    struct timeval tv = {3, 0};
    char *text;
    size_t len;

    if (!s) {
        ok(0, "server starts");
        return;
    }
    ts_route(s, "/hello", 200, "Content-Type: text/plain\r\n", "hello world");
    ctx = client_ctx(ts_server_ca_pem(s));
    ssl = SSL_new(ctx);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    bev = bufferevent_openssl_socket_new(g_base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    memset(&n, 0, sizeof(n));
    n.got = evbuffer_new();
    bufferevent_setcb(bev, nb_read, NULL, nb_event, &n);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((unsigned short)ts_server_port(s));
    bufferevent_socket_connect(bev, (struct sockaddr *)&sin, sizeof(sin));
    watchdog = evtimer_new(g_base, on_done, NULL);
    evtimer_add(watchdog, &tv);
    event_base_dispatch(g_base);
    event_free(watchdog);

    len = evbuffer_get_length(n.got);
    text = malloc(len + 1);
    evbuffer_remove(n.got, text, len);
    text[len] = '\0';
    ok(n.ended, "shared base: exchange finished");
    ok(strncmp(text, "HTTP/1.1 200 OK\r\n", 17) == 0, "shared base: 200");
    ok(len >= 11 && strcmp(text + len - 11, "hello world") == 0, "shared base: body");
    ok(strstr(text, "Connection: close\r\n") != NULL,
       "shared base: server honours Connection: close");
    free(text);
    evbuffer_free(n.got);
    bufferevent_free(bev);
    SSL_CTX_free(ctx);
    server_done(s, "shared base");
}

/* ------------------------------------------------------------ teardown */

static void client_open_many(void *arg)
{
    struct ctx *x = arg;
    static const char *paths[4] = {"/stall", "/mid", "/dribble", "/delayed"};
    struct cl_opts o;
    char buf[256];
    size_t got = 0;
    int i, how = RD_DATA, n;

    copts(&o, x);
    o.timeout_ms = 2000;
    for (i = 0; i < 4; i++) {
        if (cl_open(&x->conns[i], ts_server_port(x->s), &o) != 0 ||
            cl_request(&x->conns[i], "GET", paths[i], NULL, NULL) != 0)
            ok(0, "teardown: request %s", paths[i]);
    }
    for (i = 0; i < 200 && ts_server_requests(x->s) < 4; i++)
        sleep_ms(5);
    /* The mid-body stall has sent its first part. */
    while (got < strlen(HDR_1000 BODY_100) &&
           (n = cl_read(&x->conns[1], buf, sizeof(buf), &how)) > 0)
        got += (size_t)n;
    is_int(got, strlen(HDR_1000 BODY_100), "teardown: mid-body stall sent its part");
}

/* Frees a server with a stalled connection, a connection stalled mid-body, a
 * dribble in progress and a request waiting for its delay. */
static void test_teardown(void)
{
    struct ctx x;
    char buf[4096];
    size_t len;
    int i, how, active;

    memset(&x, 0, sizeof(x));
    x.tls = 1;
    x.s = ts_server_new(g_base, NULL);
    if (!x.s) {
        ok(0, "server starts");
        return;
    }
    ts_route_fault(x.s, "/stall", TS_FAULT_STALL_BEFORE_HEADERS, 0);
    ts_route_fault(x.s, "/mid", TS_FAULT_STALL_MID_BODY, 0);
    ts_route_fault(x.s, "/dribble", TS_FAULT_DRIBBLE, 200);
    ts_route(x.s, "/delayed", 200, NULL, "never");
    ts_route_delay(x.s, "/delayed", 5000);
    run_client(client_open_many, &x);
    is_int(ts_server_requests(x.s), 4, "teardown: 4 requests in flight");
    is_int(ts_server_open_connections(x.s), 4, "teardown: 4 connections open");

    ts_server_free(x.s);
    active = event_base_get_num_events(g_base, EVENT_BASE_COUNT_ACTIVE);
    diag("right after ts_server_free: %d active (deferred finalizers), %d added", active,
         event_base_get_num_events(g_base, EVENT_BASE_COUNT_ADDED));
    event_base_loop(g_base, EVLOOP_NONBLOCK);
    is_int(events_on(g_base), 0, "teardown: no events left after free + one loop pass");

    for (i = 0; i < 4; i++) {
        how = cl_read_all(&x.conns[i], buf, sizeof(buf), &len, NULL);
        ok(how != RD_TIMEOUT && how != RD_DATA, "teardown: client %d sees the connection end (%s)",
           i, how_name(how));
        cl_close(&x.conns[i]);
    }
}

/* ------------------------------------------------------------ main */

int main(void)
{
    double t0 = now_ms();

    /* Both libevent and OpenSSL write without MSG_NOSIGNAL (see server.h). */
    signal(SIGPIPE, SIG_IGN);
    alarm(60); /* last-resort watchdog; every read also has a timeout */
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "evthread_use_pthreads failed\n");
        return 1;
    }
    g_base = event_base_new();
    if (!g_base) {
        fprintf(stderr, "event_base_new failed\n");
        return 1;
    }

    ok(ts_certs_init() == 0, "certificates made");
    test_basic();
    test_keepalive(1);
    test_keepalive(0);
    test_bodies();
    test_delays(1);
    test_delays(0);
    test_faults(1);
    test_faults(0);
    test_close_after();
    test_close_idle(1);
    test_close_idle(0);
    test_sequence();
    test_listeners();
    test_listener_teardown();
    test_dns();
    test_certs();
    test_plain_origin();
    test_ipv6();
    test_own_thread();
    test_shared_base();
    test_teardown();

    event_base_free(g_base);
    ts_certs_cleanup();
    diag("total %.0f ms", now_ms() - t0);
    return tap_done();
}
