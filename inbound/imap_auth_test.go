package inbound

import (
	"slices"
	"testing"
	"time"

	"github.com/ballotd/ballotd/internal/authtest"
	"github.com/ballotd/ballotd/internal/mailauth"
	"github.com/ballotd/ballotd/internal/mailhub"
)

// The Reader logs in with XOAUTH2 to a mailbox that requires it and
// handles what is there.
func TestReaderXOAuth2(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := authtest.Start(t, time.Hour)
	hub := p.Hub(t, mailhub.Options{}, mailauth.XOAuth2)
	raw := "From: Alice <alice@example.net>\r\nTo: ballots@example.org\r\nSubject: hello\r\nMessage-ID: <oauth-1@example.net>\r\n\r\nhello\r\n"
	if err := hub.Deliver("ballots@example.org", []byte(raw)); err != nil {
		t.Fatal(err)
	}
	r := &Reader{Processor: w.p, Config: IMAPConfig{
		Addr: hub.IMAPAddr, Username: p.User, Mechanism: mailauth.XOAuth2,
		Tokens: p.Tokens(),
	}}
	n, err := r.Once(w.ctx)
	if err != nil || n != 1 {
		t.Fatalf("Once: %d handled, %v; want 1", n, err)
	}
	if got := p.Accepted(); !slices.Equal(got, []string{"token-1"}) {
		t.Errorf("server accepted %v, want [token-1]", got)
	}
}
