// Package web holds the dashboard that the admin endpoint serves at /, embedded into the
// binary: readiness, per-route traffic with a rate plot, and the live HA state, all read
// from the admin endpoint's own /readyz and /state.
package web

import _ "embed"

// Dashboard is the dashboard page.
//
//go:embed dashboard.html
var Dashboard []byte
