/* test_tzone: offsets, wall clocks and wall-to-UTC resolution against known transitions, the
 * POSIX footer far in the future, name checks, and hand-built TZif files (good and hostile). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "tzone.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Expected values were checked with python3 zoneinfo and `TZ=... date -d`. */
#define PAR "Europe/Paris"
#define NYC "America/New_York"
#define LHI "Australia/Lord_Howe"
#define CHT "Pacific/Chatham"

static tzone *load_zone(const char *name)
{
    char err[256] = "";
    tzone *tz = NULL;
    int rc = tzone_load(name, &tz, err, sizeof err);
    if (rc != ERR_OK)
        fail_msg("tzone_load(%s): %d %s", name, rc, err);
    assert_string_equal(tzone_name(tz), name);
    return tz;
}

static int64_t iso_s(const char *s)
{
    int64_t ns = 0;
    if (clock_parse_iso(s, &ns) != ERR_OK)
        fail_msg("bad ISO instant in a test row: %s", s);
    return ns / CLOCK_NS_PER_SEC;
}

static const struct {
    const char *zone, *at;
    int32_t off;
} offset_rows[] = {
    {PAR, "2025-03-30T00:59:59Z", 3600},
    {PAR, "2025-03-30T01:00:00Z", 7200},
    {PAR, "2025-10-26T00:59:59Z", 7200},
    {PAR, "2025-10-26T01:00:00Z", 3600},
    {PAR, "2050-03-27T00:59:59Z", 3600},
    {PAR, "2050-03-27T01:00:00Z", 7200},
    {PAR, "2100-10-31T00:59:59Z", 7200},
    {PAR, "2100-10-31T01:00:00Z", 3600},
    {PAR, "1960-01-01T00:00:00Z", 3600},
    {NYC, "2025-03-09T06:59:59Z", -18000},
    {NYC, "2025-03-09T07:00:00Z", -14400},
    {NYC, "2025-11-02T05:59:59Z", -14400},
    {NYC, "2025-11-02T06:00:00Z", -18000},
    {NYC, "2100-03-14T06:59:59Z", -18000},
    {NYC, "2100-03-14T07:00:00Z", -14400},
    {NYC, "1970-04-26T06:59:59Z", -18000},
    {NYC, "1970-04-26T07:00:00Z", -14400},
    {NYC, "1883-11-18T16:59:59Z", -17762},
    {NYC, "1883-11-18T17:00:00Z", -18000},
    {LHI, "2025-04-05T14:59:59Z", 39600},
    {LHI, "2025-04-05T15:00:00Z", 37800},
    {LHI, "2025-10-04T15:29:59Z", 37800},
    {LHI, "2025-10-04T15:30:00Z", 39600},
    {LHI, "2100-10-02T15:29:59Z", 37800},
    {LHI, "2100-10-02T15:30:00Z", 39600},
    {CHT, "2025-09-27T13:59:59Z", 45900},
    {CHT, "2025-09-27T14:00:00Z", 49500},
    {CHT, "2025-04-05T13:59:59Z", 49500},
    {CHT, "2025-04-05T14:00:00Z", 45900},
    {CHT, "2100-09-25T13:59:59Z", 45900},
    {CHT, "2100-09-25T14:00:00Z", 49500},
    {"UTC", "2025-06-01T00:00:00Z", 0},
    {"Etc/UTC", "2100-01-01T00:00:00Z", 0},
    {"Asia/Kolkata", "2025-06-01T00:00:00Z", 19800},
    {"Asia/Kathmandu", "2050-01-01T00:00:00Z", 20700},
    {"America/St_Johns", "2050-07-01T00:00:00Z", -9000},
};

static void test_offsets(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof offset_rows / sizeof offset_rows[0]; i++) {
        tzone *tz = load_zone(offset_rows[i].zone);
        int32_t got = tzone_offset_at(tz, iso_s(offset_rows[i].at));
        tzone_free(tz);
        if (got != offset_rows[i].off)
            fail_msg("%s at %s: offset %d, want %d", offset_rows[i].zone, offset_rows[i].at, got,
                     offset_rows[i].off);
    }
}

