package main

import (
	"io"
	"strings"
	"unicode/utf8"
)

// table prints rows under headers with aligned columns: columns whose
// header is in right are right-aligned (numbers), the others left-aligned.
// The last column is never padded, so long commands do not push the table.
type table struct {
	headers []string
	right   map[string]bool
	rows    [][]string
	// noHeader leaves the header line out (the headers still name the
	// columns for right).
	noHeader bool
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) error {
	widths := make([]int, len(t.headers))
	for i, h := range t.headers {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if n := utf8.RuneCountInString(c); i < len(widths) && n > widths[i] {
				widths[i] = n
			}
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			last := i == len(cells)-1
			pad := widths[i] - utf8.RuneCountInString(c)
			if t.right[t.headers[i]] {
				b.WriteString(strings.Repeat(" ", pad))
				b.WriteString(c)
			} else {
				b.WriteString(c)
				if !last {
					b.WriteString(strings.Repeat(" ", pad))
				}
			}
			if !last {
				b.WriteString("  ")
			}
		}
		b.WriteByte('\n')
	}
	if !t.noHeader {
		line(t.headers)
	}
	for _, r := range t.rows {
		line(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
