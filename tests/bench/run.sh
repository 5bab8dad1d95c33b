#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh - the benchmark runner behind `make bench` and `make bench-sweep`.
#
# Runs every workload (tests/bench/*.c, each built as NAME-pm and NAME-libc)
# under five allocators: pmalloc (the -pm build), glibc (the -libc build as
# is), and jemalloc, tcmalloc and mimalloc (the -libc build with LD_PRELOAD).
# Runs are interleaved (for each workload and run: A B C D E) so that drift in
# the machine's speed falls on every allocator alike. Wall time and peak RSS
# come from bench-time (built next to the workloads) or else /usr/bin/time.
# A run that exits non-zero (a workload found a damaged block, crashed or
# timed out) is reported loudly and left out of the medians; the script then
# exits 1. Needs only a POSIX sh and awk; gnuplot (gnuplot-nox) for charts.
#
# Output in --out DIR: bench.md (also on stdout), bench.csv (every run),
# bench.png or bench.svg (time normalised to pmalloc); in --sweep mode the
# same as bench-sweep.*. --publish copies the table and chart to
# SRCDIR/tests/bench/report/.
set -u
# The whole script is one brace group: the shell reads it all before running
# it, so that editing this file during a long run cannot derail the run.
{

usage() {
    cat <<'EOF'
usage: run.sh [options]
  --quick            about 5x less work per run (passed to every workload)
  --threads N        worker threads (default: the workloads' default, online CPUs)
  --scale X          multiply every workload's work by X
  --runs N           runs per workload and allocator (default 5; 3 in --sweep)
  --only "W1 W2"     only these workloads (default: all; see --list)
  --alloc "A1 A2"    only these allocators (default: pmalloc glibc jemalloc
                     tcmalloc mimalloc)
  --sweep            thread sweep: larson and xmalloc at 1 2 4 8 16 threads,
                     throughput against threads
  --sweep-threads "1 2 4"   thread counts for --sweep
  --timeout S        kill a run after S seconds and count it as failed (default 120)
  --load N           run everything beside N CPU-bound processes (a loaded machine:
                     wall time then passes while a workload waits for the CPU)
  --publish          also copy the table and chart to SRCDIR/tests/bench/report/
  --list             list the workloads and exit
  --bindir DIR       where the workload programs are (default tests/bench)
  --srcdir DIR       the source tree (default .)
  --out DIR          where results go (default bench-results)
  --pm-lib FILE      run pmalloc as the others run: the -libc build with
                     LD_PRELOAD=FILE (libpmalloc-override.so); without it,
                     the -pm build (pm_* calls)
EOF
}

WORKLOADS="larson xmalloc cache-scratch cache-thrash glibc-simple glibc-thread mstress
large realloc thread-churn"
SWEEP_WORKLOADS="larson xmalloc"

bindir=tests/bench
srcdir=.
out=bench-results
runs=
threads=
wargs=
sweep=0
sweep_threads="1 2 4 8 16"
publish=0
only=
allocs="pmalloc glibc jemalloc tcmalloc mimalloc"
pm_lib=
limit=120
cpu_load=0
user_args=

# The report quotes the command line; the options make adds are not in it.
add_user_arg() {
    case $1 in
    *" "*) user_args="$user_args '$1'" ;;
    *) user_args="$user_args $1" ;;
    esac
}

while [ $# -gt 0 ]; do
    case $1 in
    --bindir|--srcdir|--out) ;;
    *) add_user_arg "$1" ;;
    esac
    need=2
    case $1 in
    --quick) wargs="$wargs --quick"; need=1 ;;
    --threads) threads=${2-} ;;
    --scale) wargs="$wargs --scale ${2-}" ;;
    --runs) runs=${2-} ;;
    --only) only=$(echo "${2-}" | tr ',' ' ') ;;
    --alloc) allocs=$(echo "${2-}" | tr ',' ' ') ;;
    --pm-lib) pm_lib=${2-} ;;
    --sweep) sweep=1; need=1 ;;
    --sweep-threads) sweep_threads=$(echo "${2-}" | tr ',' ' ') ;;
    --timeout) limit=${2-} ;;
    --load) cpu_load=${2-} ;;
    --publish) publish=1; need=1 ;;
    --list) echo $WORKLOADS; exit 0 ;;
    --bindir) bindir=${2-} ;;
    --srcdir) srcdir=${2-} ;;
    --out) out=${2-} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 64 ;;
    esac
    if [ $need = 2 ]; then
        if [ $# -lt 2 ]; then
            echo "run.sh: $1 needs a value" >&2
            exit 64
        fi
        case $1 in
        --bindir|--srcdir|--out) ;;
        *) add_user_arg "$2" ;;
        esac
    fi
    shift $need
