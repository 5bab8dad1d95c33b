/* SPDX-License-Identifier: MIT */
/*
 * glibc-simple.c - after glibc's benchtests/bench-malloc-simple.c: one
 * thread allocates a batch of same-size blocks and then frees them all, in
 * order, over and over; for each block size (16, 64, 256, 1024 bytes) and
 * batch length (25, 100, 400, 1600 blocks) in turn, every combination doing
 * the same number of calls. This is the fast path of an allocator (thread
 * cache, bins) with no contention; --threads is ignored. ops = mallocs + frees.
 */
#include "bench.h"

static const size_t simple_sizes[] = { 16, 64, 256, 1024 };
static const size_t simple_batches[] = { 25, 100, 400, 1600 };

#define NSIZES   (sizeof(simple_sizes) / sizeof(simple_sizes[0]))
#define NBATCHES (sizeof(simple_batches) / sizeof(simple_batches[0]))
#define MAX_BATCH 1600

int main(int argc, char **argv)
{
    static void *blk[MAX_BATCH];
    bench_args_t args;
    long long ops = 0;
    long per_combo;
    double t0;

    bench_parse(argc, argv, "glibc-simple", &args);
    args.threads = 1;
    per_combo = bench_scaled(&args, 0.75e6);
    t0 = bench_now();
    for (size_t s = 0; s < NSIZES; s++) {
        for (size_t b = 0; b < NBATCHES; b++) {
            size_t size = simple_sizes[s], n = simple_batches[b];
            long rounds = per_combo / (long)n + 1;  /* per_combo pairs */

            for (long r = 0; r < rounds; r++) {
                for (size_t i = 0; i < n; i++) {
                    blk[i] = bench_alloc(size);
                    bench_tag(blk[i], size, i);
                }
                for (size_t i = 0; i < n; i++) {
                    bench_check(blk[i], size, i);
                    BM_FREE(blk[i]);
                }
            }
            ops += 2LL * rounds * (long long)n;
        }
    }
    bench_report(&args, ops, t0);
    return 0;
}
