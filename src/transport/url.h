/*
 * Absolute http(s) URL split into what the transport needs. Strict: no
 * user-info, no fragment, no control characters or spaces anywhere, so
 * nothing from a URL can break the request line or the Host header.
 */
#ifndef GAPI_TRANSPORT_URL_H
#define GAPI_TRANSPORT_URL_H

typedef struct gapi__url {
    int tls;        /* https */
    int host_is_ip; /* IPv4 or IPv6 literal */
    unsigned short port;
    char *host;      /* lower-case, IPv6 without brackets */
    char *target;    /* path + query, at least "/" */
    char *authority; /* Host header value: host[:port], [v6][:port] */
    char *origin;    /* "https://host:port": pool key */
} gapi__url;

/* Returns 0, or GAPI_EINVAL with *why set to a static reason, or GAPI_ENOMEM.
 * On failure u is left zeroed. */
int gapi__url_parse(gapi__url *u, const char *url, const char **why);
void gapi__url_free(gapi__url *u);

#endif
