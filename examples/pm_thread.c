/* SPDX-License-Identifier: MIT */
/*
 * pm_thread.c - demo: many threads allocating and freeing through pmalloc at
 * once, some blocks freed by a thread other than the one that allocated
 * them; then the settings in force, the arena count and per-arena stats.
 *
 *   ./examples/pm_thread [threads [rounds]]        (default 8 threads x 1000000)
 *   PM_ARENA_MAX=1 ./examples/pm_thread            (every thread shares one arena)
 *   PM_ARENA_MAX=4 ./examples/pm_thread            (at most four arenas)
 *
 * Examples are ordinary programs: they may use stdio (which uses the C
 * library's malloc, not pmalloc).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pmalloc.h"

#define SLOTS        512   /* blocks each thread keeps live at once          */
#define MAILBOX_CAP  4096  /* blocks waiting in a mailbox for another thread */
#define MAX_THREADS  1024

/* A block handed to another thread to free: its size, so the receiver can
 * verify the pattern the sender wrote before freeing it. */
typedef struct {
    unsigned char *ptr;
    size_t size;
} handoff_t;

/* One mailbox per thread; thread i posts into mailbox (i + 1) % n. */
typedef struct {
    pthread_mutex_t lock;
    handoff_t items[MAILBOX_CAP];
    size_t count;
} mailbox_t;

typedef struct {
    int index;
    int nthreads;
    long rounds;
    mailbox_t *boxes;
    unsigned long allocs, frees, cross_frees, failures;
} worker_t;

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: cheap, per thread, no shared state */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* Mostly small requests, some medium ones, a few large enough for the large
 * companion arenas (over 64 KiB). */
static size_t rng_size(uint64_t *s)
{
    uint64_t r = rng_next(s);
    unsigned pick = (unsigned)(r % 1000);

    if (pick < 850)
        return (size_t)(r >> 20) % 512 + 1;          /* 1 B .. 512 B     */
    if (pick < 990)
        return (size_t)(r >> 20) % (32 * 1024) + 1;  /* up to 32 KiB     */
    return (size_t)(r >> 20) % (256 * 1024) + 1;     /* up to 256 KiB    */
}

/* Stamp the first and last bytes so that a block freed elsewhere can be
 * checked for damage first. */
static void block_stamp(unsigned char *p, size_t size, unsigned char tag)
{
    p[0] = tag;
    p[size - 1] = tag;
}

static int block_intact(const unsigned char *p, size_t size, unsigned char tag)
{
    return p[0] == tag && p[size - 1] == tag;
}

static unsigned char size_tag(size_t size)
{
    return (unsigned char)(size * 31 + 7);
}

static void mailbox_drain(worker_t *w)
{
    mailbox_t *box = &w->boxes[w->index];
    handoff_t got[MAILBOX_CAP];
    size_t n;

    pthread_mutex_lock(&box->lock);
    n = box->count;
    memcpy(got, box->items, n * sizeof got[0]);
    box->count = 0;
    pthread_mutex_unlock(&box->lock);

    /* Free outside the mailbox lock: the allocator takes its own locks. */
    for (size_t i = 0; i < n; i++) {
        if (!block_intact(got[i].ptr, got[i].size, size_tag(got[i].size))) {
            fprintf(stderr, "pm_thread: block %p damaged in transit\n", (void *)got[i].ptr);
            abort();
        }
        pm_free(got[i].ptr);
        w->cross_frees++;
    }
}

/* Hand p to the next thread; returns 0 when its mailbox is full. */
static int mailbox_post(worker_t *w, unsigned char *p, size_t size)
{
    mailbox_t *box = &w->boxes[(w->index + 1) % w->nthreads];
    int posted = 0;

    pthread_mutex_lock(&box->lock);
    if (box->count < MAILBOX_CAP) {
        box->items[box->count++] = (handoff_t){p, size};
        posted = 1;
    }
    pthread_mutex_unlock(&box->lock);
    return posted;
}