done
user_args=${user_args# }

if [ $sweep = 1 ]; then
    workloads=${only:-$SWEEP_WORKLOADS}
    runs=${runs:-3}
    base=bench-sweep
else
    workloads=${only:-$WORKLOADS}
    runs=${runs:-5}
    base=bench
fi
for n in "$runs" "$limit" ${threads:+"$threads"} $sweep_threads; do
    case $n in
    ''|*[!0-9]*|0) echo "run.sh: '$n' is not a positive whole number" >&2; exit 64 ;;
    esac
done
for w in $workloads; do
    case " $(echo $WORKLOADS) " in
    *" $w "*) ;;
    *) echo "run.sh: no workload $w (run.sh --list)" >&2; exit 64 ;;
    esac
done

# The allocators are chosen here, not inherited from the caller's shell.
unset LD_PRELOAD

# Where a preloadable library lives: the multiarch directory on Debian.
find_lib() {
    for d in ${BENCH_LIBDIR:-} /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu \
             /usr/lib64 /usr/lib /usr/local/lib; do
        if [ -f "$d/$1" ]; then
            echo "$d/$1"
            return 0
        fi
    done
    return 1
}

# Set lib and pkg for a preloaded allocator.
preload_of() {
    case $1 in
    jemalloc) lib=libjemalloc.so.2; pkg=libjemalloc2 ;;
    tcmalloc) lib=libtcmalloc_minimal.so.4; pkg=libgoogle-perftools4 ;;
    mimalloc) lib=libmimalloc.so.2; pkg=libmimalloc2.0 ;;
    *) lib=; pkg= ;;
    esac
}

notes=
active=
for a in $allocs; do
    case $a in
    pmalloc)
        if [ -n "$pm_lib" ]; then
            if [ -f "$pm_lib" ]; then
                active="$active $a"
            else
                notes="$notes
