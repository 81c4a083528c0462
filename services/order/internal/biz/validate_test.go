package biz

import (
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func lineN(n int) []Line {
	out := make([]Line, n)
	for i := range out {
		out[i] = Line{SKUID: int64(n - i), Quantity: 1}
	}
	return out
}

func TestValidateCreate(t *testing.T) {
	tests := []struct {
		name   string
		user   int64
		key    string
		lines  []Line
		reason string
	}{
		{"ok", 1, "k", []Line{{9, MaxQuantity}, {3, 1}}, ""},
		{"max items", 1, strings.Repeat("k", MaxIdemKey), lineN(MaxItems), ""},
		{"user 0", 0, "k", lineN(1), "INVALID_USER_ID"},
		{"no key", 1, "", lineN(1), "INVALID_IDEMPOTENCY_KEY"},
		{"long key", 1, strings.Repeat("k", MaxIdemKey+1), lineN(1), "INVALID_IDEMPOTENCY_KEY"},
		{"non-ASCII key", 1, "ключ", lineN(1), "INVALID_IDEMPOTENCY_KEY"},
		{"no items", 1, "k", nil, "NO_ITEMS"},
		{"too many", 1, "k", lineN(MaxItems + 1), "TOO_MANY_ITEMS"},
		{"sku 0", 1, "k", []Line{{0, 1}}, "INVALID_SKU_ID"},
		{"quantity 0", 1, "k", []Line{{1, 0}}, "INVALID_QUANTITY"},
		{"quantity over", 1, "k", []Line{{1, MaxQuantity + 1}}, "INVALID_QUANTITY"},
		{"duplicate", 1, "k", []Line{{4, 1}, {2, 1}, {4, 2}}, "DUPLICATE_SKU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sorted, err := ValidateCreate(tt.user, tt.key, tt.lines)
			if got := errs.Reason(err); got != tt.reason {
				t.Fatalf("ValidateCreate(%d, %q, %v) reason = %q; want %q", tt.user, tt.key, tt.lines, got, tt.reason)
			}
			if err == nil && !slices.IsSortedFunc(sorted, func(a, b Line) int { return int(a.SKUID - b.SKUID) }) {
				t.Fatalf("ValidateCreate lines = %v; want sorted by sku", sorted)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	a := fingerprint([]Line{{1, 2}, {3, 4}})
	if a != fingerprint([]Line{{1, 2}, {3, 4}}) {
		t.Fatal("fingerprint is not stable")
	}
	for _, other := range [][]Line{{{1, 2}}, {{1, 2}, {3, 5}}, {{12, 3}, {4, 4}}, {{1, 23}, {4, 4}}} {
		if fingerprint(other) == a {
			t.Fatalf("fingerprint(%v) = fingerprint of [{1 2} {3 4}]", other)
		}
	}
}

var createReasons = []string{"INVALID_USER_ID", "INVALID_IDEMPOTENCY_KEY", "NO_ITEMS", "TOO_MANY_ITEMS",
	"INVALID_SKU_ID", "INVALID_QUANTITY", "DUPLICATE_SKU"}

// FuzzValidateCreate decodes raw into lines, three bytes each (a signed SKU byte, so repeats
// and non-positive ids are common, and a signed 16-bit quantity around the bounds), and
// checks that validation accepts a well-formed request, sorted and unchanged otherwise, or
// rejects it with InvalidArgument and a known reason, never changing its input.
func FuzzValidateCreate(f *testing.F) {
	f.Add(int64(1), "key", []byte{1, 0, 1})
	f.Add(int64(7), "k\x00", []byte{1, 0, 1, 2, 3, 232, 1, 0, 2})
	f.Add(int64(0), "", []byte{})
	f.Add(int64(-1), strings.Repeat("x", 200), []byte{255, 255, 255})
	f.Add(int64(1), "k", make([]byte, 3*(MaxItems+1)))
	f.Fuzz(func(t *testing.T, user int64, key string, raw []byte) {
		var in []Line
		for i := 0; i+2 < len(raw); i += 3 {
			in = append(in, Line{SKUID: int64(int8(raw[i])), Quantity: int64(int16(uint16(raw[i+1])<<8 | uint16(raw[i+2])))})
		}
		before := slices.Clone(in)
		out, err := ValidateCreate(user, key, in)
		if !slices.Equal(in, before) {
			t.Fatalf("ValidateCreate changed its input: %v -> %v", before, in)
		}
		if err != nil {
			if errs.Code(err) != codes.InvalidArgument || !slices.Contains(createReasons, errs.Reason(err)) {
				t.Fatalf("ValidateCreate(%d, %q, %v) = %v; want InvalidArgument with a known reason", user, key, in, err)
			}
			return
		}
		if user <= 0 || key == "" || len(key) > MaxIdemKey || len(out) != len(in) || len(out) > MaxItems {
			t.Fatalf("ValidateCreate(%d, %q, %v) accepted", user, key, in)
		}
		for i, l := range out {
			if l.SKUID <= 0 || l.Quantity < 1 || l.Quantity > MaxQuantity || (i > 0 && out[i-1].SKUID >= l.SKUID) ||
				!slices.Contains(in, l) {
				t.Fatalf("ValidateCreate(%d, %q, %v) accepted %v", user, key, in, out)
			}
		}
	})
}
