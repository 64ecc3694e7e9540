package ipc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kinproc/kin/ipc"
)

// In-process benchmarks of the channel's hot paths; bench/ compares against
// raw sockets and Node across processes.
func BenchmarkOneWay(b *testing.B) {
	for _, codec := range codecs {
		for _, size := range []int{100, 4 << 10, 1 << 20} {
			b.Run(string(codec)+"/"+sizeName(size), func(b *testing.B) {
				a, c, err := ipc.Pair(ipc.Config{Codec: codec})
				if err != nil {
					b.Fatal(err)
				}
				defer a.Close()
				defer c.Close()
				data := []byte(`"` + strings.Repeat("x", size-2) + `"`)
				ctx := context.Background()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				go func() {
					for i := 0; i < b.N; i++ {
						if err := a.Send(ctx, ipc.Message{Data: data}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
				for i := 0; i < b.N; i++ {
					if _, err := c.Recv(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	for _, codec := range codecs {
		b.Run(string(codec), func(b *testing.B) {
			a, c, err := ipc.Pair(ipc.Config{Codec: codec})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			defer c.Close()
			ctx := context.Background()
			go func() {
				for {
					m, err := c.Recv(ctx)
					if err != nil {
						return
					}
					c.Reply(ctx, m, m.Data)
				}
			}()
			data := []byte(`"` + strings.Repeat("x", 98) + `"`)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := a.Request(ctx, ipc.Message{Data: data}, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return strings.TrimSuffix(strings.Repeat("", 0), "") + itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
