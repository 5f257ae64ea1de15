/*
 * Fuzzes the credentials document parser and the token response parser
 * (src/auth/keyfile.h). The whole input is a credentials document; the
 * first two bytes also pick an HTTP status for the rest as a token
 * response body. Invariants:
 *  - gapi__keyfile_parse returns 0 or GAPI_ECREDENTIALS; on failure the
 *    output is untouched and the message is a non-empty line without
 *    control characters; on success the fields its type requires are set
 *    (a service account has an RSA key) and token_uri is https:// or
 *    http:// (to the loopback host);
 *  - gapi__token_parse returns 0 only for a 2xx status, with a token of
 *    visible ASCII and expires_in in [-1, 2^31 - 1]; otherwise GAPI_EAUTH
 *    with no token, a message starting with `who` and no control
 *    character, retryable set for 5xx, 408 and 429, and never the access
 *    token of the body in the message;
 *  - messages fit any errbuf size, NUL-terminated;
 *  - with an allocation failed after a data-derived number of
 *    allocations: GAPI_ENOMEM with outputs untouched and nothing leaked
 *    (LeakSanitizer), or the same result as without the failure.
 */
#include <string.h>

#include <json-c/json.h>

#include "gapi.h"
#include "json/parse.h"
#include "auth/keyfile.h"
#include "fuzz.h"

static void check_line(const char *m, size_t size)
{
    size_t i, n = strnlen(m, size);

    CHECK(n < size);
    for (i = 0; i < n; i++)
        CHECK((unsigned char)m[i] >= 0x20 && m[i] != 0x7f);
}

static int keyfile(const char *s, size_t size, char *err, size_t err_size)
{
    gapi__keyfile k, before;
    int rc;

    memset(&k, 0x5A, sizeof(k));
    before = k;
    memset(err, 'Z', err_size);
    rc = gapi__keyfile_parse(&k, s, size, err, err_size);
    CHECK(rc == 0 || rc == GAPI_ECREDENTIALS || rc == GAPI_ENOMEM);
    if (rc != 0) {
        CHECK(memcmp(&k, &before, sizeof(k)) == 0);
        check_line(err, err_size);
        CHECK(err_size < 2 || err[0] != '\0');
        return rc;
    }
    CHECK(k.token_uri && k.universe_domain);
    CHECK(strncmp(k.token_uri, "https://", 8) == 0 || strncmp(k.token_uri, "http://", 7) == 0);
    if (k.type == GAPI__KEY_SERVICE_ACCOUNT) {
        CHECK(k.key && EVP_PKEY_is_a(k.key, "RSA") && k.client_email && k.client_email[0]);
        CHECK(!k.client_id && !k.client_secret && !k.refresh_token);
    } else {
        CHECK(k.type == GAPI__KEY_AUTHORIZED_USER);
        CHECK(!k.key && k.client_id && k.client_id[0] && k.client_secret && k.client_secret[0] &&
              k.refresh_token && k.refresh_token[0]);
    }
    gapi__keyfile_clear(&k);
    return rc;
}

/* The access_token string of a body, when it is one without spaces and long
 * enough that no fixed message text could contain it by chance. */
static char *body_token(const char *body, size_t len)
{
    struct json_object *o = NULL, *v;
    char *t = NULL;
    int i, n;

    if (gapi__json_parse(body, len, 0, &o, NULL) != 0)
        return NULL;
    if (json_object_is_type(o, json_type_object) &&
        json_object_object_get_ex(o, "access_token", &v) &&
        json_object_is_type(v, json_type_string) && (n = json_object_get_string_len(v)) >= 24) {
        const char *s = json_object_get_string(v);
        for (i = 0; i < n && (unsigned char)s[i] > ' ' && (unsigned char)s[i] < 0x7f; i++)
            ;
        if (i == n)
            t = strdup(s);
    }
    json_object_put(o);
    return t;
}

static int token(int status, const char *body, size_t len, const char *secret, char *err,
                 size_t err_size)
{
    gapi__token_result t;
    size_t i;
    int rc;

    memset(err, 'Z', err_size);
    rc = gapi__token_parse(&t, "metadata server", status, body, len, err, err_size);
    CHECK(rc == 0 || rc == GAPI_EAUTH || rc == GAPI_ENOMEM);
    if (rc == 0) {
        CHECK(status >= 200 && status <= 299 && t.access_token && t.access_token[0]);
        for (i = 0; t.access_token[i]; i++)
            CHECK((unsigned char)t.access_token[i] > ' ' &&
                  (unsigned char)t.access_token[i] < 0x7f);
        CHECK(t.expires_in >= -1 && t.expires_in <= 2147483647LL && t.retryable == 0);
        gapi__token_result_clear(&t);
        CHECK(t.access_token == NULL);
        return rc;
    }
    CHECK(t.access_token == NULL && t.expires_in == -1);
    check_line(err, err_size);
    if (rc == GAPI_EAUTH) {
        if ((status >= 500 && status <= 599) || status == 408 || status == 429)
            CHECK(t.retryable == 1);
        if (err_size > 17)
            CHECK(strncmp(err, "metadata server: ", 17) == 0);
        if (secret && status >= 200 && status <= 299)
            CHECK(strstr(err, secret) == NULL);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = size ? (const char *)data : "";
    char err[512], small[9];
    const char *body = size > 2 ? s + 2 : "";
    size_t blen = size > 2 ? size - 2 : 0;
    int status = size >= 2 ? 100 + ((data[0] << 8 | data[1]) % 500) : 200;
    char *secret = body_token(body, blen);
    int rc, rc2;

    rc = keyfile(s, size, err, sizeof(err));
    CHECK(rc != GAPI_ENOMEM);
    CHECK(keyfile(s, size, small, sizeof(small)) == rc);
    fuzz_fail_after((long)(fuzz_hash(data, size) % 16));
    rc2 = keyfile(s, size, err, sizeof(err));
    fuzz_alloc_restore();
    if (rc2 == GAPI_ENOMEM)
        CHECK(strcmp(err, "out of memory") == 0);
    else
        CHECK(rc2 == rc);

    rc = token(status, body, blen, secret, err, sizeof(err));
    CHECK(rc != GAPI_ENOMEM);
    CHECK(token(status, body, blen, secret, small, sizeof(small)) == rc);
    fuzz_fail_after((long)(fuzz_hash(data, size) % 4));
    rc2 = token(status, body, blen, secret, err, sizeof(err));
    fuzz_alloc_restore();
    if (rc2 == GAPI_ENOMEM)
        CHECK(strcmp(err, "out of memory") == 0);
    else
        CHECK(rc2 == rc);
    free(secret);
    return 0;
}
