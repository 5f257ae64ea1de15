/*
 * Connections and origins (transport-private; the layers above use pool.h).
 *
 * A connection goes RESOLVING -> CONNECTING -> HANDSHAKING (TLS only) ->
 * ACTIVE <-> IDLE, and is destroyed from any state. While it is being
 * opened it is bound to the one transfer that caused it to be opened; that
 * transfer gets its errors. An idle connection keeps reading so that a close
 * by the server is noticed before the connection is handed out again.
 */
#ifndef GAPI_TRANSPORT_CONN_H
#define GAPI_TRANSPORT_CONN_H

#include <openssl/ssl.h>
#include <sys/queue.h>

#include "transport/http_parser.h"
#include "transport/inflate.h"
#include "transport/pool.h"
#include "tls/tls.h"

struct bufferevent;
struct evutil_addrinfo;
struct gapi__dnsq;

typedef enum gapi__conn_state {
    GAPI__CONN_RESOLVING,
    GAPI__CONN_CONNECTING,
    GAPI__CONN_HANDSHAKING,
    GAPI__CONN_IDLE,
    GAPI__CONN_ACTIVE
} gapi__conn_state;

struct gapi__conn {
    gapi__pool *pool;
    gapi__origin *origin;
    gapi__conn_state state;
    gapi__xfer *x; /* bound transfer, if any */

    struct gapi__dnsq *dnsq;
    struct evutil_addrinfo *addrs, *next_addr;
    int fd; /* during CONNECTING only */
    struct event *connect_ev;
    struct event *timer; /* connect timeout, then idle timeout */
    struct bufferevent *bev;
    SSL *ssl;

    unsigned served; /* responses completed on this connection */
    int got_bytes;   /* response bytes seen for x */
    int upload_done;
    long long upload_sent;
    int cb_err; /* error raised inside a parser callback */
    gapi__http_parser parser;
    gapi__inflate *inflate;
    char connect_err[192];

    TAILQ_ENTRY(gapi__conn) link;
    TAILQ_ENTRY(gapi__conn) idle_link;
};

struct gapi__origin {
    gapi__pool *pool;
    char *key;
    char *host;
    unsigned short port;
    int tls;
    int host_is_ip;
    unsigned nconns;
    unsigned nidle;
    TAILQ_HEAD(, gapi__conn) conns;
    TAILQ_HEAD(, gapi__conn) idle;
    TAILQ_HEAD(, gapi__xfer) waitq;
    SSL_SESSION *session; /* last session the server gave us */
    TAILQ_ENTRY(gapi__origin) link;
};

struct gapi__pool {
    gapi__pool_config cfg;
    TAILQ_HEAD(, gapi__origin) origins;
    gapi__pool_stats stats;
};

/* conn.c */
int gapi__conn_open(gapi__origin *o, gapi__xfer *x);
void gapi__conn_start(gapi__conn *c, gapi__xfer *x);
void gapi__conn_destroy(gapi__conn *c);
int gapi__conn_on_tls_session(SSL *ssl, SSL_SESSION *sess);

/* pool.c, for conn.c */
void gapi__pool_finish(gapi__xfer *x, int err);
void gapi__pool_conn_reusable(gapi__conn *c);
void gapi__pool_conn_gone(gapi__origin *o);
void gapi__pool_replay(gapi__xfer *x);

#endif
