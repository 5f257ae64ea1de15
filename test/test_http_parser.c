/*
 * Tests of the HTTP/1.1 response parser.
 *
 * Three public corpora in ../shared/http-response (llhttp's markdown tests,
 * http-parser's response table, picohttpparser's cases) are each fed whole
 * and one byte at a time; both runs must agree with each other and with the
 * corpus. Where this parser deliberately differs from a corpus, the case is
 * listed in a divergence table with the reason, and our behaviour for it is
 * asserted instead. Hand-written cases then cover limits, smuggling vectors,
 * framing, keep-alive and callback failures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "transport/http_parser.h"
#include "tap.h"

#define MAXM 8 /* messages recorded per run (pipelined corpus cases) */

/* A string literal as pointer and length. */
#define S(lit) lit, sizeof(lit) - 1

/* ------------------------------------------------------------ recording */

/* One response as seen through the callbacks. Fields are serialised as
 * name \x01 value \x02 so two recordings compare with memcmp. */
typedef struct rec_msg {
    int status_seen, status, minor;
    int headers_done, complete, keep_alive;
    gapi__http_framing framing;
    int64_t content_length;
    int nhdr, ntrl;
    gapi__buf reason, headers, trailers, body, infos;
} rec_msg;

typedef struct outcome {
    rec_msg m[MAXM];
    int nmsg;
    gapi__hpe error;
    const char *reason;
    int after_close;     /* complete, not keep-alive, and bytes followed */
    int short_read;      /* execute() stopped early for no reason */
    int empty_body_call; /* on_body called with 0 bytes */
    int finished;        /* completed by gapi__http_parser_finish() */
    size_t leftover;     /* input bytes not consumed */
    const gapi__http_parser *p;
    const char *fail_in; /* name of a callback that should fail */
} outcome;

static void app(gapi__buf *b, const void *p, size_t n)
{
    if (n && gapi__buf_append(b, p, n) != 0)
        abort();
}

static void add_field(gapi__buf *b, const char *n, size_t nl, const char *v, size_t vl)
{
    app(b, n, nl);
    app(b, "\x01", 1);
    app(b, v, vl);
    app(b, "\x02", 1);
}

static int buf_eq(const gapi__buf *a, const gapi__buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static int buf_is(const gapi__buf *a, const char *s, size_t n)
{
    return a->len == n && (n == 0 || memcmp(a->data, s, n) == 0);
}

static void msg_free(rec_msg *m)
{
    gapi__buf_free(&m->reason);
    gapi__buf_free(&m->headers);
    gapi__buf_free(&m->trailers);
    gapi__buf_free(&m->body);
    gapi__buf_free(&m->infos);
    memset(m, 0, sizeof(*m));
}

static void outcome_free(outcome *o)
{
    int i;

    for (i = 0; i < MAXM; i++)
        msg_free(&o->m[i]);
    memset(o, 0, sizeof(*o));
}

static rec_msg *cur(outcome *o)
{
    return &o->m[o->nmsg - 1];
}

static int should_fail(const outcome *o, const char *name)
{
    return o->fail_in && strcmp(o->fail_in, name) == 0;
}

static int cb_info(void *ud, int status)
{
    outcome *o = ud;
    char t[16];

    snprintf(t, sizeof(t), "%d,", status);
    app(&cur(o)->infos, t, strlen(t));
    return should_fail(o, "info");
}

static int cb_status(void *ud, int minor, int status, const char *r, size_t n)
{
    outcome *o = ud;
    rec_msg *m = cur(o);

    m->status_seen = 1;
    m->status = status;
    m->minor = minor;
    app(&m->reason, r, n);
    return should_fail(o, "status");
}

static int cb_header(void *ud, const char *n, size_t nl, const char *v, size_t vl)
{
    outcome *o = ud;

    add_field(&cur(o)->headers, n, nl, v, vl);
    cur(o)->nhdr++;
    return should_fail(o, "header");
}

static int cb_headers_complete(void *ud)
{
    outcome *o = ud;
    rec_msg *m = cur(o);

    m->headers_done = 1;
    m->keep_alive = o->p->keep_alive;
    m->framing = o->p->framing;
    m->content_length = o->p->content_length;
    return should_fail(o, "headers_complete");
}

static int cb_body(void *ud, const char *d, size_t n)
{
    outcome *o = ud;

    if (n == 0)
        o->empty_body_call = 1;
    app(&cur(o)->body, d, n);
    return should_fail(o, "body");
}

static int cb_trailer(void *ud, const char *n, size_t nl, const char *v, size_t vl)
{
    outcome *o = ud;

    add_field(&cur(o)->trailers, n, nl, v, vl);
    cur(o)->ntrl++;
    return should_fail(o, "trailer");
}

static int cb_complete(void *ud)
{
    outcome *o = ud;

    cur(o)->complete = 1;
    return should_fail(o, "complete");
}

static const gapi__http_callbacks g_cbs = {cb_info, cb_status,  cb_header,  cb_headers_complete,
                                           cb_body, cb_trailer, cb_complete};

/* ------------------------------------------------------------- running */

typedef struct run_opts {
    int head;          /* response to HEAD */
    size_t max_header; /* 0: default */
    int finish;        /* call finish() if input ran out mid-message */
    int one_message;   /* stop after the first complete message */
    const char *fail_in;
} run_opts;

static const run_opts g_plain = {0, 0, 0, 0, NULL};
static const run_opts g_one = {0, 0, 0, 1, NULL};

/* Feeds in[0..len) as a first piece of `first` bytes (0: none), then
 * pieces of `step` bytes. After a complete message, a new parser takes the
 * rest (as a keep-alive connection would) unless the message closes the
 * connection, which is recorded as after_close. */
static void run(outcome *o, const char *in, size_t len, size_t first, size_t step,
                const run_opts *ro)
{
    gapi__http_parser p;
    size_t off = 0, n, used;

    memset(o, 0, sizeof(*o));
    o->fail_in = ro->fail_in;
    o->p = &p;
    o->nmsg = 1;
    gapi__http_parser_init(&p, &g_cbs, o, ro->head, ro->max_header);
    while (off < len) {
        n = first ? first : step;
        first = 0;
        if (n > len - off)
            n = len - off;
        used = gapi__http_parser_execute(&p, in + off, n);
        if (used > n) {
            o->short_read = 1;
            break;
        }
        off += used;
        if (p.error != GAPI__HPE_OK)
            break;
        if (p.complete) {
            if (off == len || ro->one_message)
                break;
            if (!p.keep_alive) {
                o->after_close = 1;
                break;
            }
            if (o->nmsg == MAXM)
                break;
            o->nmsg++;
            gapi__http_parser_init(&p, &g_cbs, o, ro->head, ro->max_header);
            continue;
        }
        if (used != n) {
            o->short_read = 1;
            break;
        }
    }
    if (ro->finish && p.error == GAPI__HPE_OK && !p.complete && !o->short_read) {
        gapi__hpe rc = gapi__http_parser_finish(&p);
        if (rc != p.error)
            o->short_read = 1;
        o->finished = p.complete;
    }
    o->error = p.error;
    o->reason = p.error_reason;
    o->leftover = len - off;
    o->p = NULL;
}

static int msgs_done(const outcome *o)
{
    int i, n = 0;

    for (i = 0; i < o->nmsg; i++)
        n += o->m[i].headers_done;
    return n;
}

/* Messages that reached on_headers_complete, in order. */
static const rec_msg *done_msg(const outcome *o, int k)
{
    int i;

    for (i = 0; i < o->nmsg; i++)
        if (o->m[i].headers_done && k-- == 0)
            return &o->m[i];
    return NULL;
}

static void all_infos(const outcome *o, gapi__buf *out)
{
    int i;

    for (i = 0; i < o->nmsg; i++)
        app(out, o->m[i].infos.data, o->m[i].infos.len);
}

/* Whether two runs of the same input saw exactly the same thing. */
static const char *same_outcome(const outcome *a, const outcome *b)
{
    int i;

    if (a->error != b->error)
        return "error codes differ";
    if (strcmp(a->reason, b->reason) != 0)
        return "error reasons differ";
    /* On an error, execute() returns where it was found: that offset is
     * relative to the piece being fed, so leftover is compared only for
     * successful runs. */
    if (a->nmsg != b->nmsg || a->after_close != b->after_close ||
        (a->error == GAPI__HPE_OK && a->leftover != b->leftover) || a->finished != b->finished)
        return "message count, leftover or close differ";
    for (i = 0; i < a->nmsg; i++) {
        const rec_msg *x = &a->m[i], *y = &b->m[i];
        if (x->status_seen != y->status_seen || x->status != y->status || x->minor != y->minor ||
            x->headers_done != y->headers_done || x->complete != y->complete ||
            x->keep_alive != y->keep_alive || x->framing != y->framing ||
            x->content_length != y->content_length)
            return "status, framing or completion differ";
        if (!buf_eq(&x->reason, &y->reason) || !buf_eq(&x->headers, &y->headers) ||
            !buf_eq(&x->trailers, &y->trailers) || !buf_eq(&x->body, &y->body) ||
            !buf_eq(&x->infos, &y->infos))
            return "reason, fields, body or 1xx differ";
    }
    return NULL;
}

/* Sanity that holds for every run. */
static const char *run_invariants(const outcome *o)
{
    if (o->short_read)
        return "execute() consumed less than given without completing or failing";
    if (o->empty_body_call)
        return "on_body called with 0 bytes";
    if ((o->error == GAPI__HPE_OK) != (o->reason[0] == '\0'))
        return "error_reason does not match the error";
    return NULL;
}

/* Runs whole and byte by byte; asserts they agree. Result in *whole. */
static int run_both(outcome *whole, const char *in, size_t len, const run_opts *ro,
                    const char *label)
{
    outcome bytes;
    const char *why;
    int same;

    run(whole, in, len, 0, len ? len : 1, ro);
    run(&bytes, in, len, 0, 1, ro);
    why = same_outcome(whole, &bytes);
    if (!why)
        why = run_invariants(whole);
    if (!why)
        why = run_invariants(&bytes);
    same = ok(why == NULL, "%s: whole and byte-by-byte runs agree", label);
    if (!same)
        diag("  %s (whole: %s \"%s\"; bytes: %s \"%s\")", why, gapi__hpe_name(whole->error),
             whole->reason, gapi__hpe_name(bytes.error), bytes.reason);
    outcome_free(&bytes);
    return same;
}

/* --------------------------------------------------------- expectations */

enum {
    CHK_MINOR = 1,
    CHK_KA = 2,
    CHK_REASON = 4,
    CHK_CL = 8,
    CHK_COMPLETE = 16,
    CHK_ERROR_ONLY = 32 /* messages are checked elsewhere */
};

/* Compares what a corpus says (exp, built like a recording) with ours.
 * On an expected error, only messages completed before it are compared. */
static const char *match(const outcome *exp, const outcome *got, unsigned what)
{
    static char why[256];
    gapi__buf ei = GAPI__BUF_INIT, gi = GAPI__BUF_INIT;
    int i, n, infos_ok;

    if ((exp->error != GAPI__HPE_OK) != (got->error != GAPI__HPE_OK)) {
        snprintf(why, sizeof(why), "expected %s, got %s \"%s\"",
                 exp->error ? "an error" : "no error", gapi__hpe_name(got->error), got->reason);
        return why;
    }
    if (exp->after_close != got->after_close)
        return exp->after_close ? "expected data after Connection: close to be refused"
                                : "stopped at data after a non-keep-alive message";
    if (what & CHK_ERROR_ONLY)
        return NULL;
    n = msgs_done(exp);
    if (!exp->error && n != msgs_done(got)) {
        snprintf(why, sizeof(why), "expected %d responses, got %d", n, msgs_done(got));
        return why;
    }
    for (i = 0; i < n; i++) {
        const rec_msg *x = done_msg(exp, i), *y = done_msg(got, i);
        if (exp->error && !x->complete)
            break;
        if (!y)
            return "fewer responses than expected";
        if (x->status != y->status)
            return "status differs";
        if ((what & CHK_MINOR) && x->minor != y->minor)
            return "HTTP minor version differs";
        if (!buf_eq(&x->headers, &y->headers))
            return "header fields differ";
        if (!buf_eq(&x->body, &y->body))
            return "body differs";
        if (((what & CHK_COMPLETE) || exp->error) && x->complete != y->complete)
            return x->complete ? "response not complete" : "response complete too early";
        if ((what & CHK_KA) && x->keep_alive != y->keep_alive)
            return "keep-alive differs";
        if ((what & CHK_REASON) && !buf_eq(&x->reason, &y->reason))
            return "reason phrase differs";
        if ((what & CHK_CL) && x->content_length != y->content_length)
            return "content_length differs";
    }
    all_infos(exp, &ei);
    all_infos(got, &gi);
    infos_ok = buf_eq(&ei, &gi);
    gapi__buf_free(&ei);
    gapi__buf_free(&gi);
    return infos_ok ? NULL : "1xx responses differ";
}

/* A case where we deliberately differ from a corpus: what we do instead. */
typedef struct divergence {
    const char *name;
    gapi__hpe error; /* our error (OK: none) */
    int after_close; /* we stop at bytes after a closing response */
    int keep_alive;  /* -1: not checked */
    const char *why;
} divergence;

static const divergence *find_div(const divergence *t, const char *name)
{
    for (; t->name; t++)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

static const char *div_check(const divergence *d, const outcome *got)
{
    static char why[256];
    const rec_msg *m;

    if (got->error != d->error) {
        snprintf(why, sizeof(why), "expected %s, got %s \"%s\"", gapi__hpe_name(d->error),
                 gapi__hpe_name(got->error), got->reason);
        return why;
    }
    if (got->after_close != d->after_close)
        return "after_close differs";
    m = done_msg(got, msgs_done(got) - 1);
    if (d->keep_alive >= 0 && (!m || m->keep_alive != d->keep_alive))
        return "keep-alive differs";
    return NULL;
}

typedef struct tally {
    int cases, matched, diverged, failed;
} tally;

/* Runs one corpus case both ways; checks it against exp or, when listed,
 * against its divergence entry. */
static void check_case(tally *t, const divergence *d, const outcome *exp, unsigned what,
                       const char *in, size_t len, const run_opts *ro, const char *label)
{
    outcome o;
    outcome bytes;
    const char *why, *why2;

    t->cases++;
    run_both(&o, in, len, ro, label);
    run(&bytes, in, len, 0, 1, ro);
    why = d ? div_check(d, &o) : match(exp, &o, what);
    why2 = d ? div_check(d, &bytes) : match(exp, &bytes, what);
    if (!ok(why == NULL && why2 == NULL, "%s: %s", label,
            d ? "behaves as the divergence table says" : "matches the corpus")) {
        diag("  whole: %s; byte-by-byte: %s", why ? why : "ok", why2 ? why2 : "ok");
        t->failed++;
    } else if (d) {
        t->diverged++;
    } else {
        t->matched++;
    }
    outcome_free(&o);
    outcome_free(&bytes);
}

/* ----------------------------------------------------------------- files */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *s = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        s = malloc((size_t)n + 1);
        if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
            free(s);
            s = NULL;
        }
        if (s) {
            s[n] = '\0';
            *len = (size_t)n;
        }
    }
    fclose(f);
    return s;
}

