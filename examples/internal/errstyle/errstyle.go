// Package errstyle holds a command of the examples to the error style its
// package documentation states, in its tests: a text the command makes
// carries no prefix (errcode's style gives each package's texts its name
// once; a command names itself once, when it reports), so it begins with
// neither a name of the module's packages nor a command's.
package errstyle

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// constructors are the calls that make an error from a text, with the
// index of the text among their arguments.
var constructors = map[string]int{"fmt.Errorf": 0, "errors.New": 0, "errcode.New": 1, "errcode.Sub": 1}

// prefix is a text's first word when a colon follows it, as a package's
// name does in errcode's style.
var prefix = regexp.MustCompile(`^([a-z][a-z0-9]*): `)

// Check fails t for each text, in the non-test Go files of the working
// directory (the package under test), that an error is made of and that
// begins with a package's or a command's name and a colon. helpers are
// the package's own functions that make an error of a format, such as
// "usageErrorf"; their first argument is checked too.
func Check(t testing.TB, helpers ...string) {
	t.Helper()
	names := moduleNames(t)
	calls := map[string]int{}
	for k, v := range constructors {
		calls[k] = v
	}
	for _, h := range helpers {
		calls[h] = 0
	}
	fset := token.NewFileSet()
	files, _ := filepath.Glob("*.go")
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			i, ok := calls[callee(call.Fun)]
			if !ok || len(call.Args) <= i {
				return true
			}
			lit, ok := call.Args[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			text, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			checked++
			if m := prefix.FindStringSubmatch(text); m != nil && names[m[1]] {
				t.Errorf("%s: %q begins with %q, a name of the module's: a command's own texts carry no prefix",
					fset.Position(lit.Pos()), text, m[1]+":")
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no error text found: run Check from a package's test")
	}
}

// callee names the function a call calls: "fmt.Errorf", "usageErrorf".
func callee(fun ast.Expr) string {
	switch f := fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		if x, ok := f.X.(*ast.Ident); ok {
			return x.Name + "." + f.Sel.Name
		}
	}
	return ""
}

// moduleNames are the names of the packages of the repository the working
// directory is in (found from its go.work), and of its commands (a package
// main is named after its directory).
func moduleNames(t testing.TB) map[string]bool {
	t.Helper()
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(root, "go.work")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			t.Fatal("no go.work above the working directory")
		}
		root = parent
	}
	names := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly)
		if err != nil {
			return nil
		}
		name := f.Name.Name
		if name == "main" {
			name = filepath.Base(filepath.Dir(path))
		}
		names[name] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}
