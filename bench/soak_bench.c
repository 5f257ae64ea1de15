/*
 * Soak benchmark (issue 6): many requests through one client, with faults,
 * watching that nothing is lost and memory stays flat.
 *
 *   soak_bench [-n REQUESTS] [-c IN_FLIGHT] [-r REPORTS]
 *
 * The server is the test server (test/server.h, HTTPS with a CA made at
 * start) in a child process, so that /proc/self/statm measures the client
 * alone. Its one path serves a scripted sequence in which 1% of the
 * answers are faults: a third 503, a third a reset before any response byte
 * (on a reused keep-alive connection the client replays those
 * transparently; on a fresh one it is a GAPI_ECONNRESET attempt), a third
 * a reset in the middle of the body (GAPI_ETRUNCATED). The child restarts
 * the sequence about every 600 requests, so the rate holds for any run.
 *
 * The client keeps IN_FLIGHT (default 64) GETs in flight on one loop with
 * a retry policy of 5 attempts, 1 ms initial wait, x2, 50 ms cap (full
 * jitter). Each completion sends the next request until REQUESTS (default
 * 2,000,000) were sent. Each request's slot checks its callback runs once.
 *
 * Reported: completed, failed (by cause), attempts that failed (by cause),
 * retries, replays, connections, RSS from /proc/self/statm at start (client
 * made, nothing sent), middle (half completed) and end (all completed,
 * client still alive), elapsed time and requests/s. The memory verdict
 * compares the middle with the end: the first half is the warm-up (pool,
 * TLS session cache, allocator arenas reach their working size), the
 * second half must not grow the RSS by 5% or more. Exit status 0 only when
 * completions == submissions, every callback ran once, and that holds.
 * The last line is a one-line summary.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "gapi.h"
#include "../test/server.h"

#define PATH    "/storage/v1/b/soak/o/obj"
#define PERIOD  300  /* one 503, one reset, one mid-body reset per PERIOD answers */
#define RESTART 600  /* the child restarts the sequence after this many */
#define STEPS   3000 /* room for whatever arrives before the restart */

static const char BODY[] =
    "{\"kind\":\"storage#object\",\"id\":\"soak/obj/1732406400000000\",\"name\":\"obj\","
    "\"bucket\":\"soak\",\"generation\":\"1732406400000000\",\"metageneration\":\"1\","
    "\"contentType\":\"text/plain\",\"storageClass\":\"STANDARD\",\"size\":\"1048576\","
    "\"md5Hash\":\"1B2M2Y8AsgTpgAmY7PhCfg==\",\"etag\":\"CIDAhcKN/YkDEAE=\","
    "\"timeCreated\":\"2026-11-24T00:00:00.000Z\"}";

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ------------------------------------------------------------ server (child) */

static ts_server *child_srv;

static void restart_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (ts_server_hits(child_srv, PATH) >= RESTART)
        ts_server_reset_counts(child_srv);
}

static void parent_gone(evutil_socket_t fd, short what, void *arg)
{
    char c;

    (void)what;
    if (read(fd, &c, 1) <= 0)
        event_base_loopbreak(arg);
}

/* Runs the server; writes "PORT PEMLEN\n" + PEM to wfd; serves until rfd
 * reaches EOF (the parent closed its end or died). */
