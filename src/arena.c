/* SPDX-License-Identifier: MIT */
/*
 * arena.c - arenas and their heaps: creation, the heap registry, which arena
 * a thread uses, the ranked locks and the fork handlers.
 *
 * A thread's first allocation gets an arena of its own while fewer than
 * arena_max exist, else the least-loaded one. When its arena's lock is busy
 * it moves to one that is free, or makes a new one while under the cap.
 * Heaps are mapped before any lock is taken; nothing here holds an arena
 * lock across a syscall.
 */
#include "heap.h"

#include <errno.h>
#include <string.h>

pm_arena_t *_pm_arenas[PM_ARENA_LIMIT];
uint32_t _pm_narenas;
uint64_t _pm_heap_map[1u << (PM_ADDR_BITS - PM_HEAP_SHIFT - 6)];

#define PM_ARENA_SPIN 200

static inline void pm_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Rank 0: guards the arena table (creation) and nothing else. */
static pthread_mutex_t arena_list_lock = PTHREAD_MUTEX_INITIALIZER;

void _pm_heap_register(pm_heap_t *h)
{
    uintptr_t a = (uintptr_t)h;
    __atomic_fetch_or(&_pm_heap_map[a >> (PM_HEAP_SHIFT + 6)],
                      (uint64_t)1 << ((a >> PM_HEAP_SHIFT) & 63), __ATOMIC_RELEASE);
}

void _pm_heap_unmap(pm_heap_t *h)
{
    /* Why wait: another thread may still be purging a tail it cut from this
     * heap; unmapped first, a new mapping could land where that madvise
     * then zeroes it. */
    while (__atomic_load_n(&h->purging, __ATOMIC_ACQUIRE))
        sched_yield();
    uintptr_t a = (uintptr_t)h;
    __atomic_fetch_and(&_pm_heap_map[a >> (PM_HEAP_SHIFT + 6)],
                       ~((uint64_t)1 << ((a >> PM_HEAP_SHIFT) & 63)), __ATOMIC_RELEASE);
    _pm_os_unmap(h, PM_HEAP_SIZE);
}

static size_t arena_cap(void)
{
    size_t cap = PM_OPT(arena_max);
    return cap > PM_ARENA_LIMIT ? PM_ARENA_LIMIT : cap;
}

/* Map a heap whose first chunk is at offset first_off, with a top that
 * starts small; the pages past it are touched only when top grows. */
static pm_heap_t *heap_map(pm_arena_t *a, size_t first_off)
{
    char *base = _pm_os_map_aligned(PM_HEAP_SIZE, PM_HEAP_SIZE, true);
    if (!base)
        return NULL;
    pm_heap_t *h = (pm_heap_t *)base;
    h->magic = PM_HEAP_MAGIC;
    h->arena = a;
    h->first = base + first_off;
    size_t want = first_off + PM_MIN_CHUNK + PM_OPT(top_pad);
    want = _pm_page_up(want);
    h->end = base + (want > PM_HEAP_SIZE ? PM_HEAP_SIZE : want);
    h->zero_from = h->first + PM_HDR;
    h->dirty_to = h->first;
    return h;
}

pm_heap_t *_pm_heap_new(pm_arena_t *a, size_t first_off)
{
    pm_heap_t *h = heap_map(a, first_off);
    if (h)
        _pm_heap_register(h);
    return h;
}

void _pm_arena_lock(pm_arena_t *a)
{
    if (PM_UNLIKELY(pthread_mutex_trylock(&a->lock) != 0)) {
        __atomic_fetch_add(&a->lock_contended, 1, __ATOMIC_RELAXED);
        pthread_mutex_lock(&a->lock);
    }
    a->lock_acquired++;
}

void _pm_arena_unlock(pm_arena_t *a)
{
    pthread_mutex_unlock(&a->lock);
}

bool _pm_arena_trylock(pm_arena_t *a)
{
    if (pthread_mutex_trylock(&a->lock) != 0)
        return false;
    a->lock_acquired++;
    return true;
}

/* A new arena in a heap of its own (not yet registered); NULL on ENOMEM. */
static pm_arena_t *arena_map(void)
{
    /* Why the arena's own alignment: its remote list sits on a line of
     * its own (64 bytes), and the heap header is not a multiple of that. */
    size_t al = _Alignof(pm_arena_t), hoff = (sizeof(pm_heap_t) + al - 1) & ~(al - 1);
    size_t first = heap_first_offset(hoff + sizeof(pm_arena_t));
    pm_heap_t *h = heap_map(NULL, first);
    if (!h)
        return NULL;
    pm_arena_t *a = (pm_arena_t *)((char *)h + hoff);
    h->arena = a;
    pthread_mutex_init(&a->lock, NULL);
    a->heap = h;
    a->nheaps = 1;
    a->held = (size_t)(h->end - (char *)h);
    a->top = (pm_chunk_t *)h->first;
    chunk_set(a->top, (size_t)(h->end - h->first), PM_ST_TOP, PM_PREV_INUSE);
    return a;
}

