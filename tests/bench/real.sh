#!/bin/sh
# real.sh - the second benchmark table: real programs, timed whole, under the
# five allocators through the same path (LD_PRELOAD; glibc as is): gcc on a
# big generated file, a Python allocation-heavy script, sqlite3 building an
# index, git gc on a generated repository, sort of a large file. Runs are
# interleaved (run 1 of every program and allocator, then run 2, ...); the
# table gives the median wall time and the median peak RSS (wait4's, via
# bench-time), and each allocator's time ratio to pmalloc.
#   real.sh --pm-lib FILE [--runs N] [--bindir DIR] [--out DIR] [--publish --srcdir DIR]
{
pm_lib=
runs=3
bindir=tests/bench
out=bench-results
srcdir=.
publish=0
allocs="pmalloc glibc jemalloc tcmalloc mimalloc"
while [ $# -gt 0 ]; do
    case $1 in
    --pm-lib) pm_lib=$2; shift ;;
    --runs) runs=$2; shift ;;
    --bindir) bindir=$2; shift ;;
    --out) out=$2; shift ;;
    --srcdir) srcdir=$2; shift ;;
    --alloc) allocs=$(echo "$2" | tr ',' ' '); shift ;;
    --publish) publish=1 ;;
    *) echo "real.sh: unknown option $1" >&2; exit 64 ;;
    esac
    shift
done
[ -f "$pm_lib" ] || { echo "real.sh: --pm-lib FILE (libpmalloc-override.so) needed" >&2; exit 64; }
[ -x "$bindir/bench-time" ] || { echo "real.sh: $bindir/bench-time not built" >&2; exit 1; }
unset LD_PRELOAD

lib_of() {
    case $1 in
    pmalloc) echo "$pm_lib" ;;
    glibc) echo ;;
    jemalloc) n=libjemalloc.so.2 ;;
    tcmalloc) n=libtcmalloc_minimal.so.4 ;;
    mimalloc) n=libmimalloc.so.2 ;;
    esac
    case $1 in
    jemalloc|tcmalloc|mimalloc)
        for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib; do
            [ -f "$d/$n" ] && { echo "$d/$n"; return 0; }
        done
        echo MISSING ;;
    esac
}
active=
for a in $allocs; do
    [ "$(lib_of $a)" = MISSING ] && { echo "real.sh: $a not installed, skipped" >&2; continue; }
    active="$active $a"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pm-real-bench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$out" || exit 1
csv=$out/real.csv
echo "program,allocator,run,wall_s,maxrss_kib,status" >"$csv"

# The inputs, made once (not timed).
awk 'BEGIN {
    for (i = 0; i < 600; i++) {
        printf "static int tab%d[] = {", i
        for (j = 0; j < 24; j++) printf "%d,", (i * 31 + j * 17) % 1009
        print "};"
        printf "int f%d(int x) { int s = 0; switch (x %% 7) {", i
        for (j = 0; j < 7; j++) printf " case %d: s += tab%d[%d] * x + %d; break;", j, i, j, i + j
        print " } for (int k = 0; k < 24; k++) s ^= tab" i "[k] << (k % 5); return s; }"
    }
}' >"$tmp/big.c"
cat >"$tmp/alloc.py" <<'PY'
import threading
def work(seed):
    d = {}
    for i in range(150000):
        d["k%d-%d" % (seed, i % 20000)] = [str(i) * (i % 13), bytes(i % 200), (i, seed)]
        if i % 5 == 0:
            d.pop("k%d-%d" % (seed, (i * 31) % 20000), None)
ts = [threading.Thread(target=work, args=(s,)) for s in range(4)]
for t in ts: t.start()
for t in ts: t.join()
PY
cat >"$tmp/index.sql" <<'SQL'
create table t(id integer primary key, k text, v integer, w text);
with recursive c(i) as (select 1 union all select i + 1 from c where i < 400000)
insert into t select i, printf('key%07d', (i * 7919) % 400000), i % 1000,
    substr(hex(i * i), 1, 12) from c;
create index tk on t(k);
create index tvw on t(v, w);
SQL
awk 'BEGIN { srand(7); for (i = 0; i < 1500000; i++)
    printf "%08x %s line %d\n", int(rand() * 4294967295),
        substr("abcdefghijklmnop", 1 + i % 16), i }' \
    >"$tmp/sort.in"
