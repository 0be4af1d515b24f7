package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/ballotd/ballotd/ballots"
)

// ballotd delivery counts each recipient domain class's mail with the
// reason the receiving side gave, read from its RFC 3463 enhanced code or
// its words; --wave keeps to one wave's mail, and a wave that does not
// exist is an error that names it.
func TestDeliveryCommandByDomain(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.openRace("alice@gmail.com,Alice,MA-07\nbob@hotmail.com,Bob,MA-02\ncarol@example.net,Carol,MA-03\ndan@Yahoo.com,Dan,MA-04\n", "MA-SEN", "Ed Markey")
	h.hub.SetRcptFault(func(rcpt string) *smtp.SMTPError {
		switch rcpt {
		case "bob@hotmail.com":
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "user unknown"}
		case "carol@example.net":
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted, come back later"}
		}
		return nil
	})
	h.ballotd("send")

	for _, args := range [][]string{{"delivery", "--json"}, {"delivery", "--json", "--wave", "March"}} {
		var got ballots.DomainDeliveries
		if err := json.Unmarshal([]byte(h.ballotd(args...)), &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"gmail":     "sent 1 deferred 0 bounced 0 []",
			"microsoft": "sent 0 deferred 0 bounced 1 [{unknown_mailbox 1}]",
			"yahoo":     "sent 1 deferred 0 bounced 0 []",
			"other":     "sent 0 deferred 1 bounced 0 [{greylisting 1}]",
			"total":     "sent 2 deferred 1 bounced 1 [{unknown_mailbox 1} {greylisting 1}]",
		}
		seen := map[string]string{}
		for _, d := range append(got.Domains, got.Total) {
			seen[d.Class] = strings.TrimSpace(strings.Join([]string{"sent", itoa(d.Sent), "deferred", itoa(d.Deferred), "bounced", itoa(d.Bounced), reasonsOf(d.Reasons)}, " "))
		}
		for class, w := range want {
			if seen[class] != w {
				t.Errorf("%v: %s: %q; want %q", args, class, seen[class], w)
			}
		}
		if len(seen) != len(want) {
			t.Errorf("%v: classes %v; want %v", args, seen, want)
		}
	}
	text := h.ballotd("delivery")
	for _, want := range []string{"DOMAINS", "microsoft  0", "unknown_mailbox 1", "greylisting 1"} {
		if !strings.Contains(text, want) {
			t.Errorf("delivery listing lacks %q:\n%s", want, text)
		}
	}
	if _, errOut, code := h.try("delivery", "--wave", "April"); code == 0 || !strings.Contains(errOut, `"April"`) {
		t.Errorf("delivery --wave April: exit %d, %q; want an error naming the wave", code, errOut)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func reasonsOf(rs []ballots.ReasonCount) string {
	parts := []string{}
	for _, r := range rs {
		parts = append(parts, "{"+r.Reason+" "+itoa(r.Count)+"}")
	}
	return "[" + strings.Join(parts, " ") + "]"
}
