package inbound

import (
	"fmt"
	htmlpkg "html"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/templates"
)

// replyAt is a reply from from to the plus address tag (or the plain
// mailbox when tag is ""), written at date, with extra header lines.
func (w *world) replyAt(from, tag string, date time.Time, body string, extra ...string) []byte {
	n := w.seq.Add(1)
	to := "ballots@example.org"
	if tag != "" {
		to = "ballots+" + tag + "@example.org"
	}
	var b strings.Builder
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: Re: Your ballot\r\nMessage-ID: <r-%d-%d@client.example>\r\n"+
		"Date: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		from, to, n, time.Now().UnixNano(), date.Format(time.RFC1123Z), body)
	return []byte(b.String())
}

// ballotMessageID is the Message-ID of the ballot mail of ballot id.
func (w *world) ballotMessageID(ballotID int64) string {
	w.t.Helper()
	var outboxID int64
	if err := w.db.Get(&outboxID, `SELECT id FROM outbox WHERE ballot_id = $1 AND kind = 'ballot'`, ballotID); err != nil {
		w.t.Fatal(err)
	}
	return w.toks.Make(token.MessageID, outboxID, nil) + "@example.org"
}

// text returns the decoded text part of a rendered message.
func text(t *testing.T, raw []byte) string {
	t.Helper()
	m, err := message.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m.Text
}

func TestReplayCannotUndoALaterVote(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-07", "alice@example.net")
	t1 := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	yes := w.replyAt("alice@example.net", "v-"+tok, t1, "YES")
	if res := w.handle(yes); res.Outcome != OutcomeCounted {
		t.Fatalf("first vote: %q", res.Outcome)
	}
	if res := w.handle(w.replyAt("alice@example.net", "v-"+tok, t1.Add(time.Hour), "NO")); res.Outcome != OutcomeCounted {
		t.Fatalf("changed vote: %q", res.Outcome)
	}
	// The captured YES, re-sent later with a new Message-ID.
	replayed := strings.Replace(string(yes), "Message-ID: <r-", "Message-ID: <replayed-", 1)
	res := w.handle([]byte(replayed))
	if res.Outcome != OutcomeStale {
		t.Fatalf("replayed YES: outcome %q, want %q", res.Outcome, OutcomeStale)
	}
	if got := w.tally("MA-07"); got != "voted=1 Ayanna Pressley=0" {
		t.Fatalf("tally after the replay = %s: the NO must stand", got)
	}
	notes := w.rendered(templates.KindNoChange)
	if len(notes) != 1 || !strings.Contains(text(t, notes[0].Data), "NO: do not endorse Ayanna Pressley") ||
		!strings.Contains(text(t, notes[0].Data), "written before") {
		t.Fatalf("no-change notes = %d, want one naming the standing NO", len(notes))
	}
	// A newer reply still changes the vote.
	if res := w.handle(w.replyAt("alice@example.net", "v-"+tok, time.Now(), "YES")); res.Outcome != OutcomeCounted {
		t.Fatalf("a newer vote: %q", res.Outcome)
	}
	if got := w.tally("MA-07"); got != "voted=1 Ayanna Pressley=1" {
		t.Fatalf("tally after a newer YES = %s", got)
	}
}

func TestTheSameVoteAgainGetsANoChangeNote(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-SEN", "bob@example.net")
	for i := 0; i < 2; i++ {
		if res := w.handle(w.replyAt("bob@example.net", "v-"+tok, time.Now(), "Kennedy")); res.Outcome != OutcomeCounted {
			t.Fatalf("vote %d: %q", i, res.Outcome)
		}
	}
	if n := w.answers(templates.KindReceipt); n != 1 {
		t.Fatalf("receipts = %d, want 1", n)
	}
	notes := w.rendered(templates.KindNoChange)
	if len(notes) != 1 || !strings.Contains(text(t, notes[0].Data), "same vote as before") ||
		!strings.Contains(text(t, notes[0].Data), "2. Joe Kennedy") {
		t.Fatalf("no-change notes: %d", len(notes))
	}
}

func TestTheBallotsOwnAddressDecides(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, aliceTok := w.ballot("MA-07", "alice@example.net")
	bobBallot, _ := w.ballot("MA-07", "bob@example.net")
	// Alice replies to her own ballot's address; In-Reply-To names Bob's.
	raw := w.replyAt("alice@example.net", "v-"+aliceTok, time.Now(), "YES", "In-Reply-To: <"+w.ballotMessageID(bobBallot)+">")
	if res := w.handle(raw); res.Outcome != OutcomeCounted {
		t.Fatalf("outcome %q, want counted for Alice", res.Outcome)
	}
	if n := w.count(`SELECT count(*) FROM votes v JOIN ballots b ON b.id = v.ballot_id JOIN members m ON m.id = b.member_id WHERE m.email = 'alice@example.net'`); n != 1 {
		t.Fatalf("Alice's votes = %d, want 1", n)
	}
}

