/*
 * Tests of the Content-Encoding decoder: round trips of data compressed
 * here with zlib (gzip, zlib-wrapped deflate, raw deflate), fed whole, in
 * 1-byte pieces and in uneven pieces; the output limit against a zip bomb;
 * corrupt, truncated and trailing data; the sink stopping; allocation
 * failures; and the Content-Encoding header mapping.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gapi.h"
#include "common/buf.h"
#include "transport/inflate.h"
#include "tap.h"

#define S(lit) lit, sizeof(lit) - 1

enum { FMT_GZIP, FMT_ZLIB, FMT_RAW };

static const char *const fmt_name[] = {"gzip", "zlib deflate", "raw deflate"};

/* Compresses in[0..n) with zlib in the given format. */
static void compress_fmt(int fmt, const void *in, size_t n, int level, gapi__buf *out)
{
    z_stream zs;
    unsigned char buf[65536];
    int bits = fmt == FMT_GZIP ? 16 + MAX_WBITS : fmt == FMT_ZLIB ? MAX_WBITS : -MAX_WBITS;
    int rc;

    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, level, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    do {
        zs.next_out = buf;
        zs.avail_out = sizeof(buf);
        rc = deflate(&zs, Z_FINISH);
        if (gapi__buf_append(out, buf, sizeof(buf) - zs.avail_out) != 0)
            abort();
    } while (rc == Z_OK);
    if (rc != Z_STREAM_END)
        abort();
    deflateEnd(&zs);
}

