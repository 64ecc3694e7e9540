package bus

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxSubjectLen bounds a subject or pattern in bytes. NATS itself allows
// more, but a protocol line beyond the server's limit (4 KiB) makes the
// server drop the whole connection, which the daemon shares with its queue.
const MaxSubjectLen = 1024

// CheckSubject reports why subject cannot be published to, or nil: it must
// be a valid NATS subject of non-empty tokens separated by dots, without
// wildcards, whitespace or control characters, in UTF-8, at most
// MaxSubjectLen bytes, and outside the reserved subjects (see the package
// doc: a first token beginning with "$", or being "_INBOX" or "kin").
func CheckSubject(subject string) error {
	return check(subject, false)
}

// CheckPattern reports why pattern cannot be subscribed to, or nil: the
// rules of CheckSubject, except that a token may be the wildcard "*" (any
// one token) and the last token may be ">" (one or more tokens), and that
// subjects whose first token is "kin" may be read. A wildcard that is only
// part of a token ("a*", "b>") is refused: NATS would read it literally.
func CheckPattern(pattern string) error {
	return check(pattern, true)
}

func check(s string, pattern bool) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %s: %s", ErrSubject, quote(s), why)
	}
	if s == "" {
		return bad("empty")
	}
	if len(s) > MaxSubjectLen {
		return bad(fmt.Sprintf("%d bytes, more than %d", len(s), MaxSubjectLen))
	}
	if !utf8.ValidString(s) {
		return bad("not UTF-8")
	}
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			return bad("contains U+FFFD")
		case unicode.IsSpace(r):
			return bad("contains white space")
		case unicode.IsControl(r):
			return bad("contains a control character")
		}
	}
	first, _, _ := strings.Cut(s, ".")
	rest := s
	for {
		tok, tail, more := strings.Cut(rest, ".")
		switch {
		case tok == "":
			return bad("empty token")
		case tok == "*" || tok == ">":
			if !pattern {
				return bad("wildcard " + tok + " in a subject to publish to (wildcards are for subscribe)")
			}
			if tok == ">" && more {
				return bad("> must be the last token")
			}
		case strings.ContainsAny(tok, "*>"):
			if !pattern {
				return bad("wildcard character in a subject to publish to")
			}
			return bad("a wildcard must be a whole token (" + quote(tok) + ")")
		}
		if !more {
			break
		}
		rest = tail
	}
	switch {
	case strings.HasPrefix(first, "$"):
		return fmt.Errorf("%w %s: subjects beginning with $ are NATS's own (JetStream, system)", ErrReserved, quote(s))
	case first == "_INBOX":
		return fmt.Errorf("%w %s: _INBOX subjects carry replies to requests", ErrReserved, quote(s))
	case first == "kin" && !pattern:
		return fmt.Errorf("%w %s: kin.… subjects are kin's own (queue jobs and events); they can be subscribed to, not published to", ErrReserved, quote(s))
	}
	return nil
}

// quote quotes s for an error message, cut short when long.
func quote(s string) string {
	const n = 80
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}
