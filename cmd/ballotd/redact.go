package main

import (
	"io"
	"regexp"
	"strings"
)

// Secrets never reach an output: every error and log line ballotd writes
// goes through redact, which hides what follows a password in a URL
// (postgres://user:PASSWORD@host, whatever the scheme, even a misspelt
// one) and the value of a key=value setting whose name says it is secret
// (password=…, sslpassword=…, BALLOTD_IMAP_PASSWORD="…", client_secret=…,
// refresh_token=…), the same in JSON ("refresh_token": "…", as a token
// endpoint's answer quoted in an error), and bearer tokens.
var (
	urlPassword = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s"']*):[^\s"']*@`)
	keyPassword = regexp.MustCompile(`(?i)((?:password|passwd|pwd|secret|token)[A-Za-z_]*)(\s*=\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&,;'"]+)`)
	jsonSecret  = regexp.MustCompile(`(?i)("(?:password|passwd|secret|client_secret|access_token|refresh_token|id_token|token)"\s*:\s*)"(?:[^"\\]|\\.)*"`)
	bearerToken = regexp.MustCompile(`(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}`)
)

// redactingWriter redacts each write to w: what ballotd writes to stderr
// (errors, logs, progress) goes through it, written a line or a message
// at a time.
type redactingWriter struct{ w io.Writer }

// Write implements io.Writer; it reports len(p) written when w took the
// redacted bytes.
func (r redactingWriter) Write(p []byte) (int, error) {
	s := string(p)
	if t := redact(s); t != s {
		_, err := io.WriteString(r.w, t)
		return len(p), err
	}
	return r.w.Write(p)
}

// Unwrap returns the writer redacted to (progress.IsTerminal asks).
func (r redactingWriter) Unwrap() io.Writer { return r.w }

// redacted stands for a hidden secret.
const redacted = "REDACTED"

// redact returns s with every password and token it can recognise
// replaced by REDACTED.
func redact(s string) string {
	s = urlPassword.ReplaceAllString(s, "${1}:"+redacted+"@")
	s = keyPassword.ReplaceAllStringFunc(s, func(m string) string {
		sub := keyPassword.FindStringSubmatch(m)
		if strings.HasSuffix(strings.ToUpper(sub[1]), "URL") { // BALLOTD_OAUTH_TOKEN_URL names no secret
			return m
		}
		return sub[1] + sub[2] + redacted
	})
	s = jsonSecret.ReplaceAllString(s, `${1}"`+redacted+`"`)
	return bearerToken.ReplaceAllString(s, "${1}"+redacted)
}
