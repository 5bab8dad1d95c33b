/* SPDX-License-Identifier: MIT */
/*
 * common.h - helpers shared by the integration and stress tests.
 *
 * Everything here is header-only (static functions) so that each test binary
 * stays one .c file. What it offers:
 *  - sanitizer detection (PMT_ASAN, PMT_TSAN, PMT_SANITIZER, PMT_SCALE);
 *  - child cases: a test binary lists named functions (pmt_case_t) and calls
 *    pmt_child_dispatch() first thing in main(); pmt_spawn() re-executes the
 *    binary (/proc/self/exe) with extra PM_* variables so that the case runs
 *    in a fresh process whose allocator reads those settings at its first
 *    pm_* call, with stderr captured through a pipe and an alarm() so that a
 *    deadlock shows up as a failure, not a hang;
 *  - pmt_fork_run(): the same capture for a plain fork (no exec);
 *  - assertions on a child's fate (pmt_assert_exit0, pmt_assert_abort);
 *  - capture of this process's fd 2 (pmt_capture_begin / pmt_capture_end);
 *  - RSS from /proc/self/statm, a small PRNG, pointer+seed content patterns.
 * Tests may use libc malloc/stdio freely: pmalloc never interposes them.
 */
#ifndef PMT_COMMON_H
#define PMT_COMMON_H

/* pipe2, strsignal: include this header before any system header. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "pmalloc.h"

/* ---- sanitizers ------------------------------------------------------ */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define PMT_ASAN 1
#else
#define PMT_ASAN 0
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer) || defined(PM_TSAN)
#define PMT_TSAN 1
#else
#define PMT_TSAN 0
#endif
#if PMT_ASAN || PMT_TSAN || defined(PM_TEST_SANITIZER)
#define PMT_SANITIZER 1
#else
#define PMT_SANITIZER 0
#endif
/* Iteration counts shrink under sanitizers: they run 5-20x slower. */
#define PMT_SCALE(n, san_n) (PMT_SANITIZER ? (san_n) : (n))

#define PMT_KIB ((size_t)1 << 10)
#define PMT_MIB ((size_t)1 << 20)
#define PMT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- small utilities --------------------------------------------------- */

/* Case-sensitive substring test on a NUL-terminated buffer. */
static inline int pmt_contains(const char *hay, const char *needle)
{
    return hay != NULL && strstr(hay, needle) != NULL;
}

/* Number of lines of text that contain needle. */
static inline size_t pmt_count_lines_with(const char *text, const char *needle)
{
    size_t n = 0;
    const char *line = text;
    while (line != NULL && *line != '\0') {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *hit = strstr(line, needle);
        if (hit != NULL && hit < line + len)
            n++;
        line = end ? end + 1 : NULL;
    }
    return n;
}

/* Resident set size of this process, in bytes (/proc/self/statm). */
static inline size_t pmt_rss_bytes(void)
{
    char buf[256];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    unsigned long size = 0, resident = 0;
    if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
        return 0;
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Wait, making no allocator call, until the RSS is at most limit bytes or
 * max_ms have passed; returns the RSS last read. Memory goes back on the
 * purger's time, a few decay periods; the wait is generous for a loaded
 * CI machine, and returns as soon as the RSS is there. */
static inline size_t pmt_rss_wait_below(size_t limit, unsigned max_ms)
{
    size_t rss = pmt_rss_bytes();
    for (unsigned waited = 0; rss > limit && waited < max_ms; waited += 5) {
        usleep(5000);
        rss = pmt_rss_bytes();
    }
    return rss;
}

static inline long pmt_nprocs(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

static inline double pmt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64*: deterministic per seed, good enough for test sizes. */
static inline uint64_t pmt_rand(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static inline uint64_t pmt_mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Content pattern derived from the block's address and a seed, so that a
 * block handed to another thread, moved by realloc (pass the original
 * address as key) or overwritten by the allocator is told apart. */
static inline uint8_t pmt_pattern_byte(uint64_t base, size_t i)
{
    return (uint8_t)(pmt_mix(base + (i >> 3)) >> ((i & 7) * 8));
}

static inline void pmt_fill(void *p, size_t n, uint64_t key, uint64_t seed)
{
    uint64_t base = pmt_mix(key ^ (seed * 0x100000001B3ull));
    unsigned char *c = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = pmt_mix(base + (i >> 3));
        memcpy(c + i, &w, 8);
    }
    for (; i < n; i++)
        c[i] = pmt_pattern_byte(base, i);
}

/* Returns the offset of the first wrong byte, or (size_t)-1 if all match. */
static inline size_t pmt_verify(const void *p, size_t n, uint64_t key, uint64_t seed)
{
    uint64_t base = pmt_mix(key ^ (seed * 0x100000001B3ull));
    const unsigned char *c = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = pmt_mix(base + (i >> 3)), got;
        memcpy(&got, c + i, 8);
        if (got != w) {
            for (size_t j = 0; j < 8; j++)
                if (c[i + j] != pmt_pattern_byte(base, i + j))
                    return i + j;
        }
    }
    for (; i < n; i++)
        if (c[i] != pmt_pattern_byte(base, i))
            return i;
    return (size_t)-1;
}

static inline int pmt_all_bytes(const void *p, size_t n, unsigned char v)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != v)
            return 0;
    return 1;
}

