/* SPDX-License-Identifier: MIT */
/*
 * test_return.c - memory goes back to the OS where users see it, in RSS
 * (/proc/self/statm), and memory about to be reused is not handed back.
 *
 * Each case runs in a fresh child process with its own settings. The
 * scenarios: a program that frees and goes idle (small blocks in random and
 * reverse order, mixed sizes, big blocks, an exited thread, a forked child
 * freeing its parent's blocks), one that goes on working with cache hits
 * only, decay_ms = 0 (glibc's trimming, by the last free), a 1 GiB
 * trim_threshold that keeps it all, pm_malloc_trim on a fragmented heap
 * against glibc's malloc_trim on the same pattern, rounds under an
 * address-space limit, and reuse within a period that must not fault.
 * The waits are generous (a loaded 2-core CI machine); a case prints how
 * long memory took to go back.
 */
#include "../common.h"

#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <pmalloc.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cmocka.h>

/* How long an idle program may wait for its memory (the bar is 500 ms on
 * a quiet machine; CI machines are not quiet). */
#define RT_WAIT_MS 3000
#define RT_TOTAL   (16 * PMT_MIB)
#define RT_MAX     40000

static void *rt_block[RT_MAX];
static size_t rt_n;

static uint64_t rt_seed = 0x5eed;

/* Fill RT_TOTAL (or total) with blocks of the kind named in PMT_SIZES
 * (small: 2000 B; mixed: 16 B-256 KiB; big: 64 KiB-1 MiB), each written. */
static void rt_fill(size_t total)
{
    const char *kind = getenv("PMT_SIZES");
    size_t sum = 0;
    rt_n = 0;
    while (sum < total && rt_n < RT_MAX) {
        size_t s;
        if (!kind || !strcmp(kind, "small"))
            s = 2000;
        else if (!strcmp(kind, "big"))
            s = 64 * PMT_KIB + pmt_rand(&rt_seed) % (960 * PMT_KIB);
        else
            s = 16 + pmt_rand(&rt_seed) % (256 * PMT_KIB);
        void *p = pm_malloc(s);
        if (!p)
            break;
        memset(p, 0x5a, s);
        rt_block[rt_n++] = p;
        sum += s;
    }
}

/* Free every block in the order PMT_ORDER names: fwd, rev or rnd. */
static void rt_free_all(void)
{
    const char *order = getenv("PMT_ORDER");
    if (order && !strcmp(order, "rnd")) {
        for (size_t i = rt_n - 1; i > 0; i--) {
            size_t j = pmt_rand(&rt_seed) % (i + 1);
            void *t = rt_block[i];
            rt_block[i] = rt_block[j];
            rt_block[j] = t;
        }
    }
    if (order && !strcmp(order, "rev"))
        for (size_t i = rt_n; i-- > 0;)
            pm_free(rt_block[i]);
    else
        for (size_t i = 0; i < rt_n; i++)
            pm_free(rt_block[i]);
}

/* RSS falls by at least 3/4 of what was filled, waiting (no pmalloc call)
 * up to RT_WAIT_MS; mallinfo's arena follows the pages. */
static int rt_require_back(size_t before, size_t arena_full, const char *what)
{
    size_t want = before - RT_TOTAL * 3 / 4, after = pmt_rss_bytes(), arena = arena_full;
    double t0 = pmt_now();
    /* pm_mallinfo gives nothing back itself: it only reads the arenas. */
    while ((after > want || arena >= arena_full / 4) && pmt_now() - t0 < RT_WAIT_MS / 1e3) {
        usleep(5000);
        after = pmt_rss_bytes();
        arena = pm_mallinfo().arena;
    }
    fprintf(stderr, "pmt: %s: RSS %zu -> %zu KiB in %.0f ms\n", what, before >> 10, after >> 10,
            (pmt_now() - t0) * 1e3);
    PMT_REQUIRE(after <= want, "%s: RSS %zu -> %zu KiB, not back within %d ms", what,
                before >> 10, after >> 10, RT_WAIT_MS);
    PMT_REQUIRE(arena < arena_full / 4, "%s: mallinfo arena %zu of %zu at the peak", what,
                arena, arena_full);
    return 0;
}

