package inbound

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkHandleReply is the whole of handling one member's reply on a
// real PostgreSQL: parse, classify, find the ballot by its token, read the
// answer, record the vote, enqueue the receipt and advance the mailbox
// cursor, in one transaction. It reports replies a second (DESIGN.md:
// thousands of replies a minute on one small machine).
func BenchmarkHandleReply(b *testing.B) {
	w := newWorld(b)
	// As serve logs: one JSON line per message (here to nowhere).
	w.p.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	_, tok := w.ballot("MA-SEN", "alice@example.net")
	styles := map[string]string{
		"plain, top-posted": "Content-Type: text/plain; charset=utf-8\r\n\r\n2\r\n\r\nOn Mon, 23 Nov 2026 at 09:00, Endorsement ballots <ballots@example.org> wrote:\r\n" +
			"> Voting is open on a national endorsement in the U.S. Senate, Massachusetts race (MA-SEN).\r\n> 1. Ed Markey\r\n> 2. Joe Kennedy\r\n>\r\n> Ballot code: " + tok + "\r\n",
		"gmail, text and html": "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"000000000000a1b2\"\r\n\r\n" +
			"--000000000000a1b2\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\n\r\nJoe Kennedy\r\n\r\nOn Mon, Nov 23, 2026 at 9:00 AM Endorsement ballots <ballots@example.org> wrote:\r\n\r\n> Reply to this email with the NUMBER or NAME of one candidate\r\n> Ballot code: " + tok + "\r\n\r\n" +
			"--000000000000a1b2\r\nContent-Type: text/html; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<div dir=3D\"ltr\">Joe Kennedy</div><br><div class=3D\"gmail_quote\"><div dir=3D\"ltr\" class=3D\"gmail_attr\">On Mon, Nov 23, 2026 at 9:00 AM Endorsement ballots wrote:<br></div>" +
			"<blockquote class=3D\"gmail_quote\">Reply to this email with the NUMBER or NAME of one candidate<br>Ballot code: " + tok + "</blockquote></div>\r\n--000000000000a1b2--\r\n",
	}
	for name, body := range styles {
		b.Run(name, func(b *testing.B) {
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				raw := fmt.Appendf(nil, "From: Alice A <alice@example.net>\r\nTo: ballots+v-%s@example.org\r\nSubject: Re: Your ballot: U.S. Senate, Massachusetts (MA-SEN)\r\n"+
					"Message-ID: <bench-%d-%d@client.example>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n%s", tok, start.UnixNano(), i, body)
				if res := w.handle(raw); res.Outcome != "counted" {
					b.Fatalf("outcome %q, want counted", res.Outcome)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "replies/s")
		})
	}
}
