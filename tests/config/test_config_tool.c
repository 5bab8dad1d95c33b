/* SPDX-License-Identifier: MIT */
/*
 * test_config_tool.c - the pmalloc-config command, run as a program from the
 * build tree ($PM_TEST_BUILDDIR/tools/pmalloc-config): --check (exit status and
 * diagnostics), --show (what a program started here would get, text and
 * JSON, --program), --table (one row per tunable of the table), --help and
 * usage errors.
 */
#include "cfgtest.h"

typedef struct tool_run {
    int status;
    char *out, *err;
} tool_run_t;

static char *read_all(int fd)
{
    off_t len = lseek(fd, 0, SEEK_END);
    char *buf = malloc((size_t)(len > 0 ? len : 0) + 1);
    assert_non_null(buf);
    ssize_t got = len > 0 ? pread(fd, buf, (size_t)len, 0) : 0;
    buf[got > 0 ? got : 0] = '\0';
    close(fd);
    return buf;
}

/* Run pmalloc-config with args (NULL-terminated) and extra NAME=VALUE env. */
static tool_run_t tool(const char *const *args, const char *const *env)
{
    const char *bd = getenv("PM_TEST_BUILDDIR");
    char exe[512];
    snprintf(exe, sizeof exe, "%s/tools/pmalloc-config", bd && *bd ? bd : ".");
    int out = memfd_create("out", 0), err = memfd_create("err", 0);
    assert_true(out >= 0 && err >= 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out, 1);
        dup2(err, 2);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        const char *argv[16] = {exe};
        for (size_t i = 0; args[i] && i < 14; i++)
            argv[i + 1] = args[i];
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    tool_run_t r;
    assert_int_equal(waitpid(pid, &r.status, 0), pid);
    r.out = read_all(out);
    r.err = read_all(err);
    if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 127)
        fail_msg("could not run %s:\n%s", exe, r.err);
    return r;
}

static int exit_code(const tool_run_t *r)
{
    if (!WIFEXITED(r->status))
        fail_msg("pmalloc-config died (status 0x%x):\n%s", r->status, r->err);
    return WEXITSTATUS(r->status);
}

static void done(tool_run_t *r)
{
    free(r->out);
    free(r->err);
}

static void test_help_and_usage(void **state)
{
    (void)state;
    tool_run_t r = tool((const char *[]){"--help", NULL}, NULL);
    assert_int_equal(exit_code(&r), 0);
    cfgt_assert_has(r.out, "Usage: pmalloc-config --check FILE");
    cfgt_assert_has(r.out, "--show");
    cfgt_assert_has(r.out, "--table");
    done(&r);
    r = tool((const char *[]){NULL}, NULL);
    assert_int_equal(exit_code(&r), 2);
    cfgt_assert_has(r.err, "Usage:");
    done(&r);
    r = tool((const char *[]){"--bogus", NULL}, NULL);
    assert_int_equal(exit_code(&r), 2);
    cfgt_assert_has(r.err, "'--bogus'");
    done(&r);
    r = tool((const char *[]){"--check", NULL}, NULL);
    assert_int_equal(exit_code(&r), 2);
    done(&r);
}

static void test_table(void **state)
{
    (void)state;
    tool_run_t r = tool((const char *[]){"--table", NULL}, NULL);
    assert_int_equal(exit_code(&r), 0);
    unsigned rows = 0;
    for (const char *p = r.out; (p = strstr(p, "\n| `")) != NULL; p++)
        rows++;
    assert_int_equal(rows, PM_OPT_COUNT);
    for (int id = 0; id < PM_OPT_COUNT; id++) {
        char cell[128];
        snprintf(cell, sizeof cell, "| `%s` | `%s` | `%s` (%d) |", _pm_opt_desc[id].key,
                 _pm_opt_desc[id].env, _pm_opt_desc[id].env, _pm_opt_desc[id].param);
        cfgt_assert_has(r.out, cell);
        cfgt_assert_has(r.out, _pm_opt_desc[id].help);
    }
    assert_string_equal(r.err, "");
    done(&r);
}

/* --version: the configured version; --man-table: one paragraph per
 * setting, each naming the key, the variable and the range. */
static void test_version_and_man_table(void **state)
{
    (void)state;
    tool_run_t r = tool((const char *[]){"--version", NULL}, NULL);
    assert_int_equal(exit_code(&r), 0);
    assert_string_equal(r.out, "pmalloc-config " PM_VERSION_STRING "\n");
    done(&r);
    r = tool((const char *[]){"--man-table", NULL}, NULL);
    assert_int_equal(exit_code(&r), 0);
    unsigned rows = 0;
    for (const char *p = r.out; (p = strstr(p, ".TP\n.BR ")) != NULL; p++)
        rows++;
    assert_int_equal(rows, PM_OPT_COUNT);
    cfgt_assert_has(r.out,
                    ".BR decay_ms \" (PM_DECAY_MS, pm_mallopt \" PM_DECAY_MS \" = \\-107)\"");
    cfgt_assert_has(r.out, "Default 10; range 0 .. 3600000.");
    cfgt_assert_has(r.out, "Default 32M; range 0 .. 32M bytes.");
    assert_string_equal(r.err, "");
    done(&r);
}

