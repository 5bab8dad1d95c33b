#!/bin/sh
# test_programs.sh - small programs that call the C library's names, under
# pmalloc: a C++ program (new/delete, sized and aligned delete, threads,
# strings, containers: the same output as without), glibc 2.36's semantics
# of each malloc name (glibc_api.c: the same output as without), PM_CHECK=1
# catching an overflow in plain malloc/free, and mallopt(M_MMAP_MAX, 0)
# with requests of 64 MiB and more, and the launcher's options.
. "${PM_TEST_SRCDIR:-.}/tests/real/common.sh"
need gcc g++
src=$srcdir/tests/real

g++ -std=c++17 -O2 -pthread -o "$work/cxx" "$src/cxx_prog.cc" || fail "g++ cxx_prog.cc"
same cxx "$work/cxx"
PM_SHOW_STATS=1 pm "$work/cxx" >/dev/null 2>"$work/cxx.stats"
grep -q '^pmalloc: total: arenas' "$work/cxx.stats" || fail "cxx: pmalloc did not serve it"

gcc -O1 -o "$work/api" "$src/glibc_api.c" || fail "gcc glibc_api.c"
same api "$work/api" api
grep . "$work/api.pm.err" && fail "api: pmalloc wrote to stderr"

PM_CHECK=1 pm "$work/api" overflow >"$work/of.out" 2>"$work/of.err"
rc=$?
[ $rc -eq 134 ] || fail "PM_CHECK=1 overflow: exit $rc, not SIGABRT ($(cat "$work/of.out"))"
grep -q '^pmalloc: .*heap overflow' "$work/of.err" || fail "overflow: no pmalloc line"
note "PM_CHECK=1 caught: $(cat "$work/of.err")"

pm "$work/api" nommap >"$work/nommap.out" 2>&1 || {
    cat "$work/nommap.out"
    fail "mallopt(M_MMAP_MAX, 0) then 64 MiB and more: not served"
}
note "$(tail -1 "$work/nommap.out")"

# Why setpriv as root: CAP_IPC_LOCK lifts RLIMIT_MEMLOCK, and the test would
# pass whatever pmalloc did.
run_unlocked() {
    if [ "$(id -u)" -eq 0 ]; then
        command -v setpriv >/dev/null || return 77
        setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock "$@"
    else
        "$@"
    fi
}
run_unlocked "$work/api" mlock >"$work/ml.glibc" 2>&1
rc=$?
if [ $rc -eq 77 ]; then
    echo "SKIP part: mlockall (no setpriv, or the limit cannot be set here)"
else
    [ $rc -eq 0 ] || fail "mlock: fails without pmalloc: $(cat "$work/ml.glibc")"
    LD_PRELOAD=$lib run_unlocked "$work/api" mlock >"$work/ml.pm" 2>&1 ||
        fail "mlockall(MCL_FUTURE) then a few MiB: $(cat "$work/ml.pm")"
    cmp -s "$work/ml.glibc" "$work/ml.pm" || fail "mlock: output differs"
    note "$(cat "$work/ml.pm")"
fi

# The launcher: its options reach the program; bad ones exit 2 in one line.
"$launcher" --check 1 -- "$work/api" overflow >/dev/null 2>"$work/l.err"
[ $? -eq 134 ] && grep -q '^pmalloc: .*heap overflow' "$work/l.err" ||
    fail "pmalloc --check 1: overflow not caught"
"$launcher" --print-config --mmap-threshold 1M --trim-threshold 256K -- "$work/api" api \
    >/dev/null 2>"$work/l.err" || fail "launcher run"
grep -q 'mmap_threshold = 1M (env PM_MMAP_THRESHOLD)' "$work/l.err" || {
    cat "$work/l.err"
    fail "pmalloc --mmap-threshold 1M --print-config"
}
"$launcher" --help | grep -q -e '--arena-max N' || fail "--help"
for bad in "--arena-max" "--arena-max x" "--nope" "--check 1"; do
    # shellcheck disable=SC2086
    "$launcher" $bad >"$work/bad.out" 2>"$work/bad.err"
    rc=$?
    [ $rc -eq 2 ] && [ "$(wc -l <"$work/bad.err")" -eq 1 ] &&
        grep -q '^pmalloc: ' "$work/bad.err" ||
        fail "pmalloc $bad: exit $rc, $(cat "$work/bad.err")"
done
note "launcher: options apply, bad ones exit 2"
