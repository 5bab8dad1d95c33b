/* SPDX-License-Identifier: MIT */
/*
 * tcache.c - the per-thread cache: for each small size class a bounded
 * stack of free blocks, kept in an array (never in the freed memory, so
 * there is no link to corrupt). Hits take no lock and no atomic RMW; misses
 * refill and overflows flush in batches, one arena lock per batch. Blocks
 * of another arena go to a small remote buffer and back to their owner in
 * one batch, so a thread never reuses a line another thread writes.
 */
#include "heap.h"

#include <string.h>

__thread pm_tcache_t *_pm_tls_tc __attribute__((tls_model("initial-exec"))) = &_pm_tc_empty;
static __thread int tls_state __attribute__((tls_model("initial-exec")));
enum { TS_LIVE = 0, TS_CREATING = 1, TS_DEAD = 2 };

pm_tcache_t _pm_tc_empty;

/* Rank 3: the list of live caches, for statistics and fork. */
static pthread_mutex_t tc_list_lock = PTHREAD_MUTEX_INITIALIZER;
static pm_tcache_t *tc_list;
static size_t tc_live, tc_made; /* caches listed; made since the last scan */
static long tc_scanner_pid;     /* the process an orphan scan runs in; 0: none */
static uint64_t tc_scan_rounds; /* rounds of orphan scans so far           */
static uint64_t tc_births;      /* caches listed so far                    */
static pthread_key_t tc_tsd_key;
static pthread_once_t tc_key_once = PTHREAD_ONCE_INIT;

#define PM_TC_CLASS_BYTES (16 * PM_KIB) /* bytes one class may park */

static void tcache_destroy(void *arg);
static void reclaim_orphans(void);

/* Caches made between two scans for orphans, at least. */
#define PM_TC_SCAN_MIN 64
/* Caches one round of a scan asks the kernel about. Why this many: each
 * round walks the whole list under its lock. */
#define PM_TC_SCAN_ROUND 1024

/* The running scan's notes (only one runs: tc_scanner_pid); static, not on the
 * stack, for their size: 26 KB, of which a scan touches what it uses. */
static struct {
    long tid[2][PM_TC_SCAN_ROUND]; /* the ids asked about, by round parity */
    bool dead[PM_TC_SCAN_ROUND];   /* the kernel's answers for the last round */
    pm_tcache_t *gone[PM_TC_SCAN_ROUND];
} tc_scan;

/* An arena no thread uses (lock held): coalesce its stash when that can give
 * memory back, i.e. when the heap is much bigger than what is stashed. Why
 * not always: a small stash is what the next thread here starts from. */
static void idle_consolidate(pm_arena_t *a)
{
    if (a->stash_bytes && a->held > 4 * a->stash_bytes + PM_MIB)
        _pm_stash_consolidate(a);
}

/* An arena no thread uses (locked): take in what others freed to it,
 * coalesce its stash if that can give memory back, and sweep it now (no
 * thread of its own would later); unlocks. */
static void idle_release_unlock(pm_arena_t *a)
{
    _pm_remote_drain(a);
    idle_consolidate(a);
    _pm_arena_unlock_idle(a);
}

/* Blocks of class k that fit the per-class byte budget (computed once). */
static uint32_t byte_cap[PM_NCLASS_TC];

/* Arenas no thread uses any more (threads exited or moved on) keep what
 * they hold until some thread calls into them to run a sweep: give it back
 * now. Only arenas whose lock is free; a busy one is in use anyway. */
static void release_idle_arenas(void)
{
    if (!PM_OPT(decay_ms))
        return;
    uint32_t n = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < 2 * n; i++) {
        pm_arena_t *a = arena_slot(i, n);
        if (a && arena_idle(a) && _pm_arena_trylock(a))
            idle_release_unlock(a);
    }
}

