package ballots_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
)

// When, at this pace, a wave's ballots are all out: the recent pace, no
// faster than the relays' rates, and what is beyond their daily quotas
// waits for them to free.
func TestSendPaceETA(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		pace  ballots.SendPace
		after time.Duration // 0 with ok false: no time told
		ok    bool
	}{
		{"nothing left", ballots.SendPace{}, 0, true},
		{"at the recent pace", ballots.SendPace{Remaining: 6000, PerMinute: 600, Relays: []ballots.RelayLimits{{Relay: "a"}}}, 10 * time.Minute, true},
		{"capped by the relays' rates", ballots.SendPace{Remaining: 6000, PerMinute: 6000,
			Relays: []ballots.RelayLimits{{Relay: "a", PerSecond: 5}, {Relay: "b", PerSecond: 5}}}, 10 * time.Minute, true},
		{"one relay unlimited", ballots.SendPace{Remaining: 6000, PerMinute: 6000,
			Relays: []ballots.RelayLimits{{Relay: "a", PerSecond: 5}, {Relay: "b"}}}, time.Minute, true},
		{"beyond the daily quota", ballots.SendPace{Remaining: 1500, PerMinute: 1000,
			Relays: []ballots.RelayLimits{{Relay: "a", Daily: 1000, UsedDay: 500}}}, 24 * time.Hour, true},
		{"within the daily quota", ballots.SendPace{Remaining: 500, PerMinute: 100,
			Relays: []ballots.RelayLimits{{Relay: "a", Daily: 1000, UsedDay: 500}}}, 5 * time.Minute, true},
		{"nothing going out", ballots.SendPace{Remaining: 10}, 0, false},
	}
	for _, c := range cases {
		at, ok := c.pace.ETA(now)
		if ok != c.ok || ok && at.Sub(now) != c.after {
			t.Errorf("%s: ETA %v after %s, %v; want after %s, %v", c.name, at, at.Sub(now), ok, c.after, c.ok)
		}
	}
	p := ballots.SendPace{Remaining: 6000, PerMinute: 600}
	if got, want := p.Describe(now, time.UTC), "6000 to send at 600 a minute: all out in 10m (about Mon 12:10 UTC)"; got != want {
		t.Errorf("Describe = %q; want %q", got, want)
	}
}

// Reservations count against a relay's daily quota and a domain's
// hourly one; given back, they count no more; the pace reads them.
func TestReserveSendsAndPace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	q := ballots.SendQuota{Daily: 5, Domains: map[string]ballots.DomainQuota{"gmail.com": {Hourly: 2}}}
	r, err := st.ReserveSends(ctx, "a", q, []string{"gmail.com", "gmail.com", "gmail.com", "x.net"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, false, true}; !equalBools(r.Admitted, want) || r.DomainFullUntil["gmail.com"].Before(time.Now().Add(59*time.Minute)) {
		t.Fatalf("admitted %v, gmail full until %v; want %v and in an hour", r.Admitted, r.DomainFullUntil["gmail.com"], want)
	}
	r2, err := st.ReserveSends(ctx, "a", q, []string{"x.net", "x.net", "x.net"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, false}; !equalBools(r2.Admitted, want) || r2.RelayFullUntil.Before(time.Now().Add(23*time.Hour)) {
		t.Fatalf("admitted %v, relay full until %v; want %v and in a day", r2.Admitted, r2.RelayFullUntil, want)
	}
	// One gmail message was not sent after all: it is given back.
	if err := st.GiveBackSends(ctx, []ballots.SendCount{{Relay: "a", Bucket: r.Bucket, N: 1}, {Relay: "a", Domain: "gmail.com", Bucket: r.Bucket, N: 1}}); err != nil {
		t.Fatal(err)
	}
	r3, err := st.ReserveSends(ctx, "a", q, []string{"gmail.com", "gmail.com"})
	if err != nil || !equalBools(r3.Admitted, []bool{true, false}) {
		t.Fatalf("after giving one back: %v, %v; want one more gmail", r3.Admitted, err)
	}
	if err := st.RecordRelays(ctx, []ballots.RelayLimits{{Relay: "a", PerSecond: 2, Daily: 5}}); err != nil {
		t.Fatal(err)
	}
	p, err := st.WaveSendPace(ctx, "none")
	if err != nil {
		t.Fatal(err)
	}
	if p.PerMinute <= 2 || p.PerMinute > 5 || len(p.Relays) != 1 || p.Relays[0].UsedDay != 5 || p.Relays[0].Daily != 5 {
		t.Errorf("pace %+v; want up to 5 a minute (a minute boundary may split them), relay a with 5 of 5 used", p)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The digest says, for a wave with ballots still to send, how many and
// (nothing sent yet) that no time can be told; its mail carries it.
func TestDigestSaysWhenTheWaveIsOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	if _, err := st.ImportMembers(ctx, strings.NewReader("email,name,district\na@example.net,A,MA-07\nb@example.net,B,MA-02\n")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := st.CreateWave(ctx, ballots.Wave{Name: "March", NominationsClose: now, VotingOpen: now, VotingClose: now.Add(time.Hour), Threshold: 0.6}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddCandidate(ctx, "MA-SEN", "", "Ed Markey", "Senator", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenRace(ctx, "MA-SEN"); err != nil {
		t.Fatal(err)
	}
	d, err := st.DigestNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Sending) != 1 || d.Sending[0].Wave != "March" || d.Sending[0].Remaining != 2 {
		t.Fatalf("digest sending %+v; want March with 2 to send", d.Sending)
	}
	if m := d.Mail(); len(m.Sending) != 1 || m.Sending[0].Known || m.Sending[0].Remaining != 2 {
		t.Errorf("digest mail sending %+v; want 2 to send, no time told", m.Sending)
	}
	// Sends counted in the last minutes: now a time is told.
	if _, err := st.ReserveSends(ctx, "a", ballots.SendQuota{}, []string{"x.net", "x.net"}); err != nil {
		t.Fatal(err)
	}
	if d, err = st.DigestNow(ctx); err != nil {
		t.Fatal(err)
	}
	if m := d.Mail(); len(m.Sending) != 1 || !m.Sending[0].Known || !m.Sending[0].Out.After(d.At) {
		t.Errorf("digest mail sending %+v; want a time after %v", m.Sending, d.At)
	}
}
