package nodebuilder

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/uvmbuild/uvmbuild/recipes"
)

// Variable names, as the node-builder Makefile and scripts spell them.
const (
	varProfile        = "PROFILE"
	varBuildType      = "BUILD_TYPE"
	varAgentBuildType = "AGENT_BUILD_TYPE"
	varPolicyFile     = "AGENT_POLICY_FILE"
	varShimDebug      = "SHIM_USE_DEBUG_CONFIG"
	varConfPods       = "CONF_PODS"
	varIGVMSVN        = "IGVM_SVN"
	varExtraPkgs      = "EXTRA_PKGS"
	varOSVersion      = "OS_VERSION"
	varEpoch          = "SOURCE_DATE_EPOCH"
)

// Profiles (spec §0, §12).
const (
	profileMain = "msft-main"
	profile315  = "release-3.15"
)

// defaultEpoch is the SOURCE_DATE_EPOCH used when none is given
// (2025-01-01T00:00:00Z): every timestamp the build writes is clamped to it.
const defaultEpoch = "1735689600"

func (r *Recipe) vars() []recipes.Var {
	return []recipes.Var{
		{Name: varProfile, Type: recipes.Enum, Enum: []string{profile315, profileMain}, Default: profile315,
			Description: "node-builder line to follow: release-3.15 (AKS confidential UVMs) or msft-main (HEAD, Kata only)"},
		{Name: varBuildType, Type: recipes.Enum, Enum: []string{"release", "debug"}, Default: "release",
			Description: "release or debug: selects AGENT_BUILD_TYPE, AGENT_POLICY_FILE and SHIM_USE_DEBUG_CONFIG"},
		{Name: varAgentBuildType, Type: recipes.Enum, Enum: []string{"release", "debug"},
			Description: "agent build type (make BUILD_TYPE= in src/agent); default from BUILD_TYPE",
			Derive: func(v recipes.Values) string {
				if v.Get(varBuildType) == "debug" {
					return "debug"
				}
				return "release"
			}},
		{Name: varPolicyFile, Type: recipes.String,
			Description: "agent policy baked into confpods UVMs: a name in src/kata-opa/ or built in (allow-all.rego, allow-set-policy.rego), or a path; default from BUILD_TYPE",
			Derive: func(v recipes.Values) string {
				if v.Get(varBuildType) == "debug" {
					return "allow-all.rego"
				}
				return "allow-set-policy.rego"
			}},
		{Name: varShimDebug, Type: recipes.Bool,
			Description: "install the debug shim configuration under the main configuration name; default from BUILD_TYPE",
			Derive: func(v recipes.Values) string {
				if v.Get(varBuildType) == "debug" {
					return "yes"
				}
				return "no"
			}},
		{Name: varConfPods, Type: recipes.Bool, Default: "no",
			Description: "yes builds the confidential (confpods) variant; the *-confpods targets imply it"},
		{Name: varIGVMSVN, Type: recipes.Int, Default: "0",
			Description: "guest SVN written into the IGVM measurement files"},
		{Name: varExtraPkgs, Type: recipes.String, Default: "",
			Description: "extra packages installed into the rootfs (space separated)"},
		{Name: varOSVersion, Type: recipes.Enum, Enum: r.fl.osVersions(), Default: r.fl.osVersions()[0],
			Description: r.fl.osVersionDoc()},
		{Name: varEpoch, Type: recipes.Int, Default: defaultEpoch,
			Description: "SOURCE_DATE_EPOCH: the time every output claims (osbuilder.yaml, file times, ext4)"},
	}
}

// config is the resolved, validated form of the variables for one variant.
type config struct {
	profile        string
	confpods       bool
	buildType      string
	agentBuildType string
	shimDebug      bool
	policyName     string
	igvmSVN        int
	extraPkgs      []string
	osVersion      string
	epoch          int64
}

func (c *config) main() bool { return c.profile == profileMain }

// variantName is "kata" or "confpods".
func (c *config) variantName() string {
	if c.confpods {
		return "confpods"
	}
	return "kata"
}

// newConfig checks the values (they may come from anywhere, not only
// recipes.Resolve) and derives the variant's config.
func newConfig(v recipes.Values, confpods bool, osVersions []string) (*config, error) {
	c := &config{
		profile:        v.Get(varProfile),
		confpods:       confpods,
		buildType:      v.Get(varBuildType),
		agentBuildType: v.Get(varAgentBuildType),
		shimDebug:      v.Bool(varShimDebug),
		policyName:     v.Get(varPolicyFile),
		osVersion:      v.Get(varOSVersion),
	}
	switch c.profile {
	case profile315, profileMain:
	default:
		return nil, fmt.Errorf("%s: unknown profile %q: want %s or %s", varProfile, c.profile, profile315, profileMain)
	}
	switch c.buildType {
	case "release", "debug":
	default:
		return nil, fmt.Errorf("%s: invalid value %q: want release or debug", varBuildType, c.buildType)
	}
	switch c.agentBuildType {
	case "release", "debug":
	default:
		return nil, fmt.Errorf("%s: invalid value %q: want release or debug", varAgentBuildType, c.agentBuildType)
	}
	if !contains(osVersions, c.osVersion) {
		return nil, fmt.Errorf("%s: unsupported value %q: want one of %s", varOSVersion, c.osVersion, strings.Join(osVersions, ", "))
	}
	svn, err := strconv.Atoi(v.Get(varIGVMSVN))
	if err != nil || svn < 0 {
		return nil, fmt.Errorf("%s: invalid value %q: want a non-negative integer", varIGVMSVN, v.Get(varIGVMSVN))
	}
	c.igvmSVN = svn
	epoch, err := strconv.ParseInt(v.Get(varEpoch), 10, 64)
	if err != nil || epoch < 0 {
		return nil, fmt.Errorf("%s: invalid value %q: want seconds since 1970", varEpoch, v.Get(varEpoch))
	}
	c.epoch = epoch
	for _, p := range strings.Fields(v.Get(varExtraPkgs)) {
		if !validPackageName(p) {
			return nil, fmt.Errorf("%s: invalid package name %q", varExtraPkgs, p)
		}
		c.extraPkgs = append(c.extraPkgs, p)
	}
	return c, nil
}

// validPackageName accepts RPM and Debian package names (optionally with a
// version after "=" for apt); it keeps shell metacharacters out of scripts.
func validPackageName(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("+-._:=~", r):
		default:
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
