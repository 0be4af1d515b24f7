package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/internal/testenv"
)

// TestServeTakesRepliesByLMTP: with BALLOTD_LMTP_ADDR, serve is an LMTP
// server (RFC 2033): a reply delivered there is counted and answered, the
// same message delivered again changes nothing, and IMAP reading goes on
// beside it.
func TestServeTakesRepliesByLMTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lmtpAddr := l.Addr().String()
	l.Close()
	h.env["BALLOTD_LMTP_ADDR"] = lmtpAddr
	h.env["BALLOTD_TICK"] = "100ms"
	h.ballotd("migrate")
	h.ballotd("import", "groups", h.file("g.csv", lifecycleGroups))
	h.ballotd("import", "members", h.file("m.csv", "email,name,district\nalice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-07\n"))
	now := time.Now().UTC()
	h.ballotd("wave", "create", "--name", "July", "--nominations-close", now.Add(-time.Hour).Format(time.RFC3339),
		"--voting-open", now.Add(-time.Minute).Format(time.RFC3339), "--voting-close", now.Add(48*time.Hour).Format(time.RFC3339))
	h.ballotd("candidate", "add", "--race", "MA-07", "--name", "Jane Doe", "--group", "Indivisible Somerville")
	h.ballotd("race", "open", "MA-07")
	stop := h.serve()
	defer stop()
	ballots := h.waitSent(2)
	var alice, bob ballotOf
	for _, e := range ballots {
		b := parseSent(t, e)
		if b.To == "alice@example.net" {
			alice = b
		} else {
			bob = b
		}
	}
	// Alice's reply comes by LMTP, twice (a 250 lost on the way back).
	raw := strings.ReplaceAll(voteReply(alice, "alice@example.net", "lmtp-a1", "YES"), "\n", "\r\n")
	for i := 0; i < 2; i++ {
		deliverLMTP(t, lmtpAddr, "alice@example.net", alice.ReplyTo, raw)
	}
	// Bob's by IMAP, as before.
	h.reply("bob@example.net", bob.ReplyTo, voteReply(bob, "bob@example.net", "imap-b1", "NO"))
	sent := h.waitSent(4)
	receipts := 0
	for _, e := range sent[2:] {
		if strings.HasPrefix(parseSent(t, e).Subject, "Vote received") {
			receipts++
		}
	}
	if receipts != 2 {
		t.Fatalf("receipts = %d, want one for Alice (LMTP, delivered twice) and one for Bob (IMAP)", receipts)
	}
	out := h.ballotd("tally", "MA-07", "--json")
	if !strings.Contains(out, `"voted": 2`) || !strings.Contains(out, `"votes": 1`) {
		t.Fatalf("tally: %s", out)
	}
}

// deliverLMTP delivers raw to rcpt over LMTP and fails the test unless it
// is accepted; serve opens the door as it starts, so a refused connection
// is tried again for a few seconds.
func deliverLMTP(t *testing.T, addr, from, rcpt, raw string) {
	t.Helper()
	var err error
	open := testenv.Poll(5*time.Second, func() bool {
		var conn net.Conn
		if conn, err = net.Dial("tcp", addr); err == nil {
			conn.Close()
		}
		return err == nil
	})
	if !open {
		t.Fatal(err)
	}
	if err := lmtpDeliver(addr, from, rcpt, raw); err != nil {
		t.Fatalf("LMTP delivery to %s: %v", rcpt, err)
	}
}
