/* URL splitting for the transport; see url.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gapi.h"
#include "common/alloc.h"
#include "transport/url.h"

static int has_bad_chars(const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 0x20 || ch == 0x7f)
            return 1;
    }
    return 0;
}

static int parse_port(const char *p, size_t n, unsigned short *out)
{
    unsigned long v = 0;
    size_t i;

    if (n == 0 || n > 5)
        return -1;
    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *out = (unsigned short)v;
    return 0;
}

static int valid_reg_name(const char *h, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)h[i];
        if (!(isalnum(ch) || ch == '-' || ch == '.' || ch == '_'))
            return 0;
    }
    return n > 0;
}

/* Split "host[:port]" or "[v6][:port]": sets *host and *hlen (brackets off),
 * u->port and u->host_is_ip. Allocates nothing. */
static int split_authority(gapi__url *u, const char *a, size_t n, const char **host, size_t *hlen,
                           const char **why)
{
    const char *colon = NULL;
    char tmp[64];

    *host = a;
    if (n && a[0] == '[') {
        const char *close = memchr(a, ']', n);
        struct in6_addr a6;

        if (!close)
            return *why = "unterminated IPv6 literal", GAPI_EINVAL;
        *host = a + 1;
        *hlen = (size_t)(close - *host);
        if (close + 1 < a + n) {
            if (close[1] != ':')
                return *why = "junk after IPv6 literal", GAPI_EINVAL;
            colon = close + 1;
        }
        if (*hlen == 0 || *hlen >= sizeof(tmp))
            return *why = "bad IPv6 literal", GAPI_EINVAL;
        memcpy(tmp, *host, *hlen);
        tmp[*hlen] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return *why = "bad IPv6 literal", GAPI_EINVAL;
        u->host_is_ip = 1;
    } else {
        colon = memchr(a, ':', n);
        *hlen = colon ? (size_t)(colon - a) : n;
        if (!valid_reg_name(a, *hlen))
            return *why = *hlen ? "host has invalid characters" : "empty host", GAPI_EINVAL;
        if (*hlen < sizeof(tmp)) {
            struct in_addr a4;
            memcpy(tmp, a, *hlen);
            tmp[*hlen] = '\0';
            u->host_is_ip = inet_pton(AF_INET, tmp, &a4) == 1;
        }
    }
    if (colon) {
        if (parse_port(colon + 1, (size_t)(a + n - colon - 1), &u->port) != 0)
            return *why = "bad port", GAPI_EINVAL;
    } else {
        u->port = u->tls ? 443 : 80;
    }
    return GAPI_OK;
}

/* All four strings live in one allocation (u->host is its start): one
 * malloc per request instead of four. */
static int build(gapi__url *u, const char *host, size_t hlen, const char *path)
{
    size_t plen = strlen(path);
    int v6 = memchr(host, ':', hlen) != NULL;
    int dflt = u->port == (u->tls ? 443 : 80);
    size_t size = (hlen + 1) + (plen + 2) + (hlen + 9) + (hlen + 18);
    char *m = gapi__malloc(size), *p;
    size_t i;

    if (!m)
        return GAPI_ENOMEM;
    for (i = 0; i < hlen; i++)
        m[i] = (char)tolower((unsigned char)host[i]);
    m[hlen] = '\0';
    u->host = m;
    p = m + hlen + 1;
    u->target = p;
    if (*path != '/')
        *p++ = '/'; /* "https://h?q" has an empty path: the target is "/?q" */
    memcpy(p, path, plen + 1);
    p += plen + 1;
    u->authority = p;
    if (dflt)
        p += sprintf(p, v6 ? "[%s]" : "%s", u->host) + 1;
    else
        p += sprintf(p, v6 ? "[%s]:%u" : "%s:%u", u->host, u->port) + 1;
    u->origin = p;
    sprintf(p, v6 ? "%s://[%s]:%u" : "%s://%s:%u", u->tls ? "https" : "http", u->host, u->port);
    return GAPI_OK;
}

int gapi__url_parse(gapi__url *u, const char *url, const char **why)
{
    const char *p, *auth, *auth_end, *host = NULL;
    size_t hlen = 0;
    int rc;

    memset(u, 0, sizeof(*u));
    *why = "";
    if (!url)
        return *why = "URL is NULL", GAPI_EINVAL;
    if (has_bad_chars(url))
        return *why = "URL contains spaces or control characters", GAPI_EINVAL;
    if (strncasecmp(url, "https://", 8) == 0) {
        u->tls = 1;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        return *why = "URL is not absolute http:// or https://", GAPI_EINVAL;
    }
    if (strchr(url, '#'))
        return *why = "URL has a fragment", GAPI_EINVAL;
    auth = p;
    auth_end = auth + strcspn(auth, "/?");
    if (memchr(auth, '@', (size_t)(auth_end - auth)))
        return *why = "URL has user-info (credentials do not belong in URLs)", GAPI_EINVAL;
    rc = split_authority(u, auth, (size_t)(auth_end - auth), &host, &hlen, why);
    if (rc == GAPI_OK)
        rc = build(u, host, hlen, auth_end);
    if (rc != GAPI_OK) {
        if (rc == GAPI_ENOMEM)
            *why = "out of memory";
        memset(u, 0, sizeof(*u));
    }
    return rc;
}

void gapi__url_free(gapi__url *u)
{
    gapi__free(u->host); /* the block holding all four strings */
    memset(u, 0, sizeof(*u));
}
