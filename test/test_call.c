/*
 * Tests of API calls built from discovery methods (src/call), without the
 * network: the requests are inspected, never sent.
 *
 * Driven by the real documents in ../shared/discovery: URLs of methods of
 * storage, drive, gmail, pubsub, compute and bigquery (the expected URLs
 * were written by hand from the documents' paths and parameters, not
 * produced by the code under test), every validation error with its
 * message, every pattern of every shared document compiled and a few
 * matched the way Python's re.match would, the three parameter forms
 * giving identical requests, default headers, body serialization (the
 * caller's object untouched and not kept), Google error bodies (well
 * formed and hostile), next-page requests (query and body tokens),
 * allocation failure at every allocation, and calls built from several
 * threads at once.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "gapi.h"
#include "call/call.h"
#include "common/buf.h"
#include "request/request.h"
#include "tap.h"

/* ------------------------------------------------------------ allocator */

static long alloc_calls; /* allocations since fail_at was set */
static long fail_at;     /* fail the fail_at-th allocation (0: never) */
static int failed_once;

static void *t_malloc(size_t n)
{
    if (fail_at && __atomic_add_fetch(&alloc_calls, 1, __ATOMIC_RELAXED) == fail_at) {
        failed_once = 1;
        return NULL;
    }
    return malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    if (fail_at && __atomic_add_fetch(&alloc_calls, 1, __ATOMIC_RELAXED) == fail_at) {
        failed_once = 1;
        return NULL;
    }
    return realloc(p, n);
}

static void arm(long n)
{
    alloc_calls = 0;
    failed_once = 0;
    fail_at = n;
}

/* Stops failing; failed_once still says whether the armed failure hit. */
static void disarm(void)
{
    fail_at = 0;
}

/* ------------------------------------------------------------ fixture */

static struct event_base *g_base;
static gapi_client *g_cli;

enum { STORAGE, DRIVE, GMAIL, PUBSUB, COMPUTE, BIGQUERY, LOGGING, NSVC };
static const char *const svc_files[NSVC] = {
    "storage.v1.json", "drive.v3.json",    "gmail.v1.json",  "pubsub.v1.json",
    "compute.v1.json", "bigquery.v2.json", "logging.v2.json"};
static gapi_service *svcs[NSVC];

static gapi_service *load(const char *file)
{
    char rel[128], err[256];
    gapi_service *s = NULL;
    char *path;
    int rc;

    snprintf(rel, sizeof(rel), "discovery/%s", file);
    if (!(path = tap_shared_path(rel)))
        return NULL;
    rc = gapi_service_from_file(&s, path, NULL, err, sizeof(err));
    if (rc != GAPI_OK)
        diag("loading %s: %s (%s)", path, gapi_strerror(rc), err);
    free(path);
    return s;
}

#define PARAMS(...)                                                                                \
    ((const gapi_call_param[]){__VA_ARGS__}),                                                      \
        sizeof((const gapi_call_param[]){__VA_ARGS__}) / sizeof(gapi_call_param)

static char g_err[512];

static gapi_request *mk(int s, const char *method, const gapi_call_param *ps, size_t n,
                        struct json_object *body)
{
    gapi_request *r = NULL;
    int rc = gapi_call_new(&r, g_cli, svcs[s], method, ps, n, body, g_err, sizeof(g_err));

    if (rc != GAPI_OK) {
        diag("%s: %s (%s)", method, gapi_strerror(rc), g_err);
        return NULL;
    }
    return r;
}

/* Builds the call and compares its method and URL. */
static void url_is(int s, const char *method, const gapi_call_param *ps, size_t n,
                   const char *http_method, const char *want, const char *name)
{
    gapi_request *r;

    if (!svcs[s]) {
        skip(2, "document not loaded");
        return;
    }
    r = mk(s, method, ps, n, NULL);
    is_str(gapi_request_method(r), http_method, "%s: HTTP method", name);
    is_str(gapi_request_url(r), want, "%s: URL", name);
    gapi_request_free(r);
}

/* Builds the call, expecting failure with code and message. */
static void err_is(int s, const char *method, const gapi_call_param *ps, size_t n,
                   struct json_object *body, int code, const char *msg, const char *name)
{
    gapi_request *r = (gapi_request *)&r; /* sentinel: must stay untouched */
    gapi_request *sentinel = r;
    char err[512];
    int rc;

    if (!svcs[s]) {
        skip(3, "document not loaded");
        return;
    }
    memset(err, 'x', sizeof(err));
    rc = gapi_call_new(&r, g_cli, svcs[s], method, ps, n, body, err, sizeof(err));
    is_int(rc, code, "%s: %s", name, gapi_error_name(code));
    ok(r == sentinel, "%s: *out untouched", name);
    if (rc == GAPI_OK)
        gapi_request_free(r);
    is_str(err, msg, "%s: message", name);
}

/* ------------------------------------------------------------ URLs */

