// Package biz holds the user service's rules: who may register, how passwords are kept,
// and how a login becomes a token. It owns the repository interface that data implements.
package biz

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/id"
)

// User is an account. PasswordHash never leaves this service.
type User struct {
	ID           int64
	Username     string
	DisplayName  string
	Bio          string
	PasswordHash []byte
	CreatedAt    time.Time
}

// Repo stores users.
type Repo interface {
	// Create stores u; ErrUsernameTaken when the username exists.
	Create(ctx context.Context, u *User) error
	// ByUsername returns the user with the username; ErrNotFound when absent.
	ByUsername(ctx context.Context, username string) (*User, error)
	// ByID returns the user with the id; ErrNotFound when absent.
	ByID(ctx context.Context, id int64) (*User, error)
	// ByIDs returns the users with the ids that exist, in ids order.
	ByIDs(ctx context.Context, ids []int64) ([]*User, error)
	// UpdateProfile stores u's display name and bio.
	UpdateProfile(ctx context.Context, u *User) error
}

// Errors callers branch on.
var (
	ErrNotFound        = errs.NotFound("USER_NOT_FOUND", "no such user")
	ErrUsernameTaken   = errs.AlreadyExists("USERNAME_TAKEN", "that username is taken: pick another")
	ErrBadCredentials  = errs.Unauthenticated("BAD_CREDENTIALS", "wrong username or password")
	errInvalidUsername = errs.InvalidArgument("INVALID_USERNAME", "username must be 3 to 32 characters of a-z, 0-9 and _")
	errInvalidPassword = errs.InvalidArgument("INVALID_PASSWORD", "password must be 8 to 72 bytes")
	errInvalidName     = errs.InvalidArgument("INVALID_DISPLAY_NAME", "display_name must be 1 to 64 characters")
	errInvalidBio      = errs.InvalidArgument("INVALID_BIO", "bio must be at most 500 characters")
)

// Usecase is the user service's logic.
type Usecase struct {
	repo     Repo
	follows  FollowRepo
	signer   *auth.Signer
	tokenTTL time.Duration
	cost     int
	dummy    []byte
}

// NewUsecase returns the logic over repo. cost is the bcrypt cost (bcrypt.DefaultCost
// when 0).
func NewUsecase(repo Repo, follows FollowRepo, signer *auth.Signer, tokenTTL time.Duration, cost int) *Usecase {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	dummy, _ := bcrypt.GenerateFromPassword([]byte("not-a-real-password"), cost)
	return &Usecase{repo: repo, follows: follows, signer: signer, tokenTTL: tokenTTL, cost: cost, dummy: dummy}
}

func validUsername(s string) bool {
	if len(s) < 3 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Register creates an account with a bcrypt-hashed password.
func (uc *Usecase) Register(ctx context.Context, username, password, displayName string) (*User, error) {
	username = strings.ToLower(strings.TrimSpace(username))
	switch {
	case !validUsername(username):
		return nil, errInvalidUsername
	case len(password) < 8 || len(password) > 72:
		return nil, errInvalidPassword
	case utf8.RuneCountInString(displayName) > 64 || !utf8.ValidString(displayName):
		return nil, errInvalidName
	}
	if displayName == "" {
		displayName = username
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), uc.cost)
	if err != nil {
		return nil, errs.Internal(err)
	}
	u := &User{ID: id.New(), Username: username, DisplayName: displayName, PasswordHash: hash,
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := uc.repo.Create(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// Login checks the password and returns a signed token. Unknown users cost the same
// bcrypt work as known ones, so timing does not reveal which usernames exist.
func (uc *Usecase) Login(ctx context.Context, username, password string) (string, time.Time, *User, error) {
	u, err := uc.repo.ByUsername(ctx, strings.ToLower(strings.TrimSpace(username)))
	if errors.Is(err, ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword(uc.dummy, []byte(password))
		return "", time.Time{}, nil, ErrBadCredentials
	}
	if err != nil {
		return "", time.Time{}, nil, err
	}
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)) != nil {
		return "", time.Time{}, nil, ErrBadCredentials
	}
	tok, exp := uc.signer.Sign(u.ID, uc.tokenTTL)
	return tok, exp, u, nil
}

// Get returns a profile.
func (uc *Usecase) Get(ctx context.Context, id int64) (*User, error) {
	if id <= 0 {
		return nil, ErrNotFound
	}
	return uc.repo.ByID(ctx, id)
}

// MaxBatch is the most ids GetMany takes.
const MaxBatch = 100

var errTooManyIDs = errs.InvalidArgument("TOO_MANY_IDS", "ask for at most %d users at once", MaxBatch)

// GetMany returns the profiles of the ids that exist, in ids order, each once.
func (uc *Usecase) GetMany(ctx context.Context, ids []int64) ([]*User, error) {
	if len(ids) > MaxBatch {
		return nil, errTooManyIDs
	}
	seen := make(map[int64]bool, len(ids))
	uniq := ids[:0:0]
	for _, id := range ids {
		if id > 0 && !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	if len(uniq) == 0 {
		return nil, nil
	}
	return uc.repo.ByIDs(ctx, uniq)
}

// UpdateProfile changes the display name and bio that are given (nil keeps the old one).
func (uc *Usecase) UpdateProfile(ctx context.Context, id int64, displayName, bio *string) (*User, error) {
	u, err := uc.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if displayName != nil {
		if n := utf8.RuneCountInString(*displayName); n == 0 || n > 64 || !utf8.ValidString(*displayName) {
			return nil, errInvalidName
		}
		u.DisplayName = *displayName
	}
	if bio != nil {
		if utf8.RuneCountInString(*bio) > 500 || !utf8.ValidString(*bio) {
			return nil, errInvalidBio
		}
		u.Bio = *bio
	}
	if err := uc.repo.UpdateProfile(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}
