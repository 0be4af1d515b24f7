package main

import (
	"encoding/json"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
)

type mimeDecoder = mime.WordDecoder

// decodeQP returns the text/plain part of a message ballotd composed,
// decoded, with LF line ends.
func decodeQP(raw string) string {
	_, rest, ok := strings.Cut(raw, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	if !ok {
		return ""
	}
	body, _, _ := strings.Cut(rest, "\r\n--=_ballotd_")
	b, _ := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
