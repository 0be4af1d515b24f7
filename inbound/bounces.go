package inbound

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/token"
)

// tokenInText finds our VERP addresses and Message-IDs wherever a bounce
// quotes them (returned headers, a text bounce's copy of the message). Every
// candidate is verified, so scanning the whole message is safe.
var tokenInText = regexp.MustCompile(`(?i)\+b-([a-z2-7]{20,40})@|<([a-z2-7]{20,40})@`)

// bounceOutbox returns the outbox row a bounce reports on: the VERP plus
// tag it was addressed to (ballots+b-TOKEN@, our envelope sender), then the
// original Message-ID (<TOKEN@domain>) in the returned headers, then either
// anywhere in the message. Tokens are authenticated, so none can be forged.
func (p *Processor) bounceOutbox(m *message.Message) (int64, string, bool) {
	if tag, ok := message.FindTag(m, p.Box); ok && tag.Kind == token.Bounce {
		if id, err := p.Tokens.Open(token.Bounce, tag.Token); err == nil {
			return id, "VERP address", true
		}
	}
	for _, ref := range append(append([]string{}, m.InReplyTo...), m.References...) {
		if id, ok := p.messageIDToken(ref); ok {
			return id, "References", true
		}
	}
	for _, src := range []struct {
		b    []byte
		name string
	}{{m.Returned, "returned headers"}, {m.Raw, "message text"}} {
		for _, sm := range tokenInText.FindAllSubmatch(src.b, 50) {
			if len(sm[1]) > 0 {
				if id, err := p.Tokens.Open(token.Bounce, strings.ToLower(string(sm[1]))); err == nil {
					return id, "VERP address in " + src.name, true
				}
				continue
			}
			if id, err := p.Tokens.Open(token.MessageID, strings.ToLower(string(sm[2]))); err == nil {
				return id, "Message-ID in " + src.name, true
			}
		}
	}
	return 0, "", false
}

// messageIDToken opens a Message-ID of ours (TOKEN@our-domain).
func (p *Processor) messageIDToken(ref string) (int64, bool) {
	local, domain, ok := strings.Cut(ref, "@")
	if !ok || !strings.EqualFold(domain, p.Box.Domain) {
		return 0, false
	}
	id, err := p.Tokens.Open(token.MessageID, strings.ToLower(local))
	return id, err == nil
}

// bounce records a delivery report on the outbox row it reports on: a hard
// bounce marks the member bounced, a soft one is counted. A report that
// maps to no row of ours is kept in quarantine for staff. Never answered.
func (p *Processor) bounce(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message) (ballots.Outcome, bool, error) {
	out := ballots.Outcome{Class: string(message.ClassBounce)}
	b := message.ReadBounce(m)
	oid, via, ok := p.bounceOutbox(m)
	if !ok {
		out.Outcome = OutcomeIgnored
		out.Detail = fmt.Sprintf("delivery report for no message of ours (status %q, recipient %q)", b.Status, b.Recipient)
		return out, false, nil
	}
	rec, err := ballots.RecordBounce(ctx, tx, ballots.BounceInput{OutboxID: oid, InboundID: id, Hard: b.Hard, Status: b.Status, Diagnostic: b.Diagnostic, Complaint: b.Complaint})
	if errors.Is(err, ballots.ErrNotFound) {
		out.Outcome = OutcomeIgnored
		out.Detail = fmt.Sprintf("delivery report for outbox %d, which does not exist", oid)
		return out, false, nil
	}
	if err != nil {
		return out, false, err
	}
	kind := "soft"
	if b.Hard {
		kind = "hard"
	}
	out.Outcome = OutcomeBounced
	out.Detail = fmt.Sprintf("%s bounce of outbox %d to %s (found by %s), status %q: %s", kind, oid, rec.Recipient, via, b.Status, b.Diagnostic)
	if rec.MemberMarked {
		out.Detail += fmt.Sprintf("; member %d marked bounced", rec.MemberID)
	}
	return out, false, nil
}
