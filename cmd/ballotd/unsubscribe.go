package main

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/token"
)

// unsubscribeHandler serves /unsubscribe?t=TOKEN. RFC 8058 §3.1: only a
// POST whose body is "List-Unsubscribe=One-Click" unsubscribes, with no
// further step; a GET (a person following the link, or a scanner
// prefetching it) changes nothing and shows a button whose form posts that
// body; a POST with any other body changes nothing either and shows the
// button again.
type unsubscribeHandler struct {
	store  *ballots.Store
	tokens *token.Key
	log    *slog.Logger
}

var unsubscribePage = template.Must(template.New("u").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Unsubscribe</title></head>
<body style="font-family:Helvetica,Arial,sans-serif;max-width:640px;margin:2em auto">
{{if .Done}}<p>You are unsubscribed: you will get no more ballots.</p>
{{else}}<form method="post" action="/unsubscribe?t={{.Token}}"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<p>Stop receiving endorsement ballots at this address?</p><button type="submit">Unsubscribe</button></form>{{end}}
</body></html>
`))

// oneClick reports whether r's body is the RFC 8058 one-click body,
// List-Unsubscribe=One-Click (application/x-www-form-urlencoded or
// multipart/form-data, §3.1), read at most 64 KB.
func oneClick(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseMultipartForm(64 << 10); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return false
	}
	v, ok := r.PostForm["List-Unsubscribe"]
	return ok && len(v) == 1 && v[0] == "One-Click"
}

// ServeHTTP implements http.Handler: the RFC 8058 one-click unsubscribe.
func (h *unsubscribeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("t")
	id, err := h.tokens.Open(token.Unsubscribe, tok)
	if err != nil {
		http.Error(w, "this unsubscribe link is not valid", http.StatusBadRequest)
		return
	}
	page := struct {
		Done  bool
		Token string
	}{false, tok}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		unsubscribePage.Execute(w, page)
	case http.MethodPost:
		if !oneClick(w, r) {
			// RFC 8058 §3.1: the POST must carry List-Unsubscribe=One-Click;
			// anything else (a scanner, a form of another site) changes nothing.
			w.WriteHeader(http.StatusBadRequest)
			unsubscribePage.Execute(w, page)
			return
		}
		m, changed, err := h.store.Unsubscribe(r.Context(), id)
		if err != nil && !errors.Is(err, ballots.ErrNotFound) {
			h.log.Error("unsubscribe", "member", id, "err", err)
			http.Error(w, "could not unsubscribe now; please try again", http.StatusInternalServerError)
			return
		}
		h.log.Info("unsubscribed by one-click", "member", id, "changed", changed, "status", m.Status)
		page.Done = true
		unsubscribePage.Execute(w, page)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// serveHTTP serves handler on addr until ctx ends, then shuts down
// gracefully; name says which listener it is in the log.
func serveHTTP(ctx context.Context, name, addr string, handler http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Info(name+" listening", "addr", ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	<-done
	return nil
}

// publicMux is what BALLOTD_HTTP_ADDR serves: the one-click unsubscribe,
// and /healthz and /metrics only behind BALLOTD_METRICS_TOKEN.
func publicMux(unsubscribe http.Handler, obs *observer, token string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/unsubscribe", unsubscribe)
	if token != "" {
		obs.routes(mux, token)
	}
	return mux
}

// adminMux is what BALLOTD_ADMIN_ADDR serves: /healthz and /metrics (with
// BALLOTD_METRICS_TOKEN, only to a request bearing it).
func adminMux(obs *observer, token string) *http.ServeMux {
	mux := http.NewServeMux()
	obs.routes(mux, token)
	return mux
}
