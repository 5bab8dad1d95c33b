/* SPDX-License-Identifier: MIT */
/*
 * free.c - pm_free: the inline local path (a checked header, a push onto
 * the thread cache), the out-of-line path (remote blocks, full caches,
 * arena frees with trimming, direct mappings), and the diagnosis of a bad
 * pointer, which says what it is before the process aborts.
 */
#include "heap.h"

#include <string.h>

#define PM_CANARY_CAP (64 * PM_KIB) /* bytes of a block the level-1 fill covers */

/* A valid head of an in-use chunk of size s <= 1 KiB: one table load. */
static inline bool head_inuse_small(uint64_t h, size_t s)
{
#ifdef PM_NO_CHECKS
    (void)s;
    return head_state(h) == PM_ST_INUSE;
#else
    return h == _pm_inuse_head[(s >> 3) | (h & PM_PREV_INUSE)];
#endif
}

/* The bytes a block holds: at level >= 1 up to its size word (below). */
static size_t block_cap(pm_chunk_t *c, uint64_t h)
{
    if (head_state(h) == PM_ST_MMAPPED)
        return _pm_large_usable(c);
    return head_size(h) - PM_OVERHEAD - (_pm_check_level >= 1 ? 8 : 0);
}

static uint64_t canary_of(const pm_chunk_t *c)
{
    return _pm_secret ^ (uintptr_t)c ^ 0x63616e617279ull;
}

static unsigned char free_byte(void)
{
    size_t pb = PM_OPT(perturb);
    return pb ? (unsigned char)pb : 0xdf;
}

/* Level >= 1 keeps the requested size n in the word after the block's
 * capacity, as (n << 17) | a 17-bit check of n keyed with the block's
 * canary, and fills the bytes from n to the capacity with the free byte: a
 * write past n changes a pad byte or, at the word's low end, the check.
 * Why the free byte: a freed block then reads as a valid block of size 8
 * (see _pm_debug_on_free), the one an inline pm_malloc(0) may pop. */
#define PM_SIZE_CHECK_BITS 17
static uint64_t size_word(const pm_chunk_t *c, size_t n)
{
    uint64_t chk = ((canary_of(c) ^ n) * 0x9e3779b97f4a7c15ull) >> (64 - PM_SIZE_CHECK_BITS);
    return ((uint64_t)n << PM_SIZE_CHECK_BITS) | chk;
}
/* The size a word records, or SIZE_MAX if the word is damaged. */
static size_t size_of_word(const pm_chunk_t *c, uint64_t w, size_t cap)
{
    size_t n = (size_t)(w >> PM_SIZE_CHECK_BITS);
    return n <= cap && size_word(c, n) == w ? n : SIZE_MAX;
}

size_t _pm_usable(pm_chunk_t *c, uint64_t h)
{
    size_t cap = block_cap(c, h);
    if (_pm_check_level == 0)
        return cap;
    /* Why the requested size: bytes past it are the overflow check's, as
     * in glibc's checking mode. A damaged word: the checks report it. */
    uint64_t w;
    memcpy(&w, (char *)chunk2mem(c) + cap, 8);
    size_t n = size_of_word(c, w, cap);
    return n == SIZE_MAX ? cap : n;
}

/* The region a freed block's fill covers: from skip bytes into the block. */
static void fill_region(pm_chunk_t *c, size_t usable, size_t skip, char **from, size_t *len)
{
    size_t end = usable > PM_CANARY_CAP ? PM_CANARY_CAP : usable;
    *from = (char *)chunk2mem(c) + skip;
    *len = end > skip ? end - skip : 0;
}

void _pm_debug_fill_free(pm_chunk_t *c)
{
    /* A chunk entering a bin: its links take the first 16 bytes. */
    char *from;
    size_t len;
    fill_region(c, head_size(chunk_head(c)) - PM_OVERHEAD - 8, 16, &from, &len);
    memset(from, free_byte(), len);
}

void _pm_debug_on_alloc(pm_chunk_t *c, int how)
{
    uint64_t h = chunk_head(c);
    size_t cap = block_cap(c, h);
    if (_pm_check_level >= 1 && (how == PM_FROM_BIN || how == PM_FROM_CACHE)) {
        char *from;
        size_t len;
        fill_region(c, cap, how == PM_FROM_BIN ? 16 : 8, &from, &len);
        unsigned char fb = free_byte();
        for (size_t i = 0; i < len; i++)
            if (PM_UNLIKELY((unsigned char)from[i] != fb))
                _pm_fatal("pm_malloc", chunk2mem(c),
                          "write after free (freed block changed at offset %zu)",
                          (size_t)(from + i - (char *)chunk2mem(c)));
    }
    if (PM_OPT(perturb))
        memset(chunk2mem(c), (int)(PM_OPT(perturb) ^ 0xff), cap);
    if (_pm_check_level >= 1)
        _pm_debug_set_size(c, cap); /* the public call narrows it to the request */
}

