package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/demo"
	"github.com/ballotd/ballotd/internal/testenv"
)

// TestRealServers runs a whole wave through a real Postfix (SMTP, plus
// addressing) and a real Dovecot (IMAP, LMTP delivery). e2e/realservers.sh
// sets them up and runs it; without them it is skipped.
func TestRealServers(t *testing.T) {
	t.Parallel()
	imapAddr, smtpAddr, password := os.Getenv("BALLOTD_E2E_IMAP"), os.Getenv("BALLOTD_E2E_SMTP"), os.Getenv("BALLOTD_E2E_PASSWORD")
	if imapAddr == "" || smtpAddr == "" {
		testenv.Skip(t, "no real Dovecot and Postfix (BALLOTD_E2E_*): run e2e/realservers.sh")
	}
	// The replies reach ballotd two ways: Postfix delivers them into
	// Dovecot, which ballotd reads by IMAP; or Postfix delivers them to
	// ballotd's own LMTP door (a transport for lmtp.example.org), with no
	// mailbox in between. Each run has its own members' domain.
	t.Run("imap", func(t *testing.T) { realServersWave(t, imapAddr, smtpAddr, password, "example.org", "example.net", "") })
	lmtpAddr := os.Getenv("BALLOTD_E2E_LMTP")
	if lmtpAddr == "" {
		testenv.Skip(t, "no LMTP transport in the real Postfix (BALLOTD_E2E_LMTP): run e2e/realservers.sh")
	}
	t.Run("lmtp", func(t *testing.T) {
		realServersWave(t, imapAddr, smtpAddr, password, "lmtp.example.org", "example.com", lmtpAddr)
	})
}

