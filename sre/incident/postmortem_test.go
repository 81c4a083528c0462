package incident

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/ha/clock"
)

// dropLines returns md without the lines equal to any of drop.
func dropLines(md string, drop ...string) string {
	var b strings.Builder
	for line := range strings.Lines(md) {
		keep := true
		for _, d := range drop {
			if strings.TrimSpace(line) == d {
				keep = false
			}
		}
		if keep {
			b.WriteString(line)
		}
	}
	return b.String()
}

func TestPublishPostmortem(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		s := openStore(t, b.open(t), clk)
		inc, _, err := s.Trigger(ctx, Trigger{DedupKey: "k", Title: "checkout errors", Service: "order", Severity: SEV2, Actor: "alert:Burn"})
		if err != nil {
			t.Fatal(err)
		}
		draft, err := s.Postmortem(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		text := draft + "\nRoot cause: a bad deploy.\n"

		// Still triggered, then acknowledged: refused, nothing written.
		for _, step := range []func(context.Context, string, string, string) (*Incident, error){nil, s.Acknowledge} {
			if step != nil {
				if _, err := step(ctx, inc.ID, "ana", ""); err != nil {
					t.Fatal(err)
				}
			}
			_, err := s.PublishPostmortem(ctx, inc.ID, "ana", text)
			if !errors.Is(err, ErrNotMitigated) || !strings.Contains(err.Error(), "mitigate or resolve it") {
				t.Fatalf("PublishPostmortem before mitigation = %v; want ErrNotMitigated saying to mitigate or resolve", err)
			}
		}
		if _, _, _, err := s.PublishedPostmortem(ctx, inc.ID); !errors.Is(err, ErrNoPostmortem) {
			t.Fatalf("PublishedPostmortem after a refusal = %v; want ErrNoPostmortem", err)
		}
		if _, err := s.AddEntry(ctx, inc.ID, Entry{Kind: KindPostmortem, Text: "sneaky"}); !errors.Is(err, ErrBadInput) {
			t.Fatalf("AddEntry(postmortem) = %v; want ErrBadInput", err)
		}

		clk.Advance(10 * time.Minute)
		if _, err := s.Mitigate(ctx, inc.ID, "ana", "rolled back"); err != nil {
			t.Fatal(err)
		}
		big := strings.Repeat("x", MaxPostmortemBytes) + "\n" + draft
		for _, tc := range []struct {
			name, author, md string
			want             []string
			notWant          []string
		}{
			{"no author", " ", text, []string{"author: missing"}, nil},
			{"no markdown", "ana", "\n \n", []string{"markdown: missing"}, nil},
			{"too large", "ana", big, []string{"at most 262144"}, nil},
			{"not UTF-8", "ana", text + "\xff", []string{"not UTF-8"}, nil},
			{"NUL byte", "ana", text + "\x00", []string{"not UTF-8"}, nil},
			{"missing headings", "ana", dropLines(text, "### Did it alert?", "## Todo"),
				[]string{`"### Did it alert?"`, `"## Todo"`}, []string{`"## Summary"`, `"## Impact"`}},
			{"heading inside a line", "ana", strings.Replace(text, "\n## Root cause\n", "\nsee ## Root cause\n", 1),
				[]string{`"## Root cause"`}, []string{`"## Summary"`}},
		} {
			_, err := s.PublishPostmortem(ctx, inc.ID, tc.author, tc.md)
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("%s: PublishPostmortem = %v; want ErrBadInput", tc.name, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q does not say %s", tc.name, err, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q names %s, which is present", tc.name, err, w)
				}
			}
		}
		if _, err := s.PublishPostmortem(ctx, "inc-nope", "ana", text); !errors.Is(err, ErrNotFound) {
			t.Fatalf("PublishPostmortem(unknown) = %v; want ErrNotFound", err)
		}
		if _, _, _, err := s.PublishedPostmortem(ctx, "inc-nope"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrNoPostmortem) {
			t.Fatalf("PublishedPostmortem(unknown) = %v; want ErrNotFound", err)
		}

		// Mitigated: published.
		clk.Advance(time.Minute)
		first := t0.Add(11 * time.Minute)
		got, err := s.PublishPostmortem(ctx, inc.ID, " ana ", text)
		if err != nil {
			t.Fatalf("PublishPostmortem on a mitigated incident: %v", err)
		}
		if !got.PostmortemAt.Equal(first) || got.State != Mitigated {
			t.Fatalf("after publishing: %+v; want PostmortemAt %v", got, first)
		}
		md, author, at, err := s.PublishedPostmortem(ctx, inc.ID)
		if err != nil || md != text || author != "ana" || !at.Equal(first) {
			t.Fatalf("PublishedPostmortem = %q, %q, %v, %v", md[:min(len(md), 40)], author, at, err)
		}

		// Resolved, then published again by someone else: replaced, a second entry.
		clk.Advance(time.Hour)
		if _, err := s.Resolve(ctx, inc.ID, "ana", ""); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
		second := t0.Add(11*time.Minute + 2*time.Hour)
		text2 := strings.Replace(text, "a bad deploy", "a config push", 1)
		if _, err := s.PublishPostmortem(ctx, inc.ID, "bo", text2); err != nil {
			t.Fatalf("PublishPostmortem on a resolved incident: %v", err)
		}

		// A restarted process sees all of it.
		s = openStore(t, b.open(t), clk)
		md, author, at, err = s.PublishedPostmortem(ctx, inc.ID)
		if err != nil || md != text2 || author != "bo" || !at.Equal(second) {
			t.Fatalf("after reopening, PublishedPostmortem = %q…, %q, %v, %v; want the second text by bo at %v", md[:min(len(md), 40)], author, at, err, second)
		}
		list, err := s.List(ctx, Filter{})
		if err != nil || len(list) != 1 || !list[0].PostmortemAt.Equal(second) {
			t.Fatalf("List = %+v, %v; want PostmortemAt %v", list, err, second)
		}
		tl, err := s.Timeline(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := kinds(tl), "alert,ack,mitigate,postmortem,resolve,postmortem"; got != want {
			t.Fatalf("timeline kinds %s; want %s", got, want)
		}
		for i, want := range map[int]struct{ actor, text string }{3: {"ana", "postmortem published by ana"}, 5: {"bo", "postmortem republished by bo"}} {
			if e := tl[i]; e.Actor != want.actor || !strings.HasPrefix(e.Text, want.text) {
				t.Errorf("entry %d = %+v; want %s: %s…", i, e, want.actor, want.text)
			}
		}
		// The draft is still there, now with the publications in its timeline.
		if draft, err := s.Postmortem(ctx, inc.ID); err != nil || !strings.Contains(draft, "postmortem republished by bo") {
			t.Errorf("draft after publishing: %v\n%s", err, draft)
		}
	})
}

