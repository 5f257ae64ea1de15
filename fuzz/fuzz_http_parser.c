/*
 * Fuzzes the HTTP/1.1 response parser (src/transport/http_parser.h).
 *
 * The input is fed as a response whole, split in two at a data-derived
 * point, in data-derived small pieces and (when short) a byte at a time;
 * every run must record the same callbacks, body, results and error text
 * (the parser promises an outcome independent of the split), and the same
 * number of bytes consumed when the message completes. The same input as
 * the response to a HEAD request has no body. With a data-derived small
 * max_header_bytes the outcome is the default one or a
 * GAPI__HPE_HEADER_TOO_LARGE, never anything else, and a head too large for
 * the default limit is too large for any smaller one.
 *
 * In every run the callbacks check what they are given: status codes in
 * range, token field names, field values without control characters or
 * surrounding whitespace, no callback after the end or an error, header
 * bytes within the limit, body bytes only when framing allows and as many as
 * Content-Length says. After the end or an error, execute() consumes nothing.
 *
 * Then the input is used as a body: framed as chunked (data-derived chunk
 * sizes, extensions and a trailer), with Content-Length, and until close;
 * each must complete with exactly the input as body.
 */
#include <string.h>

#include "gapi.h"
#include "common/buf.h"
#include "transport/http_parser.h"
#include "fuzz.h"

/* ------------------------------------------------------------ recording */

typedef struct rec {
    gapi__buf ev;   /* callbacks other than on_body, length-prefixed */
    gapi__buf body; /* on_body bytes, concatenated */
    int done;       /* complete, or an error was returned */
    int headers_done;
    int completes;
    int trailers;
    gapi__http_parser *p;
} rec;

