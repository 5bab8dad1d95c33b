/* SPDX-License-Identifier: MIT */
/*
 * bins.c - an arena's chunks: size-segregated free bins with coalescing,
 * the top chunk, splitting, growing in place and planning a trim. Every
 * function here runs with the arena lock held, and makes no syscall but
 * the one noted (a new heap is mapped with the lock dropped): what must go
 * back to the OS is handed to the caller to purge after unlocking.
 *
 * Free-list links are mangled with the process secret and the link's own
 * address (safe-linking) and checked before use; every header is checked
 * against its checksum before it is trusted.
 */
#include "heap.h"

#include <sched.h>
#include <string.h>

uintptr_t _pm_link_mangle(const void *field, const void *p)
{
    return (uintptr_t)p ^ _pm_secret ^ ((uintptr_t)field >> 12);
}

static pm_chunk_t *link_get(pm_arena_t *a, pm_chunk_t *const *field, const char *call)
{
    uintptr_t v = _pm_link_mangle(field, (const void *)*field);
    if (v == 0)
        return NULL;
    /* Why each test: a damaged link must be caught before it is followed. */
    if (PM_UNLIKELY((v & 15) || !heap_owns(v) || heap_of((void *)v)->arena != a))
        _pm_fatal(call, (const void *)field, "corrupted free list (link %p)", (void *)v);
    return (pm_chunk_t *)v;
}

static void link_set(pm_chunk_t **field, pm_chunk_t *p)
{
    *field = (pm_chunk_t *)_pm_link_mangle(field, p);
}

/* ---- the stash ----------------------------------------------------------- */
void _pm_stash_push(pm_arena_t *a, void *p, unsigned k, size_t size)
{
    uint64_t *w = p;
    w[1] = _pm_link_mangle(&w[1], a->stash[k]);
    a->stash[k] = p;
    a->stash_count[k]++;
    a->stash_bytes += size;
}

void *_pm_stash_pop(pm_arena_t *a, unsigned k)
{
    void *p = a->stash[k];
    if (!p)
        return NULL;
    uint64_t *w = p;
    if (PM_UNLIKELY(w[0] != tc_key(p)))
        _pm_fatal("pm_malloc", p, "write after free (first word of a stashed block changed)");
    uintptr_t next = _pm_link_mangle(&w[1], (void *)w[1]);
    if (PM_UNLIKELY(next && ((next & 15) || !heap_owns(next) ||
                             heap_of((void *)next)->arena != a)))
        _pm_fatal("pm_malloc", p, "corrupted free list (stash link %p)", (void *)next);
    /* Why: a refill pops a run of these; the next one's first line is
     * then on its way while this one is handed out. */
    __builtin_prefetch((void *)next);
    a->stash[k] = (void *)next;
    a->stash_count[k]--;
    a->stash_bytes -= head_size(chunk_head(mem2chunk(p)));
    return p;
}

void _pm_remote_push(pm_arena_t *a, void *first, void *last, size_t bytes)
{
    uint64_t *lw = last;
    void *head = __atomic_load_n(&a->remote_head, __ATOMIC_RELAXED);
    do
        lw[1] = _pm_link_mangle(&lw[1], head);
    while (!__atomic_compare_exchange_n(&a->remote_head, &head, first, true, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED));
    __atomic_fetch_add(&a->remote_bytes, bytes, __ATOMIC_RELAXED);
}

void _pm_remote_drain(pm_arena_t *a)
{
    if (!__atomic_load_n(&a->remote_head, __ATOMIC_RELAXED))
        return;
    void *p = __atomic_exchange_n(&a->remote_head, NULL, __ATOMIC_ACQUIRE);
    bool stash = _pm_check_level == 0 && !PM_OPT(perturb);
    unsigned nstash = PM_STASH_CLASSES();
    size_t bytes = 0;
    while (p) {
        uint64_t *w = p;
        if (PM_UNLIKELY(w[0] != tc_key(p)))
            _pm_fatal("pm_free", p, "write after free (first word of a freed block changed)");
        uintptr_t next = _pm_link_mangle(&w[1], (void *)w[1]);
        if (PM_UNLIKELY(next && ((next & 15) || !heap_owns(next) ||
                                 heap_of((void *)next)->arena != a)))
            _pm_fatal("pm_free", p, "corrupted free list (remote link %p)", (void *)next);
        /* Only a hint: a prefetch never faults, whatever the word holds. */
        if (stash)
            __builtin_prefetch((char *)w[2] - PM_OVERHEAD);
        pm_chunk_t *c = mem2chunk(p);
        size_t s = head_size(chunk_head(c));
        unsigned k = size_class_floor(s);
        bytes += s;
        if (stash && k < nstash)
            _pm_stash_push(a, p, k, s);
        else
            _pm_bins_free(a, c, "pm_free");
        p = (void *)next;
    }
    __atomic_fetch_sub(&a->remote_bytes, bytes, __ATOMIC_RELAXED);
    _pm_stash_bound(a);
}

