/*
 * Growable byte buffer. Always NUL-terminated when data != NULL so text can
 * be handed out as a C string. A failed append leaves the buffer unchanged.
 */
#ifndef GAPI_COMMON_BUF_H
#define GAPI_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct gapi__buf {
    char *data;
    size_t len;
    size_t cap;
} gapi__buf;

#define GAPI__BUF_INIT                                                                             \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

int gapi__buf_reserve(gapi__buf *b, size_t extra);
int gapi__buf_append(gapi__buf *b, const void *p, size_t n);
int gapi__buf_puts(gapi__buf *b, const char *s);
int gapi__buf_printf(gapi__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gapi__buf_reset(gapi__buf *b);
void gapi__buf_free(gapi__buf *b);

#endif
