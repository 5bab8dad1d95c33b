/* SPDX-License-Identifier: MIT */
/*
 * test_init_races.c - pm_init and fork at awkward moments. Each case runs
 * in a fresh process (pmalloc not yet initialised there):
 *  - a thread cancelled inside init must not leave the others waiting;
 *  - a child forked while another thread is inside init must run init
 *    itself: held there by this binary's open() of the ini file, or by its
 *    open() of the CPU list, which forks at the moment init holds the
 *    options lock;
 *  - the child's first new thread may get the init thread's pthread_t back
 *    from glibc and must not take itself for the init thread;
 *  - a child made without the fork handlers (_Fork) keeps the parent's
 *    thread ids in its caches: the orphan scan must leave its live one;
 *  - calls back into pmalloc from inside init (from a libc call init makes,
 *    here this binary's open()) must fail cleanly;
 *  - a fork handler installed before pmalloc's first use may call it.
 */
#define _GNU_SOURCE
#include "../common.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* _Fork: glibc 2.34 and later. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
#define PMT_HAVE_FORK_ 1
#else
#define PMT_HAVE_FORK_ 0
#endif

/* ---- open(): the library's calls land here ----------------------------- */

static int fork_at_cpu_list;  /* fork when init opens the CPU list */
static int forked_in_open;
static pid_t open_child = -1;
static char reenter_path[64]; /* call pmalloc when init opens this */
static char hold_path[64];    /* wait for a byte on hold_pipe when init opens this */
static int hold_pipe[2] = { -1, -1 };
static void reenter(void);

static void child_allocates(void)
{
    alarm(10);
    void *p = pm_malloc(16);
    _exit(p != NULL && pm_check_heap() == 0 ? 0 : 1);
}

static void *forker(void *arg)
{
    (void)arg;
    pid_t pid = fork();
    if (pid == 0)
        child_allocates();
    open_child = pid;
    return NULL;
}

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & O_CREAT) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (fork_at_cpu_list && strcmp(path, "/sys/devices/system/cpu/online") == 0) {
        fork_at_cpu_list = 0;
        forked_in_open = 1;
        /* From another thread: the child must not be the init thread. */
        pthread_t t;
        if (pthread_create(&t, NULL, forker, NULL) == 0)
            pthread_join(t, NULL);
    }
    if (reenter_path[0] && strcmp(path, reenter_path) == 0)
        reenter();
    if (hold_path[0] && strcmp(path, hold_path) == 0) {
        char c;
        while (read(hold_pipe[0], &c, 1) < 0 && errno == EINTR)
            ;
    }
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

static int wait_ok(pid_t pid, const char *what)
{
    int st;
    PMT_REQUIRE(pid > 0, "fork");
    PMT_REQUIRE(waitpid(pid, &st, 0) == pid, "waitpid");
    PMT_REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child %s %d", what,
                WIFSIGNALED(st) ? "killed by signal" : "exited with",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    return 0;
}

/* ---- cancelled inside init --------------------------------------------- */

/* Init makes cancellation points (getrandom, the ini file's open and read);
 * cancelled in there, it used to leave every other thread waiting for it
 * for good. */
static int cancel_go;

static void *init_cancelled_thread(void *arg)
{
    (void)arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    while (!__atomic_load_n(&cancel_go, __ATOMIC_ACQUIRE))
        sched_yield();
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    pm_free(pm_malloc(16)); /* not a cancellation point */
    pthread_testcancel();
    return NULL;
}