/* The corpora store byte strings as latin-1 code points in JSON; json-c
 * hands them out as UTF-8. */
static int latin1(const char *s, size_t n, gapi__buf *out)
{
    size_t i;
    unsigned char c;

    for (i = 0; i < n; i++) {
        c = (unsigned char)s[i];
        if (c >= 0x80) {
            if ((c & 0xfe) != 0xc2 || i + 1 == n)
                return -1;
            c = (unsigned char)(((c & 0x1f) << 6) | ((unsigned char)s[++i] & 0x3f));
        }
        app(out, &c, 1);
    }
    return 0;
}

static int json_latin1(json_object *o, const char *key, gapi__buf *out)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return -1;
    return latin1(json_object_get_string(v), (size_t)json_object_get_string_len(v), out);
}

static int json_int(json_object *o, const char *key, int dflt)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
        return dflt;
    return json_object_get_int(v);
}

/* ---------------------------------------------------------------- llhttp */

/* llhttp's test runner (test/md-test.ts) turns an ```http block into bytes:
 * lines joined with CRLF (none after the last), then \r \n \t \f escapes
 * become the bytes, and a backslash at the end of a line removes the line
 * break. Verified below against every span offset in the logs. */
static void md_unescape(const char *s, size_t n, gapi__buf *out)
{
    size_t i;
    char c;

    for (i = 0; i < n; i++) {
        c = s[i];
        if (c == '\\' && i + 1 < n) {
            char e = s[i + 1];
            const char *m = strchr("rntf", e);
            if (e && m) {
                c = "\r\n\t\f"[m - "rntf"];
                i++;
            } else if (e == '\r' && i + 2 < n && s[i + 2] == '\n') {
                i += 2;
                continue;
            }
        }
        app(out, &c, 1);
    }
}

static void trim_trailing_ws(gapi__buf *b)
{
    while (b->len && (b->data[b->len - 1] == ' ' || b->data[b->len - 1] == '\t'))
        b->len--;
}

/* Checks a logged span's printed text against the bytes at its offset
 * (when the text is printable as is), to validate md_unescape. */
static int span_text_ok(const char *eq, const char *eol, const char *raw, size_t off, size_t len)
{
    const char *q;

    if (strncmp(eq, "=lf", 3) == 0)
        return len == 1 && raw[off] == '\n';
    if (strncmp(eq, "=cr", 3) == 0)
        return len == 1 && raw[off] == '\r';
    if (eq[0] != '=' || eq[1] != '"')
        return 0;
    q = eol - 1;
    if (q <= eq + 1 || *q != '"')
        return 0;
    if (memchr(eq + 2, '\\', (size_t)(q - eq - 2)))
        return 1; /* escaped text: not compared */
    return (size_t)(q - eq - 2) == len && memcmp(eq + 2, raw + off, len) == 0;
}

