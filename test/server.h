/*
 * In-process HTTPS (or plain HTTP) test server on 127.0.0.1 (or ::1), port 0,
 * built on libevent's evhttp + OpenSSL. It runs on the event_base it is given
 * (the same base as the client under test, or its own thread's).
 *
 * It scripts responses per path and injects faults. It uses only libevent,
 * OpenSSL, json-c and zlib: no gapi code, so a broken gapi cannot fake a pass.
 *
 * Certificates are made at start with the OpenSSL API (see certs.h): a test CA
 * signs the server certificate (SAN: DNS:localhost, IP:127.0.0.1, IP:::1);
 * the cert kind option makes wrong-host, expired or untrusted ones.
 */
#ifndef GAPI_TEST_SERVER_H
#define GAPI_TEST_SERVER_H

#include <stddef.h>

struct event_base;
struct evhttp_request;

typedef struct ts_server ts_server;

typedef enum ts_cert_kind {
    TS_CERT_GOOD = 0,   /* signed by the test CA, names localhost/127.0.0.1/::1 */
    TS_CERT_WRONG_HOST, /* signed by the test CA, names only wrong.example.invalid */
    TS_CERT_EXPIRED,    /* signed by the test CA, notAfter in the past */
    TS_CERT_UNTRUSTED   /* signed by a different CA the client is not told of */
} ts_cert_kind;

typedef struct ts_options {
    int plain_http; /* 1: no TLS */
    int ipv6;       /* 1: listen on ::1 instead of 127.0.0.1 */
    ts_cert_kind cert;
    /* Close each connection (silently, no "Connection: close") after it has
     * served this many requests; 0 = never. Used to test stale keep-alive. */
    unsigned close_after;
} ts_options;

#define TS_OPTIONS_INIT                                                                            \
    {                                                                                              \
        0, 0, TS_CERT_GOOD, 0                                                                      \
    }

typedef enum ts_fault {
    TS_FAULT_NONE = 0,
    TS_FAULT_RESET_BEFORE_HEADERS,  /* read the request, then TCP RST (no byte sent) */
    TS_FAULT_RESET_AFTER_HEADERS,   /* send status+headers (Content-Length: 1000), then RST */
    TS_FAULT_TRUNCATED_BODY,        /* Content-Length: 1000, send 100 body bytes, clean close */
    TS_FAULT_TRUNCATED_CHUNKED,     /* chunked, send some chunks, close without the last chunk */
    TS_FAULT_STALL_BEFORE_HEADERS,  /* read the request, send nothing, keep the connection open */
    TS_FAULT_STALL_MID_BODY,        /* headers + part of the body, then nothing, stay open */
    TS_FAULT_DRIBBLE,               /* valid response sent one byte every param ms */
    TS_FAULT_BIG_HEADERS,           /* valid response with param bytes of extra headers */
    TS_FAULT_MALFORMED_STATUS,      /* "HTTP/1.1 2x0 OK" */
    TS_FAULT_CLOSE_BEFORE_RESPONSE, /* read the request, then clean close (FIN / close_notify) */
    TS_FAULT_RESET_MID_HEADERS,     /* part of the status+headers, then RST */
    TS_FAULT_MALFORMED_HEADER,      /* a header line without a colon, then clean close */
    TS_FAULT_RESET_MID_BODY,        /* Content-Length: 1000 + 100 body bytes, then RST */
    TS_FAULT_CLOSE_IDLE             /* valid keep-alive 200, then clean close param ms later */
} ts_fault;

/* Make a server and start listening. Returns NULL and prints why to stderr on
 * failure. opts may be NULL for defaults (HTTPS, good cert, 127.0.0.1). */
ts_server *ts_server_new(struct event_base *base, const ts_options *opts);
/* Stop listening, close every connection, free everything. Leaves no events
 * on the base. NULL is a no-op.
 * Rule: libevent frees a bufferevent through deferred finalizers, so right
 * after this call the base still holds one active finalizer callback per
 * connection that was open (and their fds are still open). One
 * event_base_loop(base, EVLOOP_NONBLOCK) (or event_base_free) runs them;
 * after that event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED |
 * EVENT_BASE_COUNT_ACTIVE) counts nothing of the server's.
 * Call it on the loop thread, or while the base's loop is not running. */
void ts_server_free(ts_server *s);

int ts_server_port(const ts_server *s);
/* "https://127.0.0.1:PORT" (or http://, or https://[::1]:PORT); owned by s. */
const char *ts_server_origin(const ts_server *s);
/* PEM of the CA the client should trust (the test CA; for TS_CERT_UNTRUSTED
 * this is still the test CA, which did NOT sign the served certificate). */
