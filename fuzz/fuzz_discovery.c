/*
 * Fuzzes the discovery loader (src/discovery): gapi_service_from_json on
 * the input as a whole document. Invariants:
 *  - the result is 0 or GAPI_EDISCOVERY (never GAPI_EINVAL: the arguments
 *    are valid), with a non-empty message on failure and *out untouched;
 *  - the loader accepts only what the strict parser accepts: when
 *    gapi__json_parse refuses the input, the loader fails too (with "not
 *    JSON: ..." or, when it meets another problem first, with that one);
 *    a "not JSON: line L column C (offset O): ..." message comes only for
 *    input the parser refuses, with an offset inside the input;
 *  - a loaded model is consistent: every method (gapi_service_method_at)
 *    is found again by its dotted path and by its id, its parameters by
 *    name, every schema parses (gapi_service_schema) into an object, and
 *    an extra reference keeps the model alive after the first unref.
 */
#include <string.h>

#include <json-c/json.h>

#include "gapi.h"
#include "json/parse.h"
#include "fuzz.h"

static void check_model(gapi_service *svc)
{
    size_t i, j, n = gapi_service_method_count(svc);

    CHECK(gapi_service_name(svc) && *gapi_service_name(svc));
    CHECK(gapi_service_root_url(svc) && gapi_service_path(svc));
    for (i = 0; i < n; i++) {
        const gapi_method *m = gapi_service_method_at(svc, i);
        CHECK(m != NULL);
        CHECK(gapi_service_method(svc, gapi_method_name(m)) == m);
        CHECK(gapi_service_method_by_id(svc, gapi_method_id(m)) == m);
        CHECK(gapi_method_http_method(m) && *gapi_method_http_method(m) && gapi_method_path(m));
        CHECK(gapi_method_param_order_count(m) <= gapi_method_param_count(m));
        for (j = 0; j < gapi_method_param_count(m); j++) {
            const gapi_param *p = gapi_method_param_at(m, j);
            CHECK(p != NULL);
            /* The method's own parameter wins over a global one. */
            CHECK(gapi_method_param(m, gapi_param_name(p)) == p);
            CHECK(gapi_param_location(p) == GAPI_PARAM_QUERY ||
                  gapi_param_location(p) == GAPI_PARAM_PATH);
        }
        CHECK(gapi_method_param_at(m, j) == NULL);
    }
    CHECK(gapi_service_method_at(svc, n) == NULL);
    for (i = 0; i < gapi_service_schema_count(svc); i++) {
        struct json_object *o = NULL;
        CHECK(gapi_service_schema(svc, gapi_service_schema_name_at(svc, i), &o) == 0);
        CHECK(json_object_is_type(o, json_type_object));
        json_object_put(o);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = size ? (const char *)data : "";
    gapi_service *sentinel = (gapi_service *)&sentinel, *svc = sentinel;
    struct json_object *tree = NULL;
    gapi__json_error jerr;
    char err[512];
    size_t off;
    int rc, prc;

    err[0] = '\0';
    rc = gapi_service_from_json(&svc, s, size, NULL, err, sizeof(err));
    CHECK(rc == 0 || rc == GAPI_EDISCOVERY);
    prc = gapi__json_parse(s, size, 0, &tree, &jerr);
    CHECK(prc == 0 || prc == GAPI_EJSON);
    if (prc == 0)
        json_object_put(tree);

    if (rc != 0) {
        CHECK(svc == sentinel);
        CHECK(err[0] != '\0');
        if (strncmp(err, "not JSON", 8) == 0) {
            CHECK(prc != 0);
            CHECK(strncmp(err, "not JSON: line ", 15) == 0);
            CHECK(strstr(err, "(offset ") != NULL);
            off = strtoul(strstr(err, "(offset ") + 8, NULL, 10);
            CHECK(off <= size);
        }
        return 0;
    }
    CHECK(prc == 0);
    CHECK(svc != sentinel);
    check_model(svc);
    CHECK(gapi_service_ref(svc) == svc);
    gapi_service_unref(svc);
    check_model(svc); /* still alive: one reference left */
    gapi_service_unref(svc);
    return 0;
}
