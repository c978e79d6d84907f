/* test_schedfile: good files parse into the expected entries; every bad file reports each error
 * at the offending node's line:column and yields no schedule; next, expand and digest. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "job.h"
#include "schedfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA SALVO_TEST_DATA "/sched/"

static schedfile *load_ok(const char *file)
{
    schedfile *sf = NULL;
    char *errors = NULL;
    int rc = schedfile_load(file, &sf, &errors);
    if (rc != ERR_OK)
        fprintf(stderr, "unexpected errors:\n%s", errors ? errors : "(none)");
    assert_int_equal(rc, ERR_OK);
    assert_null(errors);
    assert_non_null(sf);
    return sf;
}

static const sched_entry *entry(const schedfile *sf, const char *name)
{
    for (size_t i = 0; i < sf->n; i++) {
        if (strcmp(sf->entries[i].name, name) == 0)
            return &sf->entries[i];
    }
    fail_msg("no entry '%s'", name);
    return NULL;
}

static const char *header(const job_http *h, const char *name)
{
    for (size_t i = 0; i < h->nheaders; i++) {
        if (strcmp(h->headers[i].name, name) == 0)
            return h->headers[i].value;
    }
    return NULL;
}

static int setup_env(void **state)
{
    (void)state;
    setenv("SALVO_TEST_TOKEN", "abc123", 1);
    unsetenv("SALVO_TEST_UNSET_VAR");
    return 0;
}

static void check_ctx_str(const jval *ctx, const char *path, const char *want)
{
    const jval *v = jval_path(ctx, path);
    assert_non_null(v);
    assert_int_equal(v->type, JVAL_STR);
    assert_string_equal(v->u.s.ptr, want);
}

static void check_ctx_type(const jval *ctx, const char *path, jval_type t)
{
    const jval *v = jval_path(ctx, path);
    assert_non_null(v);
    assert_int_equal(v->type, t);
}

static void test_full_inventory(void **state)
{
    (void)state;
    schedfile *sf = load_ok(DATA "good_full.yaml");
    assert_int_equal(sf->n, 3);
    const sched_entry *e = entry(sf, "inventory");
    cronexpr want;
    assert_int_equal(cronexpr_parse(&want, "0 */5 * * * *", NULL, 0), ERR_OK);
    assert_int_equal(e->kind, SCHED_CRON);
    assert_true(e->cron.sec == want.sec && e->cron.min == want.min && e->cron.hour == want.hour);
    assert_int_equal(e->line, 15);
    assert_string_equal(e->tz_name, "Europe/Paris"); /* from defaults */
    assert_non_null(e->tz);
    assert_string_equal(e->http.method, "POST"); /* defaults' "post", upper-cased */
    assert_string_equal(e->http.url,
                        "http://127.0.0.1:8088/process/inventory?store={{item}}&i={{index}}");
    assert_int_equal(e->http.timeout_ms, 10000);        /* job overrides */
    assert_int_equal(e->http.connect_timeout_ms, 3000); /* defaults */
    assert_int_equal(e->http.nheaders, 3);              /* merged by name */
    assert_string_equal(header(&e->http, "X-Team"), "stores-{{index}}");
    assert_string_equal(header(&e->http, "Authorization"), "Bearer abc123");
    assert_string_equal(header(&e->http, "Content-Type"), "application/json");
    assert_string_equal(e->http.body,
                        "{\"store\": \"{{item}}\", \"region\": \"{{context.region}}\"}");
    assert_int_equal(e->http.body_len, strlen(e->http.body));
    assert_int_equal(e->http.nok_status, 3);
    assert_int_equal(e->http.ok_status[2], 204);
    assert_true(e->http.follow_redirects);
    assert_int_equal(e->fan_count, 3);
    assert_string_equal(e->fan_items[1], "s2");
    assert_int_equal(e->misfire, SCHED_MISFIRE_ALL);
    assert_int_equal(e->misfire_max, 10);
    assert_int_equal(e->max_attempts, 6);
    assert_int_equal(e->max_lateness_ms, 45000);
    assert_int_equal(e->lead_ms, 2000);
    schedfile_free(sf);
}

