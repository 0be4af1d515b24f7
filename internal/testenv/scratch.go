package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ballotd/ballotd/internal/pgtemp"
)

var (
	scratchOnce    sync.Once
	scratchURL     string
	scratchCluster *pgtemp.Cluster // non-nil if ScratchServerURL started one
)

// ScratchServerURL returns the URL of a PostgreSQL server's maintenance
// database on which a test may create and drop databases of its own: the
// tests of the demo, dev and the benchmarks, whose subject includes making
// a scratch database and dropping it at exit. It is a throwaway cluster
// (fsync off) started once per test binary on first use and stopped by
// Main, so those drops wait for no checkpoint of the test server, where
// every other test's writes would have to be synced first (tens of
// seconds while the suite runs). When no cluster can be started (no
// PostgreSQL binaries here) it is the test server's URL.
func ScratchServerURL(t testing.TB) string {
	t.Helper()
	scratchOnce.Do(func() {
		if os.Getenv("BALLOTD_TEST_PGTEMP") == "1" {
			return // the test server is a throwaway cluster already
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c, err := pgtemp.Start(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testenv: no scratch cluster (%v): the test server is used\n", err)
			return
		}
		scratchCluster, scratchURL = c, c.URL
	})
	if scratchURL != "" {
		return scratchURL
	}
	srvURL, _, err := server()
	if err != nil {
		t.Fatal(err)
	}
	return srvURL
}

// stopScratch stops the cluster ScratchServerURL started, if any.
func stopScratch() error {
	scratchOnce.Do(func() {}) // none can start after this
	if scratchCluster == nil {
		return nil
	}
	return scratchCluster.Stop()
}
