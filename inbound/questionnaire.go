package inbound

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/token"
	"github.com/ballotd/ballotd/templates"
)

// Outcomes of the questionnaire's messages (issue 20).
const (
	// OutcomeAnswered is a campaign's reply to the questionnaire, kept.
	OutcomeAnswered = "questionnaire-received"
	// OutcomeQuestionnaireClosed is a reply after the candidate's race
	// opened or the candidate left it: kept, not taken.
	OutcomeQuestionnaireClosed = "questionnaire-closed"
)

// questionnairesPerDay bounds the questionnaires one campaign address
// gets a day: a leader's form names the address, so a flood of forms
// naming one address must not flood it.
const questionnairesPerDay = 5

// questionnaireOn says the questionnaire step is on (BALLOTD_QUESTIONNAIRE).
func (p *Processor) questionnaireOn() bool { return len(p.Questions) > 0 }

// sendQuestionnaire sends the questionnaire of the candidate res
// nominated to their campaign email, once per candidate, within the daily
// bound of the address.
func (p *Processor) sendQuestionnaire(ctx context.Context, tx *sqlx.Tx, id int64, res ballots.NominationResult, out *ballots.Outcome) error {
	// Once per candidate: the first nomination that gives the campaign
	// email while the step is on sends it.
	switch _, err := ballots.QuestionnaireOf(ctx, tx, res.CandidateID); {
	case err == nil:
		return nil
	case !errors.Is(err, ballots.ErrNotFound):
		return err
	}
	full, ok, err := ballots.TakeAnswerCaps(ctx, tx, []ballots.AnswerCap{{Scope: "kind:" + string(templates.KindQuestionnaire) + ":" + res.Campaign,
		Period: ballots.CapDay, Max: questionnairesPerDay}})
	if err != nil {
		return err
	}
	if !ok {
		why := fmt.Sprintf("%s at most %d questionnaires a day to one address", heldBack, full.Max)
		noteAnswer(out, why)
		return ballots.HoldAnswer(ctx, tx, id, res.Campaign, templates.KindQuestionnaire, why)
	}
	sent, err := ballots.SendQuestionnaire(ctx, tx, res.CandidateID, id, res.Campaign, p.Questions)
	if err != nil {
		return err
	}
	if sent {
		out.Detail += fmt.Sprintf("\nquestionnaire sent to %s", res.Campaign)
	}
	return nil
}

// questionnaireOfTag returns the candidate a q- token names, or 0.
func (p *Processor) questionnaireOfTag(m *message.Message) int64 {
	tag, ok := message.FindTag(m, p.Box)
	if !ok || tag.Kind != token.Questionnaire {
		return 0
	}
	id, err := p.Tokens.Open(token.Questionnaire, tag.Token)
	if err != nil {
		return 0
	}
	return id
}