void _pm_stash_bound(pm_arena_t *a)
{
    /* Why as much as was in use this period: a program that frees a batch of
     * blocks and allocates it again (bigger than any cache) should find it
     * whole here, not coalesced and carved anew each time; a sweep lowers
     * the bound to what is in use then, so a stash nobody draws from for a
     * whole period decays. Without decay (decay_ms 0) no sweep would ever
     * lower it, so the bound stays PM_STASH_MAX there. */
    size_t bound = PM_STASH_MAX;
    if (PM_OPT(decay_ms) != 0) {
        if (a->used_hi > bound)
            bound = a->used_hi;
        if (a->used_prev > bound)
            bound = a->used_prev;
    }
    if (a->stash_bytes <= bound)
        return;
    /* Why down to half, largest classes first: coalescing everything would
     * only make the next refills carve the same blocks again, and the big
     * blocks are the ones whose room other sizes can use. */
    for (unsigned k = PM_NCLASS_TC; k-- > 0 && a->stash_bytes > bound / 2;) {
        void *p;
        while (a->stash_bytes > bound / 2 && (p = _pm_stash_pop(a, k)) != NULL)
            _pm_bins_free(a, mem2chunk(p), "pm_free");
    }
}

void _pm_stash_consolidate(pm_arena_t *a)
{
    for (unsigned k = 0; k < PM_NCLASS_TC && a->stash_bytes; k++) {
        void *p;
        while ((p = _pm_stash_pop(a, k)) != NULL)
            _pm_bins_free(a, mem2chunk(p), "pm_free");
    }
}

static unsigned bin_index(size_t size)
{
    unsigned k = size_class_ceil(size);
    return k < PM_NBINS ? k : PM_NBINS - 1;
}

/* The sweep generation free chunk c (s bytes) was binned in; a chunk too
 * small to carry a stamp reads as binned now. */
static uint64_t stamp_of(pm_arena_t *a, pm_chunk_t *c, size_t s)
{
    return s >= PM_PURGE_MIN && _pm_check_level == 0 ? *chunk_stamp(c) : a->purge_gen;
}

/* The older of two stamps: a run keeps the age of its oldest part, so that
 * splitting or merging does not make long-unused pages look fresh. */
static uint64_t stamp_min(uint64_t x, uint64_t y)
{
    if (x == PM_STAMP_CLEAN)
        return y;
    if (y == PM_STAMP_CLEAN)
        return x;
    return x < y ? x : y;
}

/* What a free run carries in and out of the bins: the sweep it was freed
 * in and how many of its bytes may be resident. */
typedef struct {
    uint64_t stamp;
    size_t dirty;
} pm_run_t;

/* Take free chunk c (s bytes) out of the bins; returns what it carried. */
static pm_run_t run_unlink(pm_arena_t *a, pm_chunk_t *c, size_t s, const char *call)
{
    pm_run_t r = {stamp_of(a, c, s), chunk_dirty_bytes(c, s)};
    _pm_bins_unlink(a, c, s, call);
    return r;
}

/* Two runs become one: the older stamp, the dirty bytes of both. */
static pm_run_t run_merge(pm_run_t x, pm_run_t y)
{
    return (pm_run_t){stamp_min(x.stamp, y.stamp), x.dirty + y.dirty};
}

static void bins_insert_run(pm_arena_t *a, pm_chunk_t *c, size_t size, pm_run_t r);

void _pm_bins_insert(pm_arena_t *a, pm_chunk_t *c, size_t size)
{
    bins_insert_run(a, c, size, (pm_run_t){a->purge_gen, size});
}

/* Bin c with its sweep stamp and its count of dirty bytes (capped at size;
 * none makes it clean). */
