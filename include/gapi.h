/*
 * gapi — Google REST APIs from event-driven C programs.
 *
 * Every request runs on one libevent loop. All library state belongs to the
 * loop's thread: unless a function's comment says otherwise, call it on the
 * thread that runs the client's event_base (inside or outside a gapi
 * callback). Callbacks always run on that thread.
 *
 * Conventions (see README):
 *  - functions return 0 (GAPI_OK) or a negative gapi_error;
 *  - out-parameters come first and are left untouched on failure;
 *  - the user pointer is the last argument of every callback;
 *  - inputs are copied; json_object pointers are referenced, never stolen;
 *  - an accepted request gets exactly one callback, never from inside the call
 *    that accepted it.
 */
#ifndef GAPI_H
#define GAPI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(GAPI_BUILDING) && defined(__GNUC__)
#define GAPI_EXTERN __attribute__((visibility("default")))
#else
#define GAPI_EXTERN
#endif

#define GAPI_VERSION_MAJOR 0
#define GAPI_VERSION_MINOR 1
#define GAPI_VERSION_PATCH 0
/* 0xMMmmpp, comparable with <, like LIBCURL_VERSION_NUM. */
#define GAPI_VERSION_NUM                                                                           \
    ((GAPI_VERSION_MAJOR << 16) | (GAPI_VERSION_MINOR << 8) | GAPI_VERSION_PATCH)
#define GAPI_VERSION_STRING "0.1.0"

/* Version of the library actually linked (may differ from the header's). */
GAPI_EXTERN unsigned gapi_version_num(void);
GAPI_EXTERN const char *gapi_version_string(void);

struct event_base;
struct evdns_base;
struct json_object;

/* ------------------------------------------------------------------------ */
/* Errors. Codes are never renumbered; new ones are added at the end.        */

typedef enum gapi_error {
    GAPI_OK = 0,
    GAPI_ENOMEM = -1,           /* out of memory */
    GAPI_EINVAL = -2,           /* invalid argument (message says which) */
    GAPI_EDNS = -3,             /* host name could not be resolved */
    GAPI_ECONNECT = -4,         /* TCP connect failed on every address */
    GAPI_ETLS = -5,             /* TLS handshake or TLS I/O failed */
    GAPI_ETLSVERIFY = -6,       /* peer certificate rejected (message: reason) */
    GAPI_ECONNRESET = -7,       /* connection closed before any response byte */
    GAPI_ETRUNCATED = -8,       /* connection closed mid-response */
    GAPI_EPROTO = -9,           /* malformed HTTP response */
    GAPI_EHEADERSIZE = -10,     /* response headers over the limit */
    GAPI_EBODYSIZE = -11,       /* response body over the limit */
    GAPI_EDECODE = -12,         /* Content-Encoding (gzip/deflate) corrupt */
    GAPI_ECONNECTTIMEOUT = -13, /* DNS + connect + TLS took too long */
    GAPI_ESTALL = -14,          /* no byte moved for the stall timeout */
    GAPI_EDEADLINE = -15,       /* the request's total deadline passed */
    GAPI_ECANCELED = -16,       /* cancelled by gapi_request_cancel() */
    GAPI_ESHUTDOWN = -17,       /* the client was freed with the request in flight */
    GAPI_EJSON = -18,           /* response says JSON but does not parse */
    GAPI_EHTTP = -19,           /* HTTP error status (used by API-level calls) */
    GAPI_ETLSCONFIG = -20,      /* CA file/dir/PEM could not be loaded */
    GAPI_EBUSY = -21,           /* object in a state that refuses the call */
    GAPI_EUPLOAD = -22          /* the request body reader reported failure */
} gapi_error;

/* Static English text for a code; never NULL (unknown codes get a text too). */
GAPI_EXTERN const char *gapi_strerror(int err);

/* Symbolic name of a code, e.g. "GAPI_ETLSVERIFY"; never NULL. */
GAPI_EXTERN const char *gapi_error_name(int err);

/* ------------------------------------------------------------------------ */
/* Memory. Optional; set before any other call. All three must be given.    */

GAPI_EXTERN int gapi_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                                   void (*free_fn)(void *));

/* ------------------------------------------------------------------------ */
/* Client.                                                                   */

typedef struct gapi_client gapi_client;
typedef struct gapi_request gapi_request;
typedef struct gapi_response gapi_response;

#define GAPI_CLIENT_OPTIONS_VERSION 1

