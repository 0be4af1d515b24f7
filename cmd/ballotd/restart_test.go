package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/mailhub"
	"github.com/ballotd/ballotd/internal/pgtemp"
	"github.com/ballotd/ballotd/internal/testenv"
)

// outage is a TCP proxy in front of a server. Cut drops every connection
// and refuses new ones, as a restarting server or a broken network does,
// while the server behind it keeps its data (which a real IMAP server
// keeps across a restart, and the in-memory hub would not).
type outage struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newOutage(t *testing.T, target string) *outage {
	t.Helper()
	o := &outage{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.addr = ln.Addr().String()
	o.serve(ln)
	t.Cleanup(func() { o.cut() })
	return o
}

func (o *outage) serve(ln net.Listener) {
	o.mu.Lock()
	o.ln = ln
	o.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", o.target)
			if err != nil {
				c.Close()
				continue
			}
			o.mu.Lock()
			o.conns[c], o.conns[up] = true, true
			o.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut closes the listener and every connection.
func (o *outage) cut() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ln != nil {
		o.ln.Close()
		o.ln = nil
	}
	for c := range o.conns {
		c.Close()
	}
	o.conns = map[net.Conn]bool{}
}

// restore listens again on the same address.
func (o *outage) restore(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		t.Fatal(err)
	}
	o.serve(ln)
}