void _pm_debug_set_size(pm_chunk_t *c, size_t n)
{
    size_t cap = block_cap(c, chunk_head(c));
    char *p = chunk2mem(c);
    memset(p + n, free_byte(), cap - n);
    uint64_t w = size_word(c, n);
    memcpy(p + cap, &w, 8);
}

void _pm_debug_check_canary(pm_chunk_t *c, const char *call, void *p)
{
    /* Why: a block served from inside init was made before the level was
     * known, with no canary. */
    if (head_state(chunk_head(c)) == PM_ST_MMAPPED && _pm_boot_block(c, false))
        return;
    size_t cap = block_cap(c, chunk_head(c));
    uint64_t w;
    memcpy(&w, (char *)p + cap, 8);
    size_t n = size_of_word(c, w, cap);
    if (PM_UNLIKELY(n == SIZE_MAX))
        _pm_fatal(call, p, "heap overflow: canary after the block overwritten");
    unsigned char pb = free_byte();
    const unsigned char *u = p;
    for (size_t i = n; i < cap; i++)
        if (PM_UNLIKELY(u[i] != pb))
            _pm_fatal(call, p, "heap overflow: byte %zu past the end of a %zu-byte block "
                               "changed", i - n, n);
}

void _pm_debug_on_free(pm_chunk_t *c, const char *call, void *p)
{
    uint64_t h = chunk_head(c);
    size_t cap = block_cap(c, h);
    if (head_state(h) == PM_ST_MMAPPED) {
        /* A boot block (init's) has no canary, and leaves the table here. */
        if (_pm_check_level >= 1 && !_pm_boot_block(c, true))
            _pm_debug_check_canary(c, call, p);
        return;
    }
    if (_pm_check_level >= 1)
        _pm_debug_check_canary(c, call, p);
    char *from;
    size_t len;
    fill_region(c, cap, 0, &from, &len);
    memset(from, free_byte(), len);
    /* Why: pm_malloc(0) passes the inline path's size test even with the
     * checks on, and may pop this block as it is, without the slow path;
     * that path clears the first word, so the block reads as one of 8. */
    if (_pm_check_level >= 1 && cap <= PM_CANARY_CAP) {
        uint64_t w = size_word(c, 8);
        memcpy(from + cap, &w, 8);
    }
}

/* Walk p's heap to say what p is. Reads stay inside the heap's mapping. */
PM_COLD __attribute__((noreturn)) void _pm_report_bad(void *p, const char *call, uint64_t head)
{
    pm_chunk_t *c = mem2chunk(p);
    bool freed_call = strcmp(call, "pm_free") == 0;
    if ((uintptr_t)p & 15)
        _pm_fatal(call, p, "invalid pointer (misaligned)");
    if (chunk_head_ok(c, head)) {
        unsigned st = head_state(head);
        if (st == PM_ST_FREE || st == PM_ST_CACHED)
            _pm_fatal(call, p, freed_call ? "double free" : "pointer already freed");
        /* Why freed: a top that starts at a block's header is, but for a
         * wild pointer landing just there, that block freed into it. */
        if (st == PM_ST_TOP)
            _pm_fatal(call, p, freed_call ? "double free (the block merged into the top)"
                                          : "pointer already freed (merged into the top)");
    }
    pm_heap_t *h = heap_of(p);
    char *x = h->first, *end = h->end, *limit = (char *)h + PM_HEAP_SIZE;
    if (end > limit || end < x)
        end = limit;
    else if ((char *)c >= end)
        _pm_fatal(call, p, "invalid pointer (past the used part of its heap)");
    for (unsigned long steps = 0; x < end && steps < (1ul << 24); steps++) {
        pm_chunk_t *xc = (pm_chunk_t *)x;
        uint64_t xh = chunk_head(xc);
        size_t s = head_size(xh);
        if (!chunk_head_ok(xc, xh) || s < PM_MIN_CHUNK || x + s > limit) {
            if (xc == c)
                _pm_fatal(call, p, "corrupted chunk header (head %p)", (void *)xh);
            if ((char *)c > x)
                _pm_fatal(call, p, "corrupted chunk header (head %p at %p, before the block)",
                          (void *)xh, (void *)xc);
            break;
        }
        if ((char *)p > x + PM_HDR - 1 && (char *)p < x + s + PM_OVERHEAD) {
            unsigned st = head_state(xh);
            if (xc == c)
                break;
            if (st == PM_ST_FREE || st == PM_ST_CACHED)
                _pm_fatal(call, p, freed_call ? "double free (pointer into freed memory at %p)"
                                              : "pointer already freed (memory at %p is free)",
                          (void *)xc);
            /* Why both: inside the top, a block freed into it and a pointer
             * that was never handed out look the same. */
            if (st == PM_ST_TOP)
                _pm_fatal(call, p, freed_call ? "double free or invalid pointer (inside the "
                                                "top chunk at %p)"
                                              : "pointer already freed or never handed out "
                                                "(inside the top chunk at %p)",
                          (void *)xc);
            _pm_fatal(call, p, "invalid pointer (inside the block at %p)", chunk2mem(xc));
        }
        if (head_state(xh) == PM_ST_TOP)
            break;
        x += s;
    }
    if (chunk_head_ok(c, head))
        _pm_fatal(call, p, "invalid pointer (not a live block)");
    _pm_fatal(call, p, "corrupted chunk header (head %p)", (void *)head);
}

