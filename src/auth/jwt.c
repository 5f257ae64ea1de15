/*
 * RS256 JWTs and base64url; see jwt.h. Invariants: every function leaves
 * its output unchanged on failure (space is reserved before anything is
 * written), temporaries that held signature bytes are cleansed before they
 * are freed, and OpenSSL's thread-local error queue is emptied after every
 * failed OpenSSL call so it cannot surface later in an unrelated TLS error.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "gapi.h"
#include "common/alloc.h"
#include "common/error.h"
#include "auth/jwt.h"

/* A PEM key file is a few KiB; anything far larger is not one, and BIO
 * lengths are ints. */
#define PEM_MAX (1u << 20)
/* RFC 7518 section 3.3: "A key of size 2048 bits or larger MUST be used". */
#define RSA_MIN_BITS 2048

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Length of the unpadded base64url text of n bytes; 0 when it would not fit
 * a size_t (n is then far beyond anything allocatable). */
static size_t b64url_len(size_t n)
{
    if (n / 3 > ((size_t)-1 - 3) / 4)
        return 0;
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

int gapi__b64url_encode(gapi__buf *out, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t n = b64url_len(len), i;
    char *o;

    if (len && !n)
        return GAPI_ENOMEM;
    if (gapi__buf_reserve(out, n) != GAPI_OK)
        return GAPI_ENOMEM;
    o = out->data + out->len;
    for (i = 0; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = b64url_alphabet[v >> 18];
        *o++ = b64url_alphabet[v >> 12 & 63];
        *o++ = b64url_alphabet[v >> 6 & 63];
        *o++ = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        *o++ = b64url_alphabet[v >> 18];
        *o++ = b64url_alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        *o++ = b64url_alphabet[v >> 18];
        *o++ = b64url_alphabet[v >> 12 & 63];
        *o++ = b64url_alphabet[v >> 6 & 63];
    }
    out->len += n;
    out->data[out->len] = '\0';
    return GAPI_OK;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int gapi__b64url_decode(gapi__buf *out, const char *s, size_t len)
{
    size_t n = len, i, k = 0;
    unsigned acc = 0;
    char *o;
    int v, bits = 0;

    if (!s && len)
        return GAPI_EINVAL;
    /* Padding: at most two '=', and then the whole text is whole quads. */
    while (n && s[n - 1] == '=' && len - n < 2)
        n--;
    if (n != len && len % 4 != 0)
        return GAPI_EINVAL;
    if (n % 4 == 1)
        return GAPI_EINVAL;
    if (gapi__buf_reserve(out, n / 4 * 3 + 2) != GAPI_OK)
        return GAPI_ENOMEM;
    o = out->data + out->len;
    for (i = 0; i < n; i++) {
        if ((v = b64url_value((unsigned char)s[i])) < 0)
            goto bad;
        acc = (acc << 6 | (unsigned)v) & 0xFFFFFF;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (char)(acc >> bits & 0xFF);
        }
    }
    /* The 2 or 4 bits left over must be zero (RFC 4648 section 3.5). */
    if (acc & ((1u << bits) - 1))
        goto bad;
    out->len += k;
    out->data[out->len] = '\0';
    return GAPI_OK;

bad:
    /* Bytes were written past the end: put the terminator back. */
    out->data[out->len] = '\0';
    return GAPI_EINVAL;
}

/* ------------------------------------------------------------ PEM keys */

static const char *find_bytes(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle), i;

    for (i = 0; i + m <= n; i++)
        if (s[i] == needle[0] && memcmp(s + i, needle, m) == 0)
            return s + i;
    return NULL;
}

/* OpenSSL must never ask a terminal for a passphrase: refuse every request. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* The reason of OpenSSL's most recent error, for a message (static text,
 * never key material); empties the queue. */
static const char *openssl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    snprintf(buf, size, "%s", r ? r : "unknown error");
    ERR_clear_error();
    return buf;
}

