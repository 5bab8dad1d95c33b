/* SPDX-License-Identifier: MIT */
/*
 * test_threads.c - fork and thread life cycles under load (issue 2).
 *  - fork while four threads allocate: each child (of a busy parent, with
 *    whatever locks were held at the fork) must be able to malloc, realloc,
 *    memalign and free, pass pm_check_heap and exit 0; alarm() in the child
 *    turns a deadlock into a failure instead of a hang.
 *  - thread churn: thousands of short-lived threads allocate and free (and
 *    leave blocks behind for the main thread to free); the arena count stays
 *    at or below the cap and far below the thread count, and RSS stays
 *    bounded. Repeated in a child with PM_ARENA_MAX=4.
 *  - paired starts: four threads at a time take their first block at the same
 *    moment, wave after wave; each must claim an arena the last wave left
 *    free, never two the same one (which made the loser create an arena).
 *  - caches of threads gone without their destructor are taken back, and the
 *    scan that finds them asks the kernel with the cache-list lock released.
 */
#define _GNU_SOURCE
#include "../common.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/syscall.h>

/* _Fork: glibc 2.34 and later. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
#define PMT_HAVE_FORK_ 1
#else
#define PMT_HAVE_FORK_ 0
#endif

/* ---- fork while other threads allocate ----------------------------------- */

enum { CHURNERS = 4 };
static atomic_int churn_stop;
static atomic_long churn_errors;

static void *churner(void *arg)
{
    uint64_t rng = 1000 + (uint64_t)(uintptr_t)arg;
    enum { K = 64 };
    unsigned char *p[K] = { 0 };
    size_t n[K] = { 0 };
    while (!atomic_load_explicit(&churn_stop, memory_order_relaxed)) {
        int i = (int)(pmt_rand(&rng) % K);
        if (p[i] != NULL) {
            if (pmt_verify(p[i], n[i], (uintptr_t)i, (uint64_t)(uintptr_t)arg) != (size_t)-1)
                atomic_fetch_add(&churn_errors, 1);
            if (pmt_rand(&rng) % 4 == 0) {
                size_t m = pmt_rand(&rng) % 3000;
                unsigned char *q = pm_realloc(p[i], m + 1);
                if (q != NULL) {
                    p[i] = q;
                    n[i] = m + 1;
                    pmt_fill(q, n[i], (uintptr_t)i, (uint64_t)(uintptr_t)arg);
                    continue;
                }
            }
            pm_free(p[i]);
            p[i] = NULL;
        } else {
            unsigned r = (unsigned)(pmt_rand(&rng) % 100);
            n[i] = r < 90 ? 1 + pmt_rand(&rng) % 2000 : 100000 + pmt_rand(&rng) % 400000;
            p[i] = pm_malloc(n[i]);
            if (p[i] == NULL) {
                atomic_fetch_add(&churn_errors, 1);
                continue;
            }
            pmt_fill(p[i], n[i], (uintptr_t)i, (uint64_t)(uintptr_t)arg);
        }
    }
    for (int i = 0; i < K; i++)
        pm_free(p[i]);
    return NULL;
}

/* Runs in the forked child: single-threaded now. */
static int fork_child_work(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg;
    unsigned char *p[32] = { 0 };
    size_t n[32] = { 0 };
    for (int round = 0; round < 300; round++) {
        int i = (int)(pmt_rand(&rng) % 32);
        if (p[i] != NULL) {
            PMT_REQUIRE(pmt_verify(p[i], n[i], (uintptr_t)i, 9) == (size_t)-1, "damaged");
            size_t m = 1 + pmt_rand(&rng) % 200000;
            unsigned char *q = pm_realloc(p[i], m);
            PMT_REQUIRE(q != NULL, "realloc in the child");
            size_t keep = n[i] < m ? n[i] : m;
            PMT_REQUIRE(pmt_verify(q, keep, (uintptr_t)i, 9) == (size_t)-1, "realloc lost");
            p[i] = q;
            n[i] = m;
            pmt_fill(q, m, (uintptr_t)i, 9);
            if (round % 3 == 0) {
                pm_free(p[i]);
                p[i] = NULL;
            }
        } else {
            n[i] = 1 + pmt_rand(&rng) % 5000;
            p[i] = round % 5 == 0 ? pm_memalign(4096, n[i]) : pm_malloc(n[i]);
            PMT_REQUIRE(p[i] != NULL, "malloc in the child");
            pmt_fill(p[i], n[i], (uintptr_t)i, 9);
        }
    }
    for (int i = 0; i < 32; i++)
        pm_free(p[i]);
    PMT_REQUIRE(pm_check_heap() == 0, "pm_check_heap in the child");
    return 0;
}

