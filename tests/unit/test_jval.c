/* test_jval: the context value tree: moves, clone, equality, dotted paths and text rendering. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "jval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void put_str(jval *map, const char *key, const char *s)
{
    jval v;
    assert_int_equal(jval_set_str(&v, s, strlen(s)), ERR_OK);
    assert_int_equal(jval_map_put(map, key, &v), ERR_OK);
    assert_int_equal(v.type, JVAL_NIL); /* moved */
}

static void put_int(jval *map, const char *key, int64_t i)
{
    jval v;
    jval_set_int(&v, i);
    assert_int_equal(jval_map_put(map, key, &v), ERR_OK);
}

static void push_str(jval *arr, const char *s)
{
    jval v;
    assert_int_equal(jval_set_str(&v, s, strlen(s)), ERR_OK);
    assert_int_equal(jval_array_push(arr, &v), ERR_OK);
    assert_int_equal(v.type, JVAL_NIL);
}

/* {"store": {"id": 42, "name": "north"}, "items": ["a", {"name": "b"}], "on": true, "x": 1.5,
 *  "none": nil} */
static void build_sample(jval *root)
{
    jval store, items, item, v;
    jval_set_map(root);
    jval_set_map(&store);
    put_int(&store, "id", 42);
    put_str(&store, "name", "north");
    assert_int_equal(jval_map_put(root, "store", &store), ERR_OK);
    jval_set_array(&items);
    push_str(&items, "a");
    jval_set_map(&item);
    put_str(&item, "name", "b");
    assert_int_equal(jval_array_push(&items, &item), ERR_OK);
    assert_int_equal(jval_map_put(root, "items", &items), ERR_OK);
    jval_set_bool(&v, true);
    assert_int_equal(jval_map_put(root, "on", &v), ERR_OK);
    jval_set_float(&v, 1.5);
    assert_int_equal(jval_map_put(root, "x", &v), ERR_OK);
    jval_set_nil(&v);
    assert_int_equal(jval_map_put(root, "none", &v), ERR_OK);
}

static void test_str_keeps_embedded_nul(void **state)
{
    (void)state;
    jval v;
    assert_int_equal(jval_set_str(&v, "a\0b", 3), ERR_OK);
    assert_int_equal(v.type, JVAL_STR);
    assert_int_equal(v.u.s.len, 3);
    assert_memory_equal(v.u.s.ptr, "a\0b", 4); /* and a terminating NUL */
    jval_fini(&v);
    assert_int_equal(v.type, JVAL_NIL);
    jval_fini(&v); /* safe twice */
    assert_int_equal(jval_set_str(&v, NULL, 0), ERR_OK);
    assert_string_equal(v.u.s.ptr, "");
    jval_fini(&v);
}

static void test_map_put_replaces(void **state)
{
    (void)state;
    jval m;
    jval_set_map(&m);
    put_str(&m, "k", "first");
    put_str(&m, "k", "second");
    put_int(&m, "n", 7);
    assert_int_equal(m.u.map.n, 2);
    assert_string_equal(jval_map_get(&m, "k")->u.s.ptr, "second");
    assert_int_equal(jval_map_get(&m, "n")->u.i, 7);
    assert_null(jval_map_get(&m, "missing"));
    assert_null(jval_map_get(&m, "")); /* a prefix of no key */
    jval i;
    jval_set_int(&i, 1);
    assert_null(jval_map_get(&i, "k"));
    assert_int_equal(jval_map_put(&i, "k", &m), ERR_INVAL);
    assert_int_equal(jval_array_push(&m, &i), ERR_INVAL);
    jval_fini(&m);
}

static void test_clone_is_deep(void **state)
{
    (void)state;
    jval a, b;
    build_sample(&a);
    assert_int_equal(jval_clone(&b, &a), ERR_OK);
    assert_true(jval_equal(&a, &b));
    const jval *name_a = jval_path(&a, "store.name"), *name_b = jval_path(&b, "store.name");
    assert_non_null(name_b);
    assert_ptr_not_equal(name_a->u.s.ptr, name_b->u.s.ptr);
    put_str((jval *)jval_path(&b, "store"), "name", "south");
    assert_false(jval_equal(&a, &b));
    assert_string_equal(jval_path(&a, "store.name")->u.s.ptr, "north");
    jval_fini(&a);
    jval_fini(&b);
}

