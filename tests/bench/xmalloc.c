/* SPDX-License-Identifier: MIT */
/*
 * xmalloc.c - producer/consumer allocation (after Lever & Boreham's
 * xmalloc-test), written afresh for pmalloc.
 *
 * Producer threads allocate blocks of random size (16-512 bytes) and hand
 * them over in batches of BATCH; consumer threads check and free every block,
 * so every block is freed by a thread other than the one that allocated it.
 * The hand-off is a mutex-protected queue of batches: one lock round trip per
 * BATCH blocks keeps the queue from being the bottleneck; its depth is bounded
 * so that memory stays flat. With --threads N, N/2 threads produce and the
 * rest consume; with one thread it produces a batch and consumes it itself.
 * The total number of blocks is fixed; ops = mallocs + frees (blocks only).
 */
#include "bench.h"

#define BATCH      256
#define MAX_QUEUED 64
#define MIN_SIZE   16
#define MAX_SIZE   512

typedef struct xm_batch {
    struct xm_batch *next;
    int n;
    void *blk[BATCH];
} xm_batch_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t nonempty, nonfull;
    xm_batch_t *head, *tail;
    int queued, producers_left;
    long popped;
} xm_queue = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .nonempty = PTHREAD_COND_INITIALIZER,
    .nonfull = PTHREAD_COND_INITIALIZER,
};

typedef struct xm_worker {
    long batches;     /* producer: batches to make */
    uint64_t seed;
} xm_worker_t;

static xm_batch_t *xm_produce_batch(bench_rng_t *rng)
{
    xm_batch_t *b = bench_alloc(sizeof(*b));

    b->next = NULL;
    b->n = BATCH;
    for (int i = 0; i < BATCH; i++) {
        size_t n = bench_rng_range(rng, MIN_SIZE, MAX_SIZE);
        uint16_t *p = bench_alloc(n);

        p[0] = (uint16_t)n;  /* the consumer learns the size from the block */
        bench_tag(p + 1, n - 2, n);
        b->blk[i] = p;
    }
    return b;
}

static void xm_consume_batch(xm_batch_t *b)
{
    for (int i = 0; i < b->n; i++) {
        uint16_t *p = b->blk[i];
        size_t n = p[0];

        if (n < MIN_SIZE || n > MAX_SIZE)
            bench_fail("block %p carries a bad size %zu", (void *)p, n);
        bench_check(p + 1, n - 2, n);
        BM_FREE(p);
    }
    BM_FREE(b);
}

static void xm_push(xm_batch_t *b)
{
    pthread_mutex_lock(&xm_queue.lock);
    while (xm_queue.queued >= MAX_QUEUED)
        pthread_cond_wait(&xm_queue.nonfull, &xm_queue.lock);
    if (xm_queue.tail)
        xm_queue.tail->next = b;
    else
        xm_queue.head = b;
    xm_queue.tail = b;
    xm_queue.queued++;
    pthread_cond_signal(&xm_queue.nonempty);
    pthread_mutex_unlock(&xm_queue.lock);
}

/* NULL once every producer has finished and the queue is drained. */
static xm_batch_t *xm_pop(void)
{
    xm_batch_t *b;

    pthread_mutex_lock(&xm_queue.lock);
    while (!xm_queue.head && xm_queue.producers_left > 0)
        pthread_cond_wait(&xm_queue.nonempty, &xm_queue.lock);
    b = xm_queue.head;
    if (b) {
        xm_queue.head = b->next;
        if (!xm_queue.head)
            xm_queue.tail = NULL;
        xm_queue.queued--;
        xm_queue.popped++;
        pthread_cond_signal(&xm_queue.nonfull);
    }
    pthread_mutex_unlock(&xm_queue.lock);
    return b;
}

static void *xm_run_producer(void *argp)
{
    xm_worker_t *w = argp;
    bench_rng_t rng;

    bench_rng_init(&rng, w->seed);
    for (long k = 0; k < w->batches; k++)
        xm_push(xm_produce_batch(&rng));
    pthread_mutex_lock(&xm_queue.lock);
    /* the last producer wakes every consumer so that they can see the end */
    if (--xm_queue.producers_left == 0)
        pthread_cond_broadcast(&xm_queue.nonempty);
    pthread_mutex_unlock(&xm_queue.lock);
    return NULL;
}

static void *xm_run_consumer(void *argp)
{
    xm_batch_t *b;

    (void)argp;
    while ((b = xm_pop()))
        xm_consume_batch(b);
    return NULL;
}

static void *xm_run_worker(void *argp)
{
    xm_worker_t *w = argp;

    return w->batches ? xm_run_producer(w) : xm_run_consumer(w);
}

int main(int argc, char **argv)
{
    bench_args_t args;
    xm_worker_t *w;
    long batches;
    int producers;
    double t0;

    bench_parse(argc, argv, "xmalloc", &args);
    batches = bench_scaled(&args, 30e3);
    t0 = bench_now();
    if (args.threads == 1) {
        /* one thread: no one to hand over to, so it frees its own batches */
        bench_rng_t rng;

        bench_rng_init(&rng, args.seed);
        for (long k = 0; k < batches; k++)
            xm_consume_batch(xm_produce_batch(&rng));
    } else {
        producers = args.threads / 2;
        /* every producer makes at least one batch: a producer with none
         * would never report its end and the consumers would wait forever */
        batches = (batches > producers ? batches / producers : 1) * producers;
        w = BM_CALLOC((size_t)args.threads, sizeof(*w));
        if (!w)
            bench_fail("out of memory for the workers");
        xm_queue.producers_left = producers;
        for (int i = 0; i < producers; i++) {
            w[i].batches = batches / producers;
            w[i].seed = args.seed + (uint64_t)i;
        }
        bench_run_threads(args.threads, xm_run_worker, w, sizeof(*w));
        if (xm_queue.head || xm_queue.popped != batches)
            bench_fail("%ld of %ld batches consumed", xm_queue.popped, batches);
        BM_FREE(w);
    }
    bench_report(&args, 2LL * batches * (BATCH + 1), t0);
    return 0;
}
