/* SPDX-License-Identifier: MIT */
/*
 * realloc.c - growth by realloc, the way programs build vectors and strings.
 * Each thread keeps NOBJ objects growing side by side (so a neighbour is often
 * in the way of growing in place) in two phases per cycle:
 *  - vectors: append 32-bit elements; when full, double the capacity
 *    (from 4 elements up to 32 Ki elements, 128 KiB);
 *  - strings: append 1-32 bytes at a time, each append a realloc to the
 *    exact new length (naive string building), up to 16 KiB.
 * Every object is checked in full before it is freed, so a realloc that lost
 * or moved data wrongly is caught. The total number of cycles is fixed (split
 * among the threads); ops = mallocs + reallocs + frees.
 */
#include "bench.h"

#define NOBJ        16
#define VEC_MAX     (32 * 1024)
#define STR_MAX     (16 * 1024)

static void *rl_grow(void *p, size_t n)
{
    void *q = BM_REALLOC(p, n);

    if (!q)
        bench_fail("realloc(%p, %zu) returned NULL", p, n);
    return q;
}

static void rl_vectors(bench_worker_t *w)
{
    uint32_t *v[NOBJ];
    size_t cap[NOBJ], len = 0;

    for (size_t i = 0; i < NOBJ; i++) {
        cap[i] = 4;
        v[i] = bench_alloc(cap[i] * sizeof(uint32_t));
        w->ops++;
    }
    /* all vectors grow in lock step, one element each in turn */
    for (len = 0; len < VEC_MAX; len++) {
        for (size_t i = 0; i < NOBJ; i++) {
            if (len == cap[i]) {
                cap[i] *= 2;
                v[i] = rl_grow(v[i], cap[i] * sizeof(uint32_t));
                w->ops++;
            }
            v[i][len] = (uint32_t)(len * 2654435761u + i);
        }
    }
    for (size_t i = 0; i < NOBJ; i++) {
        for (size_t k = 0; k < len; k++)
            if (v[i][k] != (uint32_t)(k * 2654435761u + i))
                bench_fail("vector %p element %zu lost in realloc", (void *)v[i], k);
        BM_FREE(v[i]);
        w->ops++;
    }
}

static void rl_strings(bench_worker_t *w, bench_rng_t *rng)
{
    char *s[NOBJ];
    size_t len[NOBJ];
    int full[NOBJ], nfull = 0;

    for (size_t i = 0; i < NOBJ; i++) {
        s[i] = bench_alloc(1);
        s[i][0] = '\0';
        len[i] = 0;
        full[i] = 0;
        w->ops++;
    }
    while (nfull < NOBJ) {
        for (size_t i = 0; i < NOBJ; i++) {
            size_t add = bench_rng_range(rng, 1, 32);

            if (full[i])
                continue;
            if (len[i] + add > STR_MAX) {
                full[i] = 1;
                nfull++;
                continue;
            }
            s[i] = rl_grow(s[i], len[i] + add + 1);
            w->ops++;
            for (size_t k = 0; k < add; k++, len[i]++)
                s[i][len[i]] = (char)('a' + (len[i] + i) % 26);
            s[i][len[i]] = '\0';
        }
    }
    for (size_t i = 0; i < NOBJ; i++) {
        for (size_t k = 0; k < len[i]; k++)
            if (s[i][k] != (char)('a' + (k + i) % 26))
                bench_fail("string %p byte %zu lost in realloc", (void *)s[i], k);
        if (s[i][len[i]] != '\0')
            bench_fail("string %p lost its terminator", (void *)s[i]);
        BM_FREE(s[i]);
        w->ops++;
    }
}

static void *rl_run_worker(void *argp)
{
    /* A copy to count in: the workers' records share a cache line. */
    bench_worker_t *w = argp, mine = *w;
    bench_rng_t rng;

    bench_rng_init(&rng, mine.seed);
    for (long c = 0; c < mine.work; c++) {
        rl_vectors(&mine);
        rl_strings(&mine, &rng);
    }
    w->ops = mine.ops;
    return NULL;
}

int main(int argc, char **argv)
{
    return bench_main_even(argc, argv, "realloc", 300, rl_run_worker, 0);
}