static void test_full_context_typing(void **state)
{
    (void)state;
    schedfile *sf = load_ok(DATA "good_full.yaml");
    const jval *ctx = &entry(sf, "inventory")->context;
    assert_int_equal(ctx->type, JVAL_MAP);
    check_ctx_str(ctx, "region", "eu-west"); /* merged from defaults */
    assert_int_equal(jval_path(ctx, "tier")->u.i, 1);
    check_ctx_str(ctx, "store", "{{item}}");
    check_ctx_type(ctx, "count", JVAL_INT);
    assert_int_equal(jval_path(ctx, "count")->u.i, 42);
    assert_int_equal(jval_path(ctx, "negative")->u.i, -7);
    check_ctx_type(ctx, "ratio", JVAL_FLOAT);
    assert_true(jval_path(ctx, "ratio")->u.f == 1.5);
    check_ctx_type(ctx, "on", JVAL_BOOL);
    assert_true(jval_path(ctx, "on")->u.b);
    assert_false(jval_path(ctx, "off")->u.b);
    check_ctx_type(ctx, "nothing", JVAL_NIL);
    check_ctx_type(ctx, "tilde", JVAL_NIL);
    check_ctx_str(ctx, "quoted", "42");
    check_ctx_str(ctx, "single", "007");
    check_ctx_type(ctx, "nested.list", JVAL_ARRAY);
    assert_int_equal(jval_path(ctx, "nested.list.0")->u.i, 1);
    check_ctx_str(ctx, "nested.list.1", "two");
    check_ctx_type(ctx, "nested.list.2", JVAL_FLOAT);
    check_ctx_str(ctx, "nested.deep.k", "v");
    check_ctx_str(ctx, "literal", "${NOT_A_VAR}"); /* $${ escapes */
    schedfile_free(sf);
}

static void test_full_inheritance(void **state)
{
    (void)state;
    schedfile *sf = load_ok(DATA "good_full.yaml");
    const sched_entry *hb = entry(sf, "heartbeat");
    assert_int_equal(hb->kind, SCHED_EVERY);
    assert_int_equal(hb->cron.every_s, 30);
    assert_string_equal(hb->tz_name, "UTC");
    assert_string_equal(hb->http.method, "GET");
    assert_int_equal(hb->http.timeout_ms, 20000);
    assert_string_equal(header(&hb->http, "X-Team"), "ops");
    assert_int_equal(hb->fan_count, 4);
    assert_null(hb->fan_items);
    assert_int_equal(hb->misfire, SCHED_MISFIRE_ONCE);
    assert_int_equal(hb->misfire_max, SCHED_MISFIRE_ALL_MAX);
    assert_int_equal(hb->max_attempts, 3);
    assert_int_equal(hb->max_lateness_ms, 250);
    assert_int_equal(hb->lead_ms, 0);
    const sched_entry *once = entry(sf, "once");
    assert_int_equal(once->kind, SCHED_AT);
    assert_int_equal(once->at_s, 1796124600); /* 2026-12-01T11:30:00Z */
    assert_string_equal(once->tz_name, "Europe/Paris");
    check_ctx_str(&once->context, "region", "us-east");
    assert_int_equal(jval_path(&once->context, "tier")->u.i, 1);
    assert_int_equal(once->lead_ms, 1000);
    assert_int_equal(once->fan_count, 1);
    schedfile_free(sf);
}

