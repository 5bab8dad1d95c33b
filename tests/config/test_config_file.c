/* SPDX-License-Identifier: MIT */
/*
 * test_config_file.c - every configuration diagnostic, from the environment,
 * the ini file and pm_mallopt: its text, its line number, that it is said
 * once, that the bad setting is ignored (the lower source's value stays and
 * is named), and that nothing crashes on hostile files (1 MB, binary, a
 * directory, unreadable, over-long lines). Drives _pm_options_load directly
 * with fd 2 captured; on_bad_config=abort runs in a forked child.
 */
#include "../common.h"
#include "cfgtest.h"
#include <sys/auxv.h>
#include <sys/stat.h>

/* Load with PM_CONFIG pointing at a file holding text; returns stderr. */
static char *load_ini(const char *name, const char *text, const char **path)
{
    const char *p = cfgt_write(name, text);
    if (path)
        *path = p;
    setenv("PM_CONFIG", p, 1);
    return cfgt_load();
}

static size_t value(int id)
{
    return __atomic_load_n(&_pm_opt_state[id].value, __ATOMIC_RELAXED);
}

static void test_env_not_a_number(void **state)
{
    (void)state;
    setenv("PM_ARENA_MAX", "banana", 1);
    char *err = cfgt_load(), want[160];
    snprintf(want, sizeof want, "pmalloc: PM_ARENA_MAX='banana': not a number; using default %s\n",
             cfgt_default_text(PM_OPT_arena_max));
    assert_string_equal(err, want);
    assert_int_equal(value(PM_OPT_arena_max), _pm_options_default(PM_OPT_arena_max));
    assert_int_equal(_pm_opt_state[PM_OPT_arena_max].src, PM_SRC_DEFAULT);
    assert_int_equal(_pm_config_error_count(), 1);
    free(err);
}

static void test_env_unknown_unit(void **state)
{
    (void)state;
    setenv("PM_MMAP_THRESHOLD", "12Q", 1);
    char *err = cfgt_load();
    assert_string_equal(err, "pmalloc: PM_MMAP_THRESHOLD='12Q': unknown unit 'Q' (use K, M or G);"
                             " using default 32M\n");
    assert_int_equal(value(PM_OPT_mmap_threshold), 32 * PM_MIB);
    free(err);
}

/* A bad variable leaves the file's value in force, and says so. */
static void test_env_bad_keeps_file_value(void **state)
{
    (void)state;
    setenv("PM_ARENA_MAX", "0", 1);
    const char *path;
    char *err = load_ini("keep.ini", "[pmalloc]\narena_max = 3\n", &path), want[600];
    snprintf(want, sizeof want,
             "pmalloc: PM_ARENA_MAX=0 out of range [1, 1024]; using 3 from %s:2\n", path);
    assert_string_equal(err, want);
    assert_int_equal(value(PM_OPT_arena_max), 3);
    assert_int_equal(_pm_opt_state[PM_OPT_arena_max].src, PM_SRC_FILE);
    free(err);
}

