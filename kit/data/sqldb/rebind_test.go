package sqldb

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestRebind(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"none", "SELECT 1", "SELECT 1"},
		{"simple", "SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2"},
		{"adjacent", "VALUES (?,?)", "VALUES ($1,$2)"},
		{"at ends", "? = ?", "$1 = $2"},
		{"string literal", "SELECT '?', ?", "SELECT '?', $1"},
		{"doubled quote", "SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"},
		{"backslash in plain string", `SELECT 'a\', ?`, `SELECT 'a\', $1`},
		{"E string escape", `SELECT E'a\'?', ?`, `SELECT E'a\'?', $1`},
		{"e string after space", `SELECT x, e'\'?' , ?`, `SELECT x, e'\'?' , $1`},
		{"e ending a word is not E string", `SELECT type'\', ?`, `SELECT type'\', $1`},
		{"quoted identifier", `SELECT "a?b" FROM t WHERE c = ?`, `SELECT "a?b" FROM t WHERE c = $1`},
		{"line comment", "SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"},
		{"line comment at end", "SELECT ? -- why?", "SELECT $1 -- why?"},
		{"block comment", "SELECT /* ? */ ?", "SELECT /* ? */ $1"},
		{"nested block comment", "SELECT /* a /* ? */ ? */ ?", "SELECT /* a /* ? */ ? */ $1"},
		{"dollar quote", "SELECT $$?$$, ?", "SELECT $$?$$, $1"},
		{"tagged dollar quote", "SELECT $fn$ a $$?$$ b $fn$, ?", "SELECT $fn$ a $$?$$ b $fn$, $1"},
		{"dollar in identifier", "SELECT a$b, ?", "SELECT a$b, $1"},
		{"digit after dollar is no tag", "SELECT $1x$, ?", "SELECT $1x$, $1"},
		{"unterminated string", "SELECT ?, 'abc ?", "SELECT $1, 'abc ?"},
		{"unterminated comment", "SELECT ? /* ?", "SELECT $1 /* ?"},
		{"digit after placeholder", "SELECT ?0", "SELECT $1 0"},
		{"letter after placeholder", `SELECT ?E'\'?'`, `SELECT $1 E'\'?'`},
		{"cast", "SELECT ?::bigint", "SELECT $1::bigint"},
		{"many", strings.Repeat("?,", 11) + "?", "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12"},
		{"utf8", "SELECT 'ñ?', ? -- ü?", "SELECT 'ñ?', $1 -- ü?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rebind(tt.in); got != tt.want {
				t.Fatalf("rebind(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

var (
	placeholder      = regexp.MustCompile(`\$[0-9]+`)
	placeholderIdent = regexp.MustCompile(`\?[A-Za-z0-9_\x{80}-\x{10FFFF}]`)
)

// FuzzRebind checks, on queries without '$' (so every $n in the output is one rebind wrote),
// that a second rebind finds nothing left to rewrite and, unless a ? is directly followed by
// an identifier character (invalid, and spaced apart by rebind), that turning the $n back into
// ? restores the query with the numbers running 1..n in order.
func FuzzRebind(f *testing.F) {
	for _, s := range []string{
		"SELECT * FROM t WHERE a = ? AND b = ?",
		"SELECT 'it''s ?', ? -- c?\n/* ? /* ? */ */ ?",
		`SELECT E'\'?', "q?", ?`,
		"?", "'", "/*", "--", "''?", "E'\\",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := rebind(in)
		if !strings.Contains(in, "?") {
			if out != in {
				t.Fatalf("rebind(%q) = %q; want it unchanged", in, out)
			}
			return
		}
		if strings.Contains(in, "$") {
			return
		}
		if again := rebind(out); again != out {
			t.Fatalf("rebind(rebind(%q)) = %q; want %q", in, again, out)
		}
		if placeholderIdent.MatchString(in) {
			return
		}
		next := 1
		back := placeholder.ReplaceAllStringFunc(out, func(p string) string {
			if n, _ := strconv.Atoi(p[1:]); n != next {
				t.Fatalf("rebind(%q) = %q: placeholder %s, want $%d", in, out, p, next)
			}
			next++
			return "?"
		})
		if back != in {
			t.Fatalf("rebind(%q) = %q, which reads back as %q", in, out, back)
		}
	})
}

func TestIn(t *testing.T) {
	marks, args := In([]int64{4, 5, 6})
	if marks != "?, ?, ?" || len(args) != 3 || args[2] != int64(6) {
		t.Fatalf("In = %q %v; want three marks and the values", marks, args)
	}
	if marks, args := In([]string{}); marks != "" || len(args) != 0 {
		t.Fatalf("In(empty) = %q %v", marks, args)
	}
}
