// Package fault is the kit's fault-injection hook: every server and client transport and
// every data client (SQL, cache, queue) asks it, once per call, whether to misbehave. The
// kit only holds the hook; package chaos/faults decides, from rules set through the admin
// API or the config, and installs itself here.
//
// With no injector installed (the default) a call costs one atomic load. With one, the
// injector sees where the call is (Point) and its context (lane, deadline) and returns:
//
//   - nil: go on (after sleeping, for a delay fault);
//   - an error: the call fails with it, as if the remote side or the store had failed;
//   - ErrDrop (queue publish or delivery only): the message is silently lost.
//
// A transport turns an abort (errors.Is(err, ErrAbort)) into a dropped connection where it
// can (HTTP servers) and into Unavailable elsewhere.
//
// Where the kit asks: kit/middleware.Fault, innermost in the default chains of the HTTP and
// gRPC servers and clients (kit/transport/http, kit/transport/grpc); kit/data/sqldb before
// every query, exec and begin; kit/data/cache before every operation; kit/data/mq before
// every publish and every delivery to a handler. Each package documents its Points.
package fault

import (
	"context"
	"errors"
	"sync/atomic"
)

// Kinds of Point.
const (
	HTTP  = "http"
	GRPC  = "grpc"
	SQL   = "sql"
	Cache = "cache"
	Queue = "queue"
)

// Sides of Point.
const (
	Server = "server"
	Client = "client"
)

// Point is where a call is.
type Point struct {
	// Kind is http, grpc, sql, cache or queue.
	Kind string
	// Side is server or client for transports; data clients are always client.
	Side string
	// Service is the service the call runs in (its server, or the service owning the
	// client or store).
	Service string
	// Instance is the server instance a server-side call runs in, when one process serves
	// a service from several servers (replicas such as "note-2"); "" on client calls and
	// when the server has no instance name. It lets a fault slow one replica of several.
	Instance string
	// Target is who a client calls: the remote service for transports, "" for data
	// clients.
	Target string
	// Op is the route or method ("GET /v1/notes/{id}", "/note.v1.Note/GetNote"), the SQL
	// verb (query, exec, begin), the cache operation (get, set, del, ...) or the subject.
	Op string
}

// Injector decides the fault of one call; see the package doc for what it returns.
type Injector interface {
	Inject(ctx context.Context, p Point) error
}

// ErrDrop tells a queue client to lose the message without an error.
var ErrDrop = errors.New("fault: message dropped")

// ErrAbort marks an error as an aborted connection.
var ErrAbort = errors.New("fault: connection aborted")

type holder struct{ i Injector }

var active atomic.Pointer[holder]

// Install makes i the process's injector (nil removes it) and returns a function that puts
// the previous one back.
func Install(i Injector) (restore func()) {
	var h *holder
	if i != nil {
		h = &holder{i}
	}
	prev := active.Swap(h)
	return func() { active.Store(prev) }
}

// Inject asks the installed injector about a call at p; nil when none is installed.
func Inject(ctx context.Context, p Point) error {
	h := active.Load()
	if h == nil {
		return nil
	}
	return h.i.Inject(ctx, p)
}

// Enabled reports whether an injector is installed, for callers that would build a Point
// at some cost.
func Enabled() bool { return active.Load() != nil }
