/*
 * HTTP/1.1 response parser (see http_parser.h for the framing rules).
 *
 * Shape: the head (status line, header fields), chunk-size lines and
 * trailers are line-oriented; everything else is body bytes handed to
 * on_body straight from the caller's buffer. A line that is whole in the
 * input is parsed in place; only a line split across execute() calls is
 * copied into p->line. Lines are found with memchr, and every validity
 * check looks at a line as a whole, so the outcome (callbacks, error code,
 * error text) does not depend on how the input was split.
 *
 * Decisions (stricter than some parsers, on purpose: a client that shares
 * keep-alive connections must agree with every intermediary on where one
 * response ends and the next begins):
 *  - Lines end in CRLF. A bare LF (which RFC 9112 section 2.2 lets a
 *    recipient accept) or a bare CR is an error, as in llhttp's default
 *    strict mode. Google front ends always send CRLF; a lone LF is a sign of
 *    a broken or hostile peer. Empty lines (CRLF) before a status line are
 *    skipped, as RFC 9112 section 2.2 suggests, so a stray CRLF after a body
 *    does not break the next response on the connection.
 *  - One line (status line, field line, chunk-size line) may not exceed
 *    sizeof(p->line) bytes with its CRLF, whatever max_header_bytes says:
 *    that is what a split line can be buffered in, and applying the same
 *    cap to whole lines keeps results independent of the split.
 *  - Only HTTP/1.0 and HTTP/1.1; obs-fold and whitespace before the colon
 *    are errors; field values may hold SP, HTAB, VCHAR and obs-text only.
 *  - Transfer-Encoding: "chunked" followed by any coding (in one header or
 *    in a later one) is an error, not read-until-close as llhttp does for
 *    responses: chunked applied and then something else is a framing
 *    ambiguity we refuse to guess about. TE whose codings never include
 *    chunked is read until close (RFC 9112 section 6.3). In an HTTP/1.0
 *    response TE is honoured but the connection is not reused (section 6.1).
 *  - Content-Length may repeat (in several fields or as a list) only with
 *    identical values (RFC 9110 section 8.6).
 *
 * The parser never allocates.
 */
#include <stddef.h>
#include <string.h>

#include "transport/http_parser.h"

enum {
    S_START = 0, /* before the status line (empty lines skipped) */
    S_HEADER,    /* field lines of the head */
    S_BODY_LENGTH,
    S_BODY_EOF,
    S_CHUNK_SIZE,
    S_CHUNK_DATA,
    S_CHUNK_CR, /* CRLF after chunk data */
    S_CHUNK_LF,
    S_TRAILER,
    S_DONE,
    S_ERROR
};

enum {
    F_STARTED = 1u << 0,    /* a byte was consumed */
    F_INTERIM = 1u << 1,    /* the head being read is a 1xx */
    F_CL = 1u << 2,         /* Content-Length seen */
    F_TE = 1u << 3,         /* Transfer-Encoding seen */
    F_CHUNKED = 1u << 4,    /* chunked is among the transfer codings */
    F_CONN_CLOSE = 1u << 5, /* Connection: close */
    F_CONN_KEEP = 1u << 6   /* Connection: keep-alive */
};

/* Per-head flags, cleared when a 1xx head has been skipped. */
#define F_HEAD_MASK (F_INTERIM | F_CL | F_TE | F_CHUNKED | F_CONN_CLOSE | F_CONN_KEEP)

#define DEFAULT_MAX_HEADER_BYTES (64 * 1024)

/* Character classes, one constant table so each byte costs one load:
 * C_TCHAR token characters (RFC 9110 section 5.6.2), C_FVAL what a field
 * value or reason phrase may hold (SP, HTAB, VCHAR, obs-text), C_HEX hex
 * digits, C_WS SP and HTAB. */
enum { C_TCHAR = 1, C_FVAL = 2, C_HEX = 4, C_WS = 8 };

