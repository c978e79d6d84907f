/* test_worker_expand: {{context.*}} placeholders filled from the job's own context. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "expand.h"
#include "job.h"

#include <stdlib.h>
#include <string.h>

static void put_str(jval *map, const char *key, const char *s)
{
    jval v;
    assert_int_equal(jval_set_str(&v, s, strlen(s)), ERR_OK);
    assert_int_equal(jval_map_put(map, key, &v), ERR_OK);
}

/* Context {"store": {"id": "s-17", "n": 3}, "user": "ann", "tags": ["a", "b"], "on": true}. */
static void fill_context(jval *ctx)
{
    jval store, n, tags, t, on;
    jval_set_map(&store);
    put_str(&store, "id", "s-17");
    jval_set_int(&n, 3);
    assert_int_equal(jval_map_put(&store, "n", &n), ERR_OK);
    assert_int_equal(jval_map_put(ctx, "store", &store), ERR_OK);
    put_str(ctx, "user", "ann");
    jval_set_array(&tags);
    assert_int_equal(jval_set_str(&t, "a", 1), ERR_OK);
    assert_int_equal(jval_array_push(&tags, &t), ERR_OK);
    assert_int_equal(jval_set_str(&t, "b", 1), ERR_OK);
    assert_int_equal(jval_array_push(&tags, &t), ERR_OK);
    assert_int_equal(jval_map_put(ctx, "tags", &tags), ERR_OK);
    jval_set_bool(&on, true);
    assert_int_equal(jval_map_put(ctx, "on", &on), ERR_OK);
}

static void http_job(job *j, const char *url, const char *body, const char *hname, const char *hval)
{
    job_init(j);
    j->kind = JOB_HTTP;
    j->http.method = strdup("POST");
    j->http.url = strdup(url);
    if (body) {
        j->http.body = strdup(body);
        j->http.body_len = strlen(body);
    }
    j->http.headers = calloc(1, sizeof *j->http.headers);
    j->http.headers[0].name = strdup(hname);
    j->http.headers[0].value = strdup(hval);
    j->http.nheaders = 1;
    fill_context(&j->context);
}

typedef struct row {
    const char *in;
    const char *want;
} row;

static void test_table(void **state)
{
    (void)state;
    static const row rows[] = {
        {"https://x/{{context.user}}", "https://x/ann"},
        {"https://x/{{ context.store.id }}/{{context.store.n}}", "https://x/s-17/3"},
        {"https://x/?t={{context.tags.1}}&on={{context.on}}", "https://x/?t=b&on=true"},
        {"https://x/{{context.missing}}", "https://x/{{context.missing}}"},
        {"https://x/{{item}}", "https://x/{{item}}"}, /* the producer's names are not ours */
        {"https://x/{{context.tags}}", "https://x/[\"a\",\"b\"]"},
        {"https://x/plain", "https://x/plain"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        job j;
        http_job(&j, rows[i].in, NULL, "X-Store", "{{context.store.id}}");
        char detail[128] = "";
        assert_int_equal(expand_job(&j, detail, sizeof detail), ERR_OK);
        assert_string_equal(j.http.url, rows[i].want);
        assert_string_equal(j.http.headers[0].value, "s-17");
        assert_null(j.http.body);
        job_fini(&j);
    }
}

static void test_body_and_whole_context(void **state)
{
    (void)state;
    job j;
    http_job(&j, "https://x/", "{\"who\":\"{{context.user}}\",\"all\":{{context}}}", "A", "b");
    char detail[128] = "";
    assert_int_equal(expand_job(&j, detail, sizeof detail), ERR_OK);
    const char *want = "{\"who\":\"ann\",\"all\":{\"store\":{\"id\":\"s-17\",\"n\":3},"
                       "\"user\":\"ann\",\"tags\":[\"a\",\"b\"],\"on\":true}}";
    assert_string_equal(j.http.body, want);
    assert_int_equal(j.http.body_len, strlen(want));
    job_fini(&j);
}

/* Two jobs with the same template and different contexts each get only their own values. */
static void test_isolation(void **state)
{
    (void)state;
    job a, b;
    http_job(&a, "https://x/{{context.user}}", NULL, "A", "1");
    http_job(&b, "https://x/{{context.user}}", NULL, "A", "1");
    put_str(&b.context, "user", "bob");
    char detail[128];
    assert_int_equal(expand_job(&a, detail, sizeof detail), ERR_OK);
    assert_int_equal(expand_job(&b, detail, sizeof detail), ERR_OK);
    assert_string_equal(a.http.url, "https://x/ann");
    assert_string_equal(b.http.url, "https://x/bob");
    job_fini(&a);
    job_fini(&b);
}

static void test_too_long(void **state)
{
    (void)state;
    job j;
    http_job(&j, "https://x/{{context.big}}", NULL, "A", "1");
    char *big = malloc(JOB_URL_MAX + 1);
    memset(big, 'z', JOB_URL_MAX);
    big[JOB_URL_MAX] = '\0';
    put_str(&j.context, "big", big);
    free(big);
    char detail[128] = "";
    assert_int_equal(expand_job(&j, detail, sizeof detail), ERR_RANGE);
    assert_string_equal(detail, "url: longer than 8192 bytes");
    job_fini(&j);
}

static void test_command(void **state)
{
    (void)state;
    job j;
    job_init(&j);
    j.kind = JOB_COMMAND;
    j.cmd.argc = 2;
    j.cmd.argv = calloc(3, sizeof *j.cmd.argv);
    j.cmd.argv[0] = strdup("/bin/echo");
    j.cmd.argv[1] = strdup("user={{context.user}}");
    j.cmd.nenv = 1;
    j.cmd.env = calloc(1, sizeof *j.cmd.env);
    j.cmd.env[0].name = strdup("STORE");
    j.cmd.env[0].value = strdup("{{context.store.id}}");
    fill_context(&j.context);
    char detail[128];
    assert_int_equal(expand_job(&j, detail, sizeof detail), ERR_OK);
    assert_string_equal(j.cmd.argv[1], "user=ann");
    assert_string_equal(j.cmd.env[0].value, "s-17");
    job_fini(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),     cmocka_unit_test(test_body_and_whole_context),
        cmocka_unit_test(test_isolation), cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
