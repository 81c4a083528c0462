// Package data implements the user service's repository on kit/data: SQL for the truth,
// the cache for profile reads (cache-aside, filled with set-if-absent, deleted on write),
// and singleflight so a burst of reads for one cold profile costs one query.
package data

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/redline-dev/redline/kit/data/cache"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/user/internal/biz"
)

// ProfileTTL bounds how stale a cached profile can be if an invalidation is lost.
const ProfileTTL = 10 * time.Minute

// Repo implements biz.Repo.
type Repo struct {
	db    *sqldb.DB
	cache cache.Cache
	sf    singleflight.Group
}

var _ biz.Repo = (*Repo)(nil)

// NewRepo returns a repository over db and c.
func NewRepo(db *sqldb.DB, c cache.Cache) *Repo { return &Repo{db: db, cache: c} }

const cols = `id, username, display_name, bio, password_hash, created_at`

// Create implements biz.Repo.
func (r *Repo) Create(ctx context.Context, u *biz.User) error {
	res, err := r.db.ExecContext(ctx, `INSERT INTO users (`+cols+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (username) DO NOTHING`,
		u.ID, u.Username, u.DisplayName, u.Bio, string(u.PasswordHash), u.CreatedAt.UnixMilli())
	if err != nil {
		return errs.Internal(fmt.Errorf("insert user: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return biz.ErrUsernameTaken
	}
	return nil
}

func scan(row interface{ Scan(...any) error }) (*biz.User, error) {
	var u biz.User
	var hash string
	var created int64
	if err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Bio, &hash, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, biz.ErrNotFound
		}
		return nil, errs.Internal(fmt.Errorf("scan user: %w", err))
	}
	u.PasswordHash = []byte(hash)
	u.CreatedAt = time.UnixMilli(created).UTC()
	return &u, nil
}

// ByUsername implements biz.Repo. Logins always read the database: the password hash is
// never cached.
func (r *Repo) ByUsername(ctx context.Context, username string) (*biz.User, error) {
	return scan(r.db.QueryRowContext(ctx, `SELECT `+cols+` FROM users WHERE username = ?`, username))
}

type cachedProfile struct {
	ID          int64  `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Bio         string `json:"bio"`
	CreatedAt   int64  `json:"created_at"`
}

func profileKey(id int64) string { return "user:profile:" + strconv.FormatInt(id, 10) }

// ByID implements biz.Repo with cache-aside. The returned user has no password hash.
func (r *Repo) ByID(ctx context.Context, id int64) (*biz.User, error) {
	key := profileKey(id)
	if b, err := r.cache.Get(ctx, key); err == nil {
		var p cachedProfile
		if json.Unmarshal(b, &p) == nil {
			return fromCached(p), nil
		}
	}
	// A cache error is not the caller's problem: fall through to the database.
	v, err, _ := r.sf.Do(key, func() (any, error) {
		u, err := scan(r.db.QueryRowContext(ctx, `SELECT `+cols+` FROM users WHERE id = ?`, id))
		if err != nil {
			return nil, err
		}
		return r.fill(ctx, u), nil
	})
	if err != nil {
		return nil, err
	}
	return fromCached(v.(cachedProfile)), nil
}

// ByIDs implements biz.Repo: one cache round trip for all ids, one query for the misses,
// and set-if-absent fills for what the query found.
func (r *Repo) ByIDs(ctx context.Context, ids []int64) ([]*biz.User, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = profileKey(id)
	}
	found := make(map[int64]*biz.User, len(ids))
	var missing []int64
	vals, err := r.cache.MGet(ctx, keys...)
	for i, id := range ids {
		var p cachedProfile
		if err == nil && vals[i] != nil && json.Unmarshal(vals[i], &p) == nil {
			found[id] = fromCached(p)
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		marks, args := sqldb.In(missing)
		rows, err := r.db.QueryContext(ctx, `SELECT `+cols+` FROM users WHERE id IN (`+marks+`)`, args...)
		if err != nil {
			return nil, errs.Internal(fmt.Errorf("select users: %w", err))
		}
		defer rows.Close()
		for rows.Next() {
			u, err := scan(rows)
			if err != nil {
				return nil, err
			}
			found[u.ID] = fromCached(r.fill(ctx, u))
		}
		if err := rows.Err(); err != nil {
			return nil, errs.Internal(fmt.Errorf("select users: %w", err))
		}
	}
	out := make([]*biz.User, 0, len(found))
	for _, id := range ids {
		if u, ok := found[id]; ok {
			out = append(out, u)
		}
	}
	return out, nil
}

// UpdateProfile implements biz.Repo: the row first, then the cache is overwritten with the
// new profile, so the next read sees it without a database trip. If the cache write fails
// the stale entry is deleted; if that fails too, ProfileTTL bounds the staleness.
func (r *Repo) UpdateProfile(ctx context.Context, u *biz.User) error {
	res, err := r.db.ExecContext(ctx, `UPDATE users SET display_name = ?, bio = ? WHERE id = ?`, u.DisplayName, u.Bio, u.ID)
	if err != nil {
		return errs.Internal(fmt.Errorf("update profile: %w", err))
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return biz.ErrNotFound
	}
	b, err := json.Marshal(toCached(u))
	if err == nil {
		err = r.cache.Set(ctx, profileKey(u.ID), b, ProfileTTL)
	}
	if err != nil {
		_ = r.cache.Del(ctx, profileKey(u.ID))
	}
	return nil
}

func toCached(u *biz.User) cachedProfile {
	return cachedProfile{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Bio: u.Bio, CreatedAt: u.CreatedAt.UnixMilli()}
}

// fill puts a profile just read from the database into the cache, set-if-absent: a
// concurrent writer's overwrite is never replaced by an older read.
func (r *Repo) fill(ctx context.Context, u *biz.User) cachedProfile {
	p := toCached(u)
	if b, err := json.Marshal(p); err == nil {
		_, _ = r.cache.SetNX(ctx, profileKey(u.ID), b, ProfileTTL)
	}
	return p
}

func fromCached(p cachedProfile) *biz.User {
	return &biz.User{ID: p.ID, Username: p.Username, DisplayName: strings.Clone(p.DisplayName), Bio: p.Bio,
		CreatedAt: time.UnixMilli(p.CreatedAt).UTC()}
}
