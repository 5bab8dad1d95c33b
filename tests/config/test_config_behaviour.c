/* SPDX-License-Identifier: MIT */
/*
 * test_config_behaviour.c - the precedence matrix proved by what the
 * allocator does, through the public API only, for arena_max,
 * mmap_threshold and trim_threshold: default, then an ini file, then the
 * environment over the file, then pm_mallopt over the environment. Each
 * step runs in a re-executed child (tests/common.h) whose PM_CONFIG / PM_*
 * are set before its first pm_* call; the child also checks that
 * pm_config_dump names the source in force. Test parameters reach the child
 * as PMCFG_* variables (not PM_*, which are pmalloc's).
 */
#define _GNU_SOURCE
#include "../common.h"

#include <pthread.h>
#include <sys/mman.h>

/* ---- inside the children --------------------------------------------------- */

static size_t env_size(const char *name, size_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? (size_t)strtoull(v, NULL, 0) : dflt;
}

/* The dump must contain PMCFG_SOURCE (the line of the setting under test). */
static int require_dump(void)
{
    const char *want = getenv("PMCFG_SOURCE");
    int fd = memfd_create("dump", MFD_CLOEXEC);
    PMT_REQUIRE(fd >= 0, "memfd_create");
    PMT_REQUIRE(pm_config_dump(fd, PM_DUMP_TEXT) == 0, "pm_config_dump: %s", strerror(errno));
    char buf[8192];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    PMT_REQUIRE(want == NULL || strstr(buf, want) != NULL, "dump lacks \"%s\":\n%s", want, buf);
    return 0;
}

/* pm_mallopt(param, PMCFG_MALLOPT) when that is set. */
static int maybe_mallopt(int param)
{
    const char *v = getenv("PMCFG_MALLOPT");
    if (v && *v)
        PMT_REQUIRE(pm_mallopt(param, atoi(v)) == 1, "pm_mallopt(%d, %s)", param, v);
    return 0;
}

static pthread_barrier_t barrier;

static void *arena_thread(void *arg)
{
    void *p = pm_malloc(48 + (size_t)(uintptr_t)arg);
    if (p)
        memset(p, 0x5a, 48);
    pthread_barrier_wait(&barrier); /* all alive, each with its allocation */
    pthread_barrier_wait(&barrier);
    pm_free(p);
    return NULL;
}

/* narenas after 8 threads and main each allocated while all were alive. */
static int child_arena(void)
{
    if (maybe_mallopt(PM_ARENA_MAX))
        return 1;
    enum { N = 8 };
    pthread_t t[N];
    void *mine = pm_malloc(32);
    PMT_REQUIRE(mine != NULL, "malloc");
    pthread_barrier_init(&barrier, NULL, N + 1);
    for (long i = 0; i < N; i++)
        PMT_REQUIRE(pthread_create(&t[i], NULL, arena_thread, (void *)i) == 0, "thread");
    pthread_barrier_wait(&barrier);
    size_t n = pm_mallinfo().narenas;
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    pm_free(mine);
    size_t exact = env_size("PMCFG_ARENAS", 0), least = env_size("PMCFG_ARENAS_MIN", 0);
    PMT_REQUIRE(exact == 0 || n == exact, "narenas %zu, expected %zu", n, exact);
    PMT_REQUIRE(n >= least, "narenas %zu, expected at least %zu", n, least);
    return require_dump();
}

/* Does a block of n bytes get its own mapping? 1 yes, 0 no, -1 neither. */
static int is_mmapped(size_t n)
{
    struct pm_mallinfo a = pm_mallinfo();
    void *p = pm_malloc(n);
    if (!p)
        return -1;
    memset(p, 0x33, n);
    struct pm_mallinfo b = pm_mallinfo();
    int r = b.hblks == a.hblks + 1 && b.hblkhd >= a.hblkhd + n ? 1
            : b.hblks == a.hblks && b.hblkhd == a.hblkhd     ? 0
                                                             : -1;
    pm_free(p);
    return r;
}

