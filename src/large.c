/* SPDX-License-Identifier: MIT */
/*
 * large.c - requests of at least mmap_threshold: one mapping each, unmapped
 * on free, resized with mremap. A registry (an open-addressing table of live
 * chunk addresses, with tombstones that remember freed ones) says whether a
 * pointer is one of ours before its header is read, and tells a double free
 * from a wild pointer. The registry lock (rank 2) is never held across a
 * syscall except while the table itself grows.
 */
#include "heap.h"

#include <errno.h>
#include <string.h>

typedef struct {
    uintptr_t key;  /* chunk address; | 1 once freed (tombstone); 0 empty */
    size_t len;     /* mapping length                                     */
    uint32_t arena; /* index of the arena whose thread mapped it          */
} pm_lentry_t;

#define PM_HUGE_PAGE ((size_t)2 << 20)

size_t _pm_mmap_dyn;

static bool thresholds_unset(void)
{
    return _pm_opt_state[PM_OPT_mmap_threshold].src == PM_SRC_DEFAULT &&
           _pm_opt_state[PM_OPT_trim_threshold].src == PM_SRC_DEFAULT;
}

void _pm_mmap_dynamic_reset(void)
{
    size_t start = PM_OPT(mmap_dynamic) && thresholds_unset() ? PM_DYN_START : 0;
    __atomic_store_n(&_pm_mmap_dyn, start, __ATOMIC_RELAXED);
}

static pthread_mutex_t large_lock = PTHREAD_MUTEX_INITIALIZER;
static pm_lentry_t *table;
static size_t table_cap, table_used; /* used counts live + tombstones */
static size_t live_count, live_bytes;
static size_t moving; /* live chunks out of the table during an mremap */
static size_t map_slots; /* mappings out or being made: what mmap_max bounds */

/* Take one of mmap_max's slots, or say there is none (atomic: threads
 * mapping at once must not pass the bound together). */
static bool map_slot_take(bool bound)
{
    size_t n = __atomic_load_n(&map_slots, __ATOMIC_RELAXED);
    do
        if (bound && n >= PM_OPT(mmap_max))
            return false;
    while (!__atomic_compare_exchange_n(&map_slots, &n, n + 1, true, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED));
    return true;
}

static void map_slot_give(void)
{
    __atomic_fetch_sub(&map_slots, 1, __ATOMIC_RELAXED);
}
/* Live mappings by the arena of the thread that made them (stats). */
static size_t arena_count[PM_ARENA_LIMIT], arena_bytes[PM_ARENA_LIMIT];

