/* SPDX-License-Identifier: MIT */
/*
 * os.h - the allocator's whole view of the operating system. Core files call
 * these and never include <sys/mman.h>. Every call keeps errno as it was,
 * except where it says it reports an error through it.
 */
#ifndef PM_OS_H
#define PM_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Fresh zeroed read-write memory, or NULL (errno ENOMEM). */
void *_pm_os_map(size_t size);
/* size bytes aligned to align (a power of two >= page), read-write, pages
 * committed only when touched. With reserve, a reservation the kernel's
 * overcommit check passes over (a heap, grown a page at a time); without,
 * memory the caller asked for whole, which that check may refuse. NULL
 * (errno ENOMEM) on failure. */
void *_pm_os_map_aligned(size_t size, size_t align, bool reserve);
void _pm_os_unmap(void *p, size_t size);
/* Ask for transparent huge pages on [p, p+size) (advice only). */
void _pm_os_hugepage(void *p, size_t size);
/* Make [p, p+size) (page-aligned) inaccessible (guard) or read-write again;
 * false if the kernel refused (errno kept). */
bool _pm_os_guard(void *p, size_t size, bool on);
/* Give the pages back; true if they did go (they read as zero when touched
 * again), false if some may still hold their data (mlocked pages). */
bool _pm_os_purge(void *p, size_t size);
/* How many pages of [p, p+size) (page-aligned) are resident, counted up to
 * limit + 1 (the count stops there); 0 if the kernel will not say. */
size_t _pm_os_resident(void *p, size_t size, size_t limit);
/* Resize a mapping, moving it if needed; NULL (errno ENOMEM) on failure. */
void *_pm_os_remap(void *p, size_t old_size, size_t new_size);
size_t _pm_os_page_size(void);
/* x rounded up and down to a multiple of the page size (x + page must not
 * wrap: callers bound x first). */
static inline uintptr_t _pm_page_up(uintptr_t x)
{
    uintptr_t page = _pm_os_page_size();
    return (x + page - 1) & ~(page - 1);
}
static inline uintptr_t _pm_page_down(uintptr_t x)
{
    return x & ~(uintptr_t)(_pm_os_page_size() - 1);
}
/* Milliseconds on a monotonic clock (vDSO: no lock, no allocation). */
uint64_t _pm_os_now_ms(void);
/* Start a detached thread running fn(arg), with every signal blocked and a
 * 256 KiB stack; false if it could not be made (a sandbox, a thread limit). */
bool _pm_os_thread_start(void *(*fn)(void *), void *arg);
/* Sleep while *word == val, at most ms milliseconds (UINT64_MAX: no limit),
 * or until _pm_os_wake(word); may return early (a signal, a race). */
void _pm_os_wait(uint32_t *word, uint32_t val, uint64_t ms);
void _pm_os_wake(uint32_t *word);
/* The calling thread's kernel id, and its process's. */
long _pm_os_thread_id(void);
long _pm_os_process_id(void);
/* Is thread tid of process pid (the caller's) gone for sure? (A tid the
 * kernel has given to a new thread since reads as alive.) */
int _pm_os_thread_gone(long pid, long tid);
/* Does this process run with rights its caller lacks (set-user-ID,
 * set-group-ID, file capabilities: the kernel's AT_SECURE)? */
bool _pm_os_secure(void);
/* The running executable's file name (no directory), as the kernel has it
 * (/proc/self/exe), into buf; its length, or -1. */
ssize_t _pm_os_exe_name(char *buf, size_t cap);
/* Online CPUs (the kernel's list, else sysconf), at least 1. */
int _pm_os_ncpus(void);
int _pm_os_count_cpulist(const char *s);
/* Fill buf with random bytes (getrandom, else a time/address mix). */
void _pm_os_random(void *buf, size_t len);
/* Read at most cap-1 bytes of path into buf and NUL-terminate. Returns the
 * length, -1 with errno on error (EISDIR for a directory), -2 (errno EFBIG)
 * if the file is larger than cap-1 bytes, or -3 if path is not a regular
 * file (a FIFO, a tty, a device: never read). Uses open/read only. */
ssize_t _pm_os_read_file(const char *path, char *buf, size_t cap);
/* The value of environment variable name, without getenv (reads environ,
 * else /proc/self/environ); NULL if unset. */
const char *_pm_os_getenv(const char *name);

#endif
