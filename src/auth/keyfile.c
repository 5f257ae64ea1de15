/*
 * Credentials documents (service_account, authorized_user) and token
 * endpoint responses; see keyfile.h. Invariants: outputs are filled only on
 * success (a token result's failure fields excepted); every buffer that held
 * secret text is cleansed before it is freed, the json-c tree's strings
 * included; messages quote only non-secret values, cut short and with
 * control characters replaced, so a hostile document cannot forge log lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include "gapi.h"
#include "common/alloc.h"
#include "common/error.h"
#include "json/parse.h"
#include "transport/url.h"
#include "auth/jwt.h"
#include "auth/keyfile.h"

/* Credentials documents and token responses are flat; external_account
 * documents nest a few levels. Deeper than this is not one of them. */
#define KEYFILE_JSON_DEPTH 64
/* Longest text taken from a response body or a document into a message. */
#define TEXT_MAX 200
/* Longest value quoted in a message ("type", "token_type", token_uri). */
#define QUOTE_MAX 100
/* expires_in beyond this cannot be a token lifetime, and now + expires_in
 * must not overflow the caller's time arithmetic. */
#define EXPIRES_MAX 2147483647LL

/* ------------------------------------------------------------ helpers */

void gapi__json_cleanse(struct json_object *o)
{
    size_t i, n;

    switch (json_object_get_type(o)) {
    case json_type_string:
        /* json-c owns the bytes and nothing caches a hash of them. */
        OPENSSL_cleanse((char *)json_object_get_string(o), (size_t)json_object_get_string_len(o));
        break;
    case json_type_array:
        n = json_object_array_length(o);
        for (i = 0; i < n; i++)
            gapi__json_cleanse(json_object_array_get_idx(o, i));
        break;
    case json_type_object: {
        json_object_object_foreach(o, key, val)
        {
            (void)key;
            gapi__json_cleanse(val);
        }
        break;
    }
    default:
        break;
    }
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        gapi__free(s);
    }
}

/* Copies at most max bytes of s[0..n) into dst (of dst_size), cut at a
 * UTF-8 character boundary, control characters and DEL made spaces, "..."
 * appended when cut. */
static void clean_copy(char *dst, size_t dst_size, const char *s, size_t n, size_t max)
{
    size_t i, cut = 0;

    if (max > dst_size - 4)
        max = dst_size - 4;
    if (n > max) {
        n = max;
        while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        cut = 1;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    if (cut) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
}

/* A quotable copy of a json-c string. */
static const char *quote(char *dst, size_t dst_size, struct json_object *s)
{
    clean_copy(dst, dst_size, json_object_get_string(s), (size_t)json_object_get_string_len(s),
               QUOTE_MAX);
    return dst;
}

/* A field of obj: present as a string -> *val (borrowed from the tree);
 * absent or null -> *val NULL. Empty optional strings read as absent. */
static int get_str(struct json_object *obj, const char *prefix, const char *key, int required,
                   const char **val, char *errbuf, size_t errbuf_size)
{
    struct json_object *v = NULL;
    size_t n;

    *val = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL) {
        if (!required)
            return GAPI_OK;
        gapi__errbuf_printf(errbuf, errbuf_size, "%s\"%s\" missing", prefix, key);
        return GAPI_ECREDENTIALS;
    }
    if (!json_object_is_type(v, json_type_string)) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s\"%s\" is not a string (it is %s)", prefix, key,
                            json_type_to_name(json_object_get_type(v)));
        return GAPI_ECREDENTIALS;
    }
    n = (size_t)json_object_get_string_len(v);
    if (memchr(json_object_get_string(v), '\0', n) != NULL) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s\"%s\" contains a NUL character", prefix, key);
        return GAPI_ECREDENTIALS;
    }
    if (n == 0) {
        if (!required)
            return GAPI_OK;
        gapi__errbuf_printf(errbuf, errbuf_size, "%s\"%s\" is empty", prefix, key);
        return GAPI_ECREDENTIALS;
    }
    *val = json_object_get_string(v);
    return GAPI_OK;
}

static int dup_to(char **dst, const char *s, char *errbuf, size_t errbuf_size)
{
    if (!s)
        return GAPI_OK;
    if ((*dst = gapi__strdup(s)) == NULL) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return GAPI_ENOMEM;
    }
    return GAPI_OK;
}

/* The token endpoint receives the assertion or the refresh token: it must
 * be https, except to the loopback host (a local test server or emulator). */
