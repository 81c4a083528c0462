package slo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/ha/clock"
)

// twin builds an evaluator of slos on a fake clock at at, restored from data.
func twin(t *testing.T, slos []SLO, at time.Time, data []byte) (*Evaluator, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(at)
	e, err := NewEvaluator(slos, WithClock(clk))
	if err != nil {
		t.Fatalf("NewEvaluator: %v", err)
	}
	if err := e.Restore(data); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	return e, clk
}

func snapshot(t *testing.T, e *Evaluator) []byte {
	t.Helper()
	data, err := e.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return data
}

func status(t *testing.T, e *Evaluator, name string) Status {
	t.Helper()
	st, err := e.Status(name)
	if err != nil {
		t.Fatalf("Status(%q): %v", name, err)
	}
	return st
}

// TestSnapshotRestore: a restored evaluator has the same status as the one it came from,
// page included, and the two stay alike as samples go on: the page resolves in both at the
// same sample, with the FiredAt of before the restart.
func TestSnapshotRestore(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day))
	steady(s)
	s.run(10*time.Minute, fineRes, 100, 100, nil)
	before := s.status()
	if !firing(before, Page) {
		t.Fatalf("after 10 min of outage firing = %+v; want a page", before.Firing)
	}
	data := snapshot(t, s.e)
	if !bytes.Contains(data, []byte(`"version":1`)) {
		t.Fatalf("snapshot lacks \"version\":1: %.200s", data)
	}
	e, clk := twin(t, []SLO{testSLO(0.999, 30*Day)}, s.clk.Now(), data)
	if got := status(t, e, s.name); !reflect.DeepEqual(got, before) {
		t.Fatalf("restored status:\n%+v\nwant\n%+v", got, before)
	}
	if got, want := snapshot(t, e), data; !bytes.Equal(got, want) {
		t.Fatalf("snapshot of the restored evaluator differs from the one it came from")
	}

	firedAt := before.Firing[0].FiredAt
	for range 720 { // an hour of recovery, fed to both
		s.clk.Advance(fineRes)
		clk.Advance(fineRes)
		s.c.Total += 100
		s.record()
		if err := e.Record(s.name, s.c); err != nil {
			t.Fatal(err)
		}
		if got, want := status(t, e, s.name), s.status(); !reflect.DeepEqual(got, want) {
			t.Fatalf("at %s after the restore:\n%+v\nwant\n%+v", clk.Now(), got, want)
		}
	}
	resolved := false
	for _, a := range e.Events() {
		if a.State == Resolved && a.Severity == Page && a.FiredAt.Equal(firedAt) {
			resolved = true
		}
	}
	if !resolved || firing(status(t, e, s.name), Page) {
		t.Fatalf("after an hour of recovery events = %+v; want the page fired at %s resolved", e.Events(), firedAt)
	}
}

// TestRestoreBaseline: after a restore, a count that went up adds only what came since the
// snapshot, and one that went down reads as a restart of the process.
func TestRestoreBaseline(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day))
	s.run(time.Hour, time.Minute, 1, 1000, nil)
	data := snapshot(t, s.e)
	for _, tc := range []struct {
		name     string
		c        Counts
		bad, tot float64
	}{
		{"up", Counts{Bad: s.c.Bad + 2, Total: s.c.Total + 500}, 62, 60_500},
		{"restart", Counts{Bad: 3, Total: 40}, 63, 60_040},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, clk := twin(t, []SLO{testSLO(0.999, 30*Day)}, s.clk.Now(), data)
			clk.Advance(time.Minute)
			if err := e.Record(s.name, tc.c); err != nil {
				t.Fatal(err)
			}
			if p := status(t, e, s.name).Period; p.Bad != tc.bad || p.Total != tc.tot {
				t.Fatalf("period after the first sample = %v/%v; want %v/%v", p.Bad, p.Total, tc.bad, tc.tot)
			}
		})
	}
}

