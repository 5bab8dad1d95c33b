/*
 * test_hardened.c - the hardened level (PM_HARDENED=1, issue 17) against
 * the scenarios of GrapheneOS hardened_malloc's test suite, in our own
 * words: one case per scenario, each in a re-executed child (tests/common.h:
 * pmt_spawn) with PM_HARDENED=1, and its expected fate: SIGABRT after one
 * "pmalloc: CALL(0xADDR): PROBLEM" line, or a clean exit after the child
 * checked that it survived correctly. Also what the level adds: a header
 * copied from another block fails, a freed block is not the next one handed
 * out, a freed block's bytes are zeroed, and the setting is fixed once
 * anything was allocated.
 */
#define _GNU_SOURCE
#include "../common.h"

/* ---- the children ------------------------------------------------------- */

static int child_double_free(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 32);
    void *g0 = pm_malloc(n), *p = pm_malloc(n), *g1 = pm_malloc(n);
    PMT_REQUIRE(g0 && p && g1, "malloc");
    pm_free(p);
    pmt_sink(p);
    pm_free(p);
    return pmt_survived("second pm_free");
}

static int child_double_free_after_realloc(void)
{
    void *p = pm_malloc(32), *g = pm_malloc(32);
    PMT_REQUIRE(p && g, "malloc");
    void *q = pm_realloc(p, 8000); /* moves: g blocks growth in place */
    PMT_REQUIRE(q != NULL && q != p, "realloc did not move");
    pm_free(p);
    return pmt_survived("pm_free of the block realloc moved");
}

static int child_invalid_free(void)
{
    size_t off = pmt_env_size("PMT_OFFSET", 16);
    unsigned char *p = pm_malloc(64);
    PMT_REQUIRE(p != NULL, "malloc");
    pm_free(p + off);
    return pmt_survived("pm_free(p + offset)");
}

static int child_free_stack(void)
{
    unsigned char buf[256] __attribute__((aligned(64)));
    memset(buf, 0, sizeof buf);
    pm_free(pm_malloc(16));
    pmt_sink(buf);
    pm_free(buf + 64);
    return pmt_survived("pm_free(stack)");
}

/* Memory that is no allocator's (an mmap), or libc's malloc's. */
static int child_free_foreign(void)
{
    pm_free(pm_malloc(16));
    void *q;
    if (strcmp(getenv("PMT_MODE") ? getenv("PMT_MODE") : "", "libc") == 0) {
        q = malloc(64);
    } else {
        unsigned char *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        PMT_REQUIRE(m != MAP_FAILED, "mmap");
        q = m + 4096;
    }
    PMT_REQUIRE(q != NULL, "foreign block");
    pm_free(q);
    return pmt_survived("pm_free(foreign)");
}

/* PMT_OVER bytes past the usable end of a block, into the next chunk;
 * only the overflowing block is freed. */
static int child_overflow(void)
{
    unsigned char *a = pm_malloc(32), *b = pm_malloc(32), *g = pm_malloc(32);
    PMT_REQUIRE(a && b && g, "malloc");
    pmt_scribble(a + pm_malloc_usable_size(a), pmt_env_size("PMT_OVER", 1));
    pm_free(a);
    return pmt_survived("pm_free after an overflow");
}

static int child_underflow(void)
{
    unsigned char *p = pm_malloc(64);
    PMT_REQUIRE(p != NULL, "malloc");
    pmt_scribble(p - 1, 1);
    pm_free(p);
    return pmt_survived("pm_free after an underflow");
}

/* A write to a freed block's first word, then enough frees of the size for
 * the delayed-reuse ring to let it go (each free evicts a random slot of 8:
 * it stays past 400 of them with a chance of (7/8)^400). */
static int child_write_after_free(void)
{
    size_t off = pmt_env_size("PMT_OFFSET", 0);
    unsigned char *p = pm_malloc(64);
    void *g = pm_malloc(64);
    PMT_REQUIRE(p && g, "malloc");
    pm_free(p);
    pmt_scribble(p + off, 8);
    for (int i = 0; i < 400; i++)
        pm_free(pm_malloc(64));
    for (int i = 0; i < 400; i++)
        pmt_sink(pm_malloc(64));
    return pmt_survived("a write after free");
}

/* A freed block's contents are gone (zeroed past its first word, which
 * holds the cache key): survives, having checked that. */
