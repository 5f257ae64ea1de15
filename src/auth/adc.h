/*
 * Application Default Credentials: which credentials file to use, found the
 * way Google's client libraries find it (google-auth's _default.py), without
 * any network access. Pure apart from getenv, getpwuid_r and stat; reads no
 * file. Any thread may call it, but like every getenv caller it must not
 * race a setenv in another thread.
 */
#ifndef GAPI_AUTH_ADC_H
#define GAPI_AUTH_ADC_H

#include <stddef.h>

#define GAPI__ADC_FILE "application_default_credentials.json"

/* Looks, in order, at:
 *  1. $GOOGLE_APPLICATION_CREDENTIALS: when set it must name an existing,
 *     readable file that is not a directory; set but empty, missing or
 *     unreadable is GAPI_ECREDENTIALS naming the variable and the path (as
 *     google-auth, which fails here rather than looking further);
 *  2. $CLOUDSDK_CONFIG/application_default_credentials.json when
 *     CLOUDSDK_CONFIG is set and not empty, else
 *     $HOME/.config/gcloud/application_default_credentials.json (HOME from
 *     the environment, else the password database). A file there that does
 *     not exist, or is not a regular file, is skipped; a regular file is
 *     returned even if unreadable, so that loading it reports why.
 *
 * Returns 0 with *path (gapi__malloc; the caller frees it) the file to use,
 * or 0 with *path NULL when no file was found (the caller then tries the
 * metadata server); GAPI_ECREDENTIALS as above; GAPI_ENOMEM; GAPI_EINVAL
 * (path NULL). errbuf gets the reason of a failure. tried (if not NULL)
 * always gets a human-readable list of what was looked at, truncated to
 * tried_size, e.g. "GOOGLE_APPLICATION_CREDENTIALS (unset),
 * /home/u/.config/gcloud/application_default_credentials.json (not found)".
 * On failure *path is untouched. */
int gapi__adc_find(char **path, char *tried, size_t tried_size, char *errbuf, size_t errbuf_size);

#endif