static void test_check_good(void **state)
{
    (void)state;
    const char *path = cfgt_write("good.ini", "[pmalloc]\narena_max = 4\nmmap_threshold = 1M\n"
                                              "[program:db]\ntcache_count = 0\n");
    tool_run_t r = tool((const char *[]){"--check", path, NULL}, NULL);
    assert_int_equal(exit_code(&r), 0);
    cfgt_assert_has(r.out, "no problems");
    assert_string_equal(r.err, "");
    done(&r);
    /* The shipped sample, and the sample with everything uncommented. */
    const char *src = getenv("PM_TEST_SRCDIR");
    char sample[512];
    snprintf(sample, sizeof sample, "%s/config/pmalloc.ini", src && *src ? src : "..");
    r = tool((const char *[]){"--check", sample, NULL}, NULL);
    assert_int_equal(exit_code(&r), 0);
    done(&r);
    FILE *f = fopen(sample, "r");
    assert_non_null(f);
    char line[512], all[16384] = "";
    while (fgets(line, sizeof line, f)) {
        int code = line[0] == ';' && (line[1] == '[' || (line[1] >= 'a' && line[1] <= 'z'));
        strncat(all, code ? line + 1 : line, sizeof all - strlen(all) - 1);
    }
    fclose(f);
    path = cfgt_write("sample-on.ini", all);
    r = tool((const char *[]){"--check", path, NULL}, NULL);
    if (exit_code(&r) != 0)
        fail_msg("the uncommented sample has problems:\n%s", r.err);
    done(&r);
}

static void test_check_bad(void **state)
{
    (void)state;
    const char *path = cfgt_write("bad.ini", "[pmalloc]\non_bad_config = abort\n"
                                             "arena_maxx = 3\n[program:x]\ncheck = 7\n");
    tool_run_t r = tool((const char *[]){"--check", path, NULL}, NULL);
    /* Never aborts, whatever on_bad_config says; every section is checked. */
    assert_int_equal(exit_code(&r), 1);
    char want[700];
    snprintf(want, sizeof want,
             "pmalloc: %s:3: unknown key 'arena_maxx' (did you mean 'arena_max'?)\n"
             "pmalloc: %s:5: check=7 out of range [0, 2]; using default 0\n"
             "pmalloc-config: %s: 2 problems\n", path, path, path);
    assert_string_equal(r.err, want);
    done(&r);
    r = tool((const char *[]){"--check", "/nonexistent.ini", NULL}, NULL);
    assert_int_equal(exit_code(&r), 1);
    cfgt_assert_has(r.err, "pmalloc: /nonexistent.ini: No such file or directory\n");
    done(&r);
}

static void test_show(void **state)
{
    (void)state;
    const char *path = cfgt_write("show.ini", "[pmalloc]\narena_max = 2\n[program:db]\n"
                                              "arena_max = 5\n");
    char cfg[600], want[800];
    snprintf(cfg, sizeof cfg, "PM_CONFIG=%s", path);
    tool_run_t r = tool((const char *[]){"--show", NULL},
                        (const char *[]){cfg, "PM_ARENA_MAX=3", "PM_PRINT_CONFIG=1", NULL});
    assert_int_equal(exit_code(&r), 0);
    snprintf(want, sizeof want, "  arena_max = 3 (env PM_ARENA_MAX; overrides %s:2 = 2)", path);
    cfgt_assert_has(r.out, want);
    cfgt_assert_has(r.out, "  mmap_threshold = 32M (default)\n");
    /* print_config does not print a second dump. */
    assert_non_null(strstr(r.out, "pmalloc settings"));
    assert_null(strstr(strstr(r.out, "pmalloc settings") + 1, "pmalloc settings"));
    assert_string_equal(r.err, "");
    done(&r);
    /* --program picks [program:NAME]. */
    r = tool((const char *[]){"--show", "--program", "db", NULL}, (const char *[]){cfg, NULL});
    assert_int_equal(exit_code(&r), 0);
    snprintf(want, sizeof want, "  arena_max = 5 (%s:4; overrides %s:2 = 2)", path, path);
    cfgt_assert_has(r.out, want);
    done(&r);
    r = tool((const char *[]){"--show", "--json", NULL}, (const char *[]){cfg, NULL});
    assert_int_equal(exit_code(&r), 0);
    assert_true(r.out[0] == '{');
    snprintf(want, sizeof want, "\"arena_max\": {\"value\": 2, ");
    cfgt_assert_has(r.out, want);
    done(&r);
    /* Problems go to stderr, and the status says so. */
    r = tool((const char *[]){"--show", NULL},
             (const char *[]){"PM_CONFIG=", "PM_ARENA_MAX=banana", NULL});
    assert_int_equal(exit_code(&r), 1);
    cfgt_assert_has(r.err, "pmalloc: PM_ARENA_MAX='banana': not a number; using default");
    cfgt_assert_has(r.out, "(config file: none;");
    done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_usage),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_version_and_man_table),
        cmocka_unit_test_setup_teardown(test_check_good, cfgt_setup, cfgt_teardown),
        cmocka_unit_test_setup_teardown(test_check_bad, cfgt_setup, cfgt_teardown),
        cmocka_unit_test_setup_teardown(test_show, cfgt_setup, cfgt_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cfgt_cleanup();
    return rc;
}
