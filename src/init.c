/* SPDX-License-Identifier: MIT */
/*
 * init.c - the one init routine and the settings glue. pm_init runs once
 * (pthread_once), before anything else: it loads the settings (defaults < ini
 * file < environment) and draws the process secret; the fork handlers are
 * installed when the library is loaded. It allocates nothing; arenas come
 * with the first allocation.
 */
#include "heap.h"

#include <errno.h>
#include <time.h>

const char *pm_version(void)
{
    return PM_VERSION_STRING;
}

uint64_t _pm_secret;
uint64_t _pm_key_secret;
uint64_t _pm_inuse_head[(PM_FAST_CSIZE >> 3) + 2];
int _pm_initialized;
int _pm_check_level;
int _pm_hardened;
uint64_t _pm_addr_key;
static uint64_t addr_key_drawn; /* drawn at init, in force while hardened */

/* Bring the hardened state in line with the setting (before the first
 * allocation only: heads written under one key fail under the other). */
static void hardened_apply(void)
{
    _pm_hardened = (int)PM_OPT(hardened);
    _pm_addr_key = _pm_hardened ? addr_key_drawn : 0;
}
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
/* Why a thread variable, not the running thread's id: a child forked while
 * another thread was in init would inherit that id, and glibc may give it
 * to the child's first new thread, which would then skip init. */
static __thread int in_init __attribute__((tls_model("initial-exec")));

int _pm_alloc_begun;

bool _pm_alloc_begin_slow(void)
{
    if (!pm_init_done())
        return false;
    /* Why under the options lock: a pm_mallopt(PM_CHECK) then either came
     * before, and this thread sees its level, or after, and sees this. */
    _pm_options_lock();
    __atomic_store_n(&_pm_alloc_begun, 1, __ATOMIC_RELEASE);
    _pm_options_unlock();
    return true;
}

/* pm_mallopt asks here (options lock held) whether a change can still take
 * effect. */
static int options_busy(int id, size_t value)
{
    (void)value;
    /* Why: blocks already handed out have no canary, fill or perturb bytes;
     * switching now would make the checks report them as corrupt. */
    if ((id == PM_OPT_check || id == PM_OPT_perturb || id == PM_OPT_hardened) &&
        __atomic_load_n(&_pm_alloc_begun, __ATOMIC_ACQUIRE))
        return 1;
    return 0;
}

/* pm_mallopt changed setting id (options lock held). */
static void options_applied(int id)
{
    /* Why compare first: setting the level in force again is allowed at any
     * time, and must not write what every allocation reads. */
    if (id == PM_OPT_check && _pm_check_level != (int)PM_OPT(check))
        _pm_check_level = (int)PM_OPT(check);
    if (id == PM_OPT_hardened && _pm_hardened != (int)PM_OPT(hardened))
        hardened_apply();
    /* Why: a threshold the user sets stays where the user put it. */
    if (id == PM_OPT_mmap_threshold || id == PM_OPT_trim_threshold ||
        id == PM_OPT_mmap_dynamic)
        _pm_mmap_dynamic_reset();
}

/* The thresholds mmap_dynamic moves, for the config dump. */
static size_t options_now(int id)
{
    size_t d = __atomic_load_n(&_pm_mmap_dyn, __ATOMIC_RELAXED);
    if (id == PM_OPT_mmap_threshold)
        return d;
    if (id == PM_OPT_trim_threshold)
        return dyn_trim(d);
    return 0;
}

static void init_run(void)
{
    in_init = 1;
    int saved = errno;
    /* Why the secret first, and only if unset: a block served from inside
     * init (a boot block) carries headers made with it; one served while
     * getrandom ran made it already (_pm_boot_alloc). */
    uint64_t secret;
    _pm_os_random(&secret, sizeof secret);
    if (!_pm_secret)
        _pm_secret = secret | 1;
    /* Why now: the settings' defaults need it, and reading the CPU list
     * under the options lock would make a syscall (and, under a preload,
     * maybe a call back into pmalloc) while holding it. */
    (void)_pm_os_ncpus();
    _pm_os_random(&_pm_key_secret, sizeof _pm_key_secret);
    _pm_key_secret |= (uint64_t)1 << 63; /* never 0 for any pointer below 2^63 */
    _pm_os_random(&addr_key_drawn, sizeof addr_key_drawn);
    addr_key_drawn |= 1; /* odd: distinct addresses, distinct products */
    for (size_t i = 0; i < sizeof _pm_inuse_head / sizeof *_pm_inuse_head; i++) {
        size_t s = (i >> 1) << 4;
        _pm_inuse_head[i] = s >= PM_MIN_CHUNK ? chunk_make_head(NULL, s, PM_ST_INUSE, i & 1)
                                              : ~(uint64_t)0;
    }
    _pm_options_busy_hook = options_busy;
    _pm_options_applied_hook = options_applied;
    _pm_options_now_hook = options_now;
    _pm_options_loaded_hook = _pm_mmap_dynamic_reset;
    _pm_options_load();
    _pm_check_level = (int)PM_OPT(check);
    hardened_apply();
    _pm_fork_install();
    errno = saved;
    __atomic_store_n(&_pm_initialized, 1, __ATOMIC_RELEASE);
    in_init = 0;
}

