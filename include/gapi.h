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
    GAPI_ETIMEDOUT = -26        /* a blocking wait timed out */
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

#define GAPI_CLIENT_OPTIONS_VERSION 2

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
        GAPI_CLIENT_OPTIONS_VERSION, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, NULL, 0, 0, NULL       \
    }

/* Threads. A client lives on one loop thread: every call below runs there,
 * except those marked "any thread" (gapi_request_new and the other request
 * builders may run on any thread for a request that thread owns). Other
 * threads hand requests in with gapi_request_submit / _submit_future /
 * _execute; callbacks always run on the loop thread. */

/* Make a client bound to the caller's event_base, on the thread that runs
 * that base's loop (that thread becomes the client's loop thread). The
 * library never runs the loop itself in this mode. The client keeps one
 * persistent event on the base (the wake-up of its submission queue), so
 * event_base_dispatch() returns only after gapi_client_shutdown() has
 * finished or the client is freed. opts may be NULL for defaults. On failure
 * *out is untouched and, when errbuf is not NULL, a message naming the
 * problem is written into it (errbuf_size bytes at most, NUL-terminated).
 * Options of version 1 are accepted. Returns 0, GAPI_EINVAL (bad
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
 * cancellation (one loop iteration) and the future's error is GAPI_ETIMEDOUT.
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

#ifdef __cplusplus
}
#endif

#endif /* GAPI_H */
