// Package serve runs a server's accept loop in the background for the kit's HTTP, gRPC and
// admin servers: bind synchronously (so bind errors and the chosen port are known at once),
// serve in a goroutine, and hand back Serve's result at stop.
package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Loop is the background accept loop of one server. The zero value is ready to use.
type Loop struct {
	mu   sync.Mutex
	lis  net.Listener
	errc chan error
}

// Start binds addr and runs serve(listener) in a goroutine. name prefixes errors.
func (l *Loop) Start(ctx context.Context, name, addr string, serve func(net.Listener) error) error {
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: listen %s: %w", name, addr, err)
	}
	errc := make(chan error, 1)
	l.mu.Lock()
	l.lis, l.errc = lis, errc
	l.mu.Unlock()
	go func() { errc <- serve(lis) }()
	return nil
}

// Endpoint returns the bound address, or "" before Start.
func (l *Loop) Endpoint() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lis == nil {
		return ""
	}
	return l.lis.Addr().String()
}

// Wait returns what serve returned, once the caller has told the server to stop; closed is
// the server's "stopped on purpose" error (http.ErrServerClosed, grpc.ErrServerStopped),
// reported as nil. It returns nil at once if the loop never started.
func (l *Loop) Wait(closed error) error {
	l.mu.Lock()
	errc := l.errc
	l.mu.Unlock()
	if errc == nil {
		return nil
	}
	if err := <-errc; err != nil && !errors.Is(err, closed) {
		return err
	}
	return nil
}
