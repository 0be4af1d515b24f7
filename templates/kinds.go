package templates

// Kind names a mail kind: the value of the outbox's kind column. The
// values are stored in existing databases, so a kind's string never
// changes.
//
// The kinds are declared here, beside their payload types, because both
// sides of the outbox use them and templates imports nothing of ours:
// ballots (and inbound) enqueue a payload, mailer renders it. How each
// kind is rendered — its template files, whether it answers a message,
// whether staff may reply to it, the builder that turns a row and its
// payload into template data — is the table in mailer (mailer/kinds.go).
type Kind string

// The mail kinds, one per payload type (Payload).
const (
	KindBallot Kind = "ballot"
	// KindBallotResend is a ballot sent again, rendered with the ballot
	// template. It is its own kind because the first ballot's row is unique
	// per (kind, ballot). The token is the same as the first ballot's: a
	// ballot token is never stored but derived from BALLOTD_SECRET, the
	// ballot's id and its nonce (Tokens.Make), so it can be recomputed at
	// any time and the lost ballot and the new one both still work; nothing
	// is voided, and a vote already cast stays.
	KindBallotResend Kind = "ballot-resend"
	KindReminder     Kind = "reminder"
	KindReceipt      Kind = "receipt"
	KindClarify      Kind = "clarify"
	KindClosed       Kind = "closed"
	// KindNoChange answers a reply that changed nothing: the same vote
	// again, or a reply written before the vote that stands.
	KindNoChange     Kind = "no-change"
	KindNotVoter     Kind = "not-voter"
	KindUnmatched    Kind = "unmatched"
	KindAnnouncement Kind = "announcement"
	// KindUnauthenticated tells a voter that a reply from their address
	// failed sender authentication and was not counted.
	KindUnauthenticated Kind = "unauthenticated"
	// KindResendNeutral is the one answer to a resend request that cannot
	// be served (not a member, no open ballot, over the daily limit). It
	// says the same in every case, so it reveals nothing about who is
	// registered.
	KindResendNeutral Kind = "resend-neutral"
	// KindHeld tells staff a race's results are held until released.
	KindHeld Kind = "results-held"

	KindNominationConfirm  Kind = "nomination-confirm"
	KindNominationProblems Kind = "nomination-problems"
	KindBlankForm          Kind = "blank-form"
	KindVettingNotice      Kind = "vetting-notice"
	KindStaffAnswer        Kind = "staff-answer"
	KindJoinConfirm        Kind = "join-confirm"
	KindJoinProblems       Kind = "join-problems"
	KindWelcome            Kind = "welcome"
	KindUnsubscribed       Kind = "unsubscribed"
	// KindMemberChange asks a member's registered address to confirm a
	// change a sign-up asked for.
	KindMemberChange Kind = "member-change"
	// KindUnauthenticatedRequest tells a registered address that a
	// request in its name failed sender authentication.
	KindUnauthenticatedRequest Kind = "unauthenticated-request"

	// KindQuestionnaire is the policy questionnaire (or its one reminder)
	// to a candidate's campaign.
	KindQuestionnaire Kind = "questionnaire"
	// KindQuestionnaireReceipt confirms a campaign's answers arrived.
	KindQuestionnaireReceipt Kind = "questionnaire-receipt"
	// KindQuestionnaireAnswers brings a campaign's answers to staff, who
	// may reply PASS n or FAIL n reason.
	KindQuestionnaireAnswers Kind = "questionnaire-answers"
	// KindQuestionnaireShared shares a passed questionnaire's answers
	// with the leaders of the groups in the race's state or district.
	KindQuestionnaireShared Kind = "questionnaire-shared"

	KindVetting Kind = "vetting"
	KindDigest  Kind = "digest"
)

// Payload is what an outbox row carries (as JSON in its data column)
// beyond the rows it references. Each payload type is one kind's, and
// says which: an enqueued mail's kind is its payload's.
type Payload interface {
	Kind() Kind
}

// Thread is embedded in the payload of a mail that answers a message: the
// Message-ID it answers, for In-Reply-To ("" for an answer not threaded,
// to a message that may be forged).
type Thread struct {
	InReplyTo string `json:"in_reply_to,omitempty"`
}

// Parent is the Message-ID the mail answers, "" for none.
func (t Thread) Parent() string { return t.InReplyTo }

// BallotMail is the payload of a ballot: none, the row references the
// ballot.
type BallotMail struct{}

// BallotResendMail is the payload of a ballot sent again on request: none.
type BallotResendMail struct{}

// ReminderMail is the payload of a reminder: none.
type ReminderMail struct{}

// HeldMail is the payload of the held-results notice to staff: none, the
// row references the race.
type HeldMail struct{}

