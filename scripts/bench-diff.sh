#!/usr/bin/env bash
# Benchmarks "uvmbuild diff" on two disk images of SIZE_MIB (default 500) that
# differ in one 4 KiB block, against cmp(1) as the reference, in the same run:
# wall time and peak memory (GNU time's maximum resident set size).
# Targets (issue 7): under 5 s and under 100 MiB.
#   scripts/bench-diff.sh [SIZE_MIB]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
size_mib=${1:-500}

for t in /usr/bin/time cmp sfdisk mkfs.ext4 go; do
	command -v "$t" >/dev/null || { echo "bench-diff.sh: $t not found" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/uvmbuild-bench-diff.XXXXXX")
trap 'rm -rf "$work"' EXIT

(cd "$root" && go build -o "$work/uvmbuild" ./cmd/uvmbuild)

# A real-looking image: MBR with two partitions, ext4 in partition 1.
a=$work/a.img b=$work/b.img
truncate -s "${size_mib}M" "$a"
hash_mib=$((size_mib / 100 + 1))
printf 'label: dos\nstart=2048, size=%d, type=83, bootable\ntype=83\n' $(((size_mib - hash_mib - 1) * 2048)) | sfdisk -q "$a"
mkfs.ext4 -q -F -b 4096 -E offset=1048576,lazy_itable_init=0 -U 11111111-2222-3333-4444-555555555555 \
	"$a" $(((size_mib - hash_mib - 1) * 1024))k
# Fill it with data so the comparison reads real content.
dd if=/dev/urandom of="$a" bs=1M seek=8 count=$((size_mib - hash_mib - 16)) conv=notrunc status=none
cp "$a" "$b"
# One differing block, in the middle of partition 1.
printf '\xa5' | dd of="$b" bs=1 seek=$((size_mib * 1048576 / 2 + 123)) conv=notrunc status=none
sync

measure() { # name cmd... -> "seconds maxrss_kib"
	local out=$work/time.$1
	shift
	/usr/bin/time -v "$@" >"$work/stdout" 2>"$out" || true
	local el rss
	el=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$out")
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out")
	# Elapsed is [h:]m:ss.ss
	echo "$el" | awk -F: -v rss="$rss" '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.3f %d\n", s, rss }'
}

# Warm the page cache for both tools alike, then measure each twice and keep
# the second run.
cat "$a" "$b" >/dev/null
measure cmp cmp "$a" "$b" >/dev/null
read -r cmp_s cmp_kib < <(measure cmp cmp "$a" "$b")
# cmp stops at the first difference; cmp -l reads both files to the end and
# lists every differing byte, like uvmbuild diff's full pass.
read -r cmpl_s cmpl_kib < <(measure cmpl cmp -l "$a" "$b")
measure diff "$work/uvmbuild" diff "$a" "$b" >/dev/null
read -r diff_s diff_kib < <(measure diff "$work/uvmbuild" diff "$a" "$b")
"$work/uvmbuild" diff "$a" "$b" | head -n 20 || true

echo
printf '%-16s %10s %12s\n' tool seconds "max RSS MiB"
awk -v s="$cmp_s" -v k="$cmp_kib" 'BEGIN { printf "%-16s %10.3f %12.1f\n", "cmp", s, k / 1024 }'
awk -v s="$cmpl_s" -v k="$cmpl_kib" 'BEGIN { printf "%-16s %10.3f %12.1f\n", "cmp -l", s, k / 1024 }'
awk -v s="$diff_s" -v k="$diff_kib" 'BEGIN { printf "%-16s %10.3f %12.1f\n", "uvmbuild diff", s, k / 1024 }'
awk -v d="$diff_s" -v c="$cmp_s" -v l="$cmpl_s" -v dm="$diff_kib" -v cm="$cmpl_kib" 'BEGIN {
	printf "ratio uvmbuild diff / cmp: time %.2fx; / cmp -l: time %.2fx, memory %.2fx\n", (c > 0 ? d / c : 0), (l > 0 ? d / l : 0), (cm > 0 ? dm / cm : 0)
	ok = (d < 5 && dm < 100 * 1024)
	printf "targets (< 5 s, < 100 MiB): %s\n", ok ? "met" : "NOT met"
	exit ok ? 0 : 1
}'
