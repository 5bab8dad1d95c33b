/* SPDX-License-Identifier: MIT */
/*
 * test_core.c - unit tests of the core's internals: size classes, header
 * checksums, bins and coalescing, the top chunk, the mapping registry, the
 * thread cache and the diagnostics formatter. The validator runs after
 * every step.
 */
#include "../common.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap.h"

static void assert_arena_valid(pm_arena_t *a)
{
    _pm_arena_lock(a);
    int rc = _pm_check_arena(a, 1);
    _pm_arena_unlock(a);
    assert_int_equal(rc, 0);
}

/* A failed assert leaves its test at once, maybe with an arena locked; the
 * next test would then hang on that lock instead of running. Tests run in
 * one thread, so a lock that trylock finds busy is this thread's. */
static int unlock_arenas(void **state)
{
    (void)state;
    uint32_t n = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < 2 * n; i++) {
        pm_arena_t *a = arena_slot(i, n);
        if (a) {
            (void)pthread_mutex_trylock(&a->lock);
            pthread_mutex_unlock(&a->lock);
        }
    }
    return 0;
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(pm_init(), 0);
    return 0;
}

static void test_size_classes(void **state)
{
    (void)state;
    for (size_t s = PM_MIN_CHUNK; s <= PM_HEAP_SIZE; s += (s < 4096 ? 16 : s / 7 + 16)) {
        size_t cs = s & ~(size_t)15;
        unsigned k = size_class_ceil(cs), f = size_class_floor(cs);
        assert_true(class_size(k) >= cs);
        assert_true(k == 0 || class_size(k - 1) < cs);
        assert_true(class_size(f) <= cs);
        assert_true(class_size(f + 1) > cs);
    }
    for (unsigned k = 2; k < PM_NBINS - 1; k++) {
        assert_true(class_size(k) < class_size(k + 1));
        assert_int_equal(size_class_ceil(class_size(k)), k);
    }
    assert_int_equal(class_size(PM_NCLASS_TC - 1), PM_TCACHE_MAX_LIMIT + 16);
    assert_int_equal(class_size(PM_NBINS - 1), PM_HEAP_SIZE + 16);
    /* A power-of-two request and its header fit a class exactly. */
    for (size_t n = 1024; n <= PM_TCACHE_MAX_LIMIT; n *= 2)
        assert_int_equal(class_size(size_class_ceil(request2size(n))), n + 16);
    assert_int_equal(request2size(0), PM_MIN_CHUNK);
    assert_int_equal(request2size(24), 32);
    assert_int_equal(request2size(25), 48);
}

static void test_checksum_catches_every_bit(void **state)
{
    (void)state;
    static _Alignas(16) char buf[64];
    pm_chunk_t *c = (pm_chunk_t *)buf;
    uint64_t h = chunk_make_head(c, 4096, PM_ST_INUSE, PM_PREV_INUSE);
    assert_true(chunk_head_ok(c, h));
    assert_int_equal(head_size(h), 4096);
    assert_int_equal(head_state(h), PM_ST_INUSE);
    int caught = 0;
    for (int b = 0; b < 64; b++)
        caught += !chunk_head_ok(c, h ^ ((uint64_t)1 << b));
    assert_int_equal(caught, 64);
    assert_false(chunk_head_ok(c, 0x4141414141414141ull));
    /* The table the inline free path uses agrees with the checksum. */
    for (size_t s = PM_MIN_CHUNK; s <= PM_FAST_CSIZE; s += 16)
        for (uint64_t p = 0; p < 2; p++)
            assert_true(_pm_inuse_head[(s >> 3) | p] == chunk_make_head(c, s, PM_ST_INUSE, p));
    assert_true(_pm_inuse_head[(16 >> 3)] == ~(uint64_t)0);
}

