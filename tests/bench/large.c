/* SPDX-License-Identifier: MIT */
/*
 * large.c - large blocks, 64 KiB to 8 MiB (log-uniform), across the mmap
 * threshold: each thread keeps WINDOW blocks alive, repeatedly frees a random
 * one and allocates a replacement, writing one byte in every page of it (the
 * page faults are part of the cost, and an allocator that keeps freed pages
 * mapped avoids them). Before a block is freed, a byte in each of its pages is
 * checked. The total number of replacements is fixed (split among the
 * threads); ops = mallocs + frees.
 */
#include "bench.h"

#define WINDOW    8
#define MIN_SHIFT 16   /* 64 KiB */
#define MAX_SHIFT 23   /* 8 MiB  */
#define PAGE      4096

/* Log-uniform: a random power of two in range, then uniform below the next. */
static size_t lg_size(bench_rng_t *rng)
{
    unsigned s = (unsigned)bench_rng_range(rng, MIN_SHIFT, MAX_SHIFT - 1);

    return bench_rng_range(rng, (size_t)1 << s, (size_t)1 << (s + 1));
}

static void lg_fill(uint8_t *p, size_t n, uint8_t key)
{
    for (size_t off = 0; off < n; off += PAGE)
        p[off] = (uint8_t)(key + off / PAGE);
    p[n - 1] = key;
}

static void lg_check(const uint8_t *p, size_t n, uint8_t key)
{
    for (size_t off = 0; off < n; off += PAGE)
        if (p[off] != (uint8_t)(key + off / PAGE))
            bench_fail("block %p (%zu bytes) damaged at offset %zu", (const void *)p, n, off);
    if (p[n - 1] != key)
        bench_fail("block %p (%zu bytes) damaged at its end", (const void *)p, n);
}

static void *lg_run_worker(void *argp)
{
    bench_worker_t *w = argp;
    uint8_t *blk[WINDOW] = { 0 };
    size_t size[WINDOW] = { 0 };
    bench_rng_t rng;

    bench_rng_init(&rng, w->seed);
    for (long k = 0; k < w->work; k++) {
        size_t i = bench_rng_range(&rng, 0, WINDOW - 1);

        if (blk[i]) {
            lg_check(blk[i], size[i], (uint8_t)(i + size[i]));
            BM_FREE(blk[i]);
        }
        size[i] = lg_size(&rng);
        blk[i] = bench_alloc(size[i]);
        lg_fill(blk[i], size[i], (uint8_t)(i + size[i]));
    }
    for (size_t i = 0; i < WINDOW; i++) {
        if (blk[i]) {
            lg_check(blk[i], size[i], (uint8_t)(i + size[i]));
            BM_FREE(blk[i]);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    return bench_main_even(argc, argv, "large", 4000, lg_run_worker, 2);
}
