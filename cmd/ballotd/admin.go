package main

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// Where /healthz and /metrics are served: on their own listener,
// BALLOTD_ADMIN_ADDR (meant for loopback or a private network; unset: not
// served there), and, only with BALLOTD_METRICS_TOKEN set, also on the
// public BALLOTD_HTTP_ADDR. The token, when set, is required as
// "Authorization: Bearer TOKEN" on both. Live turnout and raw errors are
// never public by default.

// parseAdminAddr reads BALLOTD_ADMIN_ADDR, which must differ from
// BALLOTD_HTTP_ADDR (parsed above it).
func parseAdminAddr(c *Config, v string) error {
	c.AdminAddr = strings.TrimSpace(v)
	if c.AdminAddr == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(c.AdminAddr); err != nil || port == "" {
		return bad("BALLOTD_ADMIN_ADDR", c.AdminAddr, "host:port, such as 127.0.0.1:9090")
	}
	if c.AdminAddr == c.HTTPAddr {
		return bad("BALLOTD_ADMIN_ADDR", c.AdminAddr, "another host:port than BALLOTD_HTTP_ADDR (the public one-click unsubscribe)")
	}
	return nil
}

// parseMetricsToken reads BALLOTD_METRICS_TOKEN.
func parseMetricsToken(c *Config, v string) error {
	c.MetricsToken = strings.TrimSpace(v)
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		return bad("BALLOTD_METRICS_TOKEN", "…", "at least 16 characters (a long random string)")
	}
	return nil
}

// bearer wraps h so that it answers only requests carrying
// "Authorization: Bearer token" (RFC 6750 §2.1), compared in constant
// time; token "" lets every request through.
func bearer(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) != 1 {
			// RFC 6750 §3: a request without a valid token gets 401 and a challenge.
			w.Header().Set("WWW-Authenticate", `Bearer realm="ballotd"`)
			http.Error(w, "a bearer token is required (BALLOTD_METRICS_TOKEN)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
