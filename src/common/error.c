/* Error texts and names; one table so the two never disagree. */
#include <stdarg.h>
#include <stdio.h>

#include "gapi.h"
#include "common/error.h"

void gapi__errbuf_printf(char *errbuf, size_t n, const char *fmt, ...)
{
    va_list ap;

    if (!errbuf || !n)
        return;
    va_start(ap, fmt);
    vsnprintf(errbuf, n, fmt, ap);
    va_end(ap);
}

struct err_entry {
    int code;
    const char *name;
    const char *text;
};

static const struct err_entry errors[] = {
    {GAPI_OK, "GAPI_OK", "success"},
    {GAPI_ENOMEM, "GAPI_ENOMEM", "out of memory"},
    {GAPI_EINVAL, "GAPI_EINVAL", "invalid argument"},
    {GAPI_EDNS, "GAPI_EDNS", "host name could not be resolved"},
    {GAPI_ECONNECT, "GAPI_ECONNECT", "could not connect to any address"},
    {GAPI_ETLS, "GAPI_ETLS", "TLS handshake or I/O failed"},
    {GAPI_ETLSVERIFY, "GAPI_ETLSVERIFY", "server certificate rejected"},
    {GAPI_ECONNRESET, "GAPI_ECONNRESET", "connection closed before any response"},
    {GAPI_ETRUNCATED, "GAPI_ETRUNCATED", "connection closed in the middle of the response"},
    {GAPI_EPROTO, "GAPI_EPROTO", "malformed HTTP response"},
    {GAPI_EHEADERSIZE, "GAPI_EHEADERSIZE", "response headers too large"},
    {GAPI_EBODYSIZE, "GAPI_EBODYSIZE", "response body too large"},
    {GAPI_EDECODE, "GAPI_EDECODE", "response content encoding is corrupt"},
    {GAPI_ECONNECTTIMEOUT, "GAPI_ECONNECTTIMEOUT", "connect timed out"},
    {GAPI_ESTALL, "GAPI_ESTALL", "connection stalled"},
    {GAPI_EDEADLINE, "GAPI_EDEADLINE", "request deadline exceeded"},
    {GAPI_ECANCELED, "GAPI_ECANCELED", "request cancelled"},
    {GAPI_ESHUTDOWN, "GAPI_ESHUTDOWN", "client shut down"},
    {GAPI_EJSON, "GAPI_EJSON", "response body is not valid JSON"},
    {GAPI_EHTTP, "GAPI_EHTTP", "HTTP error status"},
    {GAPI_ETLSCONFIG, "GAPI_ETLSCONFIG", "TLS trust store could not be loaded"},
    {GAPI_EBUSY, "GAPI_EBUSY", "operation not allowed in the current state"},
    {GAPI_EUPLOAD, "GAPI_EUPLOAD", "request body could not be read"},
    {GAPI_EDISCOVERY, "GAPI_EDISCOVERY", "discovery document is malformed"},
    {GAPI_EFULL, "GAPI_EFULL", "too many requests queued or in flight"},
    {GAPI_EDEADLK, "GAPI_EDEADLK", "blocking call on the client's loop thread would deadlock"},
    {GAPI_ETIMEDOUT, "GAPI_ETIMEDOUT", "timed out waiting for the request"},
    {GAPI_ECREDENTIALS, "GAPI_ECREDENTIALS", "credentials unusable or not found"},
    {GAPI_EAUTH, "GAPI_EAUTH", "could not obtain an access token"},
};

static const struct err_entry *find(int err)
{
    size_t i;
    for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return &errors[i];
    return NULL;
}

const char *gapi_strerror(int err)
{
    const struct err_entry *e = find(err);
    return e ? e->text : "unknown error";
}

const char *gapi_error_name(int err)
{
    const struct err_entry *e = find(err);
    return e ? e->name : "GAPI_E?";
}

unsigned gapi_version_num(void)
{
    return GAPI_VERSION_NUM;
}

const char *gapi_version_string(void)
{
    return GAPI_VERSION_STRING;
}
