// Package mqtest helps integration tests share the real NATS server: each test owns a
// stream of its own and removes it when done.
package mqtest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// URL is the NATS server scripts/services.sh starts.
const URL = "nats://127.0.0.1:4222"

// DeleteStreamAtCleanup removes the JetStream stream name from the server at url when t
// ends. A failure is logged, not fatal: the stream ages out with its messages.
func DeleteStreamAtCleanup(t testing.TB, url, name string) {
	t.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Logf("delete stream %s: %v", name, err)
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = js.DeleteStream(ctx, name)
		}
		if err != nil {
			t.Logf("delete stream %s: %v", name, err)
		}
	})
}
