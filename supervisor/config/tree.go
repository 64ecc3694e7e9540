package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// kind is the type of a value in a config file.
type kind int

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindList
	kindMap
)

// value is a decoded config value with the position it came from. YAML and
// JSON files both decode into values, so the rest of the package reads one
// tree whatever the format.
type value struct {
	kind kind
	text string // kindString: the string; kindNumber: the number in Go syntax
	raw  string // kindNumber, kindBool: as written in a YAML file ("1.10", "0x1F", "True")
	b    bool
	list []*value
	keys []*value // kindMap: the keys (kindString), in file order
	vals []*value // kindMap: the values, parallel to keys

	line, col int // 1-based; 0 when unknown
}

// get returns the value of key in a map, or nil.
func (v *value) get(key string) *value {
	for i, k := range v.keys {
		if k.text == key {
			return v.vals[i]
		}
	}
	return nil
}

// scalarText returns a string, number or boolean as text: a number or
// boolean as written in a YAML file, so that an env value 1.10 stays
// "1.10". ok is false for anything else.
func (v *value) scalarText() (s string, ok bool) {
	switch v.kind {
	case kindString:
		return v.text, true
	case kindNumber, kindBool:
		if v.raw != "" {
			return v.raw, true
		}
		if v.kind == kindBool {
			return strconv.FormatBool(v.b), true
		}
		return v.text, true
	}
	return "", false
}

// describe says what v is, for "want X, got Y" messages.
func (v *value) describe() string {
	switch v.kind {
	case kindNull:
		return "null"
	case kindBool:
		return strconv.FormatBool(v.b)
	case kindNumber:
		if v.raw != "" {
			return v.raw
		}
		return v.text
	case kindString:
		return strconv.Quote(v.text)
	case kindList:
		return "a list"
	default:
		return "a mapping"
	}
}

// toAny converts v to the value encoding/json would have decoded.
func (v *value) toAny() any {
	switch v.kind {
	case kindBool:
		return v.b
	case kindNumber:
		return json.Number(v.text)
	case kindString:
		return v.text
	case kindList:
		out := make([]any, len(v.list))
		for i, e := range v.list {
			out[i] = e.toAny()
		}
		return out
	case kindMap:
		out := make(map[string]any, len(v.keys))
		for i, k := range v.keys {
			out[k.text] = v.vals[i].toAny()
		}
		return out
	}
	return nil
}

// syntaxError is a file that does not parse; line and col are 0 when the
// parser did not say.
type syntaxError struct {
	line, col int
	msg       string
}

func (e *syntaxError) Error() string { return e.msg }

// maxValues bounds the size of a decoded file, so that YAML aliases (which
// may expand exponentially: "billion laughs") cannot exhaust memory.
const maxValues = 1 << 17

// parseYAML decodes a YAML document into a value tree. Aliases are expanded
// and merge keys (<<) applied.
func parseYAML(data []byte) (*value, error) {
	doc, err := decodeYAML(data)
	if err != nil {
		return nil, yamlSyntaxError(data, err)
	}
	if doc == nil {
		return &value{kind: kindNull}, nil
	}
	c := yamlConverter{budget: maxValues}
	return c.convert(doc, 0)
}

// decodeYAML parses the one document in data; nil when there is none.
func decodeYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &syntaxError{line: extra.Line, msg: "a second YAML document: want one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, err
	}
	return &doc, nil
}

var yamlLineRE = lazyRegexp(`^yaml: line (\d+): (.*)$`)

// maxSearchBytes bounds the work spent finding a YAML error's line: the
// bytes parsed again, in all.
const maxSearchBytes = 8 << 20

