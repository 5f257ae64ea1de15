/*
 * Shared by the libFuzzer harnesses. A harness asserts invariants with
 * CHECK: a violation prints what failed and aborts, which libFuzzer reports
 * as a crash and saves the input (see fuzz/run.sh).
 */
#ifndef GAPI_FUZZ_FUZZ_H
#define GAPI_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* FNV-1a: a data-derived number for split points and parameters, so the
 * same input always makes the same choices. */
static inline uint64_t fuzz_hash(const uint8_t *data, size_t size)
{
    uint64_t h = 1469598103934665603ull;
    size_t i;

    for (i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    return h;
}

/* A small deterministic generator (xorshift64*) seeded from the input. */
static inline uint64_t fuzz_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* An allocator that fails once `fuzz_alloc_budget` allocations have been
 * made (installed with gapi_set_allocator around one call), so a harness
 * can check the GAPI_ENOMEM paths: the result, the rollback, and (through
 * LeakSanitizer) that nothing leaks. */
static long fuzz_alloc_budget = -1;

static inline void *fuzz_malloc(size_t n)
{
    if (fuzz_alloc_budget == 0)
        return NULL;
    if (fuzz_alloc_budget > 0)
        fuzz_alloc_budget--;
    return malloc(n);
}

static inline void *fuzz_realloc(void *p, size_t n)
{
    if (fuzz_alloc_budget == 0)
        return NULL;
    if (fuzz_alloc_budget > 0)
        fuzz_alloc_budget--;
    return realloc(p, n);
}

static inline void fuzz_fail_after(long n)
{
    fuzz_alloc_budget = n;
    gapi_set_allocator(fuzz_malloc, fuzz_realloc, free);
}

static inline void fuzz_alloc_restore(void)
{
    gapi_set_allocator(malloc, realloc, free);
    fuzz_alloc_budget = -1;
}

#endif
