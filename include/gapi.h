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
    GAPI_EUPLOAD = -22,         /* the request body reader reported failure */
    GAPI_EDISCOVERY = -23,      /* discovery document malformed (message: where) */
    GAPI_EFULL = -24,           /* too many requests queued or in flight (max_pending) */
    GAPI_EDEADLK = -25,         /* blocking call on the loop thread would deadlock */
    GAPI_ETIMEDOUT = -26,       /* a blocking wait timed out */
    GAPI_ECREDENTIALS = -27,    /* credentials unusable or not found (message: which, where) */
    GAPI_EAUTH = -28            /* no access token: the token source refused or failed */
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
typedef struct gapi_response gapi_response;

/* ------------------------------------------------------------------------ */
/* Retries: like Python's execute(num_retries=N), without sleeping: the     */
/* wait between attempts is a timer on the loop.                            */

#define GAPI_RETRY_POLICY_VERSION 1

/*
 * Which outcomes are retried: the transport errors GAPI_EDNS,
 * GAPI_ECONNECT, GAPI_ECONNECTTIMEOUT, GAPI_ECONNRESET, GAPI_ETRUNCATED,
 * GAPI_ETLS (an I/O error after the handshake; a rejected certificate,
 * GAPI_ETLSVERIFY, is not) and GAPI_ESTALL; HTTP 408, 429, 500, 502, 503,
 * 504; and 403 whose JSON error gives the reason rateLimitExceeded or
 * userRateLimitExceeded. A 401 on a request with token credentials is
 * handled apart: the token is refreshed and the request retried once,
 * whatever the policy. Nothing else is retried (a malformed response, a size
 * limit, a deadline, a cancel, a shutdown), nor a request whose body comes
 * from a gapi_body_read_cb (it cannot be read twice).
 *
 * Idempotency: only idempotent requests are retried (GET, HEAD, PUT,
 * DELETE, OPTIONS, or marked with gapi_request_set_idempotent), unless the
 * policy has GAPI_RETRY_NON_IDEMPOTENT or the attempt failed before any
 * byte was sent (GAPI_EDNS, GAPI_ECONNECT, GAPI_ECONNECTTIMEOUT). A POST that timed out may have
 * been carried out; retrying it is the caller's decision, as in Python, whose num_retries applies
 * only when asked for.
 *
 * Waits: attempt n (n >= 1) failed -> wait a random time in
 * [0, min(max_delay_ms, initial_delay_ms * multiplier^(n-1))] ("full
 * jitter"), or at least what a Retry-After header asks (seconds or an
 * HTTP-date). No attempt starts once max_elapsed_ms have passed since the
 * first began, nor once the request's deadline (gapi_request_set_timeouts;
 * it covers every attempt, every wait and the wait for a token) would pass
 * during the wait: the last outcome is then final.
 */
typedef struct gapi_retry_policy {
    unsigned version;          /* GAPI_RETRY_POLICY_VERSION */
    unsigned max_attempts;     /* in all, the first included; 0 or 1: never retry */
    unsigned initial_delay_ms; /* 0 picks 1000 */
    unsigned max_delay_ms;     /* cap of one wait; 0 picks 32000 */
    double multiplier;         /* 0 picks 2.0; below 1 or above 1000 is refused */
    unsigned max_elapsed_ms;   /* 0: bounded by attempts and the deadline only */
    unsigned flags;            /* GAPI_RETRY_* */
} gapi_retry_policy;

/* Retry non-idempotent requests too ("always retry", the default of
 * Google's Cloud Storage clients for some calls). */
#define GAPI_RETRY_NON_IDEMPOTENT 0x1u
/* Wait exactly the computed backoff (no jitter), for tests. */
#define GAPI_RETRY_NO_JITTER 0x2u

/* 5 attempts, 1 s, x2, at most 32 s per wait. */
#define GAPI_RETRY_POLICY_INIT                                                                     \
    {                                                                                              \
        GAPI_RETRY_POLICY_VERSION, 5, 1000, 32000, 2.0, 0, 0                                       \
    }

typedef struct gapi_request gapi_request;

/* What one attempt came to, for logs and metrics. Never holds a token. */
typedef struct gapi_attempt_info {
    unsigned attempt;   /* 1 for the first */
    int err;            /* its outcome: 0 when a whole response arrived */
    int status;         /* its HTTP status; 0 when none arrived */
    int retrying;       /* 1: attempt + 1 follows after delay_ms */
    unsigned delay_ms;  /* the wait chosen (0 when not retrying) */
    const char *reason; /* e.g. "HTTP 503 is retryable", "attempts exhausted (5)" */
} gapi_attempt_info;

/* Called on the loop thread when an attempt's transfer ends, the last one
 * included, before the request's callback. A request that ends while it
 * waits for a token or for its next attempt (cancel, deadline, shutdown, a
 * token failure) gets no further call: its callback says how it ended. The
 * library's own token requests are not reported (their bodies hold
 * secrets). It may only read req and info (gapi_request_* accessors); it
 * must not send, cancel or free anything. */
typedef void (*gapi_attempt_cb)(const gapi_request *req, const gapi_attempt_info *info, void *arg);

typedef struct gapi_credentials gapi_credentials;

#define GAPI_CLIENT_OPTIONS_VERSION 3

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

    /* --- version 2 --- */

    /* Back-pressure: at most this many requests queued for the loop or in
     * flight (all threads together); 0 = no bound. At the bound,
     * gapi_request_submit fails with GAPI_EFULL, or waits for room when
     * GAPI_CLIENT_SUBMIT_BLOCKS is set (never on the loop thread), and
     * gapi_request_send fails with GAPI_EFULL. */
    size_t max_pending;

    /* Prepended to the User-Agent header ("myapp/1.2 gapi/0.1.0"), like the
     * application name of Google's other clients. Copied; NULL for none.
     * Must be printable ASCII. */
    const char *application_name;

    /* --- version 3 --- */

    /* Credentials for API calls (requests built by gapi_call_*); the client
     * takes a reference. NULL: calls go out without credentials. Low-level
     * requests (gapi_request_new) carry credentials only when given them
     * with gapi_request_set_credentials: a token must not travel to any URL
     * a program happens to fetch. */
    gapi_credentials *credentials;

    /* Retry policy of every request that sets none (copied). NULL: no
     * retries. */
    const gapi_retry_policy *retry;

    /* Told of every attempt of every request (NULL: nobody). */
    gapi_attempt_cb on_attempt;
    void *on_attempt_arg;
} gapi_client_options;

