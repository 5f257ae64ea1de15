/*
 * Fuzzes the parser of Google's error bodies (src/call/google_error.c):
 * the first two bytes pick an HTTP status, the rest is the body. Hostile
 * bodies (deep nesting, wrong types, NULs, invalid UTF-8, huge strings)
 * must never crash it. Invariants:
 *  - parsing returns 0 (GAPI_ENOMEM only when an allocation is failed on
 *    purpose, and then nothing leaks: LeakSanitizer);
 *  - http_status is the status given; the code is an error.code or it;
 *  - every item's strings are NULL or C strings; items past the count are
 *    NULL;
 *  - the one-line summary, at several buffer sizes, is NUL-terminated,
 *    within the buffer, starts with "HTTP <status>" when it fits, and has
 *    no control character (it goes into logs);
 *  - a message taken from a text body is at most 200 bytes without
 *    control characters.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "gapi.h"
#include "call/call.h"
#include "fuzz.h"

static void check_summary(const gapi_google_error *e, int status, size_t size)
{
    char buf[300], head[32];
    size_t i, n, hn;

    memset(buf, 'Z', sizeof(buf));
    gapi__google_error_format(e, buf, size);
    n = strlen(buf);
    CHECK(n < size);
    CHECK(size == sizeof(buf) || buf[size] == 'Z');
    for (i = 0; i < n; i++)
        CHECK((unsigned char)buf[i] >= 0x20 && buf[i] != 0x7f);
    hn = (size_t)snprintf(head, sizeof(head), "HTTP %d", status);
    if (size > hn)
        CHECK(strncmp(buf, head, hn) == 0);
}

static void check(const gapi_google_error *e, int status, const uint8_t *body, size_t len)
{
    size_t i, n = gapi_google_error_count(e);
    const char *m = gapi_google_error_message(e);
    size_t k = 0;

    CHECK(gapi_google_error_http_status(e) == status);
    for (i = 0; i < n; i++) {
        const char *r = gapi_google_error_reason(e, i);
        const char *d = gapi_google_error_domain(e, i);
        const char *im = gapi_google_error_item_message(e, i);
        CHECK(!r || strlen(r) < len);
        CHECK(!d || strlen(d) < len);
        CHECK(!im || strlen(im) < len);
    }
    CHECK(gapi_google_error_reason(e, n) == NULL);
    CHECK(gapi_google_error_item_message(e, n + 7) == NULL);
    while (k < len && (body[k] == ' ' || body[k] == '\t' || body[k] == '\r' || body[k] == '\n'))
        k++;
    if (k < len && body[k] != '{' && body[k] != '[') {
        /* A text body: its message is bounded and clean. */
        CHECK(gapi_google_error_count(e) == 0 && gapi_google_error_details(e) == NULL);
        if (m) {
            CHECK(strlen(m) <= 200 && strlen(m) > 0);
            for (i = 0; m[i]; i++)
                CHECK((unsigned char)m[i] >= 0x20 && m[i] != 0x7f);
        }
    }
    if (gapi_google_error_details(e))
        (void)json_object_get_type(gapi_google_error_details(e));
    check_summary(e, status, 300);
    check_summary(e, status, 64);
    check_summary(e, status, 12);
    check_summary(e, status, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gapi_google_error *e = NULL;
    const uint8_t *body;
    size_t len;
    int status, rc;

    if (size < 2)
        return 0;
    status = 100 + ((data[0] << 8 | data[1]) % 500);
    body = data + 2;
    len = size - 2;

    rc = gapi_google_error_parse(&e, status, (const char *)body, len);
    CHECK(rc == GAPI_OK && e);
    check(e, status, body, len);
    gapi_google_error_free(e);

    /* Again with one allocation failed: GAPI_ENOMEM and nothing kept, or
     * the same success. */
    e = (gapi_google_error *)&e;
    fuzz_fail_after((long)(fuzz_hash(data, size) % 4));
    rc = gapi_google_error_parse(&e, status, (const char *)body, len);
    fuzz_alloc_restore();
    CHECK(rc == GAPI_OK || rc == GAPI_ENOMEM);
    if (rc == GAPI_OK) {
        check(e, status, body, len);
        gapi_google_error_free(e);
    } else {
        CHECK(e == (gapi_google_error *)&e);
    }
    return 0;
}
