package main

import (
	"bytes"
	_ "embed"
	"errors"
	"log/slog"
	"net/http"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/internal/report"
	"github.com/ballotd/ballotd/templates"
)

// resultsHandler serves /results: the page of `export endorsements
// --format html`, read afresh on each request, so a race appears once its
// results are out (released, for a wave that holds them). ?wave=NAME
// shows one wave.
type resultsHandler struct {
	store *ballots.Store
	log   *slog.Logger
	org   templates.Org // who the page is from (BALLOTD_ORG_*)
}

// ServeHTTP implements http.Handler.
func (h *resultsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	l, err := h.store.Endorsements(r.Context(), r.URL.Query().Get("wave"))
	if errors.Is(err, ballots.ErrNotFound) {
		http.Error(w, "no such wave", http.StatusNotFound)
		return
	}
	if err != nil {
		h.log.Error("results page", "err", err)
		http.Error(w, "the results cannot be shown now; please try again", http.StatusInternalServerError)
		return
	}
	var page bytes.Buffer
	if err := report.Page(&page, l, h.org); err != nil {
		h.log.Error("results page", "err", err)
		http.Error(w, "the results cannot be shown now; please try again", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", report.CSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	// Revalidated on each visit: results appear when released.
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(page.Bytes())
}
