package diff

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// readFlatJSON parses a JSON object whose values are scalars (a
// measurement file is one) into key → JSON-encoded value; ok is false for
// anything else.
func readFlatJSON(p []byte) (map[string]string, bool) {
	if !bytes.HasPrefix(bytes.TrimSpace(p), []byte("{")) {
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(p, &m); err != nil {
		return nil, false
	}
	out := map[string]string{}
	for k, v := range m {
		v = bytes.TrimSpace(v)
		if len(v) > 0 && (v[0] == '{' || v[0] == '[') {
			return nil, false
		}
		out[k] = string(v)
	}
	return out, true
}

// readVerityInfo parses veritysetup's "format" output (root_hash.txt):
// "Label:<spaces or tab>value" lines after the header line.
func readVerityInfo(p []byte) (map[string]string, bool) {
	if !bytes.HasPrefix(p, []byte("VERITY header information")) {
		return nil, false
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(p), "\n")[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, true
}

// compareKeyValues reports keys present on one side only and differing
// values, in key order.
func compareKeyValues(r *Report, o *Options, prefix string, a, b map[string]string) {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		if a[k] != b[k] {
			r.add(o.MaxItems, Item{Where: prefix + k, A: a[k], B: b[k]})
		}
	}
}

// compareSmall compares two small files already read: measurement JSON,
// root_hash.txt, other text or binary.
func compareSmall(ctx context.Context, r *Report, o *Options, a, b string, da, db []byte) {
	if ma, ok := readFlatJSON(da); ok {
		if mb, ok := readFlatJSON(db); ok {
			r.Kind = "json"
			if _, m := ma["x-ms-sevsnpvm-launchmeasurement"]; m {
				r.Kind = "measurement"
			}
			compareKeyValues(r, o, "", ma, mb)
			if r.Same() && !bytes.Equal(da, db) {
				r.add(o.MaxItems, Item{Where: "same keys and values, different bytes (formatting)", Detail: unified(r.A, r.B, da, db)})
			}
			return
		}
	}
	if ma, ok := readVerityInfo(da); ok {
		if mb, ok := readVerityInfo(db); ok {
			r.Kind = "verity-info"
			compareKeyValues(r, o, "", ma, mb)
			if r.Same() && !bytes.Equal(da, db) {
				r.add(o.MaxItems, Item{Where: "same fields, different bytes (formatting)", Detail: unified(r.A, r.B, da, db)})
			}
			return
		}
	}
	if isText(da) && isText(db) {
		r.Kind = "text"
		if !bytes.Equal(da, db) {
			r.add(o.MaxItems, Item{Where: "content", Detail: unified(r.A, r.B, da, db)})
		}
		return
	}
	r.Kind = "binary"
	st, _ := compareStreams(ctx, bytes.NewReader(da), bytes.NewReader(db))
	for _, it := range binaryItems(st, bytes.NewReader(da), bytes.NewReader(db), nil) {
		r.add(o.MaxItems, it)
	}
}

func readSmall(name string) ([]byte, error) {
	p, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return p, nil
}
