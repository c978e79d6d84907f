/* test_jobmap: a job through the value tree and the wire and back, unchanged; the tree's shape,
 * its defaults and reasons; determinism and the pinned byte layout; what the encoder refuses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "jobmap.h"
#include "jobwire.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- builders ------------------------------------------------------------------------------ */

static void set(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? strdup(s) : NULL;
}

static void ctx_put(jval *map, const char *key, jval *v)
{
    assert_int_equal(jval_map_put(map, key, v), ERR_OK);
}

static void ctx_str(jval *map, const char *key, const char *s, size_t n)
{
    jval v;
    assert_int_equal(jval_set_str(&v, s, n), ERR_OK);
    ctx_put(map, key, &v);
}

/* A context with every value kind; `reverse` inserts the same keys in the opposite order. */
static void rich_context(jval *ctx, int reverse)
{
    jval v, list, inner;
    static const char *const keys[] = {"i_min", "i_max", "neg", "f", "nan", "t", "nil", ""};
    jval_fini(ctx);
    jval_set_map(ctx);
    for (int k = 0; k < 8; k++) {
        int i = reverse ? 7 - k : k;
        jval_set_int(&v, i == 0 ? INT64_MIN : i == 1 ? INT64_MAX : -1);
        if (i == 3)
            jval_set_float(&v, 0.1);
        if (i == 4)
            jval_set_float(&v, NAN);
        if (i == 5)
            jval_set_bool(&v, true);
        if (i == 6)
            jval_set_nil(&v);
        if (i == 7)
            jval_set_str(&v, "empty key", 9);
        ctx_put(ctx, keys[i], &v);
    }
    ctx_str(ctx, "bytes", "\xff\0a", 3); /* not UTF-8: travels as bin */
    ctx_str(ctx, "utf8", "gr\xc3\xbc\xc3\x9f", 6);
    jval_set_array(&list);
    jval_set_map(&inner);
    ctx_str(&inner, "k", "v", 1);
    assert_int_equal(jval_array_push(&list, &inner), ERR_OK);
    jval_set_array(&inner);
    assert_int_equal(jval_array_push(&list, &inner), ERR_OK);
    ctx_put(ctx, "list", &list);
    jval_set_map(&inner);
    ctx_put(ctx, "empty", &inner);
}

static void make_http(job *j)
{
    static const unsigned char body[] = {'{', 0, 0xff, 0xfe, '}', 0x80, 'x'};
    job_init(j);
    set(&j->id, "billing@20261125T113000Z#5");
    set(&j->schedule, "billing");
    j->index = 5;
    j->due_ms = 1795606200000;
    j->attempt = 2;
    j->max_attempts = 4;
    j->max_lateness_ms = 2500;
    j->kind = JOB_HTTP;
    set(&j->http.method, "PUT");
    set(&j->http.url, "https://api.example.com/v1/charge?id=5");
    j->http.headers = calloc(2, sizeof *j->http.headers);
    j->http.nheaders = 2;
    set(&j->http.headers[0].name, "X-Trace");
    set(&j->http.headers[0].value, "caf\xc3\xa9");
    set(&j->http.headers[1].name, "X-Trace"); /* repeats are kept, in order */
    set(&j->http.headers[1].value, "two");
    j->http.body = malloc(sizeof body + 1);
    memcpy(j->http.body, body, sizeof body);
    j->http.body[sizeof body] = '\0';
    j->http.body_len = sizeof body;
    j->http.connect_timeout_ms = 1234;
    j->http.timeout_ms = 5678;
    j->http.ok_status = calloc(3, sizeof *j->http.ok_status);
    j->http.ok_status[0] = 200, j->http.ok_status[1] = 202, j->http.ok_status[2] = 299;
    j->http.nok_status = 3;
    j->http.follow_redirects = true;
    rich_context(&j->context, 0);
}

