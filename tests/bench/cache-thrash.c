/* SPDX-License-Identifier: MIT */
/*
 * cache-thrash.c - Hoard's cache-thrash: active false sharing. Each thread
 * allocates its own small objects one after the other and writes to them; an
 * allocator that serves concurrent threads from the same cache lines makes
 * this slow. The total number of writes is fixed (split among the threads);
 * ops = words written (see cache.h).
 */
#include "cache.h"

#define ITERATIONS 1000

int main(int argc, char **argv)
{
    bench_args_t args;
    cache_worker_t *w;
    long reps;
    double t0;

    bench_parse(argc, argv, "cache-thrash", &args);
    reps = bench_scaled(&args, 500e3) / args.threads;
    w = BM_CALLOC((size_t)args.threads, sizeof(*w));
    if (!w)
        bench_fail("out of memory for the workers");
    for (int t = 0; t < args.threads; t++) {
        w[t].iterations = ITERATIONS;
        w[t].reps = reps > 0 ? reps : 1;
    }
    t0 = bench_now();
    cache_run(&args, w, t0);
    BM_FREE(w);
    return 0;
}