static const struct {
    const char *zone, *at;
    int64_t y;
    unsigned mo, d, h, mi, s, wday;
    int32_t off;
} civil_rows[] = {
    {PAR, "2025-10-26T00:30:00Z", 2025, 10, 26, 2, 30, 0, 0, 7200},
    {PAR, "2025-10-26T01:30:00Z", 2025, 10, 26, 2, 30, 0, 0, 3600},
    {LHI, "2025-04-05T15:10:00Z", 2025, 4, 6, 1, 40, 0, 0, 37800},
    {CHT, "2100-12-24T22:15:00Z", 2100, 12, 25, 12, 0, 0, 6, 49500},
    {NYC, "2050-07-01T16:00:00Z", 2050, 7, 1, 12, 0, 0, 5, -14400},
    {NYC, "1900-01-01T00:00:00Z", 1899, 12, 31, 19, 0, 0, 0, -18000},
    {"UTC", "1969-12-31T23:59:59Z", 1969, 12, 31, 23, 59, 59, 3, 0},
};

static void test_to_civil(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof civil_rows / sizeof civil_rows[0]; i++) {
        tzone *tz = load_zone(civil_rows[i].zone);
        tzone_civil c;
        tzone_to_civil(tz, iso_s(civil_rows[i].at), &c);
        tzone_free(tz);
        bool same = c.year == civil_rows[i].y && c.month == civil_rows[i].mo &&
                    c.day == civil_rows[i].d && c.hour == civil_rows[i].h &&
                    c.minute == civil_rows[i].mi && c.second == civil_rows[i].s &&
                    c.wday == civil_rows[i].wday && c.utc_offset_s == civil_rows[i].off;
        if (!same)
            fail_msg("%s at %s: got %lld-%02u-%02u %02u:%02u:%02u wday %u off %d",
                     civil_rows[i].zone, civil_rows[i].at, (long long)c.year, c.month, c.day,
                     c.hour, c.minute, c.second, c.wday, c.utc_offset_s);
    }
}

/* Wall time (written as if UTC), how many instants show it, and the first (or the gap end). */
static const struct {
    const char *zone, *wall;
    int count;
    const char *first;
} local_rows[] = {
    {PAR, "2025-03-30T02:30:00Z", 0, "2025-03-30T01:00:00Z"},
    {PAR, "2025-03-30T02:00:00Z", 0, "2025-03-30T01:00:00Z"},
    {PAR, "2025-03-30T01:59:59Z", 1, "2025-03-30T00:59:59Z"},
    {PAR, "2025-03-30T03:00:00Z", 1, "2025-03-30T01:00:00Z"},
    {PAR, "2025-10-26T02:30:00Z", 2, "2025-10-26T00:30:00Z"},
    {PAR, "2025-10-26T02:00:00Z", 2, "2025-10-26T00:00:00Z"},
    {PAR, "2025-10-26T03:00:00Z", 1, "2025-10-26T02:00:00Z"},
    {PAR, "2025-10-26T01:59:59Z", 1, "2025-10-25T23:59:59Z"},
    {NYC, "2025-03-09T02:30:00Z", 0, "2025-03-09T07:00:00Z"},
    {NYC, "2025-11-02T01:30:00Z", 2, "2025-11-02T05:30:00Z"},
    {NYC, "2100-11-07T01:30:00Z", 2, "2100-11-07T05:30:00Z"},
    {LHI, "2025-10-05T02:15:00Z", 0, "2025-10-04T15:30:00Z"},
    {LHI, "2025-04-06T01:45:00Z", 2, "2025-04-05T14:45:00Z"},
    {LHI, "2025-04-06T02:00:00Z", 1, "2025-04-05T15:30:00Z"},
    {CHT, "2025-09-28T03:00:00Z", 0, "2025-09-27T14:00:00Z"},
    {CHT, "2025-04-06T03:00:00Z", 2, "2025-04-05T13:15:00Z"},
    {CHT, "2100-09-26T03:00:00Z", 0, "2100-09-25T14:00:00Z"},
    {"Pacific/Apia", "2011-12-30T12:00:00Z", 0, "2011-12-30T10:00:00Z"}, /* a skipped day */
    {"UTC", "2025-06-01T12:00:00Z", 1, "2025-06-01T12:00:00Z"},
};

