/* SPDX-License-Identifier: MIT */
/*
 * mstress.c - a mixed-size stress test in the spirit of mimalloc's mstress and
 * rpmalloc's rptest: each thread keeps a long-lived working set (LIVE objects
 * of mixed sizes, 16 B to 512 KiB, mostly small) and, round after round,
 * allocates and frees a burst of short-lived objects in random order, replaces
 * a few long-lived ones, and swaps one with a shared exchange array so that
 * objects migrate and die in other threads. One allocation in eight is a
 * calloc, whose memory is checked to be zero. Peak RSS matters as much as
 * time here. The total number of rounds is fixed (split among the threads);
 * ops = mallocs + callocs + frees.
 */
#include <stdatomic.h>

#include "bench.h"

#define LIVE     4000
#define CHURN    64
#define REPLACE  16
#define XFER     256

/* Every object starts with its size and a key, so any thread can check it. */
typedef struct ms_obj {
    uint32_t size;
    uint32_t key;
} ms_obj_t;

static _Atomic(ms_obj_t *) ms_xfer[XFER];

/* 80% 16-256 B, 15% up to 4 KiB, 4.5% up to 32 KiB, 0.5% 64-512 KiB (mmap). */
static size_t ms_size(bench_rng_t *rng, int allow_huge)
{
    unsigned c = (unsigned)bench_rng_range(rng, 0, 999);

    if (c < 800)
        return bench_rng_range(rng, 16, 256);
    if (c < 950)
        return bench_rng_range(rng, 257, 4096);
    if (c < 995 || !allow_huge)
        return bench_rng_range(rng, 4097, 32768);
    return bench_rng_range(rng, 65536, 524288);
}

static ms_obj_t *ms_new(bench_rng_t *rng, int allow_huge, long long *ops)
{
    size_t n = ms_size(rng, allow_huge);
    uint32_t key = (uint32_t)bench_rng_next(rng);
    ms_obj_t *o;

    (*ops)++;
    if ((key & 7) == 0) {
        o = BM_CALLOC(1, n);
        if (!o)
            bench_fail("calloc(1, %zu) returned NULL", n);
        const uint8_t *b = (const uint8_t *)o;
        for (size_t i = 0; i < 16; i++)
            if (b[i] || b[n - 1 - i])
                bench_fail("calloc(1, %zu) = %p is not zeroed", n, (void *)o);
    } else {
        o = bench_alloc(n);
    }
    o->size = (uint32_t)n;
    o->key = key;
    bench_tag(o + 1, n - sizeof(*o), key);
    return o;
}

static void ms_free(ms_obj_t *o, long long *ops)
{
    if (o->size < 16 || o->size > 524288)
        bench_fail("object %p carries a bad size %u", (void *)o, o->size);
    bench_check(o + 1, o->size - sizeof(*o), o->key);
    BM_FREE(o);
    (*ops)++;
}

static void *ms_run_worker(void *argp)
{
    bench_worker_t *w = argp;
    ms_obj_t **live = BM_CALLOC(LIVE, sizeof(*live));
    ms_obj_t *burst[CHURN];
    bench_rng_t rng;
    long long ops = 0; /* in w only at the end: the records share a line */

    if (!live)
        bench_fail("out of memory for the working set");
    bench_rng_init(&rng, w->seed);
    for (size_t i = 0; i < LIVE; i++)
        live[i] = ms_new(&rng, 1, &ops);
    for (long r = 0; r < w->work; r++) {
        for (size_t i = 0; i < CHURN; i++)
            burst[i] = ms_new(&rng, 0, &ops);
        /* free the burst in random order: a partial Fisher-Yates walk */
        for (size_t i = CHURN; i > 0; i--) {
            size_t j = bench_rng_range(&rng, 0, i - 1);

            ms_free(burst[j], &ops);
            burst[j] = burst[i - 1];
        }
        for (size_t i = 0; i < REPLACE; i++) {
            size_t j = bench_rng_range(&rng, 0, LIVE - 1);

            ms_free(live[j], &ops);
            live[j] = ms_new(&rng, 1, &ops);
        }
        {
            size_t j = bench_rng_range(&rng, 0, LIVE - 1);
            ms_obj_t *got = atomic_exchange(&ms_xfer[bench_rng_range(&rng, 0, XFER - 1)],
                                            live[j]);

            /* an empty exchange slot: make a fresh object to keep LIVE full */
            live[j] = got ? got : ms_new(&rng, 1, &ops);
        }
    }
    for (size_t i = 0; i < LIVE; i++)
        ms_free(live[i], &ops);
    BM_FREE(live);
    w->ops = ops;
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args_t args;
    bench_worker_t *w;
    long long ops = 0;
    long rounds;
    double t0;

    bench_parse(argc, argv, "mstress", &args);
    rounds = bench_scaled(&args, 150e3) / args.threads;
    w = bench_workers_new(&args, rounds);
    t0 = bench_now();
    bench_run_threads(args.threads, ms_run_worker, w, sizeof(*w));
    for (size_t i = 0; i < XFER; i++) {
        ms_obj_t *o = atomic_exchange(&ms_xfer[i], NULL);

        if (o)
            ms_free(o, &ops);
    }
    ops += bench_workers_ops(w, args.threads);
    bench_report(&args, ops, t0);
    BM_FREE(w);
    return 0;
}
