/*
 * Discovery documents from the network, like Python's build(api, version):
 * GET the discovery service's URL, then the "$discovery" URL of the API's
 * own host when the first answers with a non-2xx status, and build the
 * model from the body. An optional on-disk cache short-cuts the requests.
 *
 * Two drivers share one state machine (fetch_result):
 *  - gapi_service_fetch, on the loop thread, chains gapi_request_send
 *    callbacks and calls the user back from inside the last one;
 *  - gapi_service_fetch_sync, on a worker thread, runs the same steps with
 *    gapi_request_execute and does its file I/O and parsing there.
 *
 * Invariants:
 *  - an accepted async fetch always has exactly one gapi_request owned by
 *    the client (in flight, or in its done queue), so the client's
 *    exactly-once rule covers the fetch, shutdown included: the user's
 *    callback runs from that request's callback, once, and the fetch is
 *    freed right after it;
 *  - nothing from the cache is used unless it loads as a valid document
 *    and the file passed the checks of gapi__fetch_cache_read; the cache is
 *    only ever written by rename of a complete, fsync'd temporary file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>
#include <sys/types.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "common/error.h"
#include "common/alloc.h"
#include "client/client.h"
#include "discovery/discovery.h"
#include "discovery/fetch.h"

#define DEFAULT_MAX_AGE_S 86400u /* Python's DISCOVERY_DOC_MAX_AGE */

/* Python's DISCOVERY_URI and V2_DISCOVERY_URI, with the universe domain in
 * place of googleapis.com. */
#define PRIMARY_FMT  "https://www.%s/discovery/v1/apis/{api}/{version}/rest"
#define FALLBACK_FMT "https://{api}.%s/$discovery/rest?version={version}"

/* ---------------------------------------------------------------- names and URLs */

static int name_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

int gapi__fetch_check_name(const char *what, const char *s, char *errbuf, size_t errbuf_size)
{
    size_t i, n;

    if (!s || !*s) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s is empty", what);
        return GAPI_EINVAL;
    }
    n = strlen(s);
    if (n > GAPI__FETCH_NAME_MAX) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s is longer than %d characters", what,
                            GAPI__FETCH_NAME_MAX);
        return GAPI_EINVAL;
    }
    for (i = 0; i < n; i++) {
        if (!name_char((unsigned char)s[i])) {
            gapi__errbuf_printf(
                errbuf, errbuf_size,
                "%s has character 0x%02x at offset %zu (only A-Z a-z 0-9 . _ - are allowed)", what,
                (unsigned char)s[i], i);
            return GAPI_EINVAL;
        }
    }
    if (s[0] == '.' || strstr(s, "..")) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s \"%s\" starts with '.' or contains \"..\"",
                            what, s);
        return GAPI_EINVAL;
    }
    return 0;
}

int gapi__fetch_expand(char **out, const char *what, const char *tmpl, const char *api,
                       const char *version, char *errbuf, size_t errbuf_size)
{
    static const struct {
        const char *name;
        size_t len;
        int is_api;
    } vars[] = {{"{api}", 5, 1}, {"{version}", 9, 0}, {"{apiVersion}", 12, 0}};
    size_t n = 0, k, vl;
    const char *p, *v;
    char *s;
    int pass;

    /* Pass 0 measures, pass 1 writes. */
    for (pass = 0; pass < 2; pass++) {
        s = pass ? *out : NULL;
        n = 0;
        for (p = tmpl; *p; p++) {
            if (*p == '}') {
                gapi__errbuf_printf(errbuf, errbuf_size, "%s has a '}' without '{' at offset %zu",
                                    what, (size_t)(p - tmpl));
                return GAPI_EINVAL;
            }
            if (*p != '{') {
                if (s)
                    s[n] = *p;
                n++;
                continue;
            }
            for (k = 0; k < sizeof(vars) / sizeof(vars[0]); k++)
                if (strncmp(p, vars[k].name, vars[k].len) == 0)
                    break;
            if (k == sizeof(vars) / sizeof(vars[0])) {
                gapi__errbuf_printf(
                    errbuf, errbuf_size,
                    "%s has an unknown placeholder at offset %zu (only {api}, {version} and "
                    "{apiVersion} are replaced)",
                    what, (size_t)(p - tmpl));
                return GAPI_EINVAL;
            }
            v = vars[k].is_api ? api : version;
            vl = strlen(v);
            if (s)
                memcpy(s + n, v, vl);
            n += vl;
            p += vars[k].len - 1;
        }
        if (!pass) {
            if (!(*out = gapi__malloc(n + 1))) {
                gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
                return GAPI_ENOMEM;
            }
        }
    }
    (*out)[n] = '\0';
    return 0;
}