static void test_env_values_matrix(void **state)
{
    (void)state;
    static const struct {
        const char *var, *text, *expect;
    } cases[] = {
        {"PM_ARENA_MAX", "", "PM_ARENA_MAX='': empty value; using default"},
        {"PM_ARENA_MAX", "4 ", "PM_ARENA_MAX='4 ': leading or trailing space; using default"},
        {"PM_ARENA_MAX", "99999999999999999999999",
         "PM_ARENA_MAX=99999999999999999999999 out of range [1, 1024]; using default"},
        {"PM_TRIM_THRESHOLD", "-5",
         "PM_TRIM_THRESHOLD=-5 out of range [0, 2147483647]; using default 128K"},
        {"PM_TCACHE_MAX", "1M", "PM_TCACHE_MAX=1M out of range [0, 64K]; using default 32K"},
        {"PM_CHECK", "0x", "PM_CHECK='0x': not a number (0x needs hex digits); using default 0"},
        {"PM_ON_BAD_CONFIG", "loud",
         "PM_ON_BAD_CONFIG='loud': not one of warn, quiet, abort; using default warn"},
        {"PM_PRINT_CONFIG", "maybe", "PM_PRINT_CONFIG='maybe': not a boolean"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cfgt_clean_env();
        setenv(cases[i].var, cases[i].text, 1);
        char *err = cfgt_load();
        int id = _pm_opt_find_env(cases[i].var);
        cfgt_assert_has(err, cases[i].expect);
        if (cfgt_diag_lines(err) != 1)
            fail_msg("%s='%s': expected one line:\n%s", cases[i].var, cases[i].text, err);
        assert_int_equal(value(id), _pm_options_default(id));
        assert_int_equal(_pm_config_error_count(), 1);
        free(err);
    }
    /* Hex is accepted: 0x10000 is 64K. */
    cfgt_clean_env();
    setenv("PM_MMAP_THRESHOLD", "0x10000", 1);
    char *err = cfgt_load();
    assert_string_equal(err, "");
    assert_int_equal(value(PM_OPT_mmap_threshold), 64 * PM_KIB);
    free(err);
}

static void test_env_typo(void **state)
{
    (void)state;
    setenv("PM_ARENA_MAXX", "2", 1);
    setenv("PM_CHEK", "1", 1);
    setenv("PM_CONFG", "x.ini", 1);
    setenv("PM_DECAY", "5", 1); /* three edits away, but the start of PM_DECAY_MS */
    setenv("PM_UNRELATED_X", "1", 1); /* someone else's variable: not ours to judge */
    char *err = cfgt_load();
    cfgt_assert_has(err, "pmalloc: unknown variable PM_ARENA_MAXX (did you mean PM_ARENA_MAX?)");
    cfgt_assert_has(err, "pmalloc: unknown variable PM_CHEK (did you mean PM_CHECK?)");
    cfgt_assert_has(err, "pmalloc: unknown variable PM_CONFG (did you mean PM_CONFIG?)");
    cfgt_assert_has(err, "pmalloc: unknown variable PM_DECAY (did you mean PM_DECAY_MS?)");
    cfgt_assert_lacks(err, "PM_UNRELATED_X");
    assert_int_equal(cfgt_diag_lines(err), 4);
    assert_int_equal(value(PM_OPT_arena_max), _pm_options_default(PM_OPT_arena_max));
    free(err);
}

static void test_config_missing(void **state)
{
    (void)state;
    setenv("PM_CONFIG", "/nonexistent.ini", 1);
    char *err = cfgt_load();
    assert_string_equal(err, "pmalloc: PM_CONFIG=/nonexistent.ini: No such file or directory\n");
    assert_null(_pm_config_file());
    free(err);
    /* PM_CONFIG= (empty) reads no file and says nothing. */
    setenv("PM_CONFIG", "", 1);
    err = cfgt_load();
    assert_string_equal(err, "");
    assert_int_equal(_pm_config_error_count(), 0);
    free(err);
}

/* Without PM_CONFIG: the system file if it exists, silently nothing if not. */
static void test_config_default_path(void **state)
{
    (void)state;
    unsetenv("PM_CONFIG");
    const char *sys = PM_SYSCONFDIR "/pmalloc.ini";
    int exists = access(sys, F_OK) == 0;
    char *err = cfgt_load();
    if (!exists) {
        assert_string_equal(err, "");
        assert_null(_pm_config_file());
    } else if (access(sys, R_OK) == 0) {
        assert_non_null(_pm_config_file());
        assert_string_equal(_pm_config_file(), sys);
    }
    free(err);
}

/* A set-user-ID or set-group-ID program (the kernel's AT_SECURE; forced
 * here): PM_CONFIG is not read, PM_* variables do not count, one note says
 * so. Before, such a program read any file its caller named with its own
 * rights and quoted the file's lines back ("key 'root:$y$...' outside any
 * section" for PM_CONFIG=/etc/shadow). */
static void test_secure_program_ignores_caller(void **state)
{
    (void)state;
    const char *path = cfgt_write("secret.ini", "secret-line-1\n[pmalloc]\narena_max = 3\n");
    setenv("PM_CONFIG", path, 1);
    setenv("PM_MMAP_THRESHOLD", "1M", 1);
    setenv("PM_ARENA_MAXX", "2", 1);
    _pm_config_secure = 1;
    char *err = cfgt_load();
    assert_string_equal(err, "pmalloc: set-user-ID or set-group-ID program: PM_* variables and "
                             "PM_CONFIG ignored\n");
    assert_int_equal(value(PM_OPT_arena_max), _pm_options_default(PM_OPT_arena_max));
    assert_int_equal(value(PM_OPT_mmap_threshold), _pm_options_default(PM_OPT_mmap_threshold));
    free(err);
    /* The [program:NAME] section is the executable's, not argv[0]'s, which the
     * caller chooses (exec -a victim): the dump names the program. */
    char exe[512], want[600];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    snprintf(want, sizeof want, "program: %s)", strrchr(exe, '/') + 1);
    char *saved_name = program_invocation_short_name;
    program_invocation_short_name = (char *)"victim";
    _pm_config_program = NULL;
    free(cfgt_load());
    char *dump = cfgt_dump(PM_DUMP_TEXT);
    program_invocation_short_name = saved_name;
    _pm_config_program = "cfgtest";
    cfgt_assert_has(dump, want);
    free(dump);
    /* The system file is read, if there is one; nothing else is. */
    if (access(PM_SYSCONFDIR "/pmalloc.ini", F_OK) == 0)
        return;
    assert_null(_pm_config_file());
    for (int id = 0; id < PM_OPT_COUNT; id++)
        if (_pm_opt_state[id].src != PM_SRC_DEFAULT)
            fail_msg("%s set from source %d", _pm_opt_desc[id].key, _pm_opt_state[id].src);
    /* Nothing of ours in the environment: not a word. */
    unsetenv("PM_MMAP_THRESHOLD");
    unsetenv("PM_CONFIG");
    err = cfgt_load();
    assert_string_equal(err, "");
    free(err);
}

static void test_file_syntax_error(void **state)
{
    (void)state;
    const char *path;
    char *err = load_ini("syntax.ini", "[pmalloc]\narena_max = 5\nthis is not ini\n"
                                       "mmap_threshold = 1M\n[broken\n", &path);
    cfgt_assert_hasf(err, "pmalloc: %s:3: syntax error", path);
    cfgt_assert_hasf(err, "pmalloc: %s:5: syntax error", path);
    assert_int_equal(cfgt_diag_lines(err), 2);
    /* The good lines around the bad ones still count. */
    assert_int_equal(value(PM_OPT_arena_max), 5);
    assert_int_equal(value(PM_OPT_mmap_threshold), PM_MIB);
    assert_int_equal(_pm_opt_state[PM_OPT_mmap_threshold].line, 4);
    free(err);
}

static void test_file_unknown_key(void **state)
{
    (void)state;
    const char *path;
    char *err = load_ini("app.ini",
                         "; comment\n[pmalloc]\n\n\n\n\narena_maxx = 3\nfrobnicate = 1\n", &path),
         want[600];
    snprintf(want, sizeof want,
             "pmalloc: %s:7: unknown key 'arena_maxx' (did you mean 'arena_max'?)\n"
             "pmalloc: %s:8: unknown key 'frobnicate'\n", path, path);
    assert_string_equal(err, want);
    assert_int_equal(value(PM_OPT_arena_max), _pm_options_default(PM_OPT_arena_max));
    free(err);
}

static void test_file_out_of_range(void **state)
{
    (void)state;
    const char *path;
    char *err = load_ini("range.ini", "[pmalloc]\n\n\n\n\n\n\n\narena_max=0\n", &path), want[600];
    snprintf(want, sizeof want,
             "pmalloc: %s:9: arena_max=0 out of range [1, 1024]; using default %s\n", path,
             cfgt_default_text(PM_OPT_arena_max));
    assert_string_equal(err, want);
    assert_int_equal(value(PM_OPT_arena_max), _pm_options_default(PM_OPT_arena_max));
    free(err);
    /* After an earlier good line, that line's value stays and is named. */
    err = load_ini("range2.ini", "[pmalloc]\narena_max = 7\narena_max = 5000\n", &path);
    snprintf(want, sizeof want,
             "pmalloc: %s:3: arena_max=5000 out of range [1, 1024]; using 7 from line 2\n", path);
    assert_string_equal(err, want);
    assert_int_equal(value(PM_OPT_arena_max), 7);
    free(err);
}

static void test_file_set_twice(void **state)
{
    (void)state;
    const char *path;
    char *err = load_ini("twice.ini", "[pmalloc]\ntrim_threshold = 1M\ncheck = 1\n"
                                      "trim_threshold = 2M\n", &path), want[600];
    snprintf(want, sizeof want,
             "pmalloc: %s:4: 'trim_threshold' set twice (line 2 and 4); line 4 wins\n", path);
    assert_string_equal(err, want);
    assert_int_equal(value(PM_OPT_trim_threshold), 2 * PM_MIB);
    assert_int_equal(_pm_opt_state[PM_OPT_trim_threshold].line, 4);
    free(err);
}

static void test_file_values(void **state)
{
    (void)state;
    const char *path;
    /* Trailing spaces in a file are ini layout (inih strips them): fine. So
     * are indentation, inline comments, ':' for '=', CRLF and a BOM. */
    char *err = load_ini("layout.ini", "\xEF\xBB\xBF[pmalloc]\r\n  arena_max = 6   \r\n"
                                       "\tmmap_threshold: 0x20000 ; hex\r\n"
                                       "# comment\r\ncheck=1\r\n", &path);
    assert_string_equal(err, "");
    assert_int_equal(value(PM_OPT_arena_max), 6);
    assert_int_equal(value(PM_OPT_mmap_threshold), 0x20000);
    assert_int_equal(value(PM_OPT_check), 1);
    assert_int_equal(_pm_opt_state[PM_OPT_check].line, 5);
    free(err);
    /* Lines that end in a lone CR (old Mac editors), line numbers kept. */
    err = load_ini("cr.ini", "[pmalloc]\rarena_max = 5\r\rcheck = 9\rperturb = 3", &path);
    cfgt_assert_hasf(err, "%s:4: check=9 out of range", path);
    assert_int_equal(cfgt_diag_lines(err), 1);
    assert_int_equal(value(PM_OPT_arena_max), 5);
    assert_int_equal(value(PM_OPT_perturb), 3);
    assert_int_equal(_pm_opt_state[PM_OPT_perturb].line, 5);
    free(err);
    /* Empty value, overflow, negative, fraction, unit on a count. */
    err = load_ini("vals.ini", "[pmalloc]\narena_max =\nmmap_threshold = 99999999999999999999999\n"
                               "trim_threshold = -1\ntop_pad = 1.5M\nmmap_max = 3K\n", &path);
    cfgt_assert_hasf(err, "%s:2: arena_max='': empty value; using default", path);
    cfgt_assert_hasf(err, "%s:3: mmap_threshold=99999999999999999999999 out of range "
                     "[0, 32M]; using default 32M", path);
    cfgt_assert_hasf(err, "%s:4: trim_threshold=-1 out of range", path);
    cfgt_assert_hasf(err, "%s:5: top_pad='1.5M': not a whole number", path);
    cfgt_assert_hasf(err, "%s:6: mmap_max='3K': 'K': only sizes take a unit", path);
    assert_int_equal(cfgt_diag_lines(err), 5);
    assert_int_equal(_pm_config_error_count(), 5);
    for (int id = 0; id < PM_OPT_COUNT; id++)
        assert_int_equal(_pm_opt_state[id].src, PM_SRC_DEFAULT);
    free(err);
}

static void test_file_sections(void **state)
{
    (void)state;
    const char *path;
    char *err = load_ini("sect.ini", "arena_max = 2\n[pmalloc]\n[weird]\ncheck = 2\n"
                                     "[program:]\n[pmalloc]\nperturb = 7\n", &path);
    cfgt_assert_hasf(err, "pmalloc: %s:1: key 'arena_max' outside any section; ignored", path);
    cfgt_assert_hasf(err, "pmalloc: %s:2: section [pmalloc] has no keys", path);
    cfgt_assert_hasf(err, "pmalloc: %s:3: unknown section [weird]", path);
    cfgt_assert_hasf(err, "pmalloc: %s:5: [program:] names no program", path);
    assert_int_equal(cfgt_diag_lines(err), 4);
    assert_int_equal(value(PM_OPT_arena_max), _pm_options_default(PM_OPT_arena_max));
    assert_int_equal(value(PM_OPT_check), 0);
    assert_int_equal(value(PM_OPT_perturb), 7);
    free(err);
}

/* [program:NAME] beats [pmalloc] for that program wherever it stands. */
static void test_file_program_section(void **state)
{
    (void)state;
    const char *path;
    char *err = load_ini("prog.ini", "[program:cfgtest]\narena_max = 6\n[program:other]\n"
                                     "arena_max = 9\ncheck = 2\n[pmalloc]\narena_max = 4\n"
                                     "perturb = 3\n", &path);
    assert_string_equal(err, "");
    const pm_opt_state_t *st = &_pm_opt_state[PM_OPT_arena_max];
    assert_int_equal(value(PM_OPT_arena_max), 6);
    assert_int_equal(st->line, 2);
    assert_true(st->has_prev);
    assert_int_equal(st->prev_line, 7);
    assert_int_equal(st->prev_value, 4);
    assert_int_equal(value(PM_OPT_perturb), 3);
    assert_int_equal(value(PM_OPT_check), 0); /* [program:other] is not ours */
    char *dump = cfgt_dump(PM_DUMP_TEXT), want[600];
    snprintf(want, sizeof want, "arena_max = 6 (%s:2; overrides %s:7 = 4)", path, path);
    cfgt_assert_has(dump, want);
    free(dump);
    free(err);
    /* Another program gets [pmalloc] only. */
    _pm_config_program = "someone";
    err = cfgt_load();
    assert_int_equal(value(PM_OPT_arena_max), 4);
    free(err);
    /* Many other programs' sections before ours and [pmalloc] lose nothing. */
    char text[8192] = "";
    for (int i = 0; i < 40; i++) {
        char sect[64];
        snprintf(sect, sizeof sect, "[program:p%d]\ncheck = 1\n", i);
        strcat(text, sect);
    }
    strcat(text, "[pmalloc]\narena_max = 4\nperturb = 9\n[program:someone]\narena_max = 5\n");
    err = load_ini("manyprogs.ini", text, NULL);
    assert_string_equal(err, "");
    assert_int_equal(value(PM_OPT_arena_max), 5);
    assert_int_equal(value(PM_OPT_perturb), 9);
    assert_int_equal(value(PM_OPT_check), 0);
    free(err);
}

static void test_file_too_large(void **state)
{
    (void)state;
    size_t n = 1024 * 1024;
    char *big = malloc(n);
    assert_non_null(big);
    const char line[] = "; padding padding padding padding padding padding padding\n";
    for (size_t i = 0; i < n; i++)
        big[i] = line[i % (sizeof line - 1)];
    memcpy(big, "[pmalloc]\narena_max = 3\n", 24);
    const char *path = cfgt_write_n("big.ini", big, n);
    free(big);
    setenv("PM_CONFIG", path, 1);
    char *err = cfgt_load(), want[600];
    snprintf(want, sizeof want, "pmalloc: PM_CONFIG=%s: file too large (over 64K); ignored\n",
             path);
    assert_string_equal(err, want);
    assert_int_equal(value(PM_OPT_arena_max), _pm_options_default(PM_OPT_arena_max));
    free(err);
    /* Exactly the limit still loads. */
    big = malloc(PM_CONFIG_FILE_MAX);
    assert_non_null(big);
    memset(big, '\n', PM_CONFIG_FILE_MAX);
    memcpy(big, "[pmalloc]\narena_max = 3\n", 24);
    setenv("PM_CONFIG", cfgt_write_n("edge.ini", big, PM_CONFIG_FILE_MAX), 1);
    free(big);
    err = cfgt_load();
    assert_string_equal(err, "");
    assert_int_equal(value(PM_OPT_arena_max), 3);
    free(err);
}

static void test_file_binary(void **state)
{
    (void)state;
    /* With NUL bytes: refused as a whole, one line. */
    unsigned char bin[4096];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)(i * 131 + (i >> 3));
    memcpy(bin, "[pmalloc]\narena_max = 3\n", 24);
    const char *path = cfgt_write_n("bin.dat", bin, sizeof bin);
    setenv("PM_CONFIG", path, 1);
    char *err = cfgt_load();
    cfgt_assert_hasf(err, "%s:3: NUL byte: not a text file; file ignored", path);
    assert_int_equal(cfgt_diag_lines(err), 1);
    assert_int_equal(value(PM_OPT_arena_max), _pm_options_default(PM_OPT_arena_max));
    free(err);
    /* Without NUL bytes: parsed; the noise is reported (at most 20 lines and
     * a note), unprintable bytes never reach the terminal raw. */
    for (size_t i = 0; i < sizeof bin; i++)
        if (bin[i] == 0)
            bin[i] = 0xff;
    path = cfgt_write_n("bin2.dat", bin + 24, sizeof bin - 24);
    setenv("PM_CONFIG", path, 1);
    err = cfgt_load();
    assert_true(cfgt_diag_lines(err) >= 1);
    assert_true(cfgt_diag_lines(err) <= 21);
    assert_true(_pm_config_error_count() >= cfgt_diag_lines(err) - 1);
    for (const char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\n')
            fail_msg("raw control byte 0x%02x in the diagnostics", (unsigned char)*p);
    for (int id = 0; id < PM_OPT_COUNT; id++)
        if (_pm_opt_state[id].src == PM_SRC_FILE)
            assert_true(value(id) >= _pm_opt_desc[id].min && value(id) <= _pm_opt_desc[id].max);
    free(err);
}

static void test_file_too_many_problems(void **state)
{
    (void)state;
    char text[4096] = "[pmalloc]\ncheck = 1\n";
    for (int i = 0; i < 30; i++)
        strcat(text, "nonsense\n");
    const char *path;
    char *err = load_ini("many.ini", text, &path);
    assert_int_equal(cfgt_diag_lines(err), 21);
    cfgt_assert_hasf(err, "pmalloc: %s: 10 more problems not shown\n", path);
    assert_int_equal(_pm_config_error_count(), 30);
    free(err);
}

/* A FIFO, a device or /dev/stdin named by PM_CONFIG: never opened for a
 * blocking read (the first pm_* call used to wait for a writer for good),
 * reported on one line. The alarm turns a hang into a failure. */
static void test_file_not_regular(void **state)
{
    (void)state;
    char fifo[600], want[700];
    snprintf(fifo, sizeof fifo, "%s/fifo", cfgt_dir());
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(20);
    const char *paths[] = { fifo, "/dev/null", "/dev/stdin" };
    for (size_t i = 0; i < PMT_ARRAY_LEN(paths); i++) {
        setenv("PM_CONFIG", paths[i], 1);
        char *err = cfgt_load();
        snprintf(want, sizeof want, "pmalloc: PM_CONFIG=%s: not a regular file; ignored\n",
                 paths[i]);
        /* /dev/stdin is a regular file when the runner redirects one in. */
        struct stat st;
        if (i < 2 || fstat(0, &st) != 0 || !S_ISREG(st.st_mode))
            assert_string_equal(err, want);
        free(err);
    }
    alarm(0);
    unlink(fifo);
}

/* The PM_CONFIG path is shown escaped: an escape sequence in it never
 * reaches the terminal. */
static void test_file_path_escaped(void **state)
{
    (void)state;
    setenv("PM_CONFIG", "/nonexistent\x1b[31m\x07.ini", 1);
    char *err = cfgt_load();
    assert_string_equal(err, "pmalloc: PM_CONFIG=/nonexistent\\x1b[31m\\x07.ini: No such file or "
                             "directory\n");
    free(err);
}

static void test_file_directory_and_unreadable(void **state)
{
    (void)state;
    setenv("PM_CONFIG", cfgt_dir(), 1);
    char *err = cfgt_load(), want[600];
    snprintf(want, sizeof want, "pmalloc: PM_CONFIG=%s: Is a directory\n", cfgt_dir());
    assert_string_equal(err, want);
    free(err);
    /* Unreadable although open works (tests may run as root, where modes do
     * not stop reading): /proc/self/mem fails its read at offset 0. */
    setenv("PM_CONFIG", "/proc/self/mem", 1);
    err = cfgt_load();
    assert_string_equal(err, "pmalloc: PM_CONFIG=/proc/self/mem: Input/output error\n");
    free(err);
    /* A path through a regular file. */
    char through[540];
    snprintf(through, sizeof through, "%s/x", cfgt_write("plain.ini", "[pmalloc]\n"));
    setenv("PM_CONFIG", through, 1);
    err = cfgt_load();
    snprintf(want, sizeof want, "pmalloc: PM_CONFIG=%s: Not a directory\n", through);
    assert_string_equal(err, want);
    free(err);
}

/* Mode 000: unreadable for anyone but root; as root the child drops to
 * nobody first (or the test says why it cannot). */
static void test_file_permission_denied(void **state)
{
    (void)state;
    const char *path = cfgt_write("secret.ini", "[pmalloc]\narena_max = 3\n");
    assert_int_equal(chmod(path, 0), 0);
    assert_int_equal(chmod(cfgt_dir(), 0755), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(77);
        if (open(path, O_RDONLY) >= 0)
            _exit(78); /* still readable: CAP_DAC_OVERRIDE without root uid */
        dup2(fds[1], 2);
        setenv("PM_CONFIG", path, 1);
        _pm_options_load();
        _exit(value(PM_OPT_arena_max) == 3 ? 1 : 0);
    }
    close(fds[1]);
    char buf[1024];
    ssize_t n, len = 0;
    while ((n = read(fds[0], buf + len, sizeof buf - 1 - (size_t)len)) > 0)
        len += n;
    buf[len] = '\0';
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && (WEXITSTATUS(st) == 77 || WEXITSTATUS(st) == 78)) {
        skip(); /* cannot make a file unreadable here (no setuid, or a capability) */
        return;
    }
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    char want[600];
    snprintf(want, sizeof want, "pmalloc: PM_CONFIG=%s: Permission denied\n", path);
    assert_string_equal(buf, want);
}