static int child_read_after_free(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 1000);
    unsigned char *p = pm_malloc(n);
    void *g = pm_malloc(n);
    PMT_REQUIRE(p && g, "malloc");
    memset(p, 0x5a, n);
    pm_free(p);
    size_t left = 0;
    for (size_t i = 8; i < n; i++)
        left += ((volatile unsigned char *)p)[i] == 0x5a;
    PMT_REQUIRE(left == 0, "%zu secret bytes still readable after free", left);
    return 0;
}

/* The head of a 4000-byte block copied over a 32-byte block's: at level 0
 * the checksum (no address in it) would pass and the free would give back
 * 4000 bytes over live neighbours. */
static int child_copied_header(void)
{
    unsigned char *a = pm_malloc(32), *g = pm_malloc(32), *b = pm_malloc(4000);
    PMT_REQUIRE(a && g && b, "malloc");
    memcpy(a - 8, b - 8, 8);
    pm_free(a);
    return pmt_survived("pm_free with a copied header");
}

static int child_usable_size_bad(void)
{
    unsigned char *p = pm_malloc(64);
    PMT_REQUIRE(p != NULL, "malloc");
    fprintf(stderr, "pmt: usable %zu\n", pm_malloc_usable_size(p + 16));
    return pmt_survived("pm_malloc_usable_size(p + 16)");
}

static int child_realloc_freed(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 64);
    void *p = pm_malloc(n), *g = pm_malloc(n);
    PMT_REQUIRE(p && g, "malloc");
    pm_free(p);
    pmt_sink(pm_realloc(p, 2 * n));
    return pmt_survived("pm_realloc(freed)");
}

/* Delayed random reuse: a freed block the thread cache takes is never the
 * next one handed out for its size. */
static int child_reuse_delayed(void)
{
    size_t n = pmt_env_size("PMT_SIZE", 64);
    int same = 0;
    for (int i = 0; i < 1000; i++) {
        void *p = pm_malloc(n);
        PMT_REQUIRE(p != NULL, "malloc");
        pm_free(p);
        void *q = pm_malloc(n);
        same += q == p;
        pm_free(q);
    }
    PMT_REQUIRE(same == 0, "the freed block came straight back %d times in 1000", same);
    PMT_REQUIRE(pm_check_heap() == 0, "pm_check_heap");
    return 0;
}

/* Is the page at addr mapped without any access (a guard)? */
static int is_guard_page(uintptr_t addr)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int guard = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && addr >= lo && addr < hi)
            guard = strncmp(perms, "---", 3) == 0;
    }
    if (f)
        fclose(f);
    return guard;
}

/* A direct mapping ends in a guard page, also after mremap grew or shrank
 * it, and the whole usable size stays writable. */
static int child_mapping_guard(void)
{
    size_t n = (size_t)40 << 20, sizes[] = { n, 2 * n, n + n / 2 };
    unsigned char *p = NULL;
    for (size_t i = 0; i < PMT_ARRAY_LEN(sizes); i++) {
        p = i ? pm_realloc(p, sizes[i]) : pm_malloc(sizes[i]);
        PMT_REQUIRE(p != NULL, "allocation %zu", i);
        size_t u = pm_malloc_usable_size(p);
        memset(p, (int)i, u);
        uintptr_t end = ((uintptr_t)p + u + 4095) & ~(uintptr_t)4095;
        PMT_REQUIRE(is_guard_page(end), "no guard page after %zu bytes at %p", u, (void *)p);
    }
    PMT_REQUIRE(pm_check_heap() == 0, "pm_check_heap");
    pm_free(p);
    return 0;
}

/* Settable before the first allocation, EBUSY after (like check). */
static int child_setting_fixed(void)
{
    PMT_REQUIRE(pm_mallopt(PM_HARDENED, 1) == 1, "pm_mallopt before any allocation");
    void *p = pm_malloc(16);
    PMT_REQUIRE(p != NULL, "malloc");
    errno = 0;
    PMT_REQUIRE(pm_mallopt(PM_HARDENED, 0) == 0 && errno == EBUSY, "pm_mallopt after: errno %d",
                errno);
    PMT_REQUIRE(pm_mallopt(PM_HARDENED, 1) == 1, "the value in force, set again");
    unsigned char *a = pm_malloc(32), *b = pm_malloc(4000);
    PMT_REQUIRE(a && b, "malloc");
    pm_free(a);
    pm_free(b);
    pm_free(p);
    return 0;
}

/* ---- the table ---------------------------------------------------------- */



#define H "PM_HARDENED=1"
#define DF { "double free" }
#define INV { "invalid pointer" }
#define OVER { "corrupted chunk header after the block" }

