/* test_tmpl: {{name}} rendering as a table of (template, cap, result or error). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "tmpl.h"

#include <stdlib.h>
#include <string.h>

/* Knows item, index, empty and long; everything else stays as written. */
static int lookup(void *ud, const char *name, const char **val, size_t *len)
{
    static const struct {
        const char *name, *val;
    } vars[] = {{"item", "s1"}, {"index", "7"}, {"empty", ""}, {"long", "xxxxxxxxxx"}};
    int *calls = ud;
    (*calls)++;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        if (strcmp(name, vars[i].name) == 0) {
            *val = vars[i].val;
            *len = strlen(vars[i].val);
            return 1;
        }
    }
    return 0;
}

static void test_table(void **state)
{
    static const struct {
        const char *src;
        size_t max;
        int rc;
        const char *want;
    } rows[] = {
        {"", 100, ERR_OK, ""},
        {"plain text", 100, ERR_OK, "plain text"},
        {"{{item}}", 100, ERR_OK, "s1"},
        {"{{ item }}", 100, ERR_OK, "s1"},
        {"{{\titem  }}", 100, ERR_OK, "s1"},
        {"a{{item}}b{{index}}c", 100, ERR_OK, "as1b7c"},
        {"{{item}}{{item}}", 100, ERR_OK, "s1s1"},
        {"store={{context.store}}", 100, ERR_OK, "store={{context.store}}"}, /* the worker's */
        {"{{unknown}} {{ item}}", 100, ERR_OK, "{{unknown}} s1"},
        {"{{item", 100, ERR_OK, "{{item"},                   /* unmatched: verbatim */
        {"a {{item}} {{index", 100, ERR_OK, "a s1 {{index"}, /* only the tail unmatched */
        {"x }} y", 100, ERR_OK, "x }} y"},
        {"{{}}", 100, ERR_OK, "{{}}"},
        {"{{   }}", 100, ERR_OK, "{{   }}"},
        {"{{ {{item}}", 100, ERR_OK, "{{ s1"}, /* the inner pair is the placeholder */
        {"{{empty}}|", 100, ERR_OK, "|"},
        {"{{long}}{{long}}", 20, ERR_OK, "xxxxxxxxxxxxxxxxxxxx"},
        {"{{long}}{{long}}", 19, ERR_RANGE, NULL},
        {"abcdef", 5, ERR_RANGE, NULL},
        {"abcde", 5, ERR_OK, "abcde"},
        {"", 0, ERR_OK, ""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *out = (char *)"unset";
        size_t len = 12345;
        int calls = 0;
        int rc =
            tmpl_render(rows[i].src, strlen(rows[i].src), lookup, &calls, rows[i].max, &out, &len);
        if (rc != rows[i].rc)
            fail_msg("row %zu '%s': rc %d, want %d", i, rows[i].src, rc, rows[i].rc);
        if (rows[i].want) {
            if (strcmp(out, rows[i].want) != 0)
                fail_msg("row %zu '%s': got '%s', want '%s'", i, rows[i].src, out, rows[i].want);
            assert_int_equal(len, strlen(rows[i].want));
            free(out);
        }
    }
}

static void test_lookup_sees_trimmed_name(void **state)
{
    char *out = NULL;
    int calls = 0;
    (void)state;
    assert_int_equal(tmpl_render("{{  index\t}}", 12, lookup, &calls, 64, &out, NULL), ERR_OK);
    assert_string_equal(out, "7");
    assert_int_equal(calls, 1);
    free(out);
}

static void test_embedded_nul_and_length(void **state)
{
    const char src[] = "a\0{{item}}b";
    char *out = NULL;
    size_t len = 0;
    int calls = 0;
    (void)state;
    assert_int_equal(tmpl_render(src, sizeof src - 1, lookup, &calls, 64, &out, &len), ERR_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "a\0s1b", 6); /* NUL-terminated past len */
    free(out);
    /* Only len bytes of src are read: the placeholder past len is not seen. */
    assert_int_equal(tmpl_render("ab{{item}}", 2, lookup, &calls, 64, &out, &len), ERR_OK);
    assert_string_equal(out, "ab");
    free(out);
}

static void test_no_lookup(void **state)
{
    char *out = NULL;
    (void)state;
    assert_int_equal(tmpl_render("{{item}}", 8, NULL, NULL, 64, &out, NULL), ERR_OK);
    assert_string_equal(out, "{{item}}");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_lookup_sees_trimmed_name),
        cmocka_unit_test(test_embedded_nul_and_length),
        cmocka_unit_test(test_no_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
