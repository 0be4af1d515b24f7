package message

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFastMatchesAgreeWithTheRegexps: the subjects and texts of every
// message of the corpus, and cases written to sit on each branch's edge,
// get the same answer from matchesBounceSubject and matchesChallenge as
// from the regular expressions they stand in for.
func TestFastMatchesAgreeWithTheRegexps(t *testing.T) {
	t.Parallel()
	cases := []string{"", "Re: Your ballot", "Undelivered Mail Returned to Sender", "RETURNED TO SENDER", "Return to sender",
		"Mail delivery failed: returning message to sender", "Delivery Status Notification (Failure)", "Non-Delivery Report",
		"non delivery", "NonDelivery", "Couldn't be delivered", "Mailbox is full", "mailbox  full", "QUOTA exceeded",
		"Warning: could not send message for past 4 hours", "Unzustellbar: Ihr Stimmzettel", "Nicht zugestellt", "non remis",
		"No se puede entregar", "onbestelbaar", "Your message you sent", "bounced", "errors", "Rejected", "rejected:",
		"delivery  report", "Delivery report", "Please verify you're human", "I use SpamArrest to protect", "ſpam arrest",
		"Your message is being held pending verification", "challenge-response", "Boxbe", "real person", "prove you are human",
		"Sent from my iPhone", "Ünzustellbar", "Mailbox ﬁll", "K", "deliveryerror"}
	if _, err := os.Stat(corpusDir()); err == nil {
		filepath.WalkDir(corpusDir(), func(f string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			raw, err := os.ReadFile(f)
			if err != nil || !looksLikeMail(raw) {
				return nil
			}
			if m, err := Parse(raw); err == nil {
				cases = append(cases, m.Subject, m.Subject+"\n"+m.Text)
			}
			return nil
		})
		if len(cases) < 1000 {
			t.Fatalf("only %d cases read from the corpus at %s", len(cases), corpusDir())
		}
	}
	for _, c := range cases {
		if got, want := matchesBounceSubject(c), bounceSubject.MatchString(c); got != want {
			t.Errorf("bounce subject %q: fast %v, regexp %v", clipForLog(c), got, want)
		}
		if got, want := matchesChallenge(c), challengeText.MatchString(c); got != want {
			t.Errorf("challenge %q: fast %v, regexp %v", clipForLog(c), got, want)
		}
	}
}

func clipForLog(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return strings.ReplaceAll(s, "\n", `\n`)
}
