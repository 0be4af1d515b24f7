package inbound

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/race"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/mailer"
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
	// OutcomeChangeAsked is a sign-up that would change an existing
	// member: nothing changed; the registered address was asked to
	// confirm.
	OutcomeChangeAsked = "change-asked"
	// OutcomeHeld is a sign-up not recorded because its confirmation
	// request could not be sent (the answer policy held it back, or the
	// sender is not one to answer).
	OutcomeHeld = "held"
)

// thread is the Thread of an answer to m.
func thread(m *message.Message) templates.Thread { return templates.Thread{InReplyTo: m.MessageID} }

// front handles the messages of the front half of the process:
// nominations, staff commands, sign-up, confirmation and unsubscribe.
func (p *Processor) front(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message, class message.Class) (ballots.Outcome, bool, error) {
	out := ballots.Outcome{Class: string(class)}
	if ok, out, sent, err := p.authenticate(ctx, tx, id, m, class); !ok || err != nil {
		return out, sent, err
	}
	switch class {
	case message.ClassNomination:
		return p.nominate(ctx, tx, id, m, out)
	case message.ClassStaff:
		return p.staff(ctx, tx, id, m, out)
	case message.ClassJoin:
		return p.join(ctx, tx, id, m, out)
	case message.ClassConfirm:
		return p.confirm(ctx, tx, id, m, out)
	case message.ClassUnsubscribe:
		return p.unsubscribe(ctx, tx, id, m, out)
	case message.ClassQuestionnaire:
		return p.questionnaire(ctx, tx, id, m, out)
	}
	return out, false, fmt.Errorf("front: class %s", class)
}

func (p *Processor) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// reply answers message id (m) with payload (threaded to m: see thread)
// to to, through the answer policy (Processor.answer); why it was held
// back, if it was, goes on out's detail. It returns whether it enqueued.
func (p *Processor) reply(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message, out *ballots.Outcome, to string, memberID int64, payload templates.Payload) (bool, error) {
	sent, why, err := p.answer(ctx, tx, m, ballots.Mail{Recipient: to, MemberID: memberID, InboundID: id, Payload: payload}, "", 0)
	noteAnswer(out, why)
	return sent, err
}

// maxCommands is how many WITHDRAW lines, or staff commands, one message
// runs at most.
const maxCommands = 50

var withdrawLine = regexp.MustCompile(`(?im)^\s*withdraw\s+(?:nomination\s+)?(?:number\s+)?#?\s*(\d{1,12})\b`)

