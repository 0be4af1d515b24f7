package main

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite contrib/ballotd.env.example from the settings table")

// TestEnvExample: contrib/ballotd.env.example is what settingsTable
// writes; go test -run TestEnvExample -update rewrites it after a change
// to the table.
func TestEnvExample(t *testing.T) {
	const path = "../../contrib/ballotd.env.example"
	want := exampleFile()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s differs from what the settings table writes: run go test ./cmd/ballotd -run TestEnvExample -update", path)
	}
}
