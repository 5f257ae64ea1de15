/*
 * Tests of the pure auth pieces (src/auth/jwt.c, keyfile.c, adc.c).
 *
 * RS256 is checked against RFC 7515 appendix A.2 (../shared/jose): the same
 * signing input signed with the key in PKCS#1 and in PKCS#8 form must give
 * the RFC's signature byte for byte. Signed JWTs are split, decoded, parsed
 * and verified with the public key through OpenSSL. base64url is checked
 * against RFC 4648's vectors and, on random data, against OpenSSL's base64.
 * Credentials documents are built at test time around the shared key (and
 * EC, short RSA and encrypted keys generated here); each malformed one must
 * fail with GAPI_ECREDENTIALS, leave the output untouched, and give a
 * message naming the problem without any key or secret text. Token
 * responses cover success, every refusal, the OAuth and Google error forms,
 * HTML and text errors, and the retryable flag. The ADC search runs with a
 * temporary HOME and every environment branch. Last, an allocator that
 * fails the Nth allocation sweeps every entry point (each N: GAPI_ENOMEM
 * with nothing kept, or success), and the same allocator looks into every
 * block the library frees for secrets left behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "gapi.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "json/parse.h"
#include "auth/jwt.h"
#include "auth/keyfile.h"
#include "auth/adc.h"
#include "tap.h"

#define S(lit) lit, sizeof(lit) - 1

/* Secrets of the documents built here; no message may contain them. */
#define CLIENT_SECRET "GOCSPX-clientSECRETvalue0123"
#define REFRESH_TOKEN "1//0refreshTOKENvalue-abcdefghij"
#define ACCESS_TOKEN  "ya29.a0ACCESStokenVALUE_0123456789"

/* ------------------------------------------------------------ tracking allocator */

/* Installed for the whole run: a 16-byte header records each block's size,
 * so a block can be searched for secrets when it is freed (or left behind
 * by realloc), live blocks can be counted, and the Nth allocation can be
 * made to fail. */
#define HDR 16
static long t_fail_after = -1; /* allocations left before one fails; -1: never */
static long t_live;            /* blocks the library holds now */
static const char *t_secrets[8];
static int t_nsecrets;
static int t_secret_hits;
static char t_hit_what[64];

static const char *find_mem(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle), i;

    for (i = 0; i + m <= n; i++)
        if (s[i] == needle[0] && memcmp(s + i, needle, m) == 0)
            return s + i;
    return NULL;
}

static void t_scan(const char *p, size_t n)
{
    int i;

    for (i = 0; i < t_nsecrets; i++) {
        if (find_mem(p, n, t_secrets[i])) {
            t_secret_hits++;
            snprintf(t_hit_what, sizeof(t_hit_what), "%.40s", t_secrets[i]);
        }
    }
}

static int t_should_fail(void)
{
    if (t_fail_after == 0)
        return 1;
    if (t_fail_after > 0)
        t_fail_after--;
    return 0;
}

static void *t_malloc(size_t n)
{
    char *p;

    if (t_should_fail() || !(p = malloc(n + HDR)))
        return NULL;
    *(size_t *)p = n;
    t_live++;
    /* While secrets are watched, whole blocks are scanned when freed: give
     * their unused tails a value so valgrind sees no uninitialised read
     * (other tests keep its uninitialised-use checks). */
    if (t_nsecrets)
        memset(p + HDR, 0xBE, n);
    return p + HDR;
}

static void t_free(void *q)
{
    char *p;

    if (!q)
        return;
    p = (char *)q - HDR;
    t_scan(q, *(size_t *)p);
    t_live--;
    free(p);
}

/* Moves to a new block, so the old one is scanned as realloc leaves it. */
static void *t_realloc(void *q, size_t n)
{
    char *r;
    size_t old;

    if (!q)
        return t_malloc(n);
    if (t_should_fail() || !(r = malloc(n + HDR)))
        return NULL;
    old = *(size_t *)((char *)q - HDR);
    *(size_t *)r = n;
    if (t_nsecrets && n > old)
        memset(r + HDR + old, 0xBE, n - old);
    memcpy(r + HDR, q, old < n ? old : n);
    t_live++;
    t_free(q);
    return r + HDR;
}

static void secrets_watch(const char *a, const char *b, const char *c)
{
    t_nsecrets = 0;
    if (a)
        t_secrets[t_nsecrets++] = a;
    if (b)
        t_secrets[t_nsecrets++] = b;
    if (c)
        t_secrets[t_nsecrets++] = c;
    t_secret_hits = 0;
    t_hit_what[0] = '\0';
}

/* ------------------------------------------------------------ helpers */

static char g_tmp[256];

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        !(buf = malloc((size_t)n + 1))) {
        fclose(f);
        return NULL;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = (size_t)n;
    return buf;
}

/* ../shared/<rel> as text, or NULL after a skip (or a CI failure). */
static char *shared_text(const char *rel)
{
    char *p = tap_shared_path(rel), *t;

    if (!p)
        return NULL;
    t = slurp(p, NULL);
    if (!t)
        ok(0, "read %s", p);
    free(p);
    return t;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int rc;

    if (!f)
        return -1;
    rc = fwrite(data, 1, len, f) == len ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

static char *pem_of(EVP_PKEY *key, int pkcs8, const EVP_CIPHER *enc, const char *pass)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *s;
    long n;
    int rc;

    if (pkcs8)
        rc = PEM_write_bio_PKCS8PrivateKey(b, key, enc, pass, pass ? (int)strlen(pass) : 0, NULL,
                                           NULL);
    else
        rc = PEM_write_bio_PrivateKey_traditional(b, key, enc, (const unsigned char *)pass,
                                                  pass ? (int)strlen(pass) : 0, NULL, NULL);
    if (rc != 1)
        abort();
    n = BIO_get_mem_data(b, &data);
    s = strndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

static char *public_pem_of(EVP_PKEY *key)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *s;
    long n;

    if (PEM_write_bio_PUBKEY(b, key) != 1)
        abort();
    n = BIO_get_mem_data(b, &data);
    s = strndup(data, (size_t)n);
    BIO_free(b);
    return s;
}

static EVP_PKEY *load_public(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);

    BIO_free(b);
    return k;
}

/* RS256 verification of sig (base64url) over input, with OpenSSL only. */
static int rs256_verify(EVP_PKEY *pub, const char *input, size_t len, const char *sig_b64u)
{
    gapi__buf sig = GAPI__BUF_INIT;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok_ = 0;

    if (gapi__b64url_decode(&sig, sig_b64u, strlen(sig_b64u)) == 0 &&
        EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
        EVP_DigestVerify(ctx, (const unsigned char *)sig.data, sig.len,
                         (const unsigned char *)input, len) == 1)
        ok_ = 1;
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    gapi__buf_free(&sig);
    return ok_;
}

static char *dump(struct json_object *o)
{
    char *s = strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    if (!s)
        abort();
    return s;
}

static void set_str(struct json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, json_object_new_string(v));
}

/* A service account document like the ones the Cloud console downloads. */
static struct json_object *sa_obj(const char *pem)
{
    struct json_object *o = json_object_new_object();

    set_str(o, "type", "service_account");
    set_str(o, "project_id", "gapi-test-project");
    set_str(o, "private_key_id", "0123456789abcdef0123456789abcdef01234567");
    set_str(o, "private_key", pem);
    set_str(o, "client_email", "svc@gapi-test-project.iam.gserviceaccount.com");
    set_str(o, "client_id", "104758912345678901234");
    set_str(o, "auth_uri", "https://accounts.google.com/o/oauth2/auth");
    set_str(o, "token_uri", "https://oauth2.googleapis.com/token");
    set_str(o, "auth_provider_x509_cert_url", "https://www.googleapis.com/oauth2/v1/certs");
    set_str(o, "client_x509_cert_url", "https://www.googleapis.com/robot/v1/metadata/x509/svc");
    set_str(o, "universe_domain", "googleapis.com");
    return o;
}

/* An authorized_user document as `gcloud auth application-default login`
 * writes it. */
static struct json_object *au_obj(void)
{
    struct json_object *o = json_object_new_object();

    set_str(o, "account", "");
    set_str(o, "client_id",
            "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com");
    set_str(o, "client_secret", CLIENT_SECRET);
    set_str(o, "quota_project_id", "gapi-quota");
    set_str(o, "refresh_token", REFRESH_TOKEN);
    set_str(o, "type", "authorized_user");
    set_str(o, "universe_domain", "googleapis.com");
    return o;
}