(
    export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@e GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@e
    git init -q "$tmp/repo" && cd "$tmp/repo" || exit 1
    for c in 1 2 3 4 5 6; do
        awk -v c=$c 'BEGIN { for (i = 0; i < 1500; i++) { f = sprintf("f%04d", i)
            for (j = 0; j < 10 + (i * c) % 30; j++) print c, i, j >> f; close(f) } }'
        git add -A && git commit -q -m "c$c"
    done
) || exit 1

# cmd_of PROGRAM: its command line; it works in $tmp/w (fresh for each run).
cmd_of() {
    case $1 in
    gcc) echo "gcc -O2 -c $tmp/big.c -o $tmp/w/big.o" ;;
    python) echo "python3 $tmp/alloc.py" ;;
    sqlite) echo "sqlite3 $tmp/w/db '.read $tmp/index.sql'" ;;
    git) echo "git -C $tmp/w/repo gc -q --aggressive" ;;
    sort) echo "LC_ALL=C sort -o $tmp/w/sorted $tmp/sort.in" ;;
    esac
}
progs="gcc python sqlite git sort"
load=$(cut -d' ' -f1-3 /proc/loadavg)
r=1
while [ $r -le $runs ]; do
    for p in $progs; do
        line="$p run $r/$runs:"
        for a in $active; do
            rm -rf "$tmp/w" && mkdir "$tmp/w" || exit 1
            [ $p = git ] && cp -r "$tmp/repo" "$tmp/w/repo"
            pre=$(lib_of $a)
            rm -f "$tmp/time"
            # The peak RSS is the largest process's (gcc's cc1, git's
            # pack-objects): wait4 reports the largest child's.
            if [ -n "$pre" ]; then
                LD_PRELOAD=$pre "$bindir/bench-time" -t 300 "$tmp/time" sh -c "$(cmd_of $p)" \
                    >/dev/null 2>"$tmp/err"
            else
                "$bindir/bench-time" -t 300 "$tmp/time" sh -c "$(cmd_of $p)" \
                    >/dev/null 2>"$tmp/err"
            fi
            st=$?
            read wall rss _ <"$tmp/time"
            if [ $st -ne 0 ]; then
                echo "real.sh: $p under $a failed ($st): $(tail -2 "$tmp/err")" >&2
                wall=; rss=
            fi
            echo "$p,$a,$r,$wall,$rss,$st" >>"$csv"
            line="$line $a ${wall:-FAIL}"
        done
        echo "$line" >&2
    done
    r=$((r + 1))
done

table=$out/real.md
{
    echo "Real programs, median of $runs interleaved runs (load average at start: $load;"
    echo "$(getconf _NPROCESSORS_ONLN) CPUs, $(uname -srm); the machine is shared)."
    echo "Time in seconds (ratio: its time over pmalloc's; below 1 it was faster), peak RSS in MiB."
    echo
    awk -F, -v allocs="$active" -v progs="$progs" '
    function median(key,   n, i, j, t, v) {
        n = split(vals[key], v, " ")
        for (i = 1; i <= n; i++)
            for (j = i + 1; j <= n; j++)
                if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return n ? (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) : ""
    }
    NR > 1 && $4 != "" {
        vals[$1 "," $2] = vals[$1 "," $2] " " $4
        mem[$1 "," $2] = mem[$1 "," $2] " " $5
    }
    END {
        na = split(allocs, A, " "); np = split(progs, P, " ")
        h = "| program |"; s = "|---|"
        for (i = 1; i <= na; i++) { h = h " " A[i] " |"; s = s "---|" }
        print h; print s
        for (p = 1; p <= np; p++) {
            ref = median(P[p] ",pmalloc"); row = "| " P[p] " |"
            for (i = 1; i <= na; i++) {
                t = median(P[p] "," A[i])
                vals[P[p] "," A[i] ",m"] = mem[P[p] "," A[i]]
                m = median(P[p] "," A[i] ",m")
                if (t == "") { row = row " failed |"; continue }
                lg[A[i]] += log(t / ref); cnt[A[i]]++
                row = row sprintf(" %.2f s (%.2f), %.0f MiB |", t, t / ref, m / 1024)
            }
            print row
        }
        row = "| geomean of time ratios |"
        for (i = 1; i <= na; i++)
            row = row sprintf(" %.2f |", cnt[A[i]] ? exp(lg[A[i]] / cnt[A[i]]) : 0)
        print row
    }' "$csv"
} >"$table"
cat "$table"
[ $publish = 1 ] && cp "$table" "$srcdir/tests/bench/report/real.md"
exit 0
}