static void ev(rec *r, char kind, const char *a, size_t an, const char *b, size_t bn)
{
    uint32_t l[2] = {(uint32_t)an, (uint32_t)bn};

    CHECK(gapi__buf_append(&r->ev, &kind, 1) == 0 && gapi__buf_append(&r->ev, l, sizeof(l)) == 0 &&
          gapi__buf_append(&r->ev, a, an) == 0 && gapi__buf_append(&r->ev, b, bn) == 0);
}

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Field value or reason phrase: SP, HTAB, VCHAR, obs-text. */
static int is_field_text(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

static void check_field(const char *name, size_t nl, const char *value, size_t vl)
{
    size_t i;

    CHECK(nl > 0);
    for (i = 0; i < nl; i++)
        CHECK(is_tchar((unsigned char)name[i]));
    CHECK(is_field_text(value, vl));
    CHECK(vl == 0 ||
          (value[0] != ' ' && value[0] != '\t' && value[vl - 1] != ' ' && value[vl - 1] != '\t'));
}

static int on_info(void *ud, int status)
{
    rec *r = ud;
    char s[4];

    CHECK(!r->done && !r->headers_done);
    CHECK(status >= 100 && status <= 199 && status != 101);
    snprintf(s, sizeof(s), "%d", status);
    ev(r, 'I', s, 3, "", 0);
    return 0;
}

static int on_status(void *ud, int minor, int status, const char *reason, size_t n)
{
    rec *r = ud;
    char s[8];

    CHECK(!r->done && !r->headers_done);
    CHECK(status >= 200 && status <= 999 && (minor == 0 || minor == 1));
    CHECK(is_field_text(reason, n));
    snprintf(s, sizeof(s), "%d %d", minor, status);
    ev(r, 'S', s, strlen(s), reason, n);
    return 0;
}

static int on_header(void *ud, const char *name, size_t nl, const char *value, size_t vl)
{
    rec *r = ud;

    CHECK(!r->done && !r->headers_done);
    check_field(name, nl, value, vl);
    ev(r, 'H', name, nl, value, vl);
    return 0;
}

static int on_headers_complete(void *ud)
{
    rec *r = ud;
    const gapi__http_parser *p = r->p;

    CHECK(!r->done && !r->headers_done);
    r->headers_done = 1;
    CHECK(p->header_bytes <= p->max_header_bytes);
    CHECK(p->status >= 200 && p->status <= 999);
    if (p->head_request || p->status == 204 || p->status == 304)
        CHECK(p->framing == GAPI__HTTP_FRAMING_NONE);
    if (p->framing == GAPI__HTTP_FRAMING_LENGTH)
        CHECK(p->content_length >= 0);
    ev(r, 'C', "", 0, "", 0);
    return 0;
}

static int on_body(void *ud, const char *data, size_t len)
{
    rec *r = ud;

    CHECK(!r->done && r->headers_done && len > 0);
    CHECK(r->p->framing != GAPI__HTTP_FRAMING_NONE);
    CHECK(gapi__buf_append(&r->body, data, len) == 0);
    if (r->p->framing == GAPI__HTTP_FRAMING_LENGTH)
        CHECK((int64_t)r->body.len <= r->p->content_length);
    return 0;
}

static int on_trailer(void *ud, const char *name, size_t nl, const char *value, size_t vl)
{
    rec *r = ud;

    CHECK(!r->done && r->headers_done && r->p->framing == GAPI__HTTP_FRAMING_CHUNKED);
    check_field(name, nl, value, vl);
    r->trailers++;
    ev(r, 'T', name, nl, value, vl);
    return 0;
}

static int on_complete(void *ud)
{
    rec *r = ud;
    const gapi__http_parser *p = r->p;

    CHECK(!r->done && r->headers_done && r->completes == 0);
    r->completes++;
    r->done = 1;
    if (p->framing == GAPI__HTTP_FRAMING_LENGTH)
        CHECK((int64_t)r->body.len == p->content_length);
    if (p->framing == GAPI__HTTP_FRAMING_NONE)
        CHECK(r->body.len == 0);
    ev(r, 'E', "", 0, "", 0);
    return 0;
}

static const gapi__http_callbacks callbacks = {on_info, on_status,  on_header,  on_headers_complete,
                                               on_body, on_trailer, on_complete};

/* ------------------------------------------------------------ one run */

typedef struct outcome {
    rec r;
    gapi__http_parser p;
    size_t consumed;
    gapi__hpe finish; /* result of finish() at EOF, when it was called */
    int finished;
} outcome;

enum { SPLIT_WHOLE, SPLIT_TWO, SPLIT_PIECES, SPLIT_BYTES };

/* Feeds data as the split says, then EOF. */
static void run(outcome *o, const char *data, size_t size, int head, size_t max_hdr, int split,
                uint64_t h)
{
    size_t pos = 0, n, got, calls = 0;
    uint64_t rnd = h | 1;

    memset(o, 0, sizeof(*o));
    o->r.p = &o->p;
    gapi__http_parser_init(&o->p, &callbacks, &o->r, head, max_hdr);
    while (pos < size) {
        switch (split) {
        case SPLIT_WHOLE:
            n = size - pos;
            break;
        case SPLIT_TWO:
            /* The first piece may be empty: execute() with no bytes. */
            n = calls == 0 ? (size_t)(h % (size + 1)) : size - pos;
            break;
        case SPLIT_PIECES:
            n = 1 + (size_t)(fuzz_next(&rnd) % 23);
            break;
        default:
            n = 1;
            break;
        }
        if (n > size - pos)
            n = size - pos;
        calls++;
        got = gapi__http_parser_execute(&o->p, data + pos, n);
        CHECK(got <= n);
        pos += got;
        if (o->p.error != GAPI__HPE_OK || o->p.complete) {
            o->r.done = 1;
            break;
        }
        CHECK(got == n);
    }
    o->consumed = pos;
    if (o->p.error == GAPI__HPE_OK && !o->p.complete) {
        CHECK(pos == size);
        o->finished = 1;
        o->finish = gapi__http_parser_finish(&o->p);
        CHECK(o->finish == o->p.error);
        CHECK(o->finish == GAPI__HPE_OK ? o->p.complete
                                        : o->finish == GAPI__HPE_UNEXPECTED_EOF && !o->p.complete);
        o->r.done = 1;
    }
    CHECK(o->p.complete == (o->r.completes == 1));
    CHECK((o->p.error == GAPI__HPE_OK) == (o->p.error_reason[0] == '\0'));
    CHECK(!(o->p.error != GAPI__HPE_OK && o->p.complete));
    if (head)
        CHECK(o->r.body.len == 0);
    /* Finished or failed: nothing more is consumed, no callback is made
     * (the callbacks abort if one is). */
    CHECK(gapi__http_parser_execute(&o->p, "HTTP/1.1 200 OK\r\n\r\n", 19) == 0);
}

static void outcome_free(outcome *o)
{
    gapi__buf_free(&o->r.ev);
    gapi__buf_free(&o->r.body);
}

static int buf_eq(const gapi__buf *a, const gapi__buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void check_same(const outcome *a, const outcome *b)
{
    CHECK(buf_eq(&a->r.ev, &b->r.ev));
    CHECK(buf_eq(&a->r.body, &b->r.body));
    CHECK(a->p.error == b->p.error && strcmp(a->p.error_reason, b->p.error_reason) == 0);
    CHECK(a->p.complete == b->p.complete && a->finished == b->finished && a->finish == b->finish);
    CHECK(a->p.status == b->p.status && a->p.http_minor == b->p.http_minor);
    if (a->r.headers_done)
        CHECK(a->p.framing == b->p.framing && a->p.content_length == b->p.content_length &&
              a->p.keep_alive == b->p.keep_alive);
    if (a->p.complete)
        CHECK(a->consumed == b->consumed);
}

/* ------------------------------------------------------------ as a body */

static void app(gapi__buf *b, const void *p, size_t n)
{
    CHECK(gapi__buf_append(b, p, n) == 0);
}

static void body_framings(const char *data, size_t size, uint64_t h)
{
    gapi__buf msg = GAPI__BUF_INIT;
    outcome *o = malloc(sizeof(*o));
    uint64_t rnd = h | 1;
    size_t pos, n, trailer;
    char line[64];
    int split;

    CHECK(o != NULL);
    /* Chunked, with data-derived chunk sizes, size spellings, extensions and
     * an optional trailer. */
    app(&msg, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 47);
    for (pos = 0; pos < size; pos += n) {
        uint64_t r = fuzz_next(&rnd);
        n = 1 + (size_t)(r % (r & 256 ? 4096 : 17));
        if (n > size - pos)
            n = size - pos;
        snprintf(line, sizeof(line), r & 512 ? "%03zX%s\r\n" : "%zx%s\r\n", n,
                 r & 1024 ? ";ext=\"v\";e2" : "");
        app(&msg, line, strlen(line));
        app(&msg, data + pos, n);
        app(&msg, "\r\n", 2);
    }
    trailer = h & 1;
    app(&msg, "0\r\n", 3);
    if (trailer)
        app(&msg, "X-Checksum: abc\r\n", 17);
    app(&msg, "\r\n", 2);
    for (split = SPLIT_WHOLE; split <= SPLIT_PIECES; split++) {
        run(o, msg.data, msg.len, 0, 0, split, h);
        CHECK(o->p.error == GAPI__HPE_OK && o->p.complete && !o->finished);
        CHECK(o->p.framing == GAPI__HTTP_FRAMING_CHUNKED && o->consumed == msg.len);
        CHECK(o->r.body.len == size && (size == 0 || memcmp(o->r.body.data, data, size) == 0));
        CHECK(o->r.trailers == (int)trailer);
        outcome_free(o);
    }

    /* Content-Length, with the next response pipelined after it. */
    gapi__buf_reset(&msg);
    snprintf(line, sizeof(line), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", size);
    app(&msg, line, strlen(line));
    n = msg.len + size;
    app(&msg, data, size);
    app(&msg, "HTTP/1.1 204 No Content\r\n\r\n", 28);
    run(o, msg.data, msg.len, 0, 0, SPLIT_TWO, h);
    CHECK(o->p.error == GAPI__HPE_OK && o->p.complete && o->consumed == n && o->p.keep_alive);
    CHECK(o->r.body.len == size && (size == 0 || memcmp(o->r.body.data, data, size) == 0));
    outcome_free(o);

    /* Until the connection closes. */
    gapi__buf_reset(&msg);
    app(&msg, "HTTP/1.0 200 OK\r\n\r\n", 19);
    app(&msg, data, size);
    run(o, msg.data, msg.len, 0, 0, SPLIT_PIECES, h);
    CHECK(o->p.error == GAPI__HPE_OK && o->p.complete && o->finished && !o->p.keep_alive);
    CHECK(o->p.framing == GAPI__HTTP_FRAMING_EOF);
    CHECK(o->r.body.len == size && (size == 0 || memcmp(o->r.body.data, data, size) == 0));
    outcome_free(o);

    gapi__buf_free(&msg);
    free(o);
}

/* ------------------------------------------------------------ entry */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = size ? (const char *)data : "";
    uint64_t h = fuzz_hash(data, size);
    /* gapi__http_parser holds an 8 KiB line buffer: keep them off the stack. */
    outcome *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    size_t small = 1 + (size_t)((h >> 17) % 700);

    CHECK(a && b);
    run(a, s, size, 0, 0, SPLIT_WHOLE, h);

    run(b, s, size, 0, 0, SPLIT_TWO, h);
    check_same(a, b);
    outcome_free(b);
    if (size <= 65536) {
        run(b, s, size, 0, 0, SPLIT_PIECES, h);
        check_same(a, b);
        outcome_free(b);
    }
    if (size <= 4096) {
        run(b, s, size, 0, 0, SPLIT_BYTES, h);
        check_same(a, b);
        outcome_free(b);
    }

    /* A smaller head limit: the same outcome, or "too large". */
    run(b, s, size, 0, small, h & 2 ? SPLIT_PIECES : SPLIT_WHOLE, h);
    if (b->p.error != GAPI__HPE_HEADER_TOO_LARGE)
        check_same(a, b);
    if (a->p.error == GAPI__HPE_HEADER_TOO_LARGE)
        CHECK(b->p.error == GAPI__HPE_HEADER_TOO_LARGE);
    outcome_free(b);
    outcome_free(a);

    /* As the response to HEAD: no body, whole or split. */
    run(a, s, size, 1, 0, SPLIT_WHOLE, h);
    run(b, s, size, 1, 0, SPLIT_PIECES, h);
    check_same(a, b);
    outcome_free(a);
    outcome_free(b);
    free(a);
    free(b);

    body_framings(s, size, h);
    return 0;
}