int gapi__check_token_uri(const char *uri, const char *prefix, char *errbuf, size_t errbuf_size)
{
    char q[QUOTE_MAX + 4];
    const char *why = NULL;
    gapi__url u;
    int rc, local;

    memset(&u, 0, sizeof(u));
    rc = gapi__url_parse(&u, uri, &why);
    clean_copy(q, sizeof(q), uri, strlen(uri), QUOTE_MAX);
    if (rc == GAPI_ENOMEM) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return GAPI_ENOMEM;
    }
    if (rc != GAPI_OK) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%stoken_uri \"%s\" is not usable: %s", prefix, q,
                            why ? why : "invalid URL");
        return GAPI_ECREDENTIALS;
    }
    local = strcmp(u.host, "127.0.0.1") == 0 || strcmp(u.host, "localhost") == 0 ||
            strcmp(u.host, "::1") == 0;
    rc = u.tls || local ? GAPI_OK : GAPI_ECREDENTIALS;
    gapi__url_free(&u);
    if (rc != GAPI_OK)
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "%stoken_uri \"%s\" is not https:// (plain http:// is allowed only "
                            "to 127.0.0.1, localhost and [::1])",
                            prefix, q);
    return rc;
}

/* ------------------------------------------------------------ key files */

void gapi__keyfile_clear(gapi__keyfile *k)
{
    if (!k)
        return;
    free_secret(k->client_email);
    free_secret(k->private_key_id);
    free_secret(k->token_uri);
    free_secret(k->universe_domain);
    free_secret(k->project_id);
    EVP_PKEY_free(k->key);
    free_secret(k->client_id);
    free_secret(k->client_secret);
    free_secret(k->refresh_token);
    free_secret(k->quota_project_id);
    memset(k, 0, sizeof(*k));
}

static int parse_service_account(gapi__keyfile *k, struct json_object *root, char *errbuf,
                                 size_t errbuf_size)
{
    static const char pre[] = "service_account: ";
    const char *email, *pem, *kid, *project;
    struct json_object *pk;
    char why[256];
    int rc;

    if ((rc = get_str(root, pre, "client_email", 1, &email, errbuf, errbuf_size)) != GAPI_OK ||
        (rc = get_str(root, pre, "private_key", 1, &pem, errbuf, errbuf_size)) != GAPI_OK ||
        (rc = get_str(root, pre, "private_key_id", 0, &kid, errbuf, errbuf_size)) != GAPI_OK ||
        (rc = get_str(root, pre, "project_id", 0, &project, errbuf, errbuf_size)) != GAPI_OK)
        return rc;
    json_object_object_get_ex(root, "private_key", &pk);
    rc = gapi__rsa_key_from_pem(&k->key, pem, (size_t)json_object_get_string_len(pk), why,
                                sizeof(why));
    if (rc == GAPI_ENOMEM) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return rc;
    }
    if (rc != GAPI_OK) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%sprivate_key is not a PEM RSA key: %s", pre,
                            why);
        return GAPI_ECREDENTIALS;
    }
    if ((rc = dup_to(&k->client_email, email, errbuf, errbuf_size)) != GAPI_OK ||
        (rc = dup_to(&k->private_key_id, kid, errbuf, errbuf_size)) != GAPI_OK ||
        (rc = dup_to(&k->project_id, project, errbuf, errbuf_size)) != GAPI_OK)
        return rc;
    return GAPI_OK;
}

static int parse_authorized_user(gapi__keyfile *k, struct json_object *root, char *errbuf,
                                 size_t errbuf_size)
{
    static const char pre[] = "authorized_user: ";
    const char *id, *secret, *refresh;
    int rc;

    if ((rc = get_str(root, pre, "client_id", 1, &id, errbuf, errbuf_size)) != GAPI_OK ||
        (rc = get_str(root, pre, "client_secret", 1, &secret, errbuf, errbuf_size)) != GAPI_OK ||
        (rc = get_str(root, pre, "refresh_token", 1, &refresh, errbuf, errbuf_size)) != GAPI_OK ||
        (rc = dup_to(&k->client_id, id, errbuf, errbuf_size)) != GAPI_OK ||
        (rc = dup_to(&k->client_secret, secret, errbuf, errbuf_size)) != GAPI_OK ||
        (rc = dup_to(&k->refresh_token, refresh, errbuf, errbuf_size)) != GAPI_OK)
        return rc;
    return GAPI_OK;
}