/* By default gapi_client_new sets SIGPIPE to SIG_IGN when it is still SIG_DFL:
 * a peer closing a socket while a request is written must not kill the
 * process (libevent and OpenSSL write with write(2), which raises SIGPIPE).
 * This flag leaves the signal disposition alone; the caller then handles or
 * ignores SIGPIPE itself. */
#define GAPI_CLIENT_KEEP_SIGPIPE 0x1u
/* With max_pending: a full client makes gapi_request_submit wait for room
 * instead of failing with GAPI_EFULL. */
#define GAPI_CLIENT_SUBMIT_BLOCKS 0x2u

#define GAPI_CLIENT_OPTIONS_INIT                                                                   \
    {                                                                                              \
        GAPI_CLIENT_OPTIONS_VERSION, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, NULL, 0, 0, NULL,      \
            NULL, NULL, NULL, NULL                                                                 \
    }

/* Threads. A client lives on one loop thread: every call below runs there,
 * except those marked "any thread" (gapi_request_new and the other request
 * builders may run on any thread for a request that thread owns). Other
 * threads hand requests in with gapi_request_submit / _submit_future /
 * _execute; callbacks always run on the loop thread. */

/* Make a client bound to the caller's event_base, on the thread that runs
 * that base's loop (that thread becomes the client's loop thread: making
 * the client on one thread and running the loop on another defeats the
 * GAPI_EDEADLK check and the loop-thread fast paths). The
 * library never runs the loop itself in this mode. The client keeps one
 * persistent event on the base (the wake-up of its submission queue), so
 * event_base_dispatch() returns only after gapi_client_shutdown() has
 * finished or the client is freed. opts may be NULL for defaults. On failure
 * *out is untouched and, when errbuf is not NULL, a message naming the
 * problem is written into it (errbuf_size bytes at most, NUL-terminated).
 * Options of versions 1 and 2 are accepted. Returns 0, GAPI_EINVAL (bad
 * base/options), GAPI_ETLSCONFIG (CA not loadable), GAPI_ENOMEM, GAPI_EDNS
 * (no resolver). */
GAPI_EXTERN int gapi_client_new(gapi_client **out, struct event_base *base,
                                const gapi_client_options *opts, char *errbuf, size_t errbuf_size);

/* Make a client that runs its own event_base on its own thread, for
 * programs that only have worker threads. Returns once that thread runs.
 * Use it with gapi_request_submit, _submit_future and _execute; stop it with
 * gapi_client_shutdown (optional) and gapi_client_free. Same errors as
 * gapi_client_new. */
GAPI_EXTERN int gapi_client_start(gapi_client **out, const gapi_client_options *opts, char *errbuf,
                                  size_t errbuf_size);

/* Any thread. Close the client to new work: from now on every submit and
 * send fails at once with GAPI_ESHUTDOWN. Requests already accepted
 * (including those still in the queue) may finish for up to drain_ms
 * milliseconds; then whatever is left completes with GAPI_ESHUTDOWN. Every
 * accepted request gets its callback exactly once, on the loop thread.
 * Afterwards the client has no events left on the base (an owned thread's
 * loop ends) but must still be freed. Does not wait. A second call does
 * nothing. Returns 0 or GAPI_EINVAL. */
GAPI_EXTERN int gapi_client_shutdown(gapi_client *c, unsigned drain_ms);

/* Free the client. Every request still in flight or not yet started completes
 * with GAPI_ESHUTDOWN, each callback once, before this returns (for a
 * client made by gapi_client_start: after the drain a previous
 * gapi_client_shutdown asked for; the call waits for the loop thread and
 * joins it). Called from inside a gapi callback, the free is deferred until
 * the outermost callback returns, then done the same way. After it returns,
 * the client has no events left on the base. A gapi_client_new client must
 * be freed on its loop thread; a gapi_client_start one on any thread. No
 * other thread may use the client once this is called. NULL is a no-op. */
GAPI_EXTERN void gapi_client_free(gapi_client *c);

/* The base the client runs on. */
GAPI_EXTERN struct event_base *gapi_client_base(const gapi_client *c);

/* Counters for tests and metrics. */
typedef struct gapi_client_stats {
    uint64_t requests_started;   /* accepted (the library's token requests included) */
    uint64_t requests_completed; /* callbacks delivered */
    uint64_t connections_opened; /* TCP connections begun */
    uint64_t connections_reused; /* requests sent on a kept-alive connection */
    uint64_t tls_resumed;        /* TLS handshakes that resumed a session */
    uint64_t replays;            /* requests replayed after a stale keep-alive */
    unsigned connections_open;   /* open now (busy + idle) */
    unsigned connections_idle;   /* idle now */
    unsigned requests_waiting;   /* waiting for a free connection slot */
    uint64_t retries;            /* attempts after the first, all requests */
    uint64_t token_fetches;      /* access tokens requested (or signed) */
} gapi_client_stats;

/* Any thread. On the loop thread the counters are current; on another
 * thread they are as of the loop's last batch of completions or
 * submissions (they lag by at most one batch). */
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
 * value, GAPI_NO_TIMEOUT disables that timeout). connect and stall apply to
 * each attempt; the deadline runs from acceptance to completion, across
 * every attempt, retry wait and wait for a token (GAPI_EDEADLINE). */
#define GAPI_NO_TIMEOUT 0xFFFFFFFFu
GAPI_EXTERN int gapi_request_set_timeouts(gapi_request *req, unsigned connect_ms, unsigned stall_ms,
                                          unsigned deadline_ms);

/* Mark the request idempotent (default: GET, HEAD, PUT, DELETE, OPTIONS are,
 * others are not). Only idempotent requests are replayed on a fresh
 * connection when a reused keep-alive connection fails before any response
 * byte arrives. */
GAPI_EXTERN int gapi_request_set_idempotent(gapi_request *req, int idempotent);

/* Retry policy of this request (copied); NULL: the client's. A policy with
 * max_attempts 1 turns retries off for it. Returns 0, GAPI_EINVAL (bad
 * policy: version, multiplier below 1), GAPI_EBUSY (already sent). */
GAPI_EXTERN int gapi_request_set_retry(gapi_request *req, const gapi_retry_policy *policy);

/* Credentials for this request, replacing the client's (a reference is
 * taken). NULL sends it without credentials. Returns 0, GAPI_EINVAL,
 * GAPI_EBUSY (already sent). Any thread, for a request it owns. */
GAPI_EXTERN int gapi_request_set_credentials(gapi_request *req, gapi_credentials *cr);