static void bins_insert_run(pm_arena_t *a, pm_chunk_t *c, size_t size, pm_run_t r)
{
    uint64_t stamp = r.stamp;
    size_t dirty = r.dirty;
    unsigned k = bin_index(size);
    pm_chunk_t *head = a->bins[k];
    link_set(&c->fd, head);
    link_set(&c->bk, NULL);
    if (head)
        link_set(&head->bk, c);
    a->bins[k] = c;
    a->binmap[k >> 6] |= (uint64_t)1 << (k & 63);
    if (PM_UNLIKELY(_pm_check_level >= 1))
        _pm_debug_fill_free(c);
    else if (size >= PM_PURGE_MIN) {
        /* Why at level 0 only: the stamp would read as a write after free
         * to the free-fill check, and purged pages lose the fill. */
        if (dirty > size)
            dirty = size;
        if (dirty && stamp == PM_STAMP_CLEAN)
            stamp = a->purge_gen;
        *chunk_stamp(c) = dirty ? stamp : PM_STAMP_CLEAN;
        *chunk_dirty(c) = dirty;
        a->dirty += dirty;
        a->clean += size - dirty;
    }
    a->free_bytes += size;
    a->nfree++;
}

void _pm_bins_unlink(pm_arena_t *a, pm_chunk_t *c, size_t size, const char *call)
{
    unsigned k = bin_index(size);
    pm_chunk_t *fd = link_get(a, &c->fd, call);
    pm_chunk_t *bk = link_get(a, &c->bk, call);
    if (PM_UNLIKELY((fd && link_get(a, &fd->bk, call) != c) ||
                    (bk ? link_get(a, &bk->fd, call) != c : a->bins[k] != c)))
        _pm_fatal(call, chunk2mem(c), "corrupted free list (links of a free chunk disagree)");
    if (bk)
        link_set(&bk->fd, fd);
    else
        a->bins[k] = fd;
    if (fd)
        link_set(&fd->bk, bk);
    if (!a->bins[k])
        a->binmap[k >> 6] &= ~((uint64_t)1 << (k & 63));
    if (size >= PM_PURGE_MIN && _pm_check_level == 0) {
        size_t d = *chunk_dirty(c);
        a->dirty -= d < a->dirty ? d : a->dirty;
        a->clean -= size - d;
    }
    a->free_bytes -= size;
    a->nfree--;
}

/* Check a header we are about to follow; abort naming call if damaged. */
static uint64_t head_checked(pm_chunk_t *c, const char *call, const void *about)
{
    uint64_t h = chunk_head(c);
    if (PM_UNLIKELY(!chunk_head_ok(c, h) || head_size(h) < PM_MIN_CHUNK ||
                    head_size(h) > PM_HEAP_SIZE))
        _pm_fatal(call, about, "corrupted chunk header (head %p at %p)", (void *)h, (void *)c);
    return h;
}

/* a holds delta more bytes from the OS (less if negative): its own count
 * and the process total (usmblks' peak) move together. */
static void held_add(pm_arena_t *a, ptrdiff_t delta)
{
    a->held += (size_t)delta;
    _pm_stats_held(delta);
}

static size_t top_size(pm_arena_t *a)
{
    return (size_t)(a->heap->end - (char *)a->top);
}

static void top_write(pm_arena_t *a, pm_chunk_t *t)
{
    a->top = t;
    chunk_set(t, top_size(a), PM_ST_TOP, PM_PREV_INUSE);
}

/* Take size bytes off the front of free chunk c (already unlinked), which
 * is s bytes long and carried run; the rest goes back to the bins when it is
 * worth a chunk, with the run's stamp (its pages are as old as they were)
 * and as many dirty bytes as it can hold (where in the run they lie is not
 * known). */
static pm_chunk_t *chunk_split(pm_arena_t *a, pm_chunk_t *c, size_t s, size_t size,
                               pm_run_t run)
{
    /* Why count it: pages given back and carved again within a sweep
     * period stretch the period (trim.c). */
    if (run.dirty < s)
        a->refault += s - run.dirty < size ? s - run.dirty : size;
    if (s - size >= PM_MIN_CHUNK) {
        pm_chunk_t *r = chunk_at(c, size);
        size_t rs = s - size;
        chunk_set(r, rs, PM_ST_FREE, PM_PREV_INUSE);
        chunk_at(r, rs)->prev_size = rs;
        bins_insert_run(a, r, rs, run);
        s = size;
    } else {
        pm_chunk_t *n = chunk_at(c, s);
        uint64_t nh = chunk_head(n);
        chunk_head_store(n, chunk_make_head(n, head_size(nh), head_state(nh), PM_PREV_INUSE));
    }
    chunk_set(c, s, PM_ST_INUSE, PM_PREV_INUSE);
    a->in_use += s;
    return c;
}