// questionnaire takes a campaign's reply to the questionnaire: from the
// campaign address it was sent to, to the candidate's questionnaire
// address. The answers are read per question, kept (replacing an earlier
// reply), the campaign gets a receipt and staff the answers.
func (p *Processor) questionnaire(ctx context.Context, tx *sqlx.Tx, id int64, m *message.Message, out ballots.Outcome) (ballots.Outcome, bool, error) {
	cid := p.questionnaireOfTag(m)
	if cid == 0 {
		out.Outcome, out.Quarantined, out.Detail = OutcomeUnmatched, true, "questionnaire reply to an unknown or forged token"
		return out, false, nil
	}
	q, err := ballots.QuestionnaireOf(ctx, tx, cid)
	if errors.Is(err, ballots.ErrNotFound) {
		out.Outcome, out.Quarantined, out.Detail = OutcomeUnmatched, true, fmt.Sprintf("questionnaire reply for candidate %d, who was sent none", cid)
		return out, false, nil
	}
	if err != nil {
		return out, false, err
	}
	if !strings.EqualFold(m.From, q.Email) {
		// Kept for staff, not taken: only the campaign address answers.
		out.Outcome, out.Quarantined = OutcomeQuarantined, true
		out.Detail = fmt.Sprintf("questionnaire reply for candidate %d from %q, not the campaign address", cid, m.From)
		return out, false, nil
	}
	answers, unread := message.ReadAnswers(m, q.Questions)
	attached := message.Attachments(m)
	r := ballots.QuestionnaireReply{CandidateID: cid, InboundID: id, Unread: unread, Attachments: attached}
	for _, a := range answers {
		r.Answers = append(r.Answers, templates.QAnswer{Number: a.Number, Question: a.Question, Answer: a.Answer})
	}
	before, err := ballots.RecordQuestionnaireReply(ctx, tx, r)
	if errors.Is(err, ballots.ErrQuestionnaireClosed) {
		out.Outcome, out.Detail = OutcomeQuestionnaireClosed, err.Error()
		return out, false, nil
	}
	if err != nil {
		return out, false, err
	}
	late := p.now().After(q.Deadline)
	out.Outcome = OutcomeAnswered
	out.Detail = fmt.Sprintf("candidate %d (%s, %s): %d of %d answers read", cid, q.Candidate, q.Race, len(answers), len(q.Questions))
	if len(unread) > 0 {
		out.Detail += fmt.Sprintf("; none found for %v", unread)
	}
	if before.Replies > 0 {
		out.Detail += "; replaces the earlier reply"
	}
	sent, err := p.reply(ctx, tx, id, m, &out, q.Email, 0, templates.QuestionnaireReceipt{Thread: thread(m), Candidate: q.Candidate, Race: q.Race,
		Answered: len(answers), Questions: len(q.Questions), Unread: unread, Attachments: attached, Replaced: before.Replies > 0, Late: late})
	if err != nil {
		return out, false, err
	}
	v, err := ballots.VettingList(ctx, tx)
	if err != nil {
		return out, false, err
	}
	notice := templates.QuestionnaireAnswers{CandidateID: cid, Candidate: q.Candidate, Race: q.Race, Groups: q.Groups, From: m.From,
		Answers: r.Answers, Unread: unread, Attachments: attached, Replaced: before.Replies > 0, Late: late}
	for _, c := range v {
		if c.ID == cid {
			notice.Status = c.Status
		}
	}
	toStaff, err := p.toStaff(ctx, tx, id, &out, notice, "questionnaire notices")
	if err != nil {
		return out, false, err
	}
	return out, sent || toStaff, nil
}

// reviewCommand is staff's review of a questionnaire: "PASS 12",
// "FAIL 12 reason".
var reviewCommand = regexp.MustCompile(`(?i)^\s*(pass|fail)\s+#?(\d{1,12})\b[\s:,.-]*(.*)$`)

// review runs one PASS or FAIL command (c, reviewCommand's match) from
// staff address by, and returns its result line.
func review(ctx context.Context, tx *sqlx.Tx, c []string, by string) (string, error) {
	cid, _ := strconv.ParseInt(c[2], 10, 64)
	pass := strings.EqualFold(c[1], "pass")
	verb := strings.ToUpper(c[1])
	reason := strings.TrimSpace(c[3])
	if !pass && reason == "" {
		return fmt.Sprintf("FAIL %d: not done: give a reason after the number", cid), nil
	}
	v, err := ballots.ReviewQuestionnaire(ctx, tx, cid, pass, reason, by)
	switch {
	case errors.Is(err, ballots.ErrNotFound) || errors.Is(err, ballots.ErrVet):
		return fmt.Sprintf("%s %d: not done: %v", verb, cid, err), nil
	case err != nil:
		return "", err
	}
	line := fmt.Sprintf("%s %d: %s (%s): questionnaire %s; candidate %s", verb, cid, v.Name, v.Race, v.Questionnaire, v.Status)
	if pass && v.Status == "approved" {
		line += ", on the ballot when the race opens"
	} else if pass {
		line += fmt.Sprintf("; on the ballot once approved (APPROVE %d)", cid)
	}
	return line, nil
}

// questionnaireWords says where a candidate's questionnaire stands, for
// the vetting notice.
func questionnaireWords(v ballots.Vetting) string {
	switch {
	case v.Questionnaire != "none":
		return v.Questionnaire
	case v.Campaign == "":
		return fmt.Sprintf("not sent: no campaign email given yet (or: ballotd vet questionnaire %d passed)", v.ID)
	}
	return "sent to " + v.Campaign + ", no answer yet"
}
