/*
 * Application Default Credentials file search; see adc.h. The order and
 * the hard failure on a bad $GOOGLE_APPLICATION_CREDENTIALS follow
 * google-auth (_get_explicit_environ_credentials, then
 * _get_gcloud_sdk_credentials with its CLOUDSDK_CONFIG override).
 * Invariant: `tried` is always a NUL-terminated list, whatever the outcome.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gapi.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "auth/adc.h"

#define ENV_GAC    "GOOGLE_APPLICATION_CREDENTIALS"
#define ENV_CONFIG "CLOUDSDK_CONFIG"

/* Appends ", " (unless first) and the formatted text, truncating to fit. */
__attribute__((format(printf, 3, 4))) static void tried_add(char *tried, size_t size,
                                                            const char *fmt, ...)
{
    size_t n;
    va_list ap;

    if (!tried || !size)
        return;
    n = strnlen(tried, size - 1);
    if (n && n + 2 < size) {
        memcpy(tried + n, ", ", 2);
        n += 2;
        tried[n] = '\0';
    }
    va_start(ap, fmt);
    vsnprintf(tried + n, size - n, fmt, ap);
    va_end(ap);
}

/* The home directory from the password database, copied into home. */
static int home_from_passwd(gapi__buf *home)
{
    struct passwd pw, *res = NULL;
    long max = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t size = max > 0 && max < (1L << 20) ? (size_t)max : 16384;
    char *buf;
    int rc = GAPI_OK;

    for (;;) {
        if ((buf = gapi__malloc(size)) == NULL)
            return GAPI_ENOMEM;
        if (getpwuid_r(geteuid(), &pw, buf, size, &res) != ERANGE || size >= (1u << 20))
            break;
        gapi__free(buf);
        size *= 2;
    }
    if (res && res->pw_dir && res->pw_dir[0])
        rc = gapi__buf_puts(home, res->pw_dir);
    gapi__free(buf);
    return rc;
}

int gapi__adc_find(char **path, char *tried, size_t tried_size, char *errbuf, size_t errbuf_size)
{
    const char *env, *where;
    gapi__buf cand = GAPI__BUF_INIT;
    struct stat st;
    char *copy;
    int rc;

    if (tried && tried_size)
        tried[0] = '\0';
    if (!path) {
        gapi__errbuf_printf(errbuf, errbuf_size, "application default credentials: path is NULL");
        return GAPI_EINVAL;
    }

    if ((env = getenv(ENV_GAC)) != NULL) {
        const char *why = NULL;

        if (!*env) {
            tried_add(tried, tried_size, ENV_GAC " (set but empty)");
            gapi__errbuf_printf(errbuf, errbuf_size,
                                ENV_GAC " is set but empty (unset it to use the other sources)");
            return GAPI_ECREDENTIALS;
        }
        if (stat(env, &st) != 0)
            why = strerror(errno);
        else if (S_ISDIR(st.st_mode))
            why = strerror(EISDIR);
        else if (access(env, R_OK) != 0)
            why = strerror(errno);
        if (why) {
            tried_add(tried, tried_size, ENV_GAC "=%s (%s)", env, why);
            gapi__errbuf_printf(errbuf, errbuf_size, ENV_GAC "=%s: %s", env, why);
            return GAPI_ECREDENTIALS;
        }
        if ((copy = gapi__strdup(env)) == NULL) {
            gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
            return GAPI_ENOMEM;
        }
        tried_add(tried, tried_size, ENV_GAC "=%s (found)", env);
        *path = copy;
        return GAPI_OK;
    }
    tried_add(tried, tried_size, ENV_GAC " (unset)");

    env = getenv(ENV_CONFIG);
    if (env && *env) {
        where = ENV_CONFIG "; ";
        rc = gapi__buf_printf(&cand, "%s/" GAPI__ADC_FILE, env);
    } else {
        if (env)
            tried_add(tried, tried_size, ENV_CONFIG " (empty, ignored)");
        where = "";
        env = getenv("HOME");
        if (env && *env)
            rc = gapi__buf_puts(&cand, env);
        else
            rc = home_from_passwd(&cand);
        if (rc == GAPI_OK && cand.len == 0) {
            tried_add(tried, tried_size, "HOME (unset, and no home directory for uid %ld)",
                      (long)geteuid());
            *path = NULL;
            return GAPI_OK;
        }
        if (rc == GAPI_OK)
            rc = gapi__buf_puts(&cand, "/.config/gcloud/" GAPI__ADC_FILE);
    }
    if (rc != GAPI_OK) {
        gapi__buf_free(&cand);
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return GAPI_ENOMEM;
    }

    if (stat(cand.data, &st) != 0) {
        int e = errno;
        tried_add(tried, tried_size, "%s (%s%s)", cand.data, where,
                  e == ENOENT || e == ENOTDIR ? "not found" : strerror(e));
        gapi__buf_free(&cand);
        *path = NULL;
        return GAPI_OK;
    }
    if (!S_ISREG(st.st_mode)) {
        tried_add(tried, tried_size, "%s (%snot a regular file)", cand.data, where);
        gapi__buf_free(&cand);
        *path = NULL;
        return GAPI_OK;
    }
    tried_add(tried, tried_size, "%s (%sfound)", cand.data, where);
    *path = cand.data;
    return GAPI_OK;
}