static int buf_eq_data(const gapi__buf *a, const gapi__buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static gapi__coding coding_of(int fmt)
{
    return fmt == FMT_GZIP ? GAPI__CODING_GZIP : GAPI__CODING_DEFLATE;
}

/* What the sink saw. */
typedef struct sink_rec {
    gapi__buf out;
    size_t calls, biggest, empty_calls;
    size_t stop_after; /* fail once this many bytes arrived (0: never) */
} sink_rec;

static int sink(void *ud, const char *data, size_t len)
{
    sink_rec *r = ud;

    r->calls++;
    if (len == 0)
        r->empty_calls++;
    if (len > r->biggest)
        r->biggest = len;
    if (gapi__buf_append(&r->out, data, len) != 0)
        abort();
    return r->stop_after && r->out.len >= r->stop_after;
}

typedef struct result {
    int feed_rc;   /* first non-OK feed() result, or OK */
    int finish_rc; /* finish() (run only if every feed succeeded) */
    uint64_t total_out;
} result;

/* Decodes in[0..n) fed in pieces of `step` bytes (0: whole). */
static result decode(gapi__coding coding, uint64_t max_out, const char *in, size_t n, size_t step,
                     sink_rec *r)
{
    gapi__inflate *z = gapi__inflate_new(coding, max_out, sink, r);
    result res = {GAPI__INFLATE_OK, GAPI__INFLATE_OK, 0};
    size_t off = 0, k;

    if (!z) {
        res.feed_rc = GAPI__INFLATE_ENOMEM;
        return res;
    }
    while (off < n && res.feed_rc == GAPI__INFLATE_OK) {
        k = step && step < n - off ? step : n - off;
        res.feed_rc = gapi__inflate_feed(z, in + off, k);
        off += k;
    }
    if (res.feed_rc == GAPI__INFLATE_OK)
        res.finish_rc = gapi__inflate_finish(z);
    res.total_out = gapi__inflate_total_out(z);
    gapi__inflate_free(z);
    return res;
}

/* Text-like data: compressible but not trivially. */
static void make_data(gapi__buf *b, size_t n)
{
    static const char *const words[] = {"storage",    "bucket",       "object", "pubsub",
                                        "{\"kind\":", "\"items\": [", "\n",     "  ",
                                        "0123456789", "etag"};
    unsigned x = 12345;

    while (b->len < n) {
        x = x * 1103515245u + 12345u;
        if (gapi__buf_puts(b, words[(x >> 16) % 10]) != 0)
            abort();
        if ((x >> 8) % 7 == 0) {
            char c = (char)(x >> 3);
            gapi__buf_append(b, &c, 1);
        }
    }
    b->len = n;
}

static void test_round_trips(void)
{
    static const size_t steps[] = {0, 1, 7, 4093, 65536};
    static const char *const step_name[] = {"whole", "1-byte pieces", "7-byte pieces",
                                            "4093-byte pieces", "64 KiB pieces"};
    gapi__buf data = GAPI__BUF_INIT;
    int fmt;
    size_t s;

    make_data(&data, 300000);
    for (fmt = FMT_GZIP; fmt <= FMT_RAW; fmt++) {
        gapi__buf z = GAPI__BUF_INIT;
        compress_fmt(fmt, data.data, data.len, 6, &z);
        for (s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
            sink_rec r;
            result res;
            memset(&r, 0, sizeof(r));
            res = decode(coding_of(fmt), 0, z.data, z.len, steps[s], &r);
            ok(res.feed_rc == GAPI__INFLATE_OK && res.finish_rc == GAPI__INFLATE_OK &&
                   r.out.len == data.len && memcmp(r.out.data, data.data, data.len) == 0 &&
                   res.total_out == data.len,
               "%s round trip, %s (%zu -> %zu bytes)", fmt_name[fmt], step_name[s], z.len,
               data.len);
            ok(r.biggest <= 16384 && r.empty_calls == 0,
               "%s, %s: sink pieces of 1..16384 bytes (biggest %zu, %zu calls)", fmt_name[fmt],
               step_name[s], r.biggest, r.calls);
            gapi__buf_free(&r.out);
        }
        gapi__buf_free(&z);
    }

    /* Empty content compresses to a valid stream that decodes to nothing. */
    for (fmt = FMT_GZIP; fmt <= FMT_RAW; fmt++) {
        gapi__buf z = GAPI__BUF_INIT;
        sink_rec r;
        result res;
        memset(&r, 0, sizeof(r));
        compress_fmt(fmt, "", 0, 6, &z);
        res = decode(coding_of(fmt), 0, z.data, z.len, 1, &r);
        ok(res.feed_rc == GAPI__INFLATE_OK && res.finish_rc == GAPI__INFLATE_OK && r.out.len == 0 &&
               r.calls == 0,
           "%s of empty content: no output, no sink call", fmt_name[fmt]);
        gapi__buf_free(&z);
        gapi__buf_free(&r.out);
    }
    gapi__buf_free(&data);
}

static void test_multi_member(void)
{
    gapi__buf z = GAPI__BUF_INIT;
    sink_rec r;
    result res;
    size_t first;

    compress_fmt(FMT_GZIP, "hello, ", 7, 6, &z);
    first = z.len;
    compress_fmt(FMT_GZIP, "world", 5, 1, &z);
    memset(&r, 0, sizeof(r));
    res = decode(GAPI__CODING_GZIP, 0, z.data, z.len, 0, &r);
    ok(res.feed_rc == GAPI__INFLATE_OK && res.finish_rc == GAPI__INFLATE_OK && r.out.len == 12 &&
           memcmp(r.out.data, "hello, world", 12) == 0,
       "two gzip members decode as their concatenation");
    gapi__buf_free(&r.out);
    memset(&r, 0, sizeof(r));
    res = decode(GAPI__CODING_GZIP, 0, z.data, z.len, 1, &r);
    ok(res.feed_rc == GAPI__INFLATE_OK && res.finish_rc == GAPI__INFLATE_OK && r.out.len == 12,
       "two gzip members, 1-byte pieces");
    gapi__buf_free(&r.out);

    /* The second member cut after its first byte. */
    memset(&r, 0, sizeof(r));
    res = decode(GAPI__CODING_GZIP, 0, z.data, first + 1, 1, &r);
    is_int(res.finish_rc, GAPI__INFLATE_ETRUNCATED, "second gzip member truncated");
    gapi__buf_free(&r.out);
    gapi__buf_free(&z);
}

static void test_limit(void)
{
    const size_t big = 10 * 1024 * 1024, limit = 1024 * 1024;
    char *zeros = calloc(1, big);
    int fmt;

    if (!zeros)
        abort();
    for (fmt = FMT_GZIP; fmt <= FMT_RAW; fmt++) {
        gapi__buf z = GAPI__BUF_INIT;
        sink_rec r;
        result res;

        compress_fmt(fmt, zeros, big, 9, &z);
        memset(&r, 0, sizeof(r));
        res = decode(coding_of(fmt), limit, z.data, z.len, 0, &r);
        is_int(res.feed_rc, GAPI__INFLATE_ELIMIT,
               "%s: 10 MB of zeros (%zu bytes compressed), 1 MB limit: ELIMIT", fmt_name[fmt],
               z.len);
        ok(r.out.len <= limit && res.total_out <= limit,
           "%s: the sink never got more than the limit (%zu bytes)", fmt_name[fmt], r.out.len);
        gapi__buf_free(&r.out);

        memset(&r, 0, sizeof(r));
        res = decode(coding_of(fmt), limit, z.data, z.len, 1, &r);
        ok(res.feed_rc == GAPI__INFLATE_ELIMIT && r.out.len <= limit,
           "%s: ELIMIT with 1-byte pieces too", fmt_name[fmt]);
        gapi__buf_free(&r.out);

        memset(&r, 0, sizeof(r));
        res = decode(coding_of(fmt), big, z.data, z.len, 0, &r);
        ok(res.feed_rc == GAPI__INFLATE_OK && res.finish_rc == GAPI__INFLATE_OK && r.out.len == big,
           "%s: a limit of exactly the decoded size is not exceeded", fmt_name[fmt]);
        gapi__buf_free(&r.out);

        memset(&r, 0, sizeof(r));
        res = decode(coding_of(fmt), big - 1, z.data, z.len, 0, &r);
        is_int(res.feed_rc, GAPI__INFLATE_ELIMIT, "%s: one byte under the size: ELIMIT",
               fmt_name[fmt]);
        gapi__buf_free(&r.out);
        gapi__buf_free(&z);
    }
    free(zeros);
}

static void test_bad_input(void)
{
    gapi__buf data = GAPI__BUF_INIT;
    int fmt;

    make_data(&data, 50000);
    for (fmt = FMT_GZIP; fmt <= FMT_RAW; fmt++) {
        gapi__buf z = GAPI__BUF_INIT;
        sink_rec r;
        result res;
        size_t step;

        compress_fmt(fmt, data.data, data.len, 6, &z);
        for (step = 0; step <= 1; step++) {
            const char *how = step ? "1-byte pieces" : "whole";

            memset(&r, 0, sizeof(r));
            res = decode(coding_of(fmt), 0, z.data, z.len - 5, step, &r);
            ok(res.feed_rc == GAPI__INFLATE_OK && res.finish_rc == GAPI__INFLATE_ETRUNCATED,
               "%s, %s: last 5 bytes missing: ETRUNCATED at finish", fmt_name[fmt], how);
            gapi__buf_free(&r.out);

            memset(&r, 0, sizeof(r));
            res = decode(coding_of(fmt), 0, z.data, 1, step, &r);
            is_int(res.finish_rc, GAPI__INFLATE_ETRUNCATED, "%s, %s: only the first byte",
                   fmt_name[fmt], how);
            gapi__buf_free(&r.out);

            {
                gapi__buf t = GAPI__BUF_INIT;
                gapi__buf_append(&t, z.data, z.len);
                gapi__buf_append(&t, S("garbage"));
                memset(&r, 0, sizeof(r));
                res = decode(coding_of(fmt), 0, t.data, t.len, step, &r);
                is_int(res.feed_rc, GAPI__INFLATE_ETRAILING, "%s, %s: bytes after the end",
                       fmt_name[fmt], how);
                ok(r.out.len == data.len, "%s, %s: content before the garbage delivered",
                   fmt_name[fmt], how);
                gapi__buf_free(&r.out);
                gapi__buf_free(&t);
            }
        }
        /* Raw deflate has no check value, so damage may go unnoticed; the
         * wrapped formats catch it. */
        if (fmt != FMT_RAW) {
            gapi__buf c = GAPI__BUF_INIT;
            gapi__buf_append(&c, z.data, z.len);
            /* gzip ends in CRC-32 and size, zlib in Adler-32 */
            c.data[c.len - (fmt == FMT_GZIP ? 8 : 2)] ^= 0x55;
            memset(&r, 0, sizeof(r));
            res = decode(coding_of(fmt), 0, c.data, c.len, 0, &r);
            is_int(res.feed_rc, GAPI__INFLATE_ECORRUPT, "%s: damaged check value: ECORRUPT",
                   fmt_name[fmt]);
            gapi__buf_free(&r.out);
            gapi__buf_free(&c);
        }
        gapi__buf_free(&z);
    }
    {
        static const char notgz[] = "this is not gzip at all";
        sink_rec r;
        result res;
        memset(&r, 0, sizeof(r));
        res = decode(GAPI__CODING_GZIP, 0, S(notgz), 0, &r);
        is_int(res.feed_rc, GAPI__INFLATE_ECORRUPT, "plain text as gzip: ECORRUPT");
        gapi__buf_free(&r.out);
        memset(&r, 0, sizeof(r));
        res = decode(GAPI__CODING_GZIP, 0, S("\x1f\x8b\x09\x00garbage-garbage"), 1, &r);
        is_int(res.feed_rc, GAPI__INFLATE_ECORRUPT, "gzip magic with a bad method: ECORRUPT");
        gapi__buf_free(&r.out);
        memset(&r, 0, sizeof(r));
        /* 0x78 0x9c is a zlib header; then an invalid block type (11) */
        res = decode(GAPI__CODING_DEFLATE, 0, S("\x78\x9c\xff\xff\xff\xff"), 0, &r);
        is_int(res.feed_rc, GAPI__INFLATE_ECORRUPT, "zlib header then a bad block: ECORRUPT");
        gapi__buf_free(&r.out);
        memset(&r, 0, sizeof(r));
        /* FDICT set: a preset dictionary, which HTTP never supplies */
        res = decode(GAPI__CODING_DEFLATE, 0, S("\x78\xbb\x00\x00\x00\x01\x03\x00"), 0, &r);
        is_int(res.feed_rc, GAPI__INFLATE_ECORRUPT, "zlib stream needing a dictionary: ECORRUPT");
        gapi__buf_free(&r.out);
    }
    {
        sink_rec r;
        result res;
        memset(&r, 0, sizeof(r));
        res = decode(GAPI__CODING_GZIP, 0, "", 0, 0, &r);
        ok(res.feed_rc == GAPI__INFLATE_OK && res.finish_rc == GAPI__INFLATE_OK && r.calls == 0,
           "an empty body is accepted as empty content");
    }
    gapi__buf_free(&data);
}

static void test_sink_stop(void)
{
    gapi__buf data = GAPI__BUF_INIT, z = GAPI__BUF_INIT;
    sink_rec r;
    result res;
    gapi__inflate *inf;

    make_data(&data, 100000);
    compress_fmt(FMT_GZIP, data.data, data.len, 6, &z);
    memset(&r, 0, sizeof(r));
    r.stop_after = 20000;
    res = decode(GAPI__CODING_GZIP, 0, z.data, z.len, 0, &r);
    is_int(res.feed_rc, GAPI__INFLATE_ESINK, "sink returning non-zero: ESINK");
    ok(r.out.len >= 20000 && r.out.len < 20000 + 16384, "no more output after the sink stopped");
    gapi__buf_free(&r.out);

    memset(&r, 0, sizeof(r));
    r.stop_after = 1;
    inf = gapi__inflate_new(GAPI__CODING_GZIP, 0, sink, &r);
    ok(inf != NULL, "decoder made");
    is_int(gapi__inflate_feed(inf, z.data, z.len), GAPI__INFLATE_ESINK, "ESINK");
    is_int(gapi__inflate_feed(inf, z.data, 1), GAPI__INFLATE_ESINK, "errors are sticky (feed)");
    is_int(gapi__inflate_finish(inf), GAPI__INFLATE_ESINK, "errors are sticky (finish)");
    gapi__inflate_free(inf);
    gapi__inflate_free(NULL);
    ok(gapi__inflate_new(GAPI__CODING_IDENTITY, 0, sink, &r) == NULL, "no decoder for identity");
    gapi__buf_free(&r.out);
    gapi__buf_free(&z);
    gapi__buf_free(&data);
}

/* Allocator that fails the Nth allocation from now. */
static long g_fail_at = -1;

static void *fail_malloc(size_t n)
{
    if (g_fail_at == 0) {
        g_fail_at = -1;
        return NULL;
    }
    if (g_fail_at > 0)
        g_fail_at--;
    return malloc(n);
}

/* Every allocation (decoder, zlib state, zlib window) can fail: the result
 * is ENOMEM, never a crash or a leak (ASan/valgrind watch the latter). */
static void test_alloc_failures(void)
{
    gapi__buf data = GAPI__BUF_INIT, z = GAPI__BUF_INIT;
    long n;
    int saw_enomem = 0, clean = 1;

    make_data(&data, 100000);
    compress_fmt(FMT_GZIP, data.data, data.len, 6, &z);
    gapi_set_allocator(fail_malloc, realloc, free);
    for (n = 0; n < 8; n++) {
        sink_rec r;
        result res;
        memset(&r, 0, sizeof(r));
        g_fail_at = n;
        res = decode(GAPI__CODING_GZIP, 0, z.data, z.len, 4096, &r);
        g_fail_at = -1;
        if (res.feed_rc == GAPI__INFLATE_ENOMEM)
            saw_enomem++;
        else if (res.feed_rc != GAPI__INFLATE_OK || res.finish_rc != GAPI__INFLATE_OK ||
                 !buf_eq_data(&r.out, &data))
            clean = 0;
        gapi__buf_free(&r.out);
    }
    gapi_set_allocator(malloc, realloc, free);
    is_int(saw_enomem, 3, "failing each of the 3 allocations reports ENOMEM");
    ok(clean, "runs either fail with ENOMEM or decode correctly");
    gapi__buf_free(&z);
    gapi__buf_free(&data);
}

static void test_header_mapping(void)
{
    static const struct {
        const char *v;
        gapi__coding want;
    } cases[] = {{"gzip", GAPI__CODING_GZIP},
                 {"GZip", GAPI__CODING_GZIP},
                 {" \tgzip\t ", GAPI__CODING_GZIP},
                 {"x-gzip", GAPI__CODING_GZIP},
                 {"X-GZIP", GAPI__CODING_GZIP},
                 {"deflate", GAPI__CODING_DEFLATE},
                 {"Deflate ", GAPI__CODING_DEFLATE},
                 {"identity", GAPI__CODING_IDENTITY},
                 {"IDENTITY", GAPI__CODING_IDENTITY},
                 {"", GAPI__CODING_IDENTITY},
                 {"  \t", GAPI__CODING_IDENTITY},
                 {"br", GAPI__CODING_UNKNOWN},
                 {"compress", GAPI__CODING_UNKNOWN},
                 {"zstd", GAPI__CODING_UNKNOWN},
                 {"gzip, deflate", GAPI__CODING_UNKNOWN},
                 {"gzip,gzip", GAPI__CODING_UNKNOWN},
                 {"gzi", GAPI__CODING_UNKNOWN},
                 {"gzipp", GAPI__CODING_UNKNOWN},
                 {"deflate, gzip", GAPI__CODING_UNKNOWN},
                 {"gzip;q=1", GAPI__CODING_UNKNOWN},
                 {"g zip", GAPI__CODING_UNKNOWN},
                 {NULL, GAPI__CODING_IDENTITY}};
    int i;

    for (i = 0; cases[i].v; i++)
        is_int(gapi__coding_from_header(cases[i].v, strlen(cases[i].v)), cases[i].want,
               "Content-Encoding \"%s\"", cases[i].v);
    is_int(gapi__coding_from_header("gzipXXX", 4), GAPI__CODING_GZIP, "length is honoured");
}

int main(void)
{
    test_round_trips();
    test_multi_member();
    test_limit();
    test_bad_input();
    test_sink_stop();
    test_alloc_failures();
    test_header_mapping();
    return tap_done();
}
