# common.sh - shared by the real-program tests (tests/real/test_*.sh): each
# runs a program nobody here wrote with and without pmalloc preloaded
# (libpmalloc-override.so of the build tree) and compares the two.
# Exit codes are automake's: 0 pass, 1 fail, 77 skip.

builddir=${PM_TEST_BUILDDIR:-$PWD}
srcdir=${PM_TEST_SRCDIR:-$PWD}
lib=$builddir/.libs/libpmalloc-override.so
launcher=$builddir/pmalloc

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "== $*"; }

# Why skip: a sanitizer runtime must be the first library loaded and
# replaces malloc itself; an LD_PRELOADed malloc cannot run beside it.
case ${PM_TEST_SAN:-} in
*sanitize*) skip "sanitizer build: a preloaded malloc cannot run under ASan/TSan" ;;
esac
[ -f "$lib" ] || fail "$lib not built"

# need CMD...: skip unless each command is installed.
need() {
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip "$c not installed (.ci/run installs it)"
    done
}

work=$(mktemp -d "${TMPDIR:-/tmp}/pm-real.XXXXXX") || fail "mktemp"
trap 'rm -rf "$work"' EXIT

# pm CMD...: CMD with pmalloc preloaded.
pm() { LD_PRELOAD=$lib "$@"; }

# same NAME CMD...: run CMD plain and preloaded (in $work/NAME-{glibc,pm}),
# both must exit 0 with the same stdout.
same() {
    name=$1
    shift
    mkdir -p "$work/$name-glibc" "$work/$name-pm"
    (cd "$work/$name-glibc" && "$@") >"$work/$name.glibc.out" 2>"$work/$name.glibc.err" ||
        fail "$name: failed without pmalloc: $(tail -3 "$work/$name.glibc.err")"
    (cd "$work/$name-pm" && LD_PRELOAD=$lib "$@") >"$work/$name.pm.out" 2>"$work/$name.pm.err" ||
        fail "$name: failed under pmalloc: $(tail -5 "$work/$name.pm.err")"
    cmp -s "$work/$name.glibc.out" "$work/$name.pm.out" || {
        diff "$work/$name.glibc.out" "$work/$name.pm.out" | head -20
        fail "$name: output differs under pmalloc"
    }
    note "$name: same output ($(wc -l <"$work/$name.pm.out") lines)"
}
