/* SPDX-License-Identifier: MIT */
/*
 * test_integrity.c - heap-integrity checks (issue 4): every misuse the core
 * promises to catch must end the process with SIGABRT (not SIGSEGV, not a
 * clean exit) after one "pmalloc: CALL(0xADDR): PROBLEM" line on stderr.
 *
 * Each case runs in a re-executed child (tests/common.h: pmt_spawn) with its
 * settings (PM_CHECK, PM_TCACHE_COUNT) and parameters (PMT_SIZE, PMT_OFFSET,
 * PMT_OVER, PMT_MODE, PMT_CALL) in the environment; the parent checks the signal and
 * that stderr holds "pmalloc" and the problem text from core-contract.md.
 *
 * Correspondence with GrapheneOS hardened_malloc's test/ programs:
 *
 *   hardened_malloc test                 | here
 *   -------------------------------------+-----------------------------------------
 *   double_free_small                    | double_free_small[_notcache]
 *   double_free_small_delayed            | double_free_small_delayed
 *   double_free_large                    | double_free_mmap[_notcache]
 *   double_free_large_delayed            | double_free_mmap_delayed
 *   (none: medium blocks)                | double_free_medium[_notcache]
 *   (none: threads)                      | double_free_threads_{exited,alive}_*
 *   (none: a block merged into top)      | double_free_top_*, *_freed_top_*
 *   invalid_free_protected               | invalid_free_protected
 *   invalid_free_unprotected             | invalid_free_unprotected
 *   invalid_free_small_region            | invalid_free_small_region (p + 16 KiB)
 *   invalid_free_small_region_far        | (none: pmalloc has no size-class regions)
 *   unaligned_free_small                 | invalid_free_small_plus8 / _plus16
 *   unaligned_free_large                 | invalid_free_mmap_plus8 / _plus16 / _plus64k
 *   uninitialized_free                   | invalid_free_wild ((void *)1), _page (0x1000),
 *                                        | _high (0x7ffffffff000): never mapped
 *   (none: stack / static objects)       | invalid_free_stack, invalid_free_static
 *   uninitialized_realloc                | realloc_freed_* ("pointer already freed")
 *   invalid_malloc_usable_size_small     | usable_size_freed_*
 *   invalid_malloc_usable_size_small_quarantine | usable_size_freed_small
 *   unaligned_malloc_usable_size_small   | (none: usable_size of p+8 is not promised)
 *   overflow_small_1_byte                | overflow_small_1_l0 / _l1
 *   overflow_small_8_byte                | overflow_small_8_l0 / _l1
 *   eight_byte_overflow_small            | overflow_small_8_l0 / _l1
 *   overflow_large_1_byte / _8_byte      | overflow_medium_{1,8}_l0 / _l1 (4000 B)
 *   eight_byte_overflow_large            | overflow_medium_8_l0 / _l1
 *   (none: 32-byte overflow)             | overflow_*_32_*
 *   string_overflow                      | (none: no NUL byte is promised after the end)
 *   write_after_free_small               | write_after_free_small_l1, _small_start_l1
 *   write_after_free_small_reuse         | write_after_free_small_l1 (reuse triggers it)
 *   write_after_free_large[_reuse]       | (none: an unmapped block faults, no check)
 *   read_after_free_small                | read_after_free_small_l1 (free fill, no abort)
 *   read_after_free_large                | (none: unmapped, a read faults)
 *   (none: free-list link damage)        | corrupted_free_list_{200,40k}
 *   (none: top chunk damage)             | corrupted_top[_1, _notcache]
 *   delete_type_size_mismatch            | (none: C API, no sized delete)
 *   read_zero_size / write_zero_size     | (none: malloc(0) has 16 usable bytes)
 *   uninitialized_read_small / _large    | (none: not a misuse pmalloc can see)
 *   invalid_malloc_object_size_*,
 *   malloc_object_size[_offset]          | (none: no malloc_object_size)
 *   impossibly_large_malloc              | test_api.c test_malloc_impossible_sizes
 *   canary_leak                          | (none)
 */
#define _GNU_SOURCE
#include "../common.h"

#include <pthread.h>

/* ---- helpers inside children --------------------------------------------- */

