/*
 * Allocation through a replaceable hook, so tests can fail the Nth
 * allocation (as hiredis, jansson and sqlite do). Every allocation in the
 * library goes through these; never call malloc/free directly.
 */
#ifndef GAPI_COMMON_ALLOC_H
#define GAPI_COMMON_ALLOC_H

#include <stddef.h>

void *gapi__malloc(size_t n);
void *gapi__calloc(size_t nmemb, size_t size);
void *gapi__realloc(void *p, size_t n);
void gapi__free(void *p);
char *gapi__strdup(const char *s);
char *gapi__strndup(const char *s, size_t n);

#endif
