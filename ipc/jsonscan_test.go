package ipc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// scanJSONCases are valid and invalid documents at the edges of the grammar.
// Their expected verdicts come from json.Valid, which scanJSON must match.
var scanJSONCases = []string{
	// Whitespace and the top level.
	``, ` `, "\t\n\r ", `0`, ` 0 `, "\t0\n", "\r\n{}\r\n", "\v0", "\f0", "0\f", "\u00a00",
	"0\x00", "\x000", `1 2`, `{}{}`, `[] []`, `"a""b"`, `{}x`, `nul`, `null `, `nullx`,
	`true`, `false`, `null`, `True`, `tru`, `fals`, `falsey`, `n`, `t`, `f`, `truefalse`,
	// Numbers.
	`-`, `-0`, `0`, `00`, `01`, `-01`, `+1`, `1.`, `.5`, `1.5`, `-1.5`, `1.5.`, `1e`, `1e+`,
	`1e-`, `1e5`, `1E5`, `1e+5`, `1E-05`, `1.0e1`, `1.e1`, `0e0`, `0.0`, `-0.0e-0`, `1x`,
	`1-`, `--1`, `- 1`, `0x10`, `1_000`, `Infinity`, `NaN`, `-Infinity`, `1e400`, `9999999999999999999999`,
	`[1,-0,0.5,-1e-7]`, `[01]`, `[1.]`, `[-]`, `[1e]`, `{"a":1.}`, `{"a":-}`, `{"a":0,"b":00}`,
	// Strings.
	`"`, `""`, `"a`, `"\"`, `"\\"`, `"\\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\a"`, `"\x41"`, `"\'"`,
	`"\u"`, `"\u0"`, `"\u00"`, `"\u004"`, `"\u0041"`, `"\u004G"`, `"\uABCD"`, `"\uabcd"`, `"\uD800"`,
	`"\uDC00\uD800"`, `"\U0041"`, `"\u00411"`, "\"\t\"", "\"\n\"", "\"\x00\"", "\"\x1f\"", "\"\x7f\"",
	"\"\x20\"", "\"\xff\xfe\"", "\"\xc3\x28\"", "\"\xed\xa0\x80\"", `"é"`, `"\\\\"`, `"\\\\\"`,
	`"0123456\"`, `"01234567"`, `"0123456"`, `"01234567\"`, `"0123456\\"`, `"abcdefghijklmno\u12"`,
	"\"abcdefghijklmnop\x01\"", "\"abcdefg\x01\"", "\"abcdefgh\x1f\"", `"abcdefgh\\\""`, `"abcdefgh\`,
	`"ab"cd"`, `"\u0000"`, `"\"\"\"\""`,
	// Bytes that the word-at-a-time test flags falsely, after a borrow.
	`"a\\]b"`, `"\\]]]]]]]]]]"`, `"\"#######"`, `"xxxxxx\u0041]]]]"`, "\"\x00!!!!!!!\"", "\"x\x1f       \"",
	`"\n\t\"\\\u00e9\/\b\f\r\u12ab\"\\"`, `"\u00e9\u00e9\u00e9\u00e9\u00e9"`, `"xxxxxxx\u00e9x"`, `"xxxxxx\u00e"`,
	// Arrays.
	`[`, `]`, `[]`, `[ ]`, `[,]`, `[1,]`, `[,1]`, `[1 2]`, `[1,,2]`, `[[]]`, `[[]`, `[]]`, `[}`,
	`[{]}`, `[1:2]`, `[[[[[[[[[[]]]]]]]]]]`, `["a","b"]`, `[true,false,null]`, "[\n1\n,\n2\n]",
	// Objects.
	`{`, `}`, `{}`, `{ }`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{"a":1,}`, `{,"a":1}`, `{a:1}`,
	`{'a':1}`, `{1:1}`, `{"a":1 "b":2}`, `{"a":1,"a":2}`, `{"a":{"b":{"c":[]}}}`, `{"a":[}`,
	`{"a":1]`, `{"":""}`, `{"\u0041":"\u0041"}`, `{"a\"b":1}`, `{"a\\":1}`, `{"a\x":1}`,
	" { \"a\" : 1 , \"b\" : [ 2 ] } ", `{"a":1}}`, `{"a":1}]`, `{"a":{"b":1}`, `{"a"::1}`,
	`{"kin":"task","id":7,"data":{"x":[1,"}\""]}}`, `{"cmd":"NODE_HANDLE","msg":{"a":1}}`,
	// Long strings, where scanJSONString changes gear after 16 clean bytes.
	`"` + strings.Repeat("x", 16) + `"`, `"` + strings.Repeat("x", 17) + `\"`, `"` + strings.Repeat("x", 40),
	`"` + strings.Repeat("x", 40) + `\`, `"` + strings.Repeat("x", 40) + `\"`, `"` + strings.Repeat("x", 40) + `\""`,
	`"` + strings.Repeat("x", 40) + `\u12`, `"` + strings.Repeat("x", 40) + `\u1234"`, `"` + strings.Repeat("x", 40) + `\q"`,
	`"` + strings.Repeat("x", 24) + "\n" + strings.Repeat("y", 24) + `"`, `"` + strings.Repeat("x", 33) + "\x01" + `"`,
	`"` + strings.Repeat("x", 20) + "\x1f" + strings.Repeat("y", 40) + `"`, `"` + strings.Repeat("x", 70) + "\t" + `"`,
	`"` + strings.Repeat("\x80\xff", 30) + `"`, `"` + strings.Repeat("x", 16) + `\"` + strings.Repeat("y", 16) + `"`,
	`["` + strings.Repeat("x", 30) + `",` + `"` + strings.Repeat("y", 30) + `"]`, `{"` + strings.Repeat("k", 30) + `":1}`,
	`"` + strings.Repeat(strings.Repeat("x", 17)+`\\`, 5) + `"`, `"` + strings.Repeat(strings.Repeat("x", 17)+`\"`, 5) + `"`,
	// Nesting around the 64-level word boundary of the kind stack.
	nest("[", "]", 63), nest("[", "]", 64), nest("[", "]", 65), nest("[", "]", 128),
	nest("[", "]", 129), nest(`{"a":`, "}", 64), nest(`{"a":`, "}", 65), nest(`{"a":[`, "]}", 40),
	nest("[", "]", 64)[:128] + "}" + nest("[", "]", 64)[129:], nest(`{"a":`, "}", 65)[:65*5] + "]" + strings.Repeat("}", 64),
	// encoding/json's depth limit.
	nest("[", "]", maxJSONDepth), nest("[", "]", maxJSONDepth+1), nest(`{"a":`, "}", maxJSONDepth),
	nest(`{"a":`, "}", maxJSONDepth+1), strings.Repeat("[", maxJSONDepth+1), strings.Repeat("[", 20000) + "x",
	`{"d":` + nest("[", "]", maxJSONDepth-1) + `}`, `{"d":` + nest("[", "]", maxJSONDepth) + `}`,
}

