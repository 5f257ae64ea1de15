/*
 * Google's error responses, parsed for callers (gapi_google_error_* in
 * gapi.h). Three shapes occur:
 *  - the API format {"error": {"code", "message", "status", "errors":
 *    [{"reason", "domain", "message"}], "details": [...]}}, also wrapped in
 *    a one-element array by some front ends;
 *  - the OAuth format {"error": "invalid_grant", "error_description": ...},
 *    read as one item whose reason is "error";
 *  - anything else: HTML error pages and plain text, whose <title> or first
 *    non-empty line becomes the message.
 * Every field is optional and type-checked: a hostile body yields fewer
 * fields, never a crash. Strings are borrowed from the parsed tree, which
 * the error owns.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "common/alloc.h"
#include "json/parse.h"
#include "call/call.h"

/* Error bodies are shallow; a deeper document is not one of Google's. */
#define ERROR_JSON_DEPTH 64
/* Longest message taken from a text or HTML body. */
#define TEXT_MESSAGE_MAX 200
/* How far into a body a <title> is looked for. */
#define TITLE_WINDOW 65536

typedef struct gerr_item {
    const char *reason, *domain, *message;
} gerr_item;

struct gapi_google_error {
    int http_status;
    int code;
    const char *message;
    const char *status;
    gerr_item *items;
    size_t nitems;
    struct json_object *root;    /* owned; every borrowed string lives in it */
    struct json_object *details; /* borrowed from root */
    char *text;                  /* owned: a message taken from a non-JSON body */
};

static const char *str_field(struct json_object *o, const char *key)
{
    struct json_object *v;

    if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

static int from_json(gapi_google_error *e, struct json_object *root)
{
    struct json_object *obj = root, *err, *v;
    size_t i, n;

    if (json_object_is_type(obj, json_type_array))
        obj = json_object_array_length(obj) ? json_object_array_get_idx(obj, 0) : NULL;
    if (!json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, "error", &err))
        return GAPI_OK;
    if (json_object_is_type(err, json_type_string)) {
        /* OAuth 2.0 (RFC 6749 section 5.2). */
        if (!(e->items = gapi__calloc(1, sizeof(*e->items))))
            return GAPI_ENOMEM;
        e->nitems = 1;
        e->items[0].reason = json_object_get_string(err);
        e->message = str_field(obj, "error_description");
        e->items[0].message = e->message;
        return GAPI_OK;
    }
    if (!json_object_is_type(err, json_type_object))
        return GAPI_OK;
    if (json_object_object_get_ex(err, "code", &v) && json_object_is_type(v, json_type_int)) {
        int64_t c = json_object_get_int64(v);
        if (c >= INT_MIN && c <= INT_MAX)
            e->code = (int)c;
    }
    e->message = str_field(err, "message");
    e->status = str_field(err, "status");
    if (json_object_object_get_ex(err, "details", &v) && v)
        e->details = v;
    if (json_object_object_get_ex(err, "errors", &v) && json_object_is_type(v, json_type_array)) {
        n = json_object_array_length(v);
        for (i = 0; i < n; i++)
            if (json_object_is_type(json_object_array_get_idx(v, i), json_type_object))
                e->nitems++;
        if (e->nitems && !(e->items = gapi__calloc(e->nitems, sizeof(*e->items)))) {
            e->nitems = 0;
            return GAPI_ENOMEM;
        }
        for (i = 0, e->nitems = 0; i < n; i++) {
            struct json_object *it = json_object_array_get_idx(v, i);
            if (!json_object_is_type(it, json_type_object))
                continue;
            e->items[e->nitems].reason = str_field(it, "reason");
            e->items[e->nitems].domain = str_field(it, "domain");
            e->items[e->nitems].message = str_field(it, "message");
            e->nitems++;
        }
    }
    return GAPI_OK;
}

/* Case-insensitive search for the NUL-free needle in s[0..len). */
static const char *find_ci(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle), i;

    for (i = 0; i + n <= len; i++)
        if (strncasecmp(s + i, needle, n) == 0)
            return s + i;
    return NULL;
}

/* The message of a text or HTML body: the <title>, else the first line that
 * is not blank; spaces trimmed, controls made spaces, cut at a character
 * boundary. NULL in *out when nothing is left. */
