/*
 * Low-level request API and response accessors.
 *
 * Header injection is impossible by construction: names must be HTTP tokens
 * and values may not hold CR, LF, NUL or other control characters (HTAB
 * excepted); the URL parser refuses spaces and controls; the method must be
 * a token. Headers that decide message framing (Host, Content-Length,
 * Transfer-Encoding, Connection) belong to the library alone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "common/alloc.h"
#include "client/client.h"
#include "auth/auth.h"
#include "json/parse.h"
#include "request/request.h"
#include "request/retry.h"

/* Bodies up to this size are copied next to the headers so that the whole
 * request leaves in one write (one TLS record); larger ones are referenced. */
#define INLINE_BODY_MAX 16384

static int is_tchar(unsigned char ch)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr(extra, ch));
}

static int is_token(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

static const char *bad_value_char(const char *v)
{
    for (; *v; v++) {
        unsigned char ch = (unsigned char)*v;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return v;
    }
    return NULL;
}

static int default_idempotent(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PUT") || !strcmp(m, "DELETE") ||
           !strcmp(m, "OPTIONS");
}

static void set_err(gapi_request *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(gapi_request *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->x.errmsg, sizeof(r->x.errmsg), fmt, ap);
    va_end(ap);
}

int gapi_request_new(gapi_request **out, gapi_client *c, const char *method, const char *url)
{
    gapi_request *r;
    const char *why;
    int rc;

    size_t mlen, ulen;

    if (!out || !c || !is_token(method) || !url)
        return GAPI_EINVAL;
    mlen = strlen(method) + 1;
    ulen = strlen(url) + 1;
    /* The request and its two strings in one block. */
    r = gapi__calloc(1, sizeof(*r) + mlen + ulen);
    if (!r)
        return GAPI_ENOMEM;
    rc = gapi__url_parse(&r->url, url, &why);
    if (rc != GAPI_OK) {
        gapi__free(r);
        return rc;
    }
    r->method = (char *)(r + 1);
    memcpy(r->method, method, mlen);
    r->url_str = r->method + mlen;
    memcpy(r->url_str, url, ulen);
    r->client = c;
    r->idempotent = default_idempotent(method);
    r->reader_length = -1;
    *out = r;
    return GAPI_OK;
}

void gapi__request_destroy(gapi_request *r)
{
    if ((r->secret || r->creds) && r->head.data) /* a token, key or assertion */
        OPENSSL_cleanse(r->head.data, r->head.cap);
    if (r->key_target)
        OPENSSL_cleanse(r->key_target, strlen(r->key_target));
    if (r->secret) { /* a token request's form and the token in its answer */
        if (r->body)
            OPENSSL_cleanse(r->body, r->body_len);
        if (r->x.resp.body.data)
            OPENSSL_cleanse(r->x.resp.body.data, r->x.resp.body.cap);
    }
    if (r->ext_ops)
        r->ext_ops->destroy(r->ext);
    gapi__url_free(&r->url);
    gapi__buf_free(&r->user_headers);
    gapi__buf_free(&r->head);
    gapi__free(r->body);
    gapi__free(r->content_type);
    gapi__free(r->key_target);
    gapi_credentials_unref(r->creds);
    gapi__response_reset(&r->x.resp);
    gapi__free(r);
}

void gapi_request_free(gapi_request *r)
{
    if (r && r->state == GAPI__REQ_NEW)
        gapi__request_destroy(r);
}

int gapi_request_add_header(gapi_request *r, const char *name, const char *value)
{
    static const char *const reserved[] = {"host", "content-length", "transfer-encoding",
                                           "connection"};
    const char *bad;
    size_t i;

    if (!r)
        return GAPI_EINVAL;
    if (r->state != GAPI__REQ_NEW)
        return GAPI_EBUSY;
    if (!is_token(name)) {
        set_err(r, "header name \"%s\" is not an HTTP token", name ? name : "(null)");
        return GAPI_EINVAL;
    }
    if (!value) {
        set_err(r, "header %s has a NULL value", name);
        return GAPI_EINVAL;
    }
    if ((bad = bad_value_char(value)) != NULL) {
        set_err(r, "header %s value has control character 0x%02x at offset %zu", name,
                (unsigned char)*bad, (size_t)(bad - value));
        return GAPI_EINVAL;
    }
    for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcasecmp(name, reserved[i]) == 0) {
            set_err(r, "header %s is managed by gapi and cannot be set", name);
            return GAPI_EINVAL;
        }
    }
    if (strcasecmp(name, "user-agent") == 0)
        r->hflags |= GAPI__H_USER_AGENT;
    else if (strcasecmp(name, "accept-encoding") == 0)
        r->hflags |= GAPI__H_ACCEPT_ENCODING;
    else if (strcasecmp(name, "content-type") == 0)
        r->hflags |= GAPI__H_CONTENT_TYPE;
    /* Kept as "name\0value\0" pairs so the introspection accessors can
     * hand out C strings; serialize() writes the wire form. */
    if (gapi__buf_reserve(&r->user_headers, strlen(name) + strlen(value) + 2) != GAPI_OK)
        return GAPI_ENOMEM;
    gapi__buf_append(&r->user_headers, name, strlen(name) + 1);
    gapi__buf_append(&r->user_headers, value, strlen(value) + 1);
    r->nheaders++;
    return GAPI_OK;
}

