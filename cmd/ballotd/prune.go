package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// defaultRetain is BALLOTD_RETAIN unset: 180 days after a wave closes.
const defaultRetain = 180 * 24 * time.Hour

// parseRetain reads BALLOTD_RETAIN: a number of days ("180" or "180d"), a
// Go duration ("720h"), or "off" or 0 to keep everything; "" is the
// default.
func parseRetain(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	switch v {
	case "":
		return defaultRetain, nil
	case "off", "0":
		return 0, nil
	}
	if days, err := strconv.Atoi(strings.TrimSuffix(v, "d")); err == nil {
		if days < 0 || days > 100*366 {
			return 0, fmt.Errorf("retention of %d days", days)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("retention %q: not days or a duration", v)
	}
	return d, nil
}

// cmdPrune applies retention now (see ballots.Store.Prune), or with
// --dry-run says what it would remove.
func cmdPrune(ctx context.Context, e *env, args []string) error {
	fs := flags("prune")
	dry := fs.Bool("dry-run", false, "say what would be pruned, change nothing")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	st, cfg, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.Retain == 0 {
		if *asJSON {
			return printJSON(e.stdout, map[string]any{"retain": "off"})
		}
		fmt.Fprintln(e.stdout, "BALLOTD_RETAIN is off: everything is kept, nothing pruned")
		return nil
	}
	rep, err := st.Prune(ctx, cfg.Retain, *dry)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, rep)
	}
	verb := "pruned"
	if *dry {
		verb = "would prune (dry run, nothing changed)"
	}
	names := ""
	if len(rep.Waves) > 0 {
		names = ": " + strings.Join(rep.Waves, ", ")
	}
	fmt.Fprintf(e.stdout, "retention %s: %d waves closed before %s%s\n", retainText(cfg.Retain), len(rep.Waves),
		rep.Before.UTC().Format(time.RFC3339), names)
	fmt.Fprintf(e.stdout, "%s: raw bytes of %d inbound messages (%s), quoted words of %d outbox rows (%s)\n", verb,
		rep.Inbound.Rows, byteText(rep.Inbound.Bytes), rep.Outbox.Rows, byteText(rep.Outbox.Bytes))
	fmt.Fprintln(e.stdout, "kept: every message's row, class and outcome; votes, receipts, tallies; outbox rows and their status")
	return nil
}

// retainText is a retention period in days when it is whole days.
func retainText(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// byteText is n bytes as people read them.
func byteText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
