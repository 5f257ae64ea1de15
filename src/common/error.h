/*
 * Error messages for callers' buffers: the (errbuf, errbuf_size) pair that
 * gapi_client_new, the discovery loader and the call builder fill when no
 * request exists to carry the detail.
 */
#ifndef GAPI_COMMON_ERROR_H
#define GAPI_COMMON_ERROR_H

#include <stddef.h>

/* Format into errbuf (at most n bytes, always NUL-terminated, truncated to
 * fit). NULL errbuf or n == 0: nothing is written. */
void gapi__errbuf_printf(char *errbuf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
