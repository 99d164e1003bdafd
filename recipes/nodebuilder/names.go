package nodebuilder

// names are the node-builder's derived constants for one variant (common.sh,
// spec §2.2).
type names struct {
	installPrefix    string // INSTALL_PATH_PREFIX, also the runtime's PREFIX
	uvmPath          string // UVM_PATH_DEFAULT
	shimConfigPath   string // SHIM_CONFIG_PATH
	shimConfig       string // SHIM_CONFIG_FILE_NAME (built)
	shimConfigInst   string // SHIM_CONFIG_INST_FILE_NAME (installed)
	shimDebugConfig  string // SHIM_DBG_CONFIG_FILE_NAME ("" when the profile has none)
	shimBinary       string // SHIM_BINARY_NAME (installed)
	debugBinaries    string // DEBUGGING_BINARIES_PATH
	imageFile        string // IMG_FILE_NAME
	igvmFile         string // IGVM_FILE_NAME
	igvmDebugFile    string // IGVM_DBG_FILE_NAME
	measurementFile  string // UVM_MEASUREMENT_FILE_NAME
	measurementDebug string // UVM_MEASUREMENT_DBG_FILE_NAME
}

func namesFor(c *config) names {
	if c.confpods {
		return names{
			installPrefix:    "/opt/confidential-containers",
			uvmPath:          "/opt/confidential-containers/share/kata-containers",
			shimConfigPath:   "/opt/confidential-containers/share/defaults/kata-containers",
			shimConfig:       "configuration-clh-snp.toml",
			shimConfigInst:   "configuration-clh-snp.toml",
			shimDebugConfig:  "configuration-clh-snp-debug.toml",
			shimBinary:       "containerd-shim-kata-cc-v2",
			debugBinaries:    "/opt/confidential-containers/bin",
			imageFile:        "kata-containers.img",
			igvmFile:         "kata-containers-igvm.img",
			igvmDebugFile:    "kata-containers-igvm-debug.img",
			measurementFile:  "igvm-measurement.cose",
			measurementDebug: "igvm-debug-measurement.cose",
		}
	}
	n := names{
		installPrefix:  "/usr",
		uvmPath:        "/usr/share/kata-containers",
		shimConfigPath: "/usr/share/defaults/kata-containers",
		shimConfig:     "configuration-clh.toml",
		shimConfigInst: "configuration.toml",
		shimBinary:     "containerd-shim-kata-v2",
		debugBinaries:  "/usr/local/bin",
		imageFile:      "kata-containers.img",
	}
	if c.main() {
		// The Kata debug configuration exists only at HEAD (spec §3.1 step 3).
		n.shimDebugConfig = "configuration-clh-debug.toml"
	}
	return n
}
