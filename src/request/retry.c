/*
 * Retry policy arithmetic (see retry.h and the policy comment in gapi.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "request/retry.h"

#define DAY_MS (24LL * 3600 * 1000)

int gapi__retry_policy_resolve(gapi_retry_policy *out, const gapi_retry_policy *in,
                               const char **why)
{
    gapi_retry_policy p = *in;
    const char *dummy;

    if (!why)
        why = &dummy;
    if (in->version != GAPI_RETRY_POLICY_VERSION) {
        *why = "version is not GAPI_RETRY_POLICY_VERSION (use GAPI_RETRY_POLICY_INIT)";
        return GAPI_EINVAL;
    }
    if (p.multiplier == 0)
        p.multiplier = 2.0;
    if (!(p.multiplier >= 1.0) || p.multiplier > 1000.0) { /* NaN fails too */
        *why = "multiplier must be between 1 and 1000 (0 picks 2)";
        return GAPI_EINVAL;
    }
    if (!p.initial_delay_ms)
        p.initial_delay_ms = 1000;
    if (!p.max_delay_ms)
        p.max_delay_ms = 32000;
    if (!p.max_attempts)
        p.max_attempts = 1;
    *out = p;
    return GAPI_OK;
}

int gapi__retry_err_retryable(int err)
{
    switch (err) {
    case GAPI_EDNS:
    case GAPI_ECONNECT:
    case GAPI_ECONNECTTIMEOUT:
    case GAPI_ECONNRESET:
    case GAPI_ETRUNCATED:
    case GAPI_ETLS:
    case GAPI_ESTALL:
        return 1;
    default:
        return 0;
    }
}

/* 403 is retried only for Google's rate-limit reasons; every other 403 is
 * a permission error that no wait will fix. */
static int rate_limited(struct json_object *json)
{
    struct json_object *err, *errors;
    size_t i, n;

    if (!json || !json_object_object_get_ex(json, "error", &err) ||
        !json_object_object_get_ex(err, "errors", &errors) ||
        !json_object_is_type(errors, json_type_array))
        return 0;
    n = json_object_array_length(errors);
    for (i = 0; i < n; i++) {
        struct json_object *reason;
        const char *s;
        if (!json_object_object_get_ex(json_object_array_get_idx(errors, i), "reason", &reason) ||
            !json_object_is_type(reason, json_type_string))
            continue;
        s = json_object_get_string(reason);
        if (!strcmp(s, "rateLimitExceeded") || !strcmp(s, "userRateLimitExceeded"))
            return 1;
    }
    return 0;
}

int gapi__retry_status_retryable(int status, struct json_object *json)
{
    switch (status) {
    case 408:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        return 1;
    case 403:
        return rate_limited(json);
    default:
        return 0;
    }
}

unsigned gapi__retry_backoff_ms(const gapi_retry_policy *p, unsigned n, double rnd)
{
    double d = p->initial_delay_ms;
    unsigned i;

    for (i = 1; i < n && d < p->max_delay_ms; i++)
        d *= p->multiplier;
    if (d > p->max_delay_ms)
        d = p->max_delay_ms;
    if (!(p->flags & GAPI_RETRY_NO_JITTER))
        d *= rnd;
    return (unsigned)d;
}

/* IMF-fixdate only ("Sun, 06 Nov 1994 08:49:37 GMT"): RFC 9110 makes the
 * obsolete forms optional, and Google sends this one. */
static int parse_http_date(const char *s, time_t *out)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char mon[4], wd[4], zone[4];
    int day, year, hh, mm, ss, consumed = 0;
    const char *m;
    struct tm tm;

    if (sscanf(s, "%3s, %2d %3s %4d %2d:%2d:%2d %3s%n", wd, &day, mon, &year, &hh, &mm, &ss, zone,
               &consumed) != 8 ||
        strcmp(zone, "GMT") != 0)
        return -1;
    while (s[consumed] == ' ' || s[consumed] == '\t')
        consumed++;
    if (s[consumed] || strlen(mon) != 3 || !(m = strstr(months, mon)) || (m - months) % 3)
        return -1;
    if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = (int)((m - months) / 3);
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    *out = timegm(&tm);
    return 0;
}

long long gapi__retry_after_ms(const char *v, time_t now)
{
    long long secs = 0;
    const char *p;
    time_t when;

    if (!v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (isdigit((unsigned char)*v)) {
        for (p = v; isdigit((unsigned char)*p); p++)
            if (secs < DAY_MS / 1000)
                secs = secs * 10 + (*p - '0');
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p)
            return -1;
        return secs >= DAY_MS / 1000 ? DAY_MS : secs * 1000;
    }
    if (parse_http_date(v, &when) != 0)
        return -1;
    if (when <= now)
        return 0;
    return (long long)(when - now) * 1000 > DAY_MS ? DAY_MS : (long long)(when - now) * 1000;
}