const char *ts_server_ca_pem(const ts_server *s);

/* ---- scripting. Routes match the request path exactly (without query). --- */

/* Static response. headers: NULL or "Name: value\r\nName2: value2\r\n" text.
 * body may be NULL (empty). Replaces an earlier route for the same path. */
void ts_route(ts_server *s, const char *path, int status, const char *headers, const char *body);
/* Same, with the body sent chunked (in pieces of chunk_size bytes). */
void ts_route_chunked(ts_server *s, const char *path, int status, const char *headers,
                      const char *body, size_t chunk_size);
/* Same, with the body gzip-compressed and Content-Encoding: gzip. */
void ts_route_gzip(ts_server *s, const char *path, int status, const char *headers,
                   const char *body);
/* A fault on path. param: ms for DRIBBLE and CLOSE_IDLE, bytes for
 * BIG_HEADERS, else unused. */
void ts_route_fault(ts_server *s, const char *path, ts_fault fault, unsigned param);
/* Delay the response of path by ms (the response is otherwise as routed). */
void ts_route_delay(ts_server *s, const char *path, unsigned ms);
/* Custom handler: full evhttp control (for later token/metadata endpoints).
 * The handler must reply (evhttp_send_reply*) or schedule a reply. */
typedef void (*ts_handler)(struct evhttp_request *req, void *arg);
void ts_route_handler(ts_server *s, const char *path, ts_handler fn, void *arg);

/* One answer of a sequence: the fault when fault != TS_FAULT_NONE (status,
 * headers and body are then unused), else a static response as ts_route
 * sends it (headers and body may be NULL). */
typedef struct ts_step_resp {
    int status;
    const char *headers;
    const char *body;
    ts_fault fault;
    unsigned param;
} ts_step_resp;
/* A scripted sequence on path: the k-th request (counting from 0) that
 * arrives on path after this call, or after ts_server_reset_counts, gets
 * steps[k]; every request after the last step gets the last step again.
 * The steps and their strings are copied. Replaces an earlier route for the
 * same path; steps == NULL or n == 0 changes nothing. E.g. "503 twice, then
 * 200": {503, NULL, "busy", TS_FAULT_NONE, 0} twice, then
 * {200, NULL, "ok", TS_FAULT_NONE, 0}; "reset, then 200":
 * {0, NULL, NULL, TS_FAULT_RESET_BEFORE_HEADERS, 0}, then the 200. */
void ts_route_sequence(ts_server *s, const char *path, const ts_step_resp *steps, size_t n);

/* Paths with no route get 404 with a small JSON error body. Every route's
 * response echoes nothing; use the recorders below to check what came in. */

/* ---- observation ---- */
unsigned ts_server_connections(const ts_server *s);            /* TCP connections accepted */
unsigned ts_server_requests(const ts_server *s);               /* requests received (all paths) */
unsigned ts_server_hits(const ts_server *s, const char *path); /* per path */
unsigned ts_server_open_connections(const ts_server *s);       /* open now */
/* Last request received on path: method, a header (case-insensitive), body.
 * Returned strings are owned by s and valid until the next request on path. */
const char *ts_last_method(const ts_server *s, const char *path);
const char *ts_last_header(const ts_server *s, const char *path, const char *name);
const char *ts_last_body(const ts_server *s, const char *path, size_t *len);
/* The Host header of the last request on path, and whether TLS SNI was sent
 * with that connection (the SNI name or NULL). */
const char *ts_last_sni(const ts_server *s, const char *path);
/* (For the Host header itself use ts_last_header(s, path, "Host");
 * ts_last_sni returns only the TLS server_name the client sent, NULL when it
 * sent none - clients send none for IP literals - or in plain HTTP.) */
/* Arrival times of the requests on path, in arrival order: CLOCK_MONOTONIC
 * in milliseconds (tv_sec * 1000.0 + tv_nsec / 1e6), taken when the whole
 * request (head and body) has been read. Stores the first min(count, max)
 * into out_ms and returns how many it stored; with out_ms NULL it stores
 * nothing and returns the count. Unseen path: 0. */
int ts_request_times(const ts_server *s, const char *path, double *out_ms, size_t max);
/* Zeroes every counter: connections accepted, requests, the hits and the
 * arrival times of every path, and the position of every ts_route_sequence
 * (the next request gets steps[0] again). Leaves routes, delays, the
 * ts_last_* records and ts_server_open_connections (connections open now,
 * not a count of events) alone. */
void ts_server_reset_counts(ts_server *s);

