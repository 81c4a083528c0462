package service

import (
	"context"
	"sync"

	interactionv1 "github.com/redline-dev/redline/api/interaction/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/kit/auth"
)

// Counts are a note's public counters. Likes and collects are exact; comments and views
// may trail by the interaction service's flush interval.
type Counts struct {
	Likes    int64 `json:"likes"`
	Collects int64 `json:"collects"`
	Comments int64 `json:"comments"`
	Views    int64 `json:"views"`
}

// Viewer is the signed-in caller's own state on a note.
type Viewer struct {
	Liked     bool `json:"liked"`
	Collected bool `json:"collected"`
}

// Parts of a card that can be left out, as named in "degraded".
const (
	partAuthor = "author"
	partCounts = "counts"
	partViewer = "viewer"
)

// cards completes notes into cards with at most three calls, made at once whatever the
// number of notes: the authors (user GetUsers), the counters (interaction GetCounts) and,
// for a signed-in caller, their likes and collects (interaction GetViewerState). A part
// whose call fails is left out and named in degraded; only the request's own deadline or
// cancellation fails the whole answer.
func (b *BFF) cards(ctx context.Context, notes []*NoteView) (degraded []string, err error) {
	if len(notes) == 0 {
		return nil, nil
	}
	noteIDs := make([]int64, len(notes))
	authorIDs := make([]int64, len(notes))
	for i, n := range notes {
		noteIDs[i], authorIDs[i] = n.id, n.authorID
	}
	var (
		wg       sync.WaitGroup
		users    map[int64]*UserView
		counts   *interactionv1.GetCountsReply
		states   *interactionv1.GetViewerStateReply
		uErr     error
		cErr     error
		sErr     error
		sub, who = auth.Subject(ctx)
	)
	wg.Go(func() { users, uErr = b.profiles(ctx, authorIDs) })
	if b.Interactions != nil {
		wg.Go(func() {
			counts, cErr = b.Interactions.GetCounts(ctx, &interactionv1.GetCountsRequest{TargetIds: noteIDs})
		})
		if who {
			wg.Go(func() {
				states, sErr = b.Interactions.GetViewerState(ctx, &interactionv1.GetViewerStateRequest{UserId: sub, TargetIds: noteIDs})
			})
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if uErr != nil {
		degraded = append(degraded, partAuthor)
	} else {
		for _, n := range notes {
			n.Author = users[n.authorID]
		}
	}
	if b.Interactions != nil && cErr != nil {
		degraded = append(degraded, partCounts)
	} else if counts != nil {
		for _, n := range notes {
			c := counts.GetCounts()[n.id]
			n.Counts = &Counts{Likes: c.GetLikes(), Collects: c.GetCollects(), Comments: c.GetComments(), Views: c.GetViews()}
		}
	}
	if who && b.Interactions != nil && sErr != nil {
		degraded = append(degraded, partViewer)
	} else if states != nil {
		for _, n := range notes {
			st := states.GetStates()[n.id]
			n.Viewer = &Viewer{Liked: st.GetLiked(), Collected: st.GetCollected()}
		}
	}
	return degraded, nil
}

// profiles fetches the profiles of ids (repeats allowed) in one GetUsers call, by id.
func (b *BFF) profiles(ctx context.Context, ids []int64) (map[int64]*UserView, error) {
	uniq := make([]int64, 0, len(ids))
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	r, err := b.Users.GetUsers(ctx, &userv1.GetUsersRequest{Ids: uniq})
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*UserView, len(r.GetUsers()))
	for _, u := range r.GetUsers() {
		out[u.GetId()] = userView(u)
	}
	return out, nil
}
