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

typedef enum gapi__req_state {
    GAPI__REQ_NEW = 0,   /* built, not sent */
    GAPI__REQ_QUEUED,    /* submitted from some thread, not yet on the loop */
    GAPI__REQ_INFLIGHT,  /* accepted; the transport has it */
    GAPI__REQ_DONE,      /* completed; waiting in the done queue */
    GAPI__REQ_DELIVERING /* its callback is running */
} gapi__req_state;

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
    gapi__buf user_headers; /* "Name: value\r\n"... */
    unsigned hflags;
    gapi__buf head; /* serialized at send */
    char *body;
    size_t body_len;
    char *content_type;
    gapi_body_read_cb reader;
    void *reader_arg;
    long long reader_length;
    unsigned connect_ms, stall_ms, deadline_ms; /* 0: client default */
    int idempotent;
    gapi__req_state state;
    int err;
    gapi_response_cb cb;
    void *arg;
    unsigned counted : 1;       /* holds a slot of the client's max_pending */
    struct gapi_future *future; /* submitted with a future (cb is internal) */
    gapi__qnode qnode;          /* cross-thread submission */
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

/* Loop thread: hand a prepared request to the pool. On failure it is NEW
 * again and the caller still owns it. */
int gapi__request_start(gapi_request *r);

#endif
