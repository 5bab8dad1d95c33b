/* SPDX-License-Identifier: MIT */
/*
 * pmalloc.h - public interface of pmalloc, a thread-safe arena allocator.
 *
 * Every call is safe from any thread. The first call of any pm_* function
 * initialises the allocator (pm_init); settings come from, lowest to highest
 * priority: built-in defaults, the ini file (PM_CONFIG), the environment
 * (PM_*), and pm_mallopt().
 */
#ifndef PMALLOC_H
#define PMALLOC_H

#include <stddef.h>

#include "pmalloc_version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the compiler is told about the allocation functions, as glibc tells
 * it about malloc & co.: the result aliases nothing (malloc), its size and
 * alignment (alloc_size, alloc_align: _FORTIFY_SOURCE and
 * -Wstringop-overflow check the uses), its deallocator (GCC 11+:
 * -Wmismatched-dealloc), and a warning when the result is dropped (as glibc:
 * always for realloc, with _FORTIFY_SOURCE for the others). Each only where
 * the compiler has it. PM_NO_ALLOC_ATTRIBUTES, defined before the include,
 * drops them: for pmalloc's own sources, which read the chunk around a
 * block, and its misuse tests, which do on purpose what they warn about. */
#if defined(__has_attribute) && !defined(PM_NO_ALLOC_ATTRIBUTES)
#define PM__HAS_ATTR(x) __has_attribute(x)
#else
#define PM__HAS_ATTR(x) 0
#endif
#if PM__HAS_ATTR(__malloc__)
#define PM__MALLOC __attribute__((__malloc__))
#else
#define PM__MALLOC
#endif
#if PM__HAS_ATTR(__alloc_size__)
#define PM__SIZE(...) __attribute__((__alloc_size__(__VA_ARGS__)))
#else
#define PM__SIZE(...)
#endif
#if PM__HAS_ATTR(__alloc_align__)
#define PM__ALIGN(n) __attribute__((__alloc_align__(n)))
#else
#define PM__ALIGN(n)
#endif
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && !defined(PM_NO_ALLOC_ATTRIBUTES)
#define PM__DEALLOC __attribute__((__malloc__(pm_free, 1)))
#else
#define PM__DEALLOC
#endif
#if PM__HAS_ATTR(__warn_unused_result__)
#define PM__WUR_ALWAYS __attribute__((__warn_unused_result__))
#else
#define PM__WUR_ALWAYS
#endif
#if defined(_FORTIFY_SOURCE) && _FORTIFY_SOURCE > 0
#define PM__WUR PM__WUR_ALWAYS
#else
#define PM__WUR
#endif

/* pm_mallopt() parameters. The first six carry glibc's M_* numbers so that a
 * preload build can honour mallopt() calls that programs already make. */
#define PM_TRIM_THRESHOLD  (-1)   /* free top above this many bytes is trimmed      */
#define PM_TOP_PAD         (-2)   /* extra bytes taken when a heap's top grows      */
#define PM_MMAP_THRESHOLD  (-3)   /* requests >= this many bytes get their own mmap */
#define PM_MMAP_MAX        (-4)   /* most chunks mmapped directly at once           */
#define PM_PERTURB         (-6)   /* fill byte for fresh and freed blocks (0 = off) */
#define PM_ARENA_MAX       (-8)   /* most arenas ever created                       */
#define PM_CHECK           (-100) /* integrity-check level 0, 1 or 2                */
#define PM_TCACHE_COUNT    (-101) /* blocks per size class in a thread cache (0=off)*/
#define PM_TCACHE_MAX      (-102) /* largest request served by the thread cache    */
#define PM_ON_BAD_CONFIG   (-103) /* 0 warn, 1 quiet, 2 abort                       */
#define PM_PRINT_CONFIG    (-104) /* 1: print the settings in force at init         */
#define PM_THP             (-105) /* 1: huge pages for direct mappings >= 2 MiB     */
#define PM_MMAP_DYNAMIC    (-106) /* 1: glibc's rising mmap threshold (default 0)   */
#define PM_DECAY_MS        (-107) /* free memory unused this long goes to the OS    */
#define PM_HARDENED        (-108) /* 1: checks against attacks (before 1st alloc)   */
#define PM_SHOW_STATS      (-109) /* 1: pm_malloc_stats on stderr at exit          */
#define PM_BACKGROUND_THREAD (-110) /* 1: a thread gives idle memory back (default) */

/* pm_config_dump() formats. */
#define PM_DUMP_TEXT 0
#define PM_DUMP_JSON 1

/* Statistics, the fields of glibc's mallinfo2 plus the number of arenas and
 * the allocator's own bytes. As glibc's, the arena heaps add up:
 * arena == uordblks + fordblks + overhead (fsmblks is part of fordblks). */