static void key_create(void)
{
    pthread_key_create(&tc_tsd_key, tcache_destroy);
    for (unsigned k = 2; k < PM_NCLASS_TC; k++)
        byte_cap[k] = (uint32_t)(PM_TC_CLASS_BYTES / class_size(k));
}

_Static_assert(sizeof(pm_tbin_t) == 16, "pm_free indexes the bins by chunk size");
_Static_assert(PM_FAST_CSIZE / 16 == 65 && PM_SMALL_MAX + 16 == PM_FAST_CSIZE,
               "class 65 is the one size above 1 KiB whose index is its size / 16");

/* Classes whose every block is at most max bytes, for a cache of count
 * blocks per class. */
static unsigned tcache_nclass(size_t count, size_t max)
{
    if (count == 0 || max == 0 || _pm_check_level >= 2)
        return 0;
    unsigned k = size_class_floor(request2size(max));
    return k + 1 > PM_NCLASS_TC ? PM_NCLASS_TC : k + 1;
}

static uint32_t class_cap(unsigned k, size_t count)
{
    if (k < 2)
        return 0;
    size_t cap = byte_cap[k];
    if (cap > count)
        cap = count;
    return cap ? (uint32_t)cap : 1;
}

pm_tcache_t *_pm_tcache_create(void)
{
    if (tls_state != TS_LIVE)
        return NULL;
    /* Why a state: pthread_setspecific may itself allocate (under a
     * preload), and that call must not start a second cache. */
    tls_state = TS_CREATING;
    pthread_once(&tc_key_once, key_create);
    /* Why read once: pm_mallopt may change them meanwhile, and slots laid
     * out for other values than were counted would overrun the cache. */
    size_t count = PM_OPT(tcache_count), max = PM_OPT(tcache_max);
    unsigned nclass = tcache_nclass(count, max);
    size_t slots = 0;
    for (unsigned k = 0; k < nclass; k++)
        slots += class_cap(k, count);
    size_t bytes = sizeof(pm_tcache_t) + slots * sizeof(void *);
    pm_tcache_t tmp = {.real = true};
    pm_tcache_t *prev = _pm_tls_tc;
    tmp.arena = _pm_arena_pick_for_thread();
    _pm_tls_tc = &tmp; /* so that _pm_arena_get_locked uses the picked arena */
    pm_tcache_t *tc = NULL;
    if (tmp.arena) {
        pm_chunk_t *c = NULL;
        int how;
        pm_arena_t *a = _pm_arena_get_locked();
        if (a) {
            c = _pm_bins_alloc(a, request2size(bytes), &how);
            if (!c)
                c = _pm_bins_alloc_newheap(a, request2size(bytes), &how);
            _pm_arena_unlock(a);
        }
        if (c)
            tc = chunk2mem(c);
    }
    if (!tc) {
        _pm_arena_detach(tmp.arena);
        _pm_tls_tc = prev;
        tls_state = TS_LIVE;
        return NULL;
    }
    memset(tc, 0, sizeof *tc);
    tc->real = true;
    tc->arena = tmp.arena;
    tc->nclass = nclass;
    tc->max_csize = nclass ? request2size(max) : 0;
    void **store = tc->slot_store;
    for (unsigned k = 0; k < nclass; k++) {
        tc->bins[k].cap = (uint16_t)class_cap(k, count);
        tc->bins[k].fill = 2;
        tc->bins[k].slots = store;
        store += tc->bins[k].cap;
    }
    /* Why not hardened: its checks and delayed reuse live on the slow paths. */
    if (nclass > 0 && _pm_check_level == 0 && PM_OPT(perturb) == 0 && !_pm_hardened) {
        /* The inline paths serve classes up to 1040; bigger ones and the
         * checking levels take the out-of-line path. */
        size_t maxc = class_size(nclass - 1);
        tc->fast_csize = maxc < PM_FAST_CSIZE ? maxc : PM_FAST_CSIZE;
        size_t maxreq = tc->fast_csize - PM_OVERHEAD;
        tc->fast_max = max < maxreq ? max : maxreq;
    }
    tc->tid = _pm_os_thread_id();
    tc->pid = _pm_os_process_id();
    pthread_mutex_lock(&tc_list_lock);
    tc->next = tc_list;
    if (tc_list)
        tc_list->prevp = &tc->next;
    tc->prevp = &tc_list;
    tc_list = tc;
    tc_live++;
    tc->born = ++tc_births;
    /* Why after half as many caches as are listed: a scan asks the kernel
     * about each, so a new cache pays for at most two questions. */
    bool scan = ++tc_made >= PM_TC_SCAN_MIN && tc_made >= tc_live / 2;
    pthread_mutex_unlock(&tc_list_lock);
    _pm_tls_tc = tc;
    pthread_setspecific(tc_tsd_key, tc);
    tls_state = TS_LIVE;
    if (scan)
        reclaim_orphans();
    return tc;
}

