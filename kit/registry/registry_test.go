package registry_test

import (
	"errors"
	"testing"

	"github.com/redline-dev/redline/kit/registry"
)

func TestNodeLane(t *testing.T) {
	tests := []struct {
		labels map[string]string
		want   string
	}{
		{nil, ""},
		{map[string]string{"zone": "a"}, ""},
		{map[string]string{registry.LabelLane: "canary"}, "canary"},
	}
	for _, tt := range tests {
		n := registry.Node{Labels: tt.labels}
		if got := n.Lane(); got != tt.want {
			t.Errorf("Node{Labels: %v}.Lane() = %q; want %q", tt.labels, got, tt.want)
		}
	}
}

func TestNodeValidate(t *testing.T) {
	tests := []struct {
		node registry.Node
		ok   bool
	}{
		{registry.Node{Service: "s", ID: "1", Addr: "h:1"}, true},
		{registry.Node{ID: "1", Addr: "h:1"}, false},
		{registry.Node{Service: "s", Addr: "h:1"}, false},
		{registry.Node{Service: "s", ID: "1"}, false},
		{registry.Node{Service: "s/x", ID: "1", Addr: "h:1"}, false},
	}
	for _, tt := range tests {
		err := tt.node.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, registry.ErrInvalidNode)) {
			t.Errorf("%+v.Validate() = %v; want ok=%v", tt.node, err, tt.ok)
		}
	}
}
