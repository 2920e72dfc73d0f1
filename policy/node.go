package policy

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Caps on attacker-controlled work while decoding a document.
const (
	// MaxDocumentSize is the largest policy document accepted, in bytes.
	MaxDocumentSize = 64 << 10
	maxMapEntries   = 64   // groups, max_uses, derive kinds
	maxSeqEntries   = 1024 // members of a group, columns, recipients, …
	maxDepth        = 16
)

// checkNode walks a decoded YAML tree against the Go type it will be decoded into and reports, with
// its position, the first unknown field, duplicate key, anchor or alias, or oversized collection.
// yaml.v3's own KnownFields reports lines but not columns, and its duplicate-key check is quadratic;
// this walk runs first, so both are bounded and precise.
func checkNode(n *yaml.Node, t reflect.Type, path string, depth int) error {
	if depth > maxDepth {
		return posErr(n, path, "nested too deeply")
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return posErr(n, path, "anchors and aliases are not allowed in a policy")
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		return checkStruct(n, t, path, depth)
	case reflect.Map:
		return checkMap(n, t, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return posErr(n, path, "want a list, got "+kindName(n))
		}
		if len(n.Content) > maxSeqEntries {
			return posErr(n, path, fmt.Sprintf("list has %d entries, more than the %d allowed", len(n.Content), maxSeqEntries))
		}
		for i, c := range n.Content {
			if err := checkNode(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	default:
		if n.Kind != yaml.ScalarNode {
			return posErr(n, path, "want a single value, got "+kindName(n))
		}
	}
	return nil
}

func checkStruct(n *yaml.Node, t reflect.Type, path string, depth int) error {
	if n.Kind != yaml.MappingNode {
		return posErr(n, path, "want a mapping, got "+kindName(n))
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		fields[strings.Split(f.Tag.Get("yaml"), ",")[0]] = f.Type
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok || k.Kind != yaml.ScalarNode {
			return posErr(k, path, fmt.Sprintf("unknown field %q (known: %s)", k.Value, knownFields(t)))
		}
		if seen[k.Value] {
			return posErr(k, join(path, k.Value), "duplicate key")
		}
		seen[k.Value] = true
		if err := checkNode(v, ft, join(path, k.Value), depth+1); err != nil {
			return err
		}
	}
	return nil
}

func checkMap(n *yaml.Node, t reflect.Type, path string, depth int) error {
	if n.Kind != yaml.MappingNode {
		return posErr(n, path, "want a mapping, got "+kindName(n))
	}
	if len(n.Content)/2 > maxMapEntries {
		return posErr(n, path, fmt.Sprintf("mapping has %d entries, more than the %d allowed", len(n.Content)/2, maxMapEntries))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return posErr(k, path, "keys must be plain names")
		}
		if seen[k.Value] {
			return posErr(k, join(path, k.Value), "duplicate key")
		}
		seen[k.Value] = true
		if err := checkNode(v, t.Elem(), join(path, k.Value), depth+1); err != nil {
			return err
		}
	}
	return nil
}

func knownFields(t reflect.Type) string {
	var names []string
	for i := range t.NumField() {
		names = append(names, strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0])
	}
	return strings.Join(names, ", ")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func posErr(n *yaml.Node, field, msg string) *SyntaxError {
	return &SyntaxError{Line: n.Line, Column: n.Column, Field: field, Msg: msg}
}

// lookup returns the node at a dotted path below a mapping node (without list indices), or nil.
func lookup(n *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}
