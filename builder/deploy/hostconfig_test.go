package deploy

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// lookup walks a decoded TOML document along keys.
func lookup(t *testing.T, doc map[string]any, keys ...string) any {
	t.Helper()
	var cur any = doc
	for i, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s is not a table", strings.Join(keys[:i], "."))
		}
		if cur, ok = m[k]; !ok {
			t.Fatalf("no key %s", strings.Join(keys[:i+1], "."))
		}
	}
	return cur
}

// containerdFragment is the subset of containerd's configuration schema
// (versions 2 and 3) that the fragment may use.
type containerdFragment struct {
	Version int `toml:"version"`
	Plugins map[string]struct {
		Containerd struct {
			Runtimes map[string]struct {
				RuntimeType                  string `toml:"runtime_type"`
				PrivilegedWithoutHostDevices bool   `toml:"privileged_without_host_devices"`
				Snapshotter                  string `toml:"snapshotter"`
				Options                      struct {
					ConfigPath string `toml:"ConfigPath"`
				} `toml:"options"`
			} `toml:"runtimes"`
		} `toml:"containerd"`
	} `toml:"plugins"`
	ProxyPlugins map[string]struct {
		Type    string `toml:"type"`
		Address string `toml:"address"`
	} `toml:"proxy_plugins"`
}

func TestContainerdConfig(t *testing.T) {
	for _, tc := range []struct {
		variant  Variant
		version  int
		criPath  []string
		name     string
		runtime  string
		config   string
		tardev   bool
		wantVers int64
	}{
		{Kata, 0, []string{"plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes"}, "kata", "io.containerd.kata.v2",
			"/usr/share/defaults/kata-containers/configuration.toml", false, 2},
		{Confpods, 2, []string{"plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes"}, "kata-cc", "io.containerd.kata-cc.v2",
			"/opt/confidential-containers/share/defaults/kata-containers/configuration-clh-snp.toml", true, 2},
		{Confpods, 3, []string{"plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes"}, "kata-cc", "io.containerd.kata-cc.v2",
			"/opt/confidential-containers/share/defaults/kata-containers/configuration-clh-snp.toml", true, 3},
	} {
		p := Params{Variant: tc.variant, Host: HostParams{ContainerdConfigVersion: tc.version}}
		data, err := ContainerdConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if _, err := toml.Decode(string(data), &doc); err != nil {
			t.Fatalf("%s v%d fragment does not parse: %v\n%s", tc.variant, tc.version, err, data)
		}
		// Decoded again into containerd's field names: a key containerd
		// would not know (a typo) is left undecoded.
		var typed containerdFragment
		md, err := toml.Decode(string(data), &typed)
		if err != nil {
			t.Fatal(err)
		}
		if len(md.Undecoded()) != 0 {
			t.Errorf("keys containerd does not know: %v", md.Undecoded())
		}
		if v := lookup(t, doc, "version"); v != tc.wantVers {
			t.Errorf("version = %v, want %d", v, tc.wantVers)
		}
		rts := lookup(t, doc, tc.criPath...).(map[string]any)
		if len(rts) != 1 {
			t.Errorf("%d runtimes, want only %s: %v", len(rts), tc.name, rts)
		}
		rt := lookup(t, rts, tc.name).(map[string]any)
		if rt["runtime_type"] != tc.runtime || rt["privileged_without_host_devices"] != true {
			t.Errorf("runtime %s = %v", tc.name, rt)
		}
		if got := lookup(t, rt, "options", "ConfigPath"); got != tc.config {
			t.Errorf("ConfigPath = %v, want %s", got, tc.config)
		}
		if tc.tardev {
			if rt["snapshotter"] != "tardev" {
				t.Errorf("snapshotter = %v", rt["snapshotter"])
			}
			px := lookup(t, doc, "proxy_plugins", "tardev").(map[string]any)
			if px["type"] != "snapshot" || px["address"] != "/run/containerd/tardev-snapshotter.sock" {
				t.Errorf("proxy plugin = %v", px)
			}
		} else {
			if _, ok := rt["snapshotter"]; ok {
				t.Error("kata runtime has a snapshotter")
			}
			if _, ok := doc["proxy_plugins"]; ok {
				t.Error("kata fragment declares proxy plugins")
			}
		}
	}
	if _, err := ContainerdConfig(Params{Variant: Kata, Host: HostParams{ContainerdConfigVersion: 1}}); err == nil {
		t.Error("containerd config version 1 accepted")
	}
}

func TestRuntimeClass(t *testing.T) {
	for _, tc := range []struct {
		variant Variant
		host    HostParams
		cpu     string
		mem     string
		sel     map[string]string
	}{
		{Kata, HostParams{}, "250m", "160Mi", map[string]string{"katacontainers.io/kata-runtime": "true"}},
		{Confpods, HostParams{OverheadCPU: "1", OverheadMemory: "2Gi", NodeSelector: map[string]string{
			"kubernetes.azure.com/sev-snp": "true", "zone": "a-1"}}, "1", "2Gi",
			map[string]string{"kubernetes.azure.com/sev-snp": "true", "zone": "a-1"}},
	} {
		data, err := RuntimeClass(Params{Variant: tc.variant, Host: tc.host})
		if err != nil {
			t.Fatal(err)
		}
		var rc nodev1.RuntimeClass
		if err := yaml.UnmarshalStrict(data, &rc); err != nil {
			t.Fatalf("manifest does not parse as a RuntimeClass: %v\n%s", err, data)
		}
		name := RuntimeName(tc.variant)
		if rc.APIVersion != "node.k8s.io/v1" || rc.Kind != "RuntimeClass" || rc.Name != name || rc.Handler != name {
			t.Errorf("RuntimeClass header %+v", rc.TypeMeta)
		}
		if rc.Overhead == nil {
			t.Fatal("no overhead")
		}
		cpu, mem := rc.Overhead.PodFixed["cpu"], rc.Overhead.PodFixed["memory"]
		if cpu.Cmp(resource.MustParse(tc.cpu)) != 0 || mem.Cmp(resource.MustParse(tc.mem)) != 0 || len(rc.Overhead.PodFixed) != 2 {
			t.Errorf("overhead = %v", rc.Overhead.PodFixed)
		}
		if rc.Scheduling == nil || len(rc.Scheduling.NodeSelector) != len(tc.sel) {
			t.Fatalf("scheduling = %+v", rc.Scheduling)
		}
		for k, v := range tc.sel {
			if rc.Scheduling.NodeSelector[k] != v {
				t.Errorf("nodeSelector[%s] = %q, want %q", k, rc.Scheduling.NodeSelector[k], v)
			}
		}
	}
	for _, bad := range []HostParams{
		{OverheadCPU: "a lot"},
		{OverheadMemory: "160MB"},
		{NodeSelector: map[string]string{"bad key!": "x"}},
		{NodeSelector: map[string]string{"k": "no spaces allowed"}},
	} {
		if _, err := RuntimeClass(Params{Variant: Kata, Host: bad}); err == nil {
			t.Errorf("RuntimeClass accepted %+v", bad)
		}
	}
}
