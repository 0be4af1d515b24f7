package inbound

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/templates"
)

// The answer policy. Every automatic answer to an inbound message — a
// receipt, a clarification, a nomination's confirmation or problems, a
// blank form, a staff answer, a sign-up's confirmation request, a
// welcome, a notice to a voter — goes through Processor.answer, which
// enqueues it only when every bound below has room; otherwise nothing is
// sent, the inbound message's outcome says why, and the answer is counted
// in answers_held (the staff digest shows how many).
//
//   - per reason and recipient, a UTC day: the caller's slots (one; ten
//     receipts per ballot), as ballots.AllowAnswer counts them;
//   - per kind and recipient, a UTC day: kindCaps, else defaultKindCap;
//   - per recipient in all kinds, a UTC day: staffPerDay to a staff
//     address, knownPerDay to an active member or a group leader,
//     strangerPerDay to anyone else;
//   - to strangers all together, an hour: StrangerAnswersPerHour
//     (BALLOTD_STRANGER_ANSWERS_PER_HOUR).
//
// So forged mail cannot turn ballotd into a spam cannon: a victim's
// address gets at most a few answers a day however many messages are
// forged in its name, and invented addresses at most the hourly cap all
// together.
const (
	defaultKindCap = 2
	staffPerDay    = 100
	knownPerDay    = 25
	strangerPerDay = 5
	// DefaultStrangerAnswersPerHour is the hourly cap on answers to
	// addresses that are not members, leaders or staff, all together.
	DefaultStrangerAnswersPerHour = 50
)

// kindCaps are the kinds a recipient may get more than defaultKindCap of
// in a day.
var kindCaps = map[templates.Kind]int{
	templates.KindReceipt:            20, // ten per ballot (Processor.vote), a member may hold several
	templates.KindClarify:            3,  // one per ballot
	templates.KindClosed:             3,
	templates.KindNotVoter:           3,
	templates.KindUnauthenticated:    3,
	templates.KindUnmatched:          1,
	templates.KindResendNeutral:      1,
	templates.KindNominationConfirm:  10, // a leader nominates, updates and withdraws several
	templates.KindNominationProblems: 5,
	templates.KindStaffAnswer:        50,
}

// kindCap is how many answers of kind one recipient may get a day.
func kindCap(kind templates.Kind) int {
	if n, ok := kindCaps[kind]; ok {
		return n
	}
	return defaultKindCap
}

// strangersPerHour is the configured hourly cap on answers to strangers.
func (p *Processor) strangersPerHour() int {
	switch {
	case p.StrangerAnswersPerHour == 0:
		return DefaultStrangerAnswersPerHour
	case p.StrangerAnswersPerHour < 0:
		return 0
	}
	return p.StrangerAnswersPerHour
}

// answer enqueues mail, an automatic answer to m, in tx unless m must not
// be answered (noAnswer) or a bound of the answer policy is reached:
// reason's slots for mail's recipient today (ballots.AllowAnswer; reason
// "" has none of its own), or a cap (see the policy above). The sender's
// text the answer quotes is cut to maxQuote (quoteLimited). Every
// automatic answer goes through here. It returns whether it enqueued, and
// else why not; an answer the policy held back is recorded
// (ballots.HoldAnswer) and counts nothing against any bound.
func (p *Processor) answer(ctx context.Context, tx *sqlx.Tx, m *message.Message, mail ballots.Mail, reason string, slots int) (bool, string, error) {
	return p.answerAs(ctx, tx, m, mail, reason, slots, nil, false, nil)
}

// answerOrUndo is answer for an answer whose effect stands or falls with
// it (a sign-up and its confirmation request): when the answer is not
// sent, tx is rolled back to undo, a savepoint taken before the effect;
// when it is, undo is released. A nil undo is answer.
func (p *Processor) answerOrUndo(ctx context.Context, tx *sqlx.Tx, m *message.Message, mail ballots.Mail, reason string, slots int, undo *ballots.Point) (bool, string, error) {
	return p.answerAs(ctx, tx, m, mail, reason, slots, undo, false, nil)
}

