package mailer

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIM signs outgoing messages for Domain under Selector with Key (RSA or
// Ed25519). Ed25519 signs in microseconds; RSA-2048 costs about a
// millisecond of CPU per message, which bounds the send rate of a small
// machine.
type DKIM struct {
	Domain   string
	Selector string
	Key      crypto.Signer
}

// dkimHeaders are the fields signed, where present.
var dkimHeaders = []string{"From", "To", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To",
	"MIME-Version", "Content-Type", "List-Unsubscribe", "List-Unsubscribe-Post", "Auto-Submitted"}

// sign returns the DKIM-Signature header field (with its CRLF) for msg.
func (d *DKIM) sign(msg []byte) ([]byte, error) {
	s, err := dkim.NewSigner(&dkim.SignOptions{
		Domain: d.Domain, Selector: d.Selector, Signer: d.Key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             dkimHeaders,
	})
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	if _, err := s.Write(msg); err != nil {
		s.Close()
		return nil, fmt.Errorf("dkim: %w", err)
	}
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	return []byte(s.Signature()), nil
}

// LoadDKIMKey reads a PEM private key: PKCS #1 or PKCS #8 RSA, or PKCS #8
// Ed25519.
func LoadDKIMKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read DKIM key: %w", err)
	}
	blk, _ := pem.Decode(bytes.TrimSpace(b))
	if blk == nil {
		return nil, fmt.Errorf("DKIM key %s: no PEM block", path)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("DKIM key %s: %w", path, err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, errors.New("DKIM key " + path + ": want an RSA or Ed25519 private key")
}