/* Attempts made so far (inside the callback: in all). 0 before sending. */
GAPI_EXTERN unsigned gapi_request_attempts(const gapi_request *req);

/* Loop thread. Send. On 0 the library owns req and cb will be called exactly
 * once, later (never from inside this call). On failure the caller still
 * owns req. Returns 0, GAPI_EINVAL (no callback), GAPI_EBUSY (already sent),
 * GAPI_ESHUTDOWN (client shut down or being freed), GAPI_EFULL (max_pending
 * reached), GAPI_ENOMEM. */
GAPI_EXTERN int gapi_request_send(gapi_request *req, gapi_response_cb cb, void *arg);

/* Any thread. Hand a request to the client's loop. On 0 the library owns
 * req; cb runs exactly once, later, on the loop thread (also for requests
 * still queued when the client shuts down: GAPI_ESHUTDOWN). On failure the
 * caller still owns req. Returns 0, GAPI_EINVAL (no callback), GAPI_EBUSY
 * (already sent), GAPI_ESHUTDOWN (client shut down), GAPI_EFULL (max_pending
 * reached and GAPI_CLIENT_SUBMIT_BLOCKS not set), GAPI_ENOMEM. To cancel from
 * another thread, submit with a future. */
GAPI_EXTERN int gapi_request_submit(gapi_request *req, gapi_response_cb cb, void *arg);

/* A handle on a submitted request, owned by the thread that submitted it:
 * wait for it, poll it, cancel it, then read the result and free it. */
typedef struct gapi_future gapi_future;

/* Any thread. Like gapi_request_submit, with the outcome kept in a future
 * instead of a callback. On 0 *out is the caller's (free with
 * gapi_future_free) and req belongs to the future. Same errors as
 * gapi_request_submit. */
GAPI_EXTERN int gapi_request_submit_future(gapi_request *req, gapi_future **out);

/* Any thread but the loop thread: the blocking call (Python's execute()).
 * Submits req and waits up to timeout_ms (0: no limit) for it. Returns 0 when
 * req was accepted: *out is then a done future (check gapi_future_error, read
 * gapi_future_response, then gapi_future_free) and req belongs to it. When
 * the wait times out the request is cancelled, the call waits for the
 * cancellation (one loop iteration: unbounded if the loop is stalled or not
 * running) and the future's error is GAPI_ETIMEDOUT.
 * Otherwise *out is untouched, req is still the caller's, and the return is
 * GAPI_EDEADLK (called on the loop thread: it would never complete) or a
 * gapi_request_submit error. */
GAPI_EXTERN int gapi_request_execute(gapi_request *req, unsigned timeout_ms, gapi_future **out);

/* Wait until the request completes, at most timeout_ms (0: no limit).
 * Returns 0 (done), GAPI_ETIMEDOUT (not yet; wait again, cancel or free), or
 * GAPI_EDEADLK (called on the loop thread while the request is not done). */
GAPI_EXTERN int gapi_future_wait(gapi_future *f, unsigned timeout_ms);

/* Wait for all n futures, at most timeout_ms in total (0: no limit). Returns
 * 0 when all are done, or the first error of gapi_future_wait. */
GAPI_EXTERN int gapi_future_wait_all(gapi_future *const *fs, size_t n, unsigned timeout_ms);

/* 1 if the request has completed, else 0. Never blocks. */
GAPI_EXTERN int gapi_future_done(gapi_future *f);

/* Any thread. Cancel: the request completes with GAPI_ECANCELED unless it
 * completes first. Returns 0 or GAPI_EBUSY (already done). */
GAPI_EXTERN int gapi_future_cancel(gapi_future *f);

/* Once done (else GAPI_EBUSY / NULL / ""): the request's outcome as a
 * callback would have received it, the response (NULL when none arrived;
 * gapi_response_* read it; valid until gapi_future_free), the detail message
 * and the request itself (for gapi_request_url and the like). */
GAPI_EXTERN int gapi_future_error(gapi_future *f);
GAPI_EXTERN const gapi_response *gapi_future_response(gapi_future *f);
GAPI_EXTERN const char *gapi_future_errmsg(gapi_future *f);
GAPI_EXTERN gapi_request *gapi_future_request(gapi_future *f);

/* Any thread. Free the future, its request and response. A future not yet
 * done is cancelled and the library frees it when the request completes.
 * NULL is a no-op. */
GAPI_EXTERN void gapi_future_free(gapi_future *f);

/* Loop thread. Cancel a sent request whose callback has not run yet. Its callback runs
 * later with GAPI_ECANCELED (never from inside this call); the connection it
 * used is closed. Safe from inside any callback, including its own (then it
 * does nothing). Returns 0 or GAPI_EBUSY (not sent / already completing). */
GAPI_EXTERN int gapi_request_cancel(gapi_request *req);

/* Detail message for the last error on req ("" if none). Lives with req. */
GAPI_EXTERN const char *gapi_request_errmsg(const gapi_request *req);

GAPI_EXTERN const char *gapi_request_method(const gapi_request *req);
GAPI_EXTERN const char *gapi_request_url(const gapi_request *req);

/* Introspection without sending (for logs and tests). The headers are those
 * added with gapi_request_add_header (a call's defaults included), in the
 * order added; the library's own (Host, User-Agent unless replaced,
 * Accept-Encoding unless replaced, Content-Type of the body,
 * Content-Length) are not listed. header_at returns 0 or GAPI_EINVAL (i
 * too big); header returns the first value of that name (case-insensitive)
 * or NULL. body is the fixed body (NULL when none or streamed; *len gets
 * its length), content_type the body's type or NULL. Pointers live as long
 * as req. */
GAPI_EXTERN size_t gapi_request_header_count(const gapi_request *req);
GAPI_EXTERN int gapi_request_header_at(const gapi_request *req, size_t i, const char **name,
                                       const char **value);
GAPI_EXTERN const char *gapi_request_header(const gapi_request *req, const char *name);
GAPI_EXTERN const void *gapi_request_body(const gapi_request *req, size_t *len);
GAPI_EXTERN const char *gapi_request_content_type(const gapi_request *req);

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

/* ------------------------------------------------------------------------ */
/* Discovery: a service model built from a Google discovery document, like   */
/* Python's build_from_document(). A model is immutable and reference        */
/* counted: any thread may read it and take or drop references, at any time. */
/* Every accessor below accepts NULL for its object and then returns NULL   */
/* or 0. Strings and borrowed objects live as long as the service.          */