// answerAs is answerOrUndo; known says the caller knows the recipient is
// an active member or a leader (not a stranger), so the policy need not
// look it up; with a batch, the answer is enqueued with the batch's, at
// its end (before it commits).
func (p *Processor) answerAs(ctx context.Context, tx *sqlx.Tx, m *message.Message, mail ballots.Mail, reason string, slots int, undo *ballots.Point, known bool, batch *batchState) (bool, string, error) {
	why := message.NoAnswer(m, mail.Recipient, p.Box)
	if why == "" && batch != nil && undo == nil && reason != "" {
		// In a batch, the answer is claimed against the policy with the
		// batch's others at its next flush (batchState.claimAnswers), and
		// taken out again if it is refused.
		caps, err := p.answerCaps(ctx, tx, mail, known)
		if err != nil {
			return false, "", err
		}
		mail.Payload = quoteLimited(mail.Payload)
		batch.claims = append(batch.claims, pendingClaim{mail: len(batch.mails), caps: caps,
			claim: ballots.AnswerClaim{Sender: mail.Recipient, Reason: reason, Slots: slots, InboundID: mail.InboundID, Caps: caps}})
		batch.mails = append(batch.mails, mail)
		return true, "", nil
	}
	held := false
	if why == "" {
		var err error
		if why, err = p.claimAnswer(ctx, tx, mail, reason, slots, known); err != nil {
			return false, "", err
		}
		held = why != ""
	}
	if why != "" {
		if undo != nil {
			if err := undo.Rollback(ctx); err != nil {
				return false, "", err
			}
		}
		if held {
			if err := ballots.HoldAnswer(ctx, tx, mail.InboundID, mail.Recipient, mail.Kind(), why); err != nil {
				return false, "", err
			}
		}
		return false, why, nil
	}
	mail.Payload = quoteLimited(mail.Payload)
	if batch != nil && undo == nil {
		batch.mails = append(batch.mails, mail)
	} else if _, err := ballots.Enqueue(ctx, tx, mail); err != nil {
		return false, "", err
	}
	if undo != nil {
		return true, "", undo.Release(ctx)
	}
	return true, "", nil
}

// claimAnswer counts mail against every bound of the answer policy and
// says which one was reached ("" when none was); an answer refused counts
// against none.
func (p *Processor) claimAnswer(ctx context.Context, tx *sqlx.Tx, mail ballots.Mail, reason string, slots int, known bool) (string, error) {
	caps, err := p.answerCaps(ctx, tx, mail, known)
	if err != nil {
		return "", err
	}
	var full ballots.AnswerCap
	if reason == "" {
		var ok bool
		if full, ok, err = ballots.TakeAnswerCaps(ctx, tx, caps); err != nil || ok {
			return "", err
		}
		return heldWhy(mail.Kind(), caps, full), nil
	}
	slot, full, ok, err := ballots.ClaimAnswer(ctx, tx, mail.Recipient, reason, slots, mail.InboundID, caps)
	if err != nil || ok {
		return "", err
	}
	return refusedWhy(mail.Kind(), reason, caps, ballots.AnswerClaimed{Slot: slot, Full: full}), nil
}

// refusedWhy says why an answer of kind whose claim under reason was
// refused (c) is not sent: its slots used today, or a cap of caps full.
func refusedWhy(kind templates.Kind, reason string, caps []ballots.AnswerCap, c ballots.AnswerClaimed) string {
	if c.Slot == "" && c.Full == (ballots.AnswerCap{}) {
		return "already answered today (" + reason + ")"
	}
	return heldWhy(kind, caps, c.Full)
}

// heldWhy says which of caps, full, held back an answer of kind.
func heldWhy(kind templates.Kind, caps []ballots.AnswerCap, full ballots.AnswerCap) string {
	switch {
	case full.Period == ballots.CapHour:
		return fmt.Sprintf("%s at most %d answers an hour to addresses that are not members, leaders or staff", heldBack, full.Max)
	case full.Scope == caps[0].Scope:
		return fmt.Sprintf("%s at most %d %s answers a day to one address", heldBack, full.Max, kind)
	}
	return fmt.Sprintf("%s at most %d answers a day to one address", heldBack, full.Max)
}

