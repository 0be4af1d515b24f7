package mailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/race"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/templates"
)

// ErrTransient marks a render failure that may pass (the database was
// away): the row is deferred and tried again, never failed for it.
var ErrTransient = errors.New("temporary failure")

// Identity is the ballot mailbox ballotd sends as and receives at.
type Identity struct {
	Local    string // local part, "ballots"
	Domain   string // mail domain
	FromName string // display name of From
	// PublicURL is the base URL of the HTTP side ("" for none): member mail
	// then also carries the RFC 8058 one-click unsubscribe link.
	PublicURL string
	// Org is the organisation ballotd sends for: member mail names it in
	// its subject and footer, the digest in its subject (zero: none).
	Org templates.Org
	// StaffTZ is the zone of the times in mail to staff (nil: UTC).
	StaffTZ *time.Location
}

// ResultsURL is where serve shows the results page with its receipt check,
// "" without a PublicURL.
func (id Identity) ResultsURL() string {
	if id.PublicURL == "" {
		return ""
	}
	return id.PublicURL + "/results"
}

// Address returns the mailbox's address with a plus tag ("" for none).
func (id Identity) Address(tag string) string {
	if tag == "" {
		return id.Local + "@" + id.Domain
	}
	return id.Local + "+" + tag + "@" + id.Domain
}

// Rendered is one message ready to send.
type Rendered struct {
	From      string // envelope sender (VERP)
	To        string
	MessageID string
	Data      []byte
}

// Renderer turns outbox rows into messages. Race data is loaded once per
// race and kept: a race's candidates are fixed when it opens and its tally
// when it closes.
type Renderer struct {
	Store     *ballots.Store
	Templates *templates.Set
	Tokens    *token.Key
	ID        Identity
	Now       func() time.Time
	// DKIM, when set, signs every message.
	DKIM *DKIM
	// NoStamps renders every message from its templates, never from a
	// race's stamp (templates.Stamp); for comparing the two.
	NoStamps bool

	mu     sync.Mutex
	sheets map[sheetKey]*sheet

	// footers are the footer stamps by whom they are for and district
	// (nil: that footer is rendered each time).
	footers map[footerKey]*templates.FooterStamp

	fixed     sync.Once
	fromHdr   string // the From header, the same on every message
	replyName string // the display name part of Reply-To, formatted (formatPhrase)
	bufs      sync.Pool
}

// sheet is a race's sheet with its template data, built once.
type sheet struct {
	ballots.RaceSheet
	race templates.Race
	// open is race with its rule for an open race: only the ballot and the
	// reminder have it.
	open       templates.OpenRace
	candidates []templates.Candidate
	// stamps are the race's ballot and reminder with the member's name and
	// code as holes, made on first use (nil: the kind cannot be stamped).
	stamps map[stampKey]*templates.Stamp
}

type stampKey struct {
	template string
	named    bool
}

// bodies is a pair of pooled buffers for the text and HTML parts.
type bodies struct{ text, html bytes.Buffer }

type sheetKey struct {
	race   int64
	closed bool
}

func (r *Renderer) sheet(ctx context.Context, raceID int64, needTally bool) (*sheet, error) {
	key := sheetKey{raceID, needTally}
	r.mu.Lock()
	sh, ok := r.sheets[key]
	r.mu.Unlock()
	if ok {
		return sh, nil
	}
	rs, err := r.Store.RaceSheet(ctx, raceID)
	if err != nil {
		if errors.Is(err, ballots.ErrNotFound) {
			return nil, err
		}
		// The database was away or the context ended: try again later.
		return nil, fmt.Errorf("%w: %w", ErrTransient, err)
	}
	if needTally && rs.Tally == nil {
		return nil, fmt.Errorf("race %s has no tally yet", rs.Race.Code)
	}
	sh = &sheet{RaceSheet: rs, race: raceData(rs), candidates: candidateData(rs.Candidates)}
	sh.open = templates.OpenRace{Race: sh.race, Rule: ballots.RuleLines(rs.Race.Threshold, rs.Race.MinTurnout, rs.Race.VotingClose, rs.Race.State)}
	if u := r.ID.ResultsURL(); u != "" && rs.Questionnaires > 0 {
		sh.open.Answers = u + "#questionnaires"
	}
	r.mu.Lock()
	if r.sheets == nil {
		r.sheets = map[sheetKey]*sheet{}
	}
	r.sheets[key] = sh
	r.mu.Unlock()
	return sh, nil
}

func raceData(sh ballots.RaceSheet) templates.Race {
	r := sh.Race
	title := r.Office.Title() + ", " + race.StateName(r.State)
	if r.Office == race.House {
		// "U.S. House, Massachusetts district 7": the code follows in
		// parentheses wherever a title is shown, so it is not repeated.
		title = r.Office.Title() + ", " + race.StateName(r.State) + " " + districtWords(r.Code)
	}
	return templates.Race{
		Code:         r.Code,
		Title:        title,
		Close:        r.VotingClose.In(ballots.StateZone(r.State)),
		ThresholdPct: fmt.Sprintf("%g %%", r.Threshold*100),
	}
}

