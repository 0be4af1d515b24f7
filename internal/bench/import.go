package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/progress"
)

// Import runs `ballotd bench import`: it measures a members import against the least any importer
// must do, in one run on one server: it writes a CSV of N generated
// members, loads it with psql's \copy into a table keyed on the email, then
// imports it with ballotd (COPY into staging, one set-based upsert), then
// imports it again (nothing may change), and prints the rates, their ratio
// and ballotd's peak memory.
func Import(ctx context.Context, o Options, w io.Writer) error {
	psql, err := exec.LookPath("psql")
	if err != nil {
		return fmt.Errorf("bench import: psql is needed for the comparison: %w", err)
	}
	dbURL, cleanup, err := o.Database(ctx, "ballotd_bench")
	if err != nil {
		return err
	}
	defer cleanup()
	dir, err := os.MkdirTemp("", "ballotd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "members.csv")
	size, err := writeMembersCSV(file, o.Rows)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "bench import: %d members, %.1f MB CSV\n", o.Rows, float64(size)/1e6)

	st, err := ballots.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	copyTime, err := ballots.PsqlCopy(ctx, psql, dbURL, file)
	if err != nil {
		return fmt.Errorf("bench import: %w", err)
	}

	importOnce := func() (ballots.MemberReport, time.Duration, error) {
		f, err := os.Open(file)
		if err != nil {
			return ballots.MemberReport{}, 0, err
		}
		defer f.Close()
		p := progress.New(o.Stderr, "ballotd import")
		t := time.Now()
		rep, err := st.ImportMemberList(ctx, f, ballots.MemberImport{Progress: p.ImportRows(size)})
		p.Done()
		return rep, time.Since(t), err
	}
	rep, importTime, err := importOnce()
	if err != nil {
		return err
	}
	again, againTime, err := importOnce()
	if err != nil {
		return err
	}
	rate := func(d time.Duration) float64 { return float64(o.Rows) / d.Seconds() }
	fmt.Fprintf(w, "psql \\copy into a table keyed on email:  %6.2f s  %9.0f rows/s\n", copyTime.Seconds(), rate(copyTime))
	fmt.Fprintf(w, "ballotd import members (first load):     %6.2f s  %9.0f rows/s  (%d added)\n", importTime.Seconds(), rate(importTime), rep.Added)
	fmt.Fprintf(w, "ballotd import members (same file again): %6.2f s  %9.0f rows/s  (%d unchanged)\n", againTime.Seconds(), rate(againTime), again.Unchanged)
	fmt.Fprintf(w, "ratio ballotd / psql \\copy: %.2f\n", copyTime.Seconds()/importTime.Seconds())
	fmt.Fprintf(w, "ballotd peak memory: %.1f MB RSS high-water mark (VmHWM, whole run)\n", float64(peakRSS())/1e6)
	if rep.Added != o.Rows || again.Unchanged != o.Rows || len(rep.Rejected) != 0 {
		return fmt.Errorf("bench import: want %d added then %d unchanged, got %d and %d (%d rejected)", o.Rows, o.Rows, rep.Added, again.Unchanged, len(rep.Rejected))
	}
	return nil
}

func writeMembersCSV(path string, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	bw.WriteString("email,name,district\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(bw, "member%d@example.net,\"Member %d, Jr.\",MA-%02d\n", i, i, 1+i%9)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	return fi.Size(), f.Close()
}