typedef struct gapi_client_options {
    unsigned version; /* GAPI_CLIENT_OPTIONS_VERSION */

    /* Trust anchors. By default the system CA store is used. ca_file and
     * ca_dir replace it (like curl's CAINFO/CAPATH). Peer and host name
     * verification are always on; there is no switch to turn them off. */
    const char *ca_file;
    const char *ca_dir;
    /* Additional trust anchors as PEM text in memory (a test CA made at run
     * time, a private deployment's CA). Added to whatever store is in use. */
    const char *ca_pem;

    /* Connection pool. 0 picks the default. */
    unsigned max_conns_per_origin; /* default 8 */
    unsigned idle_timeout_ms;      /* idle keep-alive connection close; default 30000 */

    /* Default per-request limits; requests may override. 0 picks the default. */
    unsigned connect_timeout_ms; /* DNS+TCP+TLS, default 10000 */
    unsigned stall_timeout_ms;   /* no byte in either direction, default 60000 */
    unsigned deadline_ms;        /* total, default none (0) */
    size_t max_header_bytes;     /* default 64 KiB */
    size_t max_body_bytes;       /* decoded, default 256 MiB */

    /* Resolver to use; NULL makes one from the system configuration. Not
     * freed by the client. */
    struct evdns_base *dns_base;

    /* GAPI_CLIENT_* flags. */
    unsigned flags;
} gapi_client_options;

/* By default gapi_client_new sets SIGPIPE to SIG_IGN when it is still SIG_DFL:
 * a peer closing a socket while a request is written must not kill the
 * process (libevent and OpenSSL write with write(2), which raises SIGPIPE).
 * This flag leaves the signal disposition alone; the caller then handles or
 * ignores SIGPIPE itself. */
#define GAPI_CLIENT_KEEP_SIGPIPE 0x1u

#define GAPI_CLIENT_OPTIONS_INIT                                                                   \
    {                                                                                              \
        GAPI_CLIENT_OPTIONS_VERSION, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, NULL, 0                \
    }

/* Make a client bound to the caller's event_base. The library never runs the
 * loop itself in this mode. opts may be NULL for defaults. On failure *out is
 * untouched and, when errbuf is not NULL, a message naming the problem is
 * written into it (errbuf_size bytes at most, NUL-terminated).
 * Returns 0, GAPI_EINVAL (bad base/options), GAPI_ETLSCONFIG (CA not loadable),
 * GAPI_ENOMEM, GAPI_EDNS (no resolver). */
GAPI_EXTERN int gapi_client_new(gapi_client **out, struct event_base *base,
                                const gapi_client_options *opts, char *errbuf, size_t errbuf_size);

/* Free the client. Every request still in flight or not yet started completes
 * with GAPI_ESHUTDOWN, each callback once, before this returns. Called from
 * inside a gapi callback, the free is deferred until the outermost callback
 * returns, then done the same way. After it returns, the client has no events
 * left on the base. NULL is a no-op. */
GAPI_EXTERN void gapi_client_free(gapi_client *c);

/* The base the client runs on. */
GAPI_EXTERN struct event_base *gapi_client_base(const gapi_client *c);

/* Counters for tests and metrics. */
typedef struct gapi_client_stats {
    uint64_t requests_started;   /* accepted by gapi_request_send */
    uint64_t requests_completed; /* callbacks delivered */
    uint64_t connections_opened; /* TCP connections begun */
    uint64_t connections_reused; /* requests sent on a kept-alive connection */
    uint64_t tls_resumed;        /* TLS handshakes that resumed a session */
    uint64_t replays;            /* requests replayed after a stale keep-alive */
    unsigned connections_open;   /* open now (busy + idle) */
    unsigned connections_idle;   /* idle now */
    unsigned requests_waiting;   /* waiting for a free connection slot */
} gapi_client_stats;

GAPI_EXTERN void gapi_client_get_stats(const gapi_client *c, gapi_client_stats *out);

/* ------------------------------------------------------------------------ */
/* Low-level requests: method, URL, headers, body. Higher layers build on it. */

/* Called once per accepted request on the loop thread. err is 0 when a whole
 * response arrived (whatever its HTTP status). resp is non-NULL whenever a
 * status line and headers were received (also with some errors, e.g.
 * GAPI_EJSON, GAPI_EBODYSIZE, GAPI_ETRUNCATED); it is borrowed and valid
 * until the callback returns, as is req. gapi_request_errmsg(req) says more. */
typedef void (*gapi_response_cb)(gapi_request *req, int err, const gapi_response *resp, void *arg);

/* Streamed request body: copy up to len bytes into buf and return how many
 * (0 = end of body), or -1 to abort the request with GAPI_EUPLOAD. Called on
 * the loop thread; may be called again if the request is replayed only when
 * a rewind callback was given. */
typedef long (*gapi_body_read_cb)(void *buf, size_t len, void *arg);

