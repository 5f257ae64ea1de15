/*
 * Makes the fuzzers' seed corpora from the shared test data at run time,
 * so no copy of third-party data is committed:
 *
 *   gen_seeds SHARED_DIR OUT_DIR
 *
 * writes OUT_DIR/http_parser/ (every response of the http-parser,
 * picohttpparser and llhttp corpora; picohttpparser's chunked bodies wrapped
 * in a chunked response), OUT_DIR/json/ (small slices of the discovery
 * documents, the uritemplate-test files), OUT_DIR/uritemplate/ (every
 * template of the RFC 6570 suite, a sample of discovery method paths) and
 * OUT_DIR/discovery/ (each discovery document cut down to one resource,
 * three methods and the schemas they reach). Each
 * file is named by a hash of its content, so running it again adds nothing.
 * Missing inputs are skipped with a note; it fails only when it cannot
 * write.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "json/parse.h"

static const char *g_out;
static int g_written, g_failed;

static void add(gapi__buf *b, const void *p, size_t n)
{
    if (gapi__buf_append(b, p, n) != 0) {
        fprintf(stderr, "gen_seeds: out of memory\n");
        exit(1);
    }
}

static void seed(const char *kind, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull;
    char path[4096];
    size_t i;
    FILE *f;

    for (i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    snprintf(path, sizeof(path), "%s/%s/%016llx", g_out, kind, (unsigned long long)h);
    f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        fprintf(stderr, "gen_seeds: cannot write %s: %s\n", path, strerror(errno));
        g_failed = 1;
    } else {
        g_written++;
    }
    if (f)
        fclose(f);
}

static char *slurp(const char *shared, const char *rel, size_t *len)
{
    char path[4096];
    FILE *f;
    char *buf = NULL;
    long n;

    snprintf(path, sizeof(path), "%s/%s", shared, rel);
    f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "gen_seeds: skipping %s (%s)\n", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
            *len = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static struct json_object *load(const char *shared, const char *rel, char **text, size_t *len)
{
    struct json_object *o = NULL;
    char *t = slurp(shared, rel, len);

    if (t && gapi__json_parse(t, *len, 0, &o, NULL) != 0) {
        fprintf(stderr, "gen_seeds: %s is not JSON, skipped\n", rel);
        o = NULL;
    }
    if (text)
        *text = t;
    else
        free(t);
    return o;
}

/* A JSON string whose code points are all <= U+00FF, as bytes. */
static void latin1(struct json_object *s, gapi__buf *out)
{
    const unsigned char *p = (const unsigned char *)json_object_get_string(s);
    size_t n = (size_t)json_object_get_string_len(s), i;
    char c;

    for (i = 0; i < n; i++) {
        if (p[i] >= 0xC0 && i + 1 < n) {
            c = (char)(((p[i] & 0x1F) << 6) | (p[i + 1] & 0x3F));
            i++;
        } else {
            c = (char)p[i];
        }
        add(out, &c, 1);
    }
}

/* ------------------------------------------------------------ http */

static void http_llhttp(const char *shared, const char *file)
{
    char rel[256];
    size_t len = 0, n;
    char *text, *l, *eol, *end;
    int in = 0, first = 0;
    gapi__buf b = GAPI__BUF_INIT, u = GAPI__BUF_INIT;

    snprintf(rel, sizeof(rel), "http-response/llhttp/%s", file);
    if ((text = slurp(shared, rel, &len)) == NULL)
        return;
    end = text + len;
    for (l = text; l < end; l = eol + 1) {
        eol = memchr(l, '\n', (size_t)(end - l));
        if (!eol)
            eol = end;
        n = (size_t)(eol - l);
        if (!in && n == 7 && memcmp(l, "```http", 7) == 0) {
            in = first = 1;
            gapi__buf_reset(&b);
        } else if (in && n == 3 && memcmp(l, "```", 3) == 0) {
            size_t i;
            in = 0;
            /* Lines are CRLF-joined; \r \n \t \f are escapes (llhttp's
             * markdown test format). */
            gapi__buf_reset(&u);
            for (i = 0; i < b.len; i++) {
                char c = b.data[i];
                const char *m;
                if (c == '\\' && i + 1 < b.len && b.data[i + 1] &&
                    (m = strchr("rntf", b.data[i + 1])) != NULL) {
                    c = "\r\n\t\f"[m - "rntf"];
                    i++;
                }
                add(&u, &c, 1);
            }
            if (u.len > 5 && memcmp(u.data, "HTTP/", 5) == 0)
                seed("http_parser", u.data, u.len);
        } else if (in) {
            if (!first)
                add(&b, "\r\n", 2);
            first = 0;
            add(&b, l, n);
        }
    }
    gapi__buf_free(&b);
    gapi__buf_free(&u);
    free(text);
}