static void test_file_long_lines(void **state)
{
    (void)state;
    char text[2048], pad[400];
    memset(pad, 'x', 300);
    pad[300] = '\0';
    snprintf(text, sizeof text, "[pmalloc]\narena_max = 3 ; %s\ncheck = 1\n[program:%s]\n"
             "arena_max = 9\n[pmalloc]\nperturbb = 1\n; %s\ntop_pad = 1M\n", pad, pad, pad);
    const char *path;
    char *err = load_ini("long.ini", text, &path);
    cfgt_assert_hasf(err, "pmalloc: %s:2: line longer than 197 characters; ignored\n", path);
    cfgt_assert_hasf(err, "pmalloc: %s:4: line longer than 197 characters; ignored, "
                     "with the keys of its section\n", path);
    /* Line numbers after the long lines are still right. */
    cfgt_assert_hasf(err, "pmalloc: %s:7: unknown key 'perturbb'", path);
    /* A long comment is harmless: not reported, and not split into lines. */
    assert_int_equal(cfgt_diag_lines(err), 3);
    assert_int_equal(value(PM_OPT_arena_max), _pm_options_default(PM_OPT_arena_max));
    assert_int_equal(value(PM_OPT_check), 1);
    assert_int_equal(_pm_opt_state[PM_OPT_check].line, 3);
    assert_int_equal(value(PM_OPT_top_pad), PM_MIB);
    assert_int_equal(_pm_opt_state[PM_OPT_top_pad].line, 9);
    free(err);
}