/* Blocks handed out from inside init ("boot blocks"): under a preload the
 * libc calls init makes (open, read, getrandom) may themselves allocate,
 * and must be served, not refused. They are direct mappings, which need no
 * arena and no settings beyond the defaults, and carry no canary: the check
 * level is not known yet. This table lets the checks tell them apart; a
 * block leaves it when freed. Written by the init thread only, before
 * _pm_initialized is set; read after. */
#define PM_BOOT_MAX 64
static const void *boot_blocks[PM_BOOT_MAX];
static unsigned boot_count;

void *_pm_boot_alloc(size_t n, size_t align)
{
    bool ok;
    if (boot_count == PM_BOOT_MAX || n > PM_MAX_REQUEST) {
        errno = ENOMEM; /* more than init could ever make; or too big */
        return NULL;
    }
    if (!_pm_secret) {
        /* Called back from getrandom itself: a weaker secret, for good. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        _pm_secret = ((uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uintptr_t)&ts) | 1;
    }
    /* Why 8 more: at check level 1 a mapping's usable size is 8 less (the
     * canary's room), and must still cover n. */
    void *p = _pm_large_alloc(n + 8, align, true, &ok);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    boot_blocks[boot_count++] = mem2chunk(p);
    return p;
}

bool _pm_boot_block(const void *c, bool forget)
{
    unsigned n = __atomic_load_n(&boot_count, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < n; i++)
        if (__atomic_load_n(&boot_blocks[i], __ATOMIC_RELAXED) == c) {
            if (forget)
                __atomic_store_n(&boot_blocks[i], NULL, __ATOMIC_RELAXED);
            return true;
        }
    return false;
}

void _pm_init_slow(void)
{
    if (in_init)
        return; /* re-entered from inside init (a preloaded libc call) */
    /* Why no cancellation: getrandom and the ini file's open and read are
     * cancellation points, and a thread cancelled inside would leave the
     * init half done, every other thread waiting for it for good. */
    int cancel;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
    /* Why pthread_once, not a lock: glibc's runs the routine again in a
     * child forked while another thread was inside it; a lock would stay
     * taken there by a thread the child does not have. */
    pthread_once(&init_once, init_run);
    pthread_setcancelstate(cancel, NULL);
}

/* Why the fork handlers are installed at load time, not by init: prepare
 * handlers run in the reverse order of their installing, and one that the
 * program or a library installed before pmalloc's first use would run
 * after ours, with every allocator lock already taken: a pm_* call in it
 * would wait on its own thread for good. At load time ours come first and
 * run last, as glibc's malloc takes its locks after the handlers (not so
 * for a handler installed before the load: README, Fork). Init installs
 * them too, for a build that runs no constructors; there a fork while
 * init holds the options lock would leave it taken in the child. */
__attribute__((constructor)) static void init_fork_handlers(void)
{
    _pm_fork_install();
}

/* PM_SHOW_STATS=1: the statistics at exit, on stderr. Why a destructor: it
 * runs at exit in every process, a forked child too (its own figures), and
 * not at _exit or after an exec; once per process, as the pid says. */
__attribute__((destructor)) static void init_show_stats(void)
{
    static long shown_pid;
    if (!pm_init_done() || !PM_OPT(show_stats))
        return;
    long pid = _pm_os_process_id();
    if (__atomic_exchange_n(&shown_pid, pid, __ATOMIC_RELAXED) == pid)
        return;
    pm_malloc_stats();
}

int pm_init(void)
{
    pm_ensure_init();
    if (!pm_init_done()) {
        errno = EBUSY; /* called from inside init (a libc call made there) */
        return -1;
    }
    return 0;
}

int pm_mallopt(int param, int value)
{
    pm_ensure_init();
    if (!pm_init_done()) {
        errno = EBUSY; /* called from inside init: the settings are loading */
        return 0;
    }
    return _pm_options_set(param, value);
}
