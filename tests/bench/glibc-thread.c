/* SPDX-License-Identifier: MIT */
/*
 * glibc-thread.c - after glibc's benchtests/bench-malloc-thread.c: each
 * thread keeps a working set of 1024 blocks and repeatedly frees a random
 * one and allocates a replacement, of a size drawn from glibc's inverse-square
 * distribution between 4 and 32768 bytes (mostly small, a long tail). Blocks
 * never leave their thread. The total number of replacements is fixed (split
 * among the threads); ops = mallocs + frees.
 */
#include "bench.h"

#define WORKING_SET 1024
#define NSIZES      4096
#define MIN_SIZE    4.0
#define MAX_SIZE    32768.0

/* Inverse-square density on [MIN_SIZE, MAX_SIZE], as glibc's get_block_size:
 * with exponent -2, x^(e+1) is 1/x, so the inverse CDF needs no libm. */
static size_t gt_block_size(double r)
{
    double min_pow = 1.0 / MIN_SIZE, max_pow = 1.0 / MAX_SIZE;

    return (size_t)(1.0 / ((max_pow - min_pow) * r + min_pow));
}

static void *gt_run_worker(void *argp)
{
    bench_worker_t *w = argp;
    void **blk = BM_CALLOC(WORKING_SET, sizeof(void *));
    uint32_t *size = BM_CALLOC(WORKING_SET, sizeof(uint32_t));
    uint32_t *sizes = BM_MALLOC(NSIZES * sizeof(uint32_t));
    bench_rng_t rng;

    if (!blk || !size || !sizes)
        bench_fail("out of memory for the working set");
    bench_rng_init(&rng, w->seed);
    for (size_t i = 0; i < NSIZES; i++)
        sizes[i] = (uint32_t)gt_block_size((double)(bench_rng_next(&rng) >> 11) / 0x1p53);
    for (long k = 0; k < w->work; k++) {
        uint64_t r = bench_rng_next(&rng);
        size_t i = r % WORKING_SET, n = sizes[(r >> 32) % NSIZES];

        if (blk[i]) {
            bench_check(blk[i], size[i], i);
            BM_FREE(blk[i]);
        }
        blk[i] = bench_alloc(n);
        size[i] = (uint32_t)n;
        bench_tag(blk[i], n, i);
    }
    for (size_t i = 0; i < WORKING_SET; i++) {
        if (blk[i]) {
            bench_check(blk[i], size[i], i);
            BM_FREE(blk[i]);
        }
    }
    BM_FREE(blk);
    BM_FREE(size);
    BM_FREE(sizes);
    return NULL;
}

int main(int argc, char **argv)
{
    /* each iteration frees (except the first touch of a slot) and allocates */
    return bench_main_even(argc, argv, "glibc-thread", 60e6, gt_run_worker, 2);
}
