/*
 * The credentials object (immutable once made; see auth.h). Shared by
 * creds.c, which builds it, and cache.c, which fetches its tokens.
 */
#ifndef GAPI_AUTH_CREDS_H
#define GAPI_AUTH_CREDS_H

#include "gapi.h"
#include "auth/keyfile.h"

typedef enum gapi__cred_kind {
    GAPI__CR_API_KEY = 1,
    GAPI__CR_ACCESS_TOKEN,
    GAPI__CR_SERVICE_ACCOUNT,
    GAPI__CR_AUTHORIZED_USER,
    GAPI__CR_METADATA,
    GAPI__CR_TOKEN_SOURCE
} gapi__cred_kind;

struct gapi_credentials {
    int refs; /* atomic */
    gapi__cred_kind kind;
    unsigned flags;
    char *static_hdrs; /* header lines sent as they are (cleansed when freed) */
    size_t static_len;
    char *key_param;  /* "key=ENCODED" for GAPI_CREDENTIALS_KEY_IN_QUERY */
    gapi__keyfile kf; /* service account, authorized user */
    int self_signed;  /* service account signs its own JWTs */
    char *scopes;     /* NULL: none asked for (metadata server) */
    char *subject;
    char *token_uri;    /* token endpoint (service account, authorized user) */
    char *metadata_url; /* metadata server's token URL */
    char *adc_tried;    /* made by gapi_credentials_default without a file: what was tried */
    gapi_retry_policy token_retry;
    gapi_token_fetch_cb fetch;
    void *fetch_arg;
};

#endif