static void test_on_bad_config_file(void **state)
{
    (void)state;
    const char *path;
    /* Applies to the lines after it. */
    char *err = load_ini("quiet.ini", "[pmalloc]\narena_max = x\non_bad_config = quiet\n"
                                      "check = 9\n", &path);
    cfgt_assert_hasf(err, "pmalloc: %s:2: arena_max='x': not a number", path);
    assert_int_equal(cfgt_diag_lines(err), 1);
    assert_int_equal(_pm_config_error_count(), 2); /* line 4 counted, not shown */
    assert_int_equal(value(PM_OPT_on_bad_config), PM_BAD_QUIET);
    free(err);
    /* The environment's choice beats the file's for every line. */
    setenv("PM_ON_BAD_CONFIG", "quiet", 1);
    err = load_ini("warn.ini", "[pmalloc]\non_bad_config = warn\ncheck = 9\n", NULL);
    assert_string_equal(err, "");
    assert_int_equal(_pm_config_error_count(), 1);
    free(err);
    setenv("PM_ARENA_MAX", "banana", 1);
    setenv("PM_CONFIG", "", 1);
    err = cfgt_load();
    assert_string_equal(err, "");
    assert_int_equal(_pm_config_error_count(), 1);
    free(err);
}

static int load_with_bad_env(void *arg)
{
    (void)arg;
    setenv("PM_ON_BAD_CONFIG", "abort", 1);
    setenv("PM_ARENA_MAX", "banana", 1);
    _pm_options_load();
    return 0;
}