static void test_urls(void)
{
    url_is(STORAGE, "objects.get",
           PARAMS({"bucket", "my-bucket"}, {"object", "dir/a b+c&d=\xC3\xA9.txt"}), "GET",
           "https://storage.googleapis.com/storage/v1/b/my-bucket/o/"
           "dir%2Fa%20b%2Bc%26d%3D%C3%A9.txt?alt=json",
           "storage objects.get, object name with / space + & = and UTF-8");
    url_is(STORAGE, "objects.get",
           PARAMS({"projection", "noAcl"}, {"object", "o"}, {"ifGenerationMatch", "0"},
                  {"bucket", "b"}, {"generation", "123"}),
           "GET",
           "https://storage.googleapis.com/storage/v1/b/b/o/o"
           "?alt=json&generation=123&ifGenerationMatch=0&projection=noAcl",
           "storage objects.get: query sorted by name whatever the given order");
    url_is(STORAGE, "storage.objects.get", PARAMS({"bucket", "b"}, {"object", "~a-b_c.d"}), "GET",
           "https://storage.googleapis.com/storage/v1/b/b/o/~a-b_c.d?alt=json",
           "storage objects.get by method id, unreserved characters kept");
    url_is(
        STORAGE, "objects.list",
        PARAMS({"bucket", "b"}, {"prefix", "a b/c+d"}, {"maxResults", "10"}, {"versions", "true"}),
        "GET",
        "https://storage.googleapis.com/storage/v1/b/b/o"
        "?alt=json&maxResults=10&prefix=a%20b%2Fc%2Bd&versions=true",
        "storage objects.list");
    url_is(STORAGE, "objects.list",
           PARAMS({"bucket", "b"}, {"prefix", "x&y=z#w?v%"}, {"delimiter", "/"}), "GET",
           "https://storage.googleapis.com/storage/v1/b/b/o"
           "?alt=json&delimiter=%2F&prefix=x%26y%3Dz%23w%3Fv%25",
           "storage objects.list: & = # ? % in a query value");
    url_is(STORAGE, "buckets.insert", PARAMS({"predefinedAcl", "private"}, {"project", "my-proj"}),
           "POST",
           "https://storage.googleapis.com/storage/v1/b?project=my-proj&alt=json&predefinedAcl="
           "private",
           "storage buckets.insert: query parameter of parameterOrder first");
    url_is(STORAGE, "objects.delete", PARAMS({"bucket", "b"}, {"object", "o"}), "DELETE",
           "https://storage.googleapis.com/storage/v1/b/b/o/o",
           "storage objects.delete: no response, so no alt=json");
    url_is(STORAGE, "objects.get", PARAMS({"bucket", "b"}, {"object", "o"}, {"alt", "media"}),
           "GET", "https://storage.googleapis.com/storage/v1/b/b/o/o?alt=media",
           "storage objects.get alt=media (download)");
    url_is(STORAGE, "objects.list",
           PARAMS({"bucket", "b"}, {"fields", "items(name,size),nextPageToken"},
                  {"prettyPrint", "false"}, {"quotaUser", "u 1"}, {"userIp", "10.0.0.1"},
                  {"key", "k"}),
           "GET",
           "https://storage.googleapis.com/storage/v1/b/b/o?alt=json&fields=items%28name%2Csize%29"
           "%2CnextPageToken&key=k&prettyPrint=false&quotaUser=u%201&userIp=10.0.0.1",
           "storage objects.list with global parameters");
    url_is(PUBSUB, "projects.topics.publish", PARAMS({"topic", "projects/p/topics/t"}), "POST",
           "https://pubsub.googleapis.com/v1/projects/p/topics/t:publish?alt=json",
           "pubsub projects.topics.publish: {+topic} keeps '/'");
    url_is(PUBSUB, "projects.topics.get",
           PARAMS({"topic", "projects/p/topics/t"}, {"$.xgafv", "2"}, {"userIp", "1.2.3.4"},
                  {"upload_protocol", "raw"}, {"callback", "cb"}, {"access_token", "tok"}),
           "GET",
           "https://pubsub.googleapis.com/v1/projects/p/topics/t"
           "?%24.xgafv=2&access_token=tok&alt=json&callback=cb&upload_protocol=raw&userIp=1.2.3.4",
           "pubsub: $.xgafv encoded; userIp accepted though the document lacks it");
    url_is(GMAIL, "users.messages.list",
           PARAMS({"userId", "me"}, {"labelIds", "INBOX"}, {"q", "from:a@b.com is:unread"},
                  {"labelIds", "UNREAD"}, {"maxResults", "5"}, {"includeSpamTrash", "false"}),
           "GET",
           "https://gmail.googleapis.com/gmail/v1/users/me/messages?alt=json&includeSpamTrash="
           "false&labelIds=INBOX&labelIds=UNREAD&maxResults=5&q=from%3Aa%40b.com%20is%3Aunread",
           "gmail users.messages.list: repeated labelIds in the given order");
    url_is(GMAIL, "users.messages.list",
           PARAMS({"userId", "me"}, {"labelIds", "UNREAD"}, {"labelIds", "INBOX"}), "GET",
           "https://gmail.googleapis.com/gmail/v1/users/me/messages"
           "?alt=json&labelIds=UNREAD&labelIds=INBOX",
           "gmail: repeated values keep the caller's order");
    url_is(GMAIL, "users.history.list",
           PARAMS({"userId", "me"}, {"historyTypes", "labelAdded"},
                  {"historyTypes", "messageAdded"}, {"startHistoryId", "99"}),
           "GET",
           "https://gmail.googleapis.com/gmail/v1/users/me/history"
           "?alt=json&historyTypes=labelAdded&historyTypes=messageAdded&startHistoryId=99",
           "gmail users.history.list: repeated enum values");
    url_is(COMPUTE, "instances.insert",
           PARAMS({"zone", "us-central1-a"}, {"project", "my-proj"}, {"requestId", "r-1"}), "POST",
           "https://compute.googleapis.com/compute/v1/projects/my-proj/zones/us-central1-a/"
           "instances?alt=json&requestId=r-1",
           "compute instances.insert");
    url_is(
        COMPUTE, "instances.get",
        PARAMS({"project", "google.com:my-proj"}, {"zone", "europe-west1-b"}, {"instance", "vm-1"}),
        "GET",
        "https://compute.googleapis.com/compute/v1/projects/google.com%3Amy-proj/zones/"
        "europe-west1-b/instances/vm-1?alt=json",
        "compute instances.get: domain-scoped project ':' encoded by {project}");
    url_is(
        COMPUTE, "targetPools.setBackup",
        PARAMS({"project", "p"}, {"region", "r"}, {"targetPool", "tp"}, {"failoverRatio", "0.25"}),
        "POST",
        "https://compute.googleapis.com/compute/v1/projects/p/regions/r/targetPools/tp/"
        "setBackup?alt=json&failoverRatio=0.25",
        "compute targetPools.setBackup: number parameter");
    url_is(BIGQUERY, "jobs.query", PARAMS({"projectId", "my-proj"}), "POST",
           "https://bigquery.googleapis.com/bigquery/v2/projects/my-proj/queries?alt=json",
           "bigquery jobs.query: {+projectId}");
    url_is(BIGQUERY, "jobs.list",
           PARAMS({"projectId", "p"}, {"stateFilter", "running"}, {"stateFilter", "done"},
                  {"allUsers", "true"}, {"maxResults", "1000"}),
           "GET",
           "https://bigquery.googleapis.com/bigquery/v2/projects/p/jobs"
           "?allUsers=true&alt=json&maxResults=1000&stateFilter=running&stateFilter=done",
           "bigquery jobs.list: repeated enum stateFilter");
    url_is(DRIVE, "files.list",
           PARAMS({"q", "name contains 'x'"}, {"pageSize", "10"}, {"orderBy", "modifiedTime desc"},
                  {"fields", "files(id,name),nextPageToken"}, {"corpus", "user"}),
           "GET",
           "https://www.googleapis.com/drive/v3/files?alt=json&corpus=user&fields=files%28id%2C"
           "name%29%2CnextPageToken&orderBy=modifiedTime%20desc&pageSize=10&q=name%20contains%20%"
           "27x%27",
           "drive files.list");
    url_is(DRIVE, "files.list", NULL, 0, "GET",
           "https://www.googleapis.com/drive/v3/files?alt=json",
           "drive files.list without parameters");
    url_is(LOGGING, "entries.list", NULL, 0, "POST",
           "https://logging.googleapis.com/v2/entries:list?alt=json", "logging entries.list");
    /* Normalization of integers, as Python's str(int(v)). */
    url_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"maxResults", "+010"}), "GET",
           "https://storage.googleapis.com/storage/v1/b/b/o?alt=json&maxResults=10",
           "integer \"+010\" sent as 10");
    url_is(DRIVE, "files.list", PARAMS({"pageSize", "-0"}), "GET",
           "https://www.googleapis.com/drive/v3/files?alt=json&pageSize=0",
           "integer \"-0\" sent as 0");
    url_is(DRIVE, "files.list", PARAMS({"pageSize", "-2147483648"}), "GET",
           "https://www.googleapis.com/drive/v3/files?alt=json&pageSize=-2147483648",
           "int32 minimum accepted");
    url_is(STORAGE, "objects.get",
           PARAMS({"bucket", "b"}, {"object", "o"}, {"generation", "9223372036854775807"}), "GET",
           "https://storage.googleapis.com/storage/v1/b/b/o/o?alt=json&generation="
           "9223372036854775807",
           "int64 (string format) maximum accepted");
    url_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"maxResults", "4294967295"}), "GET",
           "https://storage.googleapis.com/storage/v1/b/b/o?alt=json&maxResults=4294967295",
           "uint32 maximum accepted");
    url_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"prefix", NULL}, {"versions", NULL}),
           "GET", "https://storage.googleapis.com/storage/v1/b/b/o?alt=json",
           "NULL values leave parameters out");
    url_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"prefix", ""}), "GET",
           "https://storage.googleapis.com/storage/v1/b/b/o?alt=json&prefix=",
           "an empty query value is sent");
    url_is(STORAGE, "objects.get", PARAMS({"bucket", "b"}, {"object", "a.."}), "GET",
           "https://storage.googleapis.com/storage/v1/b/b/o/a..?alt=json",
           "\"a..\" is no dot segment");
}

/* ------------------------------------------------------------ validation */