static const char *env_str(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* ---- double free --------------------------------------------------------- */

static int child_double_free(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 32);
    /* Neighbours stay allocated so that the freed block cannot merge away. */
    void *g0 = pm_malloc(n);
    unsigned char *p = pm_malloc(n);
    void *g1 = pm_malloc(n);
    PMT_REQUIRE(g0 && p && g1, "malloc");
    memset(p, 0x33, n);
    pm_free(p);
    pmt_sink(p);
    pm_free(p);
    return pmt_survived("second pm_free");
}

static int child_double_free_delayed(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 32);
    void *g0 = pm_malloc(n), *p = pm_malloc(n), *g1 = pm_malloc(n), *q = pm_malloc(n);
    void *g2 = pm_malloc(n);
    PMT_REQUIRE(g0 && p && g1 && q && g2, "malloc");
    pm_free(p);
    pm_free(q); /* p is no longer the most recently freed block */
    pmt_sink(p);
    pm_free(p);
    return pmt_survived("second pm_free");
}

/* The freed block is the last one carved: it merges into the top chunk, and
 * a second free, a realloc or a usable-size query of it (PMT_CALL) must still
 * be told apart from a pointer that was never handed out. */
static int child_freed_into_top(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 32);
    const char *call = getenv("PMT_CALL");
    void *g0 = pm_malloc(n), *p = pm_malloc(n);
    PMT_REQUIRE(g0 && p, "malloc");
    pm_free(p);
    pmt_sink(p);
    if (call && strcmp(call, "realloc") == 0)
        pmt_sink(pm_realloc(p, n * 2));
    else if (call && strcmp(call, "usable") == 0)
        fprintf(stderr, "pmt: usable size %zu\n", pm_malloc_usable_size(p));
    else
        pm_free(p);
    return pmt_survived(call ? call : "second pm_free");
}

static pthread_barrier_t df_barrier;
static void *df_block;

static void *df_free_and_exit(void *arg)
{
    (void)arg;
    pm_free(df_block);
    return NULL;
}

static void *df_free_and_wait(void *arg)
{
    (void)arg;
    pm_free(df_block);
    pthread_barrier_wait(&df_barrier); /* freed */
    pthread_barrier_wait(&df_barrier); /* never reached if B aborts */
    return NULL;
}

static void *df_free_again(void *arg)
{
    (void)arg;
    pm_free(df_block);
    return NULL;
}

/* Freed in thread A, then again in thread B; A has exited (its cache was
 * flushed) or is still alive (the block may sit in A's cache). */
static int child_double_free_threads(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 32);
    int alive = strcmp(env_str("PMT_MODE", "exited"), "alive") == 0;
    void *g0 = pm_malloc(n);
    df_block = pm_malloc(n);
    void *g1 = pm_malloc(n);
    PMT_REQUIRE(g0 && df_block && g1, "malloc");
    pthread_t a, b;
    if (alive) {
        pthread_barrier_init(&df_barrier, NULL, 2);
        pthread_create(&a, NULL, df_free_and_wait, NULL);
        pthread_barrier_wait(&df_barrier);
    } else {
        pthread_create(&a, NULL, df_free_and_exit, NULL);
        pthread_join(a, NULL);
    }
    pthread_create(&b, NULL, df_free_again, NULL);
    pthread_join(b, NULL);
    if (alive) {
        pthread_barrier_wait(&df_barrier);
        pthread_join(a, NULL);
    }
    return pmt_survived("pm_free in the second thread");
}

/* ---- invalid pointers ---------------------------------------------------- */

static int child_free_offset(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 64), off = pmt_env_size("PMT_OFFSET", 16);
    unsigned char *p = pm_malloc(n);
    PMT_REQUIRE(p != NULL, "malloc");
    memset(p, 0, n);
    pm_free(p + off);
    return pmt_survived("pm_free(p + offset)");
}