static int child_main(int wfd, int rfd)
{
    static ts_step_resp steps[STEPS];
    struct event_base *base = event_base_new();
    struct event *tick, *gone;
    struct timeval five = {0, 5000};
    const char *pem;
    char head[64];
    size_t i, n;

    child_srv = base ? ts_server_new(base, NULL) : NULL;
    if (!child_srv)
        return 1;
    for (i = 0; i < STEPS; i++) {
        steps[i] = (ts_step_resp){200, "Content-Type: application/json; charset=UTF-8\r\n", BODY,
                                  TS_FAULT_NONE, 0};
        if (i % PERIOD == 50)
            steps[i] = (ts_step_resp){503, "Content-Type: application/json\r\n",
                                      "{\"error\":{\"code\":503,\"message\":\"Backend Error\"}}",
                                      TS_FAULT_NONE, 0};
        else if (i % PERIOD == 150)
            steps[i] = (ts_step_resp){0, NULL, NULL, TS_FAULT_RESET_BEFORE_HEADERS, 0};
        else if (i % PERIOD == 250)
            steps[i] = (ts_step_resp){0, NULL, NULL, TS_FAULT_RESET_MID_BODY, 0};
    }
    ts_route_sequence(child_srv, PATH, steps, STEPS);
    tick = event_new(base, -1, EV_PERSIST, restart_cb, NULL);
    gone = event_new(base, rfd, EV_READ | EV_PERSIST, parent_gone, base);
    event_add(tick, &five);
    event_add(gone, NULL);
    pem = ts_server_ca_pem(child_srv);
    n = strlen(pem);
    snprintf(head, sizeof(head), "%d %zu\n", ts_server_port(child_srv), n);
    if (write(wfd, head, strlen(head)) < 0 || write(wfd, pem, n) != (ssize_t)n)
        return 1;
    close(wfd);
    event_base_dispatch(base);
    event_free(tick);
    event_free(gone);
    ts_server_free(child_srv);
    event_base_free(base);
    return 0;
}

/* ------------------------------------------------------------ client */

#define MAX_CAUSES 24

typedef struct cause {
    char name[40];
    unsigned long long n;
} cause;

static void count(cause *c, const char *name)
{
    int i;

    for (i = 0; i < MAX_CAUSES && c[i].name[0]; i++)
        if (!strcmp(c[i].name, name)) {
            c[i].n++;
            return;
        }
    if (i < MAX_CAUSES) {
        snprintf(c[i].name, sizeof(c[i].name), "%s", name);
        c[i].n = 1;
    }
}

static void print_causes(const char *what, const cause *c)
{
    int i;

    printf("%s:", what);
    if (!c[0].name[0])
        printf(" none");
    for (i = 0; i < MAX_CAUSES && c[i].name[0]; i++)
        printf(" %s=%llu", c[i].name, c[i].n);
    printf("\n");
}

struct soak;

typedef struct slot {
    struct soak *s;
    int busy;
} slot;

struct soak {
    struct event_base *base;
    gapi_client *cli;
    char url[128];
    unsigned long long total, sent, completed, failed, duplicates, ok_bodies;
    unsigned long long next_report, report_every;
    long rss_start, rss_mid, rss_end;
    double t0, t_mid;
    cause final[MAX_CAUSES], attempts[MAX_CAUSES];
    unsigned long long failed_attempts;
    int send_errors;
};

static void send_one(struct soak *s, slot *sl);

static void outcome_name(char *buf, size_t n, int err, int status)
{
    if (err)
        snprintf(buf, n, "%s", gapi_error_name(err));
    else
        snprintf(buf, n, "HTTP_%d", status);
}

static void on_attempt(const gapi_request *req, const gapi_attempt_info *info, void *arg)
{
    struct soak *s = arg;
    char name[40];

    (void)req;
    if (info->err == GAPI_OK && info->status == 200)
        return;
    s->failed_attempts++;
    outcome_name(name, sizeof(name), info->err, info->status);
    count(s->attempts, name);
}

static void report(struct soak *s)
{
    gapi_client_stats st;
    double el = now_s() - s->t0;

    gapi_client_get_stats(s->cli, &st);
    printf("progress: %llu/%llu completed, %llu failed, %llu retries, %llu replays, "
           "%u conns open, rss %ld kB, %.1f s, %.0f req/s\n",
           s->completed, s->total, s->failed, (unsigned long long)st.retries,
           (unsigned long long)st.replays, st.connections_open, rss_kb(), el,
           el > 0 ? s->completed / el : 0.0);
    fflush(stdout);
}