static void test_validation(void)
{
    struct json_object *body = json_object_new_object();
    gapi_request *r = NULL;
    char err[256];
    int rc;

    err_is(STORAGE, "objects.lst", PARAMS({"bucket", "b"}), NULL, GAPI_EINVAL,
           "storage v1 has no method \"objects.lst\" (neither a dotted path nor an id)",
           "unknown method");
    err_is(STORAGE, "objects.list", PARAMS({"bukket", "b"}), NULL, GAPI_EINVAL,
           "storage.objects.list: unknown parameter \"bukket\"", "unknown parameter");
    err_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"a\nb", "x"}), NULL, GAPI_EINVAL,
           "storage.objects.list: unknown parameter \"a\\x0Ab\"",
           "unknown parameter with a control character, quoted");
    err_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"max_results", "1"}), NULL,
           GAPI_EINVAL, "storage.objects.list: unknown parameter \"max_results\"",
           "Python's argument spelling is not a parameter name");
    err_is(STORAGE, "objects.get", PARAMS({"bucket", "b"}), NULL, GAPI_EINVAL,
           "storage.objects.get: missing required parameter \"object\"", "missing required");
    err_is(STORAGE, "buckets.insert", PARAMS({"predefinedAcl", "private"}), NULL, GAPI_EINVAL,
           "storage.buckets.insert: missing required parameter \"project\"",
           "missing required query parameter");
    err_is(DRIVE, "changes.list", PARAMS({"pageSize", "10"}), NULL, GAPI_EINVAL,
           "drive.changes.list: missing required parameter \"pageToken\"",
           "drive changes.list needs its pageToken");
    url_is(DRIVE, "changes.watch", PARAMS({"pageSize", "10"}), "POST",
           "https://www.googleapis.com/drive/v3/changes/watch?alt=json&pageSize=10",
           "drive changes.watch: a required pageToken without nextPageToken is optional (as "
           "Python)");
    err_is(STORAGE, "objects.get", PARAMS({"bucket", "b"}, {"object", "o"}, {"projection", "fll"}),
           NULL, GAPI_EINVAL,
           "storage.objects.get: parameter \"projection\" value \"fll\" is not one of: full, noAcl",
           "value not in enum");
    err_is(GMAIL, "users.history.list",
           PARAMS({"userId", "me"}, {"historyTypes", "labelAdded"}, {"historyTypes", "bogus"}),
           NULL, GAPI_EINVAL,
           "gmail.users.history.list: parameter \"historyTypes\" value \"bogus\" is not one of: "
           "messageAdded, messageDeleted, labelAdded, labelRemoved",
           "repeated enum: every value checked");
    err_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"alt", "xml"}), NULL, GAPI_EINVAL,
           "storage.objects.list: parameter \"alt\" value \"xml\" is not one of: json, media",
           "global parameter enum");
    err_is(PUBSUB, "projects.topics.publish", PARAMS({"topic", "projects/p/subscriptions/s"}), NULL,
           GAPI_EINVAL,
           "pubsub.projects.topics.publish: parameter \"topic\" value "
           "\"projects/p/subscriptions/s\" does not match the pattern "
           "\"^projects/[^/]+/topics/[^/]+$\"",
           "value not matching the pattern");
    err_is(PUBSUB, "projects.topics.publish", PARAMS({"topic", "projects/p/topics/t/x"}), NULL,
           GAPI_EINVAL,
           "pubsub.projects.topics.publish: parameter \"topic\" value \"projects/p/topics/t/x\" "
           "does not match the pattern \"^projects/[^/]+/topics/[^/]+$\"",
           "pattern anchored at the end by its $");
    err_is(COMPUTE, "instances.get",
           PARAMS({"project", "p"}, {"zone", "Us-central1"}, {"instance", "i"}), NULL, GAPI_EINVAL,
           "compute.instances.get: parameter \"zone\" value \"Us-central1\" does not match the "
           "pattern \"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?\"",
           "compute pattern (Python syntax) checked");
    err_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"maxResults", "ten"}), NULL,
           GAPI_EINVAL,
           "storage.objects.list: parameter \"maxResults\" value \"ten\" is not an integer "
           "(optional sign, then decimal digits)",
           "integer: not digits");
    err_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"maxResults", " 1"}), NULL,
           GAPI_EINVAL,
           "storage.objects.list: parameter \"maxResults\" value \" 1\" is not an integer "
           "(optional sign, then decimal digits)",
           "integer: no spaces");
    err_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"maxResults", "-"}), NULL, GAPI_EINVAL,
           "storage.objects.list: parameter \"maxResults\" value \"-\" is not an integer "
           "(optional sign, then decimal digits)",
           "integer: a sign alone");
    err_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"maxResults", "-1"}), NULL,
           GAPI_EINVAL,
           "storage.objects.list: parameter \"maxResults\" value \"-1\" is out of range for "
           "uint32",
           "uint32: negative");
    err_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"maxResults", "4294967296"}), NULL,
           GAPI_EINVAL,
           "storage.objects.list: parameter \"maxResults\" value \"4294967296\" is out of range "
           "for uint32",
           "uint32: too big");
    err_is(DRIVE, "files.list", PARAMS({"pageSize", "2147483648"}), NULL, GAPI_EINVAL,
           "drive.files.list: parameter \"pageSize\" value \"2147483648\" is out of range for "
           "int32",
           "int32: too big");
    err_is(DRIVE, "files.list", PARAMS({"pageSize", "-2147483649"}), NULL, GAPI_EINVAL,
           "drive.files.list: parameter \"pageSize\" value \"-2147483649\" is out of range for "
           "int32",
           "int32: too small");
    err_is(STORAGE, "objects.get", PARAMS({"bucket", "b"}, {"object", "o"}, {"generation", "12a"}),
           NULL, GAPI_EINVAL,
           "storage.objects.get: parameter \"generation\" value \"12a\" is not an integer "
           "(optional sign, then decimal digits)",
           "int64 carried as a string: digits required");
    err_is(STORAGE, "objects.get",
           PARAMS({"bucket", "b"}, {"object", "o"}, {"generation", "9223372036854775808"}), NULL,
           GAPI_EINVAL,
           "storage.objects.get: parameter \"generation\" value \"9223372036854775808\" is out "
           "of range for int64",
           "int64: too big");
    err_is(STORAGE, "objects.get",
           PARAMS({"bucket", "b"}, {"object", "o"}, {"generation", "99999999999999999999999"}),
           NULL, GAPI_EINVAL,
           "storage.objects.get: parameter \"generation\" value \"99999999999999999999999\" is "
           "out of range for int64",
           "int64: beyond uint64 too");
    err_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"versions", "yes"}), NULL, GAPI_EINVAL,
           "storage.objects.list: parameter \"versions\" value \"yes\" is not a boolean (\"true\" "
           "or \"false\")",
           "boolean: yes");
    err_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"versions", "True"}), NULL,
           GAPI_EINVAL,
           "storage.objects.list: parameter \"versions\" value \"True\" is not a boolean "
           "(\"true\" or \"false\")",
           "boolean: Python's spelling refused");
    err_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"prettyPrint", "1"}), NULL,
           GAPI_EINVAL,
           "storage.objects.list: parameter \"prettyPrint\" value \"1\" is not a boolean (\"true\" "
           "or \"false\")",
           "boolean global parameter");
    err_is(COMPUTE, "targetPools.setBackup",
           PARAMS({"project", "p"}, {"region", "r"}, {"targetPool", "t"}, {"failoverRatio", "abc"}),
           NULL, GAPI_EINVAL,
           "compute.targetPools.setBackup: parameter \"failoverRatio\" value \"abc\" is not a "
           "number (decimal text such as \"-1.5\" or \"2e10\")",
           "number: not numeric");
    err_is(COMPUTE, "targetPools.setBackup",
           PARAMS({"project", "p"}, {"region", "r"}, {"targetPool", "t"}, {"failoverRatio", "nan"}),
           NULL, GAPI_EINVAL,
           "compute.targetPools.setBackup: parameter \"failoverRatio\" value \"nan\" is not a "
           "number (decimal text such as \"-1.5\" or \"2e10\")",
           "number: nan refused");
    err_is(COMPUTE, "targetPools.setBackup",
           PARAMS({"project", "p"}, {"region", "r"}, {"targetPool", "t"}, {"failoverRatio", "1e"}),
           NULL, GAPI_EINVAL,
           "compute.targetPools.setBackup: parameter \"failoverRatio\" value \"1e\" is not a "
           "number (decimal text such as \"-1.5\" or \"2e10\")",
           "number: exponent without digits");
    url_is(
        COMPUTE, "targetPools.setBackup",
        PARAMS({"project", "p"}, {"region", "r"}, {"targetPool", "t"}, {"failoverRatio", "-.5E+2"}),
        "POST",
        "https://compute.googleapis.com/compute/v1/projects/p/regions/r/targetPools/t/"
        "setBackup?alt=json&failoverRatio=-.5E%2B2",
        "number: sign, fraction, exponent accepted");
    err_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"prefix", "a"}, {"prefix", "b"}), NULL,
           GAPI_EINVAL,
           "storage.objects.list: parameter \"prefix\" is not repeated but was given 2 values",
           "several values for a parameter that is not repeated");
    err_is(STORAGE, "objects.get", PARAMS({"bucket", "b"}, {"object", ""}), NULL, GAPI_EINVAL,
           "storage.objects.get: path parameter \"object\" is empty", "empty path parameter");
    err_is(STORAGE, "objects.get", PARAMS({"bucket", "bkt"}, {"object", ".."}), NULL, GAPI_EINVAL,
           "storage.objects.get: path parameter \"object\" makes a \".\" or \"..\" segment in the "
           "path \"b/bkt/o/..\"",
           "dot-dot path segment");
    err_is(STORAGE, "objects.get", PARAMS({"bucket", "."}, {"object", "o"}), NULL, GAPI_EINVAL,
           "storage.objects.get: path parameter \"bucket\" makes a \".\" or \"..\" segment in the "
           "path \"b/./o/o\"",
           "dot path segment");
    err_is(BIGQUERY, "jobs.query", PARAMS({"projectId", "%2e%2E"}), NULL, GAPI_EINVAL,
           "bigquery.jobs.query: path parameter \"projectId\" makes a \".\" or \"..\" segment in "
           "the path \"projects/%2e%2E/queries\"",
           "percent-encoded dot-dot through {+name}");
    url_is(STORAGE, "objects.get", PARAMS({"bucket", "b"}, {"object", "a/../x"}), "GET",
           "https://storage.googleapis.com/storage/v1/b/b/o/a%2F..%2Fx?alt=json",
           "\"..\" inside {object} is encoded with its slashes: no segment");
    err_is(STORAGE, "objects.get", PARAMS({"bucket", "b"}, {"object", "o"}), body, GAPI_EINVAL,
           "storage.objects.get: the method takes no request body", "body for a method without");
    err_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"alt", "media"}), NULL, GAPI_EINVAL,
           "storage.objects.list: alt=media asks for a media download, which this method does "
           "not support (no supportsMediaDownload)",
           "alt=media without supportsMediaDownload");
    err_is(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {NULL, "x"}), NULL, GAPI_EINVAL,
           "storage.objects.list: params[1] has a NULL name", "NULL name in the array");

    /* NULL arguments. */
    rc = gapi_call_new(NULL, g_cli, svcs[STORAGE], "objects.list", NULL, 0, NULL, err, sizeof(err));
    is_int(rc, GAPI_EINVAL, "NULL out: EINVAL");
    is_str(err, "gapi_call: out is NULL", "NULL out: message");
    rc = gapi_call_new(&r, NULL, svcs[STORAGE], "objects.list", NULL, 0, NULL, err, sizeof(err));
    is_str(err, "gapi_call: the client is NULL", "NULL client: message");
    rc = gapi_call_new(&r, g_cli, NULL, "objects.list", NULL, 0, NULL, err, sizeof(err));
    is_str(err, "gapi_call: the service is NULL", "NULL service: message");
    rc = gapi_call_new(&r, g_cli, svcs[STORAGE], NULL, NULL, 0, NULL, NULL, 0);
    is_int(rc, GAPI_EINVAL, "NULL method, NULL errbuf: EINVAL");
    rc = gapi_call_new(&r, g_cli, svcs[STORAGE], "objects.get",
                       PARAMS({"bucket", "b"}, {"object", ".."}), NULL, NULL, 100);
    is_int(rc, GAPI_EINVAL, "URL error with a NULL errbuf (size 100): EINVAL, no write");
    rc = gapi_call_new(&r, g_cli, svcs[STORAGE], "objects.get", PARAMS({"bucket", "b"}), NULL, NULL,
                       100);
    is_int(rc, GAPI_EINVAL, "validation error with a NULL errbuf (size 100): EINVAL, no write");
    rc = gapi_call_new(&r, g_cli, svcs[STORAGE], "objects.list", NULL, 2, NULL, err, sizeof(err));
    is_int(rc, GAPI_EINVAL, "NULL params with n > 0: EINVAL");
    is_str(err, "storage.objects.list: params is NULL with n = 2", "NULL params: message");
    ok(r == NULL, "failed calls never set *out");
    /* A tiny errbuf is cut, never overrun. */
    memset(err, 'z', sizeof(err));
    rc = gapi_call_new(&r, g_cli, svcs[STORAGE], "objects.get", PARAMS({"bucket", "b"}), NULL, err,
                       10);
    ok(rc == GAPI_EINVAL && strcmp(err, "storage.o") == 0 && err[10] == 'z',
       "errbuf of 10 bytes: cut and NUL-terminated (\"%.10s\")", err);
    json_object_put(body);
}