static void test_from_local(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof local_rows / sizeof local_rows[0]; i++) {
        tzone *tz = load_zone(local_rows[i].zone);
        int64_t first = 0;
        int n = tzone_from_local(tz, iso_s(local_rows[i].wall), &first);
        tzone_free(tz);
        if (n != local_rows[i].count || first != iso_s(local_rows[i].first))
            fail_msg("%s wall %s: %d instants, first %lld; want %d, %s", local_rows[i].zone,
                     local_rows[i].wall, n, (long long)first, local_rows[i].count,
                     local_rows[i].first);
    }
}

static void test_bad_names(void **state)
{
    (void)state;
    char longname[300];
    memset(longname, 'A', 256);
    longname[256] = '\0';
    const char *bad[] = {"",
                         "../etc/passwd",
                         "Europe/../../etc/passwd",
                         "/etc/localtime",
                         "Europe/Paris ",
                         "Europe/Pa\nris",
                         "No/Such_Zone",
                         "Europe",
                         longname};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        tzone *tz = (tzone *)&err; /* must be reset to NULL */
        assert_int_equal(tzone_load(bad[i], &tz, err, sizeof err), ERR_TZ);
        assert_null(tz);
        assert_true(strlen(err) > 0);
    }
    tzone *tz = NULL;
    assert_int_equal(tzone_load(NULL, &tz, NULL, 0), ERR_TZ);
    tzone_free(NULL);
}

/* ---- hand-built TZif files under a private TZDIR --------------------------------------- */

static char tzdir[64];

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

/* Header: magic, version, 15 unused bytes, then isut, isstd, leap, time, type, char counts. */
static unsigned char *put_hdr(unsigned char *p, char version, uint32_t timecnt, uint32_t typecnt)
{
    memcpy(p, "TZif", 4);
    p[4] = (unsigned char)version;
    memset(p + 5, 0, 15);
    p += 20;
    uint32_t counts[6] = {0, 0, 0, timecnt, typecnt, 4};
    for (int i = 0; i < 6; i++)
        p = put32(p, counts[i]);
    return p;
}

static unsigned char *put_types(unsigned char *p, const int32_t *offs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        p = put32(p, (uint32_t)offs[i]);
        *p++ = 0;
        *p++ = 0;
    }
    memcpy(p, "ZZZ", 4);
    return p + 4;
}

static void write_file(const char *name, const unsigned char *buf, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tzdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* A v2 file with n 64-bit transitions (types alternate 1,0,1...) and the given footer. */
static size_t build_v2(unsigned char *buf, const int64_t *trans, uint32_t n, const int32_t *offs,
                       const char *footer)
{
    unsigned char *p = put_hdr(buf, '2', 0, 1);
    p = put_types(p, offs, 1);
    p = put_hdr(p, '2', n, 2);
    for (uint32_t i = 0; i < n; i++) {
        p = put32(p, (uint32_t)((uint64_t)trans[i] >> 32));
        p = put32(p, (uint32_t)trans[i]);
    }
    for (uint32_t i = 0; i < n; i++)
        *p++ = (unsigned char)((i + 1) % 2);
    p = put_types(p, offs, 2);
    p += sprintf((char *)p, "\n%s\n", footer);
    return (size_t)(p - buf);
}

static int setup_tzdir(void **state)
{
    (void)state;
    snprintf(tzdir, sizeof tzdir, "/tmp/salvo-tz-XXXXXX");
    if (!mkdtemp(tzdir))
        return -1;
    return setenv("TZDIR", tzdir, 1);
}

static int teardown_tzdir(void **state)
{
    (void)state;
    const char *names[] = {"v1",   "v2",    "rule",   "fixed", "trunc",
                           "huge", "magic", "footer", "order", "badoff"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tzdir, names[i]);
        unlink(path);
    }
    rmdir(tzdir);
    return unsetenv("TZDIR");
}

