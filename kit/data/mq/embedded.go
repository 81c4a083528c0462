package mq

import (
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is a NATS server with JetStream running inside this process, listening on a random
// loopback port. It is the default queue of `redline up` and of unit tests.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts an embedded server that stores its streams under dir, creating dir if
// needed, and returns once it accepts connections. Close it to stop it.
func StartEmbedded(dir string) (*Embedded, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mq: embedded store dir: %w", err)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "redline-embedded",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true, // the application owns signals
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("mq: embedded server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("mq: embedded server not ready within 10s")
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("mq: embedded server started without JetStream (store dir %s)", dir)
	}
	return &Embedded{srv: srv}, nil
}

// URL returns the server's client URL, nats://127.0.0.1:PORT, for Open.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Close shuts the server down and waits until it has stopped. Close the queues using it first,
// or they will try to reconnect until closed.
func (e *Embedded) Close() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
