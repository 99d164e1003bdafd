package policy

import (
	"slices"
	"strings"
)

// agentRequestNames are the request names the kata agent queries as
// data.agent_policy.<name>: the protobuf message name of every ttRPC request
// whose handler in src/agent/src/rpc.rs calls is_allowed (or do_set_policy for
// SetPolicyRequest). The list is identical on the msft-main and release-3.15
// lines of microsoft/kata-containers. ReadStdout and ReadStderr share
// ReadStreamRequest; WriteStdin uses WriteStreamRequest; GetVolumeStats uses
// VolumeStatsRequest; GetGuestDetails uses GuestDetailsRequest.
const agentRequestNames = `
AddARPNeighborsRequest
AddSwapPathRequest
AddSwapRequest
CloseStdinRequest
CopyFileRequest
CreateContainerRequest
CreateSandboxRequest
DestroySandboxRequest
ExecProcessRequest
GetIPTablesRequest
GetMetricsRequest
GetOOMEventRequest
GuestDetailsRequest
ListInterfacesRequest
ListRoutesRequest
MemHotplugByProbeRequest
OnlineCPUMemRequest
PauseContainerRequest
ReadStreamRequest
RemoveContainerRequest
RemoveStaleVirtiofsShareMountsRequest
ReseedRandomDevRequest
ResumeContainerRequest
SetGuestDateTimeRequest
SetIPTablesRequest
SetPolicyRequest
SignalProcessRequest
StartContainerRequest
StatsContainerRequest
TtyWinResizeRequest
UpdateContainerRequest
UpdateEphemeralMountsRequest
UpdateInterfaceRequest
UpdateRoutesRequest
VolumeStatsRequest
WaitProcessRequest
WriteStreamRequest
`

// otherAgentRuleNames are top-level rule names that are not queried per request
// but are still legitimate in an agent policy:
//   - AllowRequestsFailingPolicy: queried by the agent whenever a policy is
//     loaded; when true, denials and undefined rules are logged and allowed.
//   - ResizeVolumeRequest: declared in agent.proto, not yet policy-checked.
//   - StartTracingRequest, StopTracingRequest: tracing RPCs of older agents;
//     genpolicy's rules.rego still declares defaults for them.
const otherAgentRuleNames = `
AllowRequestsFailingPolicy
ResizeVolumeRequest
StartTracingRequest
StopTracingRequest
`

// Requests returns the names the kata agent queries, one per policy-checked
// ttRPC request, sorted.
func Requests() []string { return strings.Fields(agentRequestNames) }

// isAgentRule reports whether name is a request name or another rule name
// the agent itself evaluates.
func isAgentRule(name string) bool {
	return slices.Contains(strings.Fields(agentRequestNames), name) ||
		slices.Contains(strings.Fields(otherAgentRuleNames), name)
}

// closestAgentRule returns the known agent rule name nearest to name by
// case-insensitive edit distance, and that distance.
func closestAgentRule(name string) (string, int) {
	best, bestDist := "", -1
	for _, list := range []string{agentRequestNames, otherAgentRuleNames} {
		for _, cand := range strings.Fields(list) {
			d := editDistance(lower(name), lower(cand))
			if bestDist < 0 || d < bestDist {
				best, bestDist = cand, d
			}
		}
	}
	return best, bestDist
}

func lower(s string) []rune {
	r := []rune(s)
	for i, c := range r {
		if c >= 'A' && c <= 'Z' {
			r[i] = c + 'a' - 'A'
		}
	}
	return r
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b []rune) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