/* Parses one log line into the expected outcome. */
static void log_line(outcome *e, const char *l, const char *eol, const char *raw, size_t rawlen,
                     gapi__buf *field, gapi__buf *value, int *bad_spans)
{
    char *end;
    size_t off, len;
    const char *kind;
    rec_msg *m;

    if (strncmp(l, "off=", 4) != 0)
        return;
    off = strtoul(l + 4, &end, 10);
    if (*end != ' ')
        return; /* off=NULL finish=... */
    l = end + 1;
    if (strncmp(l, "message begin", 13) == 0) {
        if (e->nmsg < MAXM)
            e->nmsg++;
        return;
    }
    if (e->nmsg == 0)
        return;
    m = cur(e);
    if (strncmp(l, "len=", 4) == 0) {
        len = strtoul(l + 4, &end, 10);
        kind = strstr(end, "span[");
        if (!kind || off + len > rawlen) {
            (*bad_spans)++;
            return;
        }
        kind += 5;
        if (!span_text_ok(strchr(kind, ']') + 1, eol, raw, off, len))
            (*bad_spans)++;
        if (strncmp(kind, "header_field]", 13) == 0)
            app(field, raw + off, len);
        else if (strncmp(kind, "header_value]", 13) == 0)
            app(value, raw + off, len);
        else if (strncmp(kind, "body]", 5) == 0)
            app(&m->body, raw + off, len);
    } else if (strncmp(l, "header_value complete", 21) == 0) {
        trim_trailing_ws(value);
        add_field(&m->headers, field->data, field->len, value->data, value->len);
        gapi__buf_reset(field);
        gapi__buf_reset(value);
    } else if (strncmp(l, "headers complete status=", 24) == 0) {
        m->headers_done = 1;
        m->status = atoi(l + 24);
        kind = strstr(l, " v=");
        m->minor = kind && strlen(kind) > 5 ? atoi(kind + 5) : -1;
    } else if (strncmp(l, "message complete", 16) == 0) {
        m->complete = 1;
    } else if (strncmp(l, "error code=", 11) == 0) {
        /* 5 is HPE_CLOSED_CONNECTION: data after a Connection: close
         * response, which our harness records as after_close. */
        if (atoi(l + 11) == 5 && m->complete)
            e->after_close = 1;
        else
            e->error = GAPI__HPE_INVALID_HEADER; /* any error */
    }
}

/* llhttp reports a 1xx as a message of its own; we skip it and tell
 * on_info, in the same parser run as the final response. */
static void fold_interim(outcome *e)
{
    gapi__buf pend = GAPI__BUF_INIT;
    int i, j = 0;
    char t[16];

    for (i = 0; i < e->nmsg; i++) {
        rec_msg *m = &e->m[i];
        if (m->headers_done && m->status >= 100 && m->status < 200 && m->status != 101) {
            snprintf(t, sizeof(t), "%d,", m->status);
            app(&pend, t, strlen(t));
            msg_free(m);
            continue;
        }
        if (pend.len) {
            app(&pend, m->infos.data, m->infos.len);
            gapi__buf_free(&m->infos);
            m->infos = pend;
            memset(&pend, 0, sizeof(pend));
        }
        if (j != i) {
            e->m[j] = *m;
            memset(m, 0, sizeof(*m));
        }
        j++;
    }
    if (pend.len && j < MAXM) {
        e->m[j++].infos = pend;
        memset(&pend, 0, sizeof(pend));
    }
    gapi__buf_free(&pend);
    e->nmsg = j;
}

static const divergence g_llhttp_div[] = {
    {"sample.md: RTSP response", GAPI__HPE_INVALID_VERSION, 0, -1,
     "only HTTP/1.0 and HTTP/1.1 are accepted (llhttp also takes RTSP and ICE)"},
    {"sample.md: ICE response", GAPI__HPE_INVALID_VERSION, 0, -1,
     "only HTTP/1.0 and HTTP/1.1 are accepted"},
    {"sample.md: HTTP version 0.9", GAPI__HPE_INVALID_VERSION, 0, -1,
     "only HTTP/1.0 and HTTP/1.1 are accepted (llhttp reports v=0/9)"},
    {"sample.md: No carriage ret (lenient)", GAPI__HPE_INVALID_STATUS, 0, -1,
     "bare LF is refused; we have no lenient mode"},
    {"connection.md: HTTP/1.1 with keep-alive disabled, content-length (lenient)", GAPI__HPE_OK, 1,
     0,
     "llhttp lenient mode discards bytes after Connection: close; we leave them "
     "unconsumed for the caller to drop with the connection"},
    {"connection.md: HTTP/1.1 with keep-alive disabled and 204 status (lenient)", GAPI__HPE_OK, 1,
     0, "bytes after Connection: close are never parsed as another response"},
    {"connection.md: HTTP 101 response with Upgrade and Content-Length header",
     GAPI__HPE_UNEXPECTED_101, 0, -1, "we never ask to upgrade, so 101 is an error"},
    {"connection.md: HTTP 101 response with Upgrade and Transfer-Encoding header",
     GAPI__HPE_UNEXPECTED_101, 0, -1, "we never ask to upgrade, so 101 is an error"},
    {"invalid.md: Bare CR after response line (lenient)", GAPI__HPE_INVALID_STATUS, 0, -1,
     "bare CR is refused; no lenient mode"},
    {"invalid.md: Only LFs present and no body (lenient)", GAPI__HPE_INVALID_STATUS, 0, -1,
     "bare LF is refused; no lenient mode"},
    {"invalid.md: Only LFs present (lenient)", GAPI__HPE_INVALID_STATUS, 0, -1,
     "bare LF is refused; no lenient mode"},
    {"lenient-version.md: Invalid HTTP version (lenient)", GAPI__HPE_INVALID_VERSION, 0, -1,
     "only HTTP/1.0 and HTTP/1.1; no lenient mode"},
    {"transfer-encoding.md: `chunked` before other transfer-encoding",
     GAPI__HPE_INVALID_TRANSFER_ENCODING, 0, -1,
     "chunked followed by another coding is refused (llhttp reads to EOF)"},
    {"transfer-encoding.md: multiple transfer-encoding where chunked is not the last one",
     GAPI__HPE_INVALID_TRANSFER_ENCODING, 0, -1,
     "chunked followed by another coding is refused (llhttp reads to EOF)"},
    {"transfer-encoding.md: Invalid OBS fold after chunked value", GAPI__HPE_INVALID_HEADER, 0, -1,
     "obs-fold is refused; no lenient mode"},
    {NULL, GAPI__HPE_OK, 0, 0, NULL}};

typedef struct md_case {
    char name[256];
    char type[64];
    int skip_body;
    gapi__buf http; /* block lines joined with CRLF, still escaped */
    gapi__buf log;
} md_case;

static void md_run(tally *t, md_case *c, int *bad_spans, int *requests)
{
    gapi__buf raw = GAPI__BUF_INIT, field = GAPI__BUF_INIT, value = GAPI__BUF_INIT;
    outcome e;
    run_opts ro = g_plain;
    const char *l, *eol, *end;
    unsigned what = CHK_MINOR | CHK_COMPLETE;

    if (strncmp(c->type, "response", 8) != 0) {
        (*requests)++;
        return;
    }
    md_unescape(c->http.data ? c->http.data : "", c->http.len, &raw);
    memset(&e, 0, sizeof(e));
    end = c->log.data ? c->log.data + c->log.len : NULL;
    for (l = c->log.data; l && l < end; l = eol + 1) {
        eol = memchr(l, '\n', (size_t)(end - l));
        if (!eol)
            eol = end;
        log_line(&e, l, eol, raw.data ? raw.data : "", raw.len, &field, &value, bad_spans);
    }
    fold_interim(&e);
    ro.head = c->skip_body; /* on_headers_complete returning 1 in llhttp */
    if (strcmp(c->type, "response-finish") == 0) {
        /* llhttp_finish() after an EOF-framed head: ours completes it. */
        ro.finish = 1;
        if (e.nmsg)
            e.m[e.nmsg - 1].complete = 1;
    }
    check_case(t, find_div(g_llhttp_div, c->name), &e, what, raw.data ? raw.data : "", raw.len, &ro,
               c->name);
    outcome_free(&e);
    gapi__buf_free(&raw);
    gapi__buf_free(&field);
    gapi__buf_free(&value);
}

static void md_file(tally *t, const char *file, int *bad_spans, int *requests)
{
    char rel[128];
    char *path, *text;
    size_t len = 0;
    const char *l, *eol, *end;
    enum { IDLE, WANT_HTTP, IN_HTTP, WANT_LOG, IN_LOG } st = IDLE;
    md_case c;
    char heading[200] = "";
    int first_line = 0;

    snprintf(rel, sizeof(rel), "http-response/llhttp/%s", file);
    path = tap_shared_path(rel);
    if (!path)
        return;
    text = slurp(path, &len);
    free(path);
    if (!ok(text != NULL, "read %s", rel))
        return;
    memset(&c, 0, sizeof(c));
    end = text + len;
    for (l = text; l < end; l = eol + 1) {
        size_t n;
        eol = memchr(l, '\n', (size_t)(end - l));
        if (!eol)
            eol = end;
        n = (size_t)(eol - l);
        if (st == IN_HTTP) {
            if (n == 3 && memcmp(l, "```", 3) == 0) {
                st = WANT_LOG;
            } else {
                if (!first_line)
                    app(&c.http, "\r\n", 2);
                first_line = 0;
                app(&c.http, l, n);
            }
        } else if (st == IN_LOG) {
            if (n == 3 && memcmp(l, "```", 3) == 0) {
                md_run(t, &c, bad_spans, requests);
                gapi__buf_free(&c.http);
                gapi__buf_free(&c.log);
                st = IDLE;
            } else {
                app(&c.log, l, n);
                app(&c.log, "\n", 1);
            }
        } else if (n && l[0] == '#') {
            while (n && (*l == '#' || *l == ' ')) {
                l++;
                n--;
            }
            snprintf(heading, sizeof(heading), "%.*s", (int)n, l);
        } else if (n > 10 && memcmp(l, "<!-- meta=", 10) == 0) {
            const char *close = strstr(l, "-->");
            char json[256];
            json_object *meta, *v;
            snprintf(json, sizeof(json), "%.*s", close ? (int)(close - l - 10) : 0, l + 10);
            meta = json_tokener_parse(json);
            snprintf(c.name, sizeof(c.name), "%s: %s", file, heading);
            c.type[0] = '\0';
            c.skip_body = 0;
            if (meta && json_object_object_get_ex(meta, "type", &v))
                snprintf(c.type, sizeof(c.type), "%s", json_object_get_string(v));
            if (meta && json_object_object_get_ex(meta, "skipBody", &v))
                c.skip_body = json_object_get_boolean(v);
            json_object_put(meta);
            st = WANT_HTTP;
        } else if (st == WANT_HTTP && n == 7 && memcmp(l, "```http", 7) == 0) {
            st = IN_HTTP;
            first_line = 1;
        } else if (st == WANT_LOG && n == 6 && memcmp(l, "```log", 6) == 0) {
            st = IN_LOG;
        }
    }
    gapi__buf_free(&c.http);
    gapi__buf_free(&c.log);
    free(text);
}