int gapi__rsa_key_from_pem(EVP_PKEY **out, const char *pem, size_t len, char *errbuf,
                           size_t errbuf_size)
{
    static const char begin[] = "-----BEGIN ", dashes[] = "-----";
    const char *b, *label, *label_end, *end_line, *block_end, *proc;
    char end_marker[96], why[128];
    size_t label_len;
    EVP_PKEY *key;
    BIO *bio;
    int bits;

    if (!out || (!pem && len)) {
        gapi__errbuf_printf(errbuf, errbuf_size, "private key: %s is NULL", out ? "pem" : "out");
        return GAPI_EINVAL;
    }
    if (len > PEM_MAX) {
        gapi__errbuf_printf(errbuf, errbuf_size, "PEM text of %zu bytes is over the %u limit", len,
                            PEM_MAX);
        return GAPI_ECREDENTIALS;
    }
    if (!pem || (b = find_bytes(pem, len, begin)) == NULL) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "no PEM block (expected \"-----BEGIN PRIVATE KEY-----\")");
        return GAPI_ECREDENTIALS;
    }
    label = b + sizeof(begin) - 1;
    label_end = find_bytes(label, len - (size_t)(label - pem), dashes);
    label_len = label_end ? (size_t)(label_end - label) : 0;
    if (!label_end || label_len == 0 || label_len > 64 || memchr(label, '\n', label_len) != NULL) {
        gapi__errbuf_printf(errbuf, errbuf_size, "malformed PEM BEGIN line");
        return GAPI_ECREDENTIALS;
    }
    if (label_len == 21 && memcmp(label, "ENCRYPTED PRIVATE KEY", 21) == 0) {
        gapi__errbuf_printf(
            errbuf, errbuf_size,
            "PEM block \"ENCRYPTED PRIVATE KEY\": encrypted keys are not supported");
        return GAPI_ECREDENTIALS;
    }
    if (!(label_len == 11 && memcmp(label, "PRIVATE KEY", 11) == 0) &&
        !(label_len == 15 && memcmp(label, "RSA PRIVATE KEY", 15) == 0)) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "PEM block \"%.*s\" is not an RSA private key (expected \"PRIVATE "
                            "KEY\" or \"RSA PRIVATE KEY\")",
                            (int)label_len, label);
        return GAPI_ECREDENTIALS;
    }
    snprintf(end_marker, sizeof(end_marker), "-----END %.*s-----", (int)label_len, label);
    end_line = find_bytes(label_end, len - (size_t)(label_end - pem), end_marker);
    if (!end_line) {
        gapi__errbuf_printf(errbuf, errbuf_size, "PEM block \"%.*s\" has no END line (truncated?)",
                            (int)label_len, label);
        return GAPI_ECREDENTIALS;
    }
    block_end = end_line + strlen(end_marker);
    /* A PKCS#1 key with RFC 1421 headers: "Proc-Type: 4,ENCRYPTED". Base64
     * has no ':' so the header name cannot occur in the key's body. */
    proc = find_bytes(b, (size_t)(end_line - b), "Proc-Type:");
    if (proc) {
        const char *eol = memchr(proc, '\n', (size_t)(end_line - proc));
        if (find_bytes(proc, eol ? (size_t)(eol - proc) : (size_t)(end_line - proc), "ENCRYPTED")) {
            gapi__errbuf_printf(errbuf, errbuf_size,
                                "PEM block \"%.*s\" is encrypted; encrypted keys are not supported",
                                (int)label_len, label);
            return GAPI_ECREDENTIALS;
        }
    }

    /* Only the one block goes to OpenSSL, so the block checked above is the
     * block decoded. A read-only memory BIO makes no copy of the key text. */
    if ((bio = BIO_new_mem_buf(b, (int)(block_end - b))) == NULL) {
        ERR_clear_error();
        gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
        return GAPI_ENOMEM;
    }
    key = PEM_read_bio_PrivateKey_ex(bio, NULL, no_password, NULL, NULL, NULL);
    BIO_free(bio);
    if (!key) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "PEM block \"%.*s\" does not decode to a key (OpenSSL: %s)",
                            (int)label_len, label, openssl_reason(why, sizeof(why)));
        return GAPI_ECREDENTIALS;
    }
    if (!EVP_PKEY_is_a(key, "RSA")) {
        const char *t = EVP_PKEY_get0_type_name(key);
        gapi__errbuf_printf(errbuf, errbuf_size, "not an RSA key (%s); RS256 needs RSA",
                            t ? t : "unknown type");
        EVP_PKEY_free(key);
        ERR_clear_error();
        return GAPI_ECREDENTIALS;
    }
    if ((bits = EVP_PKEY_get_bits(key)) < RSA_MIN_BITS) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "RSA key of %d bits; RS256 needs at least %d (RFC 7518 section 3.3)",
                            bits, RSA_MIN_BITS);
        EVP_PKEY_free(key);
        ERR_clear_error();
        return GAPI_ECREDENTIALS;
    }
    *out = key;
    return GAPI_OK;
}

/* ------------------------------------------------------------ signing */

int gapi__rs256_sign_b64url(gapi__buf *out, EVP_PKEY *key, const void *input, size_t len)
{
    EVP_MD_CTX *ctx;
    unsigned char *sig;
    size_t siglen;
    int size, rc;

    if (!out || !key || (!input && len) || !EVP_PKEY_is_a(key, "RSA"))
        return GAPI_EINVAL;
    if ((size = EVP_PKEY_get_size(key)) <= 0)
        return GAPI_ECREDENTIALS;
    if ((sig = gapi__malloc((size_t)size)) == NULL)
        return GAPI_ENOMEM;
    siglen = (size_t)size;
    /* The default padding of an RSA key in EVP_DigestSign is PKCS#1 v1.5. */
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, input ? input : (const void *)"", len) != 1) {
        rc = ctx ? GAPI_ECREDENTIALS : GAPI_ENOMEM;
        ERR_clear_error();
    } else {
        rc = gapi__b64url_encode(out, sig, siglen);
    }
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(sig, (size_t)size);
    gapi__free(sig);
    return rc;
}

