/*
 * Tests of the discovery service model (src/discovery).
 *
 * Every document in ../shared/discovery is loaded, from memory and from
 * its file, and checked against json-c's own reading of the same file (its
 * tokener, not our parser): the method count, every method addressed by
 * dotted path and by id (the same method both ways), each method's fields
 * and parameters, the global parameters, and every schema (parsed back from
 * the model's compact text, equal to json-c's tree). The memory the model
 * holds is counted through gapi_set_allocator and must stay <= 3x the
 * document. Then: fields of real methods (storage, gmail, compute, drive,
 * iam, logging), a hand-written document with what the real ones lack (a
 * hyphenated method name, a resource and a method of the same name, a
 * "max-results" parameter, a method parameter shadowing a global one),
 * every error with its code and message, duplicate keys, a mutation loop
 * checking that the loader accepts exactly the JSON our strict parser
 * accepts, allocation failure at every allocation, references across
 * threads, endpoint override and universe domain (option and environment).
 */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "gapi.h"
#include "discovery/discovery.h"
#include "json/parse.h"
#include "tap.h"

/* ------------------------------------------------------------ counting allocator */

/* A 16-byte header keeps malloc's alignment and records the size. */
#define HDR 16
static size_t live_bytes; /* requested bytes the library holds now */
static long alloc_calls;  /* allocations since the counter was reset */
static long fail_at;      /* fail the fail_at-th allocation (0: never) */
static int failed_once;   /* set when the injected failure happened */

static void *t_malloc(size_t n)
{
    char *p;
    if (fail_at && __atomic_add_fetch(&alloc_calls, 1, __ATOMIC_RELAXED) == fail_at) {
        failed_once = 1;
        return NULL;
    }
    if (!(p = malloc(n + HDR)))
        return NULL;
    *(size_t *)p = n;
    __atomic_add_fetch(&live_bytes, n, __ATOMIC_RELAXED);
    return p + HDR;
}

static void t_free(void *q)
{
    char *p;
    if (!q)
        return;
    p = (char *)q - HDR;
    __atomic_sub_fetch(&live_bytes, *(size_t *)p, __ATOMIC_RELAXED);
    free(p);
}

static void *t_realloc(void *q, size_t n)
{
    char *p, *np;
    size_t old;
    if (!q)
        return t_malloc(n);
    if (fail_at && __atomic_add_fetch(&alloc_calls, 1, __ATOMIC_RELAXED) == fail_at) {
        failed_once = 1;
        return NULL;
    }
    p = (char *)q - HDR;
    old = *(size_t *)p;
    if (!(np = realloc(p, n + HDR)))
        return NULL;
    *(size_t *)np = n;
    __atomic_add_fetch(&live_bytes, n, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&live_bytes, old, __ATOMIC_RELAXED);
    return np + HDR;
}

/* ------------------------------------------------------------ helpers */

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
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        abort();
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

/* Stands in for an absent object, so json_object_object_foreach can walk it. */
static struct json_object *empty_object;

static const char *str_or_null(struct json_object *obj, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(obj, key, &v) && v ? json_object_get_string(v) : NULL;
}

static int bool_of(struct json_object *obj, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(obj, key, &v) && v ? json_object_get_boolean(v) : 0;
}

static int same_str(const char *a, const char *b)
{
    return (a && b) ? strcmp(a, b) == 0 : a == b;
}

/* Load from a string literal (NUL not passed). */
static int load_str(gapi_service **out, const char *doc, const gapi_service_options *opts,
                    char *err, size_t errlen)
{
    return gapi_service_from_json(out, doc, strlen(doc), opts, err, errlen);
}

/* ------------------------------------------------------------ real documents */

struct walk {
    const gapi_service *svc;
    size_t methods;    /* counted by the json-c walk */
    size_t bad_lookup; /* by path or id: missing, different, or wrong name/id */
    size_t bad_fields; /* httpMethod, path, flatPath, apiVersion, refs, scopes, flags */
    size_t bad_params; /* a parameter differs, or the order is wrong */
    size_t params;     /* parameters compared */
    size_t first_diag; /* diagnostics printed */
};

static void wdiag(struct walk *w, const char *what, const char *name)
{
    if (w->first_diag++ < 5)
        diag("  %s: %s", name, what);
}

