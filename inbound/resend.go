package inbound

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/templates"
)

// OutcomeResent is the outcome of a resend request that enqueued ballots.
const OutcomeResent = "resent"

// resend serves a request for a lost ballot (ClassResend): each open
// ballot of the member the From address belongs to is enqueued again, to
// the registered address only, with the same token (ballots.ResendBallots),
// at most ballots.ResendsPerDay times a day. Every other request — not a
// member, no open ballot, over the daily limit — gets the one neutral
// answer, itself at most once a day per address through the answer gate,
// so a reply never tells whether an address is registered. With a trusted
// server configured, a request whose From it did not authenticate is not
// served (Processor.authenticate).
func (p *Processor) resend(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message) (ballots.Outcome, bool, error) {
	out := ballots.Outcome{Class: string(message.ClassResend)}
	if why := message.NoAnswer(m, m.From, p.Box); why != "" {
		out.Outcome, out.Detail = OutcomeIgnored, "not answered: "+why
		return out, false, nil
	}
	if ok, out, sent, err := p.authenticate(ctx, tx, id, m, message.ClassResend); !ok || err != nil {
		return out, sent, err
	}
	n, err := ballots.ResendBallots(ctx, tx, m.From, id)
	if err != nil {
		return out, false, err
	}
	if n > 0 {
		out.Outcome, out.Detail = OutcomeResent, fmt.Sprintf("%d open ballots sent again", n)
		return out, true, nil
	}
	out.Outcome = OutcomeIgnored
	out.Detail = "no ballot sent again (not a member, no open ballot, or over the daily limit)"
	sent, why, err := p.answer(ctx, tx, m, ballots.Mail{Recipient: m.From, InboundID: id,
		Payload: templates.ResendNeutralMail{Subject: m.Subject, Thread: thread(m)}}, string(templates.KindResendNeutral), 1)
	noteAnswer(&out, why)
	return out, sent, err
}
