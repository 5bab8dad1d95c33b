/* SPDX-License-Identifier: MIT */
/*
 * test_tunables.c - each PM_* environment setting, proven by behaviour (issue
 * 2). Every case runs in a re-executed child whose environment carries the
 * setting before its first pm_* call; the child checks what the allocator
 * does (arena count, direct mappings, RSS, cache use, fill bytes) and the
 * parent checks the exit status and, for bad values, the warning on stderr.
 */
#define _GNU_SOURCE
#include "../common.h"

#include <pthread.h>

/* ---- helpers run inside the children ------------------------------------ */

/* Does an allocation of n bytes get its own mapping? 1 yes, 0 no, -1 error. */
static int is_mmapped(size_t n)
{
    struct pm_mallinfo a = pm_mallinfo();
    void *p = pm_malloc(n);
    if (p == NULL)
        return -1;
    memset(p, 0x11, n);
    struct pm_mallinfo b = pm_mallinfo();
    int r;
    if (b.hblks == a.hblks + 1 && b.hblkhd >= a.hblkhd + n)
        r = 1;
    else if (b.hblks == a.hblks && b.hblkhd == a.hblkhd)
        r = 0;
    else
        r = -1;
    pm_free(p);
    if (pm_check_heap() != 0)
        return -1;
    return r;
}

#define REQUIRE_MMAPPED(n, want)                                                     \
    do {                                                                             \
        int got_ = is_mmapped(n);                                                    \
        PMT_REQUIRE(got_ == (want), "%zu B: mmapped=%d, expected %d", (size_t)(n), \
                    got_, (want));                                                   \
    } while (0)

#define MAX_THREADS 16
static pthread_barrier_t arena_barrier;

static void *arena_thread(void *arg)
{
    void *p = pm_malloc(64 + (size_t)(uintptr_t)arg);
    if (p != NULL)
        memset(p, 0x22, 64);
    /* All threads alive with one allocation each before anyone leaves. */
    pthread_barrier_wait(&arena_barrier);
    pthread_barrier_wait(&arena_barrier);
    pm_free(p);
    return p;
}

/* Narenas after nthreads threads each allocated while all were alive. */
static size_t arenas_with_threads(int nthreads)
{
    pthread_t t[MAX_THREADS];
    void *mine = pm_malloc(32);
    pthread_barrier_init(&arena_barrier, NULL, (unsigned)nthreads + 1);
    for (long i = 0; i < nthreads; i++)
        pthread_create(&t[i], NULL, arena_thread, (void *)i);
    pthread_barrier_wait(&arena_barrier);
    size_t n = pm_mallinfo().narenas;
    pthread_barrier_wait(&arena_barrier);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&arena_barrier);
    pm_free(mine);
    return n;
}

static size_t default_arena_cap(void)
{
    return 8 * (size_t)pmt_nprocs();
}

/* ---- arena_max --------------------------------------------------------- */

