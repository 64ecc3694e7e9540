package queue_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestLayoutInProtocol: docs/protocol.md's "Queue layout" says what the
// package doc's Layout section says.
func TestLayoutInProtocol(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(src)
	start := strings.Index(doc, "// # Layout\n")
	end := strings.Index(doc, "\npackage queue")
	if start < 0 || end < start {
		t.Fatal("doc.go has no Layout section")
	}
	// The doc's text, less its heading and its note about this test.
	var b strings.Builder
	note := false
	for i, line := range strings.Split(doc[start:end], "\n") {
		line = strings.TrimPrefix(strings.TrimPrefix(line, "//"), " ")
		if strings.HasPrefix(line, "(This section is also") {
			note = true
		}
		if i == 0 || note {
			note = note && !strings.HasSuffix(line, ")")
			continue
		}
		b.WriteString(line + "\n")
	}
	md, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(md), "\n## 12. Queue layout\n")
	if !ok {
		t.Fatal(`docs/protocol.md has no "## 12. Queue layout"`)
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	// The section's introduction is its own; the rest is the doc's text,
	// its indented blocks fenced.
	_, sec, _ = strings.Cut(sec, "kept the same.\n")
	sec = strings.NewReplacer("```text\n", "", "```\n", "").Replace(sec)
	ws := regexp.MustCompile(`\s+`)
	want := strings.TrimSpace(ws.ReplaceAllString(b.String(), " "))
	got := strings.TrimSpace(ws.ReplaceAllString(sec, " "))
	if got != want {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Errorf("docs/protocol.md's Queue layout differs from doc.go's Layout at %q (doc.go: %q)", got[max(0, i-40):min(len(got), i+40)], want[max(0, i-40):min(len(want), i+40)])
	}
}
