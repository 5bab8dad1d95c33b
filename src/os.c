/* SPDX-License-Identifier: MIT */
/*
 * os.c - the one file that talks to the kernel: mmap, munmap, madvise,
 * mremap, getrandom, open/read. Each call saves and restores errno, so the
 * allocator's bookkeeping never clobbers what the program last saw.
 */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

void *_pm_os_map(size_t size)
{
    int saved = errno;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    errno = saved;
    return p;
}

/* size bytes of fresh memory where the kernel likes (at NULL), or exactly at
 * at; NULL if not. */
static char *map_at(uintptr_t at, size_t size, int flags)
{
    void *p = mmap((void *)at, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | flags | (at ? MAP_FIXED_NOREPLACE : 0), -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (at && (uintptr_t)p != at) {
        /* A kernel before 4.17 takes the address as a hint only. */
        munmap(p, size);
        return NULL;
    }
    return p;
}

void *_pm_os_map_aligned(size_t size, size_t align, bool reserve)
{
    int saved = errno;
    int flags = reserve ? MAP_NORESERVE : 0;
    size_t span = size + align;
    /* Why over-map and cut: mmap has no alignment argument; the cut-off
     * pieces go straight back. */
    char *p = span > size ? map_at(0, span, flags) : NULL;
    if (p) {
        uintptr_t a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
        size_t lead = a - (uintptr_t)p, tail = span - lead - size;
        if (lead)
            munmap(p, lead);
        if (tail)
            munmap((char *)a + size, tail);
        errno = saved;
        return (void *)a;
    }
    /* Why a second way: under an address-space limit (ulimit -v) there may
     * be room for size bytes and not for size + align. Map size bytes; if
     * they are not aligned, ask for the aligned places just above and just
     * below them (nearly always free: the kernel maps top-down). */
    p = map_at(0, size, flags);
    if (p && ((uintptr_t)p & (align - 1))) {
        uintptr_t down = (uintptr_t)p & ~(uintptr_t)(align - 1), up = down + align;
        munmap(p, size);
        p = map_at(up, size, flags);
        if (!p && down)
            p = map_at(down, size, flags);
    }
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    errno = saved;
    return p;
}

void _pm_os_unmap(void *p, size_t size)
{
    int saved = errno;
    munmap(p, size);
    errno = saved;
}

bool _pm_os_guard(void *p, size_t size, bool on)
{
    int saved = errno;
    bool ok = mprotect(p, size, on ? PROT_NONE : PROT_READ | PROT_WRITE) == 0;
    errno = saved;
    return ok;
}

void _pm_os_hugepage(void *p, size_t size)
{
    int saved = errno;
#ifdef MADV_HUGEPAGE
    madvise(p, size, MADV_HUGEPAGE);
#else
    (void)p, (void)size;
#endif
    errno = saved;
}

bool _pm_os_purge(void *p, size_t size)
{
    int saved = errno;
    /* Why it can fail: MADV_DONTNEED refuses locked pages (mlock, mlockall). */
    int r = madvise(p, size, MADV_DONTNEED);
    errno = saved;
    return r == 0;
}

size_t _pm_os_resident(void *p, size_t size, size_t limit)
{
    int saved = errno;
    unsigned char vec[256];
    size_t page = _pm_os_page_size(), step = sizeof(vec) * page, n = 0;
    for (size_t off = 0; off < size && n <= limit; off += step) {
        size_t len = size - off < step ? size - off : step;
        if (mincore((char *)p + off, len, vec) != 0)
            break;
        for (size_t i = 0; i < len / page; i++)
            n += vec[i] & 1;
    }
    errno = saved;
    return n > limit ? limit + 1 : n;
}

void *_pm_os_remap(void *p, size_t old_size, size_t new_size)
{
    int saved = errno;
    void *q = mremap(p, old_size, new_size, MREMAP_MAYMOVE);
    if (q == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    errno = saved;
    return q;
}

size_t _pm_os_page_size(void)
{
    static size_t page;
    size_t p = __atomic_load_n(&page, __ATOMIC_RELAXED);
    if (!p) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        __atomic_store_n(&page, p, __ATOMIC_RELAXED);
    }
    return p;
}

uint64_t _pm_os_now_ms(void)
{
    int saved = errno;
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        ts.tv_sec = 0, ts.tv_nsec = 0;
    errno = saved;
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool _pm_os_thread_start(void *(*fn)(void *), void *arg)
{
    int saved = errno;
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_t t;
    /* Why every signal blocked: the thread inherits the mask, and a signal
     * meant for the program must never run its handler on our thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    bool ok = pthread_attr_init(&attr) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        /* Why this much: the last thread of a process that calls
         * pthread_exit runs exit() and its handlers on its own stack. */
        pthread_attr_setstacksize(&attr, 256 * 1024);
        ok = pthread_create(&t, &attr, fn, arg) == 0;
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return ok;
}

void _pm_os_wait(uint32_t *word, uint32_t val, uint64_t ms)
{
    int saved = errno;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, ms == UINT64_MAX ? NULL : &ts, NULL, 0);
    errno = saved;
}

void _pm_os_wake(uint32_t *word)
{
    int saved = errno;
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    errno = saved;
}

long _pm_os_thread_id(void)
{
    int saved = errno;
    long tid = syscall(SYS_gettid);
    errno = saved;
    return tid;
}

long _pm_os_process_id(void)
{
    return (long)getpid();
}

bool _pm_os_secure(void)
{
    int saved = errno;
    bool secure = getauxval(AT_SECURE) != 0;
    errno = saved;
    return secure;
}

ssize_t _pm_os_exe_name(char *buf, size_t cap)
{
    int saved = errno;
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    errno = saved;
    if (n <= 0 || (size_t)n >= sizeof path - 1)
        return -1;
    path[n] = '\0';
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len == 0 || len >= cap)
        return -1;
    memcpy(buf, base, len + 1);
    return (ssize_t)len;
}

