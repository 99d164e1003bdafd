# allow-set-policy.rego: only SetPolicyRequest is allowed.
#
# This is the policy baked into release UVMs. Until the shim installs the
# pod's own policy with SetPolicyRequest, every other request is denied. Each
# request is given an explicit false (rather than left undefined) so the agent
# answers "blocked by policy" (PERMISSION_DENIED) instead of failing the
# evaluation with an internal error, and so that a reader can see the whole
# surface in one place. AllowRequestsFailingPolicy stays false: denials are
# enforced, not just logged.
#
# Written to parse identically as rego v0 (the agent's regorus default) and
# rego v1.

package agent_policy

default AllowRequestsFailingPolicy := false

default SetPolicyRequest := true

default AddARPNeighborsRequest := false
default AddSwapPathRequest := false
default AddSwapRequest := false
default CloseStdinRequest := false
default CopyFileRequest := false
default CreateContainerRequest := false
default CreateSandboxRequest := false
default DestroySandboxRequest := false
default ExecProcessRequest := false
default GetIPTablesRequest := false
default GetMetricsRequest := false
default GetOOMEventRequest := false
default GuestDetailsRequest := false
default ListInterfacesRequest := false
default ListRoutesRequest := false
default MemHotplugByProbeRequest := false
default OnlineCPUMemRequest := false
default PauseContainerRequest := false
default ReadStreamRequest := false
default RemoveContainerRequest := false
default RemoveStaleVirtiofsShareMountsRequest := false
default ReseedRandomDevRequest := false
default ResumeContainerRequest := false
default SetGuestDateTimeRequest := false
default SetIPTablesRequest := false
default SignalProcessRequest := false
default StartContainerRequest := false
default StatsContainerRequest := false
default TtyWinResizeRequest := false
default UpdateContainerRequest := false
default UpdateEphemeralMountsRequest := false
default UpdateInterfaceRequest := false
default UpdateRoutesRequest := false
default VolumeStatsRequest := false
default WaitProcessRequest := false
default WriteStreamRequest := false
