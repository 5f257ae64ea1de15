/*
 * The client: owns the TLS context, the resolver (unless borrowed), the
 * connection pool and the done queue through which every completion reaches
 * its callback.
 *
 * Why a done queue: completions happen deep inside transport callbacks. The
 * transport only queues them; one event drains the queue and runs user
 * callbacks with nothing of ours on the stack, so a callback may send,
 * cancel or free the client. It also guarantees that no callback runs from
 * inside the call that accepted its request.
 */
#ifndef GAPI_CLIENT_CLIENT_H
#define GAPI_CLIENT_CLIENT_H

#include "gapi.h"
#include "request/request.h"
#include "tls/tls.h"
#include "transport/pool.h"

struct gapi_client {
    struct event_base *base;
    struct evdns_base *dns;
    int own_dns;
    gapi__tls *tls;
    gapi__pool *pool;
    gapi_client_options opts;    /* defaults resolved */
    struct gapi__req_list live;  /* accepted, callback not yet run */
    struct gapi__req_list doneq; /* completed, callback not yet run */
    struct event *done_ev;
    int in_callback; /* depth of user callbacks on the stack */
    int closing;     /* gapi_client_free was called */
    uint64_t started, completed;
};

/* A request finished (any outcome): queue its callback. */
void gapi__client_complete(gapi_client *c, gapi_request *r, int err);

#endif