/* Expand and check one URL template. */
static int make_url(char **out, const char *what, const char *tmpl, const char *api,
                    const char *version, char *errbuf, size_t errbuf_size)
{
    const char *why = NULL;
    gapi__url u;
    int rc;

    if ((rc = gapi__fetch_expand(out, what, tmpl, api, version, errbuf, errbuf_size)) != 0)
        return rc;
    rc = gapi__url_parse(&u, *out, &why);
    if (rc == 0) {
        gapi__url_free(&u);
        return 0;
    }
    if (rc == GAPI_ENOMEM)
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
    else
        gapi__errbuf_printf(errbuf, errbuf_size, "%s \"%.200s\": %s", what, *out,
                            why ? why : "invalid URL");
    gapi__free(*out);
    *out = NULL;
    return rc;
}

int gapi__fetch_urls(char *urls[2], const gapi_service_fetch_options *opts, const char *api,
                     const char *version, const char *universe, char *errbuf, size_t errbuf_size)
{
    const char *primary = opts ? opts->discovery_url : NULL;
    const char *fallback = opts ? opts->fallback_url : NULL;
    char *dflt = NULL, *u0 = NULL, *u1 = NULL;
    size_t n;
    int rc;

    n = sizeof(PRIMARY_FMT) + sizeof(FALLBACK_FMT) + strlen(universe);
    if (!(dflt = gapi__malloc(n))) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return GAPI_ENOMEM;
    }
    if (!primary) {
        snprintf(dflt, n, PRIMARY_FMT, universe);
        rc = make_url(&u0, "the default discovery URL", dflt, api, version, errbuf, errbuf_size);
        if (rc == 0 && !fallback) {
            snprintf(dflt, n, FALLBACK_FMT, universe);
            rc = make_url(&u1, "the default fallback URL", dflt, api, version, errbuf, errbuf_size);
        }
    } else {
        rc = make_url(&u0, "options.discovery_url", primary, api, version, errbuf, errbuf_size);
    }
    if (rc == 0 && fallback && *fallback)
        rc = make_url(&u1, "options.fallback_url", fallback, api, version, errbuf, errbuf_size);
    gapi__free(dflt);
    if (rc) {
        gapi__free(u0);
        gapi__free(u1);
        return rc;
    }
    urls[0] = u0;
    urls[1] = u1;
    return 0;
}

/* ---------------------------------------------------------------- cache files */

char *gapi__fetch_cache_path(const char *dir, const char *api, const char *version,
                             const char *const urls[2])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const char *parts[4];
    char digest[33], *key, *path;
    size_t klen = 0, off = 0, n, i;
    int ok;

    parts[0] = api;
    parts[1] = version;
    parts[2] = urls[0];
    parts[3] = urls[1] ? urls[1] : "";
    /* NUL-separated, so no two different tuples hash the same bytes. */
    for (i = 0; i < 4; i++)
        klen += strlen(parts[i]) + 1;
    if (!(key = gapi__malloc(klen)))
        return NULL;
    for (i = 0; i < 4; i++) {
        n = strlen(parts[i]) + 1;
        memcpy(key + off, parts[i], n);
        off += n;
    }
    ok = EVP_Digest(key, klen, md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen >= 16;
    gapi__free(key);
    if (!ok)
        return NULL;
    for (i = 0; i < 16; i++) {
        digest[2 * i] = hex[md[i] >> 4];
        digest[2 * i + 1] = hex[md[i] & 15];
    }
    digest[32] = '\0';
    n = strlen(dir) + 1 + strlen(api) + 1 + strlen(version) + 1 + 32 + sizeof(".json");
    if (!(path = gapi__malloc(n)))
        return NULL;
    snprintf(path, n, "%s/%s.%s.%s.json", dir, api, version, digest);
    return path;
}

