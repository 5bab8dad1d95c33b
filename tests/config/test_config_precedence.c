/* SPDX-License-Identifier: MIT */
/*
 * test_config_precedence.c - the precedence matrix for every tunable in the
 * table: built-in default, then the ini file over it, the environment over
 * the file, pm_mallopt over the environment. Each step is proved by
 * _pm_opt_state (value, source, line, what it overrode) and by the dump in
 * text and JSON. The behaviour behind three of them is proved through the
 * public API in test_config_behaviour.
 */
#include "cfgtest.h"

static size_t value(int id)
{
    return __atomic_load_n(&_pm_opt_state[id].value, __ATOMIC_RELAXED);
}

/* Values for the three layers: each differs from the layer below. */
struct layer_values {
    size_t file, env, mallopt;
};

static struct layer_values pick_values(int id)
{
    const pm_opt_desc_t *d = &_pm_opt_desc[id];
    size_t def = _pm_options_default(id), mid = d->min + (d->max - d->min) / 2;
    size_t cand[] = {d->min, d->max, d->min + 1, mid};
    struct layer_values v = {def, def, def};
    for (size_t i = 0; i < 4 && v.file == def; i++)
        if (cand[i] <= d->max && cand[i] <= INT32_MAX)
            v.file = cand[i];
    for (size_t i = 0; i < 4 && (v.env == v.file || v.env == def); i++)
        if (cand[i] <= d->max && cand[i] <= INT32_MAX && cand[i] != v.file)
            v.env = cand[i];
    if (v.env == v.file) /* two-valued settings: back to the default */
        v.env = def;
    for (size_t i = 0; i < 4 && (v.mallopt == v.env || v.mallopt == def); i++)
        if (cand[i] <= d->max && cand[i] <= INT32_MAX && cand[i] != v.env)
            v.mallopt = cand[i];
    assert_true(v.file != def && v.env != v.file && v.mallopt != v.env);
    return v;
}

static const char *fmt(int id, size_t v)
{
    static char buf[4][32];
    static unsigned next;
    char *b = buf[next++ % 4];
    _pm_opt_format(id, v, b, 32);
    return b;
}

/* JSON form of a value: a number, or the name for on_bad_config. */
static const char *json_val(int id, size_t v)
{
    static char buf[4][40];
    static unsigned next;
    char *b = buf[next++ % 4];
    if (_pm_opt_desc[id].kind == PM_KIND_ENUM)
        snprintf(b, 40, "\"%s\"", fmt(id, v));
    else
        snprintf(b, 40, "%zu", v);
    return b;
}

static void check_dump_line(int id, const char *want)
{
    char *dump = cfgt_dump(PM_DUMP_TEXT), line[700];
    snprintf(line, sizeof line, "\n  %s = %s\n", _pm_opt_desc[id].key, want);
    cfgt_assert_has(dump, line);
    free(dump);
}