/* A pointer well inside a run of small blocks, never a block start. */
static int child_free_small_region(void)
{
    enum { N = 64, SZ = 1000 };
    unsigned char *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = pm_malloc(SZ);
        PMT_REQUIRE(b[i] != NULL, "malloc");
        memset(b[i], 0, SZ);
    }
    unsigned char *target = b[0] + 4096 * 4;
    for (int again = 1; again;) {
        again = 0;
        for (int i = 0; i < N; i++)
            if (target == b[i]) {
                target += 16;
                again = 1;
            }
    }
    pm_free(target);
    return pmt_survived("pm_free(p + 16 KiB)");
}

static int child_free_stack(void)
{
    unsigned char buf[1024] __attribute__((aligned(64)));
    memset(buf, 0, sizeof buf);
    pm_free(pm_malloc(16));
    pmt_sink(buf);
    pm_free(buf + 512);
    return pmt_survived("pm_free(stack)");
}

static unsigned char static_area[8192] __attribute__((aligned(4096)));

static int child_free_static(void)
{
    pm_free(pm_malloc(16));
    pmt_sink(static_area);
    pm_free(static_area + 4096);
    return pmt_survived("pm_free(static)");
}

static int child_free_own_mapping(void)
{
    int prot = strcmp(env_str("PMT_MODE", "rw"), "none") == 0 ? PROT_NONE
                                                                 : PROT_READ | PROT_WRITE;
    unsigned char *m = mmap(NULL, 64 * 1024, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    PMT_REQUIRE(m != MAP_FAILED, "mmap");
    pm_free(pm_malloc(16));
    pm_free(m + 32 * 1024);
    return pmt_survived("pm_free(own mapping)");
}

static int child_free_wild(void)
{
    pm_free(pm_malloc(16));
    pm_free((void *)(uintptr_t)pmt_env_size("PMT_OFFSET", 1));
    return pmt_survived("pm_free(wild)");
}

/* ---- use of freed blocks -------------------------------------------------- */

static int child_realloc_freed(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 32);
    void *g0 = pm_malloc(n), *p = pm_malloc(n), *g1 = pm_malloc(n);
    PMT_REQUIRE(g0 && p && g1, "malloc");
    pm_free(p);
    pmt_sink(p);
    void *q = pm_realloc(p, n * 2);
    pmt_sink(q);
    return pmt_survived("pm_realloc(freed)");
}

static int child_usable_size_freed(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 32);
    void *g0 = pm_malloc(n), *p = pm_malloc(n), *g1 = pm_malloc(n);
    PMT_REQUIRE(g0 && p && g1, "malloc");
    pm_free(p);
    pmt_sink(p);
    size_t u = pm_malloc_usable_size(p);
    fprintf(stderr, "pmt: usable size of a freed block: %zu\n", u);
    return pmt_survived("pm_malloc_usable_size(freed)");
}

/* ---- overflows and damage -------------------------------------------------- */

/* Eight adjacent blocks of one size; block 3 written PMT_OVER bytes past its
 * usable end; then block 3 and its neighbour 4 are freed. */
static int child_overflow(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 32), over = pmt_env_size("PMT_OVER", 1);
    unsigned char *b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = pm_malloc(n);
        PMT_REQUIRE(b[i] != NULL, "malloc");
        memset(b[i], 0x20 + i, n);
    }
    size_t u = pm_malloc_usable_size(b[3]);
    PMT_REQUIRE(u >= n, "usable %zu < %zu", u, n);
    pmt_scribble(b[3] + u, over);
    pm_free(b[3]);
    pm_free(b[4]);
    for (int i = 0; i < 8; i++)
        if (i != 3 && i != 4)
            pm_free(b[i]);
    return pmt_survived("free after overflow");
}

static int child_write_after_free(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 128), off = pmt_env_size("PMT_OFFSET", 64);
    void *g0 = pm_malloc(n);
    unsigned char *p = pm_malloc(n);
    void *g1 = pm_malloc(n);
    PMT_REQUIRE(g0 && p && g1 && off + 8 <= n, "malloc");
    memset(p, 0x10, n);
    pm_free(p);
    pmt_scribble(p + off, 8);
    for (int i = 0; i < 8; i++)
        pmt_sink(pm_malloc(n));
    return pmt_survived("allocation after a write after free");
}