static void on_response(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    slot *sl = arg;
    struct soak *s = sl->s;
    char name[40];
    int status = resp ? gapi_response_status(resp) : 0;

    if (!sl->busy) {
        s->duplicates++;
        return;
    }
    sl->busy = 0;
    s->completed++;
    if (err || status != 200) {
        s->failed++;
        outcome_name(name, sizeof(name), err, status);
        count(s->final, name);
        if (s->failed <= 3)
            fprintf(stderr, "failed: %s after %u attempts: %s\n", name, gapi_request_attempts(req),
                    gapi_request_errmsg(req));
    } else {
        size_t len;
        struct json_object *j = gapi_response_json(resp), *v;
        gapi_response_body(resp, &len);
        if (j && len == sizeof(BODY) - 1 && json_object_object_get_ex(j, "bucket", &v))
            s->ok_bodies++;
    }
    if (s->completed == s->total / 2) {
        s->rss_mid = rss_kb();
        s->t_mid = now_s();
    }
    if (s->completed >= s->next_report) {
        s->next_report += s->report_every;
        report(s);
    }
    if (s->sent < s->total)
        send_one(s, sl);
    else if (s->completed == s->total)
        event_base_loopbreak(s->base);
}

static void send_one(struct soak *s, slot *sl)
{
    gapi_request *req;
    int rc;

    if ((rc = gapi_request_new(&req, s->cli, "GET", s->url)) != GAPI_OK) {
        fprintf(stderr, "gapi_request_new: %s\n", gapi_error_name(rc));
        s->send_errors++;
        return;
    }
    sl->busy = 1;
    if ((rc = gapi_request_send(req, on_response, sl)) != GAPI_OK) {
        fprintf(stderr, "gapi_request_send: %s\n", gapi_error_name(rc));
        gapi_request_free(req);
        sl->busy = 0;
        s->send_errors++;
        return;
    }
    s->sent++;
}

/* No completion for a long time: something is stuck; say what and stop. */
static unsigned long long watch_last;

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    struct soak *s = arg;

    (void)fd;
    (void)what;
    if (s->completed == watch_last) {
        fprintf(stderr, "soak: no completion for 30 s (%llu/%llu completed)\n", s->completed,
                s->total);
        report(s);
        event_base_loopbreak(s->base);
    }
    watch_last = s->completed;
}