/* o's large companion, made on first use; NULL on ENOMEM. */
static pm_arena_t *arena_big(pm_arena_t *o)
{
    pm_arena_t *b = __atomic_load_n(&o->big, __ATOMIC_ACQUIRE);
    if (PM_LIKELY(b != NULL))
        return b;
    /* Why map before locking: the syscall must not stall other creators. */
    b = arena_map();
    if (!b)
        return NULL;
    b->is_big = true;
    b->index = o->index;
    /* Why under the list lock: the fork handler must see a fixed set. */
    pthread_mutex_lock(&arena_list_lock);
    pm_arena_t *won = __atomic_load_n(&o->big, __ATOMIC_RELAXED);
    if (!won) {
        _pm_heap_register(b->heap);
        _pm_stats_held((ptrdiff_t)b->held); /* why here: a loser's heap goes */
        __atomic_store_n(&o->big, b, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&arena_list_lock);
    if (won) {
        _pm_os_unmap(b->heap, PM_HEAP_SIZE);
        return won;
    }
    return b;
}

pm_arena_t *_pm_arena_create(void)
{
    uint32_t n = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE);
    if (n >= arena_cap())
        return NULL;
    /* Why map before locking: the syscall must not stall other creators. */
    pm_arena_t *a = arena_map();
    if (!a)
        return NULL;
    pm_heap_t *h = a->heap;

    pthread_mutex_lock(&arena_list_lock);
    n = _pm_narenas;
    if (n >= arena_cap()) {
        /* Why recheck: another thread may have made the last one meanwhile. */
        pthread_mutex_unlock(&arena_list_lock);
        _pm_os_unmap(h, PM_HEAP_SIZE);
        return NULL;
    }
    a->index = n;
    _pm_heap_register(h);
    _pm_stats_held((ptrdiff_t)a->held);
    _pm_arenas[n] = a;
    __atomic_store_n(&_pm_narenas, n + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&arena_list_lock);
    return a;
}

static pm_arena_t *arena_least_loaded(void)
{
    uint32_t n = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE);
    pm_arena_t *best = NULL;
    uint32_t load = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t l = __atomic_load_n(&_pm_arenas[i]->attached, __ATOMIC_RELAXED);
        if (l < load) {
            load = l;
            best = _pm_arenas[i];
        }
    }
    return best;
}

/* Claim an arena no thread is attached to (0 -> 1 atomically, so that two
 * threads starting together never both take the same one), or NULL. */
static pm_arena_t *arena_claim_idle(void)
{
    uint32_t n = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t zero = 0;
        if (__atomic_compare_exchange_n(&_pm_arenas[i]->attached, &zero, 1, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return _pm_arenas[i];
    }
    return NULL;
}

pm_arena_t *_pm_arena_pick_for_thread(void)
{
    /* Why a free arena first: after a thread exits its arena has no one
     * attached, and the next thread should take it rather than make one. */
    pm_arena_t *a = arena_claim_idle();
    if (a)
        return a;
    a = _pm_arena_create();
    if (!a)
        a = arena_least_loaded();
    if (!a) {
        /* Why: even the first arena could not be mapped; nothing to use. */
        return NULL;
    }
    __atomic_fetch_add(&a->attached, 1, __ATOMIC_RELAXED);
    return a;
}

void _pm_arena_detach(pm_arena_t *a)
{
    if (a)
        __atomic_fetch_sub(&a->attached, 1, __ATOMIC_RELAXED);
}

static void thread_move(pm_tcache_t *tc, pm_arena_t *to)
{
    _pm_arena_detach(tc->arena);
    __atomic_fetch_add(&to->attached, 1, __ATOMIC_RELAXED);
    tc->arena = to;
}

pm_arena_t *_pm_arena_get_locked(void)
{
    pm_tcache_t *tc = _pm_tls_tc;
    pm_arena_t *a = tc->real ? tc->arena : NULL;
    if (!a) {
        /* A thread past its exit destructor, or one that could not get a
         * cache: it borrows the least-loaded arena for each call. */
        a = arena_least_loaded();
        if (!a) {
            a = _pm_arena_create();
            if (!a)
                a = arena_least_loaded();
            if (!a)
                return NULL;
        }
        _pm_arena_lock(a);
        return a;
    }
    if (PM_LIKELY(_pm_arena_trylock(a)))
        return a;
    __atomic_fetch_add(&a->lock_contended, 1, __ATOMIC_RELAXED);
    /* Why spin a little first: lock holders hold it for a batch, briefly;
     * moving at the first overlap scatters a thread's memory over arenas. */
    for (int spin = 0; spin < PM_ARENA_SPIN; spin++) {
        pm_cpu_relax();
        if (_pm_arena_trylock(a))
            return a;
    }
    /* Busy: move to an arena that is free right now... */
    uint32_t n = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE);
    for (uint32_t i = 1; i < n; i++) {
        pm_arena_t *b = _pm_arenas[(a->index + i) % n];
        if (_pm_arena_trylock(b)) {
            thread_move(tc, b);
            return b;
        }
    }
    /* ...or make one while under the cap, or wait for our own. */
    pm_arena_t *c = _pm_arena_create();
    if (c) {
        _pm_arena_lock(c);
        thread_move(tc, c);
        return c;
    }
    pthread_mutex_lock(&a->lock);
    a->lock_acquired++;
    return a;
}