static void test_bins_split_and_coalesce(void **state)
{
    (void)state;
    pm_arena_t *a = _pm_arena_create();
    if (!a)
        skip(); /* the arena cap is already reached in this process */
    int how;
    pm_chunk_t *c[8];
    _pm_arena_lock(a);
    size_t nfree0 = a->nfree, inuse0 = a->in_use;
    for (int i = 0; i < 8; i++) {
        c[i] = _pm_bins_alloc(a, 64 + 16 * (size_t)i, &how);
        assert_non_null(c[i]);
        assert_int_equal(head_size(chunk_head(c[i])), 64 + 16 * (size_t)i);
        assert_int_equal(head_state(chunk_head(c[i])), PM_ST_INUSE);
    }
    _pm_arena_unlock(a);
    assert_arena_valid(a);
    _pm_arena_lock(a);
    /* 1 and 3 free: two free chunks; then 2 joins them into one. */
    _pm_bins_free(a, c[1], "test");
    _pm_bins_free(a, c[3], "test");
    assert_int_equal(a->nfree, nfree0 + 2);
    _pm_bins_free(a, c[2], "test");
    assert_int_equal(a->nfree, nfree0 + 1);
    assert_int_equal(head_size(chunk_head(c[1])), 80 + 96 + 112);
    _pm_arena_unlock(a);
    assert_arena_valid(a);
    _pm_arena_lock(a);
    /* A request that fits the joined chunk is split from it. */
    pm_chunk_t *d = _pm_bins_alloc(a, 96, &how);
    assert_ptr_equal(d, c[1]);
    assert_int_equal(how, PM_FROM_BIN);
    assert_int_equal(a->nfree, nfree0 + 1);
    _pm_bins_free(a, d, "test");
    /* The last chunk merges into top. */
    pm_chunk_t *top = a->top;
    _pm_bins_free(a, c[7], "test");
    assert_ptr_equal(a->top, c[7]);
    assert_true((char *)top > (char *)a->top);
    for (int i = 0; i < 7; i++)
        if (i < 1 || i > 3)
            _pm_bins_free(a, c[i], "test");
    assert_int_equal(a->in_use, inuse0);
    assert_int_equal(a->nfree, nfree0);
    _pm_arena_unlock(a);
    assert_arena_valid(a);
}

/* A new arena, locked, so that chunks come off its top side by side. */
static pm_arena_t *fresh_arena_locked(void)
{
    pm_arena_t *a = _pm_arena_create();
    if (a)
        _pm_arena_lock(a);
    return a;
}

static void test_grow_and_shrink_in_place(void **state)
{
    (void)state;
    pm_arena_t *a = fresh_arena_locked();
    if (!a)
        skip();
    int how;
    pm_chunk_t *x = _pm_bins_alloc(a, 256, &how);
    pm_chunk_t *y = _pm_bins_alloc(a, 256, &how);
    pm_chunk_t *z = _pm_bins_alloc(a, 256, &how);
    _pm_bins_free(a, y, "test");
    assert_true(_pm_bins_grow_inplace(a, x, 400));
    assert_int_equal(head_size(chunk_head(x)), 400);
    assert_false(_pm_bins_grow_inplace(a, x, 4096)); /* z is in the way */
    _pm_bins_shrink(a, x, 128);
    assert_int_equal(head_size(chunk_head(x)), 128);
    _pm_arena_unlock(a);
    assert_arena_valid(a);
    _pm_arena_lock(a);
    _pm_bins_free(a, x, "test");
    _pm_bins_free(a, z, "test");
    _pm_arena_unlock(a);
    assert_arena_valid(a);
}

static void test_trim_gives_pages_back(void **state)
{
    (void)state;
    pm_arena_t *a = fresh_arena_locked();
    if (!a)
        skip();
    int how;
    pm_chunk_t *big = _pm_bins_alloc(a, 8 * PM_MIB, &how);
    assert_non_null(big);
    size_t held = a->held;
    _pm_bins_free(a, big, "test");
    pm_purge_t pp;
    assert_true(_pm_bins_plan_trim(a, 0, &pp));
    assert_true(a->held < held - 7 * PM_MIB);
    assert_true(pp.len >= 7 * PM_MIB);
    _pm_arena_unlock(a);
    assert_true(_pm_purge_apply(&pp));
    assert_int_equal(pp.heap->purging, 0);
    assert_arena_valid(a);
}

