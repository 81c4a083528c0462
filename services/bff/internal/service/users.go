package service

import (
	"context"
	"strconv"
	"time"

	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/kit/auth"
)

// UserView is a public profile.
type UserView struct {
	ID          string    `json:"id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	Bio         string    `json:"bio"`
	CreatedAt   time.Time `json:"created_at"`
}

func userView(u *userv1.UserInfo) *UserView {
	if u == nil {
		return nil
	}
	return &UserView{ID: strconv.FormatInt(u.GetId(), 10), Username: u.GetUsername(), DisplayName: u.GetDisplayName(),
		Bio: u.GetBio(), CreatedAt: time.UnixMilli(u.GetCreatedAtMs()).UTC()}
}

// RegisterRequest is the body of POST /v1/users.
type RegisterRequest struct {
	Username    string `json:"username"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name"`
}

// CreatedUser answers POST /v1/users with 201.
type CreatedUser struct{ UserView }

// Created implements kithttp.Created.
func (CreatedUser) Created() bool { return true }

func (b *BFF) register(ctx context.Context, in *RegisterRequest) (*CreatedUser, error) {
	u, err := b.Users.Register(ctx, &userv1.RegisterRequest{Username: in.Username, Password: in.Password, DisplayName: in.DisplayName})
	if err != nil {
		return nil, err
	}
	return &CreatedUser{*userView(u)}, nil
}

// LoginRequest is the body of POST /v1/sessions.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Session answers a login.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      *UserView `json:"user"`
}

// Created implements kithttp.Created.
func (Session) Created() bool { return true }

func (b *BFF) login(ctx context.Context, in *LoginRequest) (*Session, error) {
	r, err := b.Users.Login(ctx, &userv1.LoginRequest{Username: in.Username, Password: in.Password})
	if err != nil {
		return nil, err
	}
	return &Session{Token: r.GetToken(), ExpiresAt: time.UnixMilli(r.GetExpiresAtMs()).UTC(), User: userView(r.GetUser())}, nil
}

func (b *BFF) me(ctx context.Context, _ *Empty) (*UserView, error) {
	sub, _ := auth.Subject(ctx)
	u, err := b.Users.GetUser(ctx, &userv1.GetUserRequest{Id: sub})
	if err != nil {
		return nil, err
	}
	return userView(u), nil
}

func (b *BFF) user(ctx context.Context, in *ByID) (*UserView, error) {
	u, err := b.Users.GetUser(ctx, &userv1.GetUserRequest{Id: in.ID})
	if err != nil {
		return nil, err
	}
	return userView(u), nil
}

// FollowState answers a follow or unfollow: where things stand, and whether this call
// changed them (a repeat does not).
type FollowState struct {
	Following bool `json:"following"`
	Changed   bool `json:"changed"`
}

func (b *BFF) follow(ctx context.Context, in *ByID) (*FollowState, error) {
	sub, _ := auth.Subject(ctx)
	r, err := b.Users.Follow(ctx, &userv1.FollowRequest{FollowerId: sub, FolloweeId: in.ID})
	if err != nil {
		return nil, err
	}
	return &FollowState{Following: true, Changed: r.GetChanged()}, nil
}

func (b *BFF) unfollow(ctx context.Context, in *ByID) (*FollowState, error) {
	sub, _ := auth.Subject(ctx)
	r, err := b.Users.Unfollow(ctx, &userv1.FollowRequest{FollowerId: sub, FolloweeId: in.ID})
	if err != nil {
		return nil, err
	}
	return &FollowState{Following: false, Changed: r.GetChanged()}, nil
}

// UserPage is one page of users.
type UserPage struct {
	Users      []*UserView `json:"users"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

func (b *BFF) followers(ctx context.Context, in *ListQuery) (*UserPage, error) {
	r, err := b.Users.ListFollowers(ctx, &userv1.ListFollowsRequest{UserId: in.ID, PageSize: in.Limit, Cursor: in.Cursor})
	return userPage(r, err)
}

func (b *BFF) following(ctx context.Context, in *ListQuery) (*UserPage, error) {
	r, err := b.Users.ListFollowing(ctx, &userv1.ListFollowsRequest{UserId: in.ID, PageSize: in.Limit, Cursor: in.Cursor})
	return userPage(r, err)
}

func userPage(r *userv1.ListFollowsReply, err error) (*UserPage, error) {
	if err != nil {
		return nil, err
	}
	p := &UserPage{Users: make([]*UserView, 0, len(r.GetUsers())), NextCursor: r.GetNextCursor()}
	for _, u := range r.GetUsers() {
		p.Users = append(p.Users, userView(u))
	}
	return p, nil
}

// UpdateProfileRequest is the body of PATCH /v1/me: fields left out stay as they are.
type UpdateProfileRequest struct {
	DisplayName *string `json:"display_name"`
	Bio         *string `json:"bio"`
}

func (b *BFF) updateMe(ctx context.Context, in *UpdateProfileRequest) (*UserView, error) {
	sub, _ := auth.Subject(ctx)
	u, err := b.Users.UpdateProfile(ctx, &userv1.UpdateProfileRequest{Id: sub, DisplayName: in.DisplayName, Bio: in.Bio})
	if err != nil {
		return nil, err
	}
	return userView(u), nil
}
