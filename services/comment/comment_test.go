package comment_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	commentv1 "github.com/redline-dev/redline/api/comment/v1"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/comment"
	"github.com/redline-dev/redline/services/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ids(cs []*commentv1.CommentInfo) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = c.GetId()
	}
	return out
}

func rootIDs(r *commentv1.ListRootsReply) []int64 {
	out := make([]int64, len(r.GetThreads()))
	for i, t := range r.GetThreads() {
		out[i] = t.GetRoot().GetId()
	}
	return out
}

func TestCreateIsWrittenByTheConsumer(t *testing.T) {
	onBackends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		noteID := e.note(100)
		// With the consumer stopped the comment stays pending: GetComment says NOT_FOUND.
		e.stop()
		root := e.queue(noteID, 1, 0, 0, "  first!  ")
		if _, err := e.svc.GetComment(ctx, &commentv1.GetCommentRequest{Id: root}); reason(err) != "COMMENT_NOT_FOUND" {
			t.Fatalf("GetComment of a pending comment = %v; want COMMENT_NOT_FOUND", err)
		}
		// A new instance with the same durable consumer picks the queued command up.
		e.start()
		got := e.written(root)
		if got.GetBody() != "first!" || got.GetUserId() != 1 || got.GetNoteId() != noteID || got.GetRootId() != 0 ||
			got.GetCreatedAtMs() != e.clock.Now().UnixMilli() {
			t.Fatalf("GetComment = %v; want the trimmed root by user 1", got)
		}
		var replies []int64
		for i := range 4 {
			parent := int64(0)
			if i == 3 {
				parent = replies[0] // answers the first reply
			}
			replies = append(replies, e.create(noteID, int64(2+i), root, parent, "reply"))
		}
		r := e.roots(noteID, "", 0, "")
		if len(r.GetThreads()) != 1 || r.GetNextCursor() != "" {
			t.Fatalf("ListRoots = %v; want one thread and no next page", r)
		}
		th := r.GetThreads()[0]
		if th.GetRoot().GetId() != root || th.GetRoot().GetReplyCount() != 4 {
			t.Fatalf("thread root = %v; want %d with 4 replies", th.GetRoot(), root)
		}
		if got := ids(th.GetReplies()); !slices.Equal(got, replies[:3]) {
			t.Fatalf("thread replies = %v; want the first 3, oldest first: %v", got, replies[:3])
		}
		rest, err := e.svc.ListReplies(ctx, &commentv1.ListRepliesRequest{RootId: root, Cursor: th.GetRepliesCursor()})
		if err != nil || !slices.Equal(ids(rest.GetReplies()), replies[3:]) || rest.GetNextCursor() != "" {
			t.Fatalf("ListReplies after the thread = %v, %v; want %v", rest, err, replies[3:])
		}
		if p := rest.GetReplies()[0].GetParentId(); p != replies[0] {
			t.Fatalf("parent_id of the last reply = %d; want %d", p, replies[0])
		}
		all, err := e.svc.ListReplies(ctx, &commentv1.ListRepliesRequest{RootId: root, PageSize: 2})
		if err != nil || !slices.Equal(ids(all.GetReplies()), replies[:2]) || all.GetNextCursor() == "" {
			t.Fatalf("ListReplies page 1 = %v, %v; want %v and a cursor", all, err, replies[:2])
		}
		if n := e.comments(noteID); n != 5 {
			t.Fatalf("interaction comment count = %d; want 5", n)
		}
		if n := e.inter.calls.Load(); n != 5 {
			t.Fatalf("RecordComment calls = %d; want 5", n)
		}
	})
}

