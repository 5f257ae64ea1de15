/*
 * The low-level request: a gapi__xfer plus what the public API needs around
 * it (method, URL, headers, body, callback). Built on the caller's side,
 * serialized once at send, completed through the client's done queue.
 */
#ifndef GAPI_REQUEST_REQUEST_H
#define GAPI_REQUEST_REQUEST_H

#include <sys/queue.h>

#include "gapi.h"
#include "common/buf.h"
#include "transport/pool.h"
#include "transport/url.h"
#include "queue/queue.h"

struct event;
struct gapi__token_cache;

typedef enum gapi__req_state {
    GAPI__REQ_NEW = 0,   /* built, not sent */
    GAPI__REQ_QUEUED,    /* submitted from some thread, not yet on the loop */
    GAPI__REQ_INFLIGHT,  /* accepted; the transport has it */
    GAPI__REQ_DONE,      /* completed; waiting in the done queue */
    GAPI__REQ_DELIVERING /* its callback is running */
} gapi__req_state;

/* State a higher layer keeps with a request (the call builder's: service,
 * method, parameters, parsed Google error). destroy runs when the request
 * is freed, on whatever thread frees it; done runs on the loop thread when
 * the transfer ends, before the callback is queued, and returns the
 * outcome the callback will see (it may turn err 0 into another code). */
typedef struct gapi__req_ext_ops {
    void (*destroy)(void *ext);
    int (*done)(gapi_request *r, int err, void *ext);
    /* Optional: would another attempt help after this outcome? 1 yes, 0
     * no, -1 the default rules (retry.h). Loop thread. */
    int (*retryable)(const gapi_request *r, int err, void *ext);
} gapi__req_ext_ops;

/* Where an accepted request is between its attempts (send.c). */
typedef enum gapi__req_phase {
    GAPI__PH_NONE = 0, /* not started, or completing */
    GAPI__PH_AUTH,     /* waiting in a token cache */
    GAPI__PH_XFER,     /* the transport has it */
    GAPI__PH_BACKOFF   /* waiting for the next attempt */
} gapi__req_phase;

/* Which default headers the caller replaced. */
enum {
    GAPI__H_USER_AGENT = 1u << 0,
    GAPI__H_ACCEPT_ENCODING = 1u << 1,
    GAPI__H_CONTENT_TYPE = 1u << 2
};

struct gapi_request {
    gapi_client *client;
    gapi__xfer x; /* first-class: done() finds the request from it */
    char *method;
    char *url_str; /* as given */
    gapi__url url;
    gapi__buf user_headers; /* "name\0value\0"... in the order added */
    size_t nheaders;        /* pairs in user_headers */
    unsigned hflags;
    gapi__buf head; /* serialized at send */
    char *body;
    size_t body_len;
    char *content_type;
    gapi_body_read_cb reader;
    void *reader_arg;
    long long reader_length;
    unsigned connect_ms, stall_ms, deadline_ms; /* 0: client default */
    unsigned total_ms;                          /* the deadline in force; 0: none */
    char *key_target; /* url.target with the API key's query parameter, or NULL */
    int idempotent;
    gapi__req_state state;
    int err;
    gapi_response_cb cb;
    void *arg;
    unsigned raw_body : 1;            /* internal users parse the body themselves: no JSON tree */
    unsigned counted : 1;             /* holds a slot of the client's max_pending */
    struct gapi_future *future;       /* submitted with a future (cb is internal) */
    gapi__qnode qnode;                /* cross-thread submission */
    const gapi__req_ext_ops *ext_ops; /* NULL for plain requests */
    void *ext;

    /* Attempts, retries and credentials (send.c). */
    gapi_credentials *creds;   /* a reference; NULL: none */
    unsigned has_retry : 1;    /* retry is the request's own policy */
    unsigned auth_retried : 1; /* the one retry after a 401 was used */
    unsigned internal : 1;     /* the library's own (token fetch): no max_pending slot */
    unsigned secret : 1;       /* body and response hold secrets: cleanse them when freed */
    gapi_retry_policy retry;   /* resolved */
    gapi__req_phase phase;
    unsigned attempts;                   /* transfers started */
    uint64_t t0_ms;                      /* monotonic ms when accepted */
    size_t head_base;                    /* head up to the per-attempt header lines */
    struct event *dl_ev;                 /* the total deadline */
    struct event *wait_ev;               /* the wait before the next attempt */
    struct gapi__token_cache *tc;        /* where its token comes from */
    unsigned token_gen;                  /* generation of the token it was sent with */
    TAILQ_ENTRY(gapi_request) wait_link; /* in tc's waiters */
    TAILQ_ENTRY(gapi_request) live_link;
    TAILQ_ENTRY(gapi_request) done_link;
};

TAILQ_HEAD(gapi__req_list, gapi_request);

/* Free a request's memory (no callback). Touches nothing but the request,
 * so a future's owner may call it on any thread. */
void gapi__request_destroy(gapi_request *r);

/* Any thread: check and serialize a NEW request for sending with cb. On
 * failure nothing changed. */
int gapi__request_prepare(gapi_request *r, gapi_response_cb cb, void *arg);

/* Loop thread: accept a prepared request and begin its first attempt. On
 * failure it is NEW again and the caller still owns it. */
int gapi__request_start(gapi_request *r);

/* Loop thread: end an accepted request now with err, whatever it is doing
 * (its callback follows through the done queue). No-op when it is already
 * completing. */
void gapi__request_abort(gapi_request *r, int err, const char *msg);

/* Loop thread: the token cache r waited in answered: line is the
 * Authorization header line (err 0) or err and msg say why there is none. */
void gapi__request_token_ready(gapi_request *r, int err, const char *line, size_t len, unsigned gen,
                               const char *msg);

/* The transport's end of one attempt (send.c). */
void gapi__request_xfer_done(gapi__xfer *x, int err);

/* Parse r's response body as JSON when its type says so (request.c). */
int gapi__request_parse_json(gapi_request *r);

/* Write the per-attempt end of r's head: extra header lines (may be NULL),
 * the blank line and an inline body (request.c). */
int gapi__request_finish_head(gapi_request *r, const char *lines, size_t len);

/* Monotonic milliseconds. */
uint64_t gapi__now_ms(void);

#endif
