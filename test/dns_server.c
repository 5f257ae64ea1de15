/*
 * Tiny DNS server for tests (see dns_server.h). evdns parses each request
 * and calls on_request on the loop thread; we add the answers and respond
 * before returning, so no request is ever left pending on the port and
 * evdns_close_server_port frees it at once.
 *
 * The name table is guarded by a mutex because tests may add names from
 * another thread than the one that runs the base.
 */
#include "dns_server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/event.h>
#include <event2/util.h>

#define TD_TTL 60

struct td_name {
    struct td_name *next;
    char *name; /* without a trailing dot */
    struct in_addr *addrs;
    int naddrs;
};

struct td_dns {
    struct evdns_server_port *port;
    int portnum;
    pthread_mutex_t lock; /* guards names and queries */
    struct td_name *names;
    unsigned queries;
};

static void td_die(const char *what)
{
    fprintf(stderr, "td_dns: %s\n", what);
    abort();
}

/* a and b equal as DNS names: ASCII case ignored, one trailing dot too. */
static int name_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la && a[la - 1] == '.')
        la--;
    if (lb && b[lb - 1] == '.')
        lb--;
    return la == lb && evutil_ascii_strncasecmp(a, b, la) == 0;
}

/* Requires d->lock. */
static struct td_name *name_find(td_dns *d, const char *name)
{
    struct td_name *n;

    for (n = d->names; n; n = n->next)
        if (name_eq(n->name, name))
            return n;
    return NULL;
}

static void on_request(struct evdns_server_request *req, void *arg)
{
    td_dns *d = arg;
    int i, err = DNS_ERR_NONE;

    pthread_mutex_lock(&d->lock);
    d->queries++;
    for (i = 0; i < req->nquestions; i++) {
        const struct evdns_server_question *q = req->questions[i];
        const struct td_name *n = name_find(d, q->name);

        if (!n) {
            err = DNS_ERR_NOTEXIST;
            continue;
        }
        /* The question's own spelling: evdns clients check that the answer
         * names what they asked, case included (0x20 randomization). */
        if (q->type == EVDNS_TYPE_A && q->dns_question_class == EVDNS_CLASS_INET &&
            evdns_server_request_add_a_reply(req, q->name, n->naddrs, n->addrs, TD_TTL) != 0)
            err = DNS_ERR_SERVERFAILED;
    }
    pthread_mutex_unlock(&d->lock);
    /* On failure evdns keeps the request; drop frees it. */
    if (evdns_server_request_respond(req, err) < 0) {
        fprintf(stderr, "td_dns: cannot send a reply\n");
        evdns_server_request_drop(req);
    }
}

td_dns *td_dns_new(struct event_base *base)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    evutil_socket_t fd;
    td_dns *d;

    if (!base) {
        fprintf(stderr, "td_dns_new: no event_base\n");
        return NULL;
    }
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("td_dns_new: socket");
        return NULL;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (evutil_make_socket_nonblocking(fd) < 0 || evutil_make_socket_closeonexec(fd) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        perror("td_dns_new: bind 127.0.0.1");
        evutil_closesocket(fd);
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        fprintf(stderr, "td_dns_new: out of memory\n");
        evutil_closesocket(fd);
        return NULL;
    }
    pthread_mutex_init(&d->lock, NULL);
    d->portnum = ntohs(sa.sin_port);
    /* flags 0: UDP. The port owns fd from here (closes it when freed). */
    d->port = evdns_add_server_port_with_base(base, fd, 0, on_request, d);
    if (!d->port) {
        fprintf(stderr, "td_dns_new: evdns_add_server_port_with_base failed\n");
        evutil_closesocket(fd);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    return d;
}

int td_dns_port(td_dns *d)
{
    return d ? d->portnum : 0;
}

void td_dns_add_a(td_dns *d, const char *name, const char *ipv4)
{
    struct in_addr addr;
    struct td_name *n;
    struct in_addr *grown;
    size_t len;

    if (!d || !name)
        td_die("td_dns_add_a: no server or no name");
    if (!ipv4 || inet_pton(AF_INET, ipv4, &addr) != 1) {
        fprintf(stderr, "td_dns_add_a: \"%s\" (for %s) is not an IPv4 address\n",
                ipv4 ? ipv4 : "(null)", name);
        abort();
    }
    pthread_mutex_lock(&d->lock);
    n = name_find(d, name);
    if (!n) {
        n = calloc(1, sizeof(*n));
        len = strlen(name);
        if (!n || !(n->name = malloc(len + 1)))
            td_die("out of memory");
        memcpy(n->name, name, len + 1);
        if (len && n->name[len - 1] == '.')
            n->name[len - 1] = '\0';
        n->next = d->names;
        d->names = n;
    }
    grown = realloc(n->addrs, (size_t)(n->naddrs + 1) * sizeof(*grown));
    if (!grown)
        td_die("out of memory");
    n->addrs = grown;
    n->addrs[n->naddrs++] = addr;
    pthread_mutex_unlock(&d->lock);
}

unsigned td_dns_queries(td_dns *d)
{
    unsigned n;

    if (!d)
        return 0;
    pthread_mutex_lock(&d->lock);
    n = d->queries;
    pthread_mutex_unlock(&d->lock);
    return n;
}

void td_dns_free(td_dns *d)
{
    struct td_name *n;

    if (!d)
        return;
    evdns_close_server_port(d->port);
    while ((n = d->names) != NULL) {
        d->names = n->next;
        free(n->addrs);
        free(n->name);
        free(n);
    }
    pthread_mutex_destroy(&d->lock);
    free(d);
}
