#!/usr/bin/env bash
# Per-step container overhead and image unpack time (issue 5).
#
# Measures, in one run on this machine:
#   plain   fork+exec of /bin/busybox true                  (the floor)
#   bare    `runc run` of `runc spec`'s default config       (the reference)
#   sandbox builder/sandbox.Run of /bin/true: hermetic config, an input
#           bind mount, /out, limits, teardown
#   step    actions.Container end to end: image already unpacked, bundle,
#           run, output normalisation
# and verify+unpack of a ~150 MiB image (uncompressed, gzip, zstd layers).
# Medians over RUNS runs (default 21). Needs root, runc, busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-21}
unpack_runs=${UNPACK_RUNS:-3}

if [ "$(id -u)" != 0 ]; then echo "bench-sandbox.sh: needs root (runc)" >&2; exit 1; fi
command -v runc >/dev/null || { echo 'bench-sandbox.sh: runc missing: apt-get install runc' >&2; exit 1; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench 'PlainExec|BareRunc|SandboxRun' -benchtime "${runs}x" ./builder/sandbox | tee -a "$out"
go test -run '^$' -bench 'ContainerStep' -benchtime "${runs}x" ./builder/actions | tee -a "$out"
go test -run '^$' -bench 'Unpack150MiB' -benchtime "${unpack_runs}x" -timeout 30m ./builder/images | tee -a "$out"

median() { awk -v name="$1" '$1 ~ name { for (i = 2; i <= NF; i++) if ($i == "median-ms") print $(i-1) }' "$out" | head -n 1; }
plain=$(median 'BenchmarkPlainExec')
bare=$(median 'BenchmarkBareRunc')
sb=$(median 'BenchmarkSandboxRun')
step=$(median 'BenchmarkContainerStep')
echo
echo "per-step overhead (median of $runs, ms): plain exec $plain, bare runc run $bare, sandbox.Run $sb, container step $step (target <= 100)"
awk -v b="$bare" -v s="$sb" -v c="$step" 'BEGIN { printf "ratios vs bare runc run: sandbox.Run %.2fx, container step %.2fx\n", s / b, c / b }'
for c in gnu-tar none gzip zstd; do
	echo "unpack 150 MiB ($c): $(median "BenchmarkUnpack150MiB/$c") ms"
done