// realServersWave runs one wave through the real servers, with the ballot
// mailbox on domain and the members on memberDomain; with lmtpAddr set,
// ballotd takes its mail by LMTP there.
func realServersWave(t *testing.T, imapAddr, smtpAddr, password, domain, memberDomain, lmtpAddr string) {
	env := map[string]string{
		"DATABASE_URL":          testenv.DatabaseURL(t),
		"BALLOTD_DOMAIN":        domain,
		"BALLOTD_SECRET":        "realservers-secret-0123456789",
		"BALLOTD_FROM":          "Indivisible Endorsements",
		"BALLOTD_IMAP_ADDR":     imapAddr,
		"BALLOTD_IMAP_USER":     "ballots@" + domain,
		"BALLOTD_IMAP_PASSWORD": password,
		"BALLOTD_IMAP_POLL":     "1s",
		"BALLOTD_SMTP_ADDR":     smtpAddr,
		"BALLOTD_LMTP_ADDR":     lmtpAddr,
	}
	getenv := func(k string) string { return env[k] }
	cli := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, getenv, &out, &errOut); code != 0 {
			t.Fatalf("ballotd %v: exit %d: %s", args, code, errOut.String())
		}
		return out.String()
	}
	const n = 30
	var csv strings.Builder
	csv.WriteString("email,name,district\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&csv, "member%d@%s,Member %d,MA-%02d\n", i, memberDomain, i, 7-4*(i%2)) // odd: MA-03, even: MA-07
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/members.csv", []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cli("migrate")
	cli("import", "members", dir+"/members.csv")
	now := time.Now().UTC()
	cli("wave", "create", "--name", "Real", "--nominations-close", now.Format(time.RFC3339),
		"--voting-open", now.Format(time.RFC3339), "--voting-close", now.Add(time.Hour).Format(time.RFC3339))
	cli("candidate", "add", "--race", "MA-SEN", "--name", "Ed Markey")
	cli("candidate", "add", "--race", "MA-07", "--name", "Jordan Rivera")
	cli("candidate", "add", "--race", "MA-07", "--name", "Sam Okafor")
	cli("race", "open", "MA-SEN")
	cli("race", "open", "MA-07")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var serveErr bytes.Buffer
	go func() { done <- run(ctx, []string{"serve"}, getenv, &bytes.Buffer{}, &serveErr) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, serveErr.String())
		}
	}()

	mailbox := func(addr string) [][]byte {
		t.Helper()
		c, err := imapclient.DialInsecure(imapAddr, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Login(addr, password).Wait(); err != nil {
			t.Fatalf("imap login %s: %v", addr, err)
		}
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if sel.NumMessages == 0 {
			return nil
		}
		msgs, err := c.Fetch(imap.SeqSetNum(imapRange(sel.NumMessages)...), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for _, m := range msgs {
			out = append(out, m.BodySection[0].Bytes)
		}
		return out
	}
	waitMail := func(addr string, subjectPrefix string, count int) [][]byte {
		t.Helper()
		var got [][]byte
		if !testenv.Poll(60*time.Second, func() bool {
			got = got[:0]
			for _, raw := range mailbox(addr) {
				if m, err := message.Parse(raw); err == nil && strings.HasPrefix(m.Subject, subjectPrefix) {
					got = append(got, raw)
				}
			}
			return len(got) >= count
		}) {
			t.Fatalf("%s has %d %q messages, want %d", addr, len(got), subjectPrefix, count)
		}
		return got
	}

	// Each member reads their ballots from Dovecot and replies through
	// Postfix, in one of five real clients' styles.
	answers := map[string][]string{"MA-SEN": {"Yes", "YES", "no", "Yes, absolutely.", "NO"}, "MA-07": {"1", "Okafor", "NONE", "Jordan Rivera", "2"}}
	sent := 0
	for i := 1; i <= n; i++ {
		addr := fmt.Sprintf("member%d@%s", i, memberDomain)
		want := 2 - i%2 // even members are in MA-07: two ballots
		for j, raw := range waitMail(addr, "Your ballot", want) {
			b, ok := demo.ReadBallot(raw)
			if !ok {
				t.Fatalf("%s: cannot read ballot", addr)
			}
			if i%5 == 0 {
				continue // a fifth of the members do not vote
			}
			in := demo.ReplyInput{FromName: fmt.Sprintf("Member %d", i), From: addr, To: b.ReplyTo, Subject: b.Subject,
				InReplyTo: b.MessageID, MessageID: fmt.Sprintf("<r%d.%d@%s>", i, j, memberDomain), Answer: answers[b.Race][i%5],
				BallotText: b.Text, BallotFrom: "Indivisible Endorsements <ballots@" + domain + ">", Sent: "Tue, Mar 3, 2026 at 9:00 AM"}
			raw := demo.ReplyStyles[(i+j)%len(demo.ReplyStyles)].Write(in)
			if err := smtp.SendMail(smtpAddr, nil, addr, []string{b.ReplyTo}, strings.NewReader(raw)); err != nil && !strings.Contains(err.Error(), "STARTTLS") {
				t.Fatalf("send reply from %s: %v", addr, err)
			} else if err != nil {
				sendPlain(t, smtpAddr, addr, b.ReplyTo, raw)
			}
			sent++
		}
	}
	for i := 1; i <= n; i++ {
		if i%5 == 0 {
			continue
		}
		waitMail(fmt.Sprintf("member%d@%s", i, memberDomain), "Vote received", 2-i%2)
	}
	cli("race", "close", "MA-SEN")
	cli("race", "close", "MA-07")
	for i := 1; i <= n; i++ {
		waitMail(fmt.Sprintf("member%d@%s", i, memberDomain), "Results:", 2-i%2)
	}
	// Expected from the answers table: members i%5 in 1..4 vote.
	// MA-SEN: i%5==1 "YES", 2 "no", 3 "Yes, absolutely.", 4 "NO" → 12 voters of 30 (24 voted), yes = i%5 in {1,3}.
	sen := tallyOf(t, cli("tally", "MA-SEN", "--json"))
	if sen.Eligible != n || sen.Voted != 24 || sen.Candidates[0].Votes != 12 || sen.Candidates[0].Endorsed {
		t.Errorf("MA-SEN tally %+v; want 30 eligible, 24 voted, 12 yes, not endorsed (50 %%)", sen)
	}
	// MA-07 (even members, 15): i%5==1 "Okafor"(2), 2 "NONE", 3 "Jordan Rivera"(1), 4 "2"(Okafor).
	h07 := tallyOf(t, cli("tally", "MA-07", "--json"))
	want1, want2, voted := 0, 0, 0
	for i := 2; i <= n; i += 2 {
		switch i % 5 {
		case 1, 4:
			want2++
			voted++
		case 3:
			want1++
			voted++
		case 2:
			voted++
		}
	}
	if h07.Eligible != 15 || h07.Voted != voted || h07.Candidates[0].Votes != want1 || h07.Candidates[1].Votes != want2 {
		t.Errorf("MA-07 tally %+v; want 15 eligible, %d voted, %d and %d votes", h07, voted, want1, want2)
	}
	way := "read from Dovecot by IMAP"
	if lmtpAddr != "" {
		way = "delivered by Postfix to ballotd's LMTP door"
	}
	t.Logf("real servers: %d ballots delivered by Postfix into Dovecot, %d replies in five client styles %s, receipts and announcements delivered; MA-SEN %d/%d voted, MA-07 %d/%d voted",
		n+15, sent, way, sen.Voted, sen.Eligible, h07.Voted, h07.Eligible)
}

func imapRange(n uint32) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i + 1)
	}
	return out
}

func tallyOf(t *testing.T, out string) tallyJSON {
	t.Helper()
	var tl tallyJSON
	if err := jsonUnmarshal(out, &tl); err != nil {
		t.Fatalf("tally json: %v: %s", err, out)
	}
	return tl
}

// sendPlain submits without STARTTLS, as a client on loopback may.
func sendPlain(t *testing.T, addr, from, to, raw string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail(from, []string{to}, strings.NewReader(raw)); err != nil {
		t.Fatalf("send from %s: %v", from, err)
	}
}