/* Idle: fill, free, then wait without calling pmalloc. */
static int child_idle(void)
{
    rt_fill(RT_TOTAL);
    size_t before = pmt_rss_bytes(), arena = pm_mallinfo().arena;
    rt_free_all();
    if (rt_require_back(before, arena, "idle"))
        return 1;
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* Busy with thread-cache hits only: the purger still gives it back. */
static int child_busy(void)
{
    rt_fill(RT_TOTAL);
    size_t before = pmt_rss_bytes(), arena = pm_mallinfo().arena;
    rt_free_all();
    size_t want = before - RT_TOTAL * 3 / 4, rss = pmt_rss_bytes(), now_arena = arena;
    double t0 = pmt_now();
    while ((rss > want || now_arena >= arena / 4) && pmt_now() - t0 < RT_WAIT_MS / 1e3) {
        void *q[64];
        for (int i = 0; i < 64; i++)
            q[i] = pm_malloc(100);
        for (int i = 0; i < 64; i++)
            pm_free(q[i]);
        usleep(5000);
        rss = pmt_rss_bytes();
        now_arena = pm_mallinfo().arena;
    }
    fprintf(stderr, "pmt: busy: RSS %zu -> %zu KiB in %.0f ms\n", before >> 10, rss >> 10,
            (pmt_now() - t0) * 1e3);
    PMT_REQUIRE(rss <= want, "busy: RSS %zu -> %zu KiB", before >> 10, rss >> 10);
    PMT_REQUIRE(now_arena < arena / 4, "busy: arena %zu of %zu", now_arena, arena);
    return 0;
}

/* decay_ms = 0: the RSS has fallen when the last free returns. */
static int child_at_last_free(void)
{
    rt_fill(RT_TOTAL);
    size_t before = pmt_rss_bytes();
    rt_free_all();
    size_t after = pmt_rss_bytes();
    fprintf(stderr, "pmt: decay 0: RSS %zu -> %zu KiB at the last free\n", before >> 10,
            after >> 10);
    PMT_REQUIRE(after + RT_TOTAL * 3 / 4 <= before, "decay 0: RSS %zu -> %zu KiB",
                before >> 10, after >> 10);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* trim_threshold = 1G: nothing goes back, however long the wait. */
static int child_threshold_keeps(void)
{
    rt_fill(RT_TOTAL);
    size_t before = pmt_rss_bytes();
    rt_free_all();
    usleep(300 * 1000); /* 30 decay periods */
    size_t after = pmt_rss_bytes();
    PMT_REQUIRE(after + RT_TOTAL / 8 >= before, "1G threshold: RSS %zu -> %zu KiB",
                before >> 10, after >> 10);
    return 0;
}

/* A thread fills, main reads the RSS, the thread frees and exits; main
 * waits without a call. */
static pthread_barrier_t rt_bar;

static void *rt_thread(void *arg)
{
    (void)arg;
    rt_fill(RT_TOTAL);
    pthread_barrier_wait(&rt_bar);
    pthread_barrier_wait(&rt_bar);
    rt_free_all();
    return NULL;
}

static int child_thread_exit(void)
{
    pthread_t t;
    pthread_barrier_init(&rt_bar, NULL, 2);
    PMT_REQUIRE(pthread_create(&t, NULL, rt_thread, NULL) == 0, "pthread_create");
    pthread_barrier_wait(&rt_bar);
    size_t full = pmt_rss_bytes();
    pthread_barrier_wait(&rt_bar);
    pthread_join(t, NULL);
    size_t want = full - RT_TOTAL * 3 / 4, rss = pmt_rss_wait_below(want, RT_WAIT_MS);
    PMT_REQUIRE(rss <= want, "thread exit: RSS %zu -> %zu KiB", full >> 10, rss >> 10);
    return 0;
}

/* A forked child frees what its parent allocated: its copies go back. */
static int child_fork_frees(void)
{
    rt_fill(RT_TOTAL);
    pid_t pid = fork();
    PMT_REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        size_t before = pmt_rss_bytes();
        /* Why write first: the child's RSS holds only the pages it touched. */
        for (size_t i = 0; i < rt_n; i++)
            memset(rt_block[i], 0x6b, 64);
        before = pmt_rss_bytes() > before ? pmt_rss_bytes() : before;
        rt_free_all();
        size_t after = pmt_rss_wait_below(before - RT_TOTAL / 2, RT_WAIT_MS);
        if (after > before - RT_TOTAL / 2) {
            fprintf(stderr, "pmt: forked child: RSS %zu -> %zu KiB\n", before >> 10,
                    after >> 10);
            _exit(1);
        }
        _exit(pm_check_heap() == 0 ? 0 : 2);
    }
    int st = 0;
    PMT_REQUIRE(waitpid(pid, &st, 0) == pid, "waitpid");
    PMT_REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "forked child status %d", st);
    rt_free_all();
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* Fragmented: PMT_FRAG_MIB of 16 B-100 KB blocks, every 64th kept, the rest
 * freed, one trim. With PMT_LIBC=1 the same through malloc/malloc_trim.
 * Prints the RSS after the trim on stdout for the parent to compare. */
static int child_fragmented(void)
{
    bool libc = getenv("PMT_LIBC") != NULL;
    size_t total = (size_t)atoi(getenv("PMT_FRAG_MIB")) * PMT_MIB, sum = 0, n = 0;
    size_t cap = total / 8000 + 64;
    void **p = libc ? malloc(cap * sizeof *p) : pm_malloc(cap * sizeof *p);
    PMT_REQUIRE(p != NULL, "array");
    while (sum < total && n < cap) {
        size_t s = 16 + pmt_rand(&rt_seed) % 100000;
        p[n] = libc ? malloc(s) : pm_malloc(s);
        PMT_REQUIRE(p[n] != NULL, "malloc");
        memset(p[n], 0x33, s);
        sum += s;
        n++;
    }
    for (size_t i = 0; i < n; i++)
        if (i % 64)
            libc ? free(p[i]) : pm_free(p[i]);
    if (libc)
        malloc_trim(0);
    else
        pm_malloc_trim(0);
    printf("%zu\n", pmt_rss_bytes() >> 10);
    fflush(stdout);
    return 0;
}

/* The RSS (KiB) a fragmented child reports, libc or pmalloc. */
static size_t rt_fragmented_rss(bool libc)
{
    char cmd[4096], self[2048];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    snprintf(cmd, sizeof cmd, "PMT_FRAG_MIB=256 %s '%s' " PMT_CHILD_FLAG " fragmented",
             libc ? "PMT_LIBC=1" : "", self);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t kib = 0;
    int got = fscanf(f, "%zu", &kib);
    assert_int_equal(pclose(f), 0);
    assert_int_equal(got, 1);
    return kib;
}

/* Under an address-space limit: fill until malloc fails, free, trim; every
 * round reaches what the first did. */
static int child_rounds(void)
{
    struct rlimit rl = { .rlim_cur = 400 * PMT_MIB, .rlim_max = 400 * PMT_MIB };
    PMT_REQUIRE(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit");
    size_t bs = (size_t)atoi(getenv("PMT_BLOCK")), first = 0;
    static void *b[1 << 16];
    for (int r = 0; r < 3; r++) {
        size_t n = 0;
        while (n < PMT_ARRAY_LEN(b) && (b[n] = pm_malloc(bs)) != NULL)
            memset(b[n++], 1, 64);
        for (size_t i = 0; i < n; i++)
            pm_free(b[i]);
        pm_malloc_trim(0);
        fprintf(stderr, "pmt: round %d: %zu MiB of %zu-byte blocks\n", r, n * bs >> 20, bs);
        if (r == 0)
            first = n;
        PMT_REQUIRE(n * 20 >= first * 19, "round %d: %zu blocks, the first %zu", r, n, first);
    }
    return 0;
}

/* Reuse within a period: blocks freed and taken again at once are not
 * handed back and faulted in again (minor faults stay a fraction of the
 * pages touched). */
static int child_reuse_no_refault(void)
{
    enum { ROUNDS = 40 };
    size_t bs = (size_t)atoi(getenv("PMT_BLOCK")), nb = (size_t)atoi(getenv("PMT_COUNT"));
    static void *b[64];
    struct rusage r0, r1;
    for (size_t i = 0; i < nb; i++)
        memset(b[i] = pm_malloc(bs), 1, bs);
    getrusage(RUSAGE_SELF, &r0);
    for (int r = 0; r < ROUNDS; r++) {
        for (size_t i = 0; i < nb; i++)
            pm_free(b[i]);
        for (size_t i = 0; i < nb; i++) {
            b[i] = pm_malloc(bs);
            PMT_REQUIRE(b[i] != NULL, "malloc");
            memset(b[i], r, bs);
        }
    }
    getrusage(RUSAGE_SELF, &r1);
    long faults = r1.ru_minflt - r0.ru_minflt, pages = (long)(ROUNDS * nb * bs / 4096);
    fprintf(stderr, "pmt: reuse of %zu x %zu B: %ld faults for %ld pages written\n", nb, bs,
            faults, pages);
    PMT_REQUIRE(faults * 10 < pages, "%ld faults for %ld pages", faults, pages);
    return 0;
}

/* Threads of this process (/proc/self/task), and the first one other than
 * the caller in *other (0 if none). */
static int rt_tasks(long *other)
{
    int n = 0;
    *other = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        n++;
        long tid = atol(e->d_name);
        if (tid != (long)gettid() && !*other)
            *other = tid;
    }
    closedir(d);
    return n;
}

/* Voluntary context switches of thread tid so far (its wake-ups). */
static long rt_wakeups(long tid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *v = strstr(buf, "voluntary_ctxt_switches:");
    return v ? atol(v + strlen("voluntary_ctxt_switches:")) : -1;
}

/* The purger: no thread before there is memory to give back, one after;
 * asleep, not woken, once all went back; none with PM_BACKGROUND_THREAD=0
 * (memory still goes back on the calls). */
static int child_purger_lifecycle(void)
{
    bool off = getenv("PMT_OFF") != NULL;
    long other;
    void *keep = pm_malloc(100);
    PMT_REQUIRE(rt_tasks(&other) == 1, "a thread before any free");
    rt_fill(RT_TOTAL);
    size_t before = pmt_rss_bytes();
    rt_free_all();
    if (off) {
        usleep(200 * 1000);
        PMT_REQUIRE(rt_tasks(&other) == 1, "a thread with background_thread 0");
        pm_free(pm_malloc(40000)); /* a call that enters the arena sweeps it */
        usleep(50 * 1000);
        pm_free(pm_malloc(40000));
        size_t after = pmt_rss_wait_below(before - RT_TOTAL / 2, 100);
        for (int i = 0; i < 60 && after > before - RT_TOTAL / 2; i++) {
            pm_free(pm_malloc(40000));
            usleep(50 * 1000);
            after = pmt_rss_bytes();
        }
        PMT_REQUIRE(after <= before - RT_TOTAL / 2, "no purger: RSS %zu -> %zu KiB",
                    before >> 10, after >> 10);
        pm_free(keep);
        return 0;
    }
    size_t after = pmt_rss_wait_below(before - RT_TOTAL * 3 / 4, RT_WAIT_MS);
    PMT_REQUIRE(after <= before - RT_TOTAL * 3 / 4, "RSS %zu -> %zu KiB", before >> 10,
                after >> 10);
    PMT_REQUIRE(rt_tasks(&other) == 2 && other, "no purger thread");
    usleep(100 * 1000); /* the last sweeps */
    long w0 = rt_wakeups(other);
    usleep(300 * 1000);
    long w1 = rt_wakeups(other);
    fprintf(stderr, "pmt: purger %ld woke %ld times in 300 ms idle\n", other, w1 - w0);
    PMT_REQUIRE(w0 >= 0 && w1 - w0 <= 2, "the purger woke %ld times while idle", w1 - w0);
    /* A forked child has none until it has memory to give back. */
    pid_t pid = fork();
    PMT_REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        if (rt_tasks(&other) != 1)
            _exit(3);
        rt_fill(RT_TOTAL);
        size_t full = pmt_rss_bytes();
        rt_free_all();
        size_t rss = pmt_rss_wait_below(full - RT_TOTAL * 3 / 4, RT_WAIT_MS);
        _exit(rss <= full - RT_TOTAL * 3 / 4 && rt_tasks(&other) == 2 ? 0 : 4);
    }
    int st = 0;
    PMT_REQUIRE(waitpid(pid, &st, 0) == pid, "waitpid");
    PMT_REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "forked child status %d", st);
    pm_free(keep);
    return 0;
}

