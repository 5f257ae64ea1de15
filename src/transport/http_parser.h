/*
 * HTTP/1.1 response parser: a pure, incremental state machine (no libevent,
 * no I/O, no allocation per byte). Feed it whatever the socket produced, in
 * any split; it calls back with the status, each header, body bytes (chunked
 * framing removed; Content-Encoding NOT undone: see inflate.h) and the end of
 * the message.
 *
 * Framing (RFC 9112 section 6.3), for a response to a request of known method:
 *  - 1xx (except 101) interim responses are skipped whole (on_info is told);
 *  - responses to HEAD, and 204 and 304, have no body;
 *  - Transfer-Encoding whose final coding is chunked: chunked, trailers
 *    delivered through on_trailer; Transfer-Encoding with Content-Length is an
 *    error (response smuggling), as in llhttp's strict mode;
 *  - else Content-Length (duplicates must agree, else error);
 *  - else the body runs until the connection closes: call
 *    gapi__http_parser_finish() at EOF.
 * Limits: the status line plus headers (and separately the trailers) may not
 * exceed max_header_bytes.
 */
#ifndef GAPI_TRANSPORT_HTTP_PARSER_H
#define GAPI_TRANSPORT_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

typedef enum gapi__hpe {
    GAPI__HPE_OK = 0,
    GAPI__HPE_INVALID_VERSION,           /* not "HTTP/1.x" */
    GAPI__HPE_INVALID_STATUS,            /* status code not 3 digits, bad status line */
    GAPI__HPE_INVALID_HEADER,            /* bad field name, missing colon, bad char */
    GAPI__HPE_HEADER_TOO_LARGE,          /* status line + headers over the limit */
    GAPI__HPE_INVALID_CONTENT_LENGTH,    /* not digits, overflow, disagreeing dups */
    GAPI__HPE_INVALID_TRANSFER_ENCODING, /* e.g. chunked not last, TE + CL */
    GAPI__HPE_INVALID_CHUNK,             /* bad chunk size line or missing CRLF */
    GAPI__HPE_UNEXPECTED_EOF,            /* finish() before the message was complete */
    GAPI__HPE_CALLBACK,                  /* a callback returned non-zero */
    GAPI__HPE_UNEXPECTED_101             /* 101 Switching Protocols (never requested) */
} gapi__hpe;

typedef struct gapi__http_callbacks {
    /* Interim 1xx response skipped (may be NULL). */
    int (*on_info)(void *ud, int status);
    /* Final status line. reason is not NUL-terminated. */
    int (*on_status)(void *ud, int http_minor, int status, const char *reason, size_t reason_len);
    /* One header field: name as received (case kept), value with leading and
     * trailing whitespace removed. Obsolete line folding is rejected. */
    int (*on_header)(void *ud, const char *name, size_t name_len, const char *value,
                     size_t value_len);
    /* All headers seen; framing is decided (see fields of the parser). */
    int (*on_headers_complete)(void *ud);
    /* Body bytes (de-chunked). */
    int (*on_body)(void *ud, const char *data, size_t len);
    /* One trailer field after a chunked body (may be NULL). */
    int (*on_trailer)(void *ud, const char *name, size_t name_len, const char *value,
                      size_t value_len);
    /* The response is complete. The parser stops consuming input after it:
     * any further bytes are left unconsumed by execute(). */
    int (*on_message_complete)(void *ud);
} gapi__http_callbacks;

typedef enum gapi__http_framing {
    GAPI__HTTP_FRAMING_NONE = 0, /* no body */
    GAPI__HTTP_FRAMING_LENGTH,   /* Content-Length */
    GAPI__HTTP_FRAMING_CHUNKED,
    GAPI__HTTP_FRAMING_EOF /* until the connection closes */
} gapi__http_framing;

typedef struct gapi__http_parser {
    /* Set by gapi__http_parser_init; read-only to callers afterwards. */
    const gapi__http_callbacks *cb;
    void *ud;
    size_t max_header_bytes;
    int head_request; /* response to HEAD: no body whatever the headers say */

    /* Results, valid from on_headers_complete on. */
    int status;
    int http_minor; /* 0 or 1 */
    gapi__http_framing framing;
    int64_t content_length;   /* -1 when not given */
    int keep_alive;           /* connection reusable after this message */
    int complete;             /* on_message_complete was called */
    gapi__hpe error;          /* first error; sticky */
    const char *error_reason; /* static text naming the problem, "" if none */

    /* Private state (the implementation may add fields here). */
    int state;
    size_t header_bytes; /* bytes of the current head section seen */
    uint64_t remaining;  /* bytes left in the current body/chunk */
    char line[8192];     /* fallback accumulation for a split token */
    size_t line_len;
    unsigned flags;
} gapi__http_parser;

/* Prepare p for one response. head_request: the request was HEAD.
 * max_header_bytes 0 means 64 KiB. */
void gapi__http_parser_init(gapi__http_parser *p, const gapi__http_callbacks *cb, void *ud,
                            int head_request, size_t max_header_bytes);

/* Feed bytes. Returns how many were consumed: len, unless the message
 * completed (then the bytes after it are left over) or an error occurred (then
 * p->error is set and the return value is where it was found). */
size_t gapi__http_parser_execute(gapi__http_parser *p, const char *data, size_t len);

/* The peer closed the connection. Completes a read-until-close body (calling
 * on_message_complete) and returns GAPI__HPE_OK; otherwise, if the message
 * was not complete, sets and returns GAPI__HPE_UNEXPECTED_EOF. */
gapi__hpe gapi__http_parser_finish(gapi__http_parser *p);

/* Whether any byte of the response has been consumed (for replay decisions). */
int gapi__http_parser_started(const gapi__http_parser *p);

const char *gapi__hpe_name(gapi__hpe e);

#endif