/* Grow the heap's used extent so that top holds at least need bytes. */
static bool top_grow(pm_arena_t *a, size_t need)
{
    pm_heap_t *h = a->heap;
    char *limit = (char *)h + PM_HEAP_SIZE;
    if ((size_t)(limit - (char *)a->top) < need)
        return false;
    uintptr_t want = _pm_page_up((uintptr_t)a->top + need + PM_OPT(top_pad));
    char *new_end = want > (uintptr_t)limit ? limit : (char *)want;
    if (h->end < h->cut_to)
        a->refault += (size_t)((new_end < h->cut_to ? new_end : h->cut_to) - h->end);
    held_add(a, new_end - h->end);
    h->end = new_end;
    top_write(a, a->top);
    return true;
}

static void wait_purge(pm_arena_t *a)
{
    /* Why wait: pages past end are being given back right now; handing them
     * out before madvise returns would lose the program's data. */
    while (__atomic_load_n(&a->heap->purging, __ATOMIC_ACQUIRE)) {
        _pm_arena_unlock(a);
        sched_yield();
        _pm_arena_lock(a);
    }
}

pm_chunk_t *_pm_bins_alloc(pm_arena_t *a, size_t csize, int *how)
{
    *how = PM_FROM_BIN;
    unsigned k = bin_index(csize);
    /* First fit within the request's own bin (exact for small sizes). */
    int scanned = 0;
    for (pm_chunk_t *c = a->bins[k]; c && scanned < 16; scanned++) {
        uint64_t h = head_checked(c, "pm_malloc", chunk2mem(c));
        if (PM_UNLIKELY(head_state(h) != PM_ST_FREE))
            _pm_fatal("pm_malloc", chunk2mem(c), "corrupted free list (chunk not free)");
        size_t s = head_size(h);
        if (s >= csize)
            return chunk_split(a, c, s, csize, run_unlink(a, c, s, "pm_malloc"));
        c = link_get(a, &c->fd, "pm_malloc");
    }
    /* Any chunk of a larger bin fits. */
    for (unsigned w = (k + 1) >> 6; w < (PM_NBINS + 63) / 64; w++) {
        uint64_t m = a->binmap[w];
        if (w == (k + 1) >> 6)
            m &= ~(uint64_t)0 << ((k + 1) & 63);
        if (!m)
            continue;
        unsigned j = (w << 6) + (unsigned)__builtin_ctzll(m);
        pm_chunk_t *c = a->bins[j];
        uint64_t h = head_checked(c, "pm_malloc", chunk2mem(c));
        if (PM_UNLIKELY(head_state(h) != PM_ST_FREE || bin_index(head_size(h)) != j))
            _pm_fatal("pm_malloc", chunk2mem(c), "corrupted free list (chunk in wrong bin)");
        size_t s = head_size(h);
        return chunk_split(a, c, s, csize, run_unlink(a, c, s, "pm_malloc"));
    }
    /* The top chunk, grown if needed; it always keeps room for a header. */
    wait_purge(a);
    pm_chunk_t *t = a->top;
    uint64_t th = head_checked(t, "pm_malloc", chunk2mem(t));
    if (PM_UNLIKELY(head_state(th) != PM_ST_TOP || head_size(th) != top_size(a)))
        _pm_fatal("pm_malloc", chunk2mem(t), "corrupted top chunk (head %p)", (void *)th);
    if (top_size(a) < csize + PM_MIN_CHUNK) {
        if (csize > PM_SMALL_MAX && a->stash_bytes >= csize) {
            /* Why: as glibc does before a large request grows the heap. */
            _pm_stash_consolidate(a);
            return _pm_bins_alloc(a, csize, how);
        }
        if (!top_grow(a, csize + PM_MIN_CHUNK))
            return NULL;
    }
    pm_heap_t *hp = a->heap;
    *how = (char *)t + PM_HDR >= hp->zero_from ? PM_FROM_FRESH : PM_FROM_TOP;
    pm_chunk_t *nt = chunk_at(t, csize);
    a->top = nt;
    chunk_set(nt, top_size(a), PM_ST_TOP, PM_PREV_INUSE);
    if ((char *)nt + PM_HDR > hp->zero_from)
        hp->zero_from = (char *)nt + PM_HDR;
    chunk_set(t, csize, PM_ST_INUSE, th & PM_PREV_INUSE);
    a->in_use += csize;
    return t;
}

/* The free tail c (s bytes, before the fence) of old heap hp: shrink the
 * heap past it, keeping keep bytes, as top trimming does for the current
 * heap. The cut-off range waits in a->tail for the unlocked purge. Returns
 * c's new size. */
