package seed_test

import (
	"context"
	"slices"
	"testing"

	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	notev1 "github.com/redline-dev/redline/api/note/v1"
	productv1 "github.com/redline-dev/redline/api/product/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/services/seed"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

func TestSeedIsLongTailedAndIdempotent(t *testing.T) {
	s := stacktest.Start(t, nil)
	c := seed.Clients{Users: userv1.NewUserClient(s.Conn(t, "user")), Notes: notev1.NewNoteClient(s.Conn(t, "note")),
		Interactions: interactionv1.NewInteractionClient(s.Conn(t, "interaction")),
		Shop: seed.Catalog{Product: productv1.NewProductClient(s.Conn(t, "product")),
			Inventory: inventoryv1.NewInventoryClient(s.Conn(t, "inventory"))}}
	ctx := context.Background()
	var stages []string
	opts := seed.Options{Users: 40, Notes: 120, Likes: 300, Products: 10, Progress: func(stage string, done, total int) {
		if done == total && !slices.Contains(stages, stage) {
			stages = append(stages, stage)
		}
	}}
	res, err := seed.Run(ctx, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"products", "users", "follows", "notes", "likes"}; !slices.Equal(stages, want) {
		t.Fatalf("progress reported %v; want every stage to finish: %v", stages, want)
	}
	snapshot := func() (followers, notes []int) {
		for _, id := range res.UserIDs {
			followers = append(followers, count(t, func(cursor string) (int, string) {
				r, err := c.Users.ListFollowers(ctx, &userv1.ListFollowsRequest{UserId: id, PageSize: 50, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				return len(r.GetUsers()), r.GetNextCursor()
			}))
			notes = append(notes, count(t, func(cursor string) (int, string) {
				r, err := c.Notes.ListByAuthor(ctx, &notev1.ListByAuthorRequest{AuthorId: id, PageSize: 50, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				return len(r.GetNotes()), r.GetNextCursor()
			}))
		}
		return followers, notes
	}
	followers, notes := snapshot()
	sorted := slices.Sorted(slices.Values(followers))
	top, median := sorted[len(sorted)-1], sorted[len(sorted)/2]
	total := 0
	for _, n := range notes {
		total += n
	}
	t.Logf("followers: top %d, median %d; %d follows; %d notes, the demo user's %d", top, median, res.Follows, total, notes[0])
	if top < 4*max(median, 1) {
		t.Errorf("follower counts %v are not long-tailed: top %d vs median %d", sorted, top, median)
	}
	if res.Products != 10 {
		t.Errorf("%d products; want 10", res.Products)
	}
	if total != 120 || notes[0] != 0 {
		t.Errorf("%d notes, %d by the demo user; want 120, none by the demo user (it reads)", total, notes[0])
	}

	again, err := seed.Run(ctx, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	followers2, notes2 := snapshot()
	if !slices.Equal(again.UserIDs, res.UserIDs) || !slices.Equal(followers, followers2) || !slices.Equal(notes, notes2) {
		t.Fatalf("a second run changed the data set: users equal %v, followers equal %v, notes equal %v",
			slices.Equal(again.UserIDs, res.UserIDs), slices.Equal(followers, followers2), slices.Equal(notes, notes2))
	}
}

// count pages through a list, bounded at 100 pages.
func count(t *testing.T, page func(cursor string) (int, string)) int {
	t.Helper()
	total, cursor := 0, ""
	for range 100 {
		n, next := page(cursor)
		total += n
		if next == "" {
			return total
		}
		cursor = next
	}
	t.Fatal("more than 100 pages")
	return 0
}
