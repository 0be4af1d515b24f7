package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/internal/mailhub"
	"github.com/ballotd/ballotd/internal/testenv"
)

// TestSecretStrength: published secrets and ones of little estimated
// entropy (one character, few distinct ones, runs, a word and digits) are
// weak; random strings as the README makes them are not.
func TestSecretStrength(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"aaaaaaaaaaaaaaaa",
		strings.Repeat("ab", 20),
		"0123456789abcdef0",
		"abcdefghijklmnopqrstuvwxyz",
		"password1234567890",
		"0101101001011010010110100101101001011010",
		devSecret,
		"change-me-to-a-long-random-string",
		" change-me-to-a-long-random-string ",
	} {
		if weakSecret(s) == "" {
			t.Errorf("%q (%.0f bits) passes as strong", s, secretBits(s))
		}
	}
	for _, s := range []string{
		"3q2+7w8zPo0Xb1kV4rGmZt9YcL6uHsNd",                                 // openssl rand -base64 24
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", // openssl rand -hex 32
		"K7#pQ2v!xL9@mR4w&Z8s",
	} {
		if why := weakSecret(s); why != "" {
			t.Errorf("%q (%.0f bits): %s", s, secretBits(s), why)
		}
	}
}

// TestCheckAndServeWarnAboutAWeakSecret: `check` and `serve` log a warning
// naming BALLOTD_SECRET when it is weak or published, and none when it is
// strong.
func TestCheckAndServeWarnAboutAWeakSecret(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ballotd("migrate")
	for _, tc := range []struct {
		secret string
		want   string
	}{
		{"aaaaaaaaaaaaaaaa", "BALLOTD_SECRET is weak (about 0 bits"},
		{devSecret, "BALLOTD_SECRET is the public dev secret"},
		{"change-me-to-a-long-random-string", "BALLOTD_SECRET is the example of contrib/ballotd.env.example"},
		{"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", ""},
	} {
		h.env["BALLOTD_SECRET"] = tc.secret
		_, errOut, _ := h.try("check")
		if tc.want == "" {
			if strings.Contains(errOut, "WEAK SECRET") {
				t.Errorf("check with a strong secret warns: %s", errOut)
			}
			continue
		}
		if !strings.Contains(errOut, "WEAK SECRET: "+tc.want) {
			t.Errorf("check with BALLOTD_SECRET=%s: no warning %q in\n%s", tc.secret, tc.want, errOut)
		}
	}
	h.env["BALLOTD_SECRET"] = "aaaaaaaaaaaaaaaa"
	stop, logs := h.serveLogged()
	testenv.Eventually(t, 30*time.Second, func() bool { return strings.Contains(logs(), "ballotd serving") }, "serve logs that it is serving")
	stop()
	if !strings.Contains(logs(), "WEAK SECRET: BALLOTD_SECRET is weak") {
		t.Errorf("serve with a weak secret does not warn:\n%s", logs())
	}
}

// TestDevSecretOnlyOnDevsOwnDatabase: dev and demo refuse to key a
// database they did not make with the public dev secret (BALLOTD_SECRET
// unset or set to it), with one line naming the setting, exit 2; on a
// database they made (it carries their mark) they go on, and with a secret
// of the operator's own the database does not matter.
func TestDevSecretOnlyOnDevsOwnDatabase(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ballotd("migrate")
	for _, secret := range []string{"", devSecret} {
		h.env["BALLOTD_SECRET"] = secret
		_, errOut, code := h.try("dev", "--smtp-port", "0", "--imap-port", "0")
		if code != 2 || !strings.Contains(errOut, "BALLOTD_SECRET: will not key database") {
			t.Errorf("dev on a database it did not make, BALLOTD_SECRET=%q: exit %d\n%s", secret, code, errOut)
		}
	}

	ctx := context.Background()
	getenv := func(k string) string { return h.env[k] }
	h.env["BALLOTD_SECRET"] = ""
	if err := guardDevSecret(ctx, getenv, h.env["DATABASE_URL"]); err == nil {
		t.Error("the dev secret is allowed on a database dev did not make")
	}
	// The scratch database dev makes, on a server of its own (it is
	// dropped at exit).
	scratch := testenv.ScratchServerURL(t)
	e := &env{getenv: func(k string) string {
		if k == "DATABASE_URL" {
			return scratch
		}
		return h.env[k]
	}, stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler)}
	own, _, cleanup, err := localDatabase(ctx, e, "ballotd_devmark", true)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if err := guardDevSecret(ctx, getenv, own); err != nil {
		t.Errorf("the dev secret is refused on a database dev made: %v", err)
	}
	h.env["BALLOTD_SECRET"] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	if err := guardDevSecret(ctx, getenv, h.env["DATABASE_URL"]); err != nil {
		t.Errorf("an operator's own secret is refused: %v", err)
	}
}

// TestDevBannerSaysWhatItKeeps: dev's banner says which database it uses
// and whether it survives the run, that the hub's mail does not, and which
// secret keys the tokens.
func TestDevBannerSaysWhatItKeeps(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env["DATABASE_URL"] = testenv.ScratchServerURL(t) // the scratch database is made and dropped there
	ctx := context.Background()
	getenv := func(k string) string { return h.env[k] }
	e := &env{getenv: getenv, stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler)}
	_, fate, cleanup, err := localDatabase(ctx, e, "ballotd", false)
	if err != nil {
		t.Fatal(err)
	}
	cleanup()
	if fate != "DATABASE_URL's database, used as it is and kept" {
		t.Errorf("DATABASE_URL set: fate %q", fate)
	}
	_, fate, cleanup, err = localDatabase(ctx, e, "ballotd_fate", true)
	if err != nil {
		t.Fatal(err)
	}
	cleanup()
	if !strings.HasPrefix(fate, "a fresh database ballotd_fate_") || !strings.HasSuffix(fate, ", dropped at exit") {
		t.Errorf("scratch: fate %q", fate)
	}
	h.env["BALLOTD_SECRET"] = ""
	var out strings.Builder
	e.stdout = &out
	printHub(e, &mailhub.Hub{SMTPAddr: "127.0.0.1:2525", IMAPAddr: "127.0.0.1:1143", Password: "ballotd"},
		Config{Mailbox: "ballots", Domain: "example.org", DatabaseURL: "postgres://u:pw@127.0.0.1/ballotd"}, "database ballotd on …; kept at exit")
	for _, want := range []string{"  database        database ballotd on …; kept at exit\n", "all mail is\n                  gone when dev stops",
		"the public dev secret", "contrib/members.example.csv"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out.String())
		}
	}
}
