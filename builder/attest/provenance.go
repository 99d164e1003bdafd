package attest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/uvmbuild/uvmbuild/builder/atomicfile"
	"github.com/uvmbuild/uvmbuild/builder/record"
)

// Provenance constants.
const (
	// ProvenanceFile is the statement's name in the output directory.
	ProvenanceFile = "provenance.intoto.json"
	// PredicateSLSAProvenance is the SLSA v1 provenance predicate type.
	PredicateSLSAProvenance = "https://slsa.dev/provenance/v1"
	// BuildType identifies how to read externalParameters (recipe,
	// targets, vars) of a uvmbuild build.
	BuildType = "https://github.com/uvmbuild/uvmbuild/buildtypes/build/v1"
	// DefaultBuilderID names the builder when the caller gives none.
	DefaultBuilderID = "https://github.com/uvmbuild/uvmbuild"
	// treeDigestAlg names uvmbuild's canonical tree digest (builder/graph)
	// in in-toto digest sets; it is not the in-toto dirHash.
	treeDigestAlg = "uvmbuildTreeSha256"
)

// ProvenanceOptions add what the build record does not hold.
type ProvenanceOptions struct {
	// BuilderID is runDetails.builder.id (default DefaultBuilderID).
	BuilderID string
	// BuilderVersion goes into runDetails.builder.version, e.g.
	// {"uvmbuild": "v0.3.0", "go": "go1.26.8"}.
	BuilderVersion map[string]string
	// LaunchDigests maps a measured artifact's name (the IGVM file) to
	// its SEV-SNP launch digest; each becomes a sha384 subject
	// "<artifact>#snp-launch-digest".
	LaunchDigests map[string]string
}

// digestSet turns "alg:hex" into an in-toto digest set.
func digestSet(d string) map[string]string {
	alg, enc, ok := strings.Cut(d, ":")
	if !ok || enc == "" {
		return nil
	}
	return map[string]string{alg: enc}
}

