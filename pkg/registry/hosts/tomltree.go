package hosts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// tomlTable is a decoded TOML table that keeps its keys in document order
// and the line of each key. hosts.toml needs both: [host."<url>"] tables
// are tried in file order, which decoding into a Go map loses, and warnings
// must point at a line.
//
// The tree is built from go-toml's unstable AST rather than by the strict
// decoder on purpose: a key or table given twice is a TOML error that would
// reject the whole file, while here it only costs a warning (first value
// wins), so one slip does not take every mirror of a registry down.
type tomlTable struct {
	keys    []string
	values  map[string]any // string, bool, []any, *tomlTable or tomlOther
	lines   map[string]int
	defined bool // given a [header] of its own (not just implied by a dotted key)
}

// tomlOther stands for values hosts.toml never uses (numbers, dates); it
// only keeps their kind for error messages.
type tomlOther struct{ kind string }

func newTable() *tomlTable {
	return &tomlTable{values: map[string]any{}, lines: map[string]int{}}
}

func (t *tomlTable) get(key string) (any, int) { return t.values[key], t.lines[key] }

// set stores v at the dotted key path, creating intermediate tables, and
// reports a conflict instead of overwriting.
func (t *tomlTable) set(keys []string, v any, line int) error {
	for _, k := range keys[:len(keys)-1] {
		next, err := t.child(k, line)
		if err != nil {
			return err
		}
		t = next
	}
	k := keys[len(keys)-1]
	if _, ok := t.values[k]; ok {
		return fmt.Errorf("key %s already set on line %d; this one is ignored", keyString(keys), t.lines[k])
	}
	t.keys = append(t.keys, k)
	t.values[k] = v
	t.lines[k] = line
	return nil
}

// child returns the sub-table k, creating it if absent.
func (t *tomlTable) child(k string, line int) (*tomlTable, error) {
	switch v := t.values[k].(type) {
	case *tomlTable:
		return v, nil
	case nil:
		c := newTable()
		t.keys = append(t.keys, k)
		t.values[k] = c
		t.lines[k] = line
		return c, nil
	default:
		return nil, fmt.Errorf("%q is a value (line %d), not a table", k, t.lines[k])
	}
}

// parseTOML builds the ordered tree of a document. Only a syntax error is
// an error; semantic slips (duplicates, conflicts) come back as warnings.
func parseTOML(data []byte) (*tomlTable, []string, error) {
	var (
		p        unstable.Parser
		warnings []string
	)
	root := newTable()
	cur := root
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			keys, line := keyOf(&p, e.Key())
			name := "[" + keyString(keys) + "]"
			// Whatever goes wrong, the following key/values must not land
			// in the previous table: park them in a detached one.
			cur = newTable()
			if e.Kind == unstable.ArrayTable {
				warnings = append(warnings, fmt.Sprintf("line %d: [%s] array of tables is not part of hosts.toml; ignored", line, name))
				continue
			}
			t := root
			var err error
			for _, k := range keys {
				if t, err = t.child(k, line); err != nil {
					break
				}
			}
			if err != nil {
				warnings = append(warnings, fmt.Sprintf("line %d: table %s ignored: %v", line, name, err))
				continue
			}
			if t.defined {
				warnings = append(warnings, fmt.Sprintf("line %d: table %s given again; its keys are merged into the first, first value wins", line, name))
			}
			t.defined = true
			cur = t
		case unstable.KeyValue:
			keys, line := keyOf(&p, e.Key())
			if err := cur.set(keys, valueOf(&p, e.Value()), line); err != nil {
				warnings = append(warnings, fmt.Sprintf("line %d: %v", line, err))
			}
		}
	}
	if err := p.Error(); err != nil {
		return nil, nil, syntaxError(&p, err)
	}
	return root, warnings, nil
}

func keyOf(p *unstable.Parser, it unstable.Iterator) ([]string, int) {
	var (
		keys []string
		line int
	)
	for it.Next() {
		n := it.Node()
		if line == 0 {
			line = p.Shape(n.Raw).Start.Line
		}
		keys = append(keys, string(n.Data))
	}
	return keys, line
}

func valueOf(p *unstable.Parser, n *unstable.Node) any {
	switch n.Kind {
	case unstable.String:
		return string(n.Data)
	case unstable.Bool:
		return string(n.Data) == "true"
	case unstable.Array:
		out := []any{}
		for it := n.Children(); it.Next(); {
			if c := it.Node(); c.Kind != unstable.Comment {
				out = append(out, valueOf(p, c))
			}
		}
		return out
	case unstable.InlineTable:
		t := newTable()
		for it := n.Children(); it.Next(); {
			kv := it.Node()
			if kv.Kind != unstable.KeyValue {
				continue
			}
			keys, line := keyOf(p, kv.Key())
			// Duplicates inside an inline table are rare enough that the
			// first value silently winning is fine.
			_ = t.set(keys, valueOf(p, kv.Value()), line)
		}
		return t
	default:
		return tomlOther{kind: strings.ToLower(n.Kind.String())}
	}
}

// syntaxError adds the line to a parser error.
func syntaxError(p *unstable.Parser, err error) error {
	var perr *unstable.ParserError
	if errors.As(err, &perr) && len(perr.Highlight) > 0 {
		if line, ok := lineOf(p, perr.Highlight); ok {
			return fmt.Errorf("line %d: %s", line, perr.Message)
		}
	}
	return err
}

func lineOf(p *unstable.Parser, highlight []byte) (line int, ok bool) {
	// Range panics on a slice that is not part of the input; the position
	// is a nicety, not worth crashing the daemon over.
	defer func() {
		if recover() != nil {
			line, ok = 0, false
		}
	}()
	return p.Shape(p.Range(highlight)).Start.Line, true
}

// keyString writes a dotted key as in TOML, quoting parts that need it.
func keyString(keys []string) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k
		bare := k != ""
		for _, c := range k {
			if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				bare = false
				break
			}
		}
		if !bare {
			parts[i] = strconv.Quote(k)
		}
	}
	return strings.Join(parts, ".")
}

// typeName names a decoded value's TOML type for error messages.
func typeName(v any) string {
	switch v := v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case *tomlTable:
		return "table"
	case tomlOther:
		return v.kind
	}
	return fmt.Sprintf("%T", v)
}
