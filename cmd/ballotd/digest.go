package main

import (
	"context"
	"fmt"
)

// cmdDigest enqueues the staff digest now (if anything is new since the
// last one) and sends what the outbox holds.
func cmdDigest(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "send" {
		return usageError{"digest: want digest send"}
	}
	if err := noArgs(flags("digest send"), args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(e.getenv, need{mail: true})
	if err != nil {
		return err
	}
	if len(cfg.Staff) == 0 {
		return configError{"BALLOTD_STAFF is not set (the staff addresses the digest goes to)"}
	}
	d, err := buildDaemon(ctx, e, cfg)
	if err != nil {
		return err
	}
	defer d.store.Close()
	if err := usableSchema(ctx, d.store); err != nil {
		return err
	}
	dg, sent, err := d.store.SendDigest(ctx, cfg.Staff, 0)
	if err != nil {
		return err
	}
	if !sent {
		fmt.Fprintln(e.stdout, "nothing new since the last digest; none sent")
		return nil
	}
	if _, err := d.outbox.Drain(ctx); err != nil {
		return err
	}
	held := ""
	if dg.HeldAnswers > 0 {
		held = fmt.Sprintf(", %d answers held back by the rate limit", dg.HeldAnswers)
	}
	fmt.Fprintf(e.stdout, "digest sent to %d staff: %d new nominations, %d to vet, %d open races, %d to look at, %d results%s\n",
		len(cfg.Staff), len(dg.Nominations), len(dg.Vetting), len(dg.Open), len(dg.Problems), len(dg.Results), held)
	return nil
}
