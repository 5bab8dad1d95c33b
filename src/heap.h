/* SPDX-License-Identifier: MIT */
/*
 * heap.h - the core's shared definitions: chunks, heaps, arenas, size
 * classes and the thread cache, plus the inline helpers every layer uses.
 *
 * Chunk layout (16-byte aligned, glibc-style boundary tags):
 *   c+0   prev_size  size of the previous chunk while that one is FREE (its
 *                    boundary tag); otherwise the previous chunk's last bytes
 *   c+8   head       size | state | PREV_INUSE, with a 16-bit checksum of
 *                    those bits keyed with a per-process secret
 *   c+16  user data  (a FREE chunk keeps its mangled fd/bk links here)
 * The usable size of a chunk of size S is S - 8: the user data runs into the
 * next chunk's prev_size slot, so one byte past the usable end is the next
 * chunk's head, whose checksum then fails.
 *
 * Heaps are PM_HEAP_SIZE-aligned mappings, so the heap (and its arena) of any
 * chunk is one mask away; a bitmap of heap slots says, with one load, whether
 * an address lies in a pmalloc heap before anything is read from it.
 *
 * Lock ranks (take in this order, never back): options < arena list < arena
 * locks, by index, then the large companions' locks, by index (one at a time
 * except in the fork handler) < large (mmap) lock < thread-cache list lock.
 * (pm_init runs once under pthread_once, before any of them is taken.)
 */
#ifndef PM_HEAP_H
#define PM_HEAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "build-config.h"
#include "diag.h"
#include "options.h"
#include "os.h"
#include "pmalloc.h"

#pragma GCC visibility push(hidden)

#define PM_LIKELY(x)   __builtin_expect(!!(x), 1)
#define PM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PM_COLD        __attribute__((cold, noinline))
#define PM_INLINE      static inline __attribute__((always_inline))
/* In libpmalloc-override (built with PM_OVERRIDE) name is a second name of
 * target, glibc's name for the same function: no call in between. */
