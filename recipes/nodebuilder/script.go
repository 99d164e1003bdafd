package nodebuilder

import (
	"fmt"
	"sort"
	"strings"
)

// rootfsDir is where the rootfs step assembles the tree (the container's
// private tmpfs).
const rootfsDir = "/tmp/rootfs"

// Systemd units and files deleted from the rootfs (delete_unnecessary_files,
// spec §4.2). msft-main deletes <u>.service and <u>.socket of a short list,
// udev included; release-3.15 deletes <u> and <u>.{mount,path,service,
// socket,timer} of a longer list and keeps udev (confpods needs it).
var (
	deleteUnitsMain = []string{
		"systemd-coredump@", "systemd-journald", "systemd-journald-dev-log", "systemd-journal-flush",
		"systemd-random-seed", "systemd-timesyncd", "systemd-tmpfiles-setup", "systemd-udevd",
		"systemd-udevd-control", "systemd-udevd-kernel", "systemd-udev-trigger", "systemd-update-utmp",
	}
	deleteFilesMain = []string{
		"systemd-bless-boot-generator", "systemd-fstab-generator", "systemd-getty-generator",
		"systemd-gpt-auto-generator", "systemd-tmpfiles-cleanup.timer",
	}
	deleteUnits315 = []string{
		"blk-availability", "sys-fs-fuse-connections", "sys-kernel-config",
		"systemd-ask-password-console", "systemd-ask-password-wall", "systemd-boot-update",
		"systemd-coredump@", "systemd-journal-catalog-update", "systemd-journal-flush",
		"systemd-journald", "systemd-journald@", "systemd-journald-audit", "systemd-journald-dev-log",
		"systemd-logind", "systemd-network-generator",
		"systemd-pcrextend", "systemd-pcrfs-root", "systemd-pcrfs@", "systemd-pcrlock-file-system",
		"systemd-pcrlock-firmware-code", "systemd-pcrlock-firmware-config", "systemd-pcrlock-machine-id",
		"systemd-pcrlock-make-policy", "systemd-pcrlock-secureboot-authority",
		"systemd-pcrlock-secureboot-policy", "systemd-pcrmachine", "systemd-pcrphase",
		"systemd-pcrphase-initrd", "systemd-pcrphase-sysinit",
		"systemd-pstore", "systemd-random-seed", "systemd-sysupdate", "systemd-sysupdate-reboot",
		"systemd-timesyncd", "systemd-tmpfiles-clean", "systemd-tmpfiles-setup",
		"systemd-tmpfiles-setup-dev", "systemd-tmpfiles-setup-dev-early",
		"systemd-tpm2-setup", "systemd-tpm2-setup-early",
		"systemd-update-utmp", "systemd-update-utmp-runlevel", "systemd-vconsole-setup",
	}
	deleteFiles315 = []string{
		"blkdeactivate", "journalctl", "systemd-bless-boot-generator", "systemd-fstab-generator",
		"systemd-getty-generator", "systemd-gpt-auto-generator", "systemd-pcrlock", "systemd-tmpfiles",
		"systemd-tty-ask-password-agent",
	}
)

// deleteNames returns the file names the profile deletes, sorted.
func deleteNames(c *config) []string {
	var out []string
	if c.main() {
		for _, u := range deleteUnitsMain {
			out = append(out, u+".service", u+".socket")
		}
		out = append(out, deleteFilesMain...)
	} else {
		for _, u := range deleteUnits315 {
			out = append(out, u, u+".mount", u+".path", u+".service", u+".socket", u+".timer")
		}
		out = append(out, deleteFiles315...)
	}
	sort.Strings(out)
	return out
}

// rootfsPackages is the package set of the rootfs (cbl-mariner config.sh,
// spec §4.1 step 2, mapped to the flavour's distribution) plus EXTRA_PKGS.
func (p *planner) rootfsPackages() (def, extra []string) {
	def = p.r.fl.packages(p.cfg)
	sort.Strings(def)
	def = dedupe(def)
	return def, p.cfg.extraPkgs
}

