package service

import (
	"testing"

	"github.com/redline-dev/redline/services/event"
	"github.com/redline-dev/redline/services/search/internal/biz"
)

// FuzzParseEvent checks that any payload on either subject is either refused or makes a
// document of the subject's kind with a positive id and version, and terms only when live.
func FuzzParseEvent(f *testing.F) {
	note, _ := event.Encode(event.NoteEvent{Op: event.Created, ID: 1, Title: "上海美食", Version: 2})
	product, _ := event.Encode(event.ProductEvent{Op: event.Deleted, ID: 3, Version: 4})
	f.Add(event.Note, note)
	f.Add(event.Product, product)
	f.Add(event.Note, []byte(`{"op":"created","id":-1,"version":1}`))
	f.Add(event.Product, []byte(`{"op":"updated","id":1,"version":1,"title":"\ud800"}`))
	f.Add(event.Comment, []byte(`{}`))
	f.Add(event.Note, []byte(`not json`))
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		d, err := ParseEvent(subject, data)
		if err != nil {
			return
		}
		want := map[string]biz.Kind{event.Note: biz.KindNote, event.Product: biz.KindProduct}[subject]
		if d.Kind != want || d.ID <= 0 || d.Version <= 0 {
			t.Fatalf("ParseEvent(%q, %q) = %+v; want a %s with positive id and version", subject, data, d, want)
		}
		if d.Deleted && len(d.Terms) != 0 {
			t.Fatalf("ParseEvent(%q, %q) is a tombstone with terms %v", subject, data, d.Terms)
		}
	})
}
