/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - pm_malloc and friends. The inline path is one likely branch
 * that pops a block off the thread cache; everything else (first call,
 * empty cache, big requests, check levels) goes to _pm_alloc_slow, which is
 * kept out of line so the hot path stays a handful of instructions.
 */
#include "heap.h"

#include <errno.h>
#include <string.h>

/* Chunk size for n at the current check level (level >= 1 adds a canary). */
static size_t chunk_size_for(size_t n)
{
    return request2size(n + (_pm_check_level >= 1 ? 8 : 0));
}

static void *enomem(void)
{
    errno = ENOMEM;
    return NULL;
}

/* A direct mapping of n bytes aligned to align, with its canary when the
 * checks are on. *ok false: mmap_max reached or mmap refused (an arena may
 * still serve it). */
static void *large_alloc(size_t n, size_t align, bool *ok)
{
    void *p = _pm_large_alloc(n, align, true, ok);
    if (p && _pm_check_level >= 1)
        _pm_debug_on_alloc(mem2chunk(p), PM_FROM_FRESH);
    return p;
}

/* The last resort for a request no arena could serve: a direct mapping
 * even past mmap_max (M_MMAP_MAX 0 included), as glibc's main arena maps
 * one when its brk heap cannot grow. NULL with ENOMEM. */
static void *large_alloc_last(size_t n, size_t align)
{
    bool ok;
    void *p = _pm_large_alloc(n, align, false, &ok);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    if (_pm_check_level >= 1)
        _pm_debug_on_alloc(mem2chunk(p), PM_FROM_FRESH);
    return p;
}

/* Recycled callocs found resident in a row before the check is skipped;
 * then it is skipped for 1, 2, 4 ... 2^PM_ZERO_SKIP_LOG callocs. */
#define PM_ZERO_DENSE_RUN 4
#define PM_ZERO_SKIP_LOG  6

/* Zero [from, from+len) (whole pages of a block of arena a that held
 * data) by giving the pages back, as jemalloc zeroes a reused extent: the
 * kernel hands them back zeroed when touched, so a calloc'd buffer the
 * program fills sparsely stays mostly unresident where a memset would make
 * all of it resident. False: memset it instead. */
static bool zero_by_purge(pm_arena_t *a, char *from, size_t len)
{
    /* Why a check: pages still resident were filled before and likely will
     * be again; memset keeps them without a page fault apiece. Why back
     * off: a program that fills what it callocs would pay for a check it
     * always fails. Relaxed, unlocked: lost updates only move a guess. */
    uint16_t skip = __atomic_load_n(&a->zero_skip, __ATOMIC_RELAXED);
    if (skip) {
        __atomic_store_n(&a->zero_skip, (uint16_t)(skip - 1), __ATOMIC_RELAXED);
        return false;
    }
    size_t pages = len / _pm_os_page_size();
    uint16_t dense = __atomic_load_n(&a->zero_dense, __ATOMIC_RELAXED);
    if (_pm_os_resident(from, len, pages / 2) > pages / 2) {
        if (dense < PM_ZERO_DENSE_RUN + PM_ZERO_SKIP_LOG)
            __atomic_store_n(&a->zero_dense, ++dense, __ATOMIC_RELAXED);
        if (dense >= PM_ZERO_DENSE_RUN)
            __atomic_store_n(&a->zero_skip, (uint16_t)(1u << (dense - PM_ZERO_DENSE_RUN)),
                             __ATOMIC_RELAXED);
        return false;
    }
    if (dense)
        __atomic_store_n(&a->zero_dense, 0, __ATOMIC_RELAXED);
    /* Locked pages refuse (mlock): memset then. */
    return _pm_os_purge(from, len);
}

/* Zero the n bytes at p, a block of arena a that held data. */
static void zero_recycled(pm_arena_t *a, char *p, size_t n)
{
    char *from = (char *)_pm_page_up((uintptr_t)p);
    char *to = (char *)_pm_page_down((uintptr_t)p + n);
    /* Why only from PM_PURGE_MIN (where decay starts too): below it the
     * pages saved are few, and the two system calls cost more than the
     * memset (at 64 KiB they still do: 2.0 against 0.7 us here). */
    if (n < PM_PURGE_MIN || !zero_by_purge(a, from, (size_t)(to - from))) {
        memset(p, 0, n);
        return;
    }
    memset(p, 0, (size_t)(from - p));
    memset(to, 0, (size_t)(p + n - to));
}

