/*
 * The public face of the service model: loading from memory or a file,
 * references, lookups and accessors (the model is built in discovery.c).
 *
 * Nothing here writes to a built service except the reference count,
 * which is atomic; every other function only reads, so all of them may be
 * called from any thread at any time while a reference is held.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "common/error.h"
#include "common/alloc.h"
#include "discovery/discovery.h"
#include "json/parse.h"

/* Documents bigger than this are refused by gapi_service_from_file
 * (compute v1, the largest Google publishes, is 5 MB). */
#define MAX_FILE_BYTES ((size_t)256 * 1024 * 1024)

int gapi_service_from_json(gapi_service **out, const char *doc, size_t len,
                           const gapi_service_options *opts, char *errbuf, size_t errbuf_size)
{
    if (!out || !doc) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "gapi_service_from_json: out and doc are required");
        return GAPI_EINVAL;
    }
    return gapi__service_load(out, doc, len, opts, errbuf, errbuf_size);
}

/* The whole file in a gapi__malloc'd buffer. */
static int read_file(const char *path, char **data, size_t *len, char *errbuf, size_t errbuf_size)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 64 * 1024, n = 0, got;
    char *buf = NULL, *nb;

    if (!f)
        goto io_error;
    for (;;) {
        if (n == cap || !buf) {
            if (buf)
                cap *= 2;
            if (cap > MAX_FILE_BYTES + 1) {
                if (errbuf && errbuf_size)
                    snprintf(errbuf, errbuf_size, "%s: bigger than %zu bytes", path,
                             MAX_FILE_BYTES);
                gapi__free(buf);
                fclose(f);
                return GAPI_EINVAL;
            }
            if (!(nb = gapi__realloc(buf, cap))) {
                gapi__free(buf);
                fclose(f);
                gapi__errbuf_printf(errbuf, errbuf_size, "out of memory");
                return GAPI_ENOMEM;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        gapi__free(buf);
        goto io_error;
    }
    fclose(f);
    *data = buf;
    *len = n;
    return 0;

io_error:
    if (errbuf && errbuf_size)
        snprintf(errbuf, errbuf_size, "%s: %s", path, strerror(errno));
    if (f)
        fclose(f);
    return GAPI_EINVAL;
}

int gapi_service_from_file(gapi_service **out, const char *path, const gapi_service_options *opts,
                           char *errbuf, size_t errbuf_size)
{
    const char *endpoint, *universe;
    char *data;
    size_t len;
    int rc;

    if (!out || !path) {
        gapi__errbuf_printf(errbuf, errbuf_size,
                            "gapi_service_from_file: out and path are required");
        return GAPI_EINVAL;
    }
    if ((rc = gapi__service_options(opts, &endpoint, &universe, errbuf, errbuf_size)) != 0)
        return rc;
    if ((rc = read_file(path, &data, &len, errbuf, errbuf_size)) != 0)
        return rc;
    rc = gapi_service_from_json(out, data, len, opts, errbuf, errbuf_size);
    gapi__free(data);
    return rc;
}

gapi_service *gapi_service_ref(gapi_service *svc)
{
    if (svc)
        __atomic_add_fetch(&svc->refs, 1, __ATOMIC_RELAXED);
    return svc;
}

void gapi_service_unref(gapi_service *svc)
{
    /* Release so this thread's reads happen before the free; acquire so
     * the freeing thread sees every other thread's reads done. */
    if (svc && __atomic_sub_fetch(&svc->refs, 1, __ATOMIC_ACQ_REL) == 0)
        gapi__service_destroy(svc);
}

/* ---------------------------------------------------------------- service fields */

#define FIELD(fn, type, field)                                                                     \
    const char *fn(const type *x)                                                                  \
    {                                                                                              \
        return x ? x->field : NULL;                                                                \
    }

FIELD(gapi_service_name, gapi_service, name)
FIELD(gapi_service_version, gapi_service, version)
FIELD(gapi_service_title, gapi_service, title)
FIELD(gapi_service_root_url, gapi_service, root_url)
FIELD(gapi_service_path, gapi_service, service_path)
FIELD(gapi_service_batch_path, gapi_service, batch_path)
FIELD(gapi_service_batch_url, gapi_service, batch_url)
FIELD(gapi_service_mtls_root_url, gapi_service, mtls_root_url)
FIELD(gapi_service_universe_domain, gapi_service, universe_domain)

size_t gapi_service_param_count(const gapi_service *svc)
{
    return svc ? svc->param_count : 0;
}

const gapi_param *gapi_service_param_at(const gapi_service *svc, size_t i)
{
    return svc && i < svc->param_count ? &svc->params[i] : NULL;
}

const gapi_param *gapi_service_param(const gapi_service *svc, const char *name)
{
    uint32_t i;

    if (!svc || !name)
        return NULL;
    /* A handful of globals (13 in every real document): a scan is fine. */
    for (i = 0; i < svc->param_count; i++)
        if (strcmp(svc->params[i].name, name) == 0)
            return &svc->params[i];
    return NULL;
}

const gapi_method *gapi_service_method(const gapi_service *svc, const char *path)
{
    long i;

    if (!svc || !path)
        return NULL;
    i = gapi__name_index_find(&svc->by_name, path, gapi__method_name_key, svc->methods);
    return i < 0 ? NULL : &svc->methods[i];
}

const gapi_method *gapi_service_method_by_id(const gapi_service *svc, const char *id)
{
    long i;

    if (!svc || !id)
        return NULL;
    i = gapi__name_index_find(&svc->by_id, id, gapi__method_id_key, svc->methods);
    return i < 0 ? NULL : &svc->methods[i];
}

size_t gapi_service_method_count(const gapi_service *svc)
{
    return svc ? svc->method_count : 0;
}

const gapi_method *gapi_service_method_at(const gapi_service *svc, size_t i)
{
    return svc && i < svc->method_count ? &svc->methods[i] : NULL;
}

int gapi_service_schema(const gapi_service *svc, const char *name, struct json_object **out)
{
    struct json_object *o = NULL;
    const gapi__schema *s;
    long i;
    int rc;

    if (!svc || !name || !out)
        return GAPI_EINVAL;
    i = gapi__name_index_find(&svc->schema_index, name, gapi__schema_key, svc->schemas);
    if (i < 0)
        return GAPI_EINVAL;
    s = &svc->schemas[i];
    /* The text was written by discovery.c from a parsed tree: only memory
     * can make this fail. */
    rc = gapi__json_parse(svc->schema_text + s->offset, s->len, 0, &o, NULL);
    if (rc)
        return rc == GAPI_ENOMEM ? GAPI_ENOMEM : GAPI_EINVAL;
    *out = o;
    return 0;
}

size_t gapi_service_schema_count(const gapi_service *svc)
{
    return svc ? svc->schema_count : 0;
}

const char *gapi_service_schema_name_at(const gapi_service *svc, size_t i)
{
    return svc && i < svc->schema_count ? svc->schemas[i].name : NULL;
}

/* ---------------------------------------------------------------- methods */

FIELD(gapi_method_name, gapi_method, name)
FIELD(gapi_method_id, gapi_method, id)
FIELD(gapi_method_http_method, gapi_method, http_method)
FIELD(gapi_method_path, gapi_method, path)
FIELD(gapi_method_flat_path, gapi_method, flat_path)
FIELD(gapi_method_api_version, gapi_method, api_version)
FIELD(gapi_method_request_ref, gapi_method, request_ref)
FIELD(gapi_method_response_ref, gapi_method, response_ref)

size_t gapi_method_scope_count(const gapi_method *m)
{
    return m ? m->scope_count : 0;
}

const char *gapi_method_scope_at(const gapi_method *m, size_t i)
{
    return m && i < m->scope_count ? m->scopes[i] : NULL;
}

unsigned gapi_method_flags(const gapi_method *m)
{
    return m ? m->flags : 0;
}

size_t gapi_method_media_accept_count(const gapi_method *m)
{
    return m && m->media ? m->media->accept_count : 0;
}

const char *gapi_method_media_accept_at(const gapi_method *m, size_t i)
{
    return m && m->media && i < m->media->accept_count ? m->media->accept[i] : NULL;
}

uint64_t gapi_method_media_max_size(const gapi_method *m)
{
    return m && m->media ? m->media->max_size : 0;
}

const char *gapi_method_media_path(const gapi_method *m, gapi_upload_protocol p)
{
    if (!m || !m->media)
        return NULL;
    if (p == GAPI_UPLOAD_SIMPLE)
        return m->media->simple_path;
    if (p == GAPI_UPLOAD_RESUMABLE)
        return m->media->resumable_path;
    return NULL;
}

const gapi_param *gapi__method_param(const gapi_method *m, const char *name)
{
    uint32_t i;

    /* Methods have a few parameters (at most 30 in real documents). */
    for (i = 0; i < m->param_count; i++)
        if (strcmp(m->params[i].name, name) == 0)
            return &m->params[i];
    return gapi_service_param(m->svc, name);
}

const gapi_param *gapi_method_param(const gapi_method *m, const char *name)
{
    return m && name ? gapi__method_param(m, name) : NULL;
}

size_t gapi_method_param_count(const gapi_method *m)
{
    return m ? m->param_count : 0;
}

size_t gapi_method_param_order_count(const gapi_method *m)
{
    return m ? m->order_count : 0;
}

const gapi_param *gapi_method_param_at(const gapi_method *m, size_t i)
{
    return m && i < m->param_count ? &m->params[i] : NULL;
}

/* ---------------------------------------------------------------- parameters */

FIELD(gapi_param_name, gapi_param, name)
FIELD(gapi_param_type, gapi_param, type)
FIELD(gapi_param_format, gapi_param, format)
FIELD(gapi_param_pattern, gapi_param, pattern)
FIELD(gapi_param_default, gapi_param, default_value)
FIELD(gapi_param_minimum, gapi_param, minimum)
FIELD(gapi_param_maximum, gapi_param, maximum)

gapi_param_loc gapi_param_location(const gapi_param *p)
{
    return p ? (gapi_param_loc)p->location : (gapi_param_loc)0;
}

int gapi_param_required(const gapi_param *p)
{
    return p ? p->required : 0;
}

int gapi_param_repeated(const gapi_param *p)
{
    return p ? p->repeated : 0;
}

size_t gapi_param_enum_count(const gapi_param *p)
{
    return p ? p->enum_count : 0;
}

const char *gapi_param_enum_at(const gapi_param *p, size_t i)
{
    return p && i < p->enum_count ? p->enum_values[i] : NULL;
}
