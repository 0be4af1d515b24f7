package mailer_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

// renderAll claims every due row and renders it with r.
func renderAll(t *testing.T, st *ballots.Store, r *mailer.Renderer) (map[string][]byte, []ballots.OutboxRow) {
	t.Helper()
	ctx := context.Background()
	rows, err := st.ClaimOutbox(ctx, 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, row := range rows {
		var buf bytes.Buffer
		m, err := r.Render(ctx, row, &buf)
		if err != nil {
			t.Fatal(err)
		}
		out[row.Recipient] = bytes.Clone(m.Data)
	}
	return out, rows
}

func parse(t *testing.T, data []byte) *mail.Message {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("message does not parse: %v\n%s", err, data)
	}
	return m
}

// Member mail carries List-Unsubscribe with the member's u- token, and the
// RFC 8058 one-click link and List-Unsubscribe-Post only when a public URL
// is configured.
func TestListUnsubscribeHeaders(t *testing.T) {
	t.Parallel()
	for _, publicURL := range []string{"", "https://ballots.example.org"} {
		t.Run("public url "+publicURL, func(t *testing.T) {
			f := newFixture(t)
			f.outbox.Renderer.ID.PublicURL = publicURL
			msgs, rows := renderAll(t, f.st, f.outbox.Renderer)
			if len(rows) != 3 {
				t.Fatalf("%d rows", len(rows))
			}
			for _, row := range rows {
				h := parse(t, msgs[row.Recipient]).Header
				tok := f.toks.Make("u", row.MemberID.Int64, nil)
				want := "<mailto:ballots+u-" + tok + "@example.org>"
				wantPost := ""
				if publicURL != "" {
					want += ", <https://ballots.example.org/unsubscribe?t=" + tok + ">"
					wantPost = "List-Unsubscribe=One-Click"
				}
				if got := h.Get("List-Unsubscribe"); got != want {
					t.Errorf("%s: List-Unsubscribe %q, want %q", row.Recipient, got, want)
				}
				if got := h.Get("List-Unsubscribe-Post"); got != wantPost {
					t.Errorf("%s: List-Unsubscribe-Post %q, want %q", row.Recipient, got, wantPost)
				}
				if id, err := f.toks.ID(tok); err != nil || id != row.MemberID.Int64 {
					t.Errorf("unsubscribe token names member %d (%v), want %d", id, err, row.MemberID.Int64)
				}
			}
		})
	}
}

// The Message-ID depends only on the outbox row: rendering again (a resend
// after a crash, another replica, another time) gives the same one.
func TestMessageIDIsDeterministic(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rows, err := f.st.ClaimOutbox(ctx, 10, time.Minute)
	if err != nil || len(rows) != 3 {
		t.Fatalf("claim: %d, %v", len(rows), err)
	}
	r := f.outbox.Renderer
	other := &mailer.Renderer{Store: r.Store, Templates: r.Templates, Tokens: r.Tokens, ID: r.ID,
		Now: func() time.Time { return time.Now().Add(72 * time.Hour) }}
	seen := map[string]bool{}
	for _, row := range rows {
		var b1, b2 bytes.Buffer
		m1, err1 := f.outbox.Renderer.Render(ctx, row, &b1)
		m2, err2 := other.Render(ctx, row, &b2)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if m1.MessageID != m2.MessageID || parse(t, m1.Data).Header.Get("Message-ID") != parse(t, m2.Data).Header.Get("Message-ID") {
			t.Errorf("row %d: Message-ID %s then %s", row.ID, m1.MessageID, m2.MessageID)
		}
		if seen[m1.MessageID] || !strings.HasSuffix(m1.MessageID, "@example.org") {
			t.Errorf("row %d: Message-ID %s repeats or is not ours", row.ID, m1.MessageID)
		}
		seen[m1.MessageID] = true
	}
}

