/*
 * Credentials objects: construction, reference counting and the static
 * headers (see auth.h). Everything here is immutable once made, so any
 * thread may use a gapi_credentials; tokens live in cache.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "auth/adc.h"
#include "auth/auth.h"
#include "auth/creds.h"
#include "request/retry.h"

#define CLOUD_PLATFORM      "https://www.googleapis.com/auth/cloud-platform"
#define GOOGLE_TOKEN_URI    "https://oauth2.googleapis.com/token"
#define METADATA_HOST       "metadata.google.internal"
#define METADATA_TOKEN_PATH "/computeMetadata/v1/instance/service-accounts/default/token"

static void creds_free(gapi_credentials *cr)
{
    if (cr->static_hdrs) {
        OPENSSL_cleanse(cr->static_hdrs, cr->static_len);
        gapi__free(cr->static_hdrs);
    }
    if (cr->key_param) {
        OPENSSL_cleanse(cr->key_param, strlen(cr->key_param));
        gapi__free(cr->key_param);
    }
    gapi__keyfile_clear(&cr->kf);
    gapi__free(cr->scopes);
    gapi__free(cr->subject);
    gapi__free(cr->token_uri);
    gapi__free(cr->metadata_url);
    gapi__free(cr->adc_tried);
    gapi__free(cr);
}

gapi_credentials *gapi_credentials_ref(gapi_credentials *cr)
{
    if (cr)
        __atomic_add_fetch(&cr->refs, 1, __ATOMIC_RELAXED);
    return cr;
}

void gapi_credentials_unref(gapi_credentials *cr)
{
    if (cr && __atomic_sub_fetch(&cr->refs, 1, __ATOMIC_ACQ_REL) == 0)
        creds_free(cr);
}

const char *gapi_credentials_type(const gapi_credentials *cr)
{
    static const char *const names[] = {
        NULL,       "api_key",     "access_token", "service_account", "authorized_user",
        "metadata", "token_source"};
    return cr ? names[cr->kind] : NULL;
}

const char *gapi_credentials_email(const gapi_credentials *cr)
{
    return cr && cr->kind == GAPI__CR_SERVICE_ACCOUNT ? cr->kf.client_email : NULL;
}

int gapi__creds_need_token(const gapi_credentials *cr)
{
    return cr->kind != GAPI__CR_API_KEY && cr->kind != GAPI__CR_ACCESS_TOKEN;
}

int gapi__creds_static_headers(const gapi_credentials *cr, gapi__buf *h)
{
    return cr->static_len ? gapi__buf_append(h, cr->static_hdrs, cr->static_len) : GAPI_OK;
}

int gapi__creds_key_query(const gapi_credentials *cr, const char *target, char **out)
{
    size_t tl, kl;
    char *t;

    if (!cr->key_param)
        return GAPI_OK;
    tl = strlen(target);
    kl = strlen(cr->key_param);
    if (!(t = gapi__malloc(tl + kl + 2)))
        return GAPI_ENOMEM;
    memcpy(t, target, tl);
    t[tl] = strchr(target, '?') ? '&' : '?';
    memcpy(t + tl + 1, cr->key_param, kl + 1);
    *out = t;
    return GAPI_OK;
}

/* ------------------------------------------------------------ building */

int gapi__header_value_ok(const char *v, int allow_space)
{
    unsigned char lo = allow_space ? 0x20 : 0x21;

    if (!v || !*v)
        return 0;
    for (; *v; v++)
        if ((unsigned char)*v < lo || (unsigned char)*v >= 0x7f)
            return 0;
    return 1;
}

/* A header value from the caller or a file (scopes have spaces). */
static int header_safe(const char *v)
{
    return gapi__header_value_ok(v, 1);
}

