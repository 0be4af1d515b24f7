package message

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ballotd/ballotd/internal/testenv"
)

// TestMain ends the run with a line naming the tests skipped for want of
// the corpus.
func TestMain(m *testing.M) { testenv.Main(m) }

// corpusDir is the shared corpus of real emails (see its INDEX.txt):
// $BALLOTD_CORPUS, else ../shared/corpus beside the repository (tests run in
// the package directory, two levels below the module root). It is read in
// the test, not at package init, so that go test's cache sees the
// variable: setting it after a run without it runs the tests again.
func corpusDir() string {
	if d := os.Getenv("BALLOTD_CORPUS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "corpus")
}

// needCorpus skips the test when the corpus is not present, except in CI
// (CI=true), where a missing corpus is a failure: the checks must run.
func needCorpus(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(corpusDir()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("corpus not found at %s (set BALLOTD_CORPUS): %v", corpusDir(), err)
		}
		testenv.Skip(t, fmt.Sprintf("the real-mail corpus is not at %s (put the shared corpus beside the repository, or set BALLOTD_CORPUS)", corpusDir()))
	}
}

func readCorpus(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseCorpus(t testing.TB, rel string) *Message {
	t.Helper()
	m, err := Parse(readCorpus(t, rel))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return m
}

var headerLine = regexp.MustCompile(`^[A-Za-z0-9-]+:`)

var knownFields = map[string]bool{
	"from": true, "to": true, "subject": true, "date": true, "received": true, "return-path": true,
	"message-id": true, "content-type": true, "mime-version": true, "delivered-to": true, "cc": true,
	"reply-to": true, "x-mailer": true, "sender": true,
}

// looksLikeMail reports whether b starts with an RFC 5322 header block of at
// least two well-known fields (possibly after an mbox "From " line or blank
// lines), which tells mail files from bodies, notes and licences.
func looksLikeMail(b []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	known := map[string]bool{}
	started := false
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if !started {
			if line == "" || strings.HasPrefix(line, "From ") {
				continue
			}
			started = true
		}
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if !headerLine.MatchString(line) {
			return false
		}
		name := strings.ToLower(line[:strings.IndexByte(line, ':')])
		if knownFields[name] {
			known[name] = true
		}
	}
	return len(known) >= 2
}
