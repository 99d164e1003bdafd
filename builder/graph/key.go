package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"

	"github.com/opencontainers/go-digest"
)

// KeySchema versions the key material's encoding. Change it whenever the
// meaning of a key changes (a new field, a different input digest), so
// that old cache entries are never served for new semantics.
const KeySchema = "uvmbuild.key/v1"

// KeyMaterial is everything a step's key is computed from. It is also kept
// per step ID in the build history, so that `plan` can say which part
// changed since the last build.
type KeyMaterial struct {
	Schema  string        `json:"schema"`
	Kind    string        `json:"kind"`
	Version string        `json:"version"`
	Image   digest.Digest `json:"image,omitempty"`
	// Params is the canonical JSON of Spec.Params (sorted keys, numbers
	// normalised), "null" when there are none.
	Params json.RawMessage `json:"params"`
	// Inputs are sorted by Name.
	Inputs []KeyInput `json:"inputs"`
	// Outputs are sorted.
	Outputs []string `json:"outputs"`
}

// KeyInput is one input's contribution to the key. Source is kept for
// explanations only and is not hashed.
type KeyInput struct {
	Name   string        `json:"name"`
	Digest digest.Digest `json:"digest"`
	Source string        `json:"-"`
}

// keyInputJSON is KeyInput with Source, for the history file.
type keyInputJSON struct {
	Name   string        `json:"name"`
	Digest digest.Digest `json:"digest"`
	Source string        `json:"source,omitempty"`
}

// Key digests the canonical encoding of km.
func (km *KeyMaterial) Key() digest.Digest {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// KeyMaterial has only strings, digests, raw canonical JSON and slices:
	// encoding cannot fail.
	if err := enc.Encode(km); err != nil {
		panic(fmt.Sprintf("graph: encoding key material: %v", err))
	}
	return digest.FromBytes(buf.Bytes())
}

// newKeyMaterial assembles the key material of s from its input digests.
func newKeyMaterial(s *Step, inputs []KeyInput) (*KeyMaterial, error) {
	params, err := CanonicalParams(s.Spec.Params)
	if err != nil {
		return nil, fmt.Errorf("step %s: params: %w", s.ID, err)
	}
	ins := append([]KeyInput(nil), inputs...)
	sort.Slice(ins, func(i, j int) bool { return ins[i].Name < ins[j].Name })
	outs := append([]string(nil), s.Outputs...)
	sort.Strings(outs)
	if outs == nil {
		outs = []string{}
	}
	if ins == nil {
		ins = []KeyInput{}
	}
	return &KeyMaterial{
		Schema:  KeySchema,
		Kind:    s.Spec.Kind,
		Version: s.Spec.Version,
		Image:   s.Spec.Image,
		Params:  params,
		Inputs:  ins,
		Outputs: outs,
	}, nil
}

// CanonicalParams encodes params as canonical JSON: object keys sorted,
// numbers in their shortest form, no HTML escaping, so that equal values
// always encode to equal bytes (1 and 1.0 are the same number). Values
// that JSON cannot represent (functions, channels, NaN) are an error.
func CanonicalParams(params map[string]any) (json.RawMessage, error) {
	if len(params) == 0 {
		return json.RawMessage("null"), nil
	}
	for k, v := range params {
		if err := checkParam(k, reflect.ValueOf(v)); err != nil {
			return nil, err
		}
	}
	first, err := marshalNoEscape(params)
	if err != nil {
		return nil, err
	}
	// Round-trip through generic values: structs become sorted objects and
	// numbers take one canonical form.
	dec := json.NewDecoder(bytes.NewReader(first))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	normaliseNumbers(&generic)
	return marshalNoEscape(generic)
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// normaliseNumbers rewrites json.Numbers to float64 when they are not
// integers, and to an integer literal when they are, so 1, 1.0 and 1e0 are
// one value.
func normaliseNumbers(v *any) {
	switch x := (*v).(type) {
	case map[string]any:
		for k, e := range x {
			normaliseNumbers(&e)
			x[k] = e
		}
	case []any:
		for i := range x {
			normaliseNumbers(&x[i])
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			*v = i
			return
		}
		f, err := x.Float64()
		if err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			*v = int64(f)
			return
		}
		*v = f
	}
}

func checkParam(path string, v reflect.Value) error {
	if !v.IsValid() {
		return nil
	}
	switch v.Kind() {
	case reflect.Func, reflect.Chan, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return fmt.Errorf("param %s: %s values cannot be keyed", path, v.Kind())
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("param %s: %v cannot be keyed", path, f)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if err := checkParam(fmt.Sprintf("%s.%v", path, k), v.MapIndex(k)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			if err := checkParam(fmt.Sprintf("%s[%d]", path, i), v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return checkParam(path, v.Elem())
		}
	}
	return nil
}
