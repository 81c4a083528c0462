package scenario

import (
	"bytes"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
)

// parsePath splits a dotted JSON path: keys, indexes, and * (a random element).
func parsePath(p string) ([]string, error) {
	if p == "" {
		return nil, fmt.Errorf("an empty path: write a dotted path such as token, user.id or notes.*.id")
	}
	segs := strings.Split(p, ".")
	for _, s := range segs {
		if s == "" {
			return nil, fmt.Errorf("path %q has an empty segment", p)
		}
	}
	return segs, nil
}

// extract decodes a JSON document and returns the value at path as text: a string as is,
// a number or bool as written, an object or array as compact JSON.
func extract(doc any, path []string) (string, error) {
	v := doc
	for i, seg := range path {
		at := strings.Join(path[:i+1], ".")
		switch node := v.(type) {
		case map[string]any:
			next, ok := node[seg]
			if !ok {
				return "", fmt.Errorf("%s: no such field", at)
			}
			v = next
		case []any:
			if len(node) == 0 {
				return "", fmt.Errorf("%s: the list is empty", at)
			}
			if seg == "*" {
				v = node[mrand.IntN(len(node))]
				continue
			}
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(node) {
				return "", fmt.Errorf("%s: want an index below %d or *", at, len(node))
			}
			v = node[n]
		case nil:
			return "", fmt.Errorf("%s: %s is null", at, strings.Join(path[:i], "."))
		default:
			return "", fmt.Errorf("%s: %s has no fields", at, strings.Join(path[:i], "."))
		}
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	case nil:
		return "", fmt.Errorf("%s: null", strings.Join(path, "."))
	default:
		b, err := json.Marshal(v)
		return string(b), err
	}
}

// decode parses a JSON response body, numbers kept as written.
func decode(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("the response is not JSON: %v", err)
	}
	return v, nil
}
