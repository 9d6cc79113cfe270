package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runCLI(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestNoArgumentsRunsAndExitsZero(t *testing.T) {
	out, _, code := runCLI()
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out, "vectors") {
		t.Errorf("no command list in:\n%s", out)
	}
}

func TestUnknownCommand(t *testing.T) {
	_, errOut, code := runCLI("frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestVectorsUsage(t *testing.T) {
	if _, errOut, code := runCLI("vectors"); code != 2 || !strings.Contains(errOut, "usage") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := runCLI("vectors", t.TempDir()); code != 1 || !strings.Contains(errOut, "no test-vector files") {
		t.Errorf("empty dir: exit %d, stderr %q", code, errOut)
	}
}

// TestVectorsReportsFailures feeds a corrupted vector and checks that the failure is
// reported with its entry index and that the exit status says so.
func TestVectorsReportsFailures(t *testing.T) {
	dir := t.TempDir()
	good := `{"cipher_suite":1,"ref_hash":{"label":"x","value":"00","out":"00"}}`
	if err := os.WriteFile(filepath.Join(dir, "crypto-basics.json"), []byte("["+good+"]"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := runCLI("vectors", dir)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(out, "crypto-basics.json: 0/1") || !strings.Contains(out, "entry 0: ") {
		t.Errorf("failure not reported:\n%s", out)
	}
	if !strings.HasSuffix(out, "0 passed, 1 failed\n") {
		t.Errorf("last line wrong:\n%s", out)
	}
}

// TestVectorsOnSharedTestdata runs the real vectors through the command, as a user would.
func TestVectorsOnSharedTestdata(t *testing.T) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), "..", "shared", "testdata", "mls-vectors")
	out, _, code := runCLI("vectors", dir)
	last := out[strings.LastIndex(strings.TrimSuffix(out, "\n"), "\n")+1:]
	m := regexp.MustCompile(`^(\d+) passed, (\d+) failed\n$`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q", last)
	}
	if m[2] != "0" || code != 0 {
		t.Errorf("exit %d, %s\n%s", code, strings.TrimSpace(last), out)
	}
	if m[1] == "0" {
		t.Errorf("nothing passed:\n%s", out)
	}
}