static int child_mmap(void)
{
    if (maybe_mallopt(PM_MMAP_THRESHOLD))
        return 1;
    size_t mapped = env_size("PMCFG_MAPPED", 0), heap = env_size("PMCFG_HEAP", 0);
    int r;
    PMT_REQUIRE((r = is_mmapped(mapped)) == 1, "%zu bytes: mmapped=%d, expected 1", mapped, r);
    PMT_REQUIRE((r = is_mmapped(heap)) == 0, "%zu bytes: mmapped=%d, expected 0", heap, r);
    return require_dump();
}

/* 24 MiB in heap blocks, touched, freed newest first so that the top grows;
 * does the arena (and RSS) fall? The thread cache is off (PM_TCACHE_COUNT=0
 * in every run) so that no freed block stays parked, and decay is off
 * (PM_DECAY_MS=0) so that the top is cut on the free itself. */
static int child_trim(void)
{
    if (maybe_mallopt(PM_TRIM_THRESHOLD))
        return 1;
    static const size_t sizes[] = {512, 2000, 8000, 30000, 100000};
    enum { MAXB = 4096 };
    static void *blk[MAXB];
    size_t total = 0;
    int n = 0;
    while (total < 24 * PMT_MIB && n < MAXB) {
        size_t s = sizes[n % 5];
        blk[n] = pm_malloc(s);
        PMT_REQUIRE(blk[n] != NULL, "malloc %zu", s);
        memset(blk[n], 0x44, s);
        total += s;
        n++;
    }
    struct pm_mallinfo full = pm_mallinfo();
    size_t rss_full = pmt_rss_bytes();
    PMT_REQUIRE(full.hblks == 0, "heap-sized blocks were mmapped (%zu)", full.hblks);
    for (int i = n - 1; i >= 0; i--)
        pm_free(blk[i]);
    struct pm_mallinfo freed = pm_mallinfo();
    size_t rss_freed = pmt_rss_bytes();
    fprintf(stderr, "pmt: arena %zu -> %zu, rss %zu -> %zu\n", full.arena, freed.arena, rss_full,
            rss_freed);
    const char *expect = getenv("PMCFG_TRIM");
    if (expect && strcmp(expect, "falls") == 0) {
        PMT_REQUIRE(freed.arena + 16 * PMT_MIB <= full.arena, "arena did not fall");
        PMT_REQUIRE(rss_freed + 12 * PMT_MIB <= rss_full, "RSS did not fall");
    } else {
        PMT_REQUIRE(freed.arena + 4 * PMT_MIB >= full.arena, "arena fell");
    }
    return require_dump();
}

/* ---- in the parent ------------------------------------------------------- */

static char dir[256];

