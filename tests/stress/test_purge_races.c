/* SPDX-License-Identifier: MIT */
/*
 * test_purge_races.c - what may happen while a purge runs with the arena
 * lock dropped (pmalloc plans a trim under the lock, then madvises after it).
 * This binary defines madvise() itself, so the library's calls land here: a
 * thread that sets delay_next has its next MADV_DONTNEED held for a while,
 * which opens the window that is otherwise a few microseconds wide.
 *  - grow into a top being purged: a realloc that waits for the purge must
 *    look at its neighbour again after the wait; another thread may have
 *    carved the top meanwhile (the two blocks overlapped).
 *  - release of a heap whose cut-off tail is being purged: the heap must
 *    not be unmapped before that madvise is done, or a new mapping in the
 *    hole is zeroed by it.
 *  - fork while a cut tail waits for its purge (its cutter unlocked to map
 *    a new heap): the child makes that purge itself, and may then release
 *    the heap; it hung, its count of purges in flight gone below zero.
 *    mmap() is defined here too, to hold that new heap's mapping open.
 *  - fork while the top's purge is held: the child's copy of those pages
 *    keeps its data, and a later trim in the child must not take them for
 *    zero (calloc handed them out unzeroed).
 *  - fork while a trim purges free runs it took out of the bins: the child
 *    must find them back in its bins (they were lost to it).
 *  - purges that fail (locked pages): the runs go back dirty, and the sweep
 *    that gives them back must not start another inside it.
 * Each case runs in a fresh child with its own settings.
 */
#define _GNU_SOURCE
#include "../common.h"

#include <pthread.h>
#include <semaphore.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static __thread int delay_next;
static sem_t in_madvise;
static unsigned delay_us = 20000;
static void *purge_addr;
static size_t purge_len;

/* refuse_purges: every MADV_DONTNEED fails as on locked pages, after a
 * while, and records how deep in its thread's stack it was called. */
enum { RP_DEEP = 32 * 1024 }; /* stack bytes that mean sweeps nested */
static int refuse_purges; /* atomic: the purger thread reads it */
static __thread uintptr_t stack_base;
static size_t deepest;

int madvise(void *addr, size_t len, int advice)
{
    if (__atomic_load_n(&refuse_purges, __ATOMIC_RELAXED) && advice == MADV_DONTNEED) {
        uintptr_t here = (uintptr_t)__builtin_frame_address(0);
        size_t depth = stack_base > here ? stack_base - here : 0;
        if (depth > __atomic_load_n(&deepest, __ATOMIC_RELAXED))
            __atomic_store_n(&deepest, depth, __ATOMIC_RELAXED);
        if (depth < RP_DEEP) /* past it the case has failed: end it soon */
            usleep(300);
        errno = EINVAL;
        return -1;
    }
    if (delay_next && advice == MADV_DONTNEED) {
        delay_next = 0;
        purge_addr = addr;
        purge_len = len;
        sem_post(&in_madvise);
        usleep(delay_us);
    }
    return (int)syscall(SYS_madvise, addr, len, advice);
}

/* ---- realloc grows into a top being purged -------------------------------- */

enum { GROW_ROUNDS = 12, GROW_CHILDREN = 6 };
static pthread_barrier_t grow_bar;
static unsigned char *grow_p, *grow_q, *grow_r;
static const size_t P_N = 70000, Q_N = 200000, R_N = 100000;

/* Frees a big block that merges into the top; the trim's madvise is held.
 * All blocks here are over 64 KiB: they share the large companion's top. */
static void *grow_trimmer(void *arg)
{
    (void)arg;
    for (int i = 0; i < GROW_ROUNDS; i++) {
        pthread_barrier_wait(&grow_bar); /* grow_p allocated, next to the top */
        void *x = pm_malloc(4 * PMT_MIB);
        if (x == NULL)
            _exit(3); /* the parent reports the status */
        delay_next = 1;
        pm_free(x);
        pthread_barrier_wait(&grow_bar); /* the other two have done their calls */
    }
    return NULL;
}

