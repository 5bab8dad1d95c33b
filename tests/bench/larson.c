/* SPDX-License-Identifier: MIT */
/*
 * larson.c - the Larson & Krishnan server benchmark (after larson.cpp in
 * Hoard and mimalloc-bench), written afresh for pmalloc.
 *
 * Every thread owns an array of SLOTS blocks; it repeatedly frees a random
 * block and replaces it with a new one of random size (16-1000 bytes). After
 * each round the threads exit and a new set of threads takes over the arrays,
 * shifted by one, so most blocks are freed by a thread other than the one that
 * allocated them (and by a thread that did not exist when they were made).
 * The initial blocks are allocated by the main thread. The total number of
 * replacements is fixed (split among the threads); ops = mallocs + frees.
 */
#include "bench.h"

#define SLOTS     4000
#define MIN_SIZE  16
#define MAX_SIZE  1000
#define ROUNDS    20

typedef struct larson_array {
    void **blk;
    uint32_t *size;
} larson_array_t;

typedef struct larson_worker {
    larson_array_t *arr;   /* the array this thread works on this round */
    long replacements;
    uint64_t seed;
} larson_worker_t;

static void *larson_run_worker(void *argp)
{
    larson_worker_t *w = argp;
    larson_array_t *a = w->arr;
    bench_rng_t rng;

    bench_rng_init(&rng, w->seed);
    for (long k = 0; k < w->replacements; k++) {
        size_t i = bench_rng_range(&rng, 0, SLOTS - 1);
        size_t n = bench_rng_range(&rng, MIN_SIZE, MAX_SIZE);

        bench_check(a->blk[i], a->size[i], i);
        BM_FREE(a->blk[i]);
        a->blk[i] = bench_alloc(n);
        a->size[i] = (uint32_t)n;
        bench_tag(a->blk[i], n, i);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args_t args;
    bench_rng_t rng;
    larson_array_t *arrays;
    larson_worker_t *workers;
    long total, per_round;
    double t0;

    bench_parse(argc, argv, "larson", &args);
    total = bench_scaled(&args, 36e6);
    per_round = total / ROUNDS / args.threads;
    if (per_round < 1)
        per_round = 1;
    arrays = BM_CALLOC((size_t)args.threads, sizeof(*arrays));
    workers = BM_CALLOC((size_t)args.threads, sizeof(*workers));
    if (!arrays || !workers)
        bench_fail("out of memory for the arrays");

    t0 = bench_now();
    bench_rng_init(&rng, args.seed);
    for (int t = 0; t < args.threads; t++) {
        arrays[t].blk = bench_alloc(SLOTS * sizeof(void *));
        arrays[t].size = bench_alloc(SLOTS * sizeof(uint32_t));
        for (size_t i = 0; i < SLOTS; i++) {
            size_t n = bench_rng_range(&rng, MIN_SIZE, MAX_SIZE);

            arrays[t].blk[i] = bench_alloc(n);
            arrays[t].size[i] = (uint32_t)n;
            bench_tag(arrays[t].blk[i], n, i);
        }
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (int t = 0; t < args.threads; t++) {
            /* a different thread (and array) each round: blocks cross threads */
            workers[t].arr = &arrays[(t + r) % args.threads];
            workers[t].replacements = per_round;
            workers[t].seed = args.seed + (uint64_t)r * 1000 + (uint64_t)t;
        }
        bench_run_threads(args.threads, larson_run_worker, workers, sizeof(*workers));
    }
    for (int t = 0; t < args.threads; t++) {
        for (size_t i = 0; i < SLOTS; i++) {
            bench_check(arrays[t].blk[i], arrays[t].size[i], i);
            BM_FREE(arrays[t].blk[i]);
        }
        BM_FREE(arrays[t].blk);
        BM_FREE(arrays[t].size);
    }
    bench_report(&args, 2LL * per_round * ROUNDS * args.threads
                 + 2LL * (SLOTS + 2) * args.threads, t0);
    BM_FREE(arrays);
    BM_FREE(workers);
    return 0;
}
