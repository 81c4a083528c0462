package biz

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestValidateTargets(t *testing.T) {
	hundred := make([]int64, MaxTargets)
	for i := range hundred {
		hundred[i] = int64(i + 1)
	}
	cases := []struct {
		name string
		in   []int64
		want []int64
		err  error
	}{
		{"empty", nil, []int64{}, nil},
		{"repeats answered once", []int64{3, 1, 3}, []int64{3, 1}, nil},
		{"zero", []int64{1, 0}, nil, ErrInvalidTarget},
		{"negative", []int64{-5}, nil, ErrInvalidTarget},
		{"exactly the limit", hundred, hundred, nil},
		{"over the limit", append(hundred, 101), nil, ErrTooManyIDs},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ValidateTargets(c.in)
			if !errors.Is(err, c.err) || len(got) != len(c.want) {
				t.Fatalf("ValidateTargets(%v) = %v, %v; want %v, %v", c.in, got, err, c.want, c.err)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("ValidateTargets(%v) = %v; want %v", c.in, got, c.want)
				}
			}
		})
	}
}

// FuzzValidateTargets checks that a batch is accepted exactly when it has at most MaxTargets
// ids, all > 0, and that what comes back is those ids once each.
func FuzzValidateTargets(f *testing.F) {
	f.Add([]byte{})
	f.Add(binary.LittleEndian.AppendUint64(nil, 1))
	f.Add(binary.LittleEndian.AppendUint64(nil, 1<<63)) // negative
	f.Add(make([]byte, 8))                              // zero
	f.Add(make([]byte, 8*(MaxTargets+1)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ids := make([]int64, 0, len(raw)/8)
		for i := 0; i+8 <= len(raw); i += 8 {
			ids = append(ids, int64(binary.LittleEndian.Uint64(raw[i:])))
		}
		valid := len(ids) <= MaxTargets
		for _, id := range ids {
			valid = valid && id > 0
		}
		got, err := ValidateTargets(ids)
		if (err == nil) != valid {
			t.Fatalf("ValidateTargets(%v) error = %v; want valid=%v", ids, err, valid)
		}
		if err != nil {
			return
		}
		seen := map[int64]bool{}
		for _, id := range got {
			if seen[id] {
				t.Fatalf("ValidateTargets(%v) = %v; %d twice", ids, got, id)
			}
			seen[id] = true
		}
		for _, id := range ids {
			if !seen[id] {
				t.Fatalf("ValidateTargets(%v) = %v; %d missing", ids, got, id)
			}
		}
	})
}