/* ------------------------------------------------------------ the three forms */

static int same_request(gapi_request *a, gapi_request *b, const char *name)
{
    size_t i, alen, blen;
    const void *ab, *bb;
    int same = a && b;

    if (!same) {
        ok(0, "%s: both built", name);
        return 0;
    }
    same &= strcmp(gapi_request_url(a), gapi_request_url(b)) == 0;
    same &= strcmp(gapi_request_method(a), gapi_request_method(b)) == 0;
    same &= gapi_request_header_count(a) == gapi_request_header_count(b);
    for (i = 0; same && i < gapi_request_header_count(a); i++) {
        const char *an, *av, *bn, *bv;
        gapi_request_header_at(a, i, &an, &av);
        gapi_request_header_at(b, i, &bn, &bv);
        same &= strcmp(an, bn) == 0 && strcmp(av, bv) == 0;
    }
    ab = gapi_request_body(a, &alen);
    bb = gapi_request_body(b, &blen);
    same &= alen == blen && (!alen || memcmp(ab, bb, alen) == 0);
    if (!ok(same, "%s: same method, URL, headers and body", name))
        diag("  %s\n  %s", gapi_request_url(a), gapi_request_url(b));
    return same;
}

static void test_forms(void)
{
    gapi_request *a = NULL, *v = NULL, *j = NULL;
    struct json_object *params, *labels, *body;
    char err[256];
    int rc;

    if (!svcs[STORAGE] || !svcs[GMAIL]) {
        skip(6, "documents not loaded");
        return;
    }
    body = json_tokener_parse("{\"name\":\"a/b\",\"metadata\":{\"k\":\"v\"}}");
    a = mk(STORAGE, "objects.insert",
           PARAMS({"bucket", "b"}, {"name", "dir/x y"}, {"ifGenerationMatch", "0"},
                  {"projection", "full"}),
           body);
    rc = gapi_call_newv(&v, g_cli, svcs[STORAGE], "objects.insert", body, err, sizeof(err),
                        "bucket", "b", "name", "dir/x y", "ifGenerationMatch", "0", "projection",
                        "full", (char *)NULL);
    is_int(rc, 0, "varargs form builds (%s)", err);
    params = json_tokener_parse("{\"bucket\":\"b\",\"name\":\"dir/x y\",\"ifGenerationMatch\":0,"
                                "\"projection\":\"full\",\"userProject\":null}");
    rc = gapi_call_new_json(&j, g_cli, svcs[STORAGE], "objects.insert", params, body, err,
                            sizeof(err));
    is_int(rc, 0, "json form builds (%s)", err);
    same_request(a, v, "array vs varargs");
    same_request(a, j, "array vs json (integer 0 as \"0\", null left out)");
    is_str(gapi_request_url(a),
           "https://storage.googleapis.com/storage/v1/b/b/o"
           "?alt=json&ifGenerationMatch=0&name=dir%2Fx%20y&projection=full",
           "objects.insert URL");
    gapi_request_free(a);
    gapi_request_free(v);
    gapi_request_free(j);
    json_object_put(params);

    /* Repeated parameters: repeated names vs a JSON array; numbers and
     * booleans converted. */
    a = mk(GMAIL, "users.messages.list",
           PARAMS({"userId", "me"}, {"labelIds", "A"}, {"labelIds", "B"}, {"maxResults", "10"},
                  {"includeSpamTrash", "true"}),
           NULL);
    rc = gapi_call_newv(&v, g_cli, svcs[GMAIL], "users.messages.list", NULL, err, sizeof(err),
                        "userId", "me", "labelIds", "A", "maxResults", "10", "labelIds", "B",
                        "includeSpamTrash", "true", (char *)NULL);
    is_int(rc, 0, "varargs with repeated names");
    params = json_object_new_object();
    labels = json_object_new_array();
    json_object_array_add(labels, json_object_new_string("A"));
    json_object_array_add(labels, json_object_new_string("B"));
    json_object_object_add(params, "userId", json_object_new_string("me"));
    json_object_object_add(params, "labelIds", labels);
    json_object_object_add(params, "maxResults", json_object_new_double(10.0));
    json_object_object_add(params, "includeSpamTrash", json_object_new_boolean(1));
    rc = gapi_call_new_json(&j, g_cli, svcs[GMAIL], "users.messages.list", params, NULL, err,
                            sizeof(err));
    is_int(rc, 0, "json with an array (%s)", err);
    same_request(a, v, "repeated: array vs varargs");
    same_request(a, j, "repeated: array vs json array; 10.0 as 10, true as \"true\"");
    gapi_request_free(a);
    gapi_request_free(v);
    gapi_request_free(j);
    json_object_put(params);
    json_object_put(body);

    /* The JSON form's own conversions and errors. */
    params = json_tokener_parse("{\"project\":\"p\",\"region\":\"r\",\"targetPool\":\"t\","
                                "\"failoverRatio\":0.1}");
    if (svcs[COMPUTE]) {
        rc = gapi_call_new_json(&j, g_cli, svcs[COMPUTE], "targetPools.setBackup", params, NULL,
                                err, sizeof(err));
        is_int(rc, 0, "json double for a number parameter");
        is_str(gapi_request_url(j),
               "https://compute.googleapis.com/compute/v1/projects/p/regions/r/targetPools/t/"
               "setBackup?alt=json&failoverRatio=0.1",
               "0.1 written as the shortest text that reads back");
        gapi_request_free(j);
    }
    json_object_put(params);
    {
        static const struct {
            const char *json, *msg;
        } bad[] = {
            {"{\"bucket\":\"b\",\"prefix\":{\"a\":1}}",
             "storage.objects.list: parameter \"prefix\" is a JSON object (only strings, numbers, "
             "booleans and arrays of them are parameter values)"},
            {"{\"bucket\":\"b\",\"prefix\":[\"a\"]}",
             "storage.objects.list: parameter \"prefix\" is not repeated but was given an array"},
            {"{\"bucket\":\"b\",\"maxResults\":1.5}",
             "storage.objects.list: parameter \"maxResults\" value 1.5 is not an integer"},
            {"{\"bucket\":\"b\",\"maxResults\":1e300}",
             "storage.objects.list: parameter \"maxResults\" value 1.0000000000000001e+300 is not "
             "an integer"},
            {"{\"bucket\":\"b\",\"maxResults\":-5}",
             "storage.objects.list: parameter \"maxResults\" value \"-5\" is out of range for "
             "uint32"},
            {"{\"bucket\":\"b\",\"versions\":1}",
             "storage.objects.list: parameter \"versions\" value \"1\" is not a boolean (\"true\" "
             "or \"false\")"},
            {"{\"bucket\":\"b\",\"prefix\":\"a\\u0000b\"}",
             "storage.objects.list: parameter \"prefix\" contains a NUL character"},
            {"{\"bucket\":\"b\",\"nope\":1}", "storage.objects.list: unknown parameter \"nope\""},
            {"[1]", "storage.objects.list: params is a JSON array, not an object"},
        };
        static const struct {
            const char *json, *msg;
        } gbad[] = {
            {"{\"userId\":\"me\",\"labelIds\":[[\"a\"]]}",
             "gmail.users.messages.list: parameter \"labelIds\" item 0 is an array inside an "
             "array"},
            {"{\"userId\":\"me\",\"labelIds\":[\"a\",null]}",
             "gmail.users.messages.list: parameter \"labelIds\" item 1 is null"},
            {"{\"userId\":\"me\",\"labelIds\":[\"a\",{}]}",
             "gmail.users.messages.list: parameter \"labelIds\" item 1 is a JSON object (only "
             "strings, numbers, booleans and arrays of them are parameter values)"},
        };
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]) + sizeof(gbad) / sizeof(gbad[0]); i++) {
            int g = i >= sizeof(bad) / sizeof(bad[0]);
            size_t k = g ? i - sizeof(bad) / sizeof(bad[0]) : i;
            const char *js = g ? gbad[k].json : bad[k].json;
            const char *msg = g ? gbad[k].msg : bad[k].msg;
            gapi_request *out = NULL;

            params = json_tokener_parse(js);
            rc = gapi_call_new_json(&out, g_cli, svcs[g ? GMAIL : STORAGE],
                                    g ? "users.messages.list" : "objects.list", params, NULL, err,
                                    sizeof(err));
            ok(rc == GAPI_EINVAL && !out, "json %s: EINVAL", js);
            is_str(err, msg, "json %s: message", js);
            json_object_put(params);
        }
    }
    /* An empty array is no value at all; uint64 beyond int64 keeps its
     * digits. */
    params = json_tokener_parse("{\"userId\":\"me\",\"labelIds\":[]}");
    rc = gapi_call_new_json(&j, g_cli, svcs[GMAIL], "users.messages.list", params, NULL, err,
                            sizeof(err));
    is_str(rc ? err : gapi_request_url(j),
           "https://gmail.googleapis.com/gmail/v1/users/me/messages?alt=json",
           "json empty array: the parameter is not given");
    gapi_request_free(j);
    json_object_put(params);
}

/* ------------------------------------------------------------ headers and body */