// nest returns n copies of open, then 0, then n copies of close.
func nest(open, close string, n int) string {
	return strings.Repeat(open, n) + "0" + strings.Repeat(close, n)
}

func TestScanJSONMatchesValid(t *testing.T) {
	t.Parallel()
	for _, doc := range scanJSONCases {
		want := json.Valid([]byte(doc))
		if got := scanJSON([]byte(doc), nil); got != want {
			t.Errorf("scanJSON(%s) = %v, json.Valid says %v", short(doc), got, want)
		}
		if got := scanJSON([]byte(doc), func(_, _ []byte) {}); got != want {
			t.Errorf("scanJSON(%s, visit) = %v, json.Valid says %v", short(doc), got, want)
		}
	}
}

// TestScanJSONVerdicts pins the verdicts that matter most, so that a change
// in encoding/json would show up here rather than pass silently.
func TestScanJSONVerdicts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		doc  string
		want bool
	}{
		{`{"t":"p","d":"x"}`, true},
		{" \t\r\n[1, -0.5e+3, \"\\u00e9\", true, null, {}] \n", true},
		{"\"\xff\"", true}, // Valid does not check UTF-8
		{`"\ud800"`, true}, // nor surrogate pairing
		{``, false},
		{"\"a\tb\"", false},
		{`"\u12"`, false},
		{`01`, false},
		{`1.`, false},
		{`.5`, false},
		{`+1`, false},
		{`[1,]`, false},
		{`{"a":1,}`, false},
		{`{}{}`, false},
		{"\v{}", false},
		{nest("[", "]", maxJSONDepth), true},
		{nest("[", "]", maxJSONDepth+1), false},
	} {
		if got := scanJSON([]byte(tc.doc), nil); got != tc.want {
			t.Errorf("scanJSON(%s) = %v, want %v", short(tc.doc), got, tc.want)
		}
	}
}

