/*
 * Content-Encoding decoder over zlib (see inflate.h).
 *
 * Invariants: zlib allocates through gapi__malloc/gapi__free (so the
 * allocator hook and fault injection cover it); decoded bytes reach the sink
 * in pieces of at most OUT_CHUNK bytes from a stack buffer; the sink never
 * receives a byte past max_out (a piece that would cross the limit is not
 * delivered: the decoder fails with ELIMIT instead); the first error is
 * sticky.
 *
 * "deflate" is zlib-wrapped per RFC 9110 section 8.4.1.2, but some servers
 * send raw deflate; the first two bytes decide (a zlib header is CMF/FLG with
 * method 8, a window of at most 32 KiB and a check value divisible by 31).
 * "gzip" may hold several members back to back (RFC 1952 section 2.2); a
 * member is followed by another one (magic 1f 8b) or by nothing.
 */
#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "common/alloc.h"
#include "transport/inflate.h"

#define OUT_CHUNK 16384

enum {
    Z_WAIT_HEADER = 0, /* need the first bytes of a stream or member */
    Z_RUNNING,         /* inside a stream */
    Z_ENDED,           /* the stream (or a gzip member) ended */
    Z_FAILED           /* z->err holds the error */
};

struct gapi__inflate {
    z_stream zs;
    int zs_ready; /* inflateInit2 succeeded */
    gapi__coding coding;
    int state;
    int err;
    uint64_t max_out;
    uint64_t total_out;
    uint64_t total_in;
    gapi__inflate_sink sink;
    void *ud;
    unsigned char head[2]; /* first bytes of a stream/member, when split */
    size_t head_len;
};

/* -------------------------------------------------------- header mapping */

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int ieq(const char *s, size_t n, const char *lit)
{
    size_t i;

    if (n != strlen(lit))
        return 0;
    for (i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lit[i])
            return 0;
    return 1;
}

gapi__coding gapi__coding_from_header(const char *value, size_t len)
{
    size_t a = 0, b = len;

    if (!value)
        return GAPI__CODING_IDENTITY;
    while (a < b && (value[a] == ' ' || value[a] == '\t'))
        a++;
    while (b > a && (value[b - 1] == ' ' || value[b - 1] == '\t'))
        b--;
    if (a == b || ieq(value + a, b - a, "identity"))
        return GAPI__CODING_IDENTITY;
    if (ieq(value + a, b - a, "gzip") || ieq(value + a, b - a, "x-gzip"))
        return GAPI__CODING_GZIP;
    if (ieq(value + a, b - a, "deflate"))
        return GAPI__CODING_DEFLATE;
    return GAPI__CODING_UNKNOWN;
}

/* ------------------------------------------------------------ zlib glue */

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    if (size && items > (size_t)-1 / size)
        return Z_NULL;
    return gapi__malloc((size_t)items * size);
}

static void z_free(voidpf opaque, voidpf ptr)
{
    (void)opaque;
    gapi__free(ptr);
}

static int set_error(gapi__inflate *z, int err)
{
    z->state = Z_FAILED;
    z->err = err;
    return err;
}

static int looks_like_zlib(const unsigned char *h)
{
    return (h[0] & 0x0f) == 8 && (h[0] >> 4) <= 7 && ((h[0] << 8) | h[1]) % 31 == 0;
}

/* Start (or restart, for the next gzip member) zlib on a stream whose first
 * two bytes are h. */
static int start_stream(gapi__inflate *z, const unsigned char *h)
{
    int bits;

    if (z->coding == GAPI__CODING_GZIP) {
        if (h[0] != 0x1f || h[1] != 0x8b)
            /* after a member: not another member, so trailing junk */
            return set_error(z, z->zs_ready ? GAPI__INFLATE_ETRAILING : GAPI__INFLATE_ECORRUPT);
        bits = 16 + MAX_WBITS;
    } else {
        bits = looks_like_zlib(h) ? MAX_WBITS : -MAX_WBITS;
    }
    if (z->zs_ready) {
        if (inflateReset2(&z->zs, bits) != Z_OK)
            return set_error(z, GAPI__INFLATE_ECORRUPT);
    } else {
        z->zs.zalloc = z_alloc;
        z->zs.zfree = z_free;
        z->zs.opaque = Z_NULL;
        if (inflateInit2(&z->zs, bits) != Z_OK)
            return set_error(z, GAPI__INFLATE_ENOMEM);
        z->zs_ready = 1;
    }
    z->state = Z_RUNNING;
    return GAPI__INFLATE_OK;
}