// ReceiptMail is the payload of a vote receipt.
type ReceiptMail struct {
	Choice  string `json:"choice,omitempty"`
	Receipt string `json:"receipt,omitempty"`
	// Read says how a near-miss answer was read.
	Read string `json:"read,omitempty"`
	Thread
}

// NoChangeMail is the payload of the note to a reply that changed
// nothing.
type NoChangeMail struct {
	Choice string `json:"choice,omitempty"` // the vote that stands
	// Stale marks a reply written before the vote that stands.
	Stale bool `json:"stale,omitempty"`
	Thread
}

// ClarifyMail is the payload of the answer to a reply that could not be
// read.
type ClarifyMail struct {
	Reason string `json:"reason,omitempty"`
	// Quote is the start of what the member wrote.
	Quote string `json:"quote,omitempty"`
	Thread
}

// ClosedMail is the payload of the answer to a vote after the close.
type ClosedMail struct {
	Thread
}

// NotVoterMail is the payload of the notice to a ballot's voter that
// someone else replied to it (inbound does not thread it: it goes to the
// voter, not to the sender).
type NotVoterMail struct {
	Sender string `json:"sender,omitempty"`
	Thread
}

// UnauthenticatedMail is the payload of the notice to a ballot's voter
// that a reply in their name failed sender authentication.
type UnauthenticatedMail struct {
	Sender string `json:"sender,omitempty"`
	Thread
}

// UnmatchedMail is the payload of the answer to a message that matched
// no ballot.
type UnmatchedMail struct {
	Subject string `json:"subject,omitempty"`
	Thread
}

// ResendNeutralMail is the payload of the neutral answer to a resend
// request.
type ResendNeutralMail struct {
	Subject string `json:"subject,omitempty"`
	Thread
}

// AnnouncementMail is the payload of the results email.
type AnnouncementMail struct {
	// Voted marks a member who voted in the race: only they are thanked.
	Voted bool `json:"voted,omitempty"`
	// Name and LeaderOf address the announcement to a group leader.
	Name     string   `json:"name,omitempty"`
	LeaderOf []string `json:"leader_of,omitempty"`
}

// Kind is KindBallot.
func (BallotMail) Kind() Kind { return KindBallot }

// Kind is KindBallotResend.
func (BallotResendMail) Kind() Kind { return KindBallotResend }

// Kind is KindReminder.
func (ReminderMail) Kind() Kind { return KindReminder }

// Kind is KindHeld.
func (HeldMail) Kind() Kind { return KindHeld }

// Kind is KindReceipt.
func (ReceiptMail) Kind() Kind { return KindReceipt }

// Kind is KindNoChange.
func (NoChangeMail) Kind() Kind { return KindNoChange }

// Kind is KindClarify.
func (ClarifyMail) Kind() Kind { return KindClarify }

// Kind is KindClosed.
func (ClosedMail) Kind() Kind { return KindClosed }

// Kind is KindNotVoter.
func (NotVoterMail) Kind() Kind { return KindNotVoter }

// Kind is KindUnauthenticated.
func (UnauthenticatedMail) Kind() Kind { return KindUnauthenticated }

// Kind is KindUnmatched.
func (UnmatchedMail) Kind() Kind { return KindUnmatched }

// Kind is KindResendNeutral.
func (ResendNeutralMail) Kind() Kind { return KindResendNeutral }

// Kind is KindAnnouncement.
func (AnnouncementMail) Kind() Kind { return KindAnnouncement }

// The kinds whose payload is their template's own data.

// Kind is KindNominationConfirm.
func (NominationConfirm) Kind() Kind { return KindNominationConfirm }

// Kind is KindNominationProblems.
func (NominationProblems) Kind() Kind { return KindNominationProblems }

// Kind is KindBlankForm.
func (BlankForm) Kind() Kind { return KindBlankForm }

// Kind is KindVettingNotice.
func (VettingNotice) Kind() Kind { return KindVettingNotice }

// Kind is KindStaffAnswer.
func (StaffAnswer) Kind() Kind { return KindStaffAnswer }

// Kind is KindJoinConfirm.
func (JoinConfirm) Kind() Kind { return KindJoinConfirm }

// Kind is KindJoinProblems.
func (JoinProblems) Kind() Kind { return KindJoinProblems }

// Kind is KindWelcome.
func (Welcome) Kind() Kind { return KindWelcome }

// Kind is KindUnsubscribed.
func (Unsubscribed) Kind() Kind { return KindUnsubscribed }

// Kind is KindMemberChange.
func (MemberChange) Kind() Kind { return KindMemberChange }

// Kind is KindUnauthenticatedRequest.
func (UnauthenticatedRequest) Kind() Kind { return KindUnauthenticatedRequest }

// Kind is KindVetting.
func (Vetting) Kind() Kind { return KindVetting }

// Kind is KindDigest.
func (Digest) Kind() Kind { return KindDigest }
