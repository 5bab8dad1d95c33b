/* SPDX-License-Identifier: MIT */
/*
 * trim.c - giving memory back to the OS. With decay_ms 0, glibc's trimming:
 * a free top larger than trim_threshold is cut back to top_pad on the free
 * that makes it so, an emptied newest heap goes, and a free that forms a
 * run of 64 KiB or more coalesces the stash (as glibc consolidates its
 * fastbins) and gives back the runs past trim_threshold. With decay_ms > 0
 * (the default), memory goes back once it has sat unused for a while, as
 * jemalloc's and mimalloc's decay: once a sweep period an arena sweep gives
 * back the free runs of PM_PURGE_MIN or more that were already free at the
 * sweep before (whole pages only, while over trim_threshold), the part of a
 * top over trim_threshold that no allocation reached since then, and a
 * spare heap left empty since then. Sweeps run on the slow-path calls that
 * enter an arena and, for arenas nobody calls into, on the purger thread
 * (purger.c). The period is decay_ms, stretched while what a sweep gave
 * back is taken again before the next one. pm_malloc_trim returns
 * everything at once. The plan is made under the arena lock, the madvise
 * after it (musl mallocng's rule).
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

static size_t unlock_trim(pm_arena_t *a, bool may_sweep, uint64_t *next_at);

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
    unlock_trim(a, false, NULL);
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

/* The sweep period of a now, in ms. */
static uint64_t sweep_period(const pm_arena_t *a, size_t decay)
{
    uint64_t p = a->period_ms;
    /* Why the bounds: decay_ms may have changed since it was stretched. */
    return p > decay && p <= (uint64_t)decay * PM_DECAY_STRETCH ? p : decay;
}

/* At a sweep (lock held): stretch the period while much of what the last
 * sweep gave back was taken again before this one, shrink it back once
 * none was. Why: on a loaded CPU a program's reuse cycle outlasts decay_ms
 * of wall time, and giving its memory back each period only makes it
 * fault it in again (10-20x slower); jemalloc's period is fixed, ours
 * follows what the program does. */
static void period_adapt(pm_arena_t *a, size_t decay)
{
    uint64_t p = sweep_period(a, decay);
    if (a->last_gave && a->refault > a->last_gave / 4) {
        p *= 2;
        if (p > (uint64_t)decay * PM_DECAY_STRETCH)
            p = (uint64_t)decay * PM_DECAY_STRETCH;
    } else if (!a->refault && p > decay) {
        p = p / 2 > decay ? p / 2 : decay;
    }
    a->period_ms = p > UINT32_MAX ? UINT32_MAX : (uint32_t)p;
    a->refault = 0;
}

/* Does a hold anything a later sweep would give back? (lock held) */
static inline bool sweep_wanted(pm_arena_t *a, size_t top)
{
    /* Why these floors: a sweep keeps top_pad of the top (trim_threshold
     * where that is more) and PM_STASH_MAX of the stash. */
    size_t floor = trim_threshold() > PM_OPT(top_pad) ? trim_threshold() : PM_OPT(top_pad);
    return a->dirty + top > floor + PM_PURGE_MIN || a->stash_bytes > PM_STASH_MAX || a->spare;
}

/* A spare heap that sat unused for a whole sweep goes, or with force any
 * spare (lock held): it joins the heaps to unmap after unlocking. */
static void spare_expire(pm_arena_t *a, bool force)
{
    pm_heap_t *h = a->spare;
    if (h && (force || h->spare_gen < a->purge_gen)) {
        a->spare = NULL;
        a->held -= (size_t)(h->end - (char *)h);
        _pm_stats_held(-(ptrdiff_t)(h->end - (char *)h));
        a->purged += (size_t)(h->end - (char *)h);
        h->prev = a->release;
        a->release = h;
    }
}

/* A sweep's plan (lock held): stale runs out of the bins, the top's
 * unreached part, an unused spare heap. Returns how many runs were taken. */
static size_t sweep_plan(pm_arena_t *a, size_t top, pm_chunk_t **held, pm_out_batch_t *ob,
                         pm_purge_t *pp, bool *purge)
{
    size_t n = 0;
    period_adapt(a, PM_OPT(decay_ms));
    a->used_prev = a->used_hi;
    a->used_hi = a->in_use - a->stash_bytes;
    /* Why: no thread draws from the stash of an arena nobody uses; past
     * PM_STASH_MAX (what the next thread here starts from) it is coalesced
     * and decays, not kept for what the last one used. */
    if (arena_idle(a))
        a->used_hi = a->used_prev = 0;
    _pm_stash_bound(a);
    _pm_bins_retire_empty_heap(a, true);
    spare_expire(a, false);
    top = (size_t)(a->heap->end - (char *)a->top); /* the stash may have merged into it */
    /* Why a budget: trim_threshold bytes of free memory may stay resident,
     * as its name promises (1G keeps everything a program frees). */
    size_t floor = trim_threshold();
    if (a->dirty + top > floor && _pm_check_level == 0)
        n = _pm_bins_take_runs(a, held, PM_TRIM_BATCH, PM_PURGE_MIN, a->dirty + top - floor,
                               true, "pm_free");
    uintptr_t t = (uintptr_t)a->top, hi = a->top_hi;
    /* Why the high-water mark: the top below it was in use this period. */
    size_t keep = hi > t && hi - t < top ? (size_t)(hi - t) : 0;
    if (keep < PM_OPT(top_pad))
        keep = PM_OPT(top_pad);
    if (top > trim_threshold() + PM_MIN_CHUNK && keep < top)
        *purge = _pm_bins_plan_trim(a, keep, pp);
    a->last_gave = *purge ? pp->len : 0;
    if (*purge)
        a->purged += pp->len;
    if (n) {
        batch_out(a, ob, held, n);
        for (size_t i = 0; i < n; i++)
            a->last_gave += run_dirty(held[i]);
    }
    a->purge_gen++;
    a->top_hi = (uintptr_t)a->top;
    return n;
}