/* Grows grow_p in place while the purge is held. */
static void *grow_grower(void *arg)
{
    (void)arg;
    for (int i = 0; i < GROW_ROUNDS; i++) {
        pthread_barrier_wait(&grow_bar);
        sem_wait(&in_madvise);
        grow_q = pm_realloc(grow_p, Q_N);
        pthread_barrier_wait(&grow_bar);
    }
    return NULL;
}

static int child_grow_into_purged_top(void)
{
    PMT_REQUIRE(sem_init(&in_madvise, 0, 0) == 0, "sem_init");
    pthread_barrier_init(&grow_bar, NULL, 3);
    pthread_t t[2];
    pthread_create(&t[0], NULL, grow_trimmer, NULL);
    pthread_create(&t[1], NULL, grow_grower, NULL);
    int overlaps = 0;
    for (int i = 0; i < GROW_ROUNDS; i++) {
        grow_p = pm_malloc(P_N);
        PMT_REQUIRE(grow_p != NULL, "malloc");
        memset(grow_p, 0x11, P_N);
        pthread_barrier_wait(&grow_bar);
        usleep(2000); /* the grower is waiting for the purge by now */
        grow_r = pm_malloc(R_N);
        pthread_barrier_wait(&grow_bar);
        PMT_REQUIRE(grow_q != NULL && grow_r != NULL, "allocation failed");
        overlaps += grow_q < grow_r + R_N && grow_r < grow_q + Q_N;
        PMT_REQUIRE(pmt_all_bytes(grow_q, P_N, 0x11), "realloc lost the block's bytes");
        pm_free(grow_r);
        pm_free(grow_q);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    PMT_REQUIRE(overlaps == 0, "%d of %d rounds handed out overlapping blocks", overlaps,
                GROW_ROUNDS);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* ---- a heap released while its tail is purged ---------------------------- */

#define HEAP_OF(p) ((uintptr_t)(p) & ~(uintptr_t)(64 * PMT_MIB - 1))
static void *tail_block;

static void *tail_cutter(void *arg)
{
    (void)arg;
    delay_next = 1;
    pm_free(tail_block); /* the last block before the fence: the tail is cut */
    return NULL;
}

static int child_release_during_tail_purge(void)
{
    PMT_REQUIRE(sem_init(&in_madvise, 0, 0) == 0, "sem_init");
    delay_us = 200000;
    /* Fill the large companion's first heap (it holds the arena and is never
     * released), then lay out a second one: y, x1, x2 and the tail block. */
    char *first = pm_malloc(20 * PMT_MIB), *y;
    PMT_REQUIRE(first != NULL, "malloc");
    for (;;) {
        y = pm_malloc(PMT_MIB);
        PMT_REQUIRE(y != NULL, "malloc");
        if (HEAP_OF(y) != HEAP_OF(first))
            break;
    }
    char *x1 = pm_malloc(16 * PMT_MIB), *x2 = pm_malloc(16 * PMT_MIB);
    tail_block = pm_malloc(16 * PMT_MIB);
    char *x4 = pm_malloc(16 * PMT_MIB);
    PMT_REQUIRE(x1 && x2 && tail_block && x4, "malloc");
    PMT_REQUIRE(HEAP_OF(tail_block) == HEAP_OF(y) && HEAP_OF(x4) != HEAP_OF(y),
                "heap layout not as planned (64 MiB heaps)");
    /* From here 8 MiB blocks are direct mappings: they may land in the hole. */
    PMT_REQUIRE(pm_mallopt(PM_MMAP_THRESHOLD, 4 * PMT_MIB) == 1, "mallopt");
    pthread_t t;
    pthread_create(&t, NULL, tail_cutter, NULL);
    sem_wait(&in_madvise);
    pm_free(x2);
    pm_free(x1);
    pm_free(y); /* the heap is now empty: released */
    const size_t n = 8 * PMT_MIB;
    unsigned char *m[64];
    int landed = 0, nm = 0;
    for (; nm < 64 && !landed; nm++) {
        m[nm] = pm_malloc(n);
        PMT_REQUIRE(m[nm] != NULL, "malloc");
        memset(m[nm], 0x5a, n);
        landed = (char *)purge_addr < (char *)m[nm] + n &&
                 (char *)m[nm] < (char *)purge_addr + purge_len;
    }
    pthread_join(t, NULL);
    size_t zeroed = 0;
    for (int k = 0; k < nm; k++)
        for (size_t i = 0; i < n; i += 4096)
            zeroed += m[k][i] != 0x5a;
    PMT_REQUIRE(zeroed == 0, "%zu pages of live blocks zeroed by the tail's purge", zeroed);
    for (int k = 0; k < nm; k++)
        pm_free(m[k]);
    pm_free(x4);
    pm_free(first);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* ---- fork while a cut tail waits ------------------------------------------ */

static volatile int mmap_armed, in_mmap;

/* Why not under TSan: its runtime maps its own memory through mmap too and
 * does not survive another definition of it. */
#if !PMT_TSAN
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    /* A new heap is mapped with twice its size, to align it. */
    if (mmap_armed && len == 2 * 64 * PMT_MIB) {
        mmap_armed = 0;
        in_mmap = 1;
        usleep(300000);
        in_mmap = 0;
    }
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}
#endif

enum { FT_MAX = 8000 };
static void *ft_blocks[FT_MAX];

static void *ft_grower(void *arg)
{
    (void)arg;
    /* Over what any heap has left: the stash is coalesced (which cuts the
     * old heap's tail), then the lock dropped to map a new heap. */
    return pm_memalign(64, 30 * PMT_MIB);
}

static int child_fork_with_pending_tail(void)
{
    /* 32 KiB blocks until a third heap is 40 MiB in. */
    uintptr_t h[3] = { 0 };
    int n = 0;
    while (n < FT_MAX) {
        void *p = ft_blocks[n++] = pm_malloc(32 * 1024);
        PMT_REQUIRE(p != NULL, "malloc");
        uintptr_t hp = HEAP_OF(p);
        for (int k = 0; k < 3; k++)
            if (h[k] == hp || (h[k] == 0 && (h[k] = hp)))
                break;
        if (h[2] && (uintptr_t)p - h[2] > 40 * PMT_MIB)
            break;
    }
    PMT_REQUIRE(h[2] != 0, "three heaps were not made");
    /* The last blocks of the second heap, freed from the fence back: they
     * wait in the stash. */
    int last = -1;
    for (int i = 0; i < n; i++)
        if (HEAP_OF(ft_blocks[i]) == h[1])
            last = i;
    for (int i = last; i > last - 10; i--) {
        pm_free(ft_blocks[i]);
        ft_blocks[i] = NULL;
    }
    mmap_armed = 1;
    pthread_t t;
    pthread_create(&t, NULL, ft_grower, NULL);
    while (!in_mmap)
        usleep(1000);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        for (int i = 0; i < n; i++)
            if (ft_blocks[i] && HEAP_OF(ft_blocks[i]) == h[1])
                pm_free(ft_blocks[i]);
        pm_malloc_trim(0);
        pm_malloc_trim(0);
        _exit(pm_check_heap() == 0 ? 0 : 3);
    }
    int st = 0;
    PMT_REQUIRE(pid > 0 && waitpid(pid, &st, 0) == pid, "fork");
    void *g;
    pthread_join(t, &g);
    PMT_REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child %s %d",
                WIFSIGNALED(st) ? "was killed by signal" : "exited with",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    pm_free(g);
    for (int i = 0; i < n; i++)
        pm_free(ft_blocks[i]);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* ---- fork while the top is purged ------------------------------------------ */

/* Wait for the forked child pid and join thread t: the child must have
 * exited 0; its status 4 means what4. Returns 0, or 1 (said on stderr). */
static int child_waited_ok(pid_t pid, pthread_t t, const char *what4)
{
    int st = 0;
    PMT_REQUIRE(pid > 0 && waitpid(pid, &st, 0) == pid, "fork");
    pthread_join(t, NULL);
    PMT_REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child %s %d%s%s",
                WIFSIGNALED(st) ? "was killed by signal" : "exited with",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
                WIFEXITED(st) && WEXITSTATUS(st) == 4 ? ": " : "",
                WIFEXITED(st) && WEXITSTATUS(st) == 4 ? what4 : "");
    return 0;
}

static unsigned char *fp_block;

static void *fp_trimmer(void *arg)
{
    (void)arg;
    delay_next = 1;
    pm_free(fp_block); /* into the top, which is cut back: the purge is held */
    return NULL;
}

/* The child's copy of the pages being purged keeps their data (the purge
 * happens in the parent); a trim the child makes later, below them, must
 * not take them for zero, or calloc hands them out as they are. */
static int child_fork_during_top_purge(void)
{
    PMT_REQUIRE(sem_init(&in_madvise, 0, 0) == 0, "sem_init");
    delay_us = 200000;
    const size_t n = 8 * PMT_MIB;
    fp_block = pm_malloc(n);
    PMT_REQUIRE(fp_block != NULL, "malloc");
    memset(fp_block, 0xab, n);
    pthread_t t;
    pthread_create(&t, NULL, fp_trimmer, NULL);
    sem_wait(&in_madvise);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        pm_free(pm_malloc(PMT_MIB)); /* the top grows, then is trimmed below */
        void *front = pm_malloc(100000);
        unsigned char *q = pm_calloc(1, n - PMT_MIB);
        _exit(front && q && pmt_all_bytes(q, n - PMT_MIB, 0) ? 0 : 4);
    }
    if (child_waited_ok(pid, t, "calloc'd memory not zero"))
        return 1;
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* ---- fork while a free run is purged --------------------------------------- */

static void *fr_trimmer(void *arg)
{
    (void)arg;
    delay_next = 1;
    pm_malloc_trim(SIZE_MAX / 2); /* no top to cut: only free runs go back */
    return NULL;
}

/* A trim takes free runs out of the bins while it purges them; in a child
 * forked meanwhile no thread puts them back: they must be back in its bins,
 * not lost to it. */
static int child_fork_during_run_purge(void)
{
    PMT_REQUIRE(sem_init(&in_madvise, 0, 0) == 0, "sem_init");
    delay_us = 200000;
    const size_t n = 4 * PMT_MIB;
    unsigned char *run = pm_malloc(n), *guard = pm_malloc(100000);
    PMT_REQUIRE(run && guard, "malloc");
    memset(run, 0x3c, n);
    pm_free(run);
    pthread_t t;
    pthread_create(&t, NULL, fr_trimmer, NULL);
    sem_wait(&in_madvise);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        unsigned char *again = pm_malloc(n);
        _exit(again == run && pm_check_heap() == 0 ? 0 : 4);
    }
    if (child_waited_ok(pid, t, "the run was lost to it"))
        return 1;
    unsigned char *again = pm_malloc(n);
    PMT_REQUIRE(again == run, "the run was not back in the parent's bins");
    pm_free(again);
    pm_free(guard);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* ---- purges that fail, sweep after sweep ---------------------------------- */

enum { RP_RUNS = 64 };
static void *rp_run[RP_RUNS];
static int rp_done; /* atomic */

/* Frees the runs one by one: each is a free run of its own (a guard after
 * it), and each free may run a sweep. */
static void *rp_freer(void *arg)
{
    (void)arg;
    stack_base = (uintptr_t)__builtin_frame_address(0);
    for (int i = 0; i < RP_RUNS; i++) {
        pm_free(rp_run[i]);
        usleep(100);
    }
    __atomic_store_n(&rp_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Small calls, each of which may run a sweep. */
static void *rp_sweeper(void *arg)
{
    (void)arg;
    stack_base = (uintptr_t)__builtin_frame_address(0);
    while (!__atomic_load_n(&rp_done, __ATOMIC_ACQUIRE))
        pm_free(pm_malloc(100));
    return NULL;
}

/* Runs whose purge fails go back to the bins dirty and are taken again by
 * a later sweep. Giving them back must not start that sweep inside this
 * one: with other threads freeing meanwhile, each sweep found more, one call
 * deeper, until the stack ran out (10,000 frames in a helper's run). */
static int child_failed_purges_do_not_nest(void)
{
    void *guard[RP_RUNS];
    for (int i = 0; i < RP_RUNS; i++) {
        rp_run[i] = pm_malloc(80 * 1024);
        guard[i] = pm_malloc(70000);
        PMT_REQUIRE(rp_run[i] && guard[i], "malloc");
    }
    __atomic_store_n(&refuse_purges, 1, __ATOMIC_RELAXED);
    pthread_t t[2];
    pthread_create(&t[0], NULL, rp_freer, NULL);
    pthread_create(&t[1], NULL, rp_sweeper, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    __atomic_store_n(&refuse_purges, 0, __ATOMIC_RELAXED); /* the purger reads it too */
    for (int i = 0; i < RP_RUNS; i++)
        pm_free(guard[i]);
    size_t d = __atomic_load_n(&deepest, __ATOMIC_RELAXED);
    PMT_REQUIRE(d > 0, "no purge was attempted");
    PMT_REQUIRE(d < RP_DEEP, "purges ran %zu bytes deep in the stack: sweeps nested", d);
    PMT_REQUIRE_HEAP_OK();
    return 0;
}

/* ---- cmocka ---------------------------------------------------------------- */

static const char *const grow_env[] = { "PM_ARENA_MAX=1",   "PM_TCACHE_COUNT=0",
                                        "PM_DECAY_MS=0",    "PM_TRIM_THRESHOLD=0",
                                        "PM_TOP_PAD=0",     NULL };

/* Why several children: which waiting thread takes the lock first tends to
 * hold for a whole process, so one child catches an overlap about half the
 * time; six miss it in about one run of a hundred. */
static void test_grow_into_purged_top(void **state)
{
    (void)state;
    for (int i = 0; i < GROW_CHILDREN; i++)
        pmt_run_case_ok("grow_into_purged_top", grow_env, 120);
}

static void test_release_during_tail_purge(void **state)
{
    (void)state;
    /* Why decay 0: only there is an old heap's free tail cut on the free
     * (with decay its pages are purged in place, on time). */
    const char *env[] = { "PM_DECAY_MS=0", NULL };
    pmt_run_case_ok("release_during_tail_purge", env, 120);
}

static void test_fork_with_pending_tail(void **state)
{
    (void)state;
    if (PMT_TSAN)
        skip();
    const char *env[] = { "PM_ARENA_MAX=1", "PM_DECAY_MS=0", NULL };
    pmt_run_case_ok("fork_with_pending_tail", env, 120);
}

static void test_fork_during_top_purge(void **state)
{
    (void)state;
    if (PMT_TSAN)
        skip();
    const char *env[] = { "PM_ARENA_MAX=1",   "PM_DECAY_MS=0", "PM_TRIM_THRESHOLD=0",
                          "PM_TCACHE_COUNT=0", "PM_TOP_PAD=0",  NULL };
    pmt_run_case_ok("fork_during_top_purge", env, 60);
}

static void test_fork_during_run_purge(void **state)
{
    (void)state;
    if (PMT_TSAN)
        skip();
    /* Why the threshold: with decay 0 a run past it goes on its free, and
     * the trim would find nothing to purge. */
    const char *env[] = { "PM_ARENA_MAX=1", "PM_DECAY_MS=0", "PM_TCACHE_COUNT=0",
                          "PM_TRIM_THRESHOLD=32M", NULL };
    pmt_run_case_ok("fork_during_run_purge", env, 60);
}

static void test_failed_purges_do_not_nest(void **state)
{
    (void)state;
    const char *env[] = { "PM_ARENA_MAX=1", "PM_DECAY_MS=1", "PM_TCACHE_COUNT=0", NULL };
    pmt_run_case_ok("failed_purges_do_not_nest", env, 120);
}

static const pmt_case_t cases[] = {
    { "grow_into_purged_top", child_grow_into_purged_top },
    { "release_during_tail_purge", child_release_during_tail_purge },
    { "fork_with_pending_tail", child_fork_with_pending_tail },
    { "fork_during_top_purge", child_fork_during_top_purge },
    { "fork_during_run_purge", child_fork_during_run_purge },
    { "failed_purges_do_not_nest", child_failed_purges_do_not_nest },
};

int main(int argc, char **argv)
{
    pmt_child_dispatch(argc, argv, cases, PMT_ARRAY_LEN(cases));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_into_purged_top),
        cmocka_unit_test(test_release_during_tail_purge),
        cmocka_unit_test(test_fork_with_pending_tail),
        cmocka_unit_test(test_fork_during_top_purge),
        cmocka_unit_test(test_fork_during_run_purge),
        cmocka_unit_test(test_failed_purges_do_not_nest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
