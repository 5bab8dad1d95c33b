/* SPDX-License-Identifier: MIT */
/*
 * test_api.c - every public call of pmalloc and its edge cases (issue 2),
 * through the public API only: malloc(0), alignment, impossible sizes,
 * calloc overflow and zeroing, realloc, the memalign family, usable size,
 * mallopt, malloc_trim, malloc_stats, pm_init, mallinfo. pm_check_heap() must
 * return 0 after every step. Cases that need a fresh allocator (settings,
 * exact mallinfo deltas) run in a re-executed child (tests/common.h).
 */
#define _GNU_SOURCE
#include "../common.h"

#include <sys/resource.h>
#include <sys/sysinfo.h>

#include <pthread.h>
#include <stdbool.h>
#include <strings.h>

#define HEAP_OK() assert_int_equal(pm_check_heap(), 0)

/* Sizes that cross every size class boundary likely to matter: tiny, the
 * 16-byte steps, thread-cache limit (32 KiB), mmap threshold (128 KiB). */
static const size_t edge_sizes[] = {
    0,      1,      7,      8,      9,      15,     16,     17,      23,      24,
    25,     31,     32,     33,     48,     63,     64,     65,      100,     127,
    128,    129,    255,    256,    257,    511,    512,    513,     1000,    1023,
    1024,   1025,   2047,   2048,   2049,   4000,   4095,   4096,    4097,    8191,
    8192,   8193,   16383,  16384,  16385,  32767,  32768,  32769,   65535,   65536,
    65537,  131071, 131072, 131073, 200000, 262144, 1048575, 1048576, 4194304, 4194305,
};

/* ---- malloc ------------------------------------------------------------ */

static void test_malloc_zero(void **state)
{
    (void)state;
    void *p[64];
    for (size_t i = 0; i < PMT_ARRAY_LEN(p); i++) {
        p[i] = pm_malloc(0);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 16, 0);
        for (size_t j = 0; j < i; j++)
            assert_ptr_not_equal(p[i], p[j]);
        HEAP_OK();
    }
    for (size_t i = 0; i < PMT_ARRAY_LEN(p); i++) {
        pm_free(p[i]);
        HEAP_OK();
    }
}

