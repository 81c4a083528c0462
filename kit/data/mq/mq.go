// Package mq provides an at-least-once message queue on NATS JetStream, carrying request
// metadata (kit/meta) and trace context (kit/trace) from publisher to handler, and an
// embedded NATS server for running without one.
//
// Every publish and every delivery passes, after the lane check (see Shadow), the
// fault-injection hook (kit/fault) with the Point {Kind: queue, Side: client, Service:
// WithService's or ForService's name, Op: the subject without the queue's prefix}. On
// Publish, fault.ErrDrop loses the message (Publish returns nil, nothing is stored) and
// another error is returned. On delivery, fault.ErrDrop acks the message without calling the
// handler, and another error counts as a failed handling: the message is delivered again
// after the backoff, or terminated after the max deliveries. With no injector installed the
// hook costs one atomic load.
package mq

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redline-dev/redline/kit/data/internal/lanes"
)

// Errors callers branch on.
var (
	// ErrClosed is returned by calls on a closed Queue.
	ErrClosed = errors.New("mq: closed")
	// ErrInvalidName is returned for a subject or durable name the queue does not accept.
	ErrInvalidName = errors.New("mq: invalid name")
)

// Message is one message as a Handler sees it.
type Message struct {
	// Subject is the subject as published, without the queue's prefix ("note.created").
	Subject string
	Data    []byte
	// Header holds the message headers, one value each, keys in lower case. Metadata and
	// trace context are already in the handler's ctx; they are here too for logging.
	Header map[string]string
}

// Handler processes one message. Its ctx carries the publisher's metadata (request id,
// criticality, lane) and trace context, and a deadline of the queue's ack wait, after which
// the message is delivered again anyway. Returning nil acknowledges the message. Returning an
// error, or panicking, asks for a redelivery after a backoff; after the queue's max deliveries
// the message is terminated and counted in Stats.Terminated.
type Handler func(ctx context.Context, m Message) error

// Queue publishes messages and runs handlers for them.
type Queue interface {
	// Publish sends data on subject with the metadata and trace context of ctx in its headers,
	// and returns once the server has stored it.
	Publish(ctx context.Context, subject string, data []byte) error
	// Subscribe runs h for every message on subject (which may hold the wildcards * and >)
	// until the Subscription stops. Subscriptions with the same durable name share the
	// messages, across processes too, and a durable resumes where it left off. Delivery is
	// at least once: handlers must be idempotent.
	Subscribe(ctx context.Context, subject, durable string, h Handler) (Subscription, error)
	// Ping reports whether the queue can serve.
	Ping(ctx context.Context) error
	// Close stops every subscription, waiting for their handlers, and disconnects.
	Close() error
}

// Subscription is a running subscription.
type Subscription interface {
	// Stop stops fetching messages and waits for handlers in flight to return. Messages
	// fetched but not yet handled go back to the server for redelivery (counting as a
	// delivery). It is safe to call more than once, but not from inside a handler of the
	// subscription, which would wait for itself.
	Stop() error
}

// Option configures Open.
type Option func(*options)

type options struct {
	stream      string
	prefix      string
	maxDeliver  int
	ackWait     time.Duration
	backoff     time.Duration
	concurrency int
	maxAge      time.Duration
	shadow      bool
	service     string
}

func defaultOptions() options {
	return options{
		stream:      "REDLINE",
		prefix:      "redline",
		maxDeliver:  5,
		ackWait:     30 * time.Second,
		backoff:     200 * time.Millisecond,
		concurrency: 1,
		maxAge:      72 * time.Hour,
	}
}

// WithStream names the JetStream stream the queue creates or updates and uses.
// Default: "REDLINE".
func WithStream(name string) Option { return func(o *options) { o.stream = name } }

// WithSubjectPrefix sets the prefix put before every subject; the stream holds prefix.>.
// Default: "redline".
func WithSubjectPrefix(p string) Option {
	return func(o *options) { o.prefix = strings.TrimSuffix(p, ".") }
}

// WithMaxDeliver sets how many times a message is delivered before a failing message is
// terminated. Default: 5.
func WithMaxDeliver(n int) Option { return func(o *options) { o.maxDeliver = n } }

// WithAckWait sets how long a handler has before its message is delivered again; it is also
// the deadline of the handler's ctx. Default: 30s.
func WithAckWait(d time.Duration) Option { return func(o *options) { o.ackWait = d } }

// WithRetryBackoff sets the delay before the first redelivery of a failed message; it doubles
// with every further delivery, up to the ack wait. Default: 200ms.
func WithRetryBackoff(d time.Duration) Option { return func(o *options) { o.backoff = d } }

// WithConcurrency sets how many handlers of one subscription run at once. With 1, messages of
// a subscription are handled one at a time in stream order (redeliveries aside). Default: 1.
func WithConcurrency(n int) Option { return func(o *options) { o.concurrency = n } }

// Shadow opens the shadow twin of the queue, for lane traffic: subjects under
// "shadow.<prefix>" in the stream "<stream>_SHADOW", so no baseline subscription can
// receive its messages. Its handlers and its publishes are always in a lane: a message
// without one gets kit/meta.ShadowLane.
//
// A queue opened without Shadow is a baseline queue: Publish in a lane fails with ErrLane,
// and a message that arrives with a lane is terminated unhandled (both counted in
// redline_lane_baseline_refused_total{client="mq"}).
func Shadow() Option { return func(o *options) { o.shadow = true } }

// WithService names the service that owns the queue, for the fault-injection hook
// (kit/fault): its Points carry the name as Service. ForService names a shared queue's view
// instead. Default: "".
func WithService(name string) Option { return func(o *options) { o.service = name } }

// WithMaxAge sets how long the stream keeps messages, handled or not. Default: 72h.
func WithMaxAge(d time.Duration) Option { return func(o *options) { o.maxAge = d } }

// Stats counts what a queue did since Open.
type Stats struct {
	Published  uint64 // messages stored by the server
	Handled    uint64 // handler calls that returned nil; the message was acked
	Failed     uint64 // handler calls that returned an error or panicked, and injected delivery faults
	Terminated uint64 // messages given up on after the max deliveries
}

// validSubject reports whether s is a subject of dot-separated non-empty tokens without
// blanks; with wildcards, * may be any whole token and > the last.
func validSubject(s string, wildcards bool) bool {
	if s == "" {
		return false
	}
	tokens := strings.Split(s, ".")
	for i, tok := range tokens {
		switch {
		case tok == "":
			return false
		case tok == "*" || tok == ">" && i == len(tokens)-1:
			if !wildcards {
				return false
			}
		case strings.ContainsAny(tok, "*> \t\r\n"):
			return false
		}
	}
	return true
}

// validDurable reports whether s can name a durable consumer.
func validDurable(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ErrLane is returned by a baseline queue's Publish in a lane.
var ErrLane = lanes.ErrBaseline
