/*
 * The cross-thread side of the client: submit / submit_future / execute
 * from worker threads, cancel from any thread, back-pressure, shutdown with
 * and without drain while threads are still submitting, both modes (the
 * caller's loop and gapi_client_start's own thread), and the deadlock
 * refusal on the loop thread.
 *
 * The HTTPS test server runs on its own thread and base. It answers /echo
 * with the request's query string, so each response proves which request it
 * belongs to. No evthread_use_pthreads() anywhere: the library must not need
 * it (the server thread is stopped through a pipe).
 *
 * Exactly once: every request carries an id; callbacks and futures count
 * per id, and each count must be 1. GAPI_STRESS_N sets the requests per
 * thread of the stress test (default 5000, 16 threads).
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <json-c/json.h>

#include "gapi.h"
#include "server.h"
#include "tap.h"
#include "util.h"

/* ------------------------------------------------------------ server thread */

static struct {
    struct event_base *base;
    ts_server *srv;
    pthread_t thread;
    int stop_pipe[2];
    struct event *stop_ev;
    char origin[128];
} S;

static void echo_handler(struct evhttp_request *req, void *arg)
{
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    struct evbuffer *b = evbuffer_new();

    (void)arg;
    evbuffer_add_printf(b, "{\"q\":\"%s\"}", q ? q : "");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    char c;
    (void)what;
    (void)arg;
    if (read(fd, &c, 1) == 1)
        event_base_loopbreak(S.base);
}

static void *server_main(void *arg)
{
    (void)arg;
    event_base_dispatch(S.base);
    return NULL;
}

static void server_start(void)
{
    S.base = event_base_new();
    S.srv = ts_server_new(S.base, NULL);
    if (!S.srv) {
        printf("Bail out! test server did not start\n");
        exit(1);
    }
    ts_route_handler(S.srv, "/echo", echo_handler, NULL);
    ts_route(S.srv, "/slow", 200, "Content-Type: application/json\r\n", "{\"slow\":true}");
    ts_route_delay(S.srv, "/slow", 300);
    snprintf(S.origin, sizeof(S.origin), "%s", ts_server_origin(S.srv));
    if (pipe(S.stop_pipe) != 0)
        exit(1);
    S.stop_ev = event_new(S.base, S.stop_pipe[0], EV_READ, on_stop, NULL);
    event_add(S.stop_ev, NULL);
    pthread_create(&S.thread, NULL, server_main, NULL);
}

static void server_stop(void)
{
    if (write(S.stop_pipe[1], "x", 1) != 1)
        return;
    pthread_join(S.thread, NULL);
    event_free(S.stop_ev);
    ts_server_free(S.srv);
    event_base_loop(S.base, EVLOOP_NONBLOCK);
    event_base_free(S.base);
    close(S.stop_pipe[0]);
    close(S.stop_pipe[1]);
}

static gapi_client_options client_opts(void)
{
    gapi_client_options o = GAPI_CLIENT_OPTIONS_INIT;
    o.ca_pem = ts_server_ca_pem(S.srv);
    return o;
}

static gapi_request *make_req(gapi_client *c, const char *path, long id)
{
    char url[256];
    gapi_request *r = NULL;

    snprintf(url, sizeof(url), "%s%s?id=%ld", S.origin, path, id);
    if (gapi_request_new(&r, c, "GET", url) != GAPI_OK)
        return NULL;
    return r;
}