pm_chunk_t *_pm_chunk_checked(void *p, const char *call, uint64_t *headp)
{
    uintptr_t a = (uintptr_t)p;
    if (PM_UNLIKELY(a & 15))
        _pm_fatal(call, p, "invalid pointer (misaligned)");
    pm_chunk_t *c = mem2chunk(p);
    if (heap_owns(a)) {
        pm_heap_t *h = heap_of(p);
        if (PM_UNLIKELY((char *)p < h->first + PM_HDR))
            _pm_fatal(call, p, "invalid pointer (inside a heap header)");
        uint64_t hd = chunk_head(c);
        size_t s = head_size(hd);
        bool ok = s <= PM_FAST_CSIZE && !_pm_addr_key ? head_inuse_small(hd, s)
                                    : chunk_head_ok(c, hd) && head_state(hd) == PM_ST_INUSE;
        if (PM_UNLIKELY(!ok))
            _pm_report_bad(p, call, hd);
        if (PM_UNLIKELY(*mem_word0(p) == tc_key(p)))
            _pm_fatal(call, p, strcmp(call, "pm_free") == 0
                                   ? "double free (the block sits in a thread cache)"
                                   : "pointer already freed (the block sits in a thread cache)");
        *headp = hd;
        return c;
    }
    size_t len;
    bool tomb;
    if (!_pm_large_lookup(c, &len, &tomb)) {
        if (tomb)
            _pm_fatal(call, p, strcmp(call, "pm_free") == 0 ? "double free (mapped chunk "
                                                              "already unmapped)"
                                                            : "pointer already freed");
        void *blk = _pm_large_containing(p);
        if (blk)
            _pm_fatal(call, p, "invalid pointer (inside the mapped block at %p)", blk);
        _pm_fatal(call, p, "invalid pointer (not allocated by pmalloc)");
    }
    /* Why here: every caller goes on to trust the head (its state picks the
     * path, its size the canary's place), so a damaged one stops now. */
    _pm_large_check_head(c, len, call, p);
    *headp = chunk_head(c);
    return c;
}

static void quarantine_push(pm_arena_t *a, pm_chunk_t *c)
{
    size_t s = head_size(chunk_head(c));
    chunk_set_state(c, chunk_head(c), PM_ST_CACHED);
    while (a->q_len == PM_QUARANTINE || (a->q_len && a->q_bytes + s > PM_QUARANTINE_BYTES)) {
        pm_chunk_t *old = mem2chunk(a->quarantine[a->q_head]);
        a->q_head = (a->q_head + 1) % PM_QUARANTINE;
        a->q_len--;
        a->q_bytes -= head_size(chunk_head(old));
        _pm_debug_on_alloc(old, PM_FROM_CACHE); /* checks the fill */
        _pm_bins_free(a, old, "pm_free");
    }
    a->quarantine[(a->q_head + a->q_len) % PM_QUARANTINE] = chunk2mem(c);
    a->q_len++;
    a->q_bytes += s;
}

/* Hardened, level 0: zero what a freed block held, so that its secrets do
 * not linger (level >= 1 fills it anyway). Small blocks are left: their
 * zeroing would cost more than the rest of the free. */
static void hardened_scrub(void *p, uint64_t h)
{
    size_t s = head_size(h);
    if (_pm_check_level == 0 && s >= PM_HARDENED_ZERO_MIN)
        memset(p, 0, s - PM_OVERHEAD);
}

/* Hardened: park p (a block the thread cache would take) in a random slot
 * of the delay ring and return the block it evicts (NULL if none), which
 * is freed in its place: a freed block is never the next one handed out. */
