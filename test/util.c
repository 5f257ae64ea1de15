/* Test helpers; see util.h. */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <event2/event.h>

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
