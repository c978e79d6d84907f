/* test_autolead: the automatic lead of large at-second fan-outs (producer/autolead.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "autolead.h"
#include "err.h"
#include "schedfile.h"

#include <stdlib.h>
#include <string.h>

static void test_lead_scales_with_count_and_is_capped(void **state)
{
    (void)state;
    assert_int_equal(autolead_ms(1000, 200), 200 + AUTOLEAD_ADMIT_MS);
    assert_int_equal(autolead_ms(10000, 200), 2000 + AUTOLEAD_ADMIT_MS);
    assert_int_equal(autolead_ms(100, 200), 20 + AUTOLEAD_ADMIT_MS); /* exactly the minimum */
    assert_int_equal(autolead_ms(99, 200), 0);                       /* 19.8 ms: not worth it */
    assert_int_equal(autolead_ms(1000000, 200), SCHED_LEAD_MAX_MS);
    assert_int_equal(autolead_ms(UINT32_MAX, 5000), SCHED_LEAD_MAX_MS); /* no overflow */
    assert_int_equal(autolead_ms(10000, 0), 0);                         /* turned off */
    assert_int_equal(autolead_ms(100, 300), 80); /* the default's smallest: 30 + 50 ms */
}

static const char sched_text[] = "jobs:\n"
                                 "  - name: big\n"
                                 "    at: \"2030-01-01T00:00:00Z\"\n"
                                 "    fan_out: {count: 5000}\n"
                                 "    http: {url: \"http://127.0.0.1:9/x\"}\n"
                                 "  - name: own-lead\n"
                                 "    at: \"2030-01-01T00:00:00Z\"\n"
                                 "    lead: 3s\n"
                                 "    fan_out: {count: 5000}\n"
                                 "    http: {url: \"http://127.0.0.1:9/y\"}\n"
                                 "  - name: small\n"
                                 "    at: \"2030-01-01T00:00:00Z\"\n"
                                 "    fan_out: {count: 10}\n"
                                 "    http: {url: \"http://127.0.0.1:9/z\"}\n";

static void test_apply_only_to_lead_less_large_entries(void **state)
{
    (void)state;
    schedfile *sf = NULL;
    char *errors = NULL;
    assert_int_equal(schedfile_parse("t.yaml", sched_text, strlen(sched_text), &sf, &errors),
                     ERR_OK);
    uint64_t digest = sf->entries[0].digest;
    autolead_apply(sf, 200);
    assert_int_equal(sf->entries[0].lead_ms, 1050); /* 5,000 x 200 us + 50 ms to admit */
    assert_int_equal(sf->entries[1].lead_ms, 3000); /* its own lead stays */
    assert_int_equal(sf->entries[2].lead_ms, 0);    /* 2 ms would not help */
    assert_true(sf->entries[0].digest == digest);   /* reload still recognises the entry */
    schedfile_free(sf);
    free(errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lead_scales_with_count_and_is_capped),
        cmocka_unit_test(test_apply_only_to_lead_less_large_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
