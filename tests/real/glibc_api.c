/*
 * glibc_api.c - a plain C program (malloc & co., no pmalloc header) that
 * test_programs.sh runs with and without pmalloc preloaded. "api" prints
 * what glibc 2.36's semantics say about each call, which must read the same
 * under both; "overflow" writes past a block (PM_CHECK=1 must catch it);
 * "nommap" asks for 64 MiB and more after mallopt(M_MMAP_MAX, 0); "mlock"
 * allocates a few MiB after mlockall(MCL_FUTURE) under an 8 MiB limit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static void api(void)
{
    void *p = malloc(0);
    printf("malloc(0): %s\n", p ? "pointer" : "NULL");
    errno = 0;
    void *q = realloc(p, 0);
    printf("realloc(p, 0): %s errno %d\n", q ? "pointer" : "NULL", errno);
    free(q);
    q = realloc(NULL, 0);
    printf("realloc(NULL, 0): %s\n", q ? "pointer" : "NULL");
    free(q);
    size_t aligns[] = {1, 8, 16, 24, 48, 64, 100, 4096, 5000};
    for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
        size_t a = aligns[i], want = 1;
        while (want < a)
            want <<= 1;
        void *m = memalign(a, 100), *aa = aligned_alloc(a, 100);
        printf("memalign(%zu): %s; aligned_alloc: %s\n", a,
               m && (uintptr_t)m % want == 0 ? "aligned" : "bad",
               aa && (uintptr_t)aa % want == 0 ? "aligned" : "bad");
        free(m);
        free(aa);
        void *pm = NULL;
        int r = posix_memalign(&pm, a, 100);
        printf("posix_memalign(%zu): %d\n", a, r);
        free(pm);
    }
    /* volatile: sizes the compiler must not see (it warns, rightly). */
    volatile size_t huge = SIZE_MAX, half = SIZE_MAX / 2;
    errno = 0;
    void *r1 = memalign(half + 2, 10);
    printf("memalign(huge): %s errno %d\n", r1 ? "pointer" : "NULL", errno);
    errno = 0;
    r1 = malloc(huge);
    printf("malloc(SIZE_MAX): %s errno %d\n", r1 ? "pointer" : "NULL", errno);
    errno = 0;
    r1 = calloc(half, 3);
    printf("calloc overflow: %s errno %d\n", r1 ? "pointer" : "NULL", errno);
    errno = 0;
    r1 = reallocarray(NULL, half, 3);
    printf("reallocarray overflow: %s errno %d\n", r1 ? "pointer" : "NULL", errno);
    long page = sysconf(_SC_PAGESIZE);
    void *v = valloc(10), *pv = pvalloc(10);
    printf("valloc: %s; pvalloc: %s, usable >= page: %d\n",
           v && (uintptr_t)v % page == 0 ? "page-aligned" : "bad",
           pv && (uintptr_t)pv % page == 0 ? "page-aligned" : "bad",
           pv && malloc_usable_size(pv) >= (size_t)page);
    free(v);
    free(pv);
    char *s = malloc(100);
    printf("usable >= 100: %d; usable(NULL) %zu\n", malloc_usable_size(s) >= 100,
           malloc_usable_size(NULL));
    free(s);
    /* glibc's M_* numbers: 1 MXFAST, -1 TRIM_THRESHOLD, -2 TOP_PAD,
     * -3 MMAP_THRESHOLD, -4 MMAP_MAX, -5 CHECK_ACTION, -6 PERTURB,
     * -7 ARENA_TEST, -8 ARENA_MAX, and numbers glibc does not know. */
    int params[][2] = {{M_MXFAST, 64}, {M_MXFAST, 161}, {M_MXFAST, -1},
                       {M_TRIM_THRESHOLD, -1}, {M_TRIM_THRESHOLD, 1 << 20},
                       {M_TOP_PAD, 1 << 16}, {M_TOP_PAD, -5},
                       {M_MMAP_THRESHOLD, 1 << 20}, {M_MMAP_THRESHOLD, 64 << 20},
                       {M_MMAP_THRESHOLD, -1}, {M_MMAP_MAX, 1000}, {M_CHECK_ACTION, 3},
                       {M_PERTURB, 0}, {M_ARENA_TEST, 4}, {M_ARENA_TEST, 0},
                       {M_ARENA_MAX, 8}, {M_ARENA_MAX, 0}, {M_ARENA_MAX, -3}, {2, 5},
                       {77, 1}, {-42, 1}};
    for (size_t i = 0; i < sizeof params / sizeof *params; i++)
        printf("mallopt(%d, %d) = %d\n", params[i][0], params[i][1],
               mallopt(params[i][0], params[i][1]));
    struct mallinfo2 mi = mallinfo2();
    printf("mallinfo2: arena > 0 or hblkhd > 0: %d\n", mi.arena + mi.hblkhd > 0);
    printf("malloc_trim: %d\n", malloc_trim(0) >= 0);
    errno = 0;
    int r0 = malloc_info(1, stdout);
    printf("malloc_info(1): %d errno %d\n", r0, errno);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int r = malloc_info(0, f);
    fclose(f);
    char *last = buf && len > 1 ? buf + len - 2 : buf;
    while (last && last > buf && last[-1] != '\n')
        last--;
    printf("malloc_info(0): %d, first <malloc version=\"1\">: %d, <heap nr=\"0\">: %d, "
           "mmap total: %d, last %s",
           r, strncmp(buf, "<malloc version=\"1\">\n", 21) == 0,
           strstr(buf, "<heap nr=\"0\">") != NULL, strstr(buf, "<total type=\"mmap\"") != NULL,
           last);
    free(buf);
}

