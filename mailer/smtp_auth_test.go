package mailer_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ballotd/ballotd/internal/authtest"
	"github.com/ballotd/ballotd/internal/mailauth"
	"github.com/ballotd/ballotd/internal/mailhub"
	"github.com/ballotd/ballotd/mailer"
)

// An SMTPSender authenticates with OAUTHBEARER to a relay that requires
// it, and a connection made after the access token expired gets a new
// token from the endpoint.
func TestSMTPSenderOAuthBearer(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	p := authtest.Start(t, 2*time.Second)
	hub := p.Hub(t, mailhub.Options{}, mailauth.OAuthBearer)
	s := mailer.NewSMTPSender(mailer.SMTPConfig{
		Addr: hub.SMTPAddr, HeloName: "example.org", Username: p.User, Mechanism: mailauth.OAuthBearer,
		Tokens: p.Tokens(),
	})
	msg := []byte("From: ballots@example.org\r\nTo: alice@example.net\r\nSubject: one\r\n\r\nbody\r\n")
	if err := s.Send(ctx, "ballots@example.org", "alice@example.net", msg); err != nil {
		t.Fatalf("first message: %v", err)
	}
	if got := p.Accepted(); !slices.Equal(got, []string{"token-1"}) {
		t.Fatalf("relay accepted %v, want [token-1]", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	p.WaitExpired(t, "token-1")
	if err := s.Send(ctx, "ballots@example.org", "bob@example.net", msg); err != nil {
		t.Fatalf("message on a new connection after expiry: %v", err)
	}
	if got, want := p.Accepted(), []string{"token-1", "token-2"}; !slices.Equal(got, want) || p.Refreshes() != 2 {
		t.Errorf("relay accepted %v after %d refreshes, want %v after 2", got, p.Refreshes(), want)
	}
	if got := hub.Received(); len(got) != 2 || got[1].To[0] != "bob@example.net" {
		t.Errorf("relay received %d messages, want both", len(got))
	}
	s.Close()
}