static int add_line(gapi__buf *b, const char *name, const char *v1, const char *v2)
{
    int rc = 0;

    rc |= gapi__buf_puts(b, name);
    rc |= gapi__buf_append(b, ": ", 2);
    rc |= gapi__buf_puts(b, v1);
    if (v2)
        rc |= gapi__buf_puts(b, v2);
    rc |= gapi__buf_append(b, "\r\n", 2);
    return rc ? GAPI_ENOMEM : GAPI_OK;
}

static int dup_opt(char **dst, const char *src)
{
    if (!src)
        return GAPI_OK;
    return (*dst = gapi__strdup(src)) ? GAPI_OK : GAPI_ENOMEM;
}

static int new_creds(gapi_credentials **out, gapi__cred_kind kind,
                     const gapi_credentials_options *opts, char *errbuf, size_t errbuf_size)
{
    static const gapi_retry_policy token_retry = {GAPI_RETRY_POLICY_VERSION, 4, 1000, 32000, 2.0, 0,
                                                  GAPI_RETRY_NON_IDEMPOTENT};
    gapi_credentials *cr;

    if (opts && opts->version != GAPI_CREDENTIALS_OPTIONS_VERSION) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "credentials options: version is not "
                            "GAPI_CREDENTIALS_OPTIONS_VERSION (use GAPI_CREDENTIALS_OPTIONS_INIT)");
        return GAPI_EINVAL;
    }
    if (!(cr = gapi__calloc(1, sizeof(*cr)))) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return GAPI_ENOMEM;
    }
    cr->refs = 1;
    cr->kind = kind;
    cr->token_retry = token_retry;
    if (opts && opts->token_retry &&
        gapi__retry_policy_resolve(&cr->token_retry, opts->token_retry, NULL) != GAPI_OK) {
        gapi__errbuf_printf(errbuf, errbuf_size, "credentials options: bad token_retry policy");
        gapi__free(cr);
        return GAPI_EINVAL;
    }
    /* Token requests are safe to repeat whatever their method. */
    cr->token_retry.flags |= GAPI_RETRY_NON_IDEMPOTENT;
    if (opts)
        cr->flags = opts->flags;
    *out = cr;
    return GAPI_OK;
}

static int fail(gapi_credentials *cr, int rc, char *errbuf, size_t errbuf_size, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));

static int fail(gapi_credentials *cr, int rc, char *errbuf, size_t errbuf_size, const char *fmt,
                ...)
{
    va_list ap;

    if (errbuf && errbuf_size) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errbuf_size, fmt, ap);
        va_end(ap);
    }
    gapi_credentials_unref(cr);
    return rc;
}

/* x-goog-user-project: the option, then the environment, then the file. */
static int quota_line(gapi_credentials *cr, gapi__buf *b, const gapi_credentials_options *opts,
                      char *errbuf, size_t errbuf_size)
{
    const char *q = opts && opts->quota_project ? opts->quota_project : NULL;
    const char *from = "options.quota_project";

    if (!q && (q = getenv("GOOGLE_CLOUD_QUOTA_PROJECT")) != NULL && *q)
        from = "GOOGLE_CLOUD_QUOTA_PROJECT";
    else if (!q || !*q) {
        q = cr->kf.quota_project_id;
        from = "the credentials' quota_project_id";
    }
    if (!q || !*q)
        return GAPI_OK;
    if (!header_safe(q)) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s has characters not allowed in a header value",
                            from);
        return GAPI_EINVAL;
    }
    return add_line(b, "x-goog-user-project", q, NULL);
}

