package inbound

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/templates"
)

// Outcomes of nominations, vetting and sign-up messages.
const (
	OutcomeNominated    = "nominated"
	OutcomeRenominated  = "nomination-updated"
	OutcomeRejected     = "rejected"
	OutcomeWithdrawn    = "withdrawn"
	OutcomeFormSent     = "form-sent"
	OutcomeVetted       = "vetted"
	OutcomeSignUp       = "sign-up"
	OutcomeConfirmed    = "confirmed"
	OutcomeUnsubscribed = "unsubscribed"
)

// threaded is an answer's data with the Message-ID it answers (read by
// the mailer's answer data for In-Reply-To).
type threaded[T any] struct {
	Data      T
	InReplyTo string
}

// MarshalJSON flattens the data and the thread reference into one object.
func (t threaded[T]) MarshalJSON() ([]byte, error) {
	return marshalWith(t.Data, "in_reply_to", t.InReplyTo)
}

// front handles the messages of the front half of the process:
// nominations, staff commands, sign-up, confirmation and unsubscribe.
func (p *Processor) front(ctx context.Context, tx *sqlx.Tx, id int64, m *Message, class Class) (ballots.Outcome, bool, error) {
	out := ballots.Outcome{Class: string(class)}
	switch class {
	case ClassNomination:
		return p.nominate(ctx, tx, id, m, out)
	case ClassStaff:
		return p.staff(ctx, tx, id, m, out)
	case ClassJoin:
		return p.join(ctx, tx, id, m, out)
	case ClassConfirm:
		return p.confirm(ctx, tx, id, m, out)
	case ClassUnsubscribe:
		return p.unsubscribe(ctx, tx, id, m, out)
	}
	return out, false, fmt.Errorf("front: class %s", class)
}

func (p *Processor) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// enqueueTo adds one answer to m's sender.
func enqueueTo(ctx context.Context, tx *sqlx.Tx, kind, to string, inboundID int64, m *Message, data any) error {
	_, err := ballots.Enqueue(ctx, tx, ballots.Mail{Kind: kind, Recipient: to, InboundID: inboundID, Data: threaded[any]{data, m.MessageID}})
	return err
}

var withdrawLine = regexp.MustCompile(`(?im)^\s*withdraw\s+(?:nomination\s+)?(?:number\s+)?#?\s*(\d{1,12})\b`)

func (p *Processor) nominate(ctx context.Context, tx *sqlx.Tx, id int64, m *Message, out ballots.Outcome) (ballots.Outcome, bool, error) {
	if m.From == "" {
		out.Outcome, out.Quarantined, out.Detail = OutcomeQuarantined, true, "nomination without a sender address"
		return out, false, nil
	}
	if s := strings.ToLower(strings.Trim(strings.TrimSpace(m.Subject), ".!?")); s == "form" || s == "blank form" || (s == "nomination form" && strings.TrimSpace(ReplyText(m)) == "") {
		out.Outcome = OutcomeFormSent
		return out, true, enqueueTo(ctx, tx, ballots.MailBlankForm, m.From, id, m, templates.BlankForm{Blank: BlankForm})
	}
	if ws := withdrawLine.FindAllStringSubmatch(ReplyText(m), -1); len(ws) > 0 {
		var details []string
		for _, w := range ws {
			n, _ := strconv.ParseInt(w[1], 10, 64)
			r, probs, err := ballots.Withdraw(ctx, tx, m.From, n)
			if err != nil {
				return out, false, err
			}
			if len(probs) > 0 {
				details = append(details, strings.Join(probs, "; "))
				err = enqueueTo(ctx, tx, ballots.MailNominationProblems, m.From, id, m,
					templates.NominationProblems{Problems: probs, Form: ReplyText(m), Blank: BlankForm})
			} else {
				details = append(details, fmt.Sprintf("nomination %d withdrawn", n))
				err = enqueueTo(ctx, tx, ballots.MailNominationConfirm, m.From, id, m,
					templates.NominationConfirm{Number: r.ID, Group: r.Group, Candidate: r.Candidate, Race: r.Race, Withdrawn: true})
			}
			if err != nil {
				return out, false, err
			}
		}
		out.Outcome, out.Detail = OutcomeWithdrawn, strings.Join(details, "\n")
		return out, true, nil
	}
	form, probs := ReadForm(m)
	in := ballots.NominationInput{Sender: m.From, Group: form.Group, Candidate: form.Candidate, Race: form.Race,
		Reason: form.Reason, FormText: form.Text, InboundID: id}
	for _, pr := range probs {
		in.Problems = append(in.Problems, pr.String())
	}
	res, err := ballots.Nominate(ctx, tx, in, p.now())
	if err != nil {
		return out, false, err
	}
	if !res.Accepted {
		out.Outcome, out.Detail = OutcomeRejected, strings.Join(res.Problems, "\n")
		return out, true, enqueueTo(ctx, tx, ballots.MailNominationProblems, m.From, id, m,
			templates.NominationProblems{Number: res.ID, Problems: res.Problems, Form: form.Text, Blank: BlankForm})
	}
	out.Outcome, out.Detail = OutcomeNominated, fmt.Sprintf("nomination %d: %s nominates %s for %s", res.ID, res.Group, res.Candidate, res.Race)
	if res.Updated {
		out.Outcome = OutcomeRenominated
	}
	err = enqueueTo(ctx, tx, ballots.MailNominationConfirm, m.From, id, m, templates.NominationConfirm{Number: res.ID, Group: res.Group,
		Candidate: res.Candidate, Race: res.Race, Groups: res.Groups, Updated: res.Updated})
	if err != nil || res.Updated {
		return out, err == nil, err
	}
	vs, err := ballots.VettingList(ctx, tx)
	if err != nil {
		return out, false, err
	}
	notice := templates.VettingNotice{Number: res.ID, CandidateID: res.CandidateID, Candidate: res.Candidate, Race: res.Race,
		Group: res.Group, Groups: res.Groups, Reason: form.Reason}
	for _, v := range vs {
		if v.ID == res.CandidateID {
			notice.Status, notice.Conflicts = v.Status, v.Conflicts
		}
	}
	for _, s := range p.Staff {
		if _, err := ballots.Enqueue(ctx, tx, ballots.Mail{Kind: ballots.MailVettingNotice, Recipient: s, InboundID: id, Data: notice}); err != nil {
			return out, false, err
		}
	}
	return out, true, nil
}