static void test_minimal_defaults(void **state)
{
    (void)state;
    schedfile *sf = load_ok(DATA "good_minimal.yaml");
    assert_int_equal(sf->n, 1);
    const sched_entry *e = &sf->entries[0];
    assert_int_equal(e->cron.every_s, 10); /* a plain integer is seconds */
    assert_string_equal(e->tz_name, "UTC");
    assert_non_null(e->tz);
    assert_string_equal(e->http.method, "GET");
    assert_int_equal(e->http.timeout_ms, JOB_DEFAULT_TIMEOUT_MS);
    assert_int_equal(e->http.connect_timeout_ms, JOB_DEFAULT_CONNECT_TIMEOUT_MS);
    assert_int_equal(e->http.nheaders, 0);
    assert_null(e->http.body);
    assert_int_equal(e->http.nok_status, 0);
    assert_false(e->http.follow_redirects);
    assert_int_equal(e->context.type, JVAL_MAP);
    assert_int_equal(e->context.u.map.n, 0);
    assert_int_equal(e->fan_count, 1);
    assert_int_equal(e->misfire, SCHED_MISFIRE_SKIP);
    assert_int_equal(e->max_attempts, JOB_DEFAULT_MAX_ATTEMPTS);
    assert_int_equal(e->max_lateness_ms, 0);
    assert_int_equal(e->lead_ms, 0);
    schedfile_free(sf);
}

static void test_example_file(void **state)
{
    (void)state;
    schedfile *sf = load_ok(SALVO_TEST_DATA "/../../deploy/examples/schedule.yaml");
    assert_int_equal(sf->n, 4);
    const sched_entry *inv = entry(sf, "inventory");
    assert_int_equal(inv->fan_count, 100);
    assert_string_equal(inv->tz_name, "Europe/Paris");
    assert_string_equal(entry(sf, "daily-report")->tz_name, "America/New_York");
    assert_int_equal(entry(sf, "heartbeat")->cron.every_s, 5);
    const sched_entry *demo = entry(sf, "stores-demo");
    assert_int_equal(demo->fan_count, 100);
    assert_int_equal(demo->max_lateness_ms, 10000);
    schedfile_free(sf);
}

static void test_empty_jobs(void **state)
{
    (void)state;
    schedfile *sf = NULL;
    const char *text = "jobs: []\n";
    assert_int_equal(schedfile_parse("mem", text, strlen(text), &sf, NULL), ERR_OK);
    assert_int_equal(sf->n, 0);
    assert_string_equal(sf->path, "mem");
    schedfile_free(sf);
}

/* Each job is composed into a document of its own: aliases still reach anchors in the defaults,
 * in an earlier job, and in the same job. */
static void test_anchors_across_jobs(void **state)
{
    (void)state;
    static const char *text =
        "defaults:\n  http: {headers: &hd {X-A: b}}\njobs:\n"
        "  - name: a\n    every: 5s\n    http: {url: &u \"http://h/x\", headers: *hd}\n"
        "    context: &ctx {k: 1, l: [1, *u]}\n"
        "  - name: b\n    every: 5s\n    http: {url: *u}\n    context: *ctx\n";
    schedfile *sf = NULL;
    char *errors = NULL;
    int rc = schedfile_parse("mem", text, strlen(text), &sf, &errors);
    if (rc != ERR_OK)
        fail_msg("%s", errors ? errors : "?");
    assert_int_equal(sf->n, 2);
    const sched_entry *b = entry(sf, "b");
    assert_string_equal(b->http.url, "http://h/x");
    assert_string_equal(header(&b->http, "X-A"), "b");
    const jval *k = jval_map_get(&b->context, "k");
    assert_non_null(k);
    assert_int_equal(k->u.i, 1);
    const jval *l = jval_map_get(&b->context, "l");
    assert_non_null(l);
    assert_int_equal(l->u.arr.n, 2);
    assert_string_equal(l->u.arr.items[1].u.s.ptr, "http://h/x");
    assert_true(b->digest == entry(sf, "a")->digest); /* the same job through the aliases */
    schedfile_free(sf);
}