/* pm_malloc_trim's purge of a free run too small to carry a dirty count
 * (16-64 KiB) counts the run's size as purged, not the program's leftover
 * bytes where a bigger run keeps its count. */
static void test_trim_counts_small_runs(void **state)
{
    (void)state;
    pm_arena_t *a = fresh_arena_locked();
    if (!a)
        skip();
    int how;
    pm_chunk_t *run = _pm_bins_alloc(a, 40 * PM_KIB, &how);
    pm_chunk_t *pin = _pm_bins_alloc(a, 64, &how);
    assert_true(run && pin);
    *chunk_dirty(run) = 0xfffffffffff00000ull; /* the program's data */
    _pm_bins_free(a, run, "test");
    size_t before = a->purged;
    _pm_arena_unlock(a);
    assert_int_equal(_pm_trim_arena(a, 0), 1);
    _pm_arena_lock(a);
    assert_true(a->purged - before <= PM_HEAP_SIZE); /* the run and the top at most */
    assert_true(a->purged >= before + 40 * PM_KIB);
    _pm_bins_free(a, pin, "test");
    _pm_arena_unlock(a);
    assert_arena_valid(a);
}

/* Decay bookkeeping: a free run carries the sweep it was freed in, a split
 * keeps it, dirty bytes add up, and only runs older than the last sweep are
 * taken for purging. */
static void test_decay_stamps(void **state)
{
    (void)state;
    pm_arena_t *a = fresh_arena_locked();
    if (!a)
        skip();
    int how;
    pm_chunk_t *r1 = _pm_bins_alloc(a, 256 * PM_KIB, &how);
    pm_chunk_t *pin1 = _pm_bins_alloc(a, 64, &how);
    pm_chunk_t *r2 = _pm_bins_alloc(a, 256 * PM_KIB, &how);
    pm_chunk_t *pin2 = _pm_bins_alloc(a, 64, &how);
    assert_true(r1 && pin1 && r2 && pin2);
    size_t dirty0 = a->dirty;
    uint64_t g = a->purge_gen;
    _pm_bins_free(a, r1, "test");
    assert_int_equal(*chunk_stamp(r1), g);
    assert_int_equal(a->dirty, dirty0 + 256 * PM_KIB);
    a->purge_gen++; /* a sweep passes: r1 is now stale, r2 will be fresh */
    _pm_bins_free(a, r2, "test");
    assert_int_equal(*chunk_stamp(r2), g + 1);
    /* A split keeps the run's age: what is left of r1 is still stale. */
    pm_chunk_t *part = _pm_bins_alloc(a, 128 * PM_KIB, &how);
    assert_true(part == r1 || part == r2);
    pm_chunk_t *rest = chunk_at(part, 128 * PM_KIB);
    assert_int_equal(*chunk_stamp(rest), part == r1 ? g : g + 1);
    _pm_bins_free(a, part, "test"); /* merges back: the older age wins */
    assert_int_equal(*chunk_stamp(part), part == r1 ? g : g + 1);
    _pm_arena_unlock(a);
    assert_arena_valid(a);
    _pm_arena_lock(a);
    pm_chunk_t *held[8];
    size_t n = _pm_bins_take_runs(a, held, 8, PM_PURGE_MIN, SIZE_MAX, true, "test");
    assert_int_equal(n, 1);
    assert_ptr_equal(held[0], r1);
    assert_int_equal(head_state(chunk_head(r1)), PM_ST_CACHED);
    assert_int_equal(a->dirty, dirty0 + 256 * PM_KIB); /* r2 only */
    _pm_bins_free_purged(a, r1, true, "test");
    assert_int_equal(*chunk_stamp(r1), PM_STAMP_CLEAN);
    assert_int_equal(*chunk_dirty(r1), 0);
    assert_int_equal(a->dirty, dirty0 + 256 * PM_KIB);
    /* A purge that failed (locked pages) puts the run back dirty, as if
     * just freed: it is taken again after the next sweep. */
    n = _pm_bins_take_runs(a, held, 8, PM_PURGE_MIN, SIZE_MAX, false, "test");
    assert_int_equal(n, 1);
    assert_ptr_equal(held[0], r2);
    _pm_bins_free_purged(a, r2, false, "test");
    assert_int_equal(*chunk_stamp(r2), a->purge_gen);
    assert_int_equal(*chunk_dirty(r2), 256 * PM_KIB);
    assert_int_equal(a->dirty, dirty0 + 256 * PM_KIB);
    /* Both clean: a block carved from one and freed again makes that run
     * dirty by the block's size, not by the whole run's. */
    n = _pm_bins_take_runs(a, held, 8, PM_PURGE_MIN, SIZE_MAX, false, "test");
    for (size_t i = 0; i < n; i++)
        _pm_bins_free_purged(a, held[i], true, "test");
    assert_int_equal(a->dirty, 0);
    assert_int_equal(*chunk_stamp(r2), PM_STAMP_CLEAN);
    part = _pm_bins_alloc(a, 64 * PM_KIB, &how);
    assert_true(part == r1 || part == r2);
    assert_int_equal(a->dirty, 0);
    _pm_bins_free(a, part, "test");
    assert_int_equal(*chunk_dirty(part), 64 * PM_KIB);
    assert_int_equal(*chunk_stamp(part), a->purge_gen);
    assert_int_equal(a->dirty, 64 * PM_KIB);
    _pm_arena_unlock(a);
    assert_arena_valid(a);
    _pm_arena_lock(a);
    _pm_bins_free(a, pin1, "test");
    _pm_bins_free(a, pin2, "test");
    _pm_arena_unlock(a);
    assert_arena_valid(a);
}

