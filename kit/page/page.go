// Package page provides the cursor pagination every Redline list uses: opaque cursors that
// resume after a position (an id or sequence, newest first), and page-size limits.
package page

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/redline-dev/redline/kit/errs"
)

// Page sizes.
const (
	DefaultSize = 20
	MaxSize     = 50
)

// ErrBadCursor answers a cursor this API did not make.
var ErrBadCursor = errs.InvalidArgument("BAD_CURSOR", "cursor is not one this API returned: start again without a cursor")

// Size clamps a requested page size to 1..MaxSize, DefaultSize when unset.
func Size(n int) int {
	switch {
	case n <= 0:
		return DefaultSize
	case n > MaxSize:
		return MaxSize
	}
	return n
}

// Encode makes the cursor that resumes after position pos of the list kind ("n1" for
// notes, "f1" for follows): the kind keeps a cursor of one list out of another.
func Encode(kind string, pos int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.FormatInt(pos, 10)))
}

// Decode reads a cursor made by Encode for kind; "" means the first page and gives the
// largest position. Anything else is ErrBadCursor.
func Decode(kind, c string) (int64, error) {
	if c == "" {
		return 1<<63 - 1, nil
	}
	if len(c) > 64 {
		return 0, ErrBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, ErrBadCursor
	}
	s, ok := strings.CutPrefix(string(raw), kind+":")
	if !ok {
		return 0, ErrBadCursor
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, ErrBadCursor
	}
	return v, nil
}