/* Serve csize from arena a (locked on entry, unlocked on return), then from
 * the others, then from a direct mapping: NULL only when all are out. */
static void *alloc_from(pm_arena_t *a, size_t csize, bool zero)
{
    pm_arena_t *start = a;
    int how = PM_FROM_TOP;
    for (;;) {
        pm_chunk_t *c = _pm_bins_alloc(a, csize, &how);
        if (!c)
            c = _pm_bins_alloc_newheap(a, csize, &how);
        if (c) {
            if (_pm_check_level >= 2)
                _pm_check_arena(a, 2);
            _pm_arena_unlock_trim(a);
            if (PM_UNLIKELY(_pm_check_level >= 1 || PM_OPT(perturb)))
                _pm_debug_on_alloc(c, how);
            void *p = chunk2mem(c);
            if (zero && how != PM_FROM_FRESH)
                zero_recycled(a, p, _pm_usable(c, chunk_head(c)));
            return p;
        }
        _pm_arena_unlock(a);
        /* Why go on: this arena could not grow; another may have room. */
        a = _pm_arena_next(a, start);
        if (!a)
            break;
        _pm_arena_lock(a);
    }
    return large_alloc_last(csize, 0);
}

/* Serve csize from the calling thread's arena (or its large companion),
 * then as alloc_from. */
void *_pm_alloc_arena(size_t csize, bool zero)
{
    /* Why apart: see pm_arena_t.big. */
    pm_arena_t *a = csize >= PM_BIG_CSIZE ? _pm_arena_get_big_locked() : NULL;
    if (!a) {
        /* No companion (none could be mapped): a plain arena serves it. */
        a = _pm_arena_get_locked();
    }
    /* Why a mapping of its own: no arena could be made (a 64 MiB heap is
     * refused, as after mlockall(MCL_FUTURE) under a small RLIMIT_MEMLOCK,
     * which counts a mapping whole), but a mapping of this size may pass. */
    if (!a)
        return large_alloc_last(csize, 0);
    return alloc_from(a, csize, zero);
}

static void *alloc_slow(size_t n)
{
    if (PM_UNLIKELY(!pm_ensure_alloc()))
        return _pm_boot_alloc(n, 0);
    if (PM_UNLIKELY(n > PM_MAX_REQUEST))
        return enomem();
    pm_tcache_t *tc = _pm_tls_tc;
    if (!tc->real) {
        pm_tcache_t *t = _pm_tcache_create();
        if (t)
            tc = t;
    }
    size_t csize = chunk_size_for(n);
    if (n >= mmap_threshold()) {
        bool ok;
        void *p = large_alloc(n, 0, &ok);
        if (p || ok)
            return p;
        /* mmap refused or mmap_max reached: an arena may still serve it. */
    }
    if (tc->real && tc->nclass && size_class_ceil(csize) < tc->nclass)
        return _pm_tcache_alloc_slow(tc, csize);
    return _pm_alloc_arena(csize, false);
}

/* Level >= 1: what the program asked for is the block's size from now on. */
static void *with_size(void *p, size_t n)
{
    if (PM_UNLIKELY(_pm_check_level >= 1) && p)
        _pm_debug_set_size(mem2chunk(p), n);
    return p;
}

__attribute__((noinline)) void *_pm_alloc_slow(size_t n)
{
    return with_size(alloc_slow(n), n);
}

void *pm_malloc(size_t n)
{
    pm_tcache_t *tc = _pm_tls_tc;
    if (PM_LIKELY(n <= tc->fast_max)) {
        size_t k = ((n < 24 ? 24 : n) + 23) >> 4;
        pm_tbin_t *b = &tc->bins[k];
        uint32_t cnt = b->count;
        if (PM_LIKELY(cnt != 0)) {
            void *p = b->slots[cnt - 1];
            /* The key is intact unless someone wrote to the block after
             * freeing it; the slow path says so. */
            if (PM_LIKELY(*mem_word0(p) == tc_key(p))) {
                *mem_word0(p) = 0;
                __atomic_store_n(&b->count, cnt - 1, __ATOMIC_RELAXED);
                return p;
            }
        }
    }
    return _pm_alloc_slow(n);
}

