/* SPDX-License-Identifier: MIT */
/*
 * diag.h - diagnostics that never allocate: a tiny formatter into a stack
 * buffer and write(2). Safe inside the allocator, in signal context and in
 * a forked child.
 */
#ifndef PM_DIAG_H
#define PM_DIAG_H

#include <stdarg.h>
#include <stddef.h>

/* Formats %s %c %d %u %ld %lu %zu %zd %zx %x %lx %p %% into buf (always
 * NUL-terminated, truncated to cap). Returns the length written. */
size_t _pm_diag_vformat(char *buf, size_t cap, const char *fmt, va_list ap);
size_t _pm_diag_format(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Write one formatted line (fmt without the newline) to fd. */
void _pm_diag_fd(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "pmalloc: " + message + "\n" on stderr. */
void _pm_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "pmalloc: CALL(PTR): MESSAGE" on stderr, then abort(). */
void _pm_fatal(const char *call, const void *ptr, const char *fmt, ...)
    __attribute__((noreturn, cold, noinline, format(printf, 3, 4)));
/* Write all of buf to fd, retrying on EINTR and short writes; keeps errno. */
int _pm_write_all(int fd, const char *buf, size_t len);

#endif
