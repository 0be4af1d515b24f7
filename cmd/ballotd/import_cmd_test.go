package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/internal/testenv"
)

// ballotd import prints one line accounting for every row (and the same
// counts in --json), names each rejected row and each duplicate by line,
// writes the rejected rows with their problems to --rejects, reads a
// Latin-1 file with --encoding latin1, and guards --sync.
func TestImportCommandAccountsForEveryRow(t *testing.T) {
	t.Parallel()
	url := testenv.MigratedURL(t)
	env := map[string]string{"DATABASE_URL": url}
	if code, out, errOut := runWith(env, "migrate"); code != 0 {
		t.Fatalf("migrate: %d %s %s", code, out, errOut)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := write("members.csv", "email,name,district\r\n"+
		"a@example.net,Ann,MA-07\r\n"+
		"b@example.net,\"Bo,MA-07\r\n"+ // 3: unterminated quote
		"c@example.net,Cy,MA-99\r\n"+ // 4: no such district
		"a@example.net,Ann,MA-07\r\n"+ // 5: duplicate of 2
		"d@example.net,Ren\xe9,MA-02\r\n") // 6: Latin-1
	rejects := filepath.Join(dir, "rejects.csv")
	code, out, errOut := runWith(env, "import", "members", file, "--rejects", rejects)
	if code != 0 || out != "members: 5 rows = 1 added + 0 updated + 0 unchanged + 3 rejected + 1 duplicates (the last row of each email counts)\n" {
		t.Errorf("import: exit %d, stdout %q", code, out)
	}
	for _, want := range []string{file + ":3: unterminated quote", file + ":4: district MA-99", file + ":6: not UTF-8", file + ":2,5: a@example.net on 2 rows; line 5 counts"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	f, err := os.Open(rejects)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 4 || strings.Join(rows[0], ",") != "line,problem,email,name,district" ||
		rows[1][0] != "3" || rows[2][0] != "4" || rows[2][2] != "c@example.net" || rows[2][4] != "MA-99" || rows[3][0] != "6" {
		t.Errorf("rejects file: %q, %v", rows, err)
	}

	latin := write("latin1.csv", "email,name,district\nd@example.net,Ren\xe9,MA-02\n")
	code, out, _ = runWith(env, "import", "members", latin, "--encoding", "latin1", "--json")
	var rep struct {
		Rows, Added, Updated, Unchanged, Duplicates, RejectedCount int
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.Rows != 1 || rep.Added != 1 {
		t.Errorf("latin1 import: exit %d, %+v, %v\n%s", code, rep, err, out)
	}
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var name string
	if err := db.Get(&name, `SELECT name FROM members WHERE email = 'd@example.net'`); err != nil || name != "René" {
		t.Errorf("the Latin-1 name is stored as %q (%v); want René", name, err)
	}

	// --sync with one row: refused (exit 1, nothing removed); --dry-run
	// lists who would go; --max-remove 100% does it.
	one := write("one.csv", "email,name,district\na@example.net,Ann,MA-07\n")
	code, _, errOut = runWith(env, "import", "members", one, "--sync")
	if code != 1 || !strings.Contains(errOut, "sync refused: it would remove 1 of 2 members of MA (50 %)") {
		t.Errorf("sync of one row: exit %d, stderr %s", code, errOut)
	}
	code, out, errOut = runWith(env, "import", "members", one, "--sync", "--dry-run")
	if code != 0 || !strings.Contains(out, "1 members would be removed (not in the file):\n  d@example.net\n") || !strings.Contains(errOut, "a real run would refuse the sync") {
		t.Errorf("sync --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runWith(env, "import", "members", one, "--sync", "--max-remove", "50%")
	if code != 0 || !strings.Contains(out, "1 members removed (not in the file), e.g. d@example.net") {
		t.Errorf("sync --max-remove 50%%: exit %d\n%s", code, out)
	}
}

// The example CSVs README points newcomers at import with every row
// added and none rejected: they have the exact columns import reads.
func TestContribExamplesImport(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": testenv.MigratedURL(t)}
	if code, out, errOut := runWith(env, "migrate"); code != 0 {
		t.Fatalf("migrate: %d %s %s", code, out, errOut)
	}
	for _, kind := range []string{"groups", "members"} {
		file := filepath.Join("..", "..", "contrib", kind+".example.csv")
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rows := strings.Count(string(b), "\n") - 1
		code, out, errOut := runWith(env, "import", kind, file, "--json")
		if code != 0 {
			t.Fatalf("import %s %s: exit %d: %s %s", kind, file, code, out, errOut)
		}
		var rep struct {
			Rows       int `json:"rows"`
			Added      int `json:"added"`
			Updated    int `json:"updated"` // a group's second leader
			Rejected   int `json:"rejected_count"`
			Duplicates int `json:"duplicates"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Rows != rows || rep.Added+rep.Updated != rows ||
			rep.Rejected != 0 || rep.Duplicates != 0 {
			t.Errorf("import %s %s: %+v (want %d rows all taken, none rejected), %v: %s", kind, file, rep, rows, err, out)
		}
	}
}