static void tc_list_unlink(pm_tcache_t *tc)
{
    *tc->prevp = tc->next;
    if (tc->next)
        tc->next->prevp = tc->prevp;
    tc_live--;
}

/* The end of a cache that is off the list and flushed: its memory goes
 * back, its arena is free for the next thread. */
static void tcache_release(pm_tcache_t *tc)
{
    pm_arena_t *home = tc->arena;
    pm_chunk_t *c = mem2chunk(tc);
    pm_arena_t *a = heap_of(c)->arena;
    _pm_arena_lock(a);
    _pm_bins_free(a, c, "pm_free");
    _pm_arena_unlock_trim(a);
    /* Why detach last: the arena is now free for the next new thread. */
    _pm_arena_detach(home);
    if (home && __atomic_load_n(&home->attached, __ATOMIC_RELAXED) == 0) {
        /* The last thread of this arena is gone: waited for, not tried. */
        _pm_arena_lock(home);
        idle_release_unlock(home);
    }
}

static void tcache_destroy(void *arg)
{
    pm_tcache_t *tc = arg;
    _pm_tcache_flush_all(tc);
    pthread_mutex_lock(&tc_list_lock);
    tc_list_unlink(tc);
    pthread_mutex_unlock(&tc_list_lock);
    _pm_tls_tc = &_pm_tc_empty;
    tls_state = TS_DEAD;
    tcache_release(tc);
    release_idle_arenas();
}

/* Caches whose thread is gone without our key's destructor having run: the
 * thread's first call came in the last round of key destructors (glibc
 * runs four), and glibc runs no round after it. Each kept its blocks and
 * held its arena for good. Whether a thread is gone is the kernel's word
 * (see _pm_os_thread_gone); a gone thread's cache is touched by nobody.
 *
 * The scan goes in rounds of up to PM_TC_SCAN_ROUND caches: under the list
 * lock a round marks its caches and notes their ids; the kernel is asked
 * with the lock released (new threads take it to list their caches); back
 * under the lock, the caches the kernel called gone that are still listed,
 * with their mark, come off the list. Why a mark and not the pointer: a
 * cache whose thread exited meanwhile may be freed, and its memory listed
 * again as a new thread's cache; that one is zeroed, so it has no mark. */