/* Does resp answer request id? */
static int echoes(const gapi_response *resp, long id)
{
    char want[64];
    struct json_object *q;

    snprintf(want, sizeof(want), "id=%ld", id);
    return resp && gapi_response_status(resp) == 200 &&
           json_object_object_get_ex(gapi_response_json(resp), "q", &q) &&
           strcmp(json_object_get_string(q), want) == 0;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ------------------------------------------------------------ bookkeeping */

typedef struct tally {
    int *count;   /* per id: completions seen (callbacks + futures) */
    int *errs;    /* per id: last error */
    int bad_echo; /* responses that answered another request */
    int on_wrong_thread;
    pthread_t loop;
    int ok, canceled, shutdown, other;
} tally;

static void tally_init(tally *t, size_t n)
{
    memset(t, 0, sizeof(*t));
    t->count = calloc(n, sizeof(int));
    t->errs = calloc(n, sizeof(int));
}

static void tally_free(tally *t)
{
    free(t->count);
    free(t->errs);
}

/* The per-id count is bumped last (release), so a reader that sees it
 * (acquire) also sees the rest. */
static void tally_result(tally *t, long id, int err, const gapi_response *resp)
{
    __atomic_store_n(&t->errs[id], err, __ATOMIC_RELAXED);
    if (err == GAPI_OK) {
        __atomic_fetch_add(&t->ok, 1, __ATOMIC_RELAXED);
        if (!echoes(resp, id))
            __atomic_fetch_add(&t->bad_echo, 1, __ATOMIC_RELAXED);
    } else if (err == GAPI_ECANCELED) {
        __atomic_fetch_add(&t->canceled, 1, __ATOMIC_RELAXED);
    } else if (err == GAPI_ESHUTDOWN) {
        __atomic_fetch_add(&t->shutdown, 1, __ATOMIC_RELAXED);
    } else {
        __atomic_fetch_add(&t->other, 1, __ATOMIC_RELAXED);
    }
    __atomic_fetch_add(&t->count[id], 1, __ATOMIC_RELEASE);
}

/* Callback arguments carry (tally, id) packed in a small struct. */
typedef struct cb_arg {
    tally *t;
    long id;
} cb_arg;

static void on_done(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    cb_arg *a = arg;

    (void)req;
    if (!pthread_equal(pthread_self(), a->t->loop))
        __atomic_fetch_add(&a->t->on_wrong_thread, 1, __ATOMIC_RELAXED);
    tally_result(a->t, a->id, err, resp);
}

static void record_thread(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    pthread_t *out = arg;
    (void)req;
    (void)err;
    (void)resp;
    *out = pthread_self();
    __atomic_store_n((int *)(out + 1), 1, __ATOMIC_RELEASE);
}

/* The thread an owned client's callbacks run on (one request, from here). */
static pthread_t loop_thread_of(gapi_client *c)
{
    pthread_t th[2];
    memset(th, 0, sizeof(th));
    gapi_request_submit(make_req(c, "/echo", 0), record_thread, th);
    for (long end = now_ms() + 5000;
         !__atomic_load_n((int *)(th + 1), __ATOMIC_ACQUIRE) && now_ms() < end;)
        usleep(500);
    return th[0];
}

static int count_exactly_once(const tally *t, long n, long *first_bad)
{
    for (long i = 0; i < n; i++)
        if (t->count[i] != 1) {
            *first_bad = i;
            return 0;
        }
    return 1;
}

/* ------------------------------------------------------------ stress */

typedef struct worker {
    gapi_client *c;
    tally *t;
    long first_id, n;
    cb_arg *args;
    int submit_errors, unexpected;
} worker;

/* A mix per id: callbacks, blocking calls, fan-out futures waited together,
 * futures cancelled at once, and futures dropped unread. */
static void *stress_worker(void *arg)
{
    worker *w = arg;
    gapi_future *batch[8];
    long batch_id[8];
    int nb = 0;

    for (long k = 0; k < w->n; k++) {
        long id = w->first_id + k;
        gapi_request *r = make_req(w->c, "/echo", id);
        gapi_future *f = NULL;
        int rc;

        if (!r) {
            w->submit_errors++;
            continue;
        }
        switch (k % 8) {
        case 0:
        case 1:
        case 2:
            w->args[k].t = w->t;
            w->args[k].id = id;
            rc = gapi_request_submit(r, on_done, &w->args[k]);
            break;
        case 3:
            rc = gapi_request_execute(r, 0, &f);
            if (rc == GAPI_OK) {
                tally_result(w->t, id, gapi_future_error(f), gapi_future_response(f));
                gapi_future_free(f);
            }
            break;
        case 4:
        case 5:
            rc = gapi_request_submit_future(r, &f);
            if (rc == GAPI_OK) {
                batch[nb] = f;
                batch_id[nb++] = id;
            }
            break;
        case 6:
            rc = gapi_request_submit_future(r, &f);
            if (rc == GAPI_OK) {
                int crc = gapi_future_cancel(f);
                if (gapi_future_wait(f, 0) != GAPI_OK)
                    w->unexpected++;
                tally_result(w->t, id, gapi_future_error(f), gapi_future_response(f));
                /* cancel lost the race only if the request was already done */
                if (crc == GAPI_OK && gapi_future_error(f) != GAPI_ECANCELED &&
                    gapi_future_error(f) != GAPI_OK)
                    w->unexpected++;
                gapi_future_free(f);
            }
            break;
        default:
            /* Dropped unread: the library cancels and frees it. Counted
             * as done here; the client's stats check the rest. */
            rc = gapi_request_submit_future(r, &f);
            if (rc == GAPI_OK) {
                __atomic_fetch_add(&w->t->count[id], 1, __ATOMIC_RELAXED);
                gapi_future_free(f);
            }
            break;
        }
        if (rc != GAPI_OK) {
            w->submit_errors++;
            gapi_request_free(r);
        }
        if (nb == 8 || (nb && k == w->n - 1)) {
            if (gapi_future_wait_all(batch, (size_t)nb, 0) != GAPI_OK)
                w->unexpected++;
            for (int i = 0; i < nb; i++) {
                tally_result(w->t, batch_id[i], gapi_future_error(batch[i]),
                             gapi_future_response(batch[i]));
                gapi_future_free(batch[i]);
            }
            nb = 0;
        }
    }
    return NULL;
}

static void wait_stats_settle(gapi_client *c, unsigned ms)
{
    gapi_client_stats st;
    long end = now_ms() + ms;

    do {
        gapi_client_get_stats(c, &st);
        if (st.requests_completed == st.requests_started)
            return;
        usleep(2000);
    } while (now_ms() < end);
}

static void test_stress_owned(void)
{
    enum { THREADS = 16 };
    long per = getenv("GAPI_STRESS_N") ? atol(getenv("GAPI_STRESS_N")) : 5000;
    long total = per * THREADS;
    gapi_client_options o = client_opts();
    gapi_client *c = NULL;
    pthread_t th[THREADS];
    worker w[THREADS];
    gapi_client_stats st;
    tally t;
    long bad = -1;
    int serr = 0, unexpected = 0;
    char err[256];
    unsigned conns0 = ts_server_connections(S.srv);

    tally_init(&t, (size_t)total);
    is_int(gapi_client_start(&c, &o, err, sizeof(err)), GAPI_OK, "stress: owned client starts");
    t.loop = loop_thread_of(c); /* the thread every callback must run on */
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){c, &t, i * per, per, calloc((size_t)per, sizeof(cb_arg)), 0, 0};
        pthread_create(&th[i], NULL, stress_worker, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        serr += w[i].submit_errors;
        unexpected += w[i].unexpected;
    }
    /* Callback-mode requests may still be completing on the loop. */
    for (long end = now_ms() + 30000; now_ms() < end;) {
        long seen = 0;
        for (long i = 0; i < total; i++)
            seen += __atomic_load_n(&t.count[i], __ATOMIC_ACQUIRE) != 0;
        if (seen == total)
            break;
        usleep(5000);
    }
    wait_stats_settle(c, 10000);
    gapi_client_get_stats(c, &st);
    is_int(serr, 0, "stress: every submit accepted");
    is_int(unexpected, 0, "stress: every wait returned done, every cancel ended sensibly");
    ok(count_exactly_once(&t, total, &bad), "stress: %ld requests, each completed exactly once%s",
       total, bad >= 0 ? " (NOT: see diag)" : "");
    if (bad >= 0)
        diag("id %ld completed %d times", bad, t.count[bad]);
    is_int(t.bad_echo, 0, "stress: every response answers its own request");
    is_int(t.other, 0, "stress: no error other than cancel");
    ok(t.ok > total / 2, "stress: %d ok, %d cancelled", t.ok, t.canceled);
    ok(st.requests_started == st.requests_completed && st.requests_started == (uint64_t)total + 1,
       "stress: client started %llu, completed %llu (all %ld submitted + 1)",
       (unsigned long long)st.requests_started, (unsigned long long)st.requests_completed, total);
    /* A cancel closes the connection its request was on; otherwise the
     * pool's 8 connections carry everything. */
    ok(st.connections_open <= 8 &&
           ts_server_connections(S.srv) - conns0 <= 8u + (unsigned)t.canceled,
       "stress: %u connections opened for %d cancels, %u open (<= 8)",
       ts_server_connections(S.srv) - conns0, t.canceled, st.connections_open);
    gapi_client_free(c);
    for (int i = 0; i < THREADS; i++)
        free(w[i].args);
    tally_free(&t);
}