int _pm_os_thread_gone(long pid, long tid)
{
    int saved = errno;
    /* Signal 0 sends nothing: only asks whether the thread exists. */
    int gone = syscall(SYS_tgkill, pid, tid, 0) != 0 && errno == ESRCH;
    errno = saved;
    return gone;
}

/* CPUs in a kernel CPU list such as "0-3,8,10-11\n"; 0 if malformed. */
int _pm_os_count_cpulist(const char *s)
{
    int count = 0;
    for (;;) {
        unsigned lo = 0, hi;
        if (*s < '0' || *s > '9')
            return 0;
        while (*s >= '0' && *s <= '9' && lo < 1u << 20)
            lo = lo * 10 + (unsigned)(*s++ - '0');
        hi = lo;
        if (*s == '-') {
            s++;
            if (*s < '0' || *s > '9')
                return 0;
            hi = 0;
            while (*s >= '0' && *s <= '9' && hi < 1u << 20)
                hi = hi * 10 + (unsigned)(*s++ - '0');
            if (hi < lo)
                return 0;
        }
        count += (int)(hi - lo + 1);
        if (*s != ',')
            return *s == '\n' || *s == '\0' ? count : 0;
        s++;
    }
}

int _pm_os_ncpus(void)
{
    /* Why once: the count sizes the arena cap at init, as glibc's does;
     * later calls (the config dump's defaults) then make no syscall. */
    static int cached;
    int n = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (n > 0)
        return n;
    /* Why not sysconf(_SC_NPROCESSORS_ONLN): it reads this same file, but
     * through code (and strtoul) that a program seldom touches otherwise, and
     * each such libc page costs resident memory in every process. */
    int saved = errno;
    char buf[256];
    if (_pm_os_read_file("/sys/devices/system/cpu/online", buf, sizeof buf) > 0)
        n = _pm_os_count_cpulist(buf);
    if (n <= 0) {
        long v = sysconf(_SC_NPROCESSORS_ONLN);
        n = v > 0 ? (int)v : 1;
    }
    errno = saved;
    __atomic_store_n(&cached, n, __ATOMIC_RELAXED);
    return n;
}

void _pm_os_random(void *buf, size_t len)
{
    int saved = errno;
    unsigned char *b = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(b + got, len - got, GRND_NONBLOCK);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < len) {
        /* Why a fallback: early boot or seccomp can refuse getrandom; a
         * weaker secret still catches accidental corruption. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uintptr_t)buf;
        for (; got < len; got++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[got] = (unsigned char)x;
        }
    }
    errno = saved;
}

ssize_t _pm_os_read_file(const char *path, char *buf, size_t cap)
{
    int fd;
    /* Why O_NONBLOCK and O_NOCTTY: a FIFO, a tty or /dev/stdin named here
     * must not block the open (or the first pm_* call) nor become the
     * controlling terminal; only a regular file is read. */
    do
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -1;
    struct stat st;
    int got = fstat(fd, &st);
    if (got != 0 || !S_ISREG(st.st_mode)) {
        bool dir = got == 0 && S_ISDIR(st.st_mode);
        close(fd);
        errno = dir ? EISDIR : 0;
        return dir ? -1 : -3;
    }
    size_t len = 0;
    for (;;) {
        if (len + 1 >= cap) {
            char extra;
            ssize_t more = read(fd, &extra, 1);
            close(fd);
            if (more > 0) {
                errno = EFBIG;
                return -2;
            }
            break;
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (n == 0) {
            close(fd);
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    return (ssize_t)len;
}

const char *_pm_os_getenv(const char *name)
{
    size_t nl = strlen(name);
    if (environ) {
        for (char **e = environ; *e; e++)
            if (strncmp(*e, name, nl) == 0 && (*e)[nl] == '=')
                return *e + nl + 1;
        return NULL;
    }
    /* Why /proc: before libc has set environ (very early preload), the
     * kernel's copy of the initial environment is the only one there is. */
    static char envbuf[16384];
    ssize_t n = _pm_os_read_file("/proc/self/environ", envbuf, sizeof envbuf);
    for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(envbuf + i) + 1)
        if (strncmp(envbuf + i, name, nl) == 0 && envbuf[i + nl] == '=')
            return envbuf + i + nl + 1;
    return NULL;
}
