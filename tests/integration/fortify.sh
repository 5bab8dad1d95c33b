#!/bin/sh
# SPDX-License-Identifier: MIT
# fortify.sh - pmalloc.h tells the compiler what pm_malloc returns: built
# with -O2 -D_FORTIFY_SOURCE=3, memset(pm_malloc(10), 'x', 20) warns at
# compile time (gcc) and aborts at run time with glibc's "buffer overflow
# detected", as it does with malloc, once the block is used (a block never
# read is a dead store the compiler drops, as with malloc); so does an overflow by a size known
# only at run time (level 3). Built with the build's CC against the headers
# and the shared library of this build tree.
set -u
b=${PM_TEST_BUILDDIR:?} s=${PM_TEST_SRCDIR:?} cc=${PM_TEST_CC:-cc}
# Why skip under sanitizers: they replace memset's checks with their own.
case " ${PM_TEST_SAN:-} " in
*-fsanitize*) echo "SKIP: sanitizer build"; exit 77 ;;
esac
if [ ! -f "$b/.libs/libpmalloc.so" ]; then
    echo "SKIP: no shared library in $b/.libs"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ulimit -c 0
fail=0

cat >"$tmp/const.c" <<'SRC'
#include <stdio.h>
#include <string.h>
#include <pmalloc.h>
int main(void)
{
    char *p = pm_malloc(10);
    memset(p, 'x', 20);
    puts(p);
    pm_free(p);
    return 0;
}
SRC
cat >"$tmp/dyn.c" <<'SRC'
#include <string.h>
#include <pmalloc.h>
int main(int argc, char **argv)
{
    (void)argv;
    size_t n = 9 + (size_t)argc;
    char *p = pm_malloc(n);
    if (!p)
        return 2;
    memset(p, 'x', n + 1);
    pm_free(p);
    return 0;
}
SRC

# build NAME: compile and link $tmp/NAME.c; its diagnostics in $tmp/NAME.err
build() {
    $cc -O2 -D_FORTIFY_SOURCE=3 -I"$b/include" -I"$s/include" "$tmp/$1.c" \
        -L"$b/.libs" -lpmalloc -Wl,-rpath,"$b/.libs" -o "$tmp/$1" 2>"$tmp/$1.err"
    rc=$?
    cat "$tmp/$1.err"
    if [ "$rc" -ne 0 ]; then
        echo "FAIL: $1.c did not build with $cc"
        fail=1
        return 1
    fi
}

# expect_abort NAME: the program dies of SIGABRT after glibc's message.
expect_abort() {
    "$tmp/$1" 2>"$tmp/$1.out"
    rc=$?
    cat "$tmp/$1.out"
    if [ "$rc" -ne 134 ]; then
        echo "FAIL: $1 exited with $rc, not SIGABRT (134)"
        fail=1
    elif ! grep -q 'buffer overflow detected' "$tmp/$1.out"; then
        echo "FAIL: $1: no 'buffer overflow detected' on stderr"
        fail=1
    else
        echo "ok: $1 aborted: buffer overflow detected"
    fi
}

if build const; then
    # Why gcc only: clang 14 warns for the C library's own functions only.
    if $cc --version 2>/dev/null | grep -q clang; then
        echo "($cc is clang: no compile-time warning expected)"
    elif grep -qi 'warning:.*overflow' "$tmp/const.err"; then
        echo "ok: $cc warns about memset(pm_malloc(10), 'x', 20)"
    else
        echo "FAIL: no compile-time overflow warning for memset(pm_malloc(10), 'x', 20)"
        fail=1
    fi
    expect_abort const
fi
if build dyn; then
    expect_abort dyn
fi
exit "$fail"