/* Fields both types share. */
static int parse_common(gapi__keyfile *k, struct json_object *root, const char *pre, char *errbuf,
                        size_t errbuf_size)
{
    const char *uri, *universe, *quota, *p;
    int rc;

    if ((rc = get_str(root, pre, "token_uri", 0, &uri, errbuf, errbuf_size)) != GAPI_OK ||
        (rc = get_str(root, pre, "universe_domain", 0, &universe, errbuf, errbuf_size)) !=
            GAPI_OK ||
        (rc = get_str(root, pre, "quota_project_id", 0, &quota, errbuf, errbuf_size)) != GAPI_OK)
        return rc;
    if (!uri)
        uri = GAPI__DEFAULT_TOKEN_URI;
    if (!universe)
        universe = GAPI__DEFAULT_UNIVERSE_DOMAIN;
    /* The universe domain becomes part of host names. */
    for (p = universe; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '/' || *p == '@' || *p == ':') {
            gapi__errbuf_printf(errbuf, errbuf_size,
                                "%suniverse_domain has a character not allowed in a host name",
                                pre);
            return GAPI_ECREDENTIALS;
        }
    }
    if ((rc = gapi__check_token_uri(uri, pre, errbuf, errbuf_size)) != GAPI_OK ||
        (rc = dup_to(&k->token_uri, uri, errbuf, errbuf_size)) != GAPI_OK ||
        (rc = dup_to(&k->universe_domain, universe, errbuf, errbuf_size)) != GAPI_OK ||
        (rc = dup_to(&k->quota_project_id, quota, errbuf, errbuf_size)) != GAPI_OK)
        return rc;
    return GAPI_OK;
}

int gapi__keyfile_parse(gapi__keyfile *out, const char *json, size_t len, char *errbuf,
                        size_t errbuf_size)
{
    struct json_object *root = NULL, *t;
    gapi__json_error jerr;
    gapi__keyfile k;
    char q[QUOTE_MAX + 4];
    const char *type;
    int rc;

    if (!out || (!json && len)) {
        gapi__errbuf_printf(errbuf, errbuf_size, "credentials: %s is NULL", out ? "json" : "out");
        return GAPI_EINVAL;
    }
    memset(&k, 0, sizeof(k));
    memset(&jerr, 0, sizeof(jerr));
    rc = gapi__json_parse_ex(json, len, KEYFILE_JSON_DEPTH, GAPI__JSON_SECRET, &root, &jerr);
    if (rc == GAPI_ENOMEM) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return rc;
    }
    if (rc != GAPI_OK) {
        gapi__errbuf_printf(errbuf, errbuf_size, "not JSON: %s at line %u, column %u", jerr.message,
                            jerr.line, jerr.column);
        return GAPI_ECREDENTIALS;
    }
    if (!json_object_is_type(root, json_type_object)) {
        gapi__errbuf_printf(errbuf, errbuf_size, "not a JSON object (the document is %s)",
                            json_type_to_name(json_object_get_type(root)));
        rc = GAPI_ECREDENTIALS;
        goto done;
    }
    if (!json_object_object_get_ex(root, "type", &t) || t == NULL) {
        gapi__errbuf_printf(errbuf, errbuf_size, "\"type\" missing");
        rc = GAPI_ECREDENTIALS;
        goto done;
    }
    if (!json_object_is_type(t, json_type_string)) {
        gapi__errbuf_printf(errbuf, errbuf_size, "\"type\" is not a string (it is %s)",
                            json_type_to_name(json_object_get_type(t)));
        rc = GAPI_ECREDENTIALS;
        goto done;
    }
    type = json_object_get_string(t);
    if (strcmp(type, "service_account") == 0 &&
        json_object_get_string_len(t) == (int)sizeof("service_account") - 1) {
        k.type = GAPI__KEY_SERVICE_ACCOUNT;
        if ((rc = parse_service_account(&k, root, errbuf, errbuf_size)) == GAPI_OK)
            rc = parse_common(&k, root, "service_account: ", errbuf, errbuf_size);
    } else if (strcmp(type, "authorized_user") == 0 &&
               json_object_get_string_len(t) == (int)sizeof("authorized_user") - 1) {
        k.type = GAPI__KEY_AUTHORIZED_USER;
        if ((rc = parse_authorized_user(&k, root, errbuf, errbuf_size)) == GAPI_OK)
            rc = parse_common(&k, root, "authorized_user: ", errbuf, errbuf_size);
    } else {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "unsupported credentials type \"%s\" (supported: service_account, "
                            "authorized_user)",
                            quote(q, sizeof(q), t));
        rc = GAPI_ECREDENTIALS;
    }

