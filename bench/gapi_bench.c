/*
 * Closed-loop load generator on one gapi client: keeps C requests in flight
 * against URL for D seconds on one thread and one loop. Each response's JSON
 * body is parsed by gapi (as in real use) and touched here.
 *
 *   gapi_bench -u URL -c CONCURRENCY -d SECONDS [-a CAFILE]
 *
 * Prints "requests N errors N seconds S rps R cpu_us_per_req U maxrss_kb K";
 * bench/run.sh measures CPU and RSS from outside too, the same way as wrk's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "gapi.h"

struct bench {
    struct event_base *base;
    gapi_client *cli;
    const char *url;
    long long done, errors;
    int stopping, inflight;
    long long parsed_keys;
};

static void send_one(struct bench *b);

static void on_resp(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    struct bench *b = arg;

    b->inflight--;
    if (err || gapi_response_status(resp) != 200) {
        if (b->errors++ < 3)
            fprintf(stderr, "error: %s status %d %s\n", gapi_error_name(err),
                    gapi_response_status(resp), gapi_request_errmsg(req));
    } else {
        struct json_object *j = gapi_response_json(resp);
        if (j)
            b->parsed_keys += json_object_object_length(j);
        b->done++;
    }
    if (!b->stopping)
        send_one(b);
    else if (b->inflight == 0)
        event_base_loopbreak(b->base);
}

static void send_one(struct bench *b)
{
    gapi_request *req;

    if (gapi_request_new(&req, b->cli, "GET", b->url) != GAPI_OK)
        abort();
    if (gapi_request_send(req, on_resp, b) != GAPI_OK)
        abort();
    b->inflight++;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bench *b = arg;
    (void)fd;
    (void)what;
    b->stopping = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *s;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = calloc(1, (size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    return s;
}

int main(int argc, char **argv)
{
    struct bench b;
    gapi_client_options co = GAPI_CLIENT_OPTIONS_INIT;
    struct rusage ru;
    struct timeval tv;
    char err[256];
    char *ca = NULL;
    int conc = 16, secs = 10, opt, i;
    double t0, el, cpu;

    memset(&b, 0, sizeof(b));
    while ((opt = getopt(argc, argv, "u:c:d:a:")) != -1) {
        switch (opt) {
        case 'u':
            b.url = optarg;
            break;
        case 'c':
            conc = atoi(optarg);
            break;
        case 'd':
            secs = atoi(optarg);
            break;
        case 'a':
            ca = read_file(optarg);
            break;
        default:
            fprintf(stderr, "usage: %s -u URL [-c N] [-d S] [-a CAFILE]\n", argv[0]);
            return 2;
        }
    }
    if (!b.url)
        return 2;
    b.base = event_base_new();
    co.ca_pem = ca;
    co.max_conns_per_origin = (unsigned)conc; /* one connection per in-flight request, like wrk */
    if (gapi_client_new(&b.cli, b.base, &co, err, sizeof(err)) != GAPI_OK) {
        fprintf(stderr, "gapi_client_new: %s\n", err);
        return 1;
    }
    tv.tv_sec = secs;
    tv.tv_usec = 0;
    event_base_once(b.base, -1, EV_TIMEOUT, stop_cb, &b, &tv);
    t0 = now_s();
    for (i = 0; i < conc; i++)
        send_one(&b);
    event_base_dispatch(b.base);
    el = now_s() - t0;
    getrusage(RUSAGE_SELF, &ru);
    cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
          ru.ru_stime.tv_usec / 1e6;
    printf("requests %lld errors %lld seconds %.3f rps %.0f cpu_us_per_req %.2f maxrss_kb %ld "
           "keys %lld\n",
           b.done, b.errors, el, b.done / el, b.done ? cpu * 1e6 / (double)b.done : 0.0,
           ru.ru_maxrss, b.parsed_keys);
    gapi_client_free(b.cli);
    event_base_free(b.base);
    free(ca);
    return b.errors ? 1 : 0;
}