static int set_content_type(gapi_request *r, const char *ct)
{
    char *dup = NULL;

    if (ct) {
        const char *bad = bad_value_char(ct);
        if (bad) {
            set_err(r, "content type has control character 0x%02x", (unsigned char)*bad);
            return GAPI_EINVAL;
        }
        dup = gapi__strdup(ct);
        if (!dup)
            return GAPI_ENOMEM;
    }
    gapi__free(r->content_type);
    r->content_type = dup;
    return GAPI_OK;
}

int gapi_request_set_body(gapi_request *r, const void *data, size_t len, const char *ct)
{
    char *copy;
    int rc;

    if (!r || (!data && len))
        return GAPI_EINVAL;
    if (r->state != GAPI__REQ_NEW)
        return GAPI_EBUSY;
    if ((rc = set_content_type(r, ct)) != GAPI_OK)
        return rc;
    copy = gapi__malloc(len);
    if (!copy)
        return GAPI_ENOMEM;
    if (len)
        memcpy(copy, data, len);
    gapi__free(r->body);
    r->body = copy;
    r->body_len = len;
    r->reader = NULL;
    return GAPI_OK;
}

int gapi_request_set_body_reader(gapi_request *r, long long content_length, const char *ct,
                                 gapi_body_read_cb read, void *arg)
{
    int rc;

    if (!r || !read || content_length < -1)
        return GAPI_EINVAL;
    if (r->state != GAPI__REQ_NEW)
        return GAPI_EBUSY;
    if ((rc = set_content_type(r, ct)) != GAPI_OK)
        return rc;
    gapi__free(r->body);
    r->body = NULL;
    r->body_len = 0;
    r->reader = read;
    r->reader_arg = arg;
    r->reader_length = content_length;
    return GAPI_OK;
}

int gapi_request_set_timeouts(gapi_request *r, unsigned connect_ms, unsigned stall_ms,
                              unsigned deadline_ms)
{
    if (!r)
        return GAPI_EINVAL;
    if (r->state != GAPI__REQ_NEW)
        return GAPI_EBUSY;
    r->connect_ms = connect_ms;
    r->stall_ms = stall_ms;
    r->deadline_ms = deadline_ms;
    return GAPI_OK;
}

int gapi_request_set_idempotent(gapi_request *r, int idempotent)
{
    if (!r)
        return GAPI_EINVAL;
    if (r->state != GAPI__REQ_NEW)
        return GAPI_EBUSY;
    r->idempotent = idempotent != 0;
    return GAPI_OK;
}

int gapi_request_set_retry(gapi_request *r, const gapi_retry_policy *p)
{
    gapi_retry_policy resolved;
    const char *why;

    if (!r)
        return GAPI_EINVAL;
    if (r->state != GAPI__REQ_NEW)
        return GAPI_EBUSY;
    if (!p) {
        r->has_retry = 0;
        return GAPI_OK;
    }
    if (gapi__retry_policy_resolve(&resolved, p, &why) != GAPI_OK) {
        set_err(r, "retry policy: %s", why);
        return GAPI_EINVAL;
    }
    r->retry = resolved;
    r->has_retry = 1;
    return GAPI_OK;
}