static void http_seeds(const char *shared)
{
    static const char *const md[] = {"sample.md",  "connection.md", "content-length.md",
                                     "finish.md",  "invalid.md",    "lenient-version.md",
                                     "pausing.md", "pipelining.md", "transfer-encoding.md"};
    static const char chunked_head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    struct json_object *doc, *arr, *v;
    gapi__buf b = GAPI__BUF_INIT;
    size_t len, i;

    if ((doc = load(shared, "http-response/http-parser/responses.derived.json", NULL, &len))) {
        for (i = 0; i < json_object_array_length(doc); i++)
            if (json_object_object_get_ex(json_object_array_get_idx(doc, i), "raw", &v))
                seed("http_parser", json_object_get_string(v),
                     (size_t)json_object_get_string_len(v));
        json_object_put(doc);
    }
    if ((doc = load(shared, "http-response/picohttpparser/cases.derived.json", NULL, &len))) {
        if (json_object_object_get_ex(doc, "response_cases", &arr))
            for (i = 0; i < json_object_array_length(arr); i++)
                if (json_object_object_get_ex(json_object_array_get_idx(arr, i), "input_latin1",
                                              &v)) {
                    gapi__buf_reset(&b);
                    latin1(v, &b);
                    seed("http_parser", b.data ? b.data : "", b.len);
                }
        if (json_object_object_get_ex(doc, "chunked_cases", &arr))
            for (i = 0; i < json_object_array_length(arr); i++)
                if (json_object_object_get_ex(json_object_array_get_idx(arr, i), "encoded_latin1",
                                              &v)) {
                    gapi__buf_reset(&b);
                    add(&b, chunked_head, sizeof(chunked_head) - 1);
                    latin1(v, &b);
                    seed("http_parser", b.data, b.len);
                }
        json_object_put(doc);
    }
    for (i = 0; i < sizeof(md) / sizeof(md[0]); i++)
        http_llhttp(shared, md[i]);
    gapi__buf_free(&b);
}

/* ------------------------------------------------------------ json */

/* Subtrees whose text is 32..2048 bytes: counts them, and writes every
 * stride-th one when stride is not 0. */
static void json_slices(struct json_object *o, unsigned *count, unsigned stride)
{
    const char *t;
    size_t n, i;

    if (!json_object_is_type(o, json_type_object) && !json_object_is_type(o, json_type_array))
        return;
    t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
    n = strlen(t);
    if (n >= 32 && n <= 2048 && stride && (*count)++ % stride == 0)
        seed("json", t, n);
    else if (n >= 32 && n <= 2048 && !stride)
        (*count)++;
    if (n <= 64)
        return;
    if (json_object_is_type(o, json_type_array)) {
        for (i = 0; i < json_object_array_length(o); i++)
            json_slices(json_object_array_get_idx(o, i), count, stride);
    } else {
        json_object_object_foreach(o, k, v)
        {
            (void)k;
            json_slices(v, count, stride);
        }
    }
}

/* ------------------------------------------------------------ discovery */

/* Adds the schemas named by "$ref" anywhere in o (and in those, and so on)
 * from all to keep. */
static void add_refs(struct json_object *o, struct json_object *all, struct json_object *keep)
{
    struct json_object *schema;
    size_t i;

    if (json_object_is_type(o, json_type_array)) {
        for (i = 0; i < json_object_array_length(o); i++)
            add_refs(json_object_array_get_idx(o, i), all, keep);
    } else if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, k, v)
        {
            const char *name = json_object_get_string(v);
            if (strcmp(k, "$ref") == 0 && json_object_is_type(v, json_type_string) &&
                !json_object_object_get_ex(keep, name, NULL) &&
                json_object_object_get_ex(all, name, &schema) &&
                json_object_object_length(keep) < 24) {
                json_object_object_add(keep, name, json_object_get(schema));
                add_refs(schema, all, keep);
            } else {
                add_refs(v, all, keep);
            }
        }
    }
}

/* The first resource, depth first, that has methods. */
static struct json_object *first_with_methods(struct json_object *resources, const char **name)
{
    struct json_object *m, *sub, *found;

    json_object_object_foreach(resources, rname, r)
    {
        if (json_object_object_get_ex(r, "methods", &m)) {
            *name = rname;
            return r;
        }
        if (json_object_object_get_ex(r, "resources", &sub) &&
            (found = first_with_methods(sub, name)) != NULL)
            return found;
    }
    return NULL;
}

/* A small discovery document cut from a real one: every top-level field
 * but resources and schemas, the first resource that has methods (found
 * depth first, moved to the top) with its first three methods and no
 * sub-resources, and the schemas those methods reach through "$ref". */
