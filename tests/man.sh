#!/bin/sh
# SPDX-License-Identifier: MIT
# man.sh - the three man pages of the build tree render with man -l (groff)
# without a warning, and each lists every setting that pmalloc-config
# --man-table prints (the table of src/options.h).
set -u
b=${PM_TEST_BUILDDIR:?}
if ! command -v man >/dev/null || ! command -v groff >/dev/null; then
    echo "SKIP: man (man-db) or groff missing"
    exit 77
fi
fail=0
keys=$("$b/tools/pmalloc-config" --man-table | sed -n 's/^\.BR \([a-z_]*\) .*/\1/p')
[ -n "$keys" ] || { echo "FAIL: pmalloc-config --man-table listed no setting"; exit 1; }
for page in pmalloc.3 pmalloc.ini.5 pmalloc-config.1; do
    f=$b/man/$page
    if [ ! -f "$f" ]; then
        echo "FAIL: $f not built"
        fail=1
        continue
    fi
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$f" 2>"$f.err")
    if [ -s "$f.err" ] || [ -z "$out" ]; then
        echo "FAIL: man -l $page:"
        cat "$f.err"
        fail=1
    fi
    rm -f "$f.err"
    for k in $keys; do
        printf '%s\n' "$out" | grep -q "^ *$k (" || {
            echo "FAIL: $page lacks the setting $k"
            fail=1
        }
    done
    [ "$fail" -ne 0 ] || echo "ok: $page renders, with every setting"
done
exit "$fail"