// A subject or a referenced Message-ID carrying CR LF cannot add a header.
func TestHeaderInjectionThroughSubjectAndReferences(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	mailer.Compose(&buf, []mailer.Header{{Name: "From", Value: "<a@example.org>"}, {Name: "In-Reply-To", Value: "<x@y>\r\nBcc: victim@example.com"}},
		"Ballot\r\nBcc: victim@example.com\nX-Evil: 1", []byte("text\n"), []byte("<p>html</p>\n"), "=_b")
	h := parse(t, buf.Bytes()).Header
	if len(h["Bcc"]) != 0 || len(h["X-Evil"]) != 0 || len(h["Subject"]) != 1 {
		t.Fatalf("injected headers: %v", h)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || !strings.HasPrefix(subj, "Ballot ") || !strings.Contains(subj, "victim@example.com") {
		t.Errorf("subject %q (%v) should keep the text on one line", subj, err)
	}

	// Through the renderer: an answer whose In-Reply-To came from an inbound message.
	f := newFixture(t)
	ctx := context.Background()
	if _, err := testenv.DB(t, f.st).Exec(`UPDATE outbox SET status = 'sent'`); err != nil {
		t.Fatal(err)
	}
	err = f.st.InTx(ctx, func(tx *sqlx.Tx) error {
		_, err := ballots.Enqueue(ctx, tx, ballots.Mail{Recipient: "stranger@example.com",
			Payload: templates.UnmatchedMail{Subject: "hi\r\nBcc: victim@example.com", Thread: templates.Thread{InReplyTo: "<m@x>\r\nBcc: victim@example.com"}}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := renderAll(t, f.st, f.outbox.Renderer)
	h = parse(t, msgs["stranger@example.com"]).Header
	if len(h["Bcc"]) != 0 || len(h["Subject"]) != 1 || len(h["In-Reply-To"]) != 1 || len(h["List-Unsubscribe"]) != 0 {
		t.Errorf("unmatched answer headers: %v", h)
	}
}

// With a DKIM key configured every message is signed, and the signature
// verifies against the public key published (here: a TXT lookup in the
// test); a changed header breaks it.
func TestDKIMSignatureVerifies(t *testing.T) {
	t.Parallel()
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		key  crypto.Signer
		pkcs func() ([]byte, error)
		txt  func() string
	}{
		{"ed25519", edKey, func() ([]byte, error) { return x509.MarshalPKCS8PrivateKey(edKey) },
			func() string { return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edPub) }},
		{"rsa", rsaKey, func() ([]byte, error) { return x509.MarshalPKCS1PrivateKey(rsaKey), nil },
			func() string {
				der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
				return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			der, err := c.pkcs()
			if err != nil {
				t.Fatal(err)
			}
			typ := "PRIVATE KEY"
			if c.name == "rsa" {
				typ = "RSA PRIVATE KEY"
			}
			path := filepath.Join(t.TempDir(), "dkim.pem")
			if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
				t.Fatal(err)
			}
			key, err := mailer.LoadDKIMKey(path)
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t)
			f.outbox.Renderer.ID.PublicURL = "https://ballots.example.org"
			f.outbox.Renderer.DKIM = &mailer.DKIM{Domain: "example.org", Selector: "ballots2026", Key: key}
			lookups := 0
			opts := &dkim.VerifyOptions{LookupTXT: func(domain string) ([]string, error) {
				lookups++
				if domain != "ballots2026._domainkey.example.org" {
					t.Errorf("TXT lookup of %s", domain)
				}
				return []string{c.txt()}, nil
			}}
			msgs, _ := renderAll(t, f.st, f.outbox.Renderer)
			for rcpt, data := range msgs {
				vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), opts)
				if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.org" {
					t.Fatalf("%s: verify = %+v, %v", rcpt, vs, err)
				}
				for _, h := range []string{"from", "subject", "message-id", "list-unsubscribe", "list-unsubscribe-post"} {
					if !containsFold(vs[0].HeaderKeys, h) {
						t.Errorf("%s: %s is not signed (%v)", rcpt, h, vs[0].HeaderKeys)
					}
				}
				forged := bytes.Replace(data, []byte("Subject: "), []byte("Subject: URGENT "), 1)
				if vs, err := dkim.VerifyWithOptions(bytes.NewReader(forged), opts); err != nil || len(vs) != 1 || vs[0].Err == nil {
					t.Errorf("%s: a changed Subject still verifies: %+v %v", rcpt, vs, err)
				}
			}
			if lookups == 0 {
				t.Error("no key lookup: nothing was verified")
			}
		})
	}
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// A ballot filled from the race's stamp is byte for byte the ballot
// rendered from the templates, for every kind of name: plain ones take the
// stamp, others (quotes, ampersands, header injection) are rendered.
func TestStampedBallotsEqualRendered(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	more := "email,name,district\n" +
		"dan@example.net,,MA-07\n" +
		"erin@example.net,Erin O'Brien,MA-07\n" +
		"fay@example.net,José María Nguyễn-Ødegård,MA-07\n" +
		"gus@example.net,Tom & <b>Jerry</b>,MA-07\n"
	if _, err := f.st.ImportMembers(ctx, strings.NewReader(more)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.AddCandidate(ctx, "MA-07", "", "Jordan Rivera", "Organiser & \"teacher\".", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.AddCandidate(ctx, "MA-07", "", "Sam Okafor", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.OpenRace(ctx, "MA-07"); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)
	base := f.outbox.Renderer
	stamped := &mailer.Renderer{Store: base.Store, Templates: base.Templates, Tokens: base.Tokens, ID: base.ID, Now: func() time.Time { return now }}
	rendered := &mailer.Renderer{Store: base.Store, Templates: base.Templates, Tokens: base.Tokens, ID: base.ID, Now: stamped.Now, NoStamps: true}
	rows, err := f.st.ClaimOutbox(ctx, 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3+5 {
		t.Fatalf("%d rows, want 8 ballots", len(rows))
	}
	for _, row := range rows {
		var b1, b2 bytes.Buffer
		m1, err := stamped.Render(ctx, row, &b1)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := rendered.Render(ctx, row, &b2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m1.Data, m2.Data) {
			t.Errorf("%s (%q): stamped and rendered differ\nstamped:\n%s\nrendered:\n%s", row.Recipient, row.MemberName, m1.Data, m2.Data)
		}
	}
}
