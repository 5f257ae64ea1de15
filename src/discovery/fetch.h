/*
 * Loading discovery documents from the network (gapi_service_fetch and
 * gapi_service_fetch_sync in gapi.h), with an optional on-disk cache.
 *
 * The pieces below are the pure parts of it (no client, no event loop),
 * exposed for the tests: name checks, URL templates, cache file names and
 * the cache's read and write.
 */
#ifndef GAPI_DISCOVERY_FETCH_H
#define GAPI_DISCOVERY_FETCH_H

#include <stddef.h>

#include "gapi.h"

/* The longest API name or version accepted (real ones stay under 40). */
#define GAPI__FETCH_NAME_MAX 100

/* Checks an API name or version: 1 to GAPI__FETCH_NAME_MAX characters
 * from [A-Za-z0-9._-], not starting with '.', no "..". Such a name is
 * unreserved in a URL and safe in a file name. what names it in the
 * message ("api", "version"). Returns 0 or GAPI_EINVAL. */
int gapi__fetch_check_name(const char *what, const char *s, char *errbuf, size_t errbuf_size);

/* Expands tmpl, replacing "{api}" with api and "{version}" or
 * "{apiVersion}" with version (both already checked), into a new
 * gapi__malloc'd string. Any other '{' or '}' is refused. what names the
 * template in the message. Returns 0, GAPI_EINVAL or GAPI_ENOMEM. */
int gapi__fetch_expand(char **out, const char *what, const char *tmpl, const char *api,
                       const char *version, char *errbuf, size_t errbuf_size);

/* The URLs a fetch tries: urls[0], then urls[1] (NULL when there is no
 * fallback), from opts (NULL = defaults) and the resolved universe domain.
 * Each is checked to be an absolute http(s) URL. On failure nothing is
 * allocated. Returns 0, GAPI_EINVAL or GAPI_ENOMEM. */
int gapi__fetch_urls(char *urls[2], const gapi_service_fetch_options *opts, const char *api,
                     const char *version, const char *universe, char *errbuf, size_t errbuf_size);

/* The cache file of (api, version, urls): "DIR/API.VERSION.HASH.json", HASH
 * being 32 hex digits of SHA-256 over api, version and both URLs, so two
 * deployments (or templates) never share an entry. gapi__malloc'd; NULL when
 * out of memory. */
char *gapi__fetch_cache_path(const char *dir, const char *api, const char *version,
                             const char *const urls[2]);

/* Reads a cache entry if it can be trusted: a regular file (not a
 * symlink), owned by this user, not writable by group or others, at most
 * max_bytes long, modified less than max_age_s seconds ago. Returns 0
 * with the bytes in *data (gapi__malloc'd) and *len; 1 when there is no
 * usable entry (why says which rule failed, for diagnostics); GAPI_ENOMEM. */
int gapi__fetch_cache_read(const char *path, unsigned max_age_s, size_t max_bytes, char **data,
                           size_t *len, char *why, size_t why_size);

/* Writes data as the entry path in dir, atomically: a temporary file made
 * with mkstemp in dir (mode 0600), written, fsync'd, renamed over path,
 * then dir fsync'd. dir is made (0700) when missing. On failure nothing is
 * left behind and errbuf says what failed. Returns 0, GAPI_EINVAL (an I/O
 * error) or GAPI_ENOMEM. */
int gapi__fetch_cache_write(const char *dir, const char *path, const char *data, size_t len,
                            char *errbuf, size_t errbuf_size);

#endif