/* Containers from clone (allocated exactly) must still take pushes, and many pushes must stay
 * cheap: 100000 one-slot reallocs would copy ~160 GB under ASan and hit the test timeout. */
static void test_push_grows(void **state)
{
    (void)state;
    jval a, b, v;
    build_sample(&a);
    assert_int_equal(jval_clone(&b, jval_path(&a, "items")), ERR_OK);
    for (int i = 0; i < 100000; i++) {
        jval_set_int(&v, i);
        assert_int_equal(jval_array_push(&b, &v), ERR_OK);
    }
    assert_int_equal(b.u.arr.n, 100002);
    assert_string_equal(jval_path(&b, "1.name")->u.s.ptr, "b");
    assert_int_equal(jval_path(&b, "100001")->u.i, 99999);
    jval_fini(&b);
    assert_int_equal(jval_clone(&b, jval_path(&a, "store")), ERR_OK);
    put_int(&b, "extra", 5);
    put_int(&b, "more", 6);
    assert_int_equal(b.u.map.n, 4);
    assert_int_equal(jval_map_get(&b, "id")->u.i, 42);
    assert_int_equal(jval_map_get(&b, "more")->u.i, 6);
    jval_fini(&b);
    jval_fini(&a);
}

typedef void (*builder)(jval *v);

static void b_nil(jval *v)
{
    jval_set_nil(v);
}
static void b_int1(jval *v)
{
    jval_set_int(v, 1);
}
static void b_float1(jval *v)
{
    jval_set_float(v, 1.0);
}
static void b_nan(jval *v)
{
    jval_set_float(v, NAN);
}
static void b_true(jval *v)
{
    jval_set_bool(v, true);
}
static void b_false(jval *v)
{
    jval_set_bool(v, false);
}
static void b_ab(jval *v)
{
    assert_int_equal(jval_set_str(v, "ab", 2), ERR_OK);
}
static void b_ab_nul(jval *v)
{
    assert_int_equal(jval_set_str(v, "ab\0", 3), ERR_OK);
}
static void b_map_xy(jval *v)
{
    jval_set_map(v);
    put_int(v, "x", 1);
    put_int(v, "y", 2);
}
static void b_map_yx(jval *v)
{
    jval_set_map(v);
    put_int(v, "y", 2);
    put_int(v, "x", 1);
}
static void b_map_xz(jval *v)
{
    jval_set_map(v);
    put_int(v, "x", 1);
    put_int(v, "z", 2);
}
static void b_arr_ab(jval *v)
{
    jval_set_array(v);
    push_str(v, "a");
    push_str(v, "b");
}
static void b_arr_ba(jval *v)
{
    jval_set_array(v);
    push_str(v, "b");
    push_str(v, "a");
}
static void b_sample(jval *v)
{
    build_sample(v);
}

static const struct {
    builder a, b;
    bool equal;
} equal_cases[] = {
    {b_nil, b_nil, true},        {b_int1, b_int1, true},      {b_int1, b_float1, false},
    {b_nan, b_nan, true},        {b_float1, b_nan, false},    {b_true, b_true, true},
    {b_true, b_false, false},    {b_ab, b_ab, true},          {b_ab, b_ab_nul, false},
    {b_map_xy, b_map_yx, true},  {b_map_xy, b_map_xz, false}, {b_arr_ab, b_arr_ab, true},
    {b_arr_ab, b_arr_ba, false}, {b_sample, b_sample, true},  {b_sample, b_map_xy, false},
    {b_nil, b_false, false},
};

static void test_equal_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof equal_cases / sizeof equal_cases[0]; i++) {
        jval a, b;
        equal_cases[i].a(&a);
        equal_cases[i].b(&b);
        if (jval_equal(&a, &b) != equal_cases[i].equal ||
            jval_equal(&b, &a) != equal_cases[i].equal)
            fail_msg("equal case %zu: want %d", i, equal_cases[i].equal);
        jval_fini(&a);
        jval_fini(&b);
    }
}