/* Level 1 fills freed blocks: the old contents cannot be read back. */
static int child_read_after_free(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 256);
    void *g0 = pm_malloc(n);
    unsigned char *p = pm_malloc(n);
    void *g1 = pm_malloc(n);
    PMT_REQUIRE(g0 && p && g1, "malloc");
    pmt_fill(p, n, 42, 42);
    pm_free(p);
    pmt_sink(p);
    size_t same = 0;
    const unsigned char *c = p;
    uint64_t base = pmt_mix(42 ^ (42 * 0x100000001B3ull));
    for (size_t i = 32; i < n; i++)
        same += c[i] == pmt_pattern_byte(base, i);
    PMT_REQUIRE(same <= 16, "%zu of %zu old bytes still readable after free", same, n - 32);
    return 0;
}

/* Free several blocks of one size (separated by live guards), smash the
 * first 16 bytes (the free-list links) of one, then allocate that size. */
static int child_corrupt_free_list(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 200);
    enum { K = 6 };
    unsigned char *a[K];
    void *g[K];
    for (int i = 0; i < K; i++) {
        a[i] = pm_malloc(n);
        g[i] = pm_malloc(n);
        PMT_REQUIRE(a[i] && g[i], "malloc");
    }
    for (int i = 0; i < K; i++)
        pm_free(a[i]);
    memset(a[2], 0x41, 16);
    for (int i = 0; i < 2 * K; i++)
        pmt_sink(pm_malloc(n));
    return pmt_survived("allocations from a corrupted free list");
}

/* Damage the header of the top chunk right after the last block. The block
 * is above the thread-cache classes, so it is carved from the top and the top
 * follows it (small requests may refill the cache in bulk instead). */
static int child_corrupt_top(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 100000);
    unsigned char *p = pm_malloc(n);
    PMT_REQUIRE(p != NULL, "malloc");
    size_t u = pm_malloc_usable_size(p);
    pmt_scribble(p + u, pmt_env_size("PMT_OVER", 8));
    for (int i = 0; i < 4; i++)
        pmt_sink(pm_malloc(n));
    return pmt_survived("allocation from a corrupted top");
}

/* ---- issue 17: misuse that used to get through ---------------------------- */

/* A direct mapping (64 MiB) whose head is zeroed, then PMT_CALL on it: it
 * used to crash (SIGSEGV or SIGBUS) or say "canary overwritten". */
static int child_mmap_head(void)
{
    const char *call = env_str("PMT_CALL", "free");
    size_t n = (size_t)64 << 20;
    unsigned char *p = strcmp(call, "memalign") == 0 ? pm_memalign(4096, n) : pm_malloc(n);
    PMT_REQUIRE(p != NULL, "malloc");
    p[-8] = (unsigned char)pmt_env_size("PMT_OVER", 0);
    if (strcmp(call, "realloc") == 0)
        pmt_sink(pm_realloc(p, n / 2));
    else if (strcmp(call, "usable") == 0)
        fprintf(stderr, "pmt: usable size %zu\n", pm_malloc_usable_size(p));
    else
        pm_free(p);
    return pmt_survived(call);
}

/* One byte written just past a PMT_SIZE-byte request: at PM_CHECK=1 the
 * usable size is the request, and the byte is caught at the free. */
static int child_overflow_one(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 24);
    unsigned char *p = pm_malloc(n);
    void *g = pm_malloc(n);
    PMT_REQUIRE(p && g, "malloc");
    PMT_REQUIRE(pm_malloc_usable_size(p) == n, "usable %zu, asked %zu",
                pm_malloc_usable_size(p), n);
    memset(p, 0x11, n);
    pmt_scribble(p + n, 1);
    pm_free(p);
    return pmt_survived("free after a one-byte overflow");
}

/* Block 1 overflows into the head of block 2; only block 1 is freed. */
static int child_overflow_free_self(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 32);
    unsigned char *b[4];
    for (int i = 0; i < 4; i++) {
        b[i] = pm_malloc(n);
        PMT_REQUIRE(b[i] != NULL, "malloc");
    }
    pmt_scribble(b[1] + pm_malloc_usable_size(b[1]), pmt_env_size("PMT_OVER", 1));
    pm_free(b[1]);
    return pmt_survived("free of the overflowing block");
}

/* Block a overflows through the head and first word of its cached
 * neighbour b; the next allocation pops b. */