static void corpus_llhttp(void)
{
    static const char *const files[] = {"sample.md",  "connection.md", "content-length.md",
                                        "finish.md",  "invalid.md",    "lenient-version.md",
                                        "pausing.md", "pipelining.md", "transfer-encoding.md",
                                        NULL};
    tally t = {0, 0, 0, 0};
    int bad_spans = 0, requests = 0, i;
    const divergence *d;

    for (i = 0; files[i]; i++)
        md_file(&t, files[i], &bad_spans, &requests);
    if (t.cases == 0)
        return;
    is_int(bad_spans, 0,
           "llhttp: every logged span matches the bytes at its offset "
           "(markdown-to-bytes rule is right)");
    ok(t.cases >= 60, "llhttp: found %d response cases", t.cases);
    diag("llhttp corpus: %d response cases (%d request cases skipped), %d matched, "
         "%d diverged as listed, %d failed",
         t.cases, requests, t.matched, t.diverged, t.failed);
    for (d = g_llhttp_div, i = 0; d->name; d++)
        i++;
    is_int(t.diverged, i, "llhttp: every divergence-table entry was exercised");
}

/* ----------------------------------------------------------- http-parser */

static const divergence g_hp_div[] = {
    {"200 trailing space on chunked body", GAPI__HPE_INVALID_CHUNK, 0, -1,
     "whitespace after a chunk size without ';' is outside RFC 9112's grammar "
     "(llhttp refuses it too)"},
    {"no carriage ret", GAPI__HPE_INVALID_STATUS, 0, -1, "bare LF is refused"},
    {"proxy connection", GAPI__HPE_OK, 0, 1,
     "Proxy-Connection is not a standard header; only Connection decides keep-alive"},
    {"http version 0.9", GAPI__HPE_INVALID_VERSION, 0, -1,
     "only HTTP/1.0 and HTTP/1.1 are accepted"},
    {"HTTP 101 response with Upgrade header", GAPI__HPE_UNEXPECTED_101, 0, -1,
     "we never ask to upgrade"},
    {"HTTP 101 response with Upgrade and Content-Length header", GAPI__HPE_UNEXPECTED_101, 0, -1,
     "we never ask to upgrade"},
    {"HTTP 101 response with Upgrade and Transfer-Encoding header", GAPI__HPE_UNEXPECTED_101, 0, -1,
     "we never ask to upgrade"},
    {"HTTP 200 response with `chunked` being *not last* Transfer-Encoding",
     GAPI__HPE_INVALID_TRANSFER_ENCODING, 0, -1,
     "chunked followed by another coding is refused, not read to EOF"},
    {NULL, GAPI__HPE_OK, 0, 0, NULL}};

static int hp_expected(json_object *c, outcome *e, gapi__buf *raw)
{
    rec_msg *m = &e->m[0];
    json_object *hs, *v;
    size_t i;
    int eof = json_int(c, "message_complete_on_eof", 0) != 0;

    memset(e, 0, sizeof(*e));
    e->nmsg = 1;
    if (json_latin1(c, "raw", raw) || json_latin1(c, "body", &m->body) ||
        json_latin1(c, "response_status", &m->reason))
        return -1;
    m->headers_done = 1;
    m->status = json_int(c, "status_code", -1);
    m->minor = json_int(c, "http_minor", -1);
    m->keep_alive =
        json_object_object_get_ex(c, "should_keep_alive", &v) && json_object_get_boolean(v);
    m->content_length = json_int(c, "content_length", -1);
    m->complete = 1;
    if (!json_object_object_get_ex(c, "headers", &hs))
        return -1;
    for (i = 0; i < json_object_array_length(hs); i++) {
        json_object *pair = json_object_array_get_idx(hs, i);
        gapi__buf n = GAPI__BUF_INIT, val = GAPI__BUF_INIT;
        json_object *jn = json_object_array_get_idx(pair, 0),
                    *jv = json_object_array_get_idx(pair, 1);
        if (!jn || !jv ||
            latin1(json_object_get_string(jn), strlen(json_object_get_string(jn)), &n) ||
            latin1(json_object_get_string(jv), strlen(json_object_get_string(jv)), &val))
            return -1;
        /* http-parser keeps trailing whitespace in values; we trim it. */
        trim_trailing_ws(&val);
        add_field(&m->headers, n.data, n.len, val.data, val.len);
        gapi__buf_free(&n);
        gapi__buf_free(&val);
    }
    e->finished = eof;
    return 0;
}

static void corpus_http_parser(void)
{
    char *path = tap_shared_path("http-response/http-parser/responses.derived.json");
    json_object *arr;
    tally t = {0, 0, 0, 0};
    size_t i;
    int finish_ok = 0, finish_cases = 0;

    if (!path)
        return;
    arr = json_object_from_file(path);
    free(path);
    if (!ok(arr && json_object_is_type(arr, json_type_array), "http-parser: corpus parses"))
        return;
    for (i = 0; i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i), *nm;
        const char *name =
            json_object_object_get_ex(c, "name", &nm) ? json_object_get_string(nm) : "?";
        gapi__buf raw = GAPI__BUF_INIT;
        outcome e, o;
        run_opts ro = g_plain;
        char label[200];
        const divergence *d = find_div(g_hp_div, name);

        snprintf(label, sizeof(label), "http-parser: %s", name);
        if (!ok(hp_expected(c, &e, &raw) == 0, "%s: case decodes", label)) {
            outcome_free(&e);
            gapi__buf_free(&raw);
            continue;
        }
        /* Without finish(), only non-EOF messages complete; then finish()
         * completes the EOF-framed ones. */
        e.m[0].complete = !e.finished;
        check_case(&t, d, &e,
                   CHK_MINOR | CHK_KA | CHK_REASON | CHK_COMPLETE |
                       (e.m[0].content_length >= 0 ? CHK_CL : 0),
                   raw.data, raw.len, &ro, label);
        if (!d && e.finished) {
            ro.finish = 1;
            run(&o, raw.data, raw.len, 0, 1, &ro);
            finish_cases++;
            finish_ok += o.error == GAPI__HPE_OK && o.finished && o.m[0].complete &&
                         buf_eq(&o.m[0].body, &e.m[0].body);
            outcome_free(&o);
        }
        outcome_free(&e);
        gapi__buf_free(&raw);
    }
    is_int(finish_ok, finish_cases,
           "http-parser: finish() completes every "
           "message_complete_on_eof case with its body");
    diag("http-parser corpus: %d cases, %d matched, %d diverged as listed, %d failed", t.cases,
         t.matched, t.diverged, t.failed);
    json_object_put(arr);
}

/* -------------------------------------------------------- picohttpparser */

static const divergence g_pico_resp_div[] = {
    {"response_cases[3] parse multiline", GAPI__HPE_INVALID_HEADER, 0, -1,
     "obs-fold continuation lines (pico: headers[i].name == NULL) are refused"},
    {"response_cases[15] incomplete 11", GAPI__HPE_INVALID_STATUS, 0, -1,
     "bare LF ends no line here: refused at once (pico waits for more)"},
    {"response_cases[28] accept multiple spaces between tokens", GAPI__HPE_INVALID_STATUS, 0, -1,
     "exactly one SP between version, status and reason (RFC 9112 section 4)"},
    {"chunked_cases[21]", GAPI__HPE_INVALID_HEADER, 0, -1,
     "bare LF ending the trailer section is refused"},
    {"chunked_cases[22]", GAPI__HPE_INVALID_HEADER, 0, -1, "bare LF in trailer lines is refused"},
    {NULL, GAPI__HPE_OK, 0, 0, NULL}};

/* Reads a C string literal at s (after the opening quote) into out. */
static const char *c_literal(const char *s, gapi__buf *out)
{
    char c;

    for (; *s && *s != '"'; s++) {
        c = *s;
        if (c == '\\' && s[1]) {
            s++;
            c = *s == 't' ? '\t' : *s == 'r' ? '\r' : *s == 'n' ? '\n' : *s;
        }
        app(out, &c, 1);
    }
    return *s == '"' ? s + 1 : NULL;
}

