package quota

import (
	"context"
	"maps"
	"sync"
	"time"
)

// Store keeps the service's state. Update must be atomic with respect to every other
// Update touching any of the same resources, including those of other service instances
// that share the store.
type Store interface {
	// Update loads the state of resources (a missing one as a zero ResourceState with an
	// empty Clients map), calls fn, and saves what fn left, unless fn fails.
	Update(ctx context.Context, resources []string, fn func(map[string]*ResourceState) error) error
	// View returns the state of resources, for reading only.
	View(ctx context.Context, resources []string) (map[string]*ResourceState, error)
}

// ResourceState is the stored state of one resource.
type ResourceState struct {
	// Seen is when the service last handled a request for the resource.
	Seen time.Time `json:"seen"`
	// LearnUntil ends the current learning mode; zero or past when not learning.
	LearnUntil time.Time `json:"learn_until"`
	// LearnN is the largest client count reported during learning.
	LearnN int `json:"learn_n"`
	// Clients holds each live client's record by client id.
	Clients map[string]*ClientRecord `json:"clients"`
}

// ClientRecord is one client's demand and lease on one resource.
type ClientRecord struct {
	Demand  float64   `json:"demand"`
	Weight  float64   `json:"weight"`
	Has     float64   `json:"has"`
	Grant   float64   `json:"grant"`
	Renewed time.Time `json:"renewed"`
	Expires time.Time `json:"expires"`
}

func newState() *ResourceState { return &ResourceState{Clients: map[string]*ClientRecord{}} }

func (s *ResourceState) clone() *ResourceState {
	c := *s
	c.Clients = make(map[string]*ClientRecord, len(s.Clients))
	for id, r := range s.Clients {
		rc := *r
		c.Clients[id] = &rc
	}
	return &c
}

// MemoryStore is a Store in process memory: for tests and a single embedded service. Its
// state dies with the process; the service's learning mode covers that restart.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]*ResourceState
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string]*ResourceState{}} }

// Update implements Store.
func (s *MemoryStore) Update(ctx context.Context, resources []string, fn func(map[string]*ResourceState) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	states := s.load(resources)
	if err := fn(states); err != nil {
		return err
	}
	maps.Copy(s.m, states)
	return nil
}

// View implements Store.
func (s *MemoryStore) View(ctx context.Context, resources []string) (map[string]*ResourceState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.load(resources), nil
}

// load returns copies, so that a failed fn changes nothing.
func (s *MemoryStore) load(resources []string) map[string]*ResourceState {
	out := make(map[string]*ResourceState, len(resources))
	for _, name := range resources {
		if st := s.m[name]; st != nil {
			out[name] = st.clone()
		} else {
			out[name] = newState()
		}
	}
	return out
}
