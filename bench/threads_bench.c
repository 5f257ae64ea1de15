/*
 * Cross-thread benchmark: many worker threads calling one HTTPS server.
 *
 *   threads_bench -u URL -a CA.pem -m gapi|perthread|latency -t THREADS -d SECONDS
 *
 * gapi       THREADS threads submit into ONE client (own loop thread, 8
 *            connections, max_pending 512 with blocking submit as flow
 *            control); every response's JSON is parsed (by gapi).
 * perthread  the pattern Google's Python client prescribes for threads:
 *            each thread has its own blocking HTTPS keep-alive connection
 *            (OpenSSL on a blocking socket) and parses each body with json-c.
 * latency    sequential requests, one at a time: from a worker thread with
 *            gapi_request_execute (cross-thread both ways), and on the loop
 *            thread (send from the previous callback). Prints p50/p99 of each.
 *
 * Prints one line of key=value pairs: requests/s, connections opened,
 * process CPU µs per request (user+sys, all threads), peak RSS.
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "gapi.h"

static const char *url, *ca_file, *mode = "gapi";
static int nthreads = 16;
static double seconds = 5;
static volatile int stop_flag;
static long completed, failed;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        n = 0;
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* ------------------------------------------------------------------ gapi */

static void on_done(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    (void)req;
    (void)arg;
    if (err || gapi_response_status(resp) != 200 || !gapi_response_json(resp))
        __atomic_fetch_add(&failed, 1, __ATOMIC_RELAXED);
    else
        __atomic_fetch_add(&completed, 1, __ATOMIC_RELAXED);
}

static void *gapi_worker(void *arg)
{
    gapi_client *c = arg;

    while (!__atomic_load_n(&stop_flag, __ATOMIC_RELAXED)) {
        gapi_request *r;
        if (gapi_request_new(&r, c, "GET", url) != GAPI_OK)
            abort();
        if (gapi_request_submit(r, on_done, NULL) != GAPI_OK) {
            gapi_request_free(r);
            break;
        }
    }
    return NULL;
}

static gapi_client *start_client(size_t max_pending)
{
    gapi_client_options o = GAPI_CLIENT_OPTIONS_INIT;
    char err[256];
    gapi_client *c;
    char *pem = read_file(ca_file);

    o.ca_pem = pem;
    o.max_pending = max_pending;
    o.flags = GAPI_CLIENT_SUBMIT_BLOCKS;
    if (gapi_client_start(&c, &o, err, sizeof(err)) != GAPI_OK) {
        fprintf(stderr, "gapi_client_start: %s\n", err);
        exit(1);
    }
    free(pem);
    return c;
}

static void run_gapi(unsigned long long *conns)
{
    gapi_client *c = start_client(512);
    pthread_t *th = calloc((size_t)nthreads, sizeof(*th));
    gapi_client_stats st;

    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, gapi_worker, c);
    usleep((useconds_t)(seconds * 1e6));
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
    /* Stop counting here; the shutdown finishes what is queued. */
    gapi_client_shutdown(c, 5000);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    gapi_client_get_stats(c, &st);
    *conns = st.connections_opened;
    gapi_client_free(c);
    free(th);
}

/* -------------------------------------------------------- per-thread baseline */

static char host[256], port[16], path[1024];
static SSL_CTX *ctx;

static void split_url(void)
{
    /* https://HOST:PORT/PATH */
    if (sscanf(url, "https://%255[^:/]:%15[0-9]%1023s", host, port, path) != 3) {
        fprintf(stderr, "url must be https://host:port/path\n");
        exit(2);
    }
}

static SSL *connect_tls(void)
{
    struct addrinfo hints = {0}, *ai;
    int fd, one = 1;
    SSL *ssl;

    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return NULL;
    fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        freeaddrinfo(ai);
        close(fd);
        return NULL;
    }
    freeaddrinfo(ai);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set1_host(ssl, host);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    if (SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    return ssl;
}