// yamlSyntaxError turns a parse error into a syntaxError. The yaml package
// reports the line where the enclosing block or flow collection starts
// (one too low, for parser errors), not where the problem is; the line
// reported here is the first from there on that ends a run of leading lines
// failing with the same problem.
func yamlSyntaxError(data []byte, err error) error {
	var se *syntaxError
	if errors.As(err, &se) {
		return se
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	// Skip to the end of the line before the reported one.
	n, end := 0, 0
	for n+1 < line {
		i := bytes.IndexByte(data[end:], '\n')
		if i < 0 {
			break
		}
		end += i + 1
		n++
	}
	for budget := maxSearchBytes; end < len(data) && budget > 0; budget -= end {
		i := bytes.IndexByte(data[end:], '\n')
		if i < 0 {
			end = len(data)
		} else {
			end += i + 1
		}
		n++
		if _, perr := decodeYAML(data[:end]); perr != nil && strings.HasSuffix(perr.Error(), msg) {
			return &syntaxError{line: n, msg: msg}
		}
	}
	return &syntaxError{line: line, msg: msg}
}

type yamlConverter struct {
	budget int
}

func (c *yamlConverter) convert(n *yaml.Node, depth int) (*value, error) {
	if c.budget--; c.budget < 0 {
		return nil, &syntaxError{line: n.Line, col: n.Column, msg: "too many values (aliases expand too far)"}
	}
	if depth > 1000 {
		return nil, &syntaxError{line: n.Line, col: n.Column, msg: "nested too deeply"}
	}
	v := &value{line: n.Line, col: n.Column, raw: n.Value}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			v.kind = kindNull
			return v, nil
		}
		return c.convert(n.Content[0], depth+1)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, &syntaxError{line: n.Line, col: n.Column, msg: "unknown alias"}
		}
		a, err := c.convert(n.Alias, depth+1)
		if err != nil {
			return nil, err
		}
		// The value sits where the alias is written: errors point there.
		cp := *a
		cp.line, cp.col = n.Line, n.Column
		return &cp, nil
	case yaml.SequenceNode:
		v.kind = kindList
		v.list = make([]*value, 0, len(n.Content))
		for _, e := range n.Content {
			ev, err := c.convert(e, depth+1)
			if err != nil {
				return nil, err
			}
			v.list = append(v.list, ev)
		}
		return v, nil
	case yaml.MappingNode:
		v.kind = kindMap
		if err := c.mapping(v, n, depth); err != nil {
			return nil, err
		}
		return v, nil
	case yaml.ScalarNode:
		return c.scalar(v, n)
	}
	return nil, &syntaxError{line: n.Line, col: n.Column, msg: "unsupported YAML node"}
}

// mapping fills v from the mapping n, applying merge keys: keys written in n
// win over merged ones, and earlier merged mappings over later ones.
func (c *yamlConverter) mapping(v *value, n *yaml.Node, depth int) error {
	if len(n.Content)%2 != 0 {
		return &syntaxError{line: n.Line, col: n.Column, msg: "malformed mapping"}
	}
	var merged []*value
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind == yaml.ScalarNode && kn.ShortTag() == "!!merge" {
			m, err := c.convert(vn, depth+1)
			if err != nil {
				return err
			}
			switch m.kind {
			case kindMap:
				merged = append(merged, m)
			case kindList:
				for _, e := range m.list {
					if e.kind != kindMap {
						return &syntaxError{line: e.line, col: e.col, msg: "<< merges mappings only"}
					}
					merged = append(merged, e)
				}
			default:
				return &syntaxError{line: vn.Line, col: vn.Column, msg: "<< merges mappings only"}
			}
			continue
		}
		if kn.Kind != yaml.ScalarNode {
			return &syntaxError{line: kn.Line, col: kn.Column, msg: "a mapping key must be a plain value"}
		}
		key := &value{kind: kindString, text: kn.Value, line: kn.Line, col: kn.Column}
		if seen[key.text] {
			return &syntaxError{line: kn.Line, col: kn.Column, msg: fmt.Sprintf("duplicate key %q", kn.Value)}
		}
		seen[key.text] = true
		val, err := c.convert(vn, depth+1)
		if err != nil {
			return err
		}
		v.keys = append(v.keys, key)
		v.vals = append(v.vals, val)
	}
	for _, m := range merged {
		for i, k := range m.keys {
			if !seen[k.text] {
				seen[k.text] = true
				v.keys = append(v.keys, k)
				v.vals = append(v.vals, m.vals[i])
			}
		}
	}
	return nil
}

