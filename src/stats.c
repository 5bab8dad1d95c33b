/* SPDX-License-Identifier: MIT */
/*
 * stats.c - what the allocator holds and hands out: pm_mallinfo and
 * pm_malloc_stats. Per-arena counters live next to each arena's lock and are
 * read under it; the cache and mapping counters are relaxed atomics.
 */
#include "heap.h"

/* One X-macro list of the per-arena figures pm_malloc_stats prints. */
#define PM_ARENA_STATS(X)                                   \
    X(heap, "heap", a->held - a->clean)                     \
    X(in_use, "in use", arena_in_use(a))                    \
    X(free, "free", a->free_bytes)                          \
    X(free_chunks, "free chunks", a->nfree)                 \
    X(top, "top", (size_t)(a->heap->end - (char *)a->top))  \
    X(mmapped, "mmapped", mapped(a, false))                 \
    X(mappings, "mappings", mapped(a, true))                \
    X(stashed, "stashed", a->stash_bytes + remote_bytes(a))  \
    X(quarantined, "quarantined", a->q_bytes)               \
    X(dirty, "unpurged", a->dirty)                          \
    X(purged, "purged", a->purged)                          \
    X(purged_free, "purged free", a->clean)                 \
    X(period, "period ms", (size_t)(a->period_ms ? a->period_ms : PM_OPT(decay_ms))) \
    X(heaps, "heaps", a->nheaps)                            \
    X(threads, "threads", (size_t)__atomic_load_n(&a->attached, __ATOMIC_RELAXED)) \
    X(locks, "locks", (size_t)a->lock_acquired)             \
    X(contended, "contended", (size_t)__atomic_load_n(&a->lock_contended, __ATOMIC_RELAXED))

/* Direct mappings made by a's threads (shown on the arena's line, not its
 * companion's). */
static size_t mapped(pm_arena_t *a, bool count)
{
    size_t n = 0, bytes = 0;
    if (!a->is_big)
        _pm_large_arena_stats(a->index, &n, &bytes);
    return count ? n : bytes;
}

static size_t remote_bytes(pm_arena_t *a)
{
    return __atomic_load_n(&a->remote_bytes, __ATOMIC_RELAXED);
}

/* Bytes the program holds: stashed, remotely freed and (check level 2)
 * quarantined blocks are free. */
static size_t arena_in_use(pm_arena_t *a)
{
    size_t parked = a->stash_bytes + remote_bytes(a) + a->q_bytes;
    return a->in_use > parked ? a->in_use - parked : 0;
}

typedef struct {
#define PM_X_FIELD(id, label, expr) size_t id;
    PM_ARENA_STATS(PM_X_FIELD)
#undef PM_X_FIELD
} pm_arena_stats_t;

static void arena_stats(pm_arena_t *a, pm_arena_stats_t *st)
{
    _pm_arena_lock(a);
#define PM_X_READ(id, label, expr) st->id = (expr);
    PM_ARENA_STATS(PM_X_READ)
#undef PM_X_READ
    _pm_arena_unlock(a);
}

/* The next arena in lock-rank order from slot *i on (of n arenas and their
 * companions), its figures read into *st; false after the last. */
static bool arena_next(uint32_t *i, uint32_t n, pm_arena_t **a, pm_arena_stats_t *st)
{
    while (*i < 2 * n) {
        pm_arena_t *x = arena_slot((*i)++, n);
        if (x) {
            arena_stats(x, st);
            *a = x;
            return true;
        }
    }
    return false;
}

static size_t held_total, held_peak;

size_t _pm_stats_held_total(void)
{
    return __atomic_load_n(&held_total, __ATOMIC_RELAXED);
}