done:
    gapi__json_cleanse(root);
    json_object_put(root);
    if (rc == GAPI_OK)
        *out = k;
    else
        gapi__keyfile_clear(&k);
    return rc;
}

int gapi__keyfile_load(gapi__keyfile *out, const char *path, char *errbuf, size_t errbuf_size)
{
    char why[512];
    struct stat st;
    char *buf = NULL;
    size_t size, got = 0;
    ssize_t r;
    int fd, rc;

    if (!out || !path) {
        gapi__errbuf_printf(errbuf, errbuf_size, "credentials file: %s is NULL",
                            out ? "path" : "out");
        return GAPI_EINVAL;
    }
    /* O_NONBLOCK: a FIFO at the path must not hang the caller's loop; it is
     * refused below, and regular files ignore the flag. */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: %s", path, strerror(errno));
        return GAPI_ECREDENTIALS;
    }
    if (fstat(fd, &st) != 0) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: %s", path, strerror(errno));
        rc = GAPI_ECREDENTIALS;
        goto done;
    }
    if (S_ISDIR(st.st_mode)) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: %s", path, strerror(EISDIR));
        rc = GAPI_ECREDENTIALS;
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: not a regular file", path);
        rc = GAPI_ECREDENTIALS;
        goto done;
    }
    if (st.st_size > GAPI__KEYFILE_MAX) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "%s: file of %lld bytes is over the %d-byte limit for credentials",
                            path, (long long)st.st_size, GAPI__KEYFILE_MAX);
        rc = GAPI_ECREDENTIALS;
        goto done;
    }
    /* One byte more than the size: a file that grew is noticed. */
    size = (size_t)st.st_size + 1;
    if ((buf = gapi__malloc(size)) == NULL) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        rc = GAPI_ENOMEM;
        goto done;
    }
    while (got < size) {
        r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            gapi__errbuf_printf(errbuf, errbuf_size, "%s: %s", path, strerror(errno));
            rc = GAPI_ECREDENTIALS;
            goto done;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got == size) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: file grew while it was read", path);
        rc = GAPI_ECREDENTIALS;
        goto done;
    }
    rc = gapi__keyfile_parse(out, buf, got, why, sizeof(why));
    if (rc != GAPI_OK)
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: %s", path, why);

done:
    if (buf) {
        OPENSSL_cleanse(buf, size);
        gapi__free(buf);
    }
    close(fd);
    return rc;
}

/* ------------------------------------------------------------ tokens */

void gapi__token_result_clear(gapi__token_result *t)
{
    if (!t)
        return;
    free_secret(t->access_token);
    t->access_token = NULL;
    t->expires_in = -1;
    t->retryable = 0;
}

/* Case-insensitive search for needle in s[0..len). */
static const char *find_ci(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle), i;

    for (i = 0; i + n <= len; i++)
        if (strncasecmp(s + i, needle, n) == 0)
            return s + i;
    return NULL;
}

/* What a non-JSON body says: an HTML page's <title>, else its first
 * non-blank line; trimmed, at most TEXT_MAX bytes, controls made spaces. */
static void body_text(char *dst, size_t dst_size, const char *body, size_t len)
{
    const char *s = body, *end = body + len, *t, *e;
    size_t window = len < 65536 ? len : 65536;

    if ((t = find_ci(body, window, "<title>")) != NULL &&
        (e = find_ci(t + 7, (size_t)(body + window - (t + 7)), "</title>")) != NULL) {
        s = t + 7;
        end = e;
    } else {
        for (;;) {
            const char *nl = memchr(s, '\n', (size_t)(end - s));
            const char *k = s;
            while (k < (nl ? nl : end) && (unsigned char)*k <= ' ')
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
    clean_copy(dst, dst_size, s, (size_t)(end - s), TEXT_MAX);
}

static int retryable_status(int status)
{
    return (status >= 500 && status <= 599) || status == 408 || status == 429;
}

/* OAuth 2.0 (RFC 6749 section 5.2) error codes that mean "try later". */
static int retryable_oauth(const char *code)
{
    return strcmp(code, "internal_failure") == 0 || strcmp(code, "server_error") == 0 ||
           strcmp(code, "temporarily_unavailable") == 0;
}

/* A string member of o, or NULL. */
static struct json_object *str_member(struct json_object *o, const char *key)
{
    struct json_object *v;

    if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v) &&
        json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0)
        return v;
    return NULL;
}

