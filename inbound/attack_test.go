package inbound

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"mime"
	"strings"
	"testing"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/templates"
)

// The attacks a ballot invites (issue 8), each over the real processor and
// database. Every case states the outcome and checks the tally did not move
// where it must not.

func TestAttackForgedTokens(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	aliceID, aliceTok := w.ballot("MA-SEN", "alice@example.net")
	bobID, _ := w.ballot("MA-SEN", "bob@example.net")
	_, alice07 := w.ballot("MA-07", "alice@example.net")
	nonce, _ := ballots.BallotNonce(w.ctx, w.db, aliceID)
	// bob's ballot id with alice's MAC: decodes, does not verify.
	otherVoter := w.toks.Make(token.Ballot, bobID, nonce)
	// Another race: alice's MA-07 id bytes with her MA-SEN MAC.
	mixed := alice07[:10] + aliceTok[10:]
	flip := func(s string, i int) string {
		c := byte('a')
		if s[i] == 'a' {
			c = 'b'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	var guess [18]byte
	rand.Read(guess[:])
	guessed := strings.ToLower(strings.TrimRight(base64.RawURLEncoding.EncodeToString(guess[:]), "="))
	other, _ := token.NewKey("another secret of enough length")
	cases := []struct{ name, token string }{
		{"another voter's id with my MAC", otherVoter},
		{"another race's id with my MAC", mixed},
		{"truncated", aliceTok[:len(aliceTok)-1]},
		{"truncated to the id", aliceTok[:10]},
		{"altered MAC", flip(aliceTok, len(aliceTok)-3)},
		{"non-canonical last character", flip(aliceTok, len(aliceTok)-1)},
		{"altered id", flip(aliceTok, 2)},
		{"extended", aliceTok + "a"},
		{"guessed", guessed},
		{"bounce token for the ballot id", w.toks.Make(token.Bounce, aliceID, nonce)},
		{"right id, wrong secret", other.Make(token.Ballot, aliceID, nonce)},
		{"empty", ""},
		{"not base32", "0189!!<>'\";--"},
	}
	for _, c := range cases {
		res := w.handle(w.reply("alice@example.net", "v-"+c.token, "Re: ballot", "1"))
		if res.Outcome == OutcomeCounted {
			t.Errorf("%s: counted", c.name)
		}
		t.Logf("attack forged token, %s: class %s, outcome %s", c.name, res.Class, res.Outcome)
	}
	if n := w.count(`SELECT count(*) FROM votes`); n != 0 {
		t.Fatalf("forged tokens cast %d votes", n)
	}
	// The real token, in capitals, still works.
	if res := w.handle(w.reply("alice@example.net", "v-"+strings.ToUpper(aliceTok), "Re: ballot", "1")); res.Outcome != OutcomeCounted {
		t.Fatalf("real token: %q", res.Outcome)
	}
	// A closed race: the valid token no longer counts.
	if _, err := w.st.CloseRace(w.ctx, "MA-SEN"); err != nil {
		t.Fatal(err)
	}
	if res := w.handle(w.reply("alice@example.net", "v-"+aliceTok, "Re: ballot", "2")); res.Outcome != OutcomeClosed {
		t.Fatalf("closed race: %q", res.Outcome)
	}
	if got := w.tally("MA-SEN"); got != "voted=1 Ed Markey=1 Joe Kennedy=0" {
		t.Fatalf("tally = %s", got)
	}
}

func TestAttackOtherSenderAndQuotedCode(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, aliceTok := w.ballot("MA-07", "alice@example.net")
	_, malloryTok := w.ballot("MA-07", "mallory@example.com")
	// A valid token from a different From.
	res := w.handle(w.reply("mallory@example.com", "v-"+aliceTok, "Re: ballot", "NO"))
	if res.Outcome != OutcomeNotVoter {
		t.Fatalf("alice's token from mallory: %q", res.Outcome)
	}
	// Forged From display tricks: the address decides, not the name.
	res = w.handle(w.reply(`"alice@example.net" <mallory@example.com>`, "v-"+aliceTok, "Re: ballot", "NO"))
	if res.Outcome != OutcomeNotVoter {
		t.Fatalf("display-name spoof: %q", res.Outcome)
	}
	// A reply to the bare address quoting alice's ballot code.
	raw := []byte("From: mallory@example.com\r\nTo: ballots@example.org\r\nSubject: Re: ballot\r\nMessage-ID: <q-1@m>\r\n\r\n" +
		"NO\r\n\r\n> Ballot code: " + aliceTok + "\r\n")
	if res := w.handle(raw); res.Outcome != OutcomeNotVoter {
		t.Fatalf("quoted code: %q", res.Outcome)
	}
	// Mallory's own ballot, quoting alice's code as well: counts for mallory only.
	res = w.handle(w.reply("mallory@example.com", "v-"+malloryTok, "Re: ballot", "NO\r\n\r\n> Ballot code: "+aliceTok))
	if res.Outcome != OutcomeCounted {
		t.Fatalf("own ballot quoting another: %q", res.Outcome)
	}
	var voter string
	if err := w.db.Get(&voter, `SELECT m.email FROM votes v JOIN ballots b ON b.id = v.ballot_id JOIN members m ON m.id = b.member_id`); err != nil {
		t.Fatal(err)
	}
	if voter != "mallory@example.com" {
		t.Fatalf("the one vote is %s's", voter)
	}
	// Every notice went to alice's registered address, none to mallory.
	if n := w.count(`SELECT count(*) FROM outbox WHERE kind = 'not-voter' AND recipient <> 'alice@example.net'`); n != 0 {
		t.Fatalf("%d notices to the sender", n)
	}
	if n := w.count(`SELECT count(*) FROM outbox WHERE kind = 'not-voter'`); n != 1 {
		t.Fatalf("notices = %d, want 1 (one per sender per reason per day)", n)
	}
}

func TestAttackReplayNewMessageID(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-07", "bob@example.net")
	raw := w.reply("bob@example.net", "v-"+tok, "Re: ballot", "YES")
	if res := w.handle(raw); res.Outcome != OutcomeCounted {
		t.Fatal(res.Outcome)
	}
	// The same message again (same Message-ID): nothing happens.
	if res := w.handle(raw); res.Outcome != OutcomeDuplicate {
		t.Fatalf("same message: %q", res.Outcome)
	}
	// The same reply with a new Message-ID: a new reading of the same vote.
	for i := range 5 {
		again := bytes.Replace(raw, []byte("Message-ID: <reply-"), []byte(fmt.Sprintf("Message-ID: <replayed-%d-", i)), 1)
		if res := w.handle(again); res.Outcome != OutcomeCounted {
			t.Fatalf("replayed %d: %q", i, res.Outcome)
		}
	}
	if got := w.tally("MA-07"); got != "voted=1 Ayanna Pressley=1" {
		t.Fatalf("tally = %s, want one YES", got)
	}
	if n := w.answers(templates.KindReceipt); n != 1 {
		t.Fatalf("receipts = %d, want 1", n)
	}
}

func TestAttackHeaderInjectionThroughSubject(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	subject := "=?utf-8?b?" + base64.StdEncoding.EncodeToString([]byte("hi\r\nBcc: victim@evil.example\r\nX-Injected: 1")) + "?="
	raw := []byte("From: person@example.net\r\nTo: ballots@example.org\r\nSubject: " + subject + "\r\nMessage-ID: <inj@x>\r\n\r\nhello\r\n")
	if res := w.handle(raw); res.Outcome != OutcomeQuarantined {
		t.Fatalf("outcome %q", res.Outcome)
	}
	msgs := w.rendered(templates.KindUnmatched)
	found := len(msgs) > 0
	for _, msg := range msgs {
		head, _, _ := bytes.Cut(msg.Data, []byte("\r\n\r\n"))
		for _, line := range strings.Split(string(head), "\r\n") {
			if strings.HasPrefix(strings.ToLower(line), "bcc:") || strings.HasPrefix(strings.ToLower(line), "x-injected:") {
				t.Fatalf("injected header line %q in\n%s", line, head)
			}
		}
		if msg.To != "person@example.net" {
			t.Fatalf("answer to %q", msg.To)
		}
	}
	if !found {
		t.Fatal("no unmatched answer rendered")
	}
}

func TestAttackHostileStructure(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-07", "carol@example.net")
	head := "From: carol@example.net\r\nTo: ballots+v-" + tok + "@example.org\r\nSubject: Re: ballot\r\nMIME-Version: 1.0\r\n"
	var deep strings.Builder
	for i := range message.MaxDepth + 5 {
		fmt.Fprintf(&deep, "Content-Type: multipart/mixed; boundary=\"d%d\"\r\n\r\n--d%d\r\n", i, i)
	}
	deep.WriteString("Content-Type: text/plain\r\n\r\nYES\r\n")
	// A part that decodes to 15 MB of zeros (compresses to nothing in a
	// zip; base64 cannot amplify, and nothing is ever decompressed).
	zeros := base64.StdEncoding.EncodeToString(make([]byte, 15<<20))
	var wrapped strings.Builder
	for len(zeros) > 76 {
		wrapped.WriteString(zeros[:76] + "\r\n")
		zeros = zeros[76:]
	}
	wrapped.WriteString(zeros + "\r\n")
	bomb := "Content-Type: multipart/mixed; boundary=\"z\"\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nYES\r\n" +
		"--z\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"42.zip\"\r\n\r\n" +
		wrapped.String() + "--z--\r\n"
	many := "Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n" + strings.Repeat("--p\r\nContent-Type: text/plain\r\n\r\nx\r\n", message.MaxParts+10) + "--p--\r\n"
	cases := []struct {
		name, raw, want string
	}{
		{"oversized", head + "Message-ID: <big@c>\r\nContent-Type: text/plain\r\n\r\nYES\r\n" + strings.Repeat("x", message.MaxMessageSize), OutcomeQuarantined},
		{"deep MIME nesting", head + "Message-ID: <deep@c>\r\n" + deep.String(), OutcomeQuarantined},
		{"too many parts", head + "Message-ID: <many@c>\r\n" + many, OutcomeQuarantined},
		{"zip-bomb-like base64 part", head + "Message-ID: <bomb@c>\r\n" + bomb, OutcomeCounted},
	}
	for _, c := range cases {
		res := w.handle([]byte(c.raw))
		if res.Outcome != c.want {
			t.Errorf("%s: outcome %q, want %q", c.name, res.Outcome, c.want)
		}
		t.Logf("attack %s (%d bytes): class %s, outcome %s", c.name, len(c.raw), res.Class, res.Outcome)
	}
	qs, err := w.st.Quarantine(w.ctx)
	if err != nil || len(qs) != 3 {
		t.Fatalf("quarantine = %d entries, %v; want 3", len(qs), err)
	}
	for _, q := range qs {
		if q.Detail == "" {
			t.Errorf("quarantined %d without a reason", q.ID)
		}
	}
}

func TestAttackFloodFromOneSender(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-07", "alice@example.net")
	// Twenty times the daily bound on receipts: a flood of 2,000, as
	// before, checked the same bound and took a minute on a loaded
	// machine. The last reply, NO, comes after a YES: a change, so it
	// asks for a receipt, not for a no-change note (a bound of its own).
	const n = 200
	want := ""
	for i := range n {
		ans := []string{"YES", "NO", "maybe"}[i%3]
		if i == n-1 {
			ans = "NO"
		}
		res := w.handle(w.reply("alice@example.net", "v-"+tok, "Re: ballot", ans))
		if ans != "maybe" {
			want = ans
			if res.Outcome != OutcomeCounted {
				t.Fatalf("reply %d (%s): %q", i, ans, res.Outcome)
			}
		}
	}
	if got := w.tally("MA-07"); want != "NO" || got != "voted=1 Ayanna Pressley=0" {
		t.Fatalf("tally = %s after a flood ending in %s", got, want)
	}
	answers := w.count(`SELECT count(*) FROM outbox WHERE kind <> 'ballot'`)
	if answers != maxReceiptsPerDay+1 { // receipts up to the bound, one clarification
		t.Fatalf("%d answers to %d replies, want %d", answers, n, maxReceiptsPerDay+1)
	}
	t.Logf("attack flood: %d replies from one sender, %d votes recorded, %d answers sent", n,
		w.count(`SELECT count(*) FROM votes`), answers)
}

func TestAttackSQLMetacharacters(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-07", "bob@example.net")
	evil := `'; DROP TABLE votes; -- $1 \x00 " \ %_ ) OR 1=1 --`
	enc := func(s string) string { return mime.BEncoding.Encode("utf-8", s) }
	raws := [][]byte{
		// In the display name, subject, Message-ID, references and body of a real vote.
		[]byte("From: " + enc(evil) + " <bob@example.net>\r\nTo: ballots+v-" + tok + "@example.org\r\nSubject: " + enc(evil) +
			"\r\nMessage-ID: <'x;DROP-TABLE-votes@evil>\r\nIn-Reply-To: <';--@example.org>\r\nReferences: <$1@example.org>\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\n\r\nYES\r\n" + evil + "\r\n"),
		// In the plus tag and the From local part.
		[]byte("From: \"x\" <o'brien;--@example.net>\r\nTo: ballots+v-';drop%20table@example.org\r\nSubject: x\r\nMessage-ID: <m2@evil>\r\n\r\nYES\r\n"),
		// A NUL byte in the subject, the name and the body.
		[]byte("From: " + enc("nul\x00name") + " <bob@example.net>\r\nTo: ballots+v-" + tok + "@example.org\r\nSubject: " + enc("a\x00b") +
			"\r\nMessage-ID: <m3@evil>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nNO\x00\r\n"),
	}
	for i, raw := range raws {
		res := w.handle(raw)
		t.Logf("attack SQL metacharacters %d: class %s, outcome %s", i, res.Class, res.Outcome)
	}
	if n := w.count(`SELECT count(*) FROM votes`); n < 1 {
		t.Fatalf("votes table lost or empty: %d", n)
	}
	if n := w.count(`SELECT count(*) FROM inbound_messages`); n != len(raws) {
		t.Fatalf("inbound rows = %d, want %d", n, len(raws))
	}
	var subject string
	if err := w.db.Get(&subject, `SELECT subject FROM inbound_messages ORDER BY id LIMIT 1`); err != nil || subject != evil {
		t.Fatalf("stored subject %q, %v; want it verbatim", subject, err)
	}
}