func TestScanJSONVisit(t *testing.T) {
	t.Parallel()
	type member struct{ key, val string }
	for _, tc := range []struct {
		doc  string
		want []member
	}{
		{`{}`, nil},
		{` { } `, nil},
		{`[{"a":1}]`, nil},
		{`"{\"a\":1}"`, nil},
		{`{"a":1}`, []member{{"a", "1"}}},
		{" {\n \"a\" :\t1 ,\r\"b\":  \"x\"  } ", []member{{"a", "1"}, {"b", `"x"`}}},
		{`{"kin":"task","id":7,"data":{"kin":"inner","x":[1,{"y":2}]}}`,
			[]member{{"kin", `"task"`}, {"id", "7"}, {"data", `{"kin":"inner","x":[1,{"y":2}]}`}}},
		{`{"a\"b":"c\\","\u0041":[ ],"":{ }}`, []member{{`a\"b`, `"c\\"`}, {`\u0041`, "[ ]"}, {"", "{ }"}}},
		{`{"a":1,"a":2}`, []member{{"a", "1"}, {"a", "2"}}},
		{`{"n":-1.5e+3,"t":true,"f":false,"z":null}`,
			[]member{{"n", "-1.5e+3"}, {"t", "true"}, {"f", "false"}, {"z", "null"}}},
		// A member after a value deep enough to need the spill stack.
		{`{"deep":` + nest(`{"k":`, "}", 200) + `,"after":1}`,
			[]member{{"deep", nest(`{"k":`, "}", 200)}, {"after", "1"}}},
	} {
		var got []member
		ok := scanJSON([]byte(tc.doc), func(key, val []byte) {
			got = append(got, member{string(key), string(val)})
		})
		if !ok {
			t.Errorf("scanJSON(%s) = false", short(tc.doc))
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("scanJSON(%s) visited %q, want %q", short(tc.doc), got, tc.want)
		}
	}
}

func TestScanJSONNoAllocs(t *testing.T) {
	// Not parallel: AllocsPerRun counts every goroutine's allocations.
	docs := [][]byte{
		benchDoc(100), benchDoc(4096), structDoc(4096), escapeDoc(4096),
		[]byte(`{"d":` + nest("[", "]", maxJSONDepth-1) + `}`), []byte(`{"a":[1,}`),
	}
	n := 0
	visit := func(key, val []byte) { n += len(key) + len(val) }
	for _, doc := range docs {
		if a := testing.AllocsPerRun(20, func() { scanJSON(doc, visit) }); a != 0 {
			t.Errorf("scanJSON(%s) made %v allocations, want 0", short(string(doc)), a)
		}
	}
}