/* The cache directory itself must be ours and writable by nobody else:
 * anyone who can write it can rename entries onto each other's names. Its
 * last component must not be a symlink. Returns 1 if trusted. */
static int dir_trusted(const char *path, char *why, size_t why_size)
{
    char *dir = gapi__strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    struct stat st;
    int ok;

    if (!dir) {
        gapi__errbuf_printf(why, why_size, "out of memory");
        return 0;
    }
    if (slash && slash != dir)
        *slash = '\0'; /* the entry's directory */
    ok = lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
         !(st.st_mode & (S_IWGRP | S_IWOTH));
    if (!ok)
        gapi__errbuf_printf(why, why_size,
                            "cache directory %s is not a directory of ours that only we may write",
                            dir);
    gapi__free(dir);
    return ok;
}

int gapi__fetch_cache_read(const char *path, unsigned max_age_s, size_t max_bytes, char **data,
                           size_t *len, char *why, size_t why_size)
{
    struct stat st;
    size_t n = 0;
    ssize_t got;
    time_t now;
    char *buf;
    int fd;

    if (!max_age_s)
        max_age_s = DEFAULT_MAX_AGE_S;
    if (!dir_trusted(path, why, why_size))
        return 1;
    /* O_NOFOLLOW: a symlink planted under our entry's name is not read. */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        gapi__errbuf_printf(why, why_size, "%s: %s", path, strerror(errno));
        return 1;
    }
    if (fstat(fd, &st) != 0) {
        gapi__errbuf_printf(why, why_size, "%s: %s", path, strerror(errno));
        close(fd);
        return 1;
    }
    /* An entry someone else could have written may point rootUrl (and so
     * the caller's credentials) anywhere: never trust one. */
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        gapi__errbuf_printf(why, why_size, "%s: not a regular file of ours that only we may write",
                            path);
        close(fd);
        return 1;
    }
    now = time(NULL);
    /* A few seconds in the future is clock granularity; more is a clock
     * that moved: refetch rather than trust the entry for longer. */
    if (st.st_mtime > now + 5 || now - st.st_mtime >= (time_t)max_age_s) {
        gapi__errbuf_printf(why, why_size, "%s: older than %u s", path, max_age_s);
        close(fd);
        return 1;
    }
    if (st.st_size <= 0 || (unsigned long long)st.st_size > max_bytes) {
        gapi__errbuf_printf(why, why_size, "%s: size %lld out of range", path,
                            (long long)st.st_size);
        close(fd);
        return 1;
    }
    if (!(buf = gapi__malloc((size_t)st.st_size + 1))) {
        close(fd);
        return GAPI_ENOMEM;
    }
    while (n < (size_t)st.st_size) {
        got = read(fd, buf + n, (size_t)st.st_size - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    if (n != (size_t)st.st_size) {
        gapi__errbuf_printf(why, why_size, "%s: short read", path);
        gapi__free(buf);
        return 1;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    ssize_t w;

    while (n) {
        w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int gapi__fetch_cache_write(const char *dir, const char *path, const char *data, size_t len,
                            char *errbuf, size_t errbuf_size)
{
    const char *base = strrchr(path, '/');
    char *tmp;
    size_t n;
    int fd, dfd, e;

    base = base ? base + 1 : path;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        gapi__errbuf_printf(errbuf, errbuf_size, "cannot make cache directory %s: %s", dir,
                            strerror(errno));
        return GAPI_EINVAL;
    }
    if (!dir_trusted(path, errbuf, errbuf_size))
        return GAPI_EINVAL;
    /* Hidden, in the same directory: rename() is atomic only within one
     * file system, and readers never pick a ".name" up as an entry. */
    n = strlen(dir) + 2 + strlen(base) + sizeof(".XXXXXX");
    if (!(tmp = gapi__malloc(n))) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return GAPI_ENOMEM;
    }
    snprintf(tmp, n, "%s/.%s.XXXXXX", dir, base);
    if ((fd = mkstemp(tmp)) < 0) {
        gapi__errbuf_printf(errbuf, errbuf_size, "cannot create a file in cache directory %s: %s",
                            dir, strerror(errno));
        gapi__free(tmp);
        return GAPI_EINVAL;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        e = errno;
        close(fd);
        goto fail;
    }
    if (close(fd) != 0) {
        e = errno;
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        goto fail;
    }
    gapi__free(tmp);
    /* Make the rename itself durable; best effort (some file systems
     * refuse fsync on a directory). */
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;

fail:
    unlink(tmp);
    gapi__errbuf_printf(errbuf, errbuf_size, "cannot write cache entry %s: %s", path, strerror(e));
    gapi__free(tmp);
    return GAPI_EINVAL;
}

/* ---------------------------------------------------------------- shared state machine */

typedef struct fetch {
    gapi_client *c;
    gapi_service_fetch_cb cb;
    void *arg;
    gapi_service_options sopts; /* its strings point at endpoint / universe below */
    char *endpoint;
    char *universe;
    char *urls[2]; /* urls[1] NULL: no fallback */
    char *cache_dir;
    char *cache_path; /* NULL: no cache */
    unsigned max_age_s;
    char api[104], version[104]; /* checked names (at most 100 bytes) */
    int step;                    /* index in urls of the request in flight */
    gapi_service *svc;           /* async cache hit waiting for its delivery */
    size_t msg_len;
    char msg[1536];
} fetch;

static void fetch_free(fetch *f)
{
    gapi__free(f->endpoint);
    gapi__free(f->universe);
    gapi__free(f->urls[0]);
    gapi__free(f->urls[1]);
    gapi__free(f->cache_dir);
    gapi__free(f->cache_path);
    gapi_service_unref(f->svc);
    gapi__free(f);
}

/* Append to the fetch's message, "; " between parts; truncates quietly. */
static void msg_add(fetch *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void msg_add(fetch *f, const char *fmt, ...)
{
    va_list ap;
    int w;

    if (f->msg_len + 3 >= sizeof(f->msg))
        return;
    if (f->msg_len) {
        memcpy(f->msg + f->msg_len, "; ", 3);
        f->msg_len += 2;
    }
    va_start(ap, fmt);
    w = vsnprintf(f->msg + f->msg_len, sizeof(f->msg) - f->msg_len, fmt, ap);
    va_end(ap);
    if (w > 0)
        f->msg_len += (size_t)w;
    if (f->msg_len >= sizeof(f->msg))
        f->msg_len = sizeof(f->msg) - 1;
}

static char *dup_or_null(const char *s, int *nomem)
{
    char *d;

    if (!s)
        return NULL;
    if (!(d = gapi__strdup(s)))
        *nomem = 1;
    return d;
}

/* Everything both drivers check and copy before any I/O. */
static int fetch_new(fetch **out, gapi_client *c, const char *api, const char *version,
                     const gapi_service_fetch_options *opts, const char *fn, char *errbuf,
                     size_t errbuf_size)
{
    const char *endpoint = NULL, *universe = NULL;
    const gapi_service_options *so;
    char msg[256];
    int nomem = 0, rc;
    fetch *f;

    if (!c || !api || !version) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: client, api and version are required", fn);
        return GAPI_EINVAL;
    }
    if (opts && opts->version != GAPI_SERVICE_FETCH_OPTIONS_VERSION) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "%s: options.version is not GAPI_SERVICE_FETCH_OPTIONS_VERSION (use "
                            "GAPI_SERVICE_FETCH_OPTIONS_INIT)",
                            fn);
        return GAPI_EINVAL;
    }
    if ((rc = gapi__fetch_check_name("api", api, msg, sizeof(msg))) != 0 ||
        (rc = gapi__fetch_check_name("version", version, msg, sizeof(msg))) != 0) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: %s", fn, msg);
        return rc;
    }
    so = opts ? opts->service : NULL;
    if ((rc = gapi__service_options(so, &endpoint, &universe, msg, sizeof(msg))) != 0) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: options.service: %s", fn, msg);
        return rc;
    }
    if (!(f = gapi__calloc(1, sizeof(*f)))) {
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return GAPI_ENOMEM;
    }
    f->c = c;
    /* Both fields of gapi_service_options are resolved here; a field added
     * to it must be carried over here too. */
    f->sopts.version = GAPI_SERVICE_OPTIONS_VERSION;
    /* The caller's strings need not outlive the call; the universe is
     * resolved now (environment included), once for URLs and model. */
    f->endpoint = dup_or_null(endpoint, &nomem);
    f->universe = dup_or_null(universe, &nomem);
    snprintf(f->api, sizeof(f->api), "%s", api);
    snprintf(f->version, sizeof(f->version), "%s", version);
    f->sopts.endpoint = f->endpoint;
    f->sopts.universe_domain = f->universe;
    f->max_age_s = opts && opts->cache_max_age_s ? opts->cache_max_age_s : DEFAULT_MAX_AGE_S;
    if (nomem) {
        rc = GAPI_ENOMEM;
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        goto fail;
    }
    rc = gapi__fetch_urls(f->urls, opts, api, version, universe, msg, sizeof(msg));
    if (rc) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: %s", fn, msg);
        goto fail;
    }
    if (opts && opts->cache_dir) {
        if (!*opts->cache_dir) {
            rc = GAPI_EINVAL;
            gapi__errbuf_printf(errbuf, errbuf_size, "%s: options.cache_dir is empty", fn);
            goto fail;
        }
        f->cache_dir = gapi__strdup(opts->cache_dir);
        f->cache_path = f->cache_dir ? gapi__fetch_cache_path(f->cache_dir, api, version,
                                                              (const char *const *)f->urls)
                                     : NULL;
        if (!f->cache_path) {
            rc = GAPI_ENOMEM;
            gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
            goto fail;
        }
    }
    *out = f;
    return 0;
