package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/mailhub"
	"github.com/ballotd/ballotd/internal/testenv"
)

// The crash tests prove exactly-once by killing the real binary: `ballotd
// serve` runs as a child process (this test binary, running main: see
// asBallotdEnv) and gets SIGKILL at random moments while
// it sends ballots and while it ingests replies; then it is started again.
// Nothing may be lost, counted twice or skipped.

// The sizes are such that every kill lands mid-work: serve is killed
// within 300 ms of making progress, and 12 lives of it send some thousands
// of ballots but read some hundreds of replies (a reply is a transaction
// of its own; ballots are claimed in batches). So the replies are not all
// in the mailbox from the start: before each start of serve the mailbox is
// topped up to crashAhead replies past those handled, more than a life of
// serve reads even on a fast machine. A fixed 2,500 replies, as before,
// left a loaded machine some 2,000 to read after the last kill, which
// proved nothing more and took half a minute.
const (
	crashBallots = 4000
	crashAhead   = 300
	crashKills   = 12
)

// crashSeedEnv names the variable that sets the crash tests' random seed.
// Each test logs the seed it used (with -v, or when it fails); running it
// again with BALLOTD_CRASH_SEED set to that value kills at the same delays
// after serve's progress. The kills then fall on the same moments, not on
// the same rows: how far serve gets in a given time varies from run to run.
const crashSeedEnv = "BALLOTD_CRASH_SEED"

// crashSeed returns the seed from $BALLOTD_CRASH_SEED, or a new one, and
// logs it.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: not a seed: %v", crashSeedEnv, s, err)
		}
	}
	t.Logf("crash seed %d: replay the kills with %s=%d", seed, crashSeedEnv, seed)
	return seed
}

// asBallotdEnv, set to 1 in a test binary's environment, makes it ballotd:
// TestMain runs main instead of the tests. The crash tests start serve that
// way, as a process of its own that they kill: the test binary holds the
// same main, and linking a second binary would cost each run seconds of
// CPU.
const asBallotdEnv = "BALLOTD_TEST_AS_BALLOTD"

// ballotdBinary returns the path of a binary that is ballotd when run
// with asBallotdEnv=1 in its environment: this test binary.
func ballotdBinary(t *testing.T) string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

type crashRig struct {
	t    *testing.T
	bin  string
	hub  *mailhub.Hub
	env  []string
	st   *ballots.Store
	db   *sqlx.DB // st's database, for the test's own SQL
	logs *os.File
	rng  *rand.Rand
}

