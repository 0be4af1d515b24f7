package mailhub

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

func startHub(t *testing.T) *Hub {
	t.Helper()
	h, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

func message(subject string) string {
	return "From: chair@example.com\r\nTo: ballots+v-abc@example.org\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + subject + "@example.com>\r\n\r\nHello.\r\n.leading dot\r\n"
}

func dialIMAP(t *testing.T, h *Hub, user string, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(h.IMAPAddr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, h.Password).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

func TestSMTPToIMAP(t *testing.T) {
	t.Parallel()
	h := startHub(t)
	msg := message("one")
	auth := sasl.NewPlainClient("", "chair@example.com", h.Password)
	if err := sendMail(h.SMTPAddr, auth, "chair@example.com",
		[]string{"ballots+v-abc@example.org", "alice@example.net"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}

	envs := h.Received()
	if len(envs) != 1 {
		t.Fatalf("Received() has %d envelopes, want 1", len(envs))
	}
	if e := envs[0]; e.From != "chair@example.com" || len(e.To) != 2 || e.To[0] != "ballots+v-abc@example.org" ||
		e.To[1] != "alice@example.net" || string(e.Data) != msg || e.At.IsZero() {
		t.Errorf("envelope = %+v (data %q)", e, e.Data)
	}

	c := dialIMAP(t, h, "Ballots@Example.org", nil) // case does not matter
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 1 {
		t.Fatalf("INBOX has %d messages, want 1", sel.NumMessages)
	}
	body := &imap.FetchItemBodySection{}
	msgs, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{body}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("UID FETCH 1 returned %d messages", len(msgs))
	}
	raw := string(msgs[0].FindBodySection(body))
	want := "Return-Path: <chair@example.com>\r\nDelivered-To: ballots+v-abc@example.org\r\n" + msg
	if raw != want {
		t.Errorf("stored message =\n%q\nwant\n%q", raw, want)
	}

	// Alice got her own copy; Inbox reads it with flags and leaves it unseen,
	// while ballots' copy was marked \Seen by the non-peek fetch above.
	alice, err := h.Inbox("alice@example.net")
	if err != nil {
		t.Fatal(err)
	}
	if len(alice) != 1 || !bytes.Contains(alice[0].Raw, []byte("Delivered-To: alice@example.net\r\n")) {
		t.Fatalf("alice's inbox = %+v", alice)
	}
	if len(alice[0].Flags) != 0 {
		t.Errorf("alice's message has flags %v, want none", alice[0].Flags)
	}
	ballots, err := h.Inbox("ballots+anything@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(ballots) != 1 || ballots[0].UID != 1 || !hasFlag(ballots[0].Flags, `\Seen`) {
		t.Errorf("ballots' inbox = %+v, want UID 1 with \\Seen", ballots)
	}
	if none, err := h.Inbox("nobody@example.org"); err != nil || len(none) != 0 {
		t.Errorf("Inbox(unknown user) = %v, %v", none, err)
	}
}

func TestLoginBeforeMailAndWrongPassword(t *testing.T) {
	t.Parallel()
	h := startHub(t)
	c := dialIMAP(t, h, "bob@example.com", nil)
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range boxes {
		names = append(names, b.Mailbox)
	}
	if strings.Join(names, ",") != "INBOX,Sent" {
		t.Errorf("mailboxes = %v, want INBOX, Sent", names)
	}
	// A client can save its sent copy.
	sent := message("sent")
	app := c.Append("Sent", int64(len(sent)), nil)
	if _, err := app.Write([]byte(sent)); err != nil {
		t.Fatal(err)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if data, err := app.Wait(); err != nil || data.UID != 1 {
		t.Errorf("APPEND to Sent = %+v, %v; want UID 1 (UIDPLUS)", data, err)
	}

	c2, err := imapclient.DialInsecure(h.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Login("bob@example.com", "wrong").Wait(); err == nil {
		t.Error("login with a wrong password succeeded")
	}

	// SMTP without AUTH is accepted too.
	if err := sendMail(h.SMTPAddr, nil, "", []string{"bob@example.com"}, strings.NewReader(message("noauth"))); err != nil {
		t.Fatal(err)
	}
	// SMTP AUTH with a wrong password is refused.
	err = sendMail(h.SMTPAddr, sasl.NewPlainClient("", "x", "wrong"), "a@b.c", []string{"bob@example.com"}, strings.NewReader(message("x")))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 535 {
		t.Errorf("SendMail with a wrong password: %v, want 535", err)
	}
}

func TestIdleWakesOnDelivery(t *testing.T) {
	t.Parallel()
	h := startHub(t)
	arrived := make(chan uint32, 4)
	c := dialIMAP(t, h, "ballots@example.org", &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					arrived <- *data.NumMessages
				}
			},
		},
	})
	if !c.Caps().Has(imap.CapIdle) && !c.Caps().Has(imap.CapIMAP4rev2) {
		t.Fatalf("server advertises neither IDLE nor IMAP4rev2: %v", c.Caps())
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}

	if err := h.Deliver("ballots+v-xyz@example.org", []byte(message("idle"))); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-arrived:
		if n != 1 {
			t.Errorf("EXISTS %d, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("IDLE was not woken by a delivery")
	}
	// A later delivery, by SMTP, wakes the same IDLE.
	time.Sleep(150 * time.Millisecond)
	if err := sendMail(h.SMTPAddr, nil, "chair@example.com", []string{"ballots+v-2@example.org"}, strings.NewReader(message("idle2"))); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-arrived:
		if n != 2 {
			t.Errorf("EXISTS %d, want 2", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("IDLE was not woken by the second delivery")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	got, err := h.Inbox("ballots@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !bytes.HasPrefix(got[0].Raw, []byte("Delivered-To: ballots+v-xyz@example.org\r\nFrom:")) {
		t.Errorf("inbox after Deliver = %+v", got)
	}
	if n := len(h.Received()); n != 1 {
		t.Errorf("%d envelopes recorded, want 1 (Deliver records none)", n)
	}
}

func TestMoveAndUIDSearch(t *testing.T) {
	t.Parallel()
	h := startHub(t)
	for _, s := range []string{"a", "b", "c"} {
		if err := h.Deliver("carol@example.com", []byte(message(s))); err != nil {
			t.Fatal(err)
		}
	}
	c := dialIMAP(t, h, "carol@example.com", nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	res, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "b"}}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if uids := res.AllUIDs(); len(uids) != 1 || uids[0] != 2 {
		t.Fatalf("UID SEARCH subject b = %v, want [2]", uids)
	}
	if err := c.Create("Done", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	moved, err := c.Move(imap.UIDSetNum(2), "Done").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if moved == nil || moved.DestUIDs.String() != "1" {
		t.Errorf("MOVE COPYUID data = %+v, want dest UID 1", moved)
	}
	inbox, err := h.Inbox("carol@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(inbox) != 2 || inbox[0].UID != 1 || inbox[1].UID != 3 {
		t.Errorf("inbox after MOVE = %+v, want UIDs 1, 3", inbox)
	}
}

func TestRcptFault(t *testing.T) {
	t.Parallel()
	h := startHub(t)
	h.SetRcptFault(func(rcpt string) *smtp.SMTPError {
		if strings.HasSuffix(rcpt, "@throttled.example") {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Try again later"}
		}
		return nil
	})
	send := func() error {
		return sendMail(h.SMTPAddr, nil, "ballots@example.org", []string{"dave@throttled.example"}, strings.NewReader(message("f")))
	}
	err := send()
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 7, 1}) {
		t.Fatalf("send with fault: %v, want 451 4.7.1", err)
	}
	if n := len(h.Received()); n != 0 {
		t.Fatalf("rejected transaction recorded: %d envelopes", n)
	}
	// Other recipients still pass while the fault is set.
	if err := sendMail(h.SMTPAddr, nil, "ballots@example.org", []string{"erin@example.com"}, strings.NewReader(message("g"))); err != nil {
		t.Fatal(err)
	}

	h.SetRcptFault(nil)
	if err := send(); err != nil {
		t.Fatalf("send after clearing the fault: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	envs, err := h.WaitReceived(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if envs[1].To[0] != "dave@throttled.example" {
		t.Errorf("second envelope = %+v", envs[1])
	}
}

func TestWaitReceived(t *testing.T) {
	t.Parallel()
	h := startHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan []Envelope)
	go func() {
		envs, err := h.WaitReceived(ctx, 2)
		if err != nil {
			t.Error(err)
		}
		done <- envs
	}()
	for _, s := range []string{"w1", "w2"} {
		if err := sendMail(h.SMTPAddr, nil, "x@example.com", []string{"y@example.com"}, strings.NewReader(message(s))); err != nil {
			t.Fatal(err)
		}
	}
	if envs := <-done; len(envs) != 2 {
		t.Errorf("WaitReceived returned %d envelopes, want 2", len(envs))
	}

	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := h.WaitReceived(short, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitReceived(3) = %v, want deadline exceeded", err)
	}
}

func TestUsername(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ballots+v-abc@example.org":   "ballots@example.org",
		"<Alice@Example.NET>":         "alice@example.net",
		"a+b+c@x.y":                   "a@x.y",
		"+tag@x.y":                    "+tag@x.y",
		"bob":                         "bob",
		"weird@local@host.example":    "weird@local@host.example",
		"  Ballots+V-ABC@example.org": "ballots@example.org",
	} {
		if got := Username(in); got != want {
			t.Errorf("Username(%q) = %q, want %q", in, got, want)
		}
	}
}