static void reclaim_orphans(void)
{
    long(*tid)[PM_TC_SCAN_ROUND] = tc_scan.tid;
    bool *dead = tc_scan.dead;
    pm_tcache_t **gone = tc_scan.gone;
    size_t nask = 0, ngone = 0;
    long pid = _pm_os_process_id();
    pthread_mutex_lock(&tc_list_lock);
    /* Why the pid, not a flag: a child forked while a scan waited on the
     * kernel inherits the mark, but not the thread running the scan. */
    if (tc_scanner_pid == pid) {
        pthread_mutex_unlock(&tc_list_lock);
        return;
    }
    tc_scanner_pid = pid;
    tc_made = 0;
    /* Why only the caches listed before it started: new threads could
     * otherwise keep a scan going for good. */
    uint64_t first = tc_scan_rounds + 1, asked = 0, born_max = tc_births;
    do {
        /* One pass: take the last round's orphans off, mark the next round. */
        uint64_t round = ++tc_scan_rounds;
        size_t n = 0;
        for (pm_tcache_t *tc = tc_list, *next; tc; tc = next) {
            next = tc->next;
            if (tc->scan_round == asked && asked) {
                if (dead[tc->scan_idx] && tid[asked & 1][tc->scan_idx] == tc->tid) {
                    tc_list_unlink(tc);
                    gone[ngone++] = tc;
                }
            } else if (tc->scan_round < first && tc->born <= born_max && n < PM_TC_SCAN_ROUND &&
                       tc != _pm_tls_tc && tc->pid == pid) {
                /* Why the process too: in a child forked without the fork
                 * handlers (_Fork, a raw fork) the caches still carry the
                 * parent's ids, the live thread's among them; those stay. */
                tc->scan_round = round;
                tc->scan_idx = (uint32_t)n;
                tid[round & 1][n++] = tc->tid;
            }
        }
        nask = n;
        asked = round;
        pthread_mutex_unlock(&tc_list_lock);
        for (size_t i = 0; i < ngone; i++) {
            _pm_tcache_flush_all(gone[i]);
            tcache_release(gone[i]);
        }
        ngone = 0;
        for (size_t i = 0; i < nask; i++)
            dead[i] = _pm_os_thread_gone(pid, tid[asked & 1][i]);
        pthread_mutex_lock(&tc_list_lock);
    } while (nask);
    tc_scanner_pid = 0;
    pthread_mutex_unlock(&tc_list_lock);
}

void _pm_free_batch(void **ptrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!ptrs[i])
            continue;
        pm_arena_t *a = heap_of(ptrs[i])->arena;
        /* With checks on, blocks go straight to the bins, where the fill
         * and canary rules are kept in one place. */
        bool stash = _pm_check_level == 0 && !PM_OPT(perturb);
        unsigned nstash = PM_STASH_CLASSES();
        _pm_arena_lock(a);
        for (size_t j = i; j < n; j++) {
            if (ptrs[j] && heap_of(ptrs[j])->arena == a) {
                pm_chunk_t *c = mem2chunk(ptrs[j]);
                size_t s = head_size(chunk_head(c));
                unsigned k = size_class_floor(s);
                if (stash && k < nstash)
                    _pm_stash_push(a, ptrs[j], k, s);
                else
                    _pm_bins_free(a, c, "pm_free");
                ptrs[j] = NULL;
            }
        }
        _pm_stash_bound(a);
        _pm_arena_unlock_trim(a);
    }
}

void _pm_tcache_remote_flush(pm_tcache_t *tc)
{
    /* Chain each arena's blocks and push the chain without its lock: a
     * consumer never queues on its producer's lock. */
    void **r = tc->remote;
    for (uint32_t i = 0; i < tc->nremote; i++) {
        if (!r[i])
            continue;
        pm_arena_t *a = heap_of(r[i])->arena;
        void *grp[PM_REMOTE_MAX];
        uint32_t n = 0;
        size_t bytes = 0;
        for (uint32_t j = i; j < tc->nremote; j++) {
            if (r[j] && heap_of(r[j])->arena == a) {
                grp[n++] = r[j];
                bytes += head_size(chunk_head(mem2chunk(r[j])));
                r[j] = NULL;
            }
        }
        /* Word 1 links the chain; word 2 points PM_REMOTE_AHEAD blocks on,
         * a prefetch hint for the drain, which would otherwise miss the
         * cache once per block, one block after the other. */
        for (uint32_t j = 0; j < n; j++) {
            uint64_t *w = grp[j];
            if (j + 1 < n)
                w[1] = _pm_link_mangle(&w[1], grp[j + 1]);
            /* Why level 0 only: at level 1 a small block's canary sits there. */
            if (_pm_check_level == 0)
                w[2] = j + PM_REMOTE_AHEAD < n ? (uintptr_t)grp[j + PM_REMOTE_AHEAD] : 0;
        }
        void *first = grp[0], *last = grp[n - 1];
        _pm_remote_push(a, first, last, bytes);
        /* Why drain here too: an arena no thread uses any more would hold
         * what others gave back to it; a used one is drained by its owner.
         * A companion is in use while its arena is (see arena_idle). */
        if (arena_idle(a) && _pm_arena_trylock(a))
            idle_release_unlock(a);
    }
    tc->nremote = 0;
    tc->remote_bytes = 0;
}

