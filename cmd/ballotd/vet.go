package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ballotd/ballotd/ballots"
)

// cmdVet is `ballotd vet approve|reject ID [--reason TEXT]` and
// `ballotd vet questionnaire ID received|passed|failed`.
func cmdVet(ctx context.Context, e *env, args []string) error {
	fs := flags("vet")
	reason := fs.String("reason", "", "why (kept with the decision)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	const want = "vet: want vet approve|reject ID [--reason TEXT] or vet questionnaire ID received|passed|failed"
	if len(pos) < 2 {
		return usageError{want}
	}
	id, err := strconv.ParseInt(pos[1], 10, 64)
	if err != nil || id < 1 {
		return usageError{fmt.Sprintf("vet: candidate ID %q is not a number (see ballotd candidates)", pos[1])}
	}
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	var v ballots.Vetting
	switch {
	case (pos[0] == "approve" || pos[0] == "reject") && len(pos) == 2:
		v, err = st.Vet(ctx, id, pos[0] == "approve", strings.TrimSpace(*reason))
	case pos[0] == "questionnaire" && len(pos) == 3:
		v, err = st.SetQuestionnaire(ctx, id, strings.ToLower(pos[2]))
	default:
		return usageError{want}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "candidate %d: %s in %s, %s, questionnaire %s, nominated by %s\n",
		v.ID, v.Name, v.Race, v.Status, v.Questionnaire, orNone(v.Groups))
	return nil
}
