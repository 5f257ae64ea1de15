/*
 * Discovery service model: a Google discovery document turned into an
 * immutable, reference-counted tree of resources, methods and parameters
 * (the model behind gapi_service_*, gapi_method_* and gapi_param_* in
 * gapi.h). The call builder reads these structs directly.
 *
 * Invariants, relied on by every reader:
 *  - after gapi__service_load returns, nothing in a gapi_service changes
 *    except the reference count (atomic), so any thread may read it;
 *  - every string is NUL-terminated, contains no NUL and lives as long as
 *    the service (in its arena); equal strings read from the document
 *    share one copy, so within one service names, types and patterns can
 *    be compared by pointer;
 *  - optional strings are NULL when the document does not give them;
 *  - methods are stored depth-first in document order: the top-level
 *    methods, then each resource's own methods followed by its
 *    sub-resources;
 *  - a method's params are its parameterOrder entries first (in that
 *    order), then the rest in document order. Global (document-level)
 *    parameters are not copied into methods; lookups fall back to them,
 *    so a method's own parameter wins over a global one of the same name.
 *    (Python's client does the opposite: _fix_up_parameters copies the
 *    globals over the method's parameters. We let the method win because
 *    its declaration is the specific one: it may be a required or a path
 *    parameter, which a global query one would silently replace. No
 *    shared document has such a clash.)
 *  - schemas are kept as compact JSON text (no whitespace outside strings),
 *    parsed again on demand.
 */
#ifndef GAPI_DISCOVERY_DISCOVERY_H
#define GAPI_DISCOVERY_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "gapi.h"

/* Resources nested deeper than this are refused (real documents reach 7). */
#define GAPI__DISCOVERY_MAX_DEPTH 32

/* What "type" says, for validation without string compares. */
typedef enum gapi__param_kind {
    GAPI__PARAM_ANY = 0, /* "any", or no "type" given */
    GAPI__PARAM_STRING,
    GAPI__PARAM_INTEGER,
    GAPI__PARAM_NUMBER,
    GAPI__PARAM_BOOLEAN,
    GAPI__PARAM_ARRAY,
    GAPI__PARAM_OBJECT
} gapi__param_kind;

struct gapi_param {
    const char *name;
    const char *type;    /* as written ("string", "integer", ...); NULL if absent */
    const char *format;  /* "int64", "uint32", "google-fieldmask", ...; or NULL */
    const char *pattern; /* regex as written in the document, or NULL */
    const char *default_value;
    const char *minimum; /* decimal text as written, or NULL */
    const char *maximum;
    const char *const *enum_values; /* enum_count entries */
    uint32_t enum_count;
    uint8_t location; /* gapi_param_loc */
    uint8_t kind;     /* gapi__param_kind */
    uint8_t required;
    uint8_t repeated;
};

typedef struct gapi__media_upload {
    const char *const *accept; /* MIME patterns, accept_count entries */
    uint32_t accept_count;
    uint8_t simple_multipart; /* protocols.simple.multipart */
    uint8_t resumable_multipart;
    uint64_t max_size;          /* bytes; 0 when the document sets no limit */
    const char *simple_path;    /* protocols.simple.path, or NULL */
    const char *resumable_path; /* protocols.resumable.path, or NULL */
} gapi__media_upload;

struct gapi_method {
    const gapi_service *svc;
    const char *name; /* dotted path from the service root: "objects.insert" */
    const char *id;   /* the document's id: "storage.objects.insert" */
    const char *http_method;
    const char *path;      /* RFC 6570 template relative to rootUrl + servicePath */
    const char *flat_path; /* or NULL */
    const char *api_version;
    const char *request_ref; /* request.$ref, or NULL */
    const char *response_ref;
    const gapi_param *params; /* param_count entries, parameterOrder first */
    uint32_t param_count;
    uint32_t order_count; /* how many of params come from parameterOrder */
    const char *const *scopes;
    uint32_t scope_count;
    unsigned flags;                  /* GAPI_METHOD_* */
    const gapi__media_upload *media; /* NULL unless the document has mediaUpload */
    uint32_t resource;               /* index in svc->resources; UINT32_MAX at top level */
};

