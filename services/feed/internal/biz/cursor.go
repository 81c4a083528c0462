package biz

import (
	"math"
	"strings"

	"github.com/redline-dev/redline/kit/page"
)

// Cursor kinds: a cursor of one list is refused by the others.
const (
	homeCursor   = "fh1"
	recentCursor = "fr1"
	hotCursor    = "fx1"
)

// EncodeCursor makes the opaque cursor of kind that resumes after p: two kit/page cursors,
// for the major key and the note id, joined by a dot (base64url has none).
func EncodeCursor(kind string, p Pos) string {
	return page.Encode(kind, p.Major) + "." + page.Encode(kind, p.NoteID)
}

// DecodeCursor reads a cursor made by EncodeCursor for kind; "" is Start. Anything else is
// ErrBadCursor. A hot cursor's major key must be the bits of a positive finite score.
func DecodeCursor(kind, c string) (Pos, error) {
	if c == "" {
		return Start, nil
	}
	a, b, ok := strings.Cut(c, ".")
	if !ok || a == "" || b == "" {
		return Pos{}, ErrBadCursor
	}
	major, err := page.Decode(kind, a)
	if err != nil {
		return Pos{}, err
	}
	id, err := page.Decode(kind, b)
	if err != nil {
		return Pos{}, err
	}
	if kind == hotCursor {
		if s := math.Float64frombits(uint64(major)); math.IsNaN(s) || math.IsInf(s, 0) || s <= 0 {
			return Pos{}, ErrBadCursor
		}
	}
	return Pos{major, id}, nil
}
