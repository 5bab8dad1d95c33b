/* SPDX-License-Identifier: MIT */
/*
 * diag.c - the allocator's only way to speak: format into a stack buffer,
 * write(2) it, never allocate, never touch stdio, keep errno.
 */
#include "diag.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

#define PM_DIAG_LINE 512

int _pm_write_all(int fd, const char *buf, size_t len)
{
    int saved = errno, rc = 0;
    /* Why SIGPIPE is blocked around the write: a diagnostic to a pipe whose
     * reader has gone must not kill the program (a lost warning beats a
     * killed program). A SIGPIPE this write raised is taken back; one that
     * was pending before stays for the program. */
    sigset_t pipe_set, old_mask, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    bool masked = pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask) == 0;
    bool was_pending = masked && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0 && errno == EPIPE && masked && !was_pending) {
                static const struct timespec now = {0, 0};
                while (sigtimedwait(&pipe_set, NULL, &now) < 0 && errno == EINTR)
                    ;
            }
            rc = -1;
            break;
        }
        buf += n;
        len -= (size_t)n;
    }
    if (masked)
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    errno = saved;
    return rc;
}

static size_t put_char(char *buf, size_t cap, size_t at, char c)
{
    if (at + 1 < cap)
        buf[at] = c;
    return at + 1;
}

static size_t put_uint(char *buf, size_t cap, size_t at, uintmax_t v, unsigned base)
{
    char tmp[32];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n > 0)
        at = put_char(buf, cap, at, tmp[--n]);
    return at;
}

size_t _pm_diag_vformat(char *buf, size_t cap, const char *fmt, va_list ap)
{
    size_t at = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            at = put_char(buf, cap, at, *f);
            continue;
        }
        f++;
        int lng = 0;
        while (*f == 'l' || *f == 'z') {
            lng = 1;
            f++;
        }
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            for (s = s ? s : "(null)"; *s; s++)
                at = put_char(buf, cap, at, *s);
            break;
        }
        case 'c':
            at = put_char(buf, cap, at, (char)va_arg(ap, int));
            break;
        case 'd': {
            intmax_t v = lng ? va_arg(ap, long) : va_arg(ap, int);
            uintmax_t u = (uintmax_t)v;
            if (v < 0) {
                at = put_char(buf, cap, at, '-');
                u = (uintmax_t)0 - u;
            }
            at = put_uint(buf, cap, at, u, 10);
            break;
        }
        case 'u':
            at = put_uint(buf, cap, at,
                          lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10);
            break;
        case 'x':
            at = put_uint(buf, cap, at,
                          lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16);
            break;
        case 'p':
            at = put_char(buf, cap, at, '0');
            at = put_char(buf, cap, at, 'x');
            at = put_uint(buf, cap, at, (uintptr_t)va_arg(ap, void *), 16);
            break;
        case '%':
            at = put_char(buf, cap, at, '%');
            break;
        case '\0':
            f--;
            break;
        default:
            at = put_char(buf, cap, at, '%');
            at = put_char(buf, cap, at, *f);
            break;
        }
    }
    if (cap > 0)
        buf[at < cap ? at : cap - 1] = '\0';
    return at < cap ? at : (cap ? cap - 1 : 0);
}

size_t _pm_diag_format(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = _pm_diag_vformat(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

static void diag_line(int fd, const char *prefix, const char *fmt, va_list ap)
{
    char line[PM_DIAG_LINE];
    size_t n = 0;
    for (const char *p = prefix; *p && n < sizeof line - 2; p++)
        line[n++] = *p;
    n += _pm_diag_vformat(line + n, sizeof line - 1 - n, fmt, ap);
    line[n++] = '\n';
    _pm_write_all(fd, line, n);
}

void _pm_diag_fd(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_line(fd, "", fmt, ap);
    va_end(ap);
}

void _pm_diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_line(2, "pmalloc: ", fmt, ap);
    va_end(ap);
}

void _pm_fatal(const char *call, const void *ptr, const char *fmt, ...)
{
    char line[PM_DIAG_LINE];
    size_t n = _pm_diag_format(line, sizeof line, "pmalloc: %s(%p): ", call, ptr);
    va_list ap;
    va_start(ap, fmt);
    n += _pm_diag_vformat(line + n, sizeof line - 1 - n, fmt, ap);
    va_end(ap);
    line[n++] = '\n';
    _pm_write_all(2, line, n);
    abort();
}