fail:
    fetch_free(f);
    return rc;
}

/* A fresh, valid cache entry as a service, or NULL (a miss, whatever the
 * reason: a bad entry is simply refetched and replaced). GAPI_ENOMEM is
 * not a miss: it fails the fetch. */
static int cache_lookup(fetch *f, gapi_service **svc)
{
    char why[256];
    char *data;
    size_t len;
    int rc;

    *svc = NULL;
    if (!f->cache_path)
        return 0;
    rc = gapi__fetch_cache_read(f->cache_path, f->max_age_s, f->c->opts.max_body_bytes, &data, &len,
                                why, sizeof(why));
    if (rc == 1)
        return 0;
    if (rc != 0) {
        msg_add(f, "out of memory reading cache entry %s", f->cache_path);
        return rc;
    }
    rc = gapi__service_load(svc, data, len, &f->sopts, why, sizeof(why));
    gapi__free(data);
    if (rc == GAPI_ENOMEM) {
        msg_add(f, "out of memory loading cache entry %s", f->cache_path);
        return rc;
    }
    if (rc != 0) {
        *svc = NULL;
        return 0;
    }
    /* An entry of ours renamed onto another entry's name keeps owner, mode
     * and age: check that the document is the one the name promises. */
    if (strcmp(gapi_service_name(*svc), f->api) != 0 ||
        strcmp(gapi_service_version(*svc), f->version) != 0) {
        gapi_service_unref(*svc);
        *svc = NULL;
    }
    return 0;
}

