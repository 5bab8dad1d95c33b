/* SPDX-License-Identifier: MIT */
/*
 * options.h - the one table of tunables, and the state of each setting.
 *
 * Every tunable is one row of PM_OPTIONS. The rows are expanded into the
 * option ids, the mallopt switch, the environment reader, the ini handler,
 * the config dump and the README table: never keep a parallel list.
 */
#ifndef PM_OPTIONS_H
#define PM_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include "pmalloc.h"

/* Kinds of value a setting takes. */
enum pm_opt_kind {
    PM_KIND_COUNT, /* plain non-negative integer                       */
    PM_KIND_SIZE,  /* bytes, with an optional K/M/G (KiB/MiB/GiB) suffix */
    PM_KIND_BOOL,  /* 0/1, also yes/no, true/false, on/off              */
    PM_KIND_ENUM,  /* on_bad_config: warn, quiet, abort                 */
};

#define PM_KIB ((size_t)1 << 10)
#define PM_MIB ((size_t)1 << 20)
#define PM_GIB ((size_t)1 << 30)

/* The largest mmap threshold: half a heap, so any heap chunk fits a heap. */
#define PM_MMAP_THRESHOLD_MAX (32 * PM_MIB)
/* The largest thread-cache size class. */
#define PM_TCACHE_MAX_LIMIT   (64 * PM_KIB)

/* X(id, env var, ini key, mallopt param, default, min, max, kind, help)
 * A default of PM_DEFAULT_AUTO is computed at init (arena_max: 8 x CPUs). */
#define PM_DEFAULT_AUTO ((size_t)-1)
#define PM_OPTIONS(X)                                                               \
    X(arena_max, "PM_ARENA_MAX", "arena_max", PM_ARENA_MAX, PM_DEFAULT_AUTO,        \
      1, 1024, PM_KIND_COUNT, "most arenas ever created (default 8 x online CPUs)") \
    X(mmap_threshold, "PM_MMAP_THRESHOLD", "mmap_threshold", PM_MMAP_THRESHOLD,     \
      PM_MMAP_THRESHOLD_MAX, 0, PM_MMAP_THRESHOLD_MAX, PM_KIND_SIZE,                 \
      "requests of at least this many bytes get their own mmap")                    \
    X(trim_threshold, "PM_TRIM_THRESHOLD", "trim_threshold", PM_TRIM_THRESHOLD,     \
      128 * PM_KIB, 0, (size_t)INT32_MAX, PM_KIND_SIZE,                              \
      "free memory an arena keeps resident beyond this goes back (see decay_ms)")    \
    X(top_pad, "PM_TOP_PAD", "top_pad", PM_TOP_PAD, 128 * PM_KIB, 0,                \
      PM_MMAP_THRESHOLD_MAX, PM_KIND_SIZE, "extra bytes taken when a heap grows")   \
    X(mmap_max, "PM_MMAP_MAX", "mmap_max", PM_MMAP_MAX, 65536, 0, (size_t)INT32_MAX, \
      PM_KIND_COUNT, "most chunks mmapped directly at once (0: never mmap)")        \
    X(perturb, "PM_PERTURB", "perturb", PM_PERTURB, 0, 0, 255, PM_KIND_COUNT,       \
      "fill byte for fresh and freed blocks (0: off)")                              \
    X(check, "PM_CHECK", "check", PM_CHECK, 0, 0, 2, PM_KIND_COUNT,                 \
      "integrity checks: 0 cheap, 1 canaries and free fill, 2 full validation")     \
    X(tcache_count, "PM_TCACHE_COUNT", "tcache_count", PM_TCACHE_COUNT, 128, 0,     \
      1024, PM_KIND_COUNT, "blocks per size class in a thread cache (0: off)")      \
    X(tcache_max, "PM_TCACHE_MAX", "tcache_max", PM_TCACHE_MAX, 32 * PM_KIB, 0,     \
      PM_TCACHE_MAX_LIMIT, PM_KIND_SIZE, "largest request the thread cache serves") \
    X(on_bad_config, "PM_ON_BAD_CONFIG", "on_bad_config", PM_ON_BAD_CONFIG, 0, 0,   \
      2, PM_KIND_ENUM, "what a bad setting does: warn, quiet or abort")             \
    X(print_config, "PM_PRINT_CONFIG", "print_config", PM_PRINT_CONFIG, 0, 0, 1,    \
      PM_KIND_BOOL, "print every setting and its source at init")                   \
    X(thp, "PM_THP", "thp", PM_THP, 0, 0, 1, PM_KIND_BOOL,                          \
      "ask for transparent huge pages on direct mappings of 2 MiB and more")         \
    X(mmap_dynamic, "PM_MMAP_DYNAMIC", "mmap_dynamic", PM_MMAP_DYNAMIC, 0, 0, 1,     \
      PM_KIND_BOOL, "unset thresholds start at 128K and rise to each freed mapping, as glibc") \
    X(decay_ms, "PM_DECAY_MS", "decay_ms", PM_DECAY_MS, 10, 0, 3600000, PM_KIND_COUNT, \
      "free heap memory unused this many ms goes back to the OS (0: at the free)") \
    X(hardened, "PM_HARDENED", "hardened", PM_HARDENED, 0, 0, 1, PM_KIND_BOOL,      \
      "checks against attacks: address-bound headers, random reuse, zero on free, guard pages") \
    X(show_stats, "PM_SHOW_STATS", "show_stats", PM_SHOW_STATS, 0, 0, 1, PM_KIND_BOOL, \
      "write the per-arena statistics on stderr at exit (once in each process)") \
    X(background_thread, "PM_BACKGROUND_THREAD", "background_thread",                \
      PM_BACKGROUND_THREAD, 1, 0, 1, PM_KIND_BOOL,                                   \
      "a thread gives back memory that sits unused while no call comes (decay_ms)")

