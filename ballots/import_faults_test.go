package ballots_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/race"
	"github.com/ballotd/ballotd/internal/testenv"
)

// faultyMembers is a members file with every fault an export from a real
// membership system has shown: Excel's BOM and sep= line, CR LF, a district
// the state does not have, an unterminated quote, an at-large state given a
// number (and a state of several districts given -AL), the same email
// twice, a Latin-1 name, a blank line, a quoted name spanning two lines,
// and an email that is no address. Line by line: what each must become.
var faultyMembers = "\ufeffsep=,\r\n" + // 1
	"email,name,district\r\n" + // 2: header
	"a@example.net,Ann,MA-07\r\n" + // 3: duplicate of line 9
	"b@example.net,Bo,MA-99\r\n" + // 4: rejected, MA has 9 districts
	"c@example.net,\"Cy,MA-07\r\n" + // 5: rejected, unterminated quote
	"d@example.net,Di,MA-02\r\n" + // 6: added: not swallowed by line 5's quote
	"e@example.net,Ed,AK-01\r\n" + // 7: rejected, Alaska is at large
	"f@example.net,Fi,AK-AL\r\n" + // 8: added
	"A@example.net,Ann B,MA-07\r\n" + // 9: added, the row of a@ that counts
	"g@example.net,Ren\xe9,MA-03\r\n" + // 10: rejected, Latin-1, not UTF-8
	"\r\n" + // 11: blank, not a row
	"h@example.net,Hal,MA-AL\r\n" + // 12: rejected, MA is not at large
	"i@example.net,\"Ivy\r\nIvy\",MA-01\r\n" + // 13-14: added, a quoted name over two lines
	"broken,X,MA-07\r\n" + // 15: rejected, no address
	"j@example.net,\"Jo\",MA-04" // 16: added, no line end

