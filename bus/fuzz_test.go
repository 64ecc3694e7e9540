package bus

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// FuzzCheck: whatever the checks accept, the NATS server accepts too (a
// subject it refuses closes the client's whole connection), and a subject
// to publish to is a pattern matching only itself.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"a", "a.b", "a.*", "a.>", ">", "*", "a..b", "", "$JS.API", "_INBOX.x", "kin.q.x",
		"a b", "a\tb", "a.>.b", "a*", "é.ü", "\xff", "a\x00", "kin", "x.kin", strings.Repeat("a", 2000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pubErr, patErr := CheckSubject(s), CheckPattern(s)
		if pubErr == nil {
			if patErr != nil {
				t.Fatalf("%q: a subject to publish to but not a pattern: %v", s, patErr)
			}
			if !server.IsValidPublishSubject(s) || !server.IsValidLiteralSubject(s) {
				t.Fatalf("%q: accepted for publish, refused by the server", s)
			}
			if strings.HasPrefix(s, "$") || strings.HasPrefix(s, "_INBOX.") || s == "_INBOX" || strings.HasPrefix(s, "kin.") || s == "kin" {
				t.Fatalf("%q: reserved subject accepted for publish", s)
			}
		}
		if patErr == nil {
			if !server.IsValidSubject(s) {
				t.Fatalf("%q: accepted as a pattern, refused by the server", s)
			}
			if len(s) > MaxSubjectLen || strings.ContainsAny(s, " \t\r\n\f\x00") {
				t.Fatalf("%q: accepted as a pattern", s)
			}
		}
		for _, err := range []error{pubErr, patErr} {
			if err != nil && !strings.HasPrefix(err.Error(), "bus: ") {
				t.Fatalf("%q: error without the package prefix: %v", s, err)
			}
		}
	})
}

// FuzzDecodePayload: any payload becomes one JSON document, and one that
// already is one stays as it was (less surrounding white space).
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{"", " ", "1", ` {"a":1} `, "hello", "\xff", `"x`, "1 2", "null", "\n[]\n", "\u00a01"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		d := decodePayload(p)
		if !json.Valid(d) {
			t.Fatalf("%q → %q: not JSON", p, d)
		}
		trimmed := bytes.Trim(p, " \t\r\n")
		switch {
		case len(trimmed) == 0:
			if string(d) != "null" {
				t.Fatalf("%q → %q, want null", p, d)
			}
		case json.Valid(trimmed):
			if !bytes.Equal(d, trimmed) {
				t.Fatalf("%q → %q, want it unchanged", p, d)
			}
		default:
			var s string
			if err := json.Unmarshal(d, &s); err != nil {
				t.Fatalf("%q → %q: not a JSON string: %v", p, d, err)
			}
			if string([]rune(string(p))) != s { // each invalid byte becomes U+FFFD

				t.Fatalf("%q → %q: string %q differs from the payload", p, d, s)
			}
		}
	})
}