void *pm_calloc(size_t nmemb, size_t size)
{
    size_t n;
    if (PM_UNLIKELY(__builtin_mul_overflow(nmemb, size, &n) || n > PM_MAX_REQUEST))
        return enomem();
    if (PM_UNLIKELY(!pm_ensure_alloc()))
        return _pm_boot_alloc(n, 0); /* fresh mappings are zero */
    /* Why these paths: memory fresh from mmap or from an untouched top is
     * already zero, and a big calloc should not pay for a memset. */
    if (_pm_check_level == 0 && !PM_OPT(perturb) && n > PM_OPT(tcache_max)) {
        if (n >= mmap_threshold()) {
            bool ok;
            void *p = large_alloc(n, 0, &ok);
            if (p || ok)
                return p;
        }
        return _pm_alloc_arena(chunk_size_for(n), true);
    }
    void *p = pm_malloc(n);
    if (p)
        memset(p, 0, n);
    return p;
}

static void *memalign_arena(size_t align, size_t n)
{
    if (PM_UNLIKELY(!pm_ensure_alloc()))
        return _pm_boot_alloc(n, align);
    if (align <= PM_ALIGNMENT)
        return pm_malloc(n);
    size_t csize = chunk_size_for(n), total;
    if (n > PM_MAX_REQUEST || align > PM_MAX_REQUEST ||
        __builtin_add_overflow(csize, align + PM_MIN_CHUNK, &total))
        return enomem();
    /* Why also by size: an arena serves at most half a heap with its slack
     * (total), whatever the threshold says. */
    if (n + align >= mmap_threshold() || total >= PM_HEAP_SIZE / 2) {
        bool ok;
        void *p = large_alloc(n, align, &ok);
        if (p || ok)
            return p;
    }
    if (total >= PM_HEAP_SIZE / 2)
        return large_alloc_last(n, align);
    pm_arena_t *a = _pm_arena_get_locked();
    if (!a)
        return enomem();
    int how;
    pm_chunk_t *c = _pm_bins_alloc(a, total, &how);
    if (!c)
        c = _pm_bins_alloc_newheap(a, total, &how);
    if (!c) {
        _pm_arena_unlock(a);
        return large_alloc_last(n, align);
    }
    uintptr_t m = ((uintptr_t)chunk2mem(c) + align - 1) & ~(uintptr_t)(align - 1);
    pm_chunk_t *nc = mem2chunk((void *)m);
    if (nc != c) {
        size_t lead = (size_t)((char *)nc - (char *)c);
        if (lead < PM_MIN_CHUNK) {
            nc = chunk_at(nc, align);
            lead += align;
        }
        uint64_t h = chunk_head(c);
        size_t s = head_size(h);
        chunk_set(c, lead, PM_ST_INUSE, h & PM_PREV_INUSE);
        chunk_set(nc, s - lead, PM_ST_INUSE, PM_PREV_INUSE);
        _pm_bins_free(a, c, "pm_memalign"); /* in_use keeps nc's s - lead */
        c = nc;
    }
    _pm_bins_shrink(a, c, csize);
    _pm_arena_unlock_trim(a);
    if (PM_UNLIKELY(_pm_check_level >= 1 || PM_OPT(perturb)))
        _pm_debug_on_alloc(c, how == PM_FROM_FRESH ? PM_FROM_FRESH : PM_FROM_TOP);
    return chunk2mem(c);
}

static void *memalign_impl(size_t align, size_t n)
{
    return with_size(memalign_arena(align, n), n);
}

static bool pow2(size_t x)
{
    return x && !(x & (x - 1));
}

