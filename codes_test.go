package keepslot_test

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/drill"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/pitr"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/sensitive"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/s3store"
)

// TestErrorCodes checks that every error a user can cause, in every
// package, carries its own code, and that the code survives wrapping.
func TestErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want errcode.Code
	}{
		{nil, errcode.OK},
		{cipher.ErrEmptyPassword, errcode.EmptyPassword},
		{cipher.ErrWrongPassword, errcode.WrongPassword},
		{cipher.ErrCorrupt, errcode.Corrupt},
		{cipher.ErrUnsupportedVersion, errcode.Corrupt},
		{cipher.ErrKDFTooExpensive, errcode.Invalid},
		{store.ErrSlotOccupied, errcode.SlotOccupied},
		{store.ErrBusy, errcode.InProgress},
		{store.ErrEmpty, errcode.NoBackup},
		{store.ErrNotFound, errcode.NoBackup},
		{store.ErrInvalid, errcode.Invalid},
		{store.ErrCorrupt, errcode.Corrupt},
		{store.ErrClosed, errcode.Internal},
		{store.ErrMismatch, errcode.Corrupt},
		{store.ErrUnreachable, errcode.Unreachable},
		{store.ErrUnauthorized, errcode.Unauthorized},
		{s3store.ErrUnreachable, errcode.Unreachable},
		{s3store.ErrUnauthorized, errcode.Unauthorized},
		{s3store.ErrNoBucket, errcode.Invalid},
		{s3store.ErrConfig, errcode.Invalid},
		{archive.ErrCorrupt, errcode.Corrupt},
		{archive.ErrUnknownFormat, errcode.Corrupt},
		{archive.ErrUnsafePath, errcode.Corrupt},
		{archive.ErrTooLarge, errcode.Corrupt},
		{archive.ErrUnknownNamespace, errcode.Corrupt},
		{archive.ErrIncomplete, errcode.Internal},
		{namespace.ErrBadPattern, errcode.Invalid},
		{slot.ErrNotBackupNode, errcode.NotBackupNode},
		{slot.ErrInProgress, errcode.InProgress},
		{slot.ErrInvalid, errcode.Invalid},
		{&slot.SpaceError{Data: 1, Need: 2}, errcode.InsufficientSpace},
		{backup.ErrUnreachable, errcode.Unreachable},
		{backup.ErrUnauthorized, errcode.Unauthorized},
		{backup.ErrOplogRollover, errcode.OplogRollover},
		{backup.ErrNoOplog, errcode.Invalid},
		{backup.ErrSourceChanged, errcode.SourceChanged},
		{backup.ErrDocumentTooLarge, errcode.Invalid},
		{backup.ErrSharded, errcode.Sharded},
		{restore.ErrCorrupt, errcode.Corrupt},
		{restore.ErrCountMismatch, errcode.CountMismatch},
		{restore.ErrNoOplog, errcode.Invalid},
		{restore.ErrInvalid, errcode.Invalid},
		{restore.ErrSlow, errcode.Cancelled},
		{restore.ErrUnreachable, errcode.Unreachable},
		{restore.ErrUnauthorized, errcode.Unauthorized},
		{pitr.ErrNotCovered, errcode.NoBackup},
		{pitr.ErrCorruptSlice, errcode.Corrupt},
		{pitr.ErrInvalid, errcode.Invalid},
		{pitr.ErrInProgress, errcode.InProgress},
		{pitr.ErrForeign, errcode.Corrupt},
		{pitr.ErrClock, errcode.Internal},
		{pitr.ErrNoOplog, errcode.Invalid},
		{sensitive.ErrNotRegular, errcode.Invalid},
		{sensitive.ErrTooLarge, errcode.Invalid},
		{sensitive.ErrDuplicate, errcode.Invalid},
		{sensitive.ErrUnsafePath, errcode.Invalid},
		{sensitive.ErrExists, errcode.Exists},
		{sensitive.ErrManifestMismatch, errcode.Corrupt},
		{sensitive.ErrBadName, errcode.Invalid},
		{sensitive.ErrNameConflict, errcode.Invalid},
		{sensitive.ErrInTheWay, errcode.Exists},
		{sensitive.ErrTooMany, errcode.Invalid},
		{sensitive.ErrTooManyEntries, errcode.Corrupt},
		{sensitive.ErrBusy, errcode.InProgress},
		{restore.ErrDuplicateKey, errcode.DuplicateKey},
		{drill.ErrFailed, errcode.DrillFailed},
		{&drill.Failure{Restore: restore.ErrCorrupt}, errcode.DrillFailed},
		{drill.ErrTargetInUse, errcode.Exists},
		{drill.ErrSourceNamespace, errcode.Exists},
		{drill.ErrInvalid, errcode.Invalid},
		{context.Canceled, errcode.Cancelled},
		{io.ErrUnexpectedEOF, errcode.Internal},
	} {
		wrapped := tc.err
		if tc.err != nil {
			wrapped = fmt.Errorf("outer: %w", tc.err)
		}
		if got := errcode.Of(wrapped); got != tc.want {
			t.Errorf("errcode.Of(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if !errors.Is(pitr.ErrCorruptSlice, restore.ErrCorrupt) {
		t.Error("pitr.ErrCorruptSlice does not match restore.ErrCorrupt")
	}
	if pitr.ErrNoOplog != backup.ErrNoOplog || errors.Is(backup.ErrNoOplog, restore.ErrNoOplog) {
		t.Error("pitr.ErrNoOplog is not backup.ErrNoOplog, or matches restore's (a backup without one)")
	}
	if !errors.Is(&slot.SpaceError{}, slot.ErrInsufficientSpace) {
		t.Error("a SpaceError does not match ErrInsufficientSpace")
	}
}

// TestErrorTexts holds every package of the module to the style errcode's
// package doc sets. A sentinel's text begins with its package's name and
// ": ", a text made with fmt.Errorf or errors.New names a package of the
// module only as its first element and only its own, and every exported
// sentinel is in TestErrorCodes' table. A package under internal/ names
// none: its sentinels begin with what happened, and the package that
// returns one, which a caller knows, puts its own name before it, so that
// no text begins with an internal package's sentinel.
func TestErrorTexts(t *testing.T) {
	fset := token.NewFileSet()
	type pkgFiles struct {
		name     string
		internal bool // under internal/
		files    []*ast.File
	}
	var pkgs []pkgFiles
	names := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "examples") {
			return filepath.SkipDir
		}
		var p pkgFiles
		matches, _ := filepath.Glob(filepath.Join(path, "*.go"))
		for _, m := range matches {
			if strings.HasSuffix(m, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, m, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			p.name = f.Name.Name
			p.internal = slices.Contains(strings.Split(filepath.ToSlash(path), "/"), "internal")
			p.files = append(p.files, f)
		}
		if p.name != "" && p.name != "main" && p.name != "keepslot" && !strings.HasSuffix(p.name, "test") {
			pkgs = append(pkgs, p)
			names[p.name] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	listed := sentinelsListed(t, fset)
	for _, p := range pkgs {
		fail := func(pos token.Pos, format string, args ...any) {
			t.Errorf("%s: %s", fset.Position(pos), fmt.Sprintf(format, args...))
		}
		// The sentinels of internal packages that p exports as its own.
		borrowed := map[string]bool{}
		for _, f := range p.files {
			internal := internalImports(f)
			for _, decl := range f.Decls {
				if gd, ok := decl.(*ast.GenDecl); ok && gd.Tok == token.VAR {
					for _, spec := range gd.Specs {
						vs := spec.(*ast.ValueSpec)
						for i, v := range vs.Values {
							if sel, ok := v.(*ast.SelectorExpr); ok && internal[fmt.Sprint(sel.X)] {
								borrowed[vs.Names[i].Name] = true
							}
						}
					}
				}
			}
		}
		for _, f := range p.files {
			internal := internalImports(f)
			// Sentinels: package-level errcode.New, errcode.Sub, errors.New.
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.VAR {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, v := range vs.Values {
						name := vs.Names[i].Name
						if ast.IsExported(name) && strings.HasPrefix(name, "Err") && !listed[p.name+"."+name] && !strings.Contains(fset.Position(f.Pos()).Filename, "internal") {
							t.Errorf("%s.%s is not in TestErrorCodes' table", p.name, name)
						}
						fn, args := call(v)
						if fn != "errcode.New" && fn != "errcode.Sub" && fn != "errors.New" {
							continue
						}
						text, ok := literal(args[len(args)-1])
						if !ok {
							fail(v.Pos(), "the text of %s is not a string literal", name)
							continue
						}
						if p.internal {
							first, _, _ := strings.Cut(text, ": ")
							if text == "" || !unicode.IsLower(rune(text[0])) || names[first] || strings.HasSuffix(text, ".") {
								fail(v.Pos(), "%s is %q: the text of an internal package's sentinel begins with a lower-case letter and no package's name, and ends without a full stop", name, text)
							}
						} else if rest, ok := strings.CutPrefix(text, p.name+": "); !ok || rest == "" || unicode.IsUpper(rune(rest[0])) || strings.HasSuffix(rest, ".") {
							fail(v.Pos(), "%s is %q: a sentinel's text begins with %q and a lower-case letter, and ends without a full stop", name, text, p.name+": ")
						}
					}
				}
			}
			// Every text made with fmt.Errorf or errors.New.
			ast.Inspect(f, func(n ast.Node) bool {
				fn, args := call(n)
				if fn != "fmt.Errorf" && fn != "errors.New" {
					return true
				}
				text, ok := literal(args[0])
				if !ok {
					return true
				}
				for i, seg := range strings.Split(text, ": ") {
					if names[seg] && (i > 0 || seg != p.name || p.internal) {
						fail(n.Pos(), "%q names package %s: a text names only its own package, and only first; an internal package's, none", text, seg)
					}
				}
				if strings.HasPrefix(text, "%w") && !p.internal && len(args) > 1 {
					sel, isSel := args[1].(*ast.SelectorExpr)
					id, isID := args[1].(*ast.Ident)
					if isSel && internal[fmt.Sprint(sel.X)] || isID && borrowed[id.Name] {
						fail(n.Pos(), "%q begins with an internal package's sentinel, which names no package: put %q first", text, p.name+": ")
					}
				}
				if strings.HasSuffix(text, ".") && !strings.HasSuffix(text, "..") {
					fail(n.Pos(), "%q ends with a full stop", text)
				}
				return true
			})
		}
	}
	for _, err := range []error{&slot.SpaceError{}, &drill.Failure{}} {
		pkg := strings.TrimPrefix(strings.SplitN(fmt.Sprintf("%T", err), ".", 2)[0], "*")
		if !strings.HasPrefix(err.Error(), pkg+": ") {
			t.Errorf("%T's text %q does not begin with %q", err, err.Error(), pkg+": ")
		}
	}
}

// internalImports returns the names under which f imports the module's
// internal packages.
func internalImports(f *ast.File) map[string]bool {
	out := map[string]bool{}
	for _, im := range f.Imports {
		path, _ := strconv.Unquote(im.Path.Value)
		if !strings.HasPrefix(path, "github.com/keepslot/keepslot/") || !strings.Contains(path, "/internal/") {
			continue
		}
		name := path[strings.LastIndex(path, "/")+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		out[name] = true
	}
	return out
}

// call returns the name of the function n calls, as pkg.Func, and its
// arguments, or "" if n is not such a call.
func call(n ast.Node) (string, []ast.Expr) {
	c, ok := n.(*ast.CallExpr)
	if !ok || len(c.Args) == 0 {
		return "", nil
	}
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return "", nil
	}
	x, ok := sel.X.(*ast.Ident)
	if !ok {
		return "", nil
	}
	return x.Name + "." + sel.Sel.Name, c.Args
}

// literal returns the value of a string literal.
func literal(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// sentinelsListed returns the pkg.Name selectors of this file, which
// include the sentinels of TestErrorCodes' table.
func sentinelsListed(t *testing.T, fset *token.FileSet) map[string]bool {
	f, err := parser.ParseFile(fset, "codes_test.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if x, ok := sel.X.(*ast.Ident); ok {
				listed[x.Name+"."+sel.Sel.Name] = true
			}
		}
		return true
	})
	return listed
}
