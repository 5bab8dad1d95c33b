/* SPDX-License-Identifier: MIT */
/*
 * cache-scratch.c - Hoard's cache-scratch: passive false sharing. The main
 * thread allocates one small object per thread (so they sit side by side)
 * and hands one to each thread, which frees it and then allocates and writes
 * to its own objects. An allocator that gives the freed neighbour back to the
 * freeing thread makes the threads share cache lines. The total number of
 * writes is fixed (split among the threads); ops = words written (cache.h).
 */
#include "cache.h"

#define ITERATIONS 1000
#define INITIAL_SIZE 8

int main(int argc, char **argv)
{
    bench_args_t args;
    cache_worker_t *w;
    long reps;
    double t0;

    bench_parse(argc, argv, "cache-scratch", &args);
    reps = bench_scaled(&args, 500e3) / args.threads;
    w = BM_CALLOC((size_t)args.threads, sizeof(*w));
    if (!w)
        bench_fail("out of memory for the workers");
    t0 = bench_now();
    for (int t = 0; t < args.threads; t++) {
        w[t].initial = bench_alloc(INITIAL_SIZE);
        memset(w[t].initial, t, INITIAL_SIZE);
        w[t].iterations = ITERATIONS;
        w[t].reps = reps > 0 ? reps : 1;
    }
    cache_run(&args, w, t0);
    BM_FREE(w);
    return 0;
}