/* Make an unsent request. method is an HTTP token ("GET", "POST", ...); url
 * is an absolute http:// or https:// URL (user-info and fragments refused).
 * Returns 0, GAPI_EINVAL (NULL argument, method not a token, URL not absolute
 * http(s), empty host, bad port, control characters) or GAPI_ENOMEM. */
GAPI_EXTERN int gapi_request_new(gapi_request **out, gapi_client *c, const char *method,
                                 const char *url);

/* Free a request that was never sent (or whose send failed). Sent requests
 * are freed by the library after their callback returns. NULL is a no-op. */
GAPI_EXTERN void gapi_request_free(gapi_request *req);

/* Add a header. Name must be an HTTP token; value must not contain CR, LF or
 * NUL (no header injection is possible). Host, Content-Length,
 * Transfer-Encoding and Connection are managed by the library and refused.
 * Returns 0, GAPI_EINVAL (message via gapi_request_errmsg), GAPI_ENOMEM,
 * GAPI_EBUSY (already sent). */
GAPI_EXTERN int gapi_request_add_header(gapi_request *req, const char *name, const char *value);

/* Set a body, copied. Sent with Content-Length. content_type may be NULL. */
GAPI_EXTERN int gapi_request_set_body(gapi_request *req, const void *data, size_t len,
                                      const char *content_type);

/* Set a streamed body. With content_length >= 0 it is sent with
 * Content-Length (the reader must supply exactly that many bytes, else the
 * request fails with GAPI_EUPLOAD); with -1 it is sent chunked. */
GAPI_EXTERN int gapi_request_set_body_reader(gapi_request *req, long long content_length,
                                             const char *content_type, gapi_body_read_cb read,
                                             void *arg);

/* Override the client's timeouts for this request (ms; 0 keeps the client's
 * value, GAPI_NO_TIMEOUT disables that timeout). */
#define GAPI_NO_TIMEOUT 0xFFFFFFFFu
GAPI_EXTERN int gapi_request_set_timeouts(gapi_request *req, unsigned connect_ms, unsigned stall_ms,
                                          unsigned deadline_ms);

/* Mark the request idempotent (default: GET, HEAD, PUT, DELETE, OPTIONS are,
 * others are not). Only idempotent requests are replayed on a fresh
 * connection when a reused keep-alive connection fails before any response
 * byte arrives. */
GAPI_EXTERN int gapi_request_set_idempotent(gapi_request *req, int idempotent);

/* Send. On 0 the library owns req and cb will be called exactly once, later
 * (never from inside this call). On failure the caller still owns req.
 * Returns 0, GAPI_EINVAL (no callback), GAPI_EBUSY (already sent),
 * GAPI_ESHUTDOWN (client being freed), GAPI_ENOMEM. */
GAPI_EXTERN int gapi_request_send(gapi_request *req, gapi_response_cb cb, void *arg);

/* Cancel a sent request whose callback has not run yet. Its callback runs
 * later with GAPI_ECANCELED (never from inside this call); the connection it
 * used is closed. Safe from inside any callback, including its own (then it
 * does nothing). Returns 0 or GAPI_EBUSY (not sent / already completing). */
GAPI_EXTERN int gapi_request_cancel(gapi_request *req);

/* Detail message for the last error on req ("" if none). Lives with req. */
GAPI_EXTERN const char *gapi_request_errmsg(const gapi_request *req);

GAPI_EXTERN const char *gapi_request_method(const gapi_request *req);
GAPI_EXTERN const char *gapi_request_url(const gapi_request *req);

/* ------------------------------------------------------------------------ */
/* Responses: borrowed inside the callback.                                  */

GAPI_EXTERN int gapi_response_status(const gapi_response *resp);
/* First header with that name (case-insensitive) or NULL. */
GAPI_EXTERN const char *gapi_response_header(const gapi_response *resp, const char *name);
GAPI_EXTERN size_t gapi_response_header_count(const gapi_response *resp);
/* i-th header in arrival order; returns 0 or GAPI_EINVAL if i is too big. */
GAPI_EXTERN int gapi_response_header_at(const gapi_response *resp, size_t i, const char **name,
                                        const char **value);
/* Decoded body (gzip/deflate undone), NUL-terminated for convenience. */
GAPI_EXTERN const char *gapi_response_body(const gapi_response *resp, size_t *len);
/* Parsed body when Content-Type is JSON (application/json or +json), else
 * NULL. Borrowed: take json_object_get() to keep it. */
GAPI_EXTERN struct json_object *gapi_response_json(const gapi_response *resp);

#ifdef __cplusplus
}
#endif

#endif /* GAPI_H */