static const char *write_ini(const char *name, const char *text)
{
    static char path[4][512];
    static unsigned next;
    char *p = path[next++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    return p;
}

/* Run child case with up to 8 "NAME=VALUE" settings (NULL-terminated). */
static void run(const char *casename, const char *what, ...)
{
    const char *env[10];
    size_t n = 0;
    va_list ap;
    va_start(ap, what);
    for (const char *e; n < 9 && (e = va_arg(ap, const char *)) != NULL;)
        env[n++] = e;
    va_end(ap);
    env[n] = NULL;
    pmt_child_t c;
    assert_int_equal(pmt_spawn(casename, env, 60, &c), 0);
    pmt_assert_exit0_(&c, what, __FILE__, __LINE__);
    pmt_child_free(&c);
}

static void test_arena_max(void **state)
{
    (void)state;
    const char *ini = write_ini("arena.ini", "[pmalloc]\narena_max = 2\n");
    char cfg[600], src_file[700], src_env[800];
    snprintf(cfg, sizeof cfg, "PM_CONFIG=%s", ini);
    snprintf(src_file, sizeof src_file, "PMCFG_SOURCE=arena_max = 2 (%s:2)", ini);
    snprintf(src_env, sizeof src_env,
             "PMCFG_SOURCE=arena_max = 3 (env PM_ARENA_MAX; overrides %s:2 = 2)", ini);
    /* The default (8 x CPUs >= 8) lets at least 3 of the 9 threads have one. */
    run("arena", "default", "PMCFG_ARENAS_MIN=3", "PMCFG_SOURCE=arena_max = ", NULL);
    run("arena", "file", cfg, "PMCFG_ARENAS=2", src_file, NULL);
    run("arena", "env over file", cfg, "PM_ARENA_MAX=3", "PMCFG_ARENAS=3", src_env, NULL);
    run("arena", "mallopt over env", cfg, "PM_ARENA_MAX=3", "PMCFG_MALLOPT=1", "PMCFG_ARENAS=1",
        "PMCFG_SOURCE=arena_max = 1 (pm_mallopt; overrides env PM_ARENA_MAX = 3)", NULL);
}

static void test_mmap_threshold(void **state)
{
    (void)state;
    const char *ini = write_ini("mmap.ini", "[pmalloc]\n; 64 KiB\nmmap_threshold = 64K\n");
    char cfg[600], src_file[700], src_env[800];
    snprintf(cfg, sizeof cfg, "PM_CONFIG=%s", ini);
    snprintf(src_file, sizeof src_file, "PMCFG_SOURCE=mmap_threshold = 64K (%s:3)", ini);
    snprintf(src_env, sizeof src_env,
             "PMCFG_SOURCE=mmap_threshold = 256K (env PM_MMAP_THRESHOLD; overrides %s:3 = 64K)",
             ini);
    run("mmap", "default", "PMCFG_MAPPED=33554432", "PMCFG_HEAP=8388608",
        "PMCFG_SOURCE=mmap_threshold = 32M (default)", NULL);
    run("mmap", "file", cfg, "PMCFG_MAPPED=98304", "PMCFG_HEAP=32768", src_file, NULL);
    run("mmap", "env over file", cfg, "PM_MMAP_THRESHOLD=262144", "PMCFG_MAPPED=262144",
        "PMCFG_HEAP=196608", src_env, NULL);
    run("mmap", "mallopt over env", cfg, "PM_MMAP_THRESHOLD=256K", "PMCFG_MALLOPT=65536",
        "PMCFG_MAPPED=98304", "PMCFG_HEAP=32768",
        "PMCFG_SOURCE=mmap_threshold = 64K (pm_mallopt; overrides env PM_MMAP_THRESHOLD = 256K)",
        NULL);
}

static void test_trim_threshold(void **state)
{
    (void)state;
    const char *ini = write_ini("trim.ini", "[pmalloc]\ntrim_threshold = 1G\n");
    char cfg[600], src_file[700], src_env[800];
    snprintf(cfg, sizeof cfg, "PM_CONFIG=%s", ini);
    snprintf(src_file, sizeof src_file, "PMCFG_SOURCE=trim_threshold = 1G (%s:2)", ini);
    snprintf(src_env, sizeof src_env,
             "PMCFG_SOURCE=trim_threshold = 128K (env PM_TRIM_THRESHOLD; overrides %s:2 = 1G)",
             ini);
    run("trim", "default", "PM_TCACHE_COUNT=0", "PM_DECAY_MS=0", "PMCFG_TRIM=falls",
        "PMCFG_SOURCE=trim_threshold = 128K (default)", NULL);
    run("trim", "file", cfg, "PM_TCACHE_COUNT=0", "PM_DECAY_MS=0", "PMCFG_TRIM=stays",
        src_file, NULL);
    run("trim", "env over file", cfg, "PM_TCACHE_COUNT=0", "PM_DECAY_MS=0",
        "PM_TRIM_THRESHOLD=128K", "PMCFG_TRIM=falls", src_env, NULL);
    run("trim", "mallopt over env", cfg, "PM_TCACHE_COUNT=0", "PM_DECAY_MS=0",
        "PM_TRIM_THRESHOLD=128K", "PMCFG_MALLOPT=1073741824", "PMCFG_TRIM=stays",
        "PMCFG_SOURCE=trim_threshold = 1G (pm_mallopt; overrides env PM_TRIM_THRESHOLD = 128K)",
        NULL);
}

static const pmt_case_t cases[] = {
    {"arena", child_arena},
    {"mmap", child_mmap},
    {"trim", child_trim},
};

int main(int argc, char **argv)
{
    pmt_child_dispatch(argc, argv, cases, PMT_ARRAY_LEN(cases));
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/pmcfgb-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_max),
        cmocka_unit_test(test_mmap_threshold),
        cmocka_unit_test(test_trim_threshold),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