int gapi_request_set_credentials(gapi_request *r, gapi_credentials *cr)
{
    if (!r)
        return GAPI_EINVAL;
    if (r->state != GAPI__REQ_NEW)
        return GAPI_EBUSY;
    gapi_credentials_unref(r->creds);
    r->creds = gapi_credentials_ref(cr);
    gapi__free(r->key_target);
    r->key_target = NULL;
    return GAPI_OK;
}

unsigned gapi_request_attempts(const gapi_request *r)
{
    return r ? r->attempts : 0;
}

static int needs_length(const char *m)
{
    /* RFC 9110 8.6: a user agent should send Content-Length: 0 for methods
     * that define a body when it has none; some servers answer 411 else. */
    return !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH");
}

#define PUT(lit) gapi__buf_append(h, lit, sizeof(lit) - 1)

/* Hand-rolled rather than printf: this runs once per request. */
static int serialize(gapi_request *r)
{
    gapi__buf *h = &r->head;
    const char *p;
    char num[32];
    int rc = 0, n;
    size_t i;

    gapi__buf_reset(h);
    rc |= gapi__buf_reserve(
        h, strlen(r->method) + strlen(r->key_target ? r->key_target : r->url.target) +
               strlen(r->url.authority) + r->user_headers.len + 2 * r->nheaders + 160 +
               (r->body_len <= INLINE_BODY_MAX ? r->body_len : 0));
    rc |= gapi__buf_puts(h, r->method);
    rc |= PUT(" ");
    rc |= gapi__buf_puts(h, r->key_target ? r->key_target : r->url.target);
    rc |= PUT(" HTTP/1.1\r\nHost: ");
    rc |= gapi__buf_puts(h, r->url.authority);
    rc |= PUT("\r\n");
    if (!(r->hflags & GAPI__H_USER_AGENT))
        rc |= gapi__buf_puts(h, r->client->user_agent);
    if (!(r->hflags & GAPI__H_ACCEPT_ENCODING))
        rc |= PUT("Accept-Encoding: gzip, deflate\r\n");
    for (p = r->user_headers.data, i = 0; i < r->nheaders; i++) {
        size_t nlen = strlen(p), vlen = strlen(p + nlen + 1);
        rc |= gapi__buf_append(h, p, nlen);
        rc |= PUT(": ");
        rc |= gapi__buf_append(h, p + nlen + 1, vlen);
        rc |= PUT("\r\n");
        p += nlen + vlen + 2;
    }
    if (r->content_type && !(r->hflags & GAPI__H_CONTENT_TYPE)) {
        rc |= PUT("Content-Type: ");
        rc |= gapi__buf_puts(h, r->content_type);
        rc |= PUT("\r\n");
    }
    if (r->reader && r->reader_length < 0) {
        rc |= PUT("Transfer-Encoding: chunked\r\n");
    } else if (r->reader || r->body || needs_length(r->method)) {
        n = snprintf(num, sizeof(num), "%lld",
                     r->reader ? r->reader_length : (long long)r->body_len);
        rc |= PUT("Content-Length: ");
        rc |= gapi__buf_append(h, num, (size_t)n);
        rc |= PUT("\r\n");
    }
    if (r->creds)
        rc |= gapi__creds_static_headers(r->creds, h);
    r->head_base = h->len;
    return rc ? GAPI_ENOMEM : GAPI_OK;
}

/* Room for n more bytes in a head that may hold an old token past its
 * length: realloc would free that copy uncleansed, so move it by hand. */
static int reserve_wiped(gapi__buf *h, size_t n)
{
    gapi__buf bigger = GAPI__BUF_INIT;

    if (h->len + n < h->cap)
        return GAPI_OK;
    if (gapi__buf_reserve(&bigger, h->len + n) != GAPI_OK)
        return GAPI_ENOMEM;
    memcpy(bigger.data, h->data, h->len);
    bigger.len = h->len;
    OPENSSL_cleanse(h->data, h->cap);
    gapi__buf_free(h);
    *h = bigger;
    return GAPI_OK;
}

