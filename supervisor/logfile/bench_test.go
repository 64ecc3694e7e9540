package logfile

import (
	"bytes"
	"path/filepath"
	"testing"
)

// benchLines returns size bytes of 100-byte lines (99 characters and a
// newline), as an app's pipe delivers them.
func benchLines(size int) []byte {
	line := append(bytes.Repeat([]byte("x"), 99), '\n')
	var b []byte
	for len(b) < size {
		b = append(b, line...)
	}
	return b[:size-size%100]
}

// BenchmarkWriter measures the Writer fed with 100-byte lines, in 64 KiB
// chunks (a busy app: each read of its pipe drains many lines) and one line
// per write (an app writing a line now and then), with the default 10 MiB
// rotation.
func BenchmarkWriter(b *testing.B) {
	for _, bc := range []struct {
		name  string
		chunk int
	}{
		{"chunk=64KiB", 64 << 10},
		{"chunk=1line", 100},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w, err := Open(Config{Path: filepath.Join(b.TempDir(), "app.log")})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			chunk := benchLines(bc.chunk)
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTail measures `kin logs --lines 15` of a full 10 MiB log.
func BenchmarkTail(b *testing.B) {
	path := filepath.Join(b.TempDir(), "app.log")
	w, err := Open(Config{Path: path, MaxSize: 11 << 20})
	if err != nil {
		b.Fatal(err)
	}
	chunk := benchLines(64 << 10)
	for range 160 {
		w.Write(chunk)
	}
	w.Close()
	b.ReportAllocs()
	for b.Loop() {
		recs, err := Tail(path, 15)
		if err != nil || len(recs) != 15 {
			b.Fatal(len(recs), err)
		}
	}
}

func BenchmarkParseRecord(b *testing.B) {
	rec := AppendRecord(nil, base, bytes.Repeat([]byte("x"), 99), false)
	rec = rec[:len(rec)-1]
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		ParseRecord(rec)
	}
}