// releaseCommand is "RELEASE MA-07": send a held race's results.
var releaseCommand = regexp.MustCompile(`(?i)^\s*release\s+([a-z]{2}-[a-z0-9]{1,3})\s*[.!]?\s*$`)

var staffCommand = regexp.MustCompile(`(?i)^\s*(approve|reject)\s+#?(\d{1,12})\b[\s:,.-]*(.*)$`)

func (p *Processor) isStaff(addr string) bool {
	for _, s := range p.Staff {
		if strings.EqualFold(s, addr) {
			return true
		}
	}
	return false
}

// staff runs the commands of a staff member's reply to a vetting notice.
// The sender must be a BALLOTD_STAFF address and the address it was sent
// to must carry a staff token of one of our vetting notices or answers.
func (p *Processor) staff(ctx context.Context, tx *sqlx.Tx, id int64, m *Message, out ballots.Outcome) (ballots.Outcome, bool, error) {
	if !p.isStaff(m.From) {
		out.Outcome, out.Quarantined, out.Detail = OutcomeQuarantined, true, fmt.Sprintf("staff command from %q, not a staff address", m.From)
		return out, false, nil
	}
	tag, _ := FindTag(m, p.Box)
	oid, err := p.Tokens.Open(ballots.TokenStaff, tag.Token)
	valid := err == nil
	if valid {
		kind, err := ballots.OutboxKind(ctx, tx, oid)
		if err != nil && !errors.Is(err, ballots.ErrNotFound) {
			return out, false, err
		}
		switch kind {
		case ballots.MailVettingNotice, ballots.MailStaffAnswer, ballots.MailVetting, ballots.MailDigest, ballots.MailHeld:
			valid = true
		}
	}
	ans := templates.StaffAnswer{Results: []string{}}
	if !valid {
		ans.Results = append(ans.Results, "This address is not a staff command address: reply to a vetting notice, a digest or a results notice.")
		ans.Help = true
		out.Outcome, out.Quarantined, out.Detail = OutcomeUnmatched, true, "staff command to an unknown staff token"
		return out, true, enqueueTo(ctx, tx, ballots.MailStaffAnswer, m.From, id, m, ans)
	}
	for _, line := range strings.Split(ReplyText(m), "\n") {
		if rc := releaseCommand.FindStringSubmatch(line); rc != nil {
			t, err := ballots.ReleaseResultsTx(ctx, tx, rc[1], ballots.ActorStaff)
			switch {
			case errors.Is(err, ballots.ErrNotFound) || errors.Is(err, ballots.ErrNotHeld) || errors.Is(err, ballots.ErrRaceState):
				ans.Results = append(ans.Results, fmt.Sprintf("RELEASE %s: not done: %v", strings.ToUpper(rc[1]), err))
			case err != nil:
				// A malformed code is the sender's mistake, not ours.
				if _, perr := ballots.ParseRaceCode(rc[1]); perr != nil {
					ans.Results = append(ans.Results, fmt.Sprintf("RELEASE %s: not done: %v", strings.ToUpper(rc[1]), perr))
					continue
				}
				return out, false, err
			default:
				ans.Results = append(ans.Results, fmt.Sprintf("RELEASE %s: released; the results are going to %d eligible members and the nominating groups' leaders", t.Race, t.Eligible))
			}
			continue
		}
		c := staffCommand.FindStringSubmatch(line)
		if c == nil {
			continue
		}
		cid, _ := strconv.ParseInt(c[2], 10, 64)
		approve := strings.EqualFold(c[1], "approve")
		verb := strings.ToUpper(c[1])
		reason := strings.TrimSpace(c[3])
		if !approve && reason == "" {
			ans.Results = append(ans.Results, fmt.Sprintf("REJECT %d: not done: give a reason after the number", cid))
			continue
		}
		v, err := ballots.Vet(ctx, tx, cid, approve, reason)
		switch {
		case errors.Is(err, ballots.ErrNotFound) || errors.Is(err, ballots.ErrVet):
			ans.Results = append(ans.Results, fmt.Sprintf("%s %d: not done: %v", verb, cid, err))
		case err != nil:
			return out, false, err
		default:
			ans.Results = append(ans.Results, fmt.Sprintf("%s %d: %s (%s) is %s; nominated by %s", verb, cid, v.Name, v.Race, v.Status, strings.Join(v.Groups, ", ")))
		}
	}
	out.Outcome = OutcomeVetted
	if len(ans.Results) == 0 {
		ans.Help = true
		out.Outcome = OutcomeUnclear
	}
	out.Detail = strings.Join(ans.Results, "\n")
	return out, true, enqueueTo(ctx, tx, ballots.MailStaffAnswer, m.From, id, m, ans)
}

