package sandbox

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// capabilities are what a root build step may use inside its namespaces:
// enough for package managers and file ownership, nothing that reaches the
// host (no SYS_ADMIN, NET_ADMIN, SYS_MODULE, …).
var capabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
	"CAP_SETGID", "CAP_SETUID", "CAP_MKNOD", "CAP_KILL",
}

// Config returns the runc configuration for s (after defaults are applied
// by Run). It is deterministic: equal specs give equal configs.
func Config(s *Spec) *specs.Spec {
	umask := uint32(0o022)
	caps := append([]string(nil), capabilities...)
	mem := s.Memory
	pids := s.Pids
	ns := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace},
		{Type: specs.MountNamespace},
		{Type: specs.CgroupNamespace},
	}
	if !s.Network {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		// /in is a small tmpfs holding the input mount points; it is made
		// read-only after the binds (readonlyPaths below).
		{Destination: "/in", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755", "size=1m"}},
	}
	for _, m := range s.Inputs {
		mounts = append(mounts, specs.Mount{Destination: m.Dest, Type: "bind", Source: m.Source,
			Options: []string{"rbind", "ro", "nosuid", "nodev"}})
	}
	if s.Output != "" {
		mounts = append(mounts, specs.Mount{Destination: "/out", Type: "bind", Source: s.Output,
			Options: []string{"rbind", "rw", "nosuid", "nodev"}})
	}
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: false,
			User:     specs.User{UID: 0, GID: 0, Umask: &umask},
			Args:     s.Args,
			Env:      s.Env,
			Cwd:      s.Cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 4096}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: s.Rootfs, Readonly: true},
		Hostname: s.Hostname,
		Mounts:   mounts,
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				Memory:  &specs.LinuxMemory{Limit: &mem},
				Pids:    &specs.LinuxPids{Limit: &pids},
			},
			Namespaces: ns,
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", "/in",
			},
		},
	}
}
