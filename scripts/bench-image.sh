#!/usr/bin/env bash
# Disk image build time (issue 4): `uvmbuild image --measured` from a ~200 MiB
# rootfs tar, built twice (the two images must be identical), with the time
# and peak memory of each run, and for reference the time veritysetup takes
# for partition 1 alone.
#
# The rootfs tar is made from the host's /usr (the first directories up to
# ROOTFS_MIB, default 200 MiB) unless ROOTFS_TAR names one (e.g. an
# mmdebstrap tarball). It is never committed. Needs e2fsprogs >= 1.47.1,
# cryptsetup-bin and time.
set -euo pipefail
cd "$(dirname "$0")/.."
want_mib=${ROOTFS_MIB:-200}
for tool in mkfs.ext4 veritysetup /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench-image.sh: $tool missing (see scripts/deps.txt)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
go build -o "$work/uvmbuild" ./cmd/uvmbuild

tarball=${ROOTFS_TAR:-}
if [ -z "$tarball" ]; then
	tarball=$work/rootfs.tar
	# Whole directories of /usr/lib and /usr/share until ~want_mib MiB.
	: >"$work/list"
	total=0
	for d in /usr/bin /usr/sbin /usr/lib/x86_64-linux-gnu /usr/share/locale /usr/share/doc /usr/share/perl /usr/lib/python3 /usr/share/zoneinfo /usr/share/man /usr/lib; do
		[ -d "$d" ] || continue
		s=$(du -sm "$d" | cut -f1)
		[ $((total + s)) -le $((want_mib + want_mib / 4)) ] || continue
		echo "${d#/}" >>"$work/list"
		total=$((total + s))
		[ "$total" -lt "$want_mib" ] || break
	done
	tar -C / --numeric-owner -cf "$tarball" -T "$work/list" 2>/dev/null || true
fi
echo "rootfs tar: $(du -m "$tarball" | cut -f1) MiB, $(tar -tf "$tarball" | wc -l) entries"
cat "$tarball" >/dev/null

# run N: builds image N and prints "seconds maxrss_kib".
run() {
	/usr/bin/time -v -o "$work/time.$1" env SOURCE_DATE_EPOCH=1700000000 "$work/uvmbuild" image --rootfs "$tarball" --measured \
		--skip-init-check -o "$work/img.$1" --root-hash-file "$work/root_hash.$1" >/dev/null 2>"$work/log.$1"
	awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%s ", s }
		/Maximum resident set size/ { print $2 }' "$work/time.$1"
}
r1=$(run 1)
r2=$(cd "$work" && umask 077 && TZ=Asia/Tokyo run 2)
cmp "$work/img.1" "$work/img.2" || { echo "bench-image.sh: the two images differ" >&2; exit 1; }
cat "$work/log.1" >&2

# Reference: veritysetup on partition 1 of the same image.
p1_start=$((2048 * 512))
p1_size=$(awk -F'\t' '/^Data blocks/ { print $2 * 4096 }' "$work/root_hash.1")
dd if="$work/img.1" of="$work/p1" bs=1M skip=1 count=$((p1_size >> 20)) status=none
salt=$(awk -F'\t' '/^Salt/ { print $2 }' "$work/root_hash.1")
t0=$(date +%s.%N)
veritysetup format "$work/p1" "$work/p2" --no-superblock --salt "$salt" >/dev/null
t1=$(date +%s.%N)
echo "image: $(($(stat -c %s "$work/img.1") >> 20)) MiB, identical across runs (cwd, umask 022/077, TZ)"
awk -v r1="$r1" -v r2="$r2" -v v0="$t0" -v v1="$t1" 'BEGIN {
	split(r1, a, " "); split(r2, b, " ")
	printf "uvmbuild image: %.2f s / %.2f s, peak RSS %.1f / %.1f MiB\n", a[1], b[1], a[2] / 1024, b[2] / 1024
	printf "reference: veritysetup format of partition 1 alone: %.2f s\n", v1 - v0
}'