func TestState(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		s := openStore(t, b.open(t), clk)
		if data, at, err := s.LoadState(ctx, "slo"); data != nil || !at.IsZero() || err != nil {
			t.Fatalf("LoadState(absent) = %q, %v, %v; want nil, zero, nil", data, at, err)
		}
		if err := s.SaveState(ctx, "slo", []byte(`{"v":1}`)); err != nil {
			t.Fatal(err)
		}
		// A snapshot of a few MB, as the SLO evaluator writes.
		vals := make([]float64, 150_000)
		for i := range vals {
			vals[i] = float64(i) / 7
		}
		bigJSON, err := json.Marshal(map[string]any{"values": vals})
		if err != nil {
			t.Fatal(err)
		}
		if len(bigJSON) < 2<<20 {
			t.Fatalf("big snapshot is %d bytes; the test wants more than 2 MiB", len(bigJSON))
		}
		bigJSON = append(bigJSON, []byte(" é✓")...)
		clk.Advance(time.Minute)
		if err := s.SaveState(ctx, "big", bigJSON); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		if err := s.SaveState(ctx, "slo", []byte(`{"v":2}`)); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveState(ctx, "empty", nil); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			data []byte
			want string
		}{
			{"", []byte("{}"), "name: missing"},
			{"x", []byte("\xff\xfe"), "not UTF-8"},
			{"x", []byte("a\x00b"), "not UTF-8"},
			{strings.Repeat("n", 201), []byte("{}"), "at most 200 bytes"},
		} {
			if err := s.SaveState(ctx, tc.name, tc.data); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("SaveState(%.10q, %q) = %v; want ErrBadInput saying %q", tc.name, tc.data, err, tc.want)
			}
		}

		s = openStore(t, b.open(t), clk) // a restarted process
		for _, tc := range []struct {
			name string
			want []byte
			at   time.Time
		}{
			{"slo", []byte(`{"v":2}`), t0.Add(2 * time.Minute)},
			{"big", bigJSON, t0.Add(time.Minute)},
			{"empty", []byte{}, t0.Add(2 * time.Minute)},
		} {
			data, at, err := s.LoadState(ctx, tc.name)
			if err != nil || string(data) != string(tc.want) || data == nil || !at.Equal(tc.at) {
				t.Errorf("LoadState(%q) = %d bytes, %v, %v; want %d bytes saved at %v", tc.name, len(data), at, err, len(tc.want), tc.at)
			}
		}
		if data, _, err := s.LoadState(ctx, "x"); data != nil || err != nil {
			t.Errorf("LoadState after refused saves = %q, %v; want nothing", data, err)
		}
	})
}