/* main() calls pthread_exit after its worker freed memory: the process
 * must end with the worker, not live on with the purger alone. */
static void *rt_worker(void *arg)
{
    (void)arg;
    rt_fill(RT_TOTAL);
    rt_free_all();
    return NULL;
}

static int child_main_thread_exits(void)
{
    pid_t pid = fork();
    PMT_REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, rt_worker, NULL) != 0)
            _exit(3);
        pthread_exit(NULL); /* the process ends when its last thread does */
    }
    int st = 0;
    double t0 = pmt_now();
    pid_t got = 0;
    while ((got = waitpid(pid, &st, WNOHANG)) == 0 && pmt_now() - t0 < 20)
        usleep(10000);
    if (got == 0)
        kill(pid, SIGKILL), waitpid(pid, &st, 0);
    PMT_REQUIRE(got == pid, "the process lived on %.0f s after its threads ended",
                pmt_now() - t0);
    fprintf(stderr, "pmt: it ended %.0f ms after main's pthread_exit\n",
            (pmt_now() - t0) * 1e3);
    PMT_REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    return 0;
}

static const pmt_case_t cases[] = {
    { "main_thread_exits", child_main_thread_exits },
    { "purger_lifecycle", child_purger_lifecycle },
    { "idle", child_idle },
    { "busy", child_busy },
    { "at_last_free", child_at_last_free },
    { "threshold_keeps", child_threshold_keeps },
    { "thread_exit", child_thread_exit },
    { "fork_frees", child_fork_frees },
    { "fragmented", child_fragmented },
    { "rounds", child_rounds },
    { "reuse_no_refault", child_reuse_no_refault },
};