/* Defaults given after the job list still apply to every job. */
static void test_defaults_after_jobs(void **state)
{
    (void)state;
    static const char *text = "jobs:\n  - name: a\n    every: 5s\n    http: {url: \"http://h/x\"}\n"
                              "defaults:\n  retries: 4\n  timezone: Europe/Paris\n";
    schedfile *sf = NULL;
    assert_int_equal(schedfile_parse("mem", text, strlen(text), &sf, NULL), ERR_OK);
    assert_int_equal(sf->n, 1);
    assert_int_equal(sf->entries[0].max_attempts, 5);
    assert_string_equal(sf->entries[0].tz_name, "Europe/Paris");
    schedfile_free(sf);
}

static void test_expand_items(void **state)
{
    (void)state;
    schedfile *sf = load_ok(DATA "good_full.yaml");
    const sched_entry *e = entry(sf, "inventory");
    job j;
    char reason[256];
    job_init(&j);
    assert_int_equal(schedfile_expand(e, 1796124600, 1, &j), ERR_OK);
    assert_string_equal(j.id, "inventory@20261201T113000Z#1");
    assert_string_equal(j.schedule, "inventory");
    assert_int_equal(j.index, 1);
    assert_int_equal(j.due_ms, 1796124600000LL);
    assert_int_equal(j.attempt, 1);
    assert_int_equal(j.max_attempts, 6);
    assert_int_equal(j.max_lateness_ms, 45000);
    assert_int_equal(j.kind, JOB_HTTP);
    assert_string_equal(j.http.method, "POST");
    assert_string_equal(j.http.url, "http://127.0.0.1:8088/process/inventory?store=s2&i=1");
    assert_string_equal(header(&j.http, "X-Team"), "stores-1");
    assert_string_equal(j.http.body, "{\"store\": \"s2\", \"region\": \"{{context.region}}\"}");
    assert_int_equal(j.http.body_len, strlen(j.http.body));
    assert_int_equal(j.http.timeout_ms, 10000);
    assert_int_equal(j.http.nok_status, 3);
    assert_true(j.http.follow_redirects);
    check_ctx_str(&j.context, "store", "s2");
    check_ctx_str(&j.context, "region", "eu-west");
    check_ctx_str(&e->context, "store", "{{item}}"); /* the template is untouched */
    assert_int_equal(job_validate(&j, reason, sizeof reason), ERR_OK);
    job_fini(&j);
    job_init(&j);
    assert_int_equal(schedfile_expand(e, 1796124600, 3, &j), ERR_RANGE);
    job_fini(&j);
    schedfile_free(sf);
}

static void test_expand_count(void **state)
{
    (void)state;
    schedfile *sf = load_ok(DATA "good_full.yaml");
    const sched_entry *e = entry(sf, "heartbeat");
    job j;
    job_init(&j);
    assert_int_equal(schedfile_expand(e, 1796124600, 3, &j), ERR_OK);
    assert_string_equal(j.http.url, "https://example.test/hello?n=3");
    assert_string_equal(j.id, "heartbeat@20261201T113000Z#3");
    assert_int_equal(j.max_attempts, 3);
    job_fini(&j);
    schedfile_free(sf);
}

static void test_next(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int64_t after, want; /* want 0: ERR_NOTFOUND */
    } rows[] = {
        {"ny-report", 1774742400, 1774780200}, /* 2026-03-29 00:00Z -> 06:30 EDT = 10:30Z */
        {"ny-report", 1768003200, 1768044600}, /* 2026-01-10 00:00Z -> 06:30 EST = 11:30Z */
        {"every30", 1000000005, 1000000020},   /* epoch-aligned multiples of 30 s */
        {"every30", 1000000020, 1000000050},   /* strictly after */
        {"one-shot", 1796124599, 1796124600},  {"one-shot", 1796124600, 0},
    };
    schedfile *sf = load_ok(DATA "good_next.yaml");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t t = -1;
        int rc = schedfile_next(entry(sf, rows[i].name), rows[i].after, &t);
        if (rows[i].want == 0) {
            assert_int_equal(rc, ERR_NOTFOUND);
            continue;
        }
        assert_int_equal(rc, ERR_OK);
        assert_int_equal(t, rows[i].want);
    }
    schedfile_free(sf);
}

