package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballotd/ballotd/internal/pgtemp"
	"github.com/ballotd/ballotd/internal/testenv"
)

// pgTool finds a PostgreSQL client program (pg_dump, pg_restore) beside
// the server binaries pgtemp uses, else on $PATH; it skips t without one.
func pgTool(t *testing.T, name string) string {
	t.Helper()
	if dir, err := pgtemp.BinDir(); err == nil {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.Skip(t, name+" not found (in /usr/lib/postgresql/<version>/bin or on $PATH): install the PostgreSQL client programs to test backup and restore")
	}
	return p
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// TestRestoreMidWave is the README's backup and restore runbook: a wave is
// dumped with pg_dump while serve runs (ballots out, two votes in), goes on
// (a third vote), and then the database is lost. Restored from the dump
// with pg_restore under another BALLOTD_SECRET, the ballots in flight are
// stranded (the third vote, read again, matches no ballot). Restored under
// the same secret, serve reads again from the mailbox what came after the
// dump (the third vote), the ballots' codes still verify (two more votes
// by reply), no ballot goes out twice, and the wave closes to the tally the
// original database gives for the same mail.
func TestRestoreMidWave(t *testing.T) {
	t.Parallel()
	pgDump, pgRestore := pgTool(t, "pg_dump"), pgTool(t, "pg_restore")
	h := newHarness(t)
	h.openRace("alice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-02\ncarol@example.net,Carol,MA-05\ndave@example.net,Dave,MA-01\n",
		"MA-SEN", "Ed Markey")
	original := h.env["DATABASE_URL"]

	stop := h.serve()
	sent := map[string]ballotOf{}
	for _, e := range h.waitSent(4) {
		b := parseSent(t, e)
		sent[b.To] = b
	}
	vote := func(who, id, answer string) {
		t.Helper()
		b := sent[who+"@example.net"]
		h.reply(who+"@example.net", b.ReplyTo, fmt.Sprintf("From: %s@example.net\nTo: %s\nSubject: Re: %s\nMessage-ID: <%s@example.net>\n\n%s\n",
			who, b.ReplyTo, b.Subject, id, answer))
	}
	vote("alice", "alice-1", "YES")
	vote("bob", "bob-1", "NO")
	h.waitSent(6) // their receipts: both votes committed

	// The backup, taken while serve runs.
	dump := filepath.Join(t.TempDir(), "ballotd.dump")
	if out, err := exec.Command(pgDump, "--format=custom", "--file="+dump, "--dbname="+original).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	// The wave goes on after the backup; then the database is lost.
	vote("dave", "dave-1", "YES")
	h.waitSent(7)
	stop()

	restore := func() string {
		t.Helper()
		u := testenv.DatabaseURL(t)
		if out, err := exec.Command(pgRestore, "--no-owner", "--no-privileges", "--exit-on-error", "--dbname="+u, dump).CombinedOutput(); err != nil {
			t.Fatalf("pg_restore: %v\n%s", err, out)
		}
		return u
	}

	// A restore under another secret strands the ballots in flight: dave's
	// vote, read again, matches no ballot.
	secret := h.env["BALLOTD_SECRET"]
	h.env["DATABASE_URL"], h.env["BALLOTD_SECRET"] = restore(), "not-the-secret-of-this-wave-0123456789"
	stop = h.serve()
	stranded := parseSent(t, h.waitSent(8)[7])
	stop()
	if stranded.To != "dave@example.net" || !strings.HasPrefix(stranded.Subject, "We could not match") {
		t.Errorf("under another secret dave's vote was answered %q to %s; want the unmatched answer", stranded.Subject, stranded.To)
	}
	if tl := h.tally(); tl.Voted != 2 {
		t.Errorf("under another secret the tally is %+v; want dave's vote not counted", tl)
	}
	h.env["BALLOTD_SECRET"] = secret

	// The restore: a new database, the same secret, replicas back on.
	restored := restore()
	h.env["DATABASE_URL"] = restored
	if out := h.ballotd("check"); !strings.Contains(out, "OK") {
		t.Fatalf("ballotd check after the restore:\n%s", out)
	}
	if before := h.tally(); before.Voted != 2 {
		t.Fatalf("restored tally %+v; want the 2 votes of the backup", before)
	}
	stop = h.serve()
	h.waitSent(9) // dave's vote, read again from the mailbox: answered again
	vote("carol", "carol-1", "NO")
	vote("bob", "bob-2", "YES") // bob changes his mind: the history restored decides what stands
	h.waitSent(11)
	h.ballotd("race", "close", "MA-SEN")
	h.waitSent(15) // the 4 announcements
	stop()
	afterRestore := h.tally()
	ballotsSent := 0
	for _, e := range h.sent() {
		if strings.HasPrefix(parseSent(t, e).Subject, "Your ballot:") {
			ballotsSent++
		}
	}
	if ballotsSent != 4 {
		t.Errorf("%d ballots went out; want 4, none again after the restore", ballotsSent)
	}
	if out := h.ballotd("outbox", "--json"); strings.Contains(out, `"queued"`) || strings.Contains(out, `"deferred"`) {
		t.Errorf("the restored outbox still holds rows to send:\n%s", out)
	}

	// What the original database gives for the same mail.
	h.env["DATABASE_URL"] = original
	stop = h.serve()
	h.waitSent(17) // carol's and bob's replies, read from the mailbox
	h.ballotd("race", "close", "MA-SEN")
	h.waitSent(21)
	stop()
	want := h.tally()

	if fmt.Sprint(afterRestore) != fmt.Sprint(want) {
		t.Errorf("tally after the restore = %+v\nthe original gives %+v", afterRestore, want)
	}
	if want.Voted != 4 || len(want.Candidates) != 1 || want.Candidates[0].Votes != 3 {
		t.Errorf("tally %+v; want 4 voted, 3 for Ed Markey (alice, bob's second vote, dave)", want)
	}
}