static const unsigned char g_class[256] = {
    0,  0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, /* 00 */
    0,  0, 0, 0, 0, 0, 0, 0, 0, 0,  0, 0, 0, 0, 0, 0, /* 10 */
    10, 3, 2, 3, 3, 3, 3, 3, 2, 2,  3, 3, 2, 3, 3, 2, /* 20 */
    7,  7, 7, 7, 7, 7, 7, 7, 7, 7,  2, 2, 2, 2, 2, 2, /* 30 */
    2,  7, 7, 7, 7, 7, 7, 3, 3, 3,  3, 3, 3, 3, 3, 3, /* 40 */
    3,  3, 3, 3, 3, 3, 3, 3, 3, 3,  3, 2, 2, 2, 3, 3, /* 50 */
    3,  7, 7, 7, 7, 7, 7, 3, 3, 3,  3, 3, 3, 3, 3, 3, /* 60 */
    3,  3, 3, 3, 3, 3, 3, 3, 3, 3,  3, 2, 3, 2, 3, 0, /* 70 */
    2,  2, 2, 2, 2, 2, 2, 2, 2, 2,  2, 2, 2, 2, 2, 2, /* 80 */
    2,  2, 2, 2, 2, 2, 2, 2, 2, 2,  2, 2, 2, 2, 2, 2, /* 90 */
    2,  2, 2, 2, 2, 2, 2, 2, 2, 2,  2, 2, 2, 2, 2, 2, /* a0 */
    2,  2, 2, 2, 2, 2, 2, 2, 2, 2,  2, 2, 2, 2, 2, 2, /* b0 */
    2,  2, 2, 2, 2, 2, 2, 2, 2, 2,  2, 2, 2, 2, 2, 2, /* c0 */
    2,  2, 2, 2, 2, 2, 2, 2, 2, 2,  2, 2, 2, 2, 2, 2, /* d0 */
    2,  2, 2, 2, 2, 2, 2, 2, 2, 2,  2, 2, 2, 2, 2, 2, /* e0 */
    2,  2, 2, 2, 2, 2, 2, 2, 2, 2,  2, 2, 2, 2, 2, 2  /* f0 */
};

#define IS(c, k) (g_class[(unsigned char)(c)] & (k))

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* ASCII case-insensitive comparison of s[0..n) with lower-case lit. */
static int ieq(const char *s, size_t n, const char *lit, size_t litn)
{
    size_t i;

    if (n != litn)
        return 0;
    for (i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lit[i])
            return 0;
    return 1;
}

#define IEQ(s, n, lit) ieq((s), (n), lit, sizeof(lit) - 1)

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && IS(s[i], C_WS))
        i++;
    return i;
}

static size_t skip_token(const char *s, size_t n, size_t i)
{
    while (i < n && IS(s[i], C_TCHAR))
        i++;
    return i;
}

/* Record the first error; later ones would only describe its fallout. */
static int fail(gapi__http_parser *p, gapi__hpe e, const char *reason)
{
    if (p->error == GAPI__HPE_OK) {
        p->error = e;
        p->error_reason = reason;
    }
    p->state = S_ERROR;
    return -1;
}

static int cb_fail(gapi__http_parser *p, const char *which)
{
    return fail(p, GAPI__HPE_CALLBACK, which);
}

void gapi__http_parser_init(gapi__http_parser *p, const gapi__http_callbacks *cb, void *ud,
                            int head_request, size_t max_header_bytes)
{
    /* p->line is scratch space: leave its 8 KiB alone. */
    memset(p, 0, offsetof(gapi__http_parser, line));
    p->cb = cb;
    p->ud = ud;
    p->head_request = head_request != 0;
    p->max_header_bytes = max_header_bytes ? max_header_bytes : DEFAULT_MAX_HEADER_BYTES;
    p->content_length = -1;
    p->error_reason = "";
    p->state = S_START;
    p->line_len = 0;
    p->flags = 0;
}

/* ------------------------------------------------------------------ lines */

enum { LINE_MORE = 0, LINE_OK = 1, LINE_LONG = -1, LINE_BARE_LF = -2 };

/* Next whole line from data[*pos..len) (plus what p->line holds from earlier
 * calls). budget: most bytes the line may have, CRLF included. On LINE_OK,
 * *out, *out_len is the line without CRLF (in data or in p->line), *total its
 * size with CRLF, and *pos is past the LF. On LINE_MORE all was buffered. */