static void make_cmd(job *j)
{
    job_init(j);
    set(&j->id, "cleanup@19700101T000000Z#0");
    set(&j->schedule, "cleanup");
    j->attempt = j->max_attempts = 1;
    j->kind = JOB_COMMAND;
    j->cmd.argv = calloc(3, sizeof *j->cmd.argv);
    j->cmd.argc = 3;
    set(&j->cmd.argv[0], "/usr/bin/find");
    set(&j->cmd.argv[1], "");
    set(&j->cmd.argv[2], "-name=\xff"); /* arguments are bytes */
    j->cmd.env = calloc(1, sizeof *j->cmd.env);
    j->cmd.nenv = 1;
    set(&j->cmd.env[0].name, "TZ");
    set(&j->cmd.env[0].value, "UTC");
    j->cmd.timeout_ms = 60000;
}

/* ---- round trips --------------------------------------------------------------------------- */

static void assert_kvs_equal(const job_kv *a, size_t na, const job_kv *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(a[i].name, b[i].name);
        assert_string_equal(a[i].value, b[i].value);
    }
}

static void assert_jobs_equal(const job *a, const job *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->schedule, b->schedule);
    assert_true(a->index == b->index && a->due_ms == b->due_ms && a->attempt == b->attempt);
    assert_true(a->max_attempts == b->max_attempts && a->max_lateness_ms == b->max_lateness_ms);
    assert_int_equal(a->kind, b->kind);
    assert_true(jval_equal(&a->context, &b->context));
    if (a->kind == JOB_COMMAND) {
        assert_int_equal(a->cmd.argc, b->cmd.argc);
        for (size_t i = 0; i < a->cmd.argc; i++)
            assert_string_equal(a->cmd.argv[i], b->cmd.argv[i]);
        assert_kvs_equal(a->cmd.env, a->cmd.nenv, b->cmd.env, b->cmd.nenv);
        assert_int_equal(a->cmd.timeout_ms, b->cmd.timeout_ms);
        return;
    }
    assert_string_equal(a->http.method, b->http.method);
    assert_string_equal(a->http.url, b->http.url);
    assert_kvs_equal(a->http.headers, a->http.nheaders, b->http.headers, b->http.nheaders);
    assert_int_equal(a->http.body_len, b->http.body_len);
    assert_true(!a->http.body == !b->http.body);
    if (a->http.body)
        assert_memory_equal(a->http.body, b->http.body, a->http.body_len + 1);
    assert_int_equal(a->http.nok_status, b->http.nok_status);
    if (a->http.nok_status)
        assert_memory_equal(a->http.ok_status, b->http.ok_status, 2 * a->http.nok_status);
    assert_int_equal(a->http.connect_timeout_ms, b->http.connect_timeout_ms);
    assert_int_equal(a->http.timeout_ms, b->http.timeout_ms);
    assert_int_equal(a->http.follow_redirects, b->http.follow_redirects);
}

/* Encode, decode, compare, and re-encode to the very same bytes. */
static void round_trip(const job *a)
{
    char *buf = NULL, *again = NULL, reason[256];
    size_t len = 0, len2 = 0;
    job b;
    assert_int_equal(job_validate(a, reason, sizeof reason), ERR_OK);
    assert_int_equal(jobwire_encode(a, &buf, &len), ERR_OK);
    assert_int_equal(jobwire_prevalidate(buf, len, NULL, 0), ERR_OK);
    job_init(&b);
    int rc = jobwire_decode(buf, len, &b, reason, sizeof reason);
    if (rc != ERR_OK)
        fail_msg("decode: %s", reason);
    assert_string_equal(reason, "");
    assert_jobs_equal(a, &b);
    assert_int_equal(jobwire_encode(&b, &again, &len2), ERR_OK);
    assert_int_equal(len2, len);
    assert_memory_equal(again, buf, len);
    job_fini(&b);
    free(buf);
    free(again);
}

static void test_round_trip_http(void **state)
{
    (void)state;
    job j;
    make_http(&j);
    round_trip(&j);
    free(j.http.body); /* no body at all stays no body */
    j.http.body = NULL;
    j.http.body_len = 0;
    round_trip(&j);
    job_fini(&j);
}

static void test_round_trip_command(void **state)
{
    (void)state;
    job j;
    make_cmd(&j);
    round_trip(&j);
    job_fini(&j);
}

