/* Test helpers; see util.h. */
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "util.h"

static void on_alarm(int sig)
{
    static const char msg[] = "Bail out! watchdog: test took too long\n";
    (void)sig;
    if (write(1, msg, sizeof(msg) - 1) < 0) {
        /* nothing more to do */
    }
    _exit(99);
}

void tu_watchdog(unsigned seconds)
{
    signal(SIGALRM, on_alarm);
    alarm(seconds);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

int tu_run_until(struct event_base *base, const int *counter, int target, unsigned timeout_ms)
{
    int expired = 0;
    struct event *t = evtimer_new(base, timeout_cb, &expired);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

    evtimer_add(t, &tv);
    while (*counter < target && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return *counter >= target ? 0 : -1;
}

void tu_run_for(struct event_base *base, unsigned ms)
{
    int expired = 0;
    tu_run_until(base, &expired, 1, ms);
}

int tu_events_left(struct event_base *base)
{
    event_base_loop(base, EVLOOP_NONBLOCK);
    return event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE);
}

static int bind_loopback(int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

int tu_closed_port(void)
{
    int port = 0, fd = bind_loopback(&port);

    if (fd >= 0)
        close(fd);
    return port;
}

int tu_silent_listener(int *port)
{
    int fd = bind_loopback(port);

    if (fd >= 0 && listen(fd, 16) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ------------------------------------------------------------ bad listeners */

#define TU_GARBAGE "HTTP/1.1 400 Bad Request\r\n\r\n this is not TLS"

struct tu_conn {
    struct tu_conn *prev, *next;
    tu_listener *l;
    struct bufferevent *bev;
};

struct tu_listener {
    struct evconnlistener *lev;
    struct tu_conn *conns; /* garbage connections still open; loop thread */
    pthread_mutex_t lock;  /* guards accepted */
    unsigned accepted;
};

static void tu_count(tu_listener *l)
{
    pthread_mutex_lock(&l->lock);
    l->accepted++;
    pthread_mutex_unlock(&l->lock);
}

static void tu_conn_free(struct tu_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    bufferevent_free(c->bev);
    free(c);
}

static void garbage_readcb(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);

    (void)arg;
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void garbage_writecb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    /* Everything is in the kernel: FIN after it. Closing instead would
     * send RST if the peer's bytes (a ClientHello) sat unread, and an RST
     * can make the peer lose the garbage before reading it. */
    shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void garbage_eventcb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        tu_conn_free(arg);
}

static void garbage_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                           int socklen, void *arg)
{
    static const char bytes[] = TU_GARBAGE;
    tu_listener *l = arg;
    struct tu_conn *c;

    (void)sa;
    (void)socklen;
    tu_count(l);
    c = calloc(1, sizeof(*c));
    if (c)
        c->bev = bufferevent_socket_new(evconnlistener_get_base(lev), fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c || !c->bev) {
        fprintf(stderr, "tu_garbage_listener: out of memory\n");
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->l = l;
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    bufferevent_setcb(c->bev, garbage_readcb, garbage_writecb, garbage_eventcb, c);
    bufferevent_write(c->bev, bytes, sizeof(bytes) - 1);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void reset_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                         int socklen, void *arg)
{
    struct linger lg;

    (void)lev;
    (void)sa;
    (void)socklen;
    tu_count(arg);
    lg.l_onoff = 1;
    lg.l_linger = 0;
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    evutil_closesocket(fd);
}

static tu_listener *listener_new(struct event_base *base, int *port, evconnlistener_cb cb,
                                 const char *who)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    tu_listener *l;

    if (!base || !port) {
        fprintf(stderr, "%s: no event_base or port\n", who);
        return NULL;
    }
    l = calloc(1, sizeof(*l));
    if (!l) {
        fprintf(stderr, "%s: out of memory\n", who);
        return NULL;
    }
    pthread_mutex_init(&l->lock, NULL);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l->lev = evconnlistener_new_bind(
        base, cb, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE, -1,
        (struct sockaddr *)&sa, sizeof(sa));
    if (!l->lev || getsockname(evconnlistener_get_fd(l->lev), (struct sockaddr *)&sa, &len) != 0) {
        fprintf(stderr, "%s: cannot listen on 127.0.0.1\n", who);
        tu_listener_free(l);
        return NULL;
    }
    *port = ntohs(sa.sin_port);
    return l;
}

tu_listener *tu_garbage_listener(struct event_base *base, int *port)
{
    return listener_new(base, port, garbage_accept, "tu_garbage_listener");
}

tu_listener *tu_reset_listener(struct event_base *base, int *port)
{
    return listener_new(base, port, reset_accept, "tu_reset_listener");
}

unsigned tu_listener_accepted(const tu_listener *l)
{
    unsigned n;

    if (!l)
        return 0;
    /* The getter takes a const handle but must lock its mutex. */
    pthread_mutex_lock((pthread_mutex_t *)&l->lock);
    n = l->accepted;
    pthread_mutex_unlock((pthread_mutex_t *)&l->lock);
    return n;
}

void tu_listener_free(tu_listener *l)
{
    if (!l)
        return;
    if (l->lev)
        evconnlistener_free(l->lev);
    while (l->conns)
        tu_conn_free(l->conns);
    pthread_mutex_destroy(&l->lock);
    free(l);
}