static uint64_t digest_of(const char *text)
{
    schedfile *sf = NULL;
    char *errors = NULL;
    int rc = schedfile_parse("mem", text, strlen(text), &sf, &errors);
    if (rc != ERR_OK)
        fprintf(stderr, "%s", errors ? errors : "");
    assert_int_equal(rc, ERR_OK);
    uint64_t d = sf->entries[0].digest;
    schedfile_free(sf);
    return d;
}

static void test_digest(void **state)
{
    (void)state;
    static const char *base = "jobs:\n  - name: a\n    every: 5s\n    http: {url: \"http://h/x\", "
                              "headers: {A: b}}\n    context: {k: 1}\n";
    static const struct {
        const char *text;
        int same;
    } rows[] = {
        {"jobs:\n  - name: a\n    every: 5s\n    http: {url: \"http://h/x\", headers: {A: b}}\n"
         "    context: {k: 1}\n",
         1},
        {"jobs:\n  - name: renamed\n    every: 5s\n    http: {url: \"http://h/x\", headers: {A: "
         "b}}\n    context: {k: 1}\n",
         1}, /* the name is not part of the digest */
        {"jobs:\n  - name: a\n    every: 6s\n    http: {url: \"http://h/x\", headers: {A: b}}\n"
         "    context: {k: 1}\n",
         0},
        {"jobs:\n  - name: a\n    every: 5s\n    http: {url: \"http://h/y\", headers: {A: b}}\n"
         "    context: {k: 1}\n",
         0},
        {"jobs:\n  - name: a\n    every: 5s\n    http: {url: \"http://h/x\", headers: {A: c}}\n"
         "    context: {k: 1}\n",
         0},
        {"jobs:\n  - name: a\n    every: 5s\n    http: {url: \"http://h/x\", headers: {A: b}}\n"
         "    context: {k: \"1\"}\n",
         0}, /* same text, other type */
        {"jobs:\n  - name: a\n    every: 5s\n    retries: 1\n    http: {url: \"http://h/x\", "
         "headers: {A: b}}\n    context: {k: 1}\n",
         0},
    };
    uint64_t d0 = digest_of(base);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint64_t d = digest_of(rows[i].text);
        if (rows[i].same)
            assert_true(d == d0);
        else
            assert_true(d != d0);
    }
}

/* ---- bad files: every message at the offending node's line:column ------------------------ */

typedef struct want {
    int line, col;
    const char *text; /* substring of the message */
} want;

typedef struct bad_case {
    const char *file;
    size_t nerrors;
    want w[8];
} bad_case;

