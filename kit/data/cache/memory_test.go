package cache

import (
	"fmt"
	"testing"
	"time"
)

func TestMemoryLRU(t *testing.T) {
	tests := []struct {
		name    string
		ops     func(t *testing.T, m *Memory)
		present []string
		absent  []string
	}{
		{
			name: "evicts least recently set",
			ops: func(t *testing.T, m *Memory) {
				mustSet(t, m, "a", []byte("1"), 0)
				mustSet(t, m, "b", []byte("2"), 0)
				mustSet(t, m, "c", []byte("3"), 0)
			},
			present: []string{"b", "c"},
			absent:  []string{"a"},
		},
		{
			name: "a read refreshes",
			ops: func(t *testing.T, m *Memory) {
				mustSet(t, m, "a", []byte("1"), 0)
				mustSet(t, m, "b", []byte("2"), 0)
				mustGet(t, m, "a", []byte("1"))
				mustSet(t, m, "c", []byte("3"), 0)
			},
			present: []string{"a", "c"},
			absent:  []string{"b"},
		},
		{
			name: "an overwrite refreshes and does not grow",
			ops: func(t *testing.T, m *Memory) {
				mustSet(t, m, "a", []byte("1"), 0)
				mustSet(t, m, "b", []byte("2"), 0)
				mustSet(t, m, "a", []byte("1'"), 0)
				mustSet(t, m, "c", []byte("3"), 0)
			},
			present: []string{"a", "c"},
			absent:  []string{"b"},
		},
		{
			name: "a failed setnx does not refresh",
			ops: func(t *testing.T, m *Memory) {
				mustSet(t, m, "a", []byte("1"), 0)
				mustSet(t, m, "b", []byte("2"), 0)
				mustSetNX(t, m, "a", []byte("x"), 0, false)
				mustSet(t, m, "c", []byte("3"), 0)
			},
			present: []string{"b", "c"},
			absent:  []string{"a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMemory(WithShards(1), WithMaxEntries(2), WithJanitorInterval(0))
			defer m.Close()
			tt.ops(t, m)
			for _, k := range tt.absent {
				mustMiss(t, m, k)
			}
			for _, k := range tt.present {
				if _, err := m.Get(t.Context(), k); err != nil {
					t.Errorf("Get(%q) = %v; want present", k, err)
				}
			}
		})
	}
}

func TestMemoryCap(t *testing.T) {
	tests := []struct {
		max, shards int
	}{
		{100, 16},
		{10, 16}, // fewer entries than shards
		{1, 1},
		{0, 0}, // clamped to one entry, one shard
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("max=%d,shards=%d", tt.max, tt.shards), func(t *testing.T) {
			m := NewMemory(WithMaxEntries(tt.max), WithShards(tt.shards), WithJanitorInterval(0))
			defer m.Close()
			for i := range 1000 {
				mustSet(t, m, fmt.Sprint(i), []byte("v"), 0)
			}
			if n := m.Len(); n > max(tt.max, 1) {
				t.Fatalf("Len() = %d; want <= %d", n, max(tt.max, 1))
			}
			mustGet(t, m, "999", []byte("v"))
		})
	}
}

func TestMemoryLazyExpiry(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(WithClock(clock), WithJanitorInterval(0))
	defer m.Close()
	mustSet(t, m, "k", []byte("v"), time.Second)
	clock.Advance(time.Second - time.Nanosecond)
	mustGet(t, m, "k", []byte("v"))
	clock.Advance(time.Nanosecond)
	if n := m.Len(); n != 1 {
		t.Fatalf("Len() before the read = %d; want 1 (nothing sweeps)", n)
	}
	mustMiss(t, m, "k")
	if n := m.Len(); n != 0 {
		t.Fatalf("Len() after reading an expired key = %d; want 0", n)
	}
}

func TestMemoryJanitor(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(WithClock(clock), WithJanitorInterval(time.Millisecond))
	defer m.Close()
	for i := range 20 {
		mustSet(t, m, fmt.Sprint(i), []byte("v"), time.Minute)
	}
	mustSet(t, m, "forever", []byte("v"), 0)
	clock.Advance(time.Minute)
	// The janitor ticks on real time; poll for its sweep rather than guess when it runs.
	waitFor(t, 10*time.Second, func() bool { return m.Len() == 1 })
	mustGet(t, m, "forever", []byte("v"))
}
