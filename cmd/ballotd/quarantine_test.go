package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/token"
)

func TestQuarantineListAndReplay(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ballotd("migrate")
	ctx := context.Background()
	st, err := ballots.Open(ctx, h.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	toks, _ := token.NewKey(h.env["BALLOTD_SECRET"])
	p := &inbound.Processor{Store: st, Tokens: toks, Box: message.Mailbox{Local: "ballots", Domain: "example.org"}}
	for i, raw := range []string{
		// A person writing to the bare address: nothing to match.
		"From: person@example.net\r\nTo: ballots@example.org\r\nSubject: =?utf-8?q?hello=09tab=0Aline?=\r\nMessage-ID: <q1@x>\r\n\r\nhi\r\n",
		// Unreadable: MIME nested past the limit.
		"From: deep@example.net\r\nTo: ballots@example.org\r\nMessage-ID: <q2@x>\r\n" + nested(30),
	} {
		if _, err := p.Handle(ctx, inbound.Delivery{Mailbox: "INBOX", UIDValidity: 1, UID: uint32(i + 1), Raw: []byte(raw)}); err != nil {
			t.Fatal(err)
		}
	}
	var qs []ballots.QuarantineEntry
	if err := json.Unmarshal([]byte(h.ballotd("quarantine", "list", "--json")), &qs); err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || qs[0].From != "person@example.net" || qs[0].Class != "unknown" || qs[1].Outcome != "quarantined" ||
		!strings.Contains(qs[1].Detail, "deep") {
		t.Fatalf("quarantine list = %+v", qs)
	}
	table := h.ballotd("quarantine", "list")
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 3 {
		t.Fatalf("table has %d lines, want header + 2 (a subject cannot add rows):\n%s", len(lines), table)
	}
	out := h.ballotd("quarantine", "replay", "1")
	if !strings.Contains(out, "message 1: unknown, quarantined") {
		t.Fatalf("replay said %q", out)
	}
	if _, errOut, code := h.try("quarantine", "replay", "x"); code != 2 || !strings.Contains(errOut, "not a message id") {
		t.Fatalf("replay x: exit %d, %s", code, errOut)
	}
	if _, errOut, code := h.try("quarantine", "replay", "77"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("replay 77: exit %d, %s", code, errOut)
	}
}

// nested is a MIME structure depth levels deep, each level its own
// boundary.
func nested(depth int) string {
	var b strings.Builder
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nYES\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.String()
}

func TestAuthservIDConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		value string
		ok    bool
	}{
		{"", true},
		{"mx.example.org", true},
		{"mx1.messagingengine.com, mx2.messagingengine.com", true},
		{"mx.example.org; dmarc=pass", false},
		{"mx example org", false},
		{"postmaster@example.org", false},
	} {
		env := map[string]string{"DATABASE_URL": "postgres://x", "BALLOTD_AUTHSERV_ID": c.value}
		cfg, err := loadConfig(func(k string) string { return env[k] }, need{})
		if (err == nil) != c.ok {
			t.Errorf("%q: %v, want ok=%v", c.value, err, c.ok)
		}
		if err == nil && cfg.AuthservID != c.value {
			t.Errorf("%q: read as %q", c.value, cfg.AuthservID)
		}
	}
}
