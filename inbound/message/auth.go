package message

import (
	"fmt"
	"strings"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/authres"
)

// Authenticity is what the trusted server's Authentication-Results say
// about a message's From.
type Authenticity struct {
	Checked bool   // a trusted server is configured
	OK      bool   // counted as sent by its From
	Detail  string // why, in words
}

// CheckSender reads the Authentication-Results header (RFC 8601) that the
// trusted server authservID (or one of a comma-separated list) added to h and decides whether the message
// comes from the domain of from. Only the topmost header with that
// authserv-id counts (the trusted server adds its own above whatever the
// message arrived with, and removes forged ones under its name); headers of
// other authserv-ids are ignored, since anyone can write them.
//
// DMARC decides when it gave a result: pass is authentic, fail is not.
// Absent DMARC (none, or not checked), a DKIM or SPF pass aligned with the
// From domain (equal, or one a subdomain of the other) is authentic and
// anything else is not. With no authservID configured, every message is
// authentic (Checked is false); with one configured, a message the server
// left no results on is not.
func CheckSender(h textproto.Header, authservID, from string) Authenticity {
	if authservID == "" {
		return Authenticity{OK: true}
	}
	a := Authenticity{Checked: true}
	var results []authres.Result
	found := false
	for _, v := range h.Values("Authentication-Results") {
		id, rs, err := authres.Parse(v)
		if !trustedID(strings.TrimSpace(id), authservID) {
			continue
		}
		if err != nil {
			a.Detail = fmt.Sprintf("Authentication-Results of %s unreadable: %v", authservID, err)
			return a
		}
		results, found = rs, true
		break
	}
	if !found {
		a.Detail = "no Authentication-Results from " + authservID
		return a
	}
	domain := strings.ToLower(from[strings.LastIndexByte(from, '@')+1:])
	var dkimPass, spfPass bool
	var seen []string
	for _, r := range results {
		switch r := r.(type) {
		case *authres.DMARCResult:
			v := strings.ToLower(string(r.Value))
			switch v {
			case "pass":
				a.OK, a.Detail = true, "dmarc=pass"
				return a
			case "none", "":
			default:
				a.Detail = "dmarc=" + v
				return a
			}
			seen = append(seen, "dmarc="+v)
		case *authres.DKIMResult:
			v := strings.ToLower(string(r.Value))
			seen = append(seen, "dkim="+v)
			if v == "pass" && aligned(r.Domain, domain) {
				dkimPass = true
			}
		case *authres.SPFResult:
			v := strings.ToLower(string(r.Value))
			seen = append(seen, "spf="+v)
			mf := r.From
			if at := strings.LastIndexByte(mf, '@'); at >= 0 {
				mf = mf[at+1:]
			}
			if v == "pass" && aligned(mf, domain) {
				spfPass = true
			}
		}
	}
	switch {
	case dkimPass:
		a.OK, a.Detail = true, "no DMARC; dkim=pass aligned with "+domain
	case spfPass:
		a.OK, a.Detail = true, "no DMARC; spf=pass aligned with "+domain
	default:
		a.Detail = "no DMARC pass and no DKIM or SPF pass aligned with " + domain
		if len(seen) > 0 {
			a.Detail += " (" + strings.Join(seen, " ") + ")"
		}
	}
	return a
}

// trustedID reports whether id is one of the comma-separated authserv-ids
// in trusted (a provider whose MX hosts each write their own name).
func trustedID(id, trusted string) bool {
	for _, t := range strings.Split(trusted, ",") {
		if t = strings.TrimSpace(t); t != "" && strings.EqualFold(id, t) {
			return true
		}
	}
	return false
}

// aligned reports relaxed alignment (RFC 7489 §3.1): the same domain, or
// one a subdomain of the other.
func aligned(d, from string) bool {
	d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
	if d == "" || from == "" {
		return false
	}
	return d == from || strings.HasSuffix(d, "."+from) || strings.HasSuffix(from, "."+d)
}
