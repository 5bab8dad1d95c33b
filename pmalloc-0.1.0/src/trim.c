/* SPDX-License-Identifier: MIT */
/*
 * trim.c - giving memory back to the OS. With decay_ms 0, a free top larger
 * than trim_threshold is cut back to top_pad after each free, as glibc
 * does. With decay_ms > 0 (the default), memory goes back once it has sat
 * unused for a while, as jemalloc's and mimalloc's decay: at most every
 * decay_ms an arena sweep gives back the free runs of PM_PURGE_MIN or more
 * that were already free at the sweep before, and the part of a top over
 * trim_threshold that no allocation reached since then. Memory a program
 * frees and takes again soon stays mapped and costs no page faults.
 * pm_malloc_trim returns everything at once. The plan is made under the
 * arena lock, the madvise after it (musl mallocng's rule).
 */
#include "heap.h"

#define PM_TRIM_BATCH 64

static bool purge_run(pm_chunk_t *c)
{
    /* The header, links, stamp and dirty count stay; the pages after go. */
    uintptr_t from = _pm_page_up((uintptr_t)(chunk_dirty(c) + 1));
    uintptr_t to = _pm_page_down((uintptr_t)c + head_size(chunk_head(c)));
    return to <= from || _pm_os_purge((void *)from, to - from);
}

/* The bytes of a run taken out of the bins that its purge gives back. */
static size_t run_dirty(pm_chunk_t *c)
{
    return chunk_dirty_bytes(c, head_size(chunk_head(c)));
}

static size_t unlock_trim(pm_arena_t *a, bool may_sweep);

/* List the n runs taken out of a's bins as batch b and count them as
 * purged (lock held). */
static void batch_out(pm_arena_t *a, pm_out_batch_t *b, pm_chunk_t **held, size_t n)
{
    *b = (pm_out_batch_t){.next = a->out, .runs = held, .n = n, .owner = pthread_self()};
    a->out = b;
    for (size_t i = 0; i < n; i++)
        a->purged += run_dirty(held[i]);
}

/* Purge batch b's runs (a unlocked), then put them back; returns how many
 * went. Why no sweep in the unlock after: this may run inside one, and runs
 * whose purge failed (locked pages) would feed sweep after sweep, each a
 * call deeper. */
static size_t batch_purge_and_free(pm_arena_t *a, pm_out_batch_t *b, const char *call)
{
    bool purged[PM_TRIM_BATCH];
    size_t went = 0;
    for (size_t i = 0; i < b->n; i++)
        went += purged[i] = purge_run(b->runs[i]);
    _pm_arena_lock(a);
    pm_out_batch_t **pp = &a->out;
    while (*pp != b)
        pp = &(*pp)->next;
    *pp = b->next;
    for (size_t i = 0; i < b->n; i++) {
        if (!purged[i])
            a->purged -= run_dirty(b->runs[i]);
        _pm_bins_free_purged(a, b->runs[i], purged[i], call);
    }
    unlock_trim(a, false);
    return went;
}

void _pm_out_batches_return(pm_arena_t *a)
{
    pthread_t me = pthread_self();
    pm_out_batch_t **pp = &a->out;
    while (*pp) {
        pm_out_batch_t *b = *pp;
        if (pthread_equal(b->owner, me)) {
            /* Why keep it: this thread forked from a signal handler that
             * interrupted the purge; it gives the runs back on return. */
            pp = &b->next;
            continue;
        }
        *pp = b->next;
        for (size_t i = 0; i < b->n; i++) {
            a->purged -= run_dirty(b->runs[i]);
            _pm_bins_free_purged(a, b->runs[i], false, "fork");
        }
    }
}

/* A sweep's plan (lock held): stale runs out of the bins, and the top's
 * unreached part. Returns how many runs were taken. */
static size_t sweep_plan(pm_arena_t *a, size_t top, pm_chunk_t **held, pm_out_batch_t *ob,
                         pm_purge_t *pp, bool *purge)
{
    size_t n = 0;
    a->used_prev = a->used_hi;
    a->used_hi = a->in_use - a->stash_bytes;
    _pm_stash_bound(a);
    if (a->dirty && _pm_check_level == 0)
        n = _pm_bins_take_runs(a, held, PM_TRIM_BATCH, PM_PURGE_MIN, true, "pm_free");
    uintptr_t t = (uintptr_t)a->top, hi = a->top_hi;
    /* Why the high-water mark: the top below it was in use this period. */
    size_t keep = hi > t && hi - t < top ? (size_t)(hi - t) : 0;
    if (keep < PM_OPT(top_pad))
        keep = PM_OPT(top_pad);
    if (top > trim_threshold() + PM_MIN_CHUNK && keep < top)
        *purge = _pm_bins_plan_trim(a, keep, pp);
    if (*purge)
        a->purged += pp->len;
    if (n)
        batch_out(a, ob, held, n);
    a->purge_gen++;
    a->top_hi = (uintptr_t)a->top;
    return n;
}

void _pm_arena_unlock_trim(pm_arena_t *a)
{
    unlock_trim(a, true);
}