var (
	joinName     = regexp.MustCompile(`(?im)^\s*(?:full\s+)?name\s*:\s*(.+?)\s*$`)
	joinDistrict = regexp.MustCompile(`(?im)^\s*(?:congressional\s+)?district\s*:\s*(.+?)\s*$`)
	joinState    = regexp.MustCompile(`(?im)^\s*state\s*:\s*(.+?)\s*$`)
)

// readJoin reads a sign-up: a name (else the From display name) and a
// district code, or a state and a district number.
func readJoin(m *Message) (name, district string, probs []string) {
	text := ReplyText(m)
	name = m.FromName
	if g := joinName.FindStringSubmatch(text); g != nil {
		name = g[1]
	}
	d := ""
	if g := joinDistrict.FindStringSubmatch(text); g != nil {
		d = g[1]
	}
	if d == "" {
		return name, "", []string{"District: missing: your House district, such as MA-07 (or State: MA and District: 7)"}
	}
	if rc, err := ballots.ParseDistrict(d); err == nil {
		return name, rc.Code, nil
	}
	st := ""
	if g := joinState.FindStringSubmatch(text); g != nil {
		st, _ = ballots.ParseState(g[1])
	}
	if n := districtNumber.FindStringSubmatch(d); n != nil && st != "" {
		if rc, err := ballots.ParseDistrict(st + "-" + n[1]); err == nil {
			return name, rc.Code, nil
		}
	}
	return name, "", []string{fmt.Sprintf("District: %q: not a House district; write it as MA-07 (or State: MA and District: 7)", d)}
}