static void discovery_trimmed(struct json_object *doc)
{
    struct json_object *out = json_object_new_object(), *keep = json_object_new_object();
    struct json_object *resources, *schemas = NULL, *methods, *r, *res, *ms;
    const char *t, *rname = NULL;
    int n = 0;

    json_object_object_get_ex(doc, "schemas", &schemas);
    json_object_object_foreach(doc, k, v)
    {
        if (strcmp(k, "resources") != 0 && strcmp(k, "schemas") != 0)
            json_object_object_add(out, k, json_object_get(v));
    }
    if (json_object_object_get_ex(doc, "resources", &resources) &&
        (r = first_with_methods(resources, &rname)) != NULL &&
        json_object_object_get_ex(r, "methods", &methods)) {
        ms = json_object_new_object();
        json_object_object_foreach(methods, mname, m)
        {
            if (n++ == 3)
                break;
            json_object_object_add(ms, mname, json_object_get(m));
            if (schemas)
                add_refs(m, schemas, keep);
        }
        res = json_object_new_object();
        json_object_object_add(res, "methods", ms);
        resources = json_object_new_object();
        json_object_object_add(resources, rname, res);
        json_object_object_add(out, "resources", resources);
    }
    json_object_object_add(out, "schemas", keep);
    t = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN);
    seed("discovery", t, strlen(t));
    json_object_put(out);
}

/* ------------------------------------------------------------ uritemplate */

static void method_paths(struct json_object *res, unsigned *count)
{
    struct json_object *methods, *resources, *p;

    if (json_object_object_get_ex(res, "methods", &methods)) {
        json_object_object_foreach(methods, k, m)
        {
            (void)k;
            /* Every 8th method: the paths repeat a few shapes. */
            if ((*count)++ % 8 == 0) {
                if (json_object_object_get_ex(m, "path", &p))
                    seed("uritemplate", json_object_get_string(p),
                         (size_t)json_object_get_string_len(p));
                if (json_object_object_get_ex(m, "flatPath", &p))
                    seed("uritemplate", json_object_get_string(p),
                         (size_t)json_object_get_string_len(p));
            }
        }
    }
    if (json_object_object_get_ex(res, "resources", &resources)) {
        json_object_object_foreach(resources, k, r)
        {
            (void)k;
            method_paths(r, count);
        }
    }
}

static void uritemplate_file(const char *shared, const char *file)
{
    char rel[256], *text = NULL;
    struct json_object *doc, *cases, *c;
    size_t len = 0, i;

    snprintf(rel, sizeof(rel), "uritemplate-test/%s", file);
    if ((doc = load(shared, rel, &text, &len)) == NULL) {
        free(text);
        return;
    }
    seed("json", text, len);
    json_object_object_foreach(doc, group, g)
    {
        (void)group;
        if (!json_object_object_get_ex(g, "testcases", &cases))
            continue;
        for (i = 0; i < json_object_array_length(cases); i++) {
            c = json_object_array_get_idx(json_object_array_get_idx(cases, i), 0);
            if (json_object_is_type(c, json_type_string))
                seed("uritemplate", json_object_get_string(c),
                     (size_t)json_object_get_string_len(c));
        }
    }
    json_object_put(doc);
    free(text);
}

static void discovery_seeds(const char *shared)
{
    char dir[4096], rel[512];
    struct dirent *e;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/discovery", shared);
    if ((d = opendir(dir)) == NULL) {
        fprintf(stderr, "gen_seeds: skipping %s (%s)\n", dir, strerror(errno));
        return;
    }
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), len;
        struct json_object *doc;
        unsigned count = 0, stride;

        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
            continue;
        snprintf(rel, sizeof(rel), "discovery/%s", e->d_name);
        if ((doc = load(shared, rel, NULL, &len)) == NULL)
            continue;
        /* About 40 slices from a document of any size. */
        json_slices(doc, &count, 0);
        stride = count / 40 + 1;
        count = 0;
        json_slices(doc, &count, stride);
        count = 0;
        method_paths(doc, &count);
        discovery_trimmed(doc);
        json_object_put(doc);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    static const char *const kinds[] = {"http_parser", "json", "uritemplate", "discovery"};
    static const char *const ut[] = {"spec-examples.json", "spec-examples-by-section.json",
                                     "extended-tests.json", "negative-tests.json"};
    char path[4096];
    size_t i;

    if (argc != 3) {
        fprintf(stderr, "usage: gen_seeds SHARED_DIR OUT_DIR\n");
        return 2;
    }
    g_out = argv[2];
    mkdir(g_out, 0777);
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", g_out, kinds[i]);
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "gen_seeds: cannot create %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    http_seeds(argv[1]);
    for (i = 0; i < sizeof(ut) / sizeof(ut[0]); i++)
        uritemplate_file(argv[1], ut[i]);
    discovery_seeds(argv[1]);
    printf("gen_seeds: %d seed files in %s\n", g_written, g_out);
    return g_failed ? 1 : 0;
}