static int take_line(gapi__http_parser *p, const char *data, size_t len, size_t *pos, size_t budget,
                     const char **out, size_t *out_len, size_t *total)
{
    const char *start = data + *pos;
    size_t avail = len - *pos;
    size_t window, k;
    const char *lf;
    const char *s;
    size_t n;

    if (budget > sizeof(p->line))
        budget = sizeof(p->line);
    if (p->line_len >= budget)
        return LINE_LONG;
    /* Look no further than the longest line still allowed. */
    window = budget - p->line_len;
    lf = memchr(start, '\n', avail < window ? avail : window);
    if (!lf) {
        if (avail >= window)
            return LINE_LONG;
        memcpy(p->line + p->line_len, start, avail);
        p->line_len += avail;
        *pos = len;
        return LINE_MORE;
    }
    k = (size_t)(lf - start) + 1;
    *pos += k;
    if (p->line_len == 0) {
        s = start;
        n = k - 1;
    } else {
        memcpy(p->line + p->line_len, start, k - 1);
        s = p->line;
        n = p->line_len + k - 1;
        p->line_len = 0;
    }
    *total = n + 1;
    if (n == 0 || s[n - 1] != '\r')
        return LINE_BARE_LF;
    *out = s;
    *out_len = n - 1;
    return LINE_OK;
}

/* Bytes of the current head section still allowed. */
static size_t head_budget(const gapi__http_parser *p)
{
    return p->header_bytes < p->max_header_bytes ? p->max_header_bytes - p->header_bytes : 0;
}

/* ------------------------------------------------------------ status line */

/* Checks that s[0..n) can still become "HTTP/1.0" or "HTTP/1.1"; used on a
 * partial line too, so garbage is refused before a whole line arrives. */
static const char *version_prefix_error(const char *s, size_t n)
{
    static const char want[] = "HTTP/1.";
    size_t m = n < 5 ? n : 5;

    if (memcmp(s, want, m) != 0)
        return "status line does not start with HTTP/";
    m = n < 7 ? n : 7;
    if (memcmp(s, want, m) != 0)
        return "HTTP version is not 1.0 or 1.1";
    if (n > 7 && s[7] != '0' && s[7] != '1')
        return "HTTP version is not 1.0 or 1.1";
    if (n > 8 && s[8] != ' ')
        return IS(s[8], C_TCHAR) || s[8] == '.' ? "HTTP version is not 1.0 or 1.1"
                                                : "no space after the HTTP version";
    return NULL;
}

/* Refuses a status line by its first bytes, before it is whole (garbage
 * from a non-HTTP peer fails at once instead of filling the buffer). Looks
 * at the first 9 bytes of the line so far, up to any CR or LF, so the
 * verdict is the one status_line() would give, however the input is split. */
static int check_status_prefix(gapi__http_parser *p, const char *data, size_t avail)
{
    char head[9];
    size_t n = p->line_len < sizeof(head) ? p->line_len : sizeof(head);
    size_t m = sizeof(head) - n, i;
    const char *why;

    if (p->line_len >= sizeof(head))
        return 0; /* already checked */
    memcpy(head, p->line, n);
    memcpy(head + n, data, m < avail ? m : avail);
    n += m < avail ? m : avail;
    for (i = 0; i < n && head[i] != '\r' && head[i] != '\n'; i++)
        ;
    why = version_prefix_error(head, i);
    return why ? fail(p, GAPI__HPE_INVALID_VERSION, why) : 0;
}