static void test_idle_small_blocks(void **state)
{
    (void)state;
    const char *rnd[] = { "PMT_SIZES=small", "PMT_ORDER=rnd", NULL };
    const char *rev[] = { "PMT_SIZES=small", "PMT_ORDER=rev", NULL };
    const char *th[] = { "PMT_SIZES=small", "PMT_ORDER=rnd", "PM_TRIM_THRESHOLD=128K", NULL };
    pmt_run_case_ok("idle", rnd, 30);
    pmt_run_case_ok("idle", rev, 30);
    pmt_run_case_ok("idle", th, 30);
}

static void test_idle_mixed_and_big(void **state)
{
    (void)state;
    const char *mixed[] = { "PMT_SIZES=mixed", "PMT_ORDER=rnd", NULL };
    const char *big[] = { "PMT_SIZES=big", "PMT_ORDER=rnd", NULL };
    pmt_run_case_ok("idle", mixed, 30);
    pmt_run_case_ok("idle", big, 30);
}

static void test_busy_cache_hits(void **state)
{
    (void)state;
    const char *env[] = { "PMT_SIZES=small", "PMT_ORDER=fwd", "PM_BACKGROUND_THREAD=1", NULL };
    pmt_run_case_ok("busy", env, 30);
}

static void test_decay_zero_by_last_free(void **state)
{
    (void)state;
    const char *rev[] = { "PM_DECAY_MS=0", "PM_TRIM_THRESHOLD=128K", "PMT_SIZES=small",
                          "PMT_ORDER=rev", NULL };
    const char *rnd[] = { "PM_DECAY_MS=0", "PMT_SIZES=small", "PMT_ORDER=rnd", NULL };
    const char *mixed[] = { "PM_DECAY_MS=0", "PMT_SIZES=mixed", "PMT_ORDER=rev", NULL };
    pmt_run_case_ok("at_last_free", rev, 30);
    pmt_run_case_ok("at_last_free", rnd, 30);
    pmt_run_case_ok("at_last_free", mixed, 30);
}

