/* SPDX-License-Identifier: MIT */
/*
 * tuning.c - demo: tune pmalloc from the program with pm_mallopt, check
 * every return value, and show what each setting does: where a 200 KiB
 * block comes from under two mmap thresholds, when freed memory goes back
 * to the OS under two trim thresholds, and how a bad value is refused.
 *
 *   ./examples/tuning
 *
 * Exits 0 when every call and every effect is as documented, 1 otherwise.
 * pm_mallopt outranks the environment and the ini file, and the demo sets
 * every setting (each one in the table), so PM_* variables change none of its
 * numbers; the settings dump at the end proves that each came from
 * pm_mallopt.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pmalloc.h"

#define KIB 1024
#define MIB (1024 * 1024)

#define TRIM_BLOCKS     64        /* blocks allocated then freed in the trim demo */
#define TRIM_BLOCK_SIZE (48 * KIB) /* above the thread cache, below mmap          */

static int surprises;

static const char *errno_name(int e)
{
    switch (e) {
    case 0: return "0";
    case EINVAL: return "EINVAL";
    case ERANGE: return "ERANGE";
    case EBUSY: return "EBUSY";
    case ENOMEM: return "ENOMEM";
    default: return "other";
    }
}

/* A setting the program depends on: report and count a refusal. */
static void set_or_complain(const char *what, int param, int value)
{
    errno = 0;
    if (pm_mallopt(param, value) == 1) {
        printf("  pm_mallopt(%s, %d) = 1\n", what, value);
        return;
    }
    printf("  pm_mallopt(%s, %d) = 0, errno %s (%s)  <-- unexpected\n", what, value,
           errno_name(errno), strerror(errno));
    surprises++;
}

/* A value that must be refused with errno want. */
static void expect_refusal(const char *what, int param, int value, int want, const char *why)
{
    int rc;

    errno = 0;
    rc = pm_mallopt(param, value);
    int err = errno;
    printf("  pm_mallopt(%s, %d) = %d, errno %s (%s): %s%s\n", what, value, rc,
           errno_name(err), strerror(err), why,
           rc == 0 && err == want ? "" : "  <-- unexpected");
    if (rc != 0 || err != want)
        surprises++;
}

static void expect(int ok, const char *claim)
{
    printf("    -> %s%s\n", claim, ok ? "" : "  <-- NOT SO");
    if (!ok)
        surprises++;
}

/* Allocate a 200 KiB block and say whether it became its own mapping. */
static void show_large_block(int threshold)
{
    struct pm_mallinfo before, during, after;
    void *p;

    set_or_complain("PM_MMAP_THRESHOLD", PM_MMAP_THRESHOLD, threshold);
    before = pm_mallinfo();
    p = pm_malloc(200 * KIB);
    during = pm_mallinfo();
    pm_free(p);
    after = pm_mallinfo();
    printf("  200 KiB block: hblks %zu -> %zu -> %zu after free, hblkhd %zu -> %zu\n",
           before.hblks, during.hblks, after.hblks, before.hblkhd, during.hblkhd);
    if (threshold > 200 * KIB) {
        expect(p && during.hblks == before.hblks, "served from an arena heap (no new mapping)");
    } else {
        expect(p && during.hblks == before.hblks + 1 &&
                   during.hblkhd >= before.hblkhd + 200 * KIB && after.hblks == before.hblks,
               "its own mapping, unmapped again by pm_free");
    }
}

/* Fill a heap with TRIM_BLOCKS blocks, free them all, and report how much
 * the heaps hold before and after. Returns the bytes held after the free. */
static size_t fill_and_free(void)
{
    void *blocks[TRIM_BLOCKS];
    struct pm_mallinfo full, freed;

    for (int i = 0; i < TRIM_BLOCKS; i++)
        blocks[i] = pm_malloc(TRIM_BLOCK_SIZE);
    full = pm_mallinfo();
    for (int i = 0; i < TRIM_BLOCKS; i++)
        pm_free(blocks[i]);
    freed = pm_mallinfo();
    printf("  %d x %d KiB allocated: heap bytes %zu; all freed: heap bytes %zu, top %zu\n",
           TRIM_BLOCKS, TRIM_BLOCK_SIZE / KIB, full.arena, freed.arena, freed.keepcost);
    return freed.arena;
}

/* Whether every setting line of the dump names pm_mallopt as its source. */
static int all_from_mallopt(void)
{
    FILE *f = tmpfile();
    char line[512];
    int settings = 0, ours = 0;

    if (!f || pm_config_dump(fileno(f), PM_DUMP_TEXT) != 0) {
        perror("tuning: pm_config_dump to a temporary file");
        if (f)
            fclose(f);
        return 0;
    }
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "  ", 2) != 0 || !strstr(line, " = "))
            continue;
        settings++;
        if (strstr(line, "(pm_mallopt"))
            ours++;
        else
            printf("    not from pm_mallopt: %s", line);
    }
    fclose(f);
    printf("  %d of %d settings from pm_mallopt\n", ours, settings);
    return settings > 0 && ours == settings;
}

