/*
 * gapi demo: start the bundled local HTTPS server (its own thread and loop),
 * then run N GETs through one gapi client on this thread's loop, C at a time,
 * printing progress and a summary.
 *
 *   examples/demo [-n requests] [-c concurrency]
 *
 * Everything stays on 127.0.0.1, with a CA made at start-up; gapi verifies
 * the server's certificate against it like any other.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <json-c/json.h>

#include "gapi.h"
#include "../test/server.h"

struct demo {
    struct event_base *base;
    gapi_client *cli;
    const char *url;
    int total, sent, done, failed, conc;
    int next_report;
    double *lat;
    long long items;
};

struct one {
    struct demo *d;
    struct timespec t0;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void send_one(struct demo *d);

static void on_response(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    struct one *o = arg;
    struct demo *d = o->d;
    struct json_object *items;
    double t0 = (double)o->t0.tv_sec + (double)o->t0.tv_nsec / 1e9;

    d->lat[d->done] = now_s() - t0;
    d->done++;
    if (err || gapi_response_status(resp) != 200) {
        d->failed++;
        if (d->failed <= 5)
            fprintf(stderr, "request failed: %s: %s\n", gapi_error_name(err),
                    gapi_request_errmsg(req));
    } else if (json_object_object_get_ex(gapi_response_json(resp), "items", &items)) {
        d->items += (long long)json_object_array_length(items);
    }
    free(o);
    if (d->done * 10 >= d->next_report * d->total) {
        printf("  %3d%%  %d/%d done, %d failed\n", d->next_report * 10, d->done, d->total,
               d->failed);
        fflush(stdout);
        d->next_report++;
    }
    if (d->sent < d->total)
        send_one(d);
    else if (d->done == d->total)
        event_base_loopbreak(d->base);
}

static void send_one(struct demo *d)
{
    gapi_request *req;
    struct one *o = malloc(sizeof(*o));
    int rc;

    o->d = d;
    clock_gettime(CLOCK_MONOTONIC, &o->t0);
    d->sent++;
    rc = gapi_request_new(&req, d->cli, "GET", d->url);
    if (rc == GAPI_OK && (rc = gapi_request_send(req, on_response, o)) != GAPI_OK)
        gapi_request_free(req);
    if (rc != GAPI_OK) {
        fprintf(stderr, "send: %s\n", gapi_strerror(rc));
        exit(1);
    }
}

static struct event_base *srv_base;

static void *server_thread(void *arg)
{
    (void)arg;
    event_base_dispatch(srv_base);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void stop_server(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    struct demo d;
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    gapi_client_stats st;
    ts_server *srv;
    pthread_t th;
    char url[128], err[256];
    double t0, el;
    int opt, i;
    static const char *body =
        "{\"kind\":\"storage#objects\",\"items\":[{\"name\":\"logs/2026-11-24/a.json\","
        "\"bucket\":\"demo\",\"size\":\"1024\"},{\"name\":\"logs/2026-11-24/b.json\","
        "\"bucket\":\"demo\",\"size\":\"2048\"}]}";

    memset(&d, 0, sizeof(d));
    d.total = 2000;
    d.conc = 64;
    while ((opt = getopt(argc, argv, "n:c:")) != -1) {
        if (opt == 'n')
            d.total = atoi(optarg);
        else if (opt == 'c')
            d.conc = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-n requests] [-c concurrency]\n", argv[0]);
            return 2;
        }
    }
    if (d.total < 1 || d.conc < 1)
        return 2;

    evthread_use_pthreads(); /* two loops on two threads; each is used by one */
    srv_base = event_base_new();
    srv = ts_server_new(srv_base, NULL);
    if (!srv)
        return 1;
    ts_route(srv, "/storage/v1/b/demo/o", 200, "Content-Type: application/json\r\n", body);
    snprintf(url, sizeof(url), "%s/storage/v1/b/demo/o?prefix=logs%%2F", ts_server_origin(srv));
    pthread_create(&th, NULL, server_thread, NULL);

    d.base = event_base_new();
    d.url = url;
    d.lat = calloc((size_t)d.total, sizeof(double));
    co.ca_pem = ts_server_ca_pem(srv);
    if (gapi_client_new(&d.cli, d.base, &co, err, sizeof(err)) != GAPI_OK) {
        fprintf(stderr, "gapi_client_new: %s\n", err);
        return 1;
    }
    printf("gapi %s demo: %d GETs of %s, %d in flight, one loop\n", gapi_version_string(), d.total,
           url, d.conc);
    d.next_report = 1;
    t0 = now_s();
    for (i = 0; i < d.conc && d.sent < d.total; i++)
        send_one(&d);
    event_base_dispatch(d.base);
    el = now_s() - t0;

    gapi_client_get_stats(d.cli, &st);
    qsort(d.lat, (size_t)d.done, sizeof(double), cmp_double);
    printf("summary: %d requests, %d ok, %d failed in %.3f s = %.0f requests/s\n", d.done,
           d.done - d.failed, d.failed, el, d.done / el);
    printf("         latency p50 %.2f ms, p99 %.2f ms; %llu connections opened, "
           "%llu reuses, %llu TLS resumptions; %lld items parsed\n",
           d.lat[d.done / 2] * 1e3, d.lat[(size_t)(d.done * 0.99)] * 1e3,
           (unsigned long long)st.connections_opened, (unsigned long long)st.connections_reused,
           (unsigned long long)st.tls_resumed, d.items);
    gapi_client_free(d.cli);
    event_base_free(d.base);
    free(d.lat);

    event_base_once(srv_base, -1, EV_TIMEOUT, stop_server, srv_base, NULL);
    pthread_join(th, NULL);
    ts_server_free(srv);
    event_base_free(srv_base);
    return d.failed ? 1 : 0;
}