/* The parts every kind shares: scopes, subject, static lines. */
static int finish_common(gapi_credentials *cr, gapi__buf *lines,
                         const gapi_credentials_options *opts, char *errbuf, size_t errbuf_size)
{
    int rc;

    if (opts && opts->scopes && !header_safe(opts->scopes)) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "credentials options: scopes are empty or "
                            "have control characters");
        return GAPI_EINVAL;
    }
    if (opts && opts->subject && !header_safe(opts->subject)) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "credentials options: subject is empty or "
                            "has control characters");
        return GAPI_EINVAL;
    }
    if ((rc = dup_opt(&cr->scopes, opts ? opts->scopes : NULL)) != GAPI_OK ||
        (rc = dup_opt(&cr->subject, opts ? opts->subject : NULL)) != GAPI_OK)
        return rc;
    if ((rc = quota_line(cr, lines, opts, errbuf, errbuf_size)) != GAPI_OK)
        return rc;
    if (lines->len) {
        cr->static_hdrs = lines->data;
        cr->static_len = lines->len;
        memset(lines, 0, sizeof(*lines));
    }
    return GAPI_OK;
}

static void wipe(gapi__buf *b)
{
    if (b->data)
        OPENSSL_cleanse(b->data, b->cap);
    gapi__buf_free(b);
}

static int finish(gapi_credentials **out, gapi_credentials *cr, gapi__buf *lines,
                  const gapi_credentials_options *opts, char *errbuf, size_t errbuf_size)
{
    int rc = finish_common(cr, lines, opts, errbuf, errbuf_size);

    wipe(lines);
    if (rc != GAPI_OK) {
        if (rc == GAPI_ENOMEM)
            gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        gapi_credentials_unref(cr);
        return rc;
    }
    *out = cr;
    return GAPI_OK;
}

static void enc(gapi__buf *b, const char *s, int *rc)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            *rc |= gapi__buf_append(b, s, 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            *rc |= gapi__buf_append(b, e, 3);
        }
    }
}

int gapi__form_encode(gapi__buf *b, const char *s)
{
    int rc = 0;

    enc(b, s, &rc);
    return rc ? GAPI_ENOMEM : GAPI_OK;
}

static int secret_creds(gapi_credentials **out, gapi__cred_kind kind, const char *secret,
                        const gapi_credentials_options *opts)
{
    gapi__buf lines = GAPI__BUF_INIT, param = GAPI__BUF_INIT;
    gapi_credentials *cr;
    int rc;

    if (!out || !header_safe(secret))
        return GAPI_EINVAL;
    if ((rc = new_creds(&cr, kind, opts, NULL, 0)) != GAPI_OK)
        return rc;
    if (kind == GAPI__CR_ACCESS_TOKEN) {
        rc = add_line(&lines, "Authorization", "Bearer ", secret);
    } else if (cr->flags & GAPI_CREDENTIALS_KEY_IN_QUERY) {
        rc = gapi__buf_puts(&param, "key=") ? GAPI_ENOMEM : gapi__form_encode(&param, secret);
        if (rc == GAPI_OK && gapi__buf_append(&param, "", 1) == GAPI_OK) {
            cr->key_param = param.data;
            memset(&param, 0, sizeof(param));
        } else {
            rc = GAPI_ENOMEM;
        }
    } else {
        rc = add_line(&lines, "x-goog-api-key", secret, NULL);
    }
    wipe(&param);
    if (rc != GAPI_OK) {
        wipe(&lines);
        gapi_credentials_unref(cr);
        return rc;
    }
    return finish(out, cr, &lines, opts, NULL, 0);
}

int gapi_credentials_api_key(gapi_credentials **out, const char *key,
                             const gapi_credentials_options *opts)
{
    return secret_creds(out, GAPI__CR_API_KEY, key, opts);
}

int gapi_credentials_access_token(gapi_credentials **out, const char *token,
                                  const gapi_credentials_options *opts)
{
    return secret_creds(out, GAPI__CR_ACCESS_TOKEN, token, opts);
}

int gapi_credentials_token_source(gapi_credentials **out, gapi_token_fetch_cb fetch, void *arg,
                                  const gapi_credentials_options *opts)
{
    gapi__buf lines = GAPI__BUF_INIT;
    gapi_credentials *cr;
    int rc;

    if (!out || !fetch)
        return GAPI_EINVAL;
    if ((rc = new_creds(&cr, GAPI__CR_TOKEN_SOURCE, opts, NULL, 0)) != GAPI_OK)
        return rc;
    cr->fetch = fetch;
    cr->fetch_arg = arg;
    return finish(out, cr, &lines, opts, NULL, 0);
}

