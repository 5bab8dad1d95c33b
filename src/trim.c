/*
 * trim.c - giving memory back to the OS. A free top larger than
 * trim_threshold is cut back to top_pad after a free; pm_malloc_trim also
 * returns the interior pages of large free chunks. The plan is made under
 * the arena lock, the madvise is made after it (musl mallocng's rule).
 */
#include "heap.h"

#define PM_TRIM_BATCH 64

void _pm_arena_unlock_trim(pm_arena_t *a)
{
    pm_purge_t pp;
    bool purge = false;
    size_t top = (size_t)(a->heap->end - (char *)a->top);
    if (PM_UNLIKELY(top > trim_threshold() + PM_MIN_CHUNK))
        purge = _pm_bins_plan_trim(a, PM_OPT(top_pad), &pp);
    pm_heap_t *gone = a->release;
    pm_purge_t tail = a->tail;
    a->release = NULL;
    a->tail.len = 0;
    _pm_arena_unlock(a);
    if (tail.len)
        _pm_os_purge(tail.addr, tail.len);
    if (purge) {
        _pm_os_purge(pp.addr, pp.len);
        _pm_purge_done(&pp);
    }
    if (gone)
        _pm_heap_unmap(gone);
}

int _pm_trim_arena(pm_arena_t *a, size_t pad)
{
    size_t page = _pm_os_page_size();
    pm_purge_t pp;
    pm_chunk_t *held[PM_TRIM_BATCH];
    size_t nheld = 0;
    _pm_arena_lock(a);
    _pm_remote_drain(a);
    _pm_stash_consolidate(a);
    bool purge = _pm_bins_plan_trim(a, pad, &pp);
    /* Why skip at level >= 1: purged pages read as zero, not as the fill
     * pattern the write-after-free check expects. */
    if (_pm_check_level == 0) {
        for (unsigned k = PM_NBINS; k-- > 0 && nheld < PM_TRIM_BATCH;) {
            for (pm_chunk_t *c = a->bins[k]; c && nheld < PM_TRIM_BATCH;) {
                size_t s = head_size(chunk_head(c));
                if (s < 4 * page)
                    break;
                /* Take it out of the bins while its pages go back. */
                _pm_bins_unlink(a, c, s, "pm_malloc_trim");
                chunk_set(c, s, PM_ST_CACHED, chunk_head(c) & PM_PREV_INUSE);
                pm_chunk_t *n = chunk_at(c, s);
                uint64_t nh = chunk_head(n);
                chunk_set(n, head_size(nh), head_state(nh), PM_PREV_INUSE);
                a->in_use += s;
                held[nheld++] = c;
                c = a->bins[k];
            }
        }
    }
    _pm_arena_unlock(a);
    int released = 0;
    if (purge) {
        _pm_os_purge(pp.addr, pp.len);
        _pm_purge_done(&pp);
        released = 1;
    }
    for (size_t i = 0; i < nheld; i++) {
        uintptr_t from = ((uintptr_t)held[i] + sizeof(pm_chunk_t) + page - 1) & ~(page - 1);
        uintptr_t to = ((uintptr_t)held[i] + head_size(chunk_head(held[i]))) & ~(page - 1);
        if (to > from) {
            _pm_os_purge((void *)from, to - from);
            released = 1;
        }
    }
    if (nheld) {
        _pm_arena_lock(a);
        for (size_t i = 0; i < nheld; i++)
            _pm_bins_free(a, held[i], "pm_malloc_trim");
        _pm_arena_unlock_trim(a);
    }
    /* Old heaps: cut their free tails back, one heap per lock. */
    for (;;) {
        _pm_arena_lock(a);
        bool cut = _pm_bins_cut_old_tail(a, pad);
        _pm_arena_unlock_trim(a);
        if (!cut)
            break;
        released = 1;
    }
    return released;
}

int pm_malloc_trim(size_t pad)
{
    pm_ensure_init();
    pm_tcache_t *tc = _pm_tls_tc;
    if (tc->real)
        _pm_tcache_flush_all(tc);
    int released = 0;
    uint32_t n = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++)
        released |= _pm_trim_arena(_pm_arenas[i], pad);
    return released;
}