/* ------------------------------------------------------------ caller's loop */

typedef struct submitter {
    gapi_client *c;
    tally *t;
    long first_id, n;
    cb_arg *args;
    int accepted, refused, other;
    volatile int *go;
} submitter;

static long accepted_so_far;
static int shutdown_called;

/* Submit until the client refuses; every refusal must be GAPI_ESHUTDOWN. */
static void *submit_until_refused(void *arg)
{
    submitter *s = arg;

    while (!__atomic_load_n(s->go, __ATOMIC_ACQUIRE))
        ;
    for (long k = 0; k < s->n; k++) {
        long id = s->first_id + k;
        gapi_request *r = make_req(s->c, "/echo", id);
        int rc;

        s->args[k].t = s->t;
        s->args[k].id = id;
        rc = gapi_request_submit(r, on_done, &s->args[k]);
        if (rc == GAPI_OK) {
            s->accepted++;
            __atomic_fetch_add(&accepted_so_far, 1, __ATOMIC_RELAXED);
        } else {
            gapi_request_free(r);
            if (rc == GAPI_ESHUTDOWN)
                s->refused++;
            else
                s->other++;
            __atomic_store_n(&s->t->count[id], -1000, __ATOMIC_RELAXED); /* never sent */
            if (rc == GAPI_ESHUTDOWN)
                break;
        }
        if (k % 64 == 63)
            usleep(100);
        /* Half-way, wait for the shutdown: every thread is then sure to see
         * a refusal, while the others race it. */
        if (k == s->n / 2)
            while (!__atomic_load_n(&shutdown_called, __ATOMIC_ACQUIRE))
                usleep(200);
    }
    return NULL;
}