static void test_on_bad_config_abort(void **state)
{
    (void)state;
    pmt_child_t c;
    assert_int_equal(pmt_fork_run(load_with_bad_env, NULL, 30, &c), 0);
    assert_true(WIFSIGNALED(c.status));
    assert_int_equal(WTERMSIG(c.status), SIGABRT);
    cfgt_assert_has(c.err, "pmalloc: PM_ARENA_MAX='banana': not a number");
    cfgt_assert_has(c.err, "pmalloc: aborting (on_bad_config = abort)");
    pmt_child_free(&c);
}

/* Exit status 0 when each bad call returned 0 with its errno. */
static int mallopt_bad_calls(void *arg)
{
    (void)arg;
    setenv("PM_ON_BAD_CONFIG", "abort", 1);
    _pm_options_load();
    errno = 0;
    if (_pm_options_set(12345, 1) != 0 || errno != EINVAL)
        return 1;
    errno = 0;
    if (_pm_options_set(PM_ARENA_MAX, 0) != 0 || errno != ERANGE)
        return 2;
    return 0;
}

/* A program's pm_mallopt call returns 0 on a bad value; even with
 * on_bad_config = abort it prints, and the program goes on. */
static void test_mallopt_never_aborts(void **state)
{
    (void)state;
    pmt_child_t c;
    assert_int_equal(pmt_fork_run(mallopt_bad_calls, NULL, 30, &c), 0);
    assert_true(WIFEXITED(c.status));
    assert_int_equal(WEXITSTATUS(c.status), 0);
    cfgt_assert_has(c.err, "pmalloc: pm_mallopt(12345, 1): unknown parameter\n");
    cfgt_assert_has(c.err, "pmalloc: pm_mallopt(PM_ARENA_MAX, 0): out of range");
    cfgt_assert_lacks(c.err, "aborting");
    pmt_child_free(&c);
}

