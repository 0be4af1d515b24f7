package pgtemp

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"
)

func TestStartStop(t *testing.T) {
	if _, err := BinDir(); errors.Is(err, ErrNoBinaries) {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			c.Stop()
		}
	}()

	db, err := sql.Open("postgres", c.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var fsync, user string
	if err := db.QueryRowContext(ctx, "SELECT current_setting('fsync'), current_user").Scan(&fsync, &user); err != nil {
		t.Fatalf("query %s: %v", c.URL, err)
	}
	if fsync != "off" || user != "postgres" {
		t.Errorf("fsync=%q user=%q, want off, postgres", fsync, user)
	}
	db.Close()

	stopped = true
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("directory %s still there after Stop (stat: %v)", c.Dir, err)
	}
	if err := ping(ctx, c.URL); err == nil {
		t.Errorf("server at %s still answers after Stop", c.URL)
	}
}

func TestLocateUsesDatabaseURL(t *testing.T) {
	const want = "postgres://someone@db.invalid:1/x?sslmode=disable"
	t.Setenv("DATABASE_URL", want)
	got, err := Locate(context.Background())
	if err != nil || got != want {
		t.Fatalf("Locate = %q, %v; want %q", got, err, want)
	}
}

func TestConnectURL(t *testing.T) {
	got, err := ConnectURL("postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "ballotd_t_1")
	if want := "postgres://postgres@127.0.0.1:5432/ballotd_t_1?sslmode=disable"; err != nil || got != want {
		t.Errorf("ConnectURL = %q, %v; want %q", got, err, want)
	}
	if _, err := ConnectURL("host=x dbname=y", "z"); err == nil {
		t.Error("ConnectURL accepted a key=value DSN")
	}
}
