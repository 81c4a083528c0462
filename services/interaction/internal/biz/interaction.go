// Package biz holds the interaction service's rules: likes and collects unique per user and
// target, request limits, and counters buffered in memory and written back in batches. It
// owns the repository interfaces that data implements.
package biz

import (
	"context"
	"time"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
)

// Kind is a reaction a user can have to a target at most once.
type Kind int

// The reactions.
const (
	Like Kind = iota + 1
	Collect
)

// Counts are a target's counters, or a change to them.
type Counts struct {
	Likes, Collects, Comments, Views int64
}

// Add adds d to c.
func (c *Counts) Add(d Counts) {
	c.Likes += d.Likes
	c.Collects += d.Collects
	c.Comments += d.Comments
	c.Views += d.Views
}

// IsZero reports whether every counter is 0.
func (c Counts) IsZero() bool { return c == Counts{} }

// delta is the counter change when a reaction of kind k is added (on) or removed.
func (k Kind) delta(on bool) Counts {
	n := int64(1)
	if !on {
		n = -1
	}
	if k == Like {
		return Counts{Likes: n}
	}
	return Counts{Collects: n}
}

// ViewerState says what a user did to a target.
type ViewerState struct {
	Liked, Collected bool
}

// Repo stores reactions.
type Repo interface {
	// React adds (on) or removes a user's reaction to a target; false when it already was
	// as asked.
	React(ctx context.Context, kind Kind, user, target int64, on bool, at time.Time) (bool, error)
	// ViewerStates returns the user's reactions to targets in one query; targets without
	// any are absent from the map.
	ViewerStates(ctx context.Context, user int64, targets []int64) (map[int64]ViewerState, error)
}

// CounterStore holds the counters that a Batcher writes back.
type CounterStore interface {
	// AddCounts adds each delta to its target's counters, all or none.
	AddCounts(ctx context.Context, deltas map[int64]Counts) error
	// Counts returns the stored counters of targets; targets without a row are absent.
	Counts(ctx context.Context, targets []int64) (map[int64]Counts, error)
}

// MaxTargets bounds the targets of one batch call.
const MaxTargets = 100

// Errors callers branch on.
var (
	ErrInvalidUser   = errs.InvalidArgument("INVALID_USER", "user_id must be > 0")
	ErrInvalidTarget = errs.InvalidArgument("INVALID_TARGET", "target ids must be > 0")
	ErrTooManyIDs    = errs.InvalidArgument("TOO_MANY_TARGETS", "at most %d target ids per call", MaxTargets)
	ErrInvalidDelta  = errs.InvalidArgument("INVALID_DELTA", "delta must be +1 or -1")
)

// ValidateUser checks a user id.
func ValidateUser(user int64) error {
	if user <= 0 {
		return ErrInvalidUser
	}
	return nil
}

// ValidateTarget checks a target id.
func ValidateTarget(target int64) error {
	if target <= 0 {
		return ErrInvalidTarget
	}
	return nil
}

// ValidateTargets checks the ids of a batch call and returns them without repeats, in
// first-seen order.
func ValidateTargets(targets []int64) ([]int64, error) {
	if len(targets) > MaxTargets {
		return nil, ErrTooManyIDs
	}
	out := make([]int64, 0, len(targets))
	seen := make(map[int64]bool, len(targets))
	for _, t := range targets {
		if err := ValidateTarget(t); err != nil {
			return nil, err
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, nil
}

// Usecase is the interaction service's logic.
type Usecase struct {
	repo     Repo
	counters *Batcher
	clock    clock.Clock
}

// NewUsecase returns the logic over repo, counting through counters. c stamps reactions.
func NewUsecase(repo Repo, counters *Batcher, c clock.Clock) *Usecase {
	return &Usecase{repo: repo, counters: counters, clock: c}
}

// React adds (on) or removes user's reaction of kind to target and, when that changed
// anything, moves the target's counter. Repeats change nothing and return false.
func (uc *Usecase) React(ctx context.Context, kind Kind, user, target int64, on bool) (bool, error) {
	if err := ValidateUser(user); err != nil {
		return false, err
	}
	if err := ValidateTarget(target); err != nil {
		return false, err
	}
	changed, err := uc.repo.React(ctx, kind, user, target, on, uc.clock.Now())
	if err != nil || !changed {
		return false, err
	}
	// Only the call that changed the row moves the counter, so concurrent repeats count once.
	uc.counters.Add(target, kind.delta(on))
	return true, nil
}

// RecordView counts a view of target.
func (uc *Usecase) RecordView(target int64) error {
	if err := ValidateTarget(target); err != nil {
		return err
	}
	uc.counters.Add(target, Counts{Views: 1})
	return nil
}

// RecordComment moves target's comment count by delta, +1 or -1.
func (uc *Usecase) RecordComment(target int64, delta int32) error {
	if err := ValidateTarget(target); err != nil {
		return err
	}
	if delta != 1 && delta != -1 {
		return ErrInvalidDelta
	}
	uc.counters.Add(target, Counts{Comments: int64(delta)})
	return nil
}

// Counts returns the counters of every target, pending changes included; zero for targets
// with none.
func (uc *Usecase) Counts(ctx context.Context, targets []int64) (map[int64]Counts, error) {
	targets, err := ValidateTargets(targets)
	if err != nil {
		return nil, err
	}
	return uc.counters.Counts(ctx, targets)
}

// ViewerStates returns user's state for every target.
func (uc *Usecase) ViewerStates(ctx context.Context, user int64, targets []int64) (map[int64]ViewerState, error) {
	if err := ValidateUser(user); err != nil {
		return nil, err
	}
	targets, err := ValidateTargets(targets)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]ViewerState, len(targets))
	if len(targets) == 0 {
		return out, nil
	}
	got, err := uc.repo.ViewerStates(ctx, user, targets)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		out[t] = got[t]
	}
	return out, nil
}