/* The i-th recorded field: name (which = 0) or value (1). */
static int field_at(const gapi__buf *b, int i, int which, const char **p, size_t *n)
{
    const char *s = b->data, *end = b->data + b->len, *sep, *stop;

    while (s && s < end) {
        sep = memchr(s, '\x01', (size_t)(end - s));
        stop = sep ? memchr(sep, '\x02', (size_t)(end - sep)) : NULL;
        if (!stop)
            return 0;
        if (i-- == 0) {
            *p = which ? sep + 1 : s;
            *n = which ? (size_t)(stop - sep - 1) : (size_t)(sep - s);
            return 1;
        }
        s = stop + 1;
    }
    return 0;
}

/* Translates one of pico's C assertions to our recording. Returns 1 (holds),
 * 0 (fails), -1 (says something about pico's partial state that our parser
 * does not expose: not translatable). */
static int pico_check(const char *chk, const rec_msg *m)
{
    int k, i;
    gapi__buf lit = GAPI__BUF_INIT;
    const char *p;
    size_t n;
    int r = -1;
    char which[8];

    if (sscanf(chk, "num_headers == %d", &k) == 1)
        return m->nhdr == k;
    if (sscanf(chk, "status == %d", &k) == 1)
        return k == 0 ? !m->status_seen : m->status_seen ? m->status == k : -1;
    if (sscanf(chk, "minor_version == %d", &k) == 1)
        return k == -1 ? !m->status_seen : m->status_seen ? m->minor == k : -1;
    if (strcmp(chk, "msg == NULL") == 0)
        return !m->status_seen;
    if (strncmp(chk, "bufis(msg, msg_len, \"", 21) == 0 && c_literal(chk + 21, &lit))
        r = m->status_seen && buf_eq(&m->reason, &lit);
    else if (strncmp(chk, "msg_len == sizeof(\"", 19) == 0 && c_literal(chk + 19, &lit))
        r = m->status_seen && m->reason.len == lit.len;
    else if (sscanf(chk, "bufis(headers[%d].%7[a-z]", &i, which) == 2 && (p = strchr(chk, '"')) &&
             c_literal(p + 1, &lit))
        r = field_at(&m->headers, i, strcmp(which, "value") == 0, &p, &n) && n == lit.len &&
            memcmp(p, lit.data ? lit.data : "", n) == 0;
    gapi__buf_free(&lit);
    return r;
}

static void pico_responses(json_object *arr, tally *t, int *translated, int *untranslatable)
{
    size_t i, j;

    for (i = 0; i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i), *v, *checks;
        gapi__buf raw = GAPI__BUF_INIT;
        outcome e, o;
        char label[160];
        int want = json_int(c, "expected_return", 0);
        const divergence *d;

        snprintf(label, sizeof(label), "response_cases[%zu] %s", i,
                 json_object_object_get_ex(c, "comment", &v) ? json_object_get_string(v) : "");
        d = find_div(g_pico_resp_div, label);
        if (json_latin1(c, "input_latin1", &raw) != 0) {
            ok(0, "pico %s: decodes", label);
            continue;
        }
        /* phr_parse_response parses the head only: >= 0 means the head is
         * complete, -2 that more bytes are needed, -1 an error. */
        memset(&e, 0, sizeof(e));
        e.nmsg = 1;
        e.error = want == -1 ? GAPI__HPE_INVALID_HEADER : GAPI__HPE_OK;
        check_case(t, d, &e, CHK_ERROR_ONLY, raw.data, raw.len, &g_plain, label);
        run(&o, raw.data, raw.len, 0, raw.len, &g_plain);
        if (!d && want != -1)
            ok(o.m[0].headers_done == (want >= 0), "pico %s: head %s", label,
               want >= 0 ? "complete" : "incomplete, no error");
        if (!d && json_object_object_get_ex(c, "c_checks", &checks)) {
            for (j = 0; j < json_object_array_length(checks); j++) {
                const char *chk = json_object_get_string(json_object_array_get_idx(checks, j));
                int r = pico_check(chk, &o.m[0]);
                if (r < 0) {
                    (*untranslatable)++;
                    continue;
                }
                (*translated)++;
                ok(r == 1, "pico %s: %s", label, chk);
            }
        }
        outcome_free(&o);
        outcome_free(&e);
        gapi__buf_free(&raw);
    }
}

static void pico_chunked(json_object *arr, tally *t)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    size_t i;

    for (i = 0; i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i), *v;
        gapi__buf raw = GAPI__BUF_INIT;
        outcome e;
        rec_msg *m;
        char label[64];
        int want = json_int(c, "expected_return", 0);
        int consume =
            json_object_object_get_ex(c, "consume_trailer", &v) && json_object_get_boolean(v);

        snprintf(label, sizeof(label), "chunked_cases[%zu]", i);
        app(&raw, head, sizeof(head) - 1);
        memset(&e, 0, sizeof(e));
        e.nmsg = 1;
        m = &e.m[0];
        if (json_latin1(c, "encoded_latin1", &raw) != 0) {
            ok(0, "pico %s: decodes", label);
            gapi__buf_free(&raw);
            continue;
        }
        if (json_object_object_get_ex(c, "decoded", &v) && !json_object_is_type(v, json_type_null))
            json_latin1(c, "decoded", &m->body);
        m->headers_done = 1;
        m->status = 200;
        app(&m->headers,
            "Transfer-Encoding\x01"
            "chunked\x02",
            26);
        /* pico's decoder stops after the last chunk unless asked to consume
         * the trailer; ours always reads trailers to the empty line, so
         * bytes pico leaves over are our trailer section. */
        if (want == -1)
            e.error = GAPI__HPE_INVALID_CHUNK;
        else if (want == -2 || (want == 0 && !consume))
            m->complete = 0;
        else
            m->complete = 1;
        /* The one failure case pico calls incomplete (a 2^64-1 byte chunk):
         * pico holds the chunk's data back; ours streams it. */
        if (want == -2 && m->body.len == 0)
            app(&m->body, S("hello abcdefg"));
        /* one message: pico's last case leaves a request after the body */
        check_case(t, find_div(g_pico_resp_div, label), &e, CHK_COMPLETE, raw.data, raw.len, &g_one,
                   label);
        if (want > 0 && !find_div(g_pico_resp_div, label)) {
            outcome o;
            run(&o, raw.data, raw.len, 0, raw.len, &g_one);
            if (consume)
                ok(o.leftover == (size_t)want,
                   "pico %s: the %d bytes after the message are "
                   "left unconsumed",
                   label, want);
            else
                ok(o.m[0].complete && o.leftover == 0 && o.m[0].ntrl == 2,
                   "pico %s: the %d bytes pico leaves are our trailer section", label, want);
            outcome_free(&o);
        }
        outcome_free(&e);
        gapi__buf_free(&raw);
    }
}

static void corpus_pico(void)
{
    char *path = tap_shared_path("http-response/picohttpparser/cases.derived.json");
    json_object *root, *arr;
    tally t = {0, 0, 0, 0};
    int translated = 0, untranslatable = 0;
    const divergence *d;
    int ndiv = 0;

    if (!path)
        return;
    root = json_object_from_file(path);
    free(path);
    if (!ok(root != NULL, "pico: corpus parses"))
        return;
    if (ok(json_object_object_get_ex(root, "response_cases", &arr), "pico: response_cases"))
        pico_responses(arr, &t, &translated, &untranslatable);
    if (ok(json_object_object_get_ex(root, "chunked_cases", &arr), "pico: chunked_cases"))
        pico_chunked(arr, &t);
    for (d = g_pico_resp_div; d->name; d++)
        ndiv++;
    is_int(t.diverged, ndiv, "pico: every divergence-table entry was exercised");
    diag("picohttpparser corpus: %d cases, %d matched, %d diverged as listed, %d failed; "
         "%d c_checks translated, %d not translatable (pico's partial-line state)",
         t.cases, t.matched, t.diverged, t.failed, translated, untranslatable);
    json_object_put(root);
}

/* ---------------------------------------------------------- hand-written */

/* Runs resp both ways; checks the error code and, if given, its reason. */
static void expect_error(const char *resp, size_t len, const run_opts *ro, gapi__hpe want,
                         const char *reason, const char *label)
{
    outcome o;

    run_both(&o, resp, len, ro, label);
    is_int(o.error, want, "%s: %s", label, gapi__hpe_name(want));
    if (o.error != want)
        diag("  got %s \"%s\"", gapi__hpe_name(o.error), o.reason);
    if (reason)
        is_str(o.reason, reason, "%s: reason", label);
    outcome_free(&o);
}

