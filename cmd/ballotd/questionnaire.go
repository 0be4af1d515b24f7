package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ballotd/ballotd/ballots"
)

// cmdQuestionnaire is `ballotd questionnaire show ID [--json]`: a
// candidate's policy questionnaire, its status and the campaign's answers.
func cmdQuestionnaire(ctx context.Context, e *env, args []string) error {
	const want = "questionnaire: want questionnaire show ID [--json] (ID: the candidate's, see ballotd candidates)"
	if len(args) < 2 || args[0] != "show" {
		return usageError{want}
	}
	id, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil || id < 1 {
		return usageError{fmt.Sprintf("questionnaire show: candidate ID %q is not a number (see ballotd candidates)", args[1])}
	}
	return listing(ctx, e, "questionnaire show", args[2:], func(ctx context.Context, st *ballots.Store, _ Config) (ballots.Questionnaire, error) {
		return st.Questionnaire(ctx, id)
	}, func(tw *tabwriter.Writer, q ballots.Questionnaire) {
		fmt.Fprintf(tw, "candidate %d: %s (%s), %s; questionnaire %s\n", q.CandidateID, q.Candidate, q.Race, q.Vetting, q.Status)
		fmt.Fprintf(tw, "sent to %s on %s, due %s", q.Email, q.SentAt.UTC().Format("2006-01-02 15:04 MST"), q.Deadline.UTC().Format("2006-01-02 15:04 MST"))
		if q.RemindedAt != nil {
			fmt.Fprintf(tw, ", reminded %s", q.RemindedAt.UTC().Format("2006-01-02 15:04 MST"))
		}
		fmt.Fprintln(tw)
		if q.ReceivedAt == nil {
			fmt.Fprintln(tw, "no answer yet")
			return
		}
		fmt.Fprintf(tw, "answered %s (%d repl%s; the latest stands)\n", q.ReceivedAt.UTC().Format("2006-01-02 15:04 MST"), q.Replies, map[bool]string{true: "y", false: "ies"}[q.Replies == 1])
		for _, a := range q.Answers {
			fmt.Fprintf(tw, "\n%d. %s\n\n%s\n", a.Number, a.Question, a.Answer)
		}
		if len(q.Unread) > 0 {
			fmt.Fprintf(tw, "\nno answer found to: %s\n", strings.Trim(fmt.Sprint(q.Unread), "[]"))
		}
		if len(q.Attachments) > 0 {
			fmt.Fprintf(tw, "attached: %s\n", strings.Join(q.Attachments, ", "))
		}
	}, nil)
}
