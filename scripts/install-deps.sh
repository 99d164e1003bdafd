#!/usr/bin/env bash
# Installs the Debian packages uvmbuild's build and tests use, on a fresh
# Debian 12 machine, as root. The package list is scripts/deps.txt (one
# package per line, '#' comments); packages suffixed with "/backports" come
# from bookworm-backports, which is enabled by reusing the Debian source this
# machine is already configured with (never a hard-coded mirror).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" != 0 ]; then
	echo "install-deps.sh: must run as root (it calls apt-get)" >&2
	exit 1
fi

# debian_uri prints the first Debian archive URI from the apt configuration
# (deb822 .sources files or one-line sources.list), skipping security.
debian_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f"
	done | head -n 1
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /security/) print $i; break } }' "$f"
	done | head -n 1
}

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
need_bpo=$(awk '$1 ~ /\/backports$/' "$here/deps.txt" | grep -c . || true)
if [ "$need_bpo" -gt 0 ] && ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
	uri=$(debian_uri | head -n 1)
	if [ -z "$uri" ]; then
		echo "install-deps.sh: no Debian archive found in the apt configuration to enable ${codename}-backports" >&2
		exit 1
	fi
	cat >/etc/apt/sources.list.d/uvmbuild-backports.sources <<SRC
Types: deb
URIs: $uri
Suites: ${codename}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
plain=() bpo=()
while read -r pkg _; do
	case "$pkg" in
	'' | '#'*) ;;
	*/backports) bpo+=("${pkg%/backports}/${codename}-backports") ;;
	*) plain+=("$pkg") ;;
	esac
done <"$here/deps.txt"
[ ${#plain[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${plain[@]}" >/dev/null
[ ${#bpo[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${bpo[@]}" >/dev/null
echo "install-deps.sh: installed ${plain[*]} ${bpo[*]}"