static size_t heap_cut_tail(pm_arena_t *a, pm_heap_t *hp, pm_chunk_t *c, size_t s,
                            uint64_t pinuse, size_t keep)
{
    size_t page = _pm_os_page_size();
    /* Why compare before adding: keep is pm_malloc_trim's pad, any size_t;
     * the sum could wrap below c, and the purge would zero live blocks. */
    if (keep >= (size_t)(hp->end - (char *)c))
        return s;
    uintptr_t cut = _pm_page_up((uintptr_t)c + 2 * PM_MIN_CHUNK + keep);
    if (cut + page >= (uintptr_t)hp->end)
        return s;
    pm_chunk_t *fence = (pm_chunk_t *)(cut - PM_MIN_CHUNK);
    size_t ns = (size_t)((char *)fence - (char *)c);
    a->tail.addr = (void *)cut;
    a->tail.len = (size_t)(hp->end - (char *)cut);
    a->tail.heap = hp;
    __atomic_fetch_add(&hp->purging, 1, __ATOMIC_RELEASE); /* until the tail's purge is done */
    held_add(a, -(ptrdiff_t)a->tail.len);
    a->purged += a->tail.len;
    if (hp->cut_to < hp->end)
        hp->cut_to = hp->end;
    hp->end = (char *)cut;
    chunk_set(c, ns, PM_ST_FREE, pinuse);
    fence->prev_size = ns;
    chunk_set(fence, PM_MIN_CHUNK, PM_ST_FENCE, 0);
    return ns;
}

bool _pm_bins_cut_old_tail(pm_arena_t *a, size_t keep)
{
    if (a->tail.len)
        return false;
    for (pm_heap_t *hp = a->heap->prev; hp; hp = hp->prev) {
        pm_chunk_t *fence = (pm_chunk_t *)(hp->end - PM_MIN_CHUNK);
        uint64_t fh = chunk_head(fence);
        if (!chunk_head_ok(fence, fh) || head_state(fh) != PM_ST_FENCE ||
            head_size(fh) != PM_MIN_CHUNK || (fh & PM_PREV_INUSE) ||
            fence->prev_size > (size_t)((char *)fence - hp->first))
            continue;
        pm_chunk_t *c = (pm_chunk_t *)((char *)fence - fence->prev_size);
        uint64_t h = chunk_head(c);
        size_t s = head_size(h);
        if (head_state(h) != PM_ST_FREE || s != fence->prev_size)
            continue;
        pm_run_t r = run_unlink(a, c, s, "pm_malloc_trim");
        size_t ns = heap_cut_tail(a, hp, c, s, h & PM_PREV_INUSE, keep);
        bins_insert_run(a, c, ns, r);
        if (ns != s)
            return true;
    }
    return false;
}

/* Heap hp, emptied and out of a's list, leaves: as the spare when keep and
 * there is none, else to be unmapped after unlocking. */
static void heap_leave(pm_arena_t *a, pm_heap_t *hp, bool keep)
{
    a->nheaps--;
    if (keep && !a->spare) {
        /* Why keep it: a program that empties a heap and fills one again
         * within a period (big blocks in turn) finds its pages resident; a
         * sweep unmaps it after a period unused. */
        hp->spare_gen = a->purge_gen;
        a->spare = hp;
    } else {
        held_add(a, (char *)hp - hp->end);
        hp->prev = a->release;
        a->release = hp;
    }
}

bool _pm_bins_retire_empty_heap(pm_arena_t *a, bool keep)
{
    pm_heap_t *h = a->heap, *prev = h->prev;
    if (!prev || (char *)a->top != h->first || __atomic_load_n(&h->purging, __ATOMIC_ACQUIRE))
        return false;
    pm_chunk_t *fence = (pm_chunk_t *)(prev->end - PM_MIN_CHUNK);
    uint64_t fh = chunk_head(fence);
    if (!chunk_head_ok(fence, fh) || head_state(fh) != PM_ST_FENCE ||
        head_size(fh) != PM_MIN_CHUNK)
        return false; /* a top too small for a fence became the fence whole */
    pm_chunk_t *t = fence;
    uint64_t pinuse = PM_PREV_INUSE;
    if (!(fh & PM_PREV_INUSE)) {
        size_t ps = fence->prev_size;
        t = (pm_chunk_t *)((char *)fence - ps);
        uint64_t th = head_checked(t, "pm_malloc_trim", chunk2mem(t));
        if (PM_UNLIKELY(head_state(th) != PM_ST_FREE || head_size(th) != ps))
            _pm_fatal("pm_malloc_trim", chunk2mem(t),
                      "corrupted boundary tag (chunk before a heap's fence)");
        run_unlink(a, t, ps, "pm_malloc_trim");
        pinuse = th & PM_PREV_INUSE;
    }
    chunk_head_store(a->top, 0); /* scrub: no stale pointer may find a head here */
    if (t != fence)
        chunk_head_store(fence, 0);
    a->heap = prev;
    a->top = t;
    chunk_set(t, top_size(a), PM_ST_TOP, pinuse);
    a->top_hi = (uintptr_t)t;
    heap_leave(a, h, keep);
    return true;
}

