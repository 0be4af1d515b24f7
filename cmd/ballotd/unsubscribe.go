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
)

// unsubscribeHandler serves /unsubscribe?t=TOKEN. RFC 8058: a POST with the
// body "List-Unsubscribe=One-Click" unsubscribes at once, with no further
// step; a GET (a person following the link, or a scanner prefetching it)
// changes nothing and shows a button that posts.
type unsubscribeHandler struct {
	store  *ballots.Store
	tokens *ballots.Tokens
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

// ServeHTTP implements http.Handler: the RFC 8058 one-click unsubscribe.
func (h *unsubscribeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("t")
	if tok == "" && r.Method == http.MethodPost {
		tok = r.PostFormValue("t")
	}
	id, err := h.tokens.Open(ballots.TokenUnsubscribe, tok)
	if err != nil {
		http.Error(w, "this unsubscribe link is not valid", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		unsubscribePage.Execute(w, struct {
			Done  bool
			Token string
		}{false, tok})
	case http.MethodPost:
		m, changed, err := h.store.Unsubscribe(r.Context(), id)
		if err != nil && !errors.Is(err, ballots.ErrNotFound) {
			h.log.Error("unsubscribe", "member", id, "err", err)
			http.Error(w, "could not unsubscribe now; please try again", http.StatusInternalServerError)
			return
		}
		h.log.Info("unsubscribed by one-click", "member", id, "changed", changed, "status", m.Status)
		unsubscribePage.Execute(w, struct {
			Done  bool
			Token string
		}{true, tok})
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// serveHTTP serves the unsubscribe endpoint on addr until ctx ends, then
// shuts down gracefully.
func serveHTTP(ctx context.Context, addr string, h http.Handler, log *slog.Logger, more ...func(*http.ServeMux)) error {
	mux := http.NewServeMux()
	mux.Handle("/unsubscribe", h)
	for _, add := range more {
		add(mux)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Info("http listening", "addr", ln.Addr().String())
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
