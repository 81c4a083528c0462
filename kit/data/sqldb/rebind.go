package sqldb

import (
	"strconv"
	"strings"
)

// rebind rewrites the ? placeholders of query to PostgreSQL's $1..$n, in order. A ? inside a
// string literal ('...', E'...'), a quoted identifier ("..."), a dollar-quoted string
// ($$...$$, $tag$...$tag$), a line comment (-- ...) or a block comment (/* ... */, nested as
// PostgreSQL nests them) is left alone. An unterminated quote or comment runs to the end of the
// query, as the server reads it, so no ? after its start is rewritten. A ? directly followed
// by a letter or digit is not valid in the dialect; it becomes "$n " so the number stays n.
func rebind(query string) string {
	if strings.IndexByte(query, '?') < 0 {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n, copied := 0, 0
	for i := 0; i < len(query); {
		switch c := query[i]; {
		case c == '?':
			n++
			b.WriteString(query[copied:i])
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			i++
			copied = i
			if i < len(query) && isIdentByte(query[i]) {
				// "?1" or "?x" is not this dialect (SQLite reads ?NNN as a numbered parameter).
				// Keep the stray character apart, so the number stays n and the server reports
				// the stray text instead of reading $1x as something else.
				b.WriteByte(' ')
			}
		case c == '\'':
			// E'...' strings take backslash escapes; the E must start a token, not end a word.
			escapes := i > 0 && (query[i-1] == 'e' || query[i-1] == 'E') && (i < 2 || !isIdentByte(query[i-2]))
			i = skipQuoted(query, i, '\'', escapes)
		case c == '"':
			i = skipQuoted(query, i, '"', false)
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			if end := strings.IndexByte(query[i:], '\n'); end >= 0 {
				i += end + 1
			} else {
				i = len(query)
			}
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			i = skipBlockComment(query, i)
		case c == '$' && (i == 0 || !isIdentByte(query[i-1])):
			// A $ inside an identifier (foo$bar) cannot open a dollar quote.
			tag, ok := dollarTag(query[i:])
			if !ok {
				i++
				break
			}
			if end := strings.Index(query[i+len(tag):], tag); end >= 0 {
				i += len(tag) + end + len(tag)
			} else {
				i = len(query)
			}
		default:
			i++
		}
	}
	b.WriteString(query[copied:])
	return b.String()
}

// skipQuoted returns the index just past the quote that closes the one at query[start]. A
// doubled quote is an escaped quote, which the loop reads as a close and a reopen.
func skipQuoted(query string, start int, quote byte, backslashEscapes bool) int {
	for i := start + 1; i < len(query); i++ {
		switch query[i] {
		case '\\':
			if backslashEscapes {
				i++
			}
		case quote:
			return i + 1
		}
	}
	return len(query)
}

// skipBlockComment returns the index just past the comment opened at query[start], counting
// nested /* */ pairs.
func skipBlockComment(query string, start int) int {
	depth := 0
	for i := start; i+1 < len(query); {
		switch {
		case query[i] == '/' && query[i+1] == '*':
			depth++
			i += 2
		case query[i] == '*' && query[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return len(query)
}

// dollarTag reports whether s starts with a dollar-quote tag ($$ or $name$) and returns it.
// A tag name follows identifier rules without $: it cannot start with a digit, so $1 is a
// parameter, not a tag.
func dollarTag(s string) (string, bool) {
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '$':
			return s[:i+1], true
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
		case c >= '0' && c <= '9' && i > 1:
		default:
			return "", false
		}
	}
	return "", false
}

// isIdentByte reports whether c can continue an unquoted PostgreSQL identifier.
func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// In returns the placeholders and arguments of an IN (...) list: In([]int64{4, 5}) is
// "?, ?" and [4 5]. An empty list gives "" — callers check for it, since IN () is not SQL.
func In[T any](vals []T) (marks string, args []any) {
	args = make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	return strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", "), args
}
