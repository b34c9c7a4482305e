package sfu_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/sansrtc/sfu/"

// pure lists the sans-IO packages and the module packages each may import
// (DESIGN.md: imports only go down the list; track and sdn are leaves).
var pure = map[string][]string{
	"track":               {},
	"sdn":                 {},
	"endpoint":            {"track"},
	"cluster":             {"track", "sdn", "internal/mediaframe"},
	"internal/mediaframe": {"track"},
	"core":                {"track", "sdn", "endpoint", "cluster"},
}

// forbidden standard packages: I/O, OS access, synchronisation and
// unseeded randomness belong to the drivers.
var forbidden = []string{"net", "os", "os/exec", "os/signal", "sync", "sync/atomic", "math/rand", "crypto/rand", "syscall", "unsafe", "net/http", "io/ioutil", "log", "runtime"}

// forbiddenTime are the time functions that read the clock or start timers.
var forbiddenTime = []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "NewTimer", "NewTicker", "Tick"}

// allowedThirdParty may be imported by pure packages (pure wire-format
// libraries with no I/O of their own).
var allowedThirdParty = []string{"github.com/pion/rtp", "github.com/pion/rtcp"}

// TestPurePackages enforces the sans-IO contract of DESIGN.md the way Go's
// own go/build deps_test does: by reading the source.
func TestPurePackages(t *testing.T) {
	for dir, allowed := range pure {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		sub, _ := filepath.Glob(filepath.Join(dir, "*", "*.go"))
		files = append(files, sub...)
		if len(files) == 0 {
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("%s: no Go files found", dir)
			}
			continue
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			checkFile(t, f, dir, allowed)
		}
	}
}

type reporter interface {
	Errorf(format string, args ...any)
}

type recorder struct{ msgs []string }

func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func checkFile(t reporter, path, pkg string, allowed []string) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	timeName := ""
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		switch {
		case slices.Contains(forbidden, p):
			t.Errorf("%s imports %q: pure packages do no I/O, locking or unseeded randomness", path, p)
		case strings.HasPrefix(p, module):
			rel := strings.TrimPrefix(p, module)
			top := strings.Split(rel, "/")[0]
			inOwnTree := strings.HasPrefix(rel, pkg+"/")
			if !inOwnTree && !slices.Contains(allowed, top) && top != "internal" {
				t.Errorf("%s imports %q: %s may import only %v", path, p, pkg, allowed)
			}
			if top == "transport" || strings.HasPrefix(rel, "internal/testutil") {
				t.Errorf("%s imports %q", path, p)
			}
		case strings.Contains(strings.Split(p, "/")[0], "."):
			if !slices.ContainsFunc(allowedThirdParty, func(a string) bool { return p == a || strings.HasPrefix(p, a+"/") }) {
				t.Errorf("%s imports third-party %q: not on the pure allowlist", path, p)
			}
		}
		if p == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			t.Errorf("%s: go statement: pure packages start no goroutines", fset.Position(n.Pos()))
		case *ast.SelectStmt:
			t.Errorf("%s: select statement", fset.Position(n.Pos()))
		case *ast.ChanType:
			t.Errorf("%s: channel type", fset.Position(n.Pos()))
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && timeName != "" && id.Name == timeName && slices.Contains(forbiddenTime, n.Sel.Name) {
				t.Errorf("%s: time.%s: time comes in as an argument", fset.Position(n.Pos()), n.Sel.Name)
			}
		}
		return true
	})
}

// TestPureCheckerCatches proves the checker is not vacuous: a file that
// breaks each rule is reported.
func TestPureCheckerCatches(t *testing.T) {
	dir := t.TempDir()
	src := `package bad
import (
	"net"
	"time"
	"github.com/sansrtc/sfu/transport/udp"
)
var _ = net.IPv4len
var _ = udp.X
func f() {
	ch := make(chan int)
	go func() {}()
	select {}
	_ = time.Now()
	_ = ch
}
`
	path := filepath.Join(dir, "bad.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	checkFile(rec, path, "track", nil)
	for _, want := range []string{`imports "net"`, "transport/udp", "go statement", "select statement", "channel type", "time.Now"} {
		if !slices.ContainsFunc(rec.msgs, func(m string) bool { return strings.Contains(m, want) }) {
			t.Errorf("checker missed %q; reported %q", want, rec.msgs)
		}
	}
}