static void *hardened_delay(pm_tcache_t *tc, void *p, const char *call)
{
    uint64_t x = tc->rng ? tc->rng : (_pm_key_secret ^ (uintptr_t)tc) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    tc->rng = x;
    unsigned j = (unsigned)((x * 0x9e3779b97f4a7c15ull) >> 61); /* 0..7 */
    void *old = tc->delay[j];
    *mem_word0(p) = tc_key(p); /* a second free of p says "double free" */
    tc->delay[j] = p;
    if (old && PM_UNLIKELY(*mem_word0(old) != tc_key(old)))
        _pm_fatal(call, old, "write after free (first word of a delayed block changed)");
    return old;
}

static void free_impl(void *p, const char *call, bool cache)
{
    uint64_t h;
    pm_chunk_t *c = _pm_chunk_checked(p, call, &h);
    if (head_state(h) == PM_ST_MMAPPED) {
        _pm_large_free(c, call, p);
        return;
    }
    if (PM_UNLIKELY(_pm_check_level >= 1 || PM_OPT(perturb)))
        _pm_debug_on_free(c, call, p);
    /* Why the next head too: an overflow past this block's end lands there;
     * one load, often in the same line. (The inline path skips it; the
     * neighbour's own free or its arena's coalescing reports it then.) */
    pm_chunk_t *nx = chunk_at(c, head_size(h));
    uint64_t nh = chunk_head(nx);
    if (PM_UNLIKELY(!chunk_head_ok(nx, nh)))
        _pm_fatal(call, p, "heap overflow: corrupted chunk header after the block (head %p "
                           "at %p)", (void *)nh, (void *)nx);
    pm_tcache_t *tc = _pm_tls_tc;
    if (PM_UNLIKELY(!tc->real) && cache) {
        /* A thread that only frees (a consumer) still needs its cache, or
         * each of its frees would take the owner's lock. */
        pm_tcache_t *t = _pm_tcache_create();
        if (t)
            tc = t;
    }
    if (PM_UNLIKELY(_pm_hardened)) {
        hardened_scrub(p, h);
        /* Only blocks this cache would take: the ring drains into it. */
        if (cache && tc->real && tc->nclass && head_size(h) <= tc->max_csize &&
            heap_of(c)->arena == tc->arena) {
            p = hardened_delay(tc, p, call);
            if (!p)
                return;
            c = mem2chunk(p);
            h = chunk_head(c);
            if (PM_UNLIKELY(!chunk_head_ok(c, h) || head_state(h) != PM_ST_INUSE))
                _pm_fatal(call, p, "corrupted chunk header (head %p of a delayed block)",
                          (void *)h);
        }
    }
    if (cache && _pm_tcache_free_slow(tc, c, h))
        return;
    pm_arena_t *a = heap_of(c)->arena;
    _pm_arena_lock(a);
    if (_pm_check_level >= 2) {
        _pm_check_arena(a, 2);
        quarantine_push(a, c);
        _pm_arena_unlock_trim(a);
        return;
    }
    _pm_bins_free(a, c, call);
    /* Why: no thread of a's would run its sweep later. */
    if (arena_idle(a))
        _pm_arena_unlock_idle(a);
    else
        _pm_arena_unlock_trim(a);
}

void _pm_free_slow(void *p)
{
    if (p)
        free_impl(p, "pm_free", true);
}

void _pm_free_for(void *p, const char *call)
{
    free_impl(p, call, true);
}

void _pm_free_moved(void *p)
{
    free_impl(p, "pm_realloc", false);
}

void pm_free(void *p)
{
    uintptr_t a = (uintptr_t)p;
    pm_tcache_t *tc = _pm_tls_tc;
    if (PM_LIKELY(heap_owns(a) && (a & PM_HEAP_MASK) >= PM_HDR)) {
        pm_chunk_t *c = mem2chunk(p);
        uint64_t h = chunk_head(c);
        size_t s = head_size(h);
        if (PM_LIKELY(s <= tc->fast_csize && head_inuse_small(h, s) &&
                      heap_of(p)->arena == tc->arena && *mem_word0(p) != tc_key(p))) {
            /* s is a multiple of 16 and a bin is 16 bytes: bins[s >> 4]. */
            pm_tbin_t *b = (pm_tbin_t *)((char *)tc->bins + s);
            uint32_t cnt = b->count;
            *mem_word0(p) = tc_key(p);
            if (PM_UNLIKELY(cnt >= b->cap)) {
                _pm_tcache_push_full(b, p); /* a tail call: no frame here */
                return;
            }
            b->slots[cnt] = p;
            __atomic_store_n(&b->count, cnt + 1, __ATOMIC_RELAXED);
            return;
        }
    }
    _pm_free_slow(p);
}

/* glibc's names for pm_free (libpmalloc-override only). */
PM_GLIBC_NAME(free, pm_free)
PM_GLIBC_NAME(__libc_free, pm_free)
