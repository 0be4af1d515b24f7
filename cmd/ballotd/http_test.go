package main

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/testenv"
	"github.com/ballotd/ballotd/internal/token"
)

// TestOneClickUnsubscribeNeedsItsBody: RFC 8058 §3.1. Only a POST whose
// body is List-Unsubscribe=One-Click (urlencoded or multipart) unsubscribes.
// A GET, a POST with no body, another body, or the right words in JSON or
// plain text change nothing and show the page with its button; the button's
// form, posted as a browser posts it, unsubscribes.
func TestOneClickUnsubscribeNeedsItsBody(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	if _, err := st.ImportMembers(ctx, strings.NewReader("email,name,district\nalice@example.net,Alice,MA-07\nbob@example.net,Bob,MA-07\n")); err != nil {
		t.Fatal(err)
	}
	toks, err := token.NewKey("http-test-secret-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(publicMux(&unsubscribeHandler{store: st, tokens: toks, log: slog.New(slog.DiscardHandler)}, newObserver(st), ""))
	defer srv.Close()
	link := func(email string) string {
		id, err := ballots.MemberByEmail(ctx, testenv.DB(t, st), email)
		if err != nil {
			t.Fatal(err)
		}
		return srv.URL + "/unsubscribe?t=" + toks.Make(token.Unsubscribe, id, nil)
	}
	status := func(email string) string {
		var s string
		if err := testenv.DB(t, st).GetContext(ctx, &s, `SELECT status FROM members WHERE email = $1`, email); err != nil {
			t.Fatal(err)
		}
		return s
	}
	do := func(method, u, ctype, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, u, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	alice := link("alice@example.net")
	const form = "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name, method, ctype, body string
		code                      int
	}{
		{"GET", http.MethodGet, "", "", 200},
		{"POST, no body", http.MethodPost, form, "", 400},
		{"POST, another value", http.MethodPost, form, "List-Unsubscribe=Yes", 400},
		{"POST, another field", http.MethodPost, form, "unsubscribe=1", 400},
		{"POST, twice", http.MethodPost, form, "List-Unsubscribe=One-Click&List-Unsubscribe=One-Click", 400},
		{"POST, JSON", http.MethodPost, "application/json", `{"List-Unsubscribe":"One-Click"}`, 400},
		{"POST, plain text", http.MethodPost, "text/plain", "List-Unsubscribe=One-Click", 400},
		{"POST, no content type", http.MethodPost, "", "List-Unsubscribe=One-Click", 400},
	} {
		code, page := do(tc.method, alice, tc.ctype, tc.body)
		if code != tc.code || !strings.Contains(page, `<button type="submit">Unsubscribe</button>`) {
			t.Errorf("%s: %d, want %d and the page with its button:\n%s", tc.name, code, tc.code, page)
		}
		if s := status("alice@example.net"); s != "active" {
			t.Fatalf("%s unsubscribed Alice (%s)", tc.name, s)
		}
	}

	// The page's button, posted as a browser would.
	_, page := do(http.MethodGet, alice, "", "")
	action := regexp.MustCompile(`<form method="post" action="([^"]+)">`).FindStringSubmatch(page)
	field := regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]+)">`).FindStringSubmatch(page)
	if action == nil || field == nil {
		t.Fatalf("no form with a hidden field:\n%s", page)
	}
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	target, err = target.Parse(html.UnescapeString(action[1]))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(target.String(), url.Values{field[1]: {field[2]}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "You are unsubscribed") || status("alice@example.net") != "unsubscribed" {
		t.Fatalf("the page's button: %d %q, Alice %s", resp.StatusCode, b, status("alice@example.net"))
	}

	// RFC 8058 §3.1 allows multipart/form-data too.
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	w.WriteField("List-Unsubscribe", "One-Click")
	w.Close()
	if code, _ := do(http.MethodPost, link("bob@example.net"), w.FormDataContentType(), mp.String()); code != 200 || status("bob@example.net") != "unsubscribed" {
		t.Fatalf("multipart one-click: %d, Bob %s", code, status("bob@example.net"))
	}
}

// TestMetricsNotPublic: the public listener (BALLOTD_HTTP_ADDR) serves the
// one-click unsubscribe and neither /metrics nor /healthz; the admin
// listener (BALLOTD_ADMIN_ADDR) serves both. With BALLOTD_METRICS_TOKEN
// set, both listeners serve them only to a request bearing the token.
func TestMetricsNotPublic(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	toks, err := token.NewKey("http-test-secret-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	obs := newObserver(st)
	// A serve that has read its mailbox: /healthz answers 200 where it
	// may be asked at all.
	obs.mu.Lock()
	obs.lastPoll = time.Now()
	obs.mu.Unlock()
	unsub := &unsubscribeHandler{store: st, tokens: toks, log: slog.New(slog.DiscardHandler)}
	get := func(base, path, token string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	const token = "metrics-token-0123456789abcdef"
	for _, tc := range []struct {
		name              string
		token             string
		ask               string // the token sent
		public, admin     int
		publicUnsubscribe int
	}{
		{"no token set", "", "", 404, 200, 400},
		{"no token set, one sent anyway", "", token, 404, 200, 400},
		{"token set, none sent", token, "", 401, 401, 400},
		{"token set, a wrong one sent", token, "wrong-token-0123456789abcdef", 401, 401, 400},
		{"token set and sent", token, token, 200, 200, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			public := httptest.NewServer(publicMux(unsub, obs, tc.token))
			defer public.Close()
			admin := httptest.NewServer(adminMux(obs, tc.token))
			defer admin.Close()
			for _, path := range []string{"/metrics", "/healthz"} {
				if code := get(public.URL, path, tc.ask); code != tc.public {
					t.Errorf("public %s: %d, want %d", path, code, tc.public)
				}
				if code := get(admin.URL, path, tc.ask); code != tc.admin {
					t.Errorf("admin %s: %d, want %d", path, code, tc.admin)
				}
			}
			// The unsubscribe endpoint is public (a forged token is refused).
			if code := get(public.URL, "/unsubscribe?t=forged", ""); code != tc.publicUnsubscribe {
				t.Errorf("public /unsubscribe: %d, want %d", code, tc.publicUnsubscribe)
			}
			if code := get(admin.URL, "/unsubscribe?t=forged", tc.ask); code != 404 {
				t.Errorf("admin /unsubscribe: %d, want 404", code)
			}
		})
	}
}
