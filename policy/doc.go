// Package policy holds this project's kata agent policies and checks policy
// files before a build uses them.
//
// The kata agent (built with AGENT_POLICY=yes) loads a rego document and, for
// every ttRPC request, evaluates data.agent_policy.<RequestName>, where
// RequestName is the protobuf message name of the request (for example
// CreateContainerRequest, or ReadStreamRequest for ReadStdout). A result other
// than true denies the request. A rule whose name is misspelt is therefore
// never queried and the request it was meant to allow is silently denied in
// the guest: Load catches that at build time, with the line number and the
// closest valid name.
//
// Two policies are embedded (Builtin): allow-all.rego, every request allowed
// (debug builds), and allow-set-policy.rego, only SetPolicyRequest allowed
// until the shim installs the pod's policy (release builds).
//
// # Rego dialect
//
// The agent evaluates policies with regorus, which parses rego v0 by default
// (genpolicy's rules.rego says so and imports future.keywords for that
// reason). Load therefore accepts exactly what parses and compiles as rego v0,
// which includes modules written in v1 syntax that declare `import rego.v1` or
// import the future keywords they use. A module that is valid v1 but not v0
// (for example `allow if { ... }` without an import) is rejected with a hint,
// because the agent would fail to load it at boot. The embedded policies parse
// identically as v0 and v1.
//
// # Rule names
//
// Every rule in the module must be one of:
//   - a request name the agent queries (see Requests), or another rule the
//     agent evaluates or that upstream policies declare
//     (AllowRequestsFailingPolicy, ResizeVolumeRequest, StartTracingRequest,
//     StopTracingRequest);
//   - a helper: a name starting with a lower-case letter or underscore
//     (policy_data, allow_exec), an ALL_CAPS constant (S_NAME_KEY), or a
//     request name followed by a suffix (CreateContainerRequestCommon).
//
// Anything else that starts with an upper-case letter, and any helper within
// two edits of a request name (case ignored), is reported as a misspelt rule.
// A default value given to a request rule must be a boolean or an object (the
// agent accepts nothing else).
//
// The digest of a policy is the SHA-256 of its exact bytes, which are the
// bytes installed at /etc/kata-opa/<name> in the rootfs.
package policy
