package bench

import (
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, out string
		want      loadResult
	}{
		{"clean", `Running 10s test @ http://127.0.0.1:3000/
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.30ms  420.00us  12.00ms   90.00%
    Req/Sec    19.10k     1.20k   22.00k    70.00%
  381000 requests in 10.01s, 46.10MB read
Requests/sec:  38061.94
Transfer/sec:      4.61MB
`, loadResult{requests: 381000, elapsed: 10010 * time.Millisecond, reqPerS: 38061.94}},
		{"errors", `  39506 requests in 1.00m, 4.78MB read
  Socket errors: connect 1, read 66, write 2, timeout 3
  Non-2xx or 3xx responses: 5
Requests/sec:   3922.34
`, loadResult{requests: 39506, failed: 77, elapsed: time.Minute, reqPerS: 3922.34}},
	} {
		got, err := parseWrk(tt.out)
		if err != nil || got != tt.want {
			t.Errorf("%s: parseWrk = %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("parseWrk of an error message: no error")
	}
}

func TestParseStamps(t *testing.T) {
	t.Parallel()
	// Two restarts, a start line still being written, and two exits in a
	// row: a start pairs with the exit just before it.
	st, err := parseStamps("start 1000.000\nexit 2100.500\nstart 2200.750\nexit 3300.000\nexit 3301.000\nstart 3400.000\nstart 45")
	if err != nil {
		t.Fatal(err)
	}
	gaps := st.gaps()
	want := []time.Duration{100250 * time.Microsecond, 99 * time.Millisecond}
	if len(st.starts) != 3 || len(gaps) != len(want) {
		t.Fatalf("starts %v, gaps %v; want 3 starts, gaps %v", st.starts, gaps, want)
	}
	for i := range want {
		if d := gaps[i] - want[i]; d > time.Microsecond || d < -time.Microsecond {
			t.Errorf("gap %d = %v, want %v", i, gaps[i], want[i])
		}
	}
	if _, err := parseStamps("begin 12\n"); err == nil {
		t.Error("bad kind: no error")
	}
	if _, err := parseStamps("start x\n"); err == nil {
		t.Error("bad number: no error")
	}
}

func FuzzParseStamps(f *testing.F) {
	f.Add("start 1000.000\nexit 2100.500\nstart 2200.750\n")
	f.Add("exit 1\nexit 2\nstart 3\n")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseStamps(s)
		if err != nil {
			return
		}
		if n := len(st.gaps()); n > len(st.exits) || n > len(st.starts) {
			t.Fatalf("%d gaps from %d exits and %d starts", n, len(st.exits), len(st.starts))
		}
	})
}