/* Hands out what zlib produced, refusing to cross max_out. */
static int deliver(gapi__inflate *z, const unsigned char *out, size_t n)
{
    if (n == 0)
        return GAPI__INFLATE_OK;
    if (z->max_out && n > z->max_out - z->total_out)
        return set_error(z, GAPI__INFLATE_ELIMIT);
    z->total_out += n;
    if (z->sink(z->ud, (const char *)out, n))
        return set_error(z, GAPI__INFLATE_ESINK);
    return GAPI__INFLATE_OK;
}

/* Inflate in[0..n) (n <= UINT_MAX) while in Z_RUNNING; returns how many
 * input bytes were used (the rest follows the end of the stream), or sets
 * an error. */
static size_t run(gapi__inflate *z, const unsigned char *in, size_t n)
{
    unsigned char out[OUT_CHUNK];
    int rc;

    z->zs.next_in = (Bytef *)(uintptr_t)in; /* zlib's API lacks const */
    z->zs.avail_in = (uInt)n;
    for (;;) {
        z->zs.next_out = out;
        z->zs.avail_out = sizeof(out);
        rc = inflate(&z->zs, Z_NO_FLUSH);
        if (rc == Z_MEM_ERROR) {
            set_error(z, GAPI__INFLATE_ENOMEM);
            break;
        }
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            set_error(z, GAPI__INFLATE_ECORRUPT);
            break;
        }
        if (deliver(z, out, sizeof(out) - z->zs.avail_out) != GAPI__INFLATE_OK)
            break;
        if (rc == Z_STREAM_END) {
            z->state = Z_ENDED;
            break;
        }
        /* Done when zlib has neither input left nor output pending. */
        if (rc == Z_BUF_ERROR || (z->zs.avail_in == 0 && z->zs.avail_out != 0))
            break;
    }
    return n - z->zs.avail_in;
}

/* Collects the first two bytes of a stream or member (they may arrive one
 * at a time), then starts zlib on them. Returns bytes of in used. */
static size_t take_header(gapi__inflate *z, const unsigned char *in, size_t n)
{
    size_t used = 0;
    unsigned char h[2];

    while (z->head_len < 2 && used < n)
        z->head[z->head_len++] = in[used++];
    if (z->head_len < 2)
        return used;
    memcpy(h, z->head, 2);
    z->head_len = 0;
    if (start_stream(z, h) != GAPI__INFLATE_OK)
        return used;
    /* The two header bytes belong to the stream: feed them first. */
    run(z, h, 2);
    return used;
}

gapi__inflate *gapi__inflate_new(gapi__coding coding, uint64_t max_out, gapi__inflate_sink sink,
                                 void *ud)
{
    gapi__inflate *z;

    if ((coding != GAPI__CODING_GZIP && coding != GAPI__CODING_DEFLATE) || !sink)
        return NULL;
    z = gapi__calloc(1, sizeof(*z));
    if (!z)
        return NULL;
    z->coding = coding;
    z->max_out = max_out;
    z->sink = sink;
    z->ud = ud;
    z->state = Z_WAIT_HEADER;
    return z;
}

int gapi__inflate_feed(gapi__inflate *z, const char *data, size_t len)
{
    const unsigned char *in = (const unsigned char *)data;
    size_t n;

    z->total_in += len;
    while (len > 0 && z->state != Z_FAILED) {
        switch (z->state) {
        case Z_WAIT_HEADER:
            n = take_header(z, in, len);
            break;
        case Z_RUNNING:
            n = run(z, in, len > UINT_MAX ? UINT_MAX : len);
            break;
        default: /* Z_ENDED: only another gzip member may follow */
            if (z->coding != GAPI__CODING_GZIP)
                return set_error(z, GAPI__INFLATE_ETRAILING);
            z->state = Z_WAIT_HEADER;
            n = 0;
            break;
        }
        in += n;
        len -= n;
    }
    return z->state == Z_FAILED ? z->err : GAPI__INFLATE_OK;
}

int gapi__inflate_finish(gapi__inflate *z)
{
    if (z->state == Z_FAILED)
        return z->err;
    /* An empty body is taken as empty content: servers do label empty
     * error bodies with Content-Encoding. */
    if (z->total_in == 0 || z->state == Z_ENDED)
        return GAPI__INFLATE_OK;
    /* Waiting for a header with nothing buffered: a gzip member ended and
     * no other began. */
    if (z->state == Z_WAIT_HEADER && z->head_len == 0 && z->zs_ready)
        return GAPI__INFLATE_OK;
    return set_error(z, GAPI__INFLATE_ETRUNCATED);
}

uint64_t gapi__inflate_total_out(const gapi__inflate *z)
{
    return z->total_out;
}

void gapi__inflate_free(gapi__inflate *z)
{
    if (!z)
        return;
    if (z->zs_ready)
        inflateEnd(&z->zs);
    gapi__free(z);
}
