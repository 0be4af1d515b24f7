package mailer

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/templates"
)

// kind is how one mail kind is sent: one entry of the table of kinds.
type kind struct {
	// template names the kind's files, TEMPLATE.txt and TEMPLATE.html in
	// templates/; "" is the kind's own name.
	template string
	// answers says the mail answers a message (RFC 3834 §5:
	// Auto-Submitted: auto-replied, and In-Reply-To when its payload is
	// threaded, templates.Thread); else it is auto-generated.
	answers bool
	// staff says the mail goes to staff with a staff command address as
	// its Reply-To, naming the row: a reply to it may carry commands
	// (StaffReplies, read by inbound).
	staff bool
	// footer says whom a member mail's footer is for (templates.Footer.For).
	footer string
	// tally says the row's race is loaded with its tally (a closed race).
	tally bool
	// stamp, for the kinds sent to every member of a race, is the template
	// data for a member's name and code, from which a race's stamp is made
	// once (templates.Stamp); nil: each message is rendered.
	stamp func(r *Renderer, sh *sheet, name, code string) any
	// build is the builder: the payload type and the template data made
	// from a row and its payload (see builds).
	build builder
}

// kinds is the table of mail kinds: every kind ballotd sends, by the
// string stored in the outbox's kind column.
//
// The parts of a kind are declared once each: its name and payload type
// in templates (templates/kinds.go, a Kind constant and a type with a
// Kind method), its files in templates/, and everything about sending it
// here, in one entry whose builder's parameter is the payload type. The
// table lives in mailer because the builders read the store and the
// renderer; ballots and inbound, which enqueue, see only the payload
// types (ballots imports templates, templates imports nothing of ours).
// TestKindsComplete checks the table against the files and the payload
// types, both ways.
//
// Adding a mail kind touches:
//   - templates/kinds.go: a Kind constant and a payload type with its
//     Kind method (or a Kind method on the template's own data type, when
//     the payload is all the template needs);
//   - templates/NAME.txt (with its "subject" block) and templates/NAME.html,
//     with a golden case in templates/golden_test.go and its two golden
//     files (go test ./templates -run TestGolden -update);
//   - one entry here;
//   - and the code that enqueues it: ballots.Enqueue(ctx, tx,
//     ballots.Mail{Recipient: to, Payload: templates.NewMail{…}}).
//
// A kind whose payload is its template's data and whose replies come to
// the mailbox is one line here: {answers: true, build: builds(func(c
// *call, p templates.New) (any, error) { return p, nil })}.
var kinds = map[templates.Kind]kind{
	templates.KindBallot: {stamp: ballotStamp,
		build: builds(func(c *call, _ templates.BallotMail) (any, error) { return ballotData(c), nil })},
	// The same ballot again, with the same token (templates.KindBallotResend).
	templates.KindBallotResend: {template: string(templates.KindBallot), stamp: ballotStamp,
		build: builds(func(c *call, _ templates.BallotResendMail) (any, error) { return ballotData(c), nil })},
	templates.KindReminder: {stamp: reminderStamp,
		build: builds(func(c *call, _ templates.ReminderMail) (any, error) {
			return templates.Reminder{Name: c.row.MemberName, Race: c.sh.open, Candidates: c.sh.candidates,
				Single: len(c.sh.Candidates) == 1, Code: c.code, Reply: c.reply}, nil
		})},
	templates.KindReceipt: {answers: true,
		build: builds(func(c *call, p templates.ReceiptMail) (any, error) {
			return templates.Receipt{Name: c.row.MemberName, Race: c.sh.race, Choice: p.Choice, Receipt: p.Receipt, Code: c.code,
				Read: p.Read, ResultsURL: c.r.ID.ResultsURL()}, nil
		})},
	templates.KindNoChange: {answers: true,
		build: builds(func(c *call, p templates.NoChangeMail) (any, error) {
			return templates.NoChange{Name: c.row.MemberName, Race: c.sh.race, Choice: p.Choice, Stale: p.Stale, Code: c.code}, nil
		})},
	templates.KindClarify: {answers: true,
		build: builds(func(c *call, p templates.ClarifyMail) (any, error) {
			return templates.Clarify{Name: c.row.MemberName, Race: c.sh.race, Reason: p.Reason, Quote: p.Quote, Candidates: c.sh.candidates,
				Single: len(c.sh.Candidates) == 1, Code: c.code, Reply: c.reply}, nil
		})},
	templates.KindClosed: {answers: true, build: builds(closedData)},
	templates.KindNotVoter: {answers: true,
		build: builds(func(c *call, p templates.NotVoterMail) (any, error) {
			return templates.NotVoter{Name: c.row.MemberName, Race: c.sh.race, Sender: p.Sender}, nil
		})},
	templates.KindUnauthenticated: {answers: true,
		build: builds(func(c *call, p templates.UnauthenticatedMail) (any, error) {
			return templates.Unauthenticated{Name: c.row.MemberName, Race: c.sh.race, Sender: p.Sender}, nil
		})},
	templates.KindUnmatched: {answers: true,
		build: builds(func(c *call, p templates.UnmatchedMail) (any, error) {
			return templates.Unmatched{Subject: p.Subject}, nil
		})},
	templates.KindResendNeutral: {answers: true,
		build: builds(func(c *call, p templates.ResendNeutralMail) (any, error) {
			return templates.Unmatched{Subject: p.Subject}, nil
		})},
	templates.KindAnnouncement: {tally: true, build: builds(announcementData)},
	templates.KindHeld:         {staff: true, build: builds(heldData)},
	templates.KindVetting: {staff: true,
		build: builds(func(c *call, p templates.Vetting) (any, error) { return p, nil })},
	templates.KindDigest: {staff: true, build: builds(digestData)},

	// Nominations, vetting and sign-up: the payload is the template's
	// data. Nomination answers go back to the nomination address (a
	// corrected form is a nomination).
	templates.KindNominationConfirm: {answers: true,
		build: builds(func(c *call, p templates.NominationConfirm) (any, error) { return p, c.replyAt("nominate") })},
	templates.KindNominationProblems: {answers: true,
		build: builds(func(c *call, p templates.NominationProblems) (any, error) { return p, c.replyAt("nominate") })},
	templates.KindBlankForm: {answers: true,
		build: builds(func(c *call, p templates.BlankForm) (any, error) { return p, c.replyAt("nominate") })},
	// The vetting notice is generated, not an answer to the nomination.
	templates.KindVettingNotice: {staff: true,
		build: builds(func(c *call, p templates.VettingNotice) (any, error) { return p, nil })},
	templates.KindStaffAnswer: {answers: true, staff: true,
		build: builds(func(c *call, p templates.StaffAnswer) (any, error) { return p, nil })},
	templates.KindJoinConfirm: {answers: true, footer: templates.FooterJoining, build: builds(joinConfirmData)},
	templates.KindJoinProblems: {answers: true, footer: templates.FooterJoining,
		build: builds(func(c *call, p templates.JoinProblems) (any, error) { return p, c.replyAt("join") })},
	templates.KindWelcome: {answers: true,
		build: builds(func(c *call, p templates.Welcome) (any, error) { return p, nil })},
	templates.KindUnsubscribed: {answers: true, footer: templates.FooterLeft,
		build: builds(func(c *call, p templates.Unsubscribed) (any, error) { return p, nil })},
	templates.KindMemberChange: {answers: true, build: builds(memberChangeData)},
	templates.KindUnauthenticatedRequest: {answers: true,
		build: builds(func(c *call, p templates.UnauthenticatedRequest) (any, error) { return p, nil })},

	// The policy questionnaire: generated (not an answer to the
	// nomination, and to another address); replies go to the candidate's
	// questionnaire address.
	templates.KindQuestionnaire: {build: builds(questionnaireData)},
	templates.KindQuestionnaireReceipt: {answers: true,
		build: builds(func(c *call, p templates.QuestionnaireReceipt) (any, error) { return p, nil })},
	templates.KindQuestionnaireAnswers: {staff: true,
		build: builds(func(c *call, p templates.QuestionnaireAnswers) (any, error) { return p, nil })},
	templates.KindQuestionnaireShared: {build: builds(func(c *call, p templates.QuestionnaireShared) (any, error) { return p, nil })},
}

