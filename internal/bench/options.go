// Package bench owns `ballotd bench`: each benchmark times a whole path of
// ballotd against the least any program doing the same must do, on the
// same machine and database, and prints both with their ratio. Send: the
// outbox against a raw SMTP client; Import: a members import against
// psql's \copy; Replies: the mailbox reader against a raw IMAP reader;
// LMTP: the LMTP door against a raw LMTP server; Scale: tally, status,
// ballots, digest and metrics on a million members against bare counts
// of the same rows. Each runs in a scratch
// database, and verifies its own count before it reports.
package bench

import (
	"context"
	"io"
	"log/slog"
)

// Options are the flags of the benchmarks and what they run with.
type Options struct {
	// Send: members in the race, SMTP connections, runs (the summary
	// gives medians), the outbox's claim batch (0: its default), and a
	// file for a CPU profile of the first run's send ("" for none).
	Members, Conns, Runs, Batch int
	CPUProfile                  string
	// NoChunking: ballotd's outbox sends by pipelined DATA though the
	// sink offers CHUNKING (as to a relay that does not), not by BDAT.
	NoChunking bool
	// Quota: the relay's messages a minute before it says 452 4.5.3
	// (with Members, Conns and Batch as Send's).
	PerMinute int
	// Import: members in the generated CSV.
	Rows int
	// Scale: votes cast in its race of Members members (Runs: runs of
	// each operation, the median reported).
	Votes int
	// Replies and LMTP: members, each replying to their ballot once
	// (LMTP delivers them over Conns connections).
	Replies int
	// Replies on real servers: the IMAP server whose mailbox
	// ballots@bench.example is read ("": the embedded hub), its password
	// (any user), and the SMTP server that delivers into it.
	IMAPAddr, IMAPPassword, SMTPAddr string
	// Answers: Replies runs the outbox beside ballotd's reader, as serve
	// does, sending each receipt through the SMTP server (the hub's, or
	// SMTPAddr) while the reader works.
	Answers bool
	// DatabaseURL is DATABASE_URL, on whose server Send makes its scratch
	// databases ("": the server on 127.0.0.1:5432, else a throwaway
	// cluster).
	DatabaseURL string
	// Database makes the scratch database of Import, Replies and LMTP,
	// named from name; cleanup drops it.
	Database func(ctx context.Context, name string) (url string, cleanup func(), err error)
	// Log is the log of the outbox under test; Stderr shows progress and
	// what could not be cleaned up.
	Log    *slog.Logger
	Stderr io.Writer
}
