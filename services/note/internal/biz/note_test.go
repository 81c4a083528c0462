package biz

import (
	"strings"
	"testing"

	"github.com/redline-dev/redline/kit/errs"
)

func TestValidate(t *testing.T) {
	ok := func() *Note { return &Note{AuthorID: 1, Title: " Hi ", Tags: []string{"#Go", "go", "Redline"}} }
	n := ok()
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	if n.Title != "Hi" || strings.Join(n.Tags, ",") != "go,redline" {
		t.Fatalf("normalized to %q %v; want trimmed title and deduplicated lower-case tags", n.Title, n.Tags)
	}
	cases := map[string]func(n *Note){
		"INVALID_AUTHOR":          func(n *Note) { n.AuthorID = 0 },
		"INVALID_TITLE":           func(n *Note) { n.Title = strings.Repeat("长", MaxTitle+1) },
		"INVALID_BODY":            func(n *Note) { n.Body = strings.Repeat("a", MaxBody+1) },
		"TOO_MANY_TAGS":           func(n *Note) { n.Tags = make([]string, MaxTags+1) },
		"INVALID_TAG":             func(n *Note) { n.Tags = []string{"two words"} },
		"TOO_MANY_MEDIA":          func(n *Note) { n.Media = make([]string, MaxMedia+1) },
		"INVALID_MEDIA":           func(n *Note) { n.Media = []string{"a b"} },
		"INVALID_IDEMPOTENCY_KEY": func(n *Note) { n.IdempotencyKey = strings.Repeat("k", 200) },
	}
	for reason, breakIt := range cases {
		n := ok()
		breakIt(n)
		if got := errs.Reason(n.Validate()); got != reason {
			t.Errorf("Validate() reason = %q; want %q", got, reason)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, id := range []int64{1, 42, 1<<62 + 7} {
		got, err := DecodeCursor(EncodeCursor(id))
		if err != nil || got != id {
			t.Errorf("DecodeCursor(EncodeCursor(%d)) = %d, %v", id, got, err)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(99))
	f.Add("bm90LWEtY3Vyc29y")
	f.Add("")
	f.Fuzz(func(t *testing.T, c string) {
		id, err := DecodeCursor(c)
		if err != nil {
			if errs.Reason(err) != "BAD_CURSOR" {
				t.Fatalf("DecodeCursor(%q) error %v; want BAD_CURSOR", c, err)
			}
			return
		}
		if id <= 0 {
			t.Fatalf("DecodeCursor(%q) = %d; ids are positive", c, id)
		}
	})
}