// TestScanJSONRandomNesting compares scanJSON with json.Valid on random mixes
// of arrays and objects, some broken, that cross the 64-level words of the
// kind stack many times: the fuzzer rarely builds such depths.
func TestScanJSONRandomNesting(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		depth := r.IntN(300)
		var open []byte
		var b strings.Builder
		for range depth {
			if r.IntN(2) == 0 {
				b.WriteString(`{"k":`)
				open = append(open, '}')
			} else {
				b.WriteString(`[0,`)
				open = append(open, ']')
			}
		}
		b.WriteString(`"v"`)
		for j := len(open) - 1; j >= 0; j-- {
			c := open[j]
			if r.IntN(500) == 0 {
				c ^= '}' ^ ']' // the wrong closer
			}
			b.WriteByte(c)
		}
		doc := []byte(b.String())
		if got, want := scanJSON(doc, nil), json.Valid(doc); got != want {
			t.Fatalf("scanJSON(%s) = %v, json.Valid says %v", short(b.String()), got, want)
		}
	}
}

// TestScanJSONLinear checks that long strings cost linear time whatever
// their escapes: searching for the closing quote again after every escape
// would take minutes here, not milliseconds.
func TestScanJSONLinear(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		`"` + strings.Repeat(strings.Repeat("x", 17)+`\n`, 1<<18) + `"`,
		`"` + strings.Repeat(strings.Repeat("x", 17)+`\"`, 1<<18) + `"`,
		`"` + strings.Repeat(strings.Repeat("x", 17)+`\n`, 1<<18), // unterminated: no quote to find at all
	} {
		start := time.Now()
		got := scanJSON([]byte(doc), nil)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("scanJSON(%s) took %v", short(doc), d)
		}
		if want := json.Valid([]byte(doc)); got != want {
			t.Errorf("scanJSON(%s) = %v, json.Valid says %v", short(doc), got, want)
		}
	}
}

// FuzzScanJSON checks that scanJSON agrees with json.Valid on every input,
// and that for a valid object the members it reports, put back together,
// are the object: the bytes between them are only the object's punctuation
// and whitespace, and the object they spell decodes to the same value.
func FuzzScanJSON(f *testing.F) {
	for _, doc := range scanJSONCases {
		if len(doc) < 1000 {
			f.Add([]byte(doc))
		}
	}
	for _, doc := range [][]byte{benchDoc(100), structDoc(600), escapeDoc(300)} {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		type span struct{ start, end int } // offsets into doc
		var keys, vals []span
		offset := func(sub []byte) span {
			start := cap(doc) - cap(sub)
			return span{start, start + len(sub)}
		}
		got := scanJSON(doc, func(key, val []byte) {
			keys = append(keys, offset(key))
			vals = append(vals, offset(val))
		})
		if want := json.Valid(doc); got != want {
			t.Fatalf("scanJSON(%q) = %v, json.Valid says %v", doc, got, want)
		}
		if !got {
			return
		}
		trimmed := bytes.Trim(doc, " \t\r\n")
		if trimmed[0] != '{' {
			if len(keys) != 0 {
				t.Fatalf("scanJSON(%q) visited members of a non-object", doc)
			}
			return
		}
		// Check the gaps: `{"`, then `":` or `,"` alternately, then `}`,
		// each with whitespace around the punctuation.
		gaps := make([]string, 0, 2*len(keys)+1)
		var rebuilt []byte
		rebuilt = append(rebuilt, '{')
		at := 0
		for j := range keys {
			gaps = append(gaps, string(doc[at:keys[j].start]))
			gaps = append(gaps, string(doc[keys[j].end:vals[j].start]))
			at = vals[j].end
			if j > 0 {
				rebuilt = append(rebuilt, ',')
			}
			rebuilt = append(rebuilt, '"')
			rebuilt = append(rebuilt, doc[keys[j].start:keys[j].end]...)
			rebuilt = append(rebuilt, '"', ':')
			rebuilt = append(rebuilt, doc[vals[j].start:vals[j].end]...)
			if !json.Valid(doc[vals[j].start:vals[j].end]) {
				t.Fatalf("scanJSON(%q): value %q is not a JSON document", doc, doc[vals[j].start:vals[j].end])
			}
		}
		gaps = append(gaps, string(doc[at:]))
		rebuilt = append(rebuilt, '}')
		for j, g := range gaps {
			var want string
			switch {
			case len(keys) == 0:
				want = "{}"
			case j == len(gaps)-1:
				want = "}"
			case j == 0:
				want = `{"`
			case j%2 == 1:
				want = `":`
			default:
				want = `,"`
			}
			if stripJSONSpace(g) != want {
				t.Fatalf("scanJSON(%q): gap %d is %q, want %q with whitespace", doc, j, g, want)
			}
		}
		v1, err := decodeJSONNumbers(doc)
		if err != nil {
			t.Fatalf("decoding %q: %v", doc, err)
		}
		v2, err := decodeJSONNumbers(rebuilt)
		if err != nil {
			t.Fatalf("decoding rebuilt %q: %v", rebuilt, err)
		}
		if !reflect.DeepEqual(v1, v2) {
			t.Fatalf("scanJSON(%q): members rebuild %q, which decodes differently", doc, rebuilt)
		}
	})
}

