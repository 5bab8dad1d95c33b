/* SPDX-License-Identifier: MIT */
/*
 * test_config_values.c - the value parser and formatter (_pm_opt_parse,
 * _pm_opt_format) and the name helpers: units, hex, ranges, overflow,
 * negative numbers, words for booleans and on_bad_config, and that every
 * value the dump prints reads back as itself.
 */
#include "cfgtest.h"

#include <ctype.h>

static int parse(int id, const char *text, size_t *v)
{
    char why[160];
    return _pm_opt_parse(id, text, v, why, sizeof why);
}

/* The reason text of a bad value. */
static const char *why_of(int id, const char *text)
{
    static char why[160];
    size_t v;
    assert_int_equal(_pm_opt_parse(id, text, &v, why, sizeof why), PM_PARSE_BAD);
    return why;
}

static void test_sizes_and_units(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t want;
    } ok[] = {
        {"0", 0},          {"4096", 4096},        {"64K", 64 * PM_KIB}, {"64k", 64 * PM_KIB},
        {"64KiB", 64 * PM_KIB}, {"64kib", 64 * PM_KIB}, {"2M", 2 * PM_MIB}, {"2MiB", 2 * PM_MIB},
        {"1m", PM_MIB},    {"32M", 32 * PM_MIB}, {"+8K", 8 * PM_KIB}, {"0x10000", 0x10000},
        {"0X400K", 0x400 * PM_KIB}, {"010", 10}, {"-0", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        size_t v = 12345;
        if (parse(PM_OPT_mmap_threshold, ok[i].text, &v) != PM_PARSE_OK || v != ok[i].want)
            fail_msg("'%s' -> %zu, expected %zu", ok[i].text, v, ok[i].want);
    }
    size_t v;
    /* trim_threshold takes G (its maximum is 2G - 1). */
    assert_int_equal(parse(PM_OPT_trim_threshold, "1G", &v), PM_PARSE_OK);
    assert_int_equal(v, PM_GIB);
    assert_int_equal(parse(PM_OPT_trim_threshold, "1GiB", &v), PM_PARSE_OK);
    assert_int_equal(parse(PM_OPT_trim_threshold, "2G", &v), PM_PARSE_RANGE);
}

static void test_bad_values(void **state)
{
    (void)state;
    assert_string_equal(why_of(PM_OPT_mmap_threshold, "12Q"), "unknown unit 'Q' (use K, M or G)");
    assert_string_equal(why_of(PM_OPT_mmap_threshold, "12KB"),
                        "unknown unit 'KB' (use K, M or G)");
    assert_string_equal(why_of(PM_OPT_arena_max, "banana"), "not a number");
    assert_string_equal(why_of(PM_OPT_arena_max, ""), "empty value");
    assert_string_equal(why_of(PM_OPT_arena_max, "4 "), "leading or trailing space");
    assert_string_equal(why_of(PM_OPT_arena_max, " 4"), "leading or trailing space");
    assert_string_equal(why_of(PM_OPT_mmap_threshold, "1.5M"), "not a whole number");
    assert_string_equal(why_of(PM_OPT_arena_max, "4K"), "'K': only sizes take a unit");
    assert_string_equal(why_of(PM_OPT_arena_max, "4,5"), "unexpected ',5' after the number");
    assert_string_equal(why_of(PM_OPT_arena_max, "0x"), "not a number (0x needs hex digits)");
    assert_string_equal(why_of(PM_OPT_mmap_threshold, "0xZZ"),
                        "not a number (0x needs hex digits)");
    assert_string_equal(why_of(PM_OPT_arena_max, "-"), "not a number");
    assert_string_equal(why_of(PM_OPT_arena_max, "-x"), "not a number");
    /* Unprintable bytes are shown escaped, never raw. */
    assert_string_equal(why_of(PM_OPT_arena_max, "4\x01"), "unexpected '\\x01' after the number");
}

static void test_ranges(void **state)
{
    (void)state;
    size_t v;
    for (int id = 0; id < PM_OPT_COUNT; id++) {
        const pm_opt_desc_t *d = &_pm_opt_desc[id];
        char buf[64];
        if (d->kind == PM_KIND_ENUM)
            continue;
        snprintf(buf, sizeof buf, "%zu", d->min);
        assert_int_equal(parse(id, buf, &v), PM_PARSE_OK);
        assert_int_equal(v, d->min);
        snprintf(buf, sizeof buf, "%zu", d->max);
        assert_int_equal(parse(id, buf, &v), PM_PARSE_OK);
        assert_int_equal(v, d->max);
        snprintf(buf, sizeof buf, "%zu", d->max + 1);
        if (parse(id, buf, &v) != PM_PARSE_RANGE)
            fail_msg("%s=%s accepted above the maximum", d->key, buf);
        if (d->min > 0) {
            snprintf(buf, sizeof buf, "%zu", d->min - 1);
            if (parse(id, buf, &v) != PM_PARSE_RANGE)
                fail_msg("%s=%s accepted below the minimum", d->key, buf);
        }
        /* Overflow and negative numbers are out of range, not garbage. */
        assert_int_equal(parse(id, "99999999999999999999999", &v), PM_PARSE_RANGE);
        assert_int_equal(parse(id, "-5", &v), PM_PARSE_RANGE);
        assert_int_equal(parse(id, "0xffffffffffffffffff", &v), PM_PARSE_RANGE);
    }
    assert_int_equal(parse(PM_OPT_trim_threshold, "17179869184G", &v), PM_PARSE_RANGE);
}

