package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// testdataDir returns ../shared/testdata resolved from the repository root.
func testdataDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("locating the repository root: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir := filepath.Join(root, "..", "shared", "testdata")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("test vectors not found at %s: %v", dir, err)
	}
	return dir
}

// TestVectors runs every vector file of a supported kind, one subtest per entry.
func TestVectors(t *testing.T) {
	files, err := Find(testdataDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no vector files found")
	}
	for _, path := range files {
		kind := KindOf(path)
		name := filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			if !Supported(kind) {
				t.Skipf("kind %s not supported yet", kind)
			}
			entries, err := Entries(path)
			if err != nil {
				t.Fatal(err)
			}
			for i, raw := range entries {
				t.Run(strconv.Itoa(i), func(t *testing.T) {
					if err := RunEntry(kind, raw); err != nil {
						t.Fatal(err)
					}
				})
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	for path, want := range map[string]string{
		"a/tree-math.json":                  "tree-math",
		"a/passive-client-random.json":      "passive-client",
		"x/interop-passive/commit.json":     "passive-client",
		"x/tsmls/passive-client-tsmls.json": "passive-client",
		"x/tsmls/transcripts-tsmls.json":    "",
		"a/SOURCE.md":                       "",
	} {
		if got := KindOf(path); got != want {
			t.Errorf("KindOf(%q) = %q, want %q", path, got, want)
		}
	}
}