static int metadata_url(gapi_credentials *cr, const gapi_credentials_options *opts)
{
    const char *host =
        opts && opts->metadata_host ? opts->metadata_host : getenv("GCE_METADATA_HOST");
    gapi__buf u = GAPI__BUF_INIT;
    int rc = 0;

    if (!host || !*host)
        host = METADATA_HOST;
    if (!header_safe(host) || strpbrk(host, "/?#@ "))
        return GAPI_EINVAL;
    rc |= gapi__buf_puts(&u, "http://");
    rc |= gapi__buf_puts(&u, host);
    rc |= gapi__buf_puts(&u, METADATA_TOKEN_PATH);
    if (cr->scopes) {
        /* The metadata server wants them comma-separated. */
        char *list = gapi__strdup(cr->scopes), *p;
        if (!list) {
            gapi__buf_free(&u);
            return GAPI_ENOMEM;
        }
        for (p = list; *p; p++)
            if (*p == ' ')
                *p = ',';
        rc |= gapi__buf_puts(&u, "?scopes=");
        rc |= gapi__form_encode(&u, list);
        gapi__free(list);
    }
    rc |= gapi__buf_append(&u, "", 1);
    if (rc) {
        gapi__buf_free(&u);
        return GAPI_ENOMEM;
    }
    cr->metadata_url = u.data;
    return GAPI_OK;
}

int gapi_credentials_metadata(gapi_credentials **out, const gapi_credentials_options *opts)
{
    gapi__buf lines = GAPI__BUF_INIT;
    gapi_credentials *cr;
    int rc;

    if (!out)
        return GAPI_EINVAL;
    if ((rc = new_creds(&cr, GAPI__CR_METADATA, opts, NULL, 0)) != GAPI_OK)
        return rc;
    if ((rc = finish_common(cr, &lines, opts, NULL, 0)) != GAPI_OK ||
        (rc = metadata_url(cr, opts)) != GAPI_OK) {
        wipe(&lines);
        gapi_credentials_unref(cr);
        return rc;
    }
    *out = cr;
    return GAPI_OK;
}

/* Service account and authorized user, from a parsed key file. */
static int from_keyfile(gapi_credentials **out, gapi__keyfile *kf,
                        const gapi_credentials_options *opts, char *errbuf, size_t errbuf_size)
{
    gapi__buf lines = GAPI__BUF_INIT;
    gapi_credentials *cr;
    const char *uri;
    int rc;

    rc = new_creds(&cr,
                   kf->type == GAPI__KEY_SERVICE_ACCOUNT ? GAPI__CR_SERVICE_ACCOUNT
                                                         : GAPI__CR_AUTHORIZED_USER,
                   opts, errbuf, errbuf_size);
    if (rc != GAPI_OK) {
        gapi__keyfile_clear(kf);
        return rc;
    }
    cr->kf = *kf;
    memset(kf, 0, sizeof(*kf));
    uri = opts && opts->token_uri ? opts->token_uri
          : cr->kf.token_uri      ? cr->kf.token_uri
                                  : GOOGLE_TOKEN_URI;
    /* The file's token_uri was checked by the parser; an option's is here. */
    if (opts && opts->token_uri &&
        (rc = gapi__check_token_uri(uri, "options.", errbuf, errbuf_size)) != GAPI_OK) {
        gapi_credentials_unref(cr);
        return rc == GAPI_ENOMEM ? rc : GAPI_EINVAL;
    }
    if ((rc = dup_opt(&cr->token_uri, uri)) != GAPI_OK)
        return fail(cr, rc, errbuf, errbuf_size, "out of memory");
    if (cr->kind == GAPI__CR_SERVICE_ACCOUNT) {
        /* Outside Google's own universe there is no token endpoint to ask:
         * self-signed JWTs are the only way. Delegation needs the endpoint. */
        int foreign = cr->kf.universe_domain && strcmp(cr->kf.universe_domain, "googleapis.com");
        const char *sub = opts ? opts->subject : NULL;
        if (foreign && sub)
            return fail(cr, GAPI_EINVAL, errbuf, errbuf_size,
                        "subject (domain-wide delegation) is not available in universe %s",
                        cr->kf.universe_domain);
        cr->self_signed = !sub && (foreign || (cr->flags & GAPI_CREDENTIALS_SELF_SIGNED_JWT));
    }
    if (!(opts && opts->scopes) && cr->kind == GAPI__CR_SERVICE_ACCOUNT &&
        !(cr->scopes = gapi__strdup(CLOUD_PLATFORM)))
        return fail(cr, GAPI_ENOMEM, errbuf, errbuf_size, "out of memory");
    return finish(out, cr, &lines, opts, errbuf, errbuf_size);
}