void _pm_tcache_remote_push(pm_tcache_t *tc, void *p, size_t size)
{
    tc->remote[tc->nremote++] = p;
    tc->remote_bytes += size;
    /* Why a byte bound too: a thread that frees a few big blocks of another
     * arena and then frees no more would keep them from it for good. */
    if (tc->nremote == PM_REMOTE_MAX || tc->remote_bytes >= PM_REMOTE_BYTES)
        _pm_tcache_remote_flush(tc);
}

static void bin_flush(pm_tbin_t *b, uint32_t keep)
{
    uint32_t n = b->count;
    if (n <= keep)
        return;
    /* The oldest blocks (bottom of the stack) go back; the newest stay hot. */
    uint32_t out = n - keep;
    _pm_free_batch(b->slots, out);
    memmove(b->slots, b->slots + out, keep * sizeof(void *));
    __atomic_store_n(&b->count, keep, __ATOMIC_RELAXED);
}

void _pm_tcache_push_full(pm_tbin_t *b, void *p)
{
    bin_flush(b, b->cap / 2);
    b->slots[b->count] = p;
    __atomic_store_n(&b->count, b->count + 1, __ATOMIC_RELAXED);
}

void _pm_tcache_flush_all(pm_tcache_t *tc)
{
    /* The hardened level's delayed blocks (all this cache's own kind) join
     * the cached ones first, and go back with them. */
    for (unsigned i = 0; i < PM_DELAY_SLOTS; i++) {
        void *p = tc->delay[i];
        if (p) {
            tc->delay[i] = NULL;
            _pm_tcache_free_slow(tc, mem2chunk(p), chunk_head(mem2chunk(p)));
        }
    }
    /* Why one pass under one lock first: a thread that exits holds blocks
     * of many classes, nearly all of its own arena; a lock per class would
     * cost more than the thread's whole life in the cache. */
    pm_arena_t *a = tc->arena;
    if (a && _pm_check_level == 0 && !PM_OPT(perturb)) {
        bool locked = false;
        unsigned nstash = PM_STASH_CLASSES();
        for (unsigned k = 0; k < tc->nclass; k++) {
            pm_tbin_t *b = &tc->bins[k];
            uint32_t kept = 0;
            for (uint32_t i = 0; i < b->count; i++) {
                void *p = b->slots[i];
                size_t s = head_size(chunk_head(mem2chunk(p)));
                if (heap_of(p)->arena != a || size_class_floor(s) >= nstash) {
                    b->slots[kept++] = p;
                    continue;
                }
                if (!locked) {
                    _pm_arena_lock(a);
                    locked = true;
                }
                /* The stash class is the block's own (floor) class: a
                 * refill may have put a slightly bigger chunk in bin k. */
                _pm_stash_push(a, p, size_class_floor(s), s);
            }
            __atomic_store_n(&b->count, kept, __ATOMIC_RELAXED);
        }
        if (locked) {
            _pm_stash_bound(a);
            _pm_arena_unlock_trim(a);
        }
    }
    /* What is left: blocks of arenas the thread used before it moved. */
    for (unsigned k = 0; k < tc->nclass; k++)
        if (tc->bins[k].count)
            bin_flush(&tc->bins[k], 0);
    _pm_tcache_remote_flush(tc);
}