// StaffReplies reports whether mail of kind goes to staff with a staff
// command address as its Reply-To: a reply to it may carry staff
// commands.
func StaffReplies(k templates.Kind) bool { return kinds[k].staff }

// templateOf is the name of kind k's template files.
func (k kind) templateOf(name templates.Kind) string {
	if k.template != "" {
		return k.template
	}
	return string(name)
}

// call is one row being rendered: what a builder reads, and the Reply-To
// it may change.
type call struct {
	ctx context.Context
	r   *Renderer
	row ballots.OutboxRow
	sh  *sheet
	// code is the ballot's code, "" for a row without a ballot.
	code string
	// reply is the Reply-To: the ballot's reply address, a staff command
	// address for a staff kind, else the mailbox's own address.
	reply string
	// msgID is the message's Message-ID, without brackets.
	msgID string
	// inline are parts the HTML shows by cid: URL.
	inline []Inline
}

// replyAt makes replies go to the mailbox's address with tag.
func (c *call) replyAt(tag string) error {
	c.reply = c.r.ID.Address(tag)
	return nil
}

// builder turns a row's payload (the JSON of its data column) into the
// template data: decode, then build. Made by builds from a function of
// the payload type.
type builder struct {
	// payload is the zero payload, for its type.
	payload templates.Payload
	decode  func(raw json.RawMessage) (templates.Payload, error)
	build   func(c *call, p templates.Payload) (any, error)
}