static void test_limits(void)
{
    run_opts ro = g_plain;
    outcome o;
    char *big;
    size_t n;
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"; /* 38 */

    ro.max_header = 38;
    run_both(&o, S(head), &ro, "head of exactly max_header_bytes");
    ok(o.error == GAPI__HPE_OK && o.m[0].complete, "head of exactly max_header_bytes: accepted");
    outcome_free(&o);
    ro.max_header = 37;
    expect_error(S(head), &ro, GAPI__HPE_HEADER_TOO_LARGE, "headers exceed max_header_bytes",
                 "head one byte over max_header_bytes");
    ro.max_header = 16;
    expect_error(S(head), &ro, GAPI__HPE_HEADER_TOO_LARGE, NULL,
                 "status line alone over max_header_bytes");

    /* A 20 KiB header under a 64 KiB budget: over the per-line cap. */
    n = 20000;
    big = malloc(n + 64);
    if (!big)
        abort();
    memcpy(big, "HTTP/1.1 200 OK\r\nX-Big: ", 24);
    memset(big + 24, 'a', n);
    memcpy(big + 24 + n, "\r\n\r\n", 4);
    expect_error(big, 24 + n + 4, &g_plain, GAPI__HPE_HEADER_TOO_LARGE,
                 "header line longer than the line buffer", "one 20 KB header line");
    /* Many small lines over the default 64 KiB. */
    free(big);
    n = 70000;
    big = malloc(n + 64);
    if (!big)
        abort();
    memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
    {
        size_t i;
        for (i = 17; i + 10 <= 17 + n; i += 10)
            memcpy(big + i, "X-A: bbb\r\n", 10);
        memcpy(big + i, "\r\n", 2);
        expect_error(big, i + 2, &g_plain, GAPI__HPE_HEADER_TOO_LARGE,
                     "headers exceed max_header_bytes", "7000 headers over 64 KiB");
    }
    free(big);

    /* Trailers have their own budget: a 60-byte head and 60 bytes of
     * trailers both fit a 64-byte limit. */
    ro.max_header = 64;
    {
        static const char r[] =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            "1\r\nx\r\n0\r\nT1: aaaaaaaaaaaaaaaaaaaa\r\nT2: bbbbbbbbbbbbbbbbbbb\r\n\r\n";
        run_both(&o, S(r), &ro, "trailers budget");
        ok(o.error == GAPI__HPE_OK && o.m[0].complete && o.m[0].ntrl == 2,
           "trailers counted separately from the head");
        outcome_free(&o);
    }
    {
        static const char r[] =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            "0\r\nT1: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        expect_error(S(r), &ro, GAPI__HPE_HEADER_TOO_LARGE, "trailers exceed max_header_bytes",
                     "trailers over max_header_bytes");
    }
    {
        /* chunk-size lines have a fixed cap (extensions) */
        gapi__buf b = GAPI__BUF_INIT;
        size_t i;
        app(&b, S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1"));
        for (i = 0; i < 1000; i++)
            app(&b, S(";abcdefghi"));
        app(&b, S("\r\nx\r\n0\r\n\r\n"));
        expect_error(b.data, b.len, &g_plain, GAPI__HPE_INVALID_CHUNK, "chunk size line too long",
                     "10 KB of chunk extensions");
        gapi__buf_free(&b);
    }
}