// TestRestoreChangedSLO: entries apply by name; a changed period shape drops the period ring
// but keeps the alert windows' rings; a changed indicator drops every ring and the baseline.
func TestRestoreChangedSLO(t *testing.T) {
	base := testSLO(0.999, 30*Day)
	other := AvailabilitySLO("user", "/user.v1.User/GetUser", 0.999, 30*Day)
	clk := clock.NewFake(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	e, err := NewEvaluator([]SLO{base, other}, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	c := Counts{}
	for range 24 * 60 {
		clk.Advance(time.Minute)
		c.Bad, c.Total = c.Bad+1, c.Total+1000
		for _, n := range []string{base.Name, other.Name} {
			if err := e.Record(n, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	data := snapshot(t, e)
	was := status(t, e, base.Name)
	if was.Period.Total == 0 {
		t.Fatal("no period history to drop")
	}
	for _, tc := range []struct {
		name        string
		slo         SLO
		keepWindows bool
		keepPeriod  bool
		keepLast    bool
	}{
		{"same", base, true, true, true},
		{"objective", testSLO(0.99, 30*Day), true, true, true},
		{"period", testSLO(0.999, 28*Day), true, false, true},
		{"calendar", testSLO(0.999, 30*Day, WithCalendar("month")), true, false, true},
		{"timeslices", testSLO(0.999, 30*Day, WithTimeslices(0.9, 5*time.Minute)), true, false, true},
		{"routes", testSLO(0.999, 30*Day, WithRoutes("/note.v1.Note/GetNotes")), false, false, false},
		{"service", AvailabilitySLO("notes", "/note.v1.Note/GetNote", 0.999, 30*Day, WithName(base.Name)), false, false, false},
		{"transport", AvailabilitySLO("note", "GET /v1/notes/{id}", 0.999, 30*Day, WithName(base.Name)), false, false, false},
		{"kind", LatencySLO("note", "/note.v1.Note/GetNote", 250*time.Millisecond, 0.999, 30*Day, WithName(base.Name)), false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fresh := AvailabilitySLO("feed", "/feed.v1.Feed/HomeFeed", 0.999, 30*Day)
			r, _ := twin(t, []SLO{tc.slo, fresh}, clk.Now(), data)
			got := status(t, r, base.Name)
			if kept := counts(got.Windows) == counts(was.Windows); kept != tc.keepWindows || (!kept && got.Windows[len(got.Windows)-1].Total != 0) {
				t.Errorf("windows = %v; want %v kept = %v", counts(got.Windows), counts(was.Windows), tc.keepWindows)
			}
			if kept := got.Period.Total == was.Period.Total; kept != tc.keepPeriod || (!kept && got.Period.Total != 0) {
				t.Errorf("period total = %v; want %v kept = %v", got.Period.Total, was.Period.Total, tc.keepPeriod)
			}
			if st := status(t, r, fresh.Name); st.Period.Total != 0 || len(st.Windows) == 0 || st.Windows[0].Total != 0 {
				t.Errorf("an SLO the snapshot lacks: %+v; want it fresh", st)
			}
			// The next sample adds 1000 requests if the baseline was kept; else it sets it.
			if err := r.Record(base.Name, Counts{Bad: c.Bad, Total: c.Total + 1000}); err != nil {
				t.Fatal(err)
			}
			want := 0.0
			if tc.keepLast {
				want = 1000
			}
			if w := status(t, r, base.Name).Windows[0]; w.Total-got.Windows[0].Total != want {
				t.Errorf("first sample added %v requests to the %s window; want %v", w.Total-got.Windows[0].Total, FormatDuration(w.Window), want)
			}
		})
	}
}

// TestRestoreChangedThreshold: a latency SLO whose threshold changed starts afresh, and
// its page, kept, resolves at the next sample.
func TestRestoreChangedThreshold(t *testing.T) {
	const route = "/note.v1.Note/GetNote"
	slow := LatencySLO("note", route, 250*time.Millisecond, 0.999, 30*Day)
	s := newSim(t, slow)
	steady(s)
	s.run(10*time.Minute, fineRes, 100, 100, nil)
	if !firing(s.status(), Page) {
		t.Fatal("no page to snapshot")
	}
	data := snapshot(t, s.e)
	for _, tc := range []struct {
		name string
		th   time.Duration
		keep bool
	}{{"same", 250 * time.Millisecond, true}, {"threshold", 500 * time.Millisecond, false}} {
		t.Run(tc.name, func(t *testing.T) {
			e, clk := twin(t, []SLO{LatencySLO("note", route, tc.th, 0.999, 30*Day, WithName(slow.Name))}, s.clk.Now(), data)
			st := status(t, e, slow.Name)
			if kept := st.Period.Total != 0 || st.Windows[0].Total != 0; kept != tc.keep {
				t.Errorf("period %v, %s window %v; want history kept = %v", st.Period.Total, FormatDuration(st.Windows[0].Window), st.Windows[0].Total, tc.keep)
			}
			if !firing(st, Page) {
				t.Fatalf("restored firing = %+v; want the page kept", st.Firing)
			}
			clk.Advance(fineRes)
			if err := e.Record(slow.Name, Counts{Bad: s.c.Bad + 100, Total: s.c.Total + 100}); err != nil {
				t.Fatal(err)
			}
			if firing(status(t, e, slow.Name), Page) == !tc.keep {
				t.Errorf("page firing after a bad sample = %v; want %v", !tc.keep, tc.keep)
			}
		})
	}
}

// counts formats the windows' events, which do not depend on the objective.
func counts(ws []Window) string {
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "%s: %v/%v ", FormatDuration(w.Window), w.Bad, w.Total)
	}
	return b.String()
}

// TestRestoreCorrupt: bad data is an error and leaves the evaluator as it was, able to take
// a good snapshot afterwards. Only one of the two SLOs' entries is broken, so applying the
// good one before finding the bad one would show.
func TestRestoreCorrupt(t *testing.T) {
	other := AvailabilitySLO("user", "/user.v1.User/GetUser", 0.999, 30*Day)
	slos := []SLO{testSLO(0.999, 30*Day), other}
	s := newSim(t, slos[0])
	src, err := NewEvaluator(slos, WithClock(s.clk))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2*720 + 120 { // 2 h clean, then 10 min of outage
		s.clk.Advance(fineRes)
		s.c.Total += 100
		if i >= 2*720 {
			s.c.Bad += 100
		}
		for _, sl := range slos {
			if err := src.Record(sl.Name, s.c); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !firing(status(t, src, s.name), Page) || !firing(status(t, src, other.Name), Page) {
		t.Fatal("no page to snapshot")
	}
	good := snapshot(t, src)
	edit := func(f func(*snapshotJSON)) []byte {
		var snap snapshotJSON
		if err := json.Unmarshal(good, &snap); err != nil {
			t.Fatal(err)
		}
		f(&snap)
		out, err := json.Marshal(snap)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	entry := func(sn *snapshotJSON) *sloJSON { return sn.SLOs[s.name] }
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "snapshot"},
		{"garbage", []byte("\x00\x01 not json"), "snapshot"},
		{"truncated", good[:len(good)/2], "snapshot"},
		{"trailing", append(append([]byte{}, good...), "{}"...), "after the JSON"},
		{"unknown field", bytes.Replace(good, []byte(`"version":1`), []byte(`"version":1,"extra":2`), 1), "extra"},
		{"version", bytes.Replace(good, []byte(`"version":1`), []byte(`"version":2`), 1), "version"},
		{"no time", edit(func(sn *snapshotJSON) { sn.At = time.Time{} }), "at"},
		{"lengths", edit(func(sn *snapshotJSON) { r := &entry(sn).Levels[0]; r.Bad = r.Bad[1:] }), "levels[0]"},
		{"negative total", edit(func(sn *snapshotJSON) { entry(sn).Levels[1].Total[3] = -1 }), "levels[1].total[3]"},
		{"bad over total", edit(func(sn *snapshotJSON) { r := &entry(sn).PeriodRing; r.Bad[0] = r.Total[0] + 1 }), "period_ring.bad[0]"},
		{"repeated bucket", edit(func(sn *snapshotJSON) { entry(sn).Levels[0].Idx[5] = 0 }), "levels[0].idx[5]"},
		{"future bucket", edit(func(sn *snapshotJSON) { entry(sn).Levels[0].Idx[0] += 1 << 30 }), "levels[0].idx[0]"},
		{"zero res", edit(func(sn *snapshotJSON) { entry(sn).Levels[0].Res = 0 }), "res"},
		{"NaN baseline", bytes.Replace(good, []byte(`"last":{"Bad":`), []byte(`"last":{"Bad":"x","B":`), 1), "snapshot"},
		{"negative baseline", edit(func(sn *snapshotJSON) { entry(sn).Last.Total = -5 }), "last.Total"},
		{"resolved firing", edit(func(sn *snapshotJSON) { entry(sn).Conditions[0].Firing.State = Resolved }), "conditions[0].firing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewEvaluator(slos, WithClock(clock.NewFake(s.clk.Now())))
			if err != nil {
				t.Fatal(err)
			}
			before := e.Statuses()
			err = e.Restore(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Restore = %v; want an error naming %q", err, tc.want)
			}
			if got := e.Statuses(); !reflect.DeepEqual(got, before) {
				t.Fatalf("after a failed Restore status = %+v; want %+v", got, before)
			}
			if err := e.Restore(good); err != nil {
				t.Fatalf("Restore(good) after a failed one: %v", err)
			}
			if got, want := e.Statuses(), src.Statuses(); !reflect.DeepEqual(got, want) {
				t.Fatalf("restored status = %+v; want %+v", got, want)
			}
		})
	}
}

func TestRestoreAfterSample(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day)) // newSim records the baseline
	data := snapshot(t, s.e)
	if err := s.e.Restore(data); err == nil || !strings.Contains(err.Error(), "after the first sample") {
		t.Fatalf("Restore after a sample = %v; want an error", err)
	}
}

// BenchmarkSnapshot: the default SLOs after a day of 5 s samples.
func BenchmarkSnapshot(b *testing.B) {
	clk := clock.NewFake(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	e, err := NewEvaluator(Defaults(), WithClock(clk))
	if err != nil {
		b.Fatal(err)
	}
	for i := range Day / fineRes {
		clk.Advance(fineRes)
		for _, t := range e.order {
			t.add(clk.Now(), Counts{Bad: float64(i % 3), Total: 1000})
		}
	}
	for _, t := range e.order {
		t.last, t.primed = Counts{Bad: 17280, Total: 17_280_000}, true
	}
	var data []byte
	for b.Loop() {
		if data, err = e.Snapshot(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data)), "bytes")
}