/* Every count and size at its limit at once, as far as 256 KiB allows. */
static void test_round_trip_max_sizes(void **state)
{
    (void)state;
    job j;
    make_http(&j);
    free(j.http.body);
    j.http.body = malloc(JOB_BODY_MAX + 1);
    for (size_t i = 0; i < JOB_BODY_MAX; i++)
        j.http.body[i] = (char)(i * 7);
    j.http.body[JOB_BODY_MAX] = '\0';
    j.http.body_len = JOB_BODY_MAX;
    free(j.http.url);
    j.http.url = malloc(JOB_URL_MAX + 1);
    memset(j.http.url, 'u', JOB_URL_MAX);
    memcpy(j.http.url, "https://e.com/", 14);
    j.http.url[JOB_URL_MAX] = '\0';
    j.http.headers = realloc(j.http.headers, JOB_HEADERS_MAX * sizeof *j.http.headers);
    for (size_t i = 2; i < JOB_HEADERS_MAX; i++) {
        j.http.headers[i].name = strdup("X-Many");
        j.http.headers[i].value = strdup("v");
    }
    j.http.nheaders = JOB_HEADERS_MAX;
    j.http.ok_status = realloc(j.http.ok_status, JOB_STATUS_MAX * sizeof *j.http.ok_status);
    for (size_t i = 0; i < JOB_STATUS_MAX; i++)
        j.http.ok_status[i] = (uint16_t)(200 + i);
    j.http.nok_status = JOB_STATUS_MAX;
    j.attempt = j.max_attempts = JOB_ATTEMPTS_MAX;
    j.index = UINT32_MAX;
    jval deep;
    jval_set_int(&deep, 7);
    for (int level = JOB_CONTEXT_DEPTH_MAX; level >= 2; level--) {
        jval wrap;
        jval_set_array(&wrap);
        assert_int_equal(jval_array_push(&wrap, &deep), ERR_OK);
        deep = wrap;
    }
    ctx_put(&j.context, "deep", &deep);
    round_trip(&j);
    job_fini(&j);
}

static void test_encode_is_deterministic(void **state)
{
    (void)state;
    job a, b;
    char *x, *y;
    size_t nx, ny;
    make_http(&a);
    make_http(&b);
    rich_context(&b.context, 1);
    assert_int_equal(jobwire_encode(&a, &x, &nx), ERR_OK);
    assert_int_equal(jobwire_encode(&b, &y, &ny), ERR_OK);
    assert_int_equal(nx, ny);
    assert_memory_equal(x, y, nx);
    free(y);
    a.http.headers[1].value[0] = 'T'; /* and a change shows */
    assert_int_equal(jobwire_encode(&a, &y, &ny), ERR_OK);
    assert_true(nx != ny || memcmp(x, y, nx) != 0);
    free(x);
    free(y);
    job_fini(&a);
    job_fini(&b);
}

static void test_encode_refuses_what_cannot_decode(void **state)
{
    (void)state;
    job j;
    char *buf = (char *)&j; /* must come back NULL */
    size_t len = 1;
    jval arr, v;
    make_http(&j);
    free(j.http.body);
    j.http.body = calloc(1, JOB_BODY_MAX + 1);
    j.http.body_len = JOB_BODY_MAX;
    char *big = calloc(1, 70000);
    ctx_str(&j.context, "big", big, 70000); /* valid job, but 262 KiB on the wire */
    free(big);
    assert_int_equal(job_validate(&j, NULL, 0), ERR_OK);
    assert_int_equal(jobwire_encode(&j, &buf, &len), ERR_WIRE_SIZE);
    assert_null(buf);
    assert_int_equal(len, 0);
    job_fini(&j);
    make_cmd(&j);
    jval_set_array(&arr);
    for (int i = 0; i <= JOBWIRE_MAX_OBJECTS; i++) {
        jval_set_int(&v, i);
        assert_int_equal(jval_array_push(&arr, &v), ERR_OK);
    }
    ctx_put(&j.context, "many", &arr); /* small, but over the object budget */
    assert_int_equal(jobwire_encode(&j, &buf, &len), ERR_WIRE_SIZE);
    job_fini(&j);
    make_cmd(&j);
    jval_set_int(&v, 1);
    for (int level = JOB_CONTEXT_DEPTH_MAX + 1; level >= 2; level--) {
        jval_set_array(&arr);
        assert_int_equal(jval_array_push(&arr, &v), ERR_OK);
        v = arr;
    }
    ctx_put(&j.context, "deep", &v);
    assert_int_equal(jobwire_encode(&j, &buf, &len), ERR_WIRE_SIZE);
    j.kind = 0;
    assert_int_equal(jobwire_encode(&j, &buf, &len), ERR_INVAL);
    job_fini(&j);
}