static int busy_check(int id, size_t v)
{
    (void)v;
    return id == PM_OPT_check;
}

static void test_mallopt_errors(void **state)
{
    (void)state;
    free(cfgt_load());
    cfgt_cap_t c;
    cfgt_cap_begin(&c);
    errno = 0;
    assert_int_equal(_pm_options_set(12345, 1), 0);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(_pm_options_set(PM_ARENA_MAX, 0), 0);
    assert_int_equal(errno, ERANGE);
    assert_int_equal(_pm_options_set(PM_TRIM_THRESHOLD, -1), 0);
    assert_int_equal(errno, ERANGE);
    assert_int_equal(value(PM_OPT_arena_max), _pm_options_default(PM_OPT_arena_max));
    _pm_options_busy_hook = busy_check;
    errno = 0;
    assert_int_equal(_pm_options_set(PM_CHECK, 1), 0);
    assert_int_equal(errno, EBUSY);
    assert_int_equal(value(PM_OPT_check), 0);
    /* The same value as in force is no change, hence never busy. */
    assert_int_equal(_pm_options_set(PM_CHECK, 0), 1);
    /* Each problem is said once. */
    assert_int_equal(_pm_options_set(12345, 1), 0);
    assert_int_equal(_pm_options_set(PM_ARENA_MAX, 0), 0);
    assert_int_equal(_pm_options_set(PM_CHECK, 2), 0);
    _pm_options_busy_hook = NULL;
    assert_int_equal(_pm_options_set(PM_ARENA_MAX, 3), 1);
    assert_int_equal(_pm_opt_state[PM_OPT_arena_max].src, PM_SRC_MALLOPT);
    char *err = cfgt_cap_end(&c);
    cfgt_assert_has(err, "pmalloc: pm_mallopt(12345, 1): unknown parameter\n");
    cfgt_assert_hasf(err, "pmalloc: pm_mallopt(PM_ARENA_MAX, 0): out of range [1, 1024]; "
                     "arena_max stays %s\n", cfgt_default_text(PM_OPT_arena_max));
    cfgt_assert_has(err, "pmalloc: pm_mallopt(PM_TRIM_THRESHOLD, -1): out of range "
                         "[0, 2147483647]; trim_threshold stays 128K\n");
    cfgt_assert_has(err, "pmalloc: pm_mallopt(PM_CHECK, 1): too late to change check; "
                         "it stays 0\n");
    assert_int_equal(cfgt_diag_lines(err), 4);
    assert_int_equal(_pm_config_error_count(), 4);
    free(err);
}

