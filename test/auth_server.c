/*
 * Google's auth side for the integration tests (see auth_server.h): the OAuth
 * token endpoint, the GCE metadata server and an API that checks credentials,
 * as custom handlers on the test server.
 *
 * It verifies what a client sends the way Google would (strict base64url,
 * JSON, an RS256 signature through OpenSSL's EVP_DigestVerify, every claim),
 * and it uses no gapi code, so gapi's own JWT or form encoding cannot vouch
 * for itself.
 *
 * Threads: handlers and delay timers run on the loop thread of the server.
 * The configuration, the counters and the last-request records are also read
 * and written by other threads (setters and getters), so they live under
 * a->lock; a handler holds it while it decides and lets it go before it
 * sends. The list of delayed responses is loop-thread only.
 *
 * Delayed responses keep the evhttp_request: evhttp does not read from a
 * connection whose request waits for an answer, so the request stays alive
 * until we answer it or ts_server_free frees it. ta_auth_free therefore
 * answers every waiting response before the server can go (server.h: a
 * handler that defers its reply must send it before ts_server_free).
 */
#include "auth_server.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define TA_PATH_TOKEN    "/token"
#define TA_PATH_MD_TOKEN "/computeMetadata/v1/instance/service-accounts/default/token"
#define TA_PATH_MD_PROBE "/computeMetadata/v1/"

#define TA_GRANT_JWT     "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define TA_GRANT_REFRESH "refresh_token"
#define TA_TOKEN_PREFIX  "ya29.t"

/* Google's answer to a bad or missing credential, byte for byte what the API
 * sends; the library parses it like any Google error. */
#define TA_API_401_BODY                                                                            \
    "{\"error\":{\"code\":401,\"message\":\"Request had invalid authentication "                   \
    "credentials.\",\"status\":\"UNAUTHENTICATED\",\"errors\":[{\"reason\":\"authError\","         \
    "\"domain\":\"global\",\"message\":\"Invalid Credentials\"}]}}"
#define TA_WWW_AUTH "Bearer realm=\"https://accounts.google.com/\""
#define TA_MD_403   "Missing Metadata-Flavor:Google header."

/* Clock skew Google tolerates on iat, and the one lifetime it accepts. */
#define TA_SKEW     300
#define TA_LIFETIME 3600

/* Values quoted in reasons are cut here so a hostile value cannot make the
 * reason huge. */
#define TA_QUOTE_MAX 200

static const char *const ta_api_paths[] = {"/api/v1/items", "/api/v1/items2",
                                           "/upload/api/v1/items"};

struct ta_hdr {
    char *name;
    char *value;
};

/* A token response waiting for its delay; loop thread only. */
struct ta_pending {
    struct ta_pending *prev, *next;
    ta_auth *a;
    struct evhttp_request *req;
    struct event *ev;
    int status;
    struct evbuffer *body;
};

struct ta_auth {
    ts_server *s;
    EVP_PKEY *pkey;             /* NULL: every JWT refused */
    char *token_aud;            /* origin + "/token" */
    struct ta_pending *pending; /* loop thread only */

    pthread_mutex_t lock; /* guards everything below */
    int sa_set;
    char *sa_email, *sa_kid, *sa_scope, *sa_subject;
    int user_set;
    char *user_id, *user_secret, *user_refresh;
    char *self_aud;
    char *api_key;
    int expires_in;
    int expires_as_string;
    unsigned fail_n;
    int fail_status;
    char *fail_body;
    unsigned delay_ms;
    unsigned revoked_upto; /* tokens 1..revoked_upto are refused */

    unsigned token_requests;
    unsigned issued;
    unsigned api_requests;
    unsigned api_rejected;
    char *last_error;
    char *last_claims;
    char *last_scopes;
    struct ta_hdr *hdrs;
    size_t nhdrs;
};

/* A decoded form or query parameter. */
struct ta_param {
    char *name;
    char *value;
};

struct ta_form {
    struct ta_param *v;
    size_t n;
};

/* ------------------------------------------------------------ helpers */

/* Test infrastructure (as in server.c): running out of memory is not a case
 * worth handling. */
static void ta_die(const char *what)
{
    fprintf(stderr, "ta_auth: %s\n", what);
    abort();
}

static void *ta_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        ta_die("out of memory");
    return p;
}

