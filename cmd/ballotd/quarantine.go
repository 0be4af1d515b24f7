package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/inbound"
	"github.com/ballotd/ballotd/inbound/message"
	"github.com/ballotd/ballotd/internal/token"
)

// cmdQuarantine lists the messages kept in quarantine, or replays one.
func cmdQuarantine(ctx context.Context, e *env, args []string) error {
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "list":
		return cmdQuarantineList(ctx, e, args[1:])
	case "replay":
		pos, err := exactArgs(flags("quarantine replay"), args[1:], 1, "quarantine replay ID")
		if err != nil {
			return err
		}
		id, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil || id <= 0 {
			return usageError{fmt.Sprintf("quarantine replay: %q is not a message id", pos[0])}
		}
		return cmdQuarantineReplay(ctx, e, id)
	}
	return usageError{"quarantine: want quarantine list [--json] or quarantine replay ID"}
}

func cmdQuarantineList(ctx context.Context, e *env, args []string) error {
	return listing(ctx, e, "quarantine list", args, func(ctx context.Context, st *ballots.Store, _ Config) ([]ballots.QuarantineEntry, error) {
		qs, err := st.Quarantine(ctx)
		if qs == nil {
			qs = []ballots.QuarantineEntry{}
		}
		return qs, err
	}, func(tw *tabwriter.Writer, qs []ballots.QuarantineEntry) {
		fmt.Fprintln(tw, "ID\tRECEIVED\tFROM\tSUBJECT\tCLASS\tOUTCOME\tDETAIL")
		for _, q := range qs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", q.ID, q.Received.UTC().Format(time.RFC3339), cell(q.From, 40),
				cell(q.Subject, 40), q.Class, q.Outcome, cell(q.Detail, 80))
		}
	}, nil)
}

// cell makes s one short table cell: no tabs or line breaks (a hostile
// subject cannot forge rows), at most n runes.
func cell(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}

func cmdQuarantineReplay(ctx context.Context, e *env, id int64) error {
	st, cfg, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	switch {
	case cfg.Domain == "":
		return missing("BALLOTD_DOMAIN", "the mail domain of the ballot mailbox, e.g. example.org")
	case cfg.Secret == "":
		return missing("BALLOTD_SECRET", "the secret that keyed the ballot tokens")
	}
	toks, err := token.NewKey(cfg.Secret)
	if err != nil {
		return configError{"BALLOTD_SECRET: " + err.Error()}
	}
	p := &inbound.Processor{Store: st, Tokens: toks, Box: message.Mailbox{Local: cfg.Mailbox, Domain: cfg.Domain},
		Logger: e.log.With("part", "replay"), AuthservID: cfg.AuthservID, Staff: cfg.Staff, Questions: cfg.Questions,
		StrangerAnswersPerHour: cfg.StrangerAnswers}
	res, err := p.Replay(ctx, id)
	if err != nil {
		return err
	}
	race := ""
	if res.Race != "" {
		race = " in " + res.Race
	}
	fmt.Fprintf(e.stdout, "message %d: %s, %s%s\n", id, res.Class, res.Outcome, race)
	return nil
}
