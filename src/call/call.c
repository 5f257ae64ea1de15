/*
 * API calls: a gapi_request built from a discovery method and parameters,
 * like Python's service.objects().list(bucket=...). See gapi.h for the
 * rules; in short:
 *  - parameters are gathered from one of three forms into (param, value
 *    text) pairs, resolved against the method, its document's global
 *    parameters and the standard parameters, then validated (unknown,
 *    repeated, type, enum, pattern, required) and normalized;
 *  - the URL is root_url + service_path + the expanded "path" template,
 *    then the query: parameterOrder entries first (in that order), then the
 *    rest by name (strcmp), the values of a repeated parameter in the
 *    caller's order;
 *  - the request keeps what a next page needs (a service reference, the
 *    method, the validated parameters) as its ext state (request.h), which
 *    also receives the completion to turn HTTP >= 400 into GAPI_EHTTP with
 *    Google's error parsed.
 * Building touches only the immutable service and the new request, so any
 * thread may build calls.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/error.h"
#include "common/alloc.h"
#include "client/client.h"
#include "discovery/discovery.h"
#include "json/parse.h"
#include "request/request.h"
#include "uritemplate/uritemplate.h"
#include "call/call.h"

#define STR_(x) #x
#define STR(x)  STR_(x)
#if defined(__clang__)
#define GAPI__CC_VERSION STR(__clang_major__) "." STR(__clang_minor__) "." STR(__clang_patchlevel__)
#elif defined(__GNUC__)
#define GAPI__CC_VERSION STR(__GNUC__) "." STR(__GNUC_MINOR__) "." STR(__GNUC_PATCHLEVEL__)
#else
#define GAPI__CC_VERSION "unknown"
#endif

/* Google's clients name the language runtime (gl-python/3.11.4) and the
 * library (gdcl/2.x for the Python discovery client). C has no runtime
 * version; the compiler's is the nearest thing. */
static const char api_client_header[] = "gl-c/" GAPI__CC_VERSION " gdcl/" GAPI_VERSION_STRING;

typedef struct call_arg {
    const gapi_param *p;
    size_t off;    /* of the value in the text buffer */
    uint32_t seq;  /* input order, to keep repeated values in the caller's order */
    uint32_t rank; /* position in parameterOrder, or UINT32_MAX */
} call_arg;

/* What a call-built request keeps (its ext state). */
typedef struct gapi__call {
    gapi_service *svc; /* one reference */
    const gapi_method *m;
    call_arg *args; /* validated, in URL order */
    size_t nargs;
    gapi__buf text; /* the values, each NUL-terminated */
    gapi_google_error *gerr;
} gapi__call;

typedef struct builder {
    const gapi_service *svc;
    const gapi_method *m;
    call_arg *args;
    size_t nargs, cap;
    gapi__buf text;
    char *errbuf;
    size_t errbuf_size;
} builder;

