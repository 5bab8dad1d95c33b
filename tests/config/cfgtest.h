/* SPDX-License-Identifier: MIT */
/*
 * cfgtest.h - helpers for the configuration tests that link the internals:
 * a scratch directory for ini files, a clean PM_* environment per test, and
 * capture of what _pm_options_load (or any call) writes on fd 2, by
 * pointing fd 2 at a memfd around the call. Header-only.
 */
#ifndef PM_CFGTEST_H
#define PM_CFGTEST_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "options.h"
#include "pmalloc.h"

/* ---- scratch files ------------------------------------------------------- */

static char cfgt_dir_[256];

/* A fresh directory under TMPDIR (or /tmp), removed at exit by cfgt_cleanup. */
static inline const char *cfgt_dir(void)
{
    if (!cfgt_dir_[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(cfgt_dir_, sizeof cfgt_dir_, "%s/pmcfg-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(cfgt_dir_)) {
            perror("mkdtemp");
            abort();
        }
    }
    return cfgt_dir_;
}

static inline void cfgt_cleanup(void)
{
    if (cfgt_dir_[0]) {
        char cmd[320];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", cfgt_dir_);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", cfgt_dir_);
    }
}

/* Write len bytes to DIR/name; returns the path (static, one per call site
 * is not needed: copy it if two are kept). */
static inline const char *cfgt_write_n(const char *name, const void *data, size_t len)
{
    static char path[8][512];
    static unsigned next;
    char *p = path[next++ % 8];
    snprintf(p, 512, "%s/%s", cfgt_dir(), name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    return p;
}

static inline const char *cfgt_write(const char *name, const char *text)
{
    return cfgt_write_n(name, text, strlen(text));
}

/* ---- environment --------------------------------------------------------- */

/* Unset every tunable's variable, the given typo names, and set PM_CONFIG=
 * (no file), as the test harness does. */
static inline void cfgt_clean_env(void)
{
    for (int id = 0; id < PM_OPT_COUNT; id++)
        unsetenv(_pm_opt_desc[id].env);
    static const char *const extra[] = {"PM_ARENA_MAXX", "PM_CHEK", "PM_CONFG", "PM_DECAY",
                                        "PM_UNRELATED_X"};
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++)
        unsetenv(extra[i]);
    setenv("PM_CONFIG", "", 1);
}

static inline int cfgt_setup(void **state)
{
    (void)state;
    cfgt_clean_env();
    _pm_options_busy_hook = NULL;
    _pm_config_program = "cfgtest";
    _pm_config_diag_fd = 2;
    _pm_config_check_mode = 0;
    _pm_config_no_print = 0;
    _pm_config_secure = 0;
    _pm_options_reset();
    return 0;
}

static inline int cfgt_teardown(void **state)
{
    (void)state;
    _pm_config_secure = 0;
    cfgt_clean_env();
    _pm_options_reset();
    return 0;
}

/* ---- capturing fd 2 ------------------------------------------------------ */

typedef struct cfgt_cap {
    int saved, fd;
} cfgt_cap_t;

static inline void cfgt_cap_begin(cfgt_cap_t *c)
{
    fflush(stderr);
    c->fd = memfd_create("cfgt-stderr", MFD_CLOEXEC);
    assert_true(c->fd >= 0);
    c->saved = dup(2);
    assert_true(c->saved >= 0);
    assert_true(dup2(c->fd, 2) == 2);
}

/* Restore fd 2; return what was written (malloc'd, NUL-terminated). */
static inline char *cfgt_cap_end(cfgt_cap_t *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    off_t len = lseek(c->fd, 0, SEEK_END);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    ssize_t got = pread(c->fd, buf, (size_t)len, 0);
    buf[got > 0 ? got : 0] = '\0';
    close(c->fd);
    return buf;
}

/* _pm_options_load with stderr captured. */
static inline char *cfgt_load(void)
{
    cfgt_cap_t c;
    cfgt_cap_begin(&c);
    _pm_options_load();
    return cfgt_cap_end(&c);
}

/* The dump as text or JSON (malloc'd). */
static inline char *cfgt_dump(int format)
{
    int fd = memfd_create("cfgt-dump", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(_pm_config_dump_fd(fd, format), 0);
    off_t len = lseek(fd, 0, SEEK_END);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    ssize_t got = pread(fd, buf, (size_t)len, 0);
    buf[got > 0 ? got : 0] = '\0';
    close(fd);
    return buf;
}

/* Lines of text that start with "pmalloc: ". */
static inline unsigned cfgt_diag_lines(const char *text)
{
    unsigned n = 0;
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += strncmp(p, "pmalloc: ", 9) == 0;
    return n;
}

/* Fail unless text contains needle, showing both. */
#define cfgt_assert_has(text, needle)                                                  \
    do {                                                                               \
        const char *t_ = (text), *n_ = (needle);                                       \
        if (!t_ || !strstr(t_, n_))                                                    \
            fail_msg("expected \"%s\" in:\n%s", n_, t_ ? t_ : "(null)");               \
    } while (0)

/* cfgt_assert_has with a printf-style needle (one naming a file's path). */
#define cfgt_assert_hasf(text, ...)                                                    \
    do {                                                                               \
        char f_[600];                                                                  \
        snprintf(f_, sizeof f_, __VA_ARGS__);                                          \
        cfgt_assert_has(text, f_);                                                     \
    } while (0)

#define cfgt_assert_lacks(text, needle)                                                \
    do {                                                                               \
        const char *t_ = (text), *n_ = (needle);                                       \
        if (t_ && strstr(t_, n_))                                                      \
            fail_msg("did not expect \"%s\" in:\n%s", n_, t_);                         \
    } while (0)

/* The default as the diagnostics print it ("16", "128K"). */
static inline const char *cfgt_default_text(int id)
{
    static char buf[4][32];
    static unsigned next;
    char *b = buf[next++ % 4];
    _pm_opt_format(id, _pm_options_default(id), b, 32);
    return b;
}

#endif /* PM_CFGTEST_H */
