package mailer_test

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

// The digest, rendered from its real outbox row: a subject that says what
// needs doing and names the organisation; the candidates new since the
// last digest with their status (staff's own additions said to be so),
// each wave named once; the vetting queue with the line that settles each
// (a one-tap reply in the HTML); times in the staff's zone, in words.
func TestDigestSubjectSectionsLocalTimes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.st.ImportGroups(ctx, strings.NewReader("name,state,district,leader_email,leader_name\n"+
		"Indivisible Somerville,MA,MA-07,lead@somerville.example,Sam\n")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := f.st.CreateWave(ctx, ballots.Wave{Name: "Spring", NominationsClose: now.Add(time.Hour), VotingOpen: now.Add(time.Hour),
		VotingClose: now.Add(48 * time.Hour), Threshold: 0.6}); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for _, n := range []struct{ name, race string }{{"Ayanna Pressley", "MA-07"}, {"Liz Warren", "MA-SEN"}} {
		if err := f.st.InTx(ctx, func(tx *sqlx.Tx) error {
			res, err := ballots.Nominate(ctx, tx, ballots.NominationInput{Sender: "lead@somerville.example", Candidate: n.name,
				Race: n.race, Reason: "Good."}, now)
			if err == nil && !res.Accepted {
				err = fmt.Errorf("nomination of %s refused: %v", n.name, res.Problems)
			}
			ids[n.name] = res.CandidateID
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.st.Vet(ctx, ids["Liz Warren"], true, ""); err != nil {
		t.Fatal(err)
	}
	if _, sent, err := f.st.SendDigest(ctx, []string{"staff@example.org"}, 0); err != nil || !sent {
		t.Fatalf("send digest: %v %v", sent, err)
	}
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	r := &mailer.Renderer{Store: f.st, Templates: tpl, Tokens: f.toks, ID: mailer.Identity{Local: "ballots", Domain: "example.org",
		FromName: "Working Families", Org: templates.Org{Name: "Working Families"}, StaffTZ: chicago}}
	rows, err := f.st.ClaimOutbox(ctx, 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for _, row := range rows {
		if row.Kind == templates.KindDigest {
			var buf bytes.Buffer
			m, err := r.Render(ctx, row, &buf)
			if err != nil {
				t.Fatal(err)
			}
			data = bytes.Clone(m.Data)
		}
	}
	if data == nil {
		t.Fatal("no digest in the outbox")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if want := "1 to vet, 1 race open — Working Families"; err != nil || subject != want {
		t.Errorf("subject %q (%v), want %q", subject, err, want)
	}
	text, html, _ := checkChart(t, data, 1)
	text = strings.ReplaceAll(text, "\r\n", "\n")

	var closes time.Time
	if err := testenv.DB(t, f.st).Get(&closes, `SELECT voting_close FROM waves WHERE name = 'March'`); err != nil {
		t.Fatal(err)
	}
	ayanna, liz := ids["Ayanna Pressley"], ids["Liz Warren"]
	for _, w := range []string{
		"Staff digest for Working Families, ",
		"NEW CANDIDATES SINCE THE LAST DIGEST\n\nMarch:\n",
		": added by staff, approved",
		fmt.Sprintf("#%d Ayanna Pressley, MA-07, by Indivisible Somerville: waiting for vetting", ayanna),
		fmt.Sprintf("#%d Liz Warren, MA-SEN, by Indivisible Somerville: approved", liz),
		fmt.Sprintf("VETTING QUEUE (reply to this mail with the line that settles each; for REJECT, write the reason after the number)\n\nSpring:\n  #%d Ayanna Pressley, MA-07, by Indivisible Somerville\n      1 group\n      APPROVE %d   or   REJECT %d reason\n", ayanna, ayanna, ayanna),
		"closes " + closes.In(chicago).Format("Monday 2 January 2006, 3:04 pm") + " Central time",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("text lacks %q:\n%s", w, text)
		}
	}
	if strings.Contains(text, "(March)") || strings.Contains(text, "(Spring)") || strings.Count(text, "Spring:") != 2 || strings.Count(text, "March:") != 1 {
		t.Errorf("the text repeats a wave on its lines, or names it more than once a section:\n%s", text)
	}
	if strings.Contains(text, "UTC") || !strings.Contains(text, "Central time") {
		t.Errorf("the text gives times in UTC, not the staff's zone:\n%s", text)
	}
	for _, w := range []string{
		fmt.Sprintf(`body=APPROVE%%20%d"`, ayanna), fmt.Sprintf(`body=REJECT%%20%d%%20reason"`, ayanna),
		`href="mailto:ballots&#43;s-`, "<strong>waiting for vetting</strong>", "Central time",
	} {
		if !strings.Contains(html, w) {
			t.Errorf("HTML lacks %q:\n%s", w, html)
		}
	}
}