static void test_headers_and_body(void)
{
    const char *n, *v;
    gapi_request *r;
    struct json_object *body;
    const char *before_text;
    char *before;
    size_t len, i;
    const void *b;

    if (!svcs[STORAGE] || !svcs[COMPUTE]) {
        skip(14, "documents not loaded");
        return;
    }
    r = mk(STORAGE, "objects.list", PARAMS({"bucket", "b"}), NULL);
    is_int(gapi_request_header_count(r), 3, "objects.list: three headers");
    gapi_request_header_at(r, 0, &n, &v);
    ok(strcmp(n, "user-agent") == 0 && strcmp(v, "gapi/" GAPI_VERSION_STRING " (gzip)") == 0,
       "user-agent is the client's plus \" (gzip)\" (%s: %s)", n, v);
    gapi_request_header_at(r, 1, &n, &v);
    ok(strcmp(n, "x-goog-api-client") == 0 && strncmp(v, "gl-c/", 5) == 0 &&
           strstr(v, " gdcl/" GAPI_VERSION_STRING) != NULL && !strchr(v + 5, '(') &&
           strchr(v, ' ') == strstr(v, " gdcl/"),
       "x-goog-api-client: gl-c/<compiler> gdcl/<version> (%s)", v);
    is_str(gapi_request_header(r, "Accept"), "application/json", "accept: application/json");
    is_str(gapi_request_header(r, "x-goog-api-version"), NULL,
           "no x-goog-api-version when the method declares none");
    ok(gapi_request_body(r, &len) == NULL && len == 0, "GET: no body");
    is_str(gapi_request_content_type(r), NULL, "GET: no content type");
    is_int(gapi_request_header_at(r, 3, &n, &v), GAPI_EINVAL, "header_at past the end: EINVAL");
    ok(gapi_call_method(r) == gapi_service_method(svcs[STORAGE], "objects.list"),
       "gapi_call_method gives the method");
    gapi_request_free(r);

    r = mk(STORAGE, "objects.get", PARAMS({"bucket", "b"}, {"object", "o"}, {"alt", "media"}),
           NULL);
    is_str(gapi_request_header(r, "accept"), "*/*", "alt=media: accept */*");
    gapi_request_free(r);
    r = mk(STORAGE, "objects.delete", PARAMS({"bucket", "b"}, {"object", "o"}), NULL);
    is_str(gapi_request_header(r, "accept"), "*/*", "no response: accept */*");
    gapi_request_free(r);

    body = json_tokener_parse("{\"name\":\"a/b\",\"size\":1.5,\"labels\":{\"k\":\"v \\u00e9\"},"
                              "\"list\":[1,true,null]}");
    before_text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
    before = strdup(before_text);
    r = mk(COMPUTE, "instances.insert", PARAMS({"project", "p"}, {"zone", "z"}), body);
    is_str(gapi_request_header(r, "x-goog-api-version"),
           gapi_method_api_version(gapi_service_method(svcs[COMPUTE], "instances.insert")),
           "x-goog-api-version from the method's apiVersion");
    ok(gapi_method_api_version(gapi_service_method(svcs[COMPUTE], "instances.insert")) != NULL,
       "compute instances.insert declares an apiVersion");
    is_str(gapi_request_content_type(r), "application/json", "body: content type");
    b = gapi_request_body(r, &len);
    ok(b &&
           len == strlen("{\"name\":\"a/b\",\"size\":1.5,\"labels\":{\"k\":\"v \xC3\xA9\"},"
                         "\"list\":[1,true,null]}") &&
           memcmp(b,
                  "{\"name\":\"a/b\",\"size\":1.5,\"labels\":{\"k\":\"v \xC3\xA9\"},"
                  "\"list\":[1,true,null]}",
                  len) == 0,
       "body serialized compactly, '/' not escaped, UTF-8 as is (%.*s)", (int)len, (const char *)b);
    is_str(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN), before,
           "the caller's body object is unchanged");
    for (i = 0; i < gapi_request_header_count(r); i++) {
        gapi_request_header_at(r, i, &n, &v);
        if (strcasecmp(n, "content-type") == 0)
            break;
    }
    is_int(i, gapi_request_header_count(r), "content type is the body's, not a listed header");
    gapi_request_free(r);
    free(before);
    is_int(json_object_put(body), 1, "the call kept no reference to the body (our put frees it)");

    /* Headers a caller adds are listed after the call's. */
    r = mk(STORAGE, "objects.list", PARAMS({"bucket", "b"}), NULL);
    gapi_request_add_header(r, "x-goog-user-project", "billing-proj");
    is_int(gapi_request_header_count(r), 4, "added header counted");
    gapi_request_header_at(r, 3, &n, &v);
    ok(!strcmp(n, "x-goog-user-project") && !strcmp(v, "billing-proj"), "added header listed last");
    gapi_request_free(r);
}

static void test_application_name(void)
{
    gapi_client_options o = GAPI_CLIENT_OPTIONS_INIT;
    gapi_client *c = NULL;
    gapi_request *r = NULL;
    char err[256];
    int rc;

    if (!svcs[STORAGE]) {
        skip(1, "document not loaded");
        return;
    }
    o.application_name = "myapp/1.2";
    rc = gapi_client_new(&c, g_base, &o, err, sizeof(err));
    if (rc == GAPI_OK)
        rc = gapi_call_newv(&r, c, svcs[STORAGE], "objects.list", NULL, err, sizeof(err), "bucket",
                            "b", (char *)NULL);
    is_str(rc ? err : gapi_request_header(r, "user-agent"),
           "myapp/1.2 gapi/" GAPI_VERSION_STRING " (gzip)",
           "user-agent with the application name, then (gzip)");
    gapi_request_free(r);
    gapi_client_free(c);
}

/* Plain requests get the introspection accessors too. */
static void test_plain_introspection(void)
{
    gapi_request *r = NULL;
    const char *n = NULL, *v = NULL;
    const void *b;
    size_t len;

    gapi_request_new(&r, g_cli, "PUT", "https://example.com/x");
    is_int(gapi_request_header_count(r), 0, "plain request: no headers");
    gapi_request_add_header(r, "X-A", "1");
    gapi_request_add_header(r, "x-b", "two words");
    gapi_request_add_header(r, "X-A", "3");
    gapi_request_set_body(r, "abc", 3, "text/plain");
    is_int(gapi_request_header_count(r), 3, "three headers");
    gapi_request_header_at(r, 1, &n, &v);
    ok(!strcmp(n, "x-b") && !strcmp(v, "two words"), "header_at(1)");
    is_str(gapi_request_header(r, "x-a"), "1", "header(): first of the name, case-insensitive");
    b = gapi_request_body(r, &len);
    ok(len == 3 && memcmp(b, "abc", 3) == 0, "body accessor");
    is_str(gapi_request_content_type(r), "text/plain", "content type accessor");
    is_int(gapi_request_header_count(NULL), 0, "NULL request: 0 headers");
    is_str(gapi_request_header(NULL, "x"), NULL, "NULL request: no header");
    ok(gapi_call_method(r) == NULL && gapi_request_google_error(r) == NULL,
       "a plain request is no call");
    gapi_request_free(r);
}

/* ------------------------------------------------------------ patterns */

typedef struct pat_count {
    size_t checked, distinct, failed;
    const char *seen[512];
} pat_count;

static void check_pattern(pat_count *pc, const char *pat, const char *where)
{
    char err[256];
    size_t i;
    int rc;

    for (i = 0; i < pc->distinct; i++)
        if (strcmp(pc->seen[i], pat) == 0)
            return;
    if (pc->distinct < sizeof(pc->seen) / sizeof(pc->seen[0]))
        pc->seen[pc->distinct++] = strdup(pat);
    pc->checked++;
    rc = gapi__pattern_match(pat, "x", err, sizeof(err));
    if (rc < 0) {
        pc->failed++;
        diag("%s: %s: %s", where, pat, err);
    }
}

