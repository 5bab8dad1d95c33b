/*
 * init.c - the one init routine and the settings glue. pm_init runs once
 * (pthread_once), before anything else: it loads the settings (defaults < ini
 * file < environment), draws the process secret, and installs the fork
 * handlers. It allocates nothing; arenas come with the first allocation.
 */
#include "heap.h"

#include <errno.h>

uint64_t _pm_secret;
uint64_t _pm_key_secret;
uint64_t _pm_inuse_head[(PM_FAST_CSIZE >> 3) + 2];
int _pm_initialized;
int _pm_check_level;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_t init_owner;
static int init_running;

/* pm_mallopt asks here whether a change can still take effect. */
static int options_busy(int id, size_t value)
{
    (void)value;
    size_t nmapped, mapped_bytes;
    _pm_large_stats(&nmapped, &mapped_bytes);
    /* Direct mappings count too: calloc and memalign hand them out before
     * any arena exists. */
    bool allocated = __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE) > 0 || nmapped > 0;
    /* Why: blocks already handed out have no canary, fill or perturb bytes;
     * switching now would make the checks report them as corrupt. */
    if ((id == PM_OPT_check || id == PM_OPT_perturb) && allocated)
        return 1;
    return 0;
}

/* The thresholds mmap_dynamic moves, for the config dump. */
static size_t options_now(int id)
{
    if (id == PM_OPT_mmap_threshold)
        return __atomic_load_n(&_pm_mmap_dyn, __ATOMIC_RELAXED);
    if (id == PM_OPT_trim_threshold)
        return __atomic_load_n(&_pm_trim_dyn, __ATOMIC_RELAXED);
    return 0;
}

static void init_run(void)
{
    init_owner = pthread_self();
    __atomic_store_n(&init_running, 1, __ATOMIC_RELEASE);
    int saved = errno;
    _pm_os_random(&_pm_secret, sizeof _pm_secret);
    _pm_secret |= 1;
    _pm_os_random(&_pm_key_secret, sizeof _pm_key_secret);
    _pm_key_secret |= (uint64_t)1 << 63; /* never 0 for any pointer below 2^63 */
    for (size_t i = 0; i < sizeof _pm_inuse_head / sizeof *_pm_inuse_head; i++) {
        size_t s = (i >> 1) << 4;
        _pm_inuse_head[i] = s >= PM_MIN_CHUNK ? chunk_make_head(NULL, s, PM_ST_INUSE, i & 1)
                                              : ~(uint64_t)0;
    }
    _pm_options_busy_hook = options_busy;
    _pm_options_now_hook = options_now;
    _pm_options_loaded_hook = _pm_mmap_dynamic_reset;
    _pm_options_load();
    _pm_check_level = (int)PM_OPT(check);
    _pm_fork_install();
    errno = saved;
    __atomic_store_n(&_pm_initialized, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&init_running, 0, __ATOMIC_RELEASE);
}

void _pm_init_slow(void)
{
    if (__atomic_load_n(&init_running, __ATOMIC_ACQUIRE) &&
        pthread_equal(init_owner, pthread_self()))
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

int pm_init(void)
{
    pm_ensure_init();
    return 0;
}

int pm_mallopt(int param, int value)
{
    pm_ensure_init();
    int rc = _pm_options_set(param, value);
    if (rc == 1 && param == PM_CHECK)
        _pm_check_level = (int)PM_OPT(check);
    /* Why: a threshold the user sets stays where the user put it. */
    if (rc == 1 && (param == PM_MMAP_THRESHOLD || param == PM_TRIM_THRESHOLD ||
                    param == PM_MMAP_DYNAMIC))
        _pm_mmap_dynamic_reset();
    return rc;
}
