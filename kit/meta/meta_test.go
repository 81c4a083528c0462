package meta

import (
	"context"
	"testing"
)

func TestInjectExtractRoundTrip(t *testing.T) {
	in := MD{RequestID: "abc-1", Criticality: Sheddable, Attempt: 2, Lane: "stress-1"}
	c := MapCarrier{}
	Inject(NewContext(context.Background(), in), c)
	if got := Extract(c); got != in {
		t.Fatalf("Extract(Inject(%+v)) = %+v", in, got)
	}
}

func TestDefaultsStayOffTheWire(t *testing.T) {
	c := MapCarrier{}
	Inject(NewContext(context.Background(), MD{RequestID: "r"}), c)
	if len(c) != 1 {
		t.Fatalf("Inject wrote %v; want only the request id", c)
	}
}

func TestExtractDropsBadValues(t *testing.T) {
	c := MapCarrier{HeaderRequestID: "has space", HeaderCriticality: "VERY", HeaderAttempt: "-3",
		HeaderBaggage: "lane=UPPER"}
	if got := Extract(c); got != (MD{}) {
		t.Fatalf("Extract(bad) = %+v; want zero MD", got)
	}
}

func TestLaneFromBaggage(t *testing.T) {
	cases := map[string]string{
		"":                                 "",
		"lane=canary":                      "canary",
		"userId=1, lane=s1;prop=x, a=b":    "s1",
		"lane":                             "",
		"lane=bad_name":                    "",
		"xlane=foo":                        "",
		"lane=" + string(make([]byte, 40)): "",
	}
	for in, want := range cases {
		if got := LaneFromBaggage(in); got != want {
			t.Errorf("LaneFromBaggage(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestCriticalityNames(t *testing.T) {
	for _, c := range []Criticality{CriticalPlus, Critical, SheddablePlus, Sheddable} {
		got, ok := ParseCriticality(c.String())
		if !ok || got != c {
			t.Errorf("ParseCriticality(%q) = %v, %v", c.String(), got, ok)
		}
	}
	if !(CriticalPlus > Critical && Critical > SheddablePlus && SheddablePlus > Sheddable) {
		t.Fatal("criticality order broken: shedding compares levels")
	}
}

func FuzzExtract(f *testing.F) {
	f.Add("id-1", "SHEDDABLE", "1", "lane=a")
	f.Add("", "", "", "a=b,lane=c;d")
	f.Fuzz(func(t *testing.T, id, crit, attempt, baggage string) {
		md := Extract(MapCarrier{HeaderRequestID: id, HeaderCriticality: crit, HeaderAttempt: attempt, HeaderBaggage: baggage})
		if md.Lane != "" && !ValidLane(md.Lane) {
			t.Fatalf("invalid lane %q accepted", md.Lane)
		}
		if md.RequestID != "" && !ValidRequestID(md.RequestID) {
			t.Fatalf("invalid request id %q accepted", md.RequestID)
		}
		// What we accept must survive another hop unchanged.
		c := MapCarrier{}
		Inject(NewContext(context.Background(), md), c)
		if again := Extract(c); again != md {
			t.Fatalf("second hop changed %+v to %+v", md, again)
		}
	})
}