static void test_all_patterns(void)
{
    char *dir = tap_shared_path("discovery");
    pat_count *pc;
    struct dirent *de;
    DIR *d;
    size_t docs = 0;

    if (!dir)
        return;
    pc = calloc(1, sizeof(*pc));
    d = opendir(dir);
    while (d && (de = readdir(d)) != NULL) {
        char path[1024], err[256];
        gapi_service *s = NULL;
        size_t i, k;

        if (!strstr(de->d_name, ".json"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (gapi_service_from_file(&s, path, NULL, err, sizeof(err)) != GAPI_OK) {
            ok(0, "%s loads (%s)", de->d_name, err);
            continue;
        }
        docs++;
        for (i = 0; i < gapi_service_param_count(s); i++) {
            const char *p = gapi_param_pattern(gapi_service_param_at(s, i));
            if (p)
                check_pattern(pc, p, de->d_name);
        }
        for (i = 0; i < gapi_service_method_count(s); i++) {
            const gapi_method *m = gapi_service_method_at(s, i);
            for (k = 0; k < gapi_method_param_count(m); k++) {
                const char *p = gapi_param_pattern(gapi_method_param_at(m, k));
                if (p)
                    check_pattern(pc, p, gapi_method_id(m));
            }
        }
        gapi_service_unref(s);
    }
    if (d)
        closedir(d);
    ok(docs >= 10, "every shared document read (%zu)", docs);
    ok(pc->checked >= 100, "distinct patterns found (%zu)", pc->checked);
    is_int(pc->failed, 0, "every pattern of every shared document compiles");
    diag("%zu documents, %zu distinct patterns", docs, pc->checked);
    while (pc->distinct)
        free((void *)pc->seen[--pc->distinct]);
    free(pc);
    free(dir);
}

static void test_pattern_semantics(void)
{
    static const struct {
        const char *pattern, *value;
        int match;
    } cases[] = {
        {"^projects/[^/]+/topics/[^/]+$", "projects/p/topics/t", 1},
        {"^projects/[^/]+/topics/[^/]+$", "projects/p/topics/", 0},
        {"^projects/[^/]+/topics/[^/]+$", "xprojects/p/topics/t", 0},
        {"^projects/[^/]+/topics/[^/]+$", "projects/p/topics/t\n", 1}, /* [^/] takes \n */
        /* compute's project: domain-scoped names and numbers */
        {"(?:(?:[-a-z0-9]{1,63}\\.)*(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?):)?(?:[0-9]{1,19}|(?:[a-"
         "z0-"
         "9](?:[-a-z0-9]{0,61}[a-z0-9])?))",
         "google.com:my-proj", 1},
        {"(?:(?:[-a-z0-9]{1,63}\\.)*(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?):)?(?:[0-9]{1,19}|(?:[a-"
         "z0-"
         "9](?:[-a-z0-9]{0,61}[a-z0-9])?))",
         "123456", 1},
        {"(?:(?:[-a-z0-9]{1,63}\\.)*(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?):)?(?:[0-9]{1,19}|(?:[a-"
         "z0-"
         "9](?:[-a-z0-9]{0,61}[a-z0-9])?))",
         "-bad", 0},
        /* re.match semantics: anchored at the start only, like Python */
        {"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?", "us-central1-a", 1},
        {"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?", "Us", 0},
        {"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?", "a!!", 1},
        {"\\S{1,66}", "x", 1},
        {"\\S{1,66}", " x", 0},
        {"\\w[\\w.-]{0,254}", "a.b-c_d", 1},
        {"\\w[\\w.-]{0,254}", ".a", 0},
        {"[0-9]{0,61}?", "", 1},
        {"(firewallPolicies/)?[0-9]{0,20}", "firewallPolicies/12", 1},
        {"^[^/]+$", "a/b", 0},
        {"^[^/]+$", "", 0},
        {"^a{,2}$", "aa", 1},
        {"^a{,2}$", "aaa", 0},
        {"^a{x}$", "a{x}", 1}, /* not a quantifier: literal braces, as in Python */
        {"^a\\.b$", "a.b", 1},
        {"^a\\.b$", "axb", 0},
        {"^\\d+$", "123", 1},
        {"^\\d+$", "12a", 0},
        {"^[\\d.]+$", "1.2", 1},
        {"^a|b$", "bcd", 0}, /* alternation under the anchors as Python reads it: "^a" or "b$" */
        {"^a|b$", "abc", 1},
        {"^(?:ab)*?c$", "ababc", 1},
    };
    static const struct {
        const char *pattern, *ere;
    } trans[] = {
        {"(?:a|b)", "^((a|b))"},
        {"\\S{1,66}", "^([^[:space:]]{1,66})"},
        {"\\w[\\w.-]{0,254}", "^([[:alnum:]_][[:alnum:]_.-]{0,254})"},
        {"[0-9]{0,61}?", "^([0-9]{0,61})"},
        {"a{,3}", "^(a{0,3})"},
        {"a\\/b\\.c", "^(a/b\\.c)"},
        {"x{y}", "^(x\\{y\\})"},
    };
    static const char *const refused[] = {"(?=a)", "(?P<n>a)", "\\bword", "[\\S]", "(a",
                                          "a)",    "[abc",     "\\1",     "a\\",   "[[:alpha:]]",
                                          "(?i)a", "\\A",      "[a\\-z]"};
    char err[256];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char q[80];
        gapi__quote_value(q, sizeof(q), cases[i].value);
        is_int(gapi__pattern_match(cases[i].pattern, cases[i].value, err, sizeof(err)),
               cases[i].match, "pattern %s on \"%s\"", cases[i].pattern, q);
    }
    for (i = 0; i < sizeof(trans) / sizeof(trans[0]); i++) {
        gapi__buf b = GAPI__BUF_INIT;
        int rc = gapi__pattern_translate(&b, trans[i].pattern, err, sizeof(err));
        ok(rc == 0 && strcmp(b.data, trans[i].ere) == 0, "translate %s -> %s (got %s)",
           trans[i].pattern, trans[i].ere, b.data ? b.data : err);
        gapi__buf_free(&b);
    }
    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        gapi__buf b = GAPI__BUF_INIT;
        int rc = gapi__pattern_translate(&b, refused[i], err, sizeof(err));
        ok(rc == GAPI_EINVAL && strstr(err, "is not supported") && (!b.data || !b.len),
           "translate refuses %s (%s)", refused[i], err);
        gapi__buf_free(&b);
    }
    is_int(gapi__pattern_match("[[:alpha:]]", "a", err, sizeof(err)), GAPI_EINVAL,
           "an untranslatable pattern is an error for the matcher");
    is_str(err,
           "pattern \"[[:alpha:]]\": \"[:\", \"[.\" or \"[=\" inside [...] at offset 1 is not "
           "supported",
           "... with a message naming the offset");
    is_int(gapi__pattern_match("^a{2,1}$", "a", err, sizeof(err)), GAPI_EINVAL,
           "a pattern regcomp refuses: EINVAL");
    ok(strstr(err, "does not compile") != NULL, "... message: %s", err);
}

/* ------------------------------------------------------------ Google errors */

typedef struct gerr_case {
    int status;
    const char *body;
    const char *errmsg; /* expected gapi__google_error_format output */
    int code;
    const char *message, *gstatus, *reason;
    size_t count;
} gerr_case;