/* ---- the byte layout ----------------------------------------------------------------------- */

/* Expected bytes as a list of values: hex, or a short str when it starts with a double quote. */
static size_t spec_bytes(const char *const *spec, size_t n, unsigned char *out)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = spec[i];
        if (s[0] == '"') {
            out[len++] = (unsigned char)(0xa0 | strlen(s + 1)); /* fixstr: all under 32 */
            memcpy(out + len, s + 1, strlen(s + 1));
            len += strlen(s + 1);
            continue;
        }
        for (unsigned v; *s; s++) {
            if (*s != ' ' && sscanf(s++, "%2x", &v) == 1)
                out[len++] = (unsigned char)v;
        }
    }
    return len;
}

/* Pinned: every map's keys sorted, shortest ints, float64, bin for a string that is not UTF-8,
 * only the section the kind uses, "v" with the rest. A change here is a wire format change. */
/* clang-format off */
static const char *const golden[] = {
    "8b", /* 11 keys */
    "\"att", "01",
    "\"cmd", "83", "\"argv", "91", "\"/bin/true", "\"env", "90", "\"to", "cd 03e8",
    "\"ctx", "82", "\"a", "cb 3ff0000000000000", "\"b", "c4 01 ff",
    "\"due", "00",
    "\"id", "\"a@19700101T000000Z#0",
    "\"idx", "00",
    "\"kind", "\"cmd",
    "\"late", "00",
    "\"max_att", "01",
    "\"sched", "\"a",
    "\"v", "01",
};
/* clang-format on */

static void test_golden_layout(void **state)
{
    (void)state;
    job j;
    jval one;
    unsigned char want[256];
    char *buf;
    size_t len, n = spec_bytes(golden, sizeof golden / sizeof golden[0], want);
    job_init(&j);
    set(&j.id, "a@19700101T000000Z#0");
    set(&j.schedule, "a");
    j.attempt = j.max_attempts = 1;
    j.kind = JOB_COMMAND;
    j.cmd.argv = calloc(1, sizeof *j.cmd.argv);
    j.cmd.argc = 1;
    set(&j.cmd.argv[0], "/bin/true");
    j.cmd.timeout_ms = 1000;
    set(&j.http.url, "https://ignored.example/"); /* not the job's kind: not sent */
    ctx_str(&j.context, "b", "\xff", 1);
    jval_set_float(&one, 1.0);
    ctx_put(&j.context, "a", &one);
    assert_int_equal(jobwire_encode(&j, &buf, &len), ERR_OK);
    assert_int_equal(len, n);
    assert_memory_equal(buf, want, n);
    free(buf);
    job_fini(&j);
}

/* ---- the tree itself ----------------------------------------------------------------------- */