#ifdef PM_OVERRIDE
#define PM_GLIBC_NAME(name, target) \
    extern __typeof(target) name __attribute__((alias(#target), visibility("default")));
#else
#define PM_GLIBC_NAME(name, target)
#endif

/* ---- chunks ------------------------------------------------------------ */
#define PM_ALIGNMENT   16
#define PM_HDR         16 /* chunk start to user pointer                    */
#define PM_OVERHEAD    8  /* bytes a chunk costs beyond its usable size     */
#define PM_MIN_CHUNK   32
#define PM_MAX_REQUEST ((size_t)1 << 46)

#define PM_PREV_INUSE  ((uint64_t)1)
#define PM_STATE_SHIFT 1
#define PM_STATE_MASK  ((uint64_t)7 << PM_STATE_SHIFT)
#define PM_SIZE_MASK   ((uint64_t)0x0000fffffffffff0)

enum pm_state {
    PM_ST_DEAD = 0,    /* scrubbed header of a chunk absorbed by a neighbour */
    PM_ST_INUSE = 1,   /* handed to the program                             */
    PM_ST_FREE = 2,    /* in an arena bin                                   */
    PM_ST_CACHED = 3,  /* in a thread cache or the quarantine               */
    PM_ST_TOP = 4,     /* an arena's top chunk                              */
    PM_ST_MMAPPED = 5, /* its own mapping                                   */
    PM_ST_FENCE = 6,   /* end marker of a full heap                         */
};

typedef struct pm_chunk {
    uint64_t prev_size;
    uint64_t head_word; /* through chunk_head()/chunk_head_store() only */
    struct pm_chunk *fd, *bk; /* FREE only, mangled */
} pm_chunk_t;

extern uint64_t _pm_secret;
/* Hardened level: 0 unless PM_HARDENED=1, then a random odd key that binds
 * each head's checksum to its address (fixed after the first allocation). */
extern uint64_t _pm_addr_key;
extern int _pm_hardened;

/* The head word is written under the arena lock (PREV_INUSE changes when a
 * neighbour is freed) while the block's owner may read it without one:
 * relaxed atomics, plain moves on x86. */
PM_INLINE uint64_t chunk_head(const pm_chunk_t *c)
{
    return __atomic_load_n(&c->head_word, __ATOMIC_RELAXED);
}
PM_INLINE void chunk_head_store(pm_chunk_t *c, uint64_t v)
{
    __atomic_store_n(&c->head_word, v, __ATOMIC_RELAXED);
}

/* The checksum of a head word: its low 48 bits (the shift drops the old
 * checksum) and the secret, mixed by one multiply. Why not the address too
 * by default: then every valid head of a small in-use chunk is one of 128
 * values, and pm_free checks a head with one table load (_pm_inuse_head)
 * instead of a hash; what the checksum is for (overflows and stray writes
 * landing on a header) it still catches, all but 1 in 65536 of random
 * damage. The hardened level adds the address (_pm_addr_key), so that a
 * head copied from another block fails; it has no inline paths. */
PM_INLINE uint64_t chunk_csum(const void *c, uint64_t head)
{
    uint64_t where = (uintptr_t)c * _pm_addr_key;
    return (((head << 16) ^ _pm_secret ^ where) * 0x9e3779b97f4a7c15ull) >> 48;
}
PM_INLINE uint64_t chunk_make_head(const void *c, size_t size, unsigned state, uint64_t pinuse)
{
    uint64_t raw = (uint64_t)size | ((uint64_t)state << PM_STATE_SHIFT) | pinuse;
    return raw | (chunk_csum(c, raw) << 48);
}
PM_INLINE bool chunk_head_ok(const void *c, uint64_t head)
{
#ifdef PM_NO_CHECKS
    (void)c, (void)head;
    return true;
#else
    return (head >> 48) == chunk_csum(c, head);
#endif
}
PM_INLINE size_t head_size(uint64_t head) { return head & PM_SIZE_MASK; }
/* The largest chunk on the inline paths: class 65, whose index is also its
 * size / 16, so a 1 KiB request stays on them too. */
#define PM_FAST_CSIZE 1040
/* The head of an INUSE chunk of size s (s <= PM_FAST_CSIZE, a multiple of 16)
 * with PREV_INUSE bit p is _pm_inuse_head[(s >> 3) | p]; other slots ~0.
 * Not while hardened (the heads then differ by address). */
extern uint64_t _pm_inuse_head[(PM_FAST_CSIZE >> 3) + 2];
PM_INLINE unsigned head_state(uint64_t head) { return (head & PM_STATE_MASK) >> PM_STATE_SHIFT; }
PM_INLINE pm_chunk_t *mem2chunk(const void *p) { return (pm_chunk_t *)((char *)p - PM_HDR); }
PM_INLINE void *chunk2mem(const pm_chunk_t *c) { return (char *)c + PM_HDR; }
PM_INLINE pm_chunk_t *chunk_at(const void *c, size_t off)
{
    return (pm_chunk_t *)((char *)c + off);
}
/* Rewrite c's head with a new state, keeping size and PREV_INUSE. */
PM_INLINE void chunk_set_state(pm_chunk_t *c, uint64_t head, unsigned state)
{
    chunk_head_store(c, chunk_make_head(c, head_size(head), state, head & PM_PREV_INUSE));
}
PM_INLINE void chunk_set(pm_chunk_t *c, size_t size, unsigned state, uint64_t pinuse)
{
    chunk_head_store(c, chunk_make_head(c, size, state, pinuse));
}

/* A block in a thread cache or a remote buffer keeps its INUSE head (only
 * the arena writes heads) and carries this key in its first word instead:
 * the key says "freed", so a second free is caught without a lock. */
extern uint64_t _pm_key_secret; /* its own secret, drawn with _pm_secret */
PM_INLINE uint64_t tc_key(const void *p)
{
    return _pm_key_secret ^ (uintptr_t)p;
}
PM_INLINE uint64_t *mem_word0(void *p) { return (uint64_t *)p; }

/* Chunk size for a request of n bytes at check level 0 (n already bounded). */
PM_INLINE size_t request2size(size_t n)
{
    size_t s = (n + PM_OVERHEAD + 15) & ~(size_t)15;
    return s < PM_MIN_CHUNK ? PM_MIN_CHUNK : s;
}

/* ---- size classes ------------------------------------------------------
 * Chunk sizes up to 1 KiB have a class each (16-byte steps, index = size/16).
 * Above that, four classes per power of two, each 16 bytes over it (1040,
 * 1296, 1552, 1808, 2064, 2576, ...): a request of a power of two (4096, say)
 * plus its header fits a class exactly. The thread cache uses the classes up
 * to PM_TCACHE_MAX_LIMIT + 16, the arena bins all of them up to a heap.   */
#define PM_SMALL_MAX   1024
#define PM_NCLASS_TC   90  /* classes 0..89; 89 is 64 KiB + 16             */
#define PM_NBINS       130 /* arena bins 0..129; 129 is 64 MiB + 16         */

/* Blocks of classes below this may wait in an arena's stash. Why fewer
 * with decay_ms 0 (glibc's trimming): glibc parks no block over 1 KiB, and
 * a parked big block keeps free memory from joining the top. */
#define PM_STASH_CLASSES() (PM_OPT(decay_ms) ? PM_NCLASS_TC : 65u)

PM_INLINE unsigned size_class_ceil(size_t csize)
{
    if (csize <= PM_SMALL_MAX)
        return (unsigned)(csize >> 4);
    if (csize <= PM_SMALL_MAX + 16)
        return 65;
    size_t x = csize - 17;
    unsigned b = 63u - (unsigned)__builtin_clzl(x);
    return 66u + (b - 10u) * 4u + (unsigned)((x >> (b - 2)) & 3);
}
PM_INLINE size_t class_size(unsigned k)
{
    if (k <= 64)
        return (size_t)k << 4;
    if (k == 65)
        return PM_SMALL_MAX + 16;
    unsigned j = k - 66, b = 10 + j / 4;
    return ((size_t)1 << b) + ((size_t)(j % 4 + 1) << (b - 2)) + 16;
}
/* The largest class whose size is <= csize (where a chunk of csize can go). */
PM_INLINE unsigned size_class_floor(size_t csize)
{
    unsigned k = size_class_ceil(csize);
    return class_size(k) > csize ? k - 1 : k;
}

/* ---- heaps ------------------------------------------------------------- */
#define PM_HEAP_SHIFT 26
#define PM_HEAP_SIZE  ((size_t)1 << PM_HEAP_SHIFT) /* 64 MiB */
#define PM_HEAP_MASK  (PM_HEAP_SIZE - 1)
#define PM_ADDR_BITS  47

struct pm_arena;
typedef struct pm_heap {
    uint64_t magic;
    struct pm_arena *arena;
    struct pm_heap *prev;   /* older heap of the same arena              */
    char *first;            /* first chunk                               */
    char *end;              /* end of the part in use (top's end)         */
    char *zero_from;        /* memory from here to the heap's end is zero */
    char *dirty_to;         /* memory below here may hold data, past end
                             * too: a purge failed (locked pages) or was
                             * cut short by fork; a trim never takes it
                             * for zero                                  */
    char *cut_to;           /* highest end a trim cut back from: a top that
                             * grows below it takes purged pages back     */
    uint64_t spare_gen;     /* the sweep it became its arena's spare in    */
    int purging;            /* purges of [end, ...) in flight (atomic):
                             * of the top in the newest heap, of cut-off
                             * tails in older ones                       */
} pm_heap_t;

#define PM_HEAP_MAGIC 0x706d68656170ull

extern uint64_t _pm_heap_map[1u << (PM_ADDR_BITS - PM_HEAP_SHIFT - 6)];

/* Is a in a live pmalloc heap? One load; nothing at a is read. */
PM_INLINE bool heap_owns(uintptr_t a)
{
    if (PM_UNLIKELY(a >> PM_ADDR_BITS))
        return false;
    uint64_t w = __atomic_load_n(&_pm_heap_map[a >> (PM_HEAP_SHIFT + 6)], __ATOMIC_RELAXED);
    return (w >> ((a >> PM_HEAP_SHIFT) & 63)) & 1;
}
PM_INLINE pm_heap_t *heap_of(const void *p) { return (pm_heap_t *)((uintptr_t)p & ~PM_HEAP_MASK); }
/* Offset of the first chunk in a heap whose header is hdr bytes. */
PM_INLINE size_t heap_first_offset(size_t hdr) { return (hdr + 15) & ~(size_t)15; }

/* ---- arenas ------------------------------------------------------------ */
/* A range to give back once the arena lock is dropped. */
typedef struct pm_purge {
    void *addr;
    size_t len;
    pm_heap_t *heap;
} pm_purge_t;
#define PM_ARENA_LIMIT 1024
/* Free runs at least this big carry a sweep stamp and decay: two pages, so
 * that any such run holds a whole page past its header (decay works at
 * page granularity, not only on big runs). */
#define PM_PURGE_MIN   (8 * PM_KIB)
/* The sweep stamp of a free chunk of PM_PURGE_MIN or more: its fifth word,
 * past the links; PM_STAMP_CLEAN once its pages went back. Its sixth word
 * counts the bytes that may still be resident: a run merged from a purged
 * part and a freshly freed one holds only the latter's. */
#define PM_STAMP_CLEAN UINT64_MAX
PM_INLINE uint64_t *chunk_stamp(pm_chunk_t *c) { return &((uint64_t *)c)[4]; }
PM_INLINE uint64_t *chunk_dirty(pm_chunk_t *c) { return &((uint64_t *)c)[5]; }
#define PM_QUARANTINE  256
#define PM_QUARANTINE_BYTES (4 * PM_MIB)

/* Free runs a sweep or trim took out of an arena's bins and purges with the
 * lock dropped. It lives on the purging thread's stack and is listed in the
 * arena meanwhile (the list, not the runs, so that a write to freed memory
 * cannot reach it), so that a child forked then puts them back. */
typedef struct pm_out_batch {
    struct pm_out_batch *next;
    pm_chunk_t **runs;
    size_t n;
    pthread_t owner;        /* the purging thread                          */
} pm_out_batch_t;

typedef struct pm_arena {
    pthread_mutex_t lock;
    /* counters that sit with the lock they describe */
    uint64_t lock_acquired, lock_contended;
    uint32_t index;         /* a large companion has its owner's index     */
    uint32_t attached;      /* threads using this arena (atomic)          */
    /* Large chunks (over the biggest cache class) come from a companion
     * arena with heaps, bins and a lock of its own: small blocks never
     * split their runs, so a freed large block leaves a hole that only a
     * large block refills and that decay can hand back whole. */
    struct pm_arena *big;   /* the companion, made on first use (atomic)   */
    bool is_big;            /* this is a companion                         */
    pm_heap_t *heap;        /* newest heap; holds top                     */
    pm_chunk_t *top;
    size_t held;            /* bytes of heap extents held from the OS      */
    size_t in_use;          /* bytes of chunks not free (incl. cached)     */
    size_t free_bytes;      /* bytes in bins                              */
    size_t nfree;           /* chunks in bins                             */
    size_t nheaps;
    /* decay (decay_ms > 0): free runs of PM_PURGE_MIN and more carry the
     * sweep generation they were binned in; a sweep gives back the ones
     * older than the last sweep, and the top past its high-water mark */
    size_t dirty;           /* bytes of such runs not given back yet (the
                             * sum of their dirty words)                  */
    uint64_t purge_gen;     /* sweeps so far                              */
    uint64_t sweep_at;      /* ms: the next sweep is due                   */
    uintptr_t top_hi;       /* highest top start seen since the last sweep */
    size_t purged;          /* bytes given back (stats)                    */
    uint16_t zero_skip;     /* recycled callocs to memset unchecked, and   */
    uint16_t zero_dense;    /* checks in a row that found them resident
                             * (alloc.c; relaxed atomics)                 */
    int sweep_wanted;       /* it has something for a sweep (atomic: the
                             * purger and a companion's owner read it)    */
    pm_heap_t *spare;       /* a mapped heap not in use: a fresh one a race
                             * left over, or an emptied one kept a sweep
                             * period for reuse (counted in held)        */
    struct pm_out_batch *out; /* batches of runs out of the bins while
                             * their pages go back (trim.c)              */
    pm_heap_t *release;     /* emptied heaps to unmap after unlocking,
                             * chained through prev                      */
    struct pm_purge tail;   /* an old heap's cut-off tail, to purge         */
    uint64_t binmap[(PM_NBINS + 63) / 64];
    pm_chunk_t *bins[PM_NBINS];
    /* level-2 quarantine: a FIFO of recently freed blocks */
    size_t q_head, q_len, q_bytes;
    void *quarantine[PM_QUARANTINE];
    /* the stash: blocks flushed from thread caches, kept whole (not
     * coalesced) per class until the arena needs the room */
    size_t stash_bytes;
    size_t used_hi;         /* most bytes in use outside the stash since
                             * the last sweep, and in the period before */
    size_t used_prev;       /* it: the stash may hold as much as either  */
    void *stash[PM_NCLASS_TC];
    uint32_t stash_count[PM_NCLASS_TC];
    size_t clean;           /* bytes of binned runs whose pages went back
                             * (not resident: pm_mallinfo's arena leaves
                             * them out)                                  */
    /* the sweep period adapts: it doubles (up to PM_DECAY_STRETCH x
     * decay_ms) while what a sweep gave back is taken again before the
     * next one (a busy program on a shared CPU), and falls back to decay_ms
     * once that stops or the arena sits idle */
    uint32_t period_ms;     /* 0: decay_ms                                */
    size_t refault;         /* bytes of given-back memory carved again
                             * since the last sweep                      */
    size_t last_gave;       /* bytes the last sweep gave back            */
    uint64_t calls;         /* slow-path calls that left the arena (atomic:
                             * the purger reads it unlocked)              */
    uint64_t purger_seen;   /* calls at the purger's last look (atomic)   */
    bool consolidate;       /* decay_ms 0: a free formed a run of 64 KiB
                             * or more; the stash is coalesced at unlock */
    /* blocks other threads freed, pushed without the lock (a chain through
     * their second words); whoever holds the lock next drains them */
    void *remote_head __attribute__((aligned(64)));
    size_t remote_bytes;
} pm_arena_t;

extern pm_arena_t *_pm_arenas[PM_ARENA_LIMIT];
extern uint32_t _pm_narenas; /* atomic */

/* Does no thread use a (or, for a companion, its arena)? Then no thread of
 * its own will call in to sweep it. */
PM_INLINE bool arena_idle(const pm_arena_t *a)
{
    return __atomic_load_n(&_pm_arenas[a->index]->attached, __ATOMIC_RELAXED) == 0;
}

/* Chunks of this size and more go to the large companions. */
#define PM_BIG_CSIZE (PM_TCACHE_MAX_LIMIT + 32)

/* Every arena in lock-rank order, for i in [0, 2n) with n = _pm_narenas:
 * the arenas by index, then their large companions by index. NULL where an
 * arena has no companion yet. */
PM_INLINE pm_arena_t *arena_slot(uint32_t i, uint32_t n)
{
    return i < n ? _pm_arenas[i] : __atomic_load_n(&_pm_arenas[i - n]->big, __ATOMIC_ACQUIRE);
}

/* ---- thread cache ------------------------------------------------------ */
typedef struct pm_tbin { /* 16 bytes: pm_free indexes bins by chunk size */
    uint32_t count; /* written by the owner, read by stats (relaxed atomic) */
    uint16_t cap;
    uint16_t fill;  /* blocks the next refill takes; doubles up to cap/2 */
    void **slots;
} pm_tbin_t;

#define PM_DELAY_SLOTS 8 /* hardened: the delayed-reuse quarantine's size */
/* hardened: freed blocks of this chunk size and more are zeroed */
#define PM_HARDENED_ZERO_MIN 256
#define PM_REMOTE_MAX 64
#define PM_REMOTE_BYTES (64 * PM_KIB) /* nor more bytes than this parked */
#define PM_REMOTE_AHEAD 8 /* how far ahead a remote chain's prefetch hints point */

typedef struct pm_tcache {
    size_t fast_max;      /* largest request on the inline path; 0: none   */
    size_t fast_csize;    /* largest chunk size on the inline free path    */
    size_t max_csize;     /* largest chunk the cache takes (tcache_max)     */
    pm_arena_t *arena;    /* this thread's arena                           */
    pm_tbin_t bins[PM_NCLASS_TC];
    unsigned nclass;      /* classes in use: 0..nclass-1                   */
    uint32_t nremote;
    size_t remote_bytes;  /* what the remote blocks hold                  */
    void *remote[PM_REMOTE_MAX]; /* blocks of other arenas, freed in a batch */
    struct pm_tcache *next;
    struct pm_tcache **prevp;
    bool real;            /* false for the static empty cache               */
    long tid;             /* the owning thread's kernel id                  */
    long pid;             /* ... and process: only this process's ids count */
    uint64_t born;        /* its number in the order caches were listed     */
    uint64_t scan_round;  /* the orphan scan's round that last asked about
                           * this cache (tcache.c), and its entry there    */
    uint32_t scan_idx;
    /* hardened: freed blocks held back from reuse, each evicted by a later
     * free into a random slot (free.c); xorshift state for the choice */
    void *delay[PM_DELAY_SLOTS];
    uint64_t rng;
    void *slot_store[];
} pm_tcache_t;

extern __thread pm_tcache_t *_pm_tls_tc __attribute__((tls_model("initial-exec")));
extern pm_tcache_t _pm_tc_empty;
extern int _pm_initialized; /* atomic */
extern int _pm_check_level; /* fixed after the first allocation */
/* The bytes of free chunk c (s bytes) whose pages may be resident: a
 * stamped run's count, a smaller chunk whole (its fifth and sixth words are
 * whatever the program left there). */
PM_INLINE size_t chunk_dirty_bytes(pm_chunk_t *c, size_t s)
{
    return s >= PM_PURGE_MIN && _pm_check_level == 0 ? *chunk_dirty(c) : s;
}

/* ---- cross-file interfaces --------------------------------------------- */
/* init.c */
void _pm_init_slow(void);
PM_INLINE void pm_ensure_init(void)
{
    if (PM_UNLIKELY(!__atomic_load_n(&_pm_initialized, __ATOMIC_ACQUIRE)))
        _pm_init_slow();
}
/* Set once anything may have been handed out: from then on the check level
 * and perturb stay as they are (pm_mallopt says EBUSY). */
extern int _pm_alloc_begun;
bool _pm_alloc_begin_slow(void);
/* pm_ensure_init for the calls that hand out memory. False in a call made
 * from inside init (a libc call there that came back to pmalloc): nothing
 * is set up yet, and the call is served by _pm_boot_alloc. */
PM_INLINE bool pm_ensure_alloc(void)
{
    pm_ensure_init();
    if (PM_UNLIKELY(!__atomic_load_n(&_pm_alloc_begun, __ATOMIC_ACQUIRE)))
        return _pm_alloc_begin_slow();
    return true;
}
/* Serve n bytes (aligned to align, 0: 16) from inside init: a direct
 * mapping, remembered as a boot block (no canary). */
void *_pm_boot_alloc(size_t n, size_t align);
/* Is chunk c a boot block? forget: it is being freed. */
bool _pm_boot_block(const void *c, bool forget);
/* Is init done? (False only inside init and in calls made from there.) */
PM_INLINE bool pm_init_done(void)
{
    return __atomic_load_n(&_pm_initialized, __ATOMIC_ACQUIRE);
}

/* arena.c */
void _pm_arena_lock(pm_arena_t *a);
/* Take a's lock if it is free (counted as taken); false if busy. */
bool _pm_arena_trylock(pm_arena_t *a);
void _pm_arena_unlock(pm_arena_t *a);
pm_arena_t *_pm_arena_create(void);
/* The calling thread's arena, locked; may move the thread to another one. */
pm_arena_t *_pm_arena_get_locked(void);
/* The large companion of the calling thread's arena, locked; NULL if it
 * cannot be made. */
pm_arena_t *_pm_arena_get_big_locked(void);
pm_arena_t *_pm_arena_pick_for_thread(void);
void _pm_arena_detach(pm_arena_t *a);
/* Next arena after a for a fallback, or NULL after all were tried. */
pm_arena_t *_pm_arena_next(pm_arena_t *a, pm_arena_t *start);
void _pm_fork_install(void);
/* Make a new heap for a (lock not held); NULL on ENOMEM. */
pm_heap_t *_pm_heap_new(pm_arena_t *a, size_t hdr);
void _pm_heap_register(pm_heap_t *h);
/* Unregister and unmap a heap that holds nothing (lock not held). */
void _pm_heap_unmap(pm_heap_t *h);

/* bins.c (arena lock held) */

void _pm_bins_insert(pm_arena_t *a, pm_chunk_t *c, size_t size);
void _pm_bins_unlink(pm_arena_t *a, pm_chunk_t *c, size_t size, const char *call);
/* Where a chunk came from, for calloc and the level-1 fill checks. */
enum { PM_FROM_TOP = 0, PM_FROM_FRESH = 1, PM_FROM_BIN = 2, PM_FROM_CACHE = 3 };
/* Allocate a chunk of at least csize from bins or top; NULL if the arena
 * cannot (the caller may add a heap). *how says where it came from. */
pm_chunk_t *_pm_bins_alloc(pm_arena_t *a, size_t csize, int *how);
/* Free chunk c (state INUSE or CACHED) into a's bins, coalescing. */
void _pm_bins_free(pm_arena_t *a, pm_chunk_t *c, const char *call);
/* The same for a run taken out to be purged: purged, its pages went back
 * and only what it coalesces with counts as dirty. */
void _pm_bins_free_purged(pm_arena_t *a, pm_chunk_t *c, bool purged, const char *call);
/* Take up to max free runs of min bytes or more (min / 2 of them dirty)
 * out of the bins, largest first and held as CACHED, for the caller to purge after unlocking and
 * give back with _pm_bins_free_purged; with stale_only, only those binned
 * before the last sweep; none once budget dirty bytes are taken. Purged
 * runs stay. */
size_t _pm_bins_take_runs(pm_arena_t *a, pm_chunk_t **out, size_t max, size_t min,
                          size_t budget, bool stale_only, const char *call);
/* Decide a trim of a's top; fills *pp and marks the heap; the caller calls
 * _pm_purge_apply after unlocking. */
bool _pm_bins_plan_trim(pm_arena_t *a, size_t keep, pm_purge_t *pp);
/* Give pp's pages back (no lock held) and let the heap grow over them
 * again; false if they kept their data, and then not taken to be zero. */
bool _pm_purge_apply(pm_purge_t *pp);
/* The newest heap holds nothing: the one before it becomes the newest
 * again, its free tail the top (glibc's heap_trim); the emptied heap
 * becomes the spare (keep, and none yet) or waits in a->release. */
bool _pm_bins_retire_empty_heap(pm_arena_t *a, bool keep);
/* Cut the free tail of one old heap (keeping keep bytes) into a->tail;
 * true if one was cut. */
bool _pm_bins_cut_old_tail(pm_arena_t *a, size_t keep);
/* Grow chunk c (INUSE) in place to at least csize; true on success. */
bool _pm_bins_grow_inplace(pm_arena_t *a, pm_chunk_t *c, size_t csize);
/* Shrink chunk c (INUSE) to csize, freeing the tail. */
void _pm_bins_shrink(pm_arena_t *a, pm_chunk_t *c, size_t csize);
/* Allocate from a new heap when a's is full (drops and retakes the lock). */
pm_chunk_t *_pm_bins_alloc_newheap(pm_arena_t *a, size_t csize, int *how);
uintptr_t _pm_link_mangle(const void *field, const void *p);
/* The stash (arena lock held): blocks of class k keep their cache key and
 * link through their second word. */
#define PM_STASH_MAX (512 * PM_KIB) /* a stash may always hold this much */
void _pm_stash_push(pm_arena_t *a, void *p, unsigned k, size_t size);
void *_pm_stash_pop(pm_arena_t *a, unsigned k);
void _pm_stash_consolidate(pm_arena_t *a);
/* Past its bound (PM_STASH_MAX, or with decay on used_hi or used_prev if
 * more): coalesce stashed blocks, largest first, down to half the bound. */
void _pm_stash_bound(pm_arena_t *a);
/* Push a chain first..last (linked through word 1) of a's blocks, bytes in
 * all, without a's lock. */
void _pm_remote_push(pm_arena_t *a, void *first, void *last, size_t bytes);
/* Take every remotely freed block into a's stash (lock held). */
void _pm_remote_drain(pm_arena_t *a);

/* large.c */
/* The thresholds in force: the settings, or with mmap_dynamic on and both
 * left at their defaults, glibc's rule: 128 KiB each to start with, then
 * the size of the largest mapping freed so far (up to
 * PM_MMAP_THRESHOLD_MAX), trim following at twice it. */
#define PM_DYN_START (128 * PM_KIB)
extern size_t _pm_mmap_dyn; /* 0: not dynamic */
/* The dynamic trim threshold follows from the mmap one (one word, so the
 * two never disagree): equal at the start, twice it once it has moved. */
PM_INLINE size_t dyn_trim(size_t d)
{
    return d > PM_DYN_START ? 2 * d : d;
}
PM_INLINE size_t mmap_threshold(void)
{
    size_t d = __atomic_load_n(&_pm_mmap_dyn, __ATOMIC_RELAXED);
    return d ? d : PM_OPT(mmap_threshold);
}
PM_INLINE size_t trim_threshold(void)
{
    size_t d = __atomic_load_n(&_pm_mmap_dyn, __ATOMIC_RELAXED);
    return d ? dyn_trim(d) : PM_OPT(trim_threshold);
}
/* Start or stop the dynamic thresholds after the settings changed (init
 * and pm_mallopt call it): a threshold the user set stays put. */
void _pm_mmap_dynamic_reset(void);
/* A direct mapping for n bytes aligned to align. bound: within mmap_max
 * (false only for a request no heap can hold). *ok false: refused. */
void *_pm_large_alloc(size_t n, size_t align, bool bound, bool *ok);
void _pm_large_free(pm_chunk_t *c, const char *call, void *p);
void *_pm_large_realloc(pm_chunk_t *c, void *p, size_t n);
/* Is c a live direct mapping? (takes the large lock) */
bool _pm_large_lookup(pm_chunk_t *c, size_t *size, bool *was_freed);
size_t _pm_large_usable(pm_chunk_t *c);
/* Abort for call unless c's head is that of a live mapping of len bytes. */
void _pm_large_check_head(pm_chunk_t *c, size_t len, const char *call, void *p);
/* The user pointer of the live mapping that holds p, or NULL (cold: scans
 * the registry under the large lock). */
void *_pm_large_containing(const void *p);
void _pm_large_stats(size_t *count, size_t *bytes);
/* The live mappings made by threads of arena index (takes the large lock). */
void _pm_large_arena_stats(uint32_t index, size_t *count, size_t *bytes);
int _pm_large_check(void);
void _pm_large_fork_lock(void);
void _pm_large_fork_unlock(bool child);

/* tcache.c */
pm_tcache_t *_pm_tcache_create(void);
void *_pm_tcache_alloc_slow(pm_tcache_t *tc, size_t csize);
bool _pm_tcache_free_slow(pm_tcache_t *tc, pm_chunk_t *c, uint64_t head);
void _pm_tcache_flush_all(pm_tcache_t *tc);
/* A full bin: send its older half back, then push p (key already set). */
PM_COLD void _pm_tcache_push_full(pm_tbin_t *b, void *p);
/* Park p (size bytes, another arena's) for a batched return. */
void _pm_tcache_remote_push(pm_tcache_t *tc, void *p, size_t size);
void _pm_tcache_remote_flush(pm_tcache_t *tc);
void _pm_tcache_stats(size_t *blocks, size_t *bytes);
/* Bytes of the thread caches' own chunks (taken from the arenas). */
size_t _pm_tcache_own_bytes(void);
void _pm_tcache_fork_lock(void);
void _pm_tcache_fork_unlock(bool child);
/* Free a batch of chunks (all owned by pmalloc heaps), grouped by arena. */
void _pm_free_batch(void **ptrs, size_t n);

/* alloc.c / free.c */
void *_pm_alloc_slow(size_t n);
void *_pm_alloc_arena(size_t csize, bool zero);
void _pm_free_slow(void *p);
/* Free the old block of a realloc that moved: to its arena's bins, where
 * it coalesces, not to the cache (a growing block rarely wants its old
 * size back, and parked copies fragment the heap). */
void _pm_free_moved(void *p);
/* pm_free of p (not NULL), reported as call's if p is bad. */
void _pm_free_for(void *p, const char *call);
/* Check p is a live heap chunk for call; returns its chunk, aborts if not. */
pm_chunk_t *_pm_chunk_checked(void *p, const char *call, uint64_t *headp);
PM_COLD __attribute__((noreturn)) void _pm_report_bad(void *p, const char *call, uint64_t head);
/* Level >= 1 helpers */
void _pm_debug_on_alloc(pm_chunk_t *c, int how);
void _pm_debug_fill_free(pm_chunk_t *c); /* level >= 1, on bin insert */
void _pm_debug_on_free(pm_chunk_t *c, const char *call, void *p);
/* Level >= 1: record n as the block's requested size and pad the rest. */
void _pm_debug_set_size(pm_chunk_t *c, size_t n);
void _pm_debug_check_canary(pm_chunk_t *c, const char *call, void *p);
size_t _pm_usable(pm_chunk_t *c, uint64_t head);

/* trim.c */
int _pm_trim_arena(pm_arena_t *a, size_t pad);
/* Unlock a (locked) after a call that entered it: a sweep when one is due
 * (decay_ms 0: the top trimmed past the threshold); the plan is made under
 * the lock, the madvise after it. */
void _pm_arena_unlock_trim(pm_arena_t *a);
/* The same for an arena its last thread just left: it ages like any other
 * where a purger runs; without one, what decay would give back over the
 * next sweeps goes now. */
void _pm_arena_unlock_idle(pm_arena_t *a);
/* In a fork child (a locked): the runs other threads were purging go back
 * to a's bins, unpurged. */
void _pm_out_batches_return(pm_arena_t *a);
/* The sweep period grows at most to this many times decay_ms. */
#define PM_DECAY_STRETCH 64

/* purger.c: the background thread that sweeps arenas nobody calls into */
/* a has something to give back later (its lock not held): start the purger
 * or wake it. False if there is none (setting off, or no thread could be
 * made): then the caller gives idle memory back itself. */
bool _pm_purger_notify(void);
extern int _pm_purger_running; /* atomic: a purger thread runs here */
/* Is a purger thread there (or can one be made) to sweep idle arenas? */
bool _pm_purger_usable(void);
/* In a fork child: no purger runs there until one is needed. */
void _pm_purger_fork_child(void);
/* One visit of the purger to arena a (not locked); returns when a wants
 * its next visit, in ms on the monotonic clock (UINT64_MAX: not before it
 * has something new). trim.c. */
uint64_t _pm_arena_purger_visit(pm_arena_t *a, uint64_t now);

/* stats.c */
/* Bytes held from the OS for heaps and mappings changed by delta: keeps the
 * total and its peak (pm_mallinfo's usmblks). */
void _pm_stats_held(ptrdiff_t delta);
/* That total now (tests compare it with the arenas' and mappings' sums). */
size_t _pm_stats_held_total(void);
/* malloc_info's XML (glibc's shape), piece by piece through out. */
void _pm_stats_xml(void (*out)(void *ctx, const char *s, size_t len), void *ctx);

/* check.c */
int _pm_check_arena(pm_arena_t *a, int fd_report);

#pragma GCC visibility pop
#endif /* PM_HEAP_H */