static void test_google_errors(void)
{
    static const gerr_case cases[] = {
        {404,
         "{\"error\":{\"code\":404,\"message\":\"No such object: b/o\",\"errors\":[{\"message\":"
         "\"No such object: b/o\",\"domain\":\"global\",\"reason\":\"notFound\"}]}}",
         "HTTP 404: No such object: b/o (notFound)", 404, "No such object: b/o", NULL, "notFound",
         1},
        {403,
         "{\"error\":{\"code\":403,\"message\":\"Permission denied\",\"status\":"
         "\"PERMISSION_DENIED\",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc."
         "ErrorInfo\",\"reason\":\"IAM_PERMISSION_DENIED\"}]}}",
         "HTTP 403: Permission denied (PERMISSION_DENIED)", 403, "Permission denied",
         "PERMISSION_DENIED", NULL, 0},
        {400, "{\"error\":\"invalid_grant\",\"error_description\":\"Bad Request\"}",
         "HTTP 400: Bad Request (invalid_grant)", 400, "Bad Request", NULL, "invalid_grant", 1},
        {401, "{\"error\":\"invalid_client\"}", "HTTP 401 (invalid_client)", 401, NULL, NULL,
         "invalid_client", 1},
        {429,
         "[{\"error\":{\"code\":429,\"message\":\"Quota exceeded\",\"status\":"
         "\"RESOURCE_EXHAUSTED\"}}]",
         "HTTP 429: Quota exceeded (RESOURCE_EXHAUSTED)", 429, "Quota exceeded",
         "RESOURCE_EXHAUSTED", NULL, 0},
        {404,
         "<!DOCTYPE html>\n<html lang=en>\n<meta charset=utf-8>\n<title>Error 404 (Not "
         "Found)!!1</title>\n<p>The requested URL was not found.</p>",
         "HTTP 404: Error 404 (Not Found)!!1", 404, "Error 404 (Not Found)!!1", NULL, NULL, 0},
        {503, "\r\n  Service Unavailable  \r\nmore text", "HTTP 503: Service Unavailable", 503,
         "Service Unavailable", NULL, NULL, 0},
        {502, "", "HTTP 502", 502, NULL, NULL, NULL, 0},
        {500, "   \n\t\n", "HTTP 500", 500, NULL, NULL, NULL, 0},
        {500, "{\"error\":{\"code\":\"500\",\"message\":7,\"status\":[],\"errors\":{}}}",
         "HTTP 500", 500, NULL, NULL, NULL, 0},
        {500, "{\"error\":{\"code\":99999999999,\"message\":\"m\"}}", "HTTP 500: m", 500, "m", NULL,
         NULL, 0},
        {418, "{\"error\":{\"code\":200,\"message\":\"teapot\"}}", "HTTP 418: teapot", 200,
         "teapot", NULL, NULL, 0},
        {500,
         "{\"error\":{\"errors\":[1,\"x\",null,{\"reason\":5,\"domain\":\"d\"},{\"reason\":\"r2\"}"
         "]}}",
         "HTTP 500", 500, NULL, NULL, NULL, 2},
        {500, "{\"error\":{\"message\":\"line1\\nline2\\u0007\\t\"}}", "HTTP 500: line1 line2  ",
         500, "line1\nline2\a\t", NULL, NULL, 0},
        {500, "{\"error\":{\"message\":\"a\\u0000b\"}}", "HTTP 500: a", 500, "a", NULL, NULL, 0},
        {500, "{\"error\": ", "HTTP 500", 500, NULL, NULL, NULL, 0},
        {500, "{\"error\":null}", "HTTP 500", 500, NULL, NULL, NULL, 0},
        {500, "null", "HTTP 500: null", 500, "null", NULL, NULL, 0},
        {500, "[]", "HTTP 500", 500, NULL, NULL, NULL, 0},
        {500, "{}", "HTTP 500", 500, NULL, NULL, NULL, 0},
        {500, "[{\"error\":\"x\"},{\"error\":\"y\"}]", "HTTP 500 (x)", 500, NULL, NULL, "x", 1},
        {500, "<title>unclosed", "HTTP 500: <title>unclosed", 500, "<title>unclosed", NULL, NULL,
         0},
        {500, "\xff\xfe bad \x01 bytes", "HTTP 500: \xff\xfe bad   bytes", 500,
         "\xff\xfe bad   bytes", NULL, NULL, 0},
    };
    gapi_google_error *e;
    char buf[256];
    size_t i;
    int rc;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const gerr_case *c = &cases[i];
        e = NULL;
        rc = gapi_google_error_parse(&e, c->status, c->body, strlen(c->body));
        if (!ok(rc == 0 && e, "error body %zu parses", i))
            continue;
        gapi__google_error_format(e, buf, sizeof(buf));
        is_str(buf, c->errmsg, "error body %zu: summary", i);
        ok(gapi_google_error_http_status(e) == c->status && gapi_google_error_code(e) == c->code,
           "error body %zu: status %d, code %d", i, gapi_google_error_http_status(e),
           gapi_google_error_code(e));
        is_str(gapi_google_error_message(e), c->message, "error body %zu: message", i);
        is_str(gapi_google_error_status(e), c->gstatus, "error body %zu: status text", i);
        is_int(gapi_google_error_count(e), c->count, "error body %zu: item count", i);
        is_str(gapi_google_error_reason(e, 0), c->reason, "error body %zu: first reason", i);
        gapi_google_error_free(e);
    }

    /* Fields of the full format, details borrowed. */
    {
        const char *body =
            "{\"error\":{\"code\":400,\"message\":\"Invalid\",\"status\":\"INVALID_ARGUMENT\","
            "\"errors\":[{\"reason\":\"invalid\",\"domain\":\"global\",\"message\":\"m1\"},"
            "{\"reason\":\"required\",\"domain\":\"usageLimits\",\"message\":\"m2\"}],"
            "\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.BadRequest\","
            "\"fieldViolations\":[{\"field\":\"name\"}]}]}}";
        struct json_object *d;

        rc = gapi_google_error_parse(&e, 400, body, strlen(body));
        ok(rc == 0 && gapi_google_error_count(e) == 2, "two items");
        ok(!strcmp(gapi_google_error_reason(e, 1), "required") &&
               !strcmp(gapi_google_error_domain(e, 1), "usageLimits") &&
               !strcmp(gapi_google_error_item_message(e, 1), "m2"),
           "item 1: reason, domain, message");
        ok(gapi_google_error_reason(e, 2) == NULL && gapi_google_error_domain(e, 9) == NULL,
           "items past the end: NULL");
        d = gapi_google_error_details(e);
        ok(json_object_is_type(d, json_type_array) && json_object_array_length(d) == 1,
           "details: the array");
        ok(!strcmp(json_object_get_string(
                       json_object_object_get(json_object_array_get_idx(d, 0), "@type")),
                   "type.googleapis.com/google.rpc.BadRequest"),
           "details[0][@type]");
        gapi__google_error_format(e, buf, sizeof(buf));
        is_str(buf, "HTTP 400: Invalid (invalid)", "reason preferred to status");
        /* Small buffers: cut, NUL-terminated; the reason survives a long
         * message when there is room. */
        memset(buf, 'z', sizeof(buf));
        gapi__google_error_format(e, buf, 1);
        ok(buf[0] == '\0' && buf[1] == 'z', "size 1: empty string");
        gapi__google_error_format(e, buf, 12);
        ok(strlen(buf) == 11 && buf[12] == 'z', "size 12: 11 characters (%s)", buf);
        gapi_google_error_free(e);
    }
    {
        size_t n = 100000, k;
        char *body = malloc(n + 200);
        int o = sprintf(body, "{\"error\":{\"message\":\"");
        for (k = 0; k < n; k++)
            body[o + k] = 'm';
        sprintf(body + o + n, "\",\"errors\":[{\"reason\":\"rateLimitExceeded\"}]}}");
        rc = gapi_google_error_parse(&e, 429, body, strlen(body));
        gapi__google_error_format(e, buf, sizeof(buf));
        ok(rc == 0 && strlen(buf) == sizeof(buf) - 1 &&
               strcmp(buf + strlen(buf) - 20, " (rateLimitExceeded)") == 0,
           "100 KB message: summary cut, reason kept (...%s)", buf + strlen(buf) - 24);
        is_int(strlen(gapi_google_error_message(e)), n, "full message still readable");
        gapi_google_error_free(e);
        free(body);
    }
    {
        /* Nesting beyond the parser's limit for error bodies: no message,
         * no crash. */
        size_t n = 100000, k;
        char *body = malloc(n);
        for (k = 0; k < n; k++)
            body[k] = '[';
        rc = gapi_google_error_parse(&e, 500, body, n);
        ok(rc == 0 && gapi_google_error_message(e) == NULL, "100000 '[': no message");
        gapi_google_error_free(e);
        free(body);
    }
    {
        /* A text message is cut at 200 bytes on a character boundary. */
        char body[600];
        size_t k;
        for (k = 0; k + 2 <= 500; k += 2)
            memcpy(body + k, "\xC3\xA9", 2);
        body[k] = '\0';
        rc = gapi_google_error_parse(&e, 500, body + 1, strlen(body + 1));
        ok(rc == 0 && strlen(gapi_google_error_message(e)) <= 200 &&
               (gapi_google_error_message(e)[strlen(gapi_google_error_message(e)) - 1] & 0xff) ==
                   0xA9,
           "text message cut at 200 bytes without splitting a character (%zu bytes)",
           strlen(gapi_google_error_message(e)));
        gapi_google_error_free(e);
    }
    is_int(gapi_google_error_parse(NULL, 500, "", 0), GAPI_EINVAL, "parse: NULL out");
    is_int(gapi_google_error_parse(&e, 500, NULL, 3), GAPI_EINVAL, "parse: NULL body with len");
    ok(gapi_google_error_parse(&e, 500, NULL, 0) == 0 && gapi_google_error_message(e) == NULL,
       "parse: NULL body, len 0");
    gapi_google_error_free(e);
    ok(gapi_google_error_code(NULL) == 0 && gapi_google_error_message(NULL) == NULL &&
           gapi_google_error_count(NULL) == 0 && gapi_google_error_details(NULL) == NULL,
       "NULL error: zero fields");
    gapi_google_error_free(NULL);
}

/* ------------------------------------------------------------ next page */

/* A response as the transport would hand it over, for next-page tests. */
static void fake_response(gapi_response *resp, const char *json)
{
    memset(resp, 0, sizeof(*resp));
    resp->status = 200;
    resp->json = json ? json_tokener_parse(json) : NULL;
}

