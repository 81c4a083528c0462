// Package service implements the BFF's public JSON API under /v1: it checks tokens,
// validates input at the edge, calls the user and note services over gRPC, and shapes
// their answers for clients. Ids are strings in JSON, so JavaScript clients keep all 64
// bits.
package service

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	notev1 "github.com/redline-dev/redline/api/note/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/middleware"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
)

// BFF holds the clients the routes call.
type BFF struct {
	users  userv1.UserClient
	notes  notev1.NoteClient
	signer *auth.Signer
}

// New returns the BFF over its downstream clients.
func New(users userv1.UserClient, notes notev1.NoteClient, signer *auth.Signer) *BFF {
	return &BFF{users: users, notes: notes, signer: signer}
}

// Register adds the /v1 routes to s; after runs on every route after its own middleware.
func (b *BFF) Register(s *kithttp.Server, after ...middleware.Middleware) {
	open := after
	authed := append([]middleware.Middleware{auth.Require(b.signer)}, after...)
	kithttp.Route(s, "POST /v1/users", b.register, open...)
	kithttp.Route(s, "POST /v1/sessions", b.login, open...)
	kithttp.Route(s, "GET /v1/me", b.me, authed...)
	kithttp.Route(s, "PATCH /v1/me", b.updateMe, authed...)
	kithttp.Route(s, "GET /v1/users/{id}", b.user, open...)
	kithttp.Route(s, "GET /v1/users/{id}/notes", b.notesByAuthor, open...)
	kithttp.Route(s, "POST /v1/notes", b.createNote, authed...)
	kithttp.Route(s, "GET /v1/notes/{id}", b.note, open...)
	kithttp.Route(s, "PATCH /v1/notes/{id}", b.updateNote, authed...)
	kithttp.Route(s, "DELETE /v1/notes/{id}", b.deleteNote, authed...)
	kithttp.Route(s, "GET /v1/tags/{tag}/notes", b.notesByTag, open...)
	kithttp.Route(s, "PUT /v1/me/following/{id}", b.follow, authed...)
	kithttp.Route(s, "DELETE /v1/me/following/{id}", b.unfollow, authed...)
	kithttp.Route(s, "GET /v1/users/{id}/followers", b.followers, open...)
	kithttp.Route(s, "GET /v1/users/{id}/following", b.following, open...)
}

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
	u, err := b.users.Register(ctx, &userv1.RegisterRequest{Username: in.Username, Password: in.Password, DisplayName: in.DisplayName})
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
	r, err := b.users.Login(ctx, &userv1.LoginRequest{Username: in.Username, Password: in.Password})
	if err != nil {
		return nil, err
	}
	return &Session{Token: r.GetToken(), ExpiresAt: time.UnixMilli(r.GetExpiresAtMs()).UTC(), User: userView(r.GetUser())}, nil
}

// Empty is a request with no body and no parameters.
type Empty struct{}

func (b *BFF) me(ctx context.Context, _ *Empty) (*UserView, error) {
	sub, _ := auth.Subject(ctx)
	u, err := b.users.GetUser(ctx, &userv1.GetUserRequest{Id: sub})
	if err != nil {
		return nil, err
	}
	return userView(u), nil
}

func pathID(r *http.Request, name string) (int64, error) {
	v, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || v <= 0 {
		return 0, errs.InvalidArgument("INVALID_ID", "%s %q is not an id: ids are positive integers", name, r.PathValue(name))
	}
	return v, nil
}

// ByID is a request for one resource by its path id.
type ByID struct{ ID int64 }

// Bind implements kithttp.Binder.
func (p *ByID) Bind(r *http.Request) (err error) {
	p.ID, err = pathID(r, "id")
	return err
}

func (b *BFF) user(ctx context.Context, in *ByID) (*UserView, error) {
	u, err := b.users.GetUser(ctx, &userv1.GetUserRequest{Id: in.ID})
	if err != nil {
		return nil, err
	}
	return userView(u), nil
}

