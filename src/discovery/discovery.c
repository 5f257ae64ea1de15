/*
 * Discovery document -> service model (the invariants are in discovery.h).
 *
 * The model keeps no json-c object: strings are interned into an arena
 * (parameter names, types, patterns and scopes repeat thousands of times)
 * and each schema is kept as compact JSON text, parsed again when asked
 * for. The whole document is never turned into one json-c tree either:
 * that tree is five times the document (24 MiB for compute v1) and
 * building and freeing it took most of the load time. Instead a raw
 * scanner splits the top-level object, "resources" and "schemas" into
 * members, and each member's value is parsed on its own by the strict
 * parser (src/json/parse.h) and freed before the next, so every byte of
 * the document is still validated by that parser, while the scanner only
 * checks the few separators between pieces ('{', ':', ',', '}') and
 * finds where each value ends (strings and brackets, which a valid piece
 * then confirms). Together these accept exactly the documents the strict
 * parser accepts, with json-c's rule for duplicate keys (the last value
 * wins, at the first one's position).
 *
 * Every failure is GAPI_EDISCOVERY with the JSON path of the offending
 * member in the message (or, for JSON syntax, the line, column and byte
 * offset in the document), or GAPI_ENOMEM; whatever was built is freed.
 * The first problem found is reported.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "common/error.h"
#include "common/alloc.h"
#include "discovery/discovery.h"
#include "json/parse.h"

#define DEFAULT_UNIVERSE  "googleapis.com"
#define ARENA_FIRST_CHUNK 8192
#define ARENA_MAX_CHUNK   (256 * 1024)
#define SCHEMA_TEXT_FIRST (64 * 1024)
#define ERRPATH_MAX       512

/* ---------------------------------------------------------------- arena */

/* Chunks are freed together with the service. The chunk being filled is
 * always the list head; an allocation bigger than a quarter of the next
 * chunk size gets a chunk of its own, linked behind the head, so at most a
 * quarter of any chunk is wasted. */
struct gapi__arena_chunk {
    struct gapi__arena_chunk *next;
    size_t used, cap;
};

#define CHUNK_HDR ((sizeof(struct gapi__arena_chunk) + 15) & ~(size_t)15)

struct intern_entry {
    const char *s;
    uint32_t len, hash;
    uint32_t gen, slot; /* see collect_members */
};

typedef struct build {
    gapi_service *svc;
    char *errbuf;
    size_t errbuf_size;
    size_t next_chunk;

    const char *doc; /* the document, for raw scanning and error positions */
    size_t doc_len;

    /* JSON path of what is being read, for messages. */
    char path[ERRPATH_MAX];
    size_t plen;

    /* Interned strings: open addressing, load <= 1/2. */
    struct intern_entry *itab;
    uint32_t imask, icount;
    uint32_t gen; /* collect_members generation */

    uint32_t mcap, rcap; /* capacity of svc->methods / svc->resources */

    char *stext; /* schema text being built */
    size_t slen, scap;

    const char *universe; /* resolved universe domain */
    const char *endpoint; /* resolved endpoint override, or NULL */
} build;

static void *arena_alloc(build *b, size_t n)
{
    struct gapi__arena_chunk *c = b->svc->arena;
    size_t want = (n + 7) & ~(size_t)7;

    if (want < n)
        return NULL;
    if (c && c->cap - c->used >= want) {
        void *p = (char *)c + CHUNK_HDR + c->used;
        c->used += want;
        return p;
    }
    if (want > b->next_chunk / 4) {
        /* Own chunk, behind the head, which stays the one being filled. */
        struct gapi__arena_chunk *big;
        if (want > (size_t)-1 - CHUNK_HDR)
            return NULL;
        big = gapi__malloc(CHUNK_HDR + want);
        if (!big)
            return NULL;
        big->used = big->cap = want;
        if (c) {
            big->next = c->next;
            c->next = big;
        } else {
            big->next = NULL;
            b->svc->arena = big;
        }
        return (char *)big + CHUNK_HDR;
    }
    c = gapi__malloc(CHUNK_HDR + b->next_chunk);
    if (!c)
        return NULL;
    c->cap = b->next_chunk;
    c->used = want;
    c->next = b->svc->arena;
    b->svc->arena = c;
    if (b->next_chunk < ARENA_MAX_CHUNK)
        b->next_chunk *= 2;
    return (char *)c + CHUNK_HDR;
}

/* ---------------------------------------------------------------- errors */

