package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
	"github.com/ballotd/ballotd/internal/token"
)

// crashLMTPReplies is how many replies the MTA hands to the LMTP door
// while serve is killed: the kills come within the first few dozen, the
// rest proves that the door takes mail after them.
const crashLMTPReplies = 150

// crashLMTPChanges of them change an earlier vote.
const crashLMTPChanges = crashLMTPReplies / 5

// TestCrashLMTPDoor: an MTA delivers replies to serve's LMTP door while
// serve is SIGKILLed crashKills times. Like Postfix, the MTA keeps a message until
// the door answers 250 and tries again after any other outcome (refused
// connection, 451, a connection cut before the answer). No accepted
// message is lost and none is counted twice, even those delivered twice
// because the 250 never came back.
func TestCrashLMTPDoor(t *testing.T) {
	t.Parallel()
	r := newCrashRig(t)
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	door := l.Addr().String()
	l.Close()
	r.env = append(r.env, "BALLOTD_LMTP_ADDR="+door)
	const members = crashLMTPReplies - crashLMTPChanges
	if _, err := r.db.Exec(`INSERT INTO members (email, name, state, district)
		SELECT 'm' || g || '@example.net', 'Member ' || g, 'MA', 'MA-07' FROM generate_series(1, $1) g`, members); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := r.st.CreateWave(ctx, ballots.Wave{Name: "Crash", NominationsClose: now, VotingOpen: now, VotingClose: now.Add(time.Hour), Threshold: 0.6}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.AddCandidate(ctx, "MA-07", "", "Jane Doe", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.OpenRace(ctx, "MA-07"); err != nil {
		t.Fatal(err)
	}
	toks, err := token.NewKey("crash-secret-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	var ids []struct {
		ID    int64  `db:"id"`
		Email string `db:"email"`
	}
	if err := r.db.Select(&ids, `SELECT b.id, m.email FROM ballots b JOIN members m ON m.id = b.member_id ORDER BY b.id`); err != nil {
		t.Fatal(err)
	}
	// The replies, in the order the members send them; the last ones change
	// an earlier vote (a later Date, so they stand).
	type reply struct{ from, to, raw string }
	var queue []reply
	final := map[string]bool{}
	add := func(i int, yes bool, at time.Time) {
		b := ids[i]
		nonce, err := ballots.BallotNonce(ctx, r.db, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		to := "ballots+v-" + toks.Make(token.Ballot, b.ID, nonce) + "@example.org"
		answer := "NO"
		if yes {
			answer = "YES"
		}
		raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: Re: ballot\r\nMessage-ID: <lmtp-%d@example.net>\r\nDate: %s\r\n\r\n%s\r\n",
			b.Email, to, len(queue), at.Format(time.RFC1123Z), answer)
		queue = append(queue, reply{b.Email, to, raw})
		final[b.Email] = yes
	}
	for i := range ids {
		add(i, i%3 != 0, now)
	}
	for i := 0; i < crashLMTPChanges; i++ {
		add(i*3, !final[ids[i*3].Email], now.Add(time.Minute))
	}

	// The MTA: one connection at a time, each message until it is taken.
	var (
		mu        sync.Mutex
		accepted  int
		attempts  int
		mtaCtx, s = context.WithCancel(ctx)
		mtaDone   = make(chan struct{})
	)
	defer s()
	go func() {
		defer close(mtaDone)
		next := 0
		for next < len(queue) && mtaCtx.Err() == nil {
			m := queue[next]
			mu.Lock()
			attempts++
			mu.Unlock()
			if deliverOnce(door, m.from, m.to, m.raw) {
				next++
				mu.Lock()
				accepted = next
				mu.Unlock()
				continue
			}
			time.Sleep(20 * time.Millisecond) // the MTA's retry delay, much shortened
		}
	}()
	delivered := func() int {
		mu.Lock()
		defer mu.Unlock()
		return accepted
	}
	// Each kill comes while the door is taking mail: serve is started, the
	// MTA gets a message through, then a random 0–150 ms later, SIGKILL.
	var points []int
	start := time.Now()
	for i := 0; i < crashKills; i++ {
		before := delivered()
		cmd := r.start()
		testenv.Poll(20*time.Second, func() bool { return delivered() != before })
		time.Sleep(time.Duration(r.rng.IntN(150)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		points = append(points, delivered())
	}
	killed := time.Since(start)
	r.finish(func() bool { return delivered() == len(queue) })
	finished := time.Since(start) - killed
	s()
	<-mtaDone

	if n := r.count(`SELECT count(*) FROM inbound_messages WHERE mailbox = 'lmtp'`); n != len(queue) {
		t.Errorf("%d replies recorded, want %d (each exactly once)", n, len(queue))
	}
	if n := r.count(`SELECT count(*) FROM votes`); n != len(queue) {
		t.Errorf("%d votes recorded, want %d: one per reply", n, len(queue))
	}
	if n := r.count(`SELECT count(*) FROM outbox WHERE kind = 'receipt'`); n != len(queue) {
		t.Errorf("%d receipts enqueued, want %d: one per reply, none doubled", n, len(queue))
	}
	wantYes := 0
	for _, yes := range final {
		if yes {
			wantYes++
		}
	}
	tl, err := r.st.TallyRace(ctx, "MA-07")
	if err != nil {
		t.Fatal(err)
	}
	if tl.Voted != members || tl.Candidates[0].Votes != wantYes {
		t.Errorf("tally: voted %d yes %d; want %d, %d", tl.Voted, tl.Candidates[0].Votes, members, wantYes)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("lmtp door: %d kills at accepted counts %v; %d replies in %d delivery attempts, each recorded and counted once; tally voted=%d yes=%d as computed from the replies sent; kills %v, finish %v",
		crashKills, points, len(queue), attempts, tl.Voted, tl.Candidates[0].Votes, killed.Round(time.Millisecond), finished.Round(time.Millisecond))
}

// deliverOnce hands one message to the LMTP door as an MTA would and
// reports whether the door took it (250).
func deliverOnce(addr, from, rcpt, raw string) bool {
	return lmtpDeliver(addr, from, rcpt, raw) == nil
}

// lmtpDeliver hands one message to an LMTP server over a connection of
// its own; nil means the server answered 250.
func lmtpDeliver(addr, from, rcpt, raw string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mx.example.org"); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(raw)); err != nil {
		return err
	}
	_, err = w.CloseWithLMTPResponse()
	return err
}