static int has(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

/* A message may name the problem but never carry key or secret text. */
static int clean_message(const char *m)
{
    size_t i;

    if (!m[0] || has(m, "MII") || has(m, CLIENT_SECRET) || has(m, REFRESH_TOKEN) ||
        has(m, ACCESS_TOKEN))
        return 0;
    for (i = 0; m[i]; i++)
        if ((unsigned char)m[i] < 0x20)
            return 0;
    return 1;
}

/* ------------------------------------------------------------ base64url */

static int enc(const void *p, size_t n, const char *want)
{
    gapi__buf b = GAPI__BUF_INIT;
    int r = gapi__b64url_encode(&b, p, n) == 0 && b.data && strcmp(b.data, want) == 0;
    if (!r)
        diag("  encode of %zu bytes gave \"%s\", want \"%s\"", n, b.data ? b.data : "", want);
    gapi__buf_free(&b);
    return r;
}

static int dec(const char *s, const void *want, size_t want_len)
{
    gapi__buf b = GAPI__BUF_INIT;
    int r = gapi__b64url_decode(&b, s, strlen(s)) == 0 && b.len == want_len &&
            (want_len == 0 || memcmp(b.data, want, want_len) == 0);
    gapi__buf_free(&b);
    return r;
}

static void test_b64url(void)
{
    static const struct {
        const char *plain, *b64;
    } rfc4648[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
                   {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    static const char *const bad[] = {
        "Zm9v+A", "Zm9v/A", "Z",    "Zg=",   "Zg===",  "Z=g=",   "Zm 9v",  "Zm9v\n",
        "Zh",     "Zm9",    "====", "Zm9vY", "AAAA==", "Zg==Zg", "Zm9v!!", "é"};
    static const unsigned char url_bytes[] = {0xfb, 0xff, 0xbf};
    gapi__buf b = GAPI__BUF_INIT;
    unsigned char data[100];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    size_t i, n;
    int bad_rt = 0, bad_diff = 0, rejected = 0, unchanged = 1;

    for (i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        ok(enc(rfc4648[i].plain, strlen(rfc4648[i].plain), rfc4648[i].b64),
           "b64url: RFC 4648 vector \"%s\" encodes to \"%s\"", rfc4648[i].plain, rfc4648[i].b64);
        ok(dec(rfc4648[i].b64, rfc4648[i].plain, strlen(rfc4648[i].plain)),
           "b64url: \"%s\" decodes to \"%s\"", rfc4648[i].b64, rfc4648[i].plain);
    }
    ok(enc(url_bytes, 3, "-_-_") && dec("-_-_", url_bytes, 3),
       "b64url: 0xFB 0xFF 0xBF uses the URL alphabet (-_-_), both ways");
    ok(dec("Zg==", "f", 1) && dec("Zm8=", "fo", 2) && dec("Zm9vYg==", "foob", 4),
       "b64url: correct '=' padding is accepted");

    /* Random data of every length 0..99 (all three remainders mod 3):
     * round trip, exact length, no padding, and the same text as OpenSSL's
     * standard base64 mapped to the URL alphabet without '='. */
    for (n = 0; n < sizeof(data); n++) {
        unsigned char std[160];
        gapi__buf e = GAPI__BUF_INIT, d = GAPI__BUF_INIT;
        size_t k;
        int sl;

        for (i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            data[i] = (unsigned char)x;
        }
        if (gapi__b64url_encode(&e, data, n) != 0 ||
            gapi__b64url_decode(&d, e.data ? e.data : "", e.len) != 0 || d.len != n ||
            (n && memcmp(d.data, data, n) != 0) || e.len != (n * 4 + 2) / 3 ||
            (e.data && strpbrk(e.data, "=+/")))
            bad_rt++;
        sl = EVP_EncodeBlock(std, data, (int)n);
        for (k = 0; k < (size_t)sl; k++)
            std[k] = std[k] == '+' ? '-' : std[k] == '/' ? '_' : std[k];
        while (sl > 0 && std[sl - 1] == '=')
            sl--;
        if ((size_t)sl != e.len || (sl && memcmp(std, e.data, (size_t)sl) != 0))
            bad_diff++;
        gapi__buf_free(&e);
        gapi__buf_free(&d);
    }
    is_int(bad_rt, 0, "b64url: 100 random lengths round-trip with length ceil(4n/3), no =+/");
    is_int(bad_diff, 0, "b64url: 100 random lengths match OpenSSL's base64 in the URL alphabet");

    gapi__buf_puts(&b, "keep");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gapi__b64url_decode(&b, bad[i], strlen(bad[i])) == GAPI_EINVAL)
            rejected++;
        else
            diag("  \"%s\" was not refused", bad[i]);
        if (b.len != 4 || strcmp(b.data, "keep") != 0)
            unchanged = 0;
    }
    is_int(rejected, (int)(sizeof(bad) / sizeof(bad[0])),
           "b64url: bad characters, bad padding, 1-mod-4 length, non-zero spare bits refused");
    ok(unchanged, "b64url: a refused decode leaves the output buffer as it was");
    is_int(gapi__b64url_decode(&b, "Zm\0v", 4), GAPI_EINVAL, "b64url: an embedded NUL is refused");
    gapi__buf_free(&b);
}

/* ------------------------------------------------------------ RFC 7515 A.2 */

static EVP_PKEY *g_key8, *g_key1; /* the A.2 key, from PKCS#8 and PKCS#1 PEM */
static EVP_PKEY *g_pub;           /* its public half (SPKI PEM) */
static char *g_pem8, *g_pem1;

static void test_rfc7515(void)
{
    char *text = shared_text("jose/rfc7515-A.2-RS256.json"), *spki;
    struct json_object *v = NULL, *f;
    char err[256];
    int i;

    g_pem8 = shared_text("jose/derived/rfc7515-A.2-key.pkcs8.pem");
    g_pem1 = shared_text("jose/derived/rfc7515-A.2-key.pkcs1.pem");
    spki = shared_text("jose/derived/rfc7515-A.2-key.spki.pem");
    if (!text || !g_pem8 || !g_pem1 || !spki) {
        free(text);
        free(spki);
        return;
    }
    err[0] = '\0';
    is_int(gapi__rsa_key_from_pem(&g_key8, g_pem8, strlen(g_pem8), err, sizeof(err)), 0,
           "A.2 key loads from PKCS#8 PEM (%s)", err);
    is_int(gapi__rsa_key_from_pem(&g_key1, g_pem1, strlen(g_pem1), err, sizeof(err)), 0,
           "A.2 key loads from PKCS#1 PEM (%s)", err);
    g_pub = load_public(spki);
    ok(g_pub != NULL, "A.2 public key loads (OpenSSL)");
    free(spki);

    is_int(gapi__json_parse(text, strlen(text), 0, &v, NULL), 0, "A.2 vector parses");
    free(text);
    if (!v || !g_key8 || !g_key1) {
        json_object_put(v);
        return;
    }
    {
        const char *hdr =
            json_object_get_string(json_object_object_get(v, "protected_header_utf8"));
        const char *hdr_b = json_object_get_string(json_object_object_get(v, "protected_b64u"));
        const char *pay = json_object_get_string(json_object_object_get(v, "payload_utf8"));
        const char *pay_b = json_object_get_string(json_object_object_get(v, "payload_b64u"));
        const char *input = json_object_get_string(json_object_object_get(v, "signing_input"));
        const char *sig = json_object_get_string(json_object_object_get(v, "signature_b64u"));
        const char *compact = json_object_get_string(json_object_object_get(v, "compact"));
        gapi__buf b = GAPI__BUF_INIT, c = GAPI__BUF_INIT;
        int same = 1;

        ok(enc(hdr, strlen(hdr), hdr_b), "A.2: b64url(protected header) matches the RFC");
        ok(enc(pay, strlen(pay), pay_b), "A.2: b64url(payload) matches the RFC (CR LF inside)");

        f = json_object_object_get(v, "signature_octets");
        gapi__b64url_decode(&b, sig, strlen(sig));
        is_int(b.len, json_object_array_length(f), "A.2: signature decodes to 256 octets");
        for (i = 0; i < (int)b.len && i < (int)json_object_array_length(f); i++)
            if ((unsigned char)b.data[i] != json_object_get_int(json_object_array_get_idx(f, i)))
                same = 0;
        ok(same, "A.2: decoded signature equals the RFC's octet array");
        gapi__buf_free(&b);

        is_int(gapi__rs256_sign_b64url(&b, g_key8, input, strlen(input)), 0,
               "A.2: sign with the PKCS#8 key");
        is_str(b.data, sig, "A.2: RS256 signature (PKCS#8 key) equals the RFC's, byte for byte");
        is_int(gapi__rs256_sign_b64url(&c, g_key1, input, strlen(input)), 0,
               "A.2: sign with the PKCS#1 key");
        is_str(c.data, sig, "A.2: RS256 signature (PKCS#1 key) equals the RFC's, byte for byte");
        gapi__buf_reset(&c);
        gapi__buf_printf(&c, "%s.%s", input, b.data ? b.data : "");
        is_str(c.data, compact, "A.2: signing input \".\" signature is the RFC's compact JWS");
        ok(g_pub && rs256_verify(g_pub, input, strlen(input), sig),
           "A.2: OpenSSL verifies the signature with the SPKI public key");
        gapi__buf_free(&b);
        gapi__buf_free(&c);
        is_int(EVP_PKEY_get_bits(g_key8), 2048, "A.2: key is 2048 bits");
    }
    json_object_put(v);
}

/* ------------------------------------------------------------ JWT */

/* Splits a JWT into its three parts; decodes the first two. */
static int split_jwt(const char *jwt, gapi__buf *hdr, gapi__buf *claims, const char **sig,
                     size_t *input_len)
{
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;

    if (!d2 || strchr(d2 + 1, '.'))
        return -1;
    if (gapi__b64url_decode(hdr, jwt, (size_t)(d1 - jwt)) != 0 ||
        gapi__b64url_decode(claims, d1 + 1, (size_t)(d2 - d1 - 1)) != 0)
        return -1;
    *sig = d2 + 1;
    *input_len = (size_t)(d2 - jwt);
    return 0;
}

static const char *jstr(struct json_object *o, const char *k)
{
    struct json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static void test_jwt(void)
{
    static const char odd[] = "q\"b\\n\nt\tc\x01/ \xc3\xa9 \xf0\x9f\x98\x80";
    gapi__jwt_claims c = {"svc@gapi-test-project.iam.gserviceaccount.com",
                          NULL,
                          "https://oauth2.googleapis.com/token",
                          "https://www.googleapis.com/auth/cloud-platform "
                          "https://www.googleapis.com/auth/devstorage.read_only",
                          1700000000LL,
                          1700003600LL};
    gapi__buf h = GAPI__BUF_INIT, cl = GAPI__BUF_INIT;
    struct json_object *o = NULL;
    char *jwt = NULL, *sentinel = (char *)"untouched", *out;
    const char *sig;
    size_t in_len;
    EVP_PKEY *ec;

    if (!g_key8 || !g_pub) {
        skip(1, "no A.2 key");
        return;
    }
    is_int(gapi__jwt_sign(&jwt, g_key8, "0123abcd", &c), 0, "jwt: signs");
    if (!jwt)
        return;
    ok(split_jwt(jwt, &h, &cl, &sig, &in_len) == 0, "jwt: three base64url parts");
    is_str(h.data, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"0123abcd\"}",
           "jwt: header is alg, typ, kid in that order");
    is_str(cl.data,
           "{\"iss\":\"svc@gapi-test-project.iam.gserviceaccount.com\","
           "\"aud\":\"https://oauth2.googleapis.com/token\","
           "\"scope\":\"https://www.googleapis.com/auth/cloud-platform "
           "https://www.googleapis.com/auth/devstorage.read_only\","
           "\"iat\":1700000000,\"exp\":1700003600}",
           "jwt: claims compact, in order, sub omitted, '/' not escaped");
    ok(gapi__json_parse(cl.data ? cl.data : "", cl.len, 0, &o, NULL) == 0 &&
           json_object_is_type(o, json_type_object),
       "jwt: claims parse as a JSON object");
    is_str(jstr(o, "iss"), c.iss, "jwt: iss");
    is_str(jstr(o, "aud"), c.aud, "jwt: aud");
    is_str(jstr(o, "scope"), c.scope, "jwt: scope");
    ok(!json_object_object_get_ex(o, "sub", NULL), "jwt: no sub claim");
    is_int(json_object_get_int64(json_object_object_get(o, "iat")), 1700000000LL, "jwt: iat");
    is_int(json_object_get_int64(json_object_object_get(o, "exp")), 1700003600LL, "jwt: exp");
    json_object_put(o);
    o = NULL;
    ok(rs256_verify(g_pub, jwt, in_len, sig), "jwt: signature verifies with the public key");
    {
        /* One character of the claims changed: the signature must not
         * verify any more. */
        char *t = strdup(jwt);
        t[strchr(t, '.') - t + 5] ^= 1;
        ok(!rs256_verify(g_pub, t, in_len, sig), "jwt: a changed claim fails verification");
        free(t);
    }
    OPENSSL_cleanse(jwt, strlen(jwt));
    gapi__free(jwt);
    jwt = NULL;
    gapi__buf_reset(&h);
    gapi__buf_reset(&cl);

    /* Escapes: quote, backslash, newline, tab, U+0001, slash, UTF-8. */
    c.iss = odd;
    c.sub = "user@example.com";
    c.scope = NULL;
    is_int(gapi__jwt_sign(&jwt, g_key1, NULL, &c), 0, "jwt: signs strings that need escaping");
    if (jwt && split_jwt(jwt, &h, &cl, &sig, &in_len) == 0) {
        is_str(h.data, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", "jwt: no kid when kid is NULL");
        ok(has(cl.data, "\"iss\":\"q\\\"b\\\\n\\nt\\tc\\u0001/ \xc3\xa9 \xf0\x9f\x98\x80\""),
           "jwt: \" \\ newline tab escaped, U+0001 as \\u0001, '/' and UTF-8 as they are");
        ok(gapi__json_parse(cl.data, cl.len, 0, &o, NULL) == 0, "jwt: escaped claims parse");
        is_str(jstr(o, "iss"), odd, "jwt: escaped iss reads back equal");
        is_str(jstr(o, "sub"), "user@example.com", "jwt: sub present when given");
        ok(!json_object_object_get_ex(o, "scope", NULL), "jwt: no scope when NULL");
        json_object_put(o);
        ok(rs256_verify(g_pub, jwt, in_len, sig), "jwt: PKCS#1-loaded key signature verifies");
    }
    gapi__free(jwt);
    jwt = NULL;
    gapi__buf_free(&h);
    gapi__buf_free(&cl);

    {
        gapi__jwt_claims none = {NULL, NULL, NULL, NULL, -5, 0};
        is_int(gapi__jwt_sign(&jwt, g_key8, NULL, &none), 0, "jwt: no string claims");
        if (jwt && split_jwt(jwt, &h, &cl, &sig, &in_len) == 0)
            is_str(cl.data, "{\"iat\":-5,\"exp\":0}", "jwt: only iat and exp");
        gapi__free(jwt);
        gapi__buf_free(&h);
        gapi__buf_free(&cl);
    }

    out = sentinel;
    c.scope = "bad \xff utf-8";
    is_int(gapi__jwt_sign(&out, g_key8, NULL, &c), GAPI_EINVAL, "jwt: invalid UTF-8 refused");
    c.scope = NULL;
    c.aud = "overlong \xc0\xaf";
    is_int(gapi__jwt_sign(&out, g_key8, NULL, &c), GAPI_EINVAL, "jwt: overlong UTF-8 refused");
    c.aud = "surrogate \xed\xa0\x80";
    is_int(gapi__jwt_sign(&out, g_key8, NULL, &c), GAPI_EINVAL, "jwt: UTF-8 surrogate refused");
    c.aud = "x";
    is_int(gapi__jwt_sign(&out, g_key8, "kid\xe2\x82", &c), GAPI_EINVAL,
           "jwt: truncated UTF-8 in kid refused");
    is_int(gapi__jwt_sign(&out, NULL, NULL, &c), GAPI_EINVAL, "jwt: NULL key refused");
    is_int(gapi__jwt_sign(&out, g_key8, NULL, NULL), GAPI_EINVAL, "jwt: NULL claims refused");
    ec = EVP_EC_gen("P-256");
    is_int(gapi__jwt_sign(&out, ec, NULL, &c), GAPI_EINVAL, "jwt: an EC key is refused");
    {
        gapi__buf b = GAPI__BUF_INIT;
        is_int(gapi__rs256_sign_b64url(&b, ec, "x", 1), GAPI_EINVAL, "rs256: an EC key is refused");
        ok(b.len == 0, "rs256: output untouched on failure");
        gapi__buf_free(&b);
    }
    EVP_PKEY_free(ec);
    ok(out == sentinel, "jwt: *out untouched by every failure");
}

/* ------------------------------------------------------------ PEM keys */

static char *g_ec_pem8, *g_ec_pem_trad, *g_enc_pem8, *g_enc_pem1, *g_short_pem, *g_pub_pem;
static char *g_trunc_pem, *g_corrupt_pem;

static void make_test_keys(void)
{
    EVP_PKEY *ec = EVP_EC_gen("P-256"), *short_rsa = EVP_RSA_gen(1024);
    char *p, *mid;

    if (!ec || !short_rsa || !g_key8)
        abort();
    g_ec_pem8 = pem_of(ec, 1, NULL, NULL);
    g_ec_pem_trad = pem_of(ec, 0, NULL, NULL);
    g_enc_pem8 = pem_of(g_key8, 1, EVP_aes_256_cbc(), "passphrase");
    g_enc_pem1 = pem_of(g_key8, 0, EVP_aes_128_cbc(), "passphrase");
    g_short_pem = pem_of(short_rsa, 1, NULL, NULL);
    g_pub_pem = public_pem_of(g_key8);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(short_rsa);

    /* Truncated: the first half of the text, END line gone. */
    g_trunc_pem = strndup(g_pem8, strlen(g_pem8) / 2);
    /* Corrupt: lines 6..12 of the base64 cut out, BEGIN and END kept. */
    p = strdup(g_pem8);
    mid = p;
    for (int i = 0; i < 6 && mid; i++)
        mid = strchr(mid, '\n') ? strchr(mid, '\n') + 1 : NULL;
    if (mid) {
        char *to = mid;
        for (int i = 0; i < 7 && to; i++)
            to = strchr(to, '\n') ? strchr(to, '\n') + 1 : NULL;
        if (to)
            memmove(mid, to, strlen(to) + 1);
    }
    g_corrupt_pem = p;
}

static void pem_refused(const char *what, const char *pem, const char *want)
{
    EVP_PKEY *k = (EVP_PKEY *)&k;
    char err[256] = "";
    int rc = gapi__rsa_key_from_pem(&k, pem, strlen(pem), err, sizeof(err));

    ok(rc == GAPI_ECREDENTIALS && has(err, want) && clean_message(err) && k == (EVP_PKEY *)&k &&
           ERR_peek_error() == 0,
       "pem: %s refused: \"%s\"", what, err);
    if (!has(err, want))
        diag("  want a message with \"%s\"", want);
}

static void test_pem(void)
{
    EVP_PKEY *k = NULL;
    gapi__buf b = GAPI__BUF_INIT;
    char err[256] = "";

    if (!g_key8) {
        skip(1, "no A.2 key");
        return;
    }
    gapi__buf_printf(&b, "Bag Attributes\n    localKeyID: 01\n%s\ntrailing text\n", g_pem8);
    is_int(gapi__rsa_key_from_pem(&k, b.data, b.len, err, sizeof(err)), 0,
           "pem: text around the block is ignored (%s)", err);
    ok(k && EVP_PKEY_eq(k, g_key8) == 1, "pem: it is the same key");
    EVP_PKEY_free(k);
    k = NULL;
    gapi__buf_free(&b);
    /* Not NUL-terminated: a copy of exactly its length. */
    {
        size_t n = strlen(g_pem1);
        char *exact = malloc(n);
        memcpy(exact, g_pem1, n);
        is_int(gapi__rsa_key_from_pem(&k, exact, n, err, sizeof(err)), 0,
               "pem: PEM without a trailing NUL loads");
        EVP_PKEY_free(k);
        free(exact);
    }

    pem_refused("EC key (PKCS#8)", g_ec_pem8, "not an RSA key (EC)");
    pem_refused("EC key (\"EC PRIVATE KEY\")", g_ec_pem_trad, "\"EC PRIVATE KEY\" is not an RSA");
    pem_refused("encrypted PKCS#8", g_enc_pem8, "encrypted keys are not supported");
    pem_refused("encrypted PKCS#1 (Proc-Type)", g_enc_pem1, "is encrypted");
    pem_refused("1024-bit RSA", g_short_pem, "at least 2048");
    pem_refused("public key", g_pub_pem, "\"PUBLIC KEY\" is not an RSA private key");
    pem_refused("truncated PEM", g_trunc_pem, "has no END line");
    pem_refused("corrupt base64 body", g_corrupt_pem, "does not decode to a key");
    pem_refused("empty text", "", "no PEM block");
    pem_refused("not PEM", "hello", "no PEM block");
    pem_refused("unterminated BEGIN line", "-----BEGIN PRIVATE KEY", "malformed PEM BEGIN");
}

/* ------------------------------------------------------------ key files */

static void kf_refused(const char *what, const char *json, size_t len, const char *want)
{
    gapi__keyfile k, before;
    char err[512] = "";
    int rc;

    memset(&k, 0xA5, sizeof(k));
    before = k;
    rc = gapi__keyfile_parse(&k, json, len, err, sizeof(err));
    ok(rc == GAPI_ECREDENTIALS && has(err, want) && clean_message(err) &&
           memcmp(&k, &before, sizeof(k)) == 0,
       "keyfile: %s: \"%s\"", what, err);
    if (rc != GAPI_ECREDENTIALS || !has(err, want))
        diag("  rc %d, want GAPI_ECREDENTIALS and a message with \"%s\"", rc, want);
}

/* The SA document with one field replaced (v a JSON value; NULL deletes). */
static void sa_refused(const char *what, const char *pem, const char *field, const char *v,
                       const char *want)
{
    struct json_object *o = sa_obj(pem);
    char *s;

    if (v) {
        struct json_object *val = NULL;
        if (gapi__json_parse(v, strlen(v), 0, &val, NULL) != 0)
            abort();
        json_object_object_add(o, field, val);
    } else {
        json_object_object_del(o, field);
    }
    s = dump(o);
    kf_refused(what, s, strlen(s), want);
    free(s);
    json_object_put(o);
}

static void au_refused(const char *what, const char *field, const char *v, const char *want)
{
    struct json_object *o = au_obj();
    char *s;

    if (v) {
        struct json_object *val = NULL;
        if (gapi__json_parse(v, strlen(v), 0, &val, NULL) != 0)
            abort();
        json_object_object_add(o, field, val);
    } else {
        json_object_object_del(o, field);
    }
    s = dump(o);
    kf_refused(what, s, strlen(s), want);
    free(s);
    json_object_put(o);
}

static char *quoted(const char *s)
{
    struct json_object *o = json_object_new_string(s);
    char *r = dump(o);
    json_object_put(o);
    return r;
}

static void sa_pem_refused(const char *what, const char *pem, const char *want)
{
    char *q = quoted(pem);
    sa_refused(what, g_pem8, "private_key", q, want);
    free(q);
}

static void test_keyfile(void)
{
    struct json_object *o;
    gapi__keyfile k;
    char err[512] = "", *s, *jwt = NULL;
    gapi__jwt_claims c = {"a", NULL, "b", NULL, 1, 2};

    if (!g_key8) {
        skip(1, "no A.2 key");
        return;
    }
    /* A complete service account document (PKCS#8 key). */
    o = sa_obj(g_pem8);
    s = dump(o);
    json_object_put(o);
    memset(&k, 0, sizeof(k));
    is_int(gapi__keyfile_parse(&k, s, strlen(s), err, sizeof(err)), 0,
           "keyfile: service_account parses (%s)", err);
    free(s);
    is_int(k.type, GAPI__KEY_SERVICE_ACCOUNT, "keyfile: type service_account");
    is_str(k.client_email, "svc@gapi-test-project.iam.gserviceaccount.com",
           "keyfile: client_email");
    is_str(k.private_key_id, "0123456789abcdef0123456789abcdef01234567", "keyfile: private_key_id");
    is_str(k.project_id, "gapi-test-project", "keyfile: project_id");
    is_str(k.token_uri, "https://oauth2.googleapis.com/token", "keyfile: token_uri");
    is_str(k.universe_domain, "googleapis.com", "keyfile: universe_domain");
    ok(k.quota_project_id == NULL && k.client_secret == NULL && k.refresh_token == NULL,
       "keyfile: fields of the other type stay NULL");
    ok(k.key && EVP_PKEY_eq(k.key, g_key8) == 1, "keyfile: private key is the A.2 key");
    if (k.key && gapi__jwt_sign(&jwt, k.key, k.private_key_id, &c) == 0) {
        gapi__buf h = GAPI__BUF_INIT, cl = GAPI__BUF_INIT;
        const char *sig;
        size_t n;
        ok(split_jwt(jwt, &h, &cl, &sig, &n) == 0 && rs256_verify(g_pub, jwt, n, sig),
           "keyfile: its key signs a JWT the public key verifies");
        gapi__buf_free(&h);
        gapi__buf_free(&cl);
        gapi__free(jwt);
    } else {
        ok(0, "keyfile: its key signs a JWT");
    }
    gapi__keyfile_clear(&k);
    ok(k.key == NULL && k.client_email == NULL && k.type == 0, "keyfile: clear zeroes the struct");
    gapi__keyfile_clear(&k);
    gapi__keyfile_clear(NULL);
    ok(1, "keyfile: clear twice and clear(NULL) are harmless");

    /* PKCS#1 key; token_uri, universe_domain and private_key_id absent
     * (defaults, NULL); quota_project_id; loopback http token_uri. */
    o = sa_obj(g_pem1);
    json_object_object_del(o, "token_uri");
    json_object_object_del(o, "universe_domain");
    json_object_object_del(o, "private_key_id");
    set_str(o, "quota_project_id", "billing-project");
    s = dump(o);
    is_int(gapi__keyfile_parse(&k, s, strlen(s), err, sizeof(err)), 0,
           "keyfile: service_account with a PKCS#1 key parses (%s)", err);
    free(s);
    is_str(k.token_uri, GAPI__DEFAULT_TOKEN_URI, "keyfile: token_uri default");
    is_str(k.universe_domain, "googleapis.com", "keyfile: universe_domain default");
    ok(k.private_key_id == NULL, "keyfile: private_key_id absent -> NULL");
    is_str(k.quota_project_id, "billing-project", "keyfile: quota_project_id");
    ok(k.key && EVP_PKEY_eq(k.key, g_key8) == 1, "keyfile: PKCS#1 key is the same key");
    gapi__keyfile_clear(&k);
    {
        static const char *const local[] = {"http://127.0.0.1:8080/token", "http://localhost/token",
                                            "http://[::1]:9/t", "https://oauth2.example.com/token"};
        for (size_t i = 0; i < 4; i++) {
            set_str(o, "token_uri", local[i]);
            s = dump(o);
            err[0] = '\0';
            ok(gapi__keyfile_parse(&k, s, strlen(s), err, sizeof(err)) == 0 && k.token_uri &&
                   strcmp(k.token_uri, local[i]) == 0,
               "keyfile: token_uri %s accepted %s", local[i], err);
            gapi__keyfile_clear(&k);
            free(s);
        }
    }
    json_object_put(o);

    /* authorized_user */
    o = au_obj();
    s = dump(o);
    json_object_put(o);
    is_int(gapi__keyfile_parse(&k, s, strlen(s), err, sizeof(err)), 0,
           "keyfile: authorized_user parses (%s)", err);
    free(s);
    is_int(k.type, GAPI__KEY_AUTHORIZED_USER, "keyfile: type authorized_user");
    is_str(k.client_id, "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com",
           "keyfile: client_id");
    is_str(k.client_secret, CLIENT_SECRET, "keyfile: client_secret");
    is_str(k.refresh_token, REFRESH_TOKEN, "keyfile: refresh_token");
    is_str(k.quota_project_id, "gapi-quota", "keyfile: quota_project_id");
    is_str(k.token_uri, GAPI__DEFAULT_TOKEN_URI, "keyfile: authorized_user token_uri default");
    ok(k.key == NULL && k.client_email == NULL, "keyfile: no service account fields");
    gapi__keyfile_clear(&k);

    /* Malformed documents. */
    kf_refused("not JSON", S("this is not json"), "not JSON: ");
    kf_refused("empty document", S(""), "not JSON: no JSON value");
    kf_refused("truncated", S("{\"type\": \"service_account\",\n \"client_email\": \"a@b"),
               "not JSON: unterminated string");
    kf_refused("truncated at a line", S("{\"type\": \"service_account\",\n"), "line 2, column");
    kf_refused("array", S("[1, 2]"), "not a JSON object (the document is array)");
    kf_refused("null document", S("null"), "not a JSON object");
    kf_refused("type missing", S("{\"client_email\": \"a@b\"}"), "\"type\" missing");
    kf_refused("type null", S("{\"type\": null}"), "\"type\" missing");
    kf_refused("type not a string", S("{\"type\": 5}"), "\"type\" is not a string (it is int)");
    kf_refused("type unknown", S("{\"type\": \"external_account\"}"),
               "unsupported credentials type \"external_account\"");
    kf_refused("type with a NUL", S("{\"type\": \"service_account\\u0000x\"}"),
               "unsupported credentials type \"service_account x\"");
    kf_refused("type with control characters", S("{\"type\": \"a\\nb\\u001bc\"}"),
               "unsupported credentials type \"a b c\"");
    sa_refused("client_email not a string", g_pem8, "client_email", "42",
               "\"client_email\" is not a string");
    sa_refused("client_email empty", g_pem8, "client_email", "\"\"",
               "service_account: \"client_email\" is empty");
    sa_refused("client_email missing", g_pem8, "client_email", NULL,
               "service_account: \"client_email\" missing");
    sa_refused("client_email with a NUL", g_pem8, "client_email", "\"a\\u0000@b\"",
               "\"client_email\" contains a NUL character");
    sa_refused("private_key missing", g_pem8, "private_key", NULL,
               "service_account: \"private_key\" missing");
    sa_refused("private_key an object", g_pem8, "private_key", "{}",
               "\"private_key\" is not a string (it is object)");
    sa_refused("private_key_id a number", g_pem8, "private_key_id", "7",
               "\"private_key_id\" is not a string");
    sa_pem_refused("private_key not PEM", "hello world",
                   "service_account: private_key is not a PEM RSA key: no PEM block");
    sa_pem_refused("PEM truncated", g_trunc_pem, "private_key is not a PEM RSA key: PEM block");
    sa_pem_refused("PEM body corrupt", g_corrupt_pem, "does not decode to a key");
    sa_pem_refused("EC key instead of RSA", g_ec_pem8, "not an RSA key (EC)");
    sa_pem_refused("encrypted PKCS#8 PEM", g_enc_pem8, "encrypted keys are not supported");
    sa_pem_refused("encrypted PKCS#1 PEM", g_enc_pem1, "is encrypted");
    sa_pem_refused("1024-bit RSA key", g_short_pem, "at least 2048");
    sa_refused("http token_uri to a public host", g_pem8, "token_uri",
               "\"http://oauth2.example.com/token\"",
               "token_uri \"http://oauth2.example.com/token\" is not https://");
    sa_refused("token_uri without a scheme", g_pem8, "token_uri", "\"oauth2.googleapis.com/token\"",
               "token_uri \"oauth2.googleapis.com/token\" is not usable");
    sa_refused("token_uri with user-info", g_pem8, "token_uri", "\"https://u:p@h/token\"",
               "user-info");
    sa_refused("token_uri not a string", g_pem8, "token_uri", "[]",
               "\"token_uri\" is not a string");
    sa_refused("universe_domain with a slash", g_pem8, "universe_domain", "\"evil.example/x\"",
               "universe_domain has a character not allowed");
    au_refused("refresh_token missing", "refresh_token", NULL,
               "authorized_user: \"refresh_token\" missing");
    au_refused("client_secret not a string", "client_secret", "123",
               "authorized_user: \"client_secret\" is not a string");
    au_refused("client_id empty", "client_id", "\"\"", "authorized_user: \"client_id\" is empty");
    au_refused("http token_uri", "token_uri", "\"http://10.0.0.1/token\"", "is not https://");

    /* Optional fields given as null or "" read as absent. */
    o = sa_obj(g_pem8);
    json_object_object_add(o, "project_id", NULL);
    set_str(o, "private_key_id", "");
    set_str(o, "token_uri", "");
    s = dump(o);
    json_object_put(o);
    ok(gapi__keyfile_parse(&k, s, strlen(s), err, sizeof(err)) == 0 && k.project_id == NULL &&
           k.private_key_id == NULL && k.token_uri &&
           strcmp(k.token_uri, GAPI__DEFAULT_TOKEN_URI) == 0,
       "keyfile: null and \"\" optional fields read as absent (defaults applied)");
    gapi__keyfile_clear(&k);
    free(s);
    is_int(gapi__keyfile_parse(NULL, "{}", 2, err, sizeof(err)), GAPI_EINVAL,
           "keyfile: NULL out is GAPI_EINVAL");
    is_int(gapi__keyfile_parse(&k, NULL, 3, err, sizeof(err)), GAPI_EINVAL,
           "keyfile: NULL json with a length is GAPI_EINVAL");
}

static void load_refused(const char *what, const char *path, const char *want)
{
    gapi__keyfile k, before;
    char err[1024] = "";
    int rc;

    memset(&k, 0x5A, sizeof(k));
    before = k;
    rc = gapi__keyfile_load(&k, path, err, sizeof(err));
    ok(rc == GAPI_ECREDENTIALS && strncmp(err, path, strlen(path)) == 0 && has(err, want) &&
           clean_message(err) && memcmp(&k, &before, sizeof(k)) == 0,
       "keyfile_load: %s: \"%s\"", what, err);
    if (!has(err, want))
        diag("  want a message with \"%s\"", want);
}

static void test_keyfile_load(void)
{
    char path[512], err[1024] = "";
    struct json_object *o;
    gapi__keyfile k;
    char *s, *big;

    if (!g_key8) {
        skip(1, "no A.2 key");
        return;
    }
    o = sa_obj(g_pem8);
    s = dump(o);
    json_object_put(o);
    snprintf(path, sizeof(path), "%s/sa.json", g_tmp);
    ok(write_file(path, s, strlen(s)) == 0, "write %s", path);
    memset(&k, 0, sizeof(k));
    is_int(gapi__keyfile_load(&k, path, err, sizeof(err)), 0, "keyfile_load: good file (%s)", err);
    ok(k.key && k.client_email &&
           strcmp(k.client_email, "svc@gapi-test-project.iam.gserviceaccount.com") == 0,
       "keyfile_load: fields read");
    gapi__keyfile_clear(&k);

    /* Exactly at the limit: read (and refused for its content only). */
    big = malloc(GAPI__KEYFILE_MAX + 1);
    memset(big, ' ', GAPI__KEYFILE_MAX + 1);
    memcpy(big, s, strlen(s));
    snprintf(path, sizeof(path), "%s/limit.json", g_tmp);
    write_file(path, big, GAPI__KEYFILE_MAX);
    is_int(gapi__keyfile_load(&k, path, err, sizeof(err)), 0,
           "keyfile_load: a file of exactly 1 MiB is read (%s)", err);
    gapi__keyfile_clear(&k);
    snprintf(path, sizeof(path), "%s/big.json", g_tmp);
    write_file(path, big, GAPI__KEYFILE_MAX + 1);
    load_refused("file too big", path, "over the 1048576-byte limit");
    free(big);
    free(s);

    snprintf(path, sizeof(path), "%s/missing.json", g_tmp);
    load_refused("file missing", path, strerror(ENOENT));
    snprintf(path, sizeof(path), "%s", g_tmp);
    load_refused("directory instead of file", path, strerror(EISDIR));
    snprintf(path, sizeof(path), "%s/fifo", g_tmp);
    if (mkfifo(path, 0600) == 0)
        load_refused("FIFO (refused without blocking)", path, "not a regular file");
    else
        skip(1, "mkfifo failed");
    snprintf(path, sizeof(path), "%s/bad.json", g_tmp);
    write_file(path, S("{\"type\": \"impersonated_service_account\"}"));
    load_refused("unsupported type in a file", path,
                 ": unsupported credentials type \"impersonated_service_account\"");
    snprintf(path, sizeof(path), "%s/notjson.json", g_tmp);
    write_file(path, S("{\n  \"type\": \"service_account\",\n  oops\n}"));
    load_refused("not JSON in a file", path, ": not JSON: ");
    snprintf(path, sizeof(path), "%s/noread.json", g_tmp);
    write_file(path, S("{}"));
    chmod(path, 0);
    if (geteuid() != 0)
        load_refused("unreadable file", path, strerror(EACCES));
    else
        skip(1, "running as root: permissions are not enforced");
    is_int(gapi__keyfile_load(&k, NULL, err, sizeof(err)), GAPI_EINVAL,
           "keyfile_load: NULL path is GAPI_EINVAL");
}

/* ------------------------------------------------------------ token responses */

typedef struct tok_case {
    const char *what;
    int status;
    const char *body;
    int rc;
    const char *msg; /* substring of the message (failure) */
    int retryable;
    long long expires; /* success */
} tok_case;

static void test_token(void)
{
    static const tok_case cases[] = {
        {"number expires_in", 200,
         "{\"access_token\":\"" ACCESS_TOKEN "\",\"expires_in\":3599,\"token_type\":\"Bearer\"}", 0,
         NULL, 0, 3599},
        {"string expires_in (metadata server)", 200,
         "{\"access_token\":\"" ACCESS_TOKEN
         "\",\"expires_in\":\"3599\",\"token_type\":\"Bearer\"}",
         0, NULL, 0, 3599},
        {"no expires_in", 200, "{\"access_token\":\"" ACCESS_TOKEN "\"}", 0, NULL, 0, -1},
        {"null expires_in, lower-case bearer", 200,
         "{\"access_token\":\"" ACCESS_TOKEN "\",\"expires_in\":null,\"token_type\":\"bearer\"}", 0,
         NULL, 0, -1},
        {"decimal expires_in (fraction dropped)", 201,
         "{\"access_token\":\"" ACCESS_TOKEN "\",\"expires_in\":3599.9}", 0, NULL, 0, 3599},
        {"id_token and scope alongside", 200,
         "{\"access_token\":\"" ACCESS_TOKEN
         "\",\"expires_in\":0,\"scope\":\"a b\",\"id_token\":\"x\"}",
         0, NULL, 0, 0},
        {"token_type mac", 200,
         "{\"access_token\":\"" ACCESS_TOKEN "\",\"expires_in\":3599,\"token_type\":\"mac\"}",
         GAPI_EAUTH, "token endpoint: token_type \"mac\" is not Bearer", 0, 0},
        {"token_type echoing the token", 200,
         "{\"access_token\":\"" ACCESS_TOKEN "\",\"token_type\":\"x" ACCESS_TOKEN "\"}", GAPI_EAUTH,
         "token endpoint: token_type is not Bearer", 0, 0},
        {"token_type a number", 200, "{\"access_token\":\"" ACCESS_TOKEN "\",\"token_type\":1}",
         GAPI_EAUTH, "token_type is not a string", 0, 0},
        {"OAuth error", 400,
         "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}",
         GAPI_EAUTH, "token endpoint: HTTP 400: invalid_grant: Invalid JWT Signature.", 0, 0},
        {"OAuth error without description", 401, "{\"error\":\"invalid_client\"}", GAPI_EAUTH,
         "token endpoint: HTTP 401: invalid_client", 0, 0},
        {"OAuth temporarily_unavailable", 400, "{\"error\":\"temporarily_unavailable\"}",
         GAPI_EAUTH, "HTTP 400: temporarily_unavailable", 1, 0},
        {"OAuth internal_failure", 400,
         "{\"error\":\"internal_failure\",\"error_description\":\"try again\"}", GAPI_EAUTH,
         "internal_failure: try again", 1, 0},
        {"OAuth error in a 200", 200, "{\"error\":\"server_error\"}", GAPI_EAUTH,
         "HTTP 200: server_error", 1, 0},
        {"Google error form", 403,
         "{\"error\":{\"code\":403,\"message\":\"Permission denied on resource.\","
         "\"status\":\"PERMISSION_DENIED\"}}",
         GAPI_EAUTH, "token endpoint: HTTP 403: PERMISSION_DENIED: Permission denied on resource.",
         0, 0},
        {"500 HTML", 500,
         "<!DOCTYPE html>\n<html><head><title>Error 500 (Server Error)!!1</title></head>"
         "<body>That's an error.</body></html>",
         GAPI_EAUTH, "token endpoint: HTTP 500: Error 500 (Server Error)!!1", 1, 0},
        {"503 text, first line", 503, "\n  \n  Service Unavailable\r\nmore\n", GAPI_EAUTH,
         "token endpoint: HTTP 503: Service Unavailable", 1, 0},
        {"429", 429, "Too Many Requests", GAPI_EAUTH, "HTTP 429: Too Many Requests", 1, 0},
        {"408", 408, "", GAPI_EAUTH, "HTTP 408 (empty body)", 1, 0},
        {"404 empty", 404, "", GAPI_EAUTH, "token endpoint: HTTP 404 (empty body)", 0, 0},
        {"invalid JSON", 200, "{\"access_token\": ", GAPI_EAUTH,
         "token endpoint: HTTP 200: response is not JSON: ", 0, 0},
        {"JSON array", 200, "[\"" ACCESS_TOKEN "\"]", GAPI_EAUTH,
         "response is not a JSON object (it is array)", 0, 0},
        {"empty access_token", 200, "{\"access_token\":\"\",\"expires_in\":3599}", GAPI_EAUTH,
         "token endpoint: access_token is empty", 0, 0},
        {"no access_token", 200, "{\"expires_in\":3599}", GAPI_EAUTH,
         "token endpoint: response has no access_token", 0, 0},
        {"access_token a number", 200, "{\"access_token\":12}", GAPI_EAUTH,
         "access_token is not a string (it is int)", 0, 0},
        {"access_token with CR LF", 200, "{\"access_token\":\"abc\\r\\nX-Evil: 1\"}", GAPI_EAUTH,
         "access_token has a byte not allowed in an HTTP header (at offset 3)", 0, 0},
        {"access_token with a space", 200, "{\"access_token\":\"" ACCESS_TOKEN " x\"}", GAPI_EAUTH,
         "not allowed in an HTTP header", 0, 0},
        {"negative expires_in", 200, "{\"access_token\":\"" ACCESS_TOKEN "\",\"expires_in\":-5}",
         GAPI_EAUTH, "expires_in -5 is out of range", 0, 0},
        {"huge expires_in", 200,
         "{\"access_token\":\"" ACCESS_TOKEN "\",\"expires_in\":99999999999}", GAPI_EAUTH,
         "expires_in 99999999999 is out of range", 0, 0},
        {"expires_in not decimal", 200,
         "{\"access_token\":\"" ACCESS_TOKEN "\",\"expires_in\":\"12x\"}", GAPI_EAUTH,
         "expires_in is not a decimal number", 0, 0},
        {"expires_in a boolean", 200, "{\"access_token\":\"" ACCESS_TOKEN "\",\"expires_in\":true}",
         GAPI_EAUTH, "expires_in is not a number (it is boolean)", 0, 0},
    };
    gapi__token_result t;
    char err[512];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const tok_case *tc = &cases[i];
        int rc;

        memset(&t, 0x77, sizeof(t));
        err[0] = '\0';
        rc = gapi__token_parse(&t, "token endpoint", tc->status, tc->body, strlen(tc->body), err,
                               sizeof(err));
        if (tc->rc == 0) {
            ok(rc == 0 && t.access_token && strcmp(t.access_token, ACCESS_TOKEN) == 0 &&
                   t.expires_in == tc->expires && t.retryable == 0,
               "token: %s -> token, expires_in %lld (%s)", tc->what, tc->expires, err);
            gapi__token_result_clear(&t);
            ok(t.access_token == NULL && t.expires_in == -1, "token: %s: clear", tc->what);
        } else {
            ok(rc == tc->rc && t.access_token == NULL && t.expires_in == -1 &&
                   t.retryable == tc->retryable && has(err, tc->msg) && clean_message(err),
               "token: %s -> %s, retryable %d: \"%s\"", tc->what, gapi_error_name(tc->rc),
               tc->retryable, err);
            if (!has(err, tc->msg) || t.retryable != tc->retryable)
                diag("  want \"%s\", retryable %d; got rc %d retryable %d", tc->msg, tc->retryable,
                     rc, t.retryable);
        }
    }

    /* The metadata server prefix; a long line with control characters. */
    {
        gapi__buf b = GAPI__BUF_INIT;
        size_t n, k;
        int ctl = 0;

        gapi__buf_puts(&b, "\x01\x02 start");
        for (k = 0; k < 60; k++)
            gapi__buf_puts(&b, " word\t\x1b[31m");
        gapi__buf_puts(&b, "\nsecond line");
        is_int(gapi__token_parse(&t, "metadata server", 502, b.data, b.len, err, sizeof(err)),
               GAPI_EAUTH, "token: metadata server 502");
        ok(strncmp(err, "metadata server: HTTP 502: ", 27) == 0, "token: prefix is `who`: %.60s",
           err);
        n = strlen(err + 27);
        for (k = 0; err[k]; k++)
            ctl += (unsigned char)err[k] < 0x20;
        ok(n <= 203 && ctl == 0 && !has(err, "second line"),
           "token: body text cut to 200 bytes (+...), controls replaced, first line only (%zu)", n);
        ok(t.retryable == 1, "token: 502 is retryable");
        gapi__buf_free(&b);
    }
    /* A body that is not NUL-terminated (exact-size copy). */
    {
        static const char body[] = "{\"access_token\":\"" ACCESS_TOKEN "\",\"expires_in\":60}";
        char *exact = malloc(sizeof(body) - 1);
        memcpy(exact, body, sizeof(body) - 1);
        ok(gapi__token_parse(&t, "token endpoint", 200, exact, sizeof(body) - 1, err,
                             sizeof(err)) == 0 &&
               t.expires_in == 60,
           "token: body without a trailing NUL");
        gapi__token_result_clear(&t);
        free(exact);
    }
    is_int(gapi__token_parse(NULL, "x", 200, "{}", 2, err, sizeof(err)), GAPI_EINVAL,
           "token: NULL out is GAPI_EINVAL");
    gapi__token_result_clear(NULL);
}

/* ------------------------------------------------------------ ADC */

static char *g_saved_env[4];
static const char *const g_env_names[4] = {"GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG",
                                           "HOME", NULL};

static void env_set(const char *name, const char *value)
{
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

static int adc(char **path, char *tried, size_t tsize, char *err)
{
    err[0] = '\0';
    *path = (char *)"untouched";
    return gapi__adc_find(path, tried, tsize, err, 512);
}

static void test_adc(void)
{
    char home[300], cfg[300], well[400], cfg_file[400], key[400], tried[1024], err[512];
    char *path;
    int rc, i;

    snprintf(home, sizeof(home), "%s/home", g_tmp);
    snprintf(cfg, sizeof(cfg), "%s/cfg", g_tmp);
    snprintf(well, sizeof(well), "%s/.config/gcloud/application_default_credentials.json", home);
    snprintf(cfg_file, sizeof(cfg_file), "%s/application_default_credentials.json", cfg);
    snprintf(key, sizeof(key), "%s/key.json", g_tmp);
    mkdir(home, 0700);
    mkdir(cfg, 0700);
    write_file(key, S("{}"));

    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    unsetenv("CLOUDSDK_CONFIG");
    setenv("HOME", home, 1);
    rc = adc(&path, tried, sizeof(tried), err);
    ok(rc == 0 && path == NULL, "adc: nothing anywhere -> 0 and no path");
    {
        char want[600];
        snprintf(want, sizeof(want), "GOOGLE_APPLICATION_CREDENTIALS (unset), %s (not found)",
                 well);
        is_str(tried, want, "adc: tried lists the variable and the well-known file");
    }

    /* The well-known file under HOME. */
    snprintf(tried, sizeof(tried), "%s/.config", home);
    mkdir(tried, 0700);
    snprintf(tried, sizeof(tried), "%s/.config/gcloud", home);
    mkdir(tried, 0700);
    write_file(well, S("{}"));
    rc = adc(&path, tried, sizeof(tried), err);
    ok(rc == 0 && path && strcmp(path, well) == 0, "adc: $HOME/.config/gcloud file found");
    ok(has(tried, "(found)"), "adc: tried says found: %s", tried);
    if (rc == 0 && path)
        gapi__free(path);

    /* CLOUDSDK_CONFIG replaces the HOME location: its file missing means
     * nothing found, even with the HOME file present (google-auth). */
    setenv("CLOUDSDK_CONFIG", cfg, 1);
    rc = adc(&path, tried, sizeof(tried), err);
    ok(rc == 0 && path == NULL, "adc: CLOUDSDK_CONFIG without the file -> no path");
    ok(has(tried, cfg_file) && has(tried, "CLOUDSDK_CONFIG; not found") && !has(tried, well),
       "adc: tried names the CLOUDSDK_CONFIG file: %s", tried);
    write_file(cfg_file, S("{}"));
    rc = adc(&path, tried, sizeof(tried), err);
    ok(rc == 0 && path && strcmp(path, cfg_file) == 0, "adc: CLOUDSDK_CONFIG file found");
    if (rc == 0 && path)
        gapi__free(path);
    setenv("CLOUDSDK_CONFIG", "", 1);
    rc = adc(&path, tried, sizeof(tried), err);
    ok(rc == 0 && path && strcmp(path, well) == 0 && has(tried, "CLOUDSDK_CONFIG (empty, ignored)"),
       "adc: empty CLOUDSDK_CONFIG is ignored: %s", tried);
    if (rc == 0 && path)
        gapi__free(path);
    unsetenv("CLOUDSDK_CONFIG");

    /* GOOGLE_APPLICATION_CREDENTIALS wins, and fails hard when bad. */
    setenv("GOOGLE_APPLICATION_CREDENTIALS", key, 1);
    rc = adc(&path, tried, sizeof(tried), err);
    ok(rc == 0 && path && strcmp(path, key) == 0, "adc: GOOGLE_APPLICATION_CREDENTIALS first");
    if (rc == 0 && path)
        gapi__free(path);
    setenv("GOOGLE_APPLICATION_CREDENTIALS", "", 1);
    rc = adc(&path, tried, sizeof(tried), err);
    ok(rc == GAPI_ECREDENTIALS && has(err, "GOOGLE_APPLICATION_CREDENTIALS is set but empty") &&
           path == (char *)"untouched",
       "adc: empty variable -> GAPI_ECREDENTIALS: %s", err);
    snprintf(cfg_file, sizeof(cfg_file), "%s/nope.json", g_tmp);
    setenv("GOOGLE_APPLICATION_CREDENTIALS", cfg_file, 1);
    rc = adc(&path, tried, sizeof(tried), err);
    {
        char want[600];
        snprintf(want, sizeof(want), "GOOGLE_APPLICATION_CREDENTIALS=%s: %s", cfg_file,
                 strerror(ENOENT));
        ok(rc == GAPI_ECREDENTIALS && strcmp(err, want) == 0 && path == (char *)"untouched",
           "adc: missing file -> GAPI_ECREDENTIALS naming variable and path: %s", err);
    }
    setenv("GOOGLE_APPLICATION_CREDENTIALS", g_tmp, 1);
    rc = adc(&path, tried, sizeof(tried), err);
    ok(rc == GAPI_ECREDENTIALS && has(err, strerror(EISDIR)),
       "adc: a directory -> GAPI_ECREDENTIALS: %s", err);
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");

    /* The well-known path is a directory: skipped. */
    unlink(well);
    mkdir(well, 0700);
    rc = adc(&path, tried, sizeof(tried), err);
    ok(rc == 0 && path == NULL && has(tried, "(not a regular file)"),
       "adc: a directory at the well-known path is skipped: %s", tried);
    rmdir(well);

    /* HOME unset: the password database's home directory. */
    unsetenv("HOME");
    rc = adc(&path, tried, sizeof(tried), err);
    {
        struct passwd *pw = getpwuid(geteuid());
        if (pw && pw->pw_dir && pw->pw_dir[0]) {
            char want[600];
            snprintf(want, sizeof(want), "%s/.config/gcloud/application_default_credentials.json",
                     pw->pw_dir);
            ok(rc == 0 && has(tried, want), "adc: HOME unset -> passwd home: %s", tried);
        } else {
            ok(rc == 0 && path == NULL && has(tried, "HOME (unset"),
               "adc: HOME unset, no passwd entry: %s", tried);
        }
        if (rc == 0 && path)
            gapi__free(path);
    }
    setenv("HOME", home, 1);

    /* A small tried buffer is truncated and stays a C string. */
    memset(tried, 'Z', sizeof(tried));
    rc = adc(&path, tried, 12, err);
    ok(rc == 0 && strlen(tried) == 11 && tried[12] == 'Z', "adc: tried truncated to its size");
    rc = adc(&path, NULL, 0, err);
    ok(rc == 0 && path == NULL, "adc: tried may be NULL");
    is_int(gapi__adc_find(NULL, NULL, 0, err, sizeof(err)), GAPI_EINVAL,
           "adc: NULL path is GAPI_EINVAL");

    for (i = 0; g_env_names[i]; i++)
        env_set(g_env_names[i], g_saved_env[i]);
}

/* ------------------------------------------------------------ allocation failure */

static int sweep_bad; /* outcomes other than GAPI_ENOMEM-with-nothing-kept or success */
static char *g_sa_json, *g_au_json, *g_sa_path;

static int op_sa_parse(void)
{
    gapi__keyfile k, before;
    char err[256] = "";
    int rc;

    memset(&k, 0x3C, sizeof(k));
    before = k;
    rc = gapi__keyfile_parse(&k, g_sa_json, strlen(g_sa_json), err, sizeof(err));
    if (rc == GAPI_ENOMEM && (memcmp(&k, &before, sizeof(k)) != 0 || strcmp(err, "out of memory")))
        sweep_bad++;
    if (rc == 0)
        gapi__keyfile_clear(&k);
    return rc;
}

static int op_au_parse(void)
{
    gapi__keyfile k;
    char err[256] = "";
    int rc = gapi__keyfile_parse(&k, g_au_json, strlen(g_au_json), err, sizeof(err));

    if (rc == GAPI_ENOMEM && strcmp(err, "out of memory"))
        sweep_bad++;
    if (rc == 0)
        gapi__keyfile_clear(&k);
    return rc;
}

static int op_load(void)
{
    gapi__keyfile k;
    char err[600] = "";
    int rc = gapi__keyfile_load(&k, g_sa_path, err, sizeof(err));

    if (rc == 0)
        gapi__keyfile_clear(&k);
    return rc;
}

static int op_jwt(void)
{
    gapi__jwt_claims c = {"iss\"x", "sub", "aud", "scope \xc3\xa9", 1, 2};
    char *out = (char *)"untouched";
    int rc = gapi__jwt_sign(&out, g_key8, "kid", &c);

    if (rc == GAPI_ENOMEM && out != (char *)"untouched")
        sweep_bad++;
    if (rc == 0)
        gapi__free(out);
    return rc;
}

static int op_token_ok(void)
{
    static const char body[] = "{\"access_token\":\"" ACCESS_TOKEN "\",\"expires_in\":3599}";
    gapi__token_result t;
    char err[256];
    int rc = gapi__token_parse(&t, "token endpoint", 200, S(body), err, sizeof(err));

    if (rc == GAPI_ENOMEM && t.access_token != NULL)
        sweep_bad++;
    gapi__token_result_clear(&t);
    return rc;
}

static int op_token_err(void)
{
    static const char body[] = "{\"error\":\"invalid_grant\",\"error_description\":\"Bad.\"}";
    gapi__token_result t;
    char err[256];
    int rc = gapi__token_parse(&t, "token endpoint", 400, S(body), err, sizeof(err));

    gapi__token_result_clear(&t);
    return rc == GAPI_EAUTH ? 0 : rc;
}

static int op_adc(void)
{
    char *path = NULL, tried[512], err[256];
    int rc = gapi__adc_find(&path, tried, sizeof(tried), err, sizeof(err));

    if (rc == 0)
        gapi__free(path);
    return rc;
}

static int op_b64(void)
{
    gapi__buf b = GAPI__BUF_INIT;
    int rc = gapi__b64url_encode(&b, "hello world", 11);

    if (rc == 0)
        rc = gapi__b64url_decode(&b, "aGVsbG8gd29ybGQ", 15);
    gapi__buf_free(&b);
    return rc;
}

static void sweep(const char *name, int (*op)(void))
{
    long n;
    int enomem = 0, leaks = 0, other = 0, rc = -1;

    sweep_bad = 0;
    for (n = 0; n < 10000; n++) {
        long live0 = t_live;
        t_fail_after = n;
        rc = op();
        t_fail_after = -1;
        if (t_live != live0)
            leaks++;
        if (rc == GAPI_ENOMEM) {
            enomem++;
            continue;
        }
        if (rc != 0)
            other++;
        break;
    }
    ok(rc == 0 && other == 0 && enomem > 0 && sweep_bad == 0,
       "alloc sweep %s: %d failed allocations each gave GAPI_ENOMEM with outputs untouched, "
       "then success",
       name, enomem);
    is_int(leaks, 0, "alloc sweep %s: no allocation outlives a run", name);
}

static void test_alloc_sweeps(void)
{
    struct json_object *o;
    char home[300];

    if (!g_key8) {
        skip(1, "no A.2 key");
        return;
    }
    o = sa_obj(g_pem8);
    g_sa_json = dump(o);
    json_object_put(o);
    o = au_obj();
    g_au_json = dump(o);
    json_object_put(o);
    g_sa_path = malloc(strlen(g_tmp) + 16);
    sprintf(g_sa_path, "%s/sa.json", g_tmp);

    sweep("keyfile_parse(service_account)", op_sa_parse);
    sweep("keyfile_parse(authorized_user)", op_au_parse);
    sweep("keyfile_load", op_load);
    sweep("jwt_sign", op_jwt);
    sweep("token_parse(200)", op_token_ok);
    sweep("token_parse(400)", op_token_err);
    sweep("b64url", op_b64);
    snprintf(home, sizeof(home), "%s/home", g_tmp);
    setenv("HOME", home, 1);
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    unsetenv("CLOUDSDK_CONFIG");
    sweep("adc_find", op_adc);
    env_set("HOME", g_saved_env[2]);
}

/* ------------------------------------------------------------ secrets in freed memory */

static void test_cleansing(void)
{
    static const char body[] = "{\"access_token\":\"" ACCESS_TOKEN "\",\"expires_in\":3599}";
    struct json_object *o = NULL;
    gapi__token_result t;
    gapi__keyfile k;
    char err[256], line[65];
    const char *l2;
    size_t n;
    int parse_hits;

    if (!g_pem8 || !g_au_json) {
        skip(1, "no A.2 key");
        return;
    }
    /* gapi__json_cleanse zeroes every string value, nested ones too. */
    ok(gapi__json_parse(S("{\"a\":\"secret1\",\"b\":[\"secret2\",{\"c\":\"secret3\"}],\"n\":5}"), 0,
                        &o, NULL) == 0,
       "cleanse: document parses");
    gapi__json_cleanse(o);
    {
        struct json_object *b = json_object_object_get(o, "b");
        const char *a = json_object_get_string(json_object_object_get(o, "a"));
        const char *s2 = json_object_get_string(json_object_array_get_idx(b, 0));
        const char *s3 =
            json_object_get_string(json_object_object_get(json_object_array_get_idx(b, 1), "c"));
        ok(memcmp(a, "\0\0\0\0\0\0\0", 7) == 0 && memcmp(s2, "\0\0\0\0\0\0\0", 7) == 0 &&
               memcmp(s3, "\0\0\0\0\0\0\0", 7) == 0 &&
               json_object_get_int(json_object_object_get(o, "n")) == 5,
           "cleanse: nested strings zeroed, numbers kept");
    }
    json_object_put(o);

    secrets_watch(CLIENT_SECRET, REFRESH_TOKEN, NULL);
    if (gapi__keyfile_parse(&k, g_au_json, strlen(g_au_json), err, sizeof(err)) == 0)
        gapi__keyfile_clear(&k);
    ok(t_secret_hits == 0, "cleanse: authorized_user secrets are in no freed block (%s)",
       t_hit_what);

    secrets_watch(ACCESS_TOKEN, NULL, NULL);
    if (gapi__token_parse(&t, "token endpoint", 200, S(body), err, sizeof(err)) == 0)
        gapi__token_result_clear(&t);
    ok(t_secret_hits == 0, "cleanse: the access token is in no freed block (%s)", t_hit_what);

    /* A line of the key's base64 body: the PEM text reaches gapi memory only
     * through the JSON parser (its "\n" escapes are decoded into the
     * parser's scratch buffer) and keyfile_load's file buffer. */
    l2 = strchr(g_pem8, '\n');
    n = l2 ? strcspn(l2 + 1, "\n") : 0;
    snprintf(line, sizeof(line), "%.*s", (int)(n < 64 ? n : 64), l2 ? l2 + 1 : "");
    secrets_watch(line, NULL, NULL);
    if (gapi__keyfile_parse(&k, g_sa_json, strlen(g_sa_json), err, sizeof(err)) == 0)
        gapi__keyfile_clear(&k);
    parse_hits = t_secret_hits;
    ok(parse_hits == 0, "cleanse: no freed block holds the private key after keyfile_parse (%s)",
       t_hit_what);
    /* keyfile_load adds one block, the file's text: cleansed, it adds no
     * hit to those of the parse. */
    secrets_watch(line, NULL, NULL);
    if (gapi__keyfile_load(&k, g_sa_path, err, sizeof(err)) == 0)
        gapi__keyfile_clear(&k);
    is_int(t_secret_hits, parse_hits,
           "cleanse: keyfile_load's file buffer holds no private key text when freed");
    secrets_watch(NULL, NULL, NULL);
}

/* ------------------------------------------------------------ main */

static void rm_tree(const char *dir)
{
    char cmd[600];

    /* Everything below g_tmp was made by this program. */
    snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", dir, dir);
    if (system(cmd) != 0)
        diag("could not remove %s", dir);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");

    gapi_set_allocator(t_malloc, t_realloc, t_free);
    for (int i = 0; g_env_names[i]; i++) {
        const char *v = getenv(g_env_names[i]);
        g_saved_env[i] = v ? strdup(v) : NULL;
    }
    snprintf(g_tmp, sizeof(g_tmp), "%s/gapi-auth-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_tmp)) {
        ok(0, "mkdtemp %s: %s", g_tmp, strerror(errno));
        return tap_done();
    }

    test_b64url();
    test_rfc7515();
    test_jwt();
    if (g_key8) {
        make_test_keys();
        test_pem();
        test_keyfile();
        test_keyfile_load();
    }
    test_token();
    test_adc();
    test_alloc_sweeps();
    test_cleansing();

    EVP_PKEY_free(g_key8);
    EVP_PKEY_free(g_key1);
    EVP_PKEY_free(g_pub);
    free(g_pem8);
    free(g_pem1);
    free(g_ec_pem8);
    free(g_ec_pem_trad);
    free(g_enc_pem8);
    free(g_enc_pem1);
    free(g_short_pem);
    free(g_pub_pem);
    free(g_trunc_pem);
    free(g_corrupt_pem);
    free(g_sa_json);
    free(g_au_json);
    free(g_sa_path);
    for (int i = 0; g_env_names[i]; i++)
        free(g_saved_env[i]);
    rm_tree(g_tmp);
    is_int(t_live, 0, "every gapi allocation was freed");
    return tap_done();
}
