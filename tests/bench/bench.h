/* SPDX-License-Identifier: MIT */
/*
 * bench.h - shared by every benchmark workload in tests/bench/.
 *
 * Each workload is one C file compiled twice: with -DBENCH_PM its allocation
 * calls go to pm_malloc & co. (linked against libpmalloc); without, to libc's
 * malloc & co., which run.sh also runs under LD_PRELOAD of jemalloc, tcmalloc
 * and mimalloc. The harness's own arrays go through the same macros: one
 * allocator serves every allocation the program makes, as under a preload
 * (libc's internal ones aside). This header holds the allocation macros, the
 * common command line (--threads, --scale, --quick, --seed), a small PRNG,
 * block tagging for the correctness checks and the one result line run.sh
 * parses:
 *   bench: workload=NAME threads=N ops=OPS elapsed=SECONDS
 * A workload that finds a damaged block exits with status 2 (bench_fail).
 */
#ifndef PM_BENCH_H
#define PM_BENCH_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef BENCH_PM
#include "pmalloc.h"
#define BM_MALLOC(n)     pm_malloc(n)
#define BM_FREE(p)       pm_free(p)
#define BM_REALLOC(p, n) pm_realloc((p), (n))
#define BM_CALLOC(m, n)  pm_calloc((m), (n))
#define BM_VARIANT       "pmalloc"
#else
#define BM_MALLOC(n)     malloc(n)
#define BM_FREE(p)       free(p)
#define BM_REALLOC(p, n) realloc((p), (n))
#define BM_CALLOC(m, n)  calloc((m), (n))
#define BM_VARIANT       "libc"
#endif

#define BM_UNUSED __attribute__((unused))

typedef struct bench_args {
    int threads;     /* --threads N (default: online CPUs)              */
    double scale;    /* --scale X multiplies the amount of work         */
    unsigned seed;   /* --seed N, for the PRNG                          */
} bench_args_t;

static const char *bench_name = "bench";

/* Report a broken invariant (damaged block, failed allocation) and exit 2. */
static BM_UNUSED __attribute__((noreturn, format(printf, 1, 2)))
void bench_fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s (%s): FAILED: ", bench_name, BM_VARIANT);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static BM_UNUSED void bench_usage(const char *extra)
{
    fprintf(stderr, "usage: %s [--threads N] [--scale X] [--quick] [--seed N]\n"
            "  --threads N  worker threads (default: online CPUs)\n"
            "  --scale X    multiply the amount of work by X (default 1)\n"
            "  --quick      same as --scale 0.2\n"
            "%s", bench_name, extra ? extra : "");
}

/* Parse the common options; the workload names itself for messages. */
static BM_UNUSED void bench_parse(int argc, char **argv, const char *name,
                                  bench_args_t *a)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    bench_name = name;
    a->threads = ncpu > 0 ? (int)ncpu : 2;
    a->scale = 1.0;
    a->seed = 4141;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (!strcmp(o, "--quick")) {
            a->scale *= 0.2;
        } else if (!strcmp(o, "--threads") && v) {
            a->threads = atoi(v);
            i++;
        } else if (!strcmp(o, "--scale") && v) {
            a->scale *= strtod(v, NULL);
            i++;
        } else if (!strcmp(o, "--seed") && v) {
            a->seed = (unsigned)strtoul(v, NULL, 0);
            i++;
        } else if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            bench_usage(NULL);
            exit(0);
        } else {
            bench_usage(NULL);
            exit(64);
        }
    }
    if (a->threads < 1 || a->threads > 1024 || !(a->scale > 0)) {
        bench_usage(NULL);
        exit(64);
    }
}

/* base * scale, at least 1. */
static BM_UNUSED long bench_scaled(const bench_args_t *a, double base)
{
    double v = base * a->scale;

    return v < 1 ? 1 : (long)v;
}

static BM_UNUSED double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The one line run.sh reads: ops counts allocator calls unless a workload
 * says otherwise in its header comment. */
static BM_UNUSED void bench_report(const bench_args_t *a, long long ops, double t0)
{
    printf("bench: workload=%s variant=%s threads=%d ops=%lld elapsed=%.6f\n",
           bench_name, BM_VARIANT, a->threads, ops, bench_now() - t0);
    fflush(stdout);
}

/* xorshift64*: fast, good enough to pick sizes and slots. */
typedef struct bench_rng { uint64_t s; } bench_rng_t;