static char *ta_xstrdup(const char *s)
{
    size_t n;
    char *p;

    if (!s)
        return NULL;
    n = strlen(s) + 1;
    p = ta_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

static void ta_set_str(char **dst, const char *src)
{
    char *copy = ta_xstrdup(src);

    free(*dst);
    *dst = copy;
}

static struct evbuffer *ta_xbuffer(void)
{
    struct evbuffer *b = evbuffer_new();
    if (!b)
        ta_die("out of memory");
    return b;
}

static pthread_mutex_t *lock_of(const ta_auth *a)
{
    return (pthread_mutex_t *)&a->lock;
}

/* Reasons are printf-built into a caller's buffer. */
__attribute__((format(printf, 3, 4))) static void why(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Quotes a JSON value for a reason: strings as their text, anything else as
 * its JSON. */
static const char *json_text(json_object *v)
{
    if (!v)
        return "(absent)";
    if (json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}

/* ------------------------------------------------------------ decoding */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* application/x-www-form-urlencoded: %XX and '+' (space). A decoded NUL
 * would cut the value short, so it is refused like a broken escape. off is
 * the offset of in within the whole text, for the reason. */
static char *form_unescape(const char *in, size_t n, size_t off, char *err, size_t errlen)
{
    char *out = ta_xmalloc(n + 1);
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        if (in[i] == '+') {
            out[o++] = ' ';
        } else if (in[i] == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)in[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)in[i + 2]) : -1;

            if (hi < 0 || lo < 0) {
                why(err, errlen, "bad percent-encoding at offset %zu", off + i);
                free(out);
                return NULL;
            }
            if (hi == 0 && lo == 0) {
                why(err, errlen, "%%00 at offset %zu", off + i);
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (in[i] == '\0') {
            why(err, errlen, "NUL byte at offset %zu", off + i);
            free(out);
            return NULL;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
    return out;
}

static void form_clear(struct ta_form *f)
{
    size_t i;

    for (i = 0; i < f->n; i++) {
        free(f->v[i].name);
        free(f->v[i].value);
    }
    free(f->v);
    f->v = NULL;
    f->n = 0;
}

static const char *form_get(const struct ta_form *f, const char *name)
{
    size_t i;

    for (i = 0; i < f->n; i++)
        if (strcmp(f->v[i].name, name) == 0)
            return f->v[i].value;
    return NULL;
}

/* Splits name=value pairs on '&' and decodes them. Empty pieces ("a=1&&b=2")
 * are skipped, as browsers and Google do. A repeated name is refused: OAuth
 * (RFC 6749 section 3.1) forbids it, and which copy wins would be a guess.
 * Returns 0, or -1 with err set and f cleared. */
static int form_parse(const char *text, size_t n, struct ta_form *f, char *err, size_t errlen)
{
    size_t start = 0, cap = 0;

    f->v = NULL;
    f->n = 0;
    while (start <= n) {
        const char *piece = text + start;
        const char *amp = memchr(piece, '&', n - start);
        size_t len = amp ? (size_t)(amp - piece) : n - start;
        const char *eq = memchr(piece, '=', len);
        size_t nlen = eq ? (size_t)(eq - piece) : len;
        char *name, *value;

        if (len > 0) {
            name = form_unescape(piece, nlen, start, err, errlen);
            if (!name)
                goto fail;
            value = eq ? form_unescape(eq + 1, len - nlen - 1, start + nlen + 1, err, errlen)
                       : ta_xstrdup("");
            if (!value) {
                free(name);
                goto fail;
            }
            if (form_get(f, name)) {
                why(err, errlen, "parameter %.*s given twice", TA_QUOTE_MAX, name);
                free(name);
                free(value);
                goto fail;
            }
            if (f->n == cap) {
                struct ta_param *v;

                cap = cap ? cap * 2 : 8;
                v = realloc(f->v, cap * sizeof(*v));
                if (!v)
                    ta_die("out of memory");
                f->v = v;
            }
            f->v[f->n].name = name;
            f->v[f->n].value = value;
            f->n++;
        }
        if (!amp)
            break;
        start += len + 1;
    }
    return 0;

fail:
    form_clear(f);
    return -1;
}

static int b64url_val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Strict base64url as JWS uses it (RFC 7515 section 2): no padding, no
 * whitespace, and the unused low bits of the last character zero, so there
 * is exactly one encoding of each byte string. */
static unsigned char *b64url_decode(const char *in, size_t n, size_t *out_len, const char *part,
                                    char *err, size_t errlen)
{
    unsigned char *out;
    size_t i, o = 0;
    unsigned acc = 0;
    int bits = 0;

    if (n % 4 == 1) {
        why(err, errlen, "%s: base64url length %zu is impossible", part, n);
        return NULL;
    }
    out = ta_xmalloc(n * 3 / 4 + 1);
    for (i = 0; i < n; i++) {
        int v = b64url_val((unsigned char)in[i]);

        if (v < 0) {
            why(err, errlen, "%s: bad base64url character at offset %zu", part, i);
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) {
        why(err, errlen, "%s: non-canonical base64url (trailing bits set)", part);
        free(out);
        return NULL;
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Decodes one JWT part and parses it as a JSON object, strictly and to the
 * last byte. Returns a new reference or NULL with err set. */
static json_object *b64url_json(const char *in, size_t n, const char *part, char *err,
                                size_t errlen)
{
    size_t len;
    unsigned char *bytes = b64url_decode(in, n, &len, part, err, errlen);
    json_tokener *tok;
    json_object *obj;
    enum json_tokener_error jerr;
    size_t end;

    if (!bytes)
        return NULL;
    if (memchr(bytes, '\0', len)) {
        why(err, errlen, "%s: NUL byte in JSON", part);
        free(bytes);
        return NULL;
    }
    tok = json_tokener_new();
    if (!tok)
        ta_die("out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, (const char *)bytes, (int)len);
    jerr = json_tokener_get_error(tok);
#if defined(JSON_C_VERSION_NUM) && JSON_C_VERSION_NUM >= ((0 << 16) | (15 << 8))
    end = json_tokener_get_parse_end(tok);
#else
    end = (size_t)tok->char_offset;
#endif
    json_tokener_free(tok);
    if (!obj || jerr != json_tokener_success) {
        why(err, errlen, "%s: not JSON (%s at offset %zu)", part,
            jerr == json_tokener_continue ? "unexpected end" : json_tokener_error_desc(jerr), end);
        json_object_put(obj);
        free(bytes);
        return NULL;
    }
    /* Strict mode already refuses trailing bytes (as "unexpected
     * character"); this holds whatever json-c version is linked. */
    if (end != len) {
        why(err, errlen, "%s: bytes after the JSON value at offset %zu", part, end);
        json_object_put(obj);
        free(bytes);
        return NULL;
    }
    free(bytes);
    if (!json_object_is_type(obj, json_type_object)) {
        why(err, errlen, "%s is not a JSON object", part);
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

/* ------------------------------------------------------------ JWT */

enum ta_jwt_mode {
    TA_JWT_GRANT,      /* assertion of the jwt-bearer grant at POST /token */
    TA_JWT_SELF_SIGNED /* bearer credential presented to the API */
};

static json_object *field(json_object *o, const char *key)
{
    json_object *v = NULL;

    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* A string member equal to want; else a reason "<key> missing" or
 * "<key> mismatch: got X". */
static int check_str(json_object *o, const char *key, const char *want, char *err, size_t errlen)
{
    json_object *v = field(o, key);

    if (!v) {
        why(err, errlen, "%s missing", key);
        return -1;
    }
    if (!json_object_is_type(v, json_type_string) || strcmp(json_object_get_string(v), want)) {
        why(err, errlen, "%s mismatch: got %.*s", key, TA_QUOTE_MAX, json_text(v));
        return -1;
    }
    return 0;
}

static int get_time(json_object *o, const char *key, int64_t *out, char *err, size_t errlen)
{
    json_object *v = field(o, key);

    if (!v) {
        why(err, errlen, "%s missing", key);
        return -1;
    }
    if (!json_object_is_type(v, json_type_int)) {
        why(err, errlen, "%s is not an integer: got %.*s", key, TA_QUOTE_MAX, json_text(v));
        return -1;
    }
    *out = json_object_get_int64(v);
    return 0;
}

static int check_grant_claims(ta_auth *a, json_object *c, int64_t now, char *err, size_t errlen)
{
    int64_t iat, exp;
    json_object *sub;

    if (check_str(c, "iss", a->sa_email, err, errlen) ||
        check_str(c, "aud", a->token_aud, err, errlen) ||
        check_str(c, "scope", a->sa_scope, err, errlen))
        return -1;
    if (get_time(c, "iat", &iat, err, errlen))
        return -1;
    if (iat < now - TA_SKEW || iat > now + TA_SKEW) {
        why(err, errlen, "iat out of range: got %lld, now %lld", (long long)iat, (long long)now);
        return -1;
    }
    if (get_time(c, "exp", &exp, err, errlen))
        return -1;
    if (exp != iat + TA_LIFETIME) {
        why(err, errlen, "exp is not iat + %d: got %lld, iat %lld", TA_LIFETIME, (long long)exp,
            (long long)iat);
        return -1;
    }
    sub = field(c, "sub");
    if (a->sa_subject)
        return check_str(c, "sub", a->sa_subject, err, errlen);
    if (sub) {
        why(err, errlen, "sub present but none expected: got %.*s", TA_QUOTE_MAX, json_text(sub));
        return -1;
    }
    return 0;
}

static int check_self_signed_claims(ta_auth *a, json_object *c, int64_t now, char *err,
                                    size_t errlen)
{
    int64_t iat, exp;

    if (check_str(c, "iss", a->sa_email, err, errlen) ||
        check_str(c, "sub", a->sa_email, err, errlen) ||
        check_str(c, "aud", a->self_aud, err, errlen))
        return -1;
    if (get_time(c, "exp", &exp, err, errlen))
        return -1;
    if (exp <= now) {
        why(err, errlen, "exp in the past: got %lld, now %lld", (long long)exp, (long long)now);
        return -1;
    }
    if (get_time(c, "iat", &iat, err, errlen))
        return -1;
    if (iat > now + TA_SKEW) {
        why(err, errlen, "iat in the future: got %lld, now %lld", (long long)iat, (long long)now);
        return -1;
    }
    /* exp > now > 0, so exp - TA_LIFETIME cannot overflow. */
    if (iat < exp - TA_LIFETIME) {
        why(err, errlen, "lifetime over %d s: iat %lld, exp %lld", TA_LIFETIME, (long long)iat,
            (long long)exp);
        return -1;
    }
    return 0;
}

static int verify_rs256(EVP_PKEY *pkey, const char *input, size_t input_len,
                        const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc;

    if (!md)
        ta_die("out of memory");
    rc = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
         EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)input, input_len) == 1;
    EVP_MD_CTX_free(md);
    return rc ? 0 : -1;
}

/* Checks a compact JWS the way Google does for mode. Caller holds a->lock.
 * Returns 0, or -1 with err set. */
static int jwt_check(ta_auth *a, const char *jwt, enum ta_jwt_mode mode, char *err, size_t errlen)
{
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    json_object *hdr = NULL, *claims = NULL, *kid;
    unsigned char *sig = NULL;
    size_t sig_len = 0, n = strlen(jwt);
    int rc = -1;

    if (!a->sa_set) {
        why(err, errlen, "no service account expected");
        return -1;
    }
    if (mode == TA_JWT_SELF_SIGNED && !a->self_aud) {
        why(err, errlen, "self-signed JWTs not accepted");
        return -1;
    }
    if (!d1 || !d2 || strchr(d2 + 1, '.')) {
        size_t parts = 1;
        const char *p;

        for (p = jwt; *p; p++)
            parts += *p == '.';
        why(err, errlen, "JWT has %zu parts, want 3", parts);
        return -1;
    }
    if (d1 == jwt || d2 == d1 + 1 || d2 + 1 == jwt + n) {
        why(err, errlen, "JWT %s part empty",
            d1 == jwt      ? "header"
            : d2 == d1 + 1 ? "claims"
                           : "signature");
        return -1;
    }
    hdr = b64url_json(jwt, (size_t)(d1 - jwt), "header", err, errlen);
    if (!hdr)
        goto out;
    /* alg before the signature: the key's algorithm is fixed, never taken
     * from the token (the "alg":"none" / HS256 confusion attacks). */
    if (check_str(hdr, "alg", "RS256", err, errlen))
        goto out;
    sig = b64url_decode(d2 + 1, n - (size_t)(d2 + 1 - jwt), &sig_len, "signature", err, errlen);
    if (!sig)
        goto out;
    if (!a->pkey) {
        why(err, errlen, "no public key configured");
        goto out;
    }
    if (verify_rs256(a->pkey, jwt, (size_t)(d2 - jwt), sig, sig_len)) {
        why(err, errlen, "bad signature");
        goto out;
    }
    if (check_str(hdr, "typ", "JWT", err, errlen))
        goto out;
    kid = field(hdr, "kid");
    if (a->sa_kid) {
        if (check_str(hdr, "kid", a->sa_kid, err, errlen))
            goto out;
    } else if (kid) {
        why(err, errlen, "kid present but none expected: got %.*s", TA_QUOTE_MAX, json_text(kid));
        goto out;
    }
    claims = b64url_json(d1 + 1, (size_t)(d2 - d1 - 1), "claims", err, errlen);
    if (!claims)
        goto out;
    ta_set_str(&a->last_claims,
               json_object_to_json_string_ext(claims, JSON_C_TO_STRING_PLAIN |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE));
    if (mode == TA_JWT_GRANT)
        rc = check_grant_claims(a, claims, (int64_t)time(NULL), err, errlen);
    else
        rc = check_self_signed_claims(a, claims, (int64_t)time(NULL), err, errlen);

out:
    json_object_put(hdr);
    json_object_put(claims);
    free(sig);
    return rc;
}

/* ------------------------------------------------------------ replies */

static int is_head(struct evhttp_request *req)
{
    return evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
}

static void send_now(struct evhttp_request *req, int status, struct evbuffer *body)
{
    if (is_head(req))
        evbuffer_drain(body, evbuffer_get_length(body));
    /* NULL reason: evhttp's own phrase for the code. */
    evhttp_send_reply(req, status, NULL, body);
}

static void pending_unlink(struct ta_pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->a->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

static void pending_send_free(struct ta_pending *p)
{
    pending_unlink(p);
    event_free(p->ev);
    send_now(p->req, p->status, p->body);
    evbuffer_free(p->body);
    free(p);
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pending_send_free(arg);
}

/* Sends now, or after delay_ms from an evtimer (token responses). Takes
 * body. */
static void reply(ta_auth *a, struct evhttp_request *req, int status, struct evbuffer *body,
                  unsigned delay_ms)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct ta_pending *p;
    struct timeval tv;

    if (!delay_ms || !evcon) {
        send_now(req, status, body);
        evbuffer_free(body);
        return;
    }
    p = ta_xmalloc(sizeof(*p));
    p->a = a;
    p->req = req;
    p->status = status;
    p->body = body;
    p->ev = evtimer_new(evhttp_connection_get_base(evcon), on_delay, p);
    if (!p->ev)
        ta_die("cannot make a timer");
    p->prev = NULL;
    p->next = a->pending;
    if (a->pending)
        a->pending->prev = p;
    a->pending = p;
    tv.tv_sec = delay_ms / 1000;
    tv.tv_usec = (long)(delay_ms % 1000) * 1000;
    evtimer_add(p->ev, &tv);
}

static void set_header(struct evhttp_request *req, const char *name, const char *value)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);

    evhttp_remove_header(out, name);
    evhttp_add_header(out, name, value);
}

static struct evbuffer *text_body(const char *text)
{
    struct evbuffer *b = ta_xbuffer();

    if (text)
        evbuffer_add(b, text, strlen(text));
    return b;
}

/* {"error":code,"error_description":desc}, json-c doing the escaping. */
static struct evbuffer *oauth_error(struct evhttp_request *req, const char *code, const char *desc)
{
    json_object *o = json_object_new_object();
    struct evbuffer *b;

    if (!o)
        ta_die("out of memory");
    json_object_object_add(o, "error", json_object_new_string(code));
    json_object_object_add(o, "error_description", json_object_new_string(desc));
    b = text_body(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    set_header(req, "Content-Type", "application/json; charset=utf-8");
    return b;
}

/* Mints the next token. Caller holds a->lock. */
static struct evbuffer *token_success(ta_auth *a, struct evhttp_request *req)
{
    struct evbuffer *b = ta_xbuffer();

    a->issued++;
    if (a->expires_as_string)
        evbuffer_add_printf(b,
                            "{\"access_token\":\"" TA_TOKEN_PREFIX "%u\",\"expires_in\":\"%d\","
                            "\"token_type\":\"Bearer\"}",
                            a->issued, a->expires_in);
    else
        evbuffer_add_printf(b,
                            "{\"access_token\":\"" TA_TOKEN_PREFIX "%u\",\"expires_in\":%d,"
                            "\"token_type\":\"Bearer\"}",
                            a->issued, a->expires_in);
    set_header(req, "Content-Type", "application/json; charset=utf-8");
    return b;
}

/* A token request's common start: counts it and, when a failure is queued,
 * makes that the answer. Caller holds a->lock. */
static struct evbuffer *token_request_start(ta_auth *a, struct evhttp_request *req, int *status)
{
    a->token_requests++;
    if (!a->fail_n)
        return NULL;
    a->fail_n--;
    *status = a->fail_status;
    set_header(req, "Content-Type",
               a->fail_body && a->fail_body[0] == '{' ? "application/json; charset=utf-8"
                                                      : "text/plain; charset=utf-8");
    ta_set_str(&a->last_error, "failure injected by ta_auth_fail_next");
    return text_body(a->fail_body);
}

/* ------------------------------------------------------------ POST /token */

static int is_form_type(const char *ct)
{
    static const char want[] = "application/x-www-form-urlencoded";
    size_t n = sizeof(want) - 1;

    if (!ct || strncasecmp(ct, want, n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* Decides the answer to POST /token; caller holds a->lock. */
static struct evbuffer *token_endpoint(ta_auth *a, struct evhttp_request *req, int *status)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    char err[512];
    struct ta_form form;
    const char *grant;
    size_t len;
    struct evbuffer *b;

    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        *status = 405;
        set_header(req, "Allow", "POST");
        ta_set_str(&a->last_error, "method not allowed");
        return oauth_error(req, "invalid_request", "method not allowed: POST only");
    }
    if (!is_form_type(ct)) {
        why(err, sizeof(err), "Content-Type is %.*s, want application/x-www-form-urlencoded",
            TA_QUOTE_MAX, ct ? ct : "(absent)");
        goto bad_request;
    }
    len = evbuffer_get_length(in);
    if (form_parse(len ? (const char *)evbuffer_pullup(in, -1) : "", len, &form, err, sizeof(err)))
        goto bad_request;

    grant = form_get(&form, "grant_type");
    if (grant && strcmp(grant, TA_GRANT_JWT) == 0) {
        const char *assertion = form_get(&form, "assertion");

        if (!assertion)
            why(err, sizeof(err), "assertion missing");
        if (assertion && jwt_check(a, assertion, TA_JWT_GRANT, err, sizeof(err)) == 0)
            goto success;
    } else if (grant && strcmp(grant, TA_GRANT_REFRESH) == 0) {
        static const char *const names[] = {"client_id", "client_secret", "refresh_token"};
        const char *want[3];
        size_t i;

        want[0] = a->user_id;
        want[1] = a->user_secret;
        want[2] = a->user_refresh;
        if (!a->user_set) {
            why(err, sizeof(err), "no authorized user expected");
            goto invalid_grant;
        }
        for (i = 0; i < 3; i++) {
            const char *got = form_get(&form, names[i]);

            if (!got) {
                why(err, sizeof(err), "%s missing", names[i]);
                goto invalid_grant;
            }
            if (strcmp(got, want[i]) != 0) {
                why(err, sizeof(err), "%s mismatch: got %.*s", names[i], TA_QUOTE_MAX, got);
                goto invalid_grant;
            }
        }
        goto success;
    } else {
        /* Google's own wording, including for a missing grant_type. */
        why(err, sizeof(err), "Invalid grant_type: %.*s", TA_QUOTE_MAX, grant ? grant : "");
        form_clear(&form);
        *status = 400;
        ta_set_str(&a->last_error, err);
        return oauth_error(req, "unsupported_grant_type", err);
    }

invalid_grant:
    form_clear(&form);
    *status = 400;
    ta_set_str(&a->last_error, err);
    return oauth_error(req, "invalid_grant", err);

success:
    form_clear(&form);
    *status = 200;
    ta_set_str(&a->last_error, "");
    b = token_success(a, req);
    return b;

bad_request:
    *status = 400;
    ta_set_str(&a->last_error, err);
    return oauth_error(req, "invalid_request", err);
}

static void on_token(struct evhttp_request *req, void *arg)
{
    ta_auth *a = arg;
    struct evbuffer *body;
    unsigned delay;
    int status = 200;

    pthread_mutex_lock(&a->lock);
    body = token_request_start(a, req, &status);
    if (!body)
        body = token_endpoint(a, req, &status);
    delay = a->delay_ms;
    pthread_mutex_unlock(&a->lock);
    reply(a, req, status, body, delay);
}

/* ------------------------------------------------------------ metadata */

/* The query of req decoded, or -1 with err set. */
static int query_parse(struct evhttp_request *req, struct ta_form *f, char *err, size_t errlen)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;

    if (!q)
        q = "";
    if (form_parse(q, strlen(q), f, err, errlen) == 0)
        return 0;
    /* Prefix the reason so it says where the bad bytes were. */
    {
        char tmp[512];

        snprintf(tmp, sizeof(tmp), "query: %s", err);
        snprintf(err, errlen, "%s", tmp);
    }
    return -1;
}

static void on_md_token(struct evhttp_request *req, void *arg)
{
    ta_auth *a = arg;
    struct evbuffer *body;
    unsigned delay;
    int status = 200;
    char err[512];

    set_header(req, "Metadata-Flavor", "Google");
    pthread_mutex_lock(&a->lock);
    body = token_request_start(a, req, &status);
    if (!body) {
        const char *flavor =
            evhttp_find_header(evhttp_request_get_input_headers(req), "Metadata-Flavor");
        struct ta_form q;

        if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
            evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
            status = 405;
            set_header(req, "Allow", "GET");
            set_header(req, "Content-Type", "text/plain; charset=utf-8");
            ta_set_str(&a->last_error, "method not allowed");
            body = text_body("Method not allowed.");
        } else if (!flavor || strcmp(flavor, "Google") != 0) {
            status = 403;
            set_header(req, "Content-Type", "text/plain; charset=utf-8");
            ta_set_str(&a->last_error,
                       flavor ? "Metadata-Flavor is not Google" : "Metadata-Flavor missing");
            body = text_body(TA_MD_403);
        } else if (query_parse(req, &q, err, sizeof(err))) {
            status = 400;
            set_header(req, "Content-Type", "text/plain; charset=utf-8");
            ta_set_str(&a->last_error, err);
            body = text_body(err);
        } else {
            ta_set_str(&a->last_scopes, form_get(&q, "scopes"));
            form_clear(&q);
            ta_set_str(&a->last_error, "");
            body = token_success(a, req);
        }
    }
    delay = a->delay_ms;
    pthread_mutex_unlock(&a->lock);
    reply(a, req, status, body, delay);
}

static void on_md_probe(struct evhttp_request *req, void *arg)
{
    struct evbuffer *body;

    (void)arg;
    set_header(req, "Metadata-Flavor", "Google");
    set_header(req, "Content-Type", "application/text");
    body = text_body("ok");
    send_now(req, 200, body);
    evbuffer_free(body);
}

/* ------------------------------------------------------------ API */

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    }
    return "UNKNOWN";
}

static void clear_hdrs(ta_auth *a)
{
    size_t i;

    for (i = 0; i < a->nhdrs; i++) {
        free(a->hdrs[i].name);
        free(a->hdrs[i].value);
    }
    free(a->hdrs);
    a->hdrs = NULL;
    a->nhdrs = 0;
}

/* Caller holds a->lock. */
static void record_hdrs(ta_auth *a, struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyval *kv;
    size_t n = 0;

    clear_hdrs(a);
    for (kv = in->tqh_first; kv; kv = kv->next.tqe_next)
        n++;
    a->hdrs = ta_xmalloc(n * sizeof(*a->hdrs));
    for (kv = in->tqh_first; kv; kv = kv->next.tqe_next) {
        a->hdrs[a->nhdrs].name = ta_xstrdup(kv->key);
        a->hdrs[a->nhdrs].value = ta_xstrdup(kv->value);
        a->nhdrs++;
    }
}

/* "ya29.t<N>" with N issued and not revoked. Caller holds a->lock. */
static int token_check(const ta_auth *a, const char *tok, char *err, size_t errlen)
{
    size_t plen = strlen(TA_TOKEN_PREFIX);
    const char *d = tok + plen;
    unsigned long n = 0;

    if (strncmp(tok, TA_TOKEN_PREFIX, plen) != 0 || !isdigit((unsigned char)*d) || (*d == '0') ||
        strlen(d) > 9)
        goto unknown;
    for (; *d; d++) {
        if (!isdigit((unsigned char)*d))
            goto unknown;
        n = n * 10 + (unsigned long)(*d - '0');
    }
    if (n > a->issued)
        goto unknown;
    if (n <= a->revoked_upto) {
        why(err, errlen, "revoked token: %.*s", TA_QUOTE_MAX, tok);
        return -1;
    }
    return 0;

unknown:
    why(err, errlen, "unknown token: %.*s", TA_QUOTE_MAX, tok);
    return -1;
}

/* Who the request's credential names ("jwt", "key" or the token), or NULL
 * with err set. Caller holds a->lock. */
static const char *api_credential(ta_auth *a, struct evhttp_request *req, char *err, size_t errlen)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *authz = evhttp_find_header(in, "Authorization");
    const char *key;
    struct ta_form q;
    int rc;

    if (authz) {
        const char *tok;

        /* The scheme is case-insensitive (RFC 7235 section 2.1). */
        if (strncasecmp(authz, "Bearer ", 7) != 0) {
            why(err, errlen, "Authorization is not a Bearer credential: %.*s", TA_QUOTE_MAX, authz);
            return NULL;
        }
        tok = authz + 7;
        while (*tok == ' ')
            tok++;
        if (strchr(tok, '.') && strchr(strchr(tok, '.') + 1, '.'))
            return jwt_check(a, tok, TA_JWT_SELF_SIGNED, err, errlen) ? NULL : "jwt";
        return token_check(a, tok, err, errlen) ? NULL : tok;
    }
    key = evhttp_find_header(in, "x-goog-api-key");
    if (!key) {
        if (query_parse(req, &q, err, errlen))
            return NULL;
        key = form_get(&q, "key");
        if (!key) {
            form_clear(&q);
            why(err, errlen, "no credentials");
            return NULL;
        }
    } else {
        q.v = NULL;
        q.n = 0;
    }
    if (!a->api_key) {
        why(err, errlen, "API keys not accepted");
        rc = -1;
    } else if (strcmp(key, a->api_key) != 0) {
        why(err, errlen, "api key mismatch: got %.*s", TA_QUOTE_MAX, key);
        rc = -1;
    } else {
        rc = 0;
    }
    form_clear(&q);
    return rc ? NULL : "key";
}

static void on_api(struct evhttp_request *req, void *arg)
{
    ta_auth *a = arg;
    struct evbuffer *body;
    const char *who;
    char err[512];
    int status;

    pthread_mutex_lock(&a->lock);
    a->api_requests++;
    record_hdrs(a, req);
    who = api_credential(a, req, err, sizeof(err));
    if (who) {
        json_object *o = json_object_new_object();

        if (!o)
            ta_die("out of memory");
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        json_object_object_add(o, "who", json_object_new_string(who));
        json_object_object_add(
            o, "method", json_object_new_string(method_name(evhttp_request_get_command(req))));
        json_object_object_add(o, "n", json_object_new_int64(a->api_requests));
        body = text_body(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        status = 200;
        ta_set_str(&a->last_error, "");
    } else {
        a->api_rejected++;
        status = 401;
        set_header(req, "WWW-Authenticate", TA_WWW_AUTH);
        body = text_body(TA_API_401_BODY);
        ta_set_str(&a->last_error, err);
    }
    pthread_mutex_unlock(&a->lock);
    set_header(req, "Content-Type", "application/json; charset=UTF-8");
    send_now(req, status, body);
    evbuffer_free(body);
}

/* ------------------------------------------------------------ lifecycle */

static EVP_PKEY *load_public_key(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *pkey;

    if (!bio)
        ta_die("out of memory");
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!pkey) {
        fprintf(stderr, "ta_auth_new: public_key_pem is not an SPKI PEM public key\n");
        return NULL;
    }
    if (EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA) {
        fprintf(stderr, "ta_auth_new: public_key_pem is not an RSA key (RS256 needs one)\n");
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

ta_auth *ta_auth_new(ts_server *s, const char *public_key_pem)
{
    ta_auth *a;
    const char *origin;
    size_t i, n;

    if (!s) {
        fprintf(stderr, "ta_auth_new: server is NULL\n");
        return NULL;
    }
    origin = ts_server_origin(s);
    if (!origin || !*origin) {
        fprintf(stderr, "ta_auth_new: the server has no origin\n");
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (!a)
        ta_die("out of memory");
    if (public_key_pem && !(a->pkey = load_public_key(public_key_pem))) {
        free(a);
        return NULL;
    }
    a->s = s;
    n = strlen(origin) + sizeof(TA_PATH_TOKEN);
    a->token_aud = ta_xmalloc(n);
    snprintf(a->token_aud, n, "%s%s", origin, TA_PATH_TOKEN);
    pthread_mutex_init(&a->lock, NULL);
    a->expires_in = 3599;
    a->last_error = ta_xstrdup("");

    ts_route_handler(s, TA_PATH_TOKEN, on_token, a);
    ts_route_handler(s, TA_PATH_MD_TOKEN, on_md_token, a);
    ts_route_handler(s, TA_PATH_MD_PROBE, on_md_probe, a);
    for (i = 0; i < sizeof(ta_api_paths) / sizeof(ta_api_paths[0]); i++)
        ts_route_handler(s, ta_api_paths[i], on_api, a);
    return a;
}

void ta_auth_free(ta_auth *a)
{
    static const char gone[] = "{\"error\":\"auth server freed\"}";
    static const char ct[] = "Content-Type: application/json\r\n";
    size_t i;

    if (!a)
        return;
    /* The server may outlive us: its routes must stop pointing at a. */
    ts_route(a->s, TA_PATH_TOKEN, 503, ct, gone);
    ts_route(a->s, TA_PATH_MD_TOKEN, 503, ct, gone);
    ts_route(a->s, TA_PATH_MD_PROBE, 503, ct, gone);
    for (i = 0; i < sizeof(ta_api_paths) / sizeof(ta_api_paths[0]); i++)
        ts_route(a->s, ta_api_paths[i], 503, ct, gone);
    while (a->pending)
        pending_send_free(a->pending);

    EVP_PKEY_free(a->pkey);
    free(a->token_aud);
    free(a->sa_email);
    free(a->sa_kid);
    free(a->sa_scope);
    free(a->sa_subject);
    free(a->user_id);
    free(a->user_secret);
    free(a->user_refresh);
    free(a->self_aud);
    free(a->api_key);
    free(a->fail_body);
    free(a->last_error);
    free(a->last_claims);
    free(a->last_scopes);
    clear_hdrs(a);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* ------------------------------------------------------------ configuration */

void ta_auth_expect_service_account(ta_auth *a, const char *email, const char *kid,
                                    const char *scope, const char *subject)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->sa_set = email != NULL && scope != NULL;
    ta_set_str(&a->sa_email, email);
    ta_set_str(&a->sa_kid, kid);
    ta_set_str(&a->sa_scope, scope);
    ta_set_str(&a->sa_subject, subject);
    pthread_mutex_unlock(&a->lock);
}

void ta_auth_expect_user(ta_auth *a, const char *client_id, const char *client_secret,
                         const char *refresh_token)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->user_set = client_id && client_secret && refresh_token;
    ta_set_str(&a->user_id, client_id);
    ta_set_str(&a->user_secret, client_secret);
    ta_set_str(&a->user_refresh, refresh_token);
    pthread_mutex_unlock(&a->lock);
}

void ta_auth_accept_self_signed(ta_auth *a, const char *audience)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    ta_set_str(&a->self_aud, audience);
    pthread_mutex_unlock(&a->lock);
}

void ta_auth_accept_api_key(ta_auth *a, const char *key)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    ta_set_str(&a->api_key, key);
    pthread_mutex_unlock(&a->lock);
}

void ta_auth_set_expires_in(ta_auth *a, int seconds, int as_string)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->expires_in = seconds;
    a->expires_as_string = as_string != 0;
    pthread_mutex_unlock(&a->lock);
}

void ta_auth_fail_next(ta_auth *a, unsigned n, int status, const char *body)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->fail_n = n;
    a->fail_status = status;
    ta_set_str(&a->fail_body, body);
    pthread_mutex_unlock(&a->lock);
}

void ta_auth_set_token_delay(ta_auth *a, unsigned ms)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->delay_ms = ms;
    pthread_mutex_unlock(&a->lock);
}

void ta_auth_revoke_all(ta_auth *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->revoked_upto = a->issued;
    pthread_mutex_unlock(&a->lock);
}

/* ------------------------------------------------------------ observation */

static unsigned get_counter(const ta_auth *a, const unsigned *field_p)
{
    unsigned v;

    if (!a)
        return 0;
    pthread_mutex_lock(lock_of(a));
    v = *field_p;
    pthread_mutex_unlock(lock_of(a));
    return v;
}

unsigned ta_auth_token_requests(const ta_auth *a)
{
    return a ? get_counter(a, &a->token_requests) : 0;
}

unsigned ta_auth_tokens_issued(const ta_auth *a)
{
    return a ? get_counter(a, &a->issued) : 0;
}

unsigned ta_auth_api_requests(const ta_auth *a)
{
    return a ? get_counter(a, &a->api_requests) : 0;
}

unsigned ta_auth_api_rejected(const ta_auth *a)
{
    return a ? get_counter(a, &a->api_rejected) : 0;
}

static const char *get_str(const ta_auth *a, char *const *field_p)
{
    const char *v;

    pthread_mutex_lock(lock_of(a));
    v = *field_p;
    pthread_mutex_unlock(lock_of(a));
    return v;
}

const char *ta_auth_last_error(const ta_auth *a)
{
    return a ? get_str(a, &a->last_error) : "";
}

const char *ta_auth_last_claims(const ta_auth *a)
{
    return a ? get_str(a, &a->last_claims) : NULL;
}

const char *ta_auth_last_scopes(const ta_auth *a)
{
    return a ? get_str(a, &a->last_scopes) : NULL;
}

const char *ta_auth_last_header(const ta_auth *a, const char *name)
{
    const char *v = NULL;
    size_t i;

    if (!a || !name)
        return NULL;
    pthread_mutex_lock(lock_of(a));
    for (i = 0; i < a->nhdrs; i++) {
        if (strcasecmp(a->hdrs[i].name, name) == 0) {
            v = a->hdrs[i].value;
            break;
        }
    }
    pthread_mutex_unlock(lock_of(a));
    return v;
}