static void test_words(void **state)
{
    (void)state;
    static const char *const yes[] = {"1", "yes", "YES", "true", "True", "on"};
    static const char *const no[] = {"0", "no", "false", "off", "OFF"};
    size_t v;
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        assert_int_equal(parse(PM_OPT_print_config, yes[i], &v), PM_PARSE_OK);
        assert_int_equal(v, 1);
    }
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        assert_int_equal(parse(PM_OPT_print_config, no[i], &v), PM_PARSE_OK);
        assert_int_equal(v, 0);
    }
    assert_int_equal(parse(PM_OPT_print_config, "2", &v), PM_PARSE_RANGE);
    assert_non_null(strstr(why_of(PM_OPT_print_config, "maybe"), "not a boolean"));
    static const char *const modes[] = {"warn", "quiet", "abort"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(parse(PM_OPT_on_bad_config, modes[i], &v), PM_PARSE_OK);
        assert_int_equal(v, i);
        char n[4];
        snprintf(n, sizeof n, "%zu", i);
        assert_int_equal(parse(PM_OPT_on_bad_config, n, &v), PM_PARSE_OK);
        assert_int_equal(v, i);
    }
    assert_string_equal(why_of(PM_OPT_on_bad_config, "loud"), "not one of warn, quiet, abort");
    assert_string_equal(why_of(PM_OPT_on_bad_config, "3"), "not one of warn, quiet, abort");
    assert_string_equal(why_of(PM_OPT_on_bad_config, "-1"), "not one of warn, quiet, abort");
    /* Words are for booleans and on_bad_config only. */
    assert_string_equal(why_of(PM_OPT_arena_max, "yes"), "not a number");
}

static void test_format_round_trip(void **state)
{
    (void)state;
    char buf[32];
    _pm_opt_format(PM_OPT_mmap_threshold, 128 * PM_KIB, buf, sizeof buf);
    assert_string_equal(buf, "128K");
    _pm_opt_format(PM_OPT_mmap_threshold, 32 * PM_MIB, buf, sizeof buf);
    assert_string_equal(buf, "32M");
    _pm_opt_format(PM_OPT_trim_threshold, PM_GIB, buf, sizeof buf);
    assert_string_equal(buf, "1G");
    _pm_opt_format(PM_OPT_mmap_threshold, 1000, buf, sizeof buf);
    assert_string_equal(buf, "1000");
    _pm_opt_format(PM_OPT_on_bad_config, PM_BAD_QUIET, buf, sizeof buf);
    assert_string_equal(buf, "quiet");
    /* Every value the dump can print parses back to itself. */
    for (int id = 0; id < PM_OPT_COUNT; id++) {
        const pm_opt_desc_t *d = &_pm_opt_desc[id];
        size_t probes[] = {d->min, d->max, d->min + 1, d->max - 1, (d->min + d->max) / 2,
                           _pm_options_default(id), 4096, 3 * PM_KIB, 5 * PM_MIB};
        for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
            size_t v = probes[i], back;
            if (v < d->min || v > d->max)
                continue;
            _pm_opt_format(id, v, buf, sizeof buf);
            if (parse(id, buf, &back) != PM_PARSE_OK || back != v)
                fail_msg("%s: %zu printed as '%s' reads back as %zu", d->key, v, buf, back);
        }
    }
}

static void test_names(void **state)
{
    (void)state;
    for (int id = 0; id < PM_OPT_COUNT; id++) {
        assert_int_equal(_pm_opt_find_key(_pm_opt_desc[id].key), id);
        assert_int_equal(_pm_opt_find_env(_pm_opt_desc[id].env), id);
        /* Keys are the lower-case names; variables are PM_ + upper case. */
        char up[64];
        snprintf(up, sizeof up, "PM_%s", _pm_opt_desc[id].key);
        for (char *c = up; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        assert_string_equal(up, _pm_opt_desc[id].env);
    }
    assert_int_equal(_pm_opt_find_key("ARENA_MAX"), -1);
    assert_string_equal(_pm_opt_suggest_key("arena_maxx"), "arena_max");
    assert_string_equal(_pm_opt_suggest_key("mmap_treshold"), "mmap_threshold");
    assert_string_equal(_pm_opt_suggest_key("ARENA_MAX"), "arena_max");
    assert_string_equal(_pm_opt_suggest_key("chek"), "check");
    assert_string_equal(_pm_opt_suggest_key("decay"), "decay_ms"); /* a prefix, 3 edits */
    assert_string_equal(_pm_opt_suggest_key("tcache"), "tcache_max");
    assert_null(_pm_opt_suggest_key("colour"));
    assert_null(_pm_opt_suggest_key("x"));
}

static void test_errno_text(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(_pm_config_errno_text(ENOENT, buf, sizeof buf),
                        "No such file or directory");
    assert_string_equal(_pm_config_errno_text(EISDIR, buf, sizeof buf), "Is a directory");
    assert_string_equal(_pm_config_errno_text(12345, buf, sizeof buf), "error 12345");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_and_units),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_errno_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