static int child_overflow_cached(void)
{
    unsigned char *a = pm_malloc(32), *b = pm_malloc(32);
    void *g = pm_malloc(32);
    PMT_REQUIRE(a && b && g, "malloc");
    pm_free(b);
    pmt_scribble(a + pm_malloc_usable_size(a), 16);
    pmt_sink(pm_malloc(32));
    return pmt_survived("allocation of an overflowed cached block");
}

static int child_realloc_bad_zero(void)
{
    unsigned char *p = pm_malloc(64);
    PMT_REQUIRE(p != NULL, "malloc");
    pmt_sink(pm_realloc(p + 16, 0));
    return pmt_survived("pm_realloc(p + 16, 0)");
}

/* A warning with stderr a pipe whose reader has gone: no SIGPIPE. */
static int child_warn_closed_pipe(void)
{
    int fds[2];
    PMT_REQUIRE(pipe(fds) == 0, "pipe");
    close(fds[0]);
    int saved = dup(2);
    dup2(fds[1], 2);
    close(fds[1]);
    errno = 1234;
    int r = pm_mallopt(PM_ARENA_MAX, 0); /* and PM_ARENA_MAX=banana at init */
    int e = errno;
    sigset_t pend;
    sigpending(&pend);
    dup2(saved, 2);
    PMT_REQUIRE(r == 0, "pm_mallopt(PM_ARENA_MAX, 0) = %d", r);
    PMT_REQUIRE(e == ERANGE || e == EINVAL, "errno %d", e);
    PMT_REQUIRE(!sigismember(&pend, SIGPIPE), "SIGPIPE left pending");
    return 0;
}

/* ---- the table ------------------------------------------------------------ */



#define NOTC "PM_TCACHE_COUNT=0"
#define L1 "PM_CHECK=1"
#define DF { "double free" }
#define INV { "invalid pointer" }
#define FREED { "pointer already freed" }
#define CORR { "corrupted" }
#define L0_OVER { "corrupted", "invalid" }
#define L1_OVER { "overflow" }
#define MHEAD { "corrupted chunk header (head 0x" }
#define NEXTH { "corrupted chunk header after the block" }

