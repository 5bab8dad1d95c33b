/* SPDX-License-Identifier: MIT */
/*
 * thread-churn.c - many short-lived threads, each doing a little allocation:
 * the main thread starts them in waves of --threads; each allocates BLOCKS
 * blocks of 16-1024 bytes, frees half of them itself and leaves the other
 * half to the main thread, which frees them after the thread has exited
 * (memory of dead threads must be reusable, and thread-exit handling is part
 * of the cost). The total number of threads is fixed; ops = mallocs + frees.
 */
#include "bench.h"

#define BLOCKS 128

typedef struct tc_worker {
    uint64_t seed;
    void *left[BLOCKS / 2];       /* blocks the thread leaves behind */
    uint16_t left_size[BLOCKS / 2];
} tc_worker_t;

static void *tc_run_worker(void *argp)
{
    tc_worker_t *w = argp;
    void *own[BLOCKS / 2];
    size_t own_size[BLOCKS / 2];
    bench_rng_t rng;

    bench_rng_init(&rng, w->seed);
    for (size_t i = 0; i < BLOCKS / 2; i++) {
        own_size[i] = bench_rng_range(&rng, 16, 1024);
        own[i] = bench_alloc(own_size[i]);
        bench_tag(own[i], own_size[i], i);
        w->left_size[i] = (uint16_t)bench_rng_range(&rng, 16, 1024);
        w->left[i] = bench_alloc(w->left_size[i]);
        bench_tag(w->left[i], w->left_size[i], i);
    }
    for (size_t i = 0; i < BLOCKS / 2; i++) {
        bench_check(own[i], own_size[i], i);
        BM_FREE(own[i]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args_t args;
    tc_worker_t *w;
    long waves;
    double t0;

    bench_parse(argc, argv, "thread-churn", &args);
    waves = bench_scaled(&args, 10000) / args.threads;
    if (waves < 1)
        waves = 1;
    w = BM_CALLOC((size_t)args.threads, sizeof(*w));
    if (!w)
        bench_fail("out of memory for the workers");
    t0 = bench_now();
    for (long k = 0; k < waves; k++) {
        for (int t = 0; t < args.threads; t++)
            w[t].seed = args.seed + (uint64_t)k * 1024 + (uint64_t)t;
        bench_run_threads(args.threads, tc_run_worker, w, sizeof(*w));
        /* the threads are gone: free what they left behind */
        for (int t = 0; t < args.threads; t++) {
            for (size_t i = 0; i < BLOCKS / 2; i++) {
                bench_check(w[t].left[i], w[t].left_size[i], i);
                BM_FREE(w[t].left[i]);
            }
        }
    }
    bench_report(&args, 2LL * BLOCKS * waves * args.threads, t0);
    BM_FREE(w);
    return 0;
}
