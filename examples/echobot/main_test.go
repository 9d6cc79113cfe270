package main

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPublicAPIOnly checks that echobot imports none of the module's internal packages:
// it is the example of a program outside the module, which cannot. (cmd/tchat's TestBot
// runs it.)
func TestPublicAPIOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/tchat-p2p/tchat/") && (strings.Contains(path, "/internal/") || strings.HasSuffix(path, "/internal")) {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}
