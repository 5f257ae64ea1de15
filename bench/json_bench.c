/*
 * JSON parse benchmark: gapi__json_parse against json-c's json_tokener_parse
 * (the reference), same inputs, same run, same json-c tree at the end.
 *
 *   json_bench [SHARED_DIR]
 *
 * Inputs: a ~600-byte storage object (inline, a typical API response) and
 * every .json file in SHARED_DIR/discovery (SHARED_DIR defaults to
 * $GAPI_SHARED_DIR, else ../shared). For each input it prints microseconds
 * per parse and MB/s for ours and for json-c, and json-c time / ours; also
 * json-c with one reused tokener (json_tokener_parse_ex), and
 * json_object_deep_copy of the parsed tree: what building the same json-c
 * tree costs with no parsing at all, the floor for any parser that builds
 * json-c trees. Times are the best of several rounds on a warm heap;
 * freeing trees is not timed (the same json-c code for both). At the end:
 * the heap held by each parser's compute.v1 tree (mallinfo2) and the time
 * of one parse of it on a trimmed heap. BENCH_SECONDS sets the time per
 * measurement (default 0.5).
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

#define BATCHES 5

static const char storage_object[] =
    "{\n"
    "  \"kind\": \"storage#object\",\n"
    "  \"id\": \"example-bucket/reports/2024/q1-summary.csv/1712345678901234\",\n"
    "  \"selfLink\": \"https://www.googleapis.com/storage/v1/b/example-bucket/o/"
    "reports%2F2024%2Fq1-summary.csv\",\n"
    "  \"name\": \"reports/2024/q1-summary.csv\",\n"
    "  \"bucket\": \"example-bucket\",\n"
    "  \"generation\": \"1712345678901234\",\n"
    "  \"metageneration\": \"1\",\n"
    "  \"contentType\": \"text/csv\",\n"
    "  \"storageClass\": \"STANDARD\",\n"
    "  \"size\": \"48213\",\n"
    "  \"md5Hash\": \"1B2M2Y8AsgTpgAmY7PhCfg==\",\n"
    "  \"crc32c\": \"AAAAAA==\",\n"
    "  \"etag\": \"CPqK8pXz4oQDEAE=\",\n"
    "  \"timeCreated\": \"2024-04-05T17:34:38.901Z\",\n"
    "  \"updated\": \"2024-04-05T17:34:38.901Z\",\n"
    "  \"metadata\": {\"owner\": \"finance\", \"reviewed\": \"true\"}\n"
    "}\n";

static double bench_seconds = 0.5;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* P_COPY is not a parser: json_object_deep_copy of the parsed tree, the
 * cost of making the same json-c tree with no parsing at all (the floor
 * for any parser that builds json-c trees through json-c's API). */
enum parser_kind { P_OURS, P_JSONC, P_JSONC_REUSED, P_COPY };

static json_tokener *reused_tok;
static struct json_object *copy_src;

static struct json_object *parse_with(enum parser_kind k, const char *s, size_t len)
{
    struct json_object *o = NULL;

    switch (k) {
    case P_OURS:
        if (gapi__json_parse(s, len, 0, &o, NULL) != 0) {
            fprintf(stderr, "gapi__json_parse failed\n");
            exit(1);
        }
        break;
    case P_JSONC:
        o = json_tokener_parse(s);
        break;
    case P_JSONC_REUSED:
        json_tokener_reset(reused_tok);
        o = json_tokener_parse_ex(reused_tok, s, (int)len);
        break;
    case P_COPY:
        if (json_object_deep_copy(copy_src, &o, NULL) != 0)
            o = NULL;
        break;
    }
    if (!o) {
        fprintf(stderr, "parser %d failed\n", (int)k);
        exit(1);
    }
    return o;
}

/* Parse s n times, keeping the trees in held[0..n), and return the seconds
 * the parses took. The trees are freed afterwards, untimed: freeing a tree
 * is the same json-c code whichever parser built it. */
static double timed_batch(enum parser_kind k, const char *s, size_t len, struct json_object **held,
                          long n)
{
    double t0, t;
    long i;

    t0 = now();
    for (i = 0; i < n; i++)
        held[i] = parse_with(k, s, len);
    t = now() - t0;
    for (i = 0; i < n; i++)
        json_object_put(held[i]);
    return t;
}

/* Best microseconds per parse over BATCHES rounds of about bench_seconds
 * in total. Trees are held in groups of at most HELD (and about 64 MB of
 * input) so that freeing stays out of the timing. */
#define HELD 512
static double time_parser(enum parser_kind k, const char *s, size_t len)
{
    struct json_object *held[HELD];
    double t, best = 1e30, round = bench_seconds / BATCHES;
    long group = (long)(64000000 / (len * 8 + 1)) + 1, b, done;

    if (group > HELD)
        group = HELD;
    timed_batch(k, s, len, held, 1); /* warm up */
    for (b = 0; b < BATCHES; b++) {
        double spent = 0;
        for (done = 0; spent < round || done == 0; done += group)
            spent += timed_batch(k, s, len, held, group);
        t = spent / (double)done;
        if (t < best)
            best = t;
    }
    return best * 1e6;
}