static void test_next_page(void)
{
    gapi_response resp;
    gapi_request *r, *next, *next2;
    const void *b;
    size_t len;
    char err[256];
    int rc;

    if (!svcs[STORAGE] || !svcs[LOGGING]) {
        skip(20, "documents not loaded");
        return;
    }
    r = mk(STORAGE, "objects.list",
           PARAMS({"bucket", "b"}, {"maxResults", "2"}, {"pageToken", "old"}, {"prefix", "p"}),
           NULL);
    gapi_request_add_header(r, "x-goog-user-project", "bill");
    gapi_request_set_timeouts(r, 1000, 2000, 3000);

    fake_response(&resp, "{\"items\":[],\"nextPageToken\":\"tok/+= \\u00e9\"}");
    next = (gapi_request *)&next;
    rc = gapi_call_next_page(&next, r, &resp, err, sizeof(err));
    is_int(rc, 0, "next page built (%s)", err);
    is_str(gapi_request_url(next),
           "https://storage.googleapis.com/storage/v1/b/b/o"
           "?alt=json&maxResults=2&pageToken=tok%2F%2B%3D%20%C3%A9&prefix=p",
           "pageToken replaced, in its sorted place, encoded");
    is_int(gapi_request_header_count(next), gapi_request_header_count(r), "headers copied");
    is_str(gapi_request_header(next, "x-goog-user-project"), "bill", "caller's header copied");
    ok(next->connect_ms == 1000 && next->stall_ms == 2000 && next->deadline_ms == 3000,
       "timeouts copied");
    ok(gapi_call_method(next) == gapi_call_method(r), "same method");
    json_object_put(resp.json);

    /* The next of the next. */
    fake_response(&resp, "{\"nextPageToken\":\"t3\"}");
    rc = gapi_call_next_page(&next2, next, &resp, err, sizeof(err));
    is_str(rc ? err : gapi_request_url(next2),
           "https://storage.googleapis.com/storage/v1/b/b/o"
           "?alt=json&maxResults=2&pageToken=t3&prefix=p",
           "third page");
    gapi_request_free(next2);
    json_object_put(resp.json);
    gapi_request_free(next);

    /* The last page. */
    {
        static const char *const last[] = {"{\"items\":[]}",
                                           "{\"nextPageToken\":\"\"}",
                                           "{\"nextPageToken\":7}",
                                           "{\"nextPageToken\":null}",
                                           "[1]",
                                           NULL};
        size_t i;
        for (i = 0; i < sizeof(last) / sizeof(last[0]); i++) {
            fake_response(&resp, last[i]);
            next = (gapi_request *)&next;
            rc = gapi_call_next_page(&next, r, &resp, err, sizeof(err));
            ok(rc == 0 && next == NULL, "no next page for %s", last[i] ? last[i] : "no JSON");
            json_object_put(resp.json);
        }
        ok(gapi_call_next_page(&next, r, NULL, err, sizeof(err)) == 0 && next == NULL,
           "no response: no next page");
    }
    /* Errors. */
    fake_response(&resp, "{\"nextPageToken\":\"t\"}");
    next = (gapi_request *)&next;
    is_int(gapi_call_next_page(NULL, r, &resp, err, sizeof(err)), GAPI_EINVAL, "NULL out");
    is_int(gapi_call_next_page(&next, NULL, &resp, err, sizeof(err)), GAPI_EINVAL, "NULL prev");
    {
        gapi_request *plain = NULL;
        gapi_request_new(&plain, g_cli, "GET", "https://example.com/");
        rc = gapi_call_next_page(&next, plain, &resp, err, sizeof(err));
        ok(rc == GAPI_EINVAL && next == (gapi_request *)&next, "plain request: EINVAL");
        is_str(err, "gapi_call_next_page: the request was not made by gapi_call_*",
               "plain request: message");
        gapi_request_free(plain);
    }
    {
        gapi_request *g =
            mk(STORAGE, "objects.get", PARAMS({"bucket", "b"}, {"object", "o"}), NULL);
        rc = gapi_call_next_page(&next, g, &resp, err, sizeof(err));
        ok(rc == GAPI_EINVAL && next == (gapi_request *)&next, "method without paging: EINVAL");
        is_str(err, "storage.objects.get: the method has no pageToken parameter or request field",
               "method without paging: message");
        gapi_request_free(g);
    }
    json_object_put(resp.json);
    gapi_request_free(r);

    /* Body token: logging entries.list takes pageToken in its body. */
    {
        struct json_object *body =
            json_tokener_parse("{\"resourceNames\":[\"projects/p\"],\"pageSize\":5}");
        const char *want =
            "{\"resourceNames\":[\"projects/p\"],\"pageSize\":5,\"pageToken\":\"T/1\"}";

        r = mk(LOGGING, "entries.list", NULL, 0, body);
        fake_response(&resp, "{\"entries\":[],\"nextPageToken\":\"T/1\"}");
        rc = gapi_call_next_page(&next, r, &resp, err, sizeof(err));
        is_int(rc, 0, "body-token next page (%s)", err);
        b = gapi_request_body(next, &len);
        ok(b && len == strlen(want) && memcmp(b, want, len) == 0, "pageToken set in the body: %.*s",
           (int)len, b ? (const char *)b : "");
        is_str(gapi_request_url(next), "https://logging.googleapis.com/v2/entries:list?alt=json",
               "body-token: URL unchanged");
        is_str(gapi_request_content_type(next), "application/json", "body-token: content type");
        json_object_put(resp.json);
        fake_response(&resp, "{\"nextPageToken\":\"T2\"}");
        rc = gapi_call_next_page(&next2, next, &resp, err, sizeof(err));
        b = gapi_request_body(next2, &len);
        {
            char copy[256];
            snprintf(copy, sizeof(copy), "%.*s", (int)len, b ? (const char *)b : "");
            ok(rc == 0 && len && strstr(copy, "\"pageToken\":\"T2\"") && !strstr(copy, "T/1"),
               "body-token: the token replaced, not added twice");
        }
        gapi_request_free(next2);
        gapi_request_free(next);
        gapi_request_free(r);
        json_object_put(resp.json);
        json_object_put(body);

        /* No body yet: one is made. */
        r = mk(LOGGING, "entries.list", NULL, 0, NULL);
        fake_response(&resp, "{\"nextPageToken\":\"X\"}");
        rc = gapi_call_next_page(&next, r, &resp, err, sizeof(err));
        b = gapi_request_body(next, &len);
        ok(rc == 0 && len == 17 && memcmp(b, "{\"pageToken\":\"X\"}", 17) == 0,
           "body-token without a body: {\"pageToken\":\"X\"}");
        gapi_request_free(next);
        gapi_request_free(r);
        json_object_put(resp.json);
    }
}

/* ------------------------------------------------------------ allocation failures */

static void test_alloc_failures(void)
{
    struct json_object *body = json_tokener_parse("{\"name\":\"x\"}");
    gapi_request *r, *want = NULL;
    gapi_response resp;
    char err[256];
    long n;
    int rc, bad = 0, steps = 0;

    if (!svcs[STORAGE] || !svcs[COMPUTE]) {
        skip(6, "documents not loaded");
        json_object_put(body);
        return;
    }
    want =
        mk(COMPUTE, "instances.insert",
           PARAMS({"project", "google.com:p"}, {"zone", "us-east1-b"}, {"requestId", "r"}), body);
    for (n = 1;; n++) {
        r = (gapi_request *)&r;
        arm(n);
        rc = gapi_call_new(
            &r, g_cli, svcs[COMPUTE], "instances.insert",
            PARAMS({"project", "google.com:p"}, {"zone", "us-east1-b"}, {"requestId", "r"}), body,
            err, sizeof(err));
        disarm();
        steps++;
        if (!failed_once) {
            ok(rc == 0, "call built once no allocation fails (after %ld)", n - 1);
            same_request(r, want, "built under the failing allocator");
            gapi_request_free(r);
            break;
        }
        if (rc != GAPI_ENOMEM || r != (gapi_request *)&r || strcmp(err, "out of memory") != 0) {
            bad++;
            diag("allocation %ld: rc %d, message %s", n, rc, err);
        }
    }
    ok(!bad, "every failed allocation (%d) gave GAPI_ENOMEM, *out untouched, \"out of memory\"",
       steps - 1);

    /* Next page. */
    r = mk(STORAGE, "objects.list", PARAMS({"bucket", "b"}, {"prefix", "p"}), NULL);
    fake_response(&resp, "{\"nextPageToken\":\"n\"}");
    for (bad = 0, steps = 0, n = 1;; n++) {
        gapi_request *next = (gapi_request *)&next;
        arm(n);
        rc = gapi_call_next_page(&next, r, &resp, err, sizeof(err));
        disarm();
        steps++;
        if (!failed_once) {
            ok(rc == 0 && next && strstr(gapi_request_url(next), "pageToken=n"),
               "next page built once no allocation fails");
            gapi_request_free(next);
            break;
        }
        if (rc != GAPI_ENOMEM || next != (gapi_request *)&next)
            bad++;
    }
    ok(!bad, "next page: every failed allocation (%d) gave GAPI_ENOMEM", steps - 1);
    json_object_put(resp.json);
    gapi_request_free(r);

    /* Error parsing. */
    {
        const char *eb =
            "{\"error\":{\"code\":1,\"message\":\"m\",\"errors\":[{\"reason\":\"r\"}]}}";
        const char *tb = "plain text";
        gapi_google_error *e;
        int k;
        for (k = 0; k < 2; k++) {
            const char *b = k ? tb : eb;
            for (bad = 0, steps = 0, n = 1;; n++) {
                e = (gapi_google_error *)&e;
                arm(n);
                rc = gapi_google_error_parse(&e, 500, b, strlen(b));
                disarm();
                steps++;
                if (!failed_once) {
                    ok(rc == 0 && gapi_google_error_message(e),
                       "error parse (%s) done once no allocation fails", k ? "text" : "json");
                    gapi_google_error_free(e);
                    break;
                }
                if (rc != GAPI_ENOMEM || e != (gapi_google_error *)&e)
                    bad++;
            }
            ok(!bad, "error parse: every failed allocation (%d) gave GAPI_ENOMEM", steps - 1);
        }
    }
    gapi_request_free(want);
    json_object_put(body);
}

/* ------------------------------------------------------------ threads */

typedef struct thr {
    int failures;
} thr;

static void *builder_thread(void *arg)
{
    thr *t = arg;
    int i;

    for (i = 0; i < 200; i++) {
        char zone[32], err[256];
        gapi_request *r = NULL;
        char want[256];
        snprintf(zone, sizeof(zone), "zone-%d", i);
        snprintf(want, sizeof(want),
                 "https://compute.googleapis.com/compute/v1/projects/proj-%d/zones/%s/instances/"
                 "vm?alt=json",
                 i, zone);
        {
            char proj[32];
            snprintf(proj, sizeof(proj), "proj-%d", i);
            if (gapi_call_newv(&r, g_cli, svcs[COMPUTE], "instances.get", NULL, err, sizeof(err),
                               "project", proj, "zone", zone, "instance", "vm", (char *)NULL) ||
                strcmp(gapi_request_url(r), want) != 0)
                t->failures++;
        }
        gapi_request_free(r);
    }
    return NULL;
}

static void test_threads(void)
{
    pthread_t th[4];
    thr t[4];
    int i, failures = 0;

    if (!svcs[COMPUTE]) {
        skip(1, "document not loaded");
        return;
    }
    for (i = 0; i < 4; i++) {
        t[i].failures = 0;
        pthread_create(&th[i], NULL, builder_thread, &t[i]);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        failures += t[i].failures;
    }
    is_int(failures, 0, "4 threads x 200 calls built from one service, all URLs right");
}

int main(void)
{
    char err[256];
    int i;

    gapi_set_allocator(t_malloc, t_realloc, free);
    g_base = event_base_new();
    if (gapi_client_new(&g_cli, g_base, NULL, err, sizeof(err)) != GAPI_OK) {
        printf("Bail out! gapi_client_new: %s\n", err);
        return 1;
    }
    for (i = 0; i < NSVC; i++)
        svcs[i] = load(svc_files[i]);

    test_urls();
    test_validation();
    test_forms();
    test_headers_and_body();
    test_application_name();
    test_plain_introspection();
    test_all_patterns();
    test_pattern_semantics();
    test_google_errors();
    test_next_page();
    test_alloc_failures();
    test_threads();

    for (i = 0; i < NSVC; i++)
        gapi_service_unref(svcs[i]);
    gapi_client_free(g_cli);
    event_base_free(g_base);
    return tap_done();
}