- pmalloc skipped: $pm_lib not built (run \`make bench\`)."
            fi
        elif [ -x "$bindir/larson-pm" ]; then
            active="$active $a"
        else
            notes="$notes
- pmalloc skipped: $bindir/*-pm not built (run \`make bench\`)."
        fi ;;
    glibc)
        active="$active $a" ;;
    jemalloc|tcmalloc|mimalloc)
        preload_of $a
        if find_lib $lib >/dev/null; then
            active="$active $a"
        else
            notes="$notes
- $a skipped: $lib not found (Debian package $pkg)."
        fi ;;
    *) echo "run.sh: unknown allocator $a" >&2; exit 64 ;;
    esac
done
active=${active# }
[ -n "$notes" ] && printf '%s\n' "$notes" | sed '/^$/d' >&2
if [ -z "$active" ]; then
    echo "run.sh: no allocator to run" >&2
    exit 1
fi
# Ratios are pmalloc's; without it, the first allocator's.
ref=${active%% *}

if [ -x "$bindir/bench-time" ]; then
    timer=bench-time
elif [ -x /usr/bin/time ]; then
    timer=gnu-time
    echo "run.sh: $bindir/bench-time not built; timing with /usr/bin/time (10 ms)" >&2
else
    echo "run.sh: neither $bindir/bench-time nor /usr/bin/time: run \`make bench\`" >&2
    exit 1
fi

mkdir -p "$out/logs" || exit 1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pm-bench.XXXXXX") || exit 1
load_pids=
trap 'rm -rf "$tmp"; [ -z "$load_pids" ] || kill $load_pids 2>/dev/null' EXIT
trap 'exit 130' INT TERM
csv="$out/$base.csv"
echo "workload,allocator,threads,run,wall_s,maxrss_kib,ops,status" >"$csv"
failed=0

# run_one WORKLOAD ALLOC RUN THREADS: one timed run, one line in the CSV.
run_one() {
    w=$1; a=$2; r=$3; t=$4
    targs=$wargs
    [ -n "$t" ] && targs="$targs --threads $t"
    case $a in
    pmalloc)
        # Why the -libc build under the preload: the path the others take.
        if [ -n "$pm_lib" ]; then bin=$bindir/$w-libc; pre=$pm_lib
        else bin=$bindir/$w-pm; pre=; fi ;;
    glibc) bin=$bindir/$w-libc; pre= ;;
    *) bin=$bindir/$w-libc; preload_of $a; pre=$(find_lib $lib) ;;
    esac
    rm -f "$tmp/time"
    if [ $timer = bench-time ]; then
        set -- "$bindir/bench-time" -t "$limit" "$tmp/time" "$bin" $targs
    else
        set -- /usr/bin/time -f "%e %M" -o "$tmp/time" "$bin" $targs
    fi
    if [ -n "$pre" ]; then
        LD_PRELOAD=$pre "$@" >"$tmp/out" 2>"$tmp/err"
    else
        "$@" >"$tmp/out" 2>"$tmp/err"
    fi
    st=$?
    wall=; rss=
    [ -s "$tmp/time" ] && read wall rss _ <<EOF
$(tail -n 1 "$tmp/time")
EOF
    ops=$(sed -n 's/^bench: .* ops=\([0-9]*\) .*/\1/p' "$tmp/out")
    # the thread count the workload reports (its default when not given)
    rt=$(sed -n 's/^bench: .* threads=\([0-9]*\) .*/\1/p' "$tmp/out")
    if [ $st -ne 0 ] || [ -z "$ops" ] || [ -z "$wall" ]; then
        failed=$((failed + 1))
        log="$out/logs/$w-$a-t${t:-default}-r$r.log"
        cat "$tmp/out" "$tmp/err" >"$log"
        case $st in
        124) why="timed out after ${limit}s" ;;
        0) why="exit status 0 but no result line" ;;
        *) why="exit status $st" ;;
        esac
        {
            echo
            echo "!!!!!! FAILED: $w under $a, run $r: $why (not timed; log: $log)"
            tail -n 5 "$tmp/err" | sed 's/^/!!!!!!   /'
            echo
        } >&2
        echo "$w,$a,${rt:-$t},$r,,,,FAILED($st)" >>"$csv"
        res="FAIL"
    else
        echo "$w,$a,${rt:-$t},$r,$wall,$rss,$ops,ok" >>"$csv"
        res=$(printf "%.3fs" "$wall")
    fi
}

# run_matrix THREADS WORKLOADS: every run of every workload and allocator.
run_matrix() {
    mt=$1; shift
    for mw in "$@"; do
        r=1
        while [ $r -le $runs ]; do
            line=$(printf '%-13s %s run %d/%d:' "$mw" "${mt:+T=$mt}" $r $runs)
            for ma in $active; do
                run_one "$mw" "$ma" $r "$mt"
                line="$line $ma $res"
            done
            echo "$line" >&2
            r=$((r + 1))
        done
    done
}

host=$(uname -srm)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')
if [ -n "${BENCH_VIA_MAKE:-}" ]; then
    # make bench-sweep adds --sweep itself
    [ "$BENCH_VIA_MAKE" = bench-sweep ] && user_args=$(echo "$user_args" | sed 's/^--sweep *//')
    cmd="make $BENCH_VIA_MAKE${user_args:+ BENCH_ARGS=\"$user_args\"}"
else
    cmd="tests/bench/run.sh${user_args:+ $user_args}"
fi
tunables=$(env | grep -E '^(PM_|MALLOC_|GLIBC_TUNABLES|MIMALLOC_|TCMALLOC_)' | sort |
           tr '\n' ' ')

preloads=
[ -n "$pm_lib" ] && preloads=" pmalloc: LD_PRELOAD=$pm_lib;"
for a in $active; do
    preload_of $a
    [ -n "$lib" ] && preloads="$preloads $a: LD_PRELOAD=$(find_lib $lib);"
done
preloads=${preloads%;}
# other work on the machine skews the timings: the report says how busy it was
load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
# --load N: busy loops beside the workloads, for as long as they run
i=0
while [ "$i" -lt "$cpu_load" ]; do
    sh -c 'while :; do :; done' &
    load_pids="$load_pids $!"
    i=$((i + 1))
done
[ "$cpu_load" -gt 0 ] && load="$load; beside $cpu_load CPU-bound processes (--load $cpu_load)"

start=$(date +%s)
echo "run.sh: $base: allocators: $active; workloads: $(echo $workloads); runs: $runs" >&2
if [ $sweep = 1 ]; then
    for st_threads in $sweep_threads; do
        run_matrix "$st_threads" $workloads
    done
else
    run_matrix "$threads" $workloads
fi
elapsed=$(( $(date +%s) - start ))

# ---- summary: medians, ratios, geometric means (awk) ----
md="$out/$base.md"
chart_base="$out/$base"
{
    echo "# pmalloc benchmarks$( [ $sweep = 1 ] && echo ': thread sweep')"
    echo
    echo "- Command: \`$cmd\` ($elapsed s in all)"
    echo "- Host: $host; $ncpu CPUs${cpu:+ ($cpu)}; $(date -u '+%Y-%m-%d %H:%M UTC');" \
         "load average before: ${load:-?}"
    if [ $sweep = 1 ]; then
        tdesc="$sweep_threads (xmalloc at 1 thread frees its own blocks; from 2 on,"
        tdesc="$tdesc half the threads produce and half consume)"
    else
        tdesc=${threads:-default ($ncpu)}
    fi
    echo "- Runs: $runs per workload and allocator, interleaved; medians shown." \
         "Threads: $tdesc."
    echo "- Allocators: $active.$preloads"
    [ -n "$tunables" ] && echo "- Environment: \`$tunables\`"
    [ -n "$notes" ] && printf '%s\n' "$notes" | sed '/^$/d'
    [ $failed -gt 0 ] &&
        echo "- **$failed run(s) FAILED**; see $out/logs/. They are not in the medians."
    echo
} >"$md"

# The median of arr[key, 1..n]; both reports' awk programs start with it.
awk_median='
function median(arr, key, n,   i, j, v, a) {
    for (i = 1; i <= n; i++) a[i] = arr[key, i]
    for (i = 2; i <= n; i++) {          # insertion sort: n is small
        v = a[i]
        for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]
        a[j + 1] = v
    }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
'

if [ $sweep = 0 ]; then
    awk -F, -v allocs="$active" -v ref="$ref" -v wl="$(echo $workloads)" \
        -v norm="$out/$base-norm.dat" "$awk_median"'
    NR > 1 {
        k = $1 SUBSEP $2
        if ($8 == "ok") { n[k]++; vals[k, n[k]] = $5; rss[k, n[k]] = $6 }
        else bad[k]++
    }
    END {
        na = split(allocs, A, " "); nw = split(wl, W, " ")
        for (i = 1; i <= nw; i++) for (j = 1; j <= na; j++) {
            k = W[i] SUBSEP A[j]
            if (n[k] && !bad[k]) { T[k] = median(vals, k, n[k]); R[k] = median(rss, k, n[k]) }
        }
        hdr = "| workload |"; sep = "|---|"
        for (j = 1; j <= na; j++) { hdr = hdr " " A[j] " |"; sep = sep "---:|" }
        for (pass = 1; pass <= 2; pass++) {
            if (pass == 1)
                printf "## Wall time, seconds (in brackets: %s / other; < 1: %s is faster)" \
                       "\n\n", ref, ref
            else
                printf "\n## Peak RSS, MiB (in brackets: %s / other; < 1: %s uses less)" \
                       "\n\n", ref, ref
            print hdr; print sep
            for (j = 1; j <= na; j++) { lsum[j] = 0; lcnt[j] = 0 }
            for (i = 1; i <= nw; i++) {
                line = "| " W[i] " |"
                kr = W[i] SUBSEP ref
                for (j = 1; j <= na; j++) {
                    k = W[i] SUBSEP A[j]
                    if (!(k in T)) { line = line " **FAILED** |"; continue }
                    v = pass == 1 ? T[k] : R[k]
                    cell = pass == 1 ? sprintf("%.3f", v) : sprintf("%.1f", v / 1024)
                    if (A[j] != ref && (kr in T)) {
                        rv = (pass == 1 ? T[kr] : R[kr]) / v
                        cell = cell sprintf(" (%.2f)", rv)
                        lsum[j] += log(rv); lcnt[j]++
                    }
                    line = line " " cell " |"
                }
                print line
            }
            line = "| **geomean of ratios** |"
            for (j = 1; j <= na; j++)
                line = line (lcnt[j] ? sprintf(" **%.2f** |", exp(lsum[j] / lcnt[j])) : " |")
            print line
        }
        # chart data: time normalised to the reference allocator
        printf "workload" > norm
        for (j = 1; j <= na; j++) printf " %s", A[j] > norm
        printf "\n" > norm
        for (i = 1; i <= nw; i++) {
            kr = W[i] SUBSEP ref
            printf "%s", W[i] > norm
            for (j = 1; j <= na; j++) {
                k = W[i] SUBSEP A[j]
                printf " %s", ((k in T) && (kr in T)) ? sprintf("%.4f", T[k] / T[kr]) : "?" > norm
            }
            printf "\n" > norm
        }
    }' "$csv" >>"$md"
else
    awk -F, -v allocs="$active" -v ref="$ref" -v wl="$(echo $workloads)" \
        -v tl="$sweep_threads" -v dat="$out/$base" "$awk_median"'
    NR > 1 {
        k = $1 SUBSEP $2 SUBSEP $3
        if ($8 == "ok") { n[k]++; vals[k, n[k]] = $7 / $5 }   # ops/s of each run
        else bad[k]++
    }
    END {
        na = split(allocs, A, " "); nw = split(wl, W, " "); nt = split(tl, TH, " ")
        printf "## Throughput, million ops/s (median; in brackets: %s / other;", ref
        printf " > 1: %s is faster)\n", ref
        for (i = 1; i <= nw; i++) {
            printf "\n### %s\n\n| threads |", W[i]
            for (j = 1; j <= na; j++) printf " %s |", A[j]
            printf "\n|---:|"
            for (j = 1; j <= na; j++) printf "---:|"
            printf "\n"
            f = dat "-" W[i] ".dat"
            printf "threads" > f
            for (j = 1; j <= na; j++) printf " %s", A[j] > f
            printf "\n" > f
            for (t = 1; t <= nt; t++) {
                printf "| %s |", TH[t]; printf "%s", TH[t] > f
                kr = W[i] SUBSEP ref SUBSEP TH[t]
                rv = (n[kr] && !bad[kr]) ? median(vals, kr, n[kr]) : 0
                for (j = 1; j <= na; j++) {
                    k = W[i] SUBSEP A[j] SUBSEP TH[t]
                    if (!n[k] || bad[k]) { printf " **FAILED** |"; printf " ?" > f; continue }
                    v = median(vals, k, n[k])
                    if (A[j] != ref && rv) printf " %.2f (%.2f) |", v / 1e6, rv / v
                    else printf " %.2f |", v / 1e6
                    printf " %.4f", v / 1e6 > f
                }
                printf "\n"; printf "\n" > f
            }
        }
    }' "$csv" >>"$md"
fi

# ---- chart (gnuplot): PNG via pngcairo, else SVG ----
chart=
if command -v gnuplot >/dev/null 2>&1; then
    if [ $sweep = 0 ]; then
        plot="set title 'Wall time relative to $ref (median of $runs; lower is faster)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set grid ytics
set ylabel 'time / $ref time'
set xtics rotate by -30 nomirror
set key outside right top
set datafile missing '?'
plot for [i=2:$(( $(echo $active | wc -w) + 1 ))] '$out/$base-norm.dat' \\
     using i:xtic(1) title columnheader(i), 1 with lines lc 'black' dt 2 notitle"
    else
        nsw=$(echo $workloads | wc -w)
        tmin=$(echo $sweep_threads | tr ' ' '\n' | sort -n | head -n 1)
        tmax=$(echo $sweep_threads | tr ' ' '\n' | sort -n | tail -n 1)
        plot="set multiplot layout 1,$nsw title 'Throughput against threads (median of $runs)'
set logscale x 2
set xrange [$tmin / 1.2 : $tmax * 1.2]
set xtics ($(echo $sweep_threads | sed 's/ /, /g'))
set grid
set xlabel 'threads'
set ylabel 'million ops/s'
set key top right
set datafile missing '?'
set yrange [0:*]"
        for w in $workloads; do
            plot="$plot
set title '$w'
plot for [i=2:$(( $(echo $active | wc -w) + 1 ))] '$out/$base-$w.dat' \\
     using 1:i with linespoints title columnheader(i)"
        done
        plot="$plot
unset multiplot"
    fi
    if printf 'set terminal pngcairo size 1200,560 font ",10"\nset output "%s.png"\n%s\n' \
            "$chart_base" "$plot" | gnuplot 2>"$tmp/gp.err"; then
        chart="$chart_base.png"
        rm -f "$chart_base.svg"
    elif printf 'set terminal svg size 1200,560 dynamic\nset output "%s.svg"\n%s\n' \
            "$chart_base" "$plot" | gnuplot 2>"$tmp/gp.err"; then
        chart="$chart_base.svg"
        rm -f "$chart_base.png"
    else
        echo "run.sh: gnuplot failed, no chart:" >&2
        cat "$tmp/gp.err" >&2
    fi
else
    echo "run.sh: gnuplot not found (Debian package gnuplot-nox): no chart" >&2
fi
if [ -n "$chart" ]; then
    printf '\n![%s](%s)\n' "$base chart" "${chart##*/}" >>"$md"
fi

cat "$md"
echo >&2
echo "run.sh: results in $md, $csv${chart:+, $chart}" >&2

if [ $publish = 1 ]; then
    dest="$srcdir/tests/bench/report"
    mkdir -p "$dest" && cp "$md" ${chart:+"$chart"} "$dest/" &&
        echo "run.sh: published $base.md${chart:+ and ${chart##*/}} to $dest" >&2
fi

if [ $failed -gt 0 ]; then
    echo "run.sh: $failed run(s) FAILED: see above and $out/logs/" >&2
    exit 1
fi
exit 0
}
