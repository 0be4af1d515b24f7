package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// settings are the names ballotd reads from its environment or its
// configuration file. A file naming anything else is refused: a misspelt
// BALLOTD_IMAP_PASWORD must stop ballotd, not be ignored. TestSettingsList
// keeps this list equal to what the code reads.
var settings = []string{
	"DATABASE_URL",
	"BALLOTD_AUTHSERV_ID", "BALLOTD_DKIM_KEY", "BALLOTD_DKIM_SELECTOR", "BALLOTD_DOMAIN", "BALLOTD_FROM",
	"BALLOTD_HTTP_ADDR", "BALLOTD_IMAP_ADDR", "BALLOTD_IMAP_MAILBOX", "BALLOTD_IMAP_PASSWORD", "BALLOTD_IMAP_POLL",
	"BALLOTD_IMAP_TLS", "BALLOTD_IMAP_USER", "BALLOTD_LOG_FORMAT", "BALLOTD_LOG_LEVEL", "BALLOTD_MAILBOX", "BALLOTD_OUTBOX_LEASE",
	"BALLOTD_PUBLIC_URL", "BALLOTD_SECRET", "BALLOTD_SMTP_ADDR", "BALLOTD_SMTP_CONNS", "BALLOTD_SMTP_DOMAIN_RATES",
	"BALLOTD_SMTP_PASSWORD", "BALLOTD_SMTP_RATE", "BALLOTD_SMTP_TLS", "BALLOTD_SMTP_USER", "BALLOTD_STAFF",
	"BALLOTD_STRANGER_ANSWERS_PER_HOUR",
	"BALLOTD_TEMPLATES", "BALLOTD_TLS_CA_FILE", "BALLOTD_TLS_INSECURE", "BALLOTD_TICK", "BALLOTD_REMIND_BEFORE",
	"BALLOTD_DIGEST_EVERY", "BALLOTD_IMAP_AUTH", "BALLOTD_SMTP_AUTH", "BALLOTD_OAUTH_PROVIDER", "BALLOTD_OAUTH_TENANT",
	"BALLOTD_OAUTH_TOKEN_URL", "BALLOTD_OAUTH_CLIENT_ID", "BALLOTD_OAUTH_CLIENT_SECRET", "BALLOTD_OAUTH_REFRESH_TOKEN",
	"BALLOTD_ADMIN_ADDR", "BALLOTD_METRICS_TOKEN",
	"BALLOTD_LMTP_ADDR",
	"BALLOTD_ORG_NAME", "BALLOTD_ORG_ADDRESS", "BALLOTD_ORG_URL", "BALLOTD_STAFF_TZ",
	"BALLOTD_RETAIN",
}

// configFile is where the settings file is named: `--config FILE` before
// the command, or BALLOTD_CONFIG. It returns the path ("" for none) and the
// arguments without the flag.
func configFile(args []string, getenv func(string) string) (string, []string, error) {
	if len(args) > 0 {
		if v, ok := strings.CutPrefix(args[0], "--config="); ok {
			return v, args[1:], nil
		}
		if args[0] == "--config" {
			if len(args) < 2 || args[1] == "" {
				return "", args, usageError{"--config: want the path of a settings file"}
			}
			return args[1], args[2:], nil
		}
	}
	return getenv("BALLOTD_CONFIG"), args, nil
}

// configSource is where the settings came from, for check to say.
type configSource struct {
	path       string   // the settings file ("" for none)
	keys       []string // the settings the file sets
	overridden []string // those of them the environment sets too, and wins
	// exposed names the secrets the file holds when any user of the
	// machine may read it.
	exposed []string
}

// secretSettings are the settings that must not be readable by others.
var secretSettings = []string{"DATABASE_URL", "BALLOTD_SECRET", "BALLOTD_IMAP_PASSWORD", "BALLOTD_SMTP_PASSWORD",
	"BALLOTD_OAUTH_CLIENT_SECRET", "BALLOTD_OAUTH_REFRESH_TOKEN", "BALLOTD_METRICS_TOKEN"}

// withConfigFile returns a getenv that reads the environment first and the
// settings file at path second: the file holds the installation's
// settings, and the environment can change one of them for one run.
func withConfigFile(path string, getenv func(string) string) (func(string) string, configSource, error) {
	src := configSource{path: path}
	f, err := os.Open(path)
	if err != nil {
		return nil, src, configError{fmt.Sprintf("config file: %v", err)}
	}
	defer f.Close()
	file, err := parseSettings(f)
	if err != nil {
		return nil, src, configError{fmt.Sprintf("config file %s: %v", path, err)}
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o004 != 0 {
		for _, k := range secretSettings {
			if file[k] != "" {
				src.exposed = append(src.exposed, k)
			}
		}
	}
	for _, k := range settings {
		if _, ok := file[k]; ok {
			src.keys = append(src.keys, k)
			if getenv(k) != "" {
				src.overridden = append(src.overridden, k)
			}
		}
	}
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return file[k]
	}, src, nil
}

// parseSettings reads a settings file in the format of systemd's
// EnvironmentFile (contrib/ballotd.env.example): KEY=value per line, blank
// lines and # comments ignored, an optional `export `, a value optionally
// in single or double quotes. A line that is not a setting, or names one
// ballotd does not read, is an error naming the line.
func parseSettings(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: want NAME=value, got %q", n, line)
		}
		if !slices.Contains(settings, k) {
			if s := nearestSetting(k); s != "" {
				return nil, fmt.Errorf("line %d: %s is not a ballotd setting (did you mean %s?)", n, k, s)
			}
			return nil, fmt.Errorf("line %d: %s is not a ballotd setting (see contrib/ballotd.env.example)", n, k)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			if v[0] == '"' {
				u, err := strconv.Unquote(v)
				if err != nil {
					return nil, fmt.Errorf("line %d: %s: malformed double-quoted value", n, k)
				}
				v = u
			} else {
				v = v[1 : len(v)-1]
			}
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("line %d: %s is set twice", n, k)
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// nearestSetting is the known setting within two edits of name, for a
// "did you mean"; "" if none is that close.
func nearestSetting(name string) string {
	best, bestD := "", 3
	for _, s := range settings {
		if d := editDistance(strings.ToUpper(name), s); d < bestD {
			best, bestD = s, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
