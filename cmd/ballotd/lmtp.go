package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/ballotd/ballotd/inbound"
)

// parseLMTPAddr reads BALLOTD_LMTP_ADDR: where serve listens for LMTP (RFC
// 2033), the door an MTA delivers the ballot mailbox's mail through
// (Postfix: mailbox_transport = lmtp:inet:HOST:PORT). A path starting
// with "/" is a Unix socket. Unset: no door; IMAP reading runs either way.
func parseLMTPAddr(c *Config, v string) error {
	c.LMTPAddr = strings.TrimSpace(v)
	if c.LMTPAddr == "" || strings.HasPrefix(c.LMTPAddr, "/") {
		return nil
	}
	if _, port, err := net.SplitHostPort(c.LMTPAddr); err != nil || port == "" {
		return bad("BALLOTD_LMTP_ADDR", c.LMTPAddr, "host:port, such as 127.0.0.1:2424, or the path of a Unix socket")
	}
	return nil
}

// serveLMTP runs the LMTP door on addr until ctx ends.
func serveLMTP(ctx context.Context, addr string, p *inbound.Processor, log *slog.Logger) error {
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("lmtp door open", "addr", addr)
	err = (&inbound.LMTPDoor{Processor: p, Logger: log}).Serve(ctx, l)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