static void test_fork_while_allocating(void **state)
{
    (void)state;
    pthread_t t[CHURNERS];
    atomic_store(&churn_stop, 0);
    for (intptr_t i = 0; i < CHURNERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churner, (void *)(i + 1)), 0);
    usleep(20000);
    int forks = PMT_SCALE(50, 20), failed = 0;
    char first[256] = "";
    for (int f = 0; f < forks; f++) {
        pmt_child_t c;
        assert_int_equal(pmt_fork_run(fork_child_work, (void *)(uintptr_t)(f + 1), 20, &c), 0);
        if (c.timed_out || !WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
            char st[128];
            if (failed++ == 0) {
                snprintf(first, sizeof first, "fork %d: child %s", f,
                         pmt_status_str(&c, st, sizeof st));
                pmt_dump_err(&c);
            }
        }
        pmt_child_free(&c);
        usleep(2000);
    }
    atomic_store(&churn_stop, 1);
    for (int i = 0; i < CHURNERS; i++)
        pthread_join(t[i], NULL);
    if (failed)
        fail_msg("%d of %d children failed; first: %s", failed, forks, first);
    assert_int_equal(atomic_load(&churn_errors), 0);
    assert_int_equal(pm_check_heap(), 0);
}

/* ---- thread churn -------------------------------------------------------- */

enum { WAVE = 16, LEFT_BEHIND = 2 };
static void *left[WAVE][LEFT_BEHIND];

static void *short_lived(void *arg)
{
    int slot = (int)(intptr_t)arg;
    uint64_t rng = pmt_mix((uint64_t)(uintptr_t)&slot);
    void *p[24];
    for (int i = 0; i < 24; i++) {
        size_t n = i == 0 ? 200000 : 1 + pmt_rand(&rng) % 20000;
        p[i] = pm_malloc(n);
        if (p[i] == NULL)
            return (void *)1;
        memset(p[i], i, n < 256 ? n : 256);
    }
    for (int i = LEFT_BEHIND; i < 24; i++)
        pm_free(p[i]);
    /* A few blocks outlive the thread; the main thread frees them. */
    for (int i = 0; i < LEFT_BEHIND; i++)
        left[slot][i] = p[i];
    return NULL;
}

/* Returns 0, or 1 with a message on stderr. */
static int churn(int nthreads, size_t cap, size_t *narenas_out)
{
    pthread_t t[WAVE];
    void *warm = pm_malloc(100);
    pm_free(warm);
    size_t rss0 = pmt_rss_bytes();
    size_t max_arenas = 0;
    for (int done = 0; done < nthreads; done += WAVE) {
        for (intptr_t i = 0; i < WAVE; i++)
            PMT_REQUIRE(pthread_create(&t[i], NULL, short_lived, (void *)i) == 0, "create");
        for (int i = 0; i < WAVE; i++) {
            void *r;
            pthread_join(t[i], &r);
            PMT_REQUIRE(r == NULL, "a thread's allocation failed");
            for (int k = 0; k < LEFT_BEHIND; k++)
                pm_free(left[i][k]);
        }
        size_t n = pm_mallinfo().narenas;
        if (n > max_arenas)
            max_arenas = n;
        PMT_REQUIRE(n <= cap, "narenas %zu > cap %zu after %d threads", n, cap, done + WAVE);
    }
    PMT_REQUIRE(pm_check_heap() == 0, "pm_check_heap after churn");
    size_t rss1 = pmt_rss_bytes();
    fprintf(stderr, "pmt: churn %d threads: max narenas %zu, rss %zu -> %zu KiB\n", nthreads,
            max_arenas, rss0 / 1024, rss1 / 1024);
    PMT_REQUIRE(max_arenas <= (size_t)nthreads / 10, "narenas %zu not far below %d threads",
                max_arenas, nthreads);
    PMT_REQUIRE(rss1 < rss0 + 64 * PMT_MIB, "RSS grew %zu KiB", (rss1 - rss0) / 1024);
    *narenas_out = max_arenas;
    return 0;
}

