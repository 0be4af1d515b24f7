package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/internal/mailhub"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func dbWhere(t *testing.T, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host + u.Path
}

func TestCheck(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ballotd("migrate")
	h.env["BALLOTD_SMTP_USER"] = "ballots@example.org"
	h.env["BALLOTD_SMTP_PASSWORD"] = h.hub.Password
	db := dbWhere(t, h.env["DATABASE_URL"])
	closed := closedPort(t)
	imapOK := "imap  OK " + h.hub.IMAPAddr + " (none), logged in as ballots@example.org, mailbox INBOX selected, IDLE supported"
	smtpOK := "smtp  OK " + h.hub.SMTPAddr + " (none), EHLO example.org, authenticated as ballots@example.org, no mail sent"
	for _, tc := range []struct {
		name string
		env  map[string]string
		code int
		want []string
	}{
		{"ok", nil, 0, []string{"database  OK " + db + ", schema up to date", imapOK, smtpOK}},
		{"wrong password", map[string]string{"BALLOTD_IMAP_PASSWORD": "wrong", "BALLOTD_SMTP_PASSWORD": "wrong"}, 1, []string{
			"database  OK " + db + ", schema up to date",
			"imap  FAILED: login as ballots@example.org refused by " + h.hub.IMAPAddr + " (Authentication failed) — check BALLOTD_IMAP_USER and BALLOTD_IMAP_PASSWORD",
			"smtp  FAILED: AUTH as ballots@example.org refused by " + h.hub.SMTPAddr + " (535 Authentication failed) — check BALLOTD_SMTP_USER and BALLOTD_SMTP_PASSWORD",
		}},
		{"closed port", map[string]string{"BALLOTD_IMAP_ADDR": closed, "BALLOTD_SMTP_ADDR": closed}, 1, []string{
			"database  OK " + db + ", schema up to date",
			"imap  FAILED: cannot connect to " + closed + ": connection refused — check BALLOTD_IMAP_ADDR and that the server is running",
			"smtp  FAILED: cannot connect to " + closed + ": connection refused — check BALLOTD_SMTP_ADDR and that the server is running",
		}},
		{"two relays", map[string]string{"BALLOTD_SMTP_ADDR": h.hub.SMTPAddr + "," + closed, "BALLOTD_SMTP_DAILY": "50000"}, 1, []string{
			"database  OK " + db + ", schema up to date", imapOK, smtpOK + "; limits: 50000 a day",
			"smtp 2  FAILED: cannot connect to " + closed + ": connection refused — check address 2 of BALLOTD_SMTP_ADDR and that the server is running",
		}},
		{"database down", map[string]string{"DATABASE_URL": "postgres://postgres@" + closed + "/ballotd?sslmode=disable"}, 1, []string{
			"database  FAILED: cannot connect to " + closed + "/ballotd: connection refused — check DATABASE_URL and that PostgreSQL is running",
			imapOK, smtpOK,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved := map[string]string{}
			for k, v := range tc.env {
				saved[k] = h.env[k]
				h.env[k] = v
			}
			defer func() {
				for k, v := range saved {
					h.env[k] = v
				}
			}()
			out, errOut, code := h.try("check")
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, errOut)
			}
			if got, want := strings.TrimRight(out, "\n"), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("check printed\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// testCA is a CA made in the test and a server certificate for 127.0.0.1
// it signed.
type testCA struct {
	pem    []byte // the CA certificate, PEM
	server tls.Certificate
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ballotd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mail.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{
		pem:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
	}
}

// TestCheckTLS runs check against IMAP and SMTP servers with a certificate
// from a CA made in the test: verified with BALLOTD_TLS_CA_FILE, refused
// without it, accepted with BALLOTD_TLS_INSECURE=1; for STARTTLS and for
// TLS from the first byte.
func TestCheckTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	for _, mode := range []string{"starttls", "tls"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t)
			h.ballotd("migrate")
			hub, err := mailhub.Start(mailhub.Options{TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.server}}, ImplicitTLS: mode == "tls"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { hub.Close() })
			caFile := h.file("ca.pem", string(ca.pem))
			h.env["BALLOTD_IMAP_ADDR"], h.env["BALLOTD_SMTP_ADDR"] = hub.IMAPAddr, hub.SMTPAddr
			h.env["BALLOTD_IMAP_PASSWORD"] = hub.Password
			h.env["BALLOTD_SMTP_USER"], h.env["BALLOTD_SMTP_PASSWORD"] = "ballots@example.org", hub.Password
			h.env["BALLOTD_IMAP_TLS"], h.env["BALLOTD_SMTP_TLS"] = mode, mode
			db := "database  OK " + dbWhere(t, h.env["DATABASE_URL"]) + ", schema up to date"
			imapOK := "imap  OK " + hub.IMAPAddr + " (" + mode + "), logged in as ballots@example.org, mailbox INBOX selected, IDLE supported"
			smtpOK := "smtp  OK " + hub.SMTPAddr + " (" + mode + "), EHLO example.org, authenticated as ballots@example.org, no mail sent"
			for _, tc := range []struct {
				name, caFile, insecure string
				code                   int
				want                   []string
			}{
				{"ca file", caFile, "", 0, []string{db, imapOK, smtpOK}},
				{"untrusted", "", "", 1, []string{db,
					"imap  FAILED: certificate of " + hub.IMAPAddr + ` is signed by an unknown authority (issued by "CN=ballotd test CA") — set BALLOTD_TLS_CA_FILE to the CA that signed it, or install a publicly trusted certificate`,
					"smtp  FAILED: certificate of " + hub.SMTPAddr + ` is signed by an unknown authority (issued by "CN=ballotd test CA") — set BALLOTD_TLS_CA_FILE to the CA that signed it, or install a publicly trusted certificate`,
				}},
				{"insecure", "", "1", 0, []string{db, imapOK, smtpOK}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					h.env["BALLOTD_TLS_CA_FILE"], h.env["BALLOTD_TLS_INSECURE"] = tc.caFile, tc.insecure
					out, errOut, code := h.try("check")
					if code != tc.code {
						t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, errOut)
					}
					if got, want := strings.TrimRight(out, "\n"), strings.Join(tc.want, "\n"); got != want {
						t.Errorf("check printed\n%s\nwant\n%s", got, want)
					}
					if warned := strings.Contains(errOut, "TLS CERTIFICATE VERIFICATION IS OFF"); warned != (tc.insecure == "1") {
						t.Errorf("insecure warning logged: %v, want %v; stderr: %s", warned, tc.insecure == "1", errOut)
					}
				})
			}
		})
	}
}

func TestLogFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format, prefix string
		code           int
	}{
		{"", `{"time":`, 0},     // not a terminal: JSON
		{"json", `{"time":`, 0}, // asked for
		{"text", `time=`, 0},
		{"yaml", "ballotd: BALLOTD_LOG_FORMAT=\"yaml\" is malformed", 2},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var out, errOut strings.Builder
			env := map[string]string{"BALLOTD_LOG_FORMAT": tc.format, "BALLOTD_TLS_INSECURE": "1", "DATABASE_URL": "postgres://127.0.0.1:1/x",
				"BALLOTD_DOMAIN": "example.org", "BALLOTD_SECRET": "0123456789abcdef0", "BALLOTD_IMAP_ADDR": "127.0.0.1:1",
				"BALLOTD_IMAP_USER": "u", "BALLOTD_SMTP_ADDR": "127.0.0.1:1"}
			code := run(t.Context(), []string{"check"}, func(k string) string { return env[k] }, &out, &errOut)
			if !strings.HasPrefix(errOut.String(), tc.prefix) || (tc.code == 2) != (code == 2) {
				t.Errorf("exit %d, stderr %q; want prefix %q", code, errOut.String(), tc.prefix)
			}
		})
	}
}

// TestCheckFromSettingsFile: check run from a settings file says which
// file, how many settings it gave, and which of them the environment
// overrides, then checks as usual with the file's settings.
func TestCheckFromSettingsFile(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ballotd("migrate")
	var file strings.Builder
	file.WriteString("# ballotd settings\n")
	for _, k := range settings {
		if v, ok := h.env[k]; ok {
			fmt.Fprintf(&file, "%s=%s\n", k, v)
		}
	}
	path := h.file("ballotd.env", file.String())
	env := map[string]string{"DATABASE_URL": h.env["DATABASE_URL"], "BALLOTD_IMAP_POLL": "1s"}
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"--config", path, "check"}, func(k string) string { return env[k] }, &out, &errOut)
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	want0 := fmt.Sprintf("config  OK %s, %d settings; the environment overrides DATABASE_URL, BALLOTD_IMAP_POLL", path, len(h.env))
	if code != 0 || len(lines) != 4 || lines[0] != want0 || !strings.HasPrefix(lines[2], "imap  OK "+h.hub.IMAPAddr) {
		t.Errorf("exit %d, printed\n%s\nwant first %q and every part OK; stderr %s", code, out.String(), want0, errOut.String())
	}

	// The same file readable by every user of the machine: said, with what
	// to do (h.file writes 0600).
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	run(t.Context(), []string{"--config", path, "check"}, func(k string) string { return env[k] }, &out, &errOut)
	want0 += "; WARNING: every user can read " + path + ", which holds DATABASE_URL, BALLOTD_SECRET, BALLOTD_IMAP_PASSWORD — chmod 640 it (owner root, group ballotd)"
	if got := strings.SplitN(out.String(), "\n", 2)[0]; got != want0 {
		t.Errorf("world-readable file: first line\n%s\nwant\n%s", got, want0)
	}
	if !strings.Contains(errOut.String(), "SETTINGS FILE IS WORLD-READABLE") {
		t.Errorf("no warning logged: %s", errOut.String())
	}
}