/* The message of an error response; sets *retry for retryable OAuth codes. */
static void error_message(char *errbuf, size_t errbuf_size, const char *who, int status,
                          struct json_object *root, const char *body, size_t len, int *retry)
{
    char a[TEXT_MAX + 4], b[TEXT_MAX + 4];
    struct json_object *err = NULL, *code, *desc;

    if (json_object_is_type(root, json_type_object))
        json_object_object_get_ex(root, "error", &err);
    if ((code = str_member(root, "error")) != NULL) {
        /* OAuth form: {"error": "invalid_grant", "error_description": ...} */
        if (retryable_oauth(json_object_get_string(code)))
            *retry = 1;
        clean_copy(a, sizeof(a), json_object_get_string(code),
                   (size_t)json_object_get_string_len(code), TEXT_MAX);
        if ((desc = str_member(root, "error_description")) != NULL) {
            clean_copy(b, sizeof(b), json_object_get_string(desc),
                       (size_t)json_object_get_string_len(desc), TEXT_MAX);
            gapi__errbuf_printf(errbuf, errbuf_size, "%s: HTTP %d: %s: %s", who, status, a, b);
        } else {
            gapi__errbuf_printf(errbuf, errbuf_size, "%s: HTTP %d: %s", who, status, a);
        }
        return;
    }
    if (json_object_is_type(err, json_type_object) &&
        ((code = str_member(err, "status")) != NULL || str_member(err, "message") != NULL)) {
        /* Google API form: {"error": {"code", "message", "status"}} */
        desc = str_member(err, "message");
        a[0] = b[0] = '\0';
        if (code)
            clean_copy(a, sizeof(a), json_object_get_string(code),
                       (size_t)json_object_get_string_len(code), TEXT_MAX);
        if (desc)
            clean_copy(b, sizeof(b), json_object_get_string(desc),
                       (size_t)json_object_get_string_len(desc), TEXT_MAX);
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: HTTP %d: %s%s%s", who, status, a,
                            code && desc ? ": " : "", b);
        return;
    }
    body_text(a, sizeof(a), body, len);
    if (a[0])
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: HTTP %d: %s", who, status, a);
    else
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: HTTP %d (empty body)", who, status);
}

/* expires_in -> *out; a message and GAPI_EAUTH when it is unusable. */
static int read_expires(struct json_object *v, const char *who, long long *out, char *errbuf,
                        size_t errbuf_size)
{
    long long n = 0;
    double d;
    const char *s;
    size_t i, len;

    switch (json_object_get_type(v)) {
    case json_type_null:
        *out = -1;
        return GAPI_OK;
    case json_type_int:
        /* uint64 values above INT64_MAX read as INT64_MAX: out of range. */
        n = (long long)json_object_get_int64(v);
        break;
    case json_type_double:
        d = json_object_get_double(v);
        if (!(d >= 0 && d <= (double)EXPIRES_MAX)) {
            gapi__errbuf_printf(errbuf, errbuf_size, "%s: expires_in is out of range", who);
            return GAPI_EAUTH;
        }
        n = (long long)d;
        break;
    case json_type_string:
        s = json_object_get_string(v);
        len = (size_t)json_object_get_string_len(v);
        if (len == 0 || len > 12) {
            gapi__errbuf_printf(errbuf, errbuf_size, "%s: expires_in is not a decimal number", who);
            return GAPI_EAUTH;
        }
        for (i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9') {
                gapi__errbuf_printf(errbuf, errbuf_size, "%s: expires_in is not a decimal number",
                                    who);
                return GAPI_EAUTH;
            }
            n = n * 10 + (s[i] - '0');
        }
        break;
    default:
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: expires_in is not a number (it is %s)", who,
                            json_type_to_name(json_object_get_type(v)));
        return GAPI_EAUTH;
    }
    if (n < 0 || n > EXPIRES_MAX) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: expires_in %lld is out of range", who, n);
        return GAPI_EAUTH;
    }
    *out = n;
    return GAPI_OK;
}

