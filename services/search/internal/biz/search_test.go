package biz

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/event"
)

func TestQueryTerms(t *testing.T) {
	tests := []struct {
		q    string
		want []string
	}{
		{"Hiking Boots", []string{"boots", "hiking"}},
		{"hiking, HIKING; boots!", []string{"boots", "hiking"}},
		{"iPhone15 case", []string{"case", "iphone15"}},
		{"ＡＢＣ１２３", []string{"abc123"}}, // full-width folds to ASCII
		{"上海美食", []string{"上海", "海美", "美食"}},
		{"上海 美食", []string{"上海", "美食"}},
		{"猫", []string{"猫"}},
		{"小猫 cat", []string{"cat", "小猫"}},
		{"iPhone手机壳", []string{"iphone", "手机", "机壳"}},
		{"ラーメン", []string{"メン", "ラー", "ーメ"}},
		{"Café crème", []string{"café", "crème"}},
		{"!!! ... ---", nil},
		{"", nil},
		{strings.Repeat("a", 40), []string{strings.Repeat("a", MaxTermRunes)}},
	}
	for _, tc := range tests {
		if got := QueryTerms(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("QueryTerms(%q) = %q; want %q", tc.q, got, tc.want)
		}
	}
}

func TestIndexTerms(t *testing.T) {
	got := IndexTerms(Field{"上海美食", 2}, Field{"美食 food FOOD", 1})
	want := map[string]int{"上": 2, "海": 2, "美": 3, "食": 3, "上海": 2, "海美": 2, "美食": 3, "food": 2}
	if !maps.Equal(got, want) {
		t.Fatalf("IndexTerms = %v; want %v", got, want)
	}
	spam := IndexTerms(Field{strings.Repeat("buy ", 1000), 1})
	if spam["buy"] != maxWeight {
		t.Fatalf("weight of a word repeated 1000 times = %d; want the cap %d", spam["buy"], maxWeight)
	}
}

// FuzzTokenize checks the tokeniser's promises on any text: terms are non-empty, folded
// (lower case, no full-width ASCII), free of separators and at most MaxTermRunes long, and a
// text always finds itself: every query term of a text is an index term of it.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"Hiking Boots", "上海美食探店", "iPhone手机壳 ＡＢＣ", "ラーメン", "Café\u0301 ǅ İ",
		"猫", "a\u0301\u0301", "上\u0301海", "\xff\xfe", strings.Repeat("word", 20)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		index := IndexTerms(Field{text, 1})
		for term := range index {
			if term == "" || utf8.RuneCountInString(term) > MaxTermRunes || !utf8.ValidString(term) {
				t.Fatalf("IndexTerms(%q) has term %q: empty, too long or not UTF-8", text, term)
			}
			for _, r := range term {
				if fold(r) != r || !(isWord(r) || isCJK(r)) || unicode.IsSpace(r) {
					t.Fatalf("IndexTerms(%q) has term %q with rune %q that is not folded or is a separator", text, term, r)
				}
			}
		}
		for _, term := range QueryTerms(text) {
			if _, ok := index[term]; !ok {
				t.Fatalf("QueryTerms(%q) has %q, which IndexTerms of the same text lacks: the text would not find itself", text, term)
			}
		}
	})
}

// FuzzParseQuery checks that any request either parses into a query of 1..MaxSize hits with
// terms, or fails with one of the API's reasons.
func FuzzParseQuery(f *testing.F) {
	valid := EncodeCursor(fingerprint([]string{"boots"}, KindNote), Position{Score: 3, RecencyMS: 1700000000000, Kind: KindNote, ID: 42})
	f.Add("boots", "note", 10, valid)
	f.Add("上海美食", "", 0, "")
	f.Add("", "product", -1, "")
	f.Add("!!!", "", 5, "")
	f.Add("boots", "shoe", 5, "")
	f.Add("boots", "", 5, "bm90LWEtY3Vyc29y")
	f.Fuzz(func(t *testing.T, q, kind string, size int, cursor string) {
		got, err := ParseQuery(q, Kind(kind), size, cursor)
		if err != nil {
			switch errs.Reason(err) {
			case "INVALID_QUERY", "NO_TERMS", "INVALID_KIND", "BAD_CURSOR":
			default:
				t.Fatalf("ParseQuery(%q, %q, %d, %q) error %v; want an API reason", q, kind, size, cursor, err)
			}
			return
		}
		if len(got.Terms) == 0 || got.Limit < 1 || got.Limit > 50 || utf8.RuneCountInString(q) > MaxQueryRunes {
			t.Fatalf("ParseQuery(%q, %q, %d, %q) = %+v; want terms, a limit of 1..50 and a short q", q, kind, size, cursor, got)
		}
		if got.After != nil && (got.After.Score <= 0 || got.After.ID <= 0) {
			t.Fatalf("ParseQuery(%q, ..., %q) resumes after %+v; cursors hold positive scores and ids", q, cursor, *got.After)
		}
	})
}