static const bad_case bad_cases[] = {
    {"bad_unknown_key.yaml", 1, {{6, 7, "unknown key 'timout' (did you mean 'timeout'?)"}}},
    {"bad_misplaced.yaml",
     2,
     {{2, 5, "job 'a': needs http.url"}, {4, 5, "unknown key 'url' (did you mean 'http.url'?)"}}},
    {"bad_cron.yaml", 1, {{3, 11, "cron: bad expression '0 0 25 * * *': field 3 (hour)"}}},
    {"bad_timezone.yaml", 1, {{4, 15, "unknown time zone 'Mars/Olympus'"}}},
    {"bad_duplicate_name.yaml", 1, {{8, 11, "duplicate job name 'a' (first at line 2)"}}},
    {"bad_no_schedule.yaml", 1, {{2, 5, "job 'a': needs one of cron, every or at"}}},
    {"bad_two_schedules.yaml",
     1,
     {{4, 5, "give only one of cron, every or at ('cron' already at line 3)"}}},
    {"bad_url_scheme.yaml", 1, {{5, 12, "http.url: bad URL 'ftp://127.0.0.1/x': the scheme"}}},
    {"bad_url_host.yaml", 1, {{4, 17, "http.url: bad URL 'http:///path': no host"}}},
    {"bad_unset_var.yaml", 1, {{7, 24, "environment variable 'SALVO_TEST_UNSET_VAR' is not set"}}},
    {"bad_secret_var.yaml", 1, {{7, 24, "${SALVO_AMQP_URL} is salvo's own secret"}}},
    {"bad_fanout_max.yaml", 1, {{6, 14, "fan_out.count: 100001 is above the maximum 100000"}}},
    {"bad_fanout_both.yaml", 1, {{7, 7, "fan_out: give count or items, not both"}}},
    {"bad_lead.yaml", 1, {{4, 11, "lead: 6s is above the maximum 5s"}}},
    {"bad_duration.yaml", 1, {{4, 19, "max_lateness: bad duration '10parsecs'"}}},
    {"bad_every_subsecond.yaml", 1, {{3, 12, "every: 500ms is below the minimum 1s"}}},
    {"bad_type.yaml", 1, {{4, 11, "http: expected a map, got a scalar"}}},
    {"bad_jobs_type.yaml", 1, {{1, 7, "jobs: expected a list, got a map"}}},
    {"bad_context_type.yaml", 1, {{5, 14, "context: expected a map, got a list"}}},
    {"bad_context_deep.yaml", 1, {{5, 42, "context: nested deeper than 7 levels"}}},
    {"bad_syntax.yaml", 1, {{2, 12, "YAML syntax error: mapping values are not allowed"}}},
    {"bad_two_docs.yaml", 1, {{6, 1, "only one YAML document per file"}}},
    {"bad_empty.yaml", 1, {{1, 1, "empty file"}}},
    {"bad_no_jobs.yaml", 1, {{1, 1, "missing 'jobs'"}}},
    {"bad_defaults_job_key.yaml", 1, {{3, 3, "'every' is not allowed in defaults"}}},
    {"bad_duplicate_key.yaml", 1, {{6, 5, "duplicate key 'retries' (first at line 4)"}}},
    {"bad_misfire.yaml", 1, {{4, 14, "misfire: 'sometimes' is not one of skip, once, all"}}},
    {"bad_retries.yaml", 1, {{4, 14, "retries: 20 is above the maximum 19"}}},
    {"bad_name.yaml", 1, {{2, 11, "name 'has space'"}}},
    {"bad_at.yaml", 1, {{3, 9, "at: bad instant 'tomorrow'"}}},
    {"bad_no_url.yaml", 1, {{2, 5, "job 'a': needs http.url"}}},
    {"bad_no_name.yaml", 1, {{2, 5, "job has no name"}}},
    {"bad_success.yaml", 1, {{6, 22, "http.success: 700 is above the maximum 599"}}},
    {"bad_alias_undefined.yaml", 1, {{5, 14, "YAML syntax error: found undefined alias"}}},
    {"bad_anchor_twice.yaml", 1, {{5, 11, "second occurrence (found duplicate anchor"}}},
    /* jobs are built as they are read: the first job's error must not survive the syntax error */
    {"bad_syntax_late.yaml", 1, {{8, 1, "YAML syntax error: did not find expected ',' or '}'"}}},
    {"bad_many.yaml",
     8,
     {{2, 12, "retries: expected an integer, got 'many'"},
      {5, 11, "cron: bad expression '61 * * * * *'"},
      {8, 16, "http.timeout: 0s is below the minimum 1ms"},
      {9, 11, "duplicate job name 'a' (first at line 4)"},
      {11, 11, "lead: 10s is above the maximum 5s"},
      {12, 17, "http.url: bad URL 'gopher://x'"},
      {15, 15, "unknown time zone 'Nowhere/City'"},
      {16, 44, "unknown key 'retries'"}}},
};