// TestRealServersCheck runs `ballotd check` against the real Dovecot and
// Postfix with TLS from a private CA (e2e/realservers.sh sets them up):
// what works is OK, and each usual mistake gets the line that says what to
// change.
func TestRealServersCheck(t *testing.T) {
	t.Parallel()
	imaps, plainIMAP, submit, ca := os.Getenv("BALLOTD_E2E_IMAPS"), os.Getenv("BALLOTD_E2E_IMAP"), os.Getenv("BALLOTD_E2E_SUBMIT"), os.Getenv("BALLOTD_E2E_CA")
	if imaps == "" || submit == "" || ca == "" {
		testenv.Skip(t, "no real Dovecot and Postfix (BALLOTD_E2E_*): run e2e/realservers.sh")
	}
	dbURL := testenv.DatabaseURL(t)
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"migrate"}, func(k string) string { return map[string]string{"DATABASE_URL": dbURL}[k] }, &out, &errOut); code != 0 {
		t.Fatalf("migrate: %s", errOut.String())
	}
	base := map[string]string{
		"DATABASE_URL": dbURL, "BALLOTD_DOMAIN": "example.org", "BALLOTD_SECRET": "realservers-secret-0123456789",
		"BALLOTD_IMAP_ADDR": imaps, "BALLOTD_IMAP_TLS": "tls", "BALLOTD_IMAP_USER": "ballots@example.org", "BALLOTD_IMAP_PASSWORD": "secret",
		"BALLOTD_SMTP_ADDR": submit, "BALLOTD_SMTP_TLS": "starttls", "BALLOTD_SMTP_USER": "ballots@example.org", "BALLOTD_SMTP_PASSWORD": "secret",
		"BALLOTD_TLS_CA_FILE": ca,
	}
	imapOK := "imap  OK " + imaps + " (tls), logged in as ballots@example.org, mailbox INBOX selected, IDLE supported"
	smtpOK := "smtp  OK " + submit + " (starttls), EHLO example.org, authenticated as ballots@example.org, no mail sent"
	untrusted := func(proto, addr string) string {
		return proto + `  FAILED: certificate of ` + addr + ` is signed by an unknown authority (issued by "CN=ballotd e2e CA") — set BALLOTD_TLS_CA_FILE to the CA that signed it, or install a publicly trusted certificate`
	}
	cases := []struct {
		name       string
		set        map[string]string
		code       int
		imap, smtp string
	}{
		{"implicit TLS and submission with STARTTLS", nil, 0, imapOK, smtpOK},
		{"IMAP STARTTLS", map[string]string{"BALLOTD_IMAP_ADDR": plainIMAP, "BALLOTD_IMAP_TLS": "starttls"}, 0,
			"imap  OK " + plainIMAP + " (starttls), logged in as ballots@example.org, mailbox INBOX selected, IDLE supported", smtpOK},
		{"AUTHENTICATE PLAIN and AUTH LOGIN", map[string]string{"BALLOTD_IMAP_AUTH": "plain", "BALLOTD_SMTP_AUTH": "login"}, 0,
			"imap  OK " + imaps + " (tls), authenticated with PLAIN as ballots@example.org, mailbox INBOX selected, IDLE supported",
			"smtp  OK " + submit + " (starttls), EHLO example.org, authenticated with LOGIN as ballots@example.org, no mail sent"},
		{"CA not configured", map[string]string{"BALLOTD_TLS_CA_FILE": ""}, 1, untrusted("imap", imaps), untrusted("smtp", submit)},
		{"wrong password", map[string]string{"BALLOTD_IMAP_PASSWORD": "wrong", "BALLOTD_SMTP_PASSWORD": "wrong"}, 1,
			"imap  FAILED: login as ballots@example.org refused by " + imaps + " (Authentication failed.) — check BALLOTD_IMAP_USER and BALLOTD_IMAP_PASSWORD",
			"smtp  FAILED: AUTH as ballots@example.org refused by " + submit + " (535 Error: authentication failed: (reason unavailable)) — check BALLOTD_SMTP_USER and BALLOTD_SMTP_PASSWORD"},
		{"TLS on a plain port, no TLS on submission", map[string]string{"BALLOTD_IMAP_ADDR": plainIMAP, "BALLOTD_SMTP_TLS": "none"}, 1,
			"imap  FAILED: " + plainIMAP + " does not speak TLS on connect — set BALLOTD_IMAP_TLS=starttls (or none), or use the implicit-TLS port",
			"smtp  FAILED: " + submit + " wants TLS before AUTH — set BALLOTD_SMTP_TLS=starttls (submission, port 587) or tls (port 465)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range c.set {
				env[k] = v
			}
			var out, errOut bytes.Buffer
			code := run(t.Context(), []string{"check"}, func(k string) string { return env[k] }, &out, &errOut)
			lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			if code != c.code || len(lines) != 3 {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr: %s", code, c.code, out.String(), errOut.String())
			}
			if !strings.HasPrefix(lines[0], "database  OK ") {
				t.Errorf("database line %q", lines[0])
			}
			if lines[1] != c.imap {
				t.Errorf("imap line\n got %q\nwant %q", lines[1], c.imap)
			}
			if lines[2] != c.smtp {
				t.Errorf("smtp line\n got %q\nwant %q", lines[2], c.smtp)
			}
		})
	}
}
