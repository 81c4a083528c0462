// Package bff wires the backend-for-frontend: the public JSON API under /v1, with token
// auth, edge validation, cursor pagination and note cards aggregated from the domain
// services with batched calls, degrading part by part when a dependency fails.
package bff

import (
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/middleware"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/services/bff/internal/service"
)

// Name is the service's name in metrics.
const Name = "bff"

// Clients are the downstream services the BFF calls; see service.Clients.
type Clients = service.Clients

// Register adds the /v1 routes to s. after runs on every route after its own middleware
// (after authentication), for limits that need to know the caller, such as quota.
func Register(s *kithttp.Server, c Clients, signer *auth.Signer, after ...middleware.Middleware) {
	service.New(c, signer).Register(s, after...)
}