// Provenance builds the in-toto statement of a build: subjects are the
// output artifacts and the launch digests; resolvedDependencies every host
// input, builder image and digest fact of the record (kata source,
// package lock, policy, kernel, ACPI tables, ...); non-digest facts
// (iasl and tool versions) go into internalParameters. The result is
// validated against the in-toto and SLSA types.
func Provenance(b *record.Build, opt ProvenanceOptions) (*intoto.Statement, error) {
	st := &intoto.Statement{Type: intoto.StatementTypeUri, PredicateType: PredicateSLSAProvenance}
	for _, a := range b.Artifacts {
		if a.Name == record.FileName || a.Name == ProvenanceFile {
			continue
		}
		rd := &intoto.ResourceDescriptor{Name: a.Name, Digest: digestSet(string(a.Digest))}
		if a.Type == record.TypeDir {
			rd.Digest = map[string]string{treeDigestAlg: strings.TrimPrefix(string(a.Digest), "sha256:")}
		}
		if rd.Digest == nil {
			continue // symlinks have no content digest
		}
		st.Subject = append(st.Subject, rd)
	}
	for _, name := range sortedKeys(opt.LaunchDigests) {
		st.Subject = append(st.Subject, &intoto.ResourceDescriptor{
			Name:   name + "#snp-launch-digest",
			Digest: map[string]string{"sha384": opt.LaunchDigests[name]},
		})
	}

	// Materials: host inputs, pinned sources (outputs of steps without
	// inputs: fetched packages, builder images, the policy), the direct
	// inputs of the steps that produce artifacts (kernel, verity
	// parameters, rootfs), images, recorded digests.
	deps := map[string]*intoto.ResourceDescriptor{}
	addDep := func(name string, d map[string]string, mediaType string) {
		if d != nil {
			deps[name] = &intoto.ResourceDescriptor{Name: name, Digest: d, MediaType: mediaType}
		}
	}
	hostDigests := map[string]map[string]bool{}
	for _, act := range b.Actions {
		for _, in := range act.Inputs {
			if in.Source == "file" || in.Source == "dir" {
				if hostDigests[in.Name] == nil {
					hostDigests[in.Name] = map[string]bool{}
				}
				hostDigests[in.Name][string(in.Digest)] = true
			}
		}
	}
	producesArtifact := map[string]bool{}
	for _, a := range b.Artifacts {
		producesArtifact[a.Step] = true
	}
	pinned := map[string]bool{}
	for _, act := range b.Actions {
		if len(act.Inputs) == 0 {
			pinned[act.ID] = true
		}
	}
	for _, act := range b.Actions {
		for _, in := range act.Inputs {
			switch {
			case in.Source == "file" || in.Source == "dir":
				name := in.Name
				if len(hostDigests[in.Name]) > 1 {
					name = act.ID + "/" + in.Name // same name, different content
				}
				d := digestSet(string(in.Digest))
				if in.Source == "dir" {
					d = map[string]string{treeDigestAlg: strings.TrimPrefix(string(in.Digest), "sha256:")}
				}
				addDep(name, d, "")
			case strings.HasPrefix(in.Source, "step:"):
				src := strings.TrimPrefix(in.Source, "step:")
				if pinned[producer(b, src)] || producesArtifact[act.ID] {
					addDep(src, digestSet(string(in.Digest)), "")
				}
			}
		}
		if act.Image != "" {
			addDep("image:"+act.Kind+"@"+string(act.Image), digestSet(string(act.Image)), "application/vnd.oci.image.manifest.v1+json")
		}
	}
	internal := map[string]any{}
	for _, k := range sortedKeys(b.Record) {
		v := b.Record[k]
		if d := digestSet(v); d != nil && looksLikeDigest(v) {
			deps[k] = &intoto.ResourceDescriptor{Name: k, Digest: d}
		} else {
			internal[k] = v
		}
	}
	var depList []*intoto.ResourceDescriptor
	for _, k := range sortedKeys(deps) {
		depList = append(depList, deps[k])
	}
	ext := map[string]any{"recipe": b.Recipe, "targets": toAny(b.Targets), "vars": toAnyMap(b.Vars)}
	extS, err := structpb.NewStruct(ext)
	if err != nil {
		return nil, fmt.Errorf("provenance externalParameters: %w", err)
	}
	steps := make([]any, 0, len(b.Actions))
	for _, a := range b.Actions {
		steps = append(steps, map[string]any{"id": a.ID, "kind": a.Kind, "key": string(a.Key)})
	}
	internal["steps"] = steps
	internal["schemaVersion"] = b.SchemaVersion
	intS, err := structpb.NewStruct(internal)
	if err != nil {
		return nil, fmt.Errorf("provenance internalParameters: %w", err)
	}
	id := opt.BuilderID
	if id == "" {
		id = DefaultBuilderID
	}
	pred := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{
			BuildType:            BuildType,
			ExternalParameters:   extS,
			InternalParameters:   intS,
			ResolvedDependencies: depList,
		},
		RunDetails: &slsa.RunDetails{Builder: &slsa.Builder{Id: id, Version: opt.BuilderVersion}},
	}
	if err := pred.Validate(); err != nil {
		return nil, fmt.Errorf("provenance predicate: %w", err)
	}
	pb, err := protojson.Marshal(pred)
	if err != nil {
		return nil, err
	}
	st.Predicate = &structpb.Struct{}
	if err := protojson.Unmarshal(pb, st.Predicate); err != nil {
		return nil, err
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("provenance statement: %w", err)
	}
	return st, nil
}

// producer returns the ID of the action whose output src ("<id>" or
// "<id>/<output>") names: the longest action ID that prefixes it.
func producer(b *record.Build, src string) string {
	best := ""
	for _, a := range b.Actions {
		if (src == a.ID || strings.HasPrefix(src, a.ID+"/")) && len(a.ID) > len(best) {
			best = a.ID
		}
	}
	return best
}