typedef struct shutdown_case {
    int owned;
    unsigned drain_ms;
} shutdown_case;

/* 16 threads submit; after some requests the client is shut down (from a
 * worker thread in the caller's-loop mode, from main in owned mode). */
static void test_shutdown_while_submitting(shutdown_case sc)
{
    enum { THREADS = 16 };
    long PER = getenv("GAPI_STRESS_N") ? atol(getenv("GAPI_STRESS_N")) : 4000;
    long total = (long)THREADS * PER;
    gapi_client_options o = client_opts();
    gapi_client *c = NULL;
    struct event_base *base = NULL;
    pthread_t th[THREADS];
    submitter s[THREADS];
    tally t;
    volatile int go = 0;
    int accepted = 0, refused = 0, other = 0, never = 0, bad = 0;
    char err[256];
    const char *mode = sc.owned ? "owned" : "caller's loop";

    tally_init(&t, (size_t)total);
    __atomic_store_n(&accepted_so_far, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&shutdown_called, 0, __ATOMIC_RELAXED);
    if (sc.drain_ms) {
        /* Bound what is accepted so the drain is short whatever the speed
         * (sanitizers, valgrind); blocked submitters must be woken by the
         * shutdown with GAPI_ESHUTDOWN. */
        o.max_pending = 500;
        o.flags |= GAPI_CLIENT_SUBMIT_BLOCKS;
    }
    if (sc.owned) {
        gapi_client_start(&c, &o, err, sizeof(err));
        t.loop = loop_thread_of(c);
    } else {
        base = event_base_new();
        gapi_client_new(&c, base, &o, err, sizeof(err));
        t.loop = pthread_self();
    }
    for (int i = 0; i < THREADS; i++) {
        s[i] = (submitter){c, &t, i * PER, PER, calloc((size_t)PER, sizeof(cb_arg)), 0, 0, 0, &go};
        pthread_create(&th[i], NULL, submit_until_refused, &s[i]);
    }
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    if (sc.owned) {
        /* Shut down when a quarter is in: the workers are mid-flight. */
        for (long end = now_ms() + 20000;
             __atomic_load_n(&accepted_so_far, __ATOMIC_RELAXED) < total / 8 && now_ms() < end;)
            usleep(500);
        gapi_client_shutdown(c, sc.drain_ms);
        __atomic_store_n(&shutdown_called, 1, __ATOMIC_RELEASE);
    } else {
        /* Run the loop a little, then shut down from this thread while the
         * workers keep going, and keep running the loop: dispatch must
         * return by itself once the client has nothing left. */
        for (long end = now_ms() + 20000;
             __atomic_load_n(&accepted_so_far, __ATOMIC_RELAXED) < total / 8 && now_ms() < end;)
            tu_run_for(base, 1);
        gapi_client_shutdown(c, sc.drain_ms);
        __atomic_store_n(&shutdown_called, 1, __ATOMIC_RELEASE);
        long t0 = now_ms();
        event_base_dispatch(base);
        ok(now_ms() - t0 < 10000, "shutdown (%s, drain %u): dispatch returned by itself", mode,
           sc.drain_ms);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        accepted += s[i].accepted;
        refused += s[i].refused;
        other += s[i].other;
    }
    gapi_client_free(c); /* owned: callbacks may still be running until this returns */
    for (int i = 0; i < THREADS; i++)
        free(s[i].args);
    for (long i = 0; i < total; i++) {
        if (t.count[i] == -1000 || t.count[i] == 0)
            never += t.count[i] == -1000;
        if (t.count[i] != 1 && t.count[i] != -1000 && t.count[i] != 0)
            bad++;
    }
    {
        int completed = t.ok + t.canceled + t.shutdown + t.other;
        ok(accepted > 0 && refused > 0, "shutdown (%s, drain %u): %d accepted, %d refused", mode,
           sc.drain_ms, accepted, refused);
        is_int(other, 0, "shutdown (%s, drain %u): every refusal is GAPI_ESHUTDOWN", mode,
               sc.drain_ms);
        is_int(completed, accepted, "shutdown (%s, drain %u): every accepted request completed",
               mode, sc.drain_ms);
        is_int(bad, 0, "shutdown (%s, drain %u): none completed twice", mode, sc.drain_ms);
        is_int(t.other + t.bad_echo + t.on_wrong_thread, 0,
               "shutdown (%s, drain %u): outcomes are ok or GAPI_ESHUTDOWN, on the loop thread",
               mode, sc.drain_ms);
        if (sc.drain_ms >= 5000)
            is_int(t.shutdown, 0, "shutdown (%s, drain %u): the drain let all of them finish", mode,
                   sc.drain_ms);
    }
    if (base) {
        is_int(tu_events_left(base), 0, "shutdown (%s, drain %u): no events left", mode,
               sc.drain_ms);
        event_base_free(base);
    }
    tally_free(&t);
}

