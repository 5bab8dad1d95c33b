/* SPDX-License-Identifier: MIT */
/*
 * test_random.c - long random sequences of pm_malloc / pm_calloc / pm_realloc
 * / pm_free and the memalign family (issue 2), with every block's contents
 * checked before it is resized or freed and pm_check_heap() == 0 after every
 * step for the first 2000 operations, then every 64. Fixed seeds, plus one
 * from the clock that is printed when it fails (rerun it with PMT_SEED=n).
 * The same sequences also run in children with the thread cache off, with
 * check levels 1 and 2 and with a tiny mmap threshold.
 */
#define _GNU_SOURCE
#include "../common.h"

enum { SLOTS = 256, HEAP_EVERY_UNTIL = 2000, HEAP_EVERY = 64 };

typedef struct slot {
    unsigned char *p;
    size_t n;
    uint64_t key;
} slot_t;

static size_t random_size(uint64_t *rng)
{
    unsigned r = (unsigned)(pmt_rand(rng) % 1000);
    if (r < 600)
        return pmt_rand(rng) % 257;
    if (r < 850)
        return 257 + pmt_rand(rng) % 4000;
    if (r < 950)
        return pmt_rand(rng) % 65536;
    if (r < 990)
        return pmt_rand(rng) % (512 * 1024);
    return pmt_rand(rng) % (4 * 1024 * 1024);
}

static size_t random_align(uint64_t *rng)
{
    unsigned r = (unsigned)(pmt_rand(rng) % 100);
    if (r < 2)
        return PMT_MIB;
    return (size_t)1 << (pmt_rand(rng) % 17); /* 1 .. 64 KiB */
}

#define SEQ_FAIL(...)                                                        \
    do {                                                                     \
        snprintf(err, errcap, "seed %llu op %ld: ", (unsigned long long)seed, \
                 op);                                                        \
        size_t l_ = strlen(err);                                             \
        snprintf(err + l_, errcap - l_, __VA_ARGS__);                        \
        goto out;                                                            \
    } while (0)

/* Runs nops operations from seed; 0 on success, else 1 with err filled. */
static int run_sequence(uint64_t seed, long nops, char *err, size_t errcap)
{
    static slot_t s[SLOTS];
    uint64_t rng = seed * 2654435761u + 1;
    uint64_t next_key = seed << 20;
    long op = 0;
    int rc = 1;
    memset(s, 0, sizeof s);
    for (op = 0; op < nops; op++) {
        slot_t *sl = &s[pmt_rand(&rng) % SLOTS];
        unsigned what = (unsigned)(pmt_rand(&rng) % 100);
        if (sl->p == NULL) {
            size_t n = random_size(&rng), a = 16;
            unsigned char *p;
            int zero = 0;
            errno = 0;
            if (what < 55) {
                p = pm_malloc(n);
            } else if (what < 70) {
                size_t k = 1 + pmt_rand(&rng) % 8;
                n = n / k;
                p = pm_calloc(k, n);
                n *= k;
                zero = 1;
            } else if (what < 80) {
                a = random_align(&rng);
                p = pm_memalign(a, n);
            } else if (what < 90) {
                a = random_align(&rng);
                if (a < sizeof(void *))
                    a = sizeof(void *);
                void *r = NULL;
                int e = pm_posix_memalign(&r, a, n);
                if (e != 0)
                    SEQ_FAIL("pm_posix_memalign(%zu, %zu) = %d", a, n, e);
                p = r;
            } else {
                a = random_align(&rng);
                p = pm_aligned_alloc(a, n);
            }
            if (p == NULL)
                SEQ_FAIL("allocation of %zu (align %zu) failed, errno %d", n, a, errno);
            if ((uintptr_t)p % a != 0 || (uintptr_t)p % 16 != 0)
                SEQ_FAIL("%p not aligned to %zu", (void *)p, a);
            if (pm_malloc_usable_size(p) < n)
                SEQ_FAIL("usable %zu < %zu", pm_malloc_usable_size(p), n);
            if (zero && !pmt_all_bytes(p, n, 0))
                SEQ_FAIL("pm_calloc block of %zu not zero", n);
            sl->p = p;
            sl->n = n;
            sl->key = next_key++;
            pmt_fill(p, n, sl->key, seed);
        } else {
            size_t bad = pmt_verify(sl->p, sl->n, sl->key, seed);
            if (bad != (size_t)-1)
                SEQ_FAIL("block %p (%zu B) damaged at byte %zu", (void *)sl->p, sl->n, bad);
            if (what < 45) {
                pm_free(sl->p);
                sl->p = NULL;
            } else if (what < 80) {
                size_t n = random_size(&rng);
                unsigned char *q = pm_realloc(sl->p, n);
                if (q == NULL && n != 0)
                    SEQ_FAIL("pm_realloc(%zu -> %zu) failed", sl->n, n);
                if (n == 0) {
                    /* realloc(p, 0) frees p and returns NULL. */
                    if (q != NULL)
                        SEQ_FAIL("pm_realloc(p, 0) returned %p", (void *)q);
                    sl->p = NULL;
                } else {
                    if ((uintptr_t)q % 16 != 0)
                        SEQ_FAIL("pm_realloc result %p misaligned", (void *)q);
                    size_t keep = sl->n < n ? sl->n : n;
                    bad = pmt_verify(q, keep, sl->key, seed);
                    if (bad != (size_t)-1)
                        SEQ_FAIL("realloc %zu -> %zu lost byte %zu", sl->n, n, bad);
                    sl->p = q;
                    sl->n = n;
                    pmt_fill(q, n, sl->key, seed);
                }
            } else {
                /* The whole usable size is writable; then restore. */
                size_t u = pm_malloc_usable_size(sl->p);
                if (u < sl->n)
                    SEQ_FAIL("usable %zu < %zu", u, sl->n);
                memset(sl->p, 0xFF, u);
                if (pm_check_heap() != 0)
                    SEQ_FAIL("pm_check_heap after filling the usable size %zu", u);
                pmt_fill(sl->p, sl->n, sl->key, seed);
            }
        }
        if ((op < HEAP_EVERY_UNTIL || op % HEAP_EVERY == 0) && pm_check_heap() != 0)
            SEQ_FAIL("pm_check_heap failed");
    }
    for (int i = 0; i < SLOTS; i++) {
        if (s[i].p == NULL)
            continue;
        size_t bad = pmt_verify(s[i].p, s[i].n, s[i].key, seed);
        if (bad != (size_t)-1)
            SEQ_FAIL("block %p (%zu B) damaged at byte %zu at the end", (void *)s[i].p,
                     s[i].n, bad);
        pm_free(s[i].p);
        s[i].p = NULL;
    }
    if (pm_check_heap() != 0)
        SEQ_FAIL("pm_check_heap failed after freeing everything");
    rc = 0;
out:
    return rc;
}