/* A block of a companion freed by a thread of another arena goes back in a
 * remote batch; the companion of an arena in use is not idle, so that batch
 * must not make it sweep at once, as an abandoned arena does. */
static void test_remote_flush_to_busy_companion(void **state)
{
    (void)state;
    pm_free(pm_malloc(64)); /* this thread's cache and arena */
    pm_arena_t *b = _pm_arena_get_big_locked();
    assert_non_null(b);
    int how;
    pm_chunk_t *c = _pm_bins_alloc(b, 64, &how);
    assert_non_null(c);
    uint64_t gen = b->purge_gen;
    _pm_arena_unlock(b);
    pm_tcache_t *tc = _pm_tls_tc;
    assert_true(tc->real && tc->arena != b);
    assert_true(__atomic_load_n(&_pm_arenas[b->index]->attached, __ATOMIC_RELAXED) > 0);
    *mem_word0(chunk2mem(c)) = tc_key(chunk2mem(c));
    _pm_tcache_remote_push(tc, chunk2mem(c), head_size(chunk_head(c)));
    _pm_tcache_remote_flush(tc);
    assert_int_equal(b->purge_gen, gen);
    assert_arena_valid(b);
}

/* Threads that share arenas make their companions at once: the losers of
 * each race unmap theirs, and the held total (usmblks' source) must not
 * count them. */
enum { HR_THREADS = 12 };
static pthread_barrier_t hr_barrier;

static void *hr_thread(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&hr_barrier);
    pm_free(pm_malloc(300000));
    return NULL;
}

/* In a fresh process (PM_ARENA_MAX=2): no arena and no companion yet. */
static int child_held_races(void)
{
    pthread_t t[HR_THREADS];
    pthread_barrier_init(&hr_barrier, NULL, HR_THREADS);
    for (int i = 0; i < HR_THREADS; i++)
        pthread_create(&t[i], NULL, hr_thread, NULL);
    for (int i = 0; i < HR_THREADS; i++)
        pthread_join(t[i], NULL);
    size_t held = 0, maps, mapped;
    uint32_t n = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < 2 * n; i++) {
        pm_arena_t *a = arena_slot(i, n);
        if (a) {
            _pm_arena_lock(a);
            held += a->held;
            _pm_arena_unlock(a);
        }
    }
    _pm_large_stats(&maps, &mapped);
    PMT_REQUIRE(_pm_stats_held_total() == held + mapped, "held total %zu, arenas and mappings %zu",
                _pm_stats_held_total(), held + mapped);
    return 0;
}

