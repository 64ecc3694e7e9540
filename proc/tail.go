package proc

import (
	"bytes"
	"io"
	"sync"
)

// tailBuffer keeps the last n lines written to it and passes everything on
// to dst. A failing dst does not stop the copy: the child must never block
// on its stderr because the parent's destination broke.
type tailBuffer struct {
	mu    sync.Mutex
	n     int
	lines [][]byte
	part  []byte // the current line, not yet ended by '\n'
	dst   io.Writer
}

// maxTailLine bounds one kept line; longer ones are cut.
const maxTailLine = 1024

func newTailBuffer(n int, dst io.Writer) *tailBuffer {
	return &tailBuffer{n: n, dst: dst}
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if t.dst != nil {
		t.dst.Write(p)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := maxTailLine - len(t.part); room > 0 {
			t.part = append(t.part, chunk[:min(room, len(chunk))]...)
		}
		if i < 0 {
			break
		}
		t.push(t.part)
		t.part = nil
		p = p[i+1:]
	}
	return n, nil
}

func (t *tailBuffer) push(line []byte) {
	if len(t.lines) == t.n {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:t.n-1]
	}
	t.lines = append(t.lines, line)
}

// String returns the kept lines, the unfinished last one included.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b bytes.Buffer
	lines := t.lines
	if len(t.part) > 0 && len(lines) == t.n {
		lines = lines[1:]
	}
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	if len(t.part) > 0 {
		b.Write(t.part)
		b.WriteByte('\n')
	}
	return b.String()
}