/* ------------------------------------------------------------ small cases */

static void ignore_cb(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    (void)req;
    (void)err;
    (void)resp;
    (void)arg;
}

typedef struct deadlock_probe {
    gapi_client *c;
    int exec_rc, wait_rc, caller_still_owns;
    int done;
} deadlock_probe;

static void probe_cb(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    deadlock_probe *p = arg;
    gapi_request *r = make_req(p->c, "/echo", 2);
    gapi_request *r2 = make_req(p->c, "/slow", 3);
    gapi_future *f = NULL;

    (void)req;
    (void)err;
    (void)resp;
    p->exec_rc = gapi_request_execute(r, 0, &f);
    /* still ours: sending it normally works */
    p->caller_still_owns = gapi_request_send(r, ignore_cb, NULL) == GAPI_OK;
    if (gapi_request_submit_future(r2, &f) == GAPI_OK) {
        p->wait_rc = gapi_future_wait(f, 0);
        gapi_future_free(f);
    }
    __atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
}

static void test_deadlock_refused(void)
{
    gapi_client_options o = client_opts();
    struct event_base *base = event_base_new();
    gapi_client *c = NULL;
    deadlock_probe p = {0};
    gapi_request *r;
    gapi_future *f = (gapi_future *)&p; /* must stay untouched */
    gapi_future *f2 = NULL;
    int fired = 0;

    /* Caller's loop: this thread is the loop thread. */
    gapi_client_new(&c, base, &o, NULL, 0);
    r = make_req(c, "/echo", 1);
    is_int(gapi_request_execute(r, 1000, &f), GAPI_EDEADLK,
           "deadlock: execute on the loop thread is GAPI_EDEADLK");
    ok(f == (gapi_future *)&p, "deadlock: *out untouched");
    is_int(gapi_request_send(r, ignore_cb, &fired), GAPI_OK,
           "deadlock: the request is still the caller's (send works)");
    r = make_req(c, "/slow", 2);
    gapi_request_submit_future(r, &f);
    is_int(gapi_future_wait(f, 0), GAPI_EDEADLK, "deadlock: future_wait on the loop thread too");
    is_int(gapi_future_done(f), 0, "deadlock: not done yet");
    gapi_future_free(f);

    /* A request already handed over is refused, untouched (checked on the
     * loop thread of a caller's-loop client: on another thread, reading a
     * handed-over request at all would be the caller's data race). */
    r = make_req(c, "/echo", 46);
    gapi_request_submit_future(r, &f);
    is_int(gapi_request_submit_future(r, &f2), GAPI_EBUSY, "future: second submit is GAPI_EBUSY");
    is_int(gapi_request_send(r, ignore_cb, NULL), GAPI_EBUSY, "future: send of it too");
    while (!gapi_future_done(f))
        event_base_loop(base, EVLOOP_ONCE);
    ok(echoes(gapi_future_response(f), 46), "future: the first one completes, response intact");
    gapi_future_free(f);
    gapi_client_free(c);
    is_int(tu_events_left(base), 0, "deadlock: no events left");
    event_base_free(base);

    /* Owned thread: from inside a callback on that thread. */
    gapi_client_start(&c, &o, NULL, 0);
    p.c = c;
    r = make_req(c, "/echo", 1);
    gapi_request_submit(r, probe_cb, &p);
    for (long end = now_ms() + 5000; !__atomic_load_n(&p.done, __ATOMIC_ACQUIRE) && now_ms() < end;)
        usleep(1000);
    is_int(p.exec_rc, GAPI_EDEADLK, "deadlock: execute inside a callback of an owned client");
    ok(p.caller_still_owns, "deadlock: ...and the request stays the caller's");
    is_int(p.wait_rc, GAPI_EDEADLK, "deadlock: future_wait inside a callback");
    gapi_client_free(c);
}

