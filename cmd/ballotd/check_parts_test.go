package main

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// silentServer accepts TCP connections and never says a word, as a
// firewall's tarpit or a wrong port does.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// check runs its parts at once, each within --timeout, and names what
// timed out: a server that takes the connection and never answers does not
// hang it. It checks what serve loads besides the servers when set: the
// DKIM key, the templates directory, the HTTP listen address.
func TestCheckPartsAreBoundedAndComplete(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ballotd("migrate")
	silent := silentServer(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	h.env["BALLOTD_IMAP_ADDR"] = silent
	h.env["BALLOTD_SMTP_ADDR"] = silent
	h.env["BALLOTD_DKIM_KEY"] = filepath.Join(t.TempDir(), "missing.pem")
	h.env["BALLOTD_DKIM_SELECTOR"] = "ballots2026"
	h.env["BALLOTD_TEMPLATES"] = filepath.Join(t.TempDir(), "no-such-dir")
	h.env["BALLOTD_HTTP_ADDR"] = busy.Addr().String()

	out, errOut, code := h.try("check", "--timeout", "3s")
	if code != 1 {
		t.Errorf("exit %d, want 1; stderr %s", code, errOut)
	}
	want := []string{
		"database  OK ",
		"imap  FAILED: timed out after 3s waiting for the IMAP greeting, TLS, login and select: " + silent + " accepts the connection but does not answer — is it an IMAP server, and is BALLOTD_IMAP_TLS right",
		"smtp  FAILED: timed out after 3s waiting for the SMTP greeting, EHLO, TLS and AUTH: " + silent + " accepts the connection but does not answer — is it an SMTP server, and is BALLOTD_SMTP_TLS right",
		"dkim  FAILED: read DKIM key: open " + h.env["BALLOTD_DKIM_KEY"] + ": no such file or directory — check BALLOTD_DKIM_KEY",
		"templates  FAILED: BALLOTD_TEMPLATES=" + h.env["BALLOTD_TEMPLATES"] + ": stat",
		"http  FAILED: " + busy.Addr().String() + " is in use by another program (no ballotd /healthz answers there) — change BALLOTD_HTTP_ADDR or stop it",
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("check printed\n%s\nwant %d lines", out, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d\n got %s\nwant %s…", i+1, lines[i], w)
		}
	}

	out, _, _ = h.try("check", "--timeout", "3s", "--json")
	var parts []checkResult
	if err := json.Unmarshal([]byte(out), &parts); err != nil || len(parts) != 6 || parts[0].Part != "database" || !parts[0].OK || parts[1].OK {
		t.Errorf("check --json: %v\n%s", err, out)
	}
}
