package mailer

import (
	"encoding/json"
	"fmt"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/templates"
)

// frontKinds are the messages of nominations, vetting and sign-up; their
// data is the template's own struct, as enqueued.
var frontKinds = map[string]func() any{
	ballots.MailNominationConfirm:      func() any { return &templates.NominationConfirm{} },
	ballots.MailNominationProblems:     func() any { return &templates.NominationProblems{} },
	ballots.MailBlankForm:              func() any { return &templates.BlankForm{} },
	ballots.MailVettingNotice:          func() any { return &templates.VettingNotice{} },
	ballots.MailStaffAnswer:            func() any { return &templates.StaffAnswer{} },
	ballots.MailJoinConfirm:            func() any { return &templates.JoinConfirm{} },
	ballots.MailJoinProblems:           func() any { return &templates.JoinProblems{} },
	ballots.MailWelcome:                func() any { return &templates.Welcome{} },
	ballots.MailUnsubscribed:           func() any { return &templates.Unsubscribed{} },
	ballots.MailMemberChange:           func() any { return &templates.MemberChange{} },
	ballots.MailUnauthenticatedRequest: func() any { return &templates.UnauthenticatedRequest{} },
}

// frontAnswer reports whether kind answers a message (RFC 3834 §5:
// Auto-Submitted: auto-replied); the vetting notice is generated.
func frontAnswer(kind string) bool {
	return frontKinds[kind] != nil && kind != ballots.MailVettingNotice
}

// renderFront decodes the data of a nomination, vetting or sign-up row and
// says where replies go: nomination answers back to the nomination
// address (a corrected form is a nomination), staff mail to a staff
// command address keyed by this row, a sign-up request to its
// confirmation address.
func (r *Renderer) renderFront(row ballots.OutboxRow) (data any, replyTo string, err error) {
	data = frontKinds[row.Kind]()
	if len(row.Data) > 0 {
		if err := json.Unmarshal(row.Data, data); err != nil {
			return nil, "", fmt.Errorf("outbox %d: %s data: %w", row.ID, row.Kind, err)
		}
	}
	switch row.Kind {
	case ballots.MailNominationConfirm, ballots.MailNominationProblems, ballots.MailBlankForm:
		replyTo = r.ID.Address("nominate")
	case ballots.MailVettingNotice, ballots.MailStaffAnswer:
		replyTo = r.staffReplyTo(row.ID)
	case ballots.MailJoinConfirm:
		if !row.MemberID.Valid {
			return nil, "", fmt.Errorf("outbox %d: join-confirm without a member", row.ID)
		}
		replyTo = r.ID.Address(token.Confirm + "-" + r.Tokens.Make(token.Confirm, row.MemberID.Int64, nil))
	case ballots.MailMemberChange:
		// The token names the change, not the member: only this request
		// can be confirmed by a reply to it.
		replyTo = r.ID.Address(token.Confirm + "-" + r.Tokens.Make(token.Change, data.(*templates.MemberChange).ChangeID, nil))
	case ballots.MailJoinProblems:
		replyTo = r.ID.Address("join")
	default:
		replyTo = r.ID.Address("")
	}
	return data, replyTo, nil
}
