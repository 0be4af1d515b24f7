package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// sqlWords are what a statement of SQL starts with or holds; a string of
// cmd/ballotd that holds one is SQL that belongs in package ballots.
var sqlWords = regexp.MustCompile(`\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE (TABLE|DATABASE|INDEX)|DROP (TABLE|DATABASE)|ALTER TABLE|ANALYZE|COMMENT ON|TRUNCATE)\b`)

// TestMainIsWiring: cmd/ballotd parses flags and settings and calls one
// function a command. Its code (tests aside) has no function over 60
// lines, runs no SQL (no SQL in a string, no database/sql, sqlx or
// lib/pq import) and never reaches into ballots.Store's DB.
func TestMainIsWiring(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			switch path, _ := strconv.Unquote(imp.Path.Value); path {
			case "database/sql", "github.com/jmoiron/sqlx", "github.com/lib/pq":
				t.Errorf("%s imports %s: SQL belongs in package ballots", fset.Position(imp.Pos()), path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if lines := fset.Position(n.End()).Line - fset.Position(n.Pos()).Line + 1; lines > 60 {
					t.Errorf("%s: %s is %d lines long; cmd/ballotd's functions are at most 60", fset.Position(n.Pos()), n.Name.Name, lines)
				}
			case *ast.BasicLit:
				if s, err := strconv.Unquote(n.Value); n.Kind == token.STRING && err == nil && sqlWords.MatchString(s) {
					t.Errorf("%s: a string holds SQL (%q): SQL belongs in package ballots", fset.Position(n.Pos()), sqlWords.FindString(s))
				}
			case *ast.SelectorExpr:
				if n.Sel.Name == "DB" {
					t.Errorf("%s: uses a Store's DB: SQL belongs in package ballots", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
}
