package cluster

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Origin is where an object came from: a file and the YAML (or JSON)
// document inside it. It keeps the document's node tree because decoding
// into the k8s.io/api types drops positions, and every diagnostic must say
// file:line for the field it is about.
type Origin struct {
	File string
	// Line is the line of the object itself (its first key).
	Line int
	node *yaml.Node // the object's mapping node; nil for objects not read from a file
}

// NewOrigin returns the origin of an object whose mapping node is node.
func NewOrigin(file string, node *yaml.Node) *Origin {
	o := &Origin{File: file, node: node}
	if node != nil {
		o.Line = node.Line
	}
	return o
}

// LineOf returns the line of the field at path, a field path in the form the
// API server prints ("spec.ingress[0].from[1].podSelector.matchLabels").
// When the path does not exist in the document (a defaulted or absent
// field) it returns the line of its deepest ancestor that does.
func (o *Origin) LineOf(path string) int {
	if o == nil {
		return 0
	}
	n := o.node
	line := o.Line
	if n == nil || path == "" {
		return line
	}
	for _, step := range splitPath(path) {
		next := child(n, step)
		if next == nil {
			break
		}
		n = next
		line = n.Line
	}
	return line
}

// Has reports whether the field at path is written in the object's
// document with a value other than null: the JSON form of the API types
// cannot tell an absent number from a zero, and a field the API requires
// must be there. For an object not read from a file (a live cluster's) it
// cannot tell, and reports true.
func (o *Origin) Has(path string) bool {
	if o == nil || o.node == nil {
		return true
	}
	n := o.node
	for _, s := range splitPath(path) {
		for n != nil && n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if n == nil {
			return false
		}
		var next *yaml.Node
		switch {
		case s.index >= 0:
			if n.Kind == yaml.SequenceNode && s.index < len(n.Content) {
				next = n.Content[s.index]
			}
		case n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == s.key {
					next = n.Content[i+1]
					break
				}
			}
		}
		if next == nil {
			return false
		}
		n = next
	}
	return !(n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// Pos returns "file:line" for the field at path ("" for the object itself),
// or for an object not read from a file (a live cluster's), its File alone.
func (o *Origin) Pos(path string) string {
	if o == nil {
		return ""
	}
	if o.node == nil && o.Line == 0 {
		return o.File
	}
	return fmt.Sprintf("%s:%d", o.File, o.LineOf(path))
}

// step is one element of a field path: a key, or an index into a list.
type step struct {
	key   string
	index int // -1 for a key step
}

// splitPath splits "a.b[2].c" into a, b, [2], c. Keys that contain dots or
// brackets (label keys such as "app.kubernetes.io/name") are written by the
// API server as matchLabels[app.kubernetes.io/name]; a bracket holding
// something that is not a number is such a key.
func splitPath(path string) []step {
	var steps []step
	for len(path) > 0 {
		switch path[0] {
		case '.':
			path = path[1:]
		case '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return append(steps, step{key: path[1:], index: -1})
			}
			inner := path[1:end]
			if i, err := strconv.Atoi(inner); err == nil {
				steps = append(steps, step{index: i})
			} else {
				steps = append(steps, step{key: inner, index: -1})
			}
			path = path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			steps = append(steps, step{key: path[:end], index: -1})
			path = path[end:]
		}
	}
	return steps
}

// child returns the node that s leads to from n: for a key, the value node
// of that key in a mapping (the key node when the value is an empty
// scalar, since that is where a person reads the field); for an index, the
// element of a sequence.
func child(n *yaml.Node, s step) *yaml.Node {
	for n != nil && (n.Kind == yaml.DocumentNode || n.Kind == yaml.AliasNode) {
		if n.Kind == yaml.DocumentNode {
			if len(n.Content) == 0 {
				return nil
			}
			n = n.Content[0]
		} else {
			n = n.Alias
		}
	}
	if n == nil {
		return nil
	}
	if s.index >= 0 {
		if n.Kind != yaml.SequenceNode || s.index >= len(n.Content) {
			return nil
		}
		return n.Content[s.index]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == s.key {
			v := n.Content[i+1]
			if v.Kind == yaml.MappingNode || v.Kind == yaml.SequenceNode {
				if len(v.Content) == 0 {
					return n.Content[i] // "from: []" or "{}": point at the key
				}
				return v
			}
			return n.Content[i]
		}
	}
	return nil
}

// Severity orders diagnostics.
type Severity int

const (
	// Note is information: an object kind that Rampart skips, say.
	Note Severity = iota
	// Warning is something that is valid but probably not what was meant.
	Warning
	// Error is input that the API server would refuse, or that Rampart
	// cannot read; analyses refuse to run on it unless told to skip it.
	Error
)

func (s Severity) String() string {
	switch s {
	case Note:
		return "note"
	case Warning:
		return "warning"
	default:
		return "error"
	}
}

// MarshalText makes a Severity print as its name in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Diagnostic is one finding about the input, located by file:line and the
// field path inside the object.
type Diagnostic struct {
	Severity Severity `json:"severity"`
	File     string   `json:"file,omitempty"`
	Line     int      `json:"line,omitempty"`
	// Object names the object ("NetworkPolicy web/allow-dns"), when known.
	Object string `json:"object,omitempty"`
	// Path is the field path inside the object ("spec.ingress[0].ports[1].port").
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	// Hint says how to fix it, when there is something to say.
	Hint string `json:"hint,omitempty"`
}

// At builds a diagnostic about the field at path of the object from o.
func At(sev Severity, o *Origin, object, path, format string, args ...any) Diagnostic {
	d := Diagnostic{Severity: sev, Object: object, Path: path, Message: fmt.Sprintf(format, args...)}
	if o != nil {
		d.File = o.File
		d.Line = o.LineOf(path)
	}
	return d
}

// WithHint returns d with a hint.
func (d Diagnostic) WithHint(format string, args ...any) Diagnostic {
	d.Hint = fmt.Sprintf(format, args...)
	return d
}

// String renders "file:line: error: Object: path: message (hint)".
func (d Diagnostic) String() string {
	var b strings.Builder
	if d.File != "" {
		b.WriteString(d.File)
		if d.Line > 0 {
			fmt.Fprintf(&b, ":%d", d.Line)
		}
		b.WriteString(": ")
	}
	b.WriteString(d.Severity.String())
	b.WriteString(": ")
	if d.Object != "" {
		b.WriteString(d.Object)
		b.WriteString(": ")
	}
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	if d.Hint != "" {
		b.WriteString(" (hint: ")
		b.WriteString(d.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// HasErrors reports whether any diagnostic is an error.
func HasErrors(ds []Diagnostic) bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// ObjectName is how diagnostics name an object: "Kind namespace/name", or
// "Kind name" for a cluster-scoped object.
func ObjectName(kind, namespace, name string) string {
	if namespace == "" {
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

// SortDiagnostics orders diagnostics by file, line, severity (errors
// first) and message, so output is stable.
func SortDiagnostics(ds []Diagnostic) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		return a.Message < b.Message
	})
}