typedef struct gapi_service gapi_service;
typedef struct gapi_method gapi_method;
typedef struct gapi_param gapi_param;

#define GAPI_SERVICE_OPTIONS_VERSION 1

typedef struct gapi_service_options {
    unsigned version; /* GAPI_SERVICE_OPTIONS_VERSION */

    /* Replaces the document's rootUrl and mtlsRootUrl, used verbatim (a
     * missing final '/' is added), like Python's client_options.api_endpoint
     * except that servicePath is still appended to it. NULL keeps the
     * document's. Must start with http:// or https://. */
    const char *endpoint;

    /* Domain that replaces "googleapis.com" at the end of the host of
     * rootUrl and mtlsRootUrl (so of the batch URL too). NULL reads
     * $GOOGLE_CLOUD_UNIVERSE_DOMAIN, and when that is unset uses
     * "googleapis.com". An empty value (option or variable) is an error. */
    const char *universe_domain;
} gapi_service_options;

#define GAPI_SERVICE_OPTIONS_INIT                                                                  \
    {                                                                                              \
        GAPI_SERVICE_OPTIONS_VERSION, NULL, NULL                                                   \
    }

/* Build a service from a discovery document in doc[0..len) (need not be
 * NUL-terminated; a buffer fetched from the network can be passed as is;
 * it is not referenced after the call). opts may be NULL for defaults. On
 * success *out holds one reference. On failure *out is untouched and, when
 * errbuf is not NULL, a message is written there (errbuf_size bytes at most,
 * NUL-terminated): for GAPI_EDISCOVERY it names the JSON path, e.g.
 * 'resources.objects.methods.insert: "httpMethod" missing'.
 * Returns 0, GAPI_EINVAL (NULL out or doc, bad options, empty universe
 * domain), GAPI_EDISCOVERY (not JSON, a field of the wrong type, rootUrl or
 * name missing, a method without id, httpMethod or path, a parameter with
 * an unknown location or type, resources nested deeper than 32, two
 * methods with the same dotted path or id) or GAPI_ENOMEM. Any thread. */
GAPI_EXTERN int gapi_service_from_json(gapi_service **out, const char *doc, size_t len,
                                       const gapi_service_options *opts, char *errbuf,
                                       size_t errbuf_size);

/* Same, reading the document from a file. Also returns GAPI_EINVAL when the
 * file cannot be read (the message names it and says why). */
GAPI_EXTERN int gapi_service_from_file(gapi_service **out, const char *path,
                                       const gapi_service_options *opts, char *errbuf,
                                       size_t errbuf_size);

/* Loading from the network, like Python's build(api, version). */

#define GAPI_SERVICE_FETCH_OPTIONS_VERSION 1

typedef struct gapi_service_fetch_options {
    unsigned version; /* GAPI_SERVICE_FETCH_OPTIONS_VERSION */

    /* Options of the model built (endpoint, universe domain); NULL for
     * defaults. The universe domain also replaces "googleapis.com" in the
     * two default discovery URLs. */
    const gapi_service_options *service;

    /* URL of the document, in which "{api}" and "{version}" (or
     * "{apiVersion}", Python's spelling) are replaced by the API name and
     * version; no other '{' or '}' may appear. NULL: Google's discovery
     * service, "https://www.googleapis.com/discovery/v1/apis/{api}/{version}/rest". */
    const char *discovery_url;
    /* Tried when discovery_url answers with an HTTP status other than 2xx
     * (Python falls back on 404 only). NULL: when discovery_url is NULL too,
     * "https://{api}.googleapis.com/$discovery/rest?version={version}";
     * else no fallback (Python's rule for an explicit discoveryServiceUrl).
     * "" disables the fallback. */
    const char *fallback_url;

    /* Directory of an on-disk cache of documents; NULL for none. It is made
     * (mode 0700) when missing; its parent must exist. An entry is
     * "API.VERSION.HASH.json" (HASH covers the URLs, so two deployments
     * never share one), mode 0600, replaced atomically. An entry younger
     * than cache_max_age_s is used without any request; one that is stale,
     * unreadable, not a valid document, a symlink, not owned by this user
     * or writable by others is ignored and, after a successful fetch,
     * replaced. Failing to write the cache never fails the fetch. */
    const char *cache_dir;
    /* Seconds; 0 = 86400 (one day, as Python's DISCOVERY_DOC_MAX_AGE). */
    unsigned cache_max_age_s;
} gapi_service_fetch_options;

#define GAPI_SERVICE_FETCH_OPTIONS_INIT                                                            \
    {                                                                                              \
        GAPI_SERVICE_FETCH_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0                              \
    }

/* Called once per accepted fetch, on the loop thread. On success err is 0
 * and the caller owns one reference to svc (gapi_service_unref); errmsg is
 * "" or says why the cache could not be written. On failure svc is NULL and
 * errmsg names every URL tried and what happened there. errmsg is borrowed
 * until the callback returns. */
typedef void (*gapi_service_fetch_cb)(gapi_service *svc, int err, const char *errmsg, void *arg);

/* Loop thread. Fetch the discovery document of api/version (e.g. "storage",
 * "v1") and build a service from it: from the cache when it holds a fresh
 * entry, else GET opts->discovery_url, then the fallback URL when that
 * answered with a non-2xx status. opts may be NULL for defaults. On 0 cb
 * runs exactly once, later (never from inside this call), also when the
 * client is freed first: a fetch waiting for the network then gets
 * GAPI_ESHUTDOWN, a cache hit not yet delivered its service. err is 0,
 * GAPI_EHTTP (non-2xx status from the last URL tried; the message has
 * each status and Google's error message), GAPI_EDISCOVERY (a 2xx body that
 * is not a valid discovery document; the loader's message; no fallback is
 * tried), a transport error as gapi_request_send reports it (GAPI_EDNS,
 * GAPI_ECONNECT, GAPI_ETLSVERIFY, ...; no fallback is tried),
 * GAPI_ESHUTDOWN or GAPI_ENOMEM (the fallback request takes over the first
 * one's max_pending slot). The two requests are plain GETs with the
 * client's defaults (timeouts, size limits; no credentials). The cache
 * works on the loop thread: a hit is read and parsed inside this call, and
 * a miss is written (with fsync) when the document arrives; keep the cache
 * on a local disk. On failure cb is never called and, when errbuf is not NULL,
 * a message is written there. Returns 0, GAPI_EINVAL (NULL argument; api
 * or version empty, longer than 100, with a character outside
 * [A-Za-z0-9._-], starting with '.' or holding ".."; bad options or URL
 * template; called off the loop thread), GAPI_ESHUTDOWN, GAPI_EFULL
 * (max_pending reached) or GAPI_ENOMEM. */