func TestRedeliveredCommandWritesOnce(t *testing.T) {
	onBackends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		noteID := e.note(100)
		root := e.create(noteID, 1, 0, 0, "root")
		before := e.inter.calls.Load()
		cmd, err := event.Encode(event.CommentCommand{Op: event.Created, ID: 777, NoteID: noteID, UserID: 2, RootID: root,
			Body: "once", AtMS: 1})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 { // the first delivery and two redeliveries
			if err := e.q.Publish(ctx, event.Comment, cmd); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "3 deliveries handled", func() bool { s := e.w.Stats(); return s.Written+s.Duplicates >= 4 })
		e.counted(777)
		if s := e.w.Stats(); s.Written != 2 || s.Duplicates != 2 {
			t.Fatalf("Stats = %+v; want 2 written (root and reply), 2 duplicates", s)
		}
		var rows int
		if err := e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM comments WHERE id = 777`).Scan(&rows); err != nil || rows != 1 {
			t.Fatalf("rows of comment 777 = %d, %v; want 1", rows, err)
		}
		if r := e.written(root); r.GetReplyCount() != 1 {
			t.Fatalf("root reply_count = %d; want 1", r.GetReplyCount())
		}
		if n := e.inter.calls.Load() - before; n != 1 {
			t.Fatalf("RecordComment calls for the redelivered reply = %d; want 1", n)
		}
		if n := e.comments(noteID); n != 2 {
			t.Fatalf("interaction comment count = %d; want 2", n)
		}
	})
}

// TestCounterSurvivesFailures makes RecordComment fail after the insert, as if the
// process died between the two, and shows a redelivery makes the call once; then leaves a
// sync's lease held, as a process dying mid-call would, and shows the relay takes over
// once the lease runs out.
func TestCounterSurvivesFailures(t *testing.T) {
	onBackends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		noteID := e.note(100)
		e.inter.fail.Store(true)
		cmd, _ := event.Encode(event.CommentCommand{Op: event.Created, ID: 901, NoteID: noteID, UserID: 1, Body: "x", AtMS: 1})
		if err := e.q.Publish(ctx, event.Comment, cmd); err != nil {
			t.Fatal(err)
		}
		e.written(901)
		eventually(t, "failed sync counted", func() bool { return e.w.Stats().SyncFailed == 1 })
		if n := e.comments(noteID); n != 0 {
			t.Fatalf("comment count after the failed call = %d; want 0", n)
		}
		e.inter.fail.Store(false)
		if err := e.q.Publish(ctx, event.Comment, cmd); err != nil { // the redelivery
			t.Fatal(err)
		}
		eventually(t, "redelivery synced the counter", func() bool { return e.comments(noteID) == 1 })
		if err := e.q.Publish(ctx, event.Comment, cmd); err != nil { // and another
			t.Fatal(err)
		}
		eventually(t, "third delivery handled", func() bool { return e.w.Stats().Duplicates == 2 })
		if n, c := e.inter.calls.Load(), e.comments(noteID); n != 1 || c != 1 {
			t.Fatalf("after 3 deliveries: %d RecordComment calls, count %d; want 1 and 1", n, c)
		}

		// A second comment whose sync died holding its lease: the inline call fails, and the
		// lease is set back as a process dying mid-call would leave it.
		e.stop()
		cmd, _ = event.Encode(event.CommentCommand{Op: event.Created, ID: 902, NoteID: noteID, UserID: 1, Body: "y", AtMS: 1})
		if err := e.q.Publish(ctx, event.Comment, cmd); err != nil {
			t.Fatal(err)
		}
		e.inter.fail.Store(true)
		e.start()
		e.written(902)
		eventually(t, "inline sync failed", func() bool { return e.w.Stats().SyncFailed == 1 })
		e.stop()
		e.inter.fail.Store(false)
		lease := e.clock.Now().Add(30 * time.Second).UnixMilli()
		if _, err := e.db.ExecContext(ctx, `UPDATE comments SET count_lease = ? WHERE id = 902`, lease); err != nil {
			t.Fatal(err)
		}
		e.start(comment.RelayInterval(time.Millisecond))
		// The relay runs every millisecond: many rounds pass in this wait, none may call
		// while the lease holds.
		time.Sleep(30 * time.Millisecond)
		if n := e.comments(noteID); n != 1 {
			t.Fatalf("count while another sync holds the lease = %d; want 1", n)
		}
		e.clock.Advance(31 * time.Second)
		eventually(t, "relay synced after the lease ran out", func() bool { return e.comments(noteID) == 2 })
		if n := e.inter.calls.Load(); n != 2 {
			t.Fatalf("RecordComment calls = %d; want 2", n)
		}
	})
}

func TestDelete(t *testing.T) {
	onBackends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		const owner, author, stranger = 100, 1, 3
		noteID := e.note(owner)
		root := e.create(noteID, author, 0, 0, "root")
		r1 := e.create(noteID, 2, root, 0, "reply 1")
		r2 := e.create(noteID, author, root, 0, "reply 2")
		other := e.create(noteID, 2, 0, 0, "another root")
		del := func(id, user int64) (*commentv1.DeleteCommentReply, error) {
			return e.svc.DeleteComment(ctx, &commentv1.DeleteCommentRequest{Id: id, UserId: user})
		}
		if _, err := del(r1, stranger); errs.Code(err) != codes.PermissionDenied || reason(err) != "NOT_ALLOWED" {
			t.Fatalf("Delete by a stranger = %v; want PERMISSION_DENIED NOT_ALLOWED", err)
		}
		if _, err := del(99999, author); reason(err) != "COMMENT_NOT_FOUND" {
			t.Fatalf("Delete of a missing comment = %v; want COMMENT_NOT_FOUND", err)
		}
		if r, err := del(r2, author); err != nil || !r.GetChanged() { // by its author
			t.Fatalf("Delete by the author = %v, %v; want changed", r, err)
		}
		if r, err := del(r2, author); err != nil || r.GetChanged() {
			t.Fatalf("second Delete = %v, %v; want unchanged", r, err)
		}
		if _, err := e.svc.GetComment(ctx, &commentv1.GetCommentRequest{Id: r2}); reason(err) != "COMMENT_DELETED" {
			t.Fatalf("GetComment of a deleted comment = %v; want COMMENT_DELETED", err)
		}
		if c := e.written(root); c.GetReplyCount() != 1 {
			t.Fatalf("root reply_count after deleting a reply = %d; want 1", c.GetReplyCount())
		}
		if n := e.comments(noteID); n != 3 {
			t.Fatalf("comment count after deleting a reply = %d; want 3", n)
		}
		if r, err := del(root, owner); err != nil || !r.GetChanged() { // by the note's author
			t.Fatalf("Delete by the note's author = %v, %v; want changed", r, err)
		}
		if _, err := e.svc.GetComment(ctx, &commentv1.GetCommentRequest{Id: r1}); reason(err) != "COMMENT_DELETED" {
			t.Fatalf("GetComment of a reply under a deleted root = %v; want COMMENT_DELETED", err)
		}
		if _, err := e.svc.ListReplies(ctx, &commentv1.ListRepliesRequest{RootId: root}); reason(err) != "ROOT_NOT_FOUND" {
			t.Fatalf("ListReplies of a deleted root = %v; want ROOT_NOT_FOUND", err)
		}
		if got := rootIDs(e.roots(noteID, "new", 0, "")); !slices.Equal(got, []int64{other}) {
			t.Fatalf("roots after deleting one = %v; want [%d]", got, other)
		}
		if n := e.comments(noteID); n != 1 {
			t.Fatalf("comment count after deleting a root with a reply = %d; want 1", n)
		}
		if _, err := del(other, stranger); reason(err) != "NOT_ALLOWED" {
			t.Fatalf("Delete of a root by a stranger = %v; want NOT_ALLOWED", err)
		}
	})
}

// TestReplyQueuedBeforeItsRootWasDeleted queues a reply, deletes its root before the
// consumer runs, and checks the reply is written hidden and never counted.
func TestReplyQueuedBeforeItsRootWasDeleted(t *testing.T) {
	onBackends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		noteID := e.note(100)
		root := e.create(noteID, 1, 0, 0, "root")
		e.stop() // the API still answers; the queued reply waits for the next start
		reply := e.queue(noteID, 2, root, 0, "late")
		if _, err := e.svc.DeleteComment(ctx, &commentv1.DeleteCommentRequest{Id: root, UserId: 1}); err != nil {
			t.Fatal(err)
		}
		e.start()
		eventually(t, "reply written", func() bool { s := e.w.Stats(); return s.Written+s.Duplicates >= 1 })
		if _, err := e.svc.GetComment(ctx, &commentv1.GetCommentRequest{Id: reply}); reason(err) != "COMMENT_DELETED" {
			t.Fatalf("GetComment of the late reply = %v; want COMMENT_DELETED", err)
		}
		if n, c := e.inter.calls.Load(), e.comments(noteID); n != 2 || c != 0 {
			t.Fatalf("RecordComment calls %d, count %d; want 2 (+1 and -1 for the root) and 0", n, c)
		}
	})
}

func TestHotAndNewOrder(t *testing.T) {
	onBackends(t, func(t *testing.T, e *env) {
		noteID := e.note(100)
		a := e.create(noteID, 1, 0, 0, "oldest, two replies")
		b := e.create(noteID, 1, 0, 0, "middle, no replies")
		c := e.create(noteID, 1, 0, 0, "newest, one reply")
		d := e.create(noteID, 1, 0, 0, "newer still, one reply")
		for _, root := range []int64{a, a, c, d} {
			e.create(noteID, 2, root, 0, "reply")
		}
		walk := func(order string) []int64 {
			var got []int64
			cursor := ""
			for range 10 {
				r := e.roots(noteID, order, 1, cursor)
				got = append(got, rootIDs(r)...)
				if cursor = r.GetNextCursor(); cursor == "" {
					return got
				}
			}
			t.Fatalf("%s: no end after 10 pages", order)
			return nil
		}
		if got, want := walk("hot"), []int64{a, d, c, b}; !slices.Equal(got, want) {
			t.Fatalf("hot, a page at a time = %v; want %v (reply count, then newest)", got, want)
		}
		if got, want := walk("new"), []int64{d, c, b, a}; !slices.Equal(got, want) {
			t.Fatalf("new, a page at a time = %v; want %v", got, want)
		}
		if got := rootIDs(e.roots(noteID, "", 50, "")); got[0] != a {
			t.Fatalf("default order = %v; want hot", got)
		}
		hotCursor := e.roots(noteID, "hot", 1, "").GetNextCursor()
		if _, err := e.svc.ListRoots(context.Background(), &commentv1.ListRootsRequest{NoteId: noteID, Order: "new", Cursor: hotCursor}); reason(err) != "BAD_CURSOR" {
			t.Fatalf("a hot cursor on the new order = %v; want BAD_CURSOR", err)
		}
	})
}

func TestValidationAndNotFound(t *testing.T) {
	e := newEnv(t, backends()[0])
	ctx := context.Background()
	noteID := e.note(100)
	root := e.create(noteID, 1, 0, 0, "root")
	reply := e.create(noteID, 1, root, 0, "reply")
	otherRoot := e.create(noteID, 1, 0, 0, "other root")
	otherNote := e.note(100)
	create := func(n, u, r, p int64, body string) func() error {
		return func() error {
			_, err := e.svc.CreateComment(ctx, &commentv1.CreateCommentRequest{NoteId: n, UserId: u, RootId: r, ParentId: p, Body: body})
			return err
		}
	}
	cases := []struct {
		name, reason string
		call         func() error
	}{
		{"create without user", "INVALID_USER", create(noteID, 0, 0, 0, "x")},
		{"create without note", "INVALID_NOTE", create(0, 1, 0, 0, "x")},
		{"create with a blank body", "INVALID_BODY", create(noteID, 1, 0, 0, " \n\t ")},
		{"create with 2001 characters", "INVALID_BODY", create(noteID, 1, 0, 0, strings.Repeat("é", 2001))},
		{"create with NUL", "INVALID_BODY", create(noteID, 1, 0, 0, "a\x00b")},
		{"create with bad UTF-8", "INVALID_BODY", create(noteID, 1, 0, 0, "a\xffb")},
		{"create with a negative root", "INVALID_ROOT", create(noteID, 1, -1, 0, "x")},
		{"create with a parent but no root", "INVALID_PARENT", create(noteID, 1, 0, reply, "x")},
		{"create on a missing note", "NOTE_NOT_FOUND", create(999999, 1, 0, 0, "x")},
		{"reply to a missing root", "ROOT_NOT_FOUND", create(noteID, 1, 999999, 0, "x")},
		{"reply to a reply as root", "INVALID_ROOT", create(noteID, 1, reply, 0, "x")},
		{"reply to a root of another note", "INVALID_ROOT", create(otherNote, 1, root, 0, "x")},
		{"reply answering a missing reply", "PARENT_NOT_FOUND", create(noteID, 1, root, 999999, "x")},
		{"reply answering a reply of another root", "INVALID_PARENT", create(noteID, 1, otherRoot, reply, "x")},
		{"get without id", "INVALID_ID", func() error {
			_, err := e.svc.GetComment(ctx, &commentv1.GetCommentRequest{})
			return err
		}},
		{"get missing", "COMMENT_NOT_FOUND", func() error {
			_, err := e.svc.GetComment(ctx, &commentv1.GetCommentRequest{Id: 999999})
			return err
		}},
		{"delete without id", "INVALID_ID", func() error {
			_, err := e.svc.DeleteComment(ctx, &commentv1.DeleteCommentRequest{UserId: 1})
			return err
		}},
		{"delete without user", "INVALID_USER", func() error {
			_, err := e.svc.DeleteComment(ctx, &commentv1.DeleteCommentRequest{Id: root})
			return err
		}},
		{"delete missing", "COMMENT_NOT_FOUND", func() error {
			_, err := e.svc.DeleteComment(ctx, &commentv1.DeleteCommentRequest{Id: 999999, UserId: 1})
			return err
		}},
		{"roots without note", "INVALID_NOTE", func() error {
			_, err := e.svc.ListRoots(ctx, &commentv1.ListRootsRequest{})
			return err
		}},
		{"roots in a bad order", "INVALID_ORDER", func() error {
			_, err := e.svc.ListRoots(ctx, &commentv1.ListRootsRequest{NoteId: noteID, Order: "best"})
			return err
		}},
		{"roots with a bad cursor", "BAD_CURSOR", func() error {
			_, err := e.svc.ListRoots(ctx, &commentv1.ListRootsRequest{NoteId: noteID, Cursor: "!!"})
			return err
		}},
		{"roots of a missing note", "NOTE_NOT_FOUND", func() error {
			_, err := e.svc.ListRoots(ctx, &commentv1.ListRootsRequest{NoteId: 999999})
			return err
		}},
		{"replies without root", "INVALID_ROOT", func() error {
			_, err := e.svc.ListReplies(ctx, &commentv1.ListRepliesRequest{})
			return err
		}},
		{"replies with a bad cursor", "BAD_CURSOR", func() error {
			_, err := e.svc.ListReplies(ctx, &commentv1.ListRepliesRequest{RootId: root, Cursor: "Y24xOjE"})
			return err
		}},
		{"replies of a missing root", "ROOT_NOT_FOUND", func() error {
			_, err := e.svc.ListReplies(ctx, &commentv1.ListRepliesRequest{RootId: 999999})
			return err
		}},
		{"replies of a reply", "ROOT_NOT_FOUND", func() error {
			_, err := e.svc.ListReplies(ctx, &commentv1.ListRepliesRequest{RootId: reply})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); reason(err) != c.reason {
				t.Fatalf("reason = %q (%v); want %q", reason(err), err, c.reason)
			}
		})
	}
	// Lists that exist but are empty are not errors.
	if r := e.roots(otherNote, "new", 0, ""); len(r.GetThreads()) != 0 {
		t.Fatalf("roots of a note without comments = %v; want none", r)
	}
	if r, err := e.svc.ListReplies(ctx, &commentv1.ListRepliesRequest{RootId: otherRoot}); err != nil || len(r.GetReplies()) != 0 {
		t.Fatalf("replies of a root without replies = %v, %v; want none", r, err)
	}
	if s := e.w.Stats(); s.Written != 3 {
		t.Fatalf("Stats = %+v; want only the 3 valid comments written", s)
	}
}

func TestConsumerDropsCommandsItCannotApply(t *testing.T) {
	e := newEnv(t, backends()[0])
	ctx := context.Background()
	noteID := e.note(100)
	bad := [][]byte{
		[]byte("not json"),
		[]byte(`{"op":"deleted","id":5,"note_id":1,"user_id":1,"at_ms":1}`),
		[]byte(`{"op":"created","id":6,"note_id":1,"user_id":1,"body":"","at_ms":1}`),
		[]byte(`{"op":"created","id":7,"note_id":1,"user_id":1,"root_id":424242,"body":"orphan","at_ms":1}`),
	}
	for _, b := range bad {
		if err := e.q.Publish(ctx, event.Comment, b); err != nil {
			t.Fatal(err)
		}
	}
	good := e.create(noteID, 1, 0, 0, "after the bad ones") // the consumer kept going
	if s := e.w.Stats(); s.Invalid != 4 || s.Written != 1 {
		t.Fatalf("Stats = %+v; want 4 invalid, 1 written", s)
	}
	var rows int
	if err := e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM comments`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("rows = %d, %v; want only comment %d", rows, err, good)
	}
}

// TestInstancesShareTheConsumer runs two instances on one database and one durable
// consumer: every queued comment is written once, and counted once.
func TestInstancesShareTheConsumer(t *testing.T) {
	onBackends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		noteID := e.note(100)
		first := e.w
		q2 := e.openQueue()
		t.Cleanup(func() { q2.Close() })
		_, second, err := comment.New(ctx, e.db, noteClient{e.notes}, e.inter, q2, comment.WithClock(e.clock))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { second.Close() })
		const n = 20
		for i := range n {
			e.queue(noteID, int64(1+i), 0, 0, "hello")
		}
		eventually(t, "all written", func() bool { return first.Stats().Written+second.Stats().Written == n })
		if d := first.Stats().Duplicates + second.Stats().Duplicates; d != 0 {
			t.Fatalf("%d duplicates; want each command delivered to one instance", d)
		}
		eventually(t, "all counted", func() bool { return e.comments(noteID) == n })
		if c := e.comments(noteID); c != n || e.inter.calls.Load() != n {
			t.Fatalf("count %d, %d calls; want %d", c, e.inter.calls.Load(), n)
		}
		t.Logf("instance 1 wrote %d, instance 2 wrote %d", first.Stats().Written, second.Stats().Written)
	})
}