/* ---- notes (added with the implementation, test/server.c) ----
 *
 * Threads. ts_server_new and ts_server_free run on the thread that runs the
 * base, or while its loop is not running. ts_route*, the counters and the
 * ts_last_* getters lock an internal mutex and may be called from any thread
 * (e.g. a test whose server runs on its own thread's base). Custom handlers
 * run on the loop thread.
 *
 * SIGPIPE. libevent and OpenSSL write without MSG_NOSIGNAL, so a peer that
 * resets while the server writes raises SIGPIPE. The server does not change
 * the process's signal dispositions (that would hide a client that forgets
 * MSG_NOSIGNAL); a test program must ignore SIGPIPE itself.
 *
 * Paths are compared with the request-target's path exactly as sent
 * (percent-encoding is not decoded; the query is ignored). Every request
 * counts as a hit on its path, routed or not.
 *
 * Bodies of 1xx/204/304 responses and of answers to HEAD are dropped.
 * Routes without a Content-Type header send none (evhttp's default
 * text/html is switched off). Delays (ts_route_delay) apply to any route,
 * faults included: the fault starts when the delay ends. While a request
 * waits for its delay the server watches the connection, so a client that
 * gives up (closes) is seen at once: the connection is dropped and
 * ts_server_open_connections() goes down without waiting for the delay (a
 * client that half-closes after sending counts as gone). Requests pipelined
 * behind a delayed one are answered in order afterwards.
 *
 * Custom handlers get evhttp's own behaviour: evhttp stops reading while the
 * answer is pending. A handler that defers its reply must send it before
 * ts_server_free (which frees pending requests with their connections).
 * Do not call ts_server_free from inside a handler or any other server
 * callback.
 *
 * Bytes on the wire for each fault (after the request has been read):
 *   RESET_BEFORE_HEADERS   nothing; RST (SO_LINGER {1,0}; no close_notify)
 *   RESET_AFTER_HEADERS    "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
 *                          once the peer has acknowledged it: RST
 *   TRUNCATED_BODY         those headers + 100 body bytes ("0123456789" x10),
 *                          then clean close (close_notify + FIN)
 *   TRUNCATED_CHUNKED      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
 *                          + 3 x "a\r\n0123456789\r\n", then clean close
 *                          (no "0\r\n\r\n")
 *   STALL_BEFORE_HEADERS   nothing; the connection stays open
 *   STALL_MID_BODY         the TRUNCATED_BODY bytes; the connection stays open
 *   DRIBBLE                "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n"
 *                          "Connection: close\r\n\r\n" + 50 bytes, one byte
 *                          every param ms (first byte at once; TCP_NODELAY),
 *                          then clean close
 *   BIG_HEADERS            a normal evhttp 200 ("ok", keep-alive) with extra
 *                          "X-Pad-N: xxx" lines of at most 1000 bytes that
 *                          total exactly param bytes (at least 11)
 *   MALFORMED_STATUS       "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
 *                          then clean close
 *   CLOSE_BEFORE_RESPONSE  nothing; clean close
 *   RESET_MID_HEADERS      "HTTP/1.1 200 OK\r\nContent-Ty"; once the peer
 *                          has acknowledged it: RST
 *   MALFORMED_HEADER       "HTTP/1.1 200 OK\r\nBad Header Line\r\n"
 *                          "Content-Length: 0\r\n\r\n", then clean close
 *   RESET_MID_BODY         the TRUNCATED_BODY bytes; once the peer has
 *                          acknowledged them: RST
 *   CLOSE_IDLE             a normal evhttp 200 (keep-alive, no "Connection:
 *                          close"; "Content-Type: text/plain", a Date,
 *                          "Content-Length: 2", body "ok"); param ms after it
 *                          has been flushed (0: at once) a clean close. A
 *                          request that arrives in between does not stop the
 *                          close (that is the race a client must survive);
 *                          it is dropped unanswered unless it is answered
 *                          first. A raw fault on such a request takes the
 *                          connection over and the idle close is dropped.
 *                          A request with "Connection: close" gets evhttp's
 *                          own close at once.
 * "Stays open" lasts until the peer closes or ts_server_free.
 * close_after closes cleanly (close_notify + FIN) once the Nth response on a
 * connection has been flushed.
 *
 * Sequences. The position k is the number of requests that arrived on the
 * path since the route was set (or ts_server_reset_counts), so it is taken
 * at arrival: a request waiting for its delay has its step already, and a
 * client that gives up while waiting still used one. Each step is sent as
 * ts_route / ts_route_fault would send it. */

#endif