// answerCaps are the caps of the answer policy mail counts against; known
// says the caller knows its recipient is an active member or a leader.
func (p *Processor) answerCaps(ctx context.Context, tx *sqlx.Tx, mail ballots.Mail, known bool) ([]ballots.AnswerCap, error) {
	addr := strings.ToLower(strings.TrimSpace(mail.Recipient))
	total, stranger := staffPerDay, false
	if !p.isStaff(addr) {
		if !known {
			var err error
			if known, err = ballots.KnownAddress(ctx, tx, addr); err != nil {
				return nil, err
			}
		}
		total, stranger = knownPerDay, !known
		if stranger {
			total = strangerPerDay
		}
	}
	caps := []ballots.AnswerCap{
		{Scope: "kind:" + string(mail.Kind()) + ":" + addr, Period: ballots.CapDay, Max: kindCap(mail.Kind())},
		{Scope: "all:" + addr, Period: ballots.CapDay, Max: total},
	}
	if stranger {
		caps = append(caps, ballots.AnswerCap{Scope: "strangers", Period: ballots.CapHour, Max: p.strangersPerHour()})
	}
	return caps, nil
}

// heldBack begins the reason of an answer a cap held back.
const heldBack = "held back by the rate limit:"

// maxQuote is how many bytes of the sender's own text an answer quotes
// back at most (a form, a subject, the problems found in it): a huge
// forged message must not come back as a huge answer to its victim.
const maxQuote = 2048

// quoteLimited returns answer payload d with whatever it quotes of the
// sender's text cut to maxQuote, and each line naming a value of it
// (a problem, a name) to a line's length.
func quoteLimited(d templates.Payload) templates.Payload {
	switch d := d.(type) {
	case templates.UnmatchedMail:
		d.Subject = clip(d.Subject, 200)
		return d
	case templates.ResendNeutralMail:
		d.Subject = clip(d.Subject, 200)
		return d
	case templates.ClarifyMail:
		d.Reason = clip(d.Reason, 500)
		return d
	case templates.NotVoterMail:
		d.Sender = clip(d.Sender, 320)
		return d
	case templates.UnauthenticatedMail:
		d.Sender = clip(d.Sender, 320)
		return d
	case templates.NominationProblems:
		d.Problems = clipAll(d.Problems, 300, maxQuote)
		d.Form = clipText(d.Form, maxQuote)
		return d
	case templates.NominationConfirm:
		d.Group, d.Candidate, d.Race = clip(d.Group, 200), clip(d.Candidate, 200), clip(d.Race, 50)
		return d
	case templates.JoinProblems:
		d.Problems = clipAll(d.Problems, 300, maxQuote)
		return d
	case templates.JoinConfirm:
		d.Name = clip(d.Name, 100)
		return d
	case templates.Welcome:
		d.Name = clip(d.Name, 100)
		return d
	case templates.StaffAnswer:
		d.Results = clipAll(d.Results, 500, 50*500)
		return d
	case templates.MemberChange:
		d.Name, d.OldName, d.NewName = clip(d.Name, 100), clip(d.OldName, 100), clip(d.NewName, 100)
		return d
	case templates.UnauthenticatedRequest:
		d.Sender, d.Subject = clip(d.Sender, 320), clip(d.Subject, 200)
		return d
	}
	return d
}

// clip cuts s to at most n bytes on a character boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// clipText cuts a quoted text to n bytes, saying how much was left out.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return clip(s, n) + fmt.Sprintf("\n[%d more bytes not quoted]", len(s)-n)
}

// clipAll clips each line to n bytes and all of them to total bytes.
func clipAll(lines []string, n, total int) []string {
	out := make([]string, 0, len(lines))
	for i, l := range lines {
		l = clip(l, n)
		if total -= len(l); total < 0 {
			out = append(out, fmt.Sprintf("(%d more not listed)", len(lines)-i))
			break
		}
		out = append(out, l)
	}
	return out
}

// noteAnswer adds why an answer was not sent to an outcome's detail.
func noteAnswer(out *ballots.Outcome, why string) {
	if why == "" {
		return
	}
	if out.Detail != "" {
		out.Detail += "; "
	}
	out.Detail += "not answered: " + why
}