struct pm_mallinfo {
    size_t arena;    /* bytes of arena heaps held from the OS and resident
                      * or may be: pages given back to the OS (purged
                      * free runs, trimmed tops) are left out          */
    size_t ordblks;  /* free chunks in the arena bins                    */
    size_t smblks;   /* free blocks parked in thread caches              */
    size_t hblks;    /* chunks currently mmapped directly                */
    size_t hblkhd;   /* bytes in those chunks                            */
    size_t usmblks;  /* peak of arena + hblkhd (bytes)                   */
    size_t fsmblks;  /* bytes in blocks parked in thread caches, each at
                      * its cache class's size (a block may be up to a
                      * quarter bigger: the excess reads as in use);
                      * counted in fordblks too, as glibc's fastbins    */
    size_t uordblks; /* bytes in use by the program (chunk sizes, heap
                      * chunks only: hblkhd has the direct mappings)   */
    size_t fordblks; /* bytes free in the arena heaps (bins, tops,
                      * stashes, thread caches' parked blocks), less the
                      * pages given back                               */
    size_t keepcost; /* bytes in the top chunks, releasable by trimming  */
    size_t narenas;  /* arenas created                                   */
    size_t overhead; /* bytes of the arena heaps pmalloc uses itself: heap
                      * headers, arena structures, and the thread caches
                      * (one per thread that allocated, ~26 KiB each)   */
};

/* free(3): NULL is ignored; a pointer pmalloc did not hand out, or one that
 * is already free, is reported on stderr and the process aborts. */
void   pm_free(void *ptr);
/* malloc(3): NULL with errno ENOMEM when the request cannot be satisfied. */
void  *pm_malloc(size_t size) PM__MALLOC PM__SIZE(1) PM__DEALLOC PM__WUR;
/* calloc(3): overflow of nmemb * size returns NULL with ENOMEM. */
void  *pm_calloc(size_t nmemb, size_t size) PM__MALLOC PM__SIZE(1, 2) PM__DEALLOC PM__WUR;
/* realloc(3): grows in place when it can; realloc(p, 0) frees p and returns
 * NULL; on failure p is untouched and NULL is returned with ENOMEM. */
void  *pm_realloc(void *ptr, size_t size) PM__SIZE(2) PM__WUR_ALWAYS;
/* memalign(3): alignment must be a power of two, else NULL with EINVAL. */
void  *pm_memalign(size_t alignment, size_t size)
    PM__MALLOC PM__ALIGN(1) PM__SIZE(2) PM__DEALLOC PM__WUR;
/* posix_memalign(3): returns 0, EINVAL (alignment not a power of two times
 * sizeof(void *)) or ENOMEM; *memptr is untouched on error. */
int    pm_posix_memalign(void **memptr, size_t alignment, size_t size) PM__WUR;
/* aligned_alloc(3): alignment must be a power of two, else NULL/EINVAL. */
void  *pm_aligned_alloc(size_t alignment, size_t size)
    PM__MALLOC PM__ALIGN(1) PM__SIZE(2) PM__DEALLOC PM__WUR;
/* Bytes usable at ptr (>= the size asked for); 0 for NULL. */
size_t pm_malloc_usable_size(void *ptr);
/* mallopt(3): 1 on success; 0 with errno EINVAL (unknown parameter), ERANGE
 * (value out of range) or EBUSY (the change can no longer take effect). */
int    pm_mallopt(int param, int value);
/* Flush the calling thread's cache and give free memory above pad bytes per
 * heap back to the OS. Returns 1 if any memory was given back. As glibc's,
 * it may say 1 again for free runs under 64 KiB given back before: only
 * bigger runs remember that their pages went back. */
int    pm_malloc_trim(size_t pad);
/* On stderr, one line per arena and per large companion (heap, in use, free,
 * top, mmapped: the direct mappings its threads made, and more) and a total
 * line. */
void   pm_malloc_stats(void);
/* Initialise; idempotent and thread-safe. Returns 0; -1 with errno EBUSY
 * only when called back from inside the init itself (a libc function it
 * calls, replaced by the program or preloaded), where allocating calls are
 * served by direct mappings and pm_mallopt fails with EBUSY. */
int    pm_init(void);
struct pm_mallinfo pm_mallinfo(void);

/* Walk every arena, heap, bin and direct mapping and check all invariants.
 * Returns 0, or -1 after writing one "pmalloc:" line per problem. */
int    pm_check_heap(void);
/* Write every setting with its value, default and source to fd, as text
 * (PM_DUMP_TEXT) or JSON (PM_DUMP_JSON). Returns 0, or -1 with errno. */
int    pm_config_dump(int fd, int format);
/* The version of the library actually loaded ("0.1.0"); PM_VERSION_STRING is
 * the version of the headers the program was compiled with. */
const char *pm_version(void);

#ifdef __cplusplus
}
#endif
#endif /* PMALLOC_H */