func (p *Processor) nominate(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message, out ballots.Outcome) (ballots.Outcome, bool, error) {
	if m.From == "" {
		out.Outcome, out.Quarantined, out.Detail = OutcomeQuarantined, true, "nomination without a sender address"
		return out, false, nil
	}
	if s := strings.ToLower(strings.Trim(strings.TrimSpace(m.Subject), ".!?")); s == "form" || s == "blank form" || (s == "nomination form" && strings.TrimSpace(message.ReplyText(m)) == "") {
		out.Outcome = OutcomeFormSent
		sent, err := p.reply(ctx, tx, id, m, &out, m.From, 0, templates.BlankForm{Thread: thread(m), Blank: message.BlankForm})
		return out, sent, err
	}
	// A bounded number per message: a forged message of a hundred
	// thousand WITHDRAW lines must not hold the mailbox for minutes.
	if ws := withdrawLine.FindAllStringSubmatch(message.ReplyText(m), maxCommands); len(ws) > 0 {
		var details []string
		enqueued := false
		for _, w := range ws {
			n, _ := strconv.ParseInt(w[1], 10, 64)
			r, probs, err := ballots.Withdraw(ctx, tx, m.From, n)
			if err != nil {
				return out, false, err
			}
			var sent bool
			if len(probs) > 0 {
				details = append(details, strings.Join(probs, "; "))
				sent, err = p.reply(ctx, tx, id, m, &out, m.From, 0,
					templates.NominationProblems{Thread: thread(m), Problems: probs, Form: message.ReplyText(m), Blank: message.BlankForm})
			} else {
				details = append(details, fmt.Sprintf("nomination %d withdrawn", n))
				sent, err = p.reply(ctx, tx, id, m, &out, m.From, 0,
					templates.NominationConfirm{Thread: thread(m), Number: r.ID, Group: r.Group, Candidate: r.Candidate, Race: r.Race, Withdrawn: true})
			}
			if err != nil {
				return out, false, err
			}
			enqueued = enqueued || sent
		}
		held := out.Detail
		out.Outcome, out.Detail = OutcomeWithdrawn, strings.Join(details, "\n")
		if held != "" {
			out.Detail += "\n" + held
		}
		return out, enqueued, nil
	}
	form, probs := message.ReadForm(m)
	in := ballots.NominationInput{Sender: m.From, Group: form.Group, Candidate: form.Candidate, Race: form.Race,
		Reason: form.Reason, FormText: form.Text, InboundID: id,
		Factors:               ballots.Factors{Campaign: form.Campaign, Partners: form.Partners, FirstTime: form.FirstTime, PastRaces: form.PastRaces},
		QuestionnaireRequired: p.questionnaireOn()}
	for _, pr := range probs {
		in.Problems = append(in.Problems, pr.String())
	}
	res, err := ballots.Nominate(ctx, tx, in, p.now())
	if err != nil {
		return out, false, err
	}
	if !res.Accepted {
		out.Outcome, out.Detail = OutcomeRejected, strings.Join(res.Problems, "\n")
		sent, err := p.reply(ctx, tx, id, m, &out, m.From, 0,
			templates.NominationProblems{Thread: thread(m), Number: res.ID, Problems: res.Problems, Form: form.Text, Blank: message.BlankForm})
		return out, sent, err
	}
	out.Outcome, out.Detail = OutcomeNominated, fmt.Sprintf("nomination %d: %s nominates %s for %s", res.ID, res.Group, res.Candidate, res.Race)
	if res.Updated {
		out.Outcome = OutcomeRenominated
	}
	sent, err := p.reply(ctx, tx, id, m, &out, m.From, 0, templates.NominationConfirm{Thread: thread(m), Number: res.ID, Group: res.Group,
		Candidate: res.Candidate, Race: res.Race, Groups: res.Groups, Updated: res.Updated,
		Campaign: form.Campaign, Partners: form.Partners, FirstTime: form.FirstTime, PastRaces: form.PastRaces,
		Questionnaire: p.questionnaireOn() && res.Campaign != ""})
	if err != nil {
		return out, sent, err
	}
	if res.Campaign != "" && p.questionnaireOn() {
		if err := p.sendQuestionnaire(ctx, tx, id, res, &out); err != nil {
			return out, false, err
		}
	}
	if res.Updated {
		return out, sent, nil
	}
	vs, err := ballots.VettingList(ctx, tx)
	if err != nil {
		return out, false, err
	}
	notice := templates.VettingNotice{Number: res.ID, CandidateID: res.CandidateID, Candidate: res.Candidate, Race: res.Race,
		Group: res.Group, Groups: res.Groups, Reason: clipText(form.Reason, 2*maxQuote)}
	for _, v := range vs {
		if v.ID == res.CandidateID {
			notice.Status, notice.Conflicts = v.Status, v.Conflicts
			notice.Campaign, notice.Partners, notice.FirstTime, notice.PastRaces = v.Campaign, v.Partners, v.FirstTime, v.PastRaces
			if p.questionnaireOn() {
				notice.Questionnaire = questionnaireWords(v)
			}
		}
	}
	toStaff, err := p.toStaff(ctx, tx, id, &out, notice, "vetting notices")
	if err != nil {
		return out, false, err
	}
	return out, sent || toStaff, nil
}

// vettingNoticesPerDay bounds the notices of each kind each staff address
// gets a day; beyond it, the digest's vetting queue lists the candidates.
const vettingNoticesPerDay = 50

