package biz

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/redline-dev/redline/kit/page"
)

// Cursor kinds: one per list, so a cursor of one list is refused by another.
const (
	hotKind     = "ch1"
	newKind     = "cn1"
	repliesKind = "cr1"
)

// ErrBadCursor answers a cursor this API did not make.
var ErrBadCursor = page.ErrBadCursor

// startPos is the position before the first root in either order.
var startPos = RootPos{Replies: 1<<63 - 1, ID: 1<<63 - 1}

// EncodeRootCursor makes the cursor that resumes a list of roots in order after p.
func EncodeRootCursor(order Order, p RootPos) string {
	if order == New {
		return page.Encode(newKind, p.ID)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(hotKind + ":" + strconv.FormatInt(p.Replies, 10) + ":" +
		strconv.FormatInt(p.ID, 10)))
}

// DecodeRootCursor reads a cursor made by EncodeRootCursor for order; "" is the start and
// anything else is ErrBadCursor.
func DecodeRootCursor(order Order, c string) (RootPos, error) {
	if c == "" {
		return startPos, nil
	}
	if order == New {
		id, err := page.Decode(newKind, c)
		return RootPos{Replies: startPos.Replies, ID: id}, err
	}
	if len(c) > 96 {
		return RootPos{}, ErrBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return RootPos{}, ErrBadCursor
	}
	rest, ok := strings.CutPrefix(string(raw), hotKind+":")
	if !ok {
		return RootPos{}, ErrBadCursor
	}
	replies, id, ok := strings.Cut(rest, ":")
	if !ok {
		return RootPos{}, ErrBadCursor
	}
	var p RootPos
	if p.Replies, err = strconv.ParseInt(replies, 10, 64); err != nil || p.Replies < 0 {
		return RootPos{}, ErrBadCursor
	}
	if p.ID, err = strconv.ParseInt(id, 10, 64); err != nil || p.ID <= 0 {
		return RootPos{}, ErrBadCursor
	}
	return p, nil
}

// EncodeRepliesCursor makes the cursor that resumes a root's replies after the reply id.
func EncodeRepliesCursor(id int64) string { return page.Encode(repliesKind, id) }

// DecodeRepliesCursor reads a cursor made by EncodeRepliesCursor and returns the id after
// which the page starts; "" starts at the first reply (0).
func DecodeRepliesCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	return page.Decode(repliesKind, c)
}
