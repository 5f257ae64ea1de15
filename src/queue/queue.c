/*
 * Cross-thread mailbox (see queue.h).
 *
 * Invariants: head/tail/closed/pending/waiters change only under mu. The
 * wake-up descriptor is written only by the producer that made the list
 * non-empty, and read (cleared) by the loop before it swaps the list out, so
 * a push that lands after the swap always writes a fresh wake-up: no message
 * can sit in the list with nobody woken for it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <unistd.h>
#ifdef HAVE_SYS_EVENTFD_H
#include <sys/eventfd.h>
#endif

#include <event2/event.h>

#include "gapi.h"
#include "queue/queue.h"

static int make_wake_fds(int fd[2])
{
#ifdef HAVE_SYS_EVENTFD_H
    fd[0] = fd[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd[0] >= 0)
        return 0;
#endif
    if (pipe(fd) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(fd[i], F_SETFL, fcntl(fd[i], F_GETFL) | O_NONBLOCK);
        fcntl(fd[i], F_SETFD, FD_CLOEXEC);
    }
    return 0;
}

static void wake(gapi__queue *q)
{
    uint64_t one = 1;
    ssize_t n;

    /* EAGAIN means a wake-up is already pending (counter or pipe full):
     * that is as good as ours. */
    do
        n = write(q->wake_fd[1], &one, q->wake_fd[0] == q->wake_fd[1] ? sizeof(one) : 1);
    while (n < 0 && errno == EINTR);
}

static void clear_wake(gapi__queue *q)
{
    char buf[64];

    /* eventfd: one read resets the counter; pipe: read until empty. */
    while (read(q->wake_fd[0], buf, sizeof(buf)) > 0 && q->wake_fd[0] != q->wake_fd[1])
        ;
}

void gapi__queue_drain_now(gapi__queue *q)
{
    gapi__qnode *list;

    pthread_mutex_lock(&q->mu);
    list = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->mu);
    if (list)
        q->drain(list, q->drain_arg);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    gapi__queue *q = arg;

    (void)fd;
    (void)what;
    clear_wake(q);
    gapi__queue_drain_now(q);
}

int gapi__queue_init(gapi__queue *q, struct event_base *base, size_t max_pending,
                     gapi__queue_drain_fn drain, void *arg)
{
    q->head = q->tail = NULL;
    q->closed = 0;
    q->pending = 0;
    q->waiters = 0;
    q->max_pending = max_pending;
    q->low_water = max_pending - (max_pending / 4 ? max_pending / 4 : 1);
    q->drain = drain;
    q->drain_arg = arg;
    if (make_wake_fds(q->wake_fd) != 0)
        return GAPI_EINVAL;
    q->ev = event_new(base, q->wake_fd[0], EV_READ | EV_PERSIST, on_wake, q);
    if (!q->ev || event_add(q->ev, NULL) != 0) {
        if (q->ev)
            event_free(q->ev);
        q->ev = NULL;
        close(q->wake_fd[0]);
        if (q->wake_fd[1] != q->wake_fd[0])
            close(q->wake_fd[1]);
        q->wake_fd[0] = q->wake_fd[1] = -1;
        return GAPI_ENOMEM;
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->space, NULL);
    return GAPI_OK;
}

void gapi__queue_detach(gapi__queue *q)
{
    if (q->ev) {
        event_free(q->ev);
        q->ev = NULL;
    }
}

void gapi__queue_destroy(gapi__queue *q)
{
    if (q->wake_fd[0] < 0)
        return;
    /* Producers blocked for room were woken by the close; each must get
     * out of pthread_cond_wait (re-taking the lock) before the lock and
     * condition variable can go. */
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->space);
    while (q->waiters) {
        pthread_mutex_unlock(&q->mu);
        sched_yield();
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    gapi__queue_detach(q);
    close(q->wake_fd[0]);
    if (q->wake_fd[1] != q->wake_fd[0])
        close(q->wake_fd[1]);
    q->wake_fd[0] = q->wake_fd[1] = -1;
    pthread_cond_destroy(&q->space);
    pthread_mutex_destroy(&q->mu);
}

/* Under mu. Returns whether the list was empty: then the caller must wake
 * the loop, after unlocking (no system call inside the critical section).
 * Until that write lands, other producers see a non-empty list and do not
 * write; the loop reads the wake-up before it swaps the list, so the worst
 * case is one spurious wake-up with an empty list, never a stranded node. */
static int append(gapi__queue *q, gapi__qnode *n)
{
    int was_empty = q->head == NULL;

    n->next = NULL;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    return was_empty;
}

/* Messages (cancel, stop) wake the loop under the lock: they are rare, and
 * a stop may be followed at once by the client's teardown and free on the
 * loop thread, which must not overtake a write still to be made. */
void gapi__queue_push_msg(gapi__queue *q, gapi__qnode *n)
{
    pthread_mutex_lock(&q->mu);
    if (append(q, n))
        wake(q);
    pthread_mutex_unlock(&q->mu);
}

int gapi__queue_push(gapi__queue *q, gapi__qnode *n, int block)
{
    int rc = GAPI_OK, first = 0;

    pthread_mutex_lock(&q->mu);
    while (!q->closed && q->max_pending && q->pending >= q->max_pending && block) {
        q->waiters++;
        pthread_cond_wait(&q->space, &q->mu);
        q->waiters--;
    }
    if (q->closed)
        rc = GAPI_ESHUTDOWN;
    else if (q->max_pending && q->pending >= q->max_pending)
        rc = GAPI_EFULL;
    else {
        q->pending++;
        first = append(q, n);
    }
    pthread_mutex_unlock(&q->mu);
    if (first)
        wake(q);
    return rc;
}

int gapi__queue_reserve(gapi__queue *q)
{
    int rc = GAPI_OK;

    pthread_mutex_lock(&q->mu);
    if (q->closed)
        rc = GAPI_ESHUTDOWN;
    else if (q->max_pending && q->pending >= q->max_pending)
        rc = GAPI_EFULL;
    else
        q->pending++;
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void gapi__queue_release(gapi__queue *q, size_t n)
{
    pthread_mutex_lock(&q->mu);
    q->pending -= n;
    /* Hysteresis: blocked producers are woken together once a quarter of
     * the room is free, not one by one per completion. Each wake-up then
     * submits a burst, and a burst shares one loop wake-up; waking a
     * producer per completion costs two context switches per request. */
    if (q->waiters && q->pending <= q->low_water)
        pthread_cond_broadcast(&q->space);
    pthread_mutex_unlock(&q->mu);
}

void gapi__queue_close(gapi__queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->space);
    pthread_mutex_unlock(&q->mu);
}

int gapi__queue_is_closed(gapi__queue *q)
{
    int closed;

    pthread_mutex_lock(&q->mu);
    closed = q->closed;
    pthread_mutex_unlock(&q->mu);
    return closed;
}