static void cache_store(fetch *f, const char *body, size_t len)
{
    char why[512];

    if (f->cache_path &&
        gapi__fetch_cache_write(f->cache_dir, f->cache_path, body, len, why, sizeof(why)) != 0)
        msg_add(f, "discovery cache not written: %s", why);
}

/* Google's error.message from an error response into buf, or "". The body
 * was not parsed for us (raw_body), so parse it here: error bodies are
 * small, documents (which the loader parses) are not. */
static const char *google_message(const gapi_response *resp, char *buf, size_t n)
{
    gapi_google_error *ge = NULL;
    const char *body, *m;
    size_t len;

    buf[0] = '\0';
    body = gapi_response_body(resp, &len);
    if (body && gapi_google_error_parse(&ge, gapi_response_status(resp), body, len) == 0) {
        if ((m = gapi_google_error_message(ge)) != NULL)
            snprintf(buf, n, "%s", m);
        gapi_google_error_free(ge);
    }
    return buf;
}

/* What one request's outcome means. Returns 0 with *svc set (done), 1
 * (try the next URL; f->step advanced) or a negative error; f->msg says
 * why. */
static int fetch_result(fetch *f, int err, const gapi_response *resp, const char *reqmsg,
                        gapi_service **svc)
{
    const char *url = f->urls[f->step], *gm, *body;
    char lmsg[512], gbuf[256];
    size_t len;
    int status, rc;

    /* EJSON: the body says JSON but does not parse; the loader will say
     * exactly where, as GAPI_EDISCOVERY. */
    if (resp && (err == GAPI_OK || err == GAPI_EJSON)) {
        status = gapi_response_status(resp);
        if (status >= 200 && status <= 299) {
            body = gapi_response_body(resp, &len);
            rc = gapi__service_load(svc, body ? body : "", body ? len : 0, &f->sopts, lmsg,
                                    sizeof(lmsg));
            if (rc != 0) {
                msg_add(f, "GET %s: the response is not a valid discovery document: %s", url, lmsg);
                return rc;
            }
            f->msg_len = 0; /* earlier failures do not matter any more */
            f->msg[0] = '\0';
            cache_store(f, body, len);
            return 0;
        }
        gm = google_message(resp, gbuf, sizeof(gbuf));
        msg_add(f, "GET %s: HTTP status %d%s%.200s", url, status, *gm ? ": " : "", gm);
        if (f->step == 0 && f->urls[1]) {
            f->step = 1;
            return 1;
        }
        return GAPI_EHTTP;
    }
    msg_add(f, "GET %s: %s", url, reqmsg && *reqmsg ? reqmsg : gapi_strerror(err));
    return err ? err : GAPI_EPROTO;
}