// decodeJSONNumbers decodes doc keeping numbers as text, which every valid
// number is, where float64 fails on 1e400.
func decodeJSONNumbers(doc []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

func stripJSONSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
}

func short(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%q… (%d bytes)", s[:80], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// benchDoc returns the shape of most real messages, {"t":"p","d":"xxx…"},
// n bytes long.
func benchDoc(n int) []byte {
	const head, tail = `{"t":"p","d":"`, `"}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

// structDoc returns an object of about n bytes of small members: numbers,
// literals, short strings and nested arrays, where structure, not string
// bytes, is most of the work.
func structDoc(n int) []byte {
	b := []byte{'{'}
	for j := 0; len(b) < n-40; j++ {
		if j > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `"k%d":`, j)
		switch j % 5 {
		case 0:
			b = fmt.Appendf(b, "%d", j*7919)
		case 1:
			b = fmt.Appendf(b, "-%d.%de-%d", j, j*31, j%9)
		case 2:
			b = fmt.Appendf(b, `[%d,[true,null],[%d.5,"s"],{"x":false}]`, j, j)
		case 3:
			b = append(b, `"short"`...)
		case 4:
			b = append(b, `[[1,2],[3,4],[]]`...)
		}
	}
	return append(b, '}')
}

// escapeDoc returns a message of about n bytes whose string is dense with
// escapes, as text with quotes, newlines and non-ASCII written \u-escaped is.
func escapeDoc(n int) []byte {
	const head, tail = `{"t":"p","d":"`, `"}`
	const chunk = `line \"one\"\n\ttab\\ \u00e9\/`
	s := strings.Repeat(chunk, (n-len(head)-len(tail))/len(chunk)+1)
	return []byte(head + s[:strings.LastIndex(s, `\/`)] + tail)
}

var benchDocs = []struct {
	name string
	doc  []byte
}{
	{"100B", benchDoc(100)},
	{"4KiB", benchDoc(4096)},
	{"1MiB", benchDoc(1 << 20)},
	{"struct4KiB", structDoc(4096)},
	{"escapes4KiB", escapeDoc(4096)},
}

func BenchmarkScanJSON(b *testing.B) {
	for _, bd := range benchDocs {
		if !json.Valid(bd.doc) {
			b.Fatalf("%s: benchmark document is invalid", bd.name)
		}
		b.Run(bd.name, func(b *testing.B) {
			n := 0
			visit := func(key, val []byte) { n++ }
			b.SetBytes(int64(len(bd.doc)))
			b.ReportAllocs()
			for b.Loop() {
				if !scanJSON(bd.doc, visit) {
					b.Fatal("scanJSON rejected the document")
				}
			}
		})
	}
}

func BenchmarkJSONValid(b *testing.B) {
	for _, bd := range benchDocs {
		b.Run(bd.name, func(b *testing.B) {
			b.SetBytes(int64(len(bd.doc)))
			b.ReportAllocs()
			for b.Loop() {
				if !json.Valid(bd.doc) {
					b.Fatal("json.Valid rejected the document")
				}
			}
		})
	}
}