func looksLikeDigest(v string) bool {
	alg, enc, _ := strings.Cut(v, ":")
	if alg == "" || enc == "" || strings.ContainsAny(enc, " /") {
		return false
	}
	for _, c := range enc {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return len(enc) >= 32
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func toAnyMap(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// MarshalStatement encodes a statement deterministically: protojson's
// field names, then re-encoded with sorted keys and two-space indent
// (protojson deliberately varies its whitespace).
func MarshalStatement(st *intoto.Statement) ([]byte, error) {
	raw, err := protojson.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encoding provenance: %w", err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseStatement decodes and validates a provenance statement: the
// in-toto statement layer and its SLSA v1 provenance predicate.
func ParseStatement(data []byte) (*intoto.Statement, *slsa.Provenance, error) {
	var st intoto.Statement
	if err := protojson.Unmarshal(data, &st); err != nil {
		return nil, nil, fmt.Errorf("%w: in-toto statement: %w", ErrBadInput, err)
	}
	if err := st.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: in-toto statement: %w", ErrBadInput, err)
	}
	if st.PredicateType != PredicateSLSAProvenance {
		return nil, nil, fmt.Errorf("%w: predicateType %q, want %q", ErrBadInput, st.PredicateType, PredicateSLSAProvenance)
	}
	pj, err := protojson.Marshal(st.Predicate)
	if err != nil {
		return nil, nil, err
	}
	var p slsa.Provenance
	if err := protojson.Unmarshal(pj, &p); err != nil {
		return nil, nil, fmt.Errorf("%w: SLSA provenance: %w", ErrBadInput, err)
	}
	if err := p.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: SLSA provenance: %w", ErrBadInput, err)
	}
	return &st, &p, nil
}

// maxMeasurementSize bounds the artifacts WriteProvenance inspects for
// launch digests.
const maxMeasurementSize = 4096

// LaunchDigests finds the measurement files among a build's file
// artifacts in outDir and maps each to its launch digest. The measured
// artifact is named after the measurement file: node-builder's
// "igvm-measurement.cose" measures "kata-containers-igvm.img", and
// "igvm-debug-measurement.cose" the debug IGVM; other names are used as
// they are.
func LaunchDigests(b *record.Build, outDir string) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range b.Artifacts {
		if a.Type != record.TypeFile || a.Size == 0 || a.Size > maxMeasurementSize {
			continue
		}
		data, err := os.ReadFile(filepath.Join(outDir, filepath.FromSlash(a.Name)))
		if err != nil {
			return nil, fmt.Errorf("reading artifact %s: %w", a.Name, err)
		}
		if !bytes.Contains(data, []byte(KeyLaunchDigest)) {
			continue
		}
		m, err := ParseMeasurement(data, a.Name)
		if err != nil {
			continue // not a measurement file after all
		}
		out[measuredName(a.Name)] = m.LaunchDigest
	}
	return out, nil
}

func measuredName(name string) string {
	dir, base := path.Split(name)
	switch base {
	case "igvm-measurement.cose":
		return dir + "kata-containers-igvm.img"
	case "igvm-debug-measurement.cose":
		return dir + "kata-containers-igvm-debug.img"
	}
	return name
}

// WriteProvenance writes outDir/provenance.intoto.json for the build b
// whose artifacts are in outDir, atomically (temp file beside it, fsync,
// rename). The launch digests come from the measurement artifacts.
func WriteProvenance(b *record.Build, outDir string, opt ProvenanceOptions) error {
	if opt.LaunchDigests == nil {
		ld, err := LaunchDigests(b, outDir)
		if err != nil {
			return err
		}
		opt.LaunchDigests = ld
	}
	st, err := Provenance(b, opt)
	if err != nil {
		return err
	}
	data, err := MarshalStatement(st)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(outDir, ProvenanceFile), data, 0o644)
}