// toStaff enqueues payload to every staff address. It is not an answer to
// the sender but mail a message makes, so a flood of messages must not
// flood staff: each address gets at most vettingNoticesPerDay of the
// payload's kind a day, and what that holds back is recorded and noted on
// out (noun names the mail in the note). It reports whether any went.
func (p *Processor) toStaff(ctx context.Context, tx *sqlx.Tx, id int64, out *ballots.Outcome, payload templates.Payload, noun string) (bool, error) {
	kind, sent := payload.Kind(), false
	for _, s := range p.Staff {
		full, ok, err := ballots.TakeAnswerCaps(ctx, tx, []ballots.AnswerCap{{Scope: "kind:" + string(kind) + ":" + s,
			Period: ballots.CapDay, Max: vettingNoticesPerDay}})
		if err != nil {
			return sent, err
		}
		if !ok {
			why := fmt.Sprintf("%s at most %d %s a day to one address", heldBack, full.Max, noun)
			noteAnswer(out, why)
			if err := ballots.HoldAnswer(ctx, tx, id, s, kind, why); err != nil {
				return sent, err
			}
			continue
		}
		if _, err := ballots.Enqueue(ctx, tx, ballots.Mail{Recipient: s, InboundID: id, Payload: payload}); err != nil {
			return sent, err
		}
		sent = true
	}
	return sent, nil
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
func (p *Processor) staff(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message, out ballots.Outcome) (ballots.Outcome, bool, error) {
	if !p.isStaff(m.From) {
		out.Outcome, out.Quarantined, out.Detail = OutcomeQuarantined, true, fmt.Sprintf("staff command from %q, not a staff address", m.From)
		return out, false, nil
	}
	valid, err := p.staffToken(ctx, tx, m)
	if err != nil {
		return out, false, err
	}
	ans := templates.StaffAnswer{Results: []string{}, Thread: thread(m)}
	if !valid {
		ans.Results = append(ans.Results, "This address is not a staff command address: reply to a vetting notice, a digest or a results notice.")
		ans.Help = true
		out.Outcome, out.Quarantined, out.Detail = OutcomeUnmatched, true, "staff command to an unknown staff token"
		sent, err := p.reply(ctx, tx, id, m, &out, m.From, 0, ans)
		return out, sent, err
	}
	run := 0
	full := func() bool {
		if run == maxCommands {
			ans.Results = append(ans.Results, fmt.Sprintf("Only the first %d commands of a message are run; send the rest in another.", maxCommands))
			return true
		}
		run++
		return false
	}
	for _, line := range strings.Split(message.ReplyText(m), "\n") {
		rc := releaseCommand.FindStringSubmatch(line)
		c := staffCommand.FindStringSubmatch(line)
		qc := reviewCommand.FindStringSubmatch(line)
		if (rc != nil || c != nil || qc != nil) && full() {
			break
		}
		if qc != nil {
			r, err := review(ctx, tx, qc, m.From)
			if err != nil {
				return out, false, err
			}
			ans.Results = append(ans.Results, r)
			continue
		}
		if rc != nil {
			t, err := ballots.ReleaseResultsTx(ctx, tx, rc[1], ballots.ActorStaff)
			switch {
			case errors.Is(err, ballots.ErrNotFound) || errors.Is(err, ballots.ErrNotHeld) || errors.Is(err, ballots.ErrRaceState):
				ans.Results = append(ans.Results, fmt.Sprintf("RELEASE %s: not done: %v", strings.ToUpper(rc[1]), err))
			case err != nil:
				// A malformed code is the sender's mistake, not ours.
				if _, perr := race.Parse(rc[1]); perr != nil {
					ans.Results = append(ans.Results, fmt.Sprintf("RELEASE %s: not done: %v", strings.ToUpper(rc[1]), perr))
					continue
				}
				return out, false, err
			default:
				ans.Results = append(ans.Results, fmt.Sprintf("RELEASE %s: released; the results are going to %d eligible members and the nominating groups' leaders", t.Race, t.Eligible))
			}
			continue
		}
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
	sent, err := p.reply(ctx, tx, id, m, &out, m.From, 0, ans)
	return out, sent, err
}

// staffToken reports whether m was sent to a staff command address: a
// staff tag whose token verifies and names an outbox row of a mail we sent
// to staff.
func (p *Processor) staffToken(ctx context.Context, tx *sqlx.Tx, m *message.Message) (bool, error) {
	tag, ok := message.FindTag(m, p.Box)
	if !ok || tag.Kind != token.Staff {
		return false, nil
	}
	oid, err := p.Tokens.Open(token.Staff, tag.Token)
	if err != nil {
		return false, nil
	}
	kind, err := ballots.OutboxKind(ctx, tx, oid)
	if errors.Is(err, ballots.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return mailer.StaffReplies(kind), nil
}

var (
	joinName     = regexp.MustCompile(`(?im)^\s*(?:full\s+)?name\s*:\s*(.+?)\s*$`)
	joinDistrict = regexp.MustCompile(`(?im)^\s*(?:congressional\s+)?district\s*:\s*(.+?)\s*$`)
	joinState    = regexp.MustCompile(`(?im)^\s*state\s*:\s*(.+?)\s*$`)
)

// readJoin reads a sign-up: a name (else the From display name) and a
// district code, or a state and a district number.
func readJoin(m *message.Message) (name, district string, probs []string) {
	text := message.ReplyText(m)
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
	if rc, err := race.ParseDistrict(d); err == nil {
		return name, rc.Code, nil
	}
	st := ""
	if g := joinState.FindStringSubmatch(text); g != nil {
		st, _ = race.ParseState(g[1])
	}
	if n, ok := message.DistrictNumber(d); ok && st != "" {
		if rc, err := race.ParseDistrict(st + "-" + n); err == nil {
			return name, rc.Code, nil
		}
	}
	return name, "", []string{fmt.Sprintf("District: %q: not a House district; write it as MA-07 (or State: MA and District: 7)", d)}
}

// join handles a sign-up. A new address becomes a pending member and is
// asked to confirm; an existing member is changed only when the
// registered address confirms (ballots.SignUp). The sign-up and its
// confirmation request stand or fall together: when the answer policy
// holds the request back, no pending member or change is recorded (a
// flood of sign-ups from invented addresses leaves no more pending
// members than mails it was allowed to send); the message is kept with
// its outcome, held.
func (p *Processor) join(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message, out ballots.Outcome) (ballots.Outcome, bool, error) {
	if m.From == "" {
		out.Outcome, out.Quarantined, out.Detail = OutcomeQuarantined, true, "sign-up without a sender address"
		return out, false, nil
	}
	name, district, probs := readJoin(m)
	name = signUpName(name)
	if len(probs) > 0 {
		out.Outcome, out.Detail = OutcomeUnclear, strings.Join(probs, "\n")
		sent, err := p.reply(ctx, tx, id, m, &out, m.From, 0, templates.JoinProblems{Thread: thread(m), Problems: probs})
		return out, sent, err
	}
	sp, err := ballots.Savepoint(ctx, tx, "signup")
	if err != nil {
		return out, false, err
	}
	r, err := ballots.SignUp(ctx, tx, m.From, name, district, id)
	if err != nil {
		return out, false, err
	}
	mail := ballots.Mail{Recipient: m.From, MemberID: r.MemberID, InboundID: id}
	switch {
	case r.Same:
		out.Outcome, out.Detail = OutcomeSignUp, fmt.Sprintf("member %d already active in %s", r.MemberID, district)
		mail.Payload = templates.Welcome{Name: name, District: district, Already: true, Thread: thread(m)}
	case r.Change != nil:
		c := r.Change
		out.Outcome = OutcomeChangeAsked
		out.Detail = fmt.Sprintf("member %d (%s): change %d waits for the registered address to confirm: %s", c.MemberID, c.OldStatus, c.ID, changeWords(*c))
		// To the registered address; not threaded to a message that
		// may be forged.
		mail.Recipient = c.Email
		mail.Payload = templates.MemberChange{Name: c.OldName, OldName: c.OldName, NewName: c.Name, OldDistrict: c.OldDistrict,
			NewDistrict: c.District, OldStatus: c.OldStatus, NewStatus: c.Status, ChangeID: c.ID}
	default:
		out.Outcome, out.Detail = OutcomeSignUp, fmt.Sprintf("member %d %s in %s", r.MemberID, r.Status, district)
		mail.Payload = templates.JoinConfirm{Name: name, District: district, Thread: thread(m)}
	}
	undo := &sp
	if r.Same {
		// Nothing was recorded: the welcome alone may be held back.
		if err := sp.Release(ctx); err != nil {
			return out, false, err
		}
		undo = nil
	}
	sent, why, err := p.answerOrUndo(ctx, tx, m, mail, "", 0, undo)
	if err != nil {
		return out, false, err
	}
	if !sent && undo != nil {
		out.Outcome, out.Detail = OutcomeHeld, "sign-up not recorded: its confirmation request was not sent"
	}
	noteAnswer(&out, why)
	return out, sent, nil
}

// changeWords states a member change, old -> new.
func changeWords(c ballots.MemberChange) string {
	var ws []string
	if c.OldName != c.Name {
		ws = append(ws, fmt.Sprintf("name %q -> %q", c.OldName, c.Name))
	}
	if c.OldDistrict != c.District {
		ws = append(ws, fmt.Sprintf("district %s -> %s", c.OldDistrict, c.District))
	}
	if c.OldStatus != c.Status {
		ws = append(ws, fmt.Sprintf("status %s -> %s", c.OldStatus, c.Status))
	}
	return strings.Join(ws, ", ")
}

// signUpName makes a name from a sign-up fit to keep: one line, no control
// characters, runs of spaces as one, at most 100 characters.
func signUpName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > 100 {
		s = string([]rune(s)[:100])
	}
	return s
}

// memberOfTag returns the member a c- or u- token names, or 0.
func (p *Processor) memberOfTag(m *message.Message, kind string) int64 {
	tag, ok := message.FindTag(m, p.Box)
	if !ok || tag.Kind != kind {
		return 0
	}
	mid, err := p.Tokens.Open(kind, tag.Token)
	if err != nil {
		return 0
	}
	return mid
}

// confirm completes a double opt-in, or applies a change to a member:
// the reply reached the confirmation address only the registered address
// was told. The c tag's token names either the member (a sign-up) or the
// change (token.Change).
func (p *Processor) confirm(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message, out ballots.Outcome) (ballots.Outcome, bool, error) {
	if tag, ok := message.FindTag(m, p.Box); ok && tag.Kind == token.Confirm {
		if cid, err := p.Tokens.Open(token.Change, tag.Token); err == nil {
			return p.confirmChange(ctx, tx, id, m, out, cid)
		}
	}
	mid := p.memberOfTag(m, token.Confirm)
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
	sent, err := p.reply(ctx, tx, id, m, &out, mem.Email, mem.ID,
		templates.Welcome{Thread: thread(m), Name: mem.Name, District: mem.District, Already: !changed})
	return out, sent, err
}

// confirmChange applies member change cid, confirmed by a reply to the
// address only its member's registered address was sent.
func (p *Processor) confirmChange(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message, out ballots.Outcome, cid int64) (ballots.Outcome, bool, error) {
	c, applied, err := ballots.ConfirmChange(ctx, tx, cid)
	if errors.Is(err, ballots.ErrNotFound) {
		out.Outcome, out.Quarantined, out.Detail = OutcomeUnmatched, true, fmt.Sprintf("confirmation of member change %d, which does not exist", cid)
		return out, false, nil
	}
	if err != nil {
		return out, false, err
	}
	if !applied {
		out.Outcome = OutcomeIgnored
		out.Detail = fmt.Sprintf("member %d: change %d not applied: %s", c.MemberID, c.ID, c.Outcome)
		return out, false, nil
	}
	out.Outcome, out.Detail = OutcomeConfirmed, fmt.Sprintf("member %d: change %d applied: %s", c.MemberID, c.ID, changeWords(c))
	sent, err := p.reply(ctx, tx, id, m, &out, c.Email, c.MemberID, templates.Welcome{Thread: thread(m), Name: c.Name, District: c.District})
	return out, sent, err
}

// unsubscribe handles mail to the List-Unsubscribe address (RFC 2369).
func (p *Processor) unsubscribe(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message, out ballots.Outcome) (ballots.Outcome, bool, error) {
	mid := p.memberOfTag(m, token.Unsubscribe)
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
	if !changed || message.IsAutoReply(m) {
		return out, false, nil
	}
	sent, err := p.reply(ctx, tx, id, m, &out, mem.Email, mem.ID, templates.Unsubscribed{Thread: thread(m), Name: mem.Name})
	return out, sent, err
}
