package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ballotd/ballotd/ballots"
)

// cmdBallots lists a race's ballots with their delivery status.
func cmdBallots(ctx context.Context, e *env, args []string) error {
	fs := flags("ballots")
	asJSON := fs.Bool("json", false, "print JSON")
	status := fs.String("status", "", "only ballots with this status")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{"ballots: want ballots CODE [--json] [--status S]"}
	}
	if *status != "" && !slices.Contains(ballots.DeliveryStatuses, *status) {
		return usageError{fmt.Sprintf("ballots: --status %q: want one of %s", *status, strings.Join(ballots.DeliveryStatuses, ", "))}
	}
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	d, err := st.Deliveries(ctx, rest[0], *status)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, d)
	}
	return writeDeliveries(e.stdout, d)
}

func writeDeliveries(w io.Writer, d ballots.BallotDeliveries) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tNAME\tSTATUS\tDETAIL")
	for _, b := range d.Ballots {
		detail := deliveryDetail(b)
		switch {
		case b.Copies == 2:
			detail = strings.TrimSpace(detail + " (sent again once on request)")
		case b.Copies > 2:
			detail = strings.TrimSpace(fmt.Sprintf("%s (sent again %d times on request)", detail, b.Copies-1))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.Email, b.Name, b.Status, detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var parts []string
	for _, s := range ballots.DeliveryStatuses {
		parts = append(parts, fmt.Sprintf("%s %d", s, d.Totals[s]))
	}
	_, err := fmt.Fprintf(w, "%s (%s) totals: %s\n", d.Race, d.Wave, strings.Join(parts, ", "))
	return err
}

func deliveryDetail(b ballots.BallotDelivery) string {
	code := ""
	if b.Code != nil && !strings.HasPrefix(b.Reply, fmt.Sprintf("%d ", *b.Code)) {
		// A reply stored whole starts with its code already.
		code = fmt.Sprintf("%d ", *b.Code)
	}
	switch b.Status {
	case ballots.DeliveryVoted:
		return "voted " + b.VotedAt.UTC().Format(time.RFC3339)
	case ballots.DeliveryBounced:
		return strings.TrimSpace(b.BounceStatus + " " + b.BounceDiagnostic)
	case ballots.DeliveryDeferred:
		next := ""
		if b.NextAttempt != nil {
			next = "next attempt " + b.NextAttempt.UTC().Format(time.RFC3339) + "; "
		}
		return fmt.Sprintf("%slast reply: %s%s", next, code, b.Reply)
	case ballots.DeliveryFailed:
		return strings.TrimSpace(code + b.Reply)
	case ballots.DeliverySent:
		d := strings.TrimSpace(code + b.Reply)
		if strings.HasPrefix(b.BounceStatus, "4.") {
			// Taken, then reported delayed (a full mailbox, a slow server):
			// the receiving side is still trying.
			d += "; then delayed: " + strings.TrimSpace(b.BounceStatus+" "+b.BounceDiagnostic)
		}
		return d
	}
	return ""
}