/* ---------------------------------------------------------------- async driver */

static void finish(fetch *f, gapi_service *svc, int err)
{
    if (err == 0 && f->msg_len == 0)
        f->msg[0] = '\0';
    f->cb(err ? NULL : svc, err, f->msg, f->arg);
    fetch_free(f);
}

static int start_get(fetch *f);

static void on_response(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    fetch *f = arg;
    gapi_service *svc = NULL;
    int rc = fetch_result(f, err, resp, gapi_request_errmsg(req), &svc);

    if (rc == 1) {
        if ((rc = start_get(f)) == 0)
            return;
        msg_add(f, "GET %s: not sent: %s", f->urls[f->step], gapi_strerror(rc));
    }
    finish(f, svc, rc);
}

static void on_cache_hit(gapi_request *req, int err, const gapi_response *resp, void *arg)
{
    fetch *f = arg;
    gapi_service *svc = f->svc;

    (void)req;
    (void)err;
    (void)resp;
    /* Delivered even while the client is being freed: the result was
     * complete before the free began. */
    f->svc = NULL;
    finish(f, svc, 0);
}

static int start_get(fetch *f)
{
    gapi_request *r;
    int rc;

    if ((rc = gapi_request_new(&r, f->c, "GET", f->urls[f->step])) != 0)
        return rc;
    r->raw_body = 1; /* the loader parses the document itself: one parse, not two */
    if ((rc = gapi_request_send(r, on_response, f)) != 0)
        gapi_request_free(r);
    return rc;
}

/*
 * A cache hit must still reach the user later, through something the
 * client knows about, so that freeing the client delivers it like any
 * request. A request that is completed at once without a transfer does
 * exactly that: it sits in the client's done queue (counted as started and
 * completed) and its callback runs on the next loop pass, or during the
 * client's teardown. This mirrors how client.c completes a submitted
 * request that cannot start; a client-level "deferred call" hook would be
 * the cleaner home for it.
 */
static int defer_delivery(fetch *f)
{
    gapi_client *c = f->c;
    gapi_request *r;
    int rc;

    if ((rc = gapi_request_new(&r, c, "GET", f->urls[0])) != 0)
        return rc;
    if ((rc = gapi__request_prepare(r, on_cache_hit, f)) != 0) {
        gapi_request_free(r);
        return rc;
    }
    if (c->closing) {
        gapi_request_free(r);
        return GAPI_ESHUTDOWN;
    }
    r->state = GAPI__REQ_INFLIGHT;
    TAILQ_INSERT_TAIL(&c->live, r, live_link);
    c->started++;
    gapi__client_complete(c, r, GAPI_OK);
    return 0;
}