static void test_execute_and_futures(void)
{
    gapi_client_options o = client_opts();
    gapi_client *c = NULL;
    gapi_request *r;
    gapi_future *f = NULL, *fs[4];
    char err[256];
    long t0;
    int all = 1;

    is_int(gapi_client_start(&c, &o, err, sizeof(err)), GAPI_OK, "owned: start");
    r = make_req(c, "/echo", 42);
    is_int(gapi_request_execute(r, 5000, &f), GAPI_OK, "execute: completes");
    is_int(gapi_future_error(f), GAPI_OK, "execute: outcome ok");
    ok(echoes(gapi_future_response(f), 42), "execute: response answers it (%s)",
       gapi_response_body(gapi_future_response(f), NULL));
    ok(gapi_future_request(f) && strstr(gapi_request_url(gapi_future_request(f)), "id=42"),
       "execute: request readable from the future");
    gapi_future_free(f);

    /* A wait timeout: the request is cancelled in the background. */
    r = make_req(c, "/slow", 43);
    f = NULL;
    t0 = now_ms();
    is_int(gapi_request_execute(r, 50, &f), GAPI_OK, "execute: timed-out call still returns 0");
    ok(now_ms() - t0 < 250, "execute: returned after about the timeout (%ld ms)", now_ms() - t0);
    is_int(gapi_future_error(f), GAPI_ETIMEDOUT, "execute: outcome GAPI_ETIMEDOUT");
    ok(strstr(gapi_future_errmsg(f), "50 ms") != NULL, "execute: message says so (%s)",
       gapi_future_errmsg(f));
    ok(gapi_future_response(f) == NULL, "execute: no response");
    gapi_future_free(f);

    /* Poll, then wait with a short timeout, then cancel. */
    r = make_req(c, "/slow", 44);
    gapi_request_submit_future(r, &f);
    is_int(gapi_future_done(f), 0, "future: not done at once");
    is_int(gapi_future_error(f), GAPI_EBUSY, "future: no result before done");
    ok(gapi_future_response(f) == NULL, "future: no response before done");
    is_int(gapi_future_wait(f, 20), GAPI_ETIMEDOUT, "future: short wait times out");
    is_int(gapi_future_cancel(f), GAPI_OK, "future: cancel from another thread");
    is_int(gapi_future_wait(f, 5000), GAPI_OK, "future: done after cancel");
    is_int(gapi_future_error(f), GAPI_ECANCELED, "future: outcome GAPI_ECANCELED");
    is_int(gapi_future_cancel(f), GAPI_EBUSY, "future: cancel after done is GAPI_EBUSY");
    gapi_future_free(f);

    /* Fan out, wait for all. */
    for (int i = 0; i < 4; i++) {
        r = make_req(c, "/echo", 100 + i);
        gapi_request_submit_future(r, &fs[i]);
    }
    is_int(gapi_future_wait_all(fs, 4, 5000), GAPI_OK, "future: wait_all");
    for (int i = 0; i < 4; i++) {
        all &= echoes(gapi_future_response(fs[i]), 100 + i);
        gapi_future_free(fs[i]);
    }
    ok(all, "future: each answers its own request");

    /* Drop a pending future: freed by the library, nothing leaks. */
    r = make_req(c, "/slow", 45);
    gapi_request_submit_future(r, &f);
    gapi_future_free(f);

    /* Argument checks. */
    is_int(gapi_request_execute(NULL, 0, &f), GAPI_EINVAL, "execute: NULL request");
    is_int(gapi_future_wait(NULL, 0), GAPI_EINVAL, "future: wait NULL");
    is_int(gapi_request_submit_future(NULL, &f), GAPI_EINVAL, "future: submit NULL");
    gapi_client_free(c);

    /* Submit after shutdown: refused at once, request still the caller's. */
    gapi_client_start(&c, &o, NULL, 0);
    r = make_req(c, "/echo", 1);
    gapi_client_shutdown(c, 0);
    is_int(gapi_request_submit_future(r, &f), GAPI_ESHUTDOWN, "shutdown: submit refused");
    is_int(gapi_request_execute(r, 0, &f), GAPI_ESHUTDOWN, "shutdown: execute refused");
    gapi_request_free(r);
    is_int(gapi_client_shutdown(c, 0), GAPI_OK, "shutdown: second call is harmless");
    gapi_client_free(c);
}

