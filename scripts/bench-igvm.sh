#!/usr/bin/env bash
# IGVM generation speed and memory: `uvmbuild igvm` against igvmgen
# (microsoft/igvm-tooling) on the same bzImage in the same run (issue 3).
#
# Inputs (environment):
#   KERNEL        bzImage to use (default: Debian's cloud kernel,
#                 linux-image-*-cloud-amd64, fetched with apt-get download
#                 through this machine's apt configuration).
#   IGVM_TOOLING  a checkout of microsoft/igvm-tooling you provide (optional;
#                 without it only uvmbuild is measured). igvmgen needs the
#                 Debian packages python3-ecdsa python3-pyelftools
#                 python3-frozendict python3-cached-property and
#                 python-cstruct (not packaged) on PYTHONPATH: set
#                 PYTHON_CSTRUCT to a python-cstruct checkout.
#   RUNS          runs per tool and mode (default 5, alternating; medians
#                 reported).
#
# Two modes, both tools treated alike in each:
#   fresh      the outputs do not exist (removed before the timed run). The
#              headline: it is how the build graph writes (a new file), and
#              it leaves out the kernel's cost of freeing a previous output,
#              which is the same for both tools and depends on that file's
#              page-cache state rather than on the tool.
#   overwrite  the outputs exist and were synced to disk (as an old output
#              is): igvmgen truncates them (open "wb"), uvmbuild renames over
#              them; either way the kernel frees the old file and ext4
#              (auto_da_alloc) starts writing the new one back.
#
# Both tools get the same ACPI pages, already compiled (igvmgen's built-in
# snapshot, flattened, when IGVM_TOOLING is set; else one synthetic page),
# the same P-384 key and deterministic signing: the IGVM files must be
# identical and the script checks it. It also checks `uvmbuild measure`
# against the JSON of an igvmgen run with a random key. Prints medians of
# wall time, CPU time and peak RSS per mode, the ratios, and the go test
# benchmark (ratio to the single-core SHA-384 floor measured in the same
# run).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
for tool in python3 openssl; do
	command -v "$tool" >/dev/null || { echo "bench-igvm.sh: $tool missing (apt-get install python3 openssl)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-igvm.XXXXXX")
trap 'rm -rf "$work"' EXIT
go build -o "$work/uvmbuild" ./cmd/uvmbuild

kernel=${KERNEL:-}
if [ -z "$kernel" ]; then
	(cd "$work" && apt-get download -q linux-image-cloud-amd64 >/dev/null 2>&1)
	dep=$(dpkg-deb -f "$work"/linux-image-cloud-amd64_*.deb Depends | grep -o 'linux-image-[^ ,]*-cloud-amd64' | head -n 1)
	(cd "$work" && apt-get download -q "$dep" >/dev/null 2>&1)
	dpkg-deb --fsys-tarfile "$work/${dep}"_*.deb | tar -x -C "$work" --wildcards './boot/vmlinuz-*'
	kernel=$(ls "$work"/boot/vmlinuz-*)
fi
cat "$kernel" >/dev/null
ksize=$(stat -c %s "$kernel")

# ACPI pages and the signing key.
pages=$work/acpi-pages.bin
if [ -n "${IGVM_TOOLING:-}" ]; then
	python3 - "$IGVM_TOOLING/src/igvm/acpi/acpi.zip" "$pages" <<'PY'
import base64, pickle, struct, sys, zlib
d = pickle.loads(zlib.decompress(base64.b64decode(open(sys.argv[1], "rb").read())))
with open(sys.argv[2], "wb") as f:
    for gpa in sorted(d):
        f.write(struct.pack("<Q", gpa) + bytes(d[gpa]))
PY
else
	{ printf '\x00\x00\x0e\x00\x00\x00\x00\x00'; head -c 4096 /dev/zero; } >"$pages"
fi
openssl ecparam -name secp384r1 -genkey -noout -out "$work/key.pem" 2>/dev/null
cmdline="console=ttyS0 root=/dev/vda1 rw"

