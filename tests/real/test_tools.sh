#!/bin/sh
# test_tools.sh - git, sqlite3 and gcc under pmalloc, each against the
# same run without it: git (init, add a few thousand files, commit, log,
# gc, fsck: the same transcript), sqlite3 (a table of 300000 rows, an
# index, queries: the same output), gcc (a large generated C file: the
# same object file).
. "${PM_TEST_SRCDIR:-.}/tests/real/common.sh"
need git sqlite3 gcc awk cmp

# Fixed dates and identity: both transcripts must match byte for byte.
export GIT_AUTHOR_NAME=pm GIT_AUTHOR_EMAIL=pm@example.org GIT_COMMITTER_NAME=pm
export GIT_COMMITTER_EMAIL=pm@example.org GIT_AUTHOR_DATE='2024-01-01T00:00:00Z'
export GIT_COMMITTER_DATE='2024-01-01T00:00:00Z' GIT_CONFIG_NOSYSTEM=1 HOME=$work
cat >"$work/git.sh" <<'SH'
set -e
git init -q -b main repo && cd repo
for d in 0 1 2 3 4 5 6 7 8 9; do
    mkdir -p d$d
    awk -v d=$d 'BEGIN { for (i = 0; i < 300; i++) {
        f = sprintf("d%d/f%03d.txt", d, i)
        for (j = 0; j < 20 + i % 40; j++) print "line", d, i, j > f
        close(f) } }'
done
git add -A && git commit -q -m first
for d in 0 3 6; do
    awk -v d=$d 'BEGIN { for (i = 0; i < 300; i += 3)
        print "change", i >> sprintf("d%d/f%03d.txt", d, i) }'
done
git commit -q -a -m second
git log --stat --format='%H %s' | tail -n 40
git gc -q
git fsck --full --strict 2>&1
git count-objects -v | grep -v -e size -e prune
git rev-parse HEAD HEAD^{tree}
SH
same git sh "$work/git.sh"

cat >"$work/sql" <<'SQL'
create table t(id integer primary key, k text, v integer, w text);
with recursive c(i) as (select 1 union all select i + 1 from c where i < 300000)
insert into t select i, printf('key%07d', (i * 7919) % 300000), i % 1000,
    substr(hex(i * i), 1, 12) from c;
create index tk on t(k);
create index tvw on t(v, w);
select count(*), sum(v), min(k), max(k) from t;
select v, count(*), max(w) from t group by v order by v limit 5;
select id, w from t where k between 'key0100000' and 'key0100010' order by k;
select count(distinct w) from t;
SQL
same sqlite sqlite3 db.sqlite ".read $work/sql"

# A large generated C file: many functions, a big table, long switches.
awk 'BEGIN {
    print "#include <string.h>"
    for (i = 0; i < 800; i++) {
        printf "static int tab%d[] = {", i
        for (j = 0; j < 20; j++) printf "%d,", (i * 31 + j * 17) % 1009
        print "};"
        printf "int f%d(int x) { int s = 0; switch (x %% 7) {", i
        for (j = 0; j < 7; j++) printf " case %d: s += tab%d[%d] * x + %d; break;", j, i, j, i + j
        print " } for (int k = 0; k < 20; k++) s ^= tab" i "[k] << (k % 5); return s; }"
    }
    print "int main(void) { int s = 0;"
    for (i = 0; i < 800; i++) printf " s += f%d(%d);\n", i, i
    print " return s & 1; }"
}' >"$work/big.c"
same gcc gcc -O1 -g0 -c "$work/big.c" -o big.o
cmp "$work/gcc-glibc/big.o" "$work/gcc-pm/big.o" || fail "gcc: object files differ"
note "gcc: same object file ($(wc -c <"$work/gcc-pm/big.o") bytes)"