/* ---- misuse cases ---------------------------------------------------------- */

/* A size from the environment (a child case's parameter), else def. */
static inline size_t pmt_env_size(const char *name, size_t def)
{
    const char *v = getenv(name);
    return v && *v ? (size_t)strtoull(v, NULL, 0) : def;
}

/* Keep the compiler from reasoning about p. */
static inline void pmt_sink(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* Change n bytes at p, whatever they held (a byte equal to 'A' becomes 'B'). */
static inline void pmt_scribble(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        volatile unsigned char *c = p + i;
        *c = *c == 0x41 ? 0x42 : 0x41;
    }
}

/* A misuse case that should have aborted came back: say so, exit 0 (the
 * parent then sees no abort). */
static inline int pmt_survived(const char *what)
{
    fprintf(stderr, "pmt: %s returned instead of aborting\n", what);
    return 0;
}

/* ---- checks inside child processes (no cmocka there) -------------------- */

/* In a child case: report a failed condition on stderr and return 1. The
 * text never says "pmalloc", so that tests matching the allocator's own
 * diagnostics cannot be fooled by it. */
#define PMT_REQUIRE(cond, ...)                                                  \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "pmt: %s:%d: check failed: %s: ", __FILE__,        \
                    __LINE__, #cond);                                           \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
            fflush(stderr);                                                     \
            return 1;                                                           \
        }                                                                       \
    } while (0)

/* In a child case: the heap must check clean. */
#define PMT_REQUIRE_HEAP_OK() PMT_REQUIRE(pm_check_heap() == 0, "pm_check_heap failed")

/* ---- child processes ----------------------------------------------------- */

typedef int (*pmt_case_fn)(void);
typedef struct pmt_case {
    const char *name;
    pmt_case_fn fn;
} pmt_case_t;

typedef struct pmt_child {
    int status;       /* waitpid status                                  */
    int timed_out;    /* killed by the parent after the deadline         */
    char *err;        /* captured stderr, NUL-terminated (libc malloc)   */
    size_t err_len;
} pmt_child_t;

static const pmt_case_t *pmt_cases_;
static size_t pmt_ncases_;
static const char *pmt_argv0_ = "test";

#define PMT_CHILD_FLAG "--pmt-child"

/* Call first in main(): when this process is a re-executed child, run the
 * named case and exit with its result; otherwise remember the case table. */
static inline void pmt_child_dispatch(int argc, char **argv, const pmt_case_t *cases,
                                      size_t ncases)
{
    pmt_cases_ = cases;
    pmt_ncases_ = ncases;
    if (argc > 0)
        pmt_argv0_ = argv[0];
    if (argc < 3 || strcmp(argv[1], PMT_CHILD_FLAG) != 0)
        return;
    for (size_t i = 0; i < ncases; i++) {
        if (strcmp(cases[i].name, argv[2]) == 0) {
            int rc = cases[i].fn();
            fflush(stdout);
            fflush(stderr);
            _exit(rc);
        }
    }
    fprintf(stderr, "pmt: no child case named %s\n", argv[2]);
    _exit(125);
}

static inline void pmt_child_free(pmt_child_t *c)
{
    free(c->err);
    c->err = NULL;
    c->err_len = 0;
}