void *pm_memalign(size_t align, size_t n)
{
    if (!pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return memalign_impl(align, n);
}

void *pm_aligned_alloc(size_t align, size_t n)
{
    return pm_memalign(align, n);
}

int pm_posix_memalign(void **memptr, size_t align, size_t n)
{
    if (!pow2(align) || align % sizeof(void *))
        return EINVAL;
    int saved = errno;
    void *p = memalign_impl(align, n);
    if (!p) {
        int e = errno;
        errno = saved;
        return e ? e : ENOMEM;
    }
    *memptr = p;
    return 0;
}

void *pm_realloc(void *p, size_t n)
{
    if (!p)
        return pm_malloc(n);
    if (n == 0) {
        _pm_free_for(p, "pm_realloc"); /* a bad p is reported as pm_realloc's */
        return NULL;
    }
    if (PM_UNLIKELY(!pm_ensure_alloc())) {
        /* From inside init: p can only be a boot block (nothing else is
         * out yet); a new one and a copy. */
        uint64_t h;
        pm_chunk_t *c = _pm_chunk_checked(p, "pm_realloc", &h);
        size_t old = _pm_usable(c, h);
        void *q = _pm_boot_alloc(n, 0);
        if (q) {
            memcpy(q, p, old < n ? old : n);
            pm_free(p);
        }
        return q;
    }
    uint64_t h;
    pm_chunk_t *c = _pm_chunk_checked(p, "pm_realloc", &h);
    if (n > PM_MAX_REQUEST)
        return enomem();
    size_t old = _pm_usable(c, h);
    if (_pm_check_level >= 1)
        _pm_debug_check_canary(c, "pm_realloc", p);
    void *q = NULL;
    if (head_state(h) == PM_ST_MMAPPED) {
        if (n >= mmap_threshold()) {
            q = _pm_large_realloc(c, p, n);
            if (_pm_check_level >= 1)
                _pm_debug_set_size(q ? mem2chunk(q) : c, q ? n : old);
            if (q)
                return q;
            /* mremap refused: a fresh block and a copy may still work. */
        }
    } else {
        size_t csize = chunk_size_for(n), s = head_size(h);
        pm_arena_t *a = heap_of(c)->arena;
        if (csize <= s) {
            /* Why a floor: shrinking by a few bytes is not worth a lock. */
            if (s - csize >= 256) {
                _pm_arena_lock(a);
                _pm_bins_shrink(a, c, csize);
                _pm_arena_unlock_trim(a);
            }
            if (_pm_check_level >= 1)
                _pm_debug_set_size(c, n);
            return p;
        }
        if (n < mmap_threshold()) {
            _pm_arena_lock(a);
            if (_pm_bins_grow_inplace(a, c, csize)) {
                _pm_arena_unlock(a);
                if (_pm_check_level >= 1)
                    _pm_debug_set_size(c, n);
                return p;
            }
            pm_arena_t *mine = _pm_tls_tc->arena;
            if (mine && _pm_arenas[a->index] == mine) { /* its own or its companion */
                /* Why the block's own arena, not the thread cache or the
                 * companion: a string or vector that grows leaves its earlier
                 * copies free here, and these holes (coalesced) are what its
                 * next copies need, as in glibc, whose realloc bypasses its
                 * tcache too. */
                q = alloc_from(a, csize, false);
            } else {
                _pm_arena_unlock(a);
            }
        }
    }
    if (!q)
        q = pm_malloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    _pm_free_moved(p);
    return with_size(q, n);
}

size_t pm_malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    pm_ensure_init();
    uint64_t h;
    pm_chunk_t *c = _pm_chunk_checked(p, "pm_malloc_usable_size", &h);
    return _pm_usable(c, h);
}

/* glibc's names where glibc 2.36 means the same (override.c has the rest). */
PM_GLIBC_NAME(malloc, pm_malloc)
PM_GLIBC_NAME(__libc_malloc, pm_malloc)
PM_GLIBC_NAME(calloc, pm_calloc)
PM_GLIBC_NAME(__libc_calloc, pm_calloc)
PM_GLIBC_NAME(realloc, pm_realloc)
PM_GLIBC_NAME(__libc_realloc, pm_realloc)
PM_GLIBC_NAME(posix_memalign, pm_posix_memalign)
PM_GLIBC_NAME(malloc_usable_size, pm_malloc_usable_size)