static long default_ops(void)
{
    const char *v = getenv("PMT_OPS");
    return v && *v ? atol(v) : PMT_SCALE(20000, 4000);
}

static uint64_t clock_seed(void)
{
    const char *v = getenv("PMT_SEED");
    if (v && *v)
        return strtoull(v, NULL, 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000003u) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
}

static void test_random_fixed_seeds(void **state)
{
    (void)state;
    static const uint64_t seeds[] = { 1, 2, 3, 0xDEADBEEF, 20261127 };
    char err[512];
    for (size_t i = 0; i < PMT_ARRAY_LEN(seeds); i++)
        if (run_sequence(seeds[i], default_ops(), err, sizeof err) != 0)
            fail_msg("%s", err);
}

static void test_random_clock_seed(void **state)
{
    (void)state;
    uint64_t seed = clock_seed();
    char err[512];
    if (run_sequence(seed, default_ops(), err, sizeof err) != 0)
        fail_msg("%s (rerun with PMT_SEED=%llu)", err, (unsigned long long)seed);
}

/* Child: one sequence with the seed from PMT_SEED (settings from PM_*). */
static int child_random(void)
{
    char err[512];
    const char *v = getenv("PMT_SEED");
    uint64_t seed = v ? strtoull(v, NULL, 0) : 7;
    PMT_REQUIRE(run_sequence(seed, default_ops(), err, sizeof err) == 0, "%s", err);
    return 0;
}

static void run_child(const char *setting, const char *ops)
{
    char seedvar[64];
    uint64_t seed = clock_seed();
    snprintf(seedvar, sizeof seedvar, "PMT_SEED=%llu", (unsigned long long)seed);
    const char *env[] = { setting, seedvar, ops, NULL };
    pmt_child_t c;
    assert_int_equal(pmt_spawn("random", env, 240, &c), 0);
    if (c.timed_out || !WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
        char st[128];
        pmt_dump_err(&c);
        fail_msg("%s %s: child %s", setting, seedvar, pmt_status_str(&c, st, sizeof st));
    }
    pmt_child_free(&c);
}

static void test_random_no_tcache(void **state)
{
    (void)state;
    run_child("PM_TCACHE_COUNT=0", NULL);
}

static void test_random_check_1(void **state)
{
    (void)state;
    run_child("PM_CHECK=1", NULL);
}

static void test_random_check_2(void **state)
{
    (void)state;
    /* Level 2 validates everything on every call: fewer operations. */
    run_child("PM_CHECK=2", PMT_SANITIZER ? "PMT_OPS=1500" : "PMT_OPS=6000");
}

static void test_random_small_mmap_threshold(void **state)
{
    (void)state;
    run_child("PM_MMAP_THRESHOLD=4K", NULL);
}

static void test_random_perturb(void **state)
{
    (void)state;
    run_child("PM_PERTURB=165", NULL);
}

static const pmt_case_t cases[] = {
    { "random", child_random },
};

int main(int argc, char **argv)
{
    pmt_child_dispatch(argc, argv, cases, PMT_ARRAY_LEN(cases));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_fixed_seeds),
        cmocka_unit_test(test_random_clock_seed),
        cmocka_unit_test(test_random_no_tcache),
        cmocka_unit_test(test_random_check_1),
        cmocka_unit_test(test_random_check_2),
        cmocka_unit_test(test_random_small_mmap_threshold),
        cmocka_unit_test(test_random_perturb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
