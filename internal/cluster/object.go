package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// ReadObject reads a single-object config file (one of Rampart's own kinds,
// e.g. a Tunnel) into target, strictly: unknown fields, a wrong apiVersion
// or kind, or a second document are errors with file:line. The Origin maps
// field paths of the object to lines for the caller's own validation.
func ReadObject(path, apiVersion, kind string, target any) (*Origin, []Diagnostic) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []Diagnostic{{Severity: Error, File: path, Message: err.Error()}}
	}
	return DecodeObject(path, data, apiVersion, kind, target)
}

// DecodeObject is ReadObject on bytes already read.
func DecodeObject(file string, data []byte, apiVersion, kind string, target any) (*Origin, []Diagnostic) {
	if len(data) > maxFileSize {
		return nil, []Diagnostic{{Severity: Error, File: file, Message: fmt.Sprintf("file is larger than %d MiB", maxFileSize>>20)}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, []Diagnostic{{Severity: Error, File: file, Message: fmt.Sprintf("empty file: expected a %s %s", apiVersion, kind)}}
		}
		return nil, []Diagnostic{yamlError(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil && len(extra.Content) > 0 {
		return nil, []Diagnostic{{Severity: Error, File: file, Line: extra.Content[0].Line,
			Message: fmt.Sprintf("a second document: this file holds one %s", kind)}}
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, []Diagnostic{{Severity: Error, File: file, Line: doc.Line, Message: fmt.Sprintf("expected a %s %s object", apiVersion, kind)}}
	}
	n := doc.Content[0]
	o := NewOrigin(file, n)
	gotKind, _ := scalar(n, "kind")
	gotVersion, _ := scalar(n, "apiVersion")
	object := kind
	if name, _ := scalar(mapping(n, "metadata"), "name"); name != "" {
		object = kind + " " + name
	}
	var ds []Diagnostic
	if gotKind != kind {
		ds = append(ds, At(Error, o, object, "kind", "kind is %q, expected %q", gotKind, kind))
	}
	if gotVersion != apiVersion {
		ds = append(ds, At(Error, o, object, "apiVersion", "apiVersion is %q, expected %q", gotVersion, apiVersion))
	}
	if len(ds) > 0 {
		return o, ds
	}
	if d, ok := decodeStrict(n, target, o, object); !ok {
		return o, []Diagnostic{d}
	}
	return o, nil
}