/* Free chunk c into a's bins, coalescing; clean: its pages were just given
 * back, so only what it merges with counts as dirty. */
static void bins_free_run(pm_arena_t *a, pm_chunk_t *c, const char *call, bool clean)
{
    /* No stale cache key may outlive the block: a chunk carved here later
     * would read as already freed. */
    *mem_word0(chunk2mem(c)) = 0;
    uint64_t h = chunk_head(c);
    size_t s = head_size(h);
    pm_heap_t *hp = heap_of(c);
    void *mem = chunk2mem(c);
    a->in_use -= s;
    pm_chunk_t *n = chunk_at(c, s);
    if (PM_UNLIKELY((char *)n >= hp->end))
        _pm_fatal(call, mem, "corrupted chunk header (size %p runs past its heap)", (void *)s);
    uint64_t nh = head_checked(n, call, mem);
    if (PM_UNLIKELY(!(nh & PM_PREV_INUSE) || head_state(nh) == PM_ST_DEAD))
        _pm_fatal(call, mem, "corrupted boundary tag (next chunk at %p disagrees)", (void *)n);
    pm_run_t run = {clean ? PM_STAMP_CLEAN : a->purge_gen, clean ? 0 : s};

    if (!(h & PM_PREV_INUSE)) {
        size_t ps = c->prev_size;
        pm_chunk_t *p = (pm_chunk_t *)((char *)c - ps);
        if (PM_UNLIKELY((ps & 15) || ps < PM_MIN_CHUNK || (char *)p < hp->first))
            _pm_fatal(call, mem, "corrupted boundary tag (prev_size %p)", (void *)ps);
        uint64_t ph = head_checked(p, call, mem);
        if (PM_UNLIKELY(head_state(ph) != PM_ST_FREE || head_size(ph) != ps))
            _pm_fatal(call, mem, "corrupted boundary tag (previous chunk %p is not free)",
                      (void *)p);
        run = run_merge(run, run_unlink(a, p, ps, call));
        chunk_head_store(c, 0); /* scrub: a later free of this address must not look valid */
        c = p;
        s += ps;
        h = ph;
    }
    if (head_state(nh) == PM_ST_TOP) {
        chunk_head_store(n, 0);
        a->top = c;
        chunk_set(c, top_size(a), PM_ST_TOP, h & PM_PREV_INUSE);
        return;
    }
    if (head_state(nh) == PM_ST_FREE) {
        size_t ns = head_size(nh);
        run = run_merge(run, run_unlink(a, n, ns, call));
        chunk_head_store(n, 0);
        s += ns;
        n = chunk_at(c, s);
        nh = head_checked(n, call, mem);
    }
    chunk_set(c, s, PM_ST_FREE, h & PM_PREV_INUSE);
    n->prev_size = s;
    chunk_head_store(n, chunk_make_head(n, head_size(nh), head_state(nh), 0));
    if (PM_UNLIKELY((char *)c == hp->first && head_state(nh) == PM_ST_FENCE &&
                    (char *)n + head_size(nh) == hp->end && hp != a->heap &&
                    hp != heap_of(a))) {
        /* An old heap with nothing left in it leaves the arena; not the
         * arena's first, which holds the arena itself (its tail is cut
         * below instead). */
        pm_heap_t **pp = &a->heap;
        while (*pp != hp)
            pp = &(*pp)->prev;
        *pp = hp->prev;
        heap_leave(a, hp, PM_OPT(decay_ms) != 0);
        return;
    }
    /* Why with decay_ms 0 only: a cut tail is lost to the heap until it
     * empties (its pages are mapped anew then); decay purges the run's pages
     * instead and keeps its room, for the next big block to fault back in. */
    if (PM_UNLIKELY(head_state(nh) == PM_ST_FENCE && hp != a->heap &&
                    s > trim_threshold() + PM_MIN_CHUNK && !a->tail.len) &&
        !PM_OPT(decay_ms))
        s = heap_cut_tail(a, hp, c, s, h & PM_PREV_INUSE, PM_OPT(top_pad));
    /* Why (decay_ms 0 only): glibc's fastbin consolidation threshold; the
     * unlock then coalesces the stash (trim.c). */
    if (PM_UNLIKELY(s >= 64 * PM_KIB) && !PM_OPT(decay_ms))
        a->consolidate = true;
    bins_insert_run(a, c, s, run);
}

