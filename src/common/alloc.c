/* Allocator hook; see alloc.h. */
#include <stdlib.h>
#include <string.h>

#include "gapi.h"
#include "common/alloc.h"

static void *(*g_malloc)(size_t) = malloc;
static void *(*g_realloc)(void *, size_t) = realloc;
static void (*g_free)(void *) = free;

int gapi_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                       void (*free_fn)(void *))
{
    if (!malloc_fn || !realloc_fn || !free_fn)
        return GAPI_EINVAL;
    g_malloc = malloc_fn;
    g_realloc = realloc_fn;
    g_free = free_fn;
    return GAPI_OK;
}

void *gapi__malloc(size_t n)
{
    return g_malloc(n ? n : 1);
}

void *gapi__calloc(size_t nmemb, size_t size)
{
    void *p;
    if (size && nmemb > (size_t)-1 / size)
        return NULL;
    p = gapi__malloc(nmemb * size);
    if (p)
        memset(p, 0, nmemb * size);
    return p;
}

void *gapi__realloc(void *p, size_t n)
{
    return g_realloc(p, n ? n : 1);
}

void gapi__free(void *p)
{
    if (p)
        g_free(p);
}

char *gapi__strndup(const char *s, size_t n)
{
    char *d = gapi__malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *gapi__strdup(const char *s)
{
    return gapi__strndup(s, strlen(s));
}