func TestAPlainMailboxReplyMatchesByInReplyToOnlyForTheVoter(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	aliceBallot, _ := w.ballot("MA-07", "alice@example.net")
	mid := w.ballotMessageID(aliceBallot)
	// Mallory answers Alice's ballot by its Message-ID: no vote, no notice
	// to Mallory's choosing.
	res := w.handle(w.replyAt("mallory@example.com", "", time.Now(), "YES", "In-Reply-To: <"+mid+">"))
	if res.Outcome == OutcomeCounted || res.Outcome == OutcomeNotVoter {
		t.Fatalf("a stranger's reply by In-Reply-To: outcome %q", res.Outcome)
	}
	// Alice, who lost the plus address and quoted nothing.
	res = w.handle(w.replyAt("alice@example.net", "", time.Now(), "Yes", "In-Reply-To: <"+mid+">", "References: <"+mid+">"))
	if res.Class != message.ClassVote || res.Outcome != OutcomeCounted {
		t.Fatalf("Alice's plain-mailbox reply: class %q outcome %q", res.Class, res.Outcome)
	}
	if got := w.tally("MA-07"); got != "voted=1 Ayanna Pressley=1" {
		t.Fatalf("tally = %s", got)
	}
}

func TestReadReceiptsAreNeverAnswered(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-07", "alice@example.net")
	mdn := "From: Alice <alice@example.net>\r\nTo: ballots+v-" + tok + "@example.org\r\nSubject: Read: Your ballot\r\n" +
		"Message-ID: <mdn-1@example.net>\r\nDate: " + time.Now().Format(time.RFC1123Z) + "\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=disposition-notification; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nYour message was read on Monday. Yes.\r\n" +
		"--b\r\nContent-Type: message/disposition-notification\r\n\r\nReporting-UA: client.example; Outlook\r\n" +
		"Final-Recipient: rfc822;alice@example.net\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n--b--\r\n"
	outlook := "From: Alice <alice@example.net>\r\nTo: ballots+v-" + tok + "@example.org\r\nSubject: Read: Your ballot\r\n" +
		"Message-ID: <mdn-2@example.net>\r\nContent-Class: urn:content-classes:MDN\r\nContent-Type: text/plain\r\n\r\n" +
		"Your message\r\n  To: ballots\r\n was read on 30/11/2026 09:14.\r\n"
	for _, raw := range []string{mdn, outlook} {
		res := w.handle([]byte(raw))
		if res.Class != message.ClassReadReceipt || res.Outcome != OutcomeIgnored {
			t.Errorf("read receipt: class %q outcome %q", res.Class, res.Outcome)
		}
	}
	if n := w.count(`SELECT count(*) FROM outbox WHERE kind <> 'ballot'`); n != 0 {
		t.Fatalf("%d answers to read receipts", n)
	}
	if n := w.count(`SELECT count(*) FROM votes`); n != 0 {
		t.Fatalf("%d votes from read receipts", n)
	}
}

var mailtoLink = regexp.MustCompile(`mailto:[^\s"<>]+`)

// taps returns the bodies of the one-tap answers in text, checking each
// goes to reply (the footer's unsubscribe address aside).
func taps(t *testing.T, text, reply string) []string {
	t.Helper()
	var bodies []string
	for _, link := range mailtoLink.FindAllString(text, -1) {
		u, err := url.Parse(link)
		if err != nil {
			t.Fatalf("%s: %v", link, err)
		}
		if strings.HasPrefix(u.Opaque, "ballots+u-") {
			continue // the footer's unsubscribe address, not an answer
		}
		if u.Opaque != reply {
			t.Errorf("one-tap link to %q, want %q", u.Opaque, reply)
		}
		q := u.Query()
		if !strings.HasPrefix(q.Get("subject"), "Re: Your ballot: ") {
			t.Errorf("one-tap subject %q", q.Get("subject"))
		}
		bodies = append(bodies, q.Get("body"))
	}
	return bodies
}