static int same_param(const gapi_param *p, const char *name, struct json_object *jp)
{
    struct json_object *en = NULL, *loc;
    size_t i, n;

    if (!p || strcmp(gapi_param_name(p), name) != 0)
        return 0;
    if (!json_object_object_get_ex(jp, "location", &loc))
        return 0;
    if (gapi_param_location(p) !=
        (strcmp(json_object_get_string(loc), "path") == 0 ? GAPI_PARAM_PATH : GAPI_PARAM_QUERY))
        return 0;
    if (!same_str(gapi_param_type(p), str_or_null(jp, "type")) ||
        !same_str(gapi_param_format(p), str_or_null(jp, "format")) ||
        !same_str(gapi_param_pattern(p), str_or_null(jp, "pattern")) ||
        !same_str(gapi_param_default(p), str_or_null(jp, "default")) ||
        !same_str(gapi_param_minimum(p), str_or_null(jp, "minimum")) ||
        !same_str(gapi_param_maximum(p), str_or_null(jp, "maximum")) ||
        gapi_param_required(p) != bool_of(jp, "required") ||
        gapi_param_repeated(p) != bool_of(jp, "repeated"))
        return 0;
    json_object_object_get_ex(jp, "enum", &en);
    n = en ? json_object_array_length(en) : 0;
    if (gapi_param_enum_count(p) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (strcmp(gapi_param_enum_at(p, i),
                   json_object_get_string(json_object_array_get_idx(en, i))) != 0)
            return 0;
    return 1;
}

static void check_method(struct walk *w, const char *dotted, struct json_object *jm)
{
    const char *id = str_or_null(jm, "id");
    const gapi_method *m = gapi_service_method(w->svc, dotted);
    const gapi_method *mi = gapi_service_method_by_id(w->svc, id);
    struct json_object *params = NULL, *order = NULL, *scopes = NULL, *mu = NULL, *ref;
    size_t i, n, k;
    unsigned flags = 0;

    w->methods++;
    if (!m || m != mi || strcmp(gapi_method_name(m), dotted) != 0 ||
        strcmp(gapi_method_id(m), id) != 0) {
        w->bad_lookup++;
        wdiag(w, "lookup by path and by id disagree", dotted);
        return;
    }
    json_object_object_get_ex(jm, "scopes", &scopes);
    json_object_object_get_ex(jm, "mediaUpload", &mu);
    if (bool_of(jm, "supportsMediaUpload") || mu)
        flags |= GAPI_METHOD_MEDIA_UPLOAD;
    if (bool_of(jm, "supportsMediaDownload"))
        flags |= GAPI_METHOD_MEDIA_DOWNLOAD;
    if (bool_of(jm, "useMediaDownloadService"))
        flags |= GAPI_METHOD_MEDIA_DOWNLOAD_SERVICE;
    if (bool_of(jm, "supportsSubscription"))
        flags |= GAPI_METHOD_SUBSCRIPTION;
    if (!same_str(gapi_method_http_method(m), str_or_null(jm, "httpMethod")) ||
        !same_str(gapi_method_path(m), str_or_null(jm, "path")) ||
        !same_str(gapi_method_flat_path(m), str_or_null(jm, "flatPath")) ||
        !same_str(gapi_method_api_version(m), str_or_null(jm, "apiVersion")) ||
        !same_str(gapi_method_request_ref(m), json_object_object_get_ex(jm, "request", &ref)
                                                  ? str_or_null(ref, "$ref")
                                                  : NULL) ||
        !same_str(gapi_method_response_ref(m), json_object_object_get_ex(jm, "response", &ref)
                                                   ? str_or_null(ref, "$ref")
                                                   : NULL) ||
        gapi_method_scope_count(m) != (scopes ? json_object_array_length(scopes) : 0) ||
        gapi_method_flags(m) != flags ||
        gapi_method_media_accept_count(m) != (mu && json_object_object_get_ex(mu, "accept", &ref)
                                                  ? json_object_array_length(ref)
                                                  : 0)) {
        w->bad_fields++;
        wdiag(w, "a method field differs", dotted);
    }
    for (i = 0; scopes && i < json_object_array_length(scopes); i++)
        if (!same_str(gapi_method_scope_at(m, i),
                      json_object_get_string(json_object_array_get_idx(scopes, i)))) {
            w->bad_fields++;
            wdiag(w, "a scope differs", dotted);
        }

    json_object_object_get_ex(jm, "parameters", &params);
    json_object_object_get_ex(jm, "parameterOrder", &order);
    if (!params)
        params = empty_object;
    n = params ? (size_t)json_object_object_length(params) : 0;
    k = order ? json_object_array_length(order) : 0;
    if (gapi_method_param_count(m) != n || gapi_method_param_order_count(m) != k) {
        w->bad_params++;
        wdiag(w, "parameter counts differ", dotted);
        return;
    }
    /* parameterOrder first, in order ... */
    for (i = 0; i < k; i++) {
        const char *pn = json_object_get_string(json_object_array_get_idx(order, i));
        struct json_object *jp;
        json_object_object_get_ex(params, pn, &jp);
        if (!same_param(gapi_method_param_at(m, i), pn, jp)) {
            w->bad_params++;
            wdiag(w, "parameterOrder entry differs", dotted);
        }
    }
    /* ... and every parameter found by name, the rest in document order. */
    i = k;
    json_object_object_foreach(params, pname, pval)
    {
        size_t j;
        int in_order = 0;
        w->params++;
        if (!same_param(gapi_method_param(m, pname), pname, pval)) {
            w->bad_params++;
            wdiag(w, "a parameter differs", dotted);
        }
        for (j = 0; j < k; j++)
            if (strcmp(pname, json_object_get_string(json_object_array_get_idx(order, j))) == 0)
                in_order = 1;
        if (!in_order && !same_param(gapi_method_param_at(m, i++), pname, pval)) {
            w->bad_params++;
            wdiag(w, "parameter order differs", dotted);
        }
    }
}

static void walk_resource(struct walk *w, struct json_object *node, const char *prefix)
{
    struct json_object *ms, *rs;
    char name[1024];

    if (json_object_object_get_ex(node, "methods", &ms)) {
        json_object_object_foreach(ms, mname, mval)
        {
            snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", mname);
            check_method(w, name, mval);
        }
    }
    if (json_object_object_get_ex(node, "resources", &rs)) {
        json_object_object_foreach(rs, rname, rval)
        {
            snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", rname);
            walk_resource(w, rval, name);
        }
    }
}

static void check_document(const char *dir, const char *file)
{
    char path[4096], err[512];
    char *doc;
    size_t len, live0, model, i, nbad;
    gapi_service *svc = NULL, *svc2 = NULL;
    struct json_object *root, *schemas = NULL, *gparams = NULL;
    struct walk w;
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    doc = slurp(path, &len);
    root = json_object_from_file(path); /* json-c's tokener: an independent reading */
    if (!doc || !root) {
        ok(0, "%s: readable by json-c", file);
        return;
    }

    live0 = live_bytes;
    rc = gapi_service_from_json(&svc, doc, len, NULL, err, sizeof(err));
    model = live_bytes - live0;
    if (!ok(rc == 0, "%s: loads from memory", file)) {
        diag("  %s: %s", gapi_error_name(rc), err);
        free(doc);
        json_object_put(root);
        return;
    }
    rc = gapi_service_from_file(&svc2, path, NULL, err, sizeof(err));
    ok(rc == 0 && gapi_service_method_count(svc2) == gapi_service_method_count(svc),
       "%s: loads from its file too", file);
    gapi_service_unref(svc2);
    ok(model <= 3 * len, "%s: model holds %zu bytes, %.2fx the document (<= 3x)", file, model,
       (double)model / (double)len);

    ok(same_str(gapi_service_name(svc), str_or_null(root, "name")) &&
           same_str(gapi_service_version(svc), str_or_null(root, "version")) &&
           same_str(gapi_service_title(svc), str_or_null(root, "title")) &&
           same_str(gapi_service_root_url(svc), str_or_null(root, "rootUrl")) &&
           same_str(gapi_service_path(svc), str_or_null(root, "servicePath")) &&
           same_str(gapi_service_batch_path(svc), str_or_null(root, "batchPath")) &&
           same_str(gapi_service_mtls_root_url(svc), str_or_null(root, "mtlsRootUrl")),
       "%s: service fields match the document", file);

    /* Every method, by dotted path and by id. */
    memset(&w, 0, sizeof(w));
    w.svc = svc;
    walk_resource(&w, root, "");
    is_int(gapi_service_method_count(svc), w.methods, "%s: %zu methods, as json-c counts", file,
           w.methods);
    ok(w.bad_lookup == 0, "%s: every method found by dotted path and by id, the same one", file);
    ok(w.bad_fields == 0, "%s: method fields (http method, path, scopes, media...) match", file);
    ok(w.bad_params == 0, "%s: all %zu method parameters match, parameterOrder first", file,
       w.params);
    for (i = 0, nbad = 0; i < gapi_service_method_count(svc); i++) {
        const gapi_method *m = gapi_service_method_at(svc, i);
        if (gapi_service_method(svc, gapi_method_name(m)) != m)
            nbad++;
    }
    ok(nbad == 0, "%s: iteration yields every method once", file);

    /* Global parameters. */
    if (!json_object_object_get_ex(root, "parameters", &gparams) || !gparams)
        gparams = empty_object;
    nbad = 0;
    json_object_object_foreach(gparams, gname, gval)
    {
        if (!same_param(gapi_service_param(svc, gname), gname, gval))
            nbad++;
    }
    ok(nbad == 0 && gapi_service_param_count(svc) ==
                        (gparams ? (size_t)json_object_object_length(gparams) : 0),
       "%s: %zu global parameters match", file, gapi_service_param_count(svc));

    /* Schemas, parsed back from their compact text. */
    if (!json_object_object_get_ex(root, "schemas", &schemas) || !schemas)
        schemas = empty_object;
    nbad = 0;
    json_object_object_foreach(schemas, sname, sval)
    {
        struct json_object *got = NULL;
        if (gapi_service_schema(svc, sname, &got) != 0 || !json_object_equal(got, sval)) {
            if (nbad++ < 3)
                diag("  schema %s differs", sname);
        }
        json_object_put(got);
    }
    ok(nbad == 0 && gapi_service_schema_count(svc) ==
                        (schemas ? (size_t)json_object_object_length(schemas) : 0),
       "%s: all %zu schemas parse back equal to the document's", file,
       gapi_service_schema_count(svc));

    gapi_service_unref(svc);
    ok(live_bytes == live0, "%s: unref frees everything", file);
    json_object_put(root);
    free(doc);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_real_documents(void)
{
    char *dir = tap_shared_path("discovery");
    char *files[256];
    size_t n = 0, i;
    struct dirent *de;
    DIR *d;

    if (!dir)
        return;
    if (!(d = opendir(dir))) {
        ok(0, "open %s", dir);
        free(dir);
        return;
    }
    while ((de = readdir(d)) != NULL && n < 256) {
        size_t l = strlen(de->d_name);
        if (l > 5 && strcmp(de->d_name + l - 5, ".json") == 0)
            files[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(files, n, sizeof(files[0]), cmp_str);
    ok(n >= 10, "%zu discovery documents found", n);
    for (i = 0; i < n; i++) {
        check_document(dir, files[i]);
        free(files[i]);
    }
    free(dir);
}

/* ------------------------------------------------------------ real methods */

static gapi_service *load_shared(const char *rel)
{
    char *path = tap_shared_path(rel);
    gapi_service *svc = NULL;
    char err[256];

    if (!path)
        return NULL;
    if (gapi_service_from_file(&svc, path, NULL, err, sizeof(err)) != 0) {
        ok(0, "load %s: %s", rel, err);
        svc = NULL;
    }
    free(path);
    return svc;
}

static void test_storage(void)
{
    gapi_service *svc = load_shared("discovery/storage.v1.json");
    const gapi_method *m;
    const gapi_param *p;

    if (!svc)
        return;
    m = gapi_service_method(svc, "objects.insert");
    ok(m != NULL && m == gapi_service_method_by_id(svc, "storage.objects.insert"),
       "storage: objects.insert by path and by id");
    is_str(gapi_method_http_method(m), "POST", "storage objects.insert: POST");
    is_str(gapi_method_path(m), "b/{bucket}/o", "storage objects.insert: path");
    is_str(gapi_method_request_ref(m), "Object", "storage objects.insert: request $ref");
    is_str(gapi_method_response_ref(m), "Object", "storage objects.insert: response $ref");
    ok(gapi_method_flags(m) & GAPI_METHOD_MEDIA_UPLOAD, "storage objects.insert: media upload");
    is_int(gapi_method_media_accept_count(m), 1, "storage objects.insert: one accept pattern");
    is_str(gapi_method_media_accept_at(m, 0), "*/*", "storage objects.insert: accepts */*");
    ok(gapi_method_media_accept_at(m, 1) == NULL, "accept_at past the end is NULL");
    is_str(gapi_method_media_path(m, GAPI_UPLOAD_SIMPLE), "/upload/storage/v1/b/{bucket}/o",
           "storage objects.insert: simple upload path");
    is_str(gapi_method_media_path(m, GAPI_UPLOAD_RESUMABLE),
           "/resumable/upload/storage/v1/b/{bucket}/o",
           "storage objects.insert: resumable upload path");
    is_int(gapi_method_media_max_size(m), 0, "storage objects.insert: no maxSize, 0");
    is_int(gapi_method_param_order_count(m), 1, "storage objects.insert: parameterOrder [bucket]");
    p = gapi_method_param_at(m, 0);
    ok(p && strcmp(gapi_param_name(p), "bucket") == 0 &&
           gapi_param_location(p) == GAPI_PARAM_PATH && gapi_param_required(p),
       "storage objects.insert: bucket is the first parameter, a required path one");
    p = gapi_method_param(m, "alt"); /* a global one, through the method */
    ok(p && p == gapi_service_param(svc, "alt") && gapi_param_enum_count(p) == 2 &&
           strcmp(gapi_param_enum_at(p, 1), "media") == 0 &&
           strcmp(gapi_param_default(p), "json") == 0,
       "storage: global alt reached through a method (enum json, media; default json)");
    ok(gapi_method_param(m, "nonexistent") == NULL, "unknown parameter: NULL");
    m = gapi_service_method(svc, "objects.get");
    ok((gapi_method_flags(m) & (GAPI_METHOD_MEDIA_DOWNLOAD | GAPI_METHOD_MEDIA_DOWNLOAD_SERVICE)) ==
               (GAPI_METHOD_MEDIA_DOWNLOAD | GAPI_METHOD_MEDIA_DOWNLOAD_SERVICE) &&
           !(gapi_method_flags(m) & GAPI_METHOD_MEDIA_UPLOAD),
       "storage objects.get: media download through the download service");
    p = gapi_method_param(gapi_service_method(svc, "objects.list"), "maxResults");
    ok(p && strcmp(gapi_param_type(p), "integer") == 0 &&
           strcmp(gapi_param_format(p), "uint32") == 0 && strcmp(gapi_param_minimum(p), "0") == 0 &&
           strcmp(gapi_param_default(p), "1000") == 0 && gapi_param_maximum(p) == NULL,
       "storage objects.list maxResults: integer uint32, minimum 0, default 1000");
    is_str(gapi_service_batch_url(svc), "https://storage.googleapis.com/batch/storage/v1",
           "storage: batch URL is rootUrl + batchPath");
    is_str(gapi_service_universe_domain(svc), "googleapis.com", "default universe domain");
    ok(gapi_service_method(svc, "objects") == NULL && gapi_service_method(svc, "") == NULL &&
           gapi_service_method(svc, "objects.insert.x") == NULL &&
           gapi_service_method_by_id(svc, "objects.insert") == NULL,
       "a resource, an empty name, a too-long path and a path as id are not methods");
    gapi_service_unref(svc);
}

static void test_other_real(void)
{
    gapi_service *svc;
    const gapi_method *m;
    const gapi_param *p;

    if ((svc = load_shared("discovery/gmail.v1.json")) != NULL) {
        m = gapi_service_method(svc, "users.messages.list");
        is_str(gapi_method_id(m), "gmail.users.messages.list", "gmail users.messages.list: id");
        p = gapi_method_param(m, "maxResults");
        ok(p && strcmp(gapi_param_type(p), "integer") == 0 &&
               strcmp(gapi_param_format(p), "uint32") == 0 &&
               gapi_param_location(p) == GAPI_PARAM_QUERY &&
               strcmp(gapi_param_default(p), "100") == 0,
           "gmail users.messages.list maxResults: integer uint32 query, default 100");
        is_str(gapi_method_path(m), "gmail/v1/users/{userId}/messages",
               "gmail users.messages.list: path");
        is_int(gapi_method_scope_count(m), 4, "gmail users.messages.list: 4 scopes");
        is_str(gapi_method_scope_at(m, 0), "https://mail.google.com/", "first scope");
        gapi_service_unref(svc);
    }
    if ((svc = load_shared("discovery/compute.v1.json")) != NULL) {
        m = gapi_service_method(svc, "instances.insert");
        ok(m && m == gapi_service_method_by_id(svc, "compute.instances.insert"),
           "compute instances.insert by path and by id");
        is_str(gapi_method_http_method(m), "POST", "compute instances.insert: POST");
        is_str(gapi_method_path(m), "projects/{project}/zones/{zone}/instances",
               "compute instances.insert: path");
        is_str(gapi_method_flat_path(m), "projects/{project}/zones/{zone}/instances",
               "compute instances.insert: flatPath");
        ok(gapi_method_api_version(m) != NULL && strlen(gapi_method_api_version(m)) == 10,
           "compute instances.insert: apiVersion %s", gapi_method_api_version(m));
        is_str(gapi_method_request_ref(m), "Instance", "compute instances.insert: request");
        is_str(gapi_method_response_ref(m), "Operation", "compute instances.insert: response");
        ok(gapi_method_param_order_count(m) == 2 &&
               strcmp(gapi_param_name(gapi_method_param_at(m, 0)), "project") == 0 &&
               strcmp(gapi_param_name(gapi_method_param_at(m, 1)), "zone") == 0,
           "compute instances.insert: parameterOrder project, zone");
        p = gapi_method_param(m, "project");
        ok(p && gapi_param_pattern(p) && strncmp(gapi_param_pattern(p), "(?:(?:[-a-z0-9]", 15) == 0,
           "compute instances.insert project: pattern kept as written");
        /* Interning: one copy of a pattern shared by hundreds of parameters. */
        ok(gapi_param_pattern(p) == gapi_param_pattern(gapi_method_param(
                                        gapi_service_method(svc, "instances.get"), "project")),
           "compute: equal patterns share one copy");
        gapi_service_unref(svc);
    }
    if ((svc = load_shared("discovery/drive.v3.json")) != NULL) {
        m = gapi_service_method(svc, "files.create");
        ok(gapi_method_media_max_size(m) == (uint64_t)5 << 40,
           "drive files.create: maxSize 5497558138880 = 5 TiB");
        gapi_service_unref(svc);
    }
    if ((svc = load_shared("discovery/iam.v1.json")) != NULL) {
        m = gapi_service_method(svc, "projects.serviceAccounts.getIamPolicy");
        p = gapi_method_param(m, "options.requestedPolicyVersion");
        ok(p && strcmp(gapi_param_type(p), "integer") == 0 &&
               strcmp(gapi_param_format(p), "int32") == 0,
           "iam getIamPolicy: dotted parameter options.requestedPolicyVersion");
        m = gapi_service_method(svc, "projects.locations.workloadIdentityPools.namespaces."
                                     "managedIdentities.workloadSources.operations.get");
        ok(m && strcmp(gapi_method_id(m), "iam.projects.locations.workloadIdentityPools."
                                          "namespaces.managedIdentities.workloadSources."
                                          "operations.get") == 0,
           "iam: a method 7 resources deep");
        gapi_service_unref(svc);
    }
    if ((svc = load_shared("discovery/logging.v2.json")) != NULL) {
        m = gapi_service_method(svc, "projects.locations.buckets.list");
        is_str(gapi_method_id(m), "logging.projects.locations.buckets.list",
               "logging projects.locations.buckets.list");
        gapi_service_unref(svc);
    }
}

/* ------------------------------------------------------------ a hand-written document */

/* What none of the shared documents has (checked with a script): a
 * hyphenated method name, a resource and a method of the same name under
 * one parent (twice), a hyphenated parameter name, a method parameter that
 * shadows a global one; also units in maxSize and escapes in a schema. */
static const char mini_doc[] =
    "{\n"
    " \"kind\": \"discovery#restDescription\",\n"
    " \"name\": \"mini\", \"version\": \"v1\", \"title\": \"Mini API\",\n"
    " \"rootUrl\": \"https://mini.googleapis.com/\", \"servicePath\": \"mini/v1/\",\n"
    " \"batchPath\": \"batch/mini/v1\", \"mtlsRootUrl\": \"https://mini.mtls.googleapis.com/\",\n"
    " \"parameters\": {\n"
    "  \"alt\": {\"type\": \"string\", \"location\": \"query\", \"default\": \"json\",\n"
    "          \"enum\": [\"json\", \"media\"]},\n"
    "  \"fields\": {\"type\": \"string\", \"location\": \"query\"},\n"
    "  \"max-results\": {\"type\": \"integer\", \"location\": \"query\", \"format\": \"uint32\"}\n"
    " },\n"
    " \"methods\": {\n"
    "  \"items\": {\"id\": \"mini.items\", \"httpMethod\": \"GET\", \"path\": \"items\"}\n"
    " },\n"
    " \"resources\": {\n"
    "  \"items\": {\n"
    "   \"methods\": {\n"
    "    \"Binary-create\": {\"id\": \"mini.items.Binary-create\", \"httpMethod\": \"POST\",\n"
    "      \"path\": \"items:binaryCreate\", \"request\": {\"$ref\": \"Item\"},\n"
    "      \"response\": {\"$ref\": \"Item\"}},\n"
    "    \"get\": {\"id\": \"mini.items.get\", \"httpMethod\": \"GET\", \"path\": "
    "\"items/{+name}\",\n"
    "      \"flatPath\": \"items/{itemsId}\", \"apiVersion\": \"2024-01-01\",\n"
    "      \"parameters\": {\n"
    "        \"view\": {\"type\": \"string\", \"location\": \"query\", \"repeated\": true,\n"
    "                 \"enum\": [\"BASIC\", \"FULL\"]},\n"
    "        \"name\": {\"type\": \"string\", \"location\": \"path\", \"required\": true,\n"
    "                 \"pattern\": \"^items/[^/]+$\"},\n"
    "        \"options.requestedPolicyVersion\": {\"type\": \"integer\", \"location\": \"query\",\n"
    "                 \"format\": \"int32\"},\n"
    "        \"fields\": {\"type\": \"string\", \"location\": \"query\", \"default\": \"name\"},\n"
    "        \"max-results\": {\"type\": \"integer\", \"location\": \"query\", \"minimum\": "
    "\"1\",\n"
    "                 \"maximum\": \"50\"}\n"
    "      },\n"
    "      \"parameterOrder\": [\"name\"],\n"
    "      \"scopes\": [\"https://www.googleapis.com/auth/cloud-platform\"],\n"
    "      \"supportsMediaDownload\": true, \"useMediaDownloadService\": true,\n"
    "      \"supportsSubscription\": true},\n"
    "    \"upload\": {\"id\": \"mini.items.upload\", \"httpMethod\": \"POST\",\n"
    "      \"path\": \"items/{id}/upload\",\n"
    "      \"parameters\": {\"id\": {\"type\": \"string\", \"location\": \"path\", \"required\": "
    "true}},\n"
    "      \"parameterOrder\": [\"id\"], \"supportsMediaUpload\": true,\n"
    "      \"mediaUpload\": {\"accept\": [\"image/*\", \"text/plain\"], \"maxSize\": \"100MB\",\n"
    "        \"protocols\": {\"simple\": {\"multipart\": true, \"path\": "
    "\"/upload/mini/v1/items/{id}/upload\"},\n"
    "          \"resumable\": {\"multipart\": true, \"path\": "
    "\"/resumable/upload/mini/v1/items/{id}/upload\"}}}}\n"
    "   },\n"
    "   \"resources\": {\n"
    "    \"get\": {\"methods\": {\"list\": {\"id\": \"mini.items.get.list\", \"httpMethod\": "
    "\"GET\",\n"
    "                            \"path\": \"items/get\"}}}\n"
    "   }\n"
    "  }\n"
    " },\n"
    " \"schemas\": {\n"
    "  \"Item\": {\"id\": \"Item\", \"type\": \"object\", \"properties\": {\n"
    "    \"name\": {\"type\": \"string\",\n"
    "             \"description\": \"tab\\there \\\"quoted\\\" \\u00e9 \\ud83d\\ude00 \\/ "
    "\\\\\"},\n"
    "    \"size\": {\"type\": \"string\", \"format\": \"int64\"},\n"
    "    \"ratio\": {\"type\": \"number\", \"default\": 1.50, \"x\": [1, -2e3, true, null]}}},\n"
    "  \"Empty\": {}\n"
    " }\n"
    "}\n";

static void test_mini(void)
{
    gapi_service *svc = NULL;
    const gapi_method *m, *get;
    const gapi_param *p;
    struct json_object *schema = NULL, *want, *item;
    char err[256];
    int rc;

    rc = load_str(&svc, mini_doc, NULL, err, sizeof(err));
    if (!ok(rc == 0, "hand-written document loads")) {
        diag("  %s", err);
        return;
    }
    is_int(gapi_service_method_count(svc), 5, "5 methods");
    is_str(gapi_method_name(gapi_service_method_at(svc, 0)), "items",
           "top-level methods come first");
    m = gapi_service_method(svc, "items");
    ok(m && strcmp(gapi_method_id(m), "mini.items") == 0,
       "method \"items\" and resource \"items\" under the root: \"items\" is the method");
    get = gapi_service_method(svc, "items.get");
    m = gapi_service_method(svc, "items.get.list");
    ok(get && strcmp(gapi_method_id(get), "mini.items.get") == 0 && m &&
           strcmp(gapi_method_id(m), "mini.items.get.list") == 0,
       "method \"get\" and resource \"get\" under items: both reachable");
    m = gapi_service_method(svc, "items.Binary-create");
    ok(m && m == gapi_service_method_by_id(svc, "mini.items.Binary-create") &&
           strcmp(gapi_method_path(m), "items:binaryCreate") == 0,
       "hyphenated method name Binary-create, by path and by id");

    /* Parameters of items.get. */
    is_int(gapi_method_param_count(get), 5, "items.get: 5 own parameters");
    is_str(gapi_param_name(gapi_method_param_at(get, 0)), "name",
           "items.get: parameterOrder first");
    is_str(gapi_param_name(gapi_method_param_at(get, 1)), "view", "items.get: then document order");
    ok(gapi_method_param_at(get, 5) == NULL, "param_at past the end is NULL");
    p = gapi_method_param(get, "options.requestedPolicyVersion");
    ok(p && strcmp(gapi_param_format(p), "int32") == 0, "dotted parameter name");
    p = gapi_method_param(get, "max-results");
    ok(p && p != gapi_service_param(svc, "max-results") &&
           strcmp(gapi_param_maximum(p), "50") == 0 && strcmp(gapi_param_minimum(p), "1") == 0,
       "hyphenated parameter: the method's own wins over the global one");
    p = gapi_method_param(get, "fields");
    ok(p && p != gapi_service_param(svc, "fields") && strcmp(gapi_param_default(p), "name") == 0,
       "method parameter \"fields\" shadows the global \"fields\"");
    p = gapi_method_param(gapi_service_method(svc, "items"), "max-results");
    ok(p && p == gapi_service_param(svc, "max-results"),
       "a method without it gets the global \"max-results\"");
    p = gapi_method_param(get, "view");
    ok(p && gapi_param_repeated(p) && !gapi_param_required(p) && gapi_param_enum_count(p) == 2 &&
           strcmp(gapi_param_enum_at(p, 1), "FULL") == 0 && gapi_param_enum_at(p, 2) == NULL,
       "repeated enum parameter");
    p = gapi_method_param(get, "name");
    ok(p && gapi_param_required(p) && gapi_param_location(p) == GAPI_PARAM_PATH &&
           strcmp(gapi_param_pattern(p), "^items/[^/]+$") == 0,
       "required path parameter with a pattern");
    is_str(gapi_method_api_version(get), "2024-01-01", "apiVersion");
    is_int(gapi_method_flags(get),
           GAPI_METHOD_MEDIA_DOWNLOAD | GAPI_METHOD_MEDIA_DOWNLOAD_SERVICE |
               GAPI_METHOD_SUBSCRIPTION,
           "download, download service and subscription flags");

    m = gapi_service_method(svc, "items.upload");
    ok(gapi_method_media_max_size(m) == (uint64_t)100 << 20, "maxSize \"100MB\" = 100 MiB");
    is_int(gapi_method_media_accept_count(m), 2, "two accept patterns");
    is_str(gapi_method_media_path(m, GAPI_UPLOAD_RESUMABLE),
           "/resumable/upload/mini/v1/items/{id}/upload", "resumable path");
    ok(gapi_method_media_path(m, (gapi_upload_protocol)7) == NULL &&
           gapi_method_media_path(get, GAPI_UPLOAD_SIMPLE) == NULL,
       "unknown protocol or no mediaUpload: NULL path");

    /* Schemas: the escapes survive the compact text. */
    want = json_tokener_parse(mini_doc);
    json_object_object_get_ex(json_object_object_get(want, "schemas"), "Item", &item);
    ok(gapi_service_schema(svc, "Item", &schema) == 0 && json_object_equal(schema, item),
       "schema Item parses back equal (escapes, UTF-16 pair, numbers as written)");
    json_object_put(schema);
    schema = NULL;
    ok(gapi_service_schema(svc, "Empty", &schema) == 0 && json_object_object_length(schema) == 0,
       "empty schema");
    json_object_put(schema);
    json_object_put(want);
    schema = (struct json_object *)&schema;
    is_int(gapi_service_schema(svc, "Nope", &schema), GAPI_EINVAL, "unknown schema: GAPI_EINVAL");
    ok(schema == (struct json_object *)&schema, "unknown schema: *out untouched");
    is_int(gapi_service_schema(svc, NULL, &schema), GAPI_EINVAL, "NULL schema name: EINVAL");
    is_int(gapi_service_schema(svc, "Item", NULL), GAPI_EINVAL, "NULL out: EINVAL");
    is_int(gapi_service_schema_count(svc), 2, "2 schemas");
    is_str(gapi_service_schema_name_at(svc, 1), "Empty", "schema names in document order");

    is_str(gapi_service_batch_url(svc), "https://mini.googleapis.com/batch/mini/v1", "batch URL");
    gapi_service_unref(svc);
}

static void test_null_accessors(void)
{
    ok(gapi_service_name(NULL) == NULL && gapi_service_method(NULL, "x") == NULL &&
           gapi_service_method_by_id(NULL, "x") == NULL && gapi_service_method_count(NULL) == 0 &&
           gapi_service_method_at(NULL, 0) == NULL && gapi_service_param(NULL, "x") == NULL &&
           gapi_service_schema_count(NULL) == 0 && gapi_service_ref(NULL) == NULL,
       "service accessors accept NULL");
    ok(gapi_method_id(NULL) == NULL && gapi_method_param(NULL, "x") == NULL &&
           gapi_method_param_count(NULL) == 0 && gapi_method_flags(NULL) == 0 &&
           gapi_method_media_max_size(NULL) == 0 && gapi_method_scope_at(NULL, 0) == NULL,
       "method accessors accept NULL");
    ok(gapi_param_name(NULL) == NULL && gapi_param_location(NULL) == 0 &&
           gapi_param_required(NULL) == 0 && gapi_param_enum_at(NULL, 0) == NULL,
       "parameter accessors accept NULL");
    gapi_service_unref(NULL);
    ok(1, "gapi_service_unref(NULL) is a no-op");
}

/* ------------------------------------------------------------ errors */

/* A document with one method whose body is method_json. */
static char *doc_with_method(const char *method_json)
{
    static const char fmt[] =
        "{\"name\": \"t\", \"rootUrl\": \"https://t.googleapis.com/\", \"servicePath\": \"t/v1/\","
        " \"resources\": {\"objects\": {\"methods\": {\"insert\": %s}}}}";
    size_t n = sizeof(fmt) + strlen(method_json);
    char *s = malloc(n);
    if (!s)
        abort();
    snprintf(s, n, fmt, method_json);
    return s;
}

struct err_case {
    const char *what;
    const char *doc;    /* whole document, or */
    const char *method; /* a method body put into doc_with_method */
    int code;
    const char *msg; /* exact message */
};

#define M_OK_HEAD "\"id\": \"t.objects.insert\", \"httpMethod\": \"POST\", \"path\": \"o\""

static const struct err_case err_cases[] = {
    {"empty input", "", NULL, GAPI_EDISCOVERY,
     "not JSON: line 1 column 1 (offset 0): no JSON value: input is empty or only whitespace"},
    {"not JSON", "hello", NULL, GAPI_EDISCOVERY,
     "not JSON: line 1 column 1 (offset 0): expected a value, found 'h'"},
    {"truncated", "{\"name\": \"t\"", NULL, GAPI_EDISCOVERY,
     "not JSON: line 1 column 13 (offset 12): expected ',' or '}' after object member"},
    {"syntax error on line 2", "{\"name\": \"t\",\n \"rootUrl\": tru}", NULL, GAPI_EDISCOVERY,
     "not JSON: line 2 column 13 (offset 26): invalid literal: expected true, false or null"},
    {"trailing text", "{} x", NULL, GAPI_EDISCOVERY,
     "not JSON: line 1 column 4 (offset 3): unexpected text after the JSON value"},
    {"a JSON array", "[1, 2]", NULL, GAPI_EDISCOVERY, "the document is not an object"},
    {"name missing", "{\"rootUrl\": \"https://x/\"}", NULL, GAPI_EDISCOVERY, "\"name\" missing"},
    {"name null", "{\"name\": null, \"rootUrl\": \"https://x/\"}", NULL, GAPI_EDISCOVERY,
     "\"name\" missing"},
    {"rootUrl missing", "{\"name\": \"t\"}", NULL, GAPI_EDISCOVERY, "\"rootUrl\" missing"},
    {"name not a string", "{\"name\": 3, \"rootUrl\": \"https://x/\"}", NULL, GAPI_EDISCOVERY,
     "\"name\" is not a string"},
    {"rootUrl empty", "{\"name\": \"t\", \"rootUrl\": \"\"}", NULL, GAPI_EDISCOVERY,
     "\"rootUrl\" is empty"},
    {"NUL in a string", "{\"name\": \"a\\u0000b\", \"rootUrl\": \"https://x/\"}", NULL,
     GAPI_EDISCOVERY, "\"name\" contains a NUL character"},
    {"NUL in a key", "{\"na\\u0000me\": \"t\"}", NULL, GAPI_EDISCOVERY,
     "not JSON: line 1 column 2 (offset 1): \\u0000 in an object key"},
    {"resources not an object", "{\"name\": \"t\", \"rootUrl\": \"https://x/\", \"resources\": []}",
     NULL, GAPI_EDISCOVERY, "\"resources\" is not an object"},
    {"a resource not an object",
     "{\"name\": \"t\", \"rootUrl\": \"https://x/\", \"resources\": {\"objects\": 1}}", NULL,
     GAPI_EDISCOVERY, "resources.objects: not an object"},
    {"methods not an object",
     "{\"name\": \"t\", \"rootUrl\": \"https://x/\", \"resources\": {\"objects\": {\"methods\": "
     "[]}}}",
     NULL, GAPI_EDISCOVERY, "resources.objects: \"methods\" is not an object"},
    {"schemas not an object", "{\"name\": \"t\", \"rootUrl\": \"https://x/\", \"schemas\": 3}",
     NULL, GAPI_EDISCOVERY, "\"schemas\" is not an object"},
    {"a schema not an object",
     "{\"name\": \"t\", \"rootUrl\": \"https://x/\", \"schemas\": {\"A\": {}, \"B\": \"x\"}}", NULL,
     GAPI_EDISCOVERY, "schemas.B: not an object"},
    {"global parameter without location",
     "{\"name\": \"t\", \"rootUrl\": \"https://x/\", \"parameters\": {\"alt\": {\"type\": "
     "\"string\"}}}",
     NULL, GAPI_EDISCOVERY, "parameters.alt: \"location\" missing"},
    {"method not an object", NULL, "7", GAPI_EDISCOVERY,
     "resources.objects.methods.insert: not an object"},
    {"httpMethod missing", NULL, "{\"id\": \"t.objects.insert\", \"path\": \"o\"}", GAPI_EDISCOVERY,
     "resources.objects.methods.insert: \"httpMethod\" missing"},
    {"path missing", NULL, "{\"id\": \"t.objects.insert\", \"httpMethod\": \"POST\"}",
     GAPI_EDISCOVERY, "resources.objects.methods.insert: \"path\" missing"},
    {"id missing", NULL, "{\"httpMethod\": \"POST\", \"path\": \"o\"}", GAPI_EDISCOVERY,
     "resources.objects.methods.insert: \"id\" missing"},
    {"httpMethod not a token", NULL,
     "{\"id\": \"t.objects.insert\", \"httpMethod\": \"PO ST\", \"path\": \"o\"}", GAPI_EDISCOVERY,
     "resources.objects.methods.insert: \"httpMethod\" \"PO ST\" is not an HTTP method token"},
    {"httpMethod not a string", NULL,
     "{\"id\": \"t.objects.insert\", \"httpMethod\": [\"POST\"], \"path\": \"o\"}", GAPI_EDISCOVERY,
     "resources.objects.methods.insert: \"httpMethod\" is not a string"},
    {"unknown location", NULL,
     "{" M_OK_HEAD ", \"parameters\": {\"bucket\": {\"type\": \"string\", \"location\": "
     "\"header\"}}}",
     GAPI_EDISCOVERY,
     "resources.objects.methods.insert.parameters.bucket: \"location\" is \"header\", not "
     "\"query\" or \"path\""},
    {"unknown location of a dotted parameter", NULL,
     "{" M_OK_HEAD ", \"parameters\": {\"a.b\": {\"location\": \"body\"}}}", GAPI_EDISCOVERY,
     "resources.objects.methods.insert.parameters[\"a.b\"]: \"location\" is \"body\", not "
     "\"query\" or \"path\""},
    {"unknown type", NULL,
     "{" M_OK_HEAD ", \"parameters\": {\"n\": {\"type\": \"int\", \"location\": \"query\"}}}",
     GAPI_EDISCOVERY,
     "resources.objects.methods.insert.parameters.n: \"type\" is \"int\", not a JSON schema "
     "type"},
    {"required not a boolean", NULL,
     "{" M_OK_HEAD ", \"parameters\": {\"n\": {\"location\": \"query\", \"required\": "
     "\"true\"}}}",
     GAPI_EDISCOVERY,
     "resources.objects.methods.insert.parameters.n: \"required\" is not a boolean"},
    {"enum entry not a string", NULL,
     "{" M_OK_HEAD ", \"parameters\": {\"n\": {\"location\": \"query\", \"enum\": [\"a\", 2]}}}",
     GAPI_EDISCOVERY, "resources.objects.methods.insert.parameters.n.enum[1]: not a string"},
    {"scope not a string", NULL, "{" M_OK_HEAD ", \"scopes\": [\"https://s\", {}]}",
     GAPI_EDISCOVERY, "resources.objects.methods.insert.scopes[1]: not a string"},
    {"parameterOrder names no parameter", NULL,
     "{" M_OK_HEAD ", \"parameters\": {\"a\": {\"location\": \"path\"}}, \"parameterOrder\": "
     "[\"a\", \"b\"]}",
     GAPI_EDISCOVERY,
     "resources.objects.methods.insert.parameterOrder[1]: \"b\" is not in \"parameters\""},
    {"parameterOrder lists one twice", NULL,
     "{" M_OK_HEAD ", \"parameters\": {\"a\": {\"location\": \"path\"}}, \"parameterOrder\": "
     "[\"a\", \"a\"]}",
     GAPI_EDISCOVERY, "resources.objects.methods.insert.parameterOrder[1]: \"a\" is listed twice"},
    {"request not an object", NULL, "{" M_OK_HEAD ", \"request\": \"Object\"}", GAPI_EDISCOVERY,
     "resources.objects.methods.insert: \"request\" is not an object"},
    {"bad maxSize", NULL, "{" M_OK_HEAD ", \"mediaUpload\": {\"maxSize\": \"5XB\"}}",
     GAPI_EDISCOVERY,
     "resources.objects.methods.insert.mediaUpload: \"maxSize\" is \"5XB\", not a size (digits, "
     "optionally KB, MB, GB or TB)"},
    {"maxSize overflows", NULL,
     "{" M_OK_HEAD ", \"mediaUpload\": {\"maxSize\": \"99999999999TB\"}}", GAPI_EDISCOVERY,
     "resources.objects.methods.insert.mediaUpload: \"maxSize\" is \"99999999999TB\", not a "
     "size (digits, optionally KB, MB, GB or TB)"},
    {"protocol path not a string", NULL,
     "{" M_OK_HEAD ", \"mediaUpload\": {\"protocols\": {\"simple\": {\"path\": 1}}}}",
     GAPI_EDISCOVERY,
     "resources.objects.methods.insert.mediaUpload.protocols.simple: \"path\" is not a string"},
    {"supportsMediaDownload not a boolean", NULL, "{" M_OK_HEAD ", \"supportsMediaDownload\": 1}",
     GAPI_EDISCOVERY,
     "resources.objects.methods.insert: \"supportsMediaDownload\" is not a boolean"},
    {"empty method name",
     "{\"name\": \"t\", \"rootUrl\": \"https://x/\", \"methods\": {\"\": {\"id\": \"i\", "
     "\"httpMethod\": \"GET\", \"path\": \"p\"}}}",
     NULL, GAPI_EDISCOVERY, "methods[\"\"]: empty method name"},
    {"two methods with one dotted path",
     "{\"name\": \"t\", \"rootUrl\": \"https://x/\", \"methods\": {\"a.b\": {\"id\": \"t.x\", "
     "\"httpMethod\": \"GET\", \"path\": \"p\"}}, \"resources\": {\"a\": {\"methods\": {\"b\": "
     "{\"id\": \"t.y\", \"httpMethod\": \"GET\", \"path\": \"p\"}}}}}",
     NULL, GAPI_EDISCOVERY, "two methods have the dotted path \"a.b\" (ids \"t.x\" and \"t.y\")"},
    {"two methods with one id",
     "{\"name\": \"t\", \"rootUrl\": \"https://x/\", \"methods\": {\"a\": {\"id\": \"t.x\", "
     "\"httpMethod\": \"GET\", \"path\": \"p\"}, \"b\": {\"id\": \"t.x\", \"httpMethod\": "
     "\"GET\", \"path\": \"p\"}}}",
     NULL, GAPI_EDISCOVERY, "methods \"a\" and \"b\" have the same id \"t.x\""},
};

static void test_errors(void)
{
    size_t i;

    for (i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        const struct err_case *c = &err_cases[i];
        gapi_service *svc = (gapi_service *)&svc;
        char *doc = c->doc ? strdup(c->doc) : doc_with_method(c->method);
        char err[512] = "";
        /* An exact-size copy, so ASan sees any read past the end. */
        size_t len = strlen(doc);
        char *exact = malloc(len ? len : 1);
        int rc;

        memcpy(exact, doc, len);
        rc = gapi_service_from_json(&svc, exact, len, NULL, err, sizeof(err));
        if (!ok(rc == c->code && strcmp(err, c->msg) == 0 && svc == (gapi_service *)&svc,
                "error: %s", c->what))
            diag("  got %s \"%s\"\n#  want %s \"%s\"", gapi_error_name(rc), err,
                 gapi_error_name(c->code), c->msg);
        free(exact);
        free(doc);
    }
}

static void test_depth(void)
{
    gapi_service *svc = NULL;
    char err[512];
    char *doc, *p;
    int depth, rc;
    size_t cap = 64 * 1024;

    /* Resources nested 32 deep load; 33 do not. */
    for (depth = 32; depth <= 33; depth++) {
        int i;
        p = doc = malloc(cap);
        p += sprintf(p, "{\"name\": \"t\", \"rootUrl\": \"https://x/\"");
        for (i = 0; i < depth; i++)
            p += sprintf(p,
                         ", \"resources\": {\"r%d\": {\"methods\": {\"m\": {\"id\": \"id%d\", "
                         "\"httpMethod\": \"GET\", \"path\": \"p\"}}",
                         i, i);
        for (i = 0; i < depth; i++)
            p += sprintf(p, "}}");
        p += sprintf(p, "}");
        rc = gapi_service_from_json(&svc, doc, (size_t)(p - doc), NULL, err, sizeof(err));
        if (depth == 32) {
            ok(rc == 0 && gapi_service_method(svc, "r0.r1.r2.r3.r4.r5.r6.r7.r8.r9.r10.r11.r12.r13."
                                                   "r14.r15.r16.r17.r18.r19.r20.r21.r22.r23.r24."
                                                   "r25.r26.r27.r28.r29.r30.r31.m") != NULL,
               "resources nested 32 deep load, the deepest method addressable");
            if (rc == 0)
                gapi_service_unref(svc);
        } else {
            ok(rc == GAPI_EDISCOVERY && strstr(err, "resources nested deeper than 32") &&
                   strncmp(err, "resources.r0.resources.r1.", 26) == 0,
               "resources nested 33 deep: GAPI_EDISCOVERY naming the path");
        }
        free(doc);
    }

    /* JSON nested deeper than the parser's limit, inside a schema. */
    p = doc = malloc(cap);
    p += sprintf(p, "{\"name\": \"t\", \"rootUrl\": \"https://x/\", \"schemas\": {\"S\": ");
    for (depth = 0; depth < 600; depth++)
        *p++ = '[';
    for (depth = 0; depth < 600; depth++)
        *p++ = ']';
    p += sprintf(p, "}}");
    rc = gapi_service_from_json(&svc, doc, (size_t)(p - doc), NULL, err, sizeof(err));
    ok(rc == GAPI_EDISCOVERY && strstr(err, "not JSON") && strstr(err, "nesting deeper than 512"),
       "JSON nested 600 deep: not JSON, nesting deeper than 512 (%s)", err);
    free(doc);
}

/* Duplicate keys: the last value wins, at the first one's position, as in
 * json-c (and so in our parser). */
static void test_duplicates(void)
{
    static const char doc[] =
        "{\"name\": \"first\", \"rootUrl\": \"https://x/\", \"name\": \"second\",\n"
        " \"resources\": {\"a\": {\"methods\": {\"m\": {\"id\": \"t.a1\", \"httpMethod\": \"GET\", "
        "\"path\": \"p\"}}},\n"
        "               \"b\": {\"methods\": {\"m\": {\"id\": \"t.b\", \"httpMethod\": \"GET\", "
        "\"path\": \"p\"}}},\n"
        "               \"a\": {\"methods\": {\"n\": {\"id\": \"t.a2\", \"httpMethod\": \"GET\", "
        "\"path\": \"p\"}}}},\n"
        " \"schemas\": {\"S\": {\"v\": 1}, \"T\": {}, \"S\": {\"v\": 2}},\n"
        " \"resources\": {\"c\": {}, \"r\": {\"methods\": {\"m\": {\"id\": \"t.r\", "
        "\"httpMethod\": \"GET\", \"path\": \"p\"}}}}}";
    static const char bad_dup[] = "{\"name\": \"t\", \"rootUrl\": \"https://x/\", \"schemas\": "
                                  "{\"S\": {\"v\": tru}, \"S\": {}}}";
    gapi_service *svc = NULL;
    struct json_object *s = NULL;
    char err[256];
    int rc;

    rc = load_str(&svc, doc, NULL, err, sizeof(err));
    if (!ok(rc == 0, "document with repeated keys loads")) {
        diag("  %s", err);
        return;
    }
    is_str(gapi_service_name(svc), "second", "repeated top-level key: the last value");
    ok(gapi_service_method_count(svc) == 1 && gapi_service_method(svc, "r.m") &&
           !gapi_service_method(svc, "a.n"),
       "repeated \"resources\": the last one only");
    ok(gapi_service_schema(svc, "S", &s) == 0 &&
           json_object_get_int(json_object_object_get(s, "v")) == 2 &&
           strcmp(gapi_service_schema_name_at(svc, 0), "S") == 0 &&
           gapi_service_schema_count(svc) == 2,
       "repeated schema: the last value at the first position");
    json_object_put(s);
    gapi_service_unref(svc);

    /* Inside one "resources": a and a again. */
    rc = load_str(&svc,
                  "{\"name\": \"t\", \"rootUrl\": \"https://x/\", \"resources\": {"
                  "\"a\": {\"methods\": {\"m\": {\"id\": \"t.a1\", \"httpMethod\": \"GET\", "
                  "\"path\": \"p\"}}}, \"b\": {}, \"a\": {\"methods\": {\"n\": {\"id\": \"t.a2\", "
                  "\"httpMethod\": \"GET\", \"path\": \"p\"}}}}}",
                  NULL, err, sizeof(err));
    ok(rc == 0 && gapi_service_method_count(svc) == 1 && gapi_service_method(svc, "a.n") &&
           gapi_service_method(svc, "a.m") == NULL,
       "repeated resource name: the last value");
    if (rc == 0)
        gapi_service_unref(svc);

    rc = load_str(&svc,
                  "{\"name\": \"t\", \"rootUrl\": \"https://x/\", \"resources\": null, "
                  "\"schemas\": null, \"batchPath\": null, \"methods\": null}",
                  NULL, err, sizeof(err));
    ok(rc == 0 && gapi_service_method_count(svc) == 0 && gapi_service_schema_count(svc) == 0 &&
           gapi_service_batch_url(svc) == NULL,
       "null members read as absent (resources, schemas, batchPath, methods)");
    if (rc == 0)
        gapi_service_unref(svc);
    {
        gapi__json_error jerr;
        struct json_object *o = NULL;
        char want[64];
        int prc = gapi__json_parse(bad_dup, sizeof(bad_dup) - 1, 0, &o, &jerr);
        snprintf(want, sizeof(want), "(offset %zu)", jerr.offset);
        rc = load_str(&svc, bad_dup, NULL, err, sizeof(err));
        ok(prc == GAPI_EJSON && rc == GAPI_EDISCOVERY && strstr(err, "not JSON") &&
               strstr(err, want),
           "a replaced value is still checked, error at the parser's offset: %s", err);
    }
}

/* Whatever the strict parser refuses, the loader refuses (as "not JSON",
 * unless it meets another problem first); it says "not JSON" only for what
 * the parser refuses. Mutations of the hand-written
 * document: delete, insert or replace one byte (JSON's structural
 * characters, a quote, a backslash, a control byte, a UTF-8 lead byte). */
static void test_mutations(void)
{
    static const char inserts[] = "\"\\{}[]:, a0\x01\xc3-e.";
    size_t len = sizeof(mini_doc) - 1, i, runs = 0, mismatches = 0, accepted = 0;
    size_t refused_as_json = 0;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char *buf = malloc(len + 2);

    for (i = 0; i < 6000; i++) {
        struct json_object *o = NULL;
        gapi_service *svc = NULL;
        char err[512];
        size_t pos, n = len;
        int op, prc, lrc, lnotjson;

        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        pos = (size_t)(seed % len);
        op = (int)((seed >> 32) % 3);
        memcpy(buf, mini_doc, len);
        if (op == 0) { /* delete */
            memmove(buf + pos, buf + pos + 1, len - pos - 1);
            n = len - 1;
        } else if (op == 1) { /* insert */
            memmove(buf + pos + 1, buf + pos, len - pos);
            buf[pos] = inserts[(seed >> 40) % (sizeof(inserts) - 1)];
            n = len + 1;
        } else { /* replace */
            buf[pos] = inserts[(seed >> 40) % (sizeof(inserts) - 1)];
        }
        prc = gapi__json_parse(buf, n, 0, &o, NULL);
        json_object_put(o);
        lrc = gapi_service_from_json(&svc, buf, n, NULL, err, sizeof(err));
        lnotjson = lrc == GAPI_EDISCOVERY && strncmp(err, "not JSON", 8) == 0;
        if ((prc != 0 && lrc == 0) || (lnotjson && prc == 0)) {
            if (mismatches++ < 3)
                diag("  mutation %zu (op %d at %zu): parser %d, loader %d %s", i, op, pos, prc, lrc,
                     lrc ? err : "");
        }
        if (prc != 0 && lnotjson)
            refused_as_json++;
        if (lrc == 0) {
            accepted++;
            gapi_service_unref(svc);
        }
        runs++;
    }
    ok(mismatches == 0 && runs == 6000 && refused_as_json > 1000 && accepted > 1000,
       "mutations: the loader refuses all the parser refuses and says \"not JSON\" for nothing "
       "else (%zu runs, %zu refused as not JSON, %zu loaded)",
       runs, refused_as_json, accepted);
    free(buf);
}

/* ------------------------------------------------------------ options */

static void test_options(void)
{
    gapi_service_options o = GAPI_SERVICE_OPTIONS_INIT;
    gapi_service *svc = NULL;
    char err[256];
    int rc;

    unsetenv("GOOGLE_CLOUD_UNIVERSE_DOMAIN");
    o.endpoint = "https://proxy.example.test/gw";
    rc = load_str(&svc, mini_doc, &o, err, sizeof(err));
    ok(rc == 0 && strcmp(gapi_service_root_url(svc), "https://proxy.example.test/gw/") == 0 &&
           strcmp(gapi_service_mtls_root_url(svc), "https://proxy.example.test/gw/") == 0 &&
           strcmp(gapi_service_batch_url(svc), "https://proxy.example.test/gw/batch/mini/v1") ==
               0 &&
           strcmp(gapi_service_path(svc), "mini/v1/") == 0,
       "endpoint override replaces rootUrl and mtlsRootUrl ('/' added), servicePath kept");
    if (rc == 0)
        gapi_service_unref(svc);

    o.endpoint = NULL;
    o.universe_domain = "example-universe.net";
    rc = load_str(&svc, mini_doc, &o, err, sizeof(err));
    ok(rc == 0 && strcmp(gapi_service_root_url(svc), "https://mini.example-universe.net/") == 0 &&
           strcmp(gapi_service_mtls_root_url(svc), "https://mini.mtls.example-universe.net/") ==
               0 &&
           strcmp(gapi_service_batch_url(svc), "https://mini.example-universe.net/batch/mini/v1") ==
               0 &&
           strcmp(gapi_service_universe_domain(svc), "example-universe.net") == 0,
       "universe domain option replaces googleapis.com in rootUrl, mtlsRootUrl, batch URL");
    if (rc == 0)
        gapi_service_unref(svc);

    setenv("GOOGLE_CLOUD_UNIVERSE_DOMAIN", "env-universe.example", 1);
    rc = load_str(&svc, mini_doc, NULL, err, sizeof(err));
    ok(rc == 0 && strcmp(gapi_service_root_url(svc), "https://mini.env-universe.example/") == 0,
       "universe domain from GOOGLE_CLOUD_UNIVERSE_DOMAIN");
    if (rc == 0)
        gapi_service_unref(svc);
    rc = load_str(&svc, mini_doc, &o, err, sizeof(err));
    ok(rc == 0 && strcmp(gapi_service_root_url(svc), "https://mini.example-universe.net/") == 0,
       "the option wins over the environment");
    if (rc == 0)
        gapi_service_unref(svc);
    o.universe_domain = NULL;
    {
        /* The option string is the caller's: the model must copy it even
         * when it already ends in '/' (ASan and valgrind catch a dangling
         * pointer). */
        char *ep = strdup("http://127.0.0.1:8080/");
        o.endpoint = ep;
        rc = load_str(&svc, mini_doc, &o, err, sizeof(err));
        memset(ep, 'x', strlen(ep));
        free(ep);
        ok(rc == 0 && strcmp(gapi_service_root_url(svc), "http://127.0.0.1:8080/") == 0,
           "an explicit endpoint is used verbatim, whatever the universe (and copied)");
        if (rc == 0)
            gapi_service_unref(svc);
        o.endpoint = NULL;
    }

    /* Hosts that do not end in googleapis.com are left alone. */
    rc = load_str(&svc,
                  "{\"name\": \"t\", \"rootUrl\": \"https://notgoogleapis.com/x/googleapis.com/\","
                  " \"mtlsRootUrl\": \"http://127.0.0.1:9/\"}",
                  NULL, err, sizeof(err));
    ok(rc == 0 &&
           strcmp(gapi_service_root_url(svc), "https://notgoogleapis.com/x/googleapis.com/") == 0 &&
           strcmp(gapi_service_mtls_root_url(svc), "http://127.0.0.1:9/") == 0,
       "universe domain replaces only a googleapis.com host suffix");
    if (rc == 0)
        gapi_service_unref(svc);
    rc = load_str(&svc, "{\"name\": \"t\", \"rootUrl\": \"https://GoogleApis.com:443/\"}", NULL,
                  err, sizeof(err));
    ok(rc == 0 && strcmp(gapi_service_root_url(svc), "https://env-universe.example:443/") == 0,
       "host matched case-insensitively, port kept");
    if (rc == 0)
        gapi_service_unref(svc);

    setenv("GOOGLE_CLOUD_UNIVERSE_DOMAIN", "", 1);
    svc = (gapi_service *)&svc;
    rc = load_str(&svc, mini_doc, NULL, err, sizeof(err));
    ok(rc == GAPI_EINVAL && svc == (gapi_service *)&svc &&
           strcmp(err, "GOOGLE_CLOUD_UNIVERSE_DOMAIN \"\" is not a domain name") == 0,
       "empty GOOGLE_CLOUD_UNIVERSE_DOMAIN: GAPI_EINVAL (%s)", err);
    unsetenv("GOOGLE_CLOUD_UNIVERSE_DOMAIN");

    o.universe_domain = "";
    rc = load_str(&svc, mini_doc, &o, err, sizeof(err));
    ok(rc == GAPI_EINVAL && strcmp(err, "options.universe_domain \"\" is not a domain name") == 0,
       "empty universe domain option: GAPI_EINVAL");
    o.universe_domain = "evil.com/path";
    rc = load_str(&svc, mini_doc, &o, err, sizeof(err));
    ok(rc == GAPI_EINVAL, "universe domain with a '/': GAPI_EINVAL");
    o.universe_domain = NULL;
    o.endpoint = "ftp://x/";
    rc = load_str(&svc, mini_doc, &o, err, sizeof(err));
    ok(rc == GAPI_EINVAL && strcmp(err, "options.endpoint is not an http:// or https:// URL") == 0,
       "endpoint not http(s): GAPI_EINVAL");
    o.endpoint = "https://a b/";
    rc = load_str(&svc, mini_doc, &o, err, sizeof(err));
    ok(rc == GAPI_EINVAL, "endpoint with a space: GAPI_EINVAL");
    o.endpoint = NULL;
    o.version = 0;
    rc = load_str(&svc, mini_doc, &o, err, sizeof(err));
    ok(rc == GAPI_EINVAL && strstr(err, "options.version"), "options.version 0: GAPI_EINVAL");
    o.version = GAPI_SERVICE_OPTIONS_VERSION;
    /* Options are checked before the document is read. */
    o.endpoint = "nope";
    rc = load_str(&svc, "not json", &o, err, sizeof(err));
    ok(rc == GAPI_EINVAL, "bad options reported before a bad document");
    ok(svc == (gapi_service *)&svc, "*out untouched on every failure");

    is_int(gapi_service_from_json(NULL, "{}", 2, NULL, err, sizeof(err)), GAPI_EINVAL,
           "NULL out: GAPI_EINVAL");
    is_int(gapi_service_from_json(&svc, NULL, 0, NULL, NULL, 0), GAPI_EINVAL,
           "NULL doc: GAPI_EINVAL (no errbuf is fine)");
    rc = gapi_service_from_file(&svc, "/nonexistent/dir/x.json", NULL, err, sizeof(err));
    ok(rc == GAPI_EINVAL && strcmp(err, "/nonexistent/dir/x.json: No such file or directory") == 0,
       "missing file: GAPI_EINVAL naming it (%s)", err);
    rc = gapi_service_from_file(&svc, "/", NULL, err, sizeof(err));
    ok(rc == GAPI_EINVAL && strncmp(err, "/: ", 3) == 0, "a directory: GAPI_EINVAL (%s)", err);
    err[0] = 'x';
    rc = gapi_service_from_json(&svc, "{", 1, NULL, err, 1);
    ok(rc == GAPI_EDISCOVERY && err[0] == '\0', "a 1-byte errbuf gets an empty message");
}

/* ------------------------------------------------------------ memory */

static void test_alloc_failures(void)
{
    size_t live0 = live_bytes;
    long n, enomem = 0, other = 0, leaks = 0, succeeded_at = 0;
    gapi_service *svc = NULL;
    char err[256];

    for (n = 1; n < 100000; n++) {
        int rc;
        alloc_calls = 0;
        failed_once = 0;
        fail_at = n;
        rc = load_str(&svc, mini_doc, NULL, err, sizeof(err));
        fail_at = 0;
        if (rc == 0) {
            gapi_service_unref(svc);
            if (!failed_once) {
                succeeded_at = n;
                break;
            }
        } else if (rc == GAPI_ENOMEM && strcmp(err, "out of memory") == 0) {
            enomem++;
        } else {
            if (other++ < 3)
                diag("  allocation %ld failed: %s %s", n, gapi_error_name(rc), err);
        }
        if (live_bytes != live0 && leaks++ < 3)
            diag("  allocation %ld failed: %zu bytes leaked", n, live_bytes - live0);
    }
    ok(succeeded_at > 10 && other == 0,
       "failing allocation 1..%ld of a load: always GAPI_ENOMEM \"out of memory\" (%ld times)",
       succeeded_at - 1, enomem);
    ok(leaks == 0, "no leak after any failed allocation");

    /* A schema parsed on demand, and a file read, under failure too. */
    if (load_str(&svc, mini_doc, NULL, err, sizeof(err)) == 0) {
        long schema_fail = 0;
        for (n = 1; n < 1000; n++) {
            struct json_object *o = NULL;
            int rc;
            alloc_calls = 0;
            failed_once = 0;
            fail_at = n;
            rc = gapi_service_schema(svc, "Item", &o);
            fail_at = 0;
            if (rc == 0) {
                json_object_put(o);
                if (!failed_once)
                    break;
            } else if (rc != GAPI_ENOMEM) {
                schema_fail++;
            }
        }
        ok(schema_fail == 0, "gapi_service_schema under allocation failure: 0 or GAPI_ENOMEM");
        gapi_service_unref(svc);
    }
    ok(live_bytes == live0, "nothing left allocated");
}

static void test_compute_memory(void)
{
    char *path = tap_shared_path("discovery/compute.v1.json");
    size_t live0 = live_bytes, model, len;
    gapi_service *svc = NULL;
    char err[256];
    struct stat st;

    if (!path)
        return;
    stat(path, &st);
    len = (size_t)st.st_size;
    if (gapi_service_from_file(&svc, path, NULL, err, sizeof(err)) == 0) {
        model = live_bytes - live0;
        ok(model <= 3 * len,
           "compute v1: the model holds %zu bytes for a %zu-byte document (%.2fx)", model, len,
           (double)model / (double)len);
        gapi_service_unref(svc);
    } else {
        ok(0, "compute v1 loads: %s", err);
    }
    free(path);
}

/* ------------------------------------------------------------ references and threads */

struct reader {
    gapi_service *svc;
    long found;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    gapi_service *svc = r->svc; /* a reference taken for this thread */
    int i;
    size_t j;

    for (i = 0; i < 200; i++)
        for (j = 0; j < gapi_service_method_count(svc); j++) {
            const gapi_method *m = gapi_service_method_at(svc, j);
            if (gapi_service_method(svc, gapi_method_name(m)) == m &&
                gapi_service_method_by_id(svc, gapi_method_id(m)) == m)
                r->found++;
        }
    gapi_service_unref(svc);
    return NULL;
}

static void test_refs(void)
{
    size_t live0 = live_bytes, live1;
    gapi_service *svc = NULL;
    pthread_t th[4];
    struct reader rd[4];
    char err[256];
    long found = 0;
    int i;

    if (load_str(&svc, mini_doc, NULL, err, sizeof(err)) != 0) {
        ok(0, "load: %s", err);
        return;
    }
    live1 = live_bytes;
    ok(gapi_service_ref(svc) == svc, "gapi_service_ref returns the service");
    gapi_service_unref(svc);
    ok(live_bytes == live1 && gapi_service_method(svc, "items.get") != NULL,
       "after ref + unref the service is still there");
    for (i = 0; i < 4; i++) {
        rd[i].svc = gapi_service_ref(svc);
        rd[i].found = 0;
    }
    /* The creator's reference goes first: the last reader frees. */
    gapi_service_unref(svc);
    for (i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, reader_main, &rd[i]);
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        found += rd[i].found;
    }
    is_int(found, 4 * 200 * 5, "4 threads looked up every method 200 times, all found");
    ok(live_bytes == live0, "the last unref, on a reader thread, freed the service");
}

int main(void)
{
    gapi_set_allocator(t_malloc, t_realloc, t_free);
    empty_object = json_object_new_object();
    test_real_documents();
    test_storage();
    test_other_real();
    test_mini();
    test_null_accessors();
    test_errors();
    test_depth();
    test_duplicates();
    test_mutations();
    test_options();
    test_alloc_failures();
    test_compute_memory();
    test_refs();
    json_object_put(empty_object);
    return tap_done();
}
