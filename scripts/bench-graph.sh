#!/usr/bin/env bash
# Build-graph overhead: a no-op `uvmbuild` build of ~200 cached actions
# against a no-op `make` of a Makefile with the same 201 targets and data
# edges, in the same run (issue 2).
#
# Builds uvmbuild, builds the sample recipe with COUNT=100 (100 generate +
# 100 transform + 1 combine = 201 actions) once to fill a fresh cache, then
# runs RUNS (default 15) no-op builds of each tool and prints the median wall
# time and CPU time of each, the per-action overhead and the ratio. The
# uvmbuild figure is its own time for the whole command: process start,
# planning, key computation, 201 cache lookups, out/ check and build.json.
# The engine alone is measured by BenchmarkNoOpBuild200 (builder/graph),
# which this script also runs.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-15}
command -v make >/dev/null || { echo "bench-graph.sh: make missing (apt-get install make)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-graph.XXXXXX")
trap 'rm -rf "$work"' EXIT
go build -o "$work/uvmbuild" ./cmd/uvmbuild
ub=("$work/uvmbuild" --recipe sample --cache-dir "$work/cache" --out "$work/out" --progress plain COUNT=100)
"${ub[@]}" >/dev/null 2>&1

# The same graph as a Makefile: part files, transformed parts, a report.
mk="$work/make"
mkdir -p "$mk"
{
	printf 'all: report.txt\n'
	for i in $(seq 1 100); do
		printf 'gen-%d.txt:\n\t@echo hello %d > $@\n' "$i" "$i"
		printf 'tr-%d.txt: gen-%d.txt\n\t@cp $< $@\n' "$i" "$i"
	done
	printf 'report.txt:'
	for i in $(seq 1 100); do printf ' tr-%d.txt' "$i"; done
	printf '\n\t@cat $^ > $@\n'
} >"$mk/Makefile"
make -s -C "$mk" >/dev/null

# run_ms CMD...: prints "wall_ms cpu_ms" of one run.
run_ms() {
	local t0 t1 c0 c1
	c0=$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat)
	t0=$(date +%s%N)
	"$@" >/dev/null 2>&1
	t1=$(date +%s%N)
	# Children's CPU (utime+stime of waited-for children), in clock ticks.
	c1=$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat)
	echo "$(((t1 - t0) / 1000000)) $(((c1 - c0) * 1000 / $(getconf CLK_TCK)))"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

: >"$work/ub" && : >"$work/make.txt"
for _ in $(seq "$runs"); do
	run_ms "${ub[@]}" >>"$work/ub"
	run_ms make -s -C "$mk" >>"$work/make.txt"
done
ub_wall=$(cut -d' ' -f1 "$work/ub" | median)
ub_cpu=$(cut -d' ' -f2 "$work/ub" | median)
mk_wall=$(cut -d' ' -f1 "$work/make.txt" | median)
mk_cpu=$(cut -d' ' -f2 "$work/make.txt" | median)
echo "no-op build of 201 cached actions, median of $runs runs (load average: $(cut -d' ' -f1-3 /proc/loadavg)):"
printf '  uvmbuild: %4d ms wall, %4d ms CPU  (%d µs per action)\n' "$ub_wall" "$ub_cpu" "$((ub_wall * 1000 / 201))"
printf '  make:     %4d ms wall, %4d ms CPU\n' "$mk_wall" "$mk_cpu"
awk -v a="$ub_wall" -v b="$mk_wall" 'BEGIN { if (b < 1) b = 1; printf "  ratio uvmbuild/make (wall): %.2f\n", a / b }'
if [ "$ub_wall" -ge 100 ]; then
	echo "  WARNING: no-op build took ${ub_wall} ms, target < 100 ms"
fi
echo "engine only (builder/graph BenchmarkNoOpBuild200, 200 cached actions):"
go test -run '^$' -bench 'NoOpBuild200' -benchtime 30x ./builder/graph | awk '/^Benchmark/ { printf "  %s ms per build, %s µs per action\n", $3 / 1e6, $5 / 1e3 }'