static void test_threshold_1g_keeps(void **state)
{
    (void)state;
    const char *env[] = { "PM_TRIM_THRESHOLD=1G", "PMT_SIZES=small", "PMT_ORDER=rnd", NULL };
    pmt_run_case_ok("threshold_keeps", env, 30);
}

static void test_exited_thread(void **state)
{
    (void)state;
    const char *small[] = { "PMT_SIZES=small", "PMT_ORDER=rnd", NULL };
    const char *mixed[] = { "PMT_SIZES=mixed", "PMT_ORDER=rnd", NULL };
    pmt_run_case_ok("thread_exit", small, 30);
    pmt_run_case_ok("thread_exit", mixed, 30);
}

static void test_forked_child_frees(void **state)
{
    (void)state;
    if (PMT_TSAN)
        skip(); /* no purger in a TSan fork child (it cannot start threads) */
    const char *env[] = { "PMT_SIZES=small", "PMT_ORDER=rnd", NULL };
    pmt_run_case_ok("fork_frees", env, 30);
}

static void test_purger_lifecycle(void **state)
{
    (void)state;
    if (PMT_TSAN)
        skip(); /* its runtime has threads of its own, and none after fork */
    const char *on[] = { "PMT_SIZES=small", "PMT_ORDER=rnd", NULL };
    const char *off[] = { "PMT_SIZES=small", "PMT_ORDER=rnd", "PM_BACKGROUND_THREAD=0",
                          "PMT_OFF=1", NULL };
    pmt_run_case_ok("purger_lifecycle", on, 60);
    pmt_run_case_ok("purger_lifecycle", off, 60);
}

