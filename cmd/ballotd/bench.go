package main

import (
	"context"
	"io"
	"os"

	"github.com/ballotd/ballotd/internal/bench"
)

// cmdBench runs `ballotd bench send|quota|import|replies|lmtp|scale` (internal/bench).
func cmdBench(ctx context.Context, e *env, sub string, args []string) error {
	o := bench.Options{DatabaseURL: e.getenv("DATABASE_URL"), Log: e.log, Stderr: e.stderr,
		Database: func(ctx context.Context, name string) (string, func(), error) {
			url, _, cleanup, err := localDatabase(ctx, e, name, true)
			return url, cleanup, err
		}}
	fs := flags("bench " + sub)
	switch sub {
	case "send":
		fs.IntVar(&o.Members, "members", 100000, "members in the race")
		fs.IntVar(&o.Conns, "conns", 16, "SMTP connections (ballotd workers and raw clients)")
		fs.IntVar(&o.Runs, "runs", 1, "runs; the summary gives medians")
		fs.IntVar(&o.Batch, "batch", 0, "outbox claim batch (0: the outbox default)")
		fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the first run's ballotd send phase to this file")
		fs.BoolVar(&o.NoChunking, "no-chunking", false, "ballotd sends by pipelined DATA though the sink offers CHUNKING (BDAT), as for a relay without it")
	case "quota":
		fs.IntVar(&o.Members, "members", 100000, "members in the race")
		fs.IntVar(&o.PerMinute, "per-minute", 20000, "messages the relay takes a minute before it answers 452 4.5.3")
		fs.IntVar(&o.Conns, "conns", 16, "SMTP connections (outbox workers)")
		fs.IntVar(&o.Batch, "batch", 0, "outbox claim batch (0: the outbox default)")
	case "import":
		fs.IntVar(&o.Rows, "rows", 1000000, "members to generate")
	case "replies":
		fs.IntVar(&o.Replies, "replies", 5000, "members, each replying to their ballot once")
		fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of ballotd's reader (first run) to this file")
		fs.IntVar(&o.Runs, "runs", 1, "runs; the summary gives medians")
		fs.StringVar(&o.IMAPAddr, "imap", "", "read the mailbox of ballots@bench.example on this IMAP server (host:port; its password from BALLOTD_IMAP_PASSWORD) instead of the embedded hub")
		fs.StringVar(&o.SMTPAddr, "smtp", "", "with --imap: deliver the replies through this SMTP server (host:port), which delivers into the IMAP server")
		fs.BoolVar(&o.Answers, "answers", false, "run the outbox beside ballotd's reader, as serve does, sending the receipts through the SMTP server while the replies are read")
	case "lmtp":
		fs.IntVar(&o.Replies, "replies", 5000, "members, each replying to their ballot once")
		fs.IntVar(&o.Conns, "conns", 4, "LMTP connections the client delivers over at once (Postfix: lmtp_destination_concurrency_limit)")
	case "scale":
		fs.IntVar(&o.Members, "members", 1000000, "members, each with a ballot in the race")
		fs.IntVar(&o.Votes, "votes", 0, "votes cast (0: one per member)")
		fs.IntVar(&o.Runs, "runs", 3, "runs of each operation; medians are printed")
	default:
		return usageError{"bench: want bench send, quota, import, replies, lmtp or scale"}
	}
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if sub == "scale" && o.Votes == 0 {
		o.Votes = o.Members
	}
	// The real IMAP server's password comes from the environment
	// (BALLOTD_IMAP_PASSWORD), never a flag (a flag shows in ps).
	o.IMAPPassword = os.Getenv("BALLOTD_IMAP_PASSWORD")
	run, err := benchRun(sub, o)
	if err != nil {
		return err
	}
	return run(ctx, o, e.stdout)
}

// benchRun checks the flags of bench sub and returns its benchmark.
func benchRun(sub string, o bench.Options) (func(context.Context, bench.Options, io.Writer) error, error) {
	switch sub {
	case "send":
		if o.Members < 1 || o.Conns < 1 || o.Conns > 256 || o.Runs < 1 {
			return nil, usageError{"bench send: --members and --runs must be ≥ 1, --conns 1 to 256"}
		}
		return bench.Send, nil
	case "quota":
		if o.Members < 100 || o.PerMinute < 1 || o.Conns < 1 || o.Conns > 256 {
			return nil, usageError{"bench quota: --members must be ≥ 100, --per-minute ≥ 1, --conns 1 to 256"}
		}
		return bench.Quota, nil
	case "import":
		return bench.Import, nil
	case "scale":
		return scaleRun(o)
	case "replies":
		if o.Replies < 1 || o.Runs < 1 {
			return nil, usageError{"bench replies: --replies and --runs must be ≥ 1"}
		}
		if (o.IMAPAddr == "") != (o.SMTPAddr == "") {
			return nil, usageError{"bench replies: --imap and --smtp go together"}
		}

		return bench.Replies, nil
	}
	if o.Replies < 1 || o.Conns < 1 {
		return nil, usageError{"bench lmtp: --replies and --conns must be ≥ 1"}
	}
	return bench.LMTP, nil
}

// scaleRun checks the flags of bench scale.
func scaleRun(o bench.Options) (func(context.Context, bench.Options, io.Writer) error, error) {
	if o.Members < 1 || o.Votes < 0 || o.Runs < 1 {
		return nil, usageError{"bench scale: --members and --runs must be ≥ 1, --votes ≥ 0"}
	}
	return bench.Scale, nil
}