// Every row of a faulty file is accounted for, each rejected row by the
// line it starts on with its problem, the duplicate by its lines; through
// both import paths (into an empty table, and an upsert).
func TestImportAccountsForEveryLine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	wantRejected := map[int]string{4: "MA-99", 5: "unterminated quote", 7: "at large: AK-AL", 10: "not UTF-8 (byte 0xE9 at column 18)",
		12: "Massachusetts has 9 districts", 15: "not an address"}
	for _, path := range []string{"first", "upsert"} {
		t.Run(path, func(t *testing.T) {
			st := newStore(t)
			if path == "upsert" {
				if _, err := st.ImportMembers(ctx, strings.NewReader("email,name,district\nz@example.net,Zed,MA-05\n")); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := st.ImportMemberList(ctx, strings.NewReader(faultyMembers), ballots.MemberImport{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Rows != 12 || rep.Added != 5 || rep.Updated != 0 || rep.Unchanged != 0 || len(rep.Rejected) != 6 || rep.Duplicates != 1 {
				t.Errorf("report: %d rows = %d added + %d updated + %d unchanged + %d rejected + %d duplicates; want 12 = 5 + 0 + 0 + 6 + 1",
					rep.Rows, rep.Added, rep.Updated, rep.Unchanged, len(rep.Rejected), rep.Duplicates)
			}
			if err := rep.Accounted(); err != nil {
				t.Error(err)
			}
			got := map[int]string{}
			for _, r := range rep.Rejected {
				got[r.Line] = r.Problem
			}
			for line, want := range wantRejected {
				if !strings.Contains(got[line], want) {
					t.Errorf("line %d: rejected as %q; want %q", line, got[line], want)
				}
			}
			if len(got) != len(wantRejected) {
				t.Errorf("rejected lines %v; want %v", got, wantRejected)
			}
			if len(rep.DuplicateRows) != 1 || rep.DuplicateRows[0].Email != "a@example.net" || fmt.Sprint(rep.DuplicateRows[0].Lines) != "[3 9]" {
				t.Errorf("duplicates %+v; want a@example.net on lines 3 and 9", rep.DuplicateRows)
			}
			var names []string
			if err := testenv.DB(t, st).SelectContext(ctx, &names, `SELECT email || ' ' || name || ' ' || district FROM members WHERE email <> 'z@example.net' ORDER BY email`); err != nil {
				t.Fatal(err)
			}
			want := "[a@example.net Ann B MA-07 d@example.net Di MA-02 f@example.net Fi AK-AL i@example.net Ivy Ivy MA-01 j@example.net Jo MA-04]"
			if fmt.Sprint(names) != want {
				t.Errorf("members %v\nwant %s", names, want)
			}
		})
	}
}

// A file separated by ; or tabs is read with its separator; one whose
// header names no known columns says which separator it seems to use.
func TestImportSeparators(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	for sep, file := range map[string]string{
		";":   "email;name;district\na@example.net;Doe, Ann;MA-07\n",
		"tab": "email\tname\tdistrict\nb@example.net\tBo\tMA-02\n",
		"|":   "sep=|\nemail|name|district\nc@example.net|Cy|MA-03\n",
	} {
		rep, err := st.ImportMemberList(ctx, strings.NewReader(file), ballots.MemberImport{})
		if err != nil || rep.Separator != sep || rep.Added != 1 || len(rep.Rejected) != 0 {
			t.Errorf("%s-separated: %+v, %v", sep, rep, err)
		}
	}
	_, err := st.ImportMemberList(ctx, strings.NewReader("\xff\xfee\x00m\x00a\x00i\x00l\x00"), ballots.MemberImport{})
	if err == nil || !strings.Contains(err.Error(), "UTF-16") {
		t.Errorf("a UTF-16 file: %v", err)
	}
	_, err = st.ImportMemberList(ctx, strings.NewReader("mail;name;district\na@example.net;Ann;MA-07\n"), ballots.MemberImport{})
	if err == nil || !strings.Contains(err.Error(), `missing column "email"`) || !strings.Contains(err.Error(), "separated by ; needs the columns email;district") {
		t.Errorf("a ;-separated file without an email column: %v", err)
	}
}

// --sync refuses to remove more than MaxRemove (10 %) of a state's
// members, and changes nothing then; a dry run lists who would go and says
// a real run would be refused.
func TestSyncGuard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newStore(t)
	var all strings.Builder
	all.WriteString("email,name,district\n")
	for i := 1; i <= 17; i++ {
		fmt.Fprintf(&all, "m%02d@example.net,M %d,MA-%02d\n", i, i, 1+i%9)
	}
	all.WriteString("ny@example.net,New Yorker,NY-10\n")
	if _, err := st.ImportMembers(ctx, strings.NewReader(all.String())); err != nil {
		t.Fatal(err)
	}
	one := "email,name,district\nm01@example.net,M 1,MA-02\nny@example.net,New Yorker,NY-10\n"
	_, err := st.ImportMemberList(ctx, strings.NewReader(one), ballots.MemberImport{Sync: true})
	if !errors.Is(err, ballots.ErrSyncRefused) || !strings.Contains(err.Error(), "16 of 17 members of MA (94 %)") {
		t.Fatalf("sync of a one-row file: %v; want refused naming 16 of 17 members of MA", err)
	}
	var removed int
	if err := testenv.DB(t, st).GetContext(ctx, &removed, `SELECT count(*) FROM members WHERE status = 'removed'`); err != nil || removed != 0 {
		t.Fatalf("a refused sync removed %d members (%v)", removed, err)
	}
	dry, err := st.ImportMemberList(ctx, strings.NewReader(one), ballots.MemberImport{Sync: true, DryRun: true})
	if err != nil || dry.Removed != 16 || len(dry.Sample) != 16 || dry.Sample[0] != "m02@example.net" || !strings.Contains(dry.SyncRefused, "16 of 17") {
		t.Fatalf("dry run: %+v, %v; want the 16 listed and the refusal said", dry, err)
	}
	rep, err := st.ImportMemberList(ctx, strings.NewReader(one), ballots.MemberImport{Sync: true, MaxRemove: 1})
	if err != nil || rep.Removed != 16 {
		t.Fatalf("sync with MaxRemove 100 %%: %+v, %v", rep, err)
	}
}

// Districts are checked against each state's seats in the House after the
// 2020 census: 435 in all, six states at large.
func TestDistrictsOfEachState(t *testing.T) {
	t.Parallel()
	seats := 0
	for _, st := range []string{"AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA", "ME", "MD",
		"MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT",
		"VT", "VA", "WA", "WV", "WI", "WY"} {
		if _, err := race.ParseDistrict(st + "-AL"); err == nil {
			seats++
			if _, err := race.ParseDistrict(st + "-01"); err == nil {
				t.Errorf("%s-01 accepted in an at-large state", st)
			}
			continue
		}
		n := 1
		for ; n < 60; n++ {
			if _, err := race.ParseDistrict(fmt.Sprintf("%s-%02d", st, n)); err != nil {
				break
			}
		}
		seats += n - 1
	}
	if seats != 435 {
		t.Errorf("%d House seats; want 435", seats)
	}
	for _, ok := range []string{"CA-52", "TX-38", "ma-9", "AK-AL", "WY-AL", "DC-AL"} {
		if _, err := race.ParseDistrict(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"CA-53", "MA-10", "MT-03", "AK-01", "MA-AL"} {
		if _, err := race.ParseDistrict(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
