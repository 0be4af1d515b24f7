package ballots

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/ballotd/ballotd/templates"
)

// DomainDelivery is how the mail to one class of recipient domains
// (DomainClasses) fared.
type DomainDelivery struct {
	Class string `json:"domain_class"`
	// Sent is accepted by the receiving side and not bounced since.
	Sent int `json:"sent"`
	// Deferred is refused for now (to be tried again) or reported delayed.
	Deferred int `json:"deferred"`
	// Bounced is refused for good: failed at the relay, or a hard or 5.x.x
	// bounce reported afterwards (a delivery status notification), as
	// `ballotd ballots` counts them.
	Bounced int `json:"bounced"`
	// Pending is not tried yet (queued or being sent).
	Pending int `json:"pending"`
	// Complaints is recipients who reported the message as abuse.
	Complaints int `json:"complaints"`
	// Reasons are the commonest reasons for the deferred and bounced,
	// most first, at most topReasons.
	Reasons []ReasonCount `json:"reasons"`
}

// ReasonCount is how many deferred or bounced messages had one reason.
type ReasonCount struct {
	Reason string `json:"reason"` // one of FailureReasons
	Count  int    `json:"count"`
}

// DomainDeliveries is a delivery report by recipient domain class.
type DomainDeliveries struct {
	Wave string `json:"wave,omitempty"` // "" for every message
	// Domains has one entry per class with mail, in DomainClasses order.
	Domains []DomainDelivery `json:"domains"`
	Total   DomainDelivery   `json:"total"`
}

// topReasons bounds DomainDelivery.Reasons.
const topReasons = 3

// The scopes of a delivery report: the SQL condition on outbox o.
const (
	scopeAll       = `true`
	scopeWave      = `o.race_id IN (SELECT r.id FROM races r JOIN waves w ON w.id = r.wave_id WHERE w.name = $1)`
	scopeOpenRaces = `o.race_id IN (SELECT id FROM races WHERE status = 'open')`
)

// DeliveryByDomain reports the outbox's mail by recipient domain class:
// sent, deferred, bounced and complaints, with the top reasons. With wave
// set, only the mail of that wave's races (ballots, reminders,
// announcements, receipts); ErrNotFound when there is no such wave.
func (s *Store) DeliveryByDomain(ctx context.Context, wave string) (DomainDeliveries, error) {
	if wave == "" {
		return deliveryByDomain(ctx, s.db, scopeAll)
	}
	var n int
	if err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM waves WHERE name = $1`, wave); err != nil {
		return DomainDeliveries{}, fmt.Errorf("delivery of wave %q: %w", wave, err)
	}
	if n == 0 {
		return DomainDeliveries{}, fmt.Errorf("delivery of wave %q: %w", wave, ErrNotFound)
	}
	d, err := deliveryByDomain(ctx, s.db, scopeWave, wave)
	d.Wave = wave
	return d, err
}

// deliveryByDomain counts the outbox rows in scope (one of the scope
// constants, with its arguments) by domain class, outcome and reason:
// a bounded number of groups whatever the outbox's size.
func deliveryByDomain(ctx context.Context, q sqlx.QueryerContext, scope string, args ...any) (DomainDeliveries, error) {
	var groups []struct {
		Class      string `db:"class"`
		Outcome    string `db:"outcome"`
		Reason     string `db:"reason"`
		Count      int    `db:"count"`
		Complaints int    `db:"complaints"`
	}
	err := sqlx.SelectContext(ctx, q, &groups, `SELECT `+domainClassSQL("o.recipient")+` AS class,
			CASE
				WHEN o.status = 'failed' OR o.bounce_hard OR o.bounce_status LIKE '5.%' THEN 'bounced'
				WHEN o.status = 'deferred' OR o.bounce_status <> '' THEN 'deferred'
				WHEN o.status = 'sent' THEN 'sent'
				ELSE 'pending'
			END AS outcome,
			o.reason, count(*) AS count, count(*) FILTER (WHERE o.complaint) AS complaints
		FROM outbox o WHERE `+scope+`
		GROUP BY 1, 2, 3`, args...)
	if err != nil {
		return DomainDeliveries{}, fmt.Errorf("delivery by domain: %w", err)
	}
	by := map[string]*DomainDelivery{}
	reasons := map[string]map[string]int{}
	for _, g := range groups {
		d := by[g.Class]
		if d == nil {
			d = &DomainDelivery{Class: g.Class}
			by[g.Class], reasons[g.Class] = d, map[string]int{}
		}
		d.Complaints += g.Complaints
		switch g.Outcome {
		case "sent":
			d.Sent += g.Count
		case "deferred":
			d.Deferred += g.Count
		case "bounced":
			d.Bounced += g.Count
		default:
			d.Pending += g.Count
		}
		if (g.Outcome == "deferred" || g.Outcome == "bounced") && g.Reason != "" {
			reasons[g.Class][g.Reason] += g.Count
		}
	}
	out := DomainDeliveries{Domains: []DomainDelivery{}, Total: DomainDelivery{Class: "total"}}
	all := map[string]int{}
	for _, class := range DomainClasses {
		d := by[class]
		if d == nil {
			continue
		}
		d.Reasons = top(reasons[class])
		out.Domains = append(out.Domains, *d)
		out.Total.Sent += d.Sent
		out.Total.Deferred += d.Deferred
		out.Total.Bounced += d.Bounced
		out.Total.Pending += d.Pending
		out.Total.Complaints += d.Complaints
		for r, n := range reasons[class] {
			all[r] += n
		}
	}
	out.Total.Reasons = top(all)
	return out, nil
}

// top returns the topReasons commonest reasons, most first (ties in
// FailureReasons order).
func top(counts map[string]int) []ReasonCount {
	rs := []ReasonCount{}
	for _, r := range FailureReasons {
		if n := counts[r]; n > 0 {
			rs = append(rs, ReasonCount{r, n})
		}
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Count > rs[j].Count })
	return rs[:min(len(rs), topReasons)]
}

// Mail is the report as the digest's delivery table: a line per domain
// class and the total, none when there is no mail.
func (d DomainDeliveries) Mail() []templates.DigestDelivery {
	if len(d.Domains) == 0 {
		return nil
	}
	var out []templates.DigestDelivery
	for _, r := range append(d.Domains, d.Total) {
		reasons := make([]string, len(r.Reasons))
		for i, rc := range r.Reasons {
			reasons[i] = fmt.Sprintf("%s %d", rc.Reason, rc.Count)
		}
		out = append(out, templates.DigestDelivery{Domains: r.Class, Sent: r.Sent, Deferred: r.Deferred, Bounced: r.Bounced,
			Complaints: r.Complaints, Reasons: strings.Join(reasons, ", ")})
	}
	return out
}
