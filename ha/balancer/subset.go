package balancer

import (
	"hash/fnv"
	"math"
	"sort"
)

// SubsetOf returns the size nodes that client clientID (0, 1, 2, ...) talks to, by
// deterministic subsetting (Google SRE book, "Load Balancing in the Datacenter"): clients
// are grouped in rounds of m = round(len(nodes)/size); each round orders the nodes by a
// hash of (round, Addr) and gives its m clients evenly spaced windows of size nodes, so
// within a round every node serves one client and, over clients 0..N-1, each node serves
// N·size/len(nodes) of them.
//
// Unlike the book's reshuffle, the order is a hash sort, so a node leaving or joining
// shifts the others by at most one place: a client changes at most two members of its
// subset, and most change none or one. The rounds regroup only when round(len/size)
// changes (for size 10, when the fleet crosses 95, 105, 115, ...).
//
// With size ≤ 0 or at most size nodes it returns nodes unchanged. The result is a new
// slice in ring order, except in that case.
func SubsetOf(nodes []Node, size, clientID int) []Node {
	n := len(nodes)
	if size <= 0 || n <= size {
		return nodes
	}
	m := max(1, int(math.Round(float64(n)/float64(size))))
	if clientID < 0 {
		clientID = -clientID
	}
	round, j := clientID/m, clientID%m
	type keyed struct {
		key  uint64
		node Node
	}
	ring := make([]keyed, n)
	for i, nd := range nodes {
		ring[i] = keyed{key: ringKey(uint64(round), nd.Addr), node: nd}
	}
	sort.Slice(ring, func(a, b int) bool {
		if ring[a].key != ring[b].key {
			return ring[a].key < ring[b].key
		}
		return ring[a].node.Addr < ring[b].node.Addr
	})
	start := j * n / m
	out := make([]Node, size)
	for i := range out {
		out[i] = ring[(start+i)%n].node
	}
	return out
}

func ringKey(round uint64, addr string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(addr))
	z := h.Sum64() ^ (round * 0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