func TestClarificationQuotesWhatWasReadAndOffersOneTapAnswers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-SEN", "carol@example.net")
	res := w.handle(w.replyAt("carol@example.net", "v-"+tok, time.Now(), "I won’t back Kennedy\n\nCarol"))
	if res.Outcome != OutcomeUnclear {
		t.Fatalf("outcome %q, want unclear", res.Outcome)
	}
	msgs := w.rendered(templates.KindClarify)
	if len(msgs) != 1 {
		t.Fatalf("clarifications = %d", len(msgs))
	}
	body := text(t, msgs[0].Data)
	if !strings.Contains(body, "| I won't back Kennedy") {
		t.Errorf("the clarification does not quote what was read:\n%s", body)
	}
	if !strings.Contains(body, "negation") {
		t.Errorf("the clarification does not say why:\n%s", body)
	}
	got := taps(t, body, "ballots+v-"+tok+"@example.org")
	if strings.Join(got, ",") != "1,2,NONE" {
		t.Fatalf("one-tap answers = %q, want 1,2,NONE", got)
	}
	// Tapping one sends exactly that answer, and it counts.
	if res := w.handle(w.replyAt("carol@example.net", "v-"+tok, time.Now(), got[0])); res.Outcome != OutcomeCounted {
		t.Fatalf("a tapped answer: %q", res.Outcome)
	}
}

func TestBallotsCarryOneTapAnswers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-07", "alice@example.net")
	var found bool
	for _, msg := range w.rendered(templates.KindBallot) {
		m, err := message.Parse(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		if msg.To != "alice@example.net" || !strings.Contains(m.Subject, "MA-07") {
			continue
		}
		reply := "ballots+v-" + tok + "@example.org"
		if got := strings.Join(taps(t, m.Text, reply), ","); got != "YES,NO" {
			t.Errorf("text one-tap answers = %q, want YES,NO", got)
		}
		html := htmlpkg.UnescapeString(m.HTML)
		if got := strings.Join(taps(t, html, reply), ","); got != "YES,NO" {
			t.Errorf("HTML one-tap answers = %q, want YES,NO", got)
		}
		found = true
	}
	if !found {
		t.Fatal("no ballot rendered for alice")
	}
}

func TestReceiptSaysHowANearMissWasRead(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-SEN", "alice@example.net")
	if res := w.handle(w.replyAt("alice@example.net", "v-"+tok, time.Now(), "Kenedy")); res.Outcome != OutcomeCounted {
		t.Fatalf("outcome %q", res.Outcome)
	}
	msgs := w.rendered(templates.KindReceipt)
	if len(msgs) != 1 {
		t.Fatalf("receipts = %d", len(msgs))
	}
	body := text(t, msgs[0].Data)
	if !strings.Contains(body, `We read "kenedy" as Joe Kennedy`) || !strings.Contains(body, "2. Joe Kennedy") {
		t.Fatalf("the receipt does not say what was read:\n%s", body)
	}
}

func TestAReplyAfterTheCloseGivesTheResult(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-07", "alice@example.net")
	w.handle(w.replyAt("alice@example.net", "v-"+tok, time.Now(), "YES"))
	if _, err := w.st.CloseRace(w.ctx, "MA-07"); err != nil {
		t.Fatal(err)
	}
	if res := w.handle(w.replyAt("alice@example.net", "v-"+tok, time.Now(), "NO")); res.Outcome != OutcomeClosed {
		t.Fatalf("outcome %q, want closed", res.Outcome)
	}
	msgs := w.rendered(templates.KindClosed)
	if len(msgs) != 1 {
		t.Fatalf("closed answers = %d", len(msgs))
	}
	body := text(t, msgs[0].Data)
	if !strings.Contains(body, "The result: endorsed: Ayanna Pressley") || !strings.Contains(body, "1 of 4 eligible members voted") {
		t.Fatalf("the answer does not give the result:\n%s", body)
	}
}

func TestTheResultsThankOnlyThoseWhoVoted(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, tok := w.ballot("MA-07", "alice@example.net")
	w.handle(w.replyAt("alice@example.net", "v-"+tok, time.Now(), "YES"))
	if _, err := w.st.CloseRace(w.ctx, "MA-07"); err != nil {
		t.Fatal(err)
	}
	thanked := map[string]bool{}
	for _, msg := range w.rendered(templates.KindAnnouncement) {
		thanked[msg.To] = strings.Contains(text(t, msg.Data), "Thank you for your vote.")
	}
	if !thanked["alice@example.net"] || thanked["bob@example.net"] || len(thanked) != 4 {
		t.Fatalf("thanked for their vote: %v; want Alice (who voted) only, of the four members", thanked)
	}
}