// TestServersRestartMidRun takes the SMTP relay away while ballots go out,
// and the IMAP server and PostgreSQL away while replies come in: serve
// reconnects by itself, reports it, and loses nothing.
func TestServersRestartMidRun(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		testenv.Skip(t, "-short: the restart test, which starts its own PostgreSQL")
	}
	ctx := context.Background()
	cl, err := pgtemp.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	hub, err := mailhub.Start(mailhub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	smtpCut, imapCut := newOutage(t, hub.SMTPAddr), newOutage(t, hub.IMAPAddr)
	env := map[string]string{
		"DATABASE_URL": cl.URL, "BALLOTD_DOMAIN": "example.org", "BALLOTD_SECRET": "restart-secret-0123456789",
		"BALLOTD_IMAP_ADDR": imapCut.addr, "BALLOTD_IMAP_USER": "ballots@example.org", "BALLOTD_IMAP_PASSWORD": hub.Password,
		"BALLOTD_IMAP_POLL": "300ms", "BALLOTD_IMAP_RECONNECT": "200ms", "BALLOTD_SMTP_ADDR": smtpCut.addr, "BALLOTD_SMTP_CONNS": "4",
		"BALLOTD_OUTBOX_LEASE": "2s", "BALLOTD_OUTBOX_RETRY": "500ms", "BALLOTD_DIGEST_EVERY": "off", "BALLOTD_TICK": "200ms",
	}
	getenv := func(k string) string { return env[k] }
	cli := func(args ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(ctx, args, getenv, &out, &errOut); code != 0 {
			t.Fatalf("ballotd %v: %d %s", args, code, errOut.String())
		}
	}
	const members = 300
	var csv strings.Builder
	csv.WriteString("email,name,district\n")
	for i := 1; i <= members; i++ {
		fmt.Fprintf(&csv, "r%d@example.net,R %d,MA-0%d\n", i, i, 1+i%9)
	}
	file := filepath.Join(t.TempDir(), "m.csv")
	os.WriteFile(file, []byte(csv.String()), 0o600)
	cli("migrate")
	cli("import", "members", file)
	now := time.Now().UTC()
	cli("wave", "create", "--name", "R", "--nominations-close", now.Format(time.RFC3339), "--voting-open", now.Format(time.RFC3339),
		"--voting-close", now.Add(time.Hour).Format(time.RFC3339))
	cli("candidate", "add", "--race", "MA-SEN", "--name", "Ed Markey")
	// Opened before serve starts: its scheduler would open the race too
	// (voting is open), and the second opener is refused.
	cli("race", "open", "MA-SEN")

	sctx, stop := context.WithCancel(ctx)
	var logs syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(sctx, []string{"serve"}, getenv, io.Discard, &logs) }()
	defer func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d", code)
		}
	}()

	distinct := func() (map[string]string, int) {
		to := map[string]string{} // recipient → Reply-To
		n := 0
		for _, e := range hub.Received() {
			if strings.HasPrefix(e.From, "ballots+b-") && strings.Contains(string(e.Data), "Your ballot") {
				n++
				to[e.To[0]] = headerOf(e.Data, "Reply-To")
			}
		}
		return to, n
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		if !testenv.Poll(90*time.Second, cond) {
			t.Fatalf("%s: not within 90s\nserve log:\n%s", what, logs.String())
		}
	}
	// The relay goes away while ballots go out.
	waitFor("first ballots", func() bool { _, n := distinct(); return n >= 20 })
	smtpCut.cut()
	time.Sleep(1500 * time.Millisecond)
	smtpCut.restore(t)
	waitFor("every ballot", func() bool { to, _ := distinct(); return len(to) == members })

	st, err := ballots.Open(ctx, cl.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db := testenv.Open(t, cl.URL)
	to, _ := distinct()
	// Replies come in while the IMAP server and then PostgreSQL go away.
	for i := 1; i <= members; i++ {
		m := fmt.Sprintf("r%d@example.net", i)
		addr := strings.TrimSuffix(strings.TrimPrefix(to[m], "\"Endorsement ballots\" <"), ">")
		raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: Re: ballot\r\nMessage-ID: <restart-%d@example.net>\r\n\r\nYES\r\n", m, addr, i)
		if err := hub.Deliver(addr, []byte(raw)); err != nil {
			t.Fatal(err)
		}
		if i == members/3 {
			imapCut.cut()
			time.Sleep(1500 * time.Millisecond)
			imapCut.restore(t)
		}
		if i == 2*members/3 {
			if err := cl.Pause(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second)
			if err := cl.Resume(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func(q string) int {
		var n int
		if err := db.Get(&n, q); err != nil {
			return -1
		}
		return n
	}
	waitFor("every reply counted and answered", func() bool {
		return count(`SELECT count(*) FROM votes`) == members && count(`SELECT count(*) FROM outbox WHERE status <> 'sent'`) == 0
	})
	if n := count(`SELECT count(*) FROM inbound_messages`); n != members {
		t.Errorf("%d replies recorded, want %d", n, members)
	}
	if n := count(`SELECT count(*) FROM outbox WHERE kind = 'receipt'`); n != members {
		t.Errorf("%d receipts, want %d", n, members)
	}
	tl, err := st.TallyRace(ctx, "MA-SEN")
	if err != nil || tl.Voted != members || tl.Candidates[0].Votes != members {
		t.Errorf("tally %+v, %v; want all %d voted yes", tl, err, members)
	}
	for _, want := range []string{"imap: session ended; reconnecting"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("serve did not report %q", want)
		}
	}
	t.Logf("relay cut for 1.5 s while sending, IMAP cut for 1.5 s and PostgreSQL stopped for 2 s while ingesting: %d ballots, %d replies, %d votes, 0 lost",
		members, members, count(`SELECT count(*) FROM votes`))
}

// syncBuffer is a bytes.Buffer safe for the daemon's log writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNewHubStartDoesNotSkipMail: `ballotd dev` restarted starts a new,
// empty mail hub whose UIDs begin again at 1, on the same database, which
// remembers the last UID read. Each hub start has its own UIDVALIDITY, so
// serve reads the new mailbox from its start: a vote arriving after the
// restart is counted and receipted.
func TestNewHubStartDoesNotSkipMail(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.openRace("alice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-07\n", "MA-07", "Jane Doe")
	stop := h.serve()
	ballotsTo := map[string]ballotOf{}
	for _, e := range h.waitSent(2) {
		b := parseSent(t, e)
		ballotsTo[b.To] = b
	}
	a := ballotsTo["alice@example.net"]
	h.reply(a.To, a.ReplyTo, voteReply(a, a.To, "alice-before", "YES"))
	h.waitSent(3) // Alice's receipt: UID 1 of the first hub is read
	stop()

	hub, err := mailhub.Start(mailhub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	h.hub.Close()
	h.hub = hub
	h.env["BALLOTD_IMAP_ADDR"], h.env["BALLOTD_SMTP_ADDR"], h.env["BALLOTD_IMAP_PASSWORD"] = hub.IMAPAddr, hub.SMTPAddr, hub.Password
	stop = h.serve()
	defer stop()
	b := ballotsTo["bob@example.net"]
	h.reply(b.To, b.ReplyTo, voteReply(b, b.To, "bob-after", "NO")) // UID 1 again, of the new hub
	receipt := parseSent(t, h.waitSent(1)[0])
	if receipt.To != "bob@example.net" || !strings.HasPrefix(receipt.Subject, "Vote received") {
		t.Fatalf("after the new hub: sent %+v, want Bob's receipt", receipt)
	}
	if got := h.tallyOf("MA-07"); got.Voted != 2 {
		t.Errorf("tally after the new hub: %d voted, want 2", got.Voted)
	}
}
