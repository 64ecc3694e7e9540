package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Error is one thing wrong with a config file: where it is and what it is.
// Its message reads "kin.yaml:12:5: apps[1].instances: want a number or
// "max", got "lots"".
type Error struct {
	// File is the file's name as given to Load or LoadBytes.
	File string
	// Line and Column locate the offending key or value, 1-based; zero when
	// unknown (an ecosystem.config.js whose key was not found in the
	// source, or a problem with the whole file).
	Line, Column int
	// Key is the path of the offending setting ("apps[1].instances"); empty
	// for a syntax error or a problem with the whole file.
	Key string
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, if any (from package supervisor, from
	// running node, from reading the file).
	Err error
}

// Error formats e as "file:line:column: key: message", leaving out what is
// unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(location(e.File, e.Line, e.Column))
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

func location(file string, line, col int) string {
	switch {
	case line > 0 && col > 0:
		return file + ":" + strconv.Itoa(line) + ":" + strconv.Itoa(col)
	case line > 0:
		return file + ":" + strconv.Itoa(line)
	}
	return file
}

// ErrorList is every problem found in a file, in the order found; Load
// returns one (never empty) when the file is wrong. Its message has a line
// per error (an error from node may quote several lines of node's output).
type ErrorList []*Error

// maxErrors is how many errors a list reports before giving up: past that
// the file is probably not a config file at all.
const maxErrors = 10

// Error formats the first ten errors, one a line, and says how many more
// there are.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		if i == maxErrors {
			fmt.Fprintf(&b, "%s: and %d more errors", e.File, len(l)-maxErrors)
			break
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the errors, for errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// suggest returns the candidate closest to s, if it is close enough to be
// a likely typo of it, or "".
func suggest(s string, candidates []string) string {
	best, bestDist := "", 0
	limit := max(1, min(3, len(s)/4))
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := editDistance(ls, strings.ToLower(c))
		if d <= limit && (best == "" || d < bestDist || d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of adjacent
// bytes ("dealy" is one edit from "delay").
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		// Keys are short; a long one is no typo of a key.
		return max(len(a), len(b))
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
