package ballots

import (
	"database/sql"
	"strings"
)

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// textColumn makes s storable in a text column: PostgreSQL rejects NUL
// characters and invalid UTF-8, and one such byte in a subject must not make
// a message unrecordable (it would be read again forever).
func textColumn(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