void _pm_stats_held(ptrdiff_t delta)
{
    size_t now = __atomic_add_fetch(&held_total, (size_t)delta, __ATOMIC_RELAXED);
    size_t seen = __atomic_load_n(&held_peak, __ATOMIC_RELAXED);
    while (delta > 0 && now > seen &&
           !__atomic_compare_exchange_n(&held_peak, &seen, now, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
        ;
}

struct pm_mallinfo pm_mallinfo(void)
{
    pm_ensure_init();
    struct pm_mallinfo mi = {0};
    uint32_t n = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE);
    size_t in_use = 0, parked = 0; /* per arena: in_use excludes parked */
    pm_arena_stats_t st;
    pm_arena_t *a;
    for (uint32_t i = 0; arena_next(&i, n, &a, &st);) {
        mi.arena += st.heap;
        mi.ordblks += st.free_chunks;
        /* Why less the purged runs: their pages are not held (arena and
         * fordblks count what is resident or may be). */
        mi.fordblks += st.free - st.purged_free + st.top;
        mi.keepcost += st.top;
        in_use += st.in_use;
        parked += st.stashed + st.quarantined;
        /* The rest of the heaps: their headers and the arena itself. */
        size_t counted = st.in_use + st.free - st.purged_free + st.top + st.stashed +
                         st.quarantined;
        mi.overhead += st.heap > counted ? st.heap - counted : 0;
    }
    _pm_large_stats(&mi.hblks, &mi.hblkhd);
    _pm_tcache_stats(&mi.smblks, &mi.fsmblks);
    /* Why: the arenas count the blocks parked in thread caches and the
     * caches themselves as in use; the program holds neither. As glibc's
     * fastbins, parked blocks are free (fordblks) and also shown apart
     * (fsmblks); the caches are overhead, with the heaps' headers:
     * arena = uordblks + fordblks + overhead. The clamps: the caches are
     * read apart from the arenas, and may have moved meanwhile. */
    size_t cached = mi.fsmblks < in_use ? mi.fsmblks : in_use;
    size_t caches = _pm_tcache_own_bytes();
    if (caches > in_use - cached)
        caches = in_use - cached;
    mi.uordblks = in_use - cached - caches;
    mi.fordblks += parked + cached;
    mi.overhead += caches;
    mi.narenas = n;
    /* Why the larger: the arenas were read one by one, the peak at once. */
    size_t total = mi.arena + mi.hblkhd, peak = __atomic_load_n(&held_peak, __ATOMIC_RELAXED);
    mi.usmblks = total > peak ? total : peak;
    return mi;
}

void pm_malloc_stats(void)
{
    pm_ensure_init();
    uint32_t n = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE);
    char line[512];
    pm_arena_stats_t sum = {0};
    pm_arena_stats_t st;
    pm_arena_t *a;
    for (uint32_t i = 0; arena_next(&i, n, &a, &st);) {
#define PM_X_SUM(id, label, expr) sum.id += st.id;
        PM_ARENA_STATS(PM_X_SUM)
#undef PM_X_SUM
        size_t at = _pm_diag_format(line, sizeof line, "pmalloc: arena %u%s:", a->index,
                                    a->is_big ? " (large)" : "");
#define PM_X_PRINT(id, label, expr)                                                    \
    at += _pm_diag_format(line + at, sizeof line - at, " %s %zu", label, st.id);
        PM_ARENA_STATS(PM_X_PRINT)
#undef PM_X_PRINT
        _pm_diag_fd(2, "%s", line);
    }
    /* Why the arena lines' sums: the total must add them up (pm_mallinfo's
     * fordblks, say, counts tops and stashes as free too). */
    size_t maps, map_bytes, cached_n, cached;
    _pm_large_stats(&maps, &map_bytes);
    _pm_tcache_stats(&cached_n, &cached);
    _pm_diag_fd(2, "pmalloc: total: arenas %u, heap %zu, in use %zu (cached %zu in %zu block%s), "
                   "free %zu, top %zu, stashed %zu, quarantined %zu, unpurged %zu, "
                   "mmapped %zu in %zu chunk%s",
                n, sum.heap, sum.in_use, cached, cached_n, cached_n == 1 ? "" : "s", sum.free,
                sum.top, sum.stashed, sum.quarantined, sum.dirty, map_bytes, maps,
                maps == 1 ? "" : "s");
}

/* malloc_info's XML in glibc's shape (version 1), written through out: one
 * <heap> per arena (free chunks as "rest", no fast bins), then the totals.
 * Each piece is formatted on the stack; out may allocate (it is stdio). */
void _pm_stats_xml(void (*out)(void *ctx, const char *s, size_t len), void *ctx)
{
    pm_ensure_init();
    uint32_t n = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE);
    char buf[640];
    size_t at = _pm_diag_format(buf, sizeof buf, "<malloc version=\"1\">\n");
    out(ctx, buf, at);
    pm_arena_stats_t sum = {0};
    pm_arena_stats_t st;
    pm_arena_t *a;
    for (uint32_t i = 0; arena_next(&i, n, &a, &st);) {
        /* Why less the purged runs: as pm_mallinfo's fordblks, free memory
         * that is held (their pages went back). */
        size_t free = st.free - st.purged_free + st.top;
        sum.free_chunks += st.free_chunks;
        sum.free += free;
        sum.heap += st.heap;
        at = _pm_diag_format(buf, sizeof buf,
                             "<heap nr=\"%u\">\n<sizes>\n</sizes>\n"
                             "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
                             "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
                             "<system type=\"current\" size=\"%zu\"/>\n"
                             "<system type=\"max\" size=\"%zu\"/>\n"
                             "<aspace type=\"total\" size=\"%zu\"/>\n"
                             "<aspace type=\"mprotect\" size=\"%zu\"/>\n</heap>\n",
                             i - 1, st.free_chunks, free, st.heap, st.heap, st.heap, st.heap);
        out(ctx, buf, at);
    }
    size_t maps, map_bytes;
    _pm_large_stats(&maps, &map_bytes);
    size_t peak = __atomic_load_n(&held_peak, __ATOMIC_RELAXED);
    at = _pm_diag_format(buf, sizeof buf,
                         "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
                         "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
                         "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
                         "<system type=\"current\" size=\"%zu\"/>\n"
                         "<system type=\"max\" size=\"%zu\"/>\n"
                         "<aspace type=\"total\" size=\"%zu\"/>\n"
                         "<aspace type=\"mprotect\" size=\"%zu\"/>\n</malloc>\n",
                         sum.free_chunks, sum.free, maps, map_bytes, sum.heap,
                         peak > sum.heap ? peak : sum.heap, sum.heap, sum.heap);
    out(ctx, buf, at);
}
