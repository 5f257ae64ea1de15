/*
 * Streaming Content-Encoding decoder (gzip, deflate) over zlib. Pure: no
 * libevent. Output goes to a sink callback in pieces; the decoder enforces a
 * limit on total decoded bytes so a small compressed body cannot expand
 * without bound ("zip bomb").
 */
#ifndef GAPI_TRANSPORT_INFLATE_H
#define GAPI_TRANSPORT_INFLATE_H

#include <stddef.h>
#include <stdint.h>

typedef enum gapi__coding {
    GAPI__CODING_IDENTITY = 0,
    GAPI__CODING_GZIP,    /* "gzip", "x-gzip" */
    GAPI__CODING_DEFLATE, /* "deflate": zlib-wrapped, raw deflate also accepted */
    GAPI__CODING_UNKNOWN  /* anything else: caller should fail the response */
} gapi__coding;

/* Map a Content-Encoding header value (case-insensitive, OWS trimmed;
 * "identity" and "" are identity). A list of several codings is UNKNOWN. */
gapi__coding gapi__coding_from_header(const char *value, size_t len);

typedef struct gapi__inflate gapi__inflate;

/* Returns 0 to continue, non-zero to stop (becomes GAPI__INFLATE_ESINK). */
typedef int (*gapi__inflate_sink)(void *ud, const char *data, size_t len);

enum {
    GAPI__INFLATE_OK = 0,
    GAPI__INFLATE_ENOMEM = -1,
    GAPI__INFLATE_ECORRUPT = -2,   /* not valid gzip/deflate data */
    GAPI__INFLATE_ELIMIT = -3,     /* decoded size over max_out */
    GAPI__INFLATE_ETRUNCATED = -4, /* finish() before the stream ended */
    GAPI__INFLATE_ESINK = -5,      /* the sink asked to stop */
    GAPI__INFLATE_ETRAILING = -6   /* bytes after the end of the stream */
};

/* max_out: limit on total decoded bytes (0 = no limit). NULL on ENOMEM. */
gapi__inflate *gapi__inflate_new(gapi__coding coding, uint64_t max_out, gapi__inflate_sink sink,
                                 void *ud);
/* Feed compressed bytes; returns GAPI__INFLATE_* */
int gapi__inflate_feed(gapi__inflate *z, const char *data, size_t len);
/* End of compressed input: ETRUNCATED if the stream did not end. */
int gapi__inflate_finish(gapi__inflate *z);
/* Decoded bytes so far. */
uint64_t gapi__inflate_total_out(const gapi__inflate *z);
void gapi__inflate_free(gapi__inflate *z);

#endif