func (p *Processor) join(ctx context.Context, tx *sqlx.Tx, id int64, m *Message, out ballots.Outcome) (ballots.Outcome, bool, error) {
	if m.From == "" {
		out.Outcome, out.Quarantined, out.Detail = OutcomeQuarantined, true, "sign-up without a sender address"
		return out, false, nil
	}
	name, district, probs := readJoin(m)
	if len(probs) > 0 {
		out.Outcome, out.Detail = OutcomeUnclear, strings.Join(probs, "\n")
		return out, true, enqueueTo(ctx, tx, ballots.MailJoinProblems, m.From, id, m, templates.JoinProblems{Problems: probs})
	}
	r, err := ballots.SignUp(ctx, tx, m.From, name, district)
	if err != nil {
		return out, false, err
	}
	out.Outcome, out.Detail = OutcomeSignUp, fmt.Sprintf("member %d %s in %s", r.MemberID, r.Status, district)
	if r.Status == ballots.MemberActive {
		return out, true, enqueueTo(ctx, tx, ballots.MailWelcome, m.From, id, m, templates.Welcome{Name: name, District: district, Already: true})
	}
	_, err = ballots.Enqueue(ctx, tx, ballots.Mail{Kind: ballots.MailJoinConfirm, Recipient: m.From, MemberID: r.MemberID, InboundID: id,
		Data: threaded[any]{templates.JoinConfirm{Name: name, District: district}, m.MessageID}})
	return out, err == nil, err
}

// memberOfTag returns the member a c- or u- token names, or 0.
func (p *Processor) memberOfTag(m *Message, kind string) int64 {
	tag, ok := FindTag(m, p.Box)
	if !ok || tag.Kind != kind {
		return 0
	}
	mid, err := p.Tokens.Open(kind, tag.Token)
	if err != nil {
		return 0
	}
	return mid
}

// confirm completes a double opt-in: the reply reached the confirmation
// address only its recipient was told.
func (p *Processor) confirm(ctx context.Context, tx *sqlx.Tx, id int64, m *Message, out ballots.Outcome) (ballots.Outcome, bool, error) {
	mid := p.memberOfTag(m, ballots.TokenConfirm)
	mem := ballots.MemberRef{}
	changed := false
	var err error
	if mid != 0 {
		mem, changed, err = ballots.SetMemberStatus(ctx, tx, mid, ballots.MemberActive, ballots.MemberPending)
		if err != nil && !errors.Is(err, ballots.ErrNotFound) {
			return out, false, err
		}
	}
	if mid == 0 || mem.ID == 0 || (!changed && mem.Status != ballots.MemberActive) {
		out.Outcome, out.Quarantined, out.Detail = OutcomeUnmatched, true, "confirmation to an unknown or forged token"
		return out, false, nil
	}
	out.Outcome, out.Detail = OutcomeConfirmed, fmt.Sprintf("member %d active", mem.ID)
	_, err = ballots.Enqueue(ctx, tx, ballots.Mail{Kind: ballots.MailWelcome, Recipient: mem.Email, MemberID: mem.ID, InboundID: id,
		Data: threaded[any]{templates.Welcome{Name: mem.Name, District: mem.District, Already: !changed}, m.MessageID}})
	return out, err == nil, err
}

// unsubscribe handles mail to the List-Unsubscribe address (RFC 2369).
func (p *Processor) unsubscribe(ctx context.Context, tx *sqlx.Tx, id int64, m *Message, out ballots.Outcome) (ballots.Outcome, bool, error) {
	mid := p.memberOfTag(m, ballots.TokenUnsubscribe)
	if mid == 0 {
		out.Outcome, out.Quarantined, out.Detail = OutcomeUnmatched, true, "unsubscribe to an unknown or forged token"
		return out, false, nil
	}
	mem, changed, err := ballots.SetMemberStatus(ctx, tx, mid, ballots.MemberUnsubscribed, ballots.MemberActive, ballots.MemberPending)
	if errors.Is(err, ballots.ErrNotFound) {
		out.Outcome, out.Quarantined, out.Detail = OutcomeUnmatched, true, fmt.Sprintf("unsubscribe: member %d does not exist", mid)
		return out, false, nil
	}
	if err != nil {
		return out, false, err
	}
	out.Outcome, out.Detail = OutcomeUnsubscribed, fmt.Sprintf("member %d %s", mem.ID, mem.Status)
	// RFC 3834 §2: a mail client's automatic unsubscribe is not answered.
	if !changed || isAutoReply(m) {
		return out, false, nil
	}
	_, err = ballots.Enqueue(ctx, tx, ballots.Mail{Kind: ballots.MailUnsubscribed, Recipient: mem.Email, MemberID: mem.ID, InboundID: id,
		Data: threaded[any]{templates.Unsubscribed{Name: mem.Name}, m.MessageID}})
	return out, err == nil, err
}