static void test_held_total_after_races(void **state)
{
    (void)state;
    const char *env[] = { "PM_ARENA_MAX=2", NULL };
    for (int i = 0; i < 5; i++)
        pmt_run_case_ok("held_races", env, 60);
}

/* Chunks over the largest cache class live in a large companion. */
static void test_large_companion(void **state)
{
    (void)state;
    void *small = pm_malloc(1000), *mid = pm_malloc(100 * 1024);
    assert_true(small && mid);
    pm_arena_t *sa = heap_of(small)->arena, *ma = heap_of(mid)->arena;
    assert_false(sa->is_big);
    assert_true(ma->is_big);
    assert_ptr_equal(sa->big, ma);
    assert_int_equal(ma->index, sa->index);
    pm_free(small);
    pm_free(mid);
    assert_int_equal(pm_check_heap(), 0);
}

/* An arena lives in its first heap: when every block there is freed (the
 * oldest first, as a queue does), that heap must stay, or the next lock of
 * the arena touches unmapped memory. Both kinds: a companion (1 MiB blocks)
 * and an arena itself (60000 bytes: over tcache_max, under the companion's
 * sizes). */
static void test_first_heap_outlives_its_blocks(void **state)
{
    (void)state;
    static const size_t sizes[] = {(size_t)1 << 20, 60000};
    enum { MAXB = 2400 };
    static void *blk[MAXB];
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        size_t n = 0;
        pm_arena_t *a = NULL;
        do {
            assert_true(n < MAXB);
            blk[n] = pm_malloc(sizes[t]);
            assert_non_null(blk[n]);
            a = heap_of(blk[n++])->arena;
        } while (a->nheaps < 2 || heap_of(blk[n - 1]) == heap_of(a));
        assert_ptr_equal(heap_of(blk[0]), heap_of(a));
        for (size_t i = 0; i < n; i++)
            pm_free(blk[i]);
        assert_true(heap_owns((uintptr_t)a));
        assert_arena_valid(a);
        void *p = pm_malloc(sizes[t]);
        assert_non_null(p);
        assert_ptr_equal(heap_of(p)->arena, a);
        pm_free(p);
        assert_arena_valid(a);
    }
    assert_int_equal(pm_check_heap(), 0);
}

/* A block that realloc moves is served from holes of its own arena, even
 * past the companion's boundary: a vector's earlier copies are freed there. */
static void test_realloc_moves_within_arena(void **state)
{
    (void)state;
    enum { N = 8 };
    void *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = pm_malloc(60 * 1024); /* below the companion's boundary */
        assert_non_null(b[i]);
    }
    pm_arena_t *a = heap_of(b[0])->arena;
    assert_false(a->is_big);
    for (int i = 1; i < 6; i++)
        pm_free(b[i]); /* one hole of 300 KiB between b[0] and b[6] */
    assert_arena_valid(a);
    void *p = pm_malloc(1000);
    memset(p, 7, 1000);
    void *q = pm_realloc(p, 200 * 1024);
    assert_non_null(q);
    assert_ptr_equal(heap_of(q)->arena, a);
    assert_true((char *)q > (char *)b[0] && (char *)q < (char *)b[6]);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(((unsigned char *)q)[i], 7);
    assert_arena_valid(a);
    pm_free(q);
    pm_free(b[0]);
    for (int i = 6; i < N; i++)
        pm_free(b[i]);
    assert_int_equal(pm_check_heap(), 0);
}

