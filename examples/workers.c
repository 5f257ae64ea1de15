/*
 * gapi worker-threads demo: a program with no event loop of its own.
 *
 * gapi_client_start runs one client on its own loop thread; W worker threads
 * share it. Each worker makes N blocking calls (gapi_request_execute, like
 * Python's execute()) and then fans out F calls at once with futures and
 * waits for all of them. All of it goes over at most 8 keep-alive
 * connections, whatever the number of threads.
 *
 *   examples/workers [-w workers] [-n calls per worker] [-f fan-out]
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

static gapi_client *cli;
static char url[160];
static int calls = 200, fanout = 32;
static long ok_total, failed_total;

static int check(gapi_future *f)
{
    const gapi_response *resp = gapi_future_response(f);
    struct json_object *items;

    if (gapi_future_error(f) != GAPI_OK || gapi_response_status(resp) != 200 ||
        !json_object_object_get_ex(gapi_response_json(resp), "items", &items)) {
        fprintf(stderr, "call failed: %s: %s\n", gapi_error_name(gapi_future_error(f)),
                gapi_future_errmsg(f));
        return 0;
    }
    return 1;
}

static void *worker(void *arg)
{
    gapi_future **fs = calloc((size_t)fanout, sizeof(*fs));
    long ok = 0, failed = 0;
    int n = 0;

    (void)arg;
    /* Blocking calls, one at a time. */
    for (int i = 0; i < calls; i++) {
        gapi_request *req;
        gapi_future *f;

        if (gapi_request_new(&req, cli, "GET", url) != GAPI_OK)
            break;
        if (gapi_request_execute(req, 10000, &f) != GAPI_OK) {
            gapi_request_free(req); /* not accepted: still ours */
            failed++;
            continue;
        }
        check(f) ? ok++ : failed++;
        gapi_future_free(f);
    }
    /* Fan out, then wait for all. */
    for (int i = 0; i < fanout; i++) {
        gapi_request *req;
        if (gapi_request_new(&req, cli, "GET", url) == GAPI_OK &&
            gapi_request_submit_future(req, &fs[n]) == GAPI_OK)
            n++;
    }
    if (gapi_future_wait_all(fs, (size_t)n, 10000) != GAPI_OK)
        fprintf(stderr, "fan-out: not all done in 10 s\n");
    for (int i = 0; i < n; i++) {
        gapi_future_done(fs[i]) && check(fs[i]) ? ok++ : failed++;
        gapi_future_free(fs[i]);
    }
    free(fs);
    __atomic_fetch_add(&ok_total, ok, __ATOMIC_RELAXED);
    __atomic_fetch_add(&failed_total, failed, __ATOMIC_RELAXED);
    return NULL;
}

static struct event_base *srv_base;

static void *server_thread(void *arg)
{
    (void)arg;
    event_base_dispatch(srv_base);
    return NULL;
}

static void stop_server(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    gapi_client_stats st;
    pthread_t srv_th, *th;
    int workers = 16, opt;
    ts_server *srv;
    char err[256];
    double t0, el;

    while ((opt = getopt(argc, argv, "w:n:f:")) != -1) {
        if (opt == 'w')
            workers = atoi(optarg);
        else if (opt == 'n')
            calls = atoi(optarg);
        else if (opt == 'f')
            fanout = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-w workers] [-n calls] [-f fan-out]\n", argv[0]);
            return 2;
        }
    }
    if (workers < 1 || calls < 0 || fanout < 0)
        return 2;

    /* The bundled test server, on its own thread (only for this demo; the
     * client itself needs no evthread_use_pthreads). */
    evthread_use_pthreads();
    srv_base = event_base_new();
    if (!(srv = ts_server_new(srv_base, NULL)))
        return 1;
    ts_route(srv, "/storage/v1/b/demo/o", 200, "Content-Type: application/json\r\n",
             "{\"kind\":\"storage#objects\",\"items\":[{\"name\":\"a\"},{\"name\":\"b\"}]}");
    snprintf(url, sizeof(url), "%s/storage/v1/b/demo/o", ts_server_origin(srv));
    pthread_create(&srv_th, NULL, server_thread, NULL);

    co.ca_pem = ts_server_ca_pem(srv);
    co.application_name = "gapi-workers-demo/1";
    if (gapi_client_start(&cli, &co, err, sizeof(err)) != GAPI_OK) {
        fprintf(stderr, "gapi_client_start: %s\n", err);
        return 1;
    }
    printf("gapi %s workers demo: %d threads x (%d blocking calls + %d fanned out), one client\n",
           gapi_version_string(), workers, calls, fanout);
    th = calloc((size_t)workers, sizeof(*th));
    t0 = now_s();
    for (int i = 0; i < workers; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < workers; i++)
        pthread_join(th[i], NULL);
    el = now_s() - t0;
    gapi_client_get_stats(cli, &st);
    printf("summary: %ld ok, %ld failed in %.3f s = %.0f calls/s; %llu connections opened for "
           "%d threads\n",
           ok_total, failed_total, el, (double)(ok_total + failed_total) / el,
           (unsigned long long)st.connections_opened, workers);
    gapi_client_shutdown(cli, 1000);
    gapi_client_free(cli);
    free(th);

    event_base_once(srv_base, -1, EV_TIMEOUT, stop_server, srv_base, NULL);
    pthread_join(srv_th, NULL);
    ts_server_free(srv);
    event_base_free(srv_base);
    return failed_total ? 1 : 0;
}