static int nommap(void)
{
    if (mallopt(M_MMAP_MAX, 0) != 1)
        return 2;
    size_t sizes[] = {40 << 20, 64 << 20, 100 << 20, 300 << 20};
    for (int i = 0; i < 4; i++) {
        char *p = malloc(sizes[i]);
        if (!p) {
            printf("malloc(%zu MiB) failed\n", sizes[i] >> 20);
            return 1;
        }
        memset(p, 1, sizes[i]);
        p = realloc(p, sizes[i] + (8 << 20));
        if (!p || p[sizes[i] - 1] != 1)
            return 1;
        free(p);
        void *a = memalign(1 << 20, sizes[i]);
        if (!a || (uintptr_t)a % (1 << 20))
            return 1;
        free(a);
        printf("M_MMAP_MAX 0: %zu MiB served\n", sizes[i] >> 20);
    }
    return 0;
}

/* mlockall(MCL_FUTURE) under the default 8 MiB RLIMIT_MEMLOCK, then about
 * 6 MiB in blocks of 1 MiB and of a few KiB: glibc serves it. */
static int mlocked(void)
{
    struct rlimit r = {8 << 20, 8 << 20};
    if (setrlimit(RLIMIT_MEMLOCK, &r) != 0 || mlockall(MCL_FUTURE) != 0) {
        printf("no mlockall here\n");
        return 77;
    }
    size_t total = 0;
    for (int i = 0; i < 24; i++) {
        size_t s = i % 4 == 0 ? 1 << 20 : 1000 + (size_t)i * 100;
        char *p = malloc(s);
        if (!p) {
            printf("malloc(%zu) failed after %zu bytes\n", s, total);
            return 1;
        }
        memset(p, 1, s);
        total += s;
    }
    printf("mlockall(MCL_FUTURE): %zu bytes served\n", total);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "api";
    if (strcmp(mode, "api") == 0) {
        api();
        return 0;
    }
    if (strcmp(mode, "nommap") == 0)
        return nommap();
    if (strcmp(mode, "mlock") == 0)
        return mlocked();
    if (strcmp(mode, "overflow") == 0) {
        char *volatile p = malloc(40);
        memset(p, 'x', malloc_usable_size(p) + 8); /* 8 bytes past the block */
        free(p);
        puts("overflow not caught");
        return 0;
    }
    return 2;
}