static void test_large_registry(void **state)
{
    (void)state;
    bool ok;
    void *p = _pm_large_alloc(300 * PM_KIB, 0, true, &ok);
    assert_non_null(p);
    size_t len;
    bool tomb;
    assert_true(_pm_large_lookup(mem2chunk(p), &len, &tomb));
    assert_true(len >= 300 * PM_KIB + PM_HDR);
    void *q = _pm_large_alloc(100 * PM_KIB, 64 * PM_KIB, true, &ok);
    assert_non_null(q);
    assert_int_equal((uintptr_t)q % (64 * PM_KIB), 0);
    assert_int_equal(_pm_large_check(), 0);
    _pm_large_free(mem2chunk(p), "test", p);
    assert_false(_pm_large_lookup(mem2chunk(p), &len, &tomb));
    assert_true(tomb); /* remembered as freed: a second free is a double free */
    _pm_large_free(mem2chunk(q), "test", q);
    assert_int_equal(_pm_large_check(), 0);
}

static void test_tcache_keeps_and_flushes(void **state)
{
    (void)state;
    void *p = pm_malloc(40);
    assert_non_null(p);
    pm_tcache_t *tc = _pm_tls_tc;
    assert_true(tc->real);
    unsigned k = (unsigned)(head_size(chunk_head(mem2chunk(p))) >> 4);
    uint32_t before = tc->bins[k].count;
    pm_free(p);
    assert_int_equal(tc->bins[k].count, before + 1);
    /* Still INUSE to the arena; the key in its first word says "cached". */
    assert_int_equal(head_state(chunk_head(mem2chunk(p))), PM_ST_INUSE);
    assert_true(*mem_word0(p) == tc_key(p));
    assert_ptr_equal(pm_malloc(40), p); /* LIFO: the same block comes back */
    pm_free(p);
    pm_malloc_trim(0);
    assert_int_equal(tc->bins[k].count, 0);
    assert_int_equal(pm_check_heap(), 0);
}

/* A refill whose class is not stashed takes a stashed block of a slightly
 * bigger class before it carves new memory; freed, the block goes back to
 * its own class. */
static void test_tcache_refill_borrows_bigger_class(void **state)
{
    (void)state;
    pm_malloc_trim(0); /* empties this thread's cache and the stash */
    void *q = pm_malloc(616), *guard = pm_malloc(16);
    assert_non_null(q);
    assert_non_null(guard);
    pm_arena_t *a = heap_of(mem2chunk(q))->arena;
    size_t qs = head_size(chunk_head(mem2chunk(q)));
    unsigned kq = size_class_floor(qs), k = size_class_ceil(request2size(600));
    assert_int_equal(kq, k + 1);
    _pm_arena_lock(a);
    assert_null(a->stash[k]);
    *mem_word0(q) = tc_key(q);
    _pm_stash_push(a, q, kq, qs);
    _pm_arena_unlock(a);
    assert_arena_valid(a);
    void *p = pm_malloc(600);
    assert_ptr_equal(p, q);
    assert_true(pm_malloc_usable_size(p) >= 616);
    assert_arena_valid(a);
    /* Much bigger blocks are not borrowed: 816 is over 608 + 608 / 4. */
    pm_free(p);
    pm_malloc_trim(0);
    void *r = pm_malloc(800);
    size_t rs = head_size(chunk_head(mem2chunk(r)));
    _pm_arena_lock(a);
    *mem_word0(r) = tc_key(r);
    _pm_stash_push(a, r, size_class_floor(rs), rs);
    _pm_arena_unlock(a);
    void *s2 = pm_malloc(600);
    assert_ptr_not_equal(s2, r);
    assert_ptr_equal(a->stash[size_class_floor(rs)], r);
    pm_free(s2);
    pm_free(guard);
    pm_malloc_trim(0);
    assert_int_equal(pm_check_heap(), 0);
}

/* Allocate a batch of 800 blocks of 1000 bytes (about 800 KiB, over
 * PM_STASH_MAX) and free it; returns the arena (NULL if an allocation
 * failed), and in *stashed its stash bytes then (read under the lock). No
 * asserts here: a thread of test_stash_of_idle_arena calls it too. */
