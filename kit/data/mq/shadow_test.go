package mq

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/redline-dev/redline/kit/data/internal/lanes"
	"github.com/redline-dev/redline/kit/meta"
)

// TestLanesFailClosed: a baseline queue refuses to publish in a lane and terminates a
// message that arrives with one; the shadow twin lives on its own subjects and stream, and
// its handlers are always in a lane.
func TestLanesFailClosed(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		ts := newTestStream()
		base, shadow := ts.open(t, url), ts.open(t, url, Shadow())
		lane := meta.WithLane(t.Context(), "stress-1")
		refused := testutil.ToFloat64(lanes.Counter("mq"))

		if err := base.Publish(lane, "note.created", []byte("x")); !errors.Is(err, ErrLane) {
			t.Fatalf("baseline Publish in a lane = %v; want ErrLane", err)
		}
		type got struct {
			side, lane, data string
		}
		seen := make(chan got, 8)
		for side, q := range map[string]*JetStream{"baseline": base, "shadow": shadow} {
			subscribe(t, q, "note.*", "d", func(ctx context.Context, m Message) error {
				seen <- got{side, meta.Lane(ctx), string(m.Data)}
				return nil
			})
		}
		// A lane message forged onto a baseline subject, bypassing Publish.
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		forged := &nats.Msg{Subject: ts.prefix + ".note.created", Data: []byte("forged"), Header: nats.Header{}}
		forged.Header.Set(meta.HeaderBaggage, "lane=stress-1")
		if err := nc.PublishMsg(forged); err != nil {
			t.Fatal(err)
		}
		publish(t, t.Context(), base, "note.created", "base")
		publish(t, lane, shadow, "note.created", "lane")
		publish(t, t.Context(), shadow, "note.created", "no lane")

		want := map[got]bool{{"baseline", "", "base"}: true, {"shadow", "stress-1", "lane"}: true,
			{"shadow", meta.ShadowLane, "no lane"}: true}
		for len(want) > 0 {
			select {
			case g := <-seen:
				if !want[g] {
					t.Fatalf("handled %+v; want only %v", g, want)
				}
				delete(want, g)
			case <-time.After(15 * time.Second):
				t.Fatalf("not handled within 15s: %v", want)
			}
		}
		waitFor(t, "the forged message terminated", func() bool { return base.Stats().Terminated == 1 })
		if got := testutil.ToFloat64(lanes.Counter("mq")) - refused; got != 2 {
			t.Errorf("refusals counted %v; want 2 (the publish and the forged message)", got)
		}
		select {
		case g := <-seen:
			t.Fatalf("handled %+v after the expected three", g)
		default:
		}
	})
}

// TestScan reads what the stream holds since a time, without consuming it.
func TestScan(t *testing.T) {
	forEach(t, func(t *testing.T, url string) {
		q := newTestStream().open(t, url)
		if err := q.Scan(t.Context(), time.Now().Add(-time.Hour), 0, func(string, map[string]string, []byte) bool {
			t.Fatal("an empty stream has messages")
			return false
		}); err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			publish(t, t.Context(), q, "a.b", string(rune('a'+i%26)))
		}
		var got []string
		err := q.Scan(t.Context(), time.Now().Add(-time.Hour), 0, func(subject string, _ map[string]string, data []byte) bool {
			got = append(got, subject+":"+string(data))
			return true
		})
		if err != nil || len(got) != 300 || got[0] != "a.b:a" || got[299] != "a.b:"+string(rune('a'+299%26)) {
			t.Fatalf("Scan = %d messages (%v), first %v", len(got), err, got[:min(len(got), 2)])
		}
		n := 0
		if err := q.Scan(t.Context(), time.Now().Add(-time.Hour), 10, func(string, map[string]string, []byte) bool { n++; return true }); err != nil || n != 10 {
			t.Fatalf("Scan with limit 10 read %d (%v)", n, err)
		}
		n = 0
		if err := q.Scan(t.Context(), time.Now().Add(time.Minute), 0, func(string, map[string]string, []byte) bool { n++; return true }); err != nil || n != 0 {
			t.Fatalf("Scan from the future read %d (%v)", n, err)
		}
	})
}
