package mailer

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ballotd/ballotd/templates"
)

// partials are the template files that belong to no kind: parts every
// mail of some kinds shares.
var partials = map[string]bool{"footer": true}

// TestKindsComplete checks the table of kinds both ways: every kind has
// its two template files, a builder and a payload type of its own kind;
// every template file belongs to a kind (or is a partial); every Kind
// constant and every payload type declared in templates is in the table.
func TestKindsComplete(t *testing.T) {
	dir := filepath.Join("..", "templates")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, e := range ents {
		files[e.Name()] = true
	}
	used := map[string]bool{}
	payloads := map[string]bool{}
	for name, k := range kinds {
		tpl := k.templateOf(name)
		used[tpl] = true
		for _, ext := range []string{".txt", ".html"} {
			if !files[tpl+ext] {
				t.Errorf("kind %s: no templates/%s%s", name, tpl, ext)
			}
		}
		if k.build.decode == nil || k.build.build == nil || k.build.payload == nil {
			t.Errorf("kind %s: no builder", name)
			continue
		}
		if got := k.build.payload.Kind(); got != name {
			t.Errorf("kind %s: its builder takes the payload of %s", name, got)
		}
		payloads[reflect.TypeOf(k.build.payload).Name()] = true
	}
	for f := range files {
		base, ext := strings.TrimSuffix(f, filepath.Ext(f)), filepath.Ext(f)
		if ext != ".txt" && ext != ".html" {
			continue
		}
		if !used[base] && !partials[base] {
			t.Errorf("templates/%s belongs to no kind in mailer's table and is no partial", f)
		}
	}
	if len(templates.Names) == 0 {
		t.Error("templates.Names is empty")
	}
	for _, n := range templates.Names {
		if !used[n] {
			t.Errorf("template %s is rendered by no kind", n)
		}
	}

	// What templates declares: Kind constants and payload types (the
	// receivers of a Kind method).
	fset := token.NewFileSet()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Name.Name != "Kind" || d.Recv == nil || len(d.Recv.List) != 1 {
					continue
				}
				if id, ok := d.Recv.List[0].Type.(*ast.Ident); ok && !payloads[id.Name] {
					t.Errorf("payload type templates.%s has no kind in mailer's table", id.Name)
				}
			case *ast.GenDecl:
				if d.Tok != token.CONST {
					continue
				}
				for _, s := range d.Specs {
					vs := s.(*ast.ValueSpec)
					if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Kind" {
						continue
					}
					for i, n := range vs.Names {
						v, _ := strconv.Unquote(vs.Values[i].(*ast.BasicLit).Value)
						if _, ok := kinds[templates.Kind(v)]; !ok {
							t.Errorf("templates.%s (%q) has no entry in mailer's table", n.Name, v)
						}
					}
				}
			}
		}
	}
}
