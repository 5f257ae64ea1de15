/*
 * Minimal TAP producer for the test programs (run by Automake's
 * tap-driver.sh). Header-only: each test program includes it once.
 *
 *   ok(cond, "fmt", ...)      one test point
 *   is_int(got, want, "...")  integer comparison with a diagnostic
 *   is_str(got, want, "...")  string comparison (NULL-safe)
 *   skip(n, "why")            n skipped points
 *   diag("...")               comment line (# ...)
 *   return tap_done();        prints the plan "1..N", exit status
 *
 * tap_shared_path("discovery/x.json") finds ../shared data: $GAPI_SHARED_DIR,
 * else $(top_srcdir)/../shared. Returns NULL when absent; under CI=true a
 * missing file is a failed test point instead of a skip.
 */
#ifndef GAPI_TEST_TAP_H
#define GAPI_TEST_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tap_n;
static int tap_failed;

__attribute__((format(printf, 2, 0))) static void tap_vpoint(int pass, const char *fmt, va_list ap)
{
    tap_n++;
    if (!pass)
        tap_failed++;
    printf("%s %d - ", pass ? "ok" : "not ok", tap_n);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
}

__attribute__((format(printf, 2, 3), unused)) static int ok(int pass, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_vpoint(pass, fmt, ap);
    va_end(ap);
    return pass;
}

__attribute__((format(printf, 1, 2), unused)) static void diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

#define is_int(got, want, ...)                                                                     \
    do {                                                                                           \
        long long tap_g_ = (long long)(got), tap_w_ = (long long)(want);                           \
        if (!ok(tap_g_ == tap_w_, __VA_ARGS__))                                                    \
            diag("  got %lld, want %lld (%s:%d)", tap_g_, tap_w_, __FILE__, __LINE__);             \
    } while (0)

#define is_str(got, want, ...)                                                                     \
    do {                                                                                           \
        const char *tap_g_ = (got), *tap_w_ = (want);                                              \
        int tap_p_ = (tap_g_ && tap_w_) ? strcmp(tap_g_, tap_w_) == 0 : tap_g_ == tap_w_;          \
        if (!ok(tap_p_, __VA_ARGS__))                                                              \
            diag("  got \"%s\", want \"%s\" (%s:%d)", tap_g_ ? tap_g_ : "(null)",                  \
                 tap_w_ ? tap_w_ : "(null)", __FILE__, __LINE__);                                  \
    } while (0)

__attribute__((unused)) static void skip(int n, const char *why)
{
    while (n-- > 0) {
        tap_n++;
        printf("ok %d # SKIP %s\n", tap_n, why);
    }
    fflush(stdout);
}

__attribute__((unused)) static int tap_done(void)
{
    printf("1..%d\n", tap_n);
    fflush(stdout);
    return tap_failed ? 1 : 0;
}

__attribute__((unused)) static int tap_in_ci(void)
{
    const char *ci = getenv("CI");
    return ci && strcmp(ci, "true") == 0;
}

/* Returns a malloc'd path to ../shared/<rel>, or NULL if it does not exist.
 * When NULL is returned, a SKIP point (outside CI) or a failed point (CI) has
 * already been printed. */
__attribute__((unused)) static char *tap_shared_path(const char *rel)
{
    const char *dir = getenv("GAPI_SHARED_DIR");
    char *p;
    size_t n;

    if (!dir || !*dir)
        dir = "../shared";
    n = strlen(dir) + strlen(rel) + 2;
    p = malloc(n);
    if (!p)
        abort();
    snprintf(p, n, "%s/%s", dir, rel);
    if (access(p, R_OK) == 0)
        return p;
    if (tap_in_ci())
        ok(0, "shared data %s present (CI=true)", p);
    else
        skip(1, "shared data not found (set GAPI_SHARED_DIR)");
    free(p);
    return NULL;
}

#endif
