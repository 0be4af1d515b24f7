package templates

import (
	"testing"
	"time"
	_ "time/tzdata" // the zones, whatever the host has installed
)

// when writes a time in the zone it carries, in words: a US zone by its
// spoken name, another named zone (BALLOTD_STAFF_TZ=Europe/Paris) by its
// name, and UTC for operators.
func TestWhenInItsZone(t *testing.T) {
	at := time.Date(2026, 3, 3, 22, 0, 0, 0, time.UTC)
	zone := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	for _, c := range []struct {
		t    time.Time
		want string
	}{
		{at.In(zone("America/New_York")), "Tuesday 3 March 2026, 5:00 pm Eastern time"},
		{at.In(zone("America/Chicago")), "Tuesday 3 March 2026, 4:00 pm Central time"},
		{at.In(zone("Europe/Paris")), "Tuesday 3 March 2026, 11:00 pm Europe/Paris time"},
		{at, "Tuesday 3 March 2026, 22:00 UTC"},
	} {
		if got := when(c.t); got != c.want {
			t.Errorf("when(%v) = %q, want %q", c.t, got, c.want)
		}
	}
}
