// Package id generates time-ordered 63-bit ids, so rows sort by creation without a
// database sequence and ids never collide across processes that share a store.
//
// Layout: 41 bits of milliseconds since 2024-01-01 UTC, 10 bits of process node (random at
// start), 12 bits of sequence per millisecond.
package id

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

const (
	epochMs  = 1704067200000 // 2024-01-01T00:00:00Z
	nodeBits = 10
	seqBits  = 12
	seqMask  = 1<<seqBits - 1
)

// Generator makes ids for one node.
type Generator struct {
	mu     sync.Mutex
	node   int64
	lastMs int64
	seq    int64
	now    func() time.Time
}

// NewGenerator returns a generator for node (0..1023).
func NewGenerator(node int64, now func() time.Time) *Generator {
	if now == nil {
		now = time.Now
	}
	return &Generator{node: node & (1<<nodeBits - 1), now: now}
}

var std = NewGenerator(randomNode(), nil)

func randomNode() int64 {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return int64(binary.BigEndian.Uint16(b[:]))
}

// New returns a new id from the process generator.
func New() int64 { return std.Next() }

// Next returns the next id. Within one millisecond it counts; when the sequence runs out
// it borrows the next millisecond, so ids stay unique and increasing.
func (g *Generator) Next() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := g.now().UnixMilli() - epochMs
	if ms <= g.lastMs {
		ms = g.lastMs
		g.seq++
		if g.seq > seqMask {
			g.seq = 0
			ms++
		}
	} else {
		g.seq = 0
	}
	g.lastMs = ms
	return ms<<(nodeBits+seqBits) | g.node<<seqBits | g.seq
}

// Time returns when id was made.
func Time(id int64) time.Time {
	return time.UnixMilli(id>>(nodeBits+seqBits) + epochMs)
}
