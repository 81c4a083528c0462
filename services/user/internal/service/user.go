// Package service maps the user service's gRPC API onto biz.
package service

import (
	"context"

	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/services/user/internal/biz"
)

// Service implements userv1.UserServer.
type Service struct {
	userv1.UnimplementedUserServer
	uc *biz.Usecase
}

// New returns the gRPC service over uc.
func New(uc *biz.Usecase) *Service { return &Service{uc: uc} }

func toPB(u *biz.User) *userv1.UserInfo {
	return &userv1.UserInfo{Id: u.ID, Username: u.Username, DisplayName: u.DisplayName, Bio: u.Bio,
		CreatedAtMs: u.CreatedAt.UnixMilli()}
}

// Register implements userv1.UserServer.
func (s *Service) Register(ctx context.Context, in *userv1.RegisterRequest) (*userv1.UserInfo, error) {
	u, err := s.uc.Register(ctx, in.GetUsername(), in.GetPassword(), in.GetDisplayName())
	if err != nil {
		return nil, err
	}
	return toPB(u), nil
}

// Login implements userv1.UserServer.
func (s *Service) Login(ctx context.Context, in *userv1.LoginRequest) (*userv1.LoginReply, error) {
	tok, exp, u, err := s.uc.Login(ctx, in.GetUsername(), in.GetPassword())
	if err != nil {
		return nil, err
	}
	return &userv1.LoginReply{Token: tok, ExpiresAtMs: exp.UnixMilli(), User: toPB(u)}, nil
}

// GetUser implements userv1.UserServer.
func (s *Service) GetUser(ctx context.Context, in *userv1.GetUserRequest) (*userv1.UserInfo, error) {
	u, err := s.uc.Get(ctx, in.GetId())
	if err != nil {
		return nil, err
	}
	return toPB(u), nil
}

// GetUsers implements userv1.UserServer.
func (s *Service) GetUsers(ctx context.Context, in *userv1.GetUsersRequest) (*userv1.GetUsersReply, error) {
	users, err := s.uc.GetMany(ctx, in.GetIds())
	if err != nil {
		return nil, err
	}
	out := &userv1.GetUsersReply{Users: make([]*userv1.UserInfo, len(users))}
	for i, u := range users {
		out.Users[i] = toPB(u)
	}
	return out, nil
}

// Follow implements userv1.UserServer.
func (s *Service) Follow(ctx context.Context, in *userv1.FollowRequest) (*userv1.FollowReply, error) {
	changed, err := s.uc.Follow(ctx, in.GetFollowerId(), in.GetFolloweeId())
	if err != nil {
		return nil, err
	}
	return &userv1.FollowReply{Changed: changed}, nil
}

// Unfollow implements userv1.UserServer.
func (s *Service) Unfollow(ctx context.Context, in *userv1.FollowRequest) (*userv1.FollowReply, error) {
	changed, err := s.uc.Unfollow(ctx, in.GetFollowerId(), in.GetFolloweeId())
	if err != nil {
		return nil, err
	}
	return &userv1.FollowReply{Changed: changed}, nil
}

// ListFollowers implements userv1.UserServer.
func (s *Service) ListFollowers(ctx context.Context, in *userv1.ListFollowsRequest) (*userv1.ListFollowsReply, error) {
	users, next, err := s.uc.Followers(ctx, in.GetUserId(), int(in.GetPageSize()), in.GetCursor())
	return listReply(users, next, err)
}

// ListFollowing implements userv1.UserServer.
func (s *Service) ListFollowing(ctx context.Context, in *userv1.ListFollowsRequest) (*userv1.ListFollowsReply, error) {
	users, next, err := s.uc.Following(ctx, in.GetUserId(), int(in.GetPageSize()), in.GetCursor())
	return listReply(users, next, err)
}

func listReply(users []*biz.User, next string, err error) (*userv1.ListFollowsReply, error) {
	if err != nil {
		return nil, err
	}
	out := &userv1.ListFollowsReply{NextCursor: next, Users: make([]*userv1.UserInfo, 0, len(users))}
	for _, u := range users {
		out.Users = append(out.Users, toPB(u))
	}
	return out, nil
}

// UpdateProfile implements userv1.UserServer.
func (s *Service) UpdateProfile(ctx context.Context, in *userv1.UpdateProfileRequest) (*userv1.UserInfo, error) {
	u, err := s.uc.UpdateProfile(ctx, in.GetId(), in.DisplayName, in.Bio)
	if err != nil {
		return nil, err
	}
	return toPB(u), nil
}
