package main

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/templates"
)

// verifyScript is the results page's receipt check: it hashes the code a
// member pastes in the browser and looks it up in the page's own list, so
// it works from a saved copy and tells the server nothing.
//
//go:embed results_verify.js
var verifyScript string

// resultsCSP is the Content-Security-Policy of the served results page:
// the one inline script is allowed by its hash (CSP Level 3, hash-source),
// nothing is loaded from anywhere, and the form posts nowhere, so a
// receipt code cannot leave the page even with the script blocked.
var resultsCSP = func() string {
	h := sha256.Sum256([]byte(verifyScript))
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'; " +
		"style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

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
	if err := endorsementsPage.Execute(&page, endorsementsPageData{EndorsementList: l, Org: h.org}); err != nil {
		h.log.Error("results page", "err", err)
		http.Error(w, "the results cannot be shown now; please try again", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", resultsCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	// Revalidated on each visit: results appear when released.
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(page.Bytes())
}
