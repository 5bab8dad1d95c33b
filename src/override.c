/*
 * override.c - glibc's malloc names whose meaning differs from the pm_*
 * function of that name, for libpmalloc-override only (alloc.c and free.c
 * give the others as aliases: PM_GLIBC_NAME). glibc 2.36's semantics:
 * memalign rounds its alignment up, mallopt takes glibc's M_* numbers and
 * rejects only what glibc rejects, malloc_info writes glibc's XML.
 */
#include "heap.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#define PM_EXPORT __attribute__((visibility("default")))

/* Why: glibc's declarations carry malloc, alloc_size and the like, which
 * the __libc_* aliases below need not repeat. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmissing-attributes"
#endif

/* glibc's M_* numbers not in pmalloc.h (the others are the same). */
#define PM_M_MXFAST       1
#define PM_M_CHECK_ACTION (-5)
#define PM_M_ARENA_TEST   (-7)
#define PM_M_MXFAST_MAX   160 /* glibc's MAX_FAST_SIZE on 64-bit */

PM_EXPORT void *reallocarray(void *p, size_t nmemb, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(nmemb, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return pm_realloc(p, n);
}

PM_EXPORT void *memalign(size_t align, size_t n)
{
    /* Why: glibc takes any alignment up to half the address space, rounded
     * up to a power of two; pm_memalign takes powers of two only. */
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= PM_ALIGNMENT)
        return pm_malloc(n);
    if (align & (align - 1))
        align = (size_t)1 << (64 - __builtin_clzl(align));
    return pm_memalign(align, n);
}
PM_EXPORT void *__libc_memalign(size_t align, size_t n) __attribute__((alias("memalign")));
/* Why the same as memalign: glibc 2.36's aligned_alloc is its memalign. */
PM_EXPORT void *aligned_alloc(size_t align, size_t n) __attribute__((alias("memalign")));

PM_EXPORT void *valloc(size_t n)
{
    return pm_memalign(_pm_os_page_size(), n);
}
PM_EXPORT void *__libc_valloc(size_t n) __attribute__((alias("valloc")));

PM_EXPORT void *pvalloc(size_t n)
{
    size_t page = _pm_os_page_size(), r;
    if (__builtin_add_overflow(n, page - 1, &r)) {
        errno = ENOMEM;
        return NULL;
    }
    return pm_memalign(page, r & ~(page - 1));
}
PM_EXPORT void *__libc_pvalloc(size_t n) __attribute__((alias("pvalloc")));

/* C23's sized frees: the size and alignment are not needed. */
PM_EXPORT void free_sized(void *p, size_t size)
{
    (void)size;
    pm_free(p);
}

PM_EXPORT void free_aligned_sized(void *p, size_t align, size_t size)
{
    (void)align;
    (void)size;
    pm_free(p);
}

PM_EXPORT int mallopt(int param, int value)
{
    int saved = errno, r;
    switch (param) {
    case PM_M_MXFAST:
        /* Why accept and ignore: pmalloc has no fast bins (its thread cache
         * plays their part); glibc rejects only sizes above its maximum. */
        r = value >= 0 && value <= PM_M_MXFAST_MAX;
        break;
    case PM_M_CHECK_ACTION:
    case PM_M_ARENA_TEST:
        r = 1; /* glibc accepts and (2.34 on: check action) ignores them */
        break;
    case PM_TRIM_THRESHOLD:
        /* Why the largest: glibc reads -1 (any negative) as never trim. */
        r = pm_mallopt(param, value < 0 ? INT32_MAX : value);
        break;
    case PM_TOP_PAD:
        /* glibc takes any pad; pmalloc's range stops at 32 MiB. */
        r = pm_mallopt(param, value < 0 || (size_t)value > PM_MMAP_THRESHOLD_MAX
                                  ? (int)PM_MMAP_THRESHOLD_MAX : value);
        break;
    case PM_MMAP_MAX:
        r = pm_mallopt(param, value < 0 ? 0 : value); /* negative: never, as glibc */
        break;
    case PM_ARENA_MAX:
        /* Why 1 for 0 and less: glibc ignores them and says yes. */
        r = value > 0 ? pm_mallopt(param, value > 1024 ? 1024 : value) : 1;
        break;
    case PM_PERTURB:
        /* Why 1 even when pmalloc can no longer change it (EBUSY, once
         * blocks are out): glibc always says yes. Set PM_PERTURB instead. */
        (void)pm_mallopt(param, value & 0xff);
        r = 1;
        break;
    case PM_MMAP_THRESHOLD:
        /* Why the largest for more and for negatives: glibc 2.36 takes any
         * threshold; pmalloc's stops at 32 MiB (a heap serves no more). */
        r = pm_mallopt(param, value < 0 || (size_t)value > PM_MMAP_THRESHOLD_MAX
                                  ? (int)PM_MMAP_THRESHOLD_MAX : value);
        break;
    default:
        /* Why: pmalloc's own parameters work under glibc's name too; any
         * other number glibc accepts and ignores. */
        if (param <= PM_CHECK && param >= -199) {
            r = pm_mallopt(param, value);
            if (r)
                errno = saved;
            return r;
        }
        r = 1;
    }
    if (r)
        errno = saved;
    return r;
}
PM_EXPORT int __libc_mallopt(int param, int value) __attribute__((alias("mallopt")));

PM_EXPORT struct mallinfo2 mallinfo2(void)
{
    struct pm_mallinfo m = pm_mallinfo();
    return (struct mallinfo2){.arena = m.arena, .ordblks = m.ordblks, .smblks = m.smblks,
                              .hblks = m.hblks, .hblkhd = m.hblkhd, .usmblks = m.usmblks,
                              .fsmblks = m.fsmblks, .uordblks = m.uordblks,
                              .fordblks = m.fordblks, .keepcost = m.keepcost};
}

/* glibc's old mallinfo: int fields, which wrap as glibc's do. */
PM_EXPORT struct mallinfo mallinfo(void)
{
    struct mallinfo2 m = mallinfo2();
    return (struct mallinfo){.arena = (int)m.arena, .ordblks = (int)m.ordblks,
                             .smblks = (int)m.smblks, .hblks = (int)m.hblks,
                             .hblkhd = (int)m.hblkhd, .usmblks = (int)m.usmblks,
                             .fsmblks = (int)m.fsmblks, .uordblks = (int)m.uordblks,
                             .fordblks = (int)m.fordblks, .keepcost = (int)m.keepcost};
}
PM_EXPORT struct mallinfo __libc_mallinfo(void) __attribute__((alias("mallinfo")));

PM_EXPORT void malloc_stats(void)
{
    pm_malloc_stats();
}

PM_EXPORT int malloc_trim(size_t pad)
{
    return pm_malloc_trim(pad);
}

static void info_out(void *fp, const char *s, size_t len)
{
    fwrite(s, 1, len, fp);
}

PM_EXPORT int malloc_info(int options, FILE *fp)
{
    if (options != 0)
        return EINVAL; /* as glibc: the error is the result, errno untouched */
    /* Why stdio here: the program hands us its FILE; no allocator lock is
     * held while it writes (each piece is formatted first). */
    _pm_stats_xml(info_out, fp);
    return 0;
}
