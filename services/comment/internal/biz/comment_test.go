package biz

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/redline-dev/redline/services/event"
)

func TestValidate(t *testing.T) {
	ok := func() Comment { return Comment{NoteID: 1, UserID: 2, Body: "hi"} }
	cases := []struct {
		name string
		edit func(c *Comment)
		err  error
	}{
		{"root", func(*Comment) {}, nil},
		{"reply answering a reply", func(c *Comment) { c.RootID, c.ParentID = 5, 6 }, nil},
		{"no user", func(c *Comment) { c.UserID = 0 }, ErrInvalidUser},
		{"no note", func(c *Comment) { c.NoteID = -1 }, ErrInvalidNote},
		{"negative root", func(c *Comment) { c.RootID = -1 }, ErrInvalidRoot},
		{"parent without root", func(c *Comment) { c.ParentID = 3 }, ErrInvalidParent},
		{"negative parent", func(c *Comment) { c.RootID, c.ParentID = 3, -3 }, ErrInvalidParent},
		{"blank body", func(c *Comment) { c.Body = " \t\n" }, ErrInvalidBody},
		{"2000 characters", func(c *Comment) { c.Body = strings.Repeat("字", MaxBody) }, nil},
		{"2001 characters", func(c *Comment) { c.Body = strings.Repeat("字", MaxBody+1) }, ErrInvalidBody},
		{"NUL", func(c *Comment) { c.Body = "a\x00" }, ErrInvalidBody},
		{"bad UTF-8", func(c *Comment) { c.Body = "\xc3" }, ErrInvalidBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.edit(&c)
			if err := c.Validate(); !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Validate(%+v) = %v; want %v", c, err, tc.err)
			}
		})
	}
	c := Comment{NoteID: 1, UserID: 1, RootID: 4, ParentID: 4, Body: "  padded  "}
	if err := c.Validate(); err != nil || c.ParentID != 0 || c.Body != "padded" {
		t.Fatalf("Validate normalizes to %+v, %v; want parent 0 and a trimmed body", c, err)
	}
}

// FuzzValidate checks that a comment is accepted exactly when its ids are consistent and its
// trimmed body is 1 to MaxBody characters of UTF-8 without NUL, and that an accepted body is
// stored trimmed.
func FuzzValidate(f *testing.F) {
	f.Add(int64(1), int64(1), int64(0), int64(0), "hello")
	f.Add(int64(1), int64(1), int64(2), int64(3), " reply ")
	f.Add(int64(0), int64(1), int64(0), int64(0), "x")
	f.Add(int64(1), int64(1), int64(0), int64(3), "x")
	f.Add(int64(1), int64(1), int64(0), int64(0), "\x00")
	f.Add(int64(1), int64(1), int64(0), int64(0), strings.Repeat("a", MaxBody+1))
	f.Fuzz(func(t *testing.T, note, user, root, parent int64, body string) {
		c := Comment{NoteID: note, UserID: user, RootID: root, ParentID: parent, Body: body}
		err := c.Validate()
		trimmed := strings.TrimSpace(body)
		valid := user > 0 && note > 0 && root >= 0 && parent >= 0 && (parent == 0 || root > 0) &&
			trimmed != "" && utf8.ValidString(trimmed) && !strings.Contains(trimmed, "\x00") &&
			utf8.RuneCountInString(trimmed) <= MaxBody
		if (err == nil) != valid {
			t.Fatalf("Validate(%d, %d, %d, %d, %q) = %v; want valid=%v", note, user, root, parent, body, err, valid)
		}
		if err == nil && (c.Body != trimmed || c.ParentID == c.RootID && c.RootID != 0) {
			t.Fatalf("Validate kept %+v", c)
		}
	})
}

func TestCursors(t *testing.T) {
	for _, o := range []Order{Hot, New} {
		p := RootPos{Replies: 7, ID: 99}
		got, err := DecodeRootCursor(o, EncodeRootCursor(o, p))
		if err != nil || got.ID != 99 || o == Hot && got.Replies != 7 {
			t.Fatalf("round trip of %v in order %d = %v, %v", p, o, got, err)
		}
	}
	if _, err := DecodeRootCursor(New, EncodeRootCursor(Hot, RootPos{Replies: 1, ID: 1})); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("hot cursor in the new order = %v; want BAD_CURSOR", err)
	}
	if _, err := DecodeRootCursor(Hot, EncodeRootCursor(New, RootPos{ID: 1})); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("new cursor in the hot order = %v; want BAD_CURSOR", err)
	}
	if _, err := DecodeRepliesCursor(EncodeRootCursor(New, RootPos{ID: 1})); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("a roots cursor as a replies cursor = %v; want BAD_CURSOR", err)
	}
	if after, err := DecodeRepliesCursor(""); after != 0 || err != nil {
		t.Fatalf(`DecodeRepliesCursor("") = %d, %v; want 0, nil`, after, err)
	}
}

// FuzzListCursors checks the list parameters' parsers: an order is "", "hot" or "new", and a
// cursor decodes to a position that encodes back to itself, or is BAD_CURSOR.
func FuzzListCursors(f *testing.F) {
	f.Add("hot", EncodeRootCursor(Hot, RootPos{Replies: 3, ID: 8}))
	f.Add("new", EncodeRootCursor(New, RootPos{ID: 8}))
	f.Add("", "")
	f.Add("best", "Y2gxOjE6MQ")
	f.Add("hot", EncodeRepliesCursor(5))
	f.Fuzz(func(t *testing.T, order, cursor string) {
		o, err := ParseOrder(order)
		if (err == nil) != (order == "" || order == "hot" || order == "new") {
			t.Fatalf("ParseOrder(%q) = %v", order, err)
		}
		if err == nil {
			p, err := DecodeRootCursor(o, cursor)
			switch {
			case err != nil && !errors.Is(err, ErrBadCursor):
				t.Fatalf("DecodeRootCursor(%q) error = %v; want BAD_CURSOR", cursor, err)
			case err == nil && cursor != "":
				if p.ID <= 0 || p.Replies < 0 {
					t.Fatalf("DecodeRootCursor(%q) = %v", cursor, p)
				}
				if again, err := DecodeRootCursor(o, EncodeRootCursor(o, p)); err != nil || again != p {
					t.Fatalf("round trip of %v = %v, %v", p, again, err)
				}
			}
		}
		after, err := DecodeRepliesCursor(cursor)
		switch {
		case err != nil && !errors.Is(err, ErrBadCursor):
			t.Fatalf("DecodeRepliesCursor(%q) error = %v; want BAD_CURSOR", cursor, err)
		case err == nil && cursor != "" && after <= 0:
			t.Fatalf("DecodeRepliesCursor(%q) = %d", cursor, after)
		}
	})
}

// FuzzDecodeCommand checks that a queued payload either decodes to a comment that passes
// Validate with a positive id and time, or is refused, never panicking.
func FuzzDecodeCommand(f *testing.F) {
	good, _ := event.Encode(event.CommentCommand{Op: event.Created, ID: 1, NoteID: 2, UserID: 3, Body: "x", AtMS: 4})
	f.Add(good)
	f.Add([]byte(`{"op":"deleted","id":1}`))
	f.Add([]byte(`{"op":"created","id":1,"note_id":1,"user_id":1,"parent_id":2,"body":"x","at_ms":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCommand(data)
		if err != nil {
			return
		}
		again := *c
		if c.ID <= 0 || c.CreatedAt <= 0 || again.Validate() != nil || again != *c {
			t.Fatalf("DecodeCommand(%q) = %+v; want a valid, normalized comment", data, c)
		}
	})
}