static pm_arena_t *stash_a_batch(size_t *stashed)
{
    enum { N = 800 };
    void *blk[N];
    bool ok = true;
    for (int i = 0; i < N; i++)
        ok &= (blk[i] = pm_malloc(1000)) != NULL;
    pm_arena_t *a = ok ? heap_of(blk[0])->arena : NULL;
    for (int i = 0; i < N; i++)
        pm_free(blk[i]);
    if (!a)
        return NULL;
    _pm_arena_lock(a);
    *stashed = a->stash_bytes;
    _pm_arena_unlock(a);
    return a;
}

/* The stash keeps what a thread freed up to what the arena had in use in this
 * period and the one before (not just PM_STASH_MAX), and falls back to
 * PM_STASH_MAX / 2 once two sweeps have seen nothing in use. */
static void test_stash_bound_follows_use(void **state)
{
    (void)state;
    pm_malloc_trim(0);
    /* Why: only the sweeps forced below may run; a slow build (TSan) could
     * otherwise meet a due one in the middle of the batch. */
    int decay = (int)PM_OPT(decay_ms);
    assert_int_equal(pm_mallopt(PM_DECAY_MS, 3600000), 1);
    pm_free(pm_malloc(64));
    pm_arena_t *mine = _pm_tls_tc->arena;
    assert_non_null(mine);
    _pm_arena_lock(mine);
    mine->sweep_at = _pm_os_now_ms() + 3600000;
    _pm_arena_unlock(mine);
    size_t stashed;
    pm_arena_t *a = stash_a_batch(&stashed);
    assert_ptr_equal(a, mine);
    assert_non_null(a);
    assert_arena_valid(a);
    assert_true(stashed > PM_STASH_MAX);
    /* First sweep: the period before had them all in use, the stash stays. */
    _pm_arena_lock(a);
    a->sweep_at = 0;
    _pm_arena_unlock_trim(a);
    assert_int_equal(a->stash_bytes, stashed);
    /* Second sweep: nothing in use for a whole period, the stash decays. */
    _pm_arena_lock(a);
    a->sweep_at = 0;
    _pm_arena_unlock_trim(a);
    assert_true(a->stash_bytes <= PM_STASH_MAX / 2);
    assert_int_equal(pm_mallopt(PM_DECAY_MS, decay), 1);
    assert_arena_valid(a);
    pm_malloc_trim(0);
    assert_int_equal(pm_check_heap(), 0);
}

/* With decay off no sweep would lower the bound again: it stays at
 * PM_STASH_MAX whatever was in use. */
static void test_stash_bound_without_decay(void **state)
{
    (void)state;
    assert_int_equal(pm_mallopt(PM_DECAY_MS, 0), 1);
    pm_malloc_trim(0);
    size_t stashed;
    pm_arena_t *a = stash_a_batch(&stashed);
    assert_int_equal(pm_mallopt(PM_DECAY_MS, 10), 1);
    assert_non_null(a);
    assert_true(stashed <= PM_STASH_MAX);
    assert_arena_valid(a);
    pm_malloc_trim(0);
}

/* A thread that frees a big batch and exits: its arena, idle now, keeps no
 * more than PM_STASH_MAX stashed for the next thread, after a few sweeps
 * (the purger's). */
static void *stash_and_exit(void *arg)
{
    size_t stashed;
    *(pm_arena_t **)arg = stash_a_batch(&stashed);
    return NULL;
}

static void test_stash_of_idle_arena(void **state)
{
    (void)state;
    pm_arena_t *a = NULL;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stash_and_exit, &a), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_non_null(a);
    size_t stashed;
    uint32_t attached;
    for (int waited = 0;; waited += 5) {
        _pm_arena_lock(a);
        stashed = a->stash_bytes;
        attached = a->attached;
        _pm_arena_unlock(a);
        if (stashed <= PM_STASH_MAX || waited >= 3000)
            break;
        usleep(5000);
    }
    if (attached != 0)
        skip(); /* another thread took the arena over meanwhile */
    assert_true(stashed <= PM_STASH_MAX);
    assert_arena_valid(a);
}

