package user_test

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/data/cache"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/services/user"
)

func newService(t *testing.T) (userv1.UserServer, *sqldb.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := cache.NewMemory()
	t.Cleanup(func() { c.Close() })
	signer, _ := auth.NewSigner(strings.Repeat("k", 32), nil)
	svc, err := user.New(ctx, db, c, signer, user.Config{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	return svc, db
}

func TestAccounts(t *testing.T) {
	ctx := context.Background()
	svc, db := newService(t)
	u, err := svc.Register(ctx, &userv1.RegisterRequest{Username: "Alice", Password: "correct horse battery"})
	if err != nil || u.GetUsername() != "alice" || u.GetDisplayName() != "alice" {
		t.Fatalf("Register = %v, %v; want lower-cased alice with a default display name", u, err)
	}
	var stored string
	if err := db.QueryRowContext(ctx, "SELECT password_hash FROM users WHERE id = ?", u.GetId()).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, "horse") || bcrypt.CompareHashAndPassword([]byte(stored), []byte("correct horse battery")) != nil {
		t.Fatalf("stored password %q is not a bcrypt hash of it", stored)
	}
	if _, err := svc.Register(ctx, &userv1.RegisterRequest{Username: "alice", Password: "another password"}); errs.Reason(err) != "USERNAME_TAKEN" {
		t.Fatalf("duplicate Register = %v; want USERNAME_TAKEN", err)
	}
	login, err := svc.Login(ctx, &userv1.LoginRequest{Username: "alice", Password: "correct horse battery"})
	if err != nil || login.GetToken() == "" || login.GetUser().GetId() != u.GetId() {
		t.Fatalf("Login = %v, %v", login, err)
	}
	for _, bad := range []*userv1.LoginRequest{{Username: "alice", Password: "wrong password"}, {Username: "nobody", Password: "whatever pw"}} {
		if _, err := svc.Login(ctx, bad); errs.Reason(err) != "BAD_CREDENTIALS" {
			t.Fatalf("Login(%s) = %v; want BAD_CREDENTIALS, the same for unknown users", bad.GetUsername(), err)
		}
	}
	for i := 0; i < 2; i++ { // the second read comes from the cache
		got, err := svc.GetUser(ctx, &userv1.GetUserRequest{Id: u.GetId()})
		if err != nil || got.GetUsername() != "alice" {
			t.Fatalf("GetUser #%d = %v, %v", i, got, err)
		}
	}
	if _, err := svc.GetUser(ctx, &userv1.GetUserRequest{Id: 404}); errs.Reason(err) != "USER_NOT_FOUND" {
		t.Fatalf("GetUser(missing) = %v; want USER_NOT_FOUND", err)
	}
}

func TestRegisterValidation(t *testing.T) {
	svc, _ := newService(t)
	cases := map[string]*userv1.RegisterRequest{
		"INVALID_USERNAME":     {Username: "a b", Password: "long enough pw"},
		"INVALID_PASSWORD":     {Username: "bob", Password: "short"},
		"INVALID_DISPLAY_NAME": {Username: "bob", Password: "long enough pw", DisplayName: strings.Repeat("x", 65)},
	}
	for reason, req := range cases {
		if _, err := svc.Register(context.Background(), req); errs.Reason(err) != reason {
			t.Errorf("Register(%v) = %v; want %s", req, err, reason)
		}
	}
}

func TestUpdateProfileOverwritesTheCache(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	u, err := svc.Register(ctx, &userv1.RegisterRequest{Username: "dana", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GetUser(ctx, &userv1.GetUserRequest{Id: u.GetId()}); err != nil { // fills the cache
		t.Fatal(err)
	}
	bio := "likes Go"
	if _, err := svc.UpdateProfile(ctx, &userv1.UpdateProfileRequest{Id: u.GetId(), Bio: &bio}); err != nil {
		t.Fatal(err)
	}
	got, err := svc.GetUser(ctx, &userv1.GetUserRequest{Id: u.GetId()})
	if err != nil || got.GetBio() != "likes Go" || got.GetDisplayName() != "dana" {
		t.Fatalf("GetUser after update = %v, %v; want the new bio at once and the name kept", got, err)
	}
	empty := ""
	if _, err := svc.UpdateProfile(ctx, &userv1.UpdateProfileRequest{Id: u.GetId(), DisplayName: &empty}); errs.Reason(err) != "INVALID_DISPLAY_NAME" {
		t.Fatalf("empty display name = %v; want INVALID_DISPLAY_NAME", err)
	}
}

func TestGetUsersBatch(t *testing.T) {
	ctx := context.Background()
	svc, db := newService(t)
	var ids []int64
	for _, name := range []string{"ann", "bob", "cat"} {
		u, err := svc.Register(ctx, &userv1.RegisterRequest{Username: name, Password: "correct horse battery"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.GetId())
	}
	// bob's profile is cached with a name the database does not have: a batch read must
	// take the cached one and read the other two from the database.
	if _, err := svc.GetUser(ctx, &userv1.GetUserRequest{Id: ids[1]}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "UPDATE users SET display_name = 'changed' WHERE id = ?", ids[1]); err != nil {
		t.Fatal(err)
	}
	got, err := svc.GetUsers(ctx, &userv1.GetUsersRequest{Ids: []int64{ids[2], 404, ids[1], ids[0], ids[2]}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range got.GetUsers() {
		names = append(names, u.GetUsername()+"/"+u.GetDisplayName())
	}
	if want := "cat/cat bob/bob ann/ann"; strings.Join(names, " ") != want {
		t.Fatalf("GetUsers = %v; want %s (request order, missing left out, duplicates once, cache first)", names, want)
	}
	if _, err := svc.GetUsers(ctx, &userv1.GetUsersRequest{Ids: make([]int64, 101)}); errs.Reason(err) != "TOO_MANY_IDS" {
		t.Fatalf("101 ids = %v; want TOO_MANY_IDS", err)
	}
	if r, err := svc.GetUsers(ctx, &userv1.GetUsersRequest{}); err != nil || len(r.GetUsers()) != 0 {
		t.Fatalf("no ids = %v, %v; want an empty answer", r, err)
	}
}