static const pmt_spec_t specs[] = {
    { "double_free_small", "double_free", { H, "PMT_SIZE=32" }, DF, PMT_ABORTS },
    { "double_free_medium", "double_free", { H, "PMT_SIZE=4000" }, DF, PMT_ABORTS },
    { "double_free_large", "double_free", { H, "PMT_SIZE=1048576" }, DF, PMT_ABORTS },
    { "double_free_mapped", "double_free", { H, "PMT_SIZE=67108864" }, DF, PMT_ABORTS },
    { "double_free_after_realloc", "double_free_after_realloc", { H }, DF, PMT_ABORTS },
    { "invalid_free_interior", "invalid_free", { H, "PMT_OFFSET=16" }, INV, PMT_ABORTS },
    { "invalid_free_unaligned", "invalid_free", { H, "PMT_OFFSET=8" }, INV, PMT_ABORTS },
    { "invalid_free_stack", "free_stack", { H }, INV, PMT_ABORTS },
    { "invalid_free_foreign", "free_foreign", { H, "PMT_MODE=mmap" }, INV, PMT_ABORTS },
    { "free_libc_malloc", "free_foreign", { H, "PMT_MODE=libc" }, INV, PMT_ABORTS },
    { "overflow_1_byte", "overflow", { H, "PMT_OVER=1" }, OVER, PMT_ABORTS },
    { "overflow_8_bytes", "overflow", { H, "PMT_OVER=8" }, OVER, PMT_ABORTS },
    { "overflow_64_bytes", "overflow", { H, "PMT_OVER=64" }, OVER, PMT_ABORTS },
    { "underflow_into_header", "underflow", { H }, { "corrupted chunk header" }, PMT_ABORTS },
    { "write_after_free", "write_after_free", { H }, { "write after free" }, PMT_ABORTS },
    { "write_after_free_middle_l1", "write_after_free", { H, "PMT_OFFSET=32", "PM_CHECK=1" },
      { "write after free" }, PMT_ABORTS },
    { "read_after_free", "read_after_free", { H }, { NULL }, PMT_EXITS_0 },
    { "copied_header", "copied_header", { H }, { "corrupted chunk header" }, PMT_ABORTS },
    { "usable_size_bad_pointer", "usable_size_bad", { H }, INV, PMT_ABORTS },
    { "realloc_freed", "realloc_freed", { H }, { "pointer already freed" }, PMT_ABORTS },
    { "realloc_freed_large", "realloc_freed", { H, "PMT_SIZE=100000" },
      { "pointer already freed" }, PMT_ABORTS },
    { "reuse_delayed", "reuse_delayed", { H }, { NULL }, PMT_EXITS_0 },
    { "reuse_delayed_medium", "reuse_delayed", { H, "PMT_SIZE=4000" }, { NULL }, PMT_EXITS_0 },
    { "mapping_guard_page", "mapping_guard", { H }, { NULL }, PMT_EXITS_0 },
    { "mapping_guard_page_l1", "mapping_guard", { H, "PM_CHECK=1" }, { NULL }, PMT_EXITS_0 },
    { "setting_fixed_after_first_allocation", "setting_fixed", { NULL }, { NULL }, PMT_EXITS_0 },
};

static const pmt_case_t cases[] = {
    { "double_free", child_double_free },
    { "double_free_after_realloc", child_double_free_after_realloc },
    { "invalid_free", child_invalid_free },
    { "free_stack", child_free_stack },
    { "free_foreign", child_free_foreign },
    { "overflow", child_overflow },
    { "underflow", child_underflow },
    { "write_after_free", child_write_after_free },
    { "read_after_free", child_read_after_free },
    { "copied_header", child_copied_header },
    { "usable_size_bad", child_usable_size_bad },
    { "realloc_freed", child_realloc_freed },
    { "reuse_delayed", child_reuse_delayed },
    { "mapping_guard", child_mapping_guard },
    { "setting_fixed", child_setting_fixed },
};

int main(int argc, char **argv)
{
    pmt_child_dispatch(argc, argv, cases, PMT_ARRAY_LEN(cases));
    enum { N = PMT_ARRAY_LEN(specs) };
    static struct CMUnitTest tests[N];
    for (size_t i = 0; i < N; i++)
        tests[i] = (struct CMUnitTest){
            .name = specs[i].name,
            .test_func = pmt_run_spec,
            .initial_state = (void *)&specs[i],
        };
    return _cmocka_run_group_tests("test_hardened", tests, N, NULL, NULL);
}