static int status_line(gapi__http_parser *p, const char *s, size_t n)
{
    const char *why = version_prefix_error(s, n);
    const char *reason;
    size_t i, reason_len;
    int status;

    if (why)
        return fail(p, GAPI__HPE_INVALID_VERSION, why);
    if (n < 8)
        return fail(p, GAPI__HPE_INVALID_VERSION, "status line ends inside the HTTP version");
    if (n < 12)
        return fail(p, GAPI__HPE_INVALID_STATUS, "status code is not 3 digits");
    for (i = 9; i < 12; i++)
        if (s[i] < '0' || s[i] > '9')
            return fail(p, GAPI__HPE_INVALID_STATUS, "status code is not 3 digits");
    if (n > 12 && s[12] != ' ')
        return fail(p, GAPI__HPE_INVALID_STATUS, "status code is not 3 digits");
    status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (status < 100)
        return fail(p, GAPI__HPE_INVALID_STATUS, "status code below 100");
    reason = n > 12 ? s + 13 : s + n;
    reason_len = n > 12 ? n - 13 : 0;
    for (i = 0; i < reason_len; i++)
        if (!IS(reason[i], C_FVAL))
            return fail(p, GAPI__HPE_INVALID_STATUS, "reason phrase has a control character");
    if (status == 101)
        return fail(p, GAPI__HPE_UNEXPECTED_101, "101 Switching Protocols was not requested");

    p->http_minor = s[7] - '0';
    p->status = status;
    if (status < 200) {
        p->flags |= F_INTERIM;
    } else if (p->cb->on_status &&
               p->cb->on_status(p->ud, p->http_minor, status, reason, reason_len)) {
        return cb_fail(p, "on_status callback failed");
    }
    p->state = S_HEADER;
    return 0;
}

/* ------------------------------------------------------------ field lines */

/* Whether any of the 8 bytes in x is below 0x20 or is 0x7f (the classic
 * "has less than" bit trick; exact as a yes/no answer). Lets values be
 * checked a word at a time; the byte-wise check runs only on words that
 * hold a control character, which is usually just an HTAB. */
static int word_has_ctl(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t del = x ^ (ones * 0x7f);

    return (((x - ones * 0x20) & ~x) | ((del - ones) & ~del)) & highs ? 1 : 0;
}

static const char *value_char_error(const char *v, size_t n)
{
    size_t i = 0, j;
    uint64_t w;

    for (;;) {
        while (i + 8 <= n) {
            memcpy(&w, v + i, 8);
            if (word_has_ctl(w))
                break;
            i += 8;
        }
        if (i >= n)
            return NULL;
        for (j = i + 8 < n ? i + 8 : n; i < j; i++) {
            if (IS(v[i], C_FVAL))
                continue;
            if (v[i] == '\0')
                return "header value contains NUL";
            if (v[i] == '\r')
                return "header value contains a bare CR";
            return "header value has a control character";
        }
    }
}

/* Splits a field line into name and trimmed value. */
static int split_field(gapi__http_parser *p, const char *s, size_t n, const char **name,
                       size_t *name_len, const char **value, size_t *value_len)
{
    size_t i = skip_token(s, n, 0);
    size_t a, b;
    const char *why;

    if (i == n)
        return fail(p, GAPI__HPE_INVALID_HEADER, "header line has no colon");
    if (s[i] != ':') {
        if (i == 0 && IS(s[0], C_WS))
            return fail(p, GAPI__HPE_INVALID_HEADER, "obsolete line folding");
        if (!memchr(s + i, ':', n - i))
            return fail(p, GAPI__HPE_INVALID_HEADER, "header line has no colon");
        if (IS(s[i], C_WS) && s[skip_ws(s, n, i)] == ':')
            return fail(p, GAPI__HPE_INVALID_HEADER, "whitespace between header name and colon");
        return fail(p, GAPI__HPE_INVALID_HEADER, "invalid character in header name");
    }
    if (i == 0)
        return fail(p, GAPI__HPE_INVALID_HEADER, "empty header name");
    a = skip_ws(s, n, i + 1);
    b = n;
    while (b > a && IS(s[b - 1], C_WS))
        b--;
    why = value_char_error(s + a, b - a);
    if (why)
        return fail(p, GAPI__HPE_INVALID_HEADER, why);
    *name = s;
    *name_len = i;
    *value = s + a;
    *value_len = b - a;
    return 0;
}

