package inbound

import (
	"context"
	"errors"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/templates"
)

// requestWhat names a message of each class that changes state, as the
// notice of an unauthenticated one says it.
var requestWhat = map[message.Class]string{
	message.ClassNomination:    "a message to the nomination address",
	message.ClassStaff:         "a staff command",
	message.ClassJoin:          "a sign-up",
	message.ClassConfirm:       "a confirmation",
	message.ClassUnsubscribe:   "an unsubscribe request",
	message.ClassResend:        "a request for your ballots",
	message.ClassQuestionnaire: "answers to the policy questionnaire",
}

// authenticate checks that m's From is authentic (message.CheckSender against the
// trusted server, BALLOTD_AUTHSERV_ID) before a message of class, which
// would change something, is applied. Without a trusted server configured
// every From is taken as it is. A message the trusted server left no
// results on is not authentic. When ok is false, out is the outcome to
// record: unauthenticated, quarantined (staff can replay it once the
// trusted server is fixed), and at most one notice, through the answer
// policy, to the registered address the message claims — a member's,
// leader's or staff address it came from, or the member a confirmation or
// unsubscribe token names — and never to a From that is a stranger's.
func (p *Processor) authenticate(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message, class message.Class) (ok bool, out ballots.Outcome, sent bool, err error) {
	auth := message.CheckSender(m.Header, p.AuthservID, m.From)
	if auth.OK {
		return true, out, false, nil
	}
	out = ballots.Outcome{Class: string(class), Outcome: OutcomeUnauthenticated, Detail: "sender not authenticated: " + auth.Detail, Quarantined: true}
	to, err := p.registeredAddress(ctx, tx, m, class)
	if err != nil {
		return false, out, false, err
	}
	if to == "" {
		noteAnswer(&out, "the sender is not a registered address")
		return false, out, false, nil
	}
	// Not threaded to the message, which may be forged.
	notice := templates.UnauthenticatedRequest{What: requestWhat[class], Sender: m.From, Subject: m.Subject}
	sent, why, err := p.answer(ctx, tx, m, ballots.Mail{Recipient: to, InboundID: id, Payload: notice}, "", 0)
	noteAnswer(&out, why)
	return false, out, sent, err
}

// registeredAddress is the address a message of class claims to come
// from, when ballotd knows it: the member a confirmation or unsubscribe
// token names, or the From when it is an active member's, a group
// leader's or a staff address (for a staff command, a staff address
// only); "" otherwise.
func (p *Processor) registeredAddress(ctx context.Context, tx *sqlx.Tx, m *message.Message, class message.Class) (string, error) {
	var mid int64
	switch class {
	case message.ClassConfirm:
		if tag, ok := message.FindTag(m, p.Box); ok && tag.Kind == token.Confirm {
			if cid, err := p.Tokens.Open(token.Change, tag.Token); err == nil {
				c, err := ballots.MemberChangeOf(ctx, tx, cid)
				if err != nil {
					return "", ignoreNotFound(err)
				}
				return c.Email, nil
			}
		}
		mid = p.memberOfTag(m, token.Confirm)
	case message.ClassUnsubscribe:
		mid = p.memberOfTag(m, token.Unsubscribe)
	case message.ClassQuestionnaire:
		// The campaign address the questionnaire went to.
		q, err := ballots.QuestionnaireOf(ctx, tx, p.questionnaireOfTag(m))
		if err != nil {
			return "", ignoreNotFound(err)
		}
		return q.Email, nil
	case message.ClassStaff:
		// Only staff may command; anyone else's is not a staff command
		// in their name.
		if p.isStaff(m.From) {
			return m.From, nil
		}
		return "", nil
	default:
		if m.From == "" {
			return "", nil
		}
		if p.isStaff(m.From) {
			return m.From, nil
		}
		known, err := ballots.KnownAddress(ctx, tx, m.From)
		if err != nil || !known {
			return "", err
		}
		return m.From, nil
	}
	if mid == 0 {
		return "", nil
	}
	mem, err := ballots.MemberOf(ctx, tx, mid)
	if err != nil {
		return "", ignoreNotFound(err)
	}
	return mem.Email, nil
}

// ignoreNotFound is err, or nil when it says a row was not found.
func ignoreNotFound(err error) error {
	if errors.Is(err, ballots.ErrNotFound) {
		return nil
	}
	return err
}