func hasFlag(flags []string, f string) bool {
	for _, g := range flags {
		if g == f {
			return true
		}
	}
	return false
}

// sendMail sends over plain SMTP (smtp.SendMail insists on STARTTLS), with
// AUTH if auth is not nil.
func sendMail(addr string, auth sasl.Client, from string, to []string, r *strings.Reader) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.SendMail(from, to, r); err != nil {
		return err
	}
	return c.Quit()
}

// TestUIDValidityPerStart: RFC 3501 §2.3.1.1. UIDs start again at 1 with
// each start of the hub, so each start gives the same user's mailboxes a
// greater UIDVALIDITY than the start before; a client that kept the last
// UID it read (ballotd's cursor) reads the new mailbox afresh.
func TestUIDValidityPerStart(t *testing.T) {
	t.Parallel()
	validity := func() (inbox, sent uint32) {
		h, err := Start(Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if err := h.Deliver("ballots@example.org", []byte(message("one"))); err != nil {
			t.Fatal(err)
		}
		c := dialIMAP(t, h, "ballots@example.org", nil)
		defer c.Close()
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if sel.NumMessages != 1 {
			t.Fatalf("INBOX holds %d messages, want 1", sel.NumMessages)
		}
		st, err := c.Status("Sent", &imap.StatusOptions{UIDValidity: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		return sel.UIDValidity, st.UIDValidity
	}
	inbox1, sent1 := validity()
	inbox2, sent2 := validity()
	if inbox1 == 0 || inbox2 <= inbox1 {
		t.Errorf("INBOX UIDVALIDITY %d, then %d after a new start; want a greater one", inbox1, inbox2)
	}
	if sent1 == inbox1 || sent2 <= sent1 {
		t.Errorf("Sent UIDVALIDITY %d (INBOX %d), then %d; want its own, and greater", sent1, inbox1, sent2)
	}
	if inbox1 < uint32(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("UIDVALIDITY %d is not from the start time (RFC 3501 §2.3.1.1)", inbox1)
	}
}