func TestParseQuery(t *testing.T) {
	fp := fingerprint([]string{"boots"}, KindNote)
	pos := Position{Score: 3, RecencyMS: 1700000000000, Kind: KindProduct, ID: 42}
	good := EncodeCursor(fp, pos)
	tests := []struct {
		name, q string
		kind    Kind
		cursor  string
		reason  string
	}{
		{"ok", "boots", KindNote, good, ""},
		{"empty", "", KindAll, "", "INVALID_QUERY"},
		{"too long", strings.Repeat("靴", MaxQueryRunes+1), KindAll, "", "INVALID_QUERY"},
		{"longest", strings.Repeat("靴", MaxQueryRunes), KindAll, "", ""},
		{"not utf-8", "boo\xfft", KindAll, "", "INVALID_QUERY"},
		{"no terms", "?! -- ...", KindAll, "", "NO_TERMS"},
		{"bad kind", "boots", Kind("shoe"), "", "INVALID_KIND"},
		{"garbage cursor", "boots", KindNote, "%%%", "BAD_CURSOR"},
		{"cursor of another query", "sandals", KindNote, good, "BAD_CURSOR"},
		{"cursor of another kind", "boots", KindAll, good, "BAD_CURSOR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseQuery(tc.q, tc.kind, 0, tc.cursor)
			if errs.Reason(err) != tc.reason && !(tc.reason == "" && err == nil) {
				t.Fatalf("ParseQuery(%q) = %v; want reason %q", tc.q, err, tc.reason)
			}
			if tc.name == "ok" && (q.After == nil || *q.After != pos || q.Limit != 20) {
				t.Fatalf("ParseQuery = %+v; want after %+v, limit 20", q, pos)
			}
		})
	}
}

func TestEventDocs(t *testing.T) {
	note := event.NoteEvent{Op: event.Created, ID: 7, AuthorID: 3, Title: "Hiking", Body: strings.Repeat("山", MaxIndexedBody+50),
		Tags: []string{"Outdoor"}, CreatedMS: 1000, Version: 1001}
	d, err := NoteDoc(note)
	if err != nil || d.Kind != KindNote || d.RecencyMS != 1000 || d.Terms["hiking"] != 2 || d.Terms["outdoor"] != 2 ||
		d.Terms["山山"] != maxWeight {
		t.Fatalf("NoteDoc = %+v, %v", d, err)
	}
	del, err := NoteDoc(event.NoteEvent{Op: event.Deleted, ID: 7, Version: 1002})
	if err != nil || !del.Deleted || len(del.Terms) != 0 || del.RecencyMS != 1002 {
		t.Fatalf("NoteDoc(deleted) = %+v, %v; want a tombstone", del, err)
	}
	p, err := ProductDoc(event.ProductEvent{Op: event.Updated, ID: 9, Title: "蓝牙耳机", Description: "降噪", MinPrice: 19900,
		Currency: "CNY", Version: 5})
	if err != nil || p.RecencyMS != 5 || p.MinPrice != 19900 || p.Terms["耳机"] != 2 || p.Terms["降噪"] != 1 {
		t.Fatalf("ProductDoc = %+v, %v", p, err)
	}
	for _, bad := range []event.NoteEvent{
		{Op: "archived", ID: 1, Version: 1},
		{Op: event.Created, ID: 0, Version: 1},
		{Op: event.Created, ID: 1, Version: 0},
	} {
		if _, err := NoteDoc(bad); errs.Reason(err) != "BAD_EVENT" {
			t.Errorf("NoteDoc(%+v) = %v; want BAD_EVENT", bad, err)
		}
	}
	if _, err := ProductDoc(event.ProductEvent{Op: event.Created, ID: -1, Version: 1}); errs.Reason(err) != "BAD_EVENT" {
		t.Errorf("ProductDoc with id -1 = %v; want BAD_EVENT", err)
	}
}
