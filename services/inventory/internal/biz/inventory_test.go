package biz

import (
	"slices"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func items(n int) []Item {
	out := make([]Item, n)
	for i := range out {
		out[i] = Item{SKU: int64(i + 1), Quantity: 1}
	}
	return out
}

func TestValidateReserve(t *testing.T) {
	tests := []struct {
		name   string
		order  int64
		items  []Item
		reason string
	}{
		{"ok", 1, []Item{{SKU: 9, Quantity: MaxQuantity}, {SKU: 3, Quantity: 1}}, ""},
		{"max items", 1, items(MaxItems), ""},
		{"zero order", 0, items(1), "INVALID_ORDER_ID"},
		{"negative order", -5, items(1), "INVALID_ORDER_ID"},
		{"no items", 1, nil, "NO_ITEMS"},
		{"too many items", 1, items(MaxItems + 1), "TOO_MANY_ITEMS"},
		{"zero sku", 1, []Item{{SKU: 0, Quantity: 1}}, "INVALID_SKU_ID"},
		{"zero quantity", 1, []Item{{SKU: 1, Quantity: 0}}, "INVALID_QUANTITY"},
		{"negative quantity", 1, []Item{{SKU: 1, Quantity: -1}}, "INVALID_QUANTITY"},
		{"quantity too big", 1, []Item{{SKU: 1, Quantity: MaxQuantity + 1}}, "INVALID_QUANTITY"},
		{"duplicate sku", 1, []Item{{SKU: 4, Quantity: 1}, {SKU: 2, Quantity: 1}, {SKU: 4, Quantity: 2}}, "DUPLICATE_SKU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sorted, err := ValidateReserve(tt.order, tt.items)
			if got := errs.Reason(err); got != tt.reason {
				t.Fatalf("ValidateReserve(%d, %v) reason = %q; want %q", tt.order, tt.items, got, tt.reason)
			}
			if err != nil {
				if errs.Code(err) != codes.InvalidArgument {
					t.Fatalf("ValidateReserve code = %v; want InvalidArgument", errs.Code(err))
				}
				return
			}
			if !slices.IsSortedFunc(sorted, func(a, b Item) int { return int(a.SKU - b.SKU) }) {
				t.Fatalf("ValidateReserve items = %v; want sorted by SKU", sorted)
			}
		})
	}
}

var reasons = []string{"INVALID_ORDER_ID", "NO_ITEMS", "TOO_MANY_ITEMS", "INVALID_SKU_ID", "INVALID_QUANTITY", "DUPLICATE_SKU"}

// FuzzValidateReserve decodes raw into items, three bytes each (a signed SKU byte, so
// duplicates and non-positive ids are common, and a signed 16-bit quantity around the
// bounds), and checks that validation either accepts a well-formed request or rejects it
// with InvalidArgument and a known reason, never changing its input.
func FuzzValidateReserve(f *testing.F) {
	f.Add(int64(1), []byte{1, 0, 1})
	f.Add(int64(7), []byte{1, 0, 1, 2, 3, 232, 1, 0, 2})
	f.Add(int64(0), []byte{})
	f.Add(int64(-1), []byte{255, 255, 255})
	f.Add(int64(1), make([]byte, 3*(MaxItems+1)))
	f.Fuzz(func(t *testing.T, order int64, raw []byte) {
		var in []Item
		for i := 0; i+2 < len(raw); i += 3 {
			in = append(in, Item{SKU: int64(int8(raw[i])), Quantity: int64(int16(uint16(raw[i+1])<<8 | uint16(raw[i+2])))})
		}
		before := slices.Clone(in)
		out, err := ValidateReserve(order, in)
		if !slices.Equal(in, before) {
			t.Fatalf("ValidateReserve changed its input: %v -> %v", before, in)
		}
		if err != nil {
			if errs.Code(err) != codes.InvalidArgument || !slices.Contains(reasons, errs.Reason(err)) {
				t.Fatalf("ValidateReserve(%d, %v) = %v; want InvalidArgument with a known reason", order, in, err)
			}
			return
		}
		if order <= 0 || len(out) == 0 || len(out) > MaxItems || len(out) != len(in) {
			t.Fatalf("ValidateReserve(%d, %v) accepted %d items", order, in, len(out))
		}
		for i, it := range out {
			if it.SKU <= 0 || it.Quantity < 1 || it.Quantity > MaxQuantity || (i > 0 && out[i-1].SKU >= it.SKU) {
				t.Fatalf("ValidateReserve(%d, %v) accepted %v", order, in, out)
			}
			if !slices.Contains(in, it) {
				t.Fatalf("ValidateReserve(%d, %v) returned %v, not in the input", order, in, it)
			}
		}
	})
}