static const struct {
    const char *path;
    const char *text; /* jval_to_text of the result; NULL: not found */
} path_cases[] = {
    {"store.id", "42"},
    {"store.name", "north"},
    {"items.0", "a"},
    {"items.1.name", "b"},
    {"items.1", "{\"name\":\"b\"}"},
    {"on", "true"},
    {"x", "1.5"},
    {"none", ""},
    {"store", "{\"id\":42,\"name\":\"north\"}"},
    {"items.2", NULL},
    {"items.01", NULL}, /* leading zero is not an index */
    {"items.-1", NULL},
    {"items.x", NULL},
    {"store.id.deeper", NULL},
    {"store.", NULL},
    {"missing", NULL},
    {"", NULL},
    {"items.99999999999999999999", NULL},
};

static void test_path_table(void **state)
{
    (void)state;
    jval root;
    build_sample(&root);
    for (size_t i = 0; i < sizeof path_cases / sizeof path_cases[0]; i++) {
        const jval *v = jval_path(&root, path_cases[i].path);
        if (!path_cases[i].text) {
            if (v)
                fail_msg("path \"%s\" should not resolve", path_cases[i].path);
            continue;
        }
        if (!v)
            fail_msg("path \"%s\" did not resolve", path_cases[i].path);
        char *t = jval_to_text(v, NULL);
        assert_non_null(t);
        if (strcmp(t, path_cases[i].text) != 0)
            fail_msg("path \"%s\": got \"%s\", want \"%s\"", path_cases[i].path, t,
                     path_cases[i].text);
        free(t);
    }
    assert_null(jval_path(NULL, "x"));
    jval_fini(&root);
}

static void b_intmin(jval *v)
{
    jval_set_int(v, INT64_MIN);
}
static void b_tenth(jval *v)
{
    jval_set_float(v, 0.1);
}
static void b_escapes(jval *v)
{
    assert_int_equal(jval_set_str(v, "q\"b\\n\n\x01", 7), ERR_OK);
}
static void b_json_mix(jval *v)
{
    jval e;
    jval_set_array(v);
    b_escapes(&e);
    assert_int_equal(jval_array_push(v, &e), ERR_OK);
    b_nan(&e);
    assert_int_equal(jval_array_push(v, &e), ERR_OK);
    jval_set_nil(&e);
    assert_int_equal(jval_array_push(v, &e), ERR_OK);
    jval_set_map(&e);
    assert_int_equal(jval_array_push(v, &e), ERR_OK);
    jval_set_array(&e);
    assert_int_equal(jval_array_push(v, &e), ERR_OK);
    b_int1(&e);
    assert_int_equal(jval_array_push(v, &e), ERR_OK);
}

static const struct {
    builder b;
    const char *text;
    size_t len;
} text_cases[] = {
#define TEXT(b, s)                                                                                 \
    {                                                                                              \
        b, s, sizeof(s) - 1                                                                        \
    } /* the literal's own length, embedded NULs included */
    TEXT(b_nil, ""),
    TEXT(b_true, "true"),
    TEXT(b_false, "false"),
    TEXT(b_intmin, "-9223372036854775808"),
    TEXT(b_tenth, "0.10000000000000001"),
    TEXT(b_nan, "nan"),
    TEXT(b_ab_nul, "ab\0"), /* scalars verbatim */
    TEXT(b_escapes, "q\"b\\n\n\x01"),
    TEXT(b_json_mix, "[\"q\\\"b\\\\n\\u000a\\u0001\",null,null,{},[],1]"),
    TEXT(b_map_yx, "{\"y\":2,\"x\":1}"),
#undef TEXT
};

static void test_to_text_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof text_cases / sizeof text_cases[0]; i++) {
        jval v;
        size_t len = 12345;
        text_cases[i].b(&v);
        char *t = jval_to_text(&v, &len);
        assert_non_null(t);
        if (len != text_cases[i].len || memcmp(t, text_cases[i].text, len) != 0 || t[len])
            fail_msg("text case %zu: got \"%s\" (%zu bytes)", i, t, len);
        free(t);
        jval_fini(&v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str_keeps_embedded_nul),
        cmocka_unit_test(test_map_put_replaces),
        cmocka_unit_test(test_clone_is_deep),
        cmocka_unit_test(test_push_grows),
        cmocka_unit_test(test_equal_table),
        cmocka_unit_test(test_path_table),
        cmocka_unit_test(test_to_text_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