typedef struct gapi__resource {
    const char *name;      /* last component: "messages" */
    const char *full_name; /* dotted path: "users.messages" */
    uint32_t parent;       /* index in svc->resources; UINT32_MAX at top level */
    uint32_t first_method; /* this resource's own methods: [first, first + count) */
    uint32_t method_count;
} gapi__resource;

typedef struct gapi__schema {
    const char *name;
    size_t offset; /* of its compact JSON text in svc->schema_text */
    size_t len;
} gapi__schema;

/* Open-addressing hash index over an array of named items. Slots hold
 * (hash, index + 1); 0 marks an empty slot. */
typedef struct gapi__name_index {
    uint32_t mask;   /* capacity - 1; capacity is a power of two */
    uint32_t *slots; /* 2 * capacity words: hash, index + 1 */
} gapi__name_index;

struct gapi__arena_chunk;

struct gapi_service {
    unsigned refs; /* atomic */

    const char *name;
    const char *version;
    const char *title;
    const char *root_url;      /* after endpoint override / universe domain */
    const char *service_path;  /* "" when absent */
    const char *batch_path;    /* as written, or NULL */
    const char *batch_url;     /* root_url joined with batch_path, or NULL */
    const char *mtls_root_url; /* or NULL */
    const char *universe_domain;

    gapi_param *params; /* global parameters, document order */
    uint32_t param_count;

    gapi_method *methods;
    uint32_t method_count;
    gapi__resource *resources;
    uint32_t resource_count;

    gapi__schema *schemas;
    uint32_t schema_count;
    char *schema_text; /* every schema's compact JSON, back to back */
    size_t schema_text_len;

    gapi__name_index by_name; /* methods by dotted path */
    gapi__name_index by_id;   /* methods by id */
    gapi__name_index schema_index;

    struct gapi__arena_chunk *arena;
};

/* 32-bit FNV-1a of s[0..len). */
uint32_t gapi__discovery_hash(const char *s, size_t len);

/* Index of the item whose key is name, or -1. keys(items, i) returns item
 * i's key. */
long gapi__name_index_find(const gapi__name_index *ix, const char *name,
                           const char *(*key)(const void *items, uint32_t i), const void *items);

/* Key readers for the three indexes (methods by dotted path, methods by
 * id, schemas by name): shared by the builder and the lookups. */
const char *gapi__method_name_key(const void *items, uint32_t i);
const char *gapi__method_id_key(const void *items, uint32_t i);
const char *gapi__schema_key(const void *items, uint32_t i);

/* A method's own parameter, else the service's global one of that name. */
const gapi_param *gapi__method_param(const gapi_method *m, const char *name);

/* Checks opts (NULL = defaults) and resolves the endpoint override (NULL
 * when none) and the universe domain (option, else
 * $GOOGLE_CLOUD_UNIVERSE_DOMAIN, else "googleapis.com"). Returns 0 or
 * GAPI_EINVAL with a message in errbuf. */
int gapi__service_options(const gapi_service_options *opts, const char **endpoint,
                          const char **universe, char *errbuf, size_t errbuf_size);

/* Frees everything a service holds (refs ignored). NULL is a no-op. */
void gapi__service_destroy(gapi_service *svc);

/* gapi_service_from_json without the public argument checks: builds a
 * service from doc[0..len) (not referenced after the call). Returns 0,
 * GAPI_EINVAL (options), GAPI_EDISCOVERY or GAPI_ENOMEM, with a message in
 * errbuf; *out untouched on failure. This is the entry point for a document
 * fetched from the network or read from a cache. */
int gapi__service_load(gapi_service **out, const char *doc, size_t len,
                       const gapi_service_options *opts, char *errbuf, size_t errbuf_size);

#endif