GAPI_EXTERN int gapi_service_fetch(gapi_client *c, const char *api, const char *version,
                                   const gapi_service_fetch_options *opts, char *errbuf,
                                   size_t errbuf_size, gapi_service_fetch_cb cb, void *arg);

/* Any thread but the loop thread: the blocking form (Python's build()).
 * Same steps and errors as gapi_service_fetch, done on the calling thread
 * with gapi_request_execute; waits at most timeout_ms in all (0: no
 * limit). On 0 *out holds one reference and errbuf holds "" or the cache
 * note; on failure *out is untouched and errbuf says why. Also returns
 * GAPI_EDEADLK (called on the loop thread: it would wait for itself) and
 * GAPI_ETIMEDOUT (the request in flight is cancelled). */
GAPI_EXTERN int gapi_service_fetch_sync(gapi_service **out, gapi_client *c, const char *api,
                                        const char *version, const gapi_service_fetch_options *opts,
                                        unsigned timeout_ms, char *errbuf, size_t errbuf_size);

/* Take a reference; returns svc. */
GAPI_EXTERN gapi_service *gapi_service_ref(gapi_service *svc);
/* Drop a reference; the last one frees the model. NULL is a no-op. */
GAPI_EXTERN void gapi_service_unref(gapi_service *svc);

/* Document fields. root_url is after endpoint override and universe
 * domain; service_path is "" when absent; batch_url is root_url joined with
 * batchPath (NULL when the document has no batchPath); others are NULL when
 * absent. */
GAPI_EXTERN const char *gapi_service_name(const gapi_service *svc);
GAPI_EXTERN const char *gapi_service_version(const gapi_service *svc);
GAPI_EXTERN const char *gapi_service_title(const gapi_service *svc);
GAPI_EXTERN const char *gapi_service_root_url(const gapi_service *svc);
GAPI_EXTERN const char *gapi_service_path(const gapi_service *svc);
GAPI_EXTERN const char *gapi_service_batch_path(const gapi_service *svc);
GAPI_EXTERN const char *gapi_service_batch_url(const gapi_service *svc);
GAPI_EXTERN const char *gapi_service_mtls_root_url(const gapi_service *svc);
GAPI_EXTERN const char *gapi_service_universe_domain(const gapi_service *svc);

/* Global (document-level) parameters, accepted by every method. */
GAPI_EXTERN size_t gapi_service_param_count(const gapi_service *svc);
GAPI_EXTERN const gapi_param *gapi_service_param_at(const gapi_service *svc, size_t i);
GAPI_EXTERN const gapi_param *gapi_service_param(const gapi_service *svc, const char *name);

/* A method by its dotted path from the service root ("objects.insert",
 * "projects.locations.instances.list"), or NULL. A resource and a method of
 * the same name under one parent stay distinct: "foo" is the method,
 * "foo.get" a method of resource foo. O(1). The result is borrowed. */
GAPI_EXTERN const gapi_method *gapi_service_method(const gapi_service *svc, const char *path);
/* A method by the document's id ("storage.objects.insert"), or NULL. O(1). */
GAPI_EXTERN const gapi_method *gapi_service_method_by_id(const gapi_service *svc, const char *id);
/* Every method: i in [0, count), depth-first in document order. */
GAPI_EXTERN size_t gapi_service_method_count(const gapi_service *svc);
GAPI_EXTERN const gapi_method *gapi_service_method_at(const gapi_service *svc, size_t i);

/* Parse the schema called name (a key of the document's "schemas") into a
 * new json-c tree; the caller owns the reference in *out. Returns 0,
 * GAPI_EINVAL (NULL argument, no such schema) or GAPI_ENOMEM. */
GAPI_EXTERN int gapi_service_schema(const gapi_service *svc, const char *name,
                                    struct json_object **out);
GAPI_EXTERN size_t gapi_service_schema_count(const gapi_service *svc);
GAPI_EXTERN const char *gapi_service_schema_name_at(const gapi_service *svc, size_t i);

/* gapi_method_flags() bits. */
#define GAPI_METHOD_MEDIA_UPLOAD           0x1u /* mediaUpload / supportsMediaUpload */
#define GAPI_METHOD_MEDIA_DOWNLOAD         0x2u /* supportsMediaDownload (alt=media) */
#define GAPI_METHOD_MEDIA_DOWNLOAD_SERVICE 0x4u /* useMediaDownloadService */
#define GAPI_METHOD_SUBSCRIPTION           0x8u /* supportsSubscription */

/* Method fields, as the document writes them; optional ones are NULL when
 * absent. name is the dotted path; path is the RFC 6570 template relative
 * to root_url + service_path; api_version is sent as x-goog-api-version. */
GAPI_EXTERN const char *gapi_method_name(const gapi_method *m);
GAPI_EXTERN const char *gapi_method_id(const gapi_method *m);
GAPI_EXTERN const char *gapi_method_http_method(const gapi_method *m);
GAPI_EXTERN const char *gapi_method_path(const gapi_method *m);
GAPI_EXTERN const char *gapi_method_flat_path(const gapi_method *m);
GAPI_EXTERN const char *gapi_method_api_version(const gapi_method *m);
GAPI_EXTERN const char *gapi_method_request_ref(const gapi_method *m);
GAPI_EXTERN const char *gapi_method_response_ref(const gapi_method *m);
GAPI_EXTERN size_t gapi_method_scope_count(const gapi_method *m);
GAPI_EXTERN const char *gapi_method_scope_at(const gapi_method *m, size_t i);
GAPI_EXTERN unsigned gapi_method_flags(const gapi_method *m);

/* Media upload (mediaUpload): accepted MIME patterns, the size limit in
 * bytes ("5TB" and "100MB" are read as 5 << 40 and 100 << 20; 0 = none),
 * and the upload path templates (relative to root_url; NULL when the
 * document gives none). */
typedef enum gapi_upload_protocol {
    GAPI_UPLOAD_SIMPLE = 1,   /* protocols.simple: uploadType=media|multipart */
    GAPI_UPLOAD_RESUMABLE = 2 /* protocols.resumable */
} gapi_upload_protocol;
GAPI_EXTERN size_t gapi_method_media_accept_count(const gapi_method *m);
GAPI_EXTERN const char *gapi_method_media_accept_at(const gapi_method *m, size_t i);
GAPI_EXTERN uint64_t gapi_method_media_max_size(const gapi_method *m);
GAPI_EXTERN const char *gapi_method_media_path(const gapi_method *m, gapi_upload_protocol p);