/* True when errors has a line "<path>:<line>:<col>: " containing w->text. */
static int has_error(const char *errors, const char *path, const want *w)
{
    char prefix[600];
    int n = snprintf(prefix, sizeof prefix, "%s:%d:%d: ", path, w->line, w->col);
    if (n < 0 || (size_t)n >= sizeof prefix)
        return 0;
    for (const char *l = errors; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)len, l);
        if (strncmp(line, prefix, strlen(prefix)) == 0 && strstr(line, w->text))
            return 1;
        l = nl ? nl + 1 : l + len;
    }
    return 0;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

static void test_bad_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *bc = &bad_cases[i];
        char path[512];
        snprintf(path, sizeof path, "%s%s", DATA, bc->file);
        schedfile *sf = (schedfile *)&sf; /* must be overwritten with NULL */
        char *errors = NULL;
        int rc = schedfile_load(path, &sf, &errors);
        if (count_lines(errors) != bc->nerrors)
            fprintf(stderr, "%s: got:\n%s", bc->file, errors ? errors : "(none)\n");
        assert_int_equal(rc, ERR_SCHEDULE);
        assert_null(sf);
        assert_non_null(errors);
        assert_int_equal(count_lines(errors), bc->nerrors);
        for (size_t k = 0; k < bc->nerrors; k++) {
            if (!has_error(errors, path, &bc->w[k]))
                fail_msg("%s: no '%d:%d: ...%s' in:\n%s", bc->file, bc->w[k].line, bc->w[k].col,
                         bc->w[k].text, errors);
        }
        free(errors);
    }
}

static void test_errors_sorted(void **state)
{
    (void)state;
    char *errors = NULL;
    schedfile *sf = NULL;
    assert_int_equal(schedfile_load(DATA "bad_many.yaml", &sf, &errors), ERR_SCHEDULE);
    /* File order, whatever order they were found in (duplicates are found last). */
    int prev = 0;
    for (const char *l = errors; *l; l = strchr(l, '\n') + 1) {
        int line = atoi(l + strlen(DATA "bad_many.yaml:"));
        assert_true(line >= prev);
        prev = line;
    }
    free(errors);
}

static void test_missing_file(void **state)
{
    (void)state;
    char *errors = NULL;
    schedfile *sf = NULL;
    assert_int_equal(schedfile_load(DATA "no_such_file.yaml", &sf, &errors), ERR_IO);
    assert_null(sf);
    assert_non_null(strstr(errors, "no_such_file.yaml: cannot read"));
    free(errors);
}

static void test_parse_mem_name(void **state)
{
    (void)state;
    const char *text = "jobs:\n  - name: x\n    every: 5s\n    http: {url: \"http://h\"}\n"
                       "    retries: -1\n";
    char *errors = NULL;
    schedfile *sf = NULL;
    assert_int_equal(schedfile_parse("inline", text, strlen(text), &sf, &errors), ERR_SCHEDULE);
    assert_null(sf);
    assert_string_equal(errors, "inline:5:14: retries: -1 is below the minimum 0\n");
    free(errors);
    /* errors may be NULL when the caller only wants the verdict. */
    assert_int_equal(schedfile_parse("inline", text, strlen(text), &sf, NULL), ERR_SCHEDULE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_inventory),
        cmocka_unit_test(test_full_context_typing),
        cmocka_unit_test(test_full_inheritance),
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_empty_jobs),
        cmocka_unit_test(test_anchors_across_jobs),
        cmocka_unit_test(test_defaults_after_jobs),
        cmocka_unit_test(test_expand_items),
        cmocka_unit_test(test_expand_count),
        cmocka_unit_test(test_next),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_errors_sorted),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_parse_mem_name),
    };
    return cmocka_run_group_tests(tests, setup_env, NULL);
}
