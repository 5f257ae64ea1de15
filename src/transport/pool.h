/*
 * The transport's interface to the layers above: a pool of keep-alive
 * connections per origin that carries "transfers" (one HTTP exchange each).
 *
 * A transfer (gapi__xfer) is embedded in its owner (a gapi_request). The
 * owner fills in the inputs and submits it; the pool reports the end exactly
 * once through x->done (called from inside libevent callbacks, or from
 * gapi__pool_abort / gapi__pool_free, never from gapi__pool_submit). The
 * owner must not free the transfer before done was called.
 *
 * Everything here runs on the loop thread.
 */
#ifndef GAPI_TRANSPORT_POOL_H
#define GAPI_TRANSPORT_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "gapi.h"
#include "common/buf.h"
#include "transport/url.h"

struct event_base;
struct evdns_base;
struct event;
struct gapi__tls; /* tls/tls.h; no typedef here: C99 forbids repeating one */
typedef struct gapi__pool gapi__pool;
typedef struct gapi__origin gapi__origin;
typedef struct gapi__conn gapi__conn;
typedef struct gapi__xfer gapi__xfer;

/* Response as received. Headers live in one arena, addressed by offsets so
 * the arena can grow. Public accessors are in request.c. */
typedef struct gapi__hdr_ref {
    uint32_t name;
    uint32_t value;
} gapi__hdr_ref;

#define GAPI__INLINE_HDRS 16

struct gapi_response {
    int status;
    int http_minor;
    gapi__buf arena;     /* "name\0value\0..." */
    gapi__hdr_ref *hdrs; /* inline_hdrs until more are needed */
    size_t nhdrs, hdrs_cap;
    gapi__hdr_ref inline_hdrs[GAPI__INLINE_HDRS];
    gapi__buf body; /* decoded */
    struct json_object *json;
};

int gapi__response_add_header(gapi_response *r, const char *name, size_t nlen, const char *value,
                              size_t vlen);
void gapi__response_reset(gapi_response *r);
const char *gapi__response_find(const gapi_response *r, const char *name);

/* Streamed upload source. */
typedef long (*gapi__read_fn)(void *buf, size_t len, void *arg);

typedef enum gapi__xfer_state {
    GAPI__XFER_IDLE = 0,   /* not submitted, or finished */
    GAPI__XFER_WAITING,    /* in the origin's wait queue */
    GAPI__XFER_CONNECTING, /* bound to a connection being opened */
    GAPI__XFER_ACTIVE      /* on a connection: request written / response read */
} gapi__xfer_state;

struct gapi__xfer {
    /* ---- inputs, set by the owner before submit ---- */
    const gapi__url *url;
    const gapi__buf *head; /* request line + headers + CRLF */
    const char *body;      /* fixed body (referenced) or NULL */
    size_t body_len;
    gapi__read_fn reader; /* streamed body, or NULL */
    void *reader_arg;
    long long reader_length; /* -1: chunked */
    int head_request;
    int idempotent;
    unsigned connect_ms, stall_ms; /* 0 = none; the total deadline is the request's */
    size_t max_header_bytes, max_body_bytes;
    void (*done)(gapi__xfer *x, int err);

    /* ---- outputs ---- */
    gapi_response resp;
    int have_resp; /* status line + headers received */
    char errmsg[512];
    unsigned replays;

    /* ---- transport-private ---- */
    gapi__xfer_state state;
    gapi__pool *pool;
    gapi__origin *origin;
    gapi__conn *conn;
    int fresh_only; /* replay: never on a reused connection */
    TAILQ_ENTRY(gapi__xfer) wait_link;
};

typedef struct gapi__pool_stats {
    uint64_t connections_opened;
    uint64_t connections_reused;
    uint64_t tls_resumed;
    uint64_t replays;
    unsigned connections_open;
    unsigned connections_idle;
    unsigned waiting;
} gapi__pool_stats;

typedef struct gapi__pool_config {
    struct event_base *base;
    struct evdns_base *dns;
    struct gapi__tls *tls; /* may be NULL only if no https is used */
    unsigned max_conns_per_origin;
    unsigned idle_timeout_ms;
} gapi__pool_config;

int gapi__pool_new(gapi__pool **out, const gapi__pool_config *cfg);
/* Abort every transfer with err (each done called once), close everything. */
void gapi__pool_free(gapi__pool *p, int err);

/* Start a transfer. Returns 0 (done will be called later) or GAPI_ENOMEM
 * (done will not be called). */
int gapi__pool_submit(gapi__pool *p, gapi__xfer *x);
/* End a submitted transfer now with err (its connection, if any, is closed);
 * done is called before this returns. No-op if x is not in flight. */
void gapi__pool_abort(gapi__pool *p, gapi__xfer *x, int err, const char *msg);

void gapi__pool_get_stats(const gapi__pool *p, gapi__pool_stats *out);

#endif
