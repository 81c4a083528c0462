package biz

import (
	"context"
	"time"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/id"
	"github.com/redline-dev/redline/kit/page"
)

// FollowRepo stores who follows whom.
type FollowRepo interface {
	// Follow records follower → followee at position seq; false when it already existed.
	Follow(ctx context.Context, follower, followee, seq int64, at time.Time) (bool, error)
	// Unfollow removes it; false when there was nothing to remove.
	Unfollow(ctx context.Context, follower, followee int64) (bool, error)
	// Followers returns up to limit users following user with seq < before, newest first,
	// and the seq of each.
	Followers(ctx context.Context, user, before int64, limit int) ([]*User, []int64, error)
	// Following returns up to limit users that user follows with seq < before, newest first.
	Following(ctx context.Context, user, before int64, limit int) ([]*User, []int64, error)
}

var errSelfFollow = errs.InvalidArgument("CANNOT_FOLLOW_SELF", "a user cannot follow themselves")

const followCursor = "f1"

// Follow makes follower follow followee; repeating it changes nothing.
func (uc *Usecase) Follow(ctx context.Context, follower, followee int64) (bool, error) {
	if follower == followee {
		return false, errSelfFollow
	}
	if _, err := uc.Get(ctx, followee); err != nil {
		return false, err
	}
	return uc.follows.Follow(ctx, follower, followee, id.New(), time.Now().UTC())
}

// Unfollow undoes Follow; repeating it changes nothing.
func (uc *Usecase) Unfollow(ctx context.Context, follower, followee int64) (bool, error) {
	return uc.follows.Unfollow(ctx, follower, followee)
}

// Followers pages through who follows user.
func (uc *Usecase) Followers(ctx context.Context, user int64, size int, cursor string) ([]*User, string, error) {
	return uc.listFollows(ctx, uc.follows.Followers, user, size, cursor)
}

// Following pages through whom user follows.
func (uc *Usecase) Following(ctx context.Context, user int64, size int, cursor string) ([]*User, string, error) {
	return uc.listFollows(ctx, uc.follows.Following, user, size, cursor)
}

func (uc *Usecase) listFollows(ctx context.Context, list func(context.Context, int64, int64, int) ([]*User, []int64, error),
	user int64, size int, cursor string) ([]*User, string, error) {
	size = page.Size(size)
	before, err := page.Decode(followCursor, cursor)
	if err != nil {
		return nil, "", err
	}
	users, seqs, err := list(ctx, user, before, size+1) // one extra: is there a next page?
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(users) > size {
		users, seqs = users[:size], seqs[:size]
		next = page.Encode(followCursor, seqs[len(seqs)-1])
	}
	return users, next, nil
}
