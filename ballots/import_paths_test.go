package ballots_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
)

// memberRow is a member as an import leaves it.
type memberRow struct {
	Email, Name, State, District, Status string
}

// importedMembers lists the members of st other than except, by email.
func importedMembers(t *testing.T, st *ballots.Store, except string) []memberRow {
	t.Helper()
	var rows []memberRow
	if err := testenv.DB(t, st).Select(&rows, `SELECT email, name, state, district, status FROM members WHERE email <> $1 ORDER BY email`, except); err != nil {
		t.Fatal(err)
	}
	return rows
}

// emailKey returns the definition of the unique constraint on members'
// email, "" if it is missing.
func emailKey(t *testing.T, st *ballots.Store) string {
	t.Helper()
	var defs []string
	if err := testenv.DB(t, st).Select(&defs, `SELECT pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = 'members'::regclass AND conname = 'members_email_key'`); err != nil {
		t.Fatal(err)
	}
	return strings.Join(defs, "; ")
}

// TestImportFirstLoadSameAsUpsert imports each file into an empty members
// table (rows copied straight in) and into one that already holds an
// unrelated member (staging table and upsert): both must give the same
// report and the same members, leave the unique index on email as the
// migrations made it, and a second import must change nothing.
func TestImportFirstLoadSameAsUpsert(t *testing.T) {
	t.Parallel()
	const other = "other@example.net"
	ctx := context.Background()
	files := map[string]string{
		"plain": "email,name,district\n" +
			"a@example.net,Ann,MA-07\nb@example.net,Bo,NY-10\nc@example.net,,AK-AL\n",
		"duplicates": "email,name,district\n" +
			"a@example.net,Ann,MA-07\n" +
			"b@example.net,Bo,MA-02\n" +
			"A@Example.NET,Ann Two,MA-03\n" + // a again: later rows count
			"b@example.net,Bo,MA-02\n" + // b again, the same
			"\"Ann <a@example.net>\",Ann Three,MA-04\n" + // a a third time, the last
			"d@example.net,Di,MA-05\n",
		"bad rows": membersCSV,
		"quoted": "\ufeffemail,name,district\r\n\"e@example.net\",\"Eve\r\nBcc: x@example.com\",ma-9\r\nf@example.net,\"Back\\slash\tTab\",MA-01\r\n" +
			"\"\"\"odd\\\\name\"\"@example.net\",Odd,MA-01\r\n" + // a backslash in the address
			"\"\"\"tab\tx\"\"@example.net\",Tab,MA-01\r\n", // and a tab
		"all bad": "email,name,district\nnot-an-address,X,MA-07\nx@example.net,X,MA-SEN\n",
		"empty":   "email,name,district\n",
	}
	for name, file := range files {
		t.Run(name, func(t *testing.T) {
			first := newStore(t)
			dry, err := first.ImportMemberList(ctx, strings.NewReader(file), ballots.MemberImport{DryRun: true})
			if err != nil {
				t.Fatalf("dry run into an empty table: %v", err)
			}
			if got := importedMembers(t, first, ""); len(got) != 0 {
				t.Fatalf("a dry run left %d members", len(got))
			}
			if def := emailKey(t, first); def != "UNIQUE (email)" {
				t.Fatalf("after a dry run the email key is %q", def)
			}
			fast, err := first.ImportMemberList(ctx, strings.NewReader(file), ballots.MemberImport{})
			if err != nil {
				t.Fatalf("import into an empty table: %v", err)
			}

			staged := newStore(t)
			if _, err := staged.ImportMembers(ctx, strings.NewReader("email,name,district\n"+other+",Other,MA-01\n")); err != nil {
				t.Fatal(err)
			}
			slow, err := staged.ImportMemberList(ctx, strings.NewReader(file), ballots.MemberImport{})
			if err != nil {
				t.Fatalf("import into a table in use: %v", err)
			}

			dry.DryRun = false
			if !reflect.DeepEqual(fast, slow) || !reflect.DeepEqual(dry, fast) {
				t.Fatalf("reports differ:\nempty table %+v\ntable in use %+v\ndry run %+v", fast, slow, dry)
			}
			a, b := importedMembers(t, first, ""), importedMembers(t, staged, other)
			if name == "quoted" { // COPY's escapes round-trip
				want := []memberRow{
					{"e@example.net", "Eve Bcc: x@example.com", "MA", "MA-09", "active"},
					{"f@example.net", `Back\slash Tab`, "MA", "MA-01", "active"},
					{`odd\name@example.net`, "Odd", "MA", "MA-01", "active"},
					{"tab\tx@example.net", "Tab", "MA", "MA-01", "active"},
				}
				if !reflect.DeepEqual(a, want) {
					t.Fatalf("members = %q, want %q", a, want)
				}
			}
			if !reflect.DeepEqual(a, b) || len(a) != fast.Added {
				t.Fatalf("members differ (%d added):\nempty table %+v\ntable in use %+v", fast.Added, a, b)
			}
			if def := emailKey(t, first); def != "UNIQUE (email)" {
				t.Fatalf("after the import the email key is %q", def)
			}
			again, err := first.ImportMemberList(ctx, strings.NewReader(file), ballots.MemberImport{})
			if err != nil || again.Added != 0 || again.Updated != 0 || again.Unchanged != fast.Added || again.Duplicates != fast.Duplicates {
				t.Fatalf("second import = %+v, %v; want all %d unchanged", again, err, fast.Added)
			}
		})
	}
}

// TestImportFirstLoadFailsCleanly cancels a first import half-way through
// its COPY: the error is returned and the empty table is left as it was,
// unique index on email included, ready for the next import.
func TestImportFirstLoadFailsCleanly(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	var b strings.Builder
	b.WriteString("email,name,district\n")
	for i := 0; i < 50000; i++ {
		fmt.Fprintf(&b, "m%d@example.net,M %d,MA-07\n", i, i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := st.ImportMemberList(ctx, strings.NewReader(b.String()), ballots.MemberImport{Progress: func(_ int64, rows int) {
		if rows >= 10000 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled import returned %v", err)
	}
	if got := importedMembers(t, st, ""); len(got) != 0 {
		t.Fatalf("a failed import left %d members", len(got))
	}
	if def := emailKey(t, st); def != "UNIQUE (email)" {
		t.Fatalf("after a failed import the email key is %q", def)
	}
	rep, err := st.ImportMemberList(context.Background(), strings.NewReader(b.String()), ballots.MemberImport{})
	if err != nil || rep.Added != 50000 {
		t.Fatalf("import after the failed one = %+v, %v", rep, err)
	}
}
