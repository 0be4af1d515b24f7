package mailer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"

	"github.com/ballotd/ballotd/ballots"
	"github.com/ballotd/ballotd/mailer"
	"github.com/ballotd/ballotd/templates"
)

// leaf is a single part of a parsed message, its body decoded.
type leaf struct {
	Header message.Header
	Type   string
	Body   []byte
}

// mimeTree parses data with go-message and returns its structure, as
// "multipart/alternative{text/plain,text/html}", and its single parts in
// order.
func mimeTree(t *testing.T, data []byte) (string, []leaf) {
	t.Helper()
	e, err := message.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("message does not parse: %v", err)
	}
	var leaves []leaf
	var walk func(e *message.Entity) string
	walk = func(e *message.Entity) string {
		typ, _, err := e.Header.ContentType()
		if err != nil {
			t.Fatalf("Content-Type: %v", err)
		}
		mr := e.MultipartReader()
		if mr == nil {
			body, err := io.ReadAll(e.Body)
			if err != nil {
				t.Fatalf("%s body: %v", typ, err)
			}
			leaves = append(leaves, leaf{Header: e.Header, Type: typ, Body: body})
			return typ
		}
		var kids []string
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			kids = append(kids, walk(p))
		}
		return typ + "{" + strings.Join(kids, ",") + "}"
	}
	return walk(e), leaves
}

// img0 decodes a PNG.
func img0(t *testing.T, b []byte) image.Image {
	t.Helper()
	m, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the PNG does not decode: %v", err)
	}
	return m
}

// renderDigest renders the data of a digest as the mailer does at send time.
func renderDigest(t *testing.T, r *mailer.Renderer, id int64, d any) []byte {
	t.Helper()
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	m, err := r.Render(context.Background(), ballots.OutboxRow{ID: id, Kind: templates.KindDigest, Recipient: "staff@example.org", Data: data}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(m.Data)
}

// checkChart checks a digest with a turnout chart: text and HTML
// alternatives, the HTML related to one inline PNG whose Content-ID its
// img names, of the size for rows races. It returns the text, the HTML and
// the PNG.
func checkChart(t *testing.T, data []byte, rows int) (text, html string, img []byte) {
	t.Helper()
	tree, leaves := mimeTree(t, data)
	if want := "multipart/alternative{text/plain,multipart/related{text/html,image/png}}"; tree != want {
		t.Fatalf("MIME structure %s, want %s", tree, want)
	}
	text, html, img = string(leaves[0].Body), string(leaves[1].Body), leaves[2].Body
	h := leaves[2].Header
	cid := strings.TrimSuffix(strings.TrimPrefix(h.Get("Content-Id"), "<"), ">")
	if cid == "" || !strings.Contains(html, `<img src="cid:`+cid+`"`) {
		t.Errorf("image Content-ID %q; the HTML does not show it:\n%s", h.Get("Content-Id"), html)
	}
	if disp, _, err := h.ContentDisposition(); err != nil || disp != "inline" {
		t.Errorf("image Content-Disposition %q, %v; want inline", h.Get("Content-Disposition"), err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("the image is not a PNG: %v", err)
	}
	if _, err := png.Decode(bytes.NewReader(img)); err != nil {
		t.Fatalf("the PNG does not decode: %v", err)
	}
	// Drawn at twice the pixels it is shown at (400 CSS pixels wide, 24 a
	// race and 60 for the title and axis), sharp on a phone's screen.
	if b := img0(t, img).Bounds(); cfg.Width != 800 || cfg.Height != 2*(60+24*rows) || b.Dx() != 800 || b.Dy() != cfg.Height {
		t.Errorf("chart of %d races is %d×%d px (bounds %v), want 800×%d", rows, cfg.Width, cfg.Height, b, 2*(60+24*rows))
	}
	if !strings.Contains(html, `width="400"`) {
		t.Errorf("the HTML does not show the chart at 400 CSS pixels:\n%s", html)
	}
	return text, html, img
}

// The digest of a wave with an open race carries its turnout chart as an
// inline PNG that the HTML shows by cid: (Gmail and Outlook show no data:
// URLs), with the figures as the image's alt text, in the table and in the
// text part.
func TestDigestTurnoutChart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if _, sent, err := f.st.SendDigest(ctx, []string{"staff@example.org"}, 0); err != nil || !sent {
		t.Fatalf("send digest: %v %v", sent, err)
	}
	rows, err := f.st.ClaimOutbox(ctx, 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for _, row := range rows {
		if row.Kind == templates.KindDigest {
			var buf bytes.Buffer
			m, err := f.outbox.Renderer.Render(ctx, row, &buf)
			if err != nil {
				t.Fatal(err)
			}
			data = m.Data
		}
	}
	if data == nil {
		t.Fatal("no digest in the outbox")
	}
	text, html, _ := checkChart(t, data, 1)
	if !strings.Contains(text, "MA-SEN: 0 of 3 voted (0.0 %)") {
		t.Errorf("text part lacks the turnout:\n%s", text)
	}
	for _, w := range []string{`alt="Turnout so far: MA-SEN 0 of 3 voted, 0.0 %"`, `<td style="padding:3px 8px">MA-SEN</td>`} {
		if !strings.Contains(html, w) {
			t.Errorf("HTML lacks %s:\n%s", w, html)
		}
	}
}

// The chart draws at most 30 races and says how many more the table has; a
// minimum turnout is in the alt text; the same digest makes the same PNG.
// Without open races, there is no image and no related part.
func TestDigestChartLimitAndNone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.outbox.Renderer
	d := templates.Digest{At: time.Now()}
	for i := range 35 {
		d.Open = append(d.Open, templates.DigestRace{Code: fmt.Sprintf("XX-%02d", i+1), Eligible: 100, Reachable: 100,
			Voted: i * 3, Turnout: float64(i*3) / 100, MinTurnout: 0.25, Closes: d.At.Add(time.Hour), Left: "1 hour"})
	}
	_, html, img := checkChart(t, renderDigest(t, r, 7, d), 30)
	for _, w := range []string{"The chart shows the first 30 races, and 5 more are in the table.",
		"XX-30 87 of 100 voted, 87.0 % (minimum 25.0 %)\"", "<td style=\"padding:3px 8px\">XX-35</td>"} {
		if !strings.Contains(html, w) {
			t.Errorf("HTML lacks %s", w)
		}
	}
	if _, _, again := checkChart(t, renderDigest(t, r, 7, d), 30); !bytes.Equal(img, again) {
		t.Error("the same digest drew a different chart")
	}

	d.Open = nil
	d.Vetting = []templates.VettingCandidate{{ID: 1, Race: "MA-SEN", Name: "Ed Markey", Status: "nominated"}}
	tree, leaves := mimeTree(t, renderDigest(t, r, 8, d))
	if tree != "multipart/alternative{text/plain,text/html}" {
		t.Fatalf("digest without open races: MIME structure %s", tree)
	}
	if html := string(leaves[1].Body); strings.Contains(html, "<img") || strings.Contains(html, "Open races") {
		t.Errorf("digest without open races shows a chart:\n%s", html)
	}
}