static void test_diag_format(void **state)
{
    (void)state;
    char buf[128];
    size_t n = _pm_diag_format(buf, sizeof buf, "%s=%zu %d %x %p %c%%", "k", (size_t)123456789,
                               -42, 255u, (void *)0x1234, 'z');
    assert_string_equal(buf, "k=123456789 -42 ff 0x1234 z%");
    assert_int_equal(n, strlen(buf));
    n = _pm_diag_format(buf, 8, "%s", "truncated text");
    assert_string_equal(buf, "truncat");
    assert_int_equal(n, 7);
}

static void test_os_read_file(void **state)
{
    (void)state;
    char buf[16];
    assert_int_equal(_pm_os_read_file("/nonexistent/pmalloc", buf, sizeof buf), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(_pm_os_read_file("/", buf, sizeof buf), -1);
    assert_int_equal(errno, EISDIR);
    char path[] = "/tmp/pm_unit_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0123456789abcdefghij", 20), 20);
    close(fd);
    assert_int_equal(_pm_os_read_file(path, buf, sizeof buf), -2);
    assert_int_equal(errno, EFBIG);
    char big[64];
    assert_int_equal(_pm_os_read_file(path, big, sizeof big), 20);
    assert_string_equal(big, "0123456789abcdefghij");
    unlink(path);
}

static void test_os_count_cpulist(void **state)
{
    (void)state;
    assert_int_equal(_pm_os_count_cpulist("0\n"), 1);
    assert_int_equal(_pm_os_count_cpulist("0-1\n"), 2);
    assert_int_equal(_pm_os_count_cpulist("0-3,8,10-11\n"), 7);
    assert_int_equal(_pm_os_count_cpulist("4-7"), 4);
    assert_int_equal(_pm_os_count_cpulist(""), 0);
    assert_int_equal(_pm_os_count_cpulist("x"), 0);
    assert_int_equal(_pm_os_count_cpulist("3-1\n"), 0);
    assert_int_equal(_pm_os_count_cpulist("0-\n"), 0);
    assert_int_equal(_pm_os_count_cpulist("0,\n"), 0);
    assert_int_equal(_pm_os_count_cpulist("0 1\n"), 0);
    /* What the kernel says here is what sysconf says. */
    assert_int_equal(_pm_os_ncpus(), (int)sysconf(_SC_NPROCESSORS_ONLN));
}

/* A damaged free-list link must abort, not be followed. */
static void test_corrupt_link_aborts(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        pm_arena_t *a = _pm_arena_get_locked();
        int how;
        pm_chunk_t *x = _pm_bins_alloc(a, 512, &how);
        pm_chunk_t *g = _pm_bins_alloc(a, 64, &how); /* keeps x off the top */
        (void)g;
        _pm_bins_free(a, x, "test");
        x->fd = (pm_chunk_t *)0x4141414141414141ull;
        _pm_bins_alloc(a, 512, &how);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
}

static const pmt_case_t cases[] = {
    { "held_races", child_held_races },
};

int main(int argc, char **argv)
{
    pmt_child_dispatch(argc, argv, cases, PMT_ARRAY_LEN(cases));
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, unlock_arenas)
        T(test_size_classes),
        T(test_checksum_catches_every_bit),
        T(test_bins_split_and_coalesce),
        T(test_grow_and_shrink_in_place),
        T(test_trim_gives_pages_back),
        T(test_trim_counts_small_runs),
        T(test_decay_stamps),
        T(test_large_companion),
        T(test_remote_flush_to_busy_companion),
        T(test_held_total_after_races),
        T(test_realloc_moves_within_arena),
        T(test_large_registry),
        T(test_tcache_keeps_and_flushes),
        T(test_tcache_refill_borrows_bigger_class),
        T(test_stash_bound_follows_use),
        T(test_stash_bound_without_decay),
        T(test_stash_of_idle_arena),
        T(test_diag_format),
        T(test_os_read_file),
        T(test_os_count_cpulist),
        T(test_corrupt_link_aborts),
        /* last: it leaves the arena's first heap mostly free */
        T(test_first_heap_outlives_its_blocks),
#undef T
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