/* A parameter by name: the method's own, else the service's global one
 * (a method parameter wins over a global one of the same name). */
GAPI_EXTERN const gapi_param *gapi_method_param(const gapi_method *m, const char *name);
/* The method's own parameters (globals excluded): the parameterOrder ones
 * first, in that order (the first gapi_method_param_order_count), then the
 * rest in document order. */
GAPI_EXTERN size_t gapi_method_param_count(const gapi_method *m);
GAPI_EXTERN size_t gapi_method_param_order_count(const gapi_method *m);
GAPI_EXTERN const gapi_param *gapi_method_param_at(const gapi_method *m, size_t i);

typedef enum gapi_param_loc {
    GAPI_PARAM_QUERY = 1, /* "location": "query" */
    GAPI_PARAM_PATH = 2   /* "location": "path" (expanded into the path template) */
} gapi_param_loc;

/* Parameter fields. type is "string", "integer", "number", "boolean",
 * "any", "array" or "object" (NULL when absent); format, pattern (a regex
 * as written), default, minimum and maximum are the document's text, NULL
 * when absent. gapi_param_location returns 0 for NULL. */
GAPI_EXTERN const char *gapi_param_name(const gapi_param *p);
GAPI_EXTERN gapi_param_loc gapi_param_location(const gapi_param *p);
GAPI_EXTERN const char *gapi_param_type(const gapi_param *p);
GAPI_EXTERN const char *gapi_param_format(const gapi_param *p);
GAPI_EXTERN int gapi_param_required(const gapi_param *p);
GAPI_EXTERN int gapi_param_repeated(const gapi_param *p);
GAPI_EXTERN size_t gapi_param_enum_count(const gapi_param *p);
GAPI_EXTERN const char *gapi_param_enum_at(const gapi_param *p, size_t i);
GAPI_EXTERN const char *gapi_param_pattern(const gapi_param *p);
GAPI_EXTERN const char *gapi_param_default(const gapi_param *p);
GAPI_EXTERN const char *gapi_param_minimum(const gapi_param *p);
GAPI_EXTERN const char *gapi_param_maximum(const gapi_param *p);

/* ------------------------------------------------------------------------ */
/* API calls: requests built from discovery methods, like Python's         */
/* service.objects().list(bucket="b").                                      */

/*
 * A call is an ordinary unsent gapi_request: add headers, then send,
 * submit or execute it as any other.
 *
 * Method: its dotted path ("objects.list") or its id
 * ("storage.objects.list"). Parameters: the method's own, the document's
 * global ones, and the standard parameters every Google API accepts (alt,
 * fields, key, prettyPrint, quotaUser, userIp, access_token, callback,
 * oauth_token, upload_protocol, uploadType, $.xgafv), even where a
 * document omits one. Names are the document's ("max-results",
 * "$.xgafv"), not Python's argument spellings.
 *
 * Validation, each failure GAPI_EINVAL with a message naming the method id
 * and the parameter: an unknown parameter; a required one missing (path
 * parameters always count as required; a required "pageToken" of a method
 * whose response has no nextPageToken does not, as in Python); several
 * values for a parameter that is not repeated; an empty path parameter;
 * the type: integer (optional sign and decimal digits, within int32,
 * uint32, int64 or uint64 as the format says, int64 by default; strings of
 * format int64/uint64 too; rewritten canonically, "+007" -> "7"), number
 * (decimal text, no nan/inf), boolean (exactly "true" or "false": the
 * string "false" is false); a value not in the enum (each value of a
 * repeated parameter is checked); a value not matching the pattern,
 * matched like Python's re.match (anchored at the start; the pattern's own
 * "$" anchors the end); a path value that would make a "." or ".." path
 * segment (a server or proxy would collapse it into another resource).
 * minimum and maximum are not checked (Python does not; servers clamp).
 *
 * URL: root_url + service_path + the method's "path" template expanded
 * (RFC 6570: {name} encodes "/" as %2F, {+name} keeps reserved
 * characters), then the query: values percent-encoded (UTF-8 bytes as
 * %XX, space as %20, "+" "&" "=" encoded), a repeated parameter as
 * repeated keys. The query order is fixed: parameterOrder entries first,
 * in that order, then the others sorted by name (byte order); the values
 * of a repeated parameter stay in the order given. alt=json is added for
 * methods with a response when the caller gives no alt; alt=media asks
 * for a media download (refused unless the method supportsMediaDownload).
 *
 * Headers added: user-agent (the client's plus " (gzip)": Google's front
 * ends compress responses only for agents that say gzip), x-goog-api-client
 * ("gl-c/<compiler version> gdcl/<GAPI_VERSION_STRING>"), accept
 * ("application/json" for alt=json, else any type), and x-goog-api-version
 * when the method declares an apiVersion. A body is serialized compactly
 * (json-c, "/" not escaped) and sent as application/json. Accept-Encoding
 * is the library default.
 *
 * Completion: a call completes with GAPI_EHTTP when the status is >= 400
 * (also when such a body is broken JSON), gapi_request_errmsg reading like
 * "HTTP 404: No such object: b/o (notFound)" and the parsed body in
 * gapi_request_google_error; other statuses and errors are as for any
 * request. (Requests from gapi_request_new keep err 0 for every status.)
 *
 * Threads: building reads only the immutable service and writes only the
 * new request, so any thread may build calls, concurrently, from one
 * service. The request holds a reference to the service.
 */

typedef struct gapi_call_param {
    const char *name;
    const char *value; /* NULL: the parameter is not given */
} gapi_call_param;

/* Build a call from n name/value pairs (a name may repeat for a repeated
 * parameter). body: the request body, or NULL; serialized during the call,
 * neither kept nor stolen (the caller's reference and object are as
 * before); refused for methods without a request. On success *out is an
 * unsent request the caller owns. On failure *out is untouched and, when
 * errbuf is not NULL, a message is written there (errbuf_size bytes at
 * most, NUL-terminated). Returns 0, GAPI_EINVAL (NULL out, client, service
 * or method; unknown method; a parameter or body error as above) or
 * GAPI_ENOMEM. Any thread. */
GAPI_EXTERN int gapi_call_new(gapi_request **out, gapi_client *c, const gapi_service *svc,
                              const char *method, const gapi_call_param *params, size_t n,
                              struct json_object *body, char *errbuf, size_t errbuf_size);