static const pmt_spec_t specs[] = {
    { "double_free_small", "double_free", { "PMT_SIZE=32" }, DF, PMT_ABORTS },
    { "double_free_medium", "double_free", { "PMT_SIZE=4000" }, DF, PMT_ABORTS },
    { "double_free_mmap", "double_free", { "PMT_SIZE=1048576" }, DF, PMT_ABORTS },
    { "double_free_small_notcache", "double_free", { "PMT_SIZE=32", NOTC }, DF, PMT_ABORTS },
    { "double_free_medium_notcache", "double_free", { "PMT_SIZE=4000", NOTC }, DF, PMT_ABORTS },
    { "double_free_mmap_notcache", "double_free", { "PMT_SIZE=1048576", NOTC }, DF, PMT_ABORTS },
    { "double_free_small_delayed", "double_free_delayed", { "PMT_SIZE=32" }, DF, PMT_ABORTS },
    { "double_free_small_delayed_notcache", "double_free_delayed", { "PMT_SIZE=32", NOTC },
      DF, PMT_ABORTS },
    { "double_free_medium_delayed_notcache", "double_free_delayed",
      { "PMT_SIZE=4000", NOTC }, DF, PMT_ABORTS },
    { "double_free_mmap_delayed", "double_free_delayed", { "PMT_SIZE=1048576" }, DF,
      PMT_ABORTS },
    { "double_free_threads_exited_small", "double_free_threads",
      { "PMT_SIZE=32", "PMT_MODE=exited" }, DF, PMT_ABORTS },
    { "double_free_threads_alive_small", "double_free_threads",
      { "PMT_SIZE=32", "PMT_MODE=alive" }, DF, PMT_ABORTS },
    { "double_free_threads_exited_medium", "double_free_threads",
      { "PMT_SIZE=4000", "PMT_MODE=exited" }, DF, PMT_ABORTS },
    { "double_free_threads_alive_medium", "double_free_threads",
      { "PMT_SIZE=4000", "PMT_MODE=alive" }, DF, PMT_ABORTS },
    { "double_free_threads_alive_small_notcache", "double_free_threads",
      { "PMT_SIZE=32", "PMT_MODE=alive", NOTC }, DF, PMT_ABORTS },
    { "double_free_top_small_notcache", "freed_into_top", { "PMT_SIZE=32", NOTC }, DF,
      PMT_ABORTS },
    { "double_free_top_uncached", "freed_into_top", { "PMT_SIZE=40000" }, DF, PMT_ABORTS },
    { "realloc_freed_top_uncached", "freed_into_top", { "PMT_SIZE=40000", "PMT_CALL=realloc" },
      FREED, PMT_ABORTS },
    { "usable_size_freed_top_notcache", "freed_into_top",
      { "PMT_SIZE=32", NOTC, "PMT_CALL=usable" }, FREED, PMT_ABORTS },

    { "invalid_free_small_plus8", "free_offset", { "PMT_SIZE=64", "PMT_OFFSET=8" }, INV,
      PMT_ABORTS },
    { "invalid_free_small_plus16", "free_offset", { "PMT_SIZE=64", "PMT_OFFSET=16" }, INV,
      PMT_ABORTS },
    { "invalid_free_medium_plus8", "free_offset", { "PMT_SIZE=4000", "PMT_OFFSET=8" }, INV,
      PMT_ABORTS },
    { "invalid_free_medium_plus16", "free_offset", { "PMT_SIZE=4000", "PMT_OFFSET=16" },
      INV, PMT_ABORTS },
    { "invalid_free_mmap_plus8", "free_offset", { "PMT_SIZE=1048576", "PMT_OFFSET=8" }, INV,
      PMT_ABORTS },
    { "invalid_free_mmap_plus16", "free_offset", { "PMT_SIZE=1048576", "PMT_OFFSET=16" },
      INV, PMT_ABORTS },
    { "invalid_free_mmap_plus64k", "free_offset",
      { "PMT_SIZE=1048576", "PMT_OFFSET=65536" }, INV, PMT_ABORTS },
    { "invalid_free_mapping_interior", "free_offset",
      { "PMT_SIZE=67108864", "PMT_OFFSET=65536" }, { "invalid pointer (inside the mapped block" },
      PMT_ABORTS },
    { "invalid_free_small_region", "free_small_region", { NULL }, INV, PMT_ABORTS },
    { "invalid_free_top", "free_offset", { "PMT_SIZE=64", "PMT_OFFSET=0x10000" }, INV,
      PMT_ABORTS },
    { "invalid_free_past_heap_end", "free_offset", { "PMT_SIZE=64", "PMT_OFFSET=0x2000000" },
      { "invalid pointer (past the used part" }, PMT_ABORTS },
    { "invalid_free_stack", "free_stack", { NULL }, INV, PMT_ABORTS },
    { "invalid_free_static", "free_static", { NULL }, INV, PMT_ABORTS },
    { "invalid_free_unprotected", "free_own_mapping", { "PMT_MODE=rw" }, INV, PMT_ABORTS },
    { "invalid_free_protected", "free_own_mapping", { "PMT_MODE=none" }, INV, PMT_ABORTS },
    { "invalid_free_wild", "free_wild", { "PMT_OFFSET=1" }, INV, PMT_ABORTS },
    { "invalid_free_wild_page", "free_wild", { "PMT_OFFSET=0x1000" }, INV, PMT_ABORTS },
    { "invalid_free_wild_high", "free_wild", { "PMT_OFFSET=0x7ffffffff000" }, INV, PMT_ABORTS },

    { "realloc_freed_small", "realloc_freed", { "PMT_SIZE=32" }, FREED, PMT_ABORTS },
    { "realloc_freed_medium", "realloc_freed", { "PMT_SIZE=4000" }, FREED, PMT_ABORTS },
    { "realloc_freed_medium_notcache", "realloc_freed", { "PMT_SIZE=4000", NOTC }, FREED,
      PMT_ABORTS },
    { "realloc_freed_mmap", "realloc_freed", { "PMT_SIZE=1048576" }, FREED, PMT_ABORTS },
    { "usable_size_freed_small", "usable_size_freed", { "PMT_SIZE=32" }, FREED, PMT_ABORTS },
    { "usable_size_freed_medium_notcache", "usable_size_freed", { "PMT_SIZE=4000", NOTC },
      FREED, PMT_ABORTS },
    { "usable_size_freed_mmap", "usable_size_freed", { "PMT_SIZE=1048576" }, FREED,
      PMT_ABORTS },

    { "overflow_small_1_l0", "overflow", { "PMT_SIZE=32", "PMT_OVER=1" }, L0_OVER, PMT_ABORTS },
    { "overflow_small_8_l0", "overflow", { "PMT_SIZE=32", "PMT_OVER=8" }, L0_OVER, PMT_ABORTS },
    { "overflow_small_32_l0", "overflow", { "PMT_SIZE=32", "PMT_OVER=32" }, L0_OVER,
      PMT_ABORTS },
    { "overflow_medium_1_l0", "overflow", { "PMT_SIZE=4000", "PMT_OVER=1" }, L0_OVER,
      PMT_ABORTS },
    { "overflow_medium_8_l0", "overflow", { "PMT_SIZE=4000", "PMT_OVER=8" }, L0_OVER,
      PMT_ABORTS },
    { "overflow_medium_32_l0", "overflow", { "PMT_SIZE=4000", "PMT_OVER=32" }, L0_OVER,
      PMT_ABORTS },
    { "overflow_small_1_l1", "overflow", { "PMT_SIZE=32", "PMT_OVER=1", L1 }, L1_OVER,
      PMT_ABORTS },
    { "overflow_small_8_l1", "overflow", { "PMT_SIZE=32", "PMT_OVER=8", L1 }, L1_OVER,
      PMT_ABORTS },
    { "overflow_small_32_l1", "overflow", { "PMT_SIZE=32", "PMT_OVER=32", L1 }, L1_OVER,
      PMT_ABORTS },
    { "overflow_medium_1_l1", "overflow", { "PMT_SIZE=4000", "PMT_OVER=1", L1 }, L1_OVER,
      PMT_ABORTS },
    { "overflow_medium_8_l1", "overflow", { "PMT_SIZE=4000", "PMT_OVER=8", L1 }, L1_OVER,
      PMT_ABORTS },
    { "overflow_medium_32_l1", "overflow", { "PMT_SIZE=4000", "PMT_OVER=32", L1 }, L1_OVER,
      PMT_ABORTS },

    { "write_after_free_small_l1", "write_after_free", { "PMT_SIZE=128", L1 },
      { "write after free" }, PMT_ABORTS },
    { "write_after_free_medium_l1", "write_after_free", { "PMT_SIZE=4000", L1 },
      { "write after free" }, PMT_ABORTS },
    { "write_after_free_small_start_l1", "write_after_free",
      { "PMT_SIZE=64", "PMT_OFFSET=0", L1 }, { "write after free", "corrupted" }, PMT_ABORTS },
    { "write_after_free_medium_notcache_l1", "write_after_free",
      { "PMT_SIZE=4000", "PMT_OFFSET=2000", NOTC, L1 }, { "write after free" }, PMT_ABORTS },
    { "read_after_free_small_l1", "read_after_free", { L1 }, { NULL }, PMT_EXITS_0 },

    { "corrupted_free_list_200", "corrupt_free_list", { "PMT_SIZE=200", NOTC }, CORR,
      PMT_ABORTS },
    { "corrupted_free_list_40k", "corrupt_free_list", { "PMT_SIZE=40960", NOTC }, CORR,
      PMT_ABORTS },
    { "corrupted_top", "corrupt_top", { "PMT_OVER=8" }, CORR, PMT_ABORTS },
    { "corrupted_top_1", "corrupt_top", { "PMT_OVER=1" }, CORR, PMT_ABORTS },
    { "corrupted_top_notcache", "corrupt_top", { "PMT_SIZE=1000", NOTC }, CORR, PMT_ABORTS },

    /* issue 17 */
    { "mmap_head_free", "mmap_head", { "PMT_CALL=free" }, MHEAD, PMT_ABORTS },
    { "mmap_head_free_ff", "mmap_head", { "PMT_CALL=free", "PMT_OVER=255" }, MHEAD, PMT_ABORTS },
    { "mmap_head_realloc", "mmap_head", { "PMT_CALL=realloc" }, MHEAD, PMT_ABORTS },
    { "mmap_head_usable", "mmap_head", { "PMT_CALL=usable" }, MHEAD, PMT_ABORTS },
    { "mmap_head_memalign", "mmap_head", { "PMT_CALL=memalign" }, MHEAD, PMT_ABORTS },
    { "mmap_head_free_l1", "mmap_head", { "PMT_CALL=free", L1 }, MHEAD, PMT_ABORTS },
    { "mmap_head_realloc_l2", "mmap_head", { "PMT_CALL=realloc", "PM_CHECK=2" }, MHEAD,
      PMT_ABORTS },
    { "overflow_into_next_head_notcache", "overflow_free_self", { NOTC }, NEXTH, PMT_ABORTS },
    { "overflow_into_next_head_8_notcache", "overflow_free_self", { NOTC, "PMT_OVER=8" },
      NEXTH, PMT_ABORTS },
    { "overflow_into_next_head_medium", "overflow_free_self", { "PMT_SIZE=40000" }, NEXTH,
      PMT_ABORTS },
    { "overflow_into_cached_block", "overflow_cached", { NULL },
      { "heap overflow into a cached block" }, PMT_ABORTS },
    { "realloc_bad_zero", "realloc_bad_zero", { NULL }, { "pmalloc: pm_realloc(0x" }, PMT_ABORTS },
    { "warning_to_closed_pipe", "warn_closed_pipe", { "PM_ARENA_MAX=banana" }, { NULL },
      PMT_EXITS_0 },
};

