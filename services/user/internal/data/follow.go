package data

import (
	"context"
	"fmt"
	"time"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/user/internal/biz"
)

var _ biz.FollowRepo = (*Repo)(nil)

// Follow implements biz.FollowRepo.
func (r *Repo) Follow(ctx context.Context, follower, followee, seq int64, at time.Time) (bool, error) {
	res, err := r.db.ExecContext(ctx, `INSERT INTO follows (follower_id, followee_id, seq, created_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (follower_id, followee_id) DO NOTHING`, follower, followee, seq, at.UnixMilli())
	if err != nil {
		return false, errs.Internal(fmt.Errorf("insert follow: %w", err))
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Unfollow implements biz.FollowRepo.
func (r *Repo) Unfollow(ctx context.Context, follower, followee int64) (bool, error) {
	res, err := r.db.ExecContext(ctx, `DELETE FROM follows WHERE follower_id = ? AND followee_id = ?`, follower, followee)
	if err != nil {
		return false, errs.Internal(fmt.Errorf("delete follow: %w", err))
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Followers implements biz.FollowRepo.
func (r *Repo) Followers(ctx context.Context, user, before int64, limit int) ([]*biz.User, []int64, error) {
	return r.follows(ctx, `SELECT u.id, u.username, u.display_name, u.bio, '', u.created_at, f.seq
		FROM follows f JOIN users u ON u.id = f.follower_id
		WHERE f.followee_id = ? AND f.seq < ? ORDER BY f.seq DESC LIMIT ?`, user, before, limit)
}

// Following implements biz.FollowRepo.
func (r *Repo) Following(ctx context.Context, user, before int64, limit int) ([]*biz.User, []int64, error) {
	return r.follows(ctx, `SELECT u.id, u.username, u.display_name, u.bio, '', u.created_at, f.seq
		FROM follows f JOIN users u ON u.id = f.followee_id
		WHERE f.follower_id = ? AND f.seq < ? ORDER BY f.seq DESC LIMIT ?`, user, before, limit)
}

func (r *Repo) follows(ctx context.Context, query string, args ...any) ([]*biz.User, []int64, error) {
	rows, err := r.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, errs.Internal(fmt.Errorf("list follows: %w", err))
	}
	defer rows.Close()
	var users []*biz.User
	var seqs []int64
	for rows.Next() {
		var u biz.User
		var hash string
		var created, seq int64
		if err := rows.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Bio, &hash, &created, &seq); err != nil {
			return nil, nil, errs.Internal(fmt.Errorf("scan follow: %w", err))
		}
		u.CreatedAt = time.UnixMilli(created).UTC()
		users = append(users, &u)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, errs.Internal(fmt.Errorf("list follows: %w", err))
	}
	return users, seqs, nil
}
