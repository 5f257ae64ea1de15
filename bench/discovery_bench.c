/*
 * Discovery loader benchmark: time to build a service model from each
 * document in SHARED_DIR/discovery, the memory the model holds, and method
 * lookups per second.
 *
 *   discovery_bench [SHARED_DIR]
 *
 * SHARED_DIR defaults to $GAPI_SHARED_DIR, else ../shared. Per document:
 *  - cold: the first load in this process (on a trimmed heap), wall time
 *    and the thread's CPU time (user + system: page faults included), which
 *    other processes on a busy machine do not inflate;
 *  - best: the best of several loads (BENCH_SECONDS per document, default
 *    0.5), and the best time of the JSON parse alone (parse + free of the
 *    json-c tree), the floor for any loader that goes through the tree;
 *  - model: bytes held by the model, counted through gapi_set_allocator
 *    (every byte the library asked for and still holds, no malloc
 *    overhead), and its ratio to the document's size; heap: the same seen
 *    by mallinfo2 (with malloc's own overhead);
 *  - lookups: gapi_service_method by dotted path and gapi_service_method_by_id,
 *    over every method of the document in turn, per second.
 * The target is compute.v1.json: under 50 ms, model <= 3x the document.
 */
#include <dirent.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "gapi.h"
#include "json/parse.h"

static double bench_seconds = 0.5;

/* ---------------------------------------------------------------- counting allocator */

/* 16 bytes keep malloc's alignment for the caller. */
#define HDR 16
static size_t live_bytes;

static void *count_malloc(size_t n)
{
    char *p = malloc(n + HDR);
    if (!p)
        return NULL;
    *(size_t *)p = n;
    live_bytes += n;
    return p + HDR;
}

static void count_free(void *q)
{
    char *p;
    if (!q)
        return;
    p = (char *)q - HDR;
    live_bytes -= *(size_t *)p;
    free(p);
}

static void *count_realloc(void *q, size_t n)
{
    char *p, *np;
    size_t old;
    if (!q)
        return count_malloc(n);
    p = (char *)q - HDR;
    old = *(size_t *)p;
    np = realloc(p, n + HDR);
    if (!np)
        return NULL;
    *(size_t *)np = n;
    live_bytes = live_bytes - old + n;
    return np + HDR;
}