static void test_matrix(void **state)
{
    (void)state;
    for (int id = 0; id < PM_OPT_COUNT; id++) {
        const pm_opt_desc_t *d = &_pm_opt_desc[id];
        struct layer_values v = pick_values(id);
        char def[32];
        _pm_opt_format(id, _pm_options_default(id), def, sizeof def);
        char want[700], *err;
        cfgt_clean_env();
        _pm_options_busy_hook = NULL;

        /* 1: built-in default. */
        err = cfgt_load();
        assert_string_equal(err, "");
        free(err);
        assert_int_equal(value(id), _pm_options_default(id));
        assert_int_equal(_pm_opt_state[id].src, PM_SRC_DEFAULT);
        snprintf(want, sizeof want, "%s (default)", def);
        check_dump_line(id, want);

        /* 2: the file (value written with its unit, on line 3). */
        char ini[256], name[64];
        snprintf(ini, sizeof ini, "[pmalloc]\n; %s\n%s = %s\n", d->help, d->key,
                 fmt(id, v.file));
        snprintf(name, sizeof name, "%s.ini", d->key);
        const char *path = cfgt_write(name, ini);
        setenv("PM_CONFIG", path, 1);
        err = cfgt_load(); /* print_config=1 prints the dump here; fine */
        assert_int_equal(_pm_config_error_count(), 0);
        free(err);
        assert_int_equal(value(id), v.file);
        assert_int_equal(_pm_opt_state[id].src, PM_SRC_FILE);
        assert_int_equal(_pm_opt_state[id].line, 3);
        assert_false(_pm_opt_state[id].has_prev);
        snprintf(want, sizeof want, "%s (%s:3) [default %s]", fmt(id, v.file), path, def);
        check_dump_line(id, want);

        /* 3: the environment over the file (written as plain bytes). */
        char num[32];
        snprintf(num, sizeof num, "%zu", v.env);
        setenv(d->env, num, 1);
        err = cfgt_load();
        assert_int_equal(_pm_config_error_count(), 0);
        free(err);
        assert_int_equal(value(id), v.env);
        assert_int_equal(_pm_opt_state[id].src, PM_SRC_ENV);
        assert_true(_pm_opt_state[id].has_prev);
        assert_int_equal(_pm_opt_state[id].prev_src, PM_SRC_FILE);
        assert_int_equal(_pm_opt_state[id].prev_line, 3);
        assert_int_equal(_pm_opt_state[id].prev_value, v.file);
        snprintf(want, sizeof want, "%s (env %s; overrides %s:3 = %s) [default %s]",
                 fmt(id, v.env), d->env, path, fmt(id, v.file), def);
        check_dump_line(id, want);

        /* 4: pm_mallopt over the environment. */
        assert_int_equal(_pm_options_set(d->param, (int)v.mallopt), 1);
        assert_int_equal(value(id), v.mallopt);
        assert_int_equal(_pm_opt_state[id].src, PM_SRC_MALLOPT);
        assert_int_equal(_pm_opt_state[id].prev_src, PM_SRC_ENV);
        assert_int_equal(_pm_opt_state[id].prev_value, v.env);
        snprintf(want, sizeof want, "%s (pm_mallopt; overrides env %s = %s) [default %s]",
                 fmt(id, v.mallopt), d->env, fmt(id, v.env), def);
        check_dump_line(id, want);
        char *json = cfgt_dump(PM_DUMP_JSON);
        snprintf(want, sizeof want, "\"%s\": {\"value\": %s, \"default\": %s, \"source\": "
                 "\"pm_mallopt\", \"overrides\": {\"value\": %s, \"source\": \"env %s\"}",
                 d->key, json_val(id, v.mallopt), json_val(id, _pm_options_default(id)),
                 json_val(id, v.env), d->env);
        cfgt_assert_has(json, want);
        free(json);

        /* The other settings stayed at their defaults throughout. */
        for (int o = 0; o < PM_OPT_COUNT; o++)
            if (o != id && value(o) != _pm_options_default(o))
                fail_msg("setting %s moved %s", d->key, _pm_opt_desc[o].key);
        unsetenv(d->env);
    }
}

/* mallopt over mallopt: the newer call wins and names the older one. */
static void test_mallopt_twice(void **state)
{
    (void)state;
    free(cfgt_load());
    assert_int_equal(_pm_options_set(PM_MMAP_THRESHOLD, 64 * 1024), 1);
    assert_int_equal(_pm_options_set(PM_MMAP_THRESHOLD, 256 * 1024), 1);
    check_dump_line(PM_OPT_mmap_threshold,
                    "256K (pm_mallopt; overrides pm_mallopt = 64K) [default 32M]");
}

static void test_json_shape(void **state)
{
    (void)state;
    const char *path = cfgt_write("json \"quoted\".ini", "[pmalloc]\narena_max = 2\n");
    setenv("PM_CONFIG", path, 1);
    free(cfgt_load());
    char *json = cfgt_dump(PM_DUMP_JSON);
    assert_true(json[0] == '{');
    assert_non_null(strstr(json, "}}\n"));
    assert_string_equal(strstr(json, "}}\n"), "}}\n");
    /* The file name is escaped. */
    cfgt_assert_has(json, "json \\\"quoted\\\".ini\"");
    cfgt_assert_has(json, "\"program\": \"cfgtest\"");
    cfgt_assert_has(json, "\"problems\": 0");
    int depth = 0, in_str = 0, values = 0;
    for (const char *p = json; *p; p++) {
        if (in_str) {
            if (*p == '\\')
                p++;
            else if (*p == '"')
                in_str = 0;
            continue;
        }
        in_str = *p == '"';
        depth += (*p == '{') - (*p == '}');
        assert_true(depth >= 0);
        values += strncmp(p, "\"value\":", 8) == 0;
    }
    assert_int_equal(depth, 0);
    assert_int_equal(values, PM_OPT_COUNT);
    free(json);
}

static void test_dump_errors(void **state)
{
    (void)state;
    errno = 0;
    assert_int_equal(_pm_config_dump_fd(-1, PM_DUMP_TEXT), -1);
    assert_int_equal(errno, EBADF);
    errno = 0;
    assert_int_equal(_pm_config_dump_fd(1, 7), -1);
    assert_int_equal(errno, EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_matrix, cfgt_setup, cfgt_teardown),
        cmocka_unit_test_setup_teardown(test_mallopt_twice, cfgt_setup, cfgt_teardown),
        cmocka_unit_test_setup_teardown(test_json_shape, cfgt_setup, cfgt_teardown),
        cmocka_unit_test_setup_teardown(test_dump_errors, cfgt_setup, cfgt_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cfgt_cleanup();
    return rc;
}
