package biz

import (
	"slices"
	"unicode"
	"unicode/utf8"
)

// Limits of tokenising.
const (
	// MaxTermRunes truncates long words, identically when indexing and querying, so a long
	// word still finds itself.
	MaxTermRunes = 32
	// MaxIndexedBody is how many characters of a body are indexed: titles and the start of
	// a body are what people search for, and a 10,000-character Chinese body would
	// otherwise cost some 15,000 postings.
	MaxIndexedBody = 2000
	// maxWeight caps a term's weight in one document, so repeating a word a thousand times
	// does not buy the top of every result list.
	maxWeight = 100
)

// fold maps a rune to the form terms are made of: full-width ASCII (common in Chinese
// text) to ASCII, then lower case.
func fold(r rune) rune {
	if r >= 0xFF01 && r <= 0xFF5E {
		r -= 0xFEE0
	}
	return unicode.ToLower(r)
}

// isCJK reports whether r is written without spaces between words: Han, Hiragana and
// Katakana, and the prolonged sound mark that Katakana words use (ラーメン), which Unicode
// files under no script. Such runs are indexed by character pairs rather than by words.
func isCJK(r rune) bool {
	return r == 'ー' || unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana)
}

func isWord(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

// tokenize calls emit for every term of text, in order. Latin-like text gives its words,
// lower-cased and cut to MaxTermRunes; a CJK run gives each pair of neighbouring characters
// (bigrams) and, when unigrams is set or the run is one character long, each character too.
func tokenize(text string, unigrams bool, emit func(term string)) {
	var word, cjk []rune
	flushWord := func() {
		if len(word) > 0 {
			emit(string(word[:min(len(word), MaxTermRunes)]))
			word = word[:0]
		}
	}
	flushCJK := func() {
		switch {
		case len(cjk) == 0:
			return
		case len(cjk) == 1 || unigrams:
			for _, r := range cjk {
				emit(string(r))
			}
		}
		for i := 0; i+1 < len(cjk); i++ {
			emit(string(cjk[i : i+2]))
		}
		cjk = cjk[:0]
	}
	for _, r := range text {
		r = fold(r)
		switch {
		case isCJK(r):
			flushWord()
			cjk = append(cjk, r)
		case len(cjk) > 0 && unicode.IsMark(r):
			// A combining mark after a CJK character belongs to it; it is not a word.
		case isWord(r):
			flushCJK()
			word = append(word, r)
		default:
			flushWord()
			flushCJK()
		}
	}
	flushWord()
	flushCJK()
}

// Field is text to index with a weight per occurrence.
type Field struct {
	Text   string
	Weight int
}

// IndexTerms returns the terms of fields with their weights: the sum over occurrences of the
// field's weight, capped. A CJK run is indexed by its bigrams and its single characters, so
// a one-character query finds it too.
func IndexTerms(fields ...Field) map[string]int {
	terms := make(map[string]int)
	for _, f := range fields {
		tokenize(f.Text, true, func(t string) {
			terms[t] = min(terms[t]+f.Weight, maxWeight)
		})
	}
	return terms
}

// QueryTerms returns the distinct terms of q, sorted. A CJK run of two or more characters
// is searched by its bigrams only (all of them must match, which approximates a phrase),
// a lone CJK character by itself.
func QueryTerms(q string) []string {
	var terms []string
	tokenize(q, false, func(t string) { terms = append(terms, t) })
	slices.Sort(terms)
	return slices.Compact(terms)
}

// truncate returns s cut to n characters.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for range n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}