func newCrashRig(t *testing.T) *crashRig {
	t.Helper()
	if testing.Short() {
		testenv.Skip(t, "-short: the crash tests, which build and kill the binary")
	}
	ctx := context.Background()
	url := testenv.MigratedURL(t)
	st, err := ballots.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hub, err := mailhub.Start(mailhub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() })
	logs, err := os.Create(filepath.Join(t.TempDir(), "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	r := &crashRig{t: t, bin: ballotdBinary(t), hub: hub, st: st, db: testenv.Open(t, url), logs: logs, rng: rand.New(rand.NewPCG(crashSeed(t), 1))}
	r.env = append(os.Environ(),
		asBallotdEnv+"=1",
		"DATABASE_URL="+url,
		"BALLOTD_DOMAIN=example.org",
		"BALLOTD_SECRET=crash-secret-0123456789abcdef",
		"BALLOTD_IMAP_ADDR="+hub.IMAPAddr,
		"BALLOTD_IMAP_USER=ballots@example.org",
		"BALLOTD_IMAP_PASSWORD="+hub.Password,
		"BALLOTD_IMAP_POLL=200ms",
		"BALLOTD_SMTP_ADDR="+hub.SMTPAddr,
		"BALLOTD_SMTP_CONNS=8",
		"BALLOTD_OUTBOX_LEASE=1s",
		"BALLOTD_LOG_FORMAT=json",
	)
	return r
}

// start runs `ballotd serve` as a child process.
func (r *crashRig) start() *exec.Cmd {
	r.t.Helper()
	cmd := exec.Command(r.bin, "serve")
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	return cmd
}

// killLoop starts serve and SIGKILLs it n times, recording what progress()
// said at each kill (the crash points). Each kill comes a random 20 ms to
// maxDelay after progress() has moved since the start, so that it lands while serve
// is doing the work, however long serve takes to start on a loaded machine
// (a fixed delay from the start killed it, there, before it had done
// anything). Before each start, feed (when not nil) adds work and returns
// how much there is in all; without it, all is fixed. Once progress()
// reaches all, it kills without waiting, and it stops early when all was
// done before a start: no work is left to crash.
func (r *crashRig) killLoop(n int, progress func() int, all int, feed func(done int) int, maxDelay time.Duration) []int {
	var points []int
	for i := 0; i < n; i++ {
		before := progress()
		if feed != nil {
			all = feed(before)
		} else if before >= all {
			break
		}
		cmd := r.start()
		moved := testenv.Poll(30*time.Second, func() bool { p := progress(); return p != before || p >= all })
		if !moved {
			cmd.Process.Kill()
			cmd.Wait()
			r.t.Fatalf("serve made no progress within 30 s of its start %d (at %d of %d)", i+1, before, all)
		}
		if progress() < all {
			time.Sleep(20*time.Millisecond + time.Duration(r.rng.Int64N(int64(maxDelay-20*time.Millisecond))))
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			r.t.Fatal(err)
		}
		cmd.Wait()
		points = append(points, progress())
	}
	return points
}

// finish runs serve until done() holds, then stops it with SIGTERM and
// checks it exits cleanly.
func (r *crashRig) finish(done func() bool) {
	r.t.Helper()
	before := r.logSize()
	cmd := r.start()
	// SIGTERM only once serve has logged: its handler is set up first
	// thing, and a signal before that kills it the default way.
	if !testenv.Poll(3*time.Minute, func() bool { return done() && r.logSize() != before }) {
		cmd.Process.Kill()
		cmd.Wait()
		r.t.Fatal("serve did not finish the work within 3 minutes after the crashes")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		r.t.Errorf("serve after SIGTERM: %v", err)
	}
}

// logSize is how much the serve processes have logged so far.
func (r *crashRig) logSize() int64 {
	fi, err := r.logs.Stat()
	if err != nil {
		r.t.Fatal(err)
	}
	return fi.Size()
}

func (r *crashRig) count(query string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.db.Get(&n, query, args...); err != nil {
		r.t.Fatal(err)
	}
	return n
}

// headerOf returns a header's value from a raw message (first occurrence).
func headerOf(raw []byte, name string) string {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(head), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestCrashWhileSendingAndIngesting(t *testing.T) {
	t.Parallel()
	r := newCrashRig(t)
	ctx := context.Background()
	if _, err := r.db.Exec(`INSERT INTO members (email, name, state, district)
		SELECT 'm' || g || '@example.net', 'Member ' || g, 'MA', 'MA-0' || (1 + g % 9) FROM generate_series(1, $1) g`, crashBallots); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := r.st.CreateWave(ctx, ballots.Wave{Name: "Crash", NominationsClose: now, VotingOpen: now, VotingClose: now.Add(time.Hour), Threshold: 0.6}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", "", nil); err != nil {
		t.Fatal(err)
	}
	if n, err := r.st.OpenRace(ctx, "MA-SEN"); err != nil || n != crashBallots {
		t.Fatalf("open: %d, %v", n, err)
	}

	// Phase 1: sending crashBallots ballots, killed up to crashKills times.
	start := time.Now()
	sent := func() int { return r.count(`SELECT count(*) FROM outbox WHERE status = 'sent'`) }
	// A life sends hundreds of ballots in a tenth of a second: the kills
	// come sooner than while ingesting, so that most land mid-send.
	sendPoints := r.killLoop(crashKills, sent, crashBallots, nil, 120*time.Millisecond)
	killed := time.Since(start)
	r.finish(func() bool { return sent() == crashBallots })

	if n := r.count(`SELECT count(*) FROM outbox WHERE kind = 'ballot' AND status <> 'sent'`); n != 0 {
		t.Fatalf("%d ballots not recorded as sent", n)
	}
	// Every member has exactly one ballot recorded as sent, and received it;
	// a message sent again after a crash carries the same Message-ID.
	byID := map[string]string{}   // Message-ID → recipient
	byTo := map[string]int{}      // recipient → distinct Message-IDs
	tokens := map[string]string{} // recipient → reply token
	received := r.hub.Received()
	for _, e := range received {
		id := headerOf(e.Data, "Message-ID")
		to := e.To[0]
		if prev, ok := byID[id]; ok {
			if prev != to {
				t.Fatalf("Message-ID %s went to %s and %s", id, prev, to)
			}
			continue
		}
		byID[id] = to
		byTo[to]++
		tokens[to] = headerOf(e.Data, "Reply-To")
	}
	if len(byTo) != crashBallots {
		t.Fatalf("%d members received a ballot, want %d", len(byTo), crashBallots)
	}
	for to, n := range byTo {
		if n != 1 {
			t.Fatalf("%s received %d different ballots", to, n)
		}
	}
	resent := len(received) - len(byID)
	t.Logf("sending: %d kills at sent counts %v; %d messages delivered, %d of them re-sent after a crash (same Message-ID), 0 members without a ballot; kills %v, finish %v",
		len(sendPoints), sendPoints, len(received), resent, killed.Round(time.Millisecond), (time.Since(start) - killed).Round(time.Millisecond))

	// Phase 2: replies ingested while serve is killed crashKills times, fed
	// crashAhead past those handled before each start (see crashAhead);
	// one in ten changes the vote of a member who voted before.
	final := map[string]bool{}
	uid := 0
	deliver := func(member string, yes bool) {
		uid++
		to := strings.TrimSuffix(strings.TrimPrefix(tokens[member], "\"Endorsement ballots\" <"), ">")
		if !strings.HasPrefix(to, "ballots+v-") {
			t.Fatalf("reply address of %s: %q", member, tokens[member])
		}
		answer := "NO"
		if yes {
			answer = "YES"
		}
		raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: Re: ballot\r\nMessage-ID: <reply-%d@example.net>\r\n\r\n%s\r\n", member, to, uid, answer)
		if err := r.hub.Deliver(to, []byte(raw)); err != nil {
			t.Fatal(err)
		}
		final[member] = yes
	}
	voters, changes := 0, 0
	feed := func(handled int) int {
		for uid < handled+crashAhead {
			if (uid+1)%10 == 0 {
				// The 10·k-th reply changes the vote of member 3·k, who is
				// among the 9·k who voted before it.
				changes++
				m := fmt.Sprintf("m%d@example.net", changes*3)
				deliver(m, !final[m])
				continue
			}
			if voters == crashBallots {
				t.Fatalf("more than %d voters: serve read %d replies in %d lives", crashBallots, handled, crashKills)
			}
			voters++
			deliver(fmt.Sprintf("m%d@example.net", voters), voters%3 != 0)
		}
		return uid
	}
	handled := func() int { return r.count(`SELECT count(*) FROM inbound_messages`) }
	start = time.Now()
	ingestPoints := r.killLoop(crashKills, handled, 0, feed, 300*time.Millisecond)
	killed = time.Since(start)
	crashReplies := uid
	r.finish(func() bool {
		return handled() == crashReplies && r.count(`SELECT count(*) FROM outbox WHERE status <> 'sent'`) == 0
	})

	if n := r.count(`SELECT count(*) FROM inbound_messages`); n != crashReplies {
		t.Errorf("%d replies recorded, want %d (each exactly once)", n, crashReplies)
	}
	if n := r.count(`SELECT count(*) FROM votes`); n != crashReplies {
		t.Errorf("%d votes recorded, want %d: one per reply", n, crashReplies)
	}
	if n := r.count(`SELECT count(*) FROM outbox WHERE kind = 'receipt'`); n != crashReplies {
		t.Errorf("%d receipts enqueued, want %d: one per reply, none doubled", n, crashReplies)
	}
	wantYes := 0
	for _, yes := range final {
		if yes {
			wantYes++
		}
	}
	tl, err := r.st.TallyRace(ctx, "MA-SEN")
	if err != nil {
		t.Fatal(err)
	}
	if tl.Voted != voters || tl.Candidates[0].Votes != wantYes || tl.Eligible != crashBallots {
		t.Errorf("tally: eligible %d voted %d yes %d; want %d, %d, %d", tl.Eligible, tl.Voted, tl.Candidates[0].Votes, crashBallots, voters, wantYes)
	}
	t.Logf("ingesting: %d kills at handled counts %v; %d replies (%d of them changing a vote), %d votes counted once each, tally voted=%d yes=%d as computed from the replies sent; kills %v, finish %v",
		crashKills, ingestPoints, crashReplies, changes, crashReplies, tl.Voted, tl.Candidates[0].Votes, killed.Round(time.Millisecond), (time.Since(start) - killed).Round(time.Millisecond))
}

// TestCrashWhileOpening kills `ballotd race open` at random moments while
// it commits a race's ballots chunk by chunk, then opens the race again:
// every eligible member ends with exactly one ballot and one queued ballot
// message, and the open step is recorded once.
func TestCrashWhileOpening(t *testing.T) {
	t.Parallel()
	const members = 10000
	r := newCrashRig(t)
	ctx := context.Background()
	if _, err := r.db.Exec(`INSERT INTO members (email, name, state, district)
		SELECT 'm' || g || '@example.net', 'Member ' || g, CASE WHEN g % 5 = 0 THEN 'NY' ELSE 'MA' END, 'MA-0' || (1 + g % 9)
		FROM generate_series(1, $1) g`, members); err != nil {
		t.Fatal(err)
	}
	eligible := r.count(`SELECT count(*) FROM members WHERE state = 'MA'`)
	now := time.Now()
	if _, err := r.st.CreateWave(ctx, ballots.Wave{Name: "Crash", NominationsClose: now, VotingOpen: now, VotingClose: now.Add(time.Hour), Threshold: 0.6}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", "", nil); err != nil {
		t.Fatal(err)
	}
	made := func() int { return r.count(`SELECT count(*) FROM ballots`) }
	var points []int
	for i := 0; i < 5 && made() < eligible; i++ {
		before := made()
		cmd := exec.Command(r.bin, "race", "open", "MA-SEN")
		cmd.Env = r.env
		cmd.Stdout, cmd.Stderr = r.logs, r.logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if !testenv.Poll(30*time.Second, func() bool { return made() != before }) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("race open made no ballot within 30 s of its start %d (at %d of %d)", i+1, before, eligible)
		}
		time.Sleep(time.Duration(r.rng.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		points = append(points, made())
	}
	cmd := exec.Command(r.bin, "race", "open", "MA-SEN")
	cmd.Env = r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("race open after the kills: %v\n%s", err, out)
	}
	if n := r.count(`SELECT count(*) FROM ballots`); n != eligible {
		t.Fatalf("%d ballots for %d eligible members", n, eligible)
	}
	if n := r.count(`SELECT count(*) FROM members m WHERE m.state = 'MA' AND (SELECT count(*) FROM ballots b WHERE b.member_id = m.id) <> 1`); n != 0 {
		t.Fatalf("%d eligible members without exactly one ballot", n)
	}
	if n := r.count(`SELECT count(*) FROM ballots b WHERE (SELECT count(*) FROM outbox o WHERE o.ballot_id = b.id AND o.kind = 'ballot') <> 1`); n != 0 {
		t.Fatalf("%d ballots without exactly one queued message", n)
	}
	if n := r.count(`SELECT count(*) FROM race_steps WHERE step = 'open'`); n != 1 {
		t.Fatalf("open step recorded %d times", n)
	}
	t.Logf("race open of %d ballots killed at %v ballots made; opened again: %s", eligible, points, bytes.TrimSpace(out))
}
