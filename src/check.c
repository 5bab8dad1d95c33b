/* SPDX-License-Identifier: MIT */
/*
 * check.c - the expensive validator: walks every heap chunk by chunk and
 * every bin link by link, and checks that headers, boundary tags, bins,
 * the top and the counters all agree. pm_check_heap runs it on every arena
 * and on the direct mappings; check level 2 runs it on every call.
 */
#include "heap.h"

#define BAD(fmt, ...)                                                                \
    do {                                                                             \
        _pm_diag("pm_check_heap: arena %u: " fmt, idx, ##__VA_ARGS__);               \
        bad++;                                                                       \
        if (fatal)                                                                   \
            _pm_fatal("pm_check_heap", a, "heap inconsistent (check level 2)");      \
    } while (0)

/* Walk arena a (locked). mode 2: abort on the first problem. */
int _pm_check_arena(pm_arena_t *a, int mode)
{
    int bad = 0, fatal = mode == 2;
    size_t nfree = 0, free_bytes = 0, in_use = 0, held = 0, dirty = 0, clean = 0;
    unsigned idx = a->index;
    /* A spare heap is held but holds no chunk. */
    if (a->spare)
        held += (size_t)(a->spare->end - (char *)a->spare);
    for (pm_heap_t *h = a->heap; h; h = h->prev) {
        held += (size_t)(h->end - (char *)h);
        if (h->magic != PM_HEAP_MAGIC || h->arena != a || !heap_owns((uintptr_t)h)) {
            BAD("heap %p: wrong owner or not registered", (void *)h);
            break;
        }
        char *x = h->first;
        bool prev_free = false;
        size_t prev_size = 0;
        while (x < h->end) {
            pm_chunk_t *c = (pm_chunk_t *)x;
            uint64_t hd = chunk_head(c);
            size_t s = head_size(hd);
            unsigned st = head_state(hd);
            if (!chunk_head_ok(c, hd) || s < PM_MIN_CHUNK || x + s > h->end) {
                BAD("chunk %p: corrupted chunk header (head %p)", (void *)c,
                    (void *)hd);
                break;
            }
            if (((hd & PM_PREV_INUSE) == 0) != prev_free)
                BAD("chunk %p: PREV_INUSE disagrees with the previous chunk",
                    (void *)c);
            if (prev_free && c->prev_size != prev_size)
                BAD("chunk %p: boundary tag %zu, previous chunk is %zu", (void *)c,
                    (size_t)c->prev_size, prev_size);
            if (st == PM_ST_FREE) {
                if (prev_free)
                    BAD("chunk %p: two free chunks side by side", (void *)c);
                nfree++;
                free_bytes += s;
                if (s >= PM_PURGE_MIN && _pm_check_level == 0) {
                    uint64_t stamp = *chunk_stamp(c);
                    if (stamp != PM_STAMP_CLEAN && stamp > a->purge_gen)
                        BAD("chunk %p: sweep stamp %llu from the future", (void *)c,
                            (unsigned long long)stamp);
                    size_t d = *chunk_dirty(c);
                    if (d > s || (d == 0) != (stamp == PM_STAMP_CLEAN))
                        BAD("chunk %p: %zu dirty bytes of %zu, stamp %llu", (void *)c, d, s,
                            (unsigned long long)stamp);
                    dirty += d;
                    clean += d <= s ? s - d : 0;
                }
            } else if (st == PM_ST_INUSE || st == PM_ST_CACHED) {
                in_use += s;
            } else if (st == PM_ST_TOP) {
                if (c != a->top || x + s != h->end)
                    BAD("chunk %p: a top chunk that is not the arena's top",
                        (void *)c);
            } else if (st != PM_ST_FENCE) {
                BAD("chunk %p: impossible state %u", (void *)c, st);
            }
            prev_free = st == PM_ST_FREE;
            prev_size = s;
            x += s;
            if (st == PM_ST_TOP || st == PM_ST_FENCE)
                break;
        }
    }
    /* Bins: every entry free, in its own bin, linked both ways. */
    size_t bin_count = 0;
    for (unsigned k = 0; k < PM_NBINS; k++) {
        bool mapbit = (a->binmap[k >> 6] >> (k & 63)) & 1;
        if (mapbit != (a->bins[k] != NULL))
            BAD("bin %u: bitmap disagrees with the list", k);
        pm_chunk_t *prev = NULL;
        for (pm_chunk_t *c = a->bins[k]; c; bin_count++) {
            if (bin_count > nfree + 1) {
                BAD("bin %u: more entries than free chunks (a cycle?)", k);
                break;
            }
            uint64_t hd = chunk_head(c);
            if (!chunk_head_ok(c, hd) || head_state(hd) != PM_ST_FREE ||
                size_class_ceil(head_size(hd)) != k) {
                if (!(k == PM_NBINS - 1 && chunk_head_ok(c, hd) && head_state(hd) == PM_ST_FREE))
                    BAD("bin %u: entry %p is not a free chunk of this bin", k,
                        (void *)c);
            }
            pm_chunk_t *bk = (pm_chunk_t *)_pm_link_mangle(&c->bk, c->bk);
            if (bk != prev)
                BAD("bin %u: entry %p has a wrong back link", k, (void *)c);
            uintptr_t fd = _pm_link_mangle(&c->fd, c->fd);
            if (fd && ((fd & 15) || !heap_owns(fd) || heap_of((void *)fd)->arena != a)) {
                BAD("bin %u: entry %p has a corrupted forward link", k, (void *)c);
                break;
            }
            prev = c;
            c = (pm_chunk_t *)fd;
        }
    }
    /* Stashes: whole blocks that keep their cache key. */
    size_t stashed = 0;
    for (unsigned k = 0; k < PM_NCLASS_TC; k++) {
        uint32_t cnt = 0;
        for (void *p = a->stash[k]; p; cnt++) {
            pm_chunk_t *c = mem2chunk(p);
            uint64_t hd = chunk_head(c);
            if (cnt > a->stash_count[k] || !chunk_head_ok(c, hd) ||
                head_state(hd) != PM_ST_INUSE || size_class_floor(head_size(hd)) != k ||
                *mem_word0(p) != tc_key(p)) {
                BAD("stash %u: entry %p is not a stashed block", k, p);
                break;
            }
            stashed += head_size(hd);
            uintptr_t nx = _pm_link_mangle((uint64_t *)p + 1, (void *)((uint64_t *)p)[1]);
            if (nx && ((nx & 15) || !heap_owns(nx) || heap_of((void *)nx)->arena != a)) {
                BAD("stash %u: entry %p has a corrupted link", k, p);
                break;
            }
            p = (void *)nx;
        }
        if (cnt != a->stash_count[k])
            BAD("stash %u: %u entries, %u counted", k, cnt, a->stash_count[k]);
    }
    if (stashed != a->stash_bytes)
        BAD("stashes hold %zu bytes, %zu counted", stashed, a->stash_bytes);
    if (bin_count != nfree || a->nfree != nfree || a->free_bytes != free_bytes)
        BAD("%zu free chunks in the heap, %zu in bins, %zu counted", nfree,
            bin_count, a->nfree);
    if (a->in_use != in_use)
        BAD("%zu bytes in use by the walk, %zu counted", in_use, a->in_use);
    if (a->dirty != dirty)
        BAD("%zu bytes of unpurged free runs by the walk, %zu counted", dirty, a->dirty);
    if (a->clean != clean)
        BAD("%zu bytes of purged free runs by the walk, %zu counted", clean, a->clean);
    if (a->held != held)
        BAD("%zu bytes held by the walk, %zu counted", held, a->held);
    return bad ? -1 : 0;
}

int pm_check_heap(void)
{
    pm_ensure_init();
    int rc = 0;
    uint32_t n = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < 2 * n; i++) {
        pm_arena_t *a = arena_slot(i, n);
        if (!a)
            continue;
        _pm_arena_lock(a);
        _pm_remote_drain(a);
        if (_pm_check_arena(a, 1) != 0)
            rc = -1;
        _pm_arena_unlock_trim(a); /* the drain may have coalesced into top */
    }
    if (_pm_large_check() != 0)
        rc = -1;
    /* The calling thread's own cache: every entry must be a cached block. */
    pm_tcache_t *tc = _pm_tls_tc;
    for (unsigned k = 0; tc->real && k < tc->nclass; k++)
        for (uint32_t j = 0; j < tc->bins[k].count; j++) {
            pm_chunk_t *c = mem2chunk(tc->bins[k].slots[j]);
            uint64_t hd = chunk_head(c);
            if (!chunk_head_ok(c, hd) || head_state(hd) != PM_ST_INUSE ||
                size_class_floor(head_size(hd)) < k ||
                *mem_word0(chunk2mem(c)) != tc_key(chunk2mem(c))) {
                _pm_diag("pm_check_heap: thread cache class %u: %p is not a cached block", k,
                         chunk2mem(c));
                rc = -1;
            }
        }
    return rc;
}
