package page

import (
	"testing"

	"github.com/redline-dev/redline/kit/errs"
)

func TestRoundTripAndKinds(t *testing.T) {
	c := Encode("f1", 42)
	if got, err := Decode("f1", c); err != nil || got != 42 {
		t.Fatalf("Decode(Encode(42)) = %d, %v", got, err)
	}
	if _, err := Decode("n1", c); errs.Reason(err) != "BAD_CURSOR" {
		t.Fatalf("a follows cursor on notes = %v; want BAD_CURSOR", err)
	}
	if got, err := Decode("n1", ""); err != nil || got != 1<<63-1 {
		t.Fatalf("Decode(\"\") = %d, %v; want the first page", got, err)
	}
	for in, want := range map[int]int{0: DefaultSize, -3: DefaultSize, 7: 7, 500: MaxSize} {
		if got := Size(in); got != want {
			t.Errorf("Size(%d) = %d; want %d", in, got, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("f1", Encode("f1", 9))
	f.Add("n1", "%%%")
	f.Fuzz(func(t *testing.T, kind, c string) {
		pos, err := Decode(kind, c)
		if err != nil && errs.Reason(err) != "BAD_CURSOR" {
			t.Fatalf("Decode(%q, %q) error %v; want BAD_CURSOR", kind, c, err)
		}
		if err == nil && pos <= 0 {
			t.Fatalf("Decode(%q, %q) = %d; positions are positive", kind, c, pos)
		}
	})
}