static int from_text(gapi_google_error *e, const char *body, size_t len)
{
    const char *s = NULL, *end = NULL, *t;
    size_t n, i;

    /* An HTML page names itself near its top: look no further than that,
     * so a huge body costs no full scan. */
    if ((t = find_ci(body, len < TITLE_WINDOW ? len : TITLE_WINDOW, "<title>")) != NULL) {
        s = t + 7;
        n = len - (size_t)(s - body);
        end = find_ci(s, n < TITLE_WINDOW ? n : TITLE_WINDOW, "</title>");
    }
    if (!end) {
        s = body;
        end = body + len;
        for (;;) {
            const char *nl = memchr(s, '\n', (size_t)(end - s));
            const char *k = s;
            while (k < (nl ? nl : end) && (*k == ' ' || *k == '\t' || *k == '\r'))
                k++;
            if (k < (nl ? nl : end) || !nl) {
                end = nl ? nl : end;
                break;
            }
            s = nl + 1;
        }
    }
    while (s < end && (unsigned char)*s <= ' ')
        s++;
    while (end > s && (unsigned char)end[-1] <= ' ')
        end--;
    n = (size_t)(end - s);
    if (n > TEXT_MESSAGE_MAX) {
        n = TEXT_MESSAGE_MAX;
        /* Do not split a UTF-8 sequence: back up over continuation bytes
         * and the lead byte they belong to. */
        while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    if (!n)
        return GAPI_OK;
    if (!(e->text = gapi__strndup(s, n)))
        return GAPI_ENOMEM;
    for (i = 0; i < n; i++)
        if ((unsigned char)e->text[i] < 0x20 || e->text[i] == 0x7f)
            e->text[i] = ' ';
    e->message = e->text;
    return GAPI_OK;
}

int gapi_google_error_parse(gapi_google_error **out, int http_status, const char *body, size_t len)
{
    gapi_google_error *e;
    size_t i = 0;
    int rc = GAPI_OK;

    if (!out || (!body && len))
        return GAPI_EINVAL;
    if (!(e = gapi__calloc(1, sizeof(*e))))
        return GAPI_ENOMEM;
    e->http_status = e->code = http_status;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    if (i < len && (body[i] == '{' || body[i] == '[')) {
        /* JSON-looking: Google's formats, or nothing (a broken JSON body
         * says nothing a person should read as the message). */
        rc = gapi__json_parse(body, len, ERROR_JSON_DEPTH, &e->root, NULL);
        if (rc == GAPI_OK)
            rc = from_json(e, e->root);
        else if (rc == GAPI_EJSON)
            rc = GAPI_OK;
    } else if (i < len) {
        rc = from_text(e, body + i, len - i);
    }
    if (rc != GAPI_OK) {
        gapi_google_error_free(e);
        return rc;
    }
    *out = e;
    return GAPI_OK;
}

void gapi_google_error_free(gapi_google_error *e)
{
    if (!e)
        return;
    json_object_put(e->root);
    gapi__free(e->items);
    gapi__free(e->text);
    gapi__free(e);
}

int gapi_google_error_http_status(const gapi_google_error *e)
{
    return e ? e->http_status : 0;
}

int gapi_google_error_code(const gapi_google_error *e)
{
    return e ? e->code : 0;
}

const char *gapi_google_error_message(const gapi_google_error *e)
{
    return e ? e->message : NULL;
}

const char *gapi_google_error_status(const gapi_google_error *e)
{
    return e ? e->status : NULL;
}

size_t gapi_google_error_count(const gapi_google_error *e)
{
    return e ? e->nitems : 0;
}

const char *gapi_google_error_reason(const gapi_google_error *e, size_t i)
{
    return e && i < e->nitems ? e->items[i].reason : NULL;
}

const char *gapi_google_error_domain(const gapi_google_error *e, size_t i)
{
    return e && i < e->nitems ? e->items[i].domain : NULL;
}

const char *gapi_google_error_item_message(const gapi_google_error *e, size_t i)
{
    return e && i < e->nitems ? e->items[i].message : NULL;
}

struct json_object *gapi_google_error_details(const gapi_google_error *e)
{
    return e ? e->details : NULL;
}

/* Appends s at buf[*o], controls as spaces, stopping at buf[lim]; returns
 * 0 when cut. */
static int put_clean(char *buf, size_t lim, size_t *o, const char *s)
{
    for (; *s; s++) {
        if (*o >= lim)
            return 0;
        buf[(*o)++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? ' ' : *s;
    }
    return 1;
}

void gapi__google_error_format(const gapi_google_error *e, char *buf, size_t size)
{
    const char *why = NULL;
    char head[32];
    size_t o = 0, reserve = 0, lim;

    if (!size)
        return;
    buf[0] = '\0';
    if (!e)
        return;
    lim = size - 1;
    if (e->nitems && e->items[0].reason && *e->items[0].reason)
        why = e->items[0].reason;
    else if (e->status && *e->status)
        why = e->status;
    /* A long message must not push the reason out: keep room for it. */
    if (why) {
        reserve = strlen(why) + 3;
        if (reserve > 64)
            reserve = 64;
        if (reserve > lim / 2)
            reserve = lim / 2;
    }
    snprintf(head, sizeof(head), "HTTP %d", e->http_status);
    put_clean(buf, lim, &o, head);
    if (e->message && *e->message && lim - reserve > o)
        (void)(put_clean(buf, lim - reserve, &o, ": ") &&
               put_clean(buf, lim - reserve, &o, e->message));
    if (why)
        (void)(put_clean(buf, lim, &o, " (") && put_clean(buf, lim, &o, why) &&
               put_clean(buf, lim, &o, ")"));
    buf[o] = '\0';
}