static void *worker_run(void *arg)
{
    worker_t *w = arg;
    unsigned char *slot[SLOTS] = {0};
    size_t slot_size[SLOTS] = {0};
    uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(w->index + 1);

    for (long round = 0; round < w->rounds; round++) {
        unsigned i = (unsigned)(rng_next(&seed) % SLOTS);

        if (slot[i]) {
            /* One free in eight goes to another thread: cross-thread frees
             * are the case per-thread arenas and caches must get right. */
            if (w->nthreads > 1 && rng_next(&seed) % 8 == 0 &&
                mailbox_post(w, slot[i], slot_size[i])) {
                slot[i] = NULL;
            } else {
                pm_free(slot[i]);
                slot[i] = NULL;
                w->frees++;
            }
        } else {
            size_t size = rng_size(&seed);
            unsigned char *p = pm_malloc(size);

            if (!p) {
                w->failures++;
                continue;
            }
            block_stamp(p, size, size_tag(size));
            slot[i] = p;
            slot_size[i] = size;
            w->allocs++;
        }
        if (round % 64 == 0)
            mailbox_drain(w);
    }
    for (unsigned i = 0; i < SLOTS; i++) {
        if (slot[i]) {
            pm_free(slot[i]);
            w->frees++;
        }
    }
    return NULL;
}

static long arg_long(const char *s, const char *what, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "pm_thread: %s must be a number from %ld to %ld, not '%s'\n",
                what, min, max, s);
        exit(2);
    }
    return v;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
    int nthreads = 8;
    long rounds = 1000000;
    pthread_t tid[MAX_THREADS];
    worker_t *workers;
    mailbox_t *boxes;
    unsigned long allocs = 0, frees = 0, cross = 0, failures = 0;
    struct timespec t0;
    double elapsed;
    struct pm_mallinfo mi;

    /* Line by line even into a pipe, so that pmalloc's own lines on stderr
     * land between the right lines of this output. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 3 || (argc > 1 && argv[1][0] == '-')) {
        /* Why the base name without "lt-": run from the build tree, argv[0]
         * is libtool's examples/.libs/lt-pm_thread. */
        const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
        if (strncmp(name, "lt-", 3) == 0)
            name += 3;
        fprintf(stderr, "usage: %s [threads [rounds-per-thread]]   (default 8 1000000)\n",
                name);
        return 2;
    }
    if (argc > 1)
        nthreads = (int)arg_long(argv[1], "threads", 1, MAX_THREADS);
    if (argc > 2)
        rounds = arg_long(argv[2], "rounds", 1, 1000000000L);
    workers = calloc((size_t)nthreads, sizeof *workers);
    boxes = calloc((size_t)nthreads, sizeof *boxes);
    if (!workers || !boxes) {
        perror("pm_thread: calloc");
        return 1;
    }
    for (int i = 0; i < nthreads; i++)
        pthread_mutex_init(&boxes[i].lock, NULL);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < nthreads; i++) {
        workers[i] = (worker_t){.index = i, .nthreads = nthreads, .rounds = rounds,
                                .boxes = boxes};
        int err = pthread_create(&tid[i], NULL, worker_run, &workers[i]);
        if (err) {
            fprintf(stderr, "pm_thread: pthread_create: %s\n", strerror(err));
            return 1;
        }
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(tid[i], NULL);
    /* Blocks still in mailboxes after their receiver finished: free them
     * here, from yet another thread. */
    for (int i = 0; i < nthreads; i++)
        mailbox_drain(&workers[i]);
    elapsed = seconds_since(&t0);

    for (int i = 0; i < nthreads; i++) {
        allocs += workers[i].allocs;
        frees += workers[i].frees;
        cross += workers[i].cross_frees;
        failures += workers[i].failures;
    }
    mi = pm_mallinfo();

    printf("pm_thread: %d threads x %ld rounds in %.3f s\n", nthreads, rounds, elapsed);
    printf("  allocations %lu, frees %lu (of which cross-thread %lu), failed %lu\n",
           allocs, frees + cross, cross, failures);
    printf("  arenas created (pm_mallinfo().narenas): %zu\n", mi.narenas);
    printf("  heap bytes %zu, in use %zu, free %zu, mmapped %zu in %zu chunks\n",
           mi.arena, mi.uordblks, mi.fordblks, mi.hblkhd, mi.hblks);
    printf("  heap check: %s\n", pm_check_heap() == 0 ? "consistent" : "PROBLEMS (see above)");
    printf("\nsettings in force (pm_config_dump, on stderr):\n");
    fflush(stdout);
    if (pm_config_dump(2, PM_DUMP_TEXT) != 0)
        perror("pm_thread: pm_config_dump");
    printf("\nper-arena statistics (pm_malloc_stats, on stderr):\n");
    fflush(stdout);
    pm_malloc_stats();

    for (int i = 0; i < nthreads; i++)
        pthread_mutex_destroy(&boxes[i].lock);
    free(boxes);
    free(workers);
    return allocs == frees + cross && failures == 0 ? 0 : 1;
}