static void test_tree_shape(void **state)
{
    (void)state;
    static const struct {
        const char *path, *text;
    } want[] = {
        {"id", "billing@20261125T113000Z#5"},
        {"sched", "billing"},
        {"idx", "5"},
        {"due", "1795606200000"},
        {"att", "2"},
        {"max_att", "4"},
        {"late", "2500"},
        {"kind", "http"},
        {"http.m", "PUT"},
        {"http.h.1", "[\"X-Trace\",\"two\"]"},
        {"http.cto", "1234"},
        {"http.to", "5678"},
        {"http.ok", "[200,202,299]"},
        {"http.redir", "true"},
        {"ctx.list.0.k", "v"},
        {"ctx.i_max", "9223372036854775807"},
    };
    job j;
    jval t;
    make_http(&j);
    assert_int_equal(jobmap_from_job(&j, &t), ERR_OK);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *text = jval_to_text(jval_path(&t, want[i].path), NULL);
        if (!text || strcmp(text, want[i].text) != 0)
            fail_msg("%s: \"%s\", want \"%s\"", want[i].path, text, want[i].text);
        free(text);
    }
    const jval *body = jval_path(&t, "http.body");
    assert_true(body && body->u.s.len == j.http.body_len);
    assert_memory_equal(body->u.s.ptr, j.http.body, j.http.body_len);
    assert_null(jval_map_get(&t, "v")); /* the version is the wire's business */
    assert_null(jval_map_get(&t, "cmd"));
    jval_fini(&t);
    j.kind = 7;
    assert_int_equal(jobmap_from_job(&j, &t), ERR_INVAL);
    assert_int_equal(t.type, JVAL_NIL);
    job_fini(&j);
}

static void tput_str(jval *map, const char *key, const char *s)
{
    ctx_str(map, key, s, strlen(s));
}

static void tput_int(jval *map, const char *key, int64_t i)
{
    jval v;
    jval_set_int(&v, i);
    ctx_put(map, key, &v);
}

/* Only what is required, plus a key from the future: defaults fill the rest. */
static void minimal_tree(jval *t)
{
    jval cmd, argv, s;
    jval_set_map(t);
    tput_str(t, "id", "x");
    tput_str(t, "sched", "s");
    tput_int(t, "due", 0);
    tput_int(t, "att", 1);
    tput_int(t, "max_att", 1);
    tput_str(t, "kind", "cmd");
    jval_set_array(&argv);
    assert_int_equal(jval_set_str(&s, "/bin/true", 9), ERR_OK);
    assert_int_equal(jval_array_push(&argv, &s), ERR_OK);
    jval_set_map(&cmd);
    ctx_put(&cmd, "argv", &argv);
    ctx_put(t, "cmd", &cmd);
    tput_int(t, "from_the_future", 1);
}

static void test_tree_defaults_and_reasons(void **state)
{
    (void)state;
    jval t, bad;
    job j;
    char reason[128] = "";
    minimal_tree(&t);
    job_init(&j);
    assert_int_equal(jobmap_to_job(&t, &j, reason, sizeof reason), ERR_OK);
    assert_int_equal(j.kind, JOB_COMMAND);
    assert_int_equal(j.cmd.timeout_ms, JOB_DEFAULT_TIMEOUT_MS);
    assert_true(j.cmd.argc == 1 && j.cmd.nenv == 0 && j.index == 0 && j.max_lateness_ms == 0);
    assert_true(j.context.type == JVAL_MAP && j.context.u.map.n == 0);
    assert_int_equal(job_validate(&j, NULL, 0), ERR_OK);
    job_fini(&j);
    tput_str(&t, "att", "1");
    assert_int_equal(jobmap_to_job(&t, &j, reason, sizeof reason), ERR_WIRE_SCHEMA);
    assert_string_equal(reason, "att: is str, want int"); /* the class is the wire's to add */
    assert_true(j.id == NULL && j.cmd.argv == NULL);      /* left empty */
    tput_int(&t, "att", 1);
    tput_str(&t, "kind", "http");
    assert_int_equal(jobmap_to_job(&t, &j, reason, sizeof reason), ERR_WIRE_SCHEMA);
    assert_string_equal(reason, "http: missing");
    jval_set_int(&bad, 3);
    assert_int_equal(jobmap_to_job(&bad, &j, reason, sizeof reason), ERR_WIRE_SCHEMA);
    assert_string_equal(reason, "message: is int, want map");
    jval_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_http),
        cmocka_unit_test(test_round_trip_command),
        cmocka_unit_test(test_round_trip_max_sizes),
        cmocka_unit_test(test_encode_is_deterministic),
        cmocka_unit_test(test_encode_refuses_what_cannot_decode),
        cmocka_unit_test(test_golden_layout),
        cmocka_unit_test(test_tree_shape),
        cmocka_unit_test(test_tree_defaults_and_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