/* Same, the parameters as a NULL-terminated list of (const char *) name,
 * value arguments after errbuf_size: gapi_call_newv(&req, c, svc,
 * "objects.get", NULL, err, sizeof(err), "bucket", "b", "object", "o",
 * (char *)NULL). A NULL value leaves the parameter out. */
GAPI_EXTERN int gapi_call_newv(gapi_request **out, gapi_client *c, const gapi_service *svc,
                               const char *method, struct json_object *body, char *errbuf,
                               size_t errbuf_size, ...);

/* Same, the parameters as a json-c object (NULL for none), read, not kept:
 * strings as they are, integers and numbers as decimal text (10.0 is the
 * integer 10 for an integer parameter), booleans as "true"/"false", null as
 * not given, an array as the values of a repeated parameter (an error for
 * one that is not repeated); objects and nested arrays are errors. */
GAPI_EXTERN int gapi_call_new_json(gapi_request **out, gapi_client *c, const gapi_service *svc,
                                   const char *method, struct json_object *params,
                                   struct json_object *body, char *errbuf, size_t errbuf_size);

/* The method a request was built for, or NULL when it was not built by
 * gapi_call_* (or gapi_call_next_page). */
GAPI_EXTERN const gapi_method *gapi_call_method(const gapi_request *req);

/* The next page of a list call, like Python's list_next(): the request
 * prev (built by gapi_call_*) again with pageToken set to resp's
 * nextPageToken; as a query parameter, or in the JSON body when the method
 * takes it there. Headers, timeouts and the body of prev are copied. prev
 * and resp are read, not kept (call it in prev's callback, or on a done
 * future's request). Returns 0 with *out the new unsent request, or 0 with
 * *out NULL when resp has no (or an empty) nextPageToken: the last page.
 * Errors (*out untouched, message in errbuf): GAPI_EINVAL (NULL out or
 * prev, prev not a call, the method takes no page token), GAPI_ENOMEM.
 * Any thread. */
GAPI_EXTERN int gapi_call_next_page(gapi_request **out, const gapi_request *prev,
                                    const gapi_response *resp, char *errbuf, size_t errbuf_size);

/* Called for each page that completed with err 0: return 0 for the next
 * page, anything else to stop. req and resp are borrowed, as in a
 * gapi_response_cb. */
typedef int (*gapi_page_cb)(gapi_request *req, const gapi_response *resp, void *arg);

/* Walk every page of a list call on the client's loop: submit first (as
 * gapi_request_submit does), call page for each page, follow
 * nextPageToken, and finally call done exactly once, with the last
 * request and response: err 0 after the last page or when page asked to
 * stop; the page's error when one failed (GAPI_EHTTP and the others; see
 * gapi_request_errmsg and gapi_request_google_error on req);
 * GAPI_EPROTO when a response's nextPageToken would repeat the request
 * just made (the walk would never end); or a gapi_call_next_page /
 * gapi_request_send error for the next page (the message is then in
 * gapi_request_errmsg(req)). Callbacks run on the loop thread, never from
 * inside this call. Any thread. On 0 the library owns first; on failure
 * the caller still does. Returns 0, GAPI_EINVAL (NULL argument, first not
 * a call) or a gapi_request_submit error. */
GAPI_EXTERN int gapi_call_pages(gapi_request *first, gapi_page_cb page, gapi_response_cb done,
                                void *arg);

/* Google's error from an error response. Bodies are read in Google's API
 * format {"error": {"code", "message", "status", "errors": [{"reason",
 * "domain", "message"}], "details": [...]}} (also inside a one-element
 * array), the OAuth format {"error": "invalid_grant",
 * "error_description": "..."} (one item whose reason is "invalid_grant",
 * the description as the message), or, for anything else, the <title> of
 * an HTML page or the first non-blank line of text (at most 200 bytes) as
 * the message. Fields of the wrong type are absent, never an error. */
typedef struct gapi_google_error gapi_google_error;

/* The parsed error of a call-built request that completed with
 * GAPI_EHTTP, or NULL. Borrowed: lives as long as req. */
GAPI_EXTERN const gapi_google_error *gapi_request_google_error(const gapi_request *req);

/* Parse an error body yourself (a low-level request's, say). body need not
 * be NUL-terminated. Returns 0 with *out to free with
 * gapi_google_error_free, GAPI_EINVAL (NULL out, NULL body with len > 0)
 * or GAPI_ENOMEM. Any thread. */
GAPI_EXTERN int gapi_google_error_parse(gapi_google_error **out, int http_status, const char *body,
                                        size_t len);
GAPI_EXTERN void gapi_google_error_free(gapi_google_error *e);

/* Fields; NULL e gives 0 / NULL. http_status is the response's status;
 * code is error.code when it is an integer, else the status. message,
 * status ("NOT_FOUND") are NULL when absent. count is the number of
 * objects in error.errors (1 for the OAuth format); reason, domain and
 * item_message read item i (NULL when absent or i too big). details is
 * error.details as given (usually an array), borrowed: it lives as long
 * as e (take json_object_deep_copy to keep it longer). */
GAPI_EXTERN int gapi_google_error_http_status(const gapi_google_error *e);
GAPI_EXTERN int gapi_google_error_code(const gapi_google_error *e);
GAPI_EXTERN const char *gapi_google_error_message(const gapi_google_error *e);
GAPI_EXTERN const char *gapi_google_error_status(const gapi_google_error *e);
GAPI_EXTERN size_t gapi_google_error_count(const gapi_google_error *e);
GAPI_EXTERN const char *gapi_google_error_reason(const gapi_google_error *e, size_t i);
GAPI_EXTERN const char *gapi_google_error_domain(const gapi_google_error *e, size_t i);
GAPI_EXTERN const char *gapi_google_error_item_message(const gapi_google_error *e, size_t i);
GAPI_EXTERN struct json_object *gapi_google_error_details(const gapi_google_error *e);

/* ------------------------------------------------------------------------ */
/* Credentials, like google-auth's, with one token cache per client: while  */
/* a token is valid requests take it with no I/O; it is refreshed in the    */
/* background 3 min 45 s before it expires; a request waits only when no    */
/* valid token exists, and however many wait, one token request goes out.   */
/*                                                                          */
/* A gapi_credentials is immutable configuration, reference counted: make   */
/* it on any thread, share it between clients and threads. Its tokens live  */
/* in each client that uses it. Key material is kept inside OpenSSL and     */
/* cleansed when freed; tokens and keys never appear in a message.          */