static int child_churn_cap4(void)
{
    size_t n;
    if (churn(PMT_SCALE(1000, 200), 4, &n) != 0)
        return 1;
    PMT_REQUIRE(n >= 2, "only %zu arena with PM_ARENA_MAX=4", n);
    return 0;
}

/* PAIR threads released by one barrier race for the idle arenas. */
enum { PAIR = 4 };
static pthread_barrier_t pair_start;

static void *paired(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&pair_start);
    void *p = pm_malloc(64), *q = pm_malloc(3000);
    int ok = p && q;
    pm_free(p);
    pm_free(q);
    return ok ? NULL : (void *)1;
}

static int child_paired_starts(void)
{
    pm_free(pm_malloc(1)); /* the main thread's arena */
    for (int wave = 0; wave < PMT_SCALE(3000, 300); wave++) {
        pthread_t t[PAIR];
        pthread_barrier_init(&pair_start, NULL, PAIR);
        for (int i = 0; i < PAIR; i++)
            PMT_REQUIRE(pthread_create(&t[i], NULL, paired, NULL) == 0, "create");
        for (int i = 0; i < PAIR; i++) {
            void *r;
            pthread_join(t[i], &r);
            PMT_REQUIRE(r == NULL, "a thread's allocation failed");
        }
        pthread_barrier_destroy(&pair_start);
        size_t n = pm_mallinfo().narenas;
        PMT_REQUIRE(n <= PAIR + 1, "wave %d: %zu arenas for the main thread and %d at a time",
                    wave, n, PAIR);
    }
    return 0;
}

/* Threads whose first pm_* call comes in the last round of pthread key
 * destructors (glibc runs four): the key below is made after pmalloc's, its
 * destructor sets itself again three times, then allocates. pmalloc's own
 * destructor gets no round after that; such caches used to stay for good
 * (26 KB and an arena each, 52 MB after 2000 threads). */
static pthread_key_t late_key;
static __thread int late_round;

static void late_destructor(void *v)
{
    if (++late_round < 4) {
        pthread_setspecific(late_key, v);
        return;
    }
    void *p = pm_malloc(64);
    memset(p, 1, 64);
    pm_free(p);
}

static void *late_thread(void *arg)
{
    pthread_setspecific(late_key, arg);
    return NULL;
}

static int child_late_first_call(void)
{
    pm_free(pm_malloc(16)); /* pmalloc's key first */
    PMT_REQUIRE(pthread_key_create(&late_key, late_destructor) == 0, "key");
    int n = PMT_SCALE(2000, 400);
    size_t used0 = pm_mallinfo().uordblks;
    for (int i = 0; i < n; i++) {
        pthread_t t;
        PMT_REQUIRE(pthread_create(&t, NULL, late_thread, (void *)1) == 0, "create");
        pthread_join(t, NULL);
    }
    size_t used1 = pm_mallinfo().uordblks;
    fprintf(stderr, "pmt: %d threads: in use %zu -> %zu\n", n, used0, used1);
    /* At most one scan's worth of caches wait (PM_TC_SCAN_MIN, 64). */
    PMT_REQUIRE(used1 < used0 + 4 * PMT_MIB, "in use %zu -> %zu after %d threads", used0,
                used1, n);
    PMT_REQUIRE(pm_check_heap() == 0, "pm_check_heap");
    return 0;
}

/* The same with many threads alive: a scan came after as many new caches as
 * half the listed ones, and took back at most 64, so with 300 threads alive
 * the orphans piled up (72 MB after 3000 threads; 18 MB with 100 alive
 * after 1000). */
static pthread_mutex_t alive_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t alive_cond = PTHREAD_COND_INITIALIZER;
static int alive_stop;

static void *alive_thread(void *arg)
{
    (void)arg;
    void *p = pm_malloc(100);
    pthread_mutex_lock(&alive_lock);
    while (!alive_stop)
        pthread_cond_wait(&alive_cond, &alive_lock);
    pthread_mutex_unlock(&alive_lock);
    pm_free(p);
    return p;
}