# measure NAME CMD...: appends "wall_us maxrss_kib cpu_s" to $work/t.NAME
# (CPU time = user + system: less sensitive than wall time to a busy machine).
# A small Python runner spawns CMD and reads wall time around spawn + wait4
# and CPU time and peak RSS from wait4's rusage (microseconds; GNU time
# prints CPU in 10 ms steps). Spawning is in both tools' wall times (the
# overhead line measures it on /bin/true).
cat >"$work/measure.py" <<'PY'
import os, sys, time
out, err = sys.argv[1], sys.argv[2]
fa = [(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
      (os.POSIX_SPAWN_OPEN, 2, err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
t0 = time.perf_counter()
pid = os.posix_spawnp(sys.argv[3], sys.argv[3:], os.environ, file_actions=fa)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit(1)
with open(out, "a") as f:
    f.write("%d %d %.6f\n" % (wall * 1e6, ru.ru_maxrss, ru.ru_utime + ru.ru_stime))
PY
measure() {
	local name=$1
	shift
	python3 "$work/measure.py" "$work/t.$name" "$work/err.txt" "$@" || { cat "$work/err.txt" >&2; return 1; }
}

igvmgen=()
if [ -n "${IGVM_TOOLING:-}" ]; then
	# frozendict 1.2 (Debian) imports collections.Mapping, gone in Python 3.10.
	mkdir -p "$work/shim"
	printf 'import collections, collections.abc\nfor n in ("Mapping", "MutableMapping"):\n    setattr(collections, n, getattr(collections.abc, n))\n' >"$work/shim/sitecustomize.py"
	export PYTHONPATH="$work/shim:${PYTHON_CSTRUCT:+$PYTHON_CSTRUCT:}$IGVM_TOOLING/src"
	igvmgen=(/usr/bin/python3 "$IGVM_TOOLING/src/igvm/igvmgen.py")
	(cd "$work" && "${igvmgen[@]}" -kernel "$kernel" -boot_mode x64 -vtl 0 -svme 1 -encrypted_page 1 -pvalidate_opt 1 \
		-o "$work/probe.igvm" -append x >/dev/null 2>&1) || {
		echo "bench-igvm.sh: igvmgen does not run here (missing Python deps?); measuring uvmbuild only" >&2
		igvmgen=()
	}
fi

# run MODE: one timed run of each tool in MODE (fresh or overwrite).
run() {
	local mode=$1 f
	for f in igvmgen.igvm igvmgen.json uvmbuild.igvm uvmbuild.json; do
		case $mode in
		fresh) rm -f "$work/$f" ;;
		overwrite) [ -e "$work/$f" ] || : >"$work/$f"; sync "$work/$f" ;;
		esac
	done
	if [ ${#igvmgen[@]} -gt 0 ]; then
		(cd "$work" && measure "igvmgen.$mode" "${igvmgen[@]}" -kernel "$kernel" -boot_mode x64 -vtl 0 -svme 1 -encrypted_page 1 -pvalidate_opt 1 \
			-o "$work/igvmgen.igvm" -measurement_file "$work/igvmgen.json" -append "$cmdline" -svn 1 \
			-sign_key "$work/key.pem" -sign_deterministic 1)
	fi
	measure "uvmbuild.$mode" "$work/uvmbuild" igvm --kernel "$kernel" --cmdline "$cmdline" --acpi-pages "$pages" \
		--svn 1 --id-key "$work/key.pem" -o "$work/uvmbuild.igvm" --measurement-file "$work/uvmbuild.json"
}
for _ in $(seq "$runs"); do
	run fresh
	run overwrite
	measure harness /bin/true
done

med() { sort -n -k"$2" "$work/t.$1" | awk -v k="$2" '{ v[NR] = $k } END { print v[int((NR + 1) / 2)] }'; }
echo "kernel: $kernel ($ksize bytes), $(nproc) CPUs, runs: $runs per mode, load: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v h="$(med harness 1)" 'BEGIN { printf "harness overhead in every wall time (spawning /bin/true): %.1f ms\n", h / 1000 }'
if [ ${#igvmgen[@]} -gt 0 ]; then
	cmp "$work/igvmgen.igvm" "$work/uvmbuild.igvm" && cmp "$work/igvmgen.json" "$work/uvmbuild.json" &&
		echo "IGVM and measurement JSON byte-identical to igvmgen's"
fi
for mode in fresh overwrite; do
	ub_t=$(med "uvmbuild.$mode" 1) ub_m=$(med "uvmbuild.$mode" 2) ub_c=$(med "uvmbuild.$mode" 3)
	echo "-- $mode output:"
	awk -v b="$ub_t" -v bm="$ub_m" -v bc="$ub_c" -v k="$ksize" 'BEGIN {
		printf "uvmbuild igvm: %.1f ms wall, %.1f ms CPU, peak RSS %.1f MiB (target < 2 x kernel + 32 MiB = %.1f MiB)\n", b / 1000, bc * 1000, bm / 1024, 2 * k / 1048576 + 32
	}'
	if [ ${#igvmgen[@]} -gt 0 ]; then
		ig_t=$(med "igvmgen.$mode" 1) ig_m=$(med "igvmgen.$mode" 2) ig_c=$(med "igvmgen.$mode" 3)
		awk -v a="$ig_t" -v b="$ub_t" -v am="$ig_m" -v bm="$ub_m" -v ac="$ig_c" -v bc="$ub_c" 'BEGIN {
			printf "igvmgen:       %.1f ms wall, %.1f ms CPU, peak RSS %.1f MiB\n", a / 1000, ac * 1000, am / 1024
			printf "speed ratio igvmgen/uvmbuild: wall %.1fx, CPU %.1fx (target >= 20x); memory ratio %.1fx\n", a / b, (bc > 0 ? ac / bc : 0), am / bm
		}'
	fi
done
if [ ${#igvmgen[@]} -gt 0 ]; then
	# measure agrees with igvmgen on a file igvmgen signed with a fresh random key.
	(cd "$work" && "${igvmgen[@]}" -kernel "$kernel" -boot_mode x64 -vtl 0 -svme 1 -encrypted_page 1 -pvalidate_opt 1 \
		-o "$work/random.igvm" -measurement_file "$work/random.json" -append "$cmdline" -svn 7 >/dev/null 2>&1)
	"$work/uvmbuild" measure "$work/random.igvm" --json --svn 7 | head -c -1 | cmp - "$work/random.json" &&
		echo "uvmbuild measure agrees with igvmgen's JSON on a random-key igvmgen file"
fi
echo "go test -bench (in-process, ratio to the single-core SHA-384 floor measured between iterations):"
UVMBUILD_BENCH_KERNEL=$kernel go test -run '^$' -bench 'Generate$|Measure$' -benchtime 20x ./builder/igvmgen | grep '^Benchmark'