/* Content-Length: one value, or a list of identical values. */
static int content_length(gapi__http_parser *p, const char *s, size_t n)
{
    const int64_t max = INT64_MAX;
    int64_t v = -1, x;
    size_t i = 0;

    for (;;) {
        i = skip_ws(s, n, i);
        if (i == n || s[i] < '0' || s[i] > '9')
            return fail(p, GAPI__HPE_INVALID_CONTENT_LENGTH,
                        i == n || s[i] == ',' ? "Content-Length has an empty value"
                                              : "Content-Length has non-digit characters");
        for (x = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            if (x > (max - (s[i] - '0')) / 10)
                return fail(p, GAPI__HPE_INVALID_CONTENT_LENGTH, "Content-Length overflows");
            x = x * 10 + (s[i] - '0');
        }
        i = skip_ws(s, n, i);
        if (i < n && s[i] != ',')
            return fail(p, GAPI__HPE_INVALID_CONTENT_LENGTH,
                        "Content-Length has non-digit characters");
        if (v >= 0 && x != v)
            return fail(p, GAPI__HPE_INVALID_CONTENT_LENGTH,
                        "Content-Length list has differing values");
        v = x;
        if (i == n)
            break;
        i++;
    }
    if ((p->flags & F_CL) && p->content_length != v)
        return fail(p, GAPI__HPE_INVALID_CONTENT_LENGTH, "Content-Length headers disagree");
    p->flags |= F_CL;
    p->content_length = v;
    return 0;
}

/* Transfer-Encoding: a list of codings; chunked, if present, must be last
 * (across all TE fields). Parameters are refused: none are defined for the
 * codings a response can carry. */
static int transfer_encoding(gapi__http_parser *p, const char *s, size_t n)
{
    size_t i = 0, k;
    int codings = 0;

    for (;;) {
        i = skip_ws(s, n, i);
        if (i == n)
            break;
        if (s[i] == ',') { /* empty list element (RFC 9110 section 5.6.1) */
            i++;
            continue;
        }
        k = skip_token(s, n, i);
        if (k == i)
            return fail(p, GAPI__HPE_INVALID_TRANSFER_ENCODING,
                        "Transfer-Encoding has an invalid character");
        if (p->flags & F_CHUNKED)
            return fail(p, GAPI__HPE_INVALID_TRANSFER_ENCODING,
                        "chunked is not the final transfer coding");
        if (IEQ(s + i, k - i, "chunked"))
            p->flags |= F_CHUNKED;
        codings++;
        i = skip_ws(s, n, k);
        if (i < n && s[i] != ',')
            return fail(p, GAPI__HPE_INVALID_TRANSFER_ENCODING,
                        "Transfer-Encoding has an invalid character");
    }
    if (!codings)
        return fail(p, GAPI__HPE_INVALID_TRANSFER_ENCODING, "Transfer-Encoding is empty");
    p->flags |= F_TE;
    return 0;
}

/* Connection: only the close and keep-alive options matter here. */
static void connection(gapi__http_parser *p, const char *s, size_t n)
{
    size_t i = 0, a, b;

    while (i < n) {
        a = skip_ws(s, n, i);
        for (b = a; b < n && s[b] != ','; b++)
            ;
        i = b + 1;
        while (b > a && IS(s[b - 1], C_WS))
            b--;
        if (IEQ(s + a, b - a, "close"))
            p->flags |= F_CONN_CLOSE;
        else if (IEQ(s + a, b - a, "keep-alive"))
            p->flags |= F_CONN_KEEP;
    }
}

static int framing_field(gapi__http_parser *p, const char *name, size_t name_len, const char *value,
                         size_t value_len)
{
    /* Most fields start with neither letter: one test skips them. */
    if ((name[0] | 0x20) != 'c' && (name[0] | 0x20) != 't')
        return 0;
    if (IEQ(name, name_len, "content-length"))
        return content_length(p, value, value_len);
    if (IEQ(name, name_len, "transfer-encoding"))
        return transfer_encoding(p, value, value_len);
    if (IEQ(name, name_len, "connection"))
        connection(p, value, value_len);
    return 0;
}

static int header_line(gapi__http_parser *p, const char *s, size_t n)
{
    const char *name, *value;
    size_t name_len, value_len;

    if (split_field(p, s, n, &name, &name_len, &value, &value_len))
        return -1;
    /* A 1xx head is checked for syntax only: its fields describe neither
     * the final response nor its framing. */
    if (p->flags & F_INTERIM)
        return 0;
    if (framing_field(p, name, name_len, value, value_len))
        return -1;
    if (p->cb->on_header && p->cb->on_header(p->ud, name, name_len, value, value_len))
        return cb_fail(p, "on_header callback failed");
    return 0;
}