static void bench_one(const char *name, const char *s, size_t len)
{
    double ours = time_parser(P_OURS, s, len);
    double jc = time_parser(P_JSONC, s, len);
    double jr = time_parser(P_JSONC_REUSED, s, len);
    double mb = (double)len / 1e6, copy;

    copy_src = parse_with(P_OURS, s, len);
    copy = time_parser(P_COPY, s, len);
    json_object_put(copy_src);
    printf("%-20s %8zu %9.2f %7.1f %9.2f %7.1f %6.2fx %9.2f %6.2fx %9.2f\n", name, len, ours,
           mb / (ours / 1e6), jc, mb / (jc / 1e6), jc / ours, jr, jr / ours, copy);
    fflush(stdout);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        (buf = malloc((size_t)n + 1)) == NULL) {
        fclose(f);
        return NULL;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0'; /* json_tokener_parse needs it; ours is given len */
    *len = (size_t)n;
    return buf;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted *.json names in dir; NULL-terminated, caller frees. */
static char **list_json(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, l;

    if (!d)
        return NULL;
    while ((e = readdir(d)) != NULL) {
        l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
            continue;
        names = realloc(names, (n + 2) * sizeof(*names));
        if (!names || (names[n] = strdup(e->d_name)) == NULL)
            abort();
        n++;
    }
    closedir(d);
    if (!names)
        return NULL;
    names[n] = NULL;
    qsort(names, n, sizeof(*names), by_name);
    return names;
}

/* Heap bytes held by one tree of s, and the time of that one (cold) parse. */
static size_t tree_bytes(enum parser_kind k, const char *s, size_t len, double *ms)
{
    struct mallinfo2 before, after;
    struct json_object *o;
    double t0;

    malloc_trim(0);
    before = mallinfo2();
    t0 = now();
    o = parse_with(k, s, len);
    *ms = (now() - t0) * 1e3;
    after = mallinfo2();
    json_object_put(o);
    return after.uordblks - before.uordblks;
}

static void memory_report(const char *path)
{
    size_t len, ours, jc;
    double ms_ours, ms_jc;
    char *s = read_file(path, &len);

    if (!s)
        return;
    ours = tree_bytes(P_OURS, s, len, &ms_ours);
    jc = tree_bytes(P_JSONC, s, len, &ms_jc);
    printf("\ncompute.v1 tree (%zu bytes of JSON): ours %.1f MiB, json-c %.1f MiB "
           "(heap in use, mallinfo2)\n",
           len, (double)ours / 1048576.0, (double)jc / 1048576.0);
    printf("compute.v1 first (cold) parse: ours %.2f ms, json-c %.2f ms\n", ms_ours, ms_jc);
    free(s);
}

int main(int argc, char **argv)
{
    const char *shared = argc > 1 ? argv[1] : getenv("GAPI_SHARED_DIR");
    const char *secs = getenv("BENCH_SECONDS");
    char dir[4096], path[4200];
    char **names;
    size_t i, len;

    if (!shared || !*shared)
        shared = "../shared";
    if (secs && atof(secs) > 0)
        bench_seconds = atof(secs);
    /* Keep freed memory in the process: otherwise glibc returns the top of
     * the heap to the kernel after a group of trees is freed, and whichever
     * parser runs next pays page faults for it at random. The cold case is
     * measured separately below. */
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    reused_tok = json_tokener_new();
    if (!reused_tok)
        return 1;
    snprintf(dir, sizeof(dir), "%s/discovery", shared);

    printf("%-20s %8s %9s %7s %9s %7s %7s %9s %7s %9s\n", "input", "bytes", "ours us", "MB/s",
           "json-c us", "MB/s", "ratio", "reused us", "ratio", "copy us");
    bench_one("storage object", storage_object, sizeof(storage_object) - 1);
    names = list_json(dir);
    if (!names) {
        printf("(no discovery documents in %s; pass SHARED_DIR)\n", dir);
    } else {
        for (i = 0; names[i]; i++) {
            char *s;
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            if ((s = read_file(path, &len)) != NULL) {
                bench_one(names[i], s, len);
                free(s);
            }
            free(names[i]);
        }
        free(names);
        snprintf(path, sizeof(path), "%s/compute.v1.json", dir);
        memory_report(path);
    }
    printf("\nratio = json-c time / ours (json_tokener_parse; \"reused\" = one tokener, "
           "json_tokener_parse_ex);\ncopy = json_object_deep_copy of the tree: building the "
           "same json-c tree without parsing\n");
    json_tokener_free(reused_tok);
    return 0;
}