static BM_UNUSED void bench_rng_init(bench_rng_t *r, uint64_t seed)
{
    /* splitmix64 step so that nearby seeds give unrelated streams */
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    r->s = (z ^ (z >> 31)) | 1;
}

static inline uint64_t bench_rng_next(bench_rng_t *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

/* Uniform in [lo, hi]. */
static inline size_t bench_rng_range(bench_rng_t *r, size_t lo, size_t hi)
{
    return lo + (size_t)((bench_rng_next(r) >> 11) % (hi - lo + 1));
}

/* Tag a block of n >= 1 bytes: its first and last byte derive from n and a
 * key, so a block that was overwritten, handed out twice or mixed up with
 * another fails bench_check. */
static inline uint8_t bench_tag_byte(size_t n, uint64_t key)
{
    return (uint8_t)((n * 0x9e37u) ^ (key * 0x85ebu) ^ 0xa5u);
}

static inline void bench_tag(void *p, size_t n, uint64_t key)
{
    uint8_t t = bench_tag_byte(n, key);

    ((uint8_t *)p)[0] = t;
    ((uint8_t *)p)[n - 1] = (uint8_t)~t;
}

static inline void bench_check(const void *p, size_t n, uint64_t key)
{
    uint8_t t = bench_tag_byte(n, key), u = (uint8_t)~t;
    const uint8_t *b = p;

    if (b[0] != t || b[n - 1] != u)
        bench_fail("block %p (%zu bytes) damaged: tag %02x/%02x, expected %02x/%02x",
                   p, n, b[0], b[n - 1], t, u);
}

/* Allocation that must succeed. */
static inline void *bench_alloc(size_t n)
{
    void *p = BM_MALLOC(n);

    if (!p)
        bench_fail("malloc(%zu) returned NULL (errno %d)", n, errno);
    return p;
}

/* What most workloads hand each thread: its share of the work (rounds,
 * iterations, cycles: the workload says), its own seed, and a count of the
 * operations it made where that count varies. */
typedef struct bench_worker {
    long work;
    uint64_t seed;
    long long ops;
} bench_worker_t;

/* One worker per thread, each given per_thread units of work (at least 1)
 * and the seed args->seed + its index. */
static BM_UNUSED bench_worker_t *bench_workers_new(const bench_args_t *a, long per_thread)
{
    bench_worker_t *w = BM_CALLOC((size_t)a->threads, sizeof(*w));

    if (!w)
        bench_fail("out of memory for the workers");
    for (int t = 0; t < a->threads; t++) {
        w[t].work = per_thread > 0 ? per_thread : 1;
        w[t].seed = a->seed + (uint64_t)t;
    }
    return w;
}

/* The operations all n workers counted. */
static BM_UNUSED long long bench_workers_ops(const bench_worker_t *w, int n)
{
    long long ops = 0;

    for (int t = 0; t < n; t++)
        ops += w[t].ops;
    return ops;
}

/* Start n threads running fn(&arg[i * argsize]) and wait for them all. */
static BM_UNUSED void bench_run_threads(int n, void *(*fn)(void *), void *arg, size_t argsize)
{
    pthread_t *tid = BM_CALLOC((size_t)n, sizeof(*tid));

    if (!tid)
        bench_fail("out of memory for %d thread ids", n);
    for (int i = 0; i < n; i++) {
        int e = pthread_create(&tid[i], NULL, fn, (char *)arg + (size_t)i * argsize);

        if (e)
            bench_fail("pthread_create: %s", strerror(e));
    }
    for (int i = 0; i < n; i++)
        pthread_join(tid[i], NULL);
    BM_FREE(tid);
}

/* The whole of a workload whose threads split base units of work evenly
 * (scaled by --scale): run fn on one bench_worker_t per thread and report.
 * The ops are ops_per_unit per unit of work, or with 0 what the workers
 * counted. Returns main's exit status. */
static BM_UNUSED int bench_main_even(int argc, char **argv, const char *name, double base,
                                     void *(*fn)(void *), int ops_per_unit)
{
    bench_args_t args;
    bench_worker_t *w;
    long long ops;
    double t0;

    bench_parse(argc, argv, name, &args);
    w = bench_workers_new(&args, bench_scaled(&args, base) / args.threads);
    t0 = bench_now();
    bench_run_threads(args.threads, fn, w, sizeof(*w));
    ops = ops_per_unit ? (long long)ops_per_unit * w->work * args.threads
                       : bench_workers_ops(w, args.threads);
    bench_report(&args, ops, t0);
    BM_FREE(w);
    return 0;
}

#endif /* PM_BENCH_H */