enum pm_opt_id {
#define PM_X_ID(id, env, key, param, def, min, max, kind, help) PM_OPT_##id,
    PM_OPTIONS(PM_X_ID)
#undef PM_X_ID
    PM_OPT_COUNT
};

enum pm_on_bad { PM_BAD_WARN = 0, PM_BAD_QUIET = 1, PM_BAD_ABORT = 2 };

/* Where a setting's value came from. */
enum pm_opt_source { PM_SRC_DEFAULT, PM_SRC_FILE, PM_SRC_ENV, PM_SRC_MALLOPT };

typedef struct pm_opt_state {
    size_t value;        /* in force                                  */
    size_t prev_value;   /* what it overrode (valid if prev_src set)  */
    uint8_t src, prev_src, has_prev;
    uint32_t line, prev_line; /* ini line, for PM_SRC_FILE            */
} pm_opt_state_t;

typedef struct pm_opt_desc {
    const char *name, *env, *key, *help;
    int param;
    size_t def, min, max;
    enum pm_opt_kind kind;
} pm_opt_desc_t;

extern const pm_opt_desc_t _pm_opt_desc[PM_OPT_COUNT];
extern pm_opt_state_t _pm_opt_state[PM_OPT_COUNT];

/* The value in force; a plain load, cheap enough for the slow paths. */
#define PM_OPT(id) (__atomic_load_n(&_pm_opt_state[PM_OPT_##id].value, __ATOMIC_RELAXED))

/* Load every setting: defaults, ini file, environment. Called once by
 * pm_init before any arena exists; allocates nothing. */
void _pm_options_load(void);
/* pm_mallopt's validation and store; returns 1, or 0 with errno set. */
int _pm_options_set(int param, int value);
/* Default value of option id (resolves PM_DEFAULT_AUTO). */
size_t _pm_options_default(int id);

/* Set by the core: called by _pm_options_set (pm_mallopt), options lock
 * held, with a valid value that differs from the one in force; nonzero
 * means the change can no longer take effect (pm_mallopt fails with EBUSY).
 * NULL: never busy. */
extern int (*_pm_options_busy_hook)(int id, size_t value);
/* Called, options lock held, once pm_mallopt has changed setting id: the
 * core brings what it derives from the setting in line. */
extern void (*_pm_options_applied_hook)(int id);
/* The core says here what value of setting id is in force when it differs
 * from the setting (mmap_dynamic's moving thresholds); 0 otherwise. */
extern size_t (*_pm_options_now_hook)(int id);
/* Called once the settings are loaded, before they are printed: the core
 * sets up what follows from them (the dynamic thresholds). */
extern void (*_pm_options_loaded_hook)(void);
/* Back to the built-in defaults: sources cleared, error count 0. Tests. */
void _pm_options_reset(void);
/* Problems found in the configuration since the last reset or load
 * (counted also when on_bad_config=quiet hides them). */
unsigned _pm_config_error_count(void);
/* The lock that guards the settings' sources (pm_mallopt, the dump). The
 * core may take it in its atfork prepare and release it in both parents. */
void _pm_options_lock(void);
void _pm_options_unlock(void);

#endif /* PM_OPTIONS_H */
