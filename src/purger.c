/* SPDX-License-Identifier: MIT */
/*
 * purger.c - the background purger: one thread that sweeps the arenas on
 * time, so that memory a program freed goes back to the OS after decay_ms
 * even when no further call comes (jemalloc's background_thread). It sits
 * beside the core, not above it: it calls only the arenas' sweep (trim.c)
 * and the OS layer.
 *
 * It starts the first time an arena has something to give back later, never
 * inside init; sleeps while no arena wants a sweep, is woken when one starts
 * to, and ends after PM_PURGER_LINGER_MS with nothing to do (so it never
 * keeps a process alive whose own threads have all exited); the next arena
 * with something to give back starts it again. A fork child has none until
 * it needs one. With
 * background_thread = 0, or where no thread can be made (a sandbox,
 * unshare(CLONE_NEWUSER) wants a single-threaded caller), memory goes back
 * on the calls that enter an arena, and an arena its last thread left is
 * swept at once, as before there was a purger.
 */
#include "heap.h"

enum { PURGER_NONE = 0, PURGER_STARTING, PURGER_RUNNING, PURGER_FAILED };

/* The longest a purger with arenas to watch sleeps before it looks again. */
#define PM_PURGER_MAX_WAIT_MS 1000
/* How long a purger with nothing to watch waits for work before it ends. */
#define PM_PURGER_LINGER_MS 1000

static int purger_state;      /* atomic: PURGER_*                         */
int _pm_purger_running;       /* atomic: a purger runs in this process    */
static uint32_t purger_seq;   /* futex word: bumped to wake the purger     */
static int purger_sleeping;   /* atomic: it waits with no timeout         */

/* Nothing to give back for PM_PURGER_LINGER_MS: the purger ends, so that
 * it never outlives the program's threads (a process whose last thread
 * calls pthread_exit ends only when no thread is left, and a fork child
 * whose one thread does so too). True: it ends. A notify that came after
 * seq was read keeps it, unless that notify is already starting another. */
static bool purger_retire(uint32_t seq)
{
    int st = PURGER_RUNNING;
    __atomic_store_n(&_pm_purger_running, 0, __ATOMIC_SEQ_CST);
    if (!__atomic_compare_exchange_n(&purger_state, &st, PURGER_NONE, false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST))
        return true; /* not ours to keep (a fork child reset it) */
    if (__atomic_load_n(&purger_seq, __ATOMIC_SEQ_CST) == seq)
        return true;
    /* Why take it back: that notify saw RUNNING and counts on this one. */
    st = PURGER_NONE;
    if (!__atomic_compare_exchange_n(&purger_state, &st, PURGER_RUNNING, false,
                                     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        return true; /* another notify is starting a new purger */
    __atomic_store_n(&_pm_purger_running, 1, __ATOMIC_SEQ_CST);
    return false;
}

static void *purger_main(void *arg)
{
    (void)arg;
    for (;;) {
        uint32_t seq = __atomic_load_n(&purger_seq, __ATOMIC_ACQUIRE);
        uint64_t now = _pm_os_now_ms(), next = UINT64_MAX;
        /* Why look: background_thread may have been turned off since; the
         * thread then sleeps until it is turned on and needed again. */
        uint32_t n = PM_OPT(background_thread) ? __atomic_load_n(&_pm_narenas, __ATOMIC_ACQUIRE)
                                               : 0;
        for (uint32_t i = 0; i < 2 * n; i++) {
            pm_arena_t *a = arena_slot(i, n);
            if (!a || !__atomic_load_n(&a->sweep_wanted, __ATOMIC_ACQUIRE))
                continue;
            uint64_t at = _pm_arena_purger_visit(a, now);
            if (at < next)
                next = at;
        }
        if (next == UINT64_MAX) {
            /* Why announce it: a notifier then wakes us; one that came
             * since the scan began changed the sequence, and the wait
             * returns at once. */
            __atomic_store_n(&purger_sleeping, 1, __ATOMIC_SEQ_CST);
            _pm_os_wait(&purger_seq, seq, PM_PURGER_LINGER_MS);
            __atomic_store_n(&purger_sleeping, 0, __ATOMIC_RELAXED);
            if (__atomic_load_n(&purger_seq, __ATOMIC_SEQ_CST) == seq && purger_retire(seq))
                return NULL;
        } else {
            /* Why a cap: a period set long and then shortened (decay_ms
             * changed) must not hold the next look for as long. */
            uint64_t now2 = _pm_os_now_ms();
            if (next > now2)
                _pm_os_wait(&purger_seq, seq,
                            next - now2 < PM_PURGER_MAX_WAIT_MS ? next - now2
                                                                : PM_PURGER_MAX_WAIT_MS);
        }
    }
    return NULL;
}

bool _pm_purger_usable(void)
{
    return PM_OPT(background_thread) &&
           __atomic_load_n(&purger_state, __ATOMIC_RELAXED) != PURGER_FAILED;
}

bool _pm_purger_notify(void)
{
    if (!PM_OPT(background_thread))
        return false;
    /* Why bump first, whatever the state: a purger between its scan and its
     * sleep, or one just started whose creator has not yet said so, then
     * finds the sequence changed and scans again (no lost wake-up). */
    __atomic_add_fetch(&purger_seq, 1, __ATOMIC_SEQ_CST);
    /* Why the syscall only for a sleeping one: one on a timer comes round
     * anyway. */
    if (__atomic_load_n(&purger_sleeping, __ATOMIC_SEQ_CST))
        _pm_os_wake(&purger_seq);
    int st = __atomic_load_n(&purger_state, __ATOMIC_ACQUIRE);
    if (PM_LIKELY(st == PURGER_RUNNING))
        return true;
    if (st == PURGER_FAILED)
        return false;
    /* Why not inside init: no thread is made before the settings are in;
     * a libc call back into pmalloc from there lands here too. */
    if (st == PURGER_STARTING || !pm_init_done())
        return true;
    int none = PURGER_NONE;
    if (!__atomic_compare_exchange_n(&purger_state, &none, PURGER_STARTING, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return none != PURGER_FAILED;
    /* Why the state is STARTING meanwhile: thread creation may allocate
     * (the new thread's TLS), and that call comes back here. */
    bool ok = _pm_os_thread_start(purger_main, NULL);
    __atomic_store_n(&purger_state, ok ? PURGER_RUNNING : PURGER_FAILED, __ATOMIC_RELEASE);
    __atomic_store_n(&_pm_purger_running, ok, __ATOMIC_RELEASE);
    return ok;
}

void _pm_purger_fork_child(void)
{
    /* Why: threads do not survive fork; the child's first arena that wants
     * a sweep starts its own purger. A failed start stays failed. */
    if (purger_state != PURGER_FAILED)
        purger_state = PURGER_NONE;
    _pm_purger_running = 0;
#ifdef PM_TSAN
    /* ThreadSanitizer cannot start threads in the child of a multi-threaded
     * fork (it dies); the child gives memory back on its own calls. */
    purger_state = PURGER_FAILED;
#endif
    purger_sleeping = 0;
}