static void test_print_config(void **state)
{
    (void)state;
    setenv("PM_PRINT_CONFIG", "1", 1);
    setenv("PM_ARENA_MAX", "2", 1);
    char *err = cfgt_load();
    cfgt_assert_has(err, "pmalloc settings (config file: none; program: cfgtest)\n");
    cfgt_assert_has(err, "  arena_max = 2 (env PM_ARENA_MAX)");
    cfgt_assert_has(err, "  print_config = 1 (env PM_PRINT_CONFIG) [default 0]\n");
    for (int id = 0; id < PM_OPT_COUNT; id++) {
        char key[64];
        snprintf(key, sizeof key, "  %s = ", _pm_opt_desc[id].key);
        cfgt_assert_has(err, key);
    }
    free(err);
    /* Through the file too. */
    cfgt_clean_env();
    err = load_ini("print.ini", "[pmalloc]\nprint_config = yes\n", NULL);
    cfgt_assert_has(err, "print_config = 1 (");
    free(err);
    cfgt_clean_env();
    err = cfgt_load();
    assert_string_equal(err, "");
    free(err);
}

/* The same for real: a copy of this binary made set-group-ID runs with the
 * kernel's AT_SECURE set, and the caller's PM_CONFIG (a file holding a
 * "secret") and PM_ARENA_MAX must not reach it. Needs root (to give the copy
 * another group) and a file system that honours set-group-ID bits; skipped
 * otherwise, and under sanitizers, whose runtimes treat such programs apart. */