static int trailer_line(gapi__http_parser *p, const char *s, size_t n)
{
    const char *name, *value;
    size_t name_len, value_len;

    if (split_field(p, s, n, &name, &name_len, &value, &value_len))
        return -1;
    if (p->cb->on_trailer && p->cb->on_trailer(p->ud, name, name_len, value, value_len))
        return cb_fail(p, "on_trailer callback failed");
    return 0;
}

/* ---------------------------------------------------------- end of a head */

static int message_complete(gapi__http_parser *p)
{
    p->state = S_DONE;
    p->complete = 1;
    if (p->cb->on_message_complete && p->cb->on_message_complete(p->ud))
        return cb_fail(p, "on_message_complete callback failed");
    return 0;
}

static int interim_done(gapi__http_parser *p)
{
    int status = p->status;

    p->flags &= ~F_HEAD_MASK;
    p->header_bytes = 0;
    p->status = 0;
    p->state = S_START;
    if (p->cb->on_info && p->cb->on_info(p->ud, status))
        return cb_fail(p, "on_info callback failed");
    return 0;
}

static void decide_framing(gapi__http_parser *p)
{
    unsigned f = p->flags;

    if (p->head_request || p->status == 204 || p->status == 304)
        p->framing = GAPI__HTTP_FRAMING_NONE;
    else if (f & F_CHUNKED)
        p->framing = GAPI__HTTP_FRAMING_CHUNKED;
    else if (f & F_TE)
        p->framing = GAPI__HTTP_FRAMING_EOF;
    else if (f & F_CL)
        p->framing = GAPI__HTTP_FRAMING_LENGTH;
    else
        p->framing = GAPI__HTTP_FRAMING_EOF;

    if (f & F_CONN_CLOSE)
        p->keep_alive = 0;
    else if (p->http_minor >= 1)
        p->keep_alive = 1;
    else
        p->keep_alive = (f & F_CONN_KEEP) != 0;
    /* Read-until-close cannot be reused; TE in HTTP/1.0 means the framing
     * is suspect (RFC 9112 section 6.1). */
    if (p->framing == GAPI__HTTP_FRAMING_EOF || (p->http_minor == 0 && (f & F_TE)))
        p->keep_alive = 0;
}

static int headers_done(gapi__http_parser *p)
{
    if (p->flags & F_INTERIM)
        return interim_done(p);
    if ((p->flags & F_TE) && (p->flags & F_CL))
        return fail(p, GAPI__HPE_INVALID_TRANSFER_ENCODING,
                    "both Transfer-Encoding and Content-Length");
    decide_framing(p);
    if (p->cb->on_headers_complete && p->cb->on_headers_complete(p->ud))
        return cb_fail(p, "on_headers_complete callback failed");
    switch (p->framing) {
    case GAPI__HTTP_FRAMING_NONE:
        return message_complete(p);
    case GAPI__HTTP_FRAMING_LENGTH:
        p->remaining = (uint64_t)p->content_length;
        if (p->remaining == 0)
            return message_complete(p);
        p->state = S_BODY_LENGTH;
        return 0;
    case GAPI__HTTP_FRAMING_CHUNKED:
        p->state = S_CHUNK_SIZE;
        return 0;
    default:
        p->state = S_BODY_EOF;
        return 0;
    }
}

/* --------------------------------------------------------- chunk framing */

/* Index past a quoted-string starting at s[i] == '"', or 0 if unterminated
 * or holding a control character. */
static size_t skip_quoted(const char *s, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (s[i] == '"')
            return i + 1;
        if (s[i] == '\\' && ++i == n)
            return 0;
        if (!IS(s[i], C_FVAL))
            return 0;
    }
    return 0;
}

/* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
 * (RFC 9112 section 7.1.1); i is just past the hex digits. */
static const char *chunk_ext_error(const char *s, size_t n, size_t i)
{
    size_t digits_end = i, j, k;

    for (;;) {
        j = skip_ws(s, n, i);
        if (j == n)
            return j == i ? NULL : "whitespace at the end of a chunk size line";
        if (s[j] != ';')
            return i == digits_end ? "chunk size is not hexadecimal"
                                   : "invalid character in chunk extension";
        i = skip_ws(s, n, j + 1);
        k = skip_token(s, n, i);
        if (k == i)
            return "chunk extension has no name";
        i = k;
        j = skip_ws(s, n, i);
        if (j == n || s[j] != '=')
            continue;
        i = skip_ws(s, n, j + 1);
        if (i < n && s[i] == '"') {
            i = skip_quoted(s, n, i);
            if (i == 0)
                return "bad quoted string in chunk extension";
        } else {
            k = skip_token(s, n, i);
            if (k == i)
                return "chunk extension has no value after =";
            i = k;
        }
    }
}