/* may_sweep false: the top (decay_ms 0), a cut tail and a released heap
 * only. Returns how many runs a sweep gave back. */
static size_t unlock_trim(pm_arena_t *a, bool may_sweep)
{
    size_t went = 0;
    pm_purge_t pp;
    bool purge = false;
    pm_chunk_t *held[PM_TRIM_BATCH];
    pm_out_batch_t ob;
    size_t nheld = 0;
    /* Why a companion sweeps with its owner: a thread that stopped freeing
     * big blocks no longer calls into its companion, whose free runs would
     * then never decay. */
    pm_arena_t *big = NULL;
    size_t top = (size_t)(a->heap->end - (char *)a->top);
    size_t decay = PM_OPT(decay_ms);
    if (decay == 0) {
        if (PM_UNLIKELY(top > trim_threshold() + PM_MIN_CHUNK))
            purge = _pm_bins_plan_trim(a, PM_OPT(top_pad), &pp);
        if (purge)
            a->purged += pp.len;
    } else if (may_sweep) {
        if ((uintptr_t)a->top > a->top_hi)
            a->top_hi = (uintptr_t)a->top;
        /* Why look at the clock only then: nothing to give back otherwise
         * (a sweep keeps top_pad of the top and PM_STASH_MAX of the stash). */
        size_t floor = trim_threshold() > PM_OPT(top_pad) ? trim_threshold() : PM_OPT(top_pad);
        bool wanted = a->dirty || top > floor + _pm_os_page_size() ||
                      a->stash_bytes > PM_STASH_MAX;
        pm_arena_t *b = __atomic_load_n(&a->big, __ATOMIC_ACQUIRE);
        if (a->is_big)
            __atomic_store_n(&a->sweep_wanted, wanted, __ATOMIC_RELAXED);
        else if (b && __atomic_load_n(&b->sweep_wanted, __ATOMIC_RELAXED))
            big = b;
        if (wanted || big) {
            uint64_t now = _pm_os_now_ms();
            /* Why the second test: decay_ms may have been lowered since. */
            if (now >= a->sweep_at || a->sweep_at - now > decay) {
                if (wanted)
                    nheld = sweep_plan(a, top, held, &ob, &pp, &purge);
                a->sweep_at = now + decay;
            } else {
                big = NULL;
            }
        }
    }
    pm_heap_t *gone = a->release;
    pm_purge_t tail = a->tail;
    a->release = NULL;
    a->tail.len = 0;
    _pm_arena_unlock(a);
    if (tail.len)
        _pm_purge_apply(&tail);
    if (purge)
        _pm_purge_apply(&pp);
    if (gone)
        _pm_heap_unmap(gone);
    if (nheld)
        went = batch_purge_and_free(a, &ob, "pm_free");
    if (big && _pm_arena_trylock(big))
        _pm_arena_unlock_trim(big);
    return went;
}

void _pm_arena_unlock_idle(pm_arena_t *a)
{
    for (;;) {
        if (PM_OPT(decay_ms)) {
            /* Why now: no thread will call into a to run the sweep later;
             * and no thread draws from its stash, so past PM_STASH_MAX
             * (what the next thread here starts from) it is coalesced now,
             * not kept for what the last one used. */
            a->purge_gen++;
            a->top_hi = (uintptr_t)a->top;
            a->sweep_at = 0;
            a->used_hi = a->used_prev = 0;
        }
        /* Why again after a whole batch that went back: the rest would wait
         * for a call that may never come. Not after one that failed in
         * part (locked pages): those runs would come round again. */
        if (unlock_trim(a, true) < PM_TRIM_BATCH || !_pm_arena_trylock(a))
            return;
        if (!arena_idle(a)) {
            _pm_arena_unlock_trim(a);
            return;
        }
    }
}

int _pm_trim_arena(pm_arena_t *a, size_t pad)
{
    size_t page = _pm_os_page_size();
    pm_purge_t pp;
    pm_chunk_t *held[PM_TRIM_BATCH];
    pm_out_batch_t ob;
    size_t nheld = 0;
    _pm_arena_lock(a);
    _pm_remote_drain(a);
    _pm_stash_consolidate(a);
    bool purge = _pm_bins_plan_trim(a, pad, &pp);
    /* Why skip at level >= 1: purged pages read as zero, not as the fill
     * pattern the write-after-free check expects. */
    if (_pm_check_level == 0)
        nheld = _pm_bins_take_runs(a, held, PM_TRIM_BATCH, 4 * page, false, "pm_malloc_trim");
    if (purge)
        a->purged += pp.len;
    if (nheld)
        batch_out(a, &ob, held, nheld);
    _pm_arena_unlock(a);
    int released = 0;
    if (purge && _pm_purge_apply(&pp))
        released = 1;
    if (nheld && batch_purge_and_free(a, &ob, "pm_malloc_trim") > 0)
        released = 1;
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
    for (uint32_t i = 0; i < 2 * n; i++)
        if (arena_slot(i, n))
            released |= _pm_trim_arena(arena_slot(i, n), pad);
    return released;
}
