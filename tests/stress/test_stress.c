/* SPDX-License-Identifier: MIT */
/*
 * test_stress.c - eight threads allocate, check and free random blocks of
 * 8 B to 4 MiB (mostly small) for a bounded time (issue 2). Every block is
 * filled with a pattern derived from its identity and its thread's seed and
 * verified before it is resized or freed; many blocks are handed through a
 * mutex-protected exchange array and freed by a thread other than the one
 * that allocated them. Thread 0 also calls pm_check_heap, pm_mallinfo and
 * pm_malloc_trim while the others run. At the end pm_check_heap() == 0.
 * Run time: PMT_STRESS_SECONDS (default 6, 2 under sanitizers).
 */
#define _GNU_SOURCE
#include "../common.h"

#include <pthread.h>
#include <stdatomic.h>

enum { NTHREADS = 8, LOCAL = 256, EXCHANGE = 128 };

typedef struct block {
    unsigned char *p;
    size_t n;
    uint64_t key;  /* identity for the pattern (survives realloc moves) */
    uint64_t seed; /* the allocating thread's seed                     */
    int owner;
} block_t;

static pthread_mutex_t xlock = PTHREAD_MUTEX_INITIALIZER;
static block_t xchg[EXCHANGE];
static int xcount;

static atomic_int stop;
static atomic_long cross_frees, total_ops, errors, heap_checks;
static pthread_mutex_t errlock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[512];

static void report(const char *fmt, ...)
{
    va_list ap;
    atomic_fetch_add(&errors, 1);
    pthread_mutex_lock(&errlock);
    if (first_error[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(first_error, sizeof first_error, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&errlock);
}

static size_t stress_size(uint64_t *rng)
{
    unsigned r = (unsigned)(pmt_rand(rng) % 1000);
    if (r < 700)
        return 8 + pmt_rand(rng) % 249;              /* 8 .. 256 B    */
    if (r < 900)
        return 257 + pmt_rand(rng) % 8000;           /* .. 8 KiB      */
    if (r < 980)
        return 8192 + pmt_rand(rng) % (120 * 1024);  /* .. 128 KiB    */
    if (r < 995)
        return 128 * 1024 + pmt_rand(rng) % (896 * 1024); /* .. 1 MiB */
    return PMT_MIB + pmt_rand(rng) % (3 * PMT_MIB + 1); /* .. 4 MiB   */
}

static int check_block(const block_t *b, int tid, const char *when)
{
    size_t bad = pmt_verify(b->p, b->n, b->key, b->seed);
    if (bad != (size_t)-1) {
        report("thread %d, %s: block %p (%zu B, from thread %d) damaged at byte %zu", tid,
               when, (void *)b->p, b->n, b->owner, bad);
        return -1;
    }
    return 0;
}

static void *stress_thread(void *arg)
{
    int tid = (int)(intptr_t)arg;
    uint64_t seed = 0x5EED0000u + (uint64_t)tid;
    uint64_t rng = seed;
    uint64_t key = (uint64_t)tid << 48;
    block_t mine[LOCAL];
    memset(mine, 0, sizeof mine);
    long ops = 0;

    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        block_t *b = &mine[pmt_rand(&rng) % LOCAL];
        unsigned what = (unsigned)(pmt_rand(&rng) % 100);
        ops++;
        if (b->p == NULL) {
            size_t n = stress_size(&rng);
            unsigned char *p = what < 90 ? pm_malloc(n) : pm_memalign(64, n);
            if (p == NULL) {
                report("thread %d: allocation of %zu failed", tid, n);
                break;
            }
            *b = (block_t){ p, n, key++, seed, tid };
            pmt_fill(p, n, b->key, seed);
        } else if (what < 40) {
            if (check_block(b, tid, "before free") == 0)
                pm_free(b->p);
            b->p = NULL;
        } else if (what < 70) {
            /* Hand over to another thread: it checks and frees. */
            pthread_mutex_lock(&xlock);
            if (xcount < EXCHANGE) {
                xchg[xcount++] = *b;
                b->p = NULL;
            }
            pthread_mutex_unlock(&xlock);
        } else if (what < 80) {
            size_t n = stress_size(&rng);
            if (check_block(b, tid, "before realloc") != 0) {
                b->p = NULL;
                continue;
            }
            unsigned char *q = pm_realloc(b->p, n);
            if (q == NULL) {
                report("thread %d: realloc to %zu failed", tid, n);
                break;
            }
            size_t keep = b->n < n ? b->n : n;
            size_t bad = pmt_verify(q, keep, b->key, b->seed);
            if (bad != (size_t)-1)
                report("thread %d: realloc %zu -> %zu lost byte %zu", tid, b->n, n, bad);
            b->p = q;
            b->n = n;
            pmt_fill(q, n, b->key, b->seed);
        } else {
            /* Take a block another thread handed over. */
            block_t got = { 0 };
            pthread_mutex_lock(&xlock);
            for (int i = xcount - 1; i >= 0; i--) {
                if (xchg[i].owner != tid) {
                    got = xchg[i];
                    xchg[i] = xchg[--xcount];
                    break;
                }
            }
            pthread_mutex_unlock(&xlock);
            if (got.p != NULL) {
                if (check_block(&got, tid, "before a cross-thread free") == 0)
                    pm_free(got.p);
                atomic_fetch_add(&cross_frees, 1);
            }
        }
        if (tid == 0 && ops % 4096 == 0) {
            /* Whole-heap calls while the other threads run. */
            if (pm_check_heap() != 0)
                report("pm_check_heap failed during the run (op %ld)", ops);
            atomic_fetch_add(&heap_checks, 1);
            struct pm_mallinfo mi = pm_mallinfo();
            if (mi.narenas < 1)
                report("mallinfo narenas %zu", mi.narenas);
            if (ops % (4096 * 8) == 0)
                pm_malloc_trim(0);
        }
    }
    for (int i = 0; i < LOCAL; i++) {
        if (mine[i].p != NULL && check_block(&mine[i], tid, "at the end") == 0)
            pm_free(mine[i].p);
    }
    atomic_fetch_add(&total_ops, ops);
    return NULL;
}

static void test_stress_threads(void **state)
{
    (void)state;
    const char *v = getenv("PMT_STRESS_SECONDS");
    double seconds = v && *v ? atof(v) : PMT_SCALE(6.0, 2.0);
    pthread_t t[NTHREADS];
    for (intptr_t i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, stress_thread, (void *)i), 0);
    double end = pmt_now() + seconds;
    while (pmt_now() < end && atomic_load(&errors) == 0)
        usleep(20000);
    atomic_store(&stop, 1);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    /* Whatever is still in the exchange: check and free here. */
    for (int i = 0; i < xcount; i++) {
        if (check_block(&xchg[i], -1, "drain") == 0)
            pm_free(xchg[i].p);
    }
    xcount = 0;
    print_message("stress: %ld ops, %ld cross-thread frees, %ld concurrent heap checks, "
                  "%zu arenas\n", atomic_load(&total_ops), atomic_load(&cross_frees),
                  atomic_load(&heap_checks), pm_mallinfo().narenas);
    if (atomic_load(&errors) != 0)
        fail_msg("%ld errors, first: %s", atomic_load(&errors), first_error);
    assert_true(atomic_load(&cross_frees) > 100);
    assert_int_equal(pm_check_heap(), 0);
    struct pm_mallinfo mi = pm_mallinfo();
    assert_true(mi.narenas >= 2);
    assert_int_equal(mi.hblks, 0);
    assert_int_equal(pm_check_heap(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