// staffTimes puts the digest's times in the zone staff read them in
// (Identity.StaffTZ): templates write a time in its own zone.
func (r *Renderer) staffTimes(d *templates.Digest) {
	loc := r.ID.StaffTZ
	if loc == nil {
		loc = time.UTC
	}
	d.At = d.At.In(loc)
	if d.Since != nil {
		since := d.Since.In(loc)
		d.Since = &since
	}
	for i := range d.Open {
		d.Open[i].Closes = d.Open[i].Closes.In(loc)
	}
	for i := range d.Sending {
		d.Sending[i].Out = d.Sending[i].Out.In(loc)
	}
}

// orgSubject is a member mail's subject with the organisation after it,
// "Your ballot: U.S. Senate, Massachusetts (MA-SEN) — Working Families":
// the subject still starts with what the mail is; without an
// organisation it is as it was.
func orgSubject(subject, org string) string {
	if org = strings.Join(strings.Fields(org), " "); org == "" {
		return subject
	}
	return subject + " — " + org
}

// districtWords names a House district: "district 7" for MA-07,
// "at-large" for AK-AL.
func districtWords(code string) string {
	_, d, _ := strings.Cut(code, "-")
	if strings.EqualFold(d, "AL") {
		return "at-large"
	}
	return "district " + strings.TrimLeft(d, "0")
}

func candidateData(cs []ballots.Candidate) []templates.Candidate {
	out := make([]templates.Candidate, len(cs))
	for i, c := range cs {
		out[i] = templates.Candidate{Number: int(c.Number.Int64), Name: c.Name, Bio: c.Bio, Groups: c.Groups}
	}
	return out
}

// stampFor is the stamp a message of kind k to a member called name is
// filled from, or nil when it is rendered: only for the kinds sent to every
// member of a race (kind.stamp), and plain names.
func (r *Renderer) stampFor(sh *sheet, k kind, template, name string) *templates.Stamp {
	if r.NoStamps || k.stamp == nil || !templates.PlainName(name) {
		return nil
	}
	return r.stamp(sh, k, template, name != "")
}

// stamp returns sh's stamp of template for a member with or without a
// name, made from k's stamp data on first use (nil when it cannot be
// stamped, and each message is rendered).
func (r *Renderer) stamp(sh *sheet, k kind, template string, named bool) *templates.Stamp {
	key := stampKey{template, named}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := sh.stamps[key]; ok {
		return st
	}
	st, _ := r.Templates.Stamp(template, named, func(name, code string) any { return k.stamp(r, sh, name, code) })
	if sh.stamps == nil {
		sh.stamps = map[stampKey]*templates.Stamp{}
	}
	sh.stamps[key] = st
	return st
}

type footerKey struct{ forWhom, district string }

// footerStamp is the stamp of foot's footer, made on first use from foot
// with its unsubscribe token as the hole; nil when the footer is rendered
// (NoStamps, an operator's footer).
func (r *Renderer) footerStamp(foot templates.Footer) *templates.FooterStamp {
	if r.NoStamps {
		return nil
	}
	key := footerKey{foot.For, foot.District}
	r.mu.Lock()
	defer r.mu.Unlock()
	if fs, ok := r.footers[key]; ok {
		return fs
	}
	fs, _ := r.Templates.StampFooter(func(tok string) templates.Footer {
		f := foot
		f.Address = r.ID.Address(token.Unsubscribe + "-" + tok)
		if f.Link != "" {
			f.Link = r.ID.PublicURL + "/unsubscribe?t=" + tok
		}
		return f
	})
	if r.footers == nil {
		r.footers = map[footerKey]*templates.FooterStamp{}
	}
	r.footers[key] = fs
	return fs
}

// staffReplyTo is the Reply-To of mail to staff: a staff tag whose token
// names this outbox row, so a reply's commands can be checked as answers to
// something we sent (inbound.Processor.staff).
func (r *Renderer) staffReplyTo(rowID int64) string {
	return r.ID.Address(token.Staff + "-" + r.Tokens.Make(token.Staff, rowID, nil))
}

