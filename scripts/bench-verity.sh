#!/usr/bin/env bash
# dm-verity speed and memory: `uvmbuild verity` against `veritysetup format`
# on the same file in the same run (issue 4).
#
# Builds uvmbuild, writes a SIZE_MIB (default 1024) MiB file of random data,
# warms the page cache, then runs both tools RUNS times (default 3,
# alternating) with the same salt and UUID under /usr/bin/time -v, checks the
# hash files are identical, and prints medians of wall time and peak RSS and
# the speed ratio. Set NOSB=1 for the --no-superblock (kernelinit) layout.
# Needs cryptsetup-bin (veritysetup) and time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
# The ratio is only meaningful on an otherwise idle machine: the load average
# is printed, and besides the medians the best run of each tool (the least
# disturbed one) and the CPU time are reported.
size_mib=${SIZE_MIB:-1024}
runs=${RUNS:-3}
for tool in veritysetup /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench-verity.sh: $tool missing (apt-get install cryptsetup-bin time)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-verity.XXXXXX")
trap 'rm -rf "$work"' EXIT
go build -o "$work/uvmbuild" ./cmd/uvmbuild
head -c "$((size_mib << 20))" /dev/urandom >"$work/data"
cat "$work/data" >/dev/null
salt=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
uuid=12345678-9abc-def0-1234-56789abcdef0
extra=()
[ "${NOSB:-0}" = 1 ] && extra=(--no-superblock)

# measure NAME CMD...: appends "seconds maxrss_kib cpu_seconds" to $work/res.NAME.
measure() {
	local name=$1
	shift
	rm -f "$work/hash.$name"
	/usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null
	awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%s ", s }
		/User time/ { u = $2 } /System time/ { sy = $2 }
		/Maximum resident set size/ { m = $2 } END { print m, u + sy }' "$work/time.txt" >>"$work/res.$name"
}
for _ in $(seq "$runs"); do
	measure veritysetup veritysetup format "$work/data" "$work/hash.veritysetup" --salt "$salt" --uuid "$uuid" "${extra[@]}"
	measure uvmbuild "$work/uvmbuild" verity "$work/data" "$work/hash.uvmbuild" --salt "$salt" --uuid "$uuid" "${extra[@]}"
done
cmp "$work/hash.veritysetup" "$work/hash.uvmbuild" || { echo "bench-verity.sh: hash files differ" >&2; exit 1; }
med() { sort -n -k"$2" "$work/res.$1" | awk -v k="$2" '{ v[NR] = $k } END { print v[int((NR + 1) / 2)] }'; }
vs_t=$(med veritysetup 1) ub_t=$(med uvmbuild 1) vs_m=$(med veritysetup 2) ub_m=$(med uvmbuild 2)
vs_c=$(med veritysetup 3) ub_c=$(med uvmbuild 3)
best() { sort -n -k1 "$work/res.$1" | head -n 1 | cut -d' ' -f1; }
vs_b=$(best veritysetup) ub_b=$(best uvmbuild)
echo "data: ${size_mib} MiB, $(nproc) CPUs, runs: $runs, hash files identical, load average $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v a="$vs_t" -v b="$ub_t" -v am="$vs_m" -v bm="$ub_m" -v ac="$vs_c" -v bc="$ub_c" -v ab="$vs_b" -v bb="$ub_b" -v mib="$size_mib" 'BEGIN {
	printf "veritysetup format: %.2f s (%.0f MiB/s), CPU %.2f s, peak RSS %.1f MiB\n", a, mib / a, ac, am / 1024
	printf "uvmbuild verity:    %.2f s (%.0f MiB/s), CPU %.2f s, peak RSS %.1f MiB\n", b, mib / b, bc, bm / 1024
	printf "speed ratio (veritysetup time / uvmbuild time): %.2fx (medians), %.2fx (best runs: %.2f s / %.2f s); CPU time ratio %.2f\n", a / b, ab / bb, ab, bb, ac / bc
}'
