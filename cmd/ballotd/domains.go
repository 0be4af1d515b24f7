package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ballotd/ballotd/ballots"
)

// cmdDelivery reports sent, deferred, bounced and complaints by recipient
// domain class, with the top reasons.
func cmdDelivery(ctx context.Context, e *env, args []string) error {
	fs := flags("delivery")
	asJSON := fs.Bool("json", false, "print JSON")
	wave := fs.String("wave", "", "only the mail of this wave's races")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageError{"delivery: want delivery [--wave W] [--json]"}
	}
	st, _, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	d, err := st.DeliveryByDomain(ctx, *wave)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, d)
	}
	return writeDomainDeliveries(e.stdout, d)
}

func writeDomainDeliveries(w io.Writer, d ballots.DomainDeliveries) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAINS\tSENT\tDEFERRED\tBOUNCED\tPENDING\tCOMPLAINTS\tTOP REASONS")
	for _, r := range append(d.Domains, d.Total) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Class, r.Sent, r.Deferred, r.Bounced, r.Pending, r.Complaints, reasonsLine(r.Reasons))
	}
	return tw.Flush()
}

// reasonsLine is "unknown_mailbox 12, policy 3", or "-".
func reasonsLine(rs []ballots.ReasonCount) string {
	if len(rs) == 0 {
		return "-"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s %d", r.Reason, r.Count)
	}
	return strings.Join(parts, ", ")
}