static int child_orphans_many_alive(void)
{
    enum { ALIVE_MAX = 300 };
    int alive = PMT_SCALE(ALIVE_MAX, 100), n = PMT_SCALE(3000, 1000);
    pthread_t t[ALIVE_MAX];
    pm_free(pm_malloc(16));
    PMT_REQUIRE(pthread_key_create(&late_key, late_destructor) == 0, "key");
    for (int i = 0; i < alive; i++)
        PMT_REQUIRE(pthread_create(&t[i], NULL, alive_thread, NULL) == 0, "create");
    size_t used0 = pm_mallinfo().uordblks;
    for (int i = 0; i < n; i++) {
        pthread_t o;
        PMT_REQUIRE(pthread_create(&o, NULL, late_thread, (void *)1) == 0, "create");
        pthread_join(o, NULL);
    }
    size_t used1 = pm_mallinfo().uordblks;
    pthread_mutex_lock(&alive_lock);
    alive_stop = 1;
    pthread_cond_broadcast(&alive_cond);
    pthread_mutex_unlock(&alive_lock);
    for (int i = 0; i < alive; i++)
        pthread_join(t[i], NULL);
    fprintf(stderr, "pmt: %d alive, %d orphans: in use %zu -> %zu\n", alive, n, used0, used1);
    /* Waiting orphans: at most the caches made since the last scan. */
    PMT_REQUIRE(used1 < used0 + 6 * PMT_MIB, "in use %zu -> %zu after %d orphans", used0,
                used1, n);
    PMT_REQUIRE(pm_check_heap() == 0, "pm_check_heap");
    return 0;
}

/* A case with threads whose first call comes in the last destructor round.
 * Why not under TSan: it finishes a thread in that round too, and a call
 * into it after that faults inside TSan. */
static void run_late_case(const char *name)
{
    if (PMT_TSAN)
        skip();
    pmt_run_case_ok(name, NULL, 120);
}

static void test_orphans_many_alive(void **state)
{
    (void)state;
    run_late_case("orphans_many_alive");
}

static void test_late_first_call(void **state)
{
    (void)state;
    run_late_case("late_first_call");
}

/* The orphan scan asks the kernel whether each listed cache's thread is gone
 * (syscall(SYS_tgkill, pid, tid, 0)); this binary defines syscall(), so the
 * questions land here. Armed, the first question starts a thread whose first
 * pm_malloc lists a new cache, and waits up to 5 s for it. A scan that asked
 * while holding the cache-list lock kept every new thread waiting: 64 system
 * calls per scan, thousands with as many threads alive. */
static atomic_int probe_armed;
static atomic_int probe_result; /* 1: the new thread got through; -1: it waited */

static void *probe_thread(void *arg)
{
    (void)arg;
    void *p = pm_malloc(32);
    pm_free(p);
    return p;
}

static void probe_new_cache(void)
{
    pthread_t t;
    struct timespec until;
    if (pthread_create(&t, NULL, probe_thread, NULL) != 0) {
        atomic_store(&probe_result, -2);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    if (pthread_timedjoin_np(t, NULL, &until) == 0) {
        atomic_store(&probe_result, 1);
    } else {
        atomic_store(&probe_result, -1);
        pthread_detach(t);
    }
}

/* Armed, the first question instead lets another thread _Fork (no fork
 * handlers) while the scan waits on the kernel, and waits for that child to
 * end. The child inherited a scan in progress without the thread running
 * it; it used to skip every scan of its own after that, so its orphans
 * piled up. */
static atomic_int rawfork_armed;
static sem_t rawfork_go, rawfork_done;
static int rawfork_status = -1;

static void rawfork_during_scan(void)
{
    sem_post(&rawfork_go);
    sem_wait(&rawfork_done);
}

long syscall(long nr, ...)
{
    if (nr == SYS_gettid)
        return gettid();
    if (nr != SYS_tgkill) {
        errno = ENOSYS;
        return -1;
    }
    va_list ap;
    va_start(ap, nr);
    long pid = va_arg(ap, long), tid = va_arg(ap, long), sig = va_arg(ap, long);
    va_end(ap);
    if (atomic_exchange(&probe_armed, 0))
        probe_new_cache();
    if (atomic_exchange(&rawfork_armed, 0))
        rawfork_during_scan();
    return tgkill((pid_t)pid, (pid_t)tid, (int)sig);
}

static void *plain_thread(void *arg)
{
    (void)arg;
    pm_free(pm_malloc(64));
    return NULL;
}

/* In the _Fork child, the only thread: orphans and plain threads, then the
 * memory in use must show the orphans were taken back. */
static int rawfork_child(void)
{
    enum { ORPHANS = 600, PLAIN = 200 };
    size_t used0 = pm_mallinfo().uordblks;
    for (int i = 0; i < ORPHANS + PLAIN; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, i < ORPHANS ? late_thread : plain_thread, (void *)1) != 0)
            return 2;
        pthread_join(t, NULL);
    }
    size_t used1 = pm_mallinfo().uordblks;
    if (used1 >= used0 + 8 * PMT_MIB) {
        fprintf(stderr, "pmt: _Fork child: in use %zu -> %zu after %d orphans\n", used0, used1,
                ORPHANS);
        return 1;
    }
    return pm_check_heap() == 0 ? 0 : 3;
}

