/* Growable byte buffer; see buf.h. Returns GAPI_ENOMEM on failure. */
#include <stdio.h>
#include <string.h>

#include "gapi.h"
#include "common/alloc.h"
#include "common/buf.h"

int gapi__buf_reserve(gapi__buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (extra > (size_t)-1 - b->len - 1)
        return GAPI_ENOMEM;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return GAPI_OK;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > (size_t)-1 / 2 ? need : cap * 2;
    p = gapi__realloc(b->data, cap);
    if (!p)
        return GAPI_ENOMEM;
    b->data = p;
    b->cap = cap;
    return GAPI_OK;
}

int gapi__buf_append(gapi__buf *b, const void *p, size_t n)
{
    if (gapi__buf_reserve(b, n) != GAPI_OK)
        return GAPI_ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return GAPI_OK;
}

int gapi__buf_puts(gapi__buf *b, const char *s)
{
    return gapi__buf_append(b, s, strlen(s));
}

int gapi__buf_printf(gapi__buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || gapi__buf_reserve(b, (size_t)n) != GAPI_OK)
        return GAPI_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return GAPI_OK;
}

void gapi__buf_reset(gapi__buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void gapi__buf_free(gapi__buf *b)
{
    gapi__free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