__attribute__((format(printf, 2, 3))) static int fail(build *b, const char *fmt, ...)
{
    va_list ap;
    int n = 0;

    if (!b->errbuf || !b->errbuf_size)
        return GAPI_EDISCOVERY;
    if (b->plen)
        n = snprintf(b->errbuf, b->errbuf_size, "%s: ", b->path);
    if (n >= 0 && (size_t)n < b->errbuf_size) {
        va_start(ap, fmt);
        vsnprintf(b->errbuf + n, b->errbuf_size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return GAPI_EDISCOVERY;
}

static int nomem(build *b)
{
    gapi__errbuf_printf(b->errbuf, b->errbuf_size, "out of memory");
    return GAPI_ENOMEM;
}

/* Appends s[0..n) to the path, truncating (the path only feeds messages). */
static void path_add(build *b, const char *s, size_t n)
{
    size_t room = sizeof(b->path) - 1 - b->plen;

    if (n > room)
        n = room;
    memcpy(b->path + b->plen, s, n);
    b->plen += n;
    b->path[b->plen] = '\0';
}

/* Member names that would read ambiguously after a '.' are quoted:
 * parameters["options.requestedPolicyVersion"]. Called for every member
 * read, so no printf. */
static size_t path_push(build *b, const char *key)
{
    size_t old = b->plen;

    if (!*key || strpbrk(key, ".[]\" ") != NULL) {
        path_add(b, "[\"", 2);
        path_add(b, key, strlen(key));
        path_add(b, "\"]", 2);
    } else {
        if (b->plen)
            path_add(b, ".", 1);
        path_add(b, key, strlen(key));
    }
    return old;
}

static size_t path_push_index(build *b, size_t i)
{
    size_t old = b->plen;
    char num[32];
    int n = snprintf(num, sizeof(num), "[%zu]", i);

    path_add(b, num, (size_t)n);
    return old;
}

static void path_pop(build *b, size_t old)
{
    b->plen = old;
    b->path[old] = '\0';
}

/* A JSON syntax error at byte off of the document. */
static int not_json(build *b, size_t off, const char *msg)
{
    unsigned line = 1, col = 1;
    size_t i;

    if (!b->errbuf || !b->errbuf_size)
        return GAPI_EDISCOVERY;
    for (i = 0; i < off && i < b->doc_len; i++) {
        if (b->doc[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(b->errbuf, b->errbuf_size, "not JSON: line %u column %u (offset %zu): %s", line, col,
             off, msg);
    return GAPI_EDISCOVERY;
}

/* ---------------------------------------------------------------- interning */

uint32_t gapi__discovery_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static int intern_grow(build *b)
{
    uint32_t ncap = b->itab ? (b->imask + 1) * 2 : 1024;
    struct intern_entry *nt = gapi__calloc(ncap, sizeof(*nt));
    uint32_t i;

    if (!nt)
        return GAPI_ENOMEM;
    if (b->itab) {
        for (i = 0; i <= b->imask; i++) {
            uint32_t j;
            if (!b->itab[i].s)
                continue;
            for (j = b->itab[i].hash & (ncap - 1); nt[j].s; j = (j + 1) & (ncap - 1))
                ;
            nt[j] = b->itab[i];
        }
        gapi__free(b->itab);
    }
    b->itab = nt;
    b->imask = ncap - 1;
    return 0;
}

/* The model's copy of s[0..len); what names the field for messages. When
 * entry is not NULL it receives the string's table entry (valid until the
 * next call). */
static int intern_entry_of(build *b, const char *s, size_t len, const char *what, const char **out,
                           struct intern_entry **entry)
{
    uint32_t h, i;
    char *copy;

    if (memchr(s, '\0', len))
        return fail(b, "%s contains a NUL character", what);
    if (len > UINT32_MAX)
        return fail(b, "%s is too long", what);
    if ((!b->itab || (b->icount + 1) * 2 > b->imask + 1) && intern_grow(b))
        return nomem(b);
    h = gapi__discovery_hash(s, len);
    for (i = h & b->imask; b->itab[i].s; i = (i + 1) & b->imask) {
        if (b->itab[i].hash == h && b->itab[i].len == len && memcmp(b->itab[i].s, s, len) == 0) {
            *out = b->itab[i].s;
            if (entry)
                *entry = &b->itab[i];
            return 0;
        }
    }
    if (!(copy = arena_alloc(b, len + 1)))
        return nomem(b);
    memcpy(copy, s, len);
    copy[len] = '\0';
    b->itab[i].s = copy;
    b->itab[i].len = (uint32_t)len;
    b->itab[i].hash = h;
    b->icount++;
    *out = copy;
    if (entry)
        *entry = &b->itab[i];
    return 0;
}

static int intern(build *b, const char *s, size_t len, const char *what, const char **out)
{
    return intern_entry_of(b, s, len, what, out, NULL);
}

static int intern_c(build *b, const char *s, const char *what, const char **out)
{
    return intern(b, s, strlen(s), what, out);
}

/* ---------------------------------------------------------------- typed members */

/* Absent and null read as "not given". */
static struct json_object *member(struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v))
        return NULL;
    return v;
}

static int get_str(build *b, struct json_object *obj, const char *key, int required,
                   const char **out)
{
    struct json_object *v = member(obj, key);
    char what[64];

    *out = NULL;
    if (!v)
        return required ? fail(b, "\"%s\" missing", key) : 0;
    if (!json_object_is_type(v, json_type_string))
        return fail(b, "\"%s\" is not a string", key);
    snprintf(what, sizeof(what), "\"%s\"", key);
    return intern(b, json_object_get_string(v), (size_t)json_object_get_string_len(v), what, out);
}

static int get_bool(build *b, struct json_object *obj, const char *key, int *out)
{
    struct json_object *v = member(obj, key);

    *out = 0;
    if (!v)
        return 0;
    if (!json_object_is_type(v, json_type_boolean))
        return fail(b, "\"%s\" is not a boolean", key);
    *out = json_object_get_boolean(v);
    return 0;
}

static int get_typed(build *b, struct json_object *obj, const char *key, enum json_type t,
                     struct json_object **out)
{
    struct json_object *v = member(obj, key);

    *out = NULL;
    if (!v)
        return 0;
    if (!json_object_is_type(v, t))
        return fail(b, "\"%s\" is not %s", key, t == json_type_object ? "an object" : "an array");
    *out = v;
    return 0;
}

/* An optional array of strings at obj.key. */
static int get_str_array(build *b, struct json_object *obj, const char *key,
                         const char *const **out, uint32_t *count)
{
    struct json_object *arr;
    const char **v;
    size_t n, i, old;
    int rc;

    *out = NULL;
    *count = 0;
    if ((rc = get_typed(b, obj, key, json_type_array, &arr)) != 0 || !arr)
        return rc;
    n = json_object_array_length(arr);
    if (n == 0)
        return 0;
    if (!(v = arena_alloc(b, n * sizeof(*v))))
        return nomem(b);
    old = path_push(b, key);
    for (i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(arr, i);
        size_t o2 = path_push_index(b, i);
        if (!json_object_is_type(e, json_type_string))
            return fail(b, "not a string");
        if ((rc = intern(b, json_object_get_string(e), (size_t)json_object_get_string_len(e),
                         "the value", &v[i])) != 0)
            return rc;
        path_pop(b, o2);
    }
    path_pop(b, old);
    *out = v;
    *count = (uint32_t)n;
    return 0;
}

/* ---------------------------------------------------------------- parameters */

static const struct {
    const char *name;
    gapi__param_kind kind;
} param_types[] = {
    {"string", GAPI__PARAM_STRING}, {"integer", GAPI__PARAM_INTEGER},
    {"number", GAPI__PARAM_NUMBER}, {"boolean", GAPI__PARAM_BOOLEAN},
    {"any", GAPI__PARAM_ANY},       {"array", GAPI__PARAM_ARRAY},
    {"object", GAPI__PARAM_OBJECT},
};

/* Fills p from the parameter called name (path already pushed). */
static int parse_param(build *b, const char *name, struct json_object *o, gapi_param *p)
{
    const char *loc;
    int rc, flag;
    size_t i;

    if (!json_object_is_type(o, json_type_object))
        return fail(b, "not an object");
    if (!*name)
        return fail(b, "empty parameter name");
    if ((rc = intern_c(b, name, "the parameter name", &p->name)) != 0 ||
        (rc = get_str(b, o, "location", 1, &loc)) != 0)
        return rc;
    if (strcmp(loc, "query") == 0)
        p->location = GAPI_PARAM_QUERY;
    else if (strcmp(loc, "path") == 0)
        p->location = GAPI_PARAM_PATH;
    else
        return fail(b, "\"location\" is \"%s\", not \"query\" or \"path\"", loc);
    if ((rc = get_str(b, o, "type", 0, &p->type)) != 0)
        return rc;
    p->kind = GAPI__PARAM_ANY;
    if (p->type) {
        for (i = 0; i < sizeof(param_types) / sizeof(param_types[0]); i++)
            if (strcmp(p->type, param_types[i].name) == 0)
                break;
        if (i == sizeof(param_types) / sizeof(param_types[0]))
            return fail(b, "\"type\" is \"%s\", not a JSON schema type", p->type);
        p->kind = (uint8_t)param_types[i].kind;
    }
    if ((rc = get_str(b, o, "format", 0, &p->format)) != 0 ||
        (rc = get_str(b, o, "pattern", 0, &p->pattern)) != 0 ||
        (rc = get_str(b, o, "default", 0, &p->default_value)) != 0 ||
        (rc = get_str(b, o, "minimum", 0, &p->minimum)) != 0 ||
        (rc = get_str(b, o, "maximum", 0, &p->maximum)) != 0 ||
        (rc = get_str_array(b, o, "enum", &p->enum_values, &p->enum_count)) != 0)
        return rc;
    if ((rc = get_bool(b, o, "required", &flag)) != 0)
        return rc;
    p->required = (uint8_t)flag;
    if ((rc = get_bool(b, o, "repeated", &flag)) != 0)
        return rc;
    p->repeated = (uint8_t)flag;
    return 0;
}

/* ---------------------------------------------------------------- methods */

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* "5497558138880", "5TB", "100MB" (binary units, as Python's client reads
 * them); "" is no limit. */
static int parse_max_size(const char *s, uint64_t *out)
{
    static const char units[] = "KMGT";
    size_t n = strlen(s), digits = n, i;
    unsigned shift = 0;
    uint64_t v = 0;

    *out = 0;
    if (n == 0)
        return 0;
    if (n >= 2 && (s[n - 1] == 'B' || s[n - 1] == 'b')) {
        const char *u = strchr(units, s[n - 2] & ~0x20);
        if (u && s[n - 2] != '\0') {
            shift = 10u * (unsigned)(u - units + 1);
            digits = n - 2;
        }
    }
    if (digits == 0)
        return -1;
    for (i = 0; i < digits; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = v << shift;
    return 0;
}

static int parse_protocol(build *b, struct json_object *protocols, const char *key,
                          const char **path, uint8_t *multipart)
{
    struct json_object *o;
    size_t old;
    int rc, flag;

    if ((rc = get_typed(b, protocols, key, json_type_object, &o)) != 0 || !o)
        return rc;
    old = path_push(b, key);
    if ((rc = get_str(b, o, "path", 0, path)) != 0 || (rc = get_bool(b, o, "multipart", &flag)))
        return rc;
    *multipart = (uint8_t)flag;
    path_pop(b, old);
    return 0;
}

static int parse_media(build *b, struct json_object *mu, gapi_method *m)
{
    gapi__media_upload *media;
    struct json_object *protocols;
    const char *max;
    size_t old = path_push(b, "mediaUpload");
    int rc;

    if (!(media = arena_alloc(b, sizeof(*media))))
        return nomem(b);
    memset(media, 0, sizeof(*media));
    if ((rc = get_str_array(b, mu, "accept", &media->accept, &media->accept_count)) != 0 ||
        (rc = get_str(b, mu, "maxSize", 0, &max)) != 0)
        return rc;
    if (max && parse_max_size(max, &media->max_size) != 0)
        return fail(b, "\"maxSize\" is \"%s\", not a size (digits, optionally KB, MB, GB or TB)",
                    max);
    if ((rc = get_typed(b, mu, "protocols", json_type_object, &protocols)) != 0)
        return rc;
    if (protocols) {
        size_t o2 = path_push(b, "protocols");
        if ((rc = parse_protocol(b, protocols, "simple", &media->simple_path,
                                 &media->simple_multipart)) != 0 ||
            (rc = parse_protocol(b, protocols, "resumable", &media->resumable_path,
                                 &media->resumable_multipart)) != 0)
            return rc;
        path_pop(b, o2);
    }
    path_pop(b, old);
    m->media = media;
    m->flags |= GAPI_METHOD_MEDIA_UPLOAD;
    return 0;
}

static int get_ref(build *b, struct json_object *o, const char *key, const char **out)
{
    struct json_object *v;
    size_t old;
    int rc;

    *out = NULL;
    if ((rc = get_typed(b, o, key, json_type_object, &v)) != 0 || !v)
        return rc;
    old = path_push(b, key);
    if ((rc = get_str(b, v, "$ref", 0, out)) != 0)
        return rc;
    path_pop(b, old);
    return 0;
}

static int parse_params(build *b, struct json_object *o, gapi_method *m)
{
    struct json_object *params, *order;
    gapi_param *ps;
    const char *pname;
    size_t n, k = 0, i, j, old;
    struct lh_entry *e;
    int rc;

    if ((rc = get_typed(b, o, "parameters", json_type_object, &params)) != 0 ||
        (rc = get_typed(b, o, "parameterOrder", json_type_array, &order)) != 0)
        return rc;
    n = params ? (size_t)json_object_object_length(params) : 0;
    if (order)
        k = json_object_array_length(order);
    if (n == 0 && k == 0)
        return 0;
    if (!(ps = arena_alloc(b, (n ? n : 1) * sizeof(*ps))))
        return nomem(b);
    memset(ps, 0, (n ? n : 1) * sizeof(*ps));

    /* parameterOrder entries first, in that order. An entry beyond the
     * n-th is a duplicate or not a parameter, so it fails before ps[n]
     * would be written. */
    for (i = 0; i < k; i++) {
        struct json_object *e2 = json_object_array_get_idx(order, i), *pv = NULL;

        old = path_push(b, "parameterOrder");
        path_push_index(b, i);
        if (!json_object_is_type(e2, json_type_string))
            return fail(b, "not a string");
        if ((rc = intern(b, json_object_get_string(e2), (size_t)json_object_get_string_len(e2),
                         "the value", &pname)) != 0)
            return rc;
        if (!params || !json_object_object_get_ex(params, pname, &pv))
            return fail(b, "\"%s\" is not in \"parameters\"", pname);
        for (j = 0; j < i; j++)
            if (ps[j].name == pname)
                return fail(b, "\"%s\" is listed twice", pname);
        path_pop(b, old);
        path_push(b, "parameters");
        path_push(b, pname);
        if ((rc = parse_param(b, pname, pv, &ps[i])) != 0)
            return rc;
        path_pop(b, old);
    }

    /* Then the rest, in document order. */
    i = k;
    if (params) {
        old = path_push(b, "parameters");
        for (e = json_object_get_object(params)->head; e; e = e->next) {
            const char *key = (const char *)lh_entry_k(e);
            size_t o2;
            for (j = 0; j < k; j++)
                if (strcmp(ps[j].name, key) == 0)
                    break;
            if (j < k)
                continue;
            o2 = path_push(b, key);
            if ((rc = parse_param(b, key, (struct json_object *)lh_entry_v(e), &ps[i])) != 0)
                return rc;
            path_pop(b, o2);
            i++;
        }
        path_pop(b, old);
    }
    m->params = ps;
    m->param_count = (uint32_t)n;
    m->order_count = (uint32_t)k;
    return 0;
}

/* Fills m (whose name is set) from the method's value o; the JSON path is
 * already pushed. */
static int parse_method(build *b, struct json_object *o, gapi_method *m, uint32_t resource)
{
    struct json_object *mu;
    const char *s;
    int rc, flag;

    if (!json_object_is_type(o, json_type_object))
        return fail(b, "not an object");
    m->svc = b->svc;
    m->resource = resource;

    if ((rc = get_str(b, o, "id", 1, &m->id)) != 0 ||
        (rc = get_str(b, o, "httpMethod", 1, &m->http_method)) != 0 ||
        (rc = get_str(b, o, "path", 1, &m->path)) != 0)
        return rc;
    if (!*m->id)
        return fail(b, "\"id\" is empty");
    if (!*m->http_method)
        return fail(b, "\"httpMethod\" is empty");
    for (s = m->http_method; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return fail(b, "\"httpMethod\" \"%s\" is not an HTTP method token", m->http_method);
    if ((rc = get_str(b, o, "flatPath", 0, &m->flat_path)) != 0 ||
        (rc = get_str(b, o, "apiVersion", 0, &m->api_version)) != 0 ||
        (rc = get_ref(b, o, "request", &m->request_ref)) != 0 ||
        (rc = get_ref(b, o, "response", &m->response_ref)) != 0 ||
        (rc = get_str_array(b, o, "scopes", &m->scopes, &m->scope_count)) != 0 ||
        (rc = parse_params(b, o, m)) != 0)
        return rc;

    if ((rc = get_bool(b, o, "supportsMediaUpload", &flag)) != 0)
        return rc;
    if (flag)
        m->flags |= GAPI_METHOD_MEDIA_UPLOAD;
    if ((rc = get_bool(b, o, "supportsMediaDownload", &flag)) != 0)
        return rc;
    if (flag)
        m->flags |= GAPI_METHOD_MEDIA_DOWNLOAD;
    if ((rc = get_bool(b, o, "useMediaDownloadService", &flag)) != 0)
        return rc;
    if (flag)
        m->flags |= GAPI_METHOD_MEDIA_DOWNLOAD_SERVICE;
    if ((rc = get_bool(b, o, "supportsSubscription", &flag)) != 0)
        return rc;
    if (flag)
        m->flags |= GAPI_METHOD_SUBSCRIPTION;
    if ((rc = get_typed(b, o, "mediaUpload", json_type_object, &mu)) != 0)
        return rc;
    if (mu && (rc = parse_media(b, mu, m)) != 0)
        return rc;
    return 0;
}

/* ---------------------------------------------------------------- raw scanning */

typedef struct member_span {
    const char *key;   /* interned */
    size_t start, end; /* the value's bytes in the document */
} member_span;

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(build *b, size_t i, size_t end)
{
    while (i < end && is_ws(b->doc[i]))
        i++;
    return i;
}

/* i is at a '"'; returns the index just past the closing quote, or
 * (size_t)-1 when there is none. Escapes are skipped, not checked: the
 * strict parser checks them when the piece holding the string is parsed. */
static size_t skip_string(build *b, size_t i, size_t end)
{
    const char *s = b->doc;

    for (i++; i < end;) {
        const char *q = memchr(s + i, '"', end - i);
        size_t k, bs = 0;
        if (!q)
            return (size_t)-1;
        for (k = (size_t)(q - s); k > i && s[k - 1] == '\\'; k--)
            bs++;
        i = (size_t)(q - s) + 1;
        if (bs % 2 == 0)
            return i;
    }
    return (size_t)-1;
}

/* i is at the first byte of a value; returns the index just past it (a
 * string, a bracketed container or a literal/number), or (size_t)-1 when
 * the document ends first. Whether the bytes are valid JSON is for the
 * strict parser to say. */
static size_t skip_value(build *b, size_t i, size_t end)
{
    const char *s = b->doc;
    size_t depth = 0;

    if (i >= end)
        return (size_t)-1;
    if (s[i] == '"')
        return skip_string(b, i, end);
    if (s[i] != '{' && s[i] != '[') {
        while (i < end && !is_ws(s[i]) && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ':')
            i++;
        return i;
    }
    while (i < end) {
        char c = s[i];
        if (c == '"') {
            if ((i = skip_string(b, i, end)) == (size_t)-1)
                return i;
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0)
                return i + 1;
        }
        i++;
    }
    return (size_t)-1;
}

/* Parse doc[start, end) as one JSON value nested depth levels into the
 * document; a syntax error is reported at its place in the document. */
static int parse_piece(build *b, size_t start, size_t end, unsigned depth, struct json_object **out)
{
    gapi__json_error jerr;
    unsigned max = GAPI__JSON_DEFAULT_DEPTH > depth ? GAPI__JSON_DEFAULT_DEPTH - depth : 1;
    int rc;

    *out = NULL;
    rc = gapi__json_parse(b->doc + start, end - start, max, out, &jerr);
    if (rc == GAPI_ENOMEM)
        return nomem(b);
    if (rc) {
        /* Say the limit for the whole document, not for this piece. */
        if (strncmp(jerr.message, "nesting deeper than ", 20) == 0)
            snprintf(jerr.message, sizeof(jerr.message), "nesting deeper than %u",
                     GAPI__JSON_DEFAULT_DEPTH);
        return not_json(b, start + jerr.offset, jerr.message);
    }
    return 0;
}

/* Interns the object key whose quoted text is doc[start, end). Keys
 * without escapes or control bytes are copied as they are; others go
 * through the strict parser (the model's strings never hold a NUL, so a
 * key with \u0000 is refused, as the parser refuses it in keys). */
static int intern_key(build *b, size_t start, size_t end, const char **out,
                      struct intern_entry **entry)
{
    struct json_object *o;
    size_t i;
    int rc;

    for (i = start + 1; i + 1 < end; i++) {
        unsigned char c = (unsigned char)b->doc[i];
        if (c < 0x20 || c == '\\' || c >= 0x80)
            break;
    }
    if (i + 1 == end && end - start >= 2)
        return intern_entry_of(b, b->doc + start + 1, end - start - 2, "the key", out, entry);
    if ((rc = parse_piece(b, start, end, 0, &o)) != 0)
        return rc;
    if (!json_object_is_type(o, json_type_string)) {
        json_object_put(o);
        return not_json(b, start, "expected a string as object key");
    }
    if (memchr(json_object_get_string(o), '\0', (size_t)json_object_get_string_len(o))) {
        json_object_put(o);
        return not_json(b, start, "\\u0000 in an object key");
    }
    rc = intern_entry_of(b, json_object_get_string(o), (size_t)json_object_get_string_len(o),
                         "the key", out, entry);
    json_object_put(o);
    return rc;
}

/* The members of the object at doc[start, end) (start at its '{', end just
 * past its '}', or the end of the document for the top level, where only
 * whitespace may follow the '}'). A repeated key keeps the first one's
 * position and the last one's value, as json-c does; the value it replaces
 * is still parsed, so the document is checked as a whole. The array is
 * gapi__malloc'd (NULL when empty). depth is the nesting level of the
 * members' values in the document. */
static int collect_members(build *b, size_t start, size_t end, unsigned depth, member_span **out,
                           size_t *count)
{
    member_span *m = NULL, *nm;
    size_t n = 0, cap = 0, i = start, k0, v0;
    uint32_t gen = ++b->gen;
    struct intern_entry *ent;
    const char *key;
    int rc;

    *out = NULL;
    *count = 0;
    i = skip_ws(b, i, end);
    if (i >= end || b->doc[i] != '{')
        return not_json(b, i, "expected '{'");
    i = skip_ws(b, i + 1, end);
    if (i < end && b->doc[i] == '}') {
        i++;
        goto closed;
    }
    for (;;) {
        if (i >= end || b->doc[i] != '"') {
            rc = not_json(b, i, "expected a string as object key");
            goto fail;
        }
        k0 = i;
        if ((i = skip_string(b, i, end)) == (size_t)-1) {
            rc = not_json(b, k0, "unterminated string");
            goto fail;
        }
        if ((rc = intern_key(b, k0, i, &key, &ent)) != 0)
            goto fail;
        i = skip_ws(b, i, end);
        if (i >= end || b->doc[i] != ':') {
            rc = not_json(b, i, "expected ':' after object key");
            goto fail;
        }
        v0 = i = skip_ws(b, i + 1, end);
        if ((i = skip_value(b, i, end)) == (size_t)-1 || i == v0) {
            /* Let the parser say what is wrong with the value. */
            struct json_object *o;
            rc = parse_piece(b, v0, end, depth, &o);
            json_object_put(o);
            if (rc == 0)
                rc = not_json(b, v0, "expected a value");
            goto fail;
        }
        if (ent->gen == gen) {
            /* Repeated key: check the earlier value, then replace it. */
            struct json_object *o;
            member_span *old = &m[ent->slot];
            if ((rc = parse_piece(b, old->start, old->end, depth, &o)) != 0)
                goto fail;
            json_object_put(o);
            old->start = v0;
            old->end = i;
        } else {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                if (!(nm = gapi__realloc(m, cap * sizeof(*m)))) {
                    rc = nomem(b);
                    goto fail;
                }
                m = nm;
            }
            ent->gen = gen;
            ent->slot = (uint32_t)n;
            m[n].key = key;
            m[n].start = v0;
            m[n].end = i;
            n++;
        }
        i = skip_ws(b, i, end);
        if (i < end && b->doc[i] == ',') {
            i = skip_ws(b, i + 1, end);
            if (i < end && b->doc[i] == '}') {
                rc = not_json(b, i, "trailing comma before '}'");
                goto fail;
            }
            continue;
        }
        if (i < end && b->doc[i] == '}') {
            i++;
            break;
        }
        rc = not_json(b, i, "expected ',' or '}' after object member");
        goto fail;
    }
closed:
    i = skip_ws(b, i, end);
    if (i != end) {
        rc = not_json(b, i, "unexpected text after the JSON value");
        goto fail;
    }
    *out = m;
    *count = n;
    return 0;
fail:
    gapi__free(m);
    return rc;
}

/* The value at doc[start, end) must be an object: when it is not, it is
 * parsed to report either its syntax error or "not an object". */
static int expect_object(build *b, size_t start, size_t end, unsigned depth, const char *what)
{
    struct json_object *o;
    int rc;

    if (start < end && b->doc[start] == '{')
        return 0;
    if ((rc = parse_piece(b, start, end, depth, &o)) != 0)
        return rc;
    json_object_put(o);
    return fail(b, "%s is not an object", what);
}

/* ---------------------------------------------------------------- resources */

static int grow(void **arr, uint32_t *cap, uint32_t need, size_t size)
{
    uint32_t ncap = *cap ? *cap : 16;
    void *p;

    if (need <= *cap)
        return 0;
    while (ncap < need) {
        if (ncap > UINT32_MAX / 2)
            return GAPI_ENOMEM;
        ncap *= 2;
    }
    if ((size_t)ncap > (size_t)-1 / size || !(p = gapi__realloc(*arr, (size_t)ncap * size)))
        return GAPI_ENOMEM;
    memset((char *)p + (size_t)*cap * size, 0, (size_t)(ncap - *cap) * size);
    *arr = p;
    *cap = ncap;
    return 0;
}

/* prefix + "." + name in the arena (just name when prefix is NULL). */
static const char *dotted_name(build *b, const char *prefix, const char *name)
{
    size_t plen = prefix ? strlen(prefix) + 1 : 0, nlen = strlen(name);
    char *d = arena_alloc(b, plen + nlen + 1);

    if (!d)
        return NULL;
    if (prefix) {
        memcpy(d, prefix, plen - 1);
        d[plen - 1] = '.';
    }
    memcpy(d + plen, name, nlen + 1);
    return d;
}

/* The methods object ms of the resource whose dotted path is prefix (NULL
 * at top level), appended to svc->methods in document order. */
static int fill_methods(build *b, struct json_object *ms, const char *prefix, uint32_t resource)
{
    gapi_service *svc = b->svc;
    uint32_t n = (uint32_t)json_object_object_length(ms);
    struct lh_entry *e;
    size_t old;
    int rc;

    if (n > UINT32_MAX / 2 - svc->method_count)
        return fail(b, "too many methods");
    if (grow((void **)&svc->methods, &b->mcap, svc->method_count + n, sizeof(*svc->methods)))
        return nomem(b);
    old = path_push(b, "methods");
    for (e = json_object_get_object(ms)->head; e; e = e->next) {
        const char *name = (const char *)lh_entry_k(e);
        size_t o2 = path_push(b, name);
        gapi_method *m = &svc->methods[svc->method_count];
        if (!*name)
            return fail(b, "empty method name");
        if (!(m->name = dotted_name(b, prefix, name)))
            return nomem(b);
        if ((rc = parse_method(b, (struct json_object *)lh_entry_v(e), m, resource)) != 0)
            return rc;
        svc->method_count++;
        path_pop(b, o2);
    }
    path_pop(b, old);
    return 0;
}

/* The resource called name (interned) with value r, under the resource
 * whose dotted path is prefix (NULL at top level); its own methods, then
 * its sub-resources depth-first. The JSON path is already pushed. */
static int fill_resource(build *b, const char *name, struct json_object *r, const char *prefix,
                         uint32_t parent, unsigned depth)
{
    gapi_service *svc = b->svc;
    struct json_object *ms, *rs;
    const char *dotted;
    struct lh_entry *e;
    uint32_t ri;
    int rc;

    if (!json_object_is_type(r, json_type_object))
        return fail(b, "not an object");
    if (!*name)
        return fail(b, "empty resource name");
    if (depth > GAPI__DISCOVERY_MAX_DEPTH)
        return fail(b, "resources nested deeper than %d", GAPI__DISCOVERY_MAX_DEPTH);
    if ((rc = get_typed(b, r, "methods", json_type_object, &ms)) != 0 ||
        (rc = get_typed(b, r, "resources", json_type_object, &rs)) != 0)
        return rc;
    if (svc->resource_count == UINT32_MAX / 2)
        return fail(b, "too many resources");
    if (grow((void **)&svc->resources, &b->rcap, svc->resource_count + 1, sizeof(*svc->resources)))
        return nomem(b);
    if (!(dotted = dotted_name(b, prefix, name)))
        return nomem(b);
    /* svc->resources may move while sub-resources are added: index it. */
    ri = svc->resource_count++;
    svc->resources[ri].name = name;
    svc->resources[ri].full_name = dotted;
    svc->resources[ri].parent = parent;
    svc->resources[ri].first_method = svc->method_count;
    if (ms) {
        if ((rc = fill_methods(b, ms, dotted, ri)) != 0)
            return rc;
        svc->resources[ri].method_count = svc->method_count - svc->resources[ri].first_method;
    }
    if (!rs)
        return 0;
    for (e = json_object_get_object(rs)->head; e; e = e->next) {
        const char *sub;
        size_t old = path_push(b, "resources");
        path_push(b, (const char *)lh_entry_k(e));
        if ((rc = intern_c(b, (const char *)lh_entry_k(e), "the resource name", &sub)) != 0 ||
            (rc = fill_resource(b, sub, (struct json_object *)lh_entry_v(e), dotted, ri,
                                depth + 1)) != 0)
            return rc;
        path_pop(b, old);
    }
    return 0;
}

/* The document's "resources" at doc[start, end): each top-level resource
 * is parsed, turned into model and freed before the next. */
static int load_resources(build *b, size_t start, size_t end)
{
    member_span *m = NULL;
    size_t n, i, old;
    int rc;

    if ((rc = expect_object(b, start, end, 1, "\"resources\"")) != 0)
        return rc;
    old = path_push(b, "resources");
    if ((rc = collect_members(b, start, end, 2, &m, &n)) != 0)
        return rc;
    for (i = 0; i < n && rc == 0; i++) {
        struct json_object *r;
        size_t o2 = path_push(b, m[i].key);
        if ((rc = parse_piece(b, m[i].start, m[i].end, 2, &r)) != 0)
            break;
        rc = fill_resource(b, m[i].key, r, NULL, UINT32_MAX, 1);
        json_object_put(r);
        path_pop(b, o2);
    }
    gapi__free(m);
    if (rc == 0)
        path_pop(b, old);
    return rc;
}

/* ---------------------------------------------------------------- schemas */

static int stext_reserve(build *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->scap - b->slen >= n)
        return 0;
    cap = b->scap ? b->scap : SCHEMA_TEXT_FIRST;
    while (cap - b->slen < n) {
        if (cap > (size_t)-1 / 2)
            return GAPI_ENOMEM;
        cap *= 2;
    }
    if (!(p = gapi__realloc(b->stext, cap)))
        return GAPI_ENOMEM;
    b->stext = p;
    b->scap = cap;
    return 0;
}

/* Appends doc[start, end), valid JSON, without the whitespace outside its
 * strings; escapes stay as written (so the text parses to the same value). */
static int emit_compact(build *b, size_t start, size_t end)
{
    const char *s = b->doc;
    char *o;
    size_t i = start;

    if (stext_reserve(b, end - start))
        return GAPI_ENOMEM;
    o = b->stext + b->slen;
    while (i < end) {
        char c = s[i];
        if (c == '"') {
            size_t j = skip_string(b, i, end); /* valid JSON: always terminated */
            memcpy(o, s + i, j - i);
            o += j - i;
            i = j;
        } else {
            if (!is_ws(c))
                *o++ = c;
            i++;
        }
    }
    b->slen = (size_t)(o - b->stext);
    return 0;
}

/* The document's "schemas" at doc[start, end). Each schema is parsed (so
 * the document is fully checked) and kept as compact text. */
static int load_schemas(build *b, size_t start, size_t end)
{
    gapi_service *svc = b->svc;
    member_span *m = NULL;
    size_t n, i, old;
    char *shrunk;
    int rc;

    if ((rc = expect_object(b, start, end, 1, "\"schemas\"")) != 0)
        return rc;
    old = path_push(b, "schemas");
    if ((rc = collect_members(b, start, end, 2, &m, &n)) != 0)
        return rc;
    if (n && !(svc->schemas = arena_alloc(b, n * sizeof(*svc->schemas))))
        rc = nomem(b);
    for (i = 0; i < n && rc == 0; i++) {
        struct json_object *o;
        size_t o2 = path_push(b, m[i].key);
        if ((rc = parse_piece(b, m[i].start, m[i].end, 2, &o)) != 0)
            break;
        if (!json_object_is_type(o, json_type_object))
            rc = fail(b, "not an object");
        json_object_put(o);
        if (rc)
            break;
        svc->schemas[i].name = m[i].key;
        svc->schemas[i].offset = b->slen;
        if (emit_compact(b, m[i].start, m[i].end)) {
            rc = nomem(b);
            break;
        }
        svc->schemas[i].len = b->slen - svc->schemas[i].offset;
        path_pop(b, o2);
    }
    gapi__free(m);
    if (rc)
        return rc;
    path_pop(b, old);
    svc->schema_count = (uint32_t)n;
    /* Give back the doubling slack; keep a NUL after the last schema. */
    if (stext_reserve(b, 1))
        return nomem(b);
    if ((shrunk = gapi__realloc(b->stext, b->slen + 1)) != NULL) {
        b->stext = shrunk;
        b->scap = b->slen + 1;
    }
    b->stext[b->slen] = '\0';
    svc->schema_text = b->stext;
    svc->schema_text_len = b->slen;
    b->stext = NULL;
    return 0;
}

/* ---------------------------------------------------------------- indexes */

const char *gapi__method_name_key(const void *items, uint32_t i)
{
    return ((const gapi_method *)items)[i].name;
}

const char *gapi__method_id_key(const void *items, uint32_t i)
{
    return ((const gapi_method *)items)[i].id;
}

const char *gapi__schema_key(const void *items, uint32_t i)
{
    return ((const gapi__schema *)items)[i].name;
}

long gapi__name_index_find(const gapi__name_index *ix, const char *name,
                           const char *(*key)(const void *items, uint32_t i), const void *items)
{
    uint32_t h, i;

    if (!ix->slots || !name)
        return -1;
    h = gapi__discovery_hash(name, strlen(name));
    for (i = h & ix->mask; ix->slots[2 * i + 1]; i = (i + 1) & ix->mask)
        if (ix->slots[2 * i] == h && strcmp(key(items, ix->slots[2 * i + 1] - 1), name) == 0)
            return (long)ix->slots[2 * i + 1] - 1;
    return -1;
}

/* Index n items; *dup is set to the first item whose key repeats an
 * earlier one's (and the index is left partial), else -1. */
static int index_build(build *b, gapi__name_index *ix, uint32_t n,
                       const char *(*key)(const void *items, uint32_t i), const void *items,
                       long *dup, long *first)
{
    uint32_t cap = 8, i, j;

    *dup = -1;
    while (cap < 2 * (uint64_t)n)
        cap *= 2;
    if (!(ix->slots = arena_alloc(b, 2 * (size_t)cap * sizeof(uint32_t))))
        return nomem(b);
    memset(ix->slots, 0, 2 * (size_t)cap * sizeof(uint32_t));
    ix->mask = cap - 1;
    for (i = 0; i < n; i++) {
        const char *k = key(items, i);
        uint32_t h = gapi__discovery_hash(k, strlen(k));
        for (j = h & ix->mask; ix->slots[2 * j + 1]; j = (j + 1) & ix->mask) {
            if (ix->slots[2 * j] == h && strcmp(key(items, ix->slots[2 * j + 1] - 1), k) == 0) {
                *dup = (long)i;
                *first = (long)ix->slots[2 * j + 1] - 1;
                return 0;
            }
        }
        ix->slots[2 * j] = h;
        ix->slots[2 * j + 1] = i + 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- URLs */

/* url with "googleapis.com" at the end of its host replaced by the
 * universe domain (Python's client replaces it anywhere in the string; the
 * host is the only place it names the universe). */
static int apply_universe(build *b, const char *url, const char **out)
{
    static const char def[] = DEFAULT_UNIVERSE;
    const size_t dlen = sizeof(def) - 1;
    const char *h = strstr(url, "://"), *e;
    size_t hlen, ulen;
    char *s;

    *out = url;
    if (strcmp(b->universe, DEFAULT_UNIVERSE) == 0 || !h)
        return 0;
    h += 3;
    e = h + strcspn(h, "/:?#");
    hlen = (size_t)(e - h);
    if (hlen < dlen || strncasecmp(e - dlen, def, dlen) != 0 ||
        (hlen > dlen && e[-(long)dlen - 1] != '.'))
        return 0;
    ulen = strlen(b->universe);
    if (!(s = arena_alloc(b, strlen(url) - dlen + ulen + 1)))
        return nomem(b);
    memcpy(s, url, (size_t)(e - dlen - url));
    memcpy(s + (e - dlen - url), b->universe, ulen);
    strcpy(s + (e - dlen - url) + ulen, e);
    *out = s;
    return 0;
}

/* With a '/' added when missing. */
/* A copy of url in the arena, ending in exactly one '/'. Always a copy:
 * url may be the caller's option string, which need not outlive the call. */
static int with_slash(build *b, const char *url, const char **out)
{
    size_t n = strlen(url);
    int has = n && url[n - 1] == '/';
    char *s;

    if (!(s = arena_alloc(b, n + 2)))
        return nomem(b);
    memcpy(s, url, n);
    if (!has)
        s[n++] = '/';
    s[n] = '\0';
    *out = s;
    return 0;
}

/* root + rel with exactly one '/' between them (Python's _urljoin); an
 * absolute rel is used as is. */
static int join_url(build *b, const char *root, const char *rel, const char **out)
{
    size_t rl = strlen(root), nl;
    char *s;

    if (strncasecmp(rel, "http://", 7) == 0 || strncasecmp(rel, "https://", 8) == 0) {
        *out = rel;
        return 0;
    }
    if (rl && root[rl - 1] == '/')
        rl--;
    if (*rel == '/')
        rel++;
    nl = strlen(rel);
    if (!(s = arena_alloc(b, rl + 1 + nl + 1)))
        return nomem(b);
    memcpy(s, root, rl);
    s[rl] = '/';
    memcpy(s + rl + 1, rel, nl + 1);
    *out = s;
    return 0;
}

/* ---------------------------------------------------------------- options */

static int valid_domain(const char *d)
{
    const char *p;

    if (!*d || *d == '.' || *d == '-')
        return 0;
    for (p = d; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-'))
            return 0;
    return 1;
}

int gapi__service_options(const gapi_service_options *opts, const char **endpoint,
                          const char **universe, char *errbuf, size_t errbuf_size)
{
    const char *u = NULL, *p;

    *endpoint = NULL;
    if (opts) {
        if (opts->version == 0 || opts->version > GAPI_SERVICE_OPTIONS_VERSION) {
            gapi__errbuf_printf(errbuf, errbuf_size,
                                "options.version is not GAPI_SERVICE_OPTIONS_VERSION (use "
                                "GAPI_SERVICE_OPTIONS_INIT)");
            return GAPI_EINVAL;
        }
        u = opts->universe_domain;
        if (opts->endpoint) {
            p = opts->endpoint;
            if ((strncasecmp(p, "https://", 8) != 0 || !p[8]) &&
                (strncasecmp(p, "http://", 7) != 0 || !p[7])) {
                gapi__errbuf_printf(errbuf, errbuf_size,
                                    "options.endpoint is not an http:// or https:// URL");
                return GAPI_EINVAL;
            }
            for (; *p; p++)
                if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
                    gapi__errbuf_printf(errbuf, errbuf_size,
                                        "options.endpoint contains a space or control character");
                    return GAPI_EINVAL;
                }
            *endpoint = opts->endpoint;
        }
    }
    if (!u) {
        u = getenv("GOOGLE_CLOUD_UNIVERSE_DOMAIN");
        if (u && !valid_domain(u)) {
            if (errbuf && errbuf_size)
                snprintf(errbuf, errbuf_size,
                         "GOOGLE_CLOUD_UNIVERSE_DOMAIN \"%.100s\" is not a domain name", u);
            return GAPI_EINVAL;
        }
    } else if (!valid_domain(u)) {
        if (errbuf && errbuf_size)
            snprintf(errbuf, errbuf_size, "options.universe_domain \"%.100s\" is not a domain name",
                     u);
        return GAPI_EINVAL;
    }
    *universe = u ? u : DEFAULT_UNIVERSE;
    return 0;
}

/* ---------------------------------------------------------------- the document */

/* Global parameters and top-level fields from the skeleton (the top-level
 * members other than "resources" and "schemas", parsed). */
static int load_fields(build *b, struct json_object *root)
{
    gapi_service *svc = b->svc;
    struct json_object *params;
    int rc;

    if ((rc = get_str(b, root, "name", 1, &svc->name)) != 0 ||
        (rc = get_str(b, root, "version", 0, &svc->version)) != 0 ||
        (rc = get_str(b, root, "title", 0, &svc->title)) != 0 ||
        (rc = get_str(b, root, "rootUrl", 1, &svc->root_url)) != 0 ||
        (rc = get_str(b, root, "servicePath", 0, &svc->service_path)) != 0 ||
        (rc = get_str(b, root, "batchPath", 0, &svc->batch_path)) != 0 ||
        (rc = get_str(b, root, "mtlsRootUrl", 0, &svc->mtls_root_url)) != 0)
        return rc;
    if (!*svc->name)
        return fail(b, "\"name\" is empty");
    if (!*svc->root_url)
        return fail(b, "\"rootUrl\" is empty");
    if (!svc->service_path)
        svc->service_path = "";
    if ((rc = intern_c(b, b->universe, "the universe domain", &svc->universe_domain)) != 0)
        return rc;
    if (b->endpoint) {
        if ((rc = with_slash(b, b->endpoint, &svc->root_url)) != 0)
            return rc;
        svc->mtls_root_url = svc->root_url;
    } else {
        if ((rc = apply_universe(b, svc->root_url, &svc->root_url)) != 0 ||
            (svc->mtls_root_url &&
             (rc = apply_universe(b, svc->mtls_root_url, &svc->mtls_root_url)) != 0))
            return rc;
    }
    if (svc->batch_path && (rc = join_url(b, svc->root_url, svc->batch_path, &svc->batch_url)))
        return rc;

    if ((rc = get_typed(b, root, "parameters", json_type_object, &params)) != 0)
        return rc;
    if (params && json_object_object_length(params) > 0) {
        size_t n = (size_t)json_object_object_length(params), i = 0, old;
        struct lh_entry *e;
        if (!(svc->params = arena_alloc(b, n * sizeof(*svc->params))))
            return nomem(b);
        memset(svc->params, 0, n * sizeof(*svc->params));
        old = path_push(b, "parameters");
        for (e = json_object_get_object(params)->head; e; e = e->next, i++) {
            size_t o2 = path_push(b, (const char *)lh_entry_k(e));
            if ((rc = parse_param(b, (const char *)lh_entry_k(e),
                                  (struct json_object *)lh_entry_v(e), &svc->params[i])) != 0)
                return rc;
            path_pop(b, o2);
        }
        path_pop(b, old);
        svc->param_count = (uint32_t)n;
    }
    return 0;
}

/* Arrays grown while loading, cut to their final size. */
static void shrink_arrays(gapi_service *svc)
{
    void *p;

    if (svc->methods && (p = gapi__realloc(svc->methods, svc->method_count * sizeof(gapi_method))))
        svc->methods = p;
    if (svc->resources &&
        (p = gapi__realloc(svc->resources, svc->resource_count * sizeof(gapi__resource))))
        svc->resources = p;
}

static int build_indexes(build *b)
{
    gapi_service *svc = b->svc;
    long dup, first;
    int rc;

    if ((rc = index_build(b, &svc->by_name, svc->method_count, gapi__method_name_key, svc->methods,
                          &dup, &first)) != 0)
        return rc;
    if (dup >= 0)
        return fail(b, "two methods have the dotted path \"%s\" (ids \"%s\" and \"%s\")",
                    svc->methods[dup].name, svc->methods[first].id, svc->methods[dup].id);
    if ((rc = index_build(b, &svc->by_id, svc->method_count, gapi__method_id_key, svc->methods,
                          &dup, &first)) != 0)
        return rc;
    if (dup >= 0)
        return fail(b, "methods \"%s\" and \"%s\" have the same id \"%s\"",
                    svc->methods[first].name, svc->methods[dup].name, svc->methods[dup].id);
    /* Schema names are keys of one object, made unique by collect_members. */
    return index_build(b, &svc->schema_index, svc->schema_count, gapi__schema_key, svc->schemas,
                       &dup, &first);
}

static int load_document(build *b)
{
    struct json_object *root = NULL, *ms;
    member_span *top = NULL;
    size_t ntop = 0, i, rstart = 0, rend = 0, sstart = 0, send = 0;
    int rc;

    /* Top level: scalars and small members into a skeleton object;
     * "resources" and "schemas" (nearly all of the bytes) piece by piece. */
    if ((rc = expect_object(b, skip_ws(b, 0, b->doc_len), b->doc_len, 0, "the document")) != 0 ||
        (rc = collect_members(b, 0, b->doc_len, 1, &top, &ntop)) != 0)
        goto out;
    if (!(root = json_object_new_object())) {
        rc = nomem(b);
        goto out;
    }
    for (i = 0; i < ntop; i++) {
        struct json_object *v;
        /* null reads as absent here too, as for every other member. */
        int null = top[i].end - top[i].start == 4 && memcmp(b->doc + top[i].start, "null", 4) == 0;
        if (strcmp(top[i].key, "resources") == 0) {
            rstart = null ? 0 : top[i].start;
            rend = null ? 0 : top[i].end;
            continue;
        }
        if (strcmp(top[i].key, "schemas") == 0) {
            sstart = null ? 0 : top[i].start;
            send = null ? 0 : top[i].end;
            continue;
        }
        if ((rc = parse_piece(b, top[i].start, top[i].end, 1, &v)) != 0)
            goto out;
        if (json_object_object_add(root, top[i].key, v) != 0) {
            json_object_put(v);
            rc = nomem(b);
            goto out;
        }
    }
    if ((sstart < send && (rc = load_schemas(b, sstart, send)) != 0) ||
        (rc = load_fields(b, root)) != 0 ||
        (rc = get_typed(b, root, "methods", json_type_object, &ms)) != 0 ||
        (ms && (rc = fill_methods(b, ms, NULL, UINT32_MAX)) != 0) ||
        (rstart < rend && (rc = load_resources(b, rstart, rend)) != 0))
        goto out;
    shrink_arrays(b->svc);
    rc = build_indexes(b);
out:
    json_object_put(root);
    gapi__free(top);
    return rc;
}

void gapi__service_destroy(gapi_service *svc)
{
    struct gapi__arena_chunk *c, *next;

    if (!svc)
        return;
    for (c = svc->arena; c; c = next) {
        next = c->next;
        gapi__free(c);
    }
    gapi__free(svc->methods);
    gapi__free(svc->resources);
    gapi__free(svc->schema_text);
    gapi__free(svc);
}

int gapi__service_load(gapi_service **out, const char *doc, size_t len,
                       const gapi_service_options *opts, char *errbuf, size_t errbuf_size)
{
    build b;
    int rc;

    memset(&b, 0, sizeof(b));
    b.errbuf = errbuf;
    b.errbuf_size = errbuf_size;
    b.next_chunk = ARENA_FIRST_CHUNK;
    b.doc = doc;
    b.doc_len = len;
    if (!out || (!doc && len)) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out and doc are required");
        return GAPI_EINVAL;
    }
    if (!doc)
        b.doc = "";
    if ((rc = gapi__service_options(opts, &b.endpoint, &b.universe, errbuf, errbuf_size)) != 0)
        return rc;
    if (!(b.svc = gapi__calloc(1, sizeof(*b.svc))))
        return nomem(&b);
    b.svc->refs = 1;
    rc = load_document(&b);
    gapi__free(b.itab);
    gapi__free(b.stext);
    if (rc) {
        gapi__service_destroy(b.svc);
        return rc;
    }
    *out = b.svc;
    return 0;
}