void _pm_bins_free(pm_arena_t *a, pm_chunk_t *c, const char *call)
{
    bins_free_run(a, c, call, false);
}

void _pm_bins_free_purged(pm_arena_t *a, pm_chunk_t *c, bool purged, const char *call)
{
    bins_free_run(a, c, call, purged && _pm_check_level == 0);
}

size_t _pm_bins_take_runs(pm_arena_t *a, pm_chunk_t **out, size_t max, size_t min,
                          size_t budget, bool stale_only, const char *call)
{
    size_t n = 0, taken = 0;
    unsigned lo = bin_index(min);
    for (unsigned k = PM_NBINS; k-- > lo && n < max && taken < budget;) {
        pm_chunk_t *c = a->bins[k];
        while (c && n < max && taken < budget) {
            pm_chunk_t *next = link_get(a, &c->fd, call);
            uint64_t h = head_checked(c, call, chunk2mem(c));
            size_t s = head_size(h);
            uint64_t st = stamp_of(a, c, s);
            /* Why skip clean runs, and runs with less than half of min
             * dirty: their pages went back already, all or most. */
            bool clean = s >= PM_PURGE_MIN && _pm_check_level == 0 &&
                         (st == PM_STAMP_CLEAN || chunk_dirty_bytes(c, s) < min / 2);
            if (s >= min && !clean && (!stale_only || st < a->purge_gen)) {
                /* Out of the bins while its pages go back, unlocked. */
                taken += chunk_dirty_bytes(c, s);
                _pm_bins_unlink(a, c, s, call);
                chunk_set(c, s, PM_ST_CACHED, h & PM_PREV_INUSE);
                pm_chunk_t *nx = chunk_at(c, s);
                uint64_t nh = chunk_head(nx);
                chunk_set(nx, head_size(nh), head_state(nh), PM_PREV_INUSE);
                a->in_use += s;
                out[n++] = c;
            }
            c = next;
        }
    }
    return n;
}

bool _pm_bins_plan_trim(pm_arena_t *a, size_t keep, pm_purge_t *pp)
{
    pm_heap_t *h = a->heap;
    if (__atomic_load_n(&h->purging, __ATOMIC_ACQUIRE))
        return false;
    /* keep may be any size_t (pm_malloc_trim's pad): compare, then add. */
    if (keep >= (size_t)(h->end - (char *)a->top))
        return false;
    uintptr_t from = _pm_page_up((uintptr_t)a->top + PM_MIN_CHUNK + keep);
    if (from >= (uintptr_t)h->end)
        return false;
    pp->addr = (void *)from;
    pp->len = (size_t)(h->end - (char *)from);
    pp->heap = h;
    held_add(a, -(ptrdiff_t)pp->len);
    if (h->cut_to < h->end)
        h->cut_to = h->end;
    h->end = (char *)from;
    /* Why not below dirty_to: pages a failed purge left may lie past end. */
    char *zero = h->end > h->dirty_to ? h->end : h->dirty_to;
    if (h->zero_from > zero)
        h->zero_from = zero;
    top_write(a, a->top);
    __atomic_fetch_add(&h->purging, 1, __ATOMIC_RELEASE);
    return true;
}

bool _pm_purge_apply(pm_purge_t *pp)
{
    pm_heap_t *h = pp->heap;
    bool ok = _pm_os_purge(pp->addr, pp->len);
    if (PM_UNLIKELY(!ok)) {
        /* Why: a trim took the pages past end to be zero; they kept their
         * data, and later trims must not take them for zero either.
         * Nothing is carved there until purging drops (wait_purge). */
        char *e = (char *)pp->addr + pp->len;
        _pm_arena_lock(h->arena);
        if (h->dirty_to < e)
            h->dirty_to = e;
        if (h->zero_from < e)
            h->zero_from = e;
        h->arena->purged -= pp->len;
        _pm_arena_unlock(h->arena);
    }
    __atomic_fetch_sub(&h->purging, 1, __ATOMIC_RELEASE);
    return ok;
}

