/*
 * Allocation failure along a whole request's path: for every N, the Nth
 * allocation made through gapi's allocator fails, and a client is made, a
 * GET sent to the local HTTPS server, the loop run and the client freed.
 * Each run must end cleanly: client_new or send refuses with GAPI_ENOMEM,
 * or the callback runs exactly once (ok, or an error), and nothing is left
 * on the base. Leaks are for ASan and valgrind to find. The sweep ends at
 * the first N that no longer fails anything.
 */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "gapi.h"
#include "server.h"
#include "tap.h"
#include "util.h"

static long alloc_n, fail_at;
static int failed_one;

/* Atomic: in the owned sweep both the loop thread and this one allocate. */
static int should_fail(void)
{
    if (__atomic_add_fetch(&alloc_n, 1, __ATOMIC_SEQ_CST) == fail_at) {
        __atomic_store_n(&failed_one, 1, __ATOMIC_SEQ_CST);
        return 1;
    }
    return 0;
}

static void *t_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n);
}

typedef struct run {
    int calls, err, status;
} run;

static void on_done(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    run *r = arg;
    (void)req;
    r->calls++;
    r->err = err;
    r->status = resp ? gapi_response_status(resp) : 0;
}

/* The same through the cross-thread path: a client on its own loop
 * thread, a blocking call from this thread. The test server keeps running
 * on this thread's base meanwhile, on a helper thread. */
static struct event_base *srv_base;
static volatile int srv_stop;

static void *serve(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&srv_stop, __ATOMIC_ACQUIRE))
        event_base_loop(srv_base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(200);
    return NULL;
}

static void owned_sweep(ts_server *srv, const char *url)
{
    pthread_t th;
    int runs = 0, bad = 0, ok_runs = 0;

    (void)srv;
    pthread_create(&th, NULL, serve, NULL);
    gapi_set_allocator(t_malloc, t_realloc, free);
    for (fail_at = 1; fail_at < 10000; fail_at++) {
        gapi_client_options o = GAPI_CLIENT_OPTIONS_INIT;
        gapi_client *c = NULL;
        gapi_request *req = NULL;
        gapi_future *f = NULL;
        int rc;

        __atomic_store_n(&alloc_n, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&failed_one, 0, __ATOMIC_SEQ_CST);
        runs++;
        o.ca_pem = ts_server_ca_pem(srv);
        if ((rc = gapi_client_start(&c, &o, NULL, 0)) != GAPI_OK) {
            bad += rc != GAPI_ENOMEM;
            continue;
        }
        rc = gapi_request_new(&req, c, "GET", url);
        if (rc == GAPI_OK && (rc = gapi_request_execute(req, 5000, &f)) != GAPI_OK)
            gapi_request_free(req);
        if (rc == GAPI_OK) {
            if (!gapi_future_done(f))
                bad++;
            ok_runs += gapi_future_error(f) == GAPI_OK;
            gapi_future_free(f);
        } else {
            bad += rc != GAPI_ENOMEM;
        }
        gapi_client_free(c);
        if (!__atomic_load_n(&failed_one, __ATOMIC_SEQ_CST))
            break;
    }
    gapi_set_allocator(malloc, realloc, free);
    __atomic_store_n(&srv_stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    ok(runs > 10, "owned: the sweep covered the path (%d allocations)", runs - 1);
    is_int(bad, 0, "owned: every failure was a clean GAPI_ENOMEM or a done future");
    ok(ok_runs >= 1, "owned: the last run succeeded");
}

int main(void)
{
    struct event_base *base;
    ts_server *srv;
    char url[256];
    int runs = 0, bad = 0, refused = 0, failed_cb = 0, ok_runs = 0, leftovers = 0, idle;

    signal(SIGPIPE, SIG_IGN);
    tu_watchdog(300);
    base = srv_base = event_base_new();
    srv = ts_server_new(base, NULL);
    if (!srv) {
        printf("Bail out! test server did not start\n");
        return 1;
    }
    ts_route(srv, "/json", 200, "Content-Type: application/json\r\n",
             "{\"kind\":\"storage#object\",\"name\":\"a/"
             "b\",\"size\":\"12\",\"metadata\":{\"k\":\"v\"}}");
    snprintf(url, sizeof(url), "%s/json?x=1", ts_server_origin(srv));
    idle = tu_events_left(base); /* the server's own (its listener) */
    gapi_set_allocator(t_malloc, t_realloc, free);

    for (fail_at = 1; fail_at < 10000; fail_at++) {
        gapi_client_options o = GAPI_CLIENT_OPTIONS_INIT;
        gapi_client *c = NULL;
        gapi_request *req = NULL;
        run r = {0, 0, 0};
        int rc;

        alloc_n = 0;
        failed_one = 0;
        runs++;
        o.ca_pem = ts_server_ca_pem(srv);
        rc = gapi_client_new(&c, base, &o, NULL, 0);
        if (rc != GAPI_OK) {
            refused++;
            bad += rc != GAPI_ENOMEM;
            continue;
        }
        rc = gapi_request_new(&req, c, "GET", url);
        if (rc == GAPI_OK)
            rc = gapi_request_add_header(req, "X-Test", "1");
        if (rc == GAPI_OK && (rc = gapi_request_send(req, on_done, &r)) != GAPI_OK)
            gapi_request_free(req);
        else if (rc != GAPI_OK && req)
            gapi_request_free(req);
        if (rc != GAPI_OK) {
            refused++;
            bad += rc != GAPI_ENOMEM;
        } else {
            tu_run_until(base, &r.calls, 1, 5000);
            if (r.calls != 1)
                bad++;
            else if (r.err)
                failed_cb++;
            else
                ok_runs += r.status == 200;
        }
        gapi_client_free(c);
        /* A client that failed must still complete in one pass. */
        if (r.calls > 1)
            bad++;
        tu_run_for(base, 20); /* let the server see the connection close */
        leftovers += tu_events_left(base) != idle;
        if (!failed_one)
            break; /* N beyond every allocation of the path: done */
    }
    gapi_set_allocator(malloc, realloc, free);
    owned_sweep(srv, url);
    diag("%d runs: %d refused with GAPI_ENOMEM, %d callbacks with an error, %d ok", runs, refused,
         failed_cb, ok_runs);
    ok(runs > 10, "the sweep covered the path (%d allocations)", runs - 1);
    is_int(bad, 0, "every failure was a clean GAPI_ENOMEM or one callback");
    is_int(leftovers, 0, "no client events left on the base after any run");
    ok(ok_runs >= 1, "the last run, with no failure, succeeded");
    ts_server_free(srv);
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    return tap_done();
}
