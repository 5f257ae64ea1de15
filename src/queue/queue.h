/*
 * The cross-thread mailbox of a client: the only structure that threads
 * other than the loop thread touch.
 *
 * Producers (any thread) push intrusive nodes onto a mutex-protected FIFO
 * and write the eventfd (a pipe where there is none) only when the list goes
 * from empty to non-empty, so a burst of pushes costs one wake-up. The loop
 * owns an EV_READ|EV_PERSIST event on the other end; on wake it clears the
 * fd, swaps the whole list out under the lock and hands it to the drain
 * function in FIFO order (libuv's uv_async_send, curl_multi_wakeup). No
 * libevent function is ever called from a producer, so the caller's base
 * needs no evthread_use_pthreads().
 *
 * The mailbox also keeps the back-pressure count (requests queued or in
 * flight) because it already owns the lock producers take, and the
 * "closed" flag, so that a submit after shutdown fails at once instead of
 * queueing work nobody will run.
 */
#ifndef GAPI_QUEUE_QUEUE_H
#define GAPI_QUEUE_QUEUE_H

#include <pthread.h>
#include <stddef.h>

struct event;
struct event_base;

typedef struct gapi__qnode {
    struct gapi__qnode *next;
    int kind; /* the owner's message type */
} gapi__qnode;

/* Called on the loop thread with the nodes pushed since the last call,
 * oldest first, linked through next (NULL-terminated). */
typedef void (*gapi__queue_drain_fn)(gapi__qnode *list, void *arg);

typedef struct gapi__queue {
    pthread_mutex_t mu;
    pthread_cond_t space; /* signalled when pending drops or on close */
    gapi__qnode *head, *tail;
    int closed;
    size_t max_pending; /* 0: unbounded */
    size_t pending;     /* counted pushes whose completion has not been released */
    size_t low_water;   /* blocked producers wake when pending drops to this */
    unsigned waiters;   /* producers blocked in gapi__queue_push for space */
    int wake_fd[2];     /* [0] read end watched by the loop, [1] write end */
    struct event *ev;
    gapi__queue_drain_fn drain;
    void *drain_arg;
} gapi__queue;

/* Loop thread. Returns 0, GAPI_ENOMEM, or GAPI_EINVAL with errno set when
 * no wake-up descriptor can be made. */
int gapi__queue_init(gapi__queue *q, struct event_base *base, size_t max_pending,
                     gapi__queue_drain_fn drain, void *arg);

/* Loop thread. The loop stops watching the mailbox (its event is freed);
 * producers may still push (and get GAPI_ESHUTDOWN once it is closed). */
void gapi__queue_detach(gapi__queue *q);

/* When no other thread can touch q any more: detach if needed, close the
 * descriptors, destroy the lock. Queued nodes are NOT drained. */
void gapi__queue_destroy(gapi__queue *q);

/* Any thread. Queue a message that is not subject to back-pressure (cancel,
 * stop). Never fails: messages still reach the loop after close. */
void gapi__queue_push_msg(gapi__queue *q, gapi__qnode *n);

/* Any thread. Queue a counted submission. When max_pending is reached it
 * fails with GAPI_EFULL, or with block set waits for room. Returns 0,
 * GAPI_ESHUTDOWN (closed, also while waiting) or GAPI_EFULL. */
int gapi__queue_push(gapi__queue *q, gapi__qnode *n, int block);

/* Any thread. Count a submission made on the loop thread itself (no node
 * queued); never blocks. Returns 0, GAPI_ESHUTDOWN or GAPI_EFULL. */
int gapi__queue_reserve(gapi__queue *q);

/* Any thread. n counted submissions finished: make room for n more. */
void gapi__queue_release(gapi__queue *q, size_t n);

/* Any thread. From now on gapi__queue_push and gapi__queue_reserve fail
 * with GAPI_ESHUTDOWN and blocked producers return. Idempotent. */
void gapi__queue_close(gapi__queue *q);
int gapi__queue_is_closed(gapi__queue *q);

/* Loop thread. Hand everything queued so far to the drain function now. */
void gapi__queue_drain_now(gapi__queue *q);

#endif