pm_arena_t *_pm_arena_get_big_locked(void)
{
    pm_tcache_t *tc = _pm_tls_tc;
    pm_arena_t *o = tc->real ? tc->arena : NULL;
    if (!o)
        o = arena_least_loaded();
    if (!o)
        o = _pm_arena_create();
    pm_arena_t *b = o ? arena_big(o) : NULL;
    if (!b || PM_LIKELY(_pm_arena_trylock(b)))
        return b;
    __atomic_fetch_add(&b->lock_contended, 1, __ATOMIC_RELAXED);
    /* Why look further: any free companion serves a large chunk as well, and
     * its holder may be in a long copy or sweep. The thread stays put. */
    uint32_t n = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE);
    for (uint32_t i = 1; i < n; i++) {
        pm_arena_t *c = __atomic_load_n(&_pm_arenas[(o->index + i) % n]->big, __ATOMIC_ACQUIRE);
        if (c && _pm_arena_trylock(c))
            return c;
    }
    pthread_mutex_lock(&b->lock);
    b->lock_acquired++;
    return b;
}

pm_arena_t *_pm_arena_next(pm_arena_t *a, pm_arena_t *start)
{
    uint32_t n = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE);
    for (uint32_t i = 1; i < n; i++) {
        pm_arena_t *b = _pm_arenas[(a->index + i) % n];
        /* Why companions only among themselves: the other kind is not where
         * a chunk of this size belongs. */
        if (a->is_big)
            b = __atomic_load_n(&b->big, __ATOMIC_ACQUIRE);
        if (b == start)
            return NULL;
        if (b)
            return b;
    }
    return NULL;
}

/* ---- fork: every lock, in rank order ----------------------------------- */
static void fork_prepare(void)
{
    _pm_options_lock();
    pthread_mutex_lock(&arena_list_lock);
    uint32_t n = _pm_narenas;
    for (uint32_t i = 0; i < 2 * n; i++) {
        pm_arena_t *a = arena_slot(i, n);
        if (a)
            pthread_mutex_lock(&a->lock);
    }
    _pm_large_fork_lock();
    _pm_tcache_fork_lock();
}

static void fork_parent(void)
{
    _pm_tcache_fork_unlock(false);
    _pm_large_fork_unlock(false);
    for (uint32_t n = _pm_narenas, i = 2 * n; i-- > 0;) {
        pm_arena_t *a = arena_slot(i, n);
        if (a)
            pthread_mutex_unlock(&a->lock);
    }
    pthread_mutex_unlock(&arena_list_lock);
    _pm_options_unlock();
}

static void fork_child(void)
{
    _pm_large_fork_unlock(true);
    /* Why reset: the other threads do not exist in the child. */
    pm_tcache_t *tc = _pm_tls_tc;
    for (uint32_t n = _pm_narenas, i = 2 * n; i-- > 0;) {
        pm_arena_t *a = arena_slot(i, n);
        if (!a)
            continue;
        a->attached = (tc->real && tc->arena == a) ? 1 : 0;
        /* Why: the threads purging free runs are not in the child; the
         * runs go back to the bins as they are (the pages may hold data).
         * First: one may cut a heap's tail, which the loop below sees. */
        _pm_out_batches_return(a);
        /* Why: a parent thread was giving pages past a heap's end back when
         * it forked; in the child no one will finish that and lower the
         * count, and those pages may still hold data, so none is taken to
         * be zero. A tail cut but not yet taken for purging is the one
         * purge the child will still make (the next unlock takes it). */
        for (pm_heap_t *h = a->heap; h; h = h->prev) {
            if (h->purging) {
                h->purging = a->tail.len && a->tail.heap == h;
                h->zero_from = h->dirty_to = (char *)h + PM_HEAP_SIZE;
            }
        }
        /* The same for the emptied heaps waiting to be unmapped (the
         * child's next unlock unmaps them, after the count is down) and a
         * spare (the child may carve it). */
        for (pm_heap_t *h = a->release; h; h = h->prev)
            h->purging = a->tail.len && a->tail.heap == h;
        if (a->spare && a->spare->purging) {
            a->spare->purging = a->tail.len && a->tail.heap == a->spare;
            a->spare->zero_from = a->spare->dirty_to = (char *)a->spare + PM_HEAP_SIZE;
        }
        pthread_mutex_unlock(&a->lock);
    }
    pthread_mutex_unlock(&arena_list_lock);
    _pm_options_unlock();
    _pm_purger_fork_child();
    /* Last: it asks the kernel for the child's ids, with no arena locked. */
    _pm_tcache_fork_unlock(true);
}

void _pm_fork_install(void)
{
    /* Why a flag: the constructor and init both call this (see init.c),
     * and a child forked while another thread was in init runs init again;
     * handlers installed twice would take every lock twice. Set first: a
     * call back in from pthread_atfork (preloaded) then returns at once. */
    static int installed;
    if (__atomic_exchange_n(&installed, 1, __ATOMIC_ACQ_REL))
        return;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}