static void test_backpressure(void)
{
    gapi_client_options o = client_opts();
    gapi_client *c = NULL;
    gapi_future *f[5];
    gapi_request *r;
    long t0;

    o.max_pending = 4;
    gapi_client_start(&c, &o, NULL, 0);
    for (int i = 0; i < 4; i++) {
        r = make_req(c, "/slow", i);
        is_int(gapi_request_submit_future(r, &f[i]), GAPI_OK, "backpressure: submit %d of 4", i);
    }
    r = make_req(c, "/slow", 4);
    is_int(gapi_request_submit_future(r, &f[4]), GAPI_EFULL, "backpressure: 5th is GAPI_EFULL");
    gapi_future_wait_all(f, 4, 5000);
    for (int i = 0; i < 4; i++)
        gapi_future_free(f[i]);
    is_int(gapi_request_submit_future(r, &f[4]), GAPI_OK, "backpressure: room again after");
    gapi_future_wait(f[4], 5000);
    gapi_future_free(f[4]);
    gapi_client_free(c);

    /* Blocking variant: the 3rd submit waits for a slot. */
    o.max_pending = 2;
    o.flags |= GAPI_CLIENT_SUBMIT_BLOCKS;
    gapi_client_start(&c, &o, NULL, 0);
    for (int i = 0; i < 2; i++) {
        r = make_req(c, "/slow", i);
        gapi_request_submit_future(r, &f[i]);
    }
    r = make_req(c, "/echo", 2);
    t0 = now_ms();
    is_int(gapi_request_submit_future(r, &f[2]), GAPI_OK, "backpressure: blocking submit accepted");
    ok(now_ms() - t0 >= 200, "backpressure: ...after waiting for room (%ld ms)", now_ms() - t0);
    gapi_future_wait_all(f, 3, 5000);
    ok(echoes(gapi_future_response(f[2]), 2), "backpressure: and it completed");
    for (int i = 0; i < 3; i++)
        gapi_future_free(f[i]);
    gapi_client_free(c);
}

/* max_pending 1: a callback that sends the next request of a chain gets
 * the slot of the request that just completed, even while another thread
 * retries non-blocking submits as fast as it can. */
typedef struct chain {
    gapi_client *c;
    int left, sent_fail, done;
    volatile int stop;
    int stolen_ok;
} chain;

static void chain_cb(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    chain *ch = arg;
    gapi_request *r;

    (void)req;
    (void)resp;
    if (err)
        ch->sent_fail++;
    if (err)
        diag("chain: request failed: %s", gapi_error_name(err));
    if (--ch->left > 0) {
        int rc;
        r = make_req(ch->c, "/echo", ch->left);
        if ((rc = gapi_request_send(r, chain_cb, ch)) != GAPI_OK) {
            diag("chain: send refused: %s", gapi_error_name(rc));
            gapi_request_free(r);
            ch->sent_fail++;
            __atomic_store_n(&ch->done, 1, __ATOMIC_RELEASE);
        }
    } else {
        __atomic_store_n(&ch->done, 1, __ATOMIC_RELEASE);
    }
}

static void *slot_thief(void *arg)
{
    chain *ch = arg;
    gapi_future *f;

    while (!__atomic_load_n(&ch->stop, __ATOMIC_ACQUIRE)) {
        gapi_request *r = make_req(ch->c, "/echo", 9999);
        if (gapi_request_submit_future(r, &f) == GAPI_OK) {
            gapi_future_wait(f, 0);
            gapi_future_free(f);
            __atomic_fetch_add(&ch->stolen_ok, 1, __ATOMIC_RELAXED);
        } else {
            gapi_request_free(r);
            sched_yield(); /* keep trying, but let the loop run (valgrind serializes) */
        }
    }
    return NULL;
}

static void chain_kick(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    chain_cb(req, err, resp, arg);
}

