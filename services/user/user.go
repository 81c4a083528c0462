// Package user wires the user service: accounts with bcrypt-hashed passwords, logins that
// return signed tokens, and cached profile reads.
package user

import (
	"context"
	"fmt"
	"time"

	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/data/cache"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/services/user/internal/biz"
	"github.com/redline-dev/redline/services/user/internal/data"
	"github.com/redline-dev/redline/services/user/internal/service"
	"github.com/redline-dev/redline/services/user/migrations"
)

// Name is the service's name in the registry and in metrics.
const Name = "user"

// Idempotent lists the methods callers may retry: reads, and Follow/Unfollow, which are
// idempotent by design. Register and Login are not:
// a retried Register can fail with USERNAME_TAKEN after the first one succeeded.
var Idempotent = []string{userv1.User_GetUser_FullMethodName, userv1.User_UpdateProfile_FullMethodName, userv1.User_Follow_FullMethodName,
	userv1.User_Unfollow_FullMethodName, userv1.User_ListFollowers_FullMethodName, userv1.User_ListFollowing_FullMethodName}

// Config is the user service's own configuration.
type Config struct {
	// TokenTTL is how long a login token lasts; the default is 24 h.
	TokenTTL time.Duration `koanf:"token_ttl"`
	// BcryptCost is the password hashing cost; the default is bcrypt's (10).
	BcryptCost int `koanf:"bcrypt_cost"`
}

// New migrates db and returns the gRPC service.
func New(ctx context.Context, db *sqldb.DB, c cache.Cache, signer *auth.Signer, cfg Config) (userv1.UserServer, error) {
	if err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
		return nil, fmt.Errorf("user: migrate: %w", err)
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 24 * time.Hour
	}
	repo := data.NewRepo(db, c)
	uc := biz.NewUsecase(repo, repo, signer, cfg.TokenTTL, cfg.BcryptCost)
	return service.New(uc), nil
}
