// Package conformance runs the MLS interoperability test vectors of the mlswg
// mls-implementations repository (format: test-vectors.md there) and the ts-mls passive-client
// vectors against tchat's MLS implementation.
//
// The kind of a file comes from its name: "tree-math.json" is a tree-math file, every file
// whose name starts with "passive-client" and every file in a folder named "interop-passive"
// is a passive-client file. A kind with no runner yet is reported as not run, never as passed.
package conformance

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// runEntry checks one entry of a vector file and returns why it failed, or nil.
type runEntry func(raw json.RawMessage) error

// runners maps a kind to its runner; each kind's file registers itself in init.
var runners = map[string]runEntry{}

func register(kind string, run runEntry) {
	if _, dup := runners[kind]; dup {
		panic("conformance: kind registered twice: " + kind)
	}
	runners[kind] = run
}

// Kinds lists every vector kind this package recognizes, in a stable order.
var Kinds = []string{
	"crypto-basics", "deserialization", "key-schedule", "message-protection", "messages",
	"psk_secret", "secret-tree", "transcript-hashes", "tree-math", "tree-operations",
	"tree-validation", "treekem", "welcome", "passive-client",
}

// KindOf returns the vector kind of the file at path, or "" if the name is not a known kind.
func KindOf(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), ".json")
	if filepath.Base(filepath.Dir(path)) == "interop-passive" || strings.HasPrefix(base, "passive-client") {
		return "passive-client"
	}
	for _, k := range Kinds {
		if base == k {
			return k
		}
	}
	return ""
}

// Supported reports whether kind has a runner.
func Supported(kind string) bool { _, ok := runners[kind]; return ok }

// Failure is one entry that did not pass.
type Failure struct {
	Index int
	Err   error
}

// FileResult is the outcome of one vector file.
type FileResult struct {
	Path     string
	Kind     string
	Total    int       // entries in the file
	Passed   int       // entries that passed
	Failures []Failure // entries that failed, in order
	NotRun   bool      // no runner for this kind yet: nothing was checked
	Err      error     // the file itself could not be read or parsed
}

// Find returns every vector file of a known kind under the given files or directories,
// sorted by path.
func Find(roots ...string) ([]string, error) {
	var out []string
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(path, ".json") && KindOf(path) != "" {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// Entries reads a vector file as its list of raw entries.
func Entries(path string) ([]json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("%s: not a JSON array of vectors: %w", path, err)
	}
	return entries, nil
}

// RunEntry checks entry i of a file of the given kind.
func RunEntry(kind string, raw json.RawMessage) (err error) {
	run, ok := runners[kind]
	if !ok {
		return fmt.Errorf("kind %q is not supported yet", kind)
	}
	defer func() {
		// A vector must never crash the runner; a panic is a failure of that entry
		// (and a bug to fix), reported with the rest.
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return run(raw)
}

// RunFile runs every entry of one vector file.
func RunFile(path string) FileResult {
	res := FileResult{Path: path, Kind: KindOf(path)}
	entries, err := Entries(path)
	if err != nil {
		res.Err = err
		return res
	}
	res.Total = len(entries)
	if !Supported(res.Kind) {
		res.NotRun = true
		return res
	}
	for i, raw := range entries {
		if err := RunEntry(res.Kind, raw); err != nil {
			res.Failures = append(res.Failures, Failure{Index: i, Err: err})
		} else {
			res.Passed++
		}
	}
	return res
}

// hexBytes is a hex-encoded byte string in a vector file.
type hexBytes []byte

func (h *hexBytes) UnmarshalText(text []byte) error {
	b, err := hex.DecodeString(string(text))
	if err != nil {
		return err
	}
	*h = b
	return nil
}

func (h hexBytes) String() string { return hex.EncodeToString(h) }

// decode unmarshals an entry strictly: unknown fields are an error, so a misspelled field
// name cannot make a check silently vanish.
func decode(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("vector: %w", err)
	}
	return nil
}

// mismatch reports a computed value that differs from the vector.
func mismatch(what string, got, want []byte) error {
	return fmt.Errorf("%s: got %x, want %x", what, got, want)
}