static int read_all(int fd, char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct soak s;
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    gapi_retry_policy rp = GAPI_RETRY_POLICY_INIT;
    gapi_client_stats st;
    struct timeval thirty = {30, 0};
    struct event *wd;
    slot *slots;
    char head[64], err[256], *pem = NULL;
    int to_parent[2], to_child[2], opt, i, port = 0, status = 0, pass;
    unsigned long long inflight = 64, reports = 10;
    size_t pemlen = 0, hl = 0;
    double el, t_end, growth, growth_all;
    pid_t pid;

    memset(&s, 0, sizeof(s));
    s.total = 2000000;
    while ((opt = getopt(argc, argv, "n:c:r:")) != -1) {
        switch (opt) {
        case 'n':
            s.total = strtoull(optarg, NULL, 10);
            break;
        case 'c':
            inflight = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            reports = strtoull(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "usage: %s [-n REQUESTS] [-c IN_FLIGHT] [-r REPORTS]\n", argv[0]);
            return 2;
        }
    }
    if (s.total < 2 || inflight < 1 || inflight > 4096 || reports < 1) {
        fprintf(stderr, "soak: need -n >= 2, 1 <= -c <= 4096, -r >= 1\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    /* The server, in a child that dies with us. */
    if (pipe(to_parent) != 0 || pipe(to_child) != 0) {
        perror("pipe");
        return 1;
    }
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        close(to_parent[0]);
        close(to_child[1]);
        _exit(child_main(to_parent[1], to_child[0]));
    }
    close(to_parent[1]);
    close(to_child[0]);
    while (hl + 1 < sizeof(head) && read(to_parent[0], head + hl, 1) == 1 && head[hl] != '\n')
        hl++;
    head[hl] = '\0';
    if (sscanf(head, "%d %zu", &port, &pemlen) != 2 || !(pem = calloc(1, pemlen + 1)) ||
        read_all(to_parent[0], pem, pemlen) != 0) {
        fprintf(stderr, "soak: the server did not start\n");
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return 1;
    }
    close(to_parent[0]);
    snprintf(s.url, sizeof(s.url), "https://127.0.0.1:%d%s", port, PATH);

    s.base = event_base_new();
    rp.max_attempts = 5;
    rp.initial_delay_ms = 1;
    rp.max_delay_ms = 50;
    co.ca_pem = pem;
    co.max_conns_per_origin = (unsigned)(inflight < 64 ? inflight : 64);
    co.stall_timeout_ms = 10000;
    co.deadline_ms = 60000;
    co.retry = &rp;
    co.on_attempt = on_attempt;
    co.on_attempt_arg = &s;
    if (gapi_client_new(&s.cli, s.base, &co, err, sizeof(err)) != GAPI_OK) {
        fprintf(stderr, "gapi_client_new: %s\n", err);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return 1;
    }
    slots = calloc(inflight, sizeof(*slots));
    if (!slots)
        return 1;
    s.report_every = s.total / reports ? s.total / reports : 1;
    s.next_report = s.report_every;
    printf("soak: %llu requests, %llu in flight, 1%% faults (503, reset, mid-body reset), "
           "retry 5 attempts 1 ms x2 cap 50 ms; server pid %d, %s\n",
           s.total, inflight, (int)pid, s.url);
    s.rss_start = rss_kb();
    s.t0 = now_s();
    wd = event_new(s.base, -1, EV_PERSIST, watchdog_cb, &s);
    event_add(wd, &thirty);
    for (i = 0; i < (int)inflight && s.sent < s.total; i++) {
        slots[i].s = &s;
        send_one(&s, &slots[i]);
    }
    event_base_dispatch(s.base);
    t_end = now_s();
    el = t_end - s.t0;
    s.rss_end = rss_kb();
    gapi_client_get_stats(s.cli, &st);
    event_free(wd);

    growth = s.rss_mid > 0 ? 100.0 * (double)(s.rss_end - s.rss_mid) / (double)s.rss_mid : 0.0;
    growth_all =
        s.rss_start > 0 ? 100.0 * (double)(s.rss_end - s.rss_start) / (double)s.rss_start : 0.0;
    printf("requests: submitted %llu, completed %llu, ok %llu (bodies checked %llu), failed %llu, "
           "duplicate callbacks %llu, send errors %d\n",
           s.sent, s.completed, s.completed - s.failed, s.ok_bodies, s.failed, s.duplicates,
           s.send_errors);
    print_causes("failures by cause", s.final);
    printf("failed attempts: %llu (%.3f%% of %llu attempts)\n", s.failed_attempts,
           100.0 * (double)s.failed_attempts / (double)(s.completed + st.retries),
           s.completed + (unsigned long long)st.retries);
    print_causes("failed attempts by cause", s.attempts);
    printf("retries %llu, replays %llu (stale keep-alive), connections opened %llu, reused %llu, "
           "TLS resumed %llu\n",
           (unsigned long long)st.retries, (unsigned long long)st.replays,
           (unsigned long long)st.connections_opened, (unsigned long long)st.connections_reused,
           (unsigned long long)st.tls_resumed);
    printf("rss_kb: start %ld, middle %ld, end %ld; growth middle->end %+.2f%% (after warm-up; "
           "limit 5%%), start->end %+.2f%%\n",
           s.rss_start, s.rss_mid, s.rss_end, growth, growth_all);
    printf("time: %.2f s, %.0f req/s (second half %.0f req/s)\n", el, s.completed / el,
           s.t_mid > 0 ? (double)(s.completed - s.total / 2) / (t_end - s.t_mid) : 0.0);

    gapi_client_free(s.cli);
    event_base_free(s.base);
    close(to_child[1]); /* the child's loop ends */
    waitpid(pid, &status, 0);
    free(slots);
    free(pem);

    pass = s.completed == s.sent && s.sent == s.total && s.duplicates == 0 && s.send_errors == 0 &&
           s.rss_mid > 0 && growth < 5.0;
    printf("soak summary: %s n=%llu completed=%llu failed=%llu retries=%llu replays=%llu "
           "rss_kb=%ld/%ld/%ld growth=%+.2f%% elapsed=%.1fs rps=%.0f\n",
           pass ? "PASS" : "FAIL", s.total, s.completed, s.failed, (unsigned long long)st.retries,
           (unsigned long long)st.replays, s.rss_start, s.rss_mid, s.rss_end, growth, el,
           s.completed / el);
    return pass ? 0 : 1;
}