static void test_purger_never_outlives_the_program(void **state)
{
    (void)state;
    if (PMT_TSAN)
        skip(); /* its runtime's own thread keeps such a process alive */
    const char *env[] = { "PMT_SIZES=small", "PMT_ORDER=rnd", NULL };
    pmt_run_case_ok("main_thread_exits", env, 60);
}

static void test_trim_fragmented_vs_glibc(void **state)
{
    (void)state;
    if (PMT_SANITIZER)
        skip(); /* the sanitizer runtime serves libc's malloc there */
    size_t pm = rt_fragmented_rss(false), libc = rt_fragmented_rss(true);
    print_message("pmalloc %zu KiB, glibc %zu KiB after one trim\n", pm, libc);
    /* Why 4 MiB more: the process's own pages, which the two share. */
    assert_true(pm <= 2 * libc + 4 * 1024);
}

static void test_rounds_under_address_limit(void **state)
{
    (void)state;
    if (PMT_SANITIZER)
        skip(); /* the sanitizers' shadow memory does not fit under the cap */
    const char *small[] = { "PMT_BLOCK=2000", NULL };
    const char *large[] = { "PMT_BLOCK=100000", NULL };
    pmt_run_case_ok("rounds", small, 60);
    pmt_run_case_ok("rounds", large, 60);
}

static void test_reuse_does_not_refault(void **state)
{
    (void)state;
    if (PMT_SANITIZER)
        skip(); /* their runtimes fault in shadow pages of their own */
    /* Big blocks in the large companions, and 20 MiB ones that empty a
     * heap each round (the spare heap keeps its pages). */
    const char *big[] = { "PMT_BLOCK=1048576", "PMT_COUNT=16", NULL };
    const char *heap[] = { "PMT_BLOCK=20971520", "PMT_COUNT=1", NULL };
    pmt_run_case_ok("reuse_no_refault", big, 60);
    pmt_run_case_ok("reuse_no_refault", heap, 60);
}

int main(int argc, char **argv)
{
    pmt_child_dispatch(argc, argv, cases, PMT_ARRAY_LEN(cases));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_small_blocks),
        cmocka_unit_test(test_idle_mixed_and_big),
        cmocka_unit_test(test_busy_cache_hits),
        cmocka_unit_test(test_decay_zero_by_last_free),
        cmocka_unit_test(test_threshold_1g_keeps),
        cmocka_unit_test(test_exited_thread),
        cmocka_unit_test(test_forked_child_frees),
        cmocka_unit_test(test_purger_lifecycle),
        cmocka_unit_test(test_purger_never_outlives_the_program),
        cmocka_unit_test(test_trim_fragmented_vs_glibc),
        cmocka_unit_test(test_rounds_under_address_limit),
        cmocka_unit_test(test_reuse_does_not_refault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