int main(void)
{
    struct pm_mallinfo mi;
    size_t held_low, held_high;
    int trimmed;

    /* Line by line even into a pipe, so that pmalloc's own lines on stderr
     * land between the right lines of this output. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("1. settings made at start-up, before the first allocation\n");
    set_or_complain("PM_ARENA_MAX", PM_ARENA_MAX, 2);
    set_or_complain("PM_MMAP_THRESHOLD", PM_MMAP_THRESHOLD, 256 * KIB);
    set_or_complain("PM_TRIM_THRESHOLD", PM_TRIM_THRESHOLD, 64 * KIB);
    /* Why: the default (10 ms) gives memory back once it sat unused that
     * long; 0 makes the trim threshold act on the free itself, as glibc. */
    set_or_complain("PM_DECAY_MS", PM_DECAY_MS, 0);
    /* The numbers below also depend on these; pinned to their defaults so
     * that PM_* variables in the environment cannot change the story. */
    set_or_complain("PM_TOP_PAD", PM_TOP_PAD, 128 * KIB);
    set_or_complain("PM_MMAP_MAX", PM_MMAP_MAX, 65536);
    set_or_complain("PM_TCACHE_MAX", PM_TCACHE_MAX, 32 * KIB);
    set_or_complain("PM_TCACHE_COUNT", PM_TCACHE_COUNT, 128);
    set_or_complain("PM_MMAP_DYNAMIC", PM_MMAP_DYNAMIC, 0); /* the thresholds stay put */
    set_or_complain("PM_THP", PM_THP, 0);
    /* Why on: the thread that gives back memory nobody calls for; with
     * decay_ms 0 above it has nothing to do and is never started. */
    set_or_complain("PM_BACKGROUND_THREAD", PM_BACKGROUND_THREAD, 1);
    set_or_complain("PM_HARDENED", PM_HARDENED, 0); /* before the first allocation only */
    set_or_complain("PM_SHOW_STATS", PM_SHOW_STATS, 0); /* no statistics at exit */
    /* Why a fill byte: fresh and freed blocks are filled, so a use of
     * uninitialised or freed memory reads the fill, not what was there. */
    set_or_complain("PM_PERTURB", PM_PERTURB, 0xa5);
    /* Why "warn" (0): a bad setting in the file or the environment is
     * reported and ignored; pm_mallopt itself never aborts. */
    set_or_complain("PM_ON_BAD_CONFIG", PM_ON_BAD_CONFIG, 0);
    /* The settings were printed, if at all, at init (the first call above). */
    set_or_complain("PM_PRINT_CONFIG", PM_PRINT_CONFIG, 0);
    /* Level 0 of the checks; the level is fixed from the first allocation
     * on (part 4). */
    set_or_complain("PM_CHECK", PM_CHECK, 0);

    printf("\n2. the mmap threshold decides where a 200 KiB block comes from\n");
    printf("  threshold raised to 256 KiB:\n");
    show_large_block(256 * KIB);
    printf("  threshold lowered to 64 KiB (it applies to the next request):\n");
    show_large_block(64 * KIB);

    printf("\n3. the trim threshold decides when freed memory goes back to the OS\n");
    printf("  trim threshold 64 KiB:\n");
    held_low = fill_and_free();
    set_or_complain("PM_TRIM_THRESHOLD", PM_TRIM_THRESHOLD, 64 * MIB);
    printf("  trim threshold 64 MiB:\n");
    held_high = fill_and_free();
    expect(held_high > held_low, "with the high threshold the freed memory stays in the heap");
    trimmed = pm_malloc_trim(0);
    mi = pm_mallinfo();
    printf("  pm_malloc_trim(0) = %d: heap bytes %zu, top %zu\n", trimmed, mi.arena, mi.keepcost);
    expect(trimmed == 1 && mi.arena < held_high, "an explicit trim gives it back anyway");

    printf("\n4. values pmalloc refuses (the setting in force does not change)\n");
    expect_refusal("PM_ARENA_MAX", PM_ARENA_MAX, 0, ERANGE, "at least one arena");
    expect_refusal("PM_MMAP_THRESHOLD", PM_MMAP_THRESHOLD, -1, ERANGE, "negative size");
    expect_refusal("12345", 12345, 1, EINVAL, "no such parameter");
    /* Asking for the level already in force changes nothing and succeeds:
     * ask for 2, and for 1 if 2 is what PM_CHECK already says. */
    errno = 0;
    if (pm_mallopt(PM_CHECK, 2) == 1) {
        printf("  pm_mallopt(PM_CHECK, 2) = 1: level 2 already in force, no change\n");
        expect_refusal("PM_CHECK", PM_CHECK, 1, EBUSY,
                       "the check level is fixed once memory is handed out");
    } else {
        int err = errno;
        printf("  pm_mallopt(PM_CHECK, 2) = 0, errno %s (%s): the check level is fixed once "
               "memory is handed out%s\n", errno_name(err), strerror(err),
               err == EBUSY ? "" : "  <-- unexpected");
        if (err != EBUSY)
            surprises++;
    }

    printf("\n5. the settings in force and where each came from:\n");
    fflush(stdout);
    if (pm_config_dump(STDOUT_FILENO, PM_DUMP_TEXT) != 0) {
        perror("tuning: pm_config_dump");
        surprises++;
    }
    expect(all_from_mallopt(), "every setting came from pm_mallopt (part 1 set each one)");
    if (pm_check_heap() != 0)
        surprises++;
    printf("\n%s\n", surprises ? "tuning: something did not behave as documented"
                               : "tuning: every setting behaved as documented");
    return surprises ? 1 : 0;
}