static int child_init_cancelled(void)
{
    pthread_t t;
    PMT_REQUIRE(pthread_create(&t, NULL, init_cancelled_thread, NULL) == 0, "thread");
    PMT_REQUIRE(pthread_cancel(t) == 0, "cancel");
    __atomic_store_n(&cancel_go, 1, __ATOMIC_RELEASE);
    void *r;
    PMT_REQUIRE(pthread_join(t, &r) == 0, "join");
    PMT_REQUIRE(r == PTHREAD_CANCELED, "the thread was not cancelled after pm_malloc");
    void *p = pm_malloc(16); /* hung here */
    PMT_REQUIRE(p != NULL, "malloc");
    pm_free(p);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* ---- forked while another thread is inside init ------------------------ */

/* The init thread waits in open() of PM_CONFIG (this binary's open, below,
 * holds it there until released: pmalloc no longer blocks on a FIFO). The
 * child used to wait for good for an init lock taken by a thread it does
 * not have. */
static pthread_t init_thread_id;

static void *init_blocked_thread(void *arg)
{
    (void)arg;
    pm_free(pm_malloc(16));
    return NULL;
}

static void fifo_block_init(void)
{
    snprintf(hold_path, sizeof hold_path, "/tmp/pmt-hold-%d", (int)getpid());
    int fd = creat(hold_path, 0600); /* an empty ini file: no warning */
    if (fd < 0 || pipe(hold_pipe) != 0)
        return;
    close(fd);
    setenv("PM_CONFIG", hold_path, 1);
    pthread_create(&init_thread_id, NULL, init_blocked_thread, NULL);
    usleep(200 * 1000); /* the thread is now held opening the file */
}

static void fifo_release_init(void)
{
    if (write(hold_pipe[1], "x", 1) != 1) /* lets the thread's open return */
        return;
    pthread_join(init_thread_id, NULL);
    unlink(hold_path);
    close(hold_pipe[0]);
    close(hold_pipe[1]);
}

static int child_fork_in_init(void)
{
    fifo_block_init();
    pid_t pid = fork();
    if (pid == 0) {
        unsetenv("PM_CONFIG");
        child_allocates();
    }
    fifo_release_init();
    if (wait_ok(pid, "forked during init"))
        return 1;
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* Init held the options lock while it read the CPU list: a child forked
 * then inherited the lock taken and spun on it for good. Fork at that
 * moment still. */
static int child_fork_holding_options_lock(void)
{
    fork_at_cpu_list = 1;
    pm_init();
    PMT_REQUIRE(forked_in_open, "init did not open the CPU list");
    if (wait_ok(open_child, "forked with the options lock held"))
        return 1;
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* The child's first new thread may be given the init thread's pthread_t
 * (glibc keeps that thread's stack for reuse): it used to take itself for
 * the thread inside init and allocate with init never run; init, run later
 * by another thread, then drew a new secret and its blocks' headers no
 * longer checked out. */
static pthread_barrier_t both;

static void *child_thread(void *arg)
{
    (void)arg;
    void *p = pm_malloc(100);
    pthread_barrier_wait(&both); /* the main thread calls in now */
    pthread_barrier_wait(&both);
    if (p)
        memset(p, 1, 100);
    pm_free(p); /* aborted here: corrupted chunk header */
    return p;
}

static int child_child_thread_runs_init(void)
{
    fifo_block_init();
    pid_t pid = fork();
    if (pid == 0) {
        unsetenv("PM_CONFIG");
        alarm(10);
        pthread_t t;
        pthread_barrier_init(&both, NULL, 2);
        pthread_create(&t, NULL, child_thread, NULL);
        pthread_barrier_wait(&both);
        pm_free(pm_malloc(16));
        pthread_barrier_wait(&both);
        void *r;
        pthread_join(t, &r);
        _exit(r != NULL && pm_check_heap() == 0 ? 0 : 1);
    }
    fifo_release_init();
    return wait_ok(pid, "a thread of a child forked during init");
}

/* ---- calls back into pmalloc from inside init -------------------------- */

/* A libc call that init makes, replaced by the program (or, preloaded, by
 * pmalloc itself), may call back in before anything is set up. Such calls
 * let through used to spin on the options lock init held (the CPU list
 * was read under it), then failed with ENOMEM. Under a preload that is
 * libc itself, so they are served now (boot blocks, made before the
 * settings are loaded): usable, and freed after init at check level 1
 * (PM_CHECK=1) without a false canary report. pm_mallopt, pm_init and
 * pm_config_dump still say EBUSY: the settings are loading. */
static int reentered, reenter_bad;
static void *reenter_blocks[5];

static void reenter_expect(int ok, const char *what)
{
    if (!ok) {
        reenter_bad++;
        dprintf(2, "pmt: called from inside init: %s\n", what);
    }
}

static void reenter(void)
{
    reentered++;
    void **b = reenter_blocks;
    reenter_expect((b[0] = pm_malloc(24)) != NULL, "pm_malloc");
    reenter_expect((b[1] = pm_calloc(2, 24)) != NULL, "pm_calloc");
    if (b[1])
        reenter_expect(((char *)b[1])[47] == 0 && ((char *)b[1])[0] == 0, "pm_calloc zero");
    reenter_expect((b[2] = pm_memalign(64, 100)) != NULL && ((uintptr_t)b[2] & 63) == 0,
                   "pm_memalign");
    reenter_expect((b[3] = pm_realloc(NULL, 10)) != NULL, "pm_realloc(NULL)");
    if (b[3]) {
        memcpy(b[3], "abcdefghi", 10);
        b[3] = pm_realloc(b[3], 5000);
        reenter_expect(b[3] && memcmp(b[3], "abcdefghi", 10) == 0, "pm_realloc grow");
    }
    reenter_expect((b[4] = pm_malloc(100000)) != NULL, "pm_malloc big");
    for (int i = 0; i < 5; i++)
        if (b[i])
            reenter_expect(pm_malloc_usable_size(b[i]) >= 24, "usable size");
    errno = 0;
    reenter_expect(pm_mallopt(PM_TRIM_THRESHOLD, 1 << 20) == 0 && errno == EBUSY,
                   "pm_mallopt");
    errno = 0;
    reenter_expect(pm_init() == -1 && errno == EBUSY, "pm_init");
    errno = 0;
    reenter_expect(pm_config_dump(-1, PM_DUMP_TEXT) == -1 && errno == EBUSY, "pm_config_dump");
}

static int reentered_calls_fail(const char *path)
{
    setenv("PM_CHECK", "1", 1);
    snprintf(reenter_path, sizeof reenter_path, "%s", path);
    alarm(10); /* it spun here */
    void *p = pm_malloc(40);
    reenter_path[0] = 0;
    PMT_REQUIRE(reentered == 1, "init did not open %s (%d)", path, reentered);
    PMT_REQUIRE(reenter_bad == 0, "%d calls from inside init went wrong", reenter_bad);
    PMT_REQUIRE(p != NULL, "malloc after init");
    memset(p, 1, 40);
    pm_free(p);
    /* The blocks served inside init: written whole, grown, freed at level 1. */
    for (int i = 0; i < 5; i++) {
        size_t u = pm_malloc_usable_size(reenter_blocks[i]);
        memset(reenter_blocks[i], 0x5a, u);
        if (i == 0)
            reenter_blocks[i] = pm_realloc(reenter_blocks[i], 300000);
        PMT_REQUIRE(reenter_blocks[i] != NULL, "realloc of a boot block");
        pm_free(reenter_blocks[i]);
    }
    PMT_REQUIRE(pm_mallopt(PM_TRIM_THRESHOLD, 1 << 20) == 1, "pm_mallopt after init");
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static int child_reenter_from_cpu_list(void)
{
    unsetenv("PM_CONFIG");
    return reentered_calls_fail("/sys/devices/system/cpu/online");
}

static int child_reenter_from_config(void)
{
    char ini[64];
    snprintf(ini, sizeof ini, "/tmp/pmt-empty-%d.ini", (int)getpid());
    int fd = (int)syscall(SYS_openat, AT_FDCWD, ini, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    PMT_REQUIRE(fd >= 0, "create %s", ini);
    close(fd);
    setenv("PM_CONFIG", ini, 1);
    int rc = reentered_calls_fail(ini);
    unlink(ini);
    return rc;
}

/* ---- a fork handler the program installed before pmalloc's first use --- */

/* Prepare handlers run in the reverse order of installing: pmalloc's,
 * installed at its first use, ran after this one with every lock taken,
 * and this one's pm_* calls then waited on their own thread for good. */
static int prep_ok;

static void prep_allocates(void)
{
    void *p = pm_malloc(200000);
    prep_ok = p != NULL && pm_mallopt(PM_TRIM_THRESHOLD, 1 << 20) == 1;
    pm_free(p);
}

static int child_atfork_before_first_use(void)
{
    PMT_REQUIRE(pthread_atfork(prep_allocates, NULL, NULL) == 0, "pthread_atfork");
    pm_free(pm_malloc(100)); /* pmalloc's first use */
    alarm(10);               /* fork hung here */
    pid_t pid = fork();
    if (pid == 0)
        child_allocates();
    PMT_REQUIRE(prep_ok, "the prepare handler's calls failed");
    return wait_ok(pid, "forked with a handler installed before pmalloc's first use");
}

/* ---- a child without the fork handlers ---------------------------------- */

static void *short_thread(void *arg)
{
    (void)arg;
    pm_free(pm_malloc(64)); /* a cache, freed by the thread's exit */
    return NULL;
}

/* _Fork runs no atfork handler: the surviving thread's cache keeps the
 * parent's thread id, which the child does not have. The orphan scan (after
 * 64 new caches) took that live cache for an orphan and freed it. */
static int child_raw_fork_keeps_live_cache(void)
{
#if PMT_HAVE_FORK_
    pm_free(pm_malloc(100)); /* this thread's cache */
    pid_t pid = _Fork();
    if (pid == 0) {
        alarm(30);
        void *blk[64];
        for (int i = 0; i < 200; i++) {
            pthread_t t;
            if (pthread_create(&t, NULL, short_thread, NULL) != 0)
                _exit(2);
            pthread_join(t, NULL);
            for (int j = 0; j < 64; j++)
                if (!(blk[j] = pm_malloc(48 + (size_t)(j % 8) * 16)))
                    _exit(3);
            for (int j = 0; j < 64; j++)
                memset(blk[j], 0x11, 48);
            for (int j = 0; j < 64; j++)
                pm_free(blk[j]);
        }
        _exit(pm_check_heap() == 0 ? 0 : 1);
    }
    return wait_ok(pid, "made by _Fork");
#else
    return 1;
#endif
}

/* ---- the tests ---------------------------------------------------------- */

static void run_case(const char *name, bool tsan_ok)
{
    /* Why some cases not under TSan: its own pthread_once does not run the
     * routine again in a forked child, as glibc's does, and it keeps its
     * own state across fork through handlers _Fork skips. */
    if (PMT_TSAN && !tsan_ok)
        skip();
    pmt_run_case_ok(name, NULL, 60);
}

static void test_init_cancelled(void **state)
{
    (void)state;
    run_case("init_cancelled", true);
}

static void test_fork_in_init(void **state)
{
    (void)state;
    run_case("fork_in_init", false);
}

static void test_fork_holding_options_lock(void **state)
{
    (void)state;
    if (access("/sys/devices/system/cpu/online", R_OK) != 0)
        skip(); /* init reads no CPU list here */
    run_case("fork_holding_options_lock", false);
}

static void test_child_thread_runs_init(void **state)
{
    (void)state;
    run_case("child_thread_runs_init", false);
}

static void test_reentered_calls_fail(void **state)
{
    (void)state;
    if (access("/sys/devices/system/cpu/online", R_OK) == 0)
        run_case("reenter_from_cpu_list", true);
    run_case("reenter_from_config", true);
}

static void test_atfork_before_first_use(void **state)
{
    (void)state;
    run_case("atfork_before_first_use", true);
}

static void test_raw_fork_keeps_live_cache(void **state)
{
    (void)state;
    if (!PMT_HAVE_FORK_)
        skip();
    run_case("raw_fork_keeps_live_cache", false);
}

static const pmt_case_t cases[] = {
    { "init_cancelled", child_init_cancelled },
    { "fork_in_init", child_fork_in_init },
    { "fork_holding_options_lock", child_fork_holding_options_lock },
    { "child_thread_runs_init", child_child_thread_runs_init },
    { "raw_fork_keeps_live_cache", child_raw_fork_keeps_live_cache },
    { "atfork_before_first_use", child_atfork_before_first_use },
    { "reenter_from_cpu_list", child_reenter_from_cpu_list },
    { "reenter_from_config", child_reenter_from_config },
};

int main(int argc, char **argv)
{
    pmt_child_dispatch(argc, argv, cases, PMT_ARRAY_LEN(cases));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_cancelled),
        cmocka_unit_test(test_fork_in_init),
        cmocka_unit_test(test_fork_holding_options_lock),
        cmocka_unit_test(test_child_thread_runs_init),
        cmocka_unit_test(test_raw_fork_keeps_live_cache),
        cmocka_unit_test(test_atfork_before_first_use),
        cmocka_unit_test(test_reentered_calls_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