static int child_secure_real(void)
{
    if (getauxval(AT_SECURE) == 0)
        return 77; /* the set-group-ID bit was not honoured */
    pm_free(pm_malloc(1));
    if (_pm_config_file() != NULL || _pm_opt_state[PM_OPT_arena_max].src != PM_SRC_DEFAULT) {
        fprintf(stderr, "pmt: file %s, arena_max from source %d\n",
                _pm_config_file() ? _pm_config_file() : "none",
                _pm_opt_state[PM_OPT_arena_max].src);
        return 1;
    }
    return 0;
}

static void test_secure_for_real(void **state)
{
    (void)state;
    if (geteuid() != 0 || PMT_SANITIZER)
        skip();
    char copy[512], exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    snprintf(copy, sizeof copy, "%s/secure-copy", cfgt_dir());
    FILE *in = fopen(exe, "rb"), *out = fopen(copy, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, got, out), got);
    fclose(in);
    assert_int_equal(fclose(out), 0);
    /* Group 65534 (nogroup) and g+s: this root process's copy runs with
     * another effective group than its real one. */
    assert_int_equal(chown(copy, 0, 65534), 0);
    assert_int_equal(chmod(copy, 02755), 0);
    const char *secret = cfgt_write("secret.ini", "secret-line-1\n[pmalloc]\narena_max = 3\n");
    setenv("PM_CONFIG", secret, 1);
    setenv("PM_ARENA_MAX", "2", 1);
    int fds[2];
    pmt_child_t c;
    pid_t pid = pmt_fork_piped(fds, &c);
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        alarm(30);
        char *argv[] = { copy, (char *)PMT_CHILD_FLAG, (char *)"secure_real", NULL };
        execv(copy, argv);
        _exit(127);
    }
    close(fds[1]);
    pmt_collect(pid, fds[0], 30, &c);
    unlink(copy);
    if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 77) {
        pmt_child_free(&c);
        skip();
    }
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0)
        fail_msg("set-group-ID copy: status 0x%x, stderr:\n%s", c.status, c.err);
    cfgt_assert_has(c.err, "pmalloc: set-user-ID or set-group-ID program: PM_* variables and "
                           "PM_CONFIG ignored\n");
    assert_null(strstr(c.err, "secret-line"));
    pmt_child_free(&c);
}

static const pmt_case_t cases[] = {
    { "secure_real", child_secure_real },
};

int main(int argc, char **argv)
{
    pmt_child_dispatch(argc, argv, cases, PMT_ARRAY_LEN(cases));
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, cfgt_setup, cfgt_teardown)
        T(test_env_not_a_number),
        T(test_secure_program_ignores_caller),
        T(test_secure_for_real),
        T(test_env_unknown_unit),
        T(test_env_bad_keeps_file_value),
        T(test_env_values_matrix),
        T(test_env_typo),
        T(test_config_missing),
        T(test_config_default_path),
        T(test_file_syntax_error),
        T(test_file_unknown_key),
        T(test_file_out_of_range),
        T(test_file_set_twice),
        T(test_file_values),
        T(test_file_sections),
        T(test_file_program_section),
        T(test_file_too_large),
        T(test_file_binary),
        T(test_file_too_many_problems),
        T(test_file_not_regular),
        T(test_file_path_escaped),
        T(test_file_directory_and_unreadable),
        T(test_file_permission_denied),
        T(test_file_long_lines),
        T(test_on_bad_config_file),
        T(test_on_bad_config_abort),
        T(test_mallopt_never_aborts),
        T(test_mallopt_errors),
        T(test_print_config),
#undef T
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cfgt_cleanup();
    return rc;
}
