package ballots_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/ballotd/ballotd/ballots"
)

// BenchmarkImportMembers imports a 100,000-member CSV into a fresh table
// per iteration; b.N counts whole files.
func BenchmarkImportMembers(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("email,name,district\n")
	const rows = 100000
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&buf, "member%d@example.net,\"Member %d, Jr.\",MA-%02d\n", i, i, 1+i%9)
	}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := newStore(b)
		b.StartTimer()
		rep, err := st.ImportMemberList(ctx, bytes.NewReader(buf.Bytes()), ballots.MemberImport{})
		if err != nil || rep.Added != rows {
			b.Fatalf("import: %+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
