package mq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Scan reads the queue's stream from since onwards, oldest first, calling fn with each
// message (subject without the queue's prefix) until fn returns false, limit messages were
// read (limit <= 0: no limit) or the stream's end at the time of the call. It consumes
// nothing: durables are untouched. Leak reports use it to look for a stress run's sentinel
// in baseline messages.
func (q *JetStream) Scan(ctx context.Context, since time.Time, limit int, fn func(subject string, header map[string]string, data []byte) bool) error {
	if q.isClosed() {
		return ErrClosed
	}
	stream, err := q.js.Stream(ctx, q.o.stream)
	if err != nil {
		return fmt.Errorf("mq: scan %s: %w", q.o.stream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("mq: scan %s: %w", q.o.stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 || last == 0 {
		return nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since})
	if err != nil {
		return fmt.Errorf("mq: scan %s: %w", q.o.stream, err)
	}
	seen, done := 0, false
	for !done {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return fmt.Errorf("mq: scan %s: %w", q.o.stream, err)
		}
		n := 0
		var scanErr error
		// The batch is read to its end even after fn is done, so its fetch returns.
		for msg := range batch.Messages() {
			n++
			if done || scanErr != nil {
				continue
			}
			md, err := msg.Metadata()
			if err != nil {
				scanErr = err
				continue
			}
			header := map[string]string{}
			for k, vs := range msg.Headers() {
				if len(vs) > 0 {
					header[strings.ToLower(k)] = vs[0]
				}
			}
			if limit > 0 && seen >= limit {
				done = true
				continue
			}
			seen++
			if !fn(strings.TrimPrefix(msg.Subject(), q.o.prefix+"."), header, msg.Data()) || md.Sequence.Stream >= last {
				done = true
			}
		}
		if scanErr != nil {
			return fmt.Errorf("mq: scan %s: %w", q.o.stream, scanErr)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("mq: scan %s: %w", q.o.stream, err)
		}
		if n == 0 {
			return nil // nothing since `since`
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}