static void test_malloc_alignment_and_usable(void **state)
{
    (void)state;
    for (size_t i = 0; i < PMT_ARRAY_LEN(edge_sizes); i++) {
        size_t n = edge_sizes[i];
        unsigned char *p = pm_malloc(n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        size_t u = pm_malloc_usable_size(p);
        assert_true(u >= n);
        /* The whole usable size is the caller's: filling it must not hurt
         * the allocator's own data (headers follow the usable end). */
        pmt_fill(p, u, (uintptr_t)p, i);
        HEAP_OK();
        assert_int_equal(pmt_verify(p, u, (uintptr_t)p, i), (size_t)-1);
        pm_free(p);
        HEAP_OK();
    }
}

static void test_malloc_many_sizes_live(void **state)
{
    (void)state;
    /* Every size 0..3000 live at once, then freed in an interleaved order. */
    enum { N = 3001 };
    unsigned char **p = calloc(N, sizeof *p);
    assert_non_null(p);
    for (size_t n = 0; n < N; n++) {
        p[n] = pm_malloc(n);
        assert_non_null(p[n]);
        assert_int_equal((uintptr_t)p[n] % 16, 0);
        assert_true(pm_malloc_usable_size(p[n]) >= n);
        pmt_fill(p[n], n, n, 7);
        if (n % 97 == 0)
            HEAP_OK();
    }
    HEAP_OK();
    for (size_t pass = 0; pass < 3; pass++) {
        for (size_t n = pass; n < N; n += 3) {
            assert_int_equal(pmt_verify(p[n], n, n, 7), (size_t)-1);
            pm_free(p[n]);
        }
        HEAP_OK();
    }
    free(p);
}

static void test_malloc_impossible_sizes(void **state)
{
    (void)state;
    const size_t sizes[] = {
        SIZE_MAX,         SIZE_MAX - 1,         SIZE_MAX - 15,     SIZE_MAX - 4095,
        SIZE_MAX / 2 + 1, (size_t)PTRDIFF_MAX,  (size_t)1 << 62,   (size_t)1 << 50,
    };
    for (size_t i = 0; i < PMT_ARRAY_LEN(sizes); i++) {
        errno = 0;
        void *p = pm_malloc(sizes[i]);
        if (p != NULL)
            fail_msg("pm_malloc(%zu) returned %p", sizes[i], p);
        assert_int_equal(errno, ENOMEM);
        HEAP_OK();
    }
    /* The allocator still works after refusing. */
    void *p = pm_malloc(100);
    assert_non_null(p);
    pm_free(p);
    HEAP_OK();
}

/* RAM plus swap in bytes, the totals the kernel's overcommit check uses
 * (sysinfo, not /proc/meminfo, which a container may rewrite); 0 if unknown. */
static size_t machine_memory(void)
{
    struct sysinfo si;
    if (sysinfo(&si) != 0)
        return 0;
    return ((size_t)si.totalram + (size_t)si.totalswap) * si.mem_unit;
}

/* A block bigger than the machine's RAM and swap, which the kernel's
 * heuristic overcommit check refuses (as glibc's malloc returns NULL for
 * it): NULL and ENOMEM, huge pages asked for or not. Direct mappings for
 * huge pages were reserved with MAP_NORESERVE, which skips that check, so
 * pm_malloc(1 TiB) succeeded and the OOM killer came at the first touch. */
static void test_malloc_beyond_machine(void **state)
{
    (void)state;
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = -1;
    if (f) {
        if (fscanf(f, "%d", &mode) != 1)
            mode = -1;
        fclose(f);
    }
    size_t mem = machine_memory();
    if (mode != 0 || mem == 0 || mem > ((size_t)1 << 44)) {
        print_message("overcommit_memory %d, %zu bytes of RAM and swap: skipped\n", mode, mem);
        skip();
    }
    size_t n = 2 * mem + ((size_t)1 << 30);
    for (int thp = 0; thp <= 1; thp++) {
        assert_int_equal(pm_mallopt(PM_THP, thp), 1);
        errno = 0;
        void *p = pm_malloc(n);
        if (p != NULL)
            fail_msg("thp %d: pm_malloc(%zu) returned %p on a machine with %zu bytes", thp, n,
                     p, mem);
        assert_int_equal(errno, ENOMEM);
        p = pm_calloc(n / 16, 16);
        if (p != NULL)
            fail_msg("thp %d: pm_calloc(%zu, 16) returned %p", thp, n / 16, p);
        HEAP_OK();
    }
    assert_int_equal(pm_mallopt(PM_THP, 0), 1);
}

static void test_free_null(void **state)
{
    (void)state;
    pm_free(NULL);
    HEAP_OK();
    assert_int_equal(pm_malloc_usable_size(NULL), 0);
}

/* ---- calloc ------------------------------------------------------------ */

static void test_calloc_overflow(void **state)
{
    (void)state;
    const size_t pairs[][2] = {
        { SIZE_MAX / 2, 3 },      { 3, SIZE_MAX / 2 },       { SIZE_MAX, 2 },
        { 2, SIZE_MAX },          { (size_t)1 << 32, (size_t)1 << 32 },
        { SIZE_MAX / 16 + 1, 16 }, { SIZE_MAX, SIZE_MAX },  { 1, SIZE_MAX },
        { (size_t)1 << 40, (size_t)1 << 20 },
    };
    for (size_t i = 0; i < PMT_ARRAY_LEN(pairs); i++) {
        errno = 0;
        void *p = pm_calloc(pairs[i][0], pairs[i][1]);
        if (p != NULL)
            fail_msg("pm_calloc(%zu, %zu) returned %p", pairs[i][0], pairs[i][1], p);
        assert_int_equal(errno, ENOMEM);
        HEAP_OK();
    }
}

static void test_calloc_zero_counts(void **state)
{
    (void)state;
    void *a = pm_calloc(0, 16), *b = pm_calloc(16, 0), *c = pm_calloc(0, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_ptr_not_equal(a, b);
    assert_ptr_not_equal(b, c);
    HEAP_OK();
    pm_free(a);
    pm_free(b);
    pm_free(c);
    HEAP_OK();
}

/* Dirty freed blocks must come back zeroed by calloc, for every kind of
 * block: thread-cached, binned, split from a larger free block, mmapped. */
static void test_calloc_zeroes_reused_memory(void **state)
{
    (void)state;
    const size_t sizes[] = { 1,     16,    24,    100,   1000,   4000,   20000,
                             32768, 40000, 65536, 100000, 200000, 1048576 };
    enum { K = 24 };
    for (size_t s = 0; s < PMT_ARRAY_LEN(sizes); s++) {
        size_t n = sizes[s];
        unsigned char *p[K];
        for (int i = 0; i < K; i++) {
            p[i] = pm_malloc(n);
            assert_non_null(p[i]);
            memset(p[i], 0xA5, pm_malloc_usable_size(p[i]));
        }
        HEAP_OK();
        for (int i = 0; i < K; i++)
            pm_free(p[i]);
        HEAP_OK();
        /* Same size, then slightly smaller (reuse with a split or a
         * larger class). */
        for (int variant = 0; variant < 2; variant++) {
            size_t m = variant == 0 ? n : (n > 32 ? n - 24 : n);
            for (int i = 0; i < K; i++) {
                p[i] = pm_calloc(1, m);
                assert_non_null(p[i]);
                if (!pmt_all_bytes(p[i], m, 0))
                    fail_msg("pm_calloc(1, %zu) #%d not zeroed", m, i);
            }
            HEAP_OK();
            for (int i = 0; i < K; i++) {
                memset(p[i], 0x5A, m);
                pm_free(p[i]);
            }
            HEAP_OK();
        }
    }
    /* A big dirty block freed, then many small callocs carved from it. */
    unsigned char *big = pm_malloc(100000);
    assert_non_null(big);
    memset(big, 0xEE, 100000);
    pm_free(big);
    void *q[200];
    for (int i = 0; i < 200; i++) {
        q[i] = pm_calloc(3, 100 + i);
        assert_non_null(q[i]);
        assert_true(pmt_all_bytes(q[i], 3 * (100 + (size_t)i), 0));
        memset(q[i], 0xEE, 3 * (100 + (size_t)i));
    }
    HEAP_OK();
    for (int i = 0; i < 200; i++)
        pm_free(q[i]);
    HEAP_OK();
}

/* Resident whole pages of [p, p+n), or SIZE_MAX if mincore fails. */
static size_t pages_resident(const void *p, size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t to = ((uintptr_t)p + n) & ~(uintptr_t)(page - 1);
    unsigned char v[1024];
    size_t r = 0;
    if (to <= from || (to - from) / page > sizeof v || mincore((void *)from, to - from, v) != 0)
        return SIZE_MAX;
    for (size_t i = 0; i < (to - from) / page; i++)
        r += v[i] & 1;
    return r;
}

enum { RC_SIZE = 1 << 20 };

/* A 1 MiB block freed, with a neighbour that keeps it out of the top, and
 * calloc'd back at the same address: a recycled block, not fresh memory. */
static unsigned char *recycle_calloc(unsigned char *p)
{
    pm_free(p);
    unsigned char *q = pm_calloc(1, RC_SIZE);
    return q == p ? q : NULL;
}

/* A recycled block the program touched sparsely comes back zeroed by calloc
 * without its pages made resident; one it filled is zeroed in place (no
 * page faults); and after a run of filled ones the residency check resumes
 * within its bound (2^6 callocs). */
static int child_calloc_recycled(void)
{
    unsigned char *p = pm_malloc(RC_SIZE), *guard = pm_malloc(RC_SIZE);
    PMT_REQUIRE(p && guard, "malloc");
    size_t all = pages_resident(p, RC_SIZE) == SIZE_MAX ? 0 : (RC_SIZE - 4096) / 4096;
    PMT_REQUIRE(all > 0, "mincore does not work here");
    p[0] = p[RC_SIZE / 2] = p[RC_SIZE - 1] = 0x5a;
    p = recycle_calloc(p);
    PMT_REQUIRE(p != NULL, "calloc did not reuse the freed block");
    size_t r = pages_resident(p, RC_SIZE);
    PMT_REQUIRE(r <= 2, "%zu pages of a sparsely used block made resident by calloc", r);
    PMT_REQUIRE(pmt_all_bytes(p, RC_SIZE, 0), "recycled block not zeroed");
    for (int i = 0; i < 12; i++) {
        memset(p, 0x77, RC_SIZE);
        p = recycle_calloc(p);
        PMT_REQUIRE(p != NULL, "calloc did not reuse the freed block");
        r = pages_resident(p, RC_SIZE);
        PMT_REQUIRE(r >= all - 1, "a filled block zeroed by page faults (%zu resident)", r);
        PMT_REQUIRE(pmt_all_bytes(p, RC_SIZE, 0), "recycled filled block not zeroed");
    }
    int rounds = 0;
    for (;; rounds++) {
        PMT_REQUIRE(rounds <= 70, "the residency check did not resume");
        pm_free(p);
        pm_malloc_trim(0); /* its pages go back: a sparse block again */
        p = pm_calloc(1, RC_SIZE);
        PMT_REQUIRE(p != NULL, "calloc");
        /* Why look first: reading unresident pages maps them (zero-filled). */
        bool sparse = pages_resident(p, RC_SIZE) < all / 2;
        PMT_REQUIRE(pmt_all_bytes(p, RC_SIZE, 0), "recycled block not zeroed");
        if (sparse)
            break;
    }
    pm_free(p);
    pm_free(guard);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_calloc_recycled(void **state)
{
    (void)state;
    pmt_run_case_ok("calloc_recycled", NULL, 60);
}

/* Can this process lock pages (RLIMIT_MEMLOCK, and mlock2 on fault)? */
static bool mlock_works(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *m = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return false;
    bool ok = mlock2(m, page, MLOCK_ONFAULT) == 0;
    munmap(m, page);
    return ok;
}

/* Locked pages refuse to be given back (madvise fails): calloc must not
 * take them for zero. A recycled block with locked pages in it... */
static int child_calloc_locked_recycled(void)
{
    unsigned char *p = pm_malloc(RC_SIZE), *guard = pm_malloc(RC_SIZE);
    PMT_REQUIRE(p && guard, "malloc");
    unsigned char *lk = (unsigned char *)(((uintptr_t)p + 64 * 1024) & ~(uintptr_t)4095);
    PMT_REQUIRE(mlock2(lk, 32 * 1024, MLOCK_ONFAULT) == 0, "mlock2: %s", strerror(errno));
    lk[0] = lk[16 * 1024] = 0x5a; /* two locked pages, the block still sparse */
    p = recycle_calloc(p);
    PMT_REQUIRE(p != NULL, "calloc did not reuse the freed block");
    PMT_REQUIRE(pmt_all_bytes(p, RC_SIZE, 0), "recycled block with locked pages not zeroed");
    munlock(lk, 32 * 1024);
    pm_free(p);
    pm_free(guard);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* ... and a top trimmed over locked pages, then carved again (a block big
 * enough for the large companion first, then the calloc after it). */
static int child_calloc_locked_top(void)
{
    unsigned char *p = pm_malloc(256 * 1024);
    PMT_REQUIRE(p != NULL, "malloc");
    unsigned char *lk = (unsigned char *)(((uintptr_t)p + 128 * 1024) & ~(uintptr_t)4095);
    PMT_REQUIRE(mlock(lk, 32 * 1024) == 0, "mlock: %s", strerror(errno));
    memset(p, 0x5a, 256 * 1024);
    pm_free(p); /* into the top */
    pm_malloc_trim(0);
    unsigned char *front = pm_malloc(70000), *q = pm_calloc(1, 200000);
    PMT_REQUIRE(front == p && q != NULL, "front %p, first block %p", (void *)front, (void *)p);
    PMT_REQUIRE(q <= lk && q + 200000 >= lk + 32 * 1024, "q %p does not cover %p",
                (void *)q, (void *)lk);
    PMT_REQUIRE(pmt_all_bytes(q, 200000, 0), "top over locked pages not zeroed");
    munlock(lk, 32 * 1024);
    pm_free(q);
    pm_free(front);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* ... and a trim over locked pages, then a smaller trim that succeeds below
 * them: the second must not take the first one's pages for zero. */
static int child_calloc_locked_retrim(void)
{
    pm_mallopt(PM_TOP_PAD, 0);
    pm_mallopt(PM_TRIM_THRESHOLD, 1 << 30); /* only pm_malloc_trim trims */
    unsigned char *p = pm_malloc(512 * 1024);
    PMT_REQUIRE(p != NULL, "malloc");
    unsigned char *lk = (unsigned char *)(((uintptr_t)p + 256 * 1024) & ~(uintptr_t)4095);
    PMT_REQUIRE(mlock(lk, 32 * 1024) == 0, "mlock: %s", strerror(errno));
    memset(p, 0x5a, 512 * 1024);
    pm_free(p);
    pm_malloc_trim(0); /* fails on the locked pages */
    unsigned char *front = pm_malloc(100000), *b = pm_malloc(100000);
    PMT_REQUIRE(front && b, "malloc");
    pm_free(b);
    pm_malloc_trim(0); /* succeeds: its range ends below the locked pages */
    void *pad = pm_malloc(70000);
    unsigned char *q = pm_calloc(1, 300000);
    PMT_REQUIRE(pad && q, "malloc");
    PMT_REQUIRE(q <= lk && q + 300000 >= lk + 32 * 1024, "q %p does not cover %p",
                (void *)q, (void *)lk);
    PMT_REQUIRE(pmt_all_bytes(q, 300000, 0), "top retrimmed below locked pages not zeroed");
    munlock(lk, 32 * 1024);
    pm_free(q);
    pm_free(pad);
    pm_free(front);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_calloc_locked_pages(void **state)
{
    (void)state;
    if (!mlock_works())
        skip(); /* RLIMIT_MEMLOCK too low, or no mlock2 */
    pmt_run_case_ok("calloc_locked_recycled", NULL, 30);
    pmt_run_case_ok("calloc_locked_top", NULL, 30);
    pmt_run_case_ok("calloc_locked_retrim", NULL, 30);
}

/* ---- realloc ----------------------------------------------------------- */

static void test_realloc_null_is_malloc(void **state)
{
    (void)state;
    unsigned char *p = pm_realloc(NULL, 100);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    assert_true(pm_malloc_usable_size(p) >= 100);
    memset(p, 1, 100);
    HEAP_OK();
    pm_free(p);
    p = pm_realloc(NULL, 0);
    assert_non_null(p);
    pm_free(p);
    HEAP_OK();
}

static void test_realloc_zero_frees(void **state)
{
    (void)state;
    /* 100000 B: above the thread-cache classes, below the mmap threshold,
     * so in-use bytes move at once. */
    const size_t sizes[] = { 100000, 100, 33 << 20 };
    for (size_t i = 0; i < PMT_ARRAY_LEN(sizes); i++) {
        void *p = pm_malloc(sizes[i]);
        assert_non_null(p);
        struct pm_mallinfo before = pm_mallinfo();
        assert_null(pm_realloc(p, 0));
        HEAP_OK();
        struct pm_mallinfo after = pm_mallinfo();
        if (sizes[i] == 100000)
            assert_true(after.uordblks + 100000 <= before.uordblks);
        if (sizes[i] == 33 << 20) {
            assert_int_equal(after.hblks + 1, before.hblks);
            assert_true(after.hblkhd + (33 << 20) <= before.hblkhd);
        }
    }
}

/* Grow step by step through every kind of block and back down; the common
 * prefix must survive each move. */
static void test_realloc_grow_shrink_preserves(void **state)
{
    (void)state;
    const size_t steps[] = { 1,     15,     16,      17,      100,     1000,    4000,
                             32767, 32768,  40000,   131071,  131072,  200000,  1048576,
                             4194304, 6000000, 4194304, 1048576, 200000, 131072, 40000,
                             32768, 4000,   1000,    100,     17,      1 };
    for (int key = 0; key < 2; key++) {
        size_t old = steps[0];
        unsigned char *p = pm_malloc(old);
        assert_non_null(p);
        pmt_fill(p, old, 0xC0FFEE, key);
        for (size_t i = 1; i < PMT_ARRAY_LEN(steps); i++) {
            size_t n = steps[i];
            /* key 1: a neighbour allocated after each step, so that
             * growing in place is sometimes impossible. */
            void *blocker = key ? pm_malloc(64) : NULL;
            unsigned char *q = pm_realloc(p, n);
            assert_non_null(q);
            assert_int_equal((uintptr_t)q % 16, 0);
            assert_true(pm_malloc_usable_size(q) >= n);
            size_t keep = old < n ? old : n;
            size_t bad = pmt_verify(q, keep, 0xC0FFEE, key);
            if (bad != (size_t)-1)
                fail_msg("realloc %zu -> %zu lost byte %zu", old, n, bad);
            pmt_fill(q, n, 0xC0FFEE, key);
            HEAP_OK();
            pm_free(blocker);
            p = q;
            old = n;
        }
        pm_free(p);
        HEAP_OK();
    }
}

static void test_realloc_failure_keeps_block(void **state)
{
    (void)state;
    const size_t sizes[] = { 24, 1000, 40000, 300000 };
    const size_t huge[] = { SIZE_MAX, SIZE_MAX - 64, SIZE_MAX / 2 + 1, (size_t)1 << 50 };
    for (size_t i = 0; i < PMT_ARRAY_LEN(sizes); i++) {
        unsigned char *p = pm_malloc(sizes[i]);
        assert_non_null(p);
        pmt_fill(p, sizes[i], (uintptr_t)p, 3);
        for (size_t h = 0; h < PMT_ARRAY_LEN(huge); h++) {
            errno = 0;
            void *q = pm_realloc(p, huge[h]);
            if (q != NULL)
                fail_msg("pm_realloc(%zu -> %zu) returned %p", sizes[i], huge[h], q);
            assert_int_equal(errno, ENOMEM);
            assert_true(pm_malloc_usable_size(p) >= sizes[i]);
            assert_int_equal(pmt_verify(p, sizes[i], (uintptr_t)p, 3), (size_t)-1);
            HEAP_OK();
        }
        pm_free(p);
        HEAP_OK();
    }
}

static void test_realloc_of_aligned_block(void **state)
{
    (void)state;
    const size_t aligns[] = { 64, 4096, 65536 };
    for (size_t i = 0; i < PMT_ARRAY_LEN(aligns); i++) {
        unsigned char *p = pm_memalign(aligns[i], 1000);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % aligns[i], 0);
        pmt_fill(p, 1000, 77, i);
        unsigned char *q = pm_realloc(p, 50000);
        assert_non_null(q);
        assert_int_equal(pmt_verify(q, 1000, 77, i), (size_t)-1);
        q = pm_realloc(q, 10);
        assert_non_null(q);
        assert_int_equal(pmt_verify(q, 10, 77, i), (size_t)-1);
        HEAP_OK();
        pm_free(q);
        HEAP_OK();
    }
}

/* ---- memalign family --------------------------------------------------- */

static const size_t align_sizes[] = { 0, 1, 7, 100, 4095, 4096, 5000, 40000, 200000 };

static void check_aligned_block(unsigned char *p, size_t align, size_t n, const char *who)
{
    if (p == NULL)
        fail_msg("%s(%zu, %zu) returned NULL (errno %d)", who, align, n, errno);
    if ((uintptr_t)p % align != 0 || (uintptr_t)p % 16 != 0)
        fail_msg("%s(%zu, %zu) = %p misaligned", who, align, n, (void *)p);
    size_t u = pm_malloc_usable_size(p);
    assert_true(u >= n);
    pmt_fill(p, u, (uintptr_t)p, align);
    HEAP_OK();
    assert_int_equal(pmt_verify(p, u, (uintptr_t)p, align), (size_t)-1);
}

static void test_memalign_alignments(void **state)
{
    (void)state;
    for (size_t a = 1; a <= 4 * PMT_MIB; a <<= 1) {
        for (size_t s = 0; s < PMT_ARRAY_LEN(align_sizes); s++) {
            size_t n = align_sizes[s];
            errno = 0;
            unsigned char *p = pm_memalign(a, n);
            check_aligned_block(p, a, n, "pm_memalign");
            pm_free(p);
            HEAP_OK();

            p = pm_aligned_alloc(a, n);
            check_aligned_block(p, a, n, "pm_aligned_alloc");
            pm_free(p);
            HEAP_OK();

            if (a >= sizeof(void *)) {
                void *r = (void *)0x1;
                assert_int_equal(pm_posix_memalign(&r, a, n), 0);
                check_aligned_block(r, a, n, "pm_posix_memalign");
                pm_free(r);
                HEAP_OK();
            }
        }
    }
}

/* Requests whose size and alignment add up to just under the mmap threshold
 * (32 MiB by default) are too big for an arena with their alignment slack:
 * they must still be served, by a mapping. */
static void test_memalign_near_threshold(void **state)
{
    (void)state;
    static const size_t cases[][2] = {
        { 16 * PMT_MIB, 16 * PMT_MIB - 16 }, { 8 * PMT_MIB, 24 * PMT_MIB - 16 },
        { 32, 32 * PMT_MIB - 64 },           { 64, 32 * PMT_MIB - 96 },
        { 4096, 32 * PMT_MIB - 4096 - 16 },
    };
    for (size_t i = 0; i < PMT_ARRAY_LEN(cases); i++) {
        size_t a = cases[i][0], n = cases[i][1];
        errno = 0;
        unsigned char *p = pm_memalign(a, n);
        check_aligned_block(p, a, n, "pm_memalign");
        pm_free(p);
        void *r = NULL;
        assert_int_equal(pm_posix_memalign(&r, a, n), 0);
        check_aligned_block(r, a, n, "pm_posix_memalign");
        pm_free(r);
        HEAP_OK();
    }
}

/* Many aligned blocks live together, interleaved with plain ones, freed in
 * a shuffled order: alignment padding must not break the neighbours. */
static void test_memalign_mixed_live(void **state)
{
    (void)state;
    enum { N = 400 };
    static unsigned char *p[N];
    static size_t sz[N], key[N];
    uint64_t rng = 12345;
    for (int i = 0; i < N; i++) {
        size_t a = (size_t)1 << (pmt_rand(&rng) % 17); /* 1 .. 64 KiB */
        sz[i] = pmt_rand(&rng) % 3000;
        key[i] = (size_t)i;
        if (i % 3 == 0) {
            p[i] = pm_malloc(sz[i]);
            a = 16;
        } else {
            p[i] = pm_memalign(a, sz[i]);
        }
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % a, 0);
        pmt_fill(p[i], sz[i], key[i], 99);
        if (i % 16 == 0)
            HEAP_OK();
    }
    HEAP_OK();
    for (int i = N - 1; i > 0; i--) {
        int j = (int)(pmt_rand(&rng) % (uint64_t)(i + 1));
        unsigned char *tp = p[i];
        size_t ts = sz[i], tk = key[i];
        p[i] = p[j];
        sz[i] = sz[j];
        key[i] = key[j];
        p[j] = tp;
        sz[j] = ts;
        key[j] = tk;
    }
    for (int i = 0; i < N; i++) {
        size_t bad = pmt_verify(p[i], sz[i], key[i], 99);
        if (bad != (size_t)-1)
            fail_msg("block %zu (%zu B) damaged at byte %zu", key[i], sz[i], bad);
        pm_free(p[i]);
        if (i % 16 == 0)
            HEAP_OK();
    }
    HEAP_OK();
}

static void test_memalign_invalid(void **state)
{
    (void)state;
    const size_t bad[] = { 0, 3, 5, 6, 12, 24, 48, 100, 4097, 65535, (1u << 20) + 1,
                           SIZE_MAX, SIZE_MAX - 1, ((size_t)1 << 40) + 16 };
    for (size_t i = 0; i < PMT_ARRAY_LEN(bad); i++) {
        errno = 0;
        void *p = pm_memalign(bad[i], 100);
        if (p != NULL)
            fail_msg("pm_memalign(%zu) returned %p", bad[i], p);
        assert_int_equal(errno, EINVAL);
        errno = 0;
        p = pm_aligned_alloc(bad[i], 100);
        if (p != NULL)
            fail_msg("pm_aligned_alloc(%zu) returned %p", bad[i], p);
        assert_int_equal(errno, EINVAL);
        HEAP_OK();
    }
    /* posix_memalign: a power of two that is a multiple of sizeof(void *). */
    const size_t bad_posix[] = { 0, 1, 2, 4, 3, 12, 24, 40, 100, 4097, SIZE_MAX };
    for (size_t i = 0; i < PMT_ARRAY_LEN(bad_posix); i++) {
        void *sentinel = (void *)0x5A5A;
        void *r = sentinel;
        int rc = pm_posix_memalign(&r, bad_posix[i], 100);
        if (rc != EINVAL)
            fail_msg("pm_posix_memalign(%zu) returned %d", bad_posix[i], rc);
        assert_ptr_equal(r, sentinel);
        HEAP_OK();
    }
}

static void test_memalign_overflow(void **state)
{
    (void)state;
    const size_t aligns[] = { 16, 64, 4096, PMT_MIB };
    const size_t sizes[] = { SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX / 2 + 1, (size_t)1 << 50 };
    for (size_t a = 0; a < PMT_ARRAY_LEN(aligns); a++) {
        for (size_t s = 0; s < PMT_ARRAY_LEN(sizes); s++) {
            errno = 0;
            void *p = pm_memalign(aligns[a], sizes[s]);
            if (p != NULL)
                fail_msg("pm_memalign(%zu, %zu) = %p", aligns[a], sizes[s], p);
            assert_int_equal(errno, ENOMEM);
            errno = 0;
            p = pm_aligned_alloc(aligns[a], sizes[s]);
            assert_null(p);
            assert_int_equal(errno, ENOMEM);
            void *sentinel = (void *)0x77;
            void *r = sentinel;
            assert_int_equal(pm_posix_memalign(&r, aligns[a], sizes[s]), ENOMEM);
            assert_ptr_equal(r, sentinel);
            HEAP_OK();
        }
    }
    /* A valid but unsatisfiable alignment. */
    errno = 0;
    assert_null(pm_memalign((size_t)1 << 62, 16));
    assert_int_equal(errno, ENOMEM);
    HEAP_OK();
}

/* ---- usable size ------------------------------------------------------- */

static void test_usable_size_is_usable(void **state)
{
    (void)state;
    /* Two neighbours per size: filling the first block's whole usable size
     * must leave the second (and the allocator's headers) intact. */
    for (size_t n = 0; n < 1200; n += 1 + n / 8) {
        unsigned char *a = pm_malloc(n), *b = pm_malloc(n);
        assert_non_null(a);
        assert_non_null(b);
        size_t ua = pm_malloc_usable_size(a), ub = pm_malloc_usable_size(b);
        assert_true(ua >= n);
        assert_true(ub >= n);
        pmt_fill(b, ub, 2, n);
        pmt_fill(a, ua, 1, n);
        HEAP_OK();
        assert_int_equal(pmt_verify(b, ub, 2, n), (size_t)-1);
        pm_free(a);
        HEAP_OK();
        assert_int_equal(pmt_verify(b, ub, 2, n), (size_t)-1);
        pm_free(b);
        HEAP_OK();
    }
}

/* ---- mallopt (child cases: they change global settings) -------------- */

static int expect_mallopt(int param, int value, int want_ret, int want_errno)
{
    errno = 0;
    int r = pm_mallopt(param, value);
    PMT_REQUIRE(r == want_ret, "pm_mallopt(%d, %d) = %d, expected %d", param, value, r,
                want_ret);
    if (want_ret == 0)
        PMT_REQUIRE(errno == want_errno, "pm_mallopt(%d, %d): errno %d, expected %d", param,
                    value, errno, want_errno);
    return 0;
}

#define EXPECT_MALLOPT(p, v, r, e)              \
    do {                                        \
        if (expect_mallopt((p), (v), (r), (e))) \
            return 1;                           \
    } while (0)

static int child_mallopt_errors(void)
{
    /* Unknown parameters. */
    EXPECT_MALLOPT(12345, 1, 0, EINVAL);
    EXPECT_MALLOPT(1, 1, 0, EINVAL);
    EXPECT_MALLOPT(-5, 1, 0, EINVAL);
    EXPECT_MALLOPT(-7, 1, 0, EINVAL);
    EXPECT_MALLOPT(-99, 1, 0, EINVAL);
    EXPECT_MALLOPT(-200, 1, 0, EINVAL);
    /* Out of range. */
    EXPECT_MALLOPT(PM_ARENA_MAX, 0, 0, ERANGE);
    EXPECT_MALLOPT(PM_ARENA_MAX, -1, 0, ERANGE);
    EXPECT_MALLOPT(PM_MMAP_THRESHOLD, -1, 0, ERANGE);
    EXPECT_MALLOPT(PM_MMAP_THRESHOLD, 64 << 20, 0, ERANGE);
    EXPECT_MALLOPT(PM_TRIM_THRESHOLD, -1, 0, ERANGE);
    EXPECT_MALLOPT(PM_TOP_PAD, -4096, 0, ERANGE);
    EXPECT_MALLOPT(PM_MMAP_MAX, -1, 0, ERANGE);
    EXPECT_MALLOPT(PM_PERTURB, 256, 0, ERANGE);
    EXPECT_MALLOPT(PM_PERTURB, -1, 0, ERANGE);
    EXPECT_MALLOPT(PM_CHECK, 3, 0, ERANGE);
    EXPECT_MALLOPT(PM_CHECK, -1, 0, ERANGE);
    EXPECT_MALLOPT(PM_TCACHE_COUNT, -1, 0, ERANGE);
    EXPECT_MALLOPT(PM_TCACHE_COUNT, 100000, 0, ERANGE);
    EXPECT_MALLOPT(PM_TCACHE_MAX, 1 << 20, 0, ERANGE);
    PMT_REQUIRE_HEAP_OK();
    EXPECT_MALLOPT(PM_DECAY_MS, -1, 0, ERANGE);
    EXPECT_MALLOPT(PM_DECAY_MS, 3600001, 0, ERANGE);
    PMT_REQUIRE_HEAP_OK();
    /* Refused changes must not have been applied: the default threshold
     * (32 MiB) is still in force, so 32 MiB is mmapped, 8 MiB is not. */
    struct pm_mallinfo m0 = pm_mallinfo();
    void *a = pm_malloc(32 * PMT_MIB), *b = pm_malloc(8 * PMT_MIB);
    PMT_REQUIRE(a && b, "allocation failed");
    struct pm_mallinfo m1 = pm_mallinfo();
    PMT_REQUIRE(m1.hblks == m0.hblks + 1, "hblks %zu -> %zu", m0.hblks, m1.hblks);
    pm_free(a);
    pm_free(b);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static int child_mallopt_valid(void)
{
    /* Before any allocation the check level may still change. */
    EXPECT_MALLOPT(PM_CHECK, 1, 1, 0);
    EXPECT_MALLOPT(PM_MMAP_THRESHOLD, 256 * 1024, 1, 0);
    EXPECT_MALLOPT(PM_TRIM_THRESHOLD, 1 << 20, 1, 0);
    EXPECT_MALLOPT(PM_TOP_PAD, 64 * 1024, 1, 0);
    EXPECT_MALLOPT(PM_PERTURB, 0, 1, 0);
    EXPECT_MALLOPT(PM_TCACHE_COUNT, 16, 1, 0);
    EXPECT_MALLOPT(PM_TCACHE_MAX, 4096, 1, 0);
    struct pm_mallinfo m0 = pm_mallinfo();
    void *a = pm_malloc(200 * 1024);
    PMT_REQUIRE(a != NULL, "malloc");
    struct pm_mallinfo m1 = pm_mallinfo();
    /* 200 KiB is now below the threshold: no direct mapping. */
    PMT_REQUIRE(m1.hblks == m0.hblks, "hblks %zu -> %zu", m0.hblks, m1.hblks);
    void *b = pm_malloc(300 * 1024);
    PMT_REQUIRE(b != NULL, "malloc");
    struct pm_mallinfo m2 = pm_mallinfo();
    PMT_REQUIRE(m2.hblks == m1.hblks + 1, "hblks %zu -> %zu", m1.hblks, m2.hblks);
    PMT_REQUIRE(m2.hblkhd >= m1.hblkhd + 300 * 1024, "hblkhd %zu -> %zu", m1.hblkhd,
                m2.hblkhd);
    pm_free(a);
    pm_free(b);
    PMT_REQUIRE_HEAP_OK();
    /* After the first allocation the check level is fixed. */
    EXPECT_MALLOPT(PM_CHECK, 2, 0, EBUSY);
    EXPECT_MALLOPT(PM_CHECK, 0, 0, EBUSY);
    /* Thresholds can still move: lower the mmap threshold to 64 KiB. */
    EXPECT_MALLOPT(PM_MMAP_THRESHOLD, 64 * 1024, 1, 0);
    struct pm_mallinfo m3 = pm_mallinfo();
    void *c = pm_malloc(100 * 1024);
    PMT_REQUIRE(c != NULL, "malloc");
    struct pm_mallinfo m4 = pm_mallinfo();
    PMT_REQUIRE(m4.hblks == m3.hblks + 1, "hblks %zu -> %zu", m3.hblks, m4.hblks);
    pm_free(c);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_mallopt_errors(void **state)
{
    (void)state;
    pmt_run_case_ok("mallopt_errors", NULL, 30);
}

/* A direct mapping is a block too: once one is out (calloc and memalign
 * hand them out without making an arena), the check level and the perturb
 * byte are fixed; once none is left, they may change again. */
static int child_mallopt_after_mapping(void)
{
    void *p = pm_calloc(1, 40 * PMT_MIB), *q = pm_memalign(4096, 40 * PMT_MIB);
    PMT_REQUIRE(p && q, "allocation failed");
    PMT_REQUIRE(pm_mallinfo().narenas == 0, "an arena was made");
    size_t up = pm_malloc_usable_size(p);
    EXPECT_MALLOPT(PM_CHECK, 1, 0, EBUSY);
    EXPECT_MALLOPT(PM_PERTURB, 7, 0, EBUSY);
    PMT_REQUIRE(pm_malloc_usable_size(p) == up, "usable size changed");
    pm_free(p);
    EXPECT_MALLOPT(PM_CHECK, 1, 0, EBUSY);
    pm_free(q);
    /* Nothing is out now, but blocks were: the level stays for good. */
    EXPECT_MALLOPT(PM_CHECK, 1, 0, EBUSY);
    p = pm_calloc(1, 40 * PMT_MIB);
    PMT_REQUIRE(p != NULL, "allocation failed");
    pm_free(p);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_mallopt_after_mapping(void **state)
{
    (void)state;
    pmt_run_case_ok("mallopt_after_mapping", NULL, 30);
}

/* pm_mallopt(PM_CHECK) racing another thread's first allocation (a direct
 * mapping): it was accepted while the block was being laid out for level
 * 0, and the block's valid free then aborted as a heap overflow. Either
 * the change comes first and the block has its canary, or it is refused.
 * Each try is a fresh process. */
enum { FIRST_N = (1 << 20) - 16 };
static int first_go;
static unsigned char *first_blk;

static void *first_alloc_thread(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&first_go, __ATOMIC_ACQUIRE))
        ;
    first_blk = pm_calloc(1, FIRST_N);
    return NULL;
}

static int child_check_vs_first_alloc(void)
{
    for (int t = 0; t < PMT_SCALE(200, 40); t++) {
        pid_t pid = fork();
        PMT_REQUIRE(pid >= 0, "fork");
        if (pid == 0) {
            pm_mallopt(PM_MMAP_THRESHOLD, 128 << 10); /* nothing handed out yet */
            pthread_t th;
            pthread_create(&th, NULL, first_alloc_thread, NULL);
            usleep(50);
            __atomic_store_n(&first_go, 1, __ATOMIC_RELEASE);
            for (volatile int spin = 0; spin < t * 10; spin++)
                ;
            int rc = pm_mallopt(PM_CHECK, 1), err = errno;
            pthread_join(th, NULL);
            if (!first_blk || (rc == 0 && err != EBUSY) ||
                pm_malloc_usable_size(first_blk) < FIRST_N)
                _exit(2);
            memset(first_blk, 7, FIRST_N);
            pm_free(first_blk); /* aborted here */
            _exit(0);
        }
        int st;
        PMT_REQUIRE(waitpid(pid, &st, 0) == pid, "waitpid");
        PMT_REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "try %d: child %s %d", t,
                    WIFSIGNALED(st) ? "killed by signal" : "exited with",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    }
    return 0;
}

static void test_check_vs_first_alloc(void **state)
{
    (void)state;
    pmt_run_case_ok("check_vs_first_alloc", NULL, 60);
}

/* mmap_max under threads that map at once: the bound was tested before the
 * registry's lock, so all of them passed it (5-8 of 8 mappings live with
 * mmap_max 1). The others are served from arenas. */
enum { MAPPERS = 8 };
static pthread_barrier_t mappers_bar;
static void *mapped_blk[MAPPERS];

static void *mapper(void *arg)
{
    intptr_t i = (intptr_t)arg;
    pthread_barrier_wait(&mappers_bar);
    mapped_blk[i] = pm_malloc(1 << 20);
    if (mapped_blk[i])
        memset(mapped_blk[i], 1, 1 << 20);
    pthread_barrier_wait(&mappers_bar);
    return NULL;
}

static int child_mmap_max_threads(void)
{
    size_t worst = 0;
    for (int round = 0; round < PMT_SCALE(200, 40); round++) {
        pthread_t t[MAPPERS];
        pthread_barrier_init(&mappers_bar, NULL, MAPPERS + 1);
        for (intptr_t i = 0; i < MAPPERS; i++)
            PMT_REQUIRE(pthread_create(&t[i], NULL, mapper, (void *)i) == 0, "create");
        pthread_barrier_wait(&mappers_bar);
        pthread_barrier_wait(&mappers_bar); /* every block is live */
        size_t live = pm_mallinfo().hblks;
        if (live > worst)
            worst = live;
        for (int i = 0; i < MAPPERS; i++) {
            pthread_join(t[i], NULL);
            PMT_REQUIRE(mapped_blk[i] != NULL, "malloc");
            pm_free(mapped_blk[i]);
        }
        pthread_barrier_destroy(&mappers_bar);
    }
    PMT_REQUIRE(worst == 1, "mmap_max 1: %zu mappings live at once", worst);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_mmap_max_threads(void **state)
{
    (void)state;
    const char *env[] = { "PM_MMAP_MAX=1", "PM_MMAP_THRESHOLD=128K", NULL };
    pmt_run_case_ok("mmap_max_threads", env, 60);
}

static void test_mallopt_valid(void **state)
{
    (void)state;
    pmt_run_case_ok("mallopt_valid", NULL, 30);
}

/* ---- malloc_trim -------------------------------------------------------- */

enum { TRIM_BLOCK = 16 * 1024, TRIM_COUNT = 2048 }; /* 32 MiB */

/* With trimming on free disabled (1 GiB threshold, no thread cache), 32 MiB
 * freed stays resident until pm_malloc_trim(0) gives it back. */
static int child_trim_releases(void)
{
    static void *blk[TRIM_COUNT];
    size_t rss0 = pmt_rss_bytes();
    for (int i = 0; i < TRIM_COUNT; i++) {
        blk[i] = pm_malloc(TRIM_BLOCK);
        PMT_REQUIRE(blk[i] != NULL, "malloc %d", i);
        memset(blk[i], 0x33, TRIM_BLOCK);
    }
    PMT_REQUIRE_HEAP_OK();
    struct pm_mallinfo m1 = pm_mallinfo();
    size_t rss1 = pmt_rss_bytes();
    PMT_REQUIRE(rss1 >= rss0 + 30 * PMT_MIB, "rss %zu -> %zu", rss0, rss1);
    for (int i = TRIM_COUNT - 1; i >= 0; i--)
        pm_free(blk[i]);
    PMT_REQUIRE_HEAP_OK();
    struct pm_mallinfo m2 = pm_mallinfo();
    size_t rss2 = pmt_rss_bytes();
    PMT_REQUIRE(rss2 + 8 * PMT_MIB >= rss1, "freed memory left before trim: %zu -> %zu",
                rss1, rss2);
    PMT_REQUIRE(m2.arena + 8 * PMT_MIB >= m1.arena, "arena %zu -> %zu before trim", m1.arena,
                m2.arena);
    int r = pm_malloc_trim(0);
    PMT_REQUIRE(r == 1, "pm_malloc_trim(0) = %d after freeing 32 MiB", r);
    PMT_REQUIRE_HEAP_OK();
    struct pm_mallinfo m3 = pm_mallinfo();
    size_t rss3 = pmt_rss_bytes();
    PMT_REQUIRE(rss3 + 24 * PMT_MIB <= rss2, "rss %zu -> %zu after trim", rss2, rss3);
    PMT_REQUIRE(m3.arena + 24 * PMT_MIB <= m2.arena, "arena %zu -> %zu after trim", m2.arena,
                m3.arena);
    /* Memory given back is usable again. */
    void *p = pm_malloc(TRIM_BLOCK);
    PMT_REQUIRE(p != NULL, "malloc after trim");
    memset(p, 1, TRIM_BLOCK);
    pm_free(p);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* pm_malloc_trim flushes the calling thread's cache. */
static int child_trim_flushes_cache(void)
{
    void *p[10];
    for (int i = 0; i < 10; i++) {
        p[i] = pm_malloc(64);
        PMT_REQUIRE(p[i] != NULL, "malloc");
    }
    struct pm_mallinfo m0 = pm_mallinfo();
    for (int i = 0; i < 10; i++)
        pm_free(p[i]);
    struct pm_mallinfo m1 = pm_mallinfo();
    PMT_REQUIRE(m1.smblks >= m0.smblks + 10, "smblks %zu -> %zu", m0.smblks, m1.smblks);
    PMT_REQUIRE(m1.fsmblks >= m0.fsmblks + 640, "fsmblks %zu -> %zu", m0.fsmblks,
                m1.fsmblks);
    PMT_REQUIRE_HEAP_OK();
    pm_malloc_trim(0);
    struct pm_mallinfo m2 = pm_mallinfo();
    PMT_REQUIRE(m2.smblks == 0, "smblks %zu after trim", m2.smblks);
    PMT_REQUIRE(m2.fsmblks == 0, "fsmblks %zu after trim", m2.fsmblks);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* A pad of any size_t keeps every top whole: pads near SIZE_MAX used to
 * wrap the address the purge starts at, zeroing live blocks below the top
 * (or faulting on the arena header). */
static int child_trim_huge_pad(void)
{
    enum { BIG = 100000, SMALL = 3000 };
    char *big = pm_malloc(BIG), *small = pm_malloc(SMALL);
    PMT_REQUIRE(big != NULL && small != NULL, "malloc");
    memset(big, 'A', BIG);
    memset(small, 'B', SMALL);
    /* A pad bigger than any heap, but far from wrapping: flushes the cache
     * and coalesces the stash (the tops may grow), cuts nothing. */
    pm_malloc_trim((size_t)1 << 30);
    struct pm_mallinfo m0 = pm_mallinfo();
    const size_t pads[] = { SIZE_MAX, SIZE_MAX - 50000, SIZE_MAX - 200000, SIZE_MAX / 2,
                            (size_t)1 << 62, (size_t)1 << 47 };
    for (size_t i = 0; i < PMT_ARRAY_LEN(pads); i++) {
        pm_malloc_trim(pads[i]);
        for (size_t j = 0; j < BIG; j++)
            PMT_REQUIRE(big[j] == 'A', "pad %zx: big block byte %zu is %d", pads[i], j, big[j]);
        for (size_t j = 0; j < SMALL; j++)
            PMT_REQUIRE(small[j] == 'B', "pad %zx: small block byte %zu", pads[i], j);
        PMT_REQUIRE_HEAP_OK();
        struct pm_mallinfo m = pm_mallinfo();
        PMT_REQUIRE(m.keepcost == m0.keepcost, "pad %zx: tops %zu -> %zu", pads[i], m0.keepcost,
                    m.keepcost);
    }
    pm_free(big);
    pm_free(small);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* Under an address-space limit (ulimit -v) with room for one 64 MiB heap and
 * not for the 128 MiB mapped to align it: a heap is still had (the aligned
 * place asked for), and a second thread whose own arena finds no room is
 * served by the first. Before, every request failed: ls said "memory
 * exhausted" under ulimit -v 120000, where glibc runs in 20 MB. */
static void *as_limit_thread(void *arg)
{
    (void)arg;
    char *p = pm_malloc(1000);
    if (p)
        memset(p, 7, 1000);
    pm_free(p);
    return p;
}

static int child_address_space_limit(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t vm_kib = 0;
    PMT_REQUIRE(f != NULL, "/proc/self/status");
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &vm_kib) == 1)
            break;
    fclose(f);
    PMT_REQUIRE(vm_kib > 0, "VmSize");
    /* Room for a heap, a thread stack and some more; not for 128 MiB. */
    size_t limit = vm_kib * 1024 + 100 * PMT_MIB;
    struct rlimit rl = { limit, limit };
    PMT_REQUIRE(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit");
    void *p = pm_malloc(100);
    PMT_REQUIRE(p != NULL, "pm_malloc(100) under an address-space limit of VmSize + 100 MiB: %s",
                strerror(errno));
    pthread_t t;
    pthread_attr_t attr;
    void *r = NULL;
    /* A small stack: the default follows ulimit -s, which may not fit. */
    PMT_REQUIRE(pthread_attr_init(&attr) == 0 && pthread_attr_setstacksize(&attr, 256 << 10) == 0,
                "pthread_attr");
    PMT_REQUIRE(pthread_create(&t, &attr, as_limit_thread, NULL) == 0, "pthread_create");
    pthread_attr_destroy(&attr);
    pthread_join(t, &r);
    PMT_REQUIRE(r != NULL, "a second thread's pm_malloc failed");
    pm_free(p);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_address_space_limit(void **state)
{
    (void)state;
    /* Why not under sanitizers: their shadow memory needs terabytes. */
    if (PMT_SANITIZER)
        skip();
    pmt_run_case_ok("address_space_limit", NULL, 60);
}

/* At check level 2 freed blocks wait in a quarantine: free to pm_mallinfo,
 * not in use (uordblks came back 800 KB high after this). */
static int child_quarantine_is_free(void)
{
    enum { N = 8, SIZE = 100000 };
    void *p[N];
    pm_free(pm_malloc(16)); /* the thread's first call sets it up */
    struct pm_mallinfo m0 = pm_mallinfo();
    for (int i = 0; i < N; i++)
        PMT_REQUIRE((p[i] = pm_malloc(SIZE)) != NULL, "malloc %d", i);
    struct pm_mallinfo m1 = pm_mallinfo();
    PMT_REQUIRE(m1.uordblks >= m0.uordblks + N * SIZE, "in use %zu -> %zu", m0.uordblks,
                m1.uordblks);
    for (int i = 0; i < N; i++)
        pm_free(p[i]);
    struct pm_mallinfo m2 = pm_mallinfo();
    PMT_REQUIRE(m2.uordblks == m0.uordblks, "in use %zu -> %zu after freeing all",
                m0.uordblks, m2.uordblks);
    PMT_REQUIRE(m2.fordblks >= m1.fordblks + N * SIZE, "free %zu -> %zu", m1.fordblks,
                m2.fordblks);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_quarantine_is_free(void **state)
{
    (void)state;
    const char *env[] = { "PM_CHECK=2", NULL };
    pmt_run_case_ok("quarantine_is_free", env, 30);
}

static void test_malloc_trim_huge_pad(void **state)
{
    (void)state;
    pmt_run_case_ok("trim_huge_pad", NULL, 30);
}

static void test_malloc_trim_releases(void **state)
{
    (void)state;
    const char *env[] = { "PM_TRIM_THRESHOLD=1G", "PM_TCACHE_COUNT=0", NULL };
    pmt_run_case_ok("trim_releases", env, 60);
}

static void test_malloc_trim_flushes_cache(void **state)
{
    (void)state;
    pmt_run_case_ok("trim_flushes_cache", NULL, 30);
}

/* ---- malloc_stats -------------------------------------------------------- */

#define STATS_THREADS 3
static pthread_barrier_t stats_barrier;

static void *stats_thread(void *arg)
{
    void *p = pm_malloc(1000 + (size_t)(uintptr_t)arg);
    pthread_barrier_wait(&stats_barrier); /* allocated */
    pthread_barrier_wait(&stats_barrier); /* stats printed */
    pm_free(p);
    return NULL;
}

static int child_stats_per_arena(void)
{
    pthread_t t[STATS_THREADS];
    void *mine = pm_malloc(5000);
    void *big = pm_malloc(PMT_MIB);
    void *mapped = pm_malloc(40 * PMT_MIB); /* a direct mapping, made by arena 0's thread */
    PMT_REQUIRE(mine && big && mapped, "malloc");
    pthread_barrier_init(&stats_barrier, NULL, STATS_THREADS + 1);
    for (long i = 0; i < STATS_THREADS; i++)
        pthread_create(&t[i], NULL, stats_thread, (void *)i);
    pthread_barrier_wait(&stats_barrier);
    struct pm_mallinfo mi = pm_mallinfo();
    pmt_capture_t cap;
    PMT_REQUIRE(pmt_capture_begin(&cap) == 0, "capture");
    pm_malloc_stats();
    char *text = pmt_capture_end(&cap);
    size_t text_len = strlen(text); /* the lines are cut apart below */
    pthread_barrier_wait(&stats_barrier);
    for (int i = 0; i < STATS_THREADS; i++)
        pthread_join(t[i], NULL);
    /* Echo for the parent's failure message. */
    fprintf(stderr, "pmt: narenas=%zu, pm_malloc_stats printed:\n%s", mi.narenas, text);
    PMT_REQUIRE(mi.narenas == STATS_THREADS + 1, "narenas %zu", mi.narenas);
    PMT_REQUIRE(strlen(text) > 0, "pm_malloc_stats printed nothing");
    /* One line per arena: count lines mentioning "arena" in any case. */
    size_t lines = 0;
    for (char *l = text; l && *l; ) {
        char *e = strchr(l, '\n');
        if (e)
            *e = '\0';
        if (strcasestr(l, "arena") != NULL)
            lines++;
        l = e ? e + 1 : NULL;
    }
    PMT_REQUIRE(lines >= mi.narenas, "%zu arena lines for %zu arenas", lines, mi.narenas);
    /* The mapping shows on arena 0's line, and on no other; the total line
     * adds up the arena lines. */
    size_t total = 0, n0 = 0, nmaps = 0, heaps = 0, heap_total = 0, free_sum = 0, free_total = 1;
    for (char *l = text; l < text + text_len; l += strlen(l) + 1) {
        const char *m;
        size_t bytes, count, heap, fr;
        if (sscanf(l, "pmalloc: total: arenas %*u, heap %zu, in use %*u (cached %*u in %*u "
                      "blocks), free %zu", &heap_total, &free_total) == 2)
            continue;
        if (strncmp(l, "pmalloc: arena ", 15) == 0 && (m = strstr(l, " heap ")) &&
            sscanf(m, " heap %zu", &heap) == 1 && (m = strstr(l, " free ")) &&
            sscanf(m, " free %zu", &fr) == 1) {
            heaps += heap;
            free_sum += fr;
        }
        m = strstr(l, " mmapped ");
        if (m && sscanf(m, " mmapped %zu mappings %zu", &bytes, &count) == 2) {
            total += bytes;
            nmaps += count;
            if (strncmp(l, "pmalloc: arena 0:", 17) == 0)
                n0 = bytes;
        }
    }
    PMT_REQUIRE(n0 >= 40 * PMT_MIB && total == n0 && nmaps == 1 && mi.hblkhd == n0,
                "arena 0 mmapped %zu, all lines %zu in %zu, hblkhd %zu", n0, total, nmaps,
                mi.hblkhd);
    PMT_REQUIRE(heaps > 0 && heaps == heap_total && free_sum == free_total,
                "arena lines: heap %zu, free %zu; total line: heap %zu, free %zu", heaps,
                free_sum, heap_total, free_total);
    free(text);
    pm_free(mapped);
    pm_free(mine);
    pm_free(big);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_malloc_stats(void **state)
{
    (void)state;
    pmt_run_case_ok("stats_per_arena", NULL, 30);
}

/* ---- pm_init ------------------------------------------------------------- */

#define INIT_THREADS 8
static pthread_barrier_t init_barrier;

static void *init_thread(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&init_barrier);
    int r = pm_init();
    void *p = pm_malloc(100);
    if (p != NULL)
        memset(p, 1, 100);
    pm_free(p);
    return (void *)(intptr_t)(r == 0 && p != NULL ? 0 : 1);
}

/* Fresh process: many threads race to initialise. */
static int child_init_race(void)
{
    pthread_t t[INIT_THREADS];
    pthread_barrier_init(&init_barrier, NULL, INIT_THREADS);
    for (int i = 0; i < INIT_THREADS; i++)
        pthread_create(&t[i], NULL, init_thread, NULL);
    int bad = 0;
    for (int i = 0; i < INIT_THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += r != NULL;
    }
    PMT_REQUIRE(bad == 0, "%d threads failed pm_init/pm_malloc", bad);
    PMT_REQUIRE(pm_init() == 0, "pm_init");
    PMT_REQUIRE(pm_mallinfo().narenas >= 1, "no arena");
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_init_idempotent(void **state)
{
    (void)state;
    assert_int_equal(pm_init(), 0);
    void *p = pm_malloc(10);
    assert_non_null(p);
    assert_int_equal(pm_init(), 0);
    assert_int_equal(pm_init(), 0);
    HEAP_OK();
    pm_free(p);
    HEAP_OK();
    pmt_run_case_ok("init_race", NULL, 30);
}

/* ---- mallinfo ------------------------------------------------------------ */

static void *mallinfo_thread(void *arg)
{
    void *p = pm_malloc(100);
    *(struct pm_mallinfo *)arg = pm_mallinfo();
    pm_free(p);
    return NULL;
}

/* One pm_malloc(16) in a fresh process: the program holds one small chunk
 * (not the thread cache, ~26 KiB, which is overhead), and the heap adds up
 * as glibc's: arena == uordblks + fordblks + overhead; parked blocks are
 * free. */
static int child_mallinfo_sums(void)
{
    void *p = pm_malloc(16);
    PMT_REQUIRE(p != NULL, "malloc");
    struct pm_mallinfo m = pm_mallinfo();
    PMT_REQUIRE(m.uordblks >= 16 && m.uordblks <= 64, "uordblks %zu after pm_malloc(16)",
                m.uordblks);
    PMT_REQUIRE(m.overhead >= 16 * 1024, "overhead %zu: no thread cache?", m.overhead);
    PMT_REQUIRE(m.arena == m.uordblks + m.fordblks + m.overhead,
                "arena %zu != uordblks %zu + fordblks %zu + overhead %zu", m.arena, m.uordblks,
                m.fordblks, m.overhead);
    pm_free(p);
    m = pm_mallinfo();
    PMT_REQUIRE(m.uordblks == 0, "uordblks %zu after freeing all", m.uordblks);
    PMT_REQUIRE(m.fsmblks > 0 && m.fsmblks <= m.fordblks, "fsmblks %zu, fordblks %zu",
                m.fsmblks, m.fordblks);
    PMT_REQUIRE(m.arena == m.uordblks + m.fordblks + m.overhead,
                "after free: arena %zu != uordblks %zu + fordblks %zu + overhead %zu", m.arena,
                m.uordblks, m.fordblks, m.overhead);
    return 0;
}

static void test_mallinfo_sums(void **state)
{
    (void)state;
    pmt_run_case_ok("mallinfo_sums", NULL, 30);
}

static int child_mallinfo_moves(void)
{
    struct pm_mallinfo m0 = pm_mallinfo();
    void *first = pm_malloc(100);
    PMT_REQUIRE(first != NULL, "malloc");
    struct pm_mallinfo m1 = pm_mallinfo();
    PMT_REQUIRE(m1.narenas == 1, "narenas %zu in a one-thread process", m1.narenas);
    PMT_REQUIRE(m1.arena > 0, "arena 0 after an allocation");
    PMT_REQUIRE(m1.uordblks >= m0.uordblks + 100, "uordblks %zu -> %zu", m0.uordblks,
                m1.uordblks);
    PMT_REQUIRE(m1.keepcost <= m1.fordblks, "keepcost %zu > fordblks %zu", m1.keepcost,
                m1.fordblks);
    PMT_REQUIRE(m1.usmblks >= m1.arena + m1.hblkhd, "usmblks %zu < arena %zu + hblkhd %zu",
                m1.usmblks, m1.arena, m1.hblkhd);

    /* Direct mapping: hblks +1, hblkhd +size, both back after free. */
    void *big = pm_malloc(32 * PMT_MIB);
    PMT_REQUIRE(big != NULL, "malloc 32 MiB");
    struct pm_mallinfo m2 = pm_mallinfo();
    PMT_REQUIRE(m2.hblks == m1.hblks + 1, "hblks %zu -> %zu", m1.hblks, m2.hblks);
    PMT_REQUIRE(m2.hblkhd >= m1.hblkhd + 32 * PMT_MIB, "hblkhd %zu -> %zu", m1.hblkhd,
                m2.hblkhd);
    PMT_REQUIRE(m2.usmblks >= m2.arena + m2.hblkhd, "usmblks %zu < arena+hblkhd %zu",
                m2.usmblks, m2.arena + m2.hblkhd);
    pm_free(big);
    struct pm_mallinfo m3 = pm_mallinfo();
    PMT_REQUIRE(m3.hblks == m1.hblks, "hblks %zu after free", m3.hblks);
    PMT_REQUIRE(m3.hblkhd == m1.hblkhd, "hblkhd %zu after free", m3.hblkhd);
    PMT_REQUIRE(m3.usmblks >= m2.usmblks, "peak fell %zu -> %zu", m2.usmblks, m3.usmblks);
    PMT_REQUIRE_HEAP_OK();

    /* In-use bytes for a block the thread cache does not take (above its
     * largest class, below the mmap threshold). */
    void *mid = pm_malloc(100000);
    PMT_REQUIRE(mid != NULL, "malloc 100000");
    struct pm_mallinfo m4 = pm_mallinfo();
    PMT_REQUIRE(m4.uordblks >= m3.uordblks + 100000, "uordblks %zu -> %zu", m3.uordblks,
                m4.uordblks);
    PMT_REQUIRE(m4.hblks == m3.hblks, "100000 B was mmapped");
    pm_free(mid);
    struct pm_mallinfo m5 = pm_mallinfo();
    PMT_REQUIRE(m5.uordblks + 100000 <= m4.uordblks, "uordblks %zu -> %zu after free",
                m4.uordblks, m5.uordblks);
    /* Freed bytes are free in the heap (bins or top) unless trimmed away:
     * what fordblks gained plus what arena lost covers the block. */
    PMT_REQUIRE(m5.fordblks + m4.arena >= m4.fordblks + m5.arena + 100000,
                "fordblks %zu -> %zu, arena %zu -> %zu after free", m4.fordblks, m5.fordblks,
                m4.arena, m5.arena);
    PMT_REQUIRE_HEAP_OK();

    /* A small block freed goes to the thread cache. */
    void *small = pm_malloc(48);
    PMT_REQUIRE(small != NULL, "malloc 48");
    struct pm_mallinfo m6 = pm_mallinfo();
    pm_free(small);
    struct pm_mallinfo m7 = pm_mallinfo();
    PMT_REQUIRE(m7.smblks == m6.smblks + 1, "smblks %zu -> %zu", m6.smblks, m7.smblks);
    PMT_REQUIRE(m7.fsmblks >= m6.fsmblks + 48, "fsmblks %zu -> %zu", m6.fsmblks, m7.fsmblks);

    /* A second thread's first allocation creates a second arena. */
    struct pm_mallinfo in_thread;
    pthread_t t;
    pthread_create(&t, NULL, mallinfo_thread, &in_thread);
    pthread_join(t, NULL);
    PMT_REQUIRE(in_thread.narenas == 2, "narenas %zu with two threads", in_thread.narenas);
    PMT_REQUIRE(pm_mallinfo().narenas == 2, "narenas %zu after the thread",
                pm_mallinfo().narenas);
    pm_free(first);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_mallinfo_moves(void **state)
{
    (void)state;
    pmt_run_case_ok("mallinfo_moves", NULL, 30);
}

/* With the address space capped, the arenas fill and cannot add a heap (a
 * 64 MiB reservation); a block then comes from a direct mapping though it is
 * under the threshold. At PM_CHECK=1 it must carry its canary like any
 * other, or its free reports an overflow that never happened. */
static int child_mapping_fallback(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    PMT_REQUIRE(f && fscanf(f, "%lu", &pages) == 1, "statm");
    fclose(f);
    struct rlimit rl = { .rlim_cur = pages * 4096 + 512 * PMT_MIB,
                         .rlim_max = pages * 4096 + 512 * PMT_MIB };
    PMT_REQUIRE(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit");
    static void *b[64];
    int n = 0;
    while (n < 64 && (b[n] = pm_malloc(20 * PMT_MIB)) != NULL)
        n++;
    PMT_REQUIRE(n >= 2 && n < 64, "%d blocks of 20 MiB under a 512 MiB cap", n);
    pm_free(b[--n]);
    pm_free(b[--n]); /* 40 MiB of room: no heap fits, a mapping does */
    char *p = pm_malloc(10 * PMT_MIB);
    PMT_REQUIRE(p != NULL, "10 MiB with 40 MiB of room");
    memset(p, 0x3d, pm_malloc_usable_size(p));
    pm_free(p);
    while (n > 0)
        pm_free(b[--n]);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* The library loaded is the one these headers come with; the string is
 * the three numbers. */
static void test_version(void **state)
{
    (void)state;
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", PM_VERSION_MAJOR, PM_VERSION_MINOR,
             PM_VERSION_PATCH);
    assert_string_equal(PM_VERSION_STRING, want);
    assert_string_equal(pm_version(), PM_VERSION_STRING);
}

static void test_mapping_fallback(void **state)
{
    (void)state;
    if (PMT_SANITIZER)
        skip(); /* the sanitizers' shadow memory does not fit under the cap */
    const char *l1[] = { "PM_CHECK=1", NULL };
    pmt_run_case_ok("mapping_fallback", NULL, 30);
    pmt_run_case_ok("mapping_fallback", l1, 30);
}

/* usmblks is the peak of arena + hblkhd, also of peaks no pm_mallinfo saw:
 * a mapping and a heap grown and given back before the first call. */
static int child_mallinfo_peak(void)
{
    void *m = pm_malloc(40 * PMT_MIB), *h = pm_malloc(20 * PMT_MIB);
    PMT_REQUIRE(m && h, "malloc");
    pm_free(m);
    pm_free(h);
    PMT_REQUIRE(pm_malloc_trim(0) == 1, "pm_malloc_trim gave nothing back");
    struct pm_mallinfo mi = pm_mallinfo();
    PMT_REQUIRE(mi.hblkhd == 0 && mi.arena < 20 * PMT_MIB, "arena %zu, hblkhd %zu", mi.arena,
                mi.hblkhd);
    PMT_REQUIRE(mi.usmblks >= 60 * PMT_MIB, "usmblks %zu, not the peak", mi.usmblks);
    return 0;
}

static void test_mallinfo_peak(void **state)
{
    (void)state;
    pmt_run_case_ok("mallinfo_peak", NULL, 30);
}

/* Blocks freed by a thread that lives on (and frees nothing more) go back
 * to their arena, but for a bounded remainder: 64 KiB and one block. */
enum { RF_N = 60, RF_SIZE = 30000 };
static void *rf_blocks[RF_N];
static pthread_barrier_t rf_barrier;

static void *remote_freer(void *arg)
{
    (void)arg;
    pm_free(pm_malloc(16)); /* an arena and a cache of its own */
    for (int i = 0; i < RF_N; i++)
        pm_free(rf_blocks[i]);
    pthread_barrier_wait(&rf_barrier); /* freed; main looks now */
    pthread_barrier_wait(&rf_barrier);
    return NULL;
}

static int child_remote_frees_return(void)
{
    pthread_barrier_init(&rf_barrier, NULL, 2);
    for (int i = 0; i < RF_N; i++) {
        rf_blocks[i] = pm_malloc(RF_SIZE);
        PMT_REQUIRE(rf_blocks[i] != NULL, "malloc");
        memset(rf_blocks[i], 0x6b, RF_SIZE);
    }
    size_t used = pm_mallinfo().uordblks;
    pthread_t t;
    PMT_REQUIRE(pthread_create(&t, NULL, remote_freer, NULL) == 0, "pthread_create");
    pthread_barrier_wait(&rf_barrier);
    size_t after = pm_mallinfo().uordblks;
    pthread_barrier_wait(&rf_barrier);
    pthread_join(t, NULL);
    PMT_REQUIRE(after + RF_N * RF_SIZE <= used + 64 * 1024 + 2 * RF_SIZE,
                "uordblks %zu -> %zu: the freed blocks stayed with the other thread", used,
                after);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_remote_frees_return(void **state)
{
    (void)state;
    pmt_run_case_ok("remote_frees_return", NULL, 30);
}

/* A thread that frees many big blocks and exits: its arena gets no later
 * call, yet all of their pages go back, not one sweep's batch (64 runs) of
 * them: within a few decay periods on the purger's time, or at the exit
 * without a purger (PM_BACKGROUND_THREAD=0). */
enum { IR_N = 200, IR_SIZE = 80 * 1024 };
static void *ir_block[IR_N], *ir_guard[IR_N];
static pthread_barrier_t ir_bar;

static void *idle_freer(void *arg)
{
    (void)arg;
    for (int i = 0; i < IR_N; i++) {
        ir_block[i] = pm_malloc(IR_SIZE);
        ir_guard[i] = pm_malloc(IR_SIZE); /* keeps each block a run of its own */
        if (ir_block[i])
            memset(ir_block[i], 0x4d, IR_SIZE);
    }
    pthread_barrier_wait(&ir_bar); /* main reads RSS */
    pthread_barrier_wait(&ir_bar);
    for (int i = 0; i < IR_N; i++)
        pm_free(ir_block[i]);
    return NULL;
}

static int child_idle_arena_gives_all_back(void)
{
    pthread_barrier_init(&ir_bar, NULL, 2);
    pthread_t t;
    PMT_REQUIRE(pthread_create(&t, NULL, idle_freer, NULL) == 0, "pthread_create");
    pthread_barrier_wait(&ir_bar);
    size_t before = pmt_rss_bytes();
    pthread_barrier_wait(&ir_bar);
    pthread_join(t, NULL);
    size_t want = before - (size_t)IR_N * IR_SIZE * 3 / 4;
    size_t after = getenv("PMT_AT_EXIT") ? pmt_rss_bytes() : pmt_rss_wait_below(want, 3000);
    for (int i = 0; i < IR_N; i++)
        PMT_REQUIRE(ir_block[i] && ir_guard[i], "malloc");
    PMT_REQUIRE(before > after && before - after >= (size_t)IR_N * IR_SIZE * 3 / 4,
                "RSS %zu -> %zu KiB after the thread freed %d KiB and exited", before >> 10,
                after >> 10, IR_N * IR_SIZE >> 10);
    for (int i = 0; i < IR_N; i++)
        pm_free(ir_guard[i]);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

static void test_idle_arena_gives_all_back(void **state)
{
    (void)state;
    const char *no_purger[] = { "PM_BACKGROUND_THREAD=0", "PMT_AT_EXIT=1", NULL };
    pmt_run_case_ok("idle_arena_gives_all_back", NULL, 30);
    pmt_run_case_ok("idle_arena_gives_all_back", no_purger, 30);
}

static const pmt_case_t cases[] = {
    { "calloc_recycled", child_calloc_recycled },
    { "calloc_locked_recycled", child_calloc_locked_recycled },
    { "calloc_locked_top", child_calloc_locked_top },
    { "calloc_locked_retrim", child_calloc_locked_retrim },
    { "mallopt_errors", child_mallopt_errors },
    { "mallopt_valid", child_mallopt_valid },
    { "mallopt_after_mapping", child_mallopt_after_mapping },
    { "check_vs_first_alloc", child_check_vs_first_alloc },
    { "mmap_max_threads", child_mmap_max_threads },
    { "trim_releases", child_trim_releases },
    { "trim_flushes_cache", child_trim_flushes_cache },
    { "trim_huge_pad", child_trim_huge_pad },
    { "address_space_limit", child_address_space_limit },
    { "quarantine_is_free", child_quarantine_is_free },
    { "stats_per_arena", child_stats_per_arena },
    { "init_race", child_init_race },
    { "mallinfo_moves", child_mallinfo_moves },
    { "mallinfo_sums", child_mallinfo_sums },
    { "remote_frees_return", child_remote_frees_return },
    { "idle_arena_gives_all_back", child_idle_arena_gives_all_back },
    { "mallinfo_peak", child_mallinfo_peak },
    { "mapping_fallback", child_mapping_fallback },
};

int main(int argc, char **argv)
{
    pmt_child_dispatch(argc, argv, cases, PMT_ARRAY_LEN(cases));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malloc_zero),
        cmocka_unit_test(test_malloc_alignment_and_usable),
        cmocka_unit_test(test_malloc_many_sizes_live),
        cmocka_unit_test(test_malloc_impossible_sizes),
        cmocka_unit_test(test_malloc_beyond_machine),
        cmocka_unit_test(test_address_space_limit),
        cmocka_unit_test(test_free_null),
        cmocka_unit_test(test_calloc_overflow),
        cmocka_unit_test(test_calloc_zero_counts),
        cmocka_unit_test(test_calloc_zeroes_reused_memory),
        cmocka_unit_test(test_calloc_recycled),
        cmocka_unit_test(test_calloc_locked_pages),
        cmocka_unit_test(test_realloc_null_is_malloc),
        cmocka_unit_test(test_realloc_zero_frees),
        cmocka_unit_test(test_realloc_grow_shrink_preserves),
        cmocka_unit_test(test_realloc_failure_keeps_block),
        cmocka_unit_test(test_realloc_of_aligned_block),
        cmocka_unit_test(test_memalign_alignments),
        cmocka_unit_test(test_memalign_near_threshold),
        cmocka_unit_test(test_memalign_mixed_live),
        cmocka_unit_test(test_memalign_invalid),
        cmocka_unit_test(test_memalign_overflow),
        cmocka_unit_test(test_usable_size_is_usable),
        cmocka_unit_test(test_mallopt_errors),
        cmocka_unit_test(test_mallopt_valid),
        cmocka_unit_test(test_mallopt_after_mapping),
        cmocka_unit_test(test_check_vs_first_alloc),
        cmocka_unit_test(test_mmap_max_threads),
        cmocka_unit_test(test_malloc_trim_releases),
        cmocka_unit_test(test_malloc_trim_flushes_cache),
        cmocka_unit_test(test_malloc_trim_huge_pad),
        cmocka_unit_test(test_quarantine_is_free),
        cmocka_unit_test(test_malloc_stats),
        cmocka_unit_test(test_init_idempotent),
        cmocka_unit_test(test_mallinfo_moves),
        cmocka_unit_test(test_remote_frees_return),
        cmocka_unit_test(test_idle_arena_gives_all_back),
        cmocka_unit_test(test_mallinfo_peak),
        cmocka_unit_test(test_mapping_fallback),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_mallinfo_sums),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