static size_t slot_of(uintptr_t key, size_t cap)
{
    return (size_t)((key >> 4) * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
}

/* Probe for key; returns the live slot, or NULL (and *tomb if freed). */
static pm_lentry_t *table_find(uintptr_t key, bool *tomb)
{
    *tomb = false;
    if (!table)
        return NULL;
    size_t mask = table_cap - 1;
    for (size_t i = slot_of(key, table_cap), n = 0; n < table_cap; i = (i + 1) & mask, n++) {
        if (table[i].key == 0)
            return NULL;
        if (table[i].key == key)
            return &table[i];
        if (table[i].key == (key | 1))
            *tomb = true;
    }
    return NULL;
}

static void table_put(pm_lentry_t *t, size_t cap, uintptr_t key, size_t len, uint32_t arena)
{
    size_t i = slot_of(key, cap);
    while (t[i].key != 0 && t[i].key != (key | 1))
        i = (i + 1) & (cap - 1);
    t[i].key = key;
    t[i].len = len;
    t[i].arena = arena;
}

/* Make room for one more entry; called and returns with large_lock held.
 * A rebuild drops the tombstones: an old double free then reads as an
 * invalid pointer, which still aborts. */
static bool table_reserve(void)
{
    while (!table || (table_used + 1) * 2 > table_cap) {
        size_t ncap = !table ? 4096 : live_count * 4 < table_cap ? table_cap : table_cap * 2;
        size_t seen_cap = table_cap;
        /* Why drop the lock: the new table's mmap must not block frees. */
        pthread_mutex_unlock(&large_lock);
        pm_lentry_t *nt = _pm_os_map(ncap * sizeof *nt);
        pthread_mutex_lock(&large_lock);
        if (!nt)
            return false;
        if (table_cap != seen_cap) {
            /* Someone else rebuilt it meanwhile; look again. */
            pthread_mutex_unlock(&large_lock);
            _pm_os_unmap(nt, ncap * sizeof *nt);
            pthread_mutex_lock(&large_lock);
            continue;
        }
        size_t used = 0;
        for (size_t i = 0; i < table_cap; i++)
            if (table[i].key && !(table[i].key & 1)) {
                table_put(nt, ncap, table[i].key, table[i].len, table[i].arena);
                used++;
            }
        pm_lentry_t *old = table;
        size_t oldcap = table_cap;
        table = nt;
        table_cap = ncap;
        table_used = used;
        if (old) {
            pthread_mutex_unlock(&large_lock);
            _pm_os_unmap(old, oldcap * sizeof *old);
            pthread_mutex_lock(&large_lock);
        }
    }
    return true;
}

static size_t page_round(size_t n, bool *ovf)
{
    size_t page = _pm_os_page_size();
    if (n > SIZE_MAX - page) {
        *ovf = true;
        return 0;
    }
    return (n + page - 1) & ~(page - 1);
}

static size_t large_extra(void)
{
    return _pm_check_level >= 1 ? 8 : 0;
}

/* Hardened: the last page of each mapping is a guard (PROT_NONE), outside
 * the chunk's head size, so an overflow off the end faults at once. */
static size_t guard_len(void)
{
    return _pm_hardened ? _pm_os_page_size() : 0;
}

void *_pm_large_alloc(size_t n, size_t align, bool bound, bool *ok)
{
    *ok = true;
    bool ovf = false;
    size_t slack = align > PM_ALIGNMENT ? align : 0;
    size_t len = page_round(n + PM_HDR + slack + large_extra(), &ovf) + guard_len();
    if (ovf || n > PM_MAX_REQUEST || len == guard_len()) {
        errno = ENOMEM;
        return NULL;
    }
    if (!map_slot_take(bound)) {
        /* Why: mmap_max reached; the caller serves it from an arena. */
        *ok = false;
        return NULL;
    }
    char *base;
    if (len >= PM_HUGE_PAGE && PM_OPT(thp)) {
        /* Why: a 2 MiB page faults once where 512 small ones fault 512
         * times (off by default: a block used sparsely would hold all its
         * pages). Not a reservation: a block too big for the machine must
         * get NULL here, as from mmap below, not the OOM killer later. */
        base = _pm_os_map_aligned(len, PM_HUGE_PAGE, false);
        if (base)
            _pm_os_hugepage(base, len); /* whole: a split mapping cannot mremap */
    } else {
        base = _pm_os_map(len);
    }
    if (!base) {
        map_slot_give();
        *ok = false;
        return NULL;
    }
    char *mem = base + PM_HDR;
    if (slack)
        mem = (char *)(((uintptr_t)mem + align - 1) & ~(uintptr_t)(align - 1));
    pm_chunk_t *c = mem2chunk(mem);
    size_t off = (size_t)((char *)c - base);
    c->prev_size = off;
    chunk_set(c, len - off - guard_len(), PM_ST_MMAPPED, 0);
    /* A refused guard costs only the protection (the page stays unused). */
    if (guard_len())
        (void)_pm_os_guard(base + len - guard_len(), guard_len(), true);
    pthread_mutex_lock(&large_lock);
    if (!table_reserve()) {
        pthread_mutex_unlock(&large_lock);
        _pm_os_unmap(base, len);
        map_slot_give();
        errno = ENOMEM;
        return NULL;
    }
    bool tomb;
    (void)table_find((uintptr_t)c, &tomb);
    if (!tomb)
        table_used++;
    pm_arena_t *owner = _pm_tls_tc->arena;
    uint32_t ai = owner ? owner->index : 0;
    table_put(table, table_cap, (uintptr_t)c, len, ai);
    arena_count[ai]++;
    arena_bytes[ai] += len;
    __atomic_store_n(&live_count, live_count + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&live_bytes, live_bytes + len, __ATOMIC_RELAXED);
    _pm_stats_held((ptrdiff_t)len);
    pthread_mutex_unlock(&large_lock);
    return mem;
}

bool _pm_large_lookup(pm_chunk_t *c, size_t *len, bool *was_freed)
{
    pthread_mutex_lock(&large_lock);
    pm_lentry_t *e = table_find((uintptr_t)c, was_freed);
    if (e)
        *len = e->len;
    pthread_mutex_unlock(&large_lock);
    return e != NULL;
}

void _pm_large_check_head(pm_chunk_t *c, size_t len, const char *call, void *p)
{
    uint64_t h = chunk_head(c);
    if (PM_UNLIKELY(!chunk_head_ok(c, h) || head_state(h) != PM_ST_MMAPPED ||
                    head_size(h) + c->prev_size + guard_len() != len))
        _pm_fatal(call, p, "corrupted chunk header (head %p of a mapped chunk)", (void *)h);
}

void *_pm_large_containing(const void *p)
{
    void *found = NULL;
    pthread_mutex_lock(&large_lock);
    for (size_t i = 0; table && i < table_cap && !found; i++) {
        uintptr_t k = table[i].key;
        if (!k || (k & 1))
            continue;
        pm_chunk_t *c = (pm_chunk_t *)k;
        /* Why the clamp: a damaged prev_size must not widen the range. */
        size_t off = c->prev_size <= table[i].len ? c->prev_size : 0;
        char *base = (char *)c - off;
        if ((const char *)p >= base && (const char *)p < base + table[i].len)
            found = chunk2mem(c);
    }
    pthread_mutex_unlock(&large_lock);
    return found;
}

size_t _pm_large_usable(pm_chunk_t *c)
{
    return head_size(chunk_head(c)) - PM_HDR - large_extra();
}

void _pm_large_free(pm_chunk_t *c, const char *call, void *p)
{
    pthread_mutex_lock(&large_lock);
    bool tomb;
    pm_lentry_t *e = table_find((uintptr_t)c, &tomb);
    if (!e) {
        pthread_mutex_unlock(&large_lock);
        if (tomb)
            _pm_fatal(call, p, "double free (mapped chunk already unmapped)");
        _pm_fatal(call, p, "invalid pointer (not allocated by pmalloc)");
    }
    size_t len = e->len;
    _pm_large_check_head(c, len, call, p);
    if (_pm_check_level >= 1)
        _pm_debug_on_free(c, call, p);
    e->key |= 1;
    arena_count[e->arena]--;
    arena_bytes[e->arena] -= len;
    __atomic_store_n(&live_count, live_count - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&live_bytes, live_bytes - len, __ATOMIC_RELAXED);
    _pm_stats_held(-(ptrdiff_t)len);
    pthread_mutex_unlock(&large_lock);
    /* Why only while dynamic, and a compare-and-swap: a threshold the user
     * set stays put, even when pm_mallopt sets it while this runs. */
    size_t dyn = __atomic_load_n(&_pm_mmap_dyn, __ATOMIC_RELAXED);
    while (PM_UNLIKELY(dyn) && len > dyn && len <= PM_MMAP_THRESHOLD_MAX &&
           !__atomic_compare_exchange_n(&_pm_mmap_dyn, &dyn, len, true, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
        ;
    /* Unlock, then unmap. */
    _pm_os_unmap((char *)c - c->prev_size, len);
    map_slot_give();
}

void *_pm_large_realloc(pm_chunk_t *c, void *p, size_t n)
{
    pthread_mutex_lock(&large_lock);
    bool tomb;
    pm_lentry_t *e = table_find((uintptr_t)c, &tomb);
    if (!e) {
        pthread_mutex_unlock(&large_lock);
        _pm_fatal("pm_realloc", p, tomb ? "pointer already freed" : "invalid pointer");
    }
    size_t len = e->len, off = c->prev_size;
    uint32_t ai = e->arena;
    _pm_large_check_head(c, len, "pm_realloc", p);
    bool ovf = false;
    size_t nlen = page_round(off + PM_HDR + n + large_extra(), &ovf) + guard_len();
    if (ovf) {
        pthread_mutex_unlock(&large_lock);
        errno = ENOMEM;
        return NULL;
    }
    if (nlen == len) {
        pthread_mutex_unlock(&large_lock);
        return p;
    }
    /* Take it out of the registry while it moves: unlock, then mremap. */
    e->key |= 1;
    moving++;
    pthread_mutex_unlock(&large_lock);
    /* Why the guard comes off first: mremap takes one mapping, and the
     * guard's protection splits it in two. */
    size_t g = guard_len();
    if (g)
        (void)_pm_os_guard((char *)c - off + len - g, g, false);
    char *nb = _pm_os_remap((char *)c - off, len, nlen);
    char *base = nb ? nb : (char *)c - off;
    size_t blen = nb ? nlen : len;
    if (g)
        (void)_pm_os_guard(base + blen - g, g, true);
    pthread_mutex_lock(&large_lock);
    moving--;
    pm_chunk_t *nc = (pm_chunk_t *)(base + off);
    chunk_set(nc, blen - off - g, PM_ST_MMAPPED, 0);
    table_reserve();
    bool t2;
    (void)table_find((uintptr_t)nc, &t2);
    if (!t2)
        table_used++;
    table_put(table, table_cap, (uintptr_t)nc, blen, ai);
    arena_bytes[ai] += blen - len;
    __atomic_store_n(&live_bytes, live_bytes - len + blen, __ATOMIC_RELAXED);
    _pm_stats_held((ptrdiff_t)blen - (ptrdiff_t)len);
    pthread_mutex_unlock(&large_lock);
    if (!nb) {
        errno = ENOMEM;
        return NULL;
    }
    return chunk2mem(nc);
}

void _pm_large_stats(size_t *count, size_t *bytes)
{
    *count = __atomic_load_n(&live_count, __ATOMIC_RELAXED);
    *bytes = __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
}

void _pm_large_arena_stats(uint32_t index, size_t *count, size_t *bytes)
{
    pthread_mutex_lock(&large_lock);
    *count = arena_count[index];
    *bytes = arena_bytes[index];
    pthread_mutex_unlock(&large_lock);
}

int _pm_large_check(void)
{
    int bad = 0;
    pthread_mutex_lock(&large_lock);
    size_t n = 0, bytes = 0, by_arena = 0;
    for (uint32_t i = 0; i < PM_ARENA_LIMIT; i++)
        by_arena += arena_bytes[i];
    for (size_t i = 0; table && i < table_cap; i++) {
        uintptr_t k = table[i].key;
        if (!k || (k & 1))
            continue;
        n++;
        bytes += table[i].len;
        pm_chunk_t *c = (pm_chunk_t *)k;
        uint64_t h = chunk_head(c);
        if (!chunk_head_ok(c, h) || head_state(h) != PM_ST_MMAPPED ||
            head_size(h) + c->prev_size + guard_len() != table[i].len) {
            _pm_diag("pm_check_heap: mapped chunk %p: corrupted chunk header (head %p)",
                     (void *)c, (void *)h);
            bad = 1;
        }
    }
    if (n + moving != live_count) {
        _pm_diag("pm_check_heap: %zu mapped chunks registered, %zu counted", n + moving,
                 live_count);
        bad = 1;
    }
    if (by_arena != live_bytes || (!moving && bytes != live_bytes)) {
        _pm_diag("pm_check_heap: %zu mapped bytes registered, %zu counted, %zu by arena",
                 bytes, live_bytes, by_arena);
        bad = 1;
    }
    pthread_mutex_unlock(&large_lock);
    return bad ? -1 : 0;
}

void _pm_large_fork_lock(void)
{
    pthread_mutex_lock(&large_lock);
}

void _pm_large_fork_unlock(bool child)
{
    /* A mapping another thread was making is not the child's: its slot is
     * given back there (the table holds every mapping the child has). */
    if (child)
        map_slots = live_count;
    pthread_mutex_unlock(&large_lock);
}
