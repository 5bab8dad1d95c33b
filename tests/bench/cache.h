/* SPDX-License-Identifier: MIT */
/*
 * cache.h - the worker shared by cache-thrash.c and cache-scratch.c (after
 * Hoard's benchmarks of the same names): a thread allocates a small object,
 * writes every word of it over and over, checks it and frees it. If the
 * allocator put two threads' objects in one cache line, the line bounces
 * between the cores (false sharing) and the loop gets many times slower.
 * Object sizes cycle through 8, 16, 32 and 64 bytes. ops = words written.
 */
#ifndef PM_BENCH_CACHE_H
#define PM_BENCH_CACHE_H

#include "bench.h"

typedef struct cache_worker {
    void *initial;        /* cache-scratch: object from the main thread, or NULL */
    long iterations;      /* objects allocated, one after the other             */
    long reps;            /* passes of writes over each object                  */
    long long words;      /* out: words written                                 */
} cache_worker_t;

static void *cache_run_worker(void *argp)
{
    cache_worker_t *w = argp;
    /* Why copies: the workers' records share cache lines, and the loop
     * below reloads what it reads after every volatile write; only the
     * objects under test may be shared by accident. */
    const long iterations = w->iterations, reps = w->reps;
    long long words = 0;

    /* scratch: free the neighbour-of-other-threads object we were given */
    if (w->initial)
        BM_FREE(w->initial);
    for (long i = 0; i < iterations; i++) {
        size_t nwords = (size_t)1 << (i & 3);
        volatile uint64_t *o = bench_alloc(nwords * sizeof(uint64_t));

        for (size_t k = 0; k < nwords; k++)
            o[k] = 0;
        for (long r = 0; r < reps; r++)
            for (size_t k = 0; k < nwords; k++)
                o[k] = o[k] + 1;
        for (size_t k = 0; k < nwords; k++)
            if (o[k] != (uint64_t)reps)
                bench_fail("object %p word %zu is %llu, expected %ld", (void *)o, k,
                           (unsigned long long)o[k], reps);
        BM_FREE((void *)o);
        words += (long long)nwords * (reps + 1);
    }
    w->words = words;
    return NULL;
}

/* Run the workers and report the words written. */
static void cache_run(const bench_args_t *a, cache_worker_t *w, double t0)
{
    long long words = 0;

    bench_run_threads(a->threads, cache_run_worker, w, sizeof(*w));
    for (int t = 0; t < a->threads; t++)
        words += w[t].words;
    bench_report(a, words, t0);
}

#endif /* PM_BENCH_CACHE_H */