static int chunk_size_line(gapi__http_parser *p, const char *s, size_t n)
{
    uint64_t v = 0;
    size_t i;
    const char *why;

    if (n == 0 || !IS(s[0], C_HEX))
        return fail(p, GAPI__HPE_INVALID_CHUNK, "chunk size is not hexadecimal");
    for (i = 0; i < n && IS(s[i], C_HEX); i++) {
        if (v >> 60)
            return fail(p, GAPI__HPE_INVALID_CHUNK, "chunk size does not fit in 64 bits");
        v = (v << 4) | (uint64_t)(s[i] <= '9' ? s[i] - '0' : (lower(s[i]) - 'a' + 10));
    }
    why = chunk_ext_error(s, n, i);
    if (why)
        return fail(p, GAPI__HPE_INVALID_CHUNK, why);
    if (v == 0) {
        p->header_bytes = 0; /* trailers have their own budget */
        p->state = S_TRAILER;
    } else {
        p->remaining = v;
        p->state = S_CHUNK_DATA;
    }
    return 0;
}

/* ------------------------------------------------------ line dispatching */

static int line_error(gapi__http_parser *p, int rc)
{
    int chunk = p->state == S_CHUNK_SIZE;
    int too_long_line = p->state == S_CHUNK_SIZE || head_budget(p) > sizeof(p->line);

    if (rc == LINE_LONG) {
        if (chunk)
            return fail(p, GAPI__HPE_INVALID_CHUNK, "chunk size line too long");
        if (too_long_line)
            return fail(p, GAPI__HPE_HEADER_TOO_LARGE, "header line longer than the line buffer");
        return fail(p, GAPI__HPE_HEADER_TOO_LARGE,
                    p->state == S_TRAILER ? "trailers exceed max_header_bytes"
                                          : "headers exceed max_header_bytes");
    }
    switch (p->state) {
    case S_START:
        return fail(p, GAPI__HPE_INVALID_STATUS, "status line ends in LF without CR");
    case S_CHUNK_SIZE:
        return fail(p, GAPI__HPE_INVALID_CHUNK, "chunk size line ends in LF without CR");
    default:
        return fail(p, GAPI__HPE_INVALID_HEADER, "header line ends in LF without CR");
    }
}

/* Whole line s[0..n) (CRLF removed) for the current line state. */
static int dispatch_line(gapi__http_parser *p, const char *s, size_t n)
{
    switch (p->state) {
    case S_START:
        return n == 0 ? 0 : status_line(p, s, n);
    case S_HEADER:
        return n == 0 ? headers_done(p) : header_line(p, s, n);
    case S_TRAILER:
        return n == 0 ? message_complete(p) : trailer_line(p, s, n);
    default:
        return chunk_size_line(p, s, n);
    }
}

/* One line-state step; returns -1 on error, 0 otherwise (possibly having
 * consumed everything into p->line). */
static int line_step(gapi__http_parser *p, const char *data, size_t len, size_t *pos)
{
    int head = p->state != S_CHUNK_SIZE;
    const char *s = NULL;
    size_t n = 0, total = 0;
    int rc;

    if (p->state == S_START && check_status_prefix(p, data + *pos, len - *pos))
        return -1;
    /* A field line may not start with whitespace (obs-fold, or a space
     * after the start line): refuse it as soon as the byte arrives. */
    if ((p->state == S_HEADER || p->state == S_TRAILER) && p->line_len == 0 && IS(data[*pos], C_WS))
        return fail(p, GAPI__HPE_INVALID_HEADER, "obsolete line folding");
    rc = take_line(p, data, len, pos, head ? head_budget(p) : sizeof(p->line), &s, &n, &total);
    if (rc == LINE_MORE)
        return 0;
    if (rc != LINE_OK)
        return line_error(p, rc);
    if (head)
        p->header_bytes += total;
    return dispatch_line(p, s, n);
}