static int child_arena_max_1(void)
{
    size_t n = arenas_with_threads(8);
    PMT_REQUIRE(n == 1, "narenas %zu with PM_ARENA_MAX=1 and 8 threads", n);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static int child_arena_max_4(void)
{
    size_t n = arenas_with_threads(8);
    PMT_REQUIRE(n > 1 && n <= 4, "narenas %zu with PM_ARENA_MAX=4 and 8 threads", n);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static int child_arena_default(void)
{
    size_t n = arenas_with_threads(8);
    /* 9 threads allocated (main + 8); the cap is 8 x CPUs >= 8. */
    PMT_REQUIRE(n >= 8 && n <= default_arena_cap(), "narenas %zu (cap %zu)", n,
                default_arena_cap());
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* pm_mallopt beats the environment: PM_ARENA_MAX=1 raised to 3. */
static int child_arena_mallopt_overrides(void)
{
    PMT_REQUIRE(pm_mallopt(PM_ARENA_MAX, 3) == 1, "pm_mallopt(PM_ARENA_MAX, 3)");
    size_t n = arenas_with_threads(8);
    PMT_REQUIRE(n > 1 && n <= 3, "narenas %zu after pm_mallopt(PM_ARENA_MAX, 3)", n);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_arena_max(void **state)
{
    (void)state;
    const char *one[] = { "PM_ARENA_MAX=1", NULL };
    const char *four[] = { "PM_ARENA_MAX=4", NULL };
    pmt_run_case_ok("arena_max_1", one, 30);
    pmt_run_case_ok("arena_max_4", four, 30);
    pmt_run_case_ok("arena_default", NULL, 30);
    pmt_run_case_ok("arena_mallopt_overrides", one, 30);
}

/* ---- mmap_threshold ------------------------------------------------------ */

static int child_mmap_default(void)
{
    /* 32 MiB: glibc's highest dynamic threshold, fixed. */
    REQUIRE_MMAPPED(33 * PMT_MIB, 1);
    REQUIRE_MMAPPED(32 * PMT_MIB, 1);
    REQUIRE_MMAPPED(32 * PMT_MIB - 1, 0);
    REQUIRE_MMAPPED(8 * PMT_MIB, 0);
    REQUIRE_MMAPPED(200 * 1024, 0);
    return 0;
}

static int child_mmap_1m(void)
{
    REQUIRE_MMAPPED(200 * 1024, 0);
    REQUIRE_MMAPPED(900 * 1024, 0);
    REQUIRE_MMAPPED(1024 * 1024, 1);
    REQUIRE_MMAPPED(2 * 1024 * 1024, 1);
    return 0;
}

static int child_mmap_32k(void)
{
    REQUIRE_MMAPPED(64 * 1024, 1);
    REQUIRE_MMAPPED(32 * 1024, 1);
    REQUIRE_MMAPPED(16 * 1024, 0);
    return 0;
}

static int child_mmap_2m(void)
{
    REQUIRE_MMAPPED(1536 * 1024, 0);
    REQUIRE_MMAPPED(2 * 1024 * 1024, 1);
    return 0;
}

/* pm_mallopt beats the environment: 1 MiB from PM_*, 64 KiB from mallopt. */
static int child_mmap_mallopt_overrides(void)
{
    REQUIRE_MMAPPED(100 * 1024, 0);
    PMT_REQUIRE(pm_mallopt(PM_MMAP_THRESHOLD, 64 * 1024) == 1, "pm_mallopt");
    REQUIRE_MMAPPED(100 * 1024, 1);
    return 0;
}

static int child_mmap_max_0(void)
{
    struct pm_mallinfo a = pm_mallinfo();
    void *p = pm_malloc(PMT_MIB);
    PMT_REQUIRE(p != NULL, "malloc 1 MiB with PM_MMAP_MAX=0");
    memset(p, 1, PMT_MIB);
    struct pm_mallinfo b = pm_mallinfo();
    PMT_REQUIRE(b.hblks == a.hblks && b.hblks == 0, "hblks %zu with PM_MMAP_MAX=0", b.hblks);
    PMT_REQUIRE(b.arena >= a.arena + PMT_MIB, "arena %zu -> %zu", a.arena, b.arena);
    pm_free(p);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_mmap_threshold(void **state)
{
    (void)state;
    const char *e1m[] = { "PM_MMAP_THRESHOLD=1M", NULL };
    const char *e32k[] = { "PM_MMAP_THRESHOLD=32K", NULL };
    const char *e32768[] = { "PM_MMAP_THRESHOLD=32768", NULL };
    const char *e2m[] = { "PM_MMAP_THRESHOLD=2M", NULL };
    pmt_run_case_ok("mmap_default", NULL, 30);
    pmt_run_case_ok("mmap_1m", e1m, 30);
    pmt_run_case_ok("mmap_32k", e32k, 30);
    pmt_run_case_ok("mmap_32k", e32768, 30);
    pmt_run_case_ok("mmap_2m", e2m, 30);
    pmt_run_case_ok("mmap_mallopt_overrides", e1m, 30);
}

static void test_mmap_max(void **state)
{
    (void)state;
    const char *env[] = { "PM_MMAP_MAX=0", NULL };
    pmt_run_case_ok("mmap_max_0", env, 30);
}

/* ---- trim_threshold ------------------------------------------------------ */

/* PMT_TRIM_MIB (default 64) MiB in blocks below the mmap threshold, touched,
 * then freed newest first so that the top of the heap grows with each free.
 * The thread cache is off (PM_TCACHE_COUNT=0 in every run) so that no block
 * stays parked. 32 MiB fits one heap; 64 MiB needs a second one. */
/* With PMT_WAIT_MS set: let that many ms pass three times, with a small
 * and a large allocation after each, so that every arena sweeps twice.
 * With PMT_WAIT_SMALL set, only small blocks (enough for the cache to
 * refill): a thread that stopped using big blocks still sees their free
 * runs decay. */
static void decay_wait(void)
{
    const char *v = getenv("PMT_WAIT_MS"), *small = getenv("PMT_WAIT_SMALL");
    for (int i = 0; v && *v && i < 3; i++) {
        usleep((useconds_t)atoi(v) * 1000);
        void *b[64];
        for (int j = 0; j < 64; j++)
            b[j] = pm_malloc(3000);
        for (int j = 0; j < 64; j++)
            pm_free(b[j]);
        if (!small)
            pm_free(pm_malloc(100000));
    }
}

static size_t trim_total(void)
{
    const char *v = getenv("PMT_TRIM_MIB");
    return (v && *v ? (size_t)atoi(v) : 64) * PMT_MIB;
}
static const size_t trim_sizes[] = { 512, 2000, 8000, 30000, 100000 };

struct trim_result {
    size_t rss_full, rss_freed, arena_full, arena_freed;
};

static int trim_run(struct trim_result *r)
{
    enum { MAXB = 8192 };
    static void *blk[MAXB];
    size_t total = 0;
    int n = 0;
    while (total < trim_total() && n < MAXB) {
        size_t s = trim_sizes[n % PMT_ARRAY_LEN(trim_sizes)];
        blk[n] = pm_malloc(s);
        PMT_REQUIRE(blk[n] != NULL, "malloc %zu", s);
        memset(blk[n], 0x44, s);
        total += s;
        n++;
    }
    PMT_REQUIRE_HEAP_OK();
    struct pm_mallinfo full = pm_mallinfo();
    PMT_REQUIRE(full.hblks == 0, "blocks below the threshold were mmapped (%zu)", full.hblks);
    r->rss_full = pmt_rss_bytes();
    r->arena_full = full.arena;
    for (int i = n - 1; i >= 0; i--)
        pm_free(blk[i]);
    PMT_REQUIRE_HEAP_OK();
    decay_wait();
    r->rss_freed = pmt_rss_bytes();
    r->arena_freed = pm_mallinfo().arena;
    fprintf(stderr, "pmt: rss %zu -> %zu, arena %zu -> %zu\n", r->rss_full, r->rss_freed,
            r->arena_full, r->arena_freed);
    return 0;
}

static int child_trim_default(void)
{
    struct trim_result r;
    if (trim_run(&r) != 0)
        return 1;
    size_t total = trim_total(), fall = total / 4 * 3;
    PMT_REQUIRE(r.arena_full + 4 * PMT_MIB >= total, "arena %zu with %zu live", r.arena_full,
                total);
    PMT_REQUIRE(r.rss_freed + fall <= r.rss_full, "RSS did not fall: %zu -> %zu", r.rss_full,
                r.rss_freed);
    PMT_REQUIRE(r.arena_freed + fall <= r.arena_full, "arena did not fall: %zu -> %zu",
                r.arena_full, r.arena_freed);
    return 0;
}

static int child_trim_1g(void)
{
    struct trim_result r;
    if (trim_run(&r) != 0)
        return 1;
    PMT_REQUIRE(r.rss_freed + 8 * PMT_MIB >= r.rss_full, "RSS fell: %zu -> %zu", r.rss_full,
                r.rss_freed);
    PMT_REQUIRE(r.arena_freed + 8 * PMT_MIB >= r.arena_full, "arena fell: %zu -> %zu",
                r.arena_full, r.arena_freed);
    return 0;
}

/* pm_mallopt beats the environment: 1 GiB from PM_*, 128 KiB by mallopt. */
static int child_trim_mallopt_overrides(void)
{
    PMT_REQUIRE(pm_mallopt(PM_TRIM_THRESHOLD, 128 * 1024) == 1, "pm_mallopt");
    return child_trim_default();
}

static void test_trim_threshold(void **state)
{
    (void)state;
    /* Default decay: the top goes once it sat unused for a sweep period. */
    const char *def32[] = { "PM_TCACHE_COUNT=0", "PMT_TRIM_MIB=32", "PMT_WAIT_MS=30", NULL };
    const char *def64[] = { "PM_TCACHE_COUNT=0", "PMT_TRIM_MIB=64", "PMT_WAIT_MS=30", NULL };
    /* decay_ms 0: at once, on the free, as glibc. */
    const char *now32[] = { "PM_TCACHE_COUNT=0", "PMT_TRIM_MIB=32", "PM_DECAY_MS=0", NULL };
    const char *big64[] = { "PM_TCACHE_COUNT=0", "PM_TRIM_THRESHOLD=1G", "PMT_WAIT_MS=30",
                            NULL };
    const char *big32[] = { "PM_TCACHE_COUNT=0", "PM_TRIM_THRESHOLD=1G", "PMT_TRIM_MIB=32",
                            "PM_DECAY_MS=0", NULL };
    pmt_run_case_ok("trim_default", def32, 60);
    pmt_run_case_ok("trim_default", now32, 60);
    pmt_run_case_ok("trim_1g", big32, 60);
    pmt_run_case_ok("trim_mallopt_overrides", big32, 60);
    pmt_run_case_ok("trim_1g", big64, 60);
    /* More than one heap's worth: the older heap must be given back too. */
    pmt_run_case_ok("trim_default", def64, 60);
}

/* ---- top_pad ------------------------------------------------------------- */

static int child_top_pad_16m(void)
{
    void *p = pm_malloc(100);
    PMT_REQUIRE(p != NULL, "malloc");
    size_t arena = pm_mallinfo().arena;
    PMT_REQUIRE(arena >= 16 * PMT_MIB, "arena %zu with PM_TOP_PAD=16M", arena);
    pm_free(p);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static int child_top_pad_default(void)
{
    void *p = pm_malloc(100);
    PMT_REQUIRE(p != NULL, "malloc");
    size_t arena = pm_mallinfo().arena;
    PMT_REQUIRE(arena > 0 && arena < 8 * PMT_MIB, "arena %zu with the default pad", arena);
    pm_free(p);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_top_pad(void **state)
{
    (void)state;
    const char *pad[] = { "PM_TOP_PAD=16M", NULL };
    pmt_run_case_ok("top_pad_default", NULL, 30);
    pmt_run_case_ok("top_pad_16m", pad, 30);
}

/* ---- thread cache -------------------------------------------------------- */

/* How many blocks does freeing one block of n bytes park in the cache? */
static long cached_after_free(size_t n)
{
    void *p = pm_malloc(n);
    if (p == NULL)
        return -1;
    struct pm_mallinfo a = pm_mallinfo();
    pm_free(p);
    struct pm_mallinfo b = pm_mallinfo();
    return (long)b.smblks - (long)a.smblks;
}

static int child_tcache_default(void)
{
    PMT_REQUIRE(cached_after_free(64) == 1, "64 B not cached by default");
    PMT_REQUIRE(cached_after_free(4000) == 1, "4000 B not cached by default");
    PMT_REQUIRE(cached_after_free(40000) == 0, "40000 B cached (limit 32 KiB)");
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static int child_tcache_off(void)
{
    PMT_REQUIRE(cached_after_free(64) == 0, "64 B cached with PM_TCACHE_COUNT=0");
    PMT_REQUIRE(cached_after_free(4000) == 0, "4000 B cached with PM_TCACHE_COUNT=0");
    PMT_REQUIRE(pm_mallinfo().smblks == 0, "smblks %zu", pm_mallinfo().smblks);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static int child_tcache_max_1k(void)
{
    PMT_REQUIRE(cached_after_free(512) == 1, "512 B not cached with PM_TCACHE_MAX=1K");
    PMT_REQUIRE(cached_after_free(4000) == 0, "4000 B cached with PM_TCACHE_MAX=1K");
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* PM_TCACHE_COUNT=2: the third block of a class is not cached. */
static int child_tcache_count_2(void)
{
    void *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = pm_malloc(80);
    PMT_REQUIRE(p[0] && p[1] && p[2], "malloc");
    /* The cache may have been refilled in bulk by the allocations; either
     * way the one class in use holds exactly two blocks after the frees. */
    size_t s0 = pm_mallinfo().smblks;
    for (int i = 0; i < 3; i++)
        pm_free(p[i]);
    size_t s1 = pm_mallinfo().smblks;
    PMT_REQUIRE(s0 <= 2 && s1 == 2, "smblks %zu -> %zu with PM_TCACHE_COUNT=2", s0, s1);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_tcache(void **state)
{
    (void)state;
    const char *off[] = { "PM_TCACHE_COUNT=0", NULL };
    const char *max1k[] = { "PM_TCACHE_MAX=1K", NULL };
    const char *two[] = { "PM_TCACHE_COUNT=2", NULL };
    pmt_run_case_ok("tcache_default", NULL, 30);
    pmt_run_case_ok("tcache_off", off, 30);
    pmt_run_case_ok("tcache_max_1k", max1k, 30);
    pmt_run_case_ok("tcache_count_2", two, 30);
}

/* ---- perturb ------------------------------------------------------------- */

static int child_perturb(void)
{
    enum { N = 1000, M = 40000 };
    unsigned char *p = pm_malloc(N);
    PMT_REQUIRE(p != NULL, "malloc");
    /* Fresh memory is zero from the kernel: a uniform non-zero fill can only
     * come from the perturb byte. */
    PMT_REQUIRE(p[0] != 0 && pmt_all_bytes(p, N, p[0]), "fresh block not filled (%#x)", p[0]);
    unsigned char *z = pm_calloc(1, N);
    PMT_REQUIRE(z != NULL && pmt_all_bytes(z, N, 0), "calloc not zero with PM_PERTURB");
    /* A freed block (above the cache limit) comes back filled, not with the
     * old contents. */
    unsigned char *q = pm_malloc(M);
    PMT_REQUIRE(q != NULL, "malloc");
    pmt_fill(q, M, 5, 5);
    pm_free(q);
    unsigned char *r = pm_malloc(M);
    PMT_REQUIRE(r != NULL, "malloc");
    PMT_REQUIRE(pmt_all_bytes(r + 64, M - 128, r[64]), "reused block not uniformly filled");
    PMT_REQUIRE(r[64] != 0, "reused block zero, not perturbed");
    pm_free(p);
    pm_free(z);
    pm_free(r);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_perturb(void **state)
{
    (void)state;
    const char *env[] = { "PM_PERTURB=90", NULL };
    pmt_run_case_ok("perturb", env, 30);
}

/* ---- bad values ---------------------------------------------------------- */

static int child_bad_mmap_threshold(void)
{
    /* The default (32 MiB) is in force. */
    REQUIRE_MMAPPED(32 * PMT_MIB, 1);
    REQUIRE_MMAPPED(4 * PMT_MIB, 0);
    return 0;
}

static int child_bad_arena_max(void)
{
    size_t n = arenas_with_threads(8);
    PMT_REQUIRE(n > 1 && n <= default_arena_cap(), "narenas %zu with a bad PM_ARENA_MAX", n);
    return 0;
}

static int child_bad_tcache_count(void)
{
    PMT_REQUIRE(cached_after_free(64) == 1, "default cache not in force");
    return 0;
}

static void run_bad(const char *casename, const char *assignment, const char *var)
{
    const char *env[] = { assignment, NULL };
    pmt_child_t c;
    assert_int_equal(pmt_spawn(casename, env, 30, &c), 0);
    pmt_assert_exit0_(&c, assignment, __FILE__, __LINE__);
    if (!pmt_contains(c.err, "pmalloc:") || !pmt_contains(c.err, var)) {
        pmt_dump_err(&c);
        fail_msg("%s: stderr lacks \"pmalloc:\" and \"%s\"", assignment, var);
    }
    pmt_child_free(&c);
}

static void test_bad_values_warn_and_use_default(void **state)
{
    (void)state;
    run_bad("bad_mmap_threshold", "PM_MMAP_THRESHOLD=banana", "PM_MMAP_THRESHOLD");
    run_bad("bad_mmap_threshold", "PM_MMAP_THRESHOLD=12Q", "PM_MMAP_THRESHOLD");
    run_bad("bad_mmap_threshold", "PM_MMAP_THRESHOLD=64M", "PM_MMAP_THRESHOLD");
    run_bad("bad_mmap_threshold", "PM_MMAP_THRESHOLD=-5", "PM_MMAP_THRESHOLD");
    run_bad("bad_arena_max", "PM_ARENA_MAX=0", "PM_ARENA_MAX");
    run_bad("bad_arena_max", "PM_ARENA_MAX=many", "PM_ARENA_MAX");
    run_bad("bad_tcache_count", "PM_TCACHE_COUNT=-3", "PM_TCACHE_COUNT");
}

static void test_on_bad_config(void **state)
{
    (void)state;
    /* quiet: default used, nothing said. */
    const char *quiet[] = { "PM_ON_BAD_CONFIG=quiet", "PM_MMAP_THRESHOLD=banana", NULL };
    pmt_child_t c;
    assert_int_equal(pmt_spawn("bad_mmap_threshold", quiet, 30, &c), 0);
    pmt_assert_exit0(&c);
    if (pmt_contains(c.err, "PM_MMAP_THRESHOLD")) {
        pmt_dump_err(&c);
        fail_msg("PM_ON_BAD_CONFIG=quiet still warned");
    }
    pmt_child_free(&c);
    /* abort: the first pm_* call aborts, naming the variable. */
    const char *abrt[] = { "PM_ON_BAD_CONFIG=abort", "PM_MMAP_THRESHOLD=banana", NULL };
    assert_int_equal(pmt_spawn("bad_mmap_threshold", abrt, 30, &c), 0);
    pmt_assert_abort(&c, "PM_MMAP_THRESHOLD");
    pmt_child_free(&c);
}

static int child_print_config(void)
{
    void *p = pm_malloc(1);
    PMT_REQUIRE(p != NULL, "malloc");
    pm_free(p);
    return 0;
}

static void test_print_config(void **state)
{
    (void)state;
    const char *on[] = { "PM_PRINT_CONFIG=1", "PM_MMAP_THRESHOLD=1M", NULL };
    pmt_child_t c;
    assert_int_equal(pmt_spawn("print_config", on, 30, &c), 0);
    pmt_assert_exit0(&c);
    if (!pmt_contains(c.err, "mmap_threshold") && !pmt_contains(c.err, "MMAP_THRESHOLD")) {
        pmt_dump_err(&c);
        fail_msg("PM_PRINT_CONFIG=1 printed no settings");
    }
    pmt_child_free(&c);
    assert_int_equal(pmt_spawn("print_config", NULL, 30, &c), 0);
    pmt_assert_exit0(&c);
    if (c.err_len != 0) {
        pmt_dump_err(&c);
        fail_msg("stderr not empty without PM_PRINT_CONFIG");
    }
    pmt_child_free(&c);
}

/* ---- decay_ms -------------------------------------------------------------- */

/* An 8 MiB block between two others, touched and freed: a hole inside the
 * heap, not at its top. Does its RSS go back, after waiting, or not? */
static int decay_hole(void)
{
    void *before = pm_malloc(100000), *hole = pm_malloc(8 * PMT_MIB);
    void *after = pm_malloc(100000);
    PMT_REQUIRE(before && hole && after, "malloc");
    PMT_REQUIRE(pm_mallinfo().hblks == 0, "an 8 MiB block was mmapped");
    memset(hole, 0x5c, 8 * PMT_MIB);
    size_t rss_full = pmt_rss_bytes();
    pm_free(hole);
    decay_wait();
    size_t rss_freed = pmt_rss_bytes();
    PMT_REQUIRE_HEAP_OK();
    fprintf(stderr, "pmt: rss %zu -> %zu\n", rss_full, rss_freed);
    const char *expect = getenv("PMT_EXPECT");
    /* Why less under a sanitizer: its runtime keeps pages of its own for
     * the hole (all 8 MiB are purged; the RSS falls by 6 MiB or so). */
    if (expect && strcmp(expect, "falls") == 0)
        PMT_REQUIRE(rss_freed + (PMT_SANITIZER ? 4 : 6) * PMT_MIB <= rss_full,
                    "RSS did not fall");
    else
        PMT_REQUIRE(rss_freed + 2 * PMT_MIB >= rss_full, "RSS fell");
    /* The hole is reused whole, purged or not, and reads as what it is. */
    char *again = pm_malloc(8 * PMT_MIB);
    PMT_REQUIRE(again == hole, "the hole was not reused (%p, %p)", (void *)again, hole);
    memset(again, 0x11, 8 * PMT_MIB);
    pm_free(again);
    pm_free(before);
    pm_free(after);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static int child_decay(void)
{
    return decay_hole();
}

static int child_decay_mallopt(void)
{
    PMT_REQUIRE(pm_mallopt(PM_DECAY_MS, 20) == 1, "pm_mallopt(PM_DECAY_MS, 20)");
    return decay_hole();
}

/* decay 0, a hole under trim_threshold: it stays until pm_malloc_trim,
 * which gives it back at once. */
static int child_decay_trim(void)
{
    void *before = pm_malloc(100000), *hole = pm_malloc(8 * PMT_MIB);
    void *after = pm_malloc(100000);
    PMT_REQUIRE(before && hole && after, "malloc");
    memset(hole, 0x5c, 8 * PMT_MIB);
    size_t rss_full = pmt_rss_bytes();
    pm_free(hole);
    PMT_REQUIRE(pm_malloc_trim(0) == 1, "pm_malloc_trim gave nothing back");
    size_t rss_freed = pmt_rss_bytes();
    PMT_REQUIRE(rss_freed + 6 * PMT_MIB <= rss_full, "RSS %zu -> %zu", rss_full, rss_freed);
    pm_free(before);
    pm_free(after);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* A thread fills 12 MiB (small and large blocks), frees it and exits; the
 * process makes no further call into its arenas. With decay on, the
 * memory goes back within a few periods (the purger's), not at some later
 * call; without a purger, when the thread ends. */
static pthread_barrier_t exit_barrier;

static void *exit_thread(void *arg)
{
    (void)arg;
    enum { NB = 96 };
    void *b[NB];
    for (int i = 0; i < NB; i++) {
        size_t s = i % 2 ? 100000 : 30000;
        b[i] = pm_malloc(s);
        if (b[i])
            memset(b[i], 0x3c, s);
    }
    pthread_barrier_wait(&exit_barrier); /* main reads the RSS now */
    pthread_barrier_wait(&exit_barrier);
    for (int i = NB - 1; i >= 0; i--)
        pm_free(b[i]);
    return NULL;
}

static int child_decay_thread_exit(void)
{
    pthread_t t;
    pthread_barrier_init(&exit_barrier, NULL, 2);
    PMT_REQUIRE(pthread_create(&t, NULL, exit_thread, NULL) == 0, "pthread_create");
    pthread_barrier_wait(&exit_barrier);
    size_t rss_full = pmt_rss_bytes();
    pthread_barrier_wait(&exit_barrier);
    pthread_join(t, NULL);
    size_t rss_after = getenv("PMT_AT_EXIT") ? pmt_rss_bytes()
                                             : pmt_rss_wait_below(rss_full - 4 * PMT_MIB, 3000);
    fprintf(stderr, "pmt: rss %zu -> %zu\n", rss_full, rss_after);
    PMT_REQUIRE(rss_after + 4 * PMT_MIB <= rss_full, "RSS did not fall when the thread ended");
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_decay(void **state)
{
    (void)state;
    const char *dflt[] = { "PMT_WAIT_MS=30", "PMT_EXPECT=falls", NULL };
    const char *fast[] = { "PM_DECAY_MS=1", "PMT_WAIT_MS=5", "PMT_EXPECT=falls", NULL };
    const char *slow[] = { "PM_DECAY_MS=100000", "PMT_WAIT_MS=30", "PMT_EXPECT=stays", NULL };
    /* decay 0: a hole past trim_threshold goes on its free (glibc maps a
     * block that big and unmaps it on free), one under it stays. */
    const char *off[] = { "PM_DECAY_MS=0", "PM_TRIM_THRESHOLD=32M", "PMT_WAIT_MS=30",
                          "PMT_EXPECT=stays", NULL };
    const char *off_past[] = { "PM_DECAY_MS=0", "PMT_WAIT_MS=1", "PMT_EXPECT=falls", NULL };
    const char *mopt[] = { "PM_DECAY_MS=100000", "PMT_WAIT_MS=30", "PMT_EXPECT=falls", NULL };
    const char *small[] = { "PMT_WAIT_MS=30", "PMT_WAIT_SMALL=1", "PMT_EXPECT=falls", NULL };
    pmt_run_case_ok("decay", dflt, 30);
    pmt_run_case_ok("decay", small, 30);
    pmt_run_case_ok("decay", fast, 30);
    pmt_run_case_ok("decay", slow, 30);
    pmt_run_case_ok("decay", off, 30);
    pmt_run_case_ok("decay", off_past, 30);
    pmt_run_case_ok("decay_mallopt", mopt, 30);
    pmt_run_case_ok("decay_trim", off, 30);
    const char *slow_exit[] = { "PM_DECAY_MS=100000", "PM_BACKGROUND_THREAD=0",
                                "PMT_AT_EXIT=1", NULL };
    const char *no_purger[] = { "PM_BACKGROUND_THREAD=0", "PMT_AT_EXIT=1", NULL };
    pmt_run_case_ok("decay_thread_exit", NULL, 30);
    pmt_run_case_ok("decay_thread_exit", no_purger, 30);
    pmt_run_case_ok("decay_thread_exit", slow_exit, 30);
}

/* ---- mmap_dynamic ---------------------------------------------------------- */

/* Is a block of n bytes a direct mapping? (one made and freed) */
static int mapped_block(size_t n)
{
    size_t before = pm_mallinfo().hblks;
    void *p = pm_malloc(n);
    PMT_REQUIRE(p != NULL, "malloc");
    memset(p, 0x21, n);
    int mapped = pm_mallinfo().hblks == before + 1;
    pm_free(p);
    return mapped;
}

/* The config dump as text, for the lines of the thresholds; NULL if it
 * could not be had. */
static char *dump_text(void)
{
    FILE *f = tmpfile();
    if (f == NULL)
        return NULL;
    if (pm_config_dump(fileno(f), PM_DUMP_TEXT) != 0) {
        fclose(f);
        return NULL;
    }
    static char buf[16384];
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* PM_MMAP_DYNAMIC=1 with the thresholds unset: 128 KiB to start, then as
 * big as the largest mapping freed, as glibc; the dump says so. */
static int child_mmap_dynamic(void)
{
    PMT_REQUIRE(mapped_block(200 * 1024), "200 KiB was not mapped at the start (128K)");
    PMT_REQUIRE(!mapped_block(200 * 1024), "200 KiB still mapped after one was freed");
    PMT_REQUIRE(mapped_block(400 * 1024), "400 KiB was not mapped");
    const char *d = dump_text();
    PMT_REQUIRE(d != NULL, "pm_config_dump failed");
    fprintf(stderr, "pmt: dump:\n%s", d);
    PMT_REQUIRE(strstr(d, "mmap_threshold = 32M (default) [in force now: 40") != NULL,
                "the dump does not show the threshold in force");
    PMT_REQUIRE(strstr(d, "trim_threshold = 128K (default) [in force now: 80") != NULL,
                "the dump does not show the trim threshold in force");
    return 0;
}

/* A threshold the user set stays put, dynamic or not. */
static int child_mmap_dynamic_set(void)
{
    PMT_REQUIRE(!mapped_block(200 * 1024), "200 KiB mapped under a 1M threshold");
    PMT_REQUIRE(mapped_block(2 * PMT_MIB), "2 MiB was not mapped");
    PMT_REQUIRE(mapped_block(1536 * 1024), "1.5 MiB not mapped: the threshold moved");
    const char *d = dump_text();
    PMT_REQUIRE(d != NULL, "pm_config_dump failed");
    PMT_REQUIRE(strstr(d, "in force now") == NULL, "a set threshold shown as moved");
    return 0;
}

static void test_mmap_dynamic(void **state)
{
    (void)state;
    const char *dyn[] = { "PM_MMAP_DYNAMIC=1", NULL };
    const char *set[] = { "PM_MMAP_DYNAMIC=1", "PM_MMAP_THRESHOLD=1M", NULL };
    pmt_run_case_ok("mmap_dynamic", dyn, 30);
    pmt_run_case_ok("mmap_dynamic_set", set, 30);
}

static const pmt_case_t cases[] = {
    { "mmap_dynamic", child_mmap_dynamic },
    { "mmap_dynamic_set", child_mmap_dynamic_set },
    { "decay", child_decay },
    { "decay_mallopt", child_decay_mallopt },
    { "decay_trim", child_decay_trim },
    { "decay_thread_exit", child_decay_thread_exit },
    { "arena_max_1", child_arena_max_1 },
    { "arena_max_4", child_arena_max_4 },
    { "arena_default", child_arena_default },
    { "arena_mallopt_overrides", child_arena_mallopt_overrides },
    { "mmap_default", child_mmap_default },
    { "mmap_1m", child_mmap_1m },
    { "mmap_32k", child_mmap_32k },
    { "mmap_2m", child_mmap_2m },
    { "mmap_mallopt_overrides", child_mmap_mallopt_overrides },
    { "mmap_max_0", child_mmap_max_0 },
    { "trim_default", child_trim_default },
    { "trim_1g", child_trim_1g },
    { "trim_mallopt_overrides", child_trim_mallopt_overrides },
    { "top_pad_default", child_top_pad_default },
    { "top_pad_16m", child_top_pad_16m },
    { "tcache_default", child_tcache_default },
    { "tcache_off", child_tcache_off },
    { "tcache_max_1k", child_tcache_max_1k },
    { "tcache_count_2", child_tcache_count_2 },
    { "perturb", child_perturb },
    { "bad_mmap_threshold", child_bad_mmap_threshold },
    { "bad_arena_max", child_bad_arena_max },
    { "bad_tcache_count", child_bad_tcache_count },
    { "print_config", child_print_config },
};

int main(int argc, char **argv)
{
    pmt_child_dispatch(argc, argv, cases, PMT_ARRAY_LEN(cases));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_max),
        cmocka_unit_test(test_mmap_threshold),
        cmocka_unit_test(test_mmap_max),
        cmocka_unit_test(test_trim_threshold),
        cmocka_unit_test(test_decay),
        cmocka_unit_test(test_mmap_dynamic),
        cmocka_unit_test(test_top_pad),
        cmocka_unit_test(test_tcache),
        cmocka_unit_test(test_perturb),
        cmocka_unit_test(test_bad_values_warn_and_use_default),
        cmocka_unit_test(test_on_bad_config),
        cmocka_unit_test(test_print_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