#define GAPI_CREDENTIALS_OPTIONS_VERSION 1

typedef struct gapi_credentials_options {
    unsigned version; /* GAPI_CREDENTIALS_OPTIONS_VERSION */

    /* OAuth scopes, space-separated. NULL: cloud-platform
     * ("https://www.googleapis.com/auth/cloud-platform"); for the metadata
     * server NULL asks for the VM's own scopes. */
    const char *scopes;
    /* Service account: the user to act as (domain-wide delegation, the
     * "sub" claim). Never used with self-signed JWTs. */
    const char *subject;
    /* Sent as x-goog-user-project. NULL: $GOOGLE_CLOUD_QUOTA_PROJECT, then
     * the credentials file's quota_project_id. */
    const char *quota_project;
    /* Replaces the token endpoint (the file's token_uri, or Google's for
     * authorized users). https:// only, except for loopback hosts. */
    const char *token_uri;
    /* Metadata server "host[:port]". NULL: $GCE_METADATA_HOST, then
     * metadata.google.internal. */
    const char *metadata_host;
    /* Retries of token requests (5xx, 408, 429, transport errors and the
     * OAuth errors internal_failure, server_error, temporarily_unavailable).
     * NULL: 4 attempts, 1 s, x2. */
    const gapi_retry_policy *token_retry;
    unsigned flags; /* GAPI_CREDENTIALS_* */
} gapi_credentials_options;

/* Service account: sign a JWT for each API host ("aud":
 * "https://HOST/") instead of asking the token endpoint for a token (no
 * token request at all). Always so outside the googleapis.com universe. */
#define GAPI_CREDENTIALS_SELF_SIGNED_JWT 0x1u
/* API key: send it as the "key" query parameter (Python's developerKey)
 * instead of the x-goog-api-key header. Query strings end up in logs;
 * the header does not. */
#define GAPI_CREDENTIALS_KEY_IN_QUERY 0x2u

#define GAPI_CREDENTIALS_OPTIONS_INIT                                                              \
    {                                                                                              \
        GAPI_CREDENTIALS_OPTIONS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, 0                    \
    }

/* Constructors: any thread; opts may be NULL. On success *out holds one
 * reference (gapi_credentials_unref). On failure *out is untouched and,
 * with errbuf, a message names the problem (file, field). */

/* An API key (x-goog-api-key, or the key query parameter). Returns 0,
 * GAPI_EINVAL (NULL, empty, or characters not allowed in a header),
 * GAPI_ENOMEM. */
GAPI_EXTERN int gapi_credentials_api_key(gapi_credentials **out, const char *key,
                                         const gapi_credentials_options *opts);

/* A fixed access token ("Authorization: Bearer TOKEN"); never refreshed.
 * Same errors. */
GAPI_EXTERN int gapi_credentials_access_token(gapi_credentials **out, const char *token,
                                              const gapi_credentials_options *opts);

/* A credentials JSON document: a service account key ("type":
 * "service_account") or gcloud's authorized user ("authorized_user"). json
 * need not be NUL-terminated. Returns 0, GAPI_ECREDENTIALS (not JSON, a
 * field missing or of the wrong type, an unknown type, a private key that
 * is not an unencrypted PEM RSA key, a token_uri that is not https), GAPI_EINVAL
 * (bad options), GAPI_ENOMEM. */
GAPI_EXTERN int gapi_credentials_from_json(gapi_credentials **out, const char *json, size_t len,
                                           const gapi_credentials_options *opts, char *errbuf,
                                           size_t errbuf_size);

/* Same, from a file (messages start with its path). */
GAPI_EXTERN int gapi_credentials_from_file(gapi_credentials **out, const char *path,
                                           const gapi_credentials_options *opts, char *errbuf,
                                           size_t errbuf_size);

/* The Compute Engine / GKE metadata server's default service account. */
GAPI_EXTERN int gapi_credentials_metadata(gapi_credentials **out,
                                          const gapi_credentials_options *opts);

/* Application Default Credentials: the file named by
 * $GOOGLE_APPLICATION_CREDENTIALS (set but unreadable is an error, as in
 * Python), else gcloud's application_default_credentials.json
 * ($CLOUDSDK_CONFIG, else ~/.config/gcloud), else the metadata server.
 * No network I/O here: whether a metadata server answers is found out by
 * the first token request (3 s to connect); when none does, requests fail
 * with GAPI_ECREDENTIALS and a message listing everything tried. Returns 0,
 * GAPI_ECREDENTIALS, GAPI_EINVAL, GAPI_ENOMEM. */
GAPI_EXTERN int gapi_credentials_default(gapi_credentials **out,
                                         const gapi_credentials_options *opts, char *errbuf,
                                         size_t errbuf_size);

/* A token source of the caller's: fetch runs on the client's loop thread
 * when a token is needed (never from inside a gapi call of the caller's);
 * the caller then calls gapi_token_request_done exactly once, on that
 * thread, now or later. */
typedef struct gapi_token_request gapi_token_request;
typedef void (*gapi_token_fetch_cb)(gapi_client *c, gapi_token_request *tr, void *arg);
GAPI_EXTERN int gapi_credentials_token_source(gapi_credentials **out, gapi_token_fetch_cb fetch,
                                              void *arg, const gapi_credentials_options *opts);

/* Complete a token fetch: err 0 with token (copied; visible ASCII only,
 * else the waiting requests fail with GAPI_EAUTH) valid for expires_in_s
 * seconds (0: one hour), or an error code (GAPI_EAUTH, say) and a message
 * for the waiting requests (copied; NULL for none). tr is freed. Loop
 * thread. A fetch not completed within the client's stall timeout fails
 * its waiting requests with GAPI_EAUTH; completing it later, or after the
 * client was freed, only frees tr. */
GAPI_EXTERN void gapi_token_request_done(gapi_token_request *tr, int err, const char *token,
                                         unsigned expires_in_s, const char *errmsg);

GAPI_EXTERN gapi_credentials *gapi_credentials_ref(gapi_credentials *cr);
GAPI_EXTERN void gapi_credentials_unref(gapi_credentials *cr);

/* "api_key", "access_token", "service_account", "authorized_user",
 * "metadata" or "token_source"; NULL for NULL. */
GAPI_EXTERN const char *gapi_credentials_type(const gapi_credentials *cr);

/* The service account's e-mail, or NULL. */
GAPI_EXTERN const char *gapi_credentials_email(const gapi_credentials *cr);

#ifdef __cplusplus
}
#endif

#endif /* GAPI_H */