/* ---------------------------------------------------------------- execute */

static int body_bytes(gapi__http_parser *p, const char *data, size_t n)
{
    if (p->cb->on_body && p->cb->on_body(p->ud, data, n))
        return cb_fail(p, "on_body callback failed");
    return 0;
}

/* Chunk data, or a Content-Length body. */
static int counted_step(gapi__http_parser *p, const char *data, size_t len, size_t *pos)
{
    size_t avail = len - *pos;
    size_t n = p->remaining < avail ? (size_t)p->remaining : avail;

    p->remaining -= n;
    *pos += n;
    if (body_bytes(p, data + *pos - n, n))
        return -1;
    if (p->remaining)
        return 0;
    if (p->state == S_CHUNK_DATA) {
        p->state = S_CHUNK_CR;
        return 0;
    }
    return message_complete(p);
}

static int chunk_crlf_step(gapi__http_parser *p, const char *data, size_t *pos)
{
    char want = p->state == S_CHUNK_CR ? '\r' : '\n';

    if (data[*pos] != want)
        return fail(p, GAPI__HPE_INVALID_CHUNK, "chunk data not followed by CRLF");
    (*pos)++;
    p->state = p->state == S_CHUNK_CR ? S_CHUNK_LF : S_CHUNK_SIZE;
    return 0;
}

size_t gapi__http_parser_execute(gapi__http_parser *p, const char *data, size_t len)
{
    size_t pos = 0;
    int rc = 0;

    if (p->state == S_DONE || p->state == S_ERROR || len == 0)
        return 0;
    p->flags |= F_STARTED;
    while (pos < len && rc == 0) {
        switch (p->state) {
        case S_BODY_LENGTH:
        case S_CHUNK_DATA:
            rc = counted_step(p, data, len, &pos);
            break;
        case S_BODY_EOF:
            rc = body_bytes(p, data + pos, len - pos);
            pos = len;
            break;
        case S_CHUNK_CR:
        case S_CHUNK_LF:
            rc = chunk_crlf_step(p, data, &pos);
            break;
        case S_DONE:
            return pos;
        default:
            rc = line_step(p, data, len, &pos);
            break;
        }
    }
    return pos;
}

gapi__hpe gapi__http_parser_finish(gapi__http_parser *p)
{
    if (p->state == S_ERROR)
        return p->error;
    if (p->state == S_DONE)
        return GAPI__HPE_OK;
    if (p->state == S_BODY_EOF) {
        message_complete(p);
        return p->error;
    }
    fail(p, GAPI__HPE_UNEXPECTED_EOF,
         p->state == S_START && !p->line_len ? "connection closed before the status line"
         : p->state <= S_HEADER              ? "connection closed inside the response head"
                                             : "connection closed inside the body");
    return p->error;
}

int gapi__http_parser_started(const gapi__http_parser *p)
{
    return (p->flags & F_STARTED) != 0;
}

const char *gapi__hpe_name(gapi__hpe e)
{
    switch (e) {
    case GAPI__HPE_OK:
        return "OK";
    case GAPI__HPE_INVALID_VERSION:
        return "INVALID_VERSION";
    case GAPI__HPE_INVALID_STATUS:
        return "INVALID_STATUS";
    case GAPI__HPE_INVALID_HEADER:
        return "INVALID_HEADER";
    case GAPI__HPE_HEADER_TOO_LARGE:
        return "HEADER_TOO_LARGE";
    case GAPI__HPE_INVALID_CONTENT_LENGTH:
        return "INVALID_CONTENT_LENGTH";
    case GAPI__HPE_INVALID_TRANSFER_ENCODING:
        return "INVALID_TRANSFER_ENCODING";
    case GAPI__HPE_INVALID_CHUNK:
        return "INVALID_CHUNK";
    case GAPI__HPE_UNEXPECTED_EOF:
        return "UNEXPECTED_EOF";
    case GAPI__HPE_CALLBACK:
        return "CALLBACK";
    case GAPI__HPE_UNEXPECTED_101:
        return "UNEXPECTED_101";
    }
    return "UNKNOWN";
}
