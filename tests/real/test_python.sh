#!/bin/sh
# test_python.sh - Python 3 under pmalloc: a multi-threaded script that
# allocates heavily (same output as without), a slice of Python's own
# regression suite (must pass), and settings that visibly apply inside it:
# PM_ARENA_MAX=1 shows one arena in --stats, PM_PRINT_CONFIG=1 prints.
. "${PM_TEST_SRCDIR:-.}/tests/real/common.sh"
py=/usr/bin/python3
[ -x $py ] || skip "python3 not installed"

cat >"$work/alloc.py" <<'PY'
import threading, hashlib
def work(seed, out):
    d = {}
    for i in range(60000):
        k = "k%d-%d" % (seed, i % 5000)
        d[k] = [str(i) * (i % 17), bytes(i % 300), (i, seed)]
        if i % 7 == 0:
            d.pop("k%d-%d" % (seed, (i * 31) % 5000), None)
    h = hashlib.sha256()
    for k in sorted(d):
        h.update(k.encode()); h.update(repr(d[k]).encode())
    out[seed] = h.hexdigest()
out = {}
ts = [threading.Thread(target=work, args=(s, out)) for s in range(8)]
for t in ts: t.start()
for t in ts: t.join()
for s in sorted(out): print(s, out[s])
PY
same py-threads $py "$work/alloc.py"

# Python's own tests (Debian: libpython3.11-testsuite).
if $py -c 'import test.test_dict' 2>/dev/null; then
    mods="test_dict test_list test_set test_threading test_unicode test_bytes test_re
          test_json test_pickle test_gc test_weakref test_mmap test_array test_collections
          test_itertools"
    set -- $mods
    # Serial, no extra resources: the run a plain python3 -m test makes.
    if ! (cd "$work" && pm $py -m test $mods) >"$work/regr.pm" 2>&1 ||
        ! grep -q "^All $# tests OK" "$work/regr.pm"; then
        tail -30 "$work/regr.pm"
        # Why a run without pmalloc: a test that fails there too says
        # nothing about pmalloc.
        if (cd "$work" && $py -m test -q $mods) >"$work/regr.glibc" 2>&1; then
            fail "python -m test fails under pmalloc and passes without"
        fi
        note "python -m test fails without pmalloc too (not counted)"
    else
        note "python -m test under pmalloc: $(grep "^All $# tests OK" "$work/regr.pm")"
    fi
else
    echo "SKIP part: Python's regression suite (libpython3.11-testsuite not installed)"
fi

# Settings inside a preloaded program.
PM_ARENA_MAX=1 PM_SHOW_STATS=1 pm $py "$work/alloc.py" >/dev/null 2>"$work/stats1"
grep -q '^pmalloc: total: arenas 1,' "$work/stats1" || {
    cat "$work/stats1"
    fail "PM_ARENA_MAX=1: --stats does not show one arena"
}
"$launcher" --arena-max 4 --stats -- $py "$work/alloc.py" >/dev/null 2>"$work/stats4"
grep -q '^pmalloc: total: arenas [2-4],' "$work/stats4" || {
    cat "$work/stats4"
    fail "pmalloc --arena-max 4 --stats: not 2 to 4 arenas for 8 threads"
}
[ "$(grep -c '^pmalloc: total:' "$work/stats4")" = 1 ] || fail "--stats: not once"
PM_PRINT_CONFIG=1 pm $py -c 'print("hi")' >"$work/pc.out" 2>"$work/pc.err"
grep -q '^pmalloc settings' "$work/pc.err" && grep -q 'arena_max' "$work/pc.err" ||
    fail "PM_PRINT_CONFIG=1 printed no settings at start"
note "settings apply inside python"

# --stats in a program that forks: each process writes its own, once.
"$launcher" --stats -- $py -c '
import os
pid = os.fork()
if pid == 0:
    x = [str(i) for i in range(1000)]
else:
    os.waitpid(pid, 0)' >/dev/null 2>"$work/fork.stats"
[ "$(grep -c '^pmalloc: total:' "$work/fork.stats")" = 2 ] || {
    cat "$work/fork.stats"
    fail "--stats with a fork: not one total per process"
}
note "--stats: once per process, the forked child too"