static void *rawfork_orphan_maker(void *arg)
{
    (void)arg;
    sem_wait(&rawfork_go);
#if PMT_HAVE_FORK_
    pid_t pid = _Fork();
    if (pid == 0) {
        fflush(stderr);
        _exit(rawfork_child());
    }
    if (pid > 0 && waitpid(pid, &rawfork_status, 0) != pid)
        rawfork_status = -2;
#endif
    sem_post(&rawfork_done);
    return NULL;
}

static int child_rawfork_scan(void)
{
    pm_free(pm_malloc(16));
    PMT_REQUIRE(pthread_key_create(&late_key, late_destructor) == 0, "key");
    PMT_REQUIRE(sem_init(&rawfork_go, 0, 0) == 0 && sem_init(&rawfork_done, 0, 0) == 0, "sem");
    pthread_t forker;
    PMT_REQUIRE(pthread_create(&forker, NULL, rawfork_orphan_maker, NULL) == 0, "create");
    atomic_store(&rawfork_armed, 1);
    for (int i = 0; i < 500 && atomic_load(&rawfork_armed); i++) {
        pthread_t t;
        PMT_REQUIRE(pthread_create(&t, NULL, late_thread, (void *)1) == 0, "create");
        pthread_join(t, NULL);
    }
    PMT_REQUIRE(!atomic_load(&rawfork_armed), "no orphan scan asked the kernel");
    pthread_join(forker, NULL);
    PMT_REQUIRE(rawfork_status >= 0, "_Fork or waitpid failed");
    PMT_REQUIRE(WIFEXITED(rawfork_status) && WEXITSTATUS(rawfork_status) == 0,
                "the _Fork child failed (status 0x%x; 1: its orphans were never taken back)",
                rawfork_status);
    PMT_REQUIRE(pm_check_heap() == 0, "pm_check_heap");
    return 0;
}

static void test_orphan_scan_rawfork(void **state)
{
    (void)state;
    if (!PMT_HAVE_FORK_)
        skip();
    run_late_case("rawfork_scan");
}

static int child_scan_unlocked(void)
{
    pm_free(pm_malloc(16));
    PMT_REQUIRE(pthread_key_create(&late_key, late_destructor) == 0, "key");
    atomic_store(&probe_armed, 1);
    /* Orphans, until one of them starts a scan (after 64 new caches). */
    for (int i = 0; i < 500 && atomic_load(&probe_result) == 0; i++) {
        pthread_t t;
        PMT_REQUIRE(pthread_create(&t, NULL, late_thread, (void *)1) == 0, "create");
        pthread_join(t, NULL);
    }
    int r = atomic_load(&probe_result);
    PMT_REQUIRE(r != 0, "no orphan scan asked the kernel after 500 orphaned caches");
    PMT_REQUIRE(r != -2, "pthread_create failed inside the scan");
    PMT_REQUIRE(r == 1, "a new thread waited 5 s for its cache: the orphan scan held the "
                        "cache-list lock while asking the kernel");
    PMT_REQUIRE(pm_check_heap() == 0, "pm_check_heap");
    return 0;
}