int gapi_service_fetch(gapi_client *c, const char *api, const char *version,
                       const gapi_service_fetch_options *opts, char *errbuf, size_t errbuf_size,
                       gapi_service_fetch_cb cb, void *arg)
{
    static const char fn[] = "gapi_service_fetch";
    gapi_service *svc;
    fetch *f;
    int rc;

    if (!cb) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: a callback is required", fn);
        return GAPI_EINVAL;
    }
    if (c && !gapi__client_on_loop(c)) {
        gapi__errbuf_printf(
            errbuf, errbuf_size,
            "%s: called off the client's loop thread (use gapi_service_fetch_sync there)", fn);
        return GAPI_EINVAL;
    }
    if (c && gapi__client_is_shut(c)) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: the client is shut down", fn);
        return GAPI_ESHUTDOWN;
    }
    if ((rc = fetch_new(&f, c, api, version, opts, fn, errbuf, errbuf_size)) != 0)
        return rc;
    f->cb = cb;
    f->arg = arg;
    if ((rc = cache_lookup(f, &svc)) == 0) {
        if (svc) {
            f->svc = svc;
            rc = defer_delivery(f);
        } else {
            rc = start_get(f);
        }
    }
    if (rc != 0) {
        if (f->msg_len)
            gapi__errbuf_printf(errbuf, errbuf_size, "%s: %s", fn, f->msg);
        else
            gapi__errbuf_printf(errbuf, errbuf_size, "%s: GET %s not sent: %s", fn, f->urls[0],
                                gapi_strerror(rc));
        fetch_free(f);
    }
    return rc;
}

/* ---------------------------------------------------------------- sync driver */

int gapi_service_fetch_sync(gapi_service **out, gapi_client *c, const char *api,
                            const char *version, const gapi_service_fetch_options *opts,
                            unsigned timeout_ms, char *errbuf, size_t errbuf_size)
{
    static const char fn[] = "gapi_service_fetch_sync";
    long long deadline = timeout_ms ? (long long)gapi__now_ms() + timeout_ms : 0, left;
    gapi_service *svc = NULL;
    gapi_request *r;
    gapi_future *fut;
    fetch *f;
    int rc;

    if (!out) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: out is required", fn);
        return GAPI_EINVAL;
    }
    if (c && gapi__client_on_loop(c)) {
        gapi__errbuf_printf(
            errbuf, errbuf_size,
            "%s: called on the client's loop thread, where it would wait for itself (use "
            "gapi_service_fetch there)",
            fn);
        return GAPI_EDEADLK;
    }
    if (c && gapi__client_is_shut(c)) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s: the client is shut down", fn);
        return GAPI_ESHUTDOWN;
    }
    if ((rc = fetch_new(&f, c, api, version, opts, fn, errbuf, errbuf_size)) != 0)
        return rc;
    if ((rc = cache_lookup(f, &svc)) != 0 || svc)
        goto done;
    for (;;) {
        left = 0;
        if (deadline && (left = deadline - (long long)gapi__now_ms()) <= 0) {
            msg_add(f, "GET %s: not started: %u ms timeout reached", f->urls[f->step], timeout_ms);
            rc = GAPI_ETIMEDOUT;
            break;
        }
        if ((rc = gapi_request_new(&r, c, "GET", f->urls[f->step])) != 0) {
            msg_add(f, "GET %s: %s", f->urls[f->step], gapi_strerror(rc));
            break;
        }
        r->raw_body = 1; /* parsed once, by the loader */
        rc = gapi_request_execute(r, (unsigned)left, &fut);
        if (rc != 0) {
            gapi_request_free(r); /* not accepted: still ours */
            msg_add(f, "GET %s: %s", f->urls[f->step],
                    rc == GAPI_ETIMEDOUT ? "no complete answer within the timeout"
                                         : gapi_strerror(rc));
            break;
        }
        rc = fetch_result(f, gapi_future_error(fut), gapi_future_response(fut),
                          gapi_future_errmsg(fut), &svc);
        gapi_future_free(fut);
        if (rc != 1)
            break;
    }
done:
    if (rc == 0) {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s", f->msg_len ? f->msg : "");
        *out = svc;
    } else {
        gapi__errbuf_printf(errbuf, errbuf_size, "%s", f->msg);
    }
    fetch_free(f);
    return rc;
}