/* One keep-alive exchange: request out, headers in, Content-Length body in. */
static int exchange(SSL *ssl, const char *req, size_t req_len, char *buf, size_t cap)
{
    size_t have = 0, body_len, head_len;
    char *end, *cl;
    struct json_object *j;

    if (SSL_write(ssl, req, (int)req_len) != (int)req_len)
        return -1;
    for (;;) {
        int n = SSL_read(ssl, buf + have, (int)(cap - have - 1));
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")) != NULL)
            break;
    }
    head_len = (size_t)(end - buf) + 4;
    cl = strcasestr(buf, "\r\nContent-Length:");
    if (!cl || cl > end)
        return -1;
    body_len = strtoul(cl + 17, NULL, 10);
    while (have < head_len + body_len) {
        int n = SSL_read(ssl, buf + have, (int)(cap - have - 1));
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    buf[head_len + body_len] = '\0';
    j = json_tokener_parse(buf + head_len);
    if (!j)
        return -1;
    json_object_put(j);
    return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? 0 : -1;
}

static void *perthread_worker(void *arg)
{
    SSL *ssl = connect_tls();
    char req[1400], buf[65536];
    int n;

    (void)arg;
    if (!ssl) {
        __atomic_fetch_add(&failed, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: perthread\r\n"
                 "Accept-Encoding: gzip, deflate\r\n\r\n",
                 path, host, port);
    while (!__atomic_load_n(&stop_flag, __ATOMIC_RELAXED)) {
        if (exchange(ssl, req, (size_t)n, buf, sizeof(buf)) != 0) {
            __atomic_fetch_add(&failed, 1, __ATOMIC_RELAXED);
            break;
        }
        __atomic_fetch_add(&completed, 1, __ATOMIC_RELAXED);
    }
    close(SSL_get_fd(ssl));
    SSL_free(ssl);
    return NULL;
}

static void run_perthread(unsigned long long *conns)
{
    pthread_t *th = calloc((size_t)nthreads, sizeof(*th));

    split_url();
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        fprintf(stderr, "cannot load %s\n", ca_file);
        exit(1);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, perthread_worker, NULL);
    usleep((useconds_t)(seconds * 1e6));
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    *conns = (unsigned long long)nthreads;
    SSL_CTX_free(ctx);
    free(th);
}

/* ------------------------------------------------------------------ latency */

#define LAT_ROUNDS 15
#define LAT_PER    200
#define LAT_N      (LAT_ROUNDS * LAT_PER)

static double lat_loop[LAT_N], lat_thread[LAT_N];
static int lat_i, lat_end, lat_round_done;
static double lat_t0;
static gapi_client *lat_c;

static void lat_next(void);

static void lat_cb(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    (void)req;
    (void)resp;
    (void)arg;
    if (err)
        failed++;
    lat_loop[lat_i++] = now() - lat_t0;
    if (lat_i < lat_end)
        lat_next();
    else
        __atomic_store_n(&lat_round_done, 1, __ATOMIC_RELEASE);
}

/* Runs on the loop thread: each request is sent from the previous callback. */
static void lat_next(void)
{
    gapi_request *r;

    gapi_request_new(&r, lat_c, "GET", url);
    lat_t0 = now();
    if (gapi_request_send(r, lat_cb, NULL) != GAPI_OK)
        abort();
}

static void lat_kick(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    (void)req;
    (void)err;
    (void)resp;
    (void)arg;
    lat_next();
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Rounds alternate between the two ways so that drift (frequency, caches,
 * the server's state) affects both alike. */
static void run_latency(void)
{
    gapi_request *r;
    gapi_future *f;
    double p[4];
    int ti = 0;

    lat_c = start_client(0);
    /* Warm up: connection and TLS session made. */
    gapi_request_new(&r, lat_c, "GET", url);
    gapi_request_execute(r, 0, &f);
    gapi_future_free(f);
    for (int round = 0; round < LAT_ROUNDS; round++) {
        for (int i = 0; i < LAT_PER; i++) {
            double t0;
            gapi_request_new(&r, lat_c, "GET", url);
            t0 = now(); /* as on the loop: from the hand-over, request already built */
            if (gapi_request_execute(r, 0, &f) != GAPI_OK || gapi_future_error(f))
                failed++;
            lat_thread[ti++] = now() - t0;
            gapi_future_free(f);
        }
        /* On the loop thread: one submit to get there, then a chain of
         * sends from callbacks; this thread sleeps meanwhile. */
        lat_end = lat_i + LAT_PER;
        __atomic_store_n(&lat_round_done, 0, __ATOMIC_RELEASE);
        gapi_request_new(&r, lat_c, "GET", url);
        gapi_request_submit(r, lat_kick, NULL);
        while (!__atomic_load_n(&lat_round_done, __ATOMIC_ACQUIRE))
            usleep(1000);
    }
    gapi_client_free(lat_c);
    qsort(lat_loop, LAT_N, sizeof(double), cmp_double);
    qsort(lat_thread, LAT_N, sizeof(double), cmp_double);
    p[0] = lat_loop[LAT_N / 2] * 1e6;
    p[1] = lat_loop[LAT_N * 99 / 100] * 1e6;
    p[2] = lat_thread[LAT_N / 2] * 1e6;
    p[3] = lat_thread[LAT_N * 99 / 100] * 1e6;
    printf("mode=latency n=%d loop_p50_us=%.1f loop_p99_us=%.1f thread_p50_us=%.1f "
           "thread_p99_us=%.1f added_p50_us=%.1f added_p99_us=%.1f failed=%ld\n",
           LAT_N, p[0], p[1], p[2], p[3], p[2] - p[0], p[3] - p[1], failed);
}

int main(int argc, char **argv)
{
    unsigned long long conns = 0;
    struct rusage ru;
    double t0, el, cpu;
    int opt;

    signal(SIGPIPE, SIG_IGN);
    while ((opt = getopt(argc, argv, "u:a:m:t:d:")) != -1) {
        switch (opt) {
        case 'u':
            url = optarg;
            break;
        case 'a':
            ca_file = optarg;
            break;
        case 'm':
            mode = optarg;
            break;
        case 't':
            nthreads = atoi(optarg);
            break;
        case 'd':
            seconds = atof(optarg);
            break;
        default:
            fprintf(stderr, "usage: %s -u URL -a CA -m gapi|perthread|latency -t N -d S\n",
                    argv[0]);
            return 2;
        }
    }
    if (!url || !ca_file)
        return 2;
    if (!strcmp(mode, "latency")) {
        run_latency();
        return failed != 0;
    }
    t0 = now();
    if (!strcmp(mode, "gapi"))
        run_gapi(&conns);
    else
        run_perthread(&conns);
    el = now() - t0;
    getrusage(RUSAGE_SELF, &ru);
    cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
          (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    /* Requests that finished during the drain after the timed window are
     * counted; so is their time (el covers the drain). */
    printf("mode=%s threads=%d requests=%ld failed=%ld rps=%.0f conns=%llu cpu_us_per_req=%.2f "
           "rss_kb=%ld\n",
           mode, nthreads, completed, failed, (double)completed / el, conns,
           completed ? cpu / (double)completed : 0.0, ru.ru_maxrss);
    return failed != 0;
}