// NoteView is a note as clients see it.
type NoteView struct {
	ID        string    `json:"id"`
	AuthorID  string    `json:"author_id"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	Tags      []string  `json:"tags"`
	Media     []string  `json:"media"`
	CreatedAt time.Time `json:"created_at"`
	// Author is filled on single-note reads; it is left out (and Degraded says so) when
	// the user service cannot answer in time, rather than failing the whole read.
	Author   *UserView `json:"author,omitempty"`
	Degraded []string  `json:"degraded,omitempty"`
}

func noteView(n *notev1.NoteInfo) *NoteView {
	tags, media := n.GetTags(), n.GetMedia()
	if tags == nil {
		tags = []string{}
	}
	if media == nil {
		media = []string{}
	}
	return &NoteView{ID: strconv.FormatInt(n.GetId(), 10), AuthorID: strconv.FormatInt(n.GetAuthorId(), 10),
		Title: n.GetTitle(), Body: n.GetBody(), Tags: tags, Media: media, CreatedAt: time.UnixMilli(n.GetCreatedAtMs()).UTC()}
}

// CreateNoteRequest is the body of POST /v1/notes. An Idempotency-Key header makes a
// retried create return the first note instead of a duplicate.
type CreateNoteRequest struct {
	Title          string   `json:"title"`
	Body           string   `json:"body"`
	Tags           []string `json:"tags"`
	Media          []string `json:"media"`
	idempotencyKey string
}

// Bind implements kithttp.Binder.
func (c *CreateNoteRequest) Bind(r *http.Request) error {
	c.idempotencyKey = r.Header.Get("Idempotency-Key")
	return nil
}

// CreatedNote answers POST /v1/notes with 201.
type CreatedNote struct{ NoteView }

// Created implements kithttp.Created.
func (CreatedNote) Created() bool { return true }

func (b *BFF) createNote(ctx context.Context, in *CreateNoteRequest) (*CreatedNote, error) {
	sub, _ := auth.Subject(ctx)
	n, err := b.notes.CreateNote(ctx, &notev1.CreateNoteRequest{AuthorId: sub, Title: in.Title, Body: in.Body,
		Tags: in.Tags, Media: in.Media, IdempotencyKey: in.idempotencyKey})
	if err != nil {
		return nil, err
	}
	return &CreatedNote{*noteView(n)}, nil
}

func (b *BFF) note(ctx context.Context, in *ByID) (*NoteView, error) {
	n, err := b.notes.GetNote(ctx, &notev1.GetNoteRequest{Id: in.ID})
	if err != nil {
		return nil, err
	}
	v := noteView(n)
	if u, err := b.users.GetUser(ctx, &userv1.GetUserRequest{Id: n.GetAuthorId()}); err == nil {
		v.Author = userView(u)
	} else if ctx.Err() == nil {
		v.Degraded = append(v.Degraded, "author")
	} else {
		return nil, err
	}
	return v, nil
}

// ListQuery is the query of a cursor-paginated list: ?cursor=&limit=.
type ListQuery struct {
	ID     int64
	Cursor string
	Limit  int32
}

// MaxLimit is the largest page a client may ask for.
const MaxLimit = 50

// Bind implements kithttp.Binder.
func (q *ListQuery) Bind(r *http.Request) (err error) {
	if q.ID, err = pathID(r, "id"); err != nil {
		return err
	}
	return q.bindPage(r)
}

// bindPage reads ?cursor= and ?limit=.
func (q *ListQuery) bindPage(r *http.Request) error {
	v := r.URL.Query()
	q.Cursor = v.Get("cursor")
	if len(q.Cursor) > 64 || strings.ContainsAny(q.Cursor, " \n") {
		return errs.InvalidArgument("BAD_CURSOR", "cursor is not one this API returned: start again without a cursor")
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxLimit {
			return errs.InvalidArgument("BAD_LIMIT", "limit must be 1 to %d", MaxLimit)
		}
		q.Limit = int32(n)
	}
	return nil
}

// NotePage is one page of notes.
type NotePage struct {
	Notes      []*NoteView `json:"notes"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

func (b *BFF) notesByAuthor(ctx context.Context, in *ListQuery) (*NotePage, error) {
	r, err := b.notes.ListByAuthor(ctx, &notev1.ListByAuthorRequest{AuthorId: in.ID, PageSize: in.Limit, Cursor: in.Cursor})
	return notePage(r, err)
}

func notePage(r *notev1.ListNotesReply, err error) (*NotePage, error) {
	if err != nil {
		return nil, err
	}
	page := &NotePage{Notes: make([]*NoteView, 0, len(r.GetNotes())), NextCursor: r.GetNextCursor()}
	for _, n := range r.GetNotes() {
		page.Notes = append(page.Notes, noteView(n))
	}
	return page, nil
}

// FollowState answers a follow or unfollow: where things stand, and whether this call
// changed them (a repeat does not).
type FollowState struct {
	Following bool `json:"following"`
	Changed   bool `json:"changed"`
}

func (b *BFF) follow(ctx context.Context, in *ByID) (*FollowState, error) {
	sub, _ := auth.Subject(ctx)
	r, err := b.users.Follow(ctx, &userv1.FollowRequest{FollowerId: sub, FolloweeId: in.ID})
	if err != nil {
		return nil, err
	}
	return &FollowState{Following: true, Changed: r.GetChanged()}, nil
}

func (b *BFF) unfollow(ctx context.Context, in *ByID) (*FollowState, error) {
	sub, _ := auth.Subject(ctx)
	r, err := b.users.Unfollow(ctx, &userv1.FollowRequest{FollowerId: sub, FolloweeId: in.ID})
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
	r, err := b.users.ListFollowers(ctx, &userv1.ListFollowsRequest{UserId: in.ID, PageSize: in.Limit, Cursor: in.Cursor})
	return userPage(r, err)
}

func (b *BFF) following(ctx context.Context, in *ListQuery) (*UserPage, error) {
	r, err := b.users.ListFollowing(ctx, &userv1.ListFollowsRequest{UserId: in.ID, PageSize: in.Limit, Cursor: in.Cursor})
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

// UpdateNoteRequest is the body of PATCH /v1/notes/{id}: fields left out stay as they are.
type UpdateNoteRequest struct {
	Title *string   `json:"title"`
	Body  *string   `json:"body"`
	Tags  *[]string `json:"tags"`
	Media *[]string `json:"media"`
	id    int64
}

// Bind implements kithttp.Binder.
func (u *UpdateNoteRequest) Bind(r *http.Request) (err error) {
	u.id, err = pathID(r, "id")
	return err
}

func (b *BFF) updateNote(ctx context.Context, in *UpdateNoteRequest) (*NoteView, error) {
	sub, _ := auth.Subject(ctx)
	req := &notev1.UpdateNoteRequest{Id: in.id, AuthorId: sub, Title: in.Title, Body: in.Body}
	if in.Tags != nil {
		req.SetTags, req.Tags = true, *in.Tags
	}
	if in.Media != nil {
		req.SetMedia, req.Media = true, *in.Media
	}
	n, err := b.notes.UpdateNote(ctx, req)
	if err != nil {
		return nil, err
	}
	return noteView(n), nil
}

// Deleted answers a delete: whether this call changed anything (a repeat does not).
type Deleted struct {
	Deleted bool `json:"deleted"`
	Changed bool `json:"changed"`
}

func (b *BFF) deleteNote(ctx context.Context, in *ByID) (*Deleted, error) {
	sub, _ := auth.Subject(ctx)
	r, err := b.notes.DeleteNote(ctx, &notev1.DeleteNoteRequest{Id: in.ID, AuthorId: sub})
	if err != nil {
		return nil, err
	}
	return &Deleted{Deleted: true, Changed: r.GetChanged()}, nil
}

// TagQuery is GET /v1/tags/{tag}/notes?limit=&cursor=.
type TagQuery struct {
	Tag    string
	Cursor string
	Limit  int32
}

// Bind implements kithttp.Binder.
func (q *TagQuery) Bind(r *http.Request) error {
	q.Tag = r.PathValue("tag")
	var lq ListQuery
	if err := lq.bindPage(r); err != nil {
		return err
	}
	q.Cursor, q.Limit = lq.Cursor, lq.Limit
	return nil
}

func (b *BFF) notesByTag(ctx context.Context, in *TagQuery) (*NotePage, error) {
	r, err := b.notes.ListByTag(ctx, &notev1.ListByTagRequest{Tag: in.Tag, PageSize: in.Limit, Cursor: in.Cursor})
	return notePage(r, err)
}

// UpdateProfileRequest is the body of PATCH /v1/me: fields left out stay as they are.
type UpdateProfileRequest struct {
	DisplayName *string `json:"display_name"`
	Bio         *string `json:"bio"`
}

func (b *BFF) updateMe(ctx context.Context, in *UpdateProfileRequest) (*UserView, error) {
	sub, _ := auth.Subject(ctx)
	u, err := b.users.UpdateProfile(ctx, &userv1.UpdateProfileRequest{Id: sub, DisplayName: in.DisplayName, Bio: in.Bio})
	if err != nil {
		return nil, err
	}
	return userView(u), nil
}