/* Why a bound: a refill holds the arena lock while it takes its batch. */
#define PM_REFILL_MAX 512

/* A refill in progress: the first block goes to the caller, the rest into
 * the (empty) cache bin's slots, each marked with its key. */
typedef struct {
    pm_chunk_t *first;
    int how;
    uint32_t got;
    void **slots;
} pm_refill_t;

static void refill_take(pm_refill_t *r, pm_chunk_t *c, int how)
{
    void *p = chunk2mem(c);
    if (!r->first) {
        r->first = c;
        r->how = how;
        *mem_word0(p) = 0;
    } else {
        r->slots[r->got - 1] = p;
        *mem_word0(p) = tc_key(p);
    }
    r->got++;
}

void *_pm_tcache_alloc_slow(pm_tcache_t *tc, size_t csize)
{
    unsigned k = size_class_ceil(csize);
    pm_tbin_t *b = &tc->bins[k];
    if (b->count) {
        uint32_t cnt = b->count - 1;
        void *p = b->slots[cnt];
        if (PM_UNLIKELY(*mem_word0(p) != tc_key(p))) {
            /* Why the head first: a write that reached the key through the
             * head came from the block before, not from a stale pointer. */
            uint64_t hd = chunk_head(mem2chunk(p));
            if (!chunk_head_ok(mem2chunk(p), hd) || head_state(hd) != PM_ST_INUSE)
                _pm_fatal("pm_malloc", p, "heap overflow into a cached block (corrupted chunk "
                                          "header %p)", (void *)hd);
            _pm_fatal("pm_malloc", p, "write after free (first word of a cached block changed)");
        }
        *mem_word0(p) = 0;
        __atomic_store_n(&b->count, cnt, __ATOMIC_RELAXED);
        if (PM_UNLIKELY(_pm_check_level >= 1 || PM_OPT(perturb)))
            _pm_debug_on_alloc(mem2chunk(p), PM_FROM_CACHE);
        return p;
    }
    /* Refill: one lock, up to half the class's capacity. With checks on, one
     * block at a time, so every cached block went through the free checks. */
    uint32_t want = b->fill ? b->fill : 1;
    if (_pm_check_level >= 1 || PM_OPT(perturb))
        want = 1;
    /* Why start small: a thread that uses a class once should not carve a
     * whole batch of it; one that keeps missing gets bigger batches. */
    b->fill = (uint16_t)(want * 2 > (b->cap + 1u) / 2 ? (b->cap + 1u) / 2 : want * 2);
    size_t cs = class_size(k);
    pm_arena_t *a = _pm_arena_get_locked();
    if (!a)
        return NULL;
    _pm_remote_drain(a);
    /* The bin is empty and want <= its cap: the batch goes straight in. */
    pm_refill_t r = {.first = NULL, .how = PM_FROM_TOP, .got = 0, .slots = b->slots};
    int how = PM_FROM_TOP;
    if (want > PM_REFILL_MAX)
        want = PM_REFILL_MAX;
    void *sp;
    while (r.got < want && (sp = _pm_stash_pop(a, k)) != NULL)
        refill_take(&r, mem2chunk(sp), PM_FROM_CACHE);
    /* Why a slightly bigger class next: with mixed sizes each class's stash
     * count wanders, and carving anew whenever one runs dry lets the stash
     * grow to its bound; a block up to a quarter (or 32 bytes) bigger is
     * memory already resident. Freed, it goes back to its own class. */
    size_t slack = cs / 4 > 32 ? cs / 4 : 32;
    for (unsigned j = k + 1; r.got < want && j < PM_NCLASS_TC &&
                             class_size(j) <= cs + slack; j++)
        while (r.got < want && (sp = _pm_stash_pop(a, j)) != NULL)
            refill_take(&r, mem2chunk(sp), PM_FROM_CACHE);
    while (r.got < want) {
        pm_chunk_t *c = _pm_bins_alloc(a, cs, &how);
        if (!c && !r.first)
            c = _pm_bins_alloc_newheap(a, cs, &how);
        if (!c)
            break;
        refill_take(&r, c, how);
    }
    size_t used = a->in_use - a->stash_bytes;
    if (used > a->used_hi)
        a->used_hi = used;
    _pm_arena_unlock_trim(a); /* the drain may have coalesced into top */
    if (!r.first) {
        /* Why fall back: this arena is out of room; another may not be. */
        return _pm_alloc_arena(csize, false);
    }
    /* Reverse the batch so the next pops walk up through memory. */
    uint32_t cnt = r.got - 1;
    for (uint32_t i = 0, j = cnt; i + 1 < j; i++, j--) {
        void *t = b->slots[i];
        b->slots[i] = b->slots[j - 1];
        b->slots[j - 1] = t;
    }
    __atomic_store_n(&b->count, cnt, __ATOMIC_RELAXED);
    if (PM_UNLIKELY(_pm_check_level >= 1 || PM_OPT(perturb)))
        _pm_debug_on_alloc(r.first, r.how);
    return chunk2mem(r.first);
}

