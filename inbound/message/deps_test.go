package message

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoDatabase keeps the reader pure: nothing it imports, directly or
// not, reaches a database driver, the store or the processor, so its
// tests, fuzz targets and reply tables run without PostgreSQL.
func TestNoDatabase(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go list needs the go command: %v", err)
	}
	out, err := exec.Command(goCmd, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	// Each forbidden package with the packages under it, except that
	// the processor's path holds this package.
	forbidden := []string{
		"database/sql",
		"github.com/lib/pq",
		"github.com/jmoiron/sqlx",
		"github.com/ballotd/ballotd/ballots",
		"github.com/ballotd/ballotd/inbound",
	}
	self := "github.com/ballotd/ballotd/inbound/message"
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %q", deps)
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if dep == f || (strings.HasPrefix(dep, f+"/") && dep != self && !strings.HasPrefix(dep, self+"/")) {
				t.Errorf("the reader imports %s", dep)
			}
		}
	}
}