static const pmt_case_t cases[] = {
    { "double_free", child_double_free },
    { "double_free_delayed", child_double_free_delayed },
    { "freed_into_top", child_freed_into_top },
    { "double_free_threads", child_double_free_threads },
    { "free_offset", child_free_offset },
    { "free_small_region", child_free_small_region },
    { "free_stack", child_free_stack },
    { "free_static", child_free_static },
    { "free_own_mapping", child_free_own_mapping },
    { "free_wild", child_free_wild },
    { "realloc_freed", child_realloc_freed },
    { "usable_size_freed", child_usable_size_freed },
    { "overflow", child_overflow },
    { "write_after_free", child_write_after_free },
    { "read_after_free", child_read_after_free },
    { "corrupt_free_list", child_corrupt_free_list },
    { "corrupt_top", child_corrupt_top },
    { "mmap_head", child_mmap_head },
    { "overflow_one", child_overflow_one },
    { "overflow_free_self", child_overflow_free_self },
    { "overflow_cached", child_overflow_cached },
    { "realloc_bad_zero", child_realloc_bad_zero },
    { "warn_closed_pipe", child_warn_closed_pipe },
};

/* PM_CHECK=1: a one-byte overflow p[n] is caught for every n in 1..128
 * (it used to be for 8 of them: the canary sat at the usable end). */
static void test_overflow_one_byte_each_size(void **state)
{
    (void)state;
    for (unsigned n = 1; n <= 128; n++) {
        char size[32];
        snprintf(size, sizeof size, "PMT_SIZE=%u", n);
        const char *env[] = { size, L1, NULL };
        pmt_child_t c;
        assert_int_equal(pmt_spawn("overflow_one", env, 20, &c), 0);
        pmt_assert_abort(&c, "heap overflow");
        pmt_child_free(&c);
    }
}

int main(int argc, char **argv)
{
    pmt_child_dispatch(argc, argv, cases, PMT_ARRAY_LEN(cases));
    enum { N = PMT_ARRAY_LEN(specs) };
    static struct CMUnitTest tests[N + 1];
    for (size_t i = 0; i < N; i++) {
        tests[i] = (struct CMUnitTest){
            .name = specs[i].name,
            .test_func = pmt_run_spec,
            .initial_state = (void *)&specs[i],
        };
    }
    tests[N] = (struct CMUnitTest)cmocka_unit_test(test_overflow_one_byte_each_size);
    return _cmocka_run_group_tests("test_integrity", tests, N + 1, NULL, NULL);
}