static int fail(builder *b, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(builder *b, int rc, const char *fmt, ...)
{
    va_list ap;

    if (b->errbuf && b->errbuf_size) {
        va_start(ap, fmt);
        vsnprintf(b->errbuf, b->errbuf_size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int oom(builder *b)
{
    return fail(b, GAPI_ENOMEM, "out of memory");
}

static void builder_free(builder *b)
{
    gapi__free(b->args);
    gapi__buf_free(&b->text);
    b->args = NULL;
    b->nargs = b->cap = 0;
}

static const char *what(const builder *b)
{
    return b->m->id;
}

static const gapi_param *resolve(const gapi_method *m, const char *name)
{
    const gapi_param *p = gapi__method_param(m, name);
    return p ? p : gapi__standard_param(name);
}

static int add_value(builder *b, const gapi_param *p, const char *v, size_t len)
{
    call_arg *a;

    if (b->nargs == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        call_arg *n = gapi__realloc(b->args, cap * sizeof(*n));
        if (!n)
            return oom(b);
        b->args = n;
        b->cap = cap;
    }
    a = &b->args[b->nargs];
    a->p = p;
    a->off = b->text.len;
    a->seq = (uint32_t)b->nargs;
    a->rank = UINT32_MAX;
    if (gapi__buf_reserve(&b->text, len + 1) != GAPI_OK)
        return oom(b);
    gapi__buf_append(&b->text, v, len);
    gapi__buf_append(&b->text, "", 1);
    b->nargs++;
    return GAPI_OK;
}

static const gapi_param *lookup_param(builder *b, const char *name, int *rc)
{
    const gapi_param *p = resolve(b->m, name);

    *rc = GAPI_OK;
    if (!p) {
        char q[80];
        gapi__quote_value(q, sizeof(q), name);
        *rc = fail(b, GAPI_EINVAL, "%s: unknown parameter \"%s\"", what(b), q);
    }
    return p;
}

static int add_string(builder *b, const char *name, const char *value, const char *where)
{
    const gapi_param *p;
    int rc;

    if (!name)
        return fail(b, GAPI_EINVAL, "%s: %s has a NULL name", what(b), where);
    if (!(p = lookup_param(b, name, &rc)))
        return rc;
    if (!value)
        return GAPI_OK; /* not given, like None in Python */
    return add_value(b, p, value, strlen(value));
}

/* Shortest text that reads back as d, in the "C" form whatever the
 * locale. */
static void format_double(char *out, size_t size, double d)
{
    int prec;
    char *p;

    for (prec = 1; prec <= 17; prec++) {
        snprintf(out, size, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    /* A locale's decimal separator: anything that is not a digit, sign or
     * exponent is it. */
    for (p = out; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == 'e'))
            *p = '.';
}

static int integer_like(const gapi_param *p)
{
    return p->kind == GAPI__PARAM_INTEGER ||
           (p->kind == GAPI__PARAM_STRING && p->format &&
            (!strcmp(p->format, "int64") || !strcmp(p->format, "uint64")));
}

static int add_json_scalar(builder *b, const gapi_param *p, struct json_object *v, size_t item)
{
    char num[40], where[48];
    const char *s;
    size_t len;

    if (item)
        snprintf(where, sizeof(where), " item %zu", item - 1);
    else
        where[0] = '\0';
    switch (json_object_get_type(v)) {
    case json_type_null:
        /* Not given (Python drops None); inside an array it is a mistake. */
        if (item)
            return fail(b, GAPI_EINVAL, "%s: parameter \"%s\"%s is null", what(b), p->name, where);
        return GAPI_OK;
    case json_type_boolean:
        s = json_object_get_boolean(v) ? "true" : "false";
        return add_value(b, p, s, strlen(s));
    case json_type_int: {
        int64_t i = json_object_get_int64(v);
#if defined(JSON_C_VERSION_NUM) && JSON_C_VERSION_NUM >= ((0 << 16) | (14 << 8))
        if (i == INT64_MAX)
            snprintf(num, sizeof(num), "%llu", (unsigned long long)json_object_get_uint64(v));
        else
#endif
            snprintf(num, sizeof(num), "%lld", (long long)i);
        return add_value(b, p, num, strlen(num));
    }
    case json_type_double: {
        double d = json_object_get_double(v);
        if (d != d || d - d != 0) /* NaN or infinite: no libm needed */
            return fail(b, GAPI_EINVAL, "%s: parameter \"%s\"%s is not a finite number", what(b),
                        p->name, where);
        if (integer_like(p)) {
            /* 10.0 is the integer 10; 10.5 is no integer at all. */
            if (!(d > -9223372036854775808.0 && d < 9223372036854775808.0) ||
                (double)(long long)d != d)
                return fail(b, GAPI_EINVAL, "%s: parameter \"%s\"%s value %.17g is not an integer",
                            what(b), p->name, where, d);
            snprintf(num, sizeof(num), "%lld", (long long)d);
        } else {
            format_double(num, sizeof(num), d);
        }
        return add_value(b, p, num, strlen(num));
    }
    case json_type_string:
        s = json_object_get_string(v);
        len = (size_t)json_object_get_string_len(v);
        if (memchr(s, '\0', len))
            return fail(b, GAPI_EINVAL, "%s: parameter \"%s\"%s contains a NUL character", what(b),
                        p->name, where);
        return add_value(b, p, s, len);
    case json_type_array:
        return fail(b, GAPI_EINVAL, "%s: parameter \"%s\"%s is an array inside an array", what(b),
                    p->name, where);
    case json_type_object:
    default:
        return fail(b, GAPI_EINVAL,
                    "%s: parameter \"%s\"%s is a JSON object (only strings, numbers, booleans "
                    "and arrays of them are parameter values)",
                    what(b), p->name, where);
    }
}

static int add_json(builder *b, const char *name, struct json_object *v)
{
    const gapi_param *p;
    size_t i, n;
    int rc;

    if (!(p = lookup_param(b, name, &rc)))
        return rc;
    if (!json_object_is_type(v, json_type_array))
        return add_json_scalar(b, p, v, 0);
    n = json_object_array_length(v);
    if (!p->repeated && n)
        return fail(b, GAPI_EINVAL, "%s: parameter \"%s\" is not repeated but was given an array",
                    what(b), p->name);
    for (i = 0; i < n; i++)
        if ((rc = add_json_scalar(b, p, json_object_array_get_idx(v, i), i + 1)) != GAPI_OK)
            return rc;
    return GAPI_OK;
}

/* ---------------------------------------------------------------- validation */

static int arg_cmp(const void *x, const void *y)
{
    const call_arg *a = x, *b = y;
    int c;

    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    if (a->p != b->p && (c = strcmp(a->p->name, b->p->name)) != 0)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static const call_arg *find_arg(const call_arg *args, size_t n, const gapi_param *p)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (args[i].p == p)
            return &args[i];
    return NULL;
}

static const call_arg *find_arg_named(const call_arg *args, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(args[i].p->name, name) == 0)
            return &args[i];
    return NULL;
}

/* Python's client does not insist on a required "pageToken" when the
 * method's response has no nextPageToken (drive.changes.watch declares it
 * required by mistake; drive.changes.list really needs it). Returns 1
 * when p may be left out, 0 when not, or GAPI_ENOMEM. */
static int page_token_optional(const gapi_method *m, const gapi_param *p)
{
    struct json_object *schema = NULL, *props, *v;
    int has, rc;

    if (strcmp(p->name, "pageToken") != 0 && strcmp(p->name, "nextPageToken") != 0)
        return 0;
    if (!m->response_ref)
        return 1;
    rc = gapi_service_schema(m->svc, m->response_ref, &schema);
    if (rc != GAPI_OK)
        return rc == GAPI_ENOMEM ? GAPI_ENOMEM : 1; /* no such schema: no token in it */
    has = json_object_object_get_ex(schema, "properties", &props) &&
          (json_object_object_get_ex(props, "nextPageToken", &v) ||
           json_object_object_get_ex(props, "pageToken", &v));
    json_object_put(schema);
    return !has;
}

static int check_required(builder *b, const gapi_param *ps, size_t n)
{
    size_t i;
    int opt;

    for (i = 0; i < n; i++) {
        const gapi_param *p = &ps[i];
        if (!(p->required || p->location == GAPI_PARAM_PATH) || find_arg(b->args, b->nargs, p))
            continue;
        if ((opt = page_token_optional(b->m, p)) == GAPI_ENOMEM)
            return oom(b);
        if (!opt)
            return fail(b, GAPI_EINVAL, "%s: missing required parameter \"%s\"", what(b), p->name);
    }
    return GAPI_OK;
}

static int validate(builder *b)
{
    const gapi_method *m = b->m;
    const call_arg *alt;
    char q[80];
    size_t i, j;
    int rc;

    /* alt=json on JSON calls, as Python's JsonModel adds it; none for
     * methods without a response (Python's RawModel). The caller's own alt
     * wins, and alt=media is how a download is asked for. */
    alt = find_arg_named(b->args, b->nargs, "alt");
    if (alt && strcmp(b->text.data + alt->off, "media") == 0 &&
        !(m->flags & GAPI_METHOD_MEDIA_DOWNLOAD))
        return fail(b, GAPI_EINVAL,
                    "%s: alt=media asks for a media download, which this method "
                    "does not support (no supportsMediaDownload)",
                    what(b));
    if (!alt && m->response_ref) {
        const gapi_param *p = resolve(m, "alt");
        if ((rc = add_value(b, p, "json", 4)) != GAPI_OK)
            return rc;
    }
    for (i = 0; i < b->nargs; i++) {
        const gapi_param *p = b->args[i].p;
        if (p >= m->params && p < m->params + m->param_count &&
            (uint32_t)(p - m->params) < m->order_count)
            b->args[i].rank = (uint32_t)(p - m->params);
    }
    qsort(b->args, b->nargs, sizeof(*b->args), arg_cmp);
    for (i = 0; i < b->nargs; i = j) {
        for (j = i + 1; j < b->nargs && b->args[j].p == b->args[i].p;)
            j++;
        if (j - i > 1 && !b->args[i].p->repeated)
            return fail(b, GAPI_EINVAL,
                        "%s: parameter \"%s\" is not repeated but was given %zu "
                        "values",
                        what(b), b->args[i].p->name, j - i);
    }
    for (i = 0; i < b->nargs; i++) {
        const gapi_param *p = b->args[i].p;
        char *v = b->text.data + b->args[i].off;

        if (p->location == GAPI_PARAM_PATH && !*v)
            return fail(b, GAPI_EINVAL, "%s: path parameter \"%s\" is empty", what(b), p->name);
        if ((rc = gapi__param_check(what(b), p, v, b->errbuf, b->errbuf_size)) != GAPI_OK)
            return rc;
        if (p->pattern) {
            rc = gapi__pattern_match(p->pattern, v, NULL, 0);
            if (rc == GAPI_ENOMEM)
                return oom(b);
            /* rc < 0 otherwise: a pattern we cannot read is not checked
             * (the server still is); every shared document's compiles. */
            if (rc == 0) {
                gapi__quote_value(q, sizeof(q), v);
                return fail(b, GAPI_EINVAL,
                            "%s: parameter \"%s\" value \"%s\" does not match the pattern \"%s\"",
                            what(b), p->name, q, p->pattern);
            }
        }
    }
    if ((rc = check_required(b, m->params, m->param_count)) != GAPI_OK)
        return rc;
    return check_required(b, m->svc->params, m->svc->param_count);
}

/* ---------------------------------------------------------------- URL */

typedef struct expand_ctx {
    const gapi__call *call;
    gapi__ut_str *items;
    size_t cap;
} expand_ctx;

static int expand_lookup(const char *name, size_t name_len, gapi__ut_value *out, void *ud)
{
    expand_ctx *x = ud;
    const gapi__call *call = x->call;
    size_t i, n = 0;

    for (i = 0; i < call->nargs; i++) {
        const gapi_param *p = call->args[i].p;
        if (p->location != GAPI_PARAM_PATH || strncmp(p->name, name, name_len) != 0 ||
            p->name[name_len])
            continue;
        if (n == x->cap) {
            size_t cap = x->cap ? x->cap * 2 : 4;
            gapi__ut_str *it = gapi__realloc(x->items, cap * sizeof(*it));
            if (!it)
                return GAPI_ENOMEM;
            x->items = it;
            x->cap = cap;
        }
        x->items[n].s = call->text.data + call->args[i].off;
        x->items[n].len = strlen(x->items[n].s);
        n++;
    }
    if (n == 1) {
        out->type = GAPI__UT_STRING;
        out->str = x->items[0];
    } else if (n > 1) {
        out->type = GAPI__UT_LIST;
        out->items = x->items;
        out->n = n;
    }
    return GAPI_OK;
}

/* "." or ".." written with dots or %2E. */
static int is_dot_segment(const char *s, size_t len)
{
    size_t i = 0, dots = 0;

    while (i < len) {
        if (s[i] == '.')
            i++;
        else if (len - i >= 3 && s[i] == '%' && s[i + 1] == '2' &&
                 (s[i + 2] == 'e' || s[i + 2] == 'E'))
            i += 3;
        else
            return 0;
        dots++;
    }
    return dots == 1 || dots == 2;
}

/* The path parameter whose value puts a dot segment into the path. */
static const char *dot_culprit(const gapi__call *call)
{
    size_t i;

    for (i = 0; i < call->nargs; i++) {
        const char *v = call->text.data + call->args[i].off, *s = v;
        if (call->args[i].p->location != GAPI_PARAM_PATH)
            continue;
        for (;;) {
            const char *e = strchr(s, '/');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            if (is_dot_segment(s, len))
                return call->args[i].p->name;
            if (!e)
                break;
            s = e + 1;
        }
    }
    return NULL;
}

static int build_url(gapi__buf *url, const gapi__call *call, char *errbuf, size_t n)
{
    const gapi_service *svc = call->svc;
    const gapi_method *m = call->m;
    gapi__buf path = GAPI__BUF_INIT;
    expand_ctx x = {call, NULL, 0};
    gapi__ut_error uerr;
    const char *p, *seg;
    size_t i;
    int rc;

    rc = gapi__uritemplate_expand(&path, m->path, strlen(m->path), &uerr, expand_lookup, &x);
    gapi__free(x.items);
    if (rc != GAPI_OK) {
        if (rc == GAPI_ENOMEM)
            gapi__errbuf_printf(errbuf, n, "out of memory");
        else
            gapi__errbuf_printf(errbuf, n, "%s: path template \"%s\": %s", m->id, m->path,
                                uerr.message);
        gapi__buf_free(&path);
        return rc;
    }
    /* A "." or ".." segment would be collapsed by URL normalization in
     * some proxy or server and reach another resource ("o/.." is the
     * bucket): refuse it. */
    for (seg = path.data;; seg = p + 1) {
        p = seg + strcspn(seg, "/?#");
        if (is_dot_segment(seg, (size_t)(p - seg))) {
            const char *who = dot_culprit(call);
            gapi__errbuf_printf(
                errbuf, n,
                "%s: path parameter \"%s\" makes a \".\" or \"..\" segment in the path \"%s\"",
                m->id, who ? who : "?", path.data);
            gapi__buf_free(&path);
            return GAPI_EINVAL;
        }
        if (*p != '/')
            break;
    }
    /* Python's _urljoin: exactly one '/' between base and path. */
    rc = gapi__buf_puts(url, svc->root_url);
    rc |= gapi__buf_puts(url, svc->service_path);
    p = path.data;
    if (url->len && url->data[url->len - 1] == '/') {
        if (*p == '/')
            p++;
    } else if (*p != '/') {
        rc |= gapi__buf_puts(url, "/");
    }
    rc |= gapi__buf_puts(url, p);
    gapi__buf_free(&path);
    for (i = 0; rc == GAPI_OK && i < call->nargs; i++) {
        const gapi_param *q = call->args[i].p;
        const char *v = call->text.data + call->args[i].off;
        if (q->location == GAPI_PARAM_QUERY)
            rc = gapi__query_add(url, q->name, v, strlen(v));
    }
    if (rc != GAPI_OK) {
        gapi__errbuf_printf(errbuf, n, "out of memory");
        return GAPI_ENOMEM;
    }
    return GAPI_OK;
}

/* ---------------------------------------------------------------- the request */

static void call_free(void *ext)
{
    gapi__call *call = ext;

    gapi_service_unref(call->svc);
    gapi__free(call->args);
    gapi__buf_free(&call->text);
    gapi_google_error_free(call->gerr);
    gapi__free(call);
}

static int call_done(gapi_request *r, int err, void *ext)
{
    gapi__call *call = ext;
    const gapi_response *resp = &r->x.resp;
    int rc;

    /* A JSON error body that does not parse is still, first, an HTTP
     * error. Other failures (truncation, timeouts) keep their code. */
    if ((err != GAPI_OK && err != GAPI_EJSON) || resp->status < 400)
        return err;
    gapi_google_error_free(call->gerr);
    call->gerr = NULL;
    rc = gapi_google_error_parse(&call->gerr, resp->status, resp->body.data, resp->body.len);
    if (rc == GAPI_OK)
        gapi__google_error_format(call->gerr, r->x.errmsg, sizeof(r->x.errmsg));
    else
        snprintf(r->x.errmsg, sizeof(r->x.errmsg), "HTTP %d (error body not parsed: %s)",
                 resp->status, gapi_strerror(rc));
    return GAPI_EHTTP;
}

static const gapi__req_ext_ops call_ops = {call_free, call_done, NULL};

static gapi__call *call_of(const gapi_request *r)
{
    return r && r->ext_ops == &call_ops ? r->ext : NULL;
}

/* The user agent of the client with "(gzip)": Google's front ends compress
 * responses only for user agents that contain "gzip" (Python's JsonModel
 * appends the same). */
static int add_user_agent(gapi_request *r, const gapi_client *c)
{
    static const char prefix[] = "User-Agent: ";
    const char *ua = c->user_agent;
    gapi__buf v = GAPI__BUF_INIT;
    size_t len;
    int rc;

    if (strncmp(ua, prefix, sizeof(prefix) - 1) == 0)
        ua += sizeof(prefix) - 1;
    len = strcspn(ua, "\r\n");
    rc = gapi__buf_append(&v, ua, len);
    rc |= gapi__buf_puts(&v, len ? " (gzip)" : "(gzip)");
    if (rc == GAPI_OK)
        rc = gapi_request_add_header(r, "user-agent", v.data);
    gapi__buf_free(&v);
    return rc ? GAPI_ENOMEM : GAPI_OK;
}

static int default_headers(gapi_request *r, const gapi__call *call)
{
    const gapi_method *m = call->m;
    const call_arg *alt = find_arg_named(call->args, call->nargs, "alt");
    int json = alt && strcmp(call->text.data + alt->off, "json") == 0;
    int rc;

    if ((rc = add_user_agent(r, r->client)) != GAPI_OK)
        return rc;
    if ((rc = gapi_request_add_header(r, "x-goog-api-client", api_client_header)) != GAPI_OK)
        return rc;
    /* JSON calls accept JSON; media downloads and methods without a
     * response accept anything (Python's MediaModel and RawModel). */
    if ((rc = gapi_request_add_header(r, "accept", json ? "application/json" : "*/*")) != GAPI_OK)
        return rc;
    if (m->api_version &&
        (rc = gapi_request_add_header(r, "x-goog-api-version", m->api_version)) != GAPI_OK)
        return rc;
    return GAPI_OK;
}

/* Copies what the caller may have set on an earlier page's request. */
static int copy_settings(gapi_request *r, const gapi_request *like)
{
    if (like->user_headers.len &&
        gapi__buf_append(&r->user_headers, like->user_headers.data, like->user_headers.len))
        return GAPI_ENOMEM;
    r->nheaders = like->nheaders;
    r->hflags = like->hflags;
    r->connect_ms = like->connect_ms;
    r->stall_ms = like->stall_ms;
    r->deadline_ms = like->deadline_ms;
    r->idempotent = like->idempotent;
    r->retry = like->retry;
    r->has_retry = like->has_retry;
    r->creds = gapi_credentials_ref(like->creds);
    return GAPI_OK;
}

/* Turns a validated builder into a request. On success the call state
 * (and the builder's buffers) belong to *out. like: an earlier page's
 * request whose headers and settings are copied instead of the defaults. */
static int make_request(gapi_request **out, gapi_client *c, builder *b, const char *body,
                        size_t body_len, const char *content_type, const gapi_request *like)
{
    gapi__buf url = GAPI__BUF_INIT;
    gapi_request *r = NULL;
    gapi__call *call;
    int rc;

    if (!(call = gapi__calloc(1, sizeof(*call))))
        return oom(b);
    call->svc = (gapi_service *)b->m->svc; /* referenced once it is kept */
    call->m = b->m;
    call->args = b->args;
    call->nargs = b->nargs;
    call->text = b->text;
    if ((rc = build_url(&url, call, b->errbuf, b->errbuf_size)) != GAPI_OK)
        goto out;
    rc = gapi_request_new(&r, c, b->m->http_method, url.data);
    if (rc != GAPI_OK) {
        r = NULL;
        if (rc == GAPI_ENOMEM)
            oom(b);
        else
            fail(b, rc, "%s: the URL built was refused: %s", what(b), url.data);
        goto out;
    }
    if (!like) /* API calls carry the client's credentials */
        r->creds = gapi_credentials_ref(c->creds);
    rc = like ? copy_settings(r, like) : default_headers(r, call);
    if (rc == GAPI_OK && body)
        rc = gapi_request_set_body(r, body, body_len, content_type);
    if (rc != GAPI_OK) {
        oom(b); /* every input was checked: only memory can fail here */
        goto out;
    }
    /* From here nothing fails: hand the buffers over. */
    gapi_service_ref(call->svc);
    r->ext_ops = &call_ops;
    r->ext = call;
    b->args = NULL;
    b->nargs = b->cap = 0;
    memset(&b->text, 0, sizeof(b->text));
    call = NULL;
    *out = r;
    r = NULL;
out:
    gapi_request_free(r);
    gapi__free(call); /* its buffers are still the builder's */
    gapi__buf_free(&url);
    return rc;
}

static int begin(builder *b, gapi_request **out, gapi_client *c, const gapi_service *svc,
                 const char *method, char *errbuf, size_t errbuf_size)
{
    memset(b, 0, sizeof(*b));
    b->errbuf = errbuf;
    b->errbuf_size = errbuf_size;
    if (errbuf && errbuf_size)
        errbuf[0] = '\0';
    b->svc = svc;
    if (!out || !c || !svc || !method)
        return fail(b, GAPI_EINVAL, "gapi_call: %s is NULL",
                    !out   ? "out"
                    : !c   ? "the client"
                    : !svc ? "the service"
                           : "the method");
    b->m = gapi_service_method(svc, method);
    if (!b->m)
        b->m = gapi_service_method_by_id(svc, method);
    if (!b->m) {
        char q[80];
        gapi__quote_value(q, sizeof(q), method);
        return fail(b, GAPI_EINVAL, "%s %s has no method \"%s\" (neither a dotted path nor an id)",
                    svc->name, svc->version ? svc->version : "", q);
    }
    return GAPI_OK;
}

static int end(builder *b, gapi_request **out, gapi_client *c, struct json_object *body)
{
    const char *text = NULL;
    size_t len = 0;
    int rc;

    if (body && !b->m->request_ref) {
        rc = fail(b, GAPI_EINVAL, "%s: the method takes no request body", what(b));
        goto out;
    }
    if ((rc = validate(b)) != GAPI_OK)
        goto out;
    if (body) {
        /* Serialized now: the request keeps bytes, not the caller's
         * object, so the object is never touched from another thread. */
        text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
                                                        JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text) {
            rc = oom(b);
            goto out;
        }
        len = strlen(text);
    }
    rc = make_request(out, c, b, text, len, "application/json", NULL);
out:
    builder_free(b);
    return rc;
}

int gapi_call_new(gapi_request **out, gapi_client *c, const gapi_service *svc, const char *method,
                  const gapi_call_param *params, size_t n, struct json_object *body, char *errbuf,
                  size_t errbuf_size)
{
    builder b;
    char where[40];
    size_t i;
    int rc;

    if ((rc = begin(&b, out, c, svc, method, errbuf, errbuf_size)) != GAPI_OK)
        return rc;
    if (!params && n)
        return fail(&b, GAPI_EINVAL, "%s: params is NULL with n = %zu", what(&b), n);
    for (i = 0; i < n; i++) {
        snprintf(where, sizeof(where), "params[%zu]", i);
        if ((rc = add_string(&b, params[i].name, params[i].value, where)) != GAPI_OK) {
            builder_free(&b);
            return rc;
        }
    }
    return end(&b, out, c, body);
}

int gapi_call_newv(gapi_request **out, gapi_client *c, const gapi_service *svc, const char *method,
                   struct json_object *body, char *errbuf, size_t errbuf_size, ...)
{
    const char *name, *value;
    builder b;
    va_list ap;
    int rc;

    if ((rc = begin(&b, out, c, svc, method, errbuf, errbuf_size)) != GAPI_OK)
        return rc;
    va_start(ap, errbuf_size);
    while ((name = va_arg(ap, const char *)) != NULL) {
        value = va_arg(ap, const char *);
        if ((rc = add_string(&b, name, value, "an argument")) != GAPI_OK)
            break;
    }
    va_end(ap);
    if (rc != GAPI_OK) {
        builder_free(&b);
        return rc;
    }
    return end(&b, out, c, body);
}

int gapi_call_new_json(gapi_request **out, gapi_client *c, const gapi_service *svc,
                       const char *method, struct json_object *params, struct json_object *body,
                       char *errbuf, size_t errbuf_size)
{
    builder b;
    int rc;

    if ((rc = begin(&b, out, c, svc, method, errbuf, errbuf_size)) != GAPI_OK)
        return rc;
    if (params && !json_object_is_type(params, json_type_object))
        return fail(&b, GAPI_EINVAL, "%s: params is a JSON %s, not an object", what(&b),
                    json_type_to_name(json_object_get_type(params)));
    if (params) {
        json_object_object_foreach(params, key, val)
        {
            if ((rc = add_json(&b, key, val)) != GAPI_OK) {
                builder_free(&b);
                return rc;
            }
        }
    }
    return end(&b, out, c, body);
}

const gapi_method *gapi_call_method(const gapi_request *req)
{
    const gapi__call *call = call_of(req);
    return call ? call->m : NULL;
}

const gapi_google_error *gapi_request_google_error(const gapi_request *req)
{
    const gapi__call *call = call_of(req);
    return call ? call->gerr : NULL;
}

/* ---------------------------------------------------------------- pages */

/* Does the method's request schema have a pageToken field? */
static int body_has_page_token(const gapi_method *m)
{
    struct json_object *schema = NULL, *props, *v;
    int has;

    if (!m->request_ref || gapi_service_schema(m->svc, m->request_ref, &schema) != GAPI_OK)
        return 0;
    has = json_object_object_get_ex(schema, "properties", &props) &&
          json_object_object_get_ex(props, "pageToken", &v);
    json_object_put(schema);
    return has;
}

int gapi_call_next_page(gapi_request **out, const gapi_request *prev, const gapi_response *resp,
                        char *errbuf, size_t errbuf_size)
{
    const gapi__call *call = call_of(prev);
    struct json_object *j, *tok, *obj = NULL;
    const gapi_param *pt;
    const char *token, *body = NULL;
    size_t i, body_len = 0;
    builder b;
    int rc;

    memset(&b, 0, sizeof(b));
    b.errbuf = errbuf;
    b.errbuf_size = errbuf_size;
    if (errbuf && errbuf_size)
        errbuf[0] = '\0';
    if (!out || !prev)
        return fail(&b, GAPI_EINVAL, "gapi_call_next_page: %s is NULL", !out ? "out" : "prev");
    if (!call)
        return fail(&b, GAPI_EINVAL,
                    "gapi_call_next_page: the request was not made by gapi_call_*");
    b.svc = call->svc;
    b.m = call->m;
    j = gapi_response_json(resp);
    if (!json_object_object_get_ex(j, "nextPageToken", &tok) ||
        !json_object_is_type(tok, json_type_string) || json_object_get_string_len(tok) == 0) {
        *out = NULL; /* the last page */
        return GAPI_OK;
    }
    token = json_object_get_string(tok);
    if ((size_t)json_object_get_string_len(tok) != strlen(token))
        return fail(&b, GAPI_EINVAL, "%s: the response's nextPageToken contains a NUL character",
                    what(&b));
    pt = gapi__method_param(call->m, "pageToken");
    if (pt && pt->location == GAPI_PARAM_QUERY) {
        /* The same parameters with pageToken replaced (Python replaces it
         * in the URI). */
        for (i = 0; i < call->nargs; i++) {
            const char *v = call->text.data + call->args[i].off;
            if (call->args[i].p != pt && (rc = add_value(&b, call->args[i].p, v, strlen(v))))
                goto out;
        }
        if ((rc = add_value(&b, pt, token, strlen(token))) != GAPI_OK)
            goto out;
        body = prev->body;
        body_len = prev->body_len;
    } else if (body_has_page_token(call->m)) {
        /* The token travels in the request body (Python replaces the
         * body's pageToken field). */
        for (i = 0; i < call->nargs; i++) {
            const char *v = call->text.data + call->args[i].off;
            if ((rc = add_value(&b, call->args[i].p, v, strlen(v))) != GAPI_OK)
                goto out;
        }
        if (prev->body && prev->body_len) {
            rc = gapi__json_parse(prev->body, prev->body_len, 0, &obj, NULL);
            if (rc == GAPI_ENOMEM) {
                rc = oom(&b);
                goto out;
            }
            if (rc != GAPI_OK || !json_object_is_type(obj, json_type_object)) {
                rc = fail(&b, GAPI_EINVAL,
                          "%s: the request body is not a JSON object: cannot set its pageToken",
                          what(&b));
                goto out;
            }
        } else if (!(obj = json_object_new_object())) {
            rc = oom(&b);
            goto out;
        }
        if (json_object_object_add(obj, "pageToken", json_object_new_string(token)) != 0 ||
            !(body = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE))) {
            rc = oom(&b);
            goto out;
        }
        body_len = strlen(body);
    } else {
        rc = fail(&b, GAPI_EINVAL, "%s: the method has no pageToken parameter or request field",
                  what(&b));
        goto out;
    }
    if ((rc = validate(&b)) != GAPI_OK)
        goto out;
    rc = make_request(out, prev->client, &b, body, body_len,
                      prev->content_type ? prev->content_type : "application/json", prev);
out:
    json_object_put(obj);
    builder_free(&b);
    return rc;
}

typedef struct pager {
    gapi_page_cb page;
    gapi_response_cb done;
    void *arg;
} pager;

static void pager_finish(pager *pg, gapi_request *req, int err, const gapi_response *resp)
{
    gapi_response_cb done = pg->done;
    void *arg = pg->arg;

    gapi__free(pg);
    done(req, err, resp, arg);
}

static int same_request(const gapi_request *a, const gapi_request *b)
{
    return strcmp(a->url_str, b->url_str) == 0 && a->body_len == b->body_len &&
           (!a->body_len || memcmp(a->body, b->body, a->body_len) == 0);
}

static void pager_cb(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    pager *pg = arg;
    gapi_request *next = NULL;
    char msg[sizeof(req->x.errmsg)];
    int rc;

    if (err != GAPI_OK) {
        pager_finish(pg, req, err, resp);
        return;
    }
    if (pg->page(req, resp, pg->arg) != 0) {
        pager_finish(pg, req, GAPI_OK, resp); /* the caller asked to stop */
        return;
    }
    rc = gapi_call_next_page(&next, req, resp, msg, sizeof(msg));
    if (rc == GAPI_OK && next && same_request(next, req)) {
        /* A server that hands back the token it was given would page
         * forever. */
        snprintf(msg, sizeof(msg), "%s: nextPageToken repeats the request's own pageToken",
                 call_of(req)->m->id);
        gapi_request_free(next);
        rc = GAPI_EPROTO;
    }
    if (rc == GAPI_OK && next) {
        if ((rc = gapi_request_send(next, pager_cb, pg)) == GAPI_OK)
            return;
        snprintf(msg, sizeof(msg), "sending the next page: %s", gapi_strerror(rc));
        gapi_request_free(next);
    }
    if (rc != GAPI_OK)
        snprintf(req->x.errmsg, sizeof(req->x.errmsg), "%s", msg);
    pager_finish(pg, req, rc, resp);
}

int gapi_call_pages(gapi_request *first, gapi_page_cb page, gapi_response_cb done, void *arg)
{
    pager *pg;
    int rc;

    if (!first || !page || !done || !call_of(first))
        return GAPI_EINVAL;
    if (!(pg = gapi__malloc(sizeof(*pg))))
        return GAPI_ENOMEM;
    pg->page = page;
    pg->done = done;
    pg->arg = arg;
    if ((rc = gapi_request_submit(first, pager_cb, pg)) != GAPI_OK)
        gapi__free(pg);
    return rc;
}