static void test_orphan_scan_unlocked(void **state)
{
    (void)state;
    run_late_case("scan_unlocked");
}

/* Cache limits changed while new threads set up their caches: a cache used
 * to be sized from one read of the settings and laid out from another, and
 * a raise in between overran it (corrupted headers) or left bins without
 * slots (a fault on free). */
static int limits_stop;

static void *limits_toggler(void *arg)
{
    int which = (int)(intptr_t)arg;
    while (!__atomic_load_n(&limits_stop, __ATOMIC_RELAXED)) {
        pm_mallopt(which ? PM_TCACHE_MAX : PM_TCACHE_COUNT, which ? 16 : 1);
        pm_mallopt(which ? PM_TCACHE_MAX : PM_TCACHE_COUNT, which ? 65536 : 1024);
    }
    return NULL;
}

static void *limits_worker(void *arg)
{
    (void)arg;
    enum { N = 600 };
    void **p = malloc(N * sizeof *p);
    if (!p)
        return (void *)1;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            size_t n = 16 + (size_t)(i % 60) * 16 + (i % 7 == 0 ? 40000 : 0);
            if (!(p[i] = pm_malloc(n)))
                return (void *)1;
            memset(p[i], 0x5a, n);
        }
        for (int i = 0; i < N; i++)
            pm_free(p[i]);
    }
    free(p);
    return NULL;
}

static int child_limits_while_starting(void)
{
    pm_free(pm_malloc(16));
    pthread_t tog[2];
    for (intptr_t i = 0; i < 2; i++)
        PMT_REQUIRE(pthread_create(&tog[i], NULL, limits_toggler, (void *)i) == 0, "create");
    for (int it = 0; it < PMT_SCALE(500, 100); it++) {
        pthread_t w[4];
        for (int i = 0; i < 4; i++)
            PMT_REQUIRE(pthread_create(&w[i], NULL, limits_worker, NULL) == 0, "create");
        for (int i = 0; i < 4; i++) {
            void *r;
            pthread_join(w[i], &r);
            PMT_REQUIRE(r == NULL, "a worker's allocation failed");
        }
    }
    __atomic_store_n(&limits_stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++)
        pthread_join(tog[i], NULL);
    PMT_REQUIRE(pm_check_heap() == 0, "pm_check_heap");
    return 0;
}

static void test_limits_while_starting(void **state)
{
    (void)state;
    pmt_run_case_ok("limits_while_starting", NULL, 120);
}

static void test_thread_pairs_share_no_arena(void **state)
{
    (void)state;
    pmt_run_case_ok("paired_starts", NULL, 120);
}

static void test_thread_churn(void **state)
{
    (void)state;
    size_t n = 0;
    size_t cap = 8 * (size_t)pmt_nprocs();
    int rc = churn(PMT_SCALE(3008, 400), cap, &n);
    assert_int_equal(rc, 0);
    assert_true(n >= 2);
}

static void test_thread_churn_arena_max_4(void **state)
{
    (void)state;
    const char *env[] = { "PM_ARENA_MAX=4", NULL };
    pmt_run_case_ok("churn_cap4", env, 120);
}

static const pmt_case_t cases[] = {
    { "churn_cap4", child_churn_cap4 },
    { "paired_starts", child_paired_starts },
    { "late_first_call", child_late_first_call },
    { "scan_unlocked", child_scan_unlocked },
    { "rawfork_scan", child_rawfork_scan },
    { "orphans_many_alive", child_orphans_many_alive },
    { "limits_while_starting", child_limits_while_starting },
};

int main(int argc, char **argv)
{
    pmt_child_dispatch(argc, argv, cases, PMT_ARRAY_LEN(cases));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_while_allocating),
        cmocka_unit_test(test_thread_churn),
        cmocka_unit_test(test_thread_churn_arena_max_4),
        cmocka_unit_test(test_thread_pairs_share_no_arena),
        cmocka_unit_test(test_late_first_call),
        cmocka_unit_test(test_orphan_scan_unlocked),
        cmocka_unit_test(test_orphan_scan_rawfork),
        cmocka_unit_test(test_orphans_many_alive),
        cmocka_unit_test(test_limits_while_starting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