// Render renders row into buf (reset first) and returns the message.
func (r *Renderer) Render(ctx context.Context, row ballots.OutboxRow, buf *bytes.Buffer) (Rendered, error) {
	r.fixed.Do(func() {
		r.fromHdr = FormatAddress(r.ID.FromName, r.ID.Address(""))
		r.replyName = formatPhrase(r.ID.FromName)
	})
	b, _ := r.bufs.Get().(*bodies)
	if b == nil {
		b = new(bodies)
	}
	defer r.bufs.Put(b)
	text, html := &b.text, &b.html
	text.Reset()
	html.Reset()
	k, ok := kinds[row.Kind]
	if !ok {
		return Rendered{}, fmt.Errorf("outbox %d: unknown kind %q", row.ID, row.Kind)
	}
	payload, err := k.build.decode(row.Data)
	if err != nil {
		return Rendered{}, fmt.Errorf("outbox %d: %s data: %w", row.ID, row.Kind, err)
	}
	c := &call{ctx: ctx, r: r, row: row, sh: &sheet{}, reply: r.ID.Address("")}
	if row.BallotID.Valid {
		if len(row.Nonce) == 0 {
			// The ballot is not there (no foreign key checks it since
			// migration 0018): a token without its nonce could never be
			// checked, so the mail does not go out.
			return Rendered{}, fmt.Errorf("outbox %d: ballot %d not found", row.ID, row.BallotID.Int64)
		}
		c.code = r.Tokens.Make(token.Ballot, row.BallotID.Int64, row.Nonce)
		c.reply = r.ID.Address(token.Ballot + "-" + c.code)
	}
	if k.staff {
		c.reply = r.staffReplyTo(row.ID)
	}
	msgToken := r.Tokens.Make(token.MessageID, row.ID, nil)
	c.msgID = msgToken + "@" + r.ID.Domain
	if row.RaceID.Valid {
		if c.sh, err = r.sheet(ctx, row.RaceID.Int64, k.tally); err != nil {
			return Rendered{}, fmt.Errorf("outbox %d: %w", row.ID, err)
		}
	}
	data, err := k.build.build(c, payload)
	if err != nil {
		return Rendered{}, fmt.Errorf("outbox %d: %w", row.ID, err)
	}
	template := k.templateOf(row.Kind)
	var subject string
	if st := r.stampFor(c.sh, k, template, row.MemberName); st != nil {
		subject = st.Fill(row.MemberName, c.code, text, html)
	} else if subject, err = r.Templates.Render(template, data, text, html); err != nil {
		return Rendered{}, fmt.Errorf("outbox %d: %w", row.ID, err)
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	headers := []Header{
		{"From", r.fromHdr},
		{"To", FormatAddress(row.MemberName, row.Recipient)},
		{"Reply-To", r.replyName + formatAddrSpec(c.reply)},
		{"Date", dateHeader(now())},
		{"Message-ID", "<" + c.msgID + ">"},
		// Exchange: no out-of-office or read receipts back to us.
		{"X-Auto-Response-Suppress", "All"},
	}
	if k.answers {
		// RFC 3834 §5: an automatic response carries Auto-Submitted: auto-replied.
		headers = append(headers, Header{"Auto-Submitted", "auto-replied"})
		if t, ok := payload.(interface{ Parent() string }); ok && t.Parent() != "" {
			headers = append(headers, Header{"In-Reply-To", "<" + strings.Trim(t.Parent(), "<>") + ">"})
		}
	} else {
		// RFC 3834 §5: generated, not a response; responders should stay silent.
		headers = append(headers, Header{"Auto-Submitted", "auto-generated"})
	}
	if row.MemberID.Valid {
		// RFC 2369 and RFC 8058: a member can leave from any message, by
		// the header and by the footer that says the same in words.
		ut := r.Tokens.Make(token.Unsubscribe, row.MemberID.Int64, nil)
		foot := templates.Footer{Org: r.ID.Org, For: k.footer, District: row.MemberDistrict,
			Address: r.ID.Address(token.Unsubscribe + "-" + ut)}
		lu := "<mailto:" + foot.Address + ">"
		if r.ID.PublicURL != "" {
			foot.Link = r.ID.PublicURL + "/unsubscribe?t=" + ut
			lu += ", <" + foot.Link + ">"
			headers = append(headers, Header{"List-Unsubscribe", lu}, Header{"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"})
		} else {
			headers = append(headers, Header{"List-Unsubscribe", lu})
		}
		if fs := r.footerStamp(foot); fs != nil {
			fs.Fill(ut, text, html)
		} else if err := r.Templates.RenderFooter(foot, text, html); err != nil {
			return Rendered{}, fmt.Errorf("outbox %d: %w", row.ID, err)
		}
		subject = orgSubject(subject, r.ID.Org.Name)
	}
	buf.Reset()
	Compose(buf, headers, subject, text.Bytes(), html.Bytes(), boundaryFor(msgToken), c.inline...)
	if r.DKIM != nil {
		sig, err := r.DKIM.sign(buf.Bytes())
		if err != nil {
			return Rendered{}, fmt.Errorf("outbox %d: %w", row.ID, err)
		}
		// The signature goes first; the signed message follows unchanged.
		n := buf.Len()
		buf.Write(sig)
		b := buf.Bytes()
		copy(b[len(sig):], b[:n])
		copy(b, sig)
	}
	return Rendered{
		From:      r.ID.Address(token.Bounce + "-" + r.Tokens.Make(token.Bounce, row.ID, nil)),
		To:        row.Recipient,
		MessageID: c.msgID,
		Data:      buf.Bytes(),
	}, nil
}