/* Parent side: read the pipe until EOF or the deadline, then reap. */
static inline void pmt_collect(pid_t pid, int rfd, unsigned timeout_s, pmt_child_t *out)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    double deadline = pmt_now() + timeout_s + 5.0;
    out->timed_out = 0;
    for (;;) {
        double left = deadline - pmt_now();
        if (left <= 0) {
            out->timed_out = 1;
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd pfd = { .fd = rfd, .events = POLLIN };
        int pr = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        if (len + 1024 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t n = read(rfd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(rfd);
    buf[len] = '\0';
    out->err = buf;
    out->err_len = len;
    while (waitpid(pid, &out->status, 0) < 0 && errno == EINTR)
        ;
}

/* fork() with a pipe ready for the child's stderr, stdio flushed first so
 * nothing is written twice. Returns the pid (0 in the child) or -1. */
static inline pid_t pmt_fork_piped(int fds[2], pmt_child_t *out)
{
    memset(out, 0, sizeof *out);
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
    }
    return pid;
}

/* Re-execute this binary to run child case `name` in a fresh process with the
 * NULL-terminated "NAME=VALUE" list env added to the environment (an entry
 * "NAME" alone unsets NAME). stderr is captured into out->err. The child gets
 * alarm(timeout_s), so a hang ends as SIGALRM. Returns 0, or -1 if it could
 * not start. */
static inline int pmt_spawn(const char *name, const char *const *env, unsigned timeout_s,
                            pmt_child_t *out)
{
    int fds[2];
    pid_t pid = pmt_fork_piped(fds, out);
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
            const char *eq = strchr(env[i], '=');
            if (eq == NULL) {
                unsetenv(env[i]);
            } else {
                char key[128];
                size_t kl = (size_t)(eq - env[i]);
                if (kl >= sizeof key)
                    _exit(126);
                memcpy(key, env[i], kl);
                key[kl] = '\0';
                setenv(key, eq + 1, 1);
            }
        }
        alarm(timeout_s);
        char *argv[] = { (char *)pmt_argv0_, (char *)PMT_CHILD_FLAG, (char *)name, NULL };
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fds[1]);
    pmt_collect(pid, fds[0], timeout_s, out);
    return 0;
}

/* Run fn(arg) in a plain fork of this process (no exec: the child inherits
 * the allocator's state), stderr captured, alarm(timeout_s). The child's
 * exit status is fn's return value. */
static inline int pmt_fork_run(int (*fn)(void *), void *arg, unsigned timeout_s,
                               pmt_child_t *out)
{
    int fds[2];
    pid_t pid = pmt_fork_piped(fds, out);
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* cmocka's handlers would longjmp back into the test runner. */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGILL, SIG_DFL);
        signal(SIGFPE, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        dup2(fds[1], STDERR_FILENO);
        alarm(timeout_s);
        int rc = fn(arg);
        fflush(stderr);
        _exit(rc);
    }
    close(fds[1]);
    pmt_collect(pid, fds[0], timeout_s, out);
    return 0;
}

/* Describe a wait status in words, for failure messages. */
static inline const char *pmt_status_str(const pmt_child_t *c, char *buf, size_t n)
{
    if (c->timed_out)
        snprintf(buf, n, "timed out (killed by the test)");
    else if (WIFEXITED(c->status))
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(c->status));
    else if (WIFSIGNALED(c->status))
        snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(c->status),
                 strsignal(WTERMSIG(c->status)));
    else
        snprintf(buf, n, "wait status 0x%x", c->status);
    return buf;
}

/* Print a child's captured stderr in full (cmocka's print_error truncates). */
static inline void pmt_dump_err(const pmt_child_t *c)
{
    fflush(stdout);
    fputs("---- child stderr ----\n", stderr);
    if (c->err != NULL)
        fwrite(c->err, 1, c->err_len, stderr);
    fputs("---- end of child stderr ----\n", stderr);
    fflush(stderr);
}

/* The child must have exited with status 0. */
#define pmt_assert_exit0(c) pmt_assert_exit0_((c), #c, __FILE__, __LINE__)
static inline void pmt_assert_exit0_(const pmt_child_t *c, const char *what,
                                     const char *file, int line)
{
    char st[128];
    if (c->timed_out || !WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0) {
        print_error("%s:%d: child %s %s\n", file, line, what, pmt_status_str(c, st, sizeof st));
        pmt_dump_err(c);
        _fail(file, line);
    }
}