static void test_slot_handoff(void)
{
    gapi_client_options o = client_opts();
    chain ch = {0};
    pthread_t th;

    o.max_pending = 1;
    gapi_client_start(&ch.c, &o, NULL, 0);
    ch.left = 60;
    pthread_create(&th, NULL, slot_thief, &ch);
    /* The chain starts from a submit (its slot is then handed on). */
    for (;;) {
        gapi_request *r = make_req(ch.c, "/echo", 0);
        if (gapi_request_submit(r, chain_kick, &ch) == GAPI_OK)
            break;
        gapi_request_free(r);
        usleep(100);
    }
    for (long end = now_ms() + 20000;
         !__atomic_load_n(&ch.done, __ATOMIC_ACQUIRE) && now_ms() < end;)
        usleep(1000);
    __atomic_store_n(&ch.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    gapi_client_free(ch.c);
    is_int(ch.sent_fail, 0, "max_pending 1: every send of the chain got the slot");
    is_int(ch.left, 0, "max_pending 1: the chain ran to its end");
}

/* Version-1 options (before max_pending) are still accepted. */
static void test_options_v1(void)
{
    gapi_client_options o = client_opts();
    struct event_base *base = event_base_new();
    gapi_client *c = NULL;

    o.version = 1;
    o.max_pending = 1; /* not part of v1: must be ignored */
    is_int(gapi_client_new(&c, base, &o, NULL, 0), GAPI_OK, "options v1 accepted");
    gapi_client_free(c);
    o.version = 99;
    is_int(gapi_client_new(&c, base, &o, NULL, 0), GAPI_EINVAL, "unknown options version refused");
    event_base_free(base);
}

/* Freeing an owned client from inside one of its callbacks. */
typedef struct free_probe {
    gapi_client *c;
    int returned;
    tally *t;
    cb_arg other;
} free_probe;

static void free_from_cb(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    free_probe *p = arg;
    (void)req;
    (void)err;
    (void)resp;
    gapi_client_free(p->c);
    __atomic_store_n(&p->returned, 1, __ATOMIC_RELEASE);
}

static void test_free_in_owned_callback(void)
{
    gapi_client_options o = client_opts();
    free_probe p = {0};
    tally t;

    tally_init(&t, 1);
    gapi_client_start(&p.c, &o, NULL, 0);
    t.loop = loop_thread_of(p.c);
    p.other = (cb_arg){&t, 0};
    /* One slow request still in flight when the free happens. */
    gapi_request_submit(make_req(p.c, "/slow", 0), on_done, &p.other);
    gapi_request_submit(make_req(p.c, "/echo", 1), free_from_cb, &p);
    for (long end = now_ms() + 5000;
         !__atomic_load_n(&p.returned, __ATOMIC_ACQUIRE) && now_ms() < end;)
        usleep(1000);
    ok(__atomic_load_n(&p.returned, __ATOMIC_ACQUIRE),
       "owned: gapi_client_free inside its callback returns");
    for (long end = now_ms() + 5000;
         !__atomic_load_n(&t.count[0], __ATOMIC_ACQUIRE) && now_ms() < end;)
        usleep(1000);
    is_int(__atomic_load_n(&t.count[0], __ATOMIC_ACQUIRE), 1,
           "owned: the other request completed once");
    is_int(__atomic_load_n(&t.errs[0], __ATOMIC_ACQUIRE), GAPI_ESHUTDOWN,
           "owned: ...with GAPI_ESHUTDOWN");
    usleep(50000); /* the thread frees everything itself; ASan/valgrind check */
    tally_free(&t);
}

/* Caller's loop: a callback run by the shutdown's teardown frees the client. */
typedef struct free_in_teardown {
    gapi_client *c;
    int calls, freed, shutdown_errs;
} free_in_teardown;

static void free_in_teardown_cb(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    free_in_teardown *p = arg;
    (void)req;
    (void)resp;
    p->calls++;
    p->shutdown_errs += err == GAPI_ESHUTDOWN;
    if (!p->freed) {
        p->freed = 1;
        gapi_client_free(p->c);
    }
}

static void test_free_during_teardown(void)
{
    gapi_client_options o = client_opts();
    struct event_base *base = event_base_new();
    free_in_teardown p = {0};

    gapi_client_new(&p.c, base, &o, NULL, 0);
    for (int i = 0; i < 5; i++)
        gapi_request_send(make_req(p.c, "/slow", i), free_in_teardown_cb, &p);
    tu_run_for(base, 50);
    gapi_client_shutdown(p.c, 0);
    event_base_dispatch(base); /* teardown runs; the first callback frees */
    is_int(p.calls, 5, "free during teardown: every callback once");
    is_int(p.shutdown_errs, 5, "free during teardown: all GAPI_ESHUTDOWN");
    is_int(tu_events_left(base), 0, "free during teardown: no events left (client freed)");
    event_base_free(base);
}

/* Free an owned client with requests in flight from a worker thread. */
static void test_free_owned_in_flight(void)
{
    gapi_client_options o = client_opts();
    gapi_client *c = NULL;
    tally t;
    cb_arg a[20];

    tally_init(&t, 20);
    gapi_client_start(&c, &o, NULL, 0);
    t.loop = loop_thread_of(c);
    for (int i = 0; i < 20; i++) {
        gapi_request *r = make_req(c, i % 2 ? "/slow" : "/echo", i);
        a[i] = (cb_arg){&t, i};
        gapi_request_submit(r, on_done, &a[i]);
    }
    gapi_client_free(c);
    {
        long bad = -1;
        ok(count_exactly_once(&t, 20, &bad), "free owned in flight: each callback once");
        is_int(t.ok + t.shutdown, 20, "free owned in flight: ok or GAPI_ESHUTDOWN");
        is_int(t.on_wrong_thread, 0, "free owned in flight: callbacks on the loop thread");
        ok(t.shutdown > 0, "free owned in flight: %d ended by the free", t.shutdown);
    }
    tally_free(&t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    tu_watchdog(600);
    server_start();
    test_options_v1();
    test_execute_and_futures();
    test_deadlock_refused();
    test_backpressure();
    test_slot_handoff();
    test_free_in_owned_callback();
    test_free_owned_in_flight();
    test_free_during_teardown();
    test_shutdown_while_submitting((shutdown_case){0, 0});
    test_shutdown_while_submitting((shutdown_case){1, 0});
    test_shutdown_while_submitting((shutdown_case){0, 10000});
    test_shutdown_while_submitting((shutdown_case){1, 10000});
    test_stress_owned();
    server_stop();
    return tap_done();
}
