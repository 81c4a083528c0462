package feed_test

import (
	"context"
	"testing"
	"time"

	feedv1 "github.com/redline-dev/redline/api/feed/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/services/event"
	"github.com/redline-dev/redline/services/feed"
	"github.com/redline-dev/redline/services/feed/internal/biz"
	"github.com/redline-dev/redline/services/feed/internal/data"
)

// BenchmarkHomeFeed reads home-feed pages on SQLite. The reader follows 200 authors fanned
// out to a full inbox (1000 rows) and 5 big authors with 2000 notes each, pulled and merged
// at read time; followees are cached, as between reads of one session.
//
//	inbox-only:      a reader following only the 200 fanned-out authors
//	merged/first:    the first page of inbox + pull
//	merged/deep:     the 11th page, through a cursor
func BenchmarkHomeFeed(b *testing.B) {
	ctx := context.Background()
	db := engines()["sqlite"](b)
	g := newGraph()
	const (
		reader, inboxOnly = 1, 2
		smallAuthors      = 200
		bigAuthors        = 5
		bigNotes          = 2000
	)
	for a := range int64(smallAuthors) {
		g.follow(reader, 1000+a)
		g.follow(inboxOnly, 1000+a)
	}
	for a := range int64(bigAuthors) {
		g.follow(reader, 2000+a)
		for f := range int64(11) { // 11 followers, over the threshold of 10
			g.follow(10+f, 2000+a)
		}
	}
	fan := biz.NewFanOut(data.NewStore(db), data.NewGraph(g), clock.Real{}, biz.FanOutConfig{Threshold: 10}, log.Discard())
	defer fan.Close()
	svc, loops, err := feed.New(ctx, db, nil, g, feed.FollowTTL(time.Hour), feed.WithLogger(log.Discard()))
	if err != nil {
		b.Fatal(err)
	}
	defer loops.Close()

	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	id := int64(1)
	var batch []event.NoteEvent
	flush := func() {
		if err := fan.Process(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	add := func(author, ms int64) {
		batch = append(batch, created(id, author, ms))
		id++
		if len(batch) == 64 {
			flush()
		}
	}
	for i := range int64(1000) {
		add(1000+i%smallAuthors, start+i*37)
	}
	for i := range int64(bigAuthors * bigNotes) {
		add(2000+i%bigAuthors, start+i*7)
	}
	flush()

	read := func(b *testing.B, user int64, cursor string) string {
		r, err := svc.HomeFeed(ctx, &feedv1.HomeFeedRequest{UserId: user, PageSize: 20, Cursor: cursor})
		if err != nil || len(r.GetItems()) != 20 {
			b.Fatalf("HomeFeed = %d items, %v; want 20", len(r.GetItems()), err)
		}
		return r.GetNextCursor()
	}
	bench := func(name string, user int64, depth int) {
		b.Run(name, func(b *testing.B) {
			cursor := ""
			for range depth {
				cursor = read(b, user, cursor)
			}
			b.ReportAllocs()
			for b.Loop() {
				read(b, user, cursor)
			}
		})
	}
	bench("inbox-only", inboxOnly, 0)
	bench("merged/first", reader, 0)
	bench("merged/deep", reader, 10)
}