/* The child must have died of SIGABRT and its stderr must contain "pmalloc"
 * and at least one of the NULL-terminated alternatives in `any` (if any). */
#define pmt_assert_abort(c, ...) \
    pmt_assert_abort_((c), (const char *const[]){ __VA_ARGS__, NULL }, __FILE__, __LINE__)
static inline void pmt_assert_abort_(const pmt_child_t *c, const char *const *any,
                                     const char *file, int line)
{
    char st[128];
    int ok = !c->timed_out && WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGABRT;
    if (!ok) {
        print_error("%s:%d: expected SIGABRT, child %s\n", file, line,
                    pmt_status_str(c, st, sizeof st));
        pmt_dump_err(c);
        _fail(file, line);
    }
    if (!pmt_contains(c->err, "pmalloc")) {
        print_error("%s:%d: stderr lacks \"pmalloc\"\n", file, line);
        pmt_dump_err(c);
        _fail(file, line);
    }
    if (any[0] == NULL)
        return;
    for (size_t i = 0; any[i] != NULL; i++)
        if (pmt_contains(c->err, any[i]))
            return;
    print_error("%s:%d: stderr has none of the expected texts (first: \"%s\")\n", file,
                line, any[0]);
    pmt_dump_err(c);
    _fail(file, line);
}

/* Spawn case `name` with env and assert it exits 0. */
#define pmt_run_case_ok(name, env, tmo) pmt_run_case_ok_((name), (env), (tmo), __FILE__, __LINE__)
static inline void pmt_run_case_ok_(const char *name, const char *const *env, unsigned tmo,
                                    const char *file, int line)
{
    pmt_child_t c;
    if (pmt_spawn(name, env, tmo, &c) != 0) {
        print_error("%s:%d: could not start child case %s: %s\n", file, line, name,
                    strerror(errno));
        _fail(file, line);
    }
    pmt_assert_exit0_(&c, name, file, line);
    pmt_child_free(&c);
}

/* ---- capturing this process's fd 2 -------------------------------------- */

typedef struct pmt_capture {
    int saved_fd;
    FILE *tmp;
} pmt_capture_t;

static inline int pmt_capture_begin(pmt_capture_t *cap)
{
    fflush(stderr);
    cap->tmp = tmpfile();
    if (cap->tmp == NULL)
        return -1;
    cap->saved_fd = dup(STDERR_FILENO);
    if (cap->saved_fd < 0 || dup2(fileno(cap->tmp), STDERR_FILENO) < 0) {
        fclose(cap->tmp);
        return -1;
    }
    return 0;
}

/* Restores fd 2 and returns what was written to it (libc malloc'd). */
static inline char *pmt_capture_end(pmt_capture_t *cap)
{
    fflush(stderr);
    dup2(cap->saved_fd, STDERR_FILENO);
    close(cap->saved_fd);
    long len = ftell(cap->tmp) >= 0 ? lseek(fileno(cap->tmp), 0, SEEK_END) : 0;
    if (len < 0)
        len = 0;
    char *text = malloc((size_t)len + 1);
    ssize_t got = pread(fileno(cap->tmp), text, (size_t)len, 0);
    text[got > 0 ? got : 0] = '\0';
    fclose(cap->tmp);
    return text;
}

/* ---- table-driven misuse cases ------------------------------------------- */

enum { PMT_ABORTS = 0, PMT_EXITS_0 = 1 };

/* A child case run with env: it must abort with a "pmalloc:" line holding
 * one of expect, or exit 0. */
typedef struct pmt_spec {
    const char *name, *child;
    const char *env[6];
    const char *expect[3];
    int outcome;
} pmt_spec_t;

/* A cmocka test body for one pmt_spec_t (its initial_state). */
static inline void pmt_run_spec(void **state)
{
    const pmt_spec_t *s = *state;
    pmt_child_t c;
    assert_int_equal(pmt_spawn(s->child, s->env, 20, &c), 0);
    if (s->outcome == PMT_EXITS_0) {
        pmt_assert_exit0_(&c, s->name, __FILE__, __LINE__);
    } else {
        const char *any[4] = { s->expect[0], s->expect[1], s->expect[2], NULL };
        pmt_assert_abort_(&c, any, __FILE__, __LINE__);
    }
    pmt_child_free(&c);
}

#endif /* PMT_COMMON_H */