// builds makes the builder of the kind whose payload type is P from f.
func builds[P templates.Payload](f func(c *call, p P) (any, error)) builder {
	var zero P
	return builder{
		payload: zero,
		decode: func(raw json.RawMessage) (templates.Payload, error) {
			var p P
			if len(raw) > 0 {
				if err := json.Unmarshal(raw, &p); err != nil {
					return nil, err
				}
			}
			return p, nil
		},
		build: func(c *call, p templates.Payload) (any, error) { return f(c, p.(P)) },
	}
}

// ballotData is a ballot's template data.
func ballotData(c *call) any {
	return templates.Ballot{Name: c.row.MemberName, Race: c.sh.open, Candidates: c.sh.candidates,
		Single: len(c.sh.Candidates) == 1, Code: c.code, Reply: c.reply}
}

// ballotStamp is a ballot's template data for a stamp.
func ballotStamp(r *Renderer, sh *sheet, name, code string) any {
	return templates.Ballot{Name: name, Race: sh.open, Candidates: sh.candidates, Single: len(sh.Candidates) == 1, Code: code,
		Reply: r.ID.Address(token.Ballot + "-" + code)}
}

// reminderStamp is a reminder's template data for a stamp.
func reminderStamp(r *Renderer, sh *sheet, name, code string) any {
	return templates.Reminder{Name: name, Race: sh.open, Candidates: sh.candidates, Single: len(sh.Candidates) == 1, Code: code,
		Reply: r.ID.Address(token.Ballot + "-" + code)}
}

// closedData answers a vote after the close. Once the results are out,
// the answer says what they were; the cached sheet may be from before the
// close, so it is read afresh.
func closedData(c *call, _ templates.ClosedMail) (any, error) {
	d := templates.Closed{Name: c.row.MemberName, Race: c.sh.race}
	if rs, err := c.r.Store.RaceSheet(c.ctx, c.row.RaceID.Int64); err == nil && rs.Tally != nil &&
		(!rs.Race.HoldResults || rs.Race.ReleasedAt != nil) {
		if a, err := resultsData(rs, raceData(rs), c.row.MemberName); err == nil {
			d.Results = &a
		}
	}
	return d, nil
}

// announcementData is the results email, to a member or a group leader.
func announcementData(c *call, p templates.AnnouncementMail) (any, error) {
	a, err := resultsData(c.sh.RaceSheet, c.sh.race, c.row.MemberName)
	if err != nil {
		return nil, err
	}
	if len(p.LeaderOf) > 0 {
		a.Name, a.LeaderOf = p.Name, p.LeaderOf
	}
	a.ResultsURL = c.r.ID.ResultsURL()
	a.YouVoted = p.Voted
	return a, nil
}

// heldData is the held-results notice. The race's sheet may be cached
// from before its close: it is loaded with its tally.
func heldData(c *call, _ templates.HeldMail) (any, error) {
	closed, err := c.r.sheet(c.ctx, c.row.RaceID.Int64, true)
	if err != nil {
		return nil, err
	}
	return resultsData(closed.RaceSheet, closed.race, c.row.MemberName)
}

// digestData is the staff digest, with its times in staff's zone and its
// turnout chart.
func digestData(c *call, d templates.Digest) (any, error) {
	d.Org = c.r.ID.Org
	c.r.staffTimes(&d)
	if len(d.Open) > 0 {
		chart, err := digestChart(&d, c.msgID)
		if err != nil {
			return nil, err
		}
		c.inline = append(c.inline, chart)
	}
	d.Reply = c.reply
	return d, nil
}

// joinConfirmData is a sign-up's confirmation request: replies go to its
// confirmation address.
func joinConfirmData(c *call, p templates.JoinConfirm) (any, error) {
	if !c.row.MemberID.Valid {
		return nil, fmt.Errorf("join-confirm without a member")
	}
	c.reply = c.r.ID.Address(token.Confirm + "-" + c.r.Tokens.Make(token.Confirm, c.row.MemberID.Int64, nil))
	return p, nil
}

// memberChangeData is the request to confirm a member's change. The
// token names the change, not the member: only this request can be
// confirmed by a reply to it.
func memberChangeData(c *call, p templates.MemberChange) (any, error) {
	c.reply = c.r.ID.Address(token.Confirm + "-" + c.r.Tokens.Make(token.Change, p.ChangeID, nil))
	return p, nil
}

// questionnaireData is the questionnaire to a campaign: its deadline in
// staff's zone, and replies to the candidate's questionnaire address
// (token.Questionnaire, the candidate's id).
func questionnaireData(c *call, p templates.QuestionnaireMail) (any, error) {
	if loc := c.r.ID.StaffTZ; loc != nil {
		p.Deadline = p.Deadline.In(loc)
	}
	c.reply = c.r.ID.Address(token.Questionnaire + "-" + c.r.Tokens.Make(token.Questionnaire, p.CandidateID, nil))
	return templates.Questionnaire{QuestionnaireMail: p, Reply: c.reply}, nil
}
