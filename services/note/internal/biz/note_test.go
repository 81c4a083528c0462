package biz

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
)

func TestValidate(t *testing.T) {
	ok := func() *Note {
		return &Note{AuthorID: 1, Title: " Hi ", Tags: []string{"#Go", "go", "Redline"}, ProductIDs: []int64{7, 3, 7}}
	}
	n := ok()
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	if n.Title != "Hi" || strings.Join(n.Tags, ",") != "go,redline" {
		t.Fatalf("normalized to %q %v; want trimmed title and deduplicated lower-case tags", n.Title, n.Tags)
	}
	if !slices.Equal(n.ProductIDs, []int64{7, 3}) {
		t.Fatalf("ProductIDs normalized to %v; want [7 3], repeats dropped in order", n.ProductIDs)
	}
	full := ok()
	full.ProductIDs = make([]int64, MaxProducts)
	for i := range full.ProductIDs {
		full.ProductIDs[i] = int64(i + 1)
	}
	if err := full.Validate(); err != nil {
		t.Fatalf("Validate() with %d products = %v; want ok", MaxProducts, err)
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
		"TOO_MANY_PRODUCTS":       func(n *Note) { n.ProductIDs = make([]int64, MaxProducts+1) },
		"INVALID_PRODUCT":         func(n *Note) { n.ProductIDs = []int64{5, 0} },
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

// FuzzValidate checks that Validate either rejects a note with an INVALID_ARGUMENT reason or
// leaves it within every limit, and that a valid note stays valid (normalizing twice changes
// nothing).
func FuzzValidate(f *testing.F) {
	f.Add(int64(1), " Hi ", "body", "#Go,go", "a.jpg", int64(7), int64(7), "key")
	f.Add(int64(0), "", "", "", "", int64(0), int64(-1), "")
	f.Add(int64(9), "长", strings.Repeat("b", MaxBody+1), "two words", "a b", int64(1), int64(2), strings.Repeat("k", 129))
	f.Fuzz(func(t *testing.T, author int64, title, body, tags, media string, p1, p2 int64, key string) {
		n := &Note{AuthorID: author, Title: title, Body: body, Tags: strings.Split(tags, ","),
			Media: strings.Split(media, ","), ProductIDs: []int64{p1, p2, p1}, IdempotencyKey: key}
		if err := n.Validate(); err != nil {
			if errs.Code(err) != codes.InvalidArgument || errs.Reason(err) == "" {
				t.Fatalf("Validate() = %v; want INVALID_ARGUMENT with a reason", err)
			}
			return
		}
		if n.AuthorID <= 0 || n.Title == "" || utf8.RuneCountInString(n.Title) > MaxTitle || len(n.Tags) > MaxTags ||
			len(n.Media) > MaxMedia || len(n.ProductIDs) > MaxProducts {
			t.Fatalf("Validate() accepted %+v", n)
		}
		for i, p := range n.ProductIDs {
			if p <= 0 || slices.Contains(n.ProductIDs[:i], p) {
				t.Fatalf("Validate() kept product ids %v; want positive and unique", n.ProductIDs)
			}
		}
		again := *n
		if err := again.Validate(); err != nil || !slices.Equal(again.Tags, n.Tags) || !slices.Equal(again.ProductIDs, n.ProductIDs) {
			t.Fatalf("second Validate() = %v, %+v; want the note unchanged", err, again)
		}
	})
}
