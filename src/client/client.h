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

#include <pthread.h>

#include "gapi.h"
#include "queue/queue.h"
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
    char *user_agent;            /* "User-Agent: [app ]gapi/VERSION\r\n" */
    struct gapi__req_list live;  /* accepted, callback not yet run */
    struct gapi__req_list doneq; /* completed, callback not yet run */
    struct event *done_ev;
    int in_callback; /* depth of user callbacks on the stack */
    int cb_slot;     /* the running callback's max_pending slot, not yet reused */
    int closing;     /* torn down or being torn down: nothing new starts */
    int freeing;     /* gapi_client_free was called */
    uint64_t started, completed;
    uint64_t retries, token_fetches;

    /* Requests (version 3 options). */
    gapi_credentials *creds; /* for calls; a reference */
    gapi_retry_policy retry; /* resolved; max_attempts 0: none */
    gapi_attempt_cb on_attempt;
    void *on_attempt_arg;
    struct gapi__token_cache *caches; /* auth/cache.c; loop thread */

    /* Cross-thread side (see queue.h). */
    gapi__queue q;
    int shut;               /* atomic: gapi_client_shutdown was called */
    pthread_t loop_thread;  /* the thread that runs the loop */
    gapi__qnode stop_msg;   /* queued once by gapi_client_shutdown */
    int stop_queued;        /* under q.mu */
    unsigned stop_drain_ms; /* written before stop_msg is queued */
    int stopping;           /* loop side: stop_msg seen, draining */
    struct event *drain_timer;

    /* Counters as last published by the loop, for readers on other threads. */
    pthread_mutex_t stats_mu;
    gapi_client_stats stats_pub;

    /* Own-loop-thread mode (gapi_client_start). */
    int owned;
    pthread_t thread;
    int self_free; /* freed from its own loop thread: the thread cleans up */
};

/* Message kinds on c->q. */
enum { GAPI__MSG_SUBMIT = 1, GAPI__MSG_CANCEL, GAPI__MSG_STOP };

/* A request finished (any outcome): queue its callback. */
void gapi__client_complete(gapi_client *c, gapi_request *r, int err);

/* Any thread: has gapi_client_shutdown (or free) been called? */
int gapi__client_is_shut(gapi_client *c);

/* Is the calling thread the client's loop thread? */
int gapi__client_on_loop(const gapi_client *c);

/* Take / give back a max_pending slot for r (no-op when unbounded). */
int gapi__client_reserve(gapi_request *r);
void gapi__client_unreserve(gapi_request *r);

/* Loop thread: a future's cancel message arrived (future.c). */
void gapi__future_on_cancel_msg(gapi__qnode *n);

#endif