/* Length of the valid UTF-8 sequence at s[0..n) (lead byte >= 0x80), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k, i;

    if (c < 0xC2 || c > 0xF4)
        return 0;
    k = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (n < k)
        return 0;
    for (i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return k;
}

/* Appends "key":"value" (with a leading comma unless first). */
static int json_member(gapi__buf *b, int first, const char *key, const char *val)
{
    const unsigned char *s = (const unsigned char *)val;
    size_t n = strlen(val), i = 0, run, k;
    const char *esc;
    char u[8];

    if (gapi__buf_printf(b, "%s\"%s\":\"", first ? "" : ",", key) != GAPI_OK)
        return GAPI_ENOMEM;
    while (i < n) {
        for (run = i;
             run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\';)
            run++;
        if (run > i && gapi__buf_append(b, s + i, run - i) != GAPI_OK)
            return GAPI_ENOMEM;
        i = run;
        if (i == n)
            break;
        if (s[i] >= 0x80) {
            if ((k = utf8_len(s + i, n - i)) == 0)
                return GAPI_EINVAL;
            if (gapi__buf_append(b, s + i, k) != GAPI_OK)
                return GAPI_ENOMEM;
            i += k;
            continue;
        }
        switch (s[i]) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            snprintf(u, sizeof(u), "\\u%04x", s[i]);
            esc = u;
        }
        if (gapi__buf_puts(b, esc) != GAPI_OK)
            return GAPI_ENOMEM;
        i++;
    }
    return gapi__buf_append(b, "\"", 1);
}

int gapi__jwt_sign(char **out, EVP_PKEY *key, const char *kid, const gapi__jwt_claims *c)
{
    gapi__buf hdr = GAPI__BUF_INIT, cl = GAPI__BUF_INIT, res = GAPI__BUF_INIT;
    const char *names[4] = {"iss", "sub", "aud", "scope"};
    const char *vals[4];
    size_t total, hlen, clen, slen;
    int first = 1, rc, i, size;

    if (!out || !key || !c || !EVP_PKEY_is_a(key, "RSA"))
        return GAPI_EINVAL;
    if ((size = EVP_PKEY_get_size(key)) <= 0)
        return GAPI_ECREDENTIALS;
    vals[0] = c->iss;
    vals[1] = c->sub;
    vals[2] = c->aud;
    vals[3] = c->scope;

    rc = gapi__buf_puts(&hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\"");
    if (rc == GAPI_OK && kid)
        rc = json_member(&hdr, 0, "kid", kid);
    if (rc == GAPI_OK)
        rc = gapi__buf_puts(&hdr, "}");
    if (rc == GAPI_OK)
        rc = gapi__buf_puts(&cl, "{");
    for (i = 0; i < 4 && rc == GAPI_OK; i++) {
        if (vals[i]) {
            rc = json_member(&cl, first, names[i], vals[i]);
            first = 0;
        }
    }
    if (rc == GAPI_OK)
        rc =
            gapi__buf_printf(&cl, "%s\"iat\":%lld,\"exp\":%lld}", first ? "" : ",", c->iat, c->exp);
    if (rc != GAPI_OK)
        goto done;

    /* One allocation of the final size: appends never reallocate, so no
     * partial copy of the assertion is left behind in freed memory. */
    hlen = b64url_len(hdr.len);
    clen = b64url_len(cl.len);
    slen = b64url_len((size_t)size);
    total = hlen + 1 + clen + 1 + slen;
    if ((rc = gapi__buf_reserve(&res, total)) != GAPI_OK ||
        (rc = gapi__b64url_encode(&res, hdr.data, hdr.len)) != GAPI_OK ||
        (rc = gapi__buf_append(&res, ".", 1)) != GAPI_OK ||
        (rc = gapi__b64url_encode(&res, cl.data, cl.len)) != GAPI_OK)
        goto done;
    /* The signature covers the ASCII text b64url(header) "." b64url(claims). */
    if ((rc = gapi__buf_append(&res, ".", 1)) != GAPI_OK ||
        (rc = gapi__rs256_sign_b64url(&res, key, res.data, res.len - 1)) != GAPI_OK)
        goto done;
    *out = res.data;
    res.data = NULL;

done:
    gapi__buf_free(&hdr);
    gapi__buf_free(&cl);
    if (res.data)
        OPENSSL_cleanse(res.data, res.cap);
    gapi__buf_free(&res);
    return rc;
}
