// Package event is the contract of the domain events the services put on the queue
// (kit/data/mq): one subject per kind and one JSON payload type per subject. Producers and
// consumers import it, so a field added here is added for both ends.
//
// Delivery is at least once and unordered across producers: consumers are idempotent, keyed
// by the payload's id, and use Version (milliseconds of the change, monotonic per entity) to
// ignore a stale update that arrives after a newer one.
package event

import (
	"encoding/json"
	"fmt"
)

// Subjects, without the queue's prefix.
const (
	// Note carries a NoteEvent for every note created, updated or deleted.
	Note = "note.changed"
	// Product carries a ProductEvent for every SPU created, updated or deleted.
	Product = "product.changed"
	// Comment carries a CommentCommand: comments are written through the queue.
	Comment = "comment.command"
)

// Op is what happened to an entity.
type Op string

// Ops.
const (
	Created Op = "created"
	Updated Op = "updated"
	Deleted Op = "deleted"
)

// NoteEvent describes a note after a change. A Deleted event carries the id, the author and
// Version; the other fields may be empty.
type NoteEvent struct {
	Op         Op       `json:"op"`
	ID         int64    `json:"id"`
	AuthorID   int64    `json:"author_id"`
	Title      string   `json:"title,omitempty"`
	Body       string   `json:"body,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	ProductIDs []int64  `json:"product_ids,omitempty"`
	CreatedMS  int64    `json:"created_ms"`
	Version    int64    `json:"version"`
}

// ProductEvent describes an SPU after a change.
type ProductEvent struct {
	Op          Op     `json:"op"`
	ID          int64  `json:"id"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// MinPrice is the lowest SKU price in minor units of Currency.
	MinPrice int64  `json:"min_price,omitempty"`
	Currency string `json:"currency,omitempty"`
	Version  int64  `json:"version"`
}

// CommentCommand asks the comment service to create or delete a comment. ID is assigned by
// the producer, so a redelivered command is recognised.
type CommentCommand struct {
	Op       Op     `json:"op"`
	ID       int64  `json:"id"`
	NoteID   int64  `json:"note_id"`
	UserID   int64  `json:"user_id"`
	RootID   int64  `json:"root_id,omitempty"`
	ParentID int64  `json:"parent_id,omitempty"`
	Body     string `json:"body,omitempty"`
	AtMS     int64  `json:"at_ms"`
}

// Encode marshals an event payload.
func Encode(v any) ([]byte, error) { return json.Marshal(v) }

// Decode unmarshals an event payload, naming the subject in its error. A payload that does
// not decode will not decode on redelivery either: callers ack it and count it.
func Decode(subject string, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("event %s: %w", subject, err)
	}
	return nil
}