void _pm_arena_unlock_trim(pm_arena_t *a)
{
    /* Why atomic: the purger reads it without the lock. */
    __atomic_store_n(&a->calls, a->calls + 1, __ATOMIC_RELAXED);
    unlock_trim(a, true, NULL);
}

/* may_sweep false: the top (decay_ms 0), a cut tail and released heaps
 * only. next_at (the purger's): when a wants its next sweep, UINT64_MAX if
 * it has nothing for one. Returns how many runs a sweep gave back. */
static size_t unlock_trim(pm_arena_t *a, bool may_sweep, uint64_t *next_at)
{
    size_t went = 0;
    pm_purge_t pp;
    bool purge = false, notify = false;
    pm_chunk_t *held[PM_TRIM_BATCH];
    pm_out_batch_t ob;
    size_t nheld = 0;
    /* Why a companion sweeps with its owner: a thread that stopped freeing
     * big blocks no longer calls into its companion, whose free runs would
     * then wait for the purger, or without one, never decay. */
    pm_arena_t *big = NULL;
    size_t top = (size_t)(a->heap->end - (char *)a->top);
    size_t decay = PM_OPT(decay_ms);
    if (decay == 0) {
        if (PM_UNLIKELY(a->consolidate)) {
            /* glibc's rule: a free that formed a big run coalesces the
             * fastbins (here the stash), so that parked blocks do not keep
             * the top from reaching the threshold. Why the runs too: blocks
             * in thread caches may still split the free memory (glibc
             * caches none over 1 KiB), and glibc gives a freed block over
             * its mmap threshold back at once: a free run past the trim
             * threshold goes back on the free that formed it. */
            a->consolidate = false;
            _pm_stash_consolidate(a);
            top = (size_t)(a->heap->end - (char *)a->top);
            if (_pm_check_level == 0)
                nheld = _pm_bins_take_runs(a, held, PM_TRIM_BATCH, trim_threshold() + 1,
                                           SIZE_MAX, false, "pm_free");
            if (nheld)
                batch_out(a, &ob, held, nheld);
        }
        /* glibc's heap_trim: an emptied newest heap goes at once. */
        if (PM_UNLIKELY((char *)a->top == a->heap->first)) {
            while (_pm_bins_retire_empty_heap(a, false))
                ;
            top = (size_t)(a->heap->end - (char *)a->top);
        }
        if (PM_UNLIKELY(top > trim_threshold() + PM_MIN_CHUNK))
            purge = _pm_bins_plan_trim(a, PM_OPT(top_pad), &pp);
        if (purge)
            a->purged += pp.len;
    } else if (may_sweep) {
        if ((uintptr_t)a->top > a->top_hi)
            a->top_hi = (uintptr_t)a->top;
        bool wanted = sweep_wanted(a, top);
        /* Why on a change, or while there is no purger (none started yet, a
         * fork child): one woken keeps coming while the arena wants it. */
        notify = wanted && (!__atomic_load_n(&a->sweep_wanted, __ATOMIC_RELAXED) ||
                            !__atomic_load_n(&_pm_purger_running, __ATOMIC_RELAXED));
        __atomic_store_n(&a->sweep_wanted, wanted, __ATOMIC_RELEASE);
        pm_arena_t *b = __atomic_load_n(&a->big, __ATOMIC_ACQUIRE);
        if (!a->is_big && !next_at && b && __atomic_load_n(&b->sweep_wanted, __ATOMIC_RELAXED))
            big = b;
        if (wanted || big) {
            uint64_t now = _pm_os_now_ms(), period = sweep_period(a, decay);
            /* Why the second test: the period may have been shortened. */
            if (now >= a->sweep_at || a->sweep_at - now > period) {
                if (wanted)
                    nheld = sweep_plan(a, top, held, &ob, &pp, &purge);
                a->sweep_at = now + sweep_period(a, decay);
            } else {
                big = NULL;
            }
        }
        if (next_at) {
            wanted = sweep_wanted(a, (size_t)(a->heap->end - (char *)a->top));
            __atomic_store_n(&a->sweep_wanted, wanted, __ATOMIC_RELEASE);
            *next_at = wanted ? a->sweep_at : UINT64_MAX;
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
    while (gone) {
        pm_heap_t *next = gone->prev;
        _pm_heap_unmap(gone);
        gone = next;
    }
    if (nheld)
        went = batch_purge_and_free(a, &ob, "pm_free");
    if (big && _pm_arena_trylock(big))
        _pm_arena_unlock_trim(big);
    /* Why not for the purger's own visits: it is awake. */
    if (notify && !next_at)
        _pm_purger_notify();
    return went;
}

uint64_t _pm_arena_purger_visit(pm_arena_t *a, uint64_t now)
{
    /* Why leave an arena that calls entered since the last visit: they
     * sweep it on time themselves, and the purger taking its lock would
     * only make them wait (or move). Come back in a period. */
    uint64_t calls = __atomic_load_n(&a->calls, __ATOMIC_RELAXED);
    if (calls != __atomic_load_n(&a->purger_seen, __ATOMIC_RELAXED)) {
        __atomic_store_n(&a->purger_seen, calls, __ATOMIC_RELAXED);
        return now + (PM_OPT(decay_ms) ? PM_OPT(decay_ms) : 1);
    }
    /* Why not wait: its holder is at work and may sweep it itself. */
    if (!_pm_arena_trylock(a))
        return now + 1;
    /* Why: no call entered the arena for a period, so it sits idle and its
     * period runs on wall time again (a stretched period would keep an idle
     * program's memory for seconds). */
    a->period_ms = 0;
    uint64_t next = UINT64_MAX;
    unlock_trim(a, true, &next);
    return next;
}

void _pm_arena_unlock_idle(pm_arena_t *a)
{
    /* Why only without a purger: with one, an arena its last thread left
     * ages like any other (the next new thread, often within a period,
     * finds its pages resident), and the purger gives it back on time. */
    if (PM_OPT(decay_ms) && _pm_purger_usable()) {
        _pm_arena_unlock_trim(a);
        return;
    }
    for (;;) {
        if (PM_OPT(decay_ms)) {
            /* Why now: no thread will call into a to run the sweep later;
             * and no thread draws from its stash, so past PM_STASH_MAX
             * (what the next thread here starts from) it is coalesced now,
             * not kept for what the last one used. */
            a->purge_gen++;
            a->top_hi = (uintptr_t)a->top;
            a->sweep_at = 0;
            a->period_ms = 0;
            a->used_hi = a->used_prev = 0;
            spare_expire(a, true);
        }
        /* Why again after a whole batch that went back: the rest would wait
         * for a call that may never come. Not after one that failed in
         * part (locked pages): those runs would come round again. */
        if (unlock_trim(a, true, NULL) < PM_TRIM_BATCH || !_pm_arena_trylock(a))
            return;
        if (!arena_idle(a)) {
            _pm_arena_unlock_trim(a);
            return;
        }
    }
}

int _pm_trim_arena(pm_arena_t *a, size_t pad)
{
    pm_purge_t pp;
    pm_chunk_t *held[PM_TRIM_BATCH];
    pm_out_batch_t ob;
    int released = 0;
    _pm_arena_lock(a);
    _pm_remote_drain(a);
    _pm_stash_consolidate(a);
    while (_pm_bins_retire_empty_heap(a, false))
        released = 1;
    if (a->spare) {
        spare_expire(a, true);
        released = 1;
    }
    bool purge = _pm_bins_plan_trim(a, pad, &pp);
    if (purge)
        a->purged += pp.len;
    /* Why a bound on the rounds: a run given back merges with dirty
     * neighbours too small to be taken, and may come round once more. */
    size_t rounds = 2 * (a->nfree / PM_TRIM_BATCH) + 4;
    for (;;) {
        size_t nheld = 0;
        /* Why skip at level >= 1: purged pages read as zero, not as the fill
         * pattern the write-after-free check expects. Why in batches: the
         * runs are out of the bins while their pages go back, unlocked. */
        if (_pm_check_level == 0)
            nheld = _pm_bins_take_runs(a, held, PM_TRIM_BATCH, PM_PURGE_MIN, SIZE_MAX,
                                       false, "pm_malloc_trim");
        if (nheld)
            batch_out(a, &ob, held, nheld);
        pm_heap_t *gone = a->release;
        pm_purge_t tail = a->tail;
        a->release = NULL;
        a->tail.len = 0;
        _pm_arena_unlock(a);
        /* Why the tail first: a heap to unmap may wait for its purge. */
        if (tail.len && _pm_purge_apply(&tail))
            released = 1;
        if (purge && _pm_purge_apply(&pp))
            released = 1;
        purge = false;
        while (gone) {
            pm_heap_t *next = gone->prev;
            _pm_heap_unmap(gone);
            gone = next;
        }
        if (!nheld)
            break;
        if (batch_purge_and_free(a, &ob, "pm_malloc_trim") > 0)
            released = 1;
        if (nheld < PM_TRIM_BATCH || --rounds == 0)
            break;
        _pm_arena_lock(a);
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
    for (uint32_t i = 0; i < 2 * n; i++)
        if (arena_slot(i, n))
            released |= _pm_trim_arena(arena_slot(i, n), pad);
    return released;
}