/* ---------------------------------------------------------------- helpers */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n;
    char *buf;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static gapi_service *load(const char *name, const char *doc, size_t len)
{
    gapi_service *svc = NULL;
    char err[256];
    int rc = gapi_service_from_json(&svc, doc, len, NULL, err, sizeof(err));

    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", name, gapi_error_name(rc), err);
        exit(1);
    }
    return svc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void bench_one(const char *dir, const char *file)
{
    char path[4096];
    char *doc;
    size_t len, live0, model, nm, i;
    gapi_service *svc;
    struct mallinfo2 before, after;
    double t0, c0, t, cold, cold_cpu, best = 1e9, pbest = 1e9, deadline, lk_name, lk_id;
    unsigned long rounds = 0, lookups;
    const char **names, **ids;

    snprintf(path, sizeof(path), "%s/discovery/%s", dir, file);
    if (!(doc = slurp(path, &len))) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }

    /* Cold: first load of this document, on a trimmed heap; memory is
     * measured on it too. */
    malloc_trim(0);
    before = mallinfo2();
    live0 = live_bytes;
    c0 = cpu_now();
    t0 = now();
    svc = load(file, doc, len);
    cold = now() - t0;
    cold_cpu = cpu_now() - c0;
    model = live_bytes - live0;
    after = mallinfo2();

    /* Warm loads. */
    deadline = now() + bench_seconds;
    do {
        gapi_service *s2;
        t0 = now();
        s2 = load(file, doc, len);
        t = now() - t0;
        gapi_service_unref(s2);
        if (t < best)
            best = t;
        rounds++;
    } while (now() < deadline || rounds < 3);
    deadline = now() + bench_seconds / 2;
    rounds = 0;
    do {
        struct json_object *root = NULL;
        t0 = now();
        if (gapi__json_parse(doc, len, 0, &root, NULL) != 0)
            exit(1);
        json_object_put(root);
        t = now() - t0;
        if (t < pbest)
            pbest = t;
        rounds++;
    } while (now() < deadline || rounds < 3);

    /* Lookups over every method, in sorted order so consecutive lookups do
     * not follow the table's layout. */
    nm = gapi_service_method_count(svc);
    names = malloc((nm ? nm : 1) * sizeof(*names));
    ids = malloc((nm ? nm : 1) * sizeof(*ids));
    if (!names || !ids)
        exit(1);
    for (i = 0; i < nm; i++) {
        names[i] = gapi_method_name(gapi_service_method_at(svc, i));
        ids[i] = gapi_method_id(gapi_service_method_at(svc, i));
    }
    qsort(names, nm, sizeof(*names), cmp_str);
    qsort(ids, nm, sizeof(*ids), cmp_str);
    lookups = 0;
    t0 = now();
    deadline = t0 + bench_seconds / 4;
    do {
        for (i = 0; i < nm; i++)
            if (!gapi_service_method(svc, names[i]))
                exit(1);
        lookups += nm;
    } while (now() < deadline);
    lk_name = (double)lookups / (now() - t0);
    lookups = 0;
    t0 = now();
    deadline = t0 + bench_seconds / 4;
    do {
        for (i = 0; i < nm; i++)
            if (!gapi_service_method_by_id(svc, ids[i]))
                exit(1);
        lookups += nm;
    } while (now() < deadline);
    lk_id = (double)lookups / (now() - t0);

    printf("%-18s %8zu %5zu %7.2f %7.2f %7.2f %7.2f %6.1f %9zu %5.2fx %9.2f %6.1fM %6.1fM\n", file,
           len, nm, cold * 1e3, cold_cpu * 1e3, best * 1e3, pbest * 1e3, (double)len / best / 1e6,
           model, (double)model / (double)len,
           ((double)(after.uordblks + after.hblkhd) - (double)(before.uordblks + before.hblkhd)) /
               1048576.0,
           lk_name / 1e6, lk_id / 1e6);
    fflush(stdout);
    free(names);
    free(ids);
    gapi_service_unref(svc);
    free(doc);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : getenv("GAPI_SHARED_DIR");
    const char *secs = getenv("BENCH_SECONDS");
    char path[4096];
    char *files[256];
    size_t nfiles = 0, i;
    struct dirent *de;
    DIR *d;

    if (!dir || !*dir)
        dir = "../shared";
    if (secs && atof(secs) > 0)
        bench_seconds = atof(secs);
    if (gapi_set_allocator(count_malloc, count_realloc, count_free) != 0)
        return 1;
    snprintf(path, sizeof(path), "%s/discovery", dir);
    if (!(d = opendir(path))) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    while ((de = readdir(d)) != NULL && nfiles < 256) {
        size_t n = strlen(de->d_name);
        if (n > 5 && strcmp(de->d_name + n - 5, ".json") == 0)
            files[nfiles++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(files, nfiles, sizeof(files[0]), cmp_name);

    /* compute first, so its cold load is the process's first load. */
    for (i = 0; i < nfiles; i++)
        if (strcmp(files[i], "compute.v1.json") == 0 && i > 0) {
            char *t = files[0];
            files[0] = files[i];
            files[i] = t;
        }

    printf("%-18s %8s %5s %7s %7s %7s %7s %6s %9s %6s %9s %7s %7s\n", "document", "bytes", "meth",
           "cold ms", "cpu ms", "best ms", "parse", "MB/s", "model B", "ratio", "heap MiB",
           "by path", "by id");
    for (i = 0; i < nfiles; i++) {
        bench_one(dir, files[i]);
        free(files[i]);
    }
    printf("\ncold = first load of the document in this process (wall, and cpu = its CPU time);\n"
           "best = best of several;\n"
           "parse = best gapi__json_parse + json_object_put alone (the floor through json-c);\n"
           "model B = bytes the model holds (counted via gapi_set_allocator); ratio = model / "
           "document;\nheap MiB = mallinfo2 growth for the model; by path / by id = million "
           "lookups per second.\n");
    return 0;
}