func (c *yamlConverter) scalar(v *value, n *yaml.Node) (*value, error) {
	switch n.ShortTag() {
	case "!!null":
		v.kind = kindNull
	case "!!bool":
		v.kind = kindBool
		if err := n.Decode(&v.b); err != nil {
			return nil, &syntaxError{line: n.Line, col: n.Column, msg: err.Error()}
		}
	case "!!int":
		v.kind = kindNumber
		var i int64
		if err := n.Decode(&i); err == nil {
			v.text = strconv.FormatInt(i, 10)
			break
		}
		fallthrough
	case "!!float":
		v.kind = kindNumber
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, &syntaxError{line: n.Line, col: n.Column, msg: fmt.Sprintf("number %q out of range", n.Value)}
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			// JSON has no such numbers; keep the text so that a setting
			// reading it reports it as a wrong value.
			v.kind = kindString
			v.text = n.Value
			break
		}
		v.text = strconv.FormatFloat(f, 'g', -1, 64)
	default: // !!str, !!timestamp, !!binary and custom tags: the text as written
		v.kind = kindString
		v.text = n.Value
	}
	return v, nil
}

// parseJSON decodes a JSON document into a value tree, with the line and
// column of every value.
func parseJSON(data []byte) (*value, error) {
	p := jsonParser{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	p.dec.UseNumber()
	v, err := p.value(0)
	if err != nil {
		return nil, p.syntax(err)
	}
	start := p.skip(int(p.dec.InputOffset()))
	if _, err := p.dec.Token(); !errors.Is(err, io.EOF) {
		line, col := p.pos(start)
		return nil, &syntaxError{line: line, col: col, msg: "more data after the top-level value"}
	}
	return v, nil
}

type jsonParser struct {
	data  []byte
	dec   *json.Decoder
	lines []int // offsets at which lines begin, for pos
}

// pos returns the line and column of offset off.
func (p *jsonParser) pos(off int) (line, col int) {
	if p.lines == nil {
		p.lines = []int{0}
		for i, c := range p.data {
			if c == '\n' {
				p.lines = append(p.lines, i+1)
			}
		}
	}
	off = min(max(off, 0), len(p.data))
	i := sort.SearchInts(p.lines, off+1) - 1
	return i + 1, off - p.lines[i] + 1
}

// skip returns the offset of the next token at or after off: the decoder's
// offset is the end of the previous token, which separators may follow.
func (p *jsonParser) skip(off int) int {
	for off < len(p.data) {
		switch p.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}

func (p *jsonParser) value(depth int) (*value, error) {
	if depth > 1000 {
		return nil, &syntaxError{msg: "nested too deeply"}
	}
	start := p.skip(int(p.dec.InputOffset()))
	tok, err := p.dec.Token()
	if err != nil {
		return nil, err
	}
	v := &value{}
	v.line, v.col = p.pos(start)
	switch t := tok.(type) {
	case nil:
		v.kind = kindNull
	case bool:
		v.kind, v.b = kindBool, t
	case json.Number:
		v.kind, v.text = kindNumber, t.String()
	case string:
		v.kind, v.text = kindString, t
	case json.Delim:
		switch t {
		case '[':
			v.kind = kindList
			for p.dec.More() {
				e, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				v.list = append(v.list, e)
			}
		case '{':
			v.kind = kindMap
			seen := map[string]bool{}
			for p.dec.More() {
				kstart := p.skip(int(p.dec.InputOffset()))
				kt, err := p.dec.Token()
				if err != nil {
					return nil, err
				}
				k := &value{kind: kindString, text: kt.(string)}
				k.line, k.col = p.pos(kstart)
				if seen[k.text] {
					return nil, &syntaxError{line: k.line, col: k.col, msg: fmt.Sprintf("duplicate key %q", k.text)}
				}
				seen[k.text] = true
				e, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				v.keys = append(v.keys, k)
				v.vals = append(v.vals, e)
			}
		}
		// The closing delimiter.
		if _, err := p.dec.Token(); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// syntax turns a decoding error into a syntaxError with a position.
func (p *jsonParser) syntax(err error) error {
	var se *syntaxError
	if errors.As(err, &se) {
		return se
	}
	var js *json.SyntaxError
	if errors.As(err, &js) {
		// Offset is that of the offending byte.
		line, col := p.pos(int(js.Offset))
		return &syntaxError{line: line, col: col, msg: js.Error()}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		line, col := p.pos(len(p.data))
		if len(bytes.TrimSpace(p.data)) == 0 {
			return &syntaxError{line: line, col: col, msg: "empty file: want a JSON object with an apps list"}
		}
		return &syntaxError{line: line, col: col, msg: "unexpected end of file"}
	}
	return &syntaxError{msg: err.Error()}
}