static void test_framing_errors(void)
{
    expect_error(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
                 &g_plain, GAPI__HPE_INVALID_TRANSFER_ENCODING,
                 "both Transfer-Encoding and Content-Length", "TE then CL");
    expect_error(S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
                 &g_plain, GAPI__HPE_INVALID_TRANSFER_ENCODING, NULL, "CL then TE");
    expect_error(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_TRANSFER_ENCODING, "chunked is not the final transfer coding",
                 "chunked not last");
    expect_error(
        S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
        &g_plain, GAPI__HPE_INVALID_TRANSFER_ENCODING, NULL, "chunked twice");
    expect_error(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip;q=1\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_TRANSFER_ENCODING, NULL, "TE with parameters");
    expect_error(S("HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_TRANSFER_ENCODING, "Transfer-Encoding is empty", "empty TE");

    expect_error(S("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_CONTENT_LENGTH, "Content-Length has non-digit characters",
                 "negative Content-Length");
    expect_error(S("HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_CONTENT_LENGTH, NULL, "Content-Length with +");
    expect_error(S("HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_CONTENT_LENGTH, NULL, "Content-Length with inner space");
    expect_error(S("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_CONTENT_LENGTH, NULL, "hex Content-Length");
    expect_error(S("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_CONTENT_LENGTH, "Content-Length has an empty value",
                 "empty Content-Length");
    expect_error(S("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_CONTENT_LENGTH, "Content-Length overflows",
                 "Content-Length 2^63");
    expect_error(S("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_CONTENT_LENGTH, "Content-Length overflows",
                 "huge Content-Length");
    expect_error(S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_CONTENT_LENGTH, "Content-Length headers disagree",
                 "disagreeing Content-Length headers");
    expect_error(S("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_CONTENT_LENGTH, "Content-Length list has differing values",
                 "disagreeing Content-Length list");
    expect_error(S("HTTP/1.1 200 OK\r\nContent-Length: 5,\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_CONTENT_LENGTH, NULL, "Content-Length list with empty element");
}

static void test_content_length_ok(void)
{
    outcome o;

    run_both(&o, S("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
             &g_plain, "identical duplicate Content-Length");
    ok(o.error == GAPI__HPE_OK && o.m[0].complete && buf_is(&o.m[0].body, S("abc")),
       "identical duplicate Content-Length accepted");
    outcome_free(&o);
    run_both(&o, S("HTTP/1.1 200 OK\r\nContent-Length: 3 , 3,3\r\n\r\nabc"), &g_plain,
             "identical Content-Length list");
    ok(o.error == GAPI__HPE_OK && o.m[0].complete && o.m[0].content_length == 3,
       "identical Content-Length list accepted");
    outcome_free(&o);
    run_both(&o, S("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\nab"), &g_plain,
             "Content-Length 2^63-1");
    ok(o.error == GAPI__HPE_OK && !o.m[0].complete && o.m[0].content_length == INT64_MAX &&
           o.m[0].framing == GAPI__HTTP_FRAMING_LENGTH,
       "Content-Length 2^63-1 accepted");
    outcome_free(&o);
}

static void test_chunks(void)
{
    static const char *const bad[] = {
        "zz",   "",     " 1",      "-1",    "0x10", "1 ",           "1;",
        "1;=x", "1;a=", "1;a=\"x", "1;a b", "1 x",  "1;a=\"\x01\"", "10000000000000000",
        NULL};
    static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    outcome o;
    int i;
    char label[64];

    for (i = 0; bad[i]; i++) {
        gapi__buf b = GAPI__BUF_INIT;
        app(&b, S(head));
        app(&b, bad[i], strlen(bad[i]));
        app(&b, S("\r\nx\r\n0\r\n\r\n"));
        snprintf(label, sizeof(label), "chunk size line \"%s\"", bad[i]);
        expect_error(b.data, b.len, &g_plain, GAPI__HPE_INVALID_CHUNK, NULL, label);
        gapi__buf_free(&b);
    }
    expect_error(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), &g_plain,
                 GAPI__HPE_INVALID_CHUNK, "chunk size is not hexadecimal", "chunk size reason");
    expect_error(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n"),
                 &g_plain, GAPI__HPE_INVALID_CHUNK, "chunk size does not fit in 64 bits",
                 "chunk size overflow reason");
    expect_error(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n"), &g_plain,
                 GAPI__HPE_INVALID_CHUNK, "chunk data not followed by CRLF", "chunk too long");
    expect_error(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\n0\r\n\r\n"),
                 &g_plain, GAPI__HPE_INVALID_CHUNK, NULL, "chunk data then bare LF");
    expect_error(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\n"), &g_plain,
                 GAPI__HPE_INVALID_CHUNK, "chunk size line ends in LF without CR",
                 "chunk size line with bare LF");

    run_both(&o,
             S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               "00000000000000000003 ; a = b ;c=\"q\\\"; d\"\r\nabc\r\n"
               "A\r\n0123456789\r\n0;last\r\nX-Trailer: t1\r\nX-Other:  t2 \r\n\r\nEXTRA"),
             &g_one, "chunked with extensions and trailers");
    ok(o.error == GAPI__HPE_OK && o.m[0].complete && o.leftover == 5,
       "chunked message complete, extra bytes left");
    ok(buf_is(&o.m[0].body, S("abc0123456789")), "chunked body de-chunked");
    ok(buf_is(&o.m[0].trailers, S("X-Trailer\x01t1\x02X-Other\x01t2\x02")),
       "trailers delivered through on_trailer, values trimmed");
    ok(o.m[0].framing == GAPI__HTTP_FRAMING_CHUNKED && o.m[0].keep_alive == 1,
       "chunked framing, keep-alive");
    outcome_free(&o);

    run_both(&o, S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc"),
             &g_plain, "largest chunk size");
    ok(o.error == GAPI__HPE_OK && !o.m[0].complete && buf_is(&o.m[0].body, S("abc")),
       "chunk size 2^64-1 accepted, body streams");
    outcome_free(&o);

    expect_error(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n Bad: fold\r\n\r\n"),
                 &g_plain, GAPI__HPE_INVALID_HEADER, "obsolete line folding",
                 "whitespace-led trailer line");
    expect_error(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad : x\r\n\r\n"),
                 &g_plain, GAPI__HPE_INVALID_HEADER, NULL, "space before colon in trailer");
}

static void test_transfer_codings(void)
{
    outcome o;

    run_both(&o, S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz"), &g_plain,
             "TE gzip only");
    ok(o.error == GAPI__HPE_OK && o.m[0].framing == GAPI__HTTP_FRAMING_EOF && !o.m[0].keep_alive &&
           buf_is(&o.m[0].body, S("xyz")),
       "TE without chunked: read until close, not reusable");
    outcome_free(&o);
    run_both(&o,
             S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n1\r\nz\r\n0\r\n\r\n"),
             &g_plain, "TE gzip, chunked");
    ok(o.error == GAPI__HPE_OK && o.m[0].complete && o.m[0].framing == GAPI__HTTP_FRAMING_CHUNKED,
       "gzip, chunked (case-insensitive): chunked framing");
    outcome_free(&o);
    run_both(&o,
             S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: ,chunked\r\n"
               "\r\n0\r\n\r\n"),
             &g_plain, "TE over two fields");
    ok(o.error == GAPI__HPE_OK && o.m[0].complete, "TE list split over two fields, empty element");
    outcome_free(&o);
    run_both(&o,
             S("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n"
               "\r\n0\r\n\r\n"),
             &g_plain, "TE in HTTP/1.0");
    ok(o.error == GAPI__HPE_OK && o.m[0].complete && !o.m[0].keep_alive,
       "HTTP/1.0 with TE: parsed, connection not reused");
    outcome_free(&o);
}

static void test_status_lines(void)
{
    static const struct {
        const char *resp;
        gapi__hpe err;
        const char *reason;
    } cases[] = {
        {"HTTP/2.0 200 OK\r\n\r\n", GAPI__HPE_INVALID_VERSION, "HTTP version is not 1.0 or 1.1"},
        {"HTTP/1.2 200 OK\r\n\r\n", GAPI__HPE_INVALID_VERSION, "HTTP version is not 1.0 or 1.1"},
        {"RTSP/1.0 200 OK\r\n\r\n", GAPI__HPE_INVALID_VERSION,
         "status line does not start with HTTP/"},
        {"http/1.1 200 OK\r\n\r\n", GAPI__HPE_INVALID_VERSION, NULL},
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", GAPI__HPE_INVALID_VERSION, NULL},
        {"HTTP/1.1\t200 OK\r\n\r\n", GAPI__HPE_INVALID_VERSION, "no space after the HTTP version"},
        {"HTTP/1.1\r\n\r\n", GAPI__HPE_INVALID_STATUS, "status code is not 3 digits"},
        {"HTTP/1\r\n\r\n", GAPI__HPE_INVALID_VERSION, "status line ends inside the HTTP version"},
        {"HTTP/1.1 20 OK\r\n\r\n", GAPI__HPE_INVALID_STATUS, "status code is not 3 digits"},
        {"HTTP/1.1 2000 OK\r\n\r\n", GAPI__HPE_INVALID_STATUS, NULL},
        {"HTTP/1.1 099 OK\r\n\r\n", GAPI__HPE_INVALID_STATUS, "status code below 100"},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", GAPI__HPE_INVALID_STATUS,
         "reason phrase has a control character"},
        {"HTTP/1.1 200 OK\n\r\n", GAPI__HPE_INVALID_STATUS, "status line ends in LF without CR"},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", GAPI__HPE_UNEXPECTED_101,
         "101 Switching Protocols was not requested"},
        {NULL, GAPI__HPE_OK, NULL}};
    int i;
    outcome o;
    char label[96];

    for (i = 0; cases[i].resp; i++) {
        snprintf(label, sizeof(label), "status line %d", i);
        expect_error(cases[i].resp, strlen(cases[i].resp), &g_plain, cases[i].err, cases[i].reason,
                     label);
    }
    run_both(&o, S("\r\n\r\nHTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), &g_plain,
             "leading CRLFs, no reason");
    ok(o.error == GAPI__HPE_OK && o.m[0].complete && o.m[0].status == 200 && o.m[0].reason.len == 0,
       "empty lines before the status line are skipped; reason optional");
    outcome_free(&o);
    run_both(&o, S("HTTP/1.0 599 \xc3\xa9trange\r\n\r\n"), &g_plain, "obs-text reason");
    ok(o.error == GAPI__HPE_OK && o.m[0].status == 599 && o.m[0].minor == 0 &&
           buf_is(&o.m[0].reason, S("\xc3\xa9trange")),
       "obs-text in the reason phrase kept");
    outcome_free(&o);
}

static void test_fields(void)
{
    static const struct {
        const char *field;
        size_t len;
        const char *reason;
    } bad[] = {{S("X: a\0b"), "header value contains NUL"},
               {S("X: a\rb"), "header value contains a bare CR"},
               {S("X: a\x7f"), "header value has a control character"},
               {S("X: a\x1b"), "header value has a control character"},
               {S("X : a"), "whitespace between header name and colon"},
               {S("X\t: a"), "whitespace between header name and colon"},
               {S(" X: a"), "obsolete line folding"},
               {S("X a"), "header line has no colon"},
               {S("X"), "header line has no colon"},
               {S(": a"), "empty header name"},
               {S("X\"Y: a"), "invalid character in header name"},
               {S("X@: a"), "invalid character in header name"},
               {NULL, 0, NULL}};
    int i;
    outcome o;
    char label[96];

    for (i = 0; bad[i].field; i++) {
        gapi__buf b = GAPI__BUF_INIT;
        app(&b, S("HTTP/1.1 200 OK\r\nA: 1\r\n"));
        app(&b, bad[i].field, bad[i].len);
        app(&b, S("\r\nContent-Length: 0\r\n\r\n"));
        snprintf(label, sizeof(label), "field line %d (%s)", i, bad[i].reason);
        expect_error(b.data, b.len, &g_plain, GAPI__HPE_INVALID_HEADER, bad[i].reason, label);
        gapi__buf_free(&b);
    }
    expect_error(S("HTTP/1.1 200 OK\r\nA: 1\r\n  folded\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_HEADER, "obsolete line folding", "obs-fold");
    expect_error(S("HTTP/1.1 200 OK\r\nA: 1\n\r\n"), &g_plain, GAPI__HPE_INVALID_HEADER,
                 "header line ends in LF without CR", "bare LF after a field");
    expect_error(S("HTTP/1.1 200 OK\r\nA: 1\r\n\n"), &g_plain, GAPI__HPE_INVALID_HEADER,
                 "header line ends in LF without CR", "bare LF ending the head");
    /* refused as soon as the folded line starts, before its end arrives */
    expect_error(S("HTTP/1.1 200 OK\r\nA: 1\r\n "), &g_plain, GAPI__HPE_INVALID_HEADER,
                 "obsolete line folding", "obs-fold refused early");

    run_both(&o,
             S("HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Tab:\t\tv \t w\t \r\nX-Obs: \x80\xff\r\n"
               "Content-Length: 0\r\n\r\n"),
             &g_plain, "field values");
    ok(o.error == GAPI__HPE_OK &&
           buf_is(&o.m[0].headers, S("X-Empty\x01\x02X-Tab\x01v \t w\x02X-Obs\x01\x80\xff\x02"
                                     "Content-Length\x01"
                                     "0\x02")),
       "values trimmed, inner whitespace and obs-text kept, empty value allowed");
    outcome_free(&o);
}

/* Every byte value at every position of a long value: the word-at-a-time
 * value check must agree with the byte-wise rule. */
static void test_value_bytes(void)
{
    static const gapi__http_callbacks none = {NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    gapi__http_parser p;
    char resp[128];
    size_t pos, len;
    int c, wrong = 0, allowed;

    for (c = 0; c < 256; c++) {
        for (pos = 0; pos < 41; pos++) {
            len = (size_t)snprintf(resp, sizeof(resp),
                                   "HTTP/1.1 200 OK\r\nX: "
                                   "a%-40s\r\nContent-Length: 0\r\n\r\n",
                                   "b");
            resp[20 + pos] = (char)c;
            /* \n ends the line early; CR before it too: covered elsewhere */
            if (c == '\n')
                continue;
            allowed = c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f);
            gapi__http_parser_init(&p, &none, NULL, 0, 0);
            gapi__http_parser_execute(&p, resp, len);
            wrong += allowed != (p.error == GAPI__HPE_OK && p.complete);
        }
    }
    is_int(wrong, 0,
           "each byte value at each of 41 value positions accepted or refused "
           "as RFC 9110 field-vchar says");
}

static void test_interim(void)
{
    outcome o;

    run_both(&o,
             S("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
             &g_plain, "100 and 103 before 200");
    ok(o.error == GAPI__HPE_OK && o.nmsg == 1 && o.m[0].complete && o.m[0].status == 200,
       "1xx skipped, final 200 parsed in the same run");
    ok(buf_is(&o.m[0].infos, S("100,103,")), "on_info told of 100 and 103 in order");
    ok(buf_is(&o.m[0].headers, S("Content-Length\x01"
                                 "2\x02")),
       "1xx fields are not delivered as headers");
    ok(buf_is(&o.m[0].body, S("hi")), "final body");
    outcome_free(&o);

    run_both(&o,
             S("HTTP/1.1 102 Processing\r\nContent-Length: 9\r\nTransfer-Encoding: x\r\n\r\n"
               "HTTP/1.1 204 No Content\r\n\r\n"),
             &g_plain, "framing fields in 1xx");
    ok(o.error == GAPI__HPE_OK && o.m[0].complete && o.m[0].status == 204 &&
           o.m[0].content_length == -1,
       "framing fields of a 1xx are ignored");
    outcome_free(&o);

    expect_error(S("HTTP/1.1 100 Continue\r\nBad Field: x\r\n\r\n"), &g_plain,
                 GAPI__HPE_INVALID_HEADER, NULL, "1xx fields are still checked");
}

static void test_no_body(void)
{
    run_opts head = g_plain;
    outcome o;

    head.head = 1;
    run_both(&o, S("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 200 OK\r\n"), &head,
             "HEAD with Content-Length");
    ok(o.error == GAPI__HPE_OK && o.m[0].complete && o.m[0].framing == GAPI__HTTP_FRAMING_NONE &&
           o.m[0].content_length == 1000 && o.m[0].body.len == 0,
       "HEAD: complete at the end of the head, content_length reported");
    outcome_free(&o);
    run_both(&o, S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), &head,
             "HEAD with chunked");
    ok(o.error == GAPI__HPE_OK && o.m[0].complete, "HEAD with chunked: no body");
    outcome_free(&o);
    run_both(&o, S("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\n"),
             &g_plain, "204 with Content-Length");
    ok(o.error == GAPI__HPE_OK && o.nmsg == 2 && o.m[0].complete &&
           o.m[0].framing == GAPI__HTTP_FRAMING_NONE && o.m[1].status_seen,
       "204: no body whatever Content-Length says; next response follows");
    outcome_free(&o);
    run_both(&o, S("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"), &g_plain,
             "304 with chunked");
    ok(o.error == GAPI__HPE_OK && o.m[0].complete && o.m[0].keep_alive, "304: no body");
    outcome_free(&o);
    expect_error(S("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n"
                   "Content-Length: 1\r\n\r\n"),
                 &g_plain, GAPI__HPE_INVALID_TRANSFER_ENCODING, NULL, "304 with TE and CL");
}

static void test_eof(void)
{
    run_opts fin = g_plain;
    outcome o;
    gapi__http_parser p;
    static const gapi__http_callbacks none = {NULL, NULL, NULL, NULL, NULL, NULL, NULL};

    fin.finish = 1;
    run_both(&o, S("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nuntil close"), &fin,
             "read until close");
    ok(o.error == GAPI__HPE_OK && o.finished && o.m[0].complete && !o.m[0].keep_alive &&
           o.m[0].framing == GAPI__HTTP_FRAMING_EOF && buf_is(&o.m[0].body, S("until close")),
       "read-until-close body completed by finish(), not reusable");
    outcome_free(&o);
    expect_error(S("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"), &fin,
                 GAPI__HPE_UNEXPECTED_EOF, "connection closed inside the body",
                 "truncated Content-Length body");
    expect_error(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"), &fin,
                 GAPI__HPE_UNEXPECTED_EOF, "connection closed inside the body",
                 "truncated chunked body");
    expect_error(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 1\r\n"), &fin,
                 GAPI__HPE_UNEXPECTED_EOF, NULL, "truncated trailers");
    expect_error(S("HTTP/1.1 200 OK\r\nContent-"), &fin, GAPI__HPE_UNEXPECTED_EOF,
                 "connection closed inside the response head", "truncated head");

    gapi__http_parser_init(&p, &none, NULL, 0, 0);
    ok(!gapi__http_parser_started(&p), "not started before any byte");
    is_int(gapi__http_parser_finish(&p), GAPI__HPE_UNEXPECTED_EOF, "finish() before any byte");
    is_str(p.error_reason, "connection closed before the status line", "finish() reason");
    is_int(gapi__http_parser_finish(&p), GAPI__HPE_UNEXPECTED_EOF, "finish() again: sticky");
    gapi__http_parser_init(&p, &none, NULL, 0, 0);
    is_int(gapi__http_parser_execute(&p, "H", 1), 1, "one byte consumed");
    ok(gapi__http_parser_started(&p), "started after one byte");
    gapi__http_parser_init(&p, &none, NULL, 0, 0);
    is_int(gapi__http_parser_execute(&p, S("HTTP/1.1 204 No Content\r\n\r\n")), 27,
           "NULL callbacks are allowed");
    is_int(gapi__http_parser_finish(&p), GAPI__HPE_OK, "finish() after a complete message");
}

static void test_keep_alive(void)
{
    static const struct {
        const char *resp;
        int ka;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1},
        {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 0},
        {"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n", 0},
        {"HTTP/1.1 200 OK\r\nConnection: upgrade,  close \r\nContent-Length: 0\r\n\r\n", 0},
        {"HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n", 1},
        {"HTTP/1.1 200 OK\r\nProxy-Connection: close\r\nContent-Length: 0\r\n\r\n", 1},
        {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0},
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 1},
        {"HTTP/1.0 200 OK\r\nConnection: x, KEEP-ALIVE\r\nContent-Length: 0\r\n\r\n", 1},
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n", 0},
        {"HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n", 1},
        {"HTTP/1.1 200 OK\r\n\r\n", 0},
        {NULL, 0}};
    int i;
    outcome o;
    char label[64];

    for (i = 0; cases[i].resp; i++) {
        snprintf(label, sizeof(label), "keep-alive case %d", i);
        run_both(&o, cases[i].resp, strlen(cases[i].resp), &g_plain, label);
        ok(o.error == GAPI__HPE_OK && o.m[0].headers_done && o.m[0].keep_alive == cases[i].ka,
           "%s: keep_alive == %d", label, cases[i].ka);
        outcome_free(&o);
    }
}

static void test_boundaries(void)
{
    static const char two[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 201 C\r\n"
                              "Content-Length: 0\r\n\r\n";
    static const gapi__http_callbacks none = {NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    gapi__http_parser p;
    outcome o;

    gapi__http_parser_init(&p, &none, NULL, 0, 0);
    is_int(gapi__http_parser_execute(&p, S(two)), 41, "execute() stops at the end of a message");
    ok(p.complete, "message complete");
    is_int(gapi__http_parser_execute(&p, "x", 1), 0, "nothing consumed after completion");
    run_both(&o, S(two), &g_plain, "pipelined responses");
    ok(o.error == GAPI__HPE_OK && o.nmsg == 2 && o.m[1].status == 201 && o.m[1].complete,
       "bytes after a message belong to the next one");
    outcome_free(&o);
    run_both(&o, S("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nxJUNK"),
             &g_plain, "bytes after a closing response");
    ok(o.error == GAPI__HPE_OK && o.after_close && o.leftover == 4,
       "bytes after a Connection: close response are left unconsumed");
    outcome_free(&o);

    gapi__http_parser_init(&p, &none, NULL, 0, 0);
    is_int(gapi__http_parser_execute(&p, S("HTTP/1.1 200 OK\r\nA: \x01\r\n\r\n")), 23,
           "error: return value is where it was found (end of the bad line)");
    is_int(p.error, GAPI__HPE_INVALID_HEADER, "error set");
    is_int(gapi__http_parser_execute(&p, "x", 1), 0, "nothing consumed after an error");
    is_str(gapi__hpe_name(p.error), "INVALID_HEADER", "gapi__hpe_name");
}

static void test_callbacks_fail(void)
{
    static const char *const names[] = {"info", "status",  "header",   "headers_complete",
                                        "body", "trailer", "complete", NULL};
    static const char r[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nT: 1\r\n\r\n";
    run_opts ro = g_plain;
    outcome o;
    int i;
    char label[64];

    for (i = 0; names[i]; i++) {
        ro.fail_in = names[i];
        snprintf(label, sizeof(label), "on_%s failing", names[i]);
        run_both(&o, S(r), &ro, label);
        is_int(o.error, GAPI__HPE_CALLBACK, "%s: GAPI__HPE_CALLBACK", label);
        ok(strstr(o.reason, names[i]) != NULL, "%s: reason names it (\"%s\")", label, o.reason);
        outcome_free(&o);
    }
}

/* Every two-piece split of a few responses gives the whole-input result. */
static void test_every_split(void)
{
    static const char *const resps[] = {
        "\r\nHTTP/1.1 100 Continue\r\nX: y\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        "A: b\r\n\r\n3;x=\"a;b\"\r\nabc\r\n0\r\nT: 1\r\n\r\nHTTP/1.1 204 N\r\n\r\n",
        "HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhelloHTTP/1.1 2",
        "HTTP/1.1 200 OK\r\nA: \x01\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 ;\r\n",
        "HTX/1.1 200 OK\r\n\r\n",
        "HTTP\r\n\r\n",
        NULL};
    run_opts ro = g_plain;
    int i, bad;
    size_t k, len;
    outcome whole, split;

    ro.max_header = 60;
    for (i = 0; resps[i]; i++) {
        len = strlen(resps[i]);
        run(&whole, resps[i], len, 0, len, &g_plain);
        for (bad = 0, k = 1; k < len; k++) {
            run(&split, resps[i], len, k, len, &g_plain);
            bad += same_outcome(&whole, &split) != NULL;
            outcome_free(&split);
        }
        is_int(bad, 0, "response %d: all %zu two-piece splits agree with the whole", i, len - 1);
        outcome_free(&whole);
        /* and with a tight header limit, where the limit error must not
         * depend on the split either */
        run(&whole, resps[i], len, 0, len, &ro);
        for (bad = 0, k = 1; k < len; k++) {
            run(&split, resps[i], len, k, 3, &ro);
            bad += same_outcome(&whole, &split) != NULL;
            outcome_free(&split);
        }
        is_int(bad, 0, "response %d, 60-byte limit: splits agree", i);
        outcome_free(&whole);
    }
}

int main(void)
{
    corpus_llhttp();
    corpus_http_parser();
    corpus_pico();
    test_limits();
    test_framing_errors();
    test_content_length_ok();
    test_chunks();
    test_transfer_codings();
    test_status_lines();
    test_fields();
    test_value_bytes();
    test_interim();
    test_no_body();
    test_eof();
    test_keep_alive();
    test_boundaries();
    test_callbacks_fail();
    test_every_split();
    return tap_done();
}