bool _pm_tcache_free_slow(pm_tcache_t *tc, pm_chunk_t *c, uint64_t h)
{
    if (!tc->real || tc->nclass == 0)
        return false;
    if (head_size(h) > tc->max_csize)
        return false; /* big blocks go straight back to their arena */
    void *p = chunk2mem(c);
    if (heap_of(c)->arena != tc->arena) {
        /* Another arena's block: back to its owner in a batch. */
        *mem_word0(p) = tc_key(p);
        _pm_tcache_remote_push(tc, p, head_size(h));
        return true;
    }
    unsigned k = size_class_floor(head_size(h));
    pm_tbin_t *b = &tc->bins[k];
    *mem_word0(p) = tc_key(p);
    if (b->count >= b->cap)
        bin_flush(b, b->cap / 2);
    b->slots[b->count] = p;
    __atomic_store_n(&b->count, b->count + 1, __ATOMIC_RELAXED);
    return true;
}

void _pm_tcache_stats(size_t *blocks, size_t *bytes)
{
    size_t nb = 0, by = 0;
    pthread_mutex_lock(&tc_list_lock);
    for (pm_tcache_t *tc = tc_list; tc; tc = tc->next) {
        for (unsigned k = 0; k < tc->nclass; k++) {
            size_t c = __atomic_load_n(&tc->bins[k].count, __ATOMIC_RELAXED);
            nb += c;
            by += c * class_size(k);
        }
    }
    pthread_mutex_unlock(&tc_list_lock);
    *blocks = nb;
    *bytes = by;
}

size_t _pm_tcache_own_bytes(void)
{
    size_t by = 0;
    pthread_mutex_lock(&tc_list_lock);
    for (pm_tcache_t *tc = tc_list; tc; tc = tc->next)
        by += head_size(chunk_head(mem2chunk(tc)));
    pthread_mutex_unlock(&tc_list_lock);
    return by;
}

void _pm_tcache_fork_lock(void)
{
    pthread_mutex_lock(&tc_list_lock);
}

void _pm_tcache_fork_unlock(bool child)
{
    if (child) {
        /* Only this thread lives on in the child; the others' caches are
         * gone with them (their blocks stay allocated, as in glibc). */
        pm_tcache_t *me = _pm_tls_tc;
        tc_list = me->real ? me : NULL;
        tc_live = me->real;
        tc_made = 0;
        if (me->real) {
            me->next = NULL;
            me->prevp = &tc_list;
            me->tid = _pm_os_thread_id(); /* the child's own ids */
            me->pid = _pm_os_process_id();
        }
    }
    pthread_mutex_unlock(&tc_list_lock);
}