/* The checks of a 2xx response; fills tok or writes the message. */
static int read_token(gapi__token_result *tok, struct json_object *root, const char *who,
                      int status, const char *body, size_t len, char *errbuf, size_t errbuf_size)
{
    struct json_object *v;
    char q[QUOTE_MAX + 4];
    const char *s;
    size_t n, i;
    int rc;

    if (!json_object_object_get_ex(root, "access_token", &v) || v == NULL) {
        if (str_member(root, "error"))
            error_message(errbuf, errbuf_size, who, status, root, body, len, &tok->retryable);
        else
            gapi__errbuf_printf(errbuf, errbuf_size, "%s: response has no access_token", who);
        return GAPI_EAUTH;
    }
    if (!json_object_is_type(v, json_type_string)) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: access_token is not a string (it is %s)", who,
                            json_type_to_name(json_object_get_type(v)));
        return GAPI_EAUTH;
    }
    s = json_object_get_string(v);
    n = (size_t)json_object_get_string_len(v);
    if (n == 0) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: access_token is empty", who);
        return GAPI_EAUTH;
    }
    /* It becomes "Authorization: Bearer <token>": nothing that could end or
     * split the header line. */
    for (i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f) {
            gapi__errbuf_printf(errbuf, errbuf_size,
                                "%s: access_token has a byte not allowed in an HTTP header "
                                "(at offset %zu)",
                                who, i);
            return GAPI_EAUTH;
        }
    }
    if (json_object_object_get_ex(root, "token_type", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_string)) {
            gapi__errbuf_printf(errbuf, errbuf_size, "%s: token_type is not a string (it is %s)",
                                who, json_type_to_name(json_object_get_type(v)));
            return GAPI_EAUTH;
        }
        if (strcasecmp(json_object_get_string(v), "Bearer") != 0 ||
            json_object_get_string_len(v) != 6) {
            /* Quoted unless it carries the token (a server echoing it). */
            if (find_ci(json_object_get_string(v), (size_t)json_object_get_string_len(v), s))
                gapi__errbuf_printf(errbuf, errbuf_size, "%s: token_type is not Bearer", who);
            else
                gapi__errbuf_printf(errbuf, errbuf_size, "%s: token_type \"%s\" is not Bearer", who,
                                    quote(q, sizeof(q), v));
            return GAPI_EAUTH;
        }
    }
    tok->expires_in = -1;
    if (json_object_object_get_ex(root, "expires_in", &v) &&
        (rc = read_expires(v, who, &tok->expires_in, errbuf, errbuf_size)) != GAPI_OK)
        return rc;
    if ((tok->access_token = gapi__strndup(s, n)) == NULL) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return GAPI_ENOMEM;
    }
    return GAPI_OK;
}

int gapi__token_parse(gapi__token_result *out, const char *who, int status, const char *body,
                      size_t len, char *errbuf, size_t errbuf_size)
{
    gapi__token_result tok = {NULL, -1, 0};
    struct json_object *root = NULL;
    gapi__json_error jerr;
    int rc;

    if (!who)
        who = "token endpoint";
    if (!out || (!body && len)) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: %s is NULL", who, out ? "body" : "out");
        return GAPI_EINVAL;
    }
    memset(&jerr, 0, sizeof(jerr));
    rc = gapi__json_parse_ex(body, len, KEYFILE_JSON_DEPTH, GAPI__JSON_SECRET, &root, &jerr);
    if (rc == GAPI_ENOMEM) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        goto done;
    }
    if (status < 200 || status > 299) {
        tok.retryable = retryable_status(status);
        error_message(errbuf, errbuf_size, who, status, rc == GAPI_OK ? root : NULL, body, len,
                      &tok.retryable);
        rc = GAPI_EAUTH;
    } else if (rc != GAPI_OK) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "%s: HTTP %d: response is not JSON: %s at line %u, column %u", who,
                            status, jerr.message, jerr.line, jerr.column);
        rc = GAPI_EAUTH;
    } else if (!json_object_is_type(root, json_type_object)) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "%s: HTTP %d: response is not a JSON object (it is %s)", who, status,
                            json_type_to_name(json_object_get_type(root)));
        rc = GAPI_EAUTH;
    } else {
        rc = read_token(&tok, root, who, status, body, len, errbuf, errbuf_size);
    }

done:
    gapi__json_cleanse(root);
    json_object_put(root);
    if (rc != GAPI_OK) {
        free_secret(tok.access_token);
        tok.access_token = NULL;
        tok.expires_in = -1;
        if (rc == GAPI_ENOMEM)
            tok.retryable = 0;
    }
    *out = tok;
    return rc;
}