static void test_built_files(void **state)
{
    (void)state;
    unsigned char buf[1024];
    const int32_t offs[2] = {3600, 7200};
    /* v1: 32-bit transitions at 0 and 1000000 (types 0, 1), no footer */
    unsigned char *p = put_hdr(buf, 0, 2, 2);
    p = put32(put32(p, 0), 1000000);
    *p++ = 0;
    *p++ = 1;
    p = put_types(p, offs, 2);
    write_file("v1", buf, (size_t)(p - buf));
    tzone *tz = load_zone("v1");
    assert_int_equal(tzone_offset_at(tz, -5), 3600);
    assert_int_equal(tzone_offset_at(tz, 999999), 3600);
    assert_int_equal(tzone_offset_at(tz, 1000000), 7200);
    assert_int_equal(tzone_offset_at(tz, INT64_C(5000000000)), 7200);
    tzone_free(tz);
    /* v2: a transition past 2038 that needs the 64-bit block, then a fixed footer */
    const int64_t trans[2] = {INT64_C(3000000000), INT64_C(4000000000)};
    const int32_t offs2[2] = {-3600, 20700};
    write_file("v2", buf, build_v2(buf, trans, 2, offs2, "<+0545>-5:45"));
    tz = load_zone("v2");
    assert_int_equal(tzone_offset_at(tz, INT64_C(2999999999)), -3600);
    assert_int_equal(tzone_offset_at(tz, INT64_C(3500000000)), 20700);
    assert_int_equal(tzone_offset_at(tz, INT64_C(4000000000)), -3600);
    assert_int_equal(tzone_offset_at(tz, INT64_C(4000000001)), 20700); /* the footer */
    tzone_free(tz);
    /* no transitions at all: the footer rule alone decides */
    write_file("rule", buf, build_v2(buf, NULL, 0, offs, "EST5EDT,M3.2.0,M11.1.0"));
    tz = load_zone("rule");
    assert_int_equal(tzone_offset_at(tz, iso_s("2025-03-09T06:59:59Z")), -18000);
    assert_int_equal(tzone_offset_at(tz, iso_s("2025-03-09T07:00:00Z")), -14400);
    assert_int_equal(tzone_offset_at(tz, iso_s("2025-11-02T05:59:59Z")), -14400);
    assert_int_equal(tzone_offset_at(tz, iso_s("2025-11-02T06:00:00Z")), -18000);
    tzone_free(tz);
}

static void expect_bad_file(const char *name, const unsigned char *buf, size_t len)
{
    char err[256] = "";
    tzone *tz = NULL;
    write_file(name, buf, len);
    int rc = tzone_load(name, &tz, err, sizeof err);
    if (rc != ERR_TZ || tz != NULL || strstr(err, "not a valid TZif") == NULL)
        fail_msg("file %s: rc %d, err '%s'", name, rc, err);
}

static void test_hostile_files(void **state)
{
    (void)state;
    unsigned char buf[1024];
    const int32_t offs[2] = {3600, 7200};
    const int64_t down[2] = {4000, 3000};
    size_t n = build_v2(buf, down, 2, offs, "UTC0");
    expect_bad_file("order", buf, n);
    expect_bad_file("trunc", buf, n - 20);
    n = build_v2(buf, NULL, 0, offs, "not a rule");
    expect_bad_file("footer", buf, n);
    n = build_v2(buf, NULL, 0, offs, "UTC0");
    buf[0] = 'X';
    expect_bad_file("magic", buf, n);
    unsigned char *p = put_hdr(buf, '2', 0xffffffffu, 1); /* 4 G transitions in a tiny file */
    memset(p, 0, 64);
    expect_bad_file("huge", buf, (size_t)(p - buf) + 64);
    const int32_t wild[2] = {100000, 0}; /* an offset beyond +-26 h */
    n = build_v2(buf, NULL, 0, wild, "UTC0");
    expect_bad_file("badoff", buf, n);
    /* UTC keeps working without its file */
    tzone *tz = load_zone("UTC");
    assert_int_equal(tzone_offset_at(tz, iso_s("2025-06-01T00:00:00Z")), 0);
    int64_t first = 0;
    assert_int_equal(tzone_from_local(tz, 12345, &first), 1);
    assert_int_equal(first, 12345);
    tzone_free(tz);
    char err[256] = "";
    assert_int_equal(tzone_load("Europe/Paris", &tz, err, sizeof err), ERR_TZ);
    assert_non_null(strstr(err, "cannot read"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_to_civil),
        cmocka_unit_test(test_from_local),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test_setup_teardown(test_built_files, setup_tzdir, teardown_tzdir),
        cmocka_unit_test_setup_teardown(test_hostile_files, setup_tzdir, teardown_tzdir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