int gapi_credentials_from_json(gapi_credentials **out, const char *json, size_t len,
                               const gapi_credentials_options *opts, char *errbuf,
                               size_t errbuf_size)
{
    gapi__keyfile kf;
    int rc;

    if (!out || !json) {
        gapi__errbuf_printf(errbuf, errbuf_size, "gapi_credentials_from_json: %s is NULL",
                            !out ? "out" : "json");
        return GAPI_EINVAL;
    }
    memset(&kf, 0, sizeof(kf));
    if ((rc = gapi__keyfile_parse(&kf, json, len, errbuf, errbuf_size)) != GAPI_OK)
        return rc;
    return from_keyfile(out, &kf, opts, errbuf, errbuf_size);
}

int gapi_credentials_from_file(gapi_credentials **out, const char *path,
                               const gapi_credentials_options *opts, char *errbuf,
                               size_t errbuf_size)
{
    char msg[512] = "";
    gapi__keyfile kf;
    int rc;

    if (!out || !path) {
        gapi__errbuf_printf(errbuf, errbuf_size, "gapi_credentials_from_file: %s is NULL",
                            !out ? "out" : "path");
        return GAPI_EINVAL;
    }
    memset(&kf, 0, sizeof(kf));
    if ((rc = gapi__keyfile_load(&kf, path, errbuf, errbuf_size)) != GAPI_OK)
        return rc;
    if ((rc = from_keyfile(out, &kf, opts, msg, sizeof(msg))) != GAPI_OK)
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: %s", path, msg);
    return rc;
}

int gapi_credentials_default(gapi_credentials **out, const gapi_credentials_options *opts,
                             char *errbuf, size_t errbuf_size)
{
    char tried[768];
    char *path = NULL;
    gapi_credentials *cr;
    int rc;

    if (!out) {
        gapi__errbuf_printf(errbuf, errbuf_size, "gapi_credentials_default: out is NULL");
        return GAPI_EINVAL;
    }
    tried[0] = '\0';
    if ((rc = gapi__adc_find(&path, tried, sizeof(tried), errbuf, errbuf_size)) != GAPI_OK)
        return rc;
    if (path) {
        rc = gapi_credentials_from_file(out, path, opts, errbuf, errbuf_size);
        gapi__free(path);
        return rc;
    }
    if ((rc = gapi_credentials_metadata(&cr, opts)) != GAPI_OK) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            rc == GAPI_ENOMEM ? "out of memory"
                                              : "GCE_METADATA_HOST is not a host[:port]");
        return rc;
    }
    if (!(cr->adc_tried = gapi__strdup(tried))) {
        gapi_credentials_unref(cr);
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return GAPI_ENOMEM;
    }
    *out = cr;
    return GAPI_OK;
}
