// Package bff wires the backend-for-frontend: the public JSON API under /v1, with token
// auth, edge validation and cursor pagination, over the user and note services.
package bff

import (
	notev1 "github.com/redline-dev/redline/api/note/v1"
	userv1 "github.com/redline-dev/redline/api/user/v1"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/middleware"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/services/bff/internal/service"
)

// Name is the service's name in metrics.
const Name = "bff"

// Register adds the /v1 routes to s. after runs on every route after its own middleware
// (after authentication), for limits that need to know the caller, such as quota.
func Register(s *kithttp.Server, users userv1.UserClient, notes notev1.NoteClient, signer *auth.Signer, after ...middleware.Middleware) {
	service.New(users, notes, signer).Register(s, after...)
}