func dedupe(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// rootfsScript is the rootfs step: rootfs.sh (spec §4.1) and the rootfs
// parts of uvm_build.sh, then a tar of the tree with numeric owners. Each
// block is numbered as in the spec's table.
func (p *planner) rootfsScript() string {
	c, fl := p.cfg, p.r.fl
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	def, extra := p.rootfsPackages()
	w("export SOURCE_DATE_EPOCH=%d\n", c.epoch)
	w("R=%s\n", rootfsDir)
	w("mkdir -p \"$R\"\n")
	w("# 3-4: packages (%s)\n", strings.Join(append(append([]string(nil), extra...), def...), " "))
	b.WriteString(fl.installPackages(p))
	w("# 5: trim documentation\n")
	w("rm -rf \"$R\"/usr/share/bash-completion \"$R\"/usr/share/cracklib \"$R\"/usr/share/doc \"$R\"/usr/share/info \"$R\"/usr/share/locale \"$R\"/usr/share/man \"$R\"/usr/share/misc \"$R\"/usr/share/pixmaps \"$R\"/usr/share/terminfo \"$R\"/usr/share/zoneinfo \"$R\"/usr/share/zsh\n")
	w("# 6: /var cleanup\n")
	w("(cd \"$R\" && rm -rf ./var/cache ./var/lib ./var/log ./var/tmp && ln -s ../tmp var/tmp)\n")
	w("# 7: tmp.mount\n")
	w("if [ ! -e \"$R/etc/systemd/system/tmp.mount\" ] && [ ! -e \"$R/usr/lib/systemd/system/tmp.mount\" ]; then\n")
	w("\tif [ -e \"$R/usr/share/systemd/tmp.mount\" ]; then\n\t\tcp \"$R/usr/share/systemd/tmp.mount\" \"$R/etc/systemd/system/tmp.mount\"\n")
	w("\telse\n\t\tprintf '[Unit]\\nDescription=Temporary Directory /tmp\\nConditionPathIsSymbolicLink=!/tmp\\nDefaultDependencies=no\\nConflicts=umount.target\\nBefore=local-fs.target umount.target\\n\\n[Mount]\\nWhat=tmpfs\\nWhere=/tmp\\nType=tmpfs\\nOptions=mode=1777,strictatime,nosuid,nodev\\n' > \"$R/etc/systemd/system/tmp.mount\"\n\tfi\nfi\n")
	w("# 8: chrony: PHC reference clock, no network servers\n")
	w("printf 'refclock PHC /dev/ptp0 poll 3 dpoll -2 offset 0\\nmakestep 1 -1\\n' >> \"$R%s\"\n", fl.chronyConf())
	w("sed -i -e 's/^\\(server\\|pool\\|peer\\) /# &/' \"$R%s\"\n", fl.chronyConf())
	unit := "$R" + fl.chronyUnit()
	w("sed -i -e 's/^\\(ExecStart=.*\\) -u [^ ]*/\\1/' -e '/^\\[Unit\\]/a ConditionPathExists=/dev/ptp0' -e 's|^\\(ReadWritePaths=.*\\)\\([ =]\\)/var/lib/chrony|\\1\\2-/var/lib/chrony|' \"%s\"\n", unit)
	if c.main() {
		w("sed -i -e 's/^\\(StateDirectory\\|LogsDirectory\\)=/#&/' \"%s\"\n", unit)
	}
	w("# 9: agent binary\n")
	w("install -D -m 0755 /in/agent-install/usr/bin/kata-agent \"$R/usr/bin/kata-agent\"\n")
	w("strip \"$R/usr/bin/kata-agent\"\n")
	w("# 10: systemd wiring (AGENT_INIT=no)\n")
	w("mkdir -p \"$R/etc/systemd/system/basic.target.wants\" \"$R/etc/systemd/system/kata-containers.target.wants\"\n")
	w("ln -sf /usr/lib/systemd/system/kata-containers.target \"$R/etc/systemd/system/basic.target.wants/kata-containers.target\"\n")
	w("ln -sf /usr/lib/systemd/system/dbus.socket \"$R/etc/systemd/system/kata-containers.target.wants/dbus.socket\"\n")
	w("chmod g+rx,o+x \"$R\"\n")
	if c.confpods {
		name := p.pol.Name()
		w("# 12: agent policy %s (%s)\n", name, p.pol.Digest())
		w("install -D -o root -g root -m 0644 /in/policy \"$R/etc/kata-opa/%s\"\n", name)
		w("ln -sf %s \"$R/etc/kata-opa/default-policy.rego\"\n", name)
	}
	w("# 13: init\n")
	w("[ -x \"$R/sbin/init\" ] || [ -L \"$R/sbin/init\" ] || { echo 'rootfs: /sbin/init is missing (systemd not installed?)' >&2; exit 1; }\n")
	w("# 14: resolv.conf\n")
	w("if [ -L \"$R/etc/resolv.conf\" ]; then rm -f \"$R/etc/resolv.conf\"; fi\n")
	w("install -m 0644 /dev/null \"$R/etc/resolv.conf\"\n")
	w("# 15: delete unneeded systemd units and files (%s)\n", c.profile)
	b.WriteString("find \"$R\" \\( -type f -o -type l \\) \\( -false")
	for _, n := range deleteNames(c) {
		fmt.Fprintf(&b, " \\\n\t-o -name '%s'", n)
	}
	b.WriteString(" \\\n\t\\) -print -delete\n")
	w("# 16: summary file (time from SOURCE_DATE_EPOCH)\n")
	w("mkdir -p \"$R/var/lib/osbuilder\"\n")
	w("cat > \"$R/var/lib/osbuilder/osbuilder.yaml\" <<EOF\n%sEOF\n", p.osbuilderYAML(def, extra))
	w("# uvm_build.sh: agent units\n")
	w("install -m 0644 /in/agent-install/usr/lib/systemd/system/kata-containers.target /in/agent-install/usr/lib/systemd/system/kata-agent.service \"$R/usr/lib/systemd/system/\"\n")
	if c.confpods {
		w("# uvm_build.sh: tarfs module and depmod files\n")
		w("mkdir -p \"$R/lib/modules\"\n")
		w("cp -R --no-preserve=ownership /in/tarfs/lib/modules/. \"$R/lib/modules/\"\n")
	}
	// Sorted, times clamped, no atime/ctime: the step's own output is
	// reproducible, not only the normalised tar made from it.
	w("tar --sort=name --format=pax --pax-option=exthdr.name=%%d/PaxHeaders/%%f,delete=atime,delete=ctime --mtime=@$SOURCE_DATE_EPOCH --clamp-mtime --numeric-owner --xattrs --xattrs-include='security.capability' -C \"$R\" -cf /out/rootfs.tar .\n")
	return b.String()
}

// osbuilderYAML is /var/lib/osbuilder/osbuilder.yaml (spec §4.4). The
// version is VERSION alone: the source is keyed by content, so no git
// commit is baked in (as in the packaged-tools copy of osbuilder).
func (p *planner) osbuilderYAML(def, extra []string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("---\nosbuilder:\n  url: \"https://github.com/kata-containers/kata-containers/tools/osbuilder\"\n")
	w("  version: \"%s\"\n", p.src.version)
	w("rootfs-creation-time: \"$(date -u -d @$SOURCE_DATE_EPOCH +%%Y-%%m-%%dT%%T.%%N%%zZ)\"\n")
	w("description: \"osbuilder rootfs\"\nfile-format-version: \"0.0.2\"\narchitecture: \"x86_64\"\n")
	w("base-distro:\n  name: \"%s\"\n  version: \"%s\"\n  packages:\n    default:\n", p.r.fl.distroName(), p.cfg.osVersion)
	for _, d := range def {
		w("      - \"%s\"\n", d)
	}
	w("    extra:\n")
	for _, e := range extra {
		w("      - \"%s\"\n", e)
	}
	w("agent:\n  url: \"https://github.com/kata-containers/kata-containers\"\n  name: \"kata-agent\"\n")
	w("  version: \"%s\"\n  agent-is-init-daemon: \"no\"\n", p.src.version)
	return b.String()
}
