package inbound

import (
	"context"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
)

// noAnswer says why m must not be answered by mail to recipient, or ""
// when it may be. Machines are never answered (no mail loops, no
// backscatter): a bounce, an automatic reply, an empty or null sender, a
// mail-system or no-reply address, our own address.
func noAnswer(m *Message, recipient string, box Mailbox) string {
	switch {
	case m == nil:
		return "unreadable message"
	case strings.TrimSpace(recipient) == "":
		return "no recipient"
	case m.From == "":
		return "empty sender"
	case strings.TrimSpace(m.Header.Get("Return-Path")) == "<>":
		return "null sender (Return-Path <>)"
	case isOwnAddress(m.From, box) || isOwnAddress(recipient, box):
		return "our own address"
	}
	for _, a := range []string{m.From, recipient} {
		lp := strings.ToLower(localPart(a))
		if daemonLocalPart.MatchString(lp) || isNoReply(lp) {
			return "mail-system or no-reply address " + a
		}
	}
	if isBounce(m) {
		return "a delivery report"
	}
	if isAutoReply(m) {
		return "an automatic reply"
	}
	return ""
}

// answer enqueues mail, an automatic answer to m, in tx unless m must not
// be answered (noAnswer) or mail's recipient already had its slots of
// answers for reason today (ballots.AllowAnswer; one, except receipts).
// Every automatic answer goes through here. It returns whether it
// enqueued, and else why not.
func (p *Processor) answer(ctx context.Context, tx *sqlx.Tx, m *Message, mail ballots.Mail, reason string, slots int) (bool, string, error) {
	if why := noAnswer(m, mail.Recipient, p.Box); why != "" {
		return false, why, nil
	}
	ok, err := ballots.AllowAnswer(ctx, tx, mail.Recipient, reason, slots, mail.InboundID)
	if err != nil {
		return false, "", err
	}
	if !ok {
		return false, "already answered today (" + reason + ")", nil
	}
	if _, err := ballots.Enqueue(ctx, tx, mail); err != nil {
		return false, "", err
	}
	return true, "", nil
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