int gapi__request_finish_head(gapi_request *r, const char *lines, size_t len)
{
    gapi__buf *h = &r->head;
    int rc = 0;

    h->len = r->head_base;
    if (reserve_wiped(h, len + 2 + (r->body_len <= INLINE_BODY_MAX ? r->body_len : 0)) != GAPI_OK)
        return GAPI_ENOMEM;
    if (len)
        rc |= gapi__buf_append(h, lines, len);
    rc |= PUT("\r\n");
    if (r->body_len && r->body_len <= INLINE_BODY_MAX)
        rc |= gapi__buf_append(h, r->body, r->body_len);
    return rc ? GAPI_ENOMEM : GAPI_OK;
}

#undef PUT

static unsigned pick(unsigned req, unsigned dflt)
{
    unsigned v = req ? req : dflt;
    return v == GAPI_NO_TIMEOUT ? 0 : v;
}

static int is_json_type(const char *ct)
{
    size_t n;

    if (!ct)
        return 0;
    n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return 1;
    return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* Parse a JSON body; returns GAPI_OK (also when there is nothing to parse)
 * or GAPI_EJSON with a message that says where the body went wrong. */
int gapi__request_parse_json(gapi_request *r)
{
    gapi_response *resp = &r->x.resp;
    gapi__json_error jerr;
    int rc;

    if (!is_json_type(gapi__response_find(resp, "content-type")) || resp->body.len == 0)
        return GAPI_OK;
    rc = gapi__json_parse(resp->body.data, resp->body.len, 0, &resp->json, &jerr);
    if (rc == GAPI_EJSON)
        set_err(r, "response body is not valid JSON: %s at line %u, column %u (offset %zu)",
                jerr.message, jerr.line, jerr.column, jerr.offset);
    else if (rc != GAPI_OK)
        set_err(r, "parsing the JSON response body: %s", gapi_strerror(rc));
    return rc;
}

int gapi__request_prepare(gapi_request *r, gapi_response_cb cb, void *arg)
{
    gapi_client *c;
    gapi__xfer *x;
    int rc;

    if (!r || !cb)
        return GAPI_EINVAL;
    if (r->state != GAPI__REQ_NEW)
        return GAPI_EBUSY;
    c = r->client;
    /* The library's own token requests still run while a shut-down client
     * drains: the requests it lets finish may be waiting for that token. */
    if (gapi__client_is_shut(c) && !r->internal)
        return GAPI_ESHUTDOWN;
    if (r->creds && !r->key_target &&
        (rc = gapi__creds_key_query(r->creds, r->url.target, &r->key_target)) != GAPI_OK)
        return rc;
    if ((rc = serialize(r)) != GAPI_OK)
        return rc;
    /* A token is added per attempt; everything else is final now. */
    if (!(r->creds && gapi__creds_need_token(r->creds)) &&
        (rc = gapi__request_finish_head(r, NULL, 0)) != GAPI_OK)
        return rc;
    if (!r->has_retry)
        r->retry = c->retry;
    x = &r->x;
    x->url = &r->url;
    x->head = &r->head;
    x->body = r->body_len > INLINE_BODY_MAX ? r->body : NULL;
    x->body_len = r->body_len > INLINE_BODY_MAX ? r->body_len : 0;
    x->reader = r->reader;
    x->reader_arg = r->reader_arg;
    x->reader_length = r->reader_length;
    x->head_request = strcmp(r->method, "HEAD") == 0;
    x->idempotent = r->idempotent;
    x->connect_ms = pick(r->connect_ms, c->opts.connect_timeout_ms);
    x->stall_ms = pick(r->stall_ms, c->opts.stall_timeout_ms);
    /* The deadline spans every attempt: send.c keeps it, not the pool. */
    r->total_ms = pick(r->deadline_ms, c->opts.deadline_ms);
    x->max_header_bytes = c->opts.max_header_bytes;
    x->max_body_bytes = c->opts.max_body_bytes;
    x->done = gapi__request_xfer_done;
    r->cb = cb;
    r->arg = arg;
    return GAPI_OK;
}

const char *gapi_request_errmsg(const gapi_request *r)
{
    return r ? r->x.errmsg : "";
}

const char *gapi_request_method(const gapi_request *r)
{
    return r ? r->method : NULL;
}

const char *gapi_request_url(const gapi_request *r)
{
    return r ? r->url_str : NULL;
}

size_t gapi_request_header_count(const gapi_request *r)
{
    return r ? r->nheaders : 0;
}

int gapi_request_header_at(const gapi_request *r, size_t i, const char **name, const char **value)
{
    const char *p;
    size_t k;

    if (!r || i >= r->nheaders)
        return GAPI_EINVAL;
    /* A request has a handful of headers: a scan is cheaper than an index. */
    for (p = r->user_headers.data, k = 0; k < i; k++) {
        p += strlen(p) + 1;
        p += strlen(p) + 1;
    }
    if (name)
        *name = p;
    if (value)
        *value = p + strlen(p) + 1;
    return GAPI_OK;
}

const char *gapi_request_header(const gapi_request *r, const char *name)
{
    const char *p;
    size_t k;

    if (!r || !name)
        return NULL;
    for (p = r->user_headers.data, k = 0; k < r->nheaders; k++) {
        const char *v = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

const void *gapi_request_body(const gapi_request *r, size_t *len)
{
    if (len)
        *len = r && r->body ? r->body_len : 0;
    return r ? r->body : NULL;
}

const char *gapi_request_content_type(const gapi_request *r)
{
    return r ? r->content_type : NULL;
}

/* ---------------------------------------------------------------- response */

int gapi__response_add_header(gapi_response *r, const char *name, size_t nlen, const char *value,
                              size_t vlen)
{
    size_t off = r->arena.len;

    if (!r->hdrs) {
        r->hdrs = r->inline_hdrs;
        r->hdrs_cap = GAPI__INLINE_HDRS;
    }
    if (r->nhdrs == r->hdrs_cap) {
        size_t cap = r->hdrs_cap * 2;
        gapi__hdr_ref *h = gapi__malloc(cap * sizeof(*h));
        if (!h)
            return GAPI_ENOMEM;
        memcpy(h, r->hdrs, r->nhdrs * sizeof(*h));
        if (r->hdrs != r->inline_hdrs)
            gapi__free(r->hdrs);
        r->hdrs = h;
        r->hdrs_cap = cap;
    }
    /* One arena allocation covers the headers of a typical response. */
    if (off + nlen + vlen + 2 > UINT32_MAX ||
        gapi__buf_reserve(&r->arena, off ? nlen + vlen + 2 : 1024) != GAPI_OK)
        return GAPI_ENOMEM;
    memcpy(r->arena.data + off, name, nlen);
    r->arena.data[off + nlen] = '\0';
    memcpy(r->arena.data + off + nlen + 1, value, vlen);
    r->arena.data[off + nlen + 1 + vlen] = '\0';
    r->arena.len += nlen + vlen + 2;
    r->hdrs[r->nhdrs].name = (uint32_t)off;
    r->hdrs[r->nhdrs].value = (uint32_t)(off + nlen + 1);
    r->nhdrs++;
    return GAPI_OK;
}

void gapi__response_reset(gapi_response *r)
{
    gapi__buf_free(&r->arena);
    gapi__buf_free(&r->body);
    if (r->hdrs != r->inline_hdrs)
        gapi__free(r->hdrs);
    json_object_put(r->json);
    memset(r, 0, sizeof(*r));
}

const char *gapi__response_find(const gapi_response *r, const char *name)
{
    size_t i;

    for (i = 0; i < r->nhdrs; i++)
        if (strcasecmp(r->arena.data + r->hdrs[i].name, name) == 0)
            return r->arena.data + r->hdrs[i].value;
    return NULL;
}

int gapi_response_status(const gapi_response *r)
{
    return r ? r->status : 0;
}

const char *gapi_response_header(const gapi_response *r, const char *name)
{
    return r && name ? gapi__response_find(r, name) : NULL;
}

size_t gapi_response_header_count(const gapi_response *r)
{
    return r ? r->nhdrs : 0;
}

int gapi_response_header_at(const gapi_response *r, size_t i, const char **name, const char **value)
{
    if (!r || i >= r->nhdrs)
        return GAPI_EINVAL;
    if (name)
        *name = r->arena.data + r->hdrs[i].name;
    if (value)
        *value = r->arena.data + r->hdrs[i].value;
    return GAPI_OK;
}

const char *gapi_response_body(const gapi_response *r, size_t *len)
{
    if (len)
        *len = r ? r->body.len : 0;
    return r && r->body.data ? r->body.data : "";
}

struct json_object *gapi_response_json(const gapi_response *r)
{
    return r ? r->json : NULL;
}