bool _pm_bins_grow_inplace(pm_arena_t *a, pm_chunk_t *c, size_t csize)
{
    /* Why wait before reading the heads: waiting drops the lock, and another
     * thread may meanwhile carve the top after c or free the chunk before
     * it (which changes c's PREV_INUSE bit). */
    if (chunk_at(c, head_size(chunk_head(c))) == a->top)
        wait_purge(a);
    uint64_t h = chunk_head(c);
    size_t s = head_size(h);
    pm_chunk_t *n = chunk_at(c, s);
    uint64_t nh = head_checked(n, "pm_realloc", chunk2mem(c));
    if (head_state(nh) == PM_ST_TOP) {
        if (top_size(a) < csize - s + PM_MIN_CHUNK && !top_grow(a, csize - s + PM_MIN_CHUNK))
            return false;
        pm_chunk_t *nt = chunk_at(c, csize);
        a->top = nt;
        chunk_set(nt, top_size(a), PM_ST_TOP, PM_PREV_INUSE);
        if ((char *)nt + PM_HDR > a->heap->zero_from)
            a->heap->zero_from = (char *)nt + PM_HDR;
        chunk_head_store(n, 0);
        chunk_set(c, csize, PM_ST_INUSE, h & PM_PREV_INUSE);
        a->in_use += csize - s;
        return true;
    }
    if (head_state(nh) != PM_ST_FREE || s + head_size(nh) < csize)
        return false;
    size_t ns = head_size(nh);
    pm_run_t r = run_unlink(a, n, ns, "pm_realloc");
    chunk_head_store(n, 0);
    a->in_use -= s; /* chunk_split adds the whole result back */
    chunk_split(a, c, s + ns, csize, r);
    chunk_set(c, head_size(chunk_head(c)), PM_ST_INUSE, h & PM_PREV_INUSE);
    return true;
}

void _pm_bins_shrink(pm_arena_t *a, pm_chunk_t *c, size_t csize)
{
    uint64_t h = chunk_head(c);
    size_t s = head_size(h);
    if (s - csize < PM_MIN_CHUNK)
        return;
    pm_chunk_t *r = chunk_at(c, csize);
    chunk_set(c, csize, PM_ST_INUSE, h & PM_PREV_INUSE);
    chunk_set(r, s - csize, PM_ST_INUSE, PM_PREV_INUSE);
    _pm_bins_free(a, r, "pm_realloc");
}

pm_chunk_t *_pm_bins_alloc_newheap(pm_arena_t *a, size_t csize, int *how)
{
    _pm_remote_drain(a);
    if (a->stash_bytes) {
        /* Why first: stashed blocks may coalesce into the room needed. */
        _pm_stash_consolidate(a);
        pm_chunk_t *c = _pm_bins_alloc(a, csize, how);
        if (c)
            return c;
    }
    if (csize > PM_HEAP_SIZE - 2 * _pm_os_page_size())
        return NULL; /* no heap holds it; the caller goes on to mmap */
    pm_heap_t *nh = a->spare;
    /* Why: a spare is counted in held already (kept or left over). */
    bool counted = nh != NULL;
    a->spare = NULL;
    if (!nh) {
        pm_heap_t *seen = a->heap;
        /* Unlock, then map. */
        _pm_arena_unlock(a);
        nh = _pm_heap_new(a, heap_first_offset(sizeof(pm_heap_t)));
        _pm_arena_lock(a);
        if (!nh)
            return NULL;
        if (a->heap != seen) {
            /* Another thread added a heap meanwhile: use it, keep ours. */
            pm_chunk_t *c = _pm_bins_alloc(a, csize, how);
            if (c) {
                if (!a->spare) {
                    nh->spare_gen = a->purge_gen;
                    held_add(a, nh->end - (char *)nh);
                    a->spare = nh;
                } else {
                    _pm_arena_unlock(a);
                    _pm_heap_unmap(nh);
                    _pm_arena_lock(a);
                }
                return c;
            }
        }
    }
    /* Retire the old top: what is left becomes a free chunk, closed by a
     * fence so that nothing walks past the heap's end. */
    wait_purge(a);
    pm_chunk_t *t = a->top;
    size_t ts = top_size(a);
    uint64_t th = head_checked(t, "pm_malloc", chunk2mem(t));
    if (ts >= 2 * PM_MIN_CHUNK) {
        pm_chunk_t *fence = chunk_at(t, ts - PM_MIN_CHUNK);
        chunk_set(t, ts - PM_MIN_CHUNK, PM_ST_FREE, th & PM_PREV_INUSE);
        fence->prev_size = ts - PM_MIN_CHUNK;
        chunk_set(fence, PM_MIN_CHUNK, PM_ST_FENCE, 0);
        _pm_bins_insert(a, t, ts - PM_MIN_CHUNK);
    } else {
        chunk_set(t, ts, PM_ST_FENCE, th & PM_PREV_INUSE);
    }
    nh->prev = a->heap;
    a->heap = nh;
    a->nheaps++;
    if (!counted)
        held_add(a, nh->end - (char *)nh);
    top_write(a, (pm_chunk_t *)nh->first);
    return _pm_bins_alloc(a, csize, how);
}
