package balancer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// srebook is the SRE book's subsetting, for comparison: shuffle per round with a seeded
// generator, then cut into len/size disjoint subsets.
func srebook(nodes []Node, size, clientID int) []Node {
	count := len(nodes) / size
	round, id := clientID/count, clientID%count
	b := slices.Clone(nodes)
	r := rand.New(rand.NewPCG(uint64(round), 0))
	r.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
	return b[id*size : id*size+size]
}

type subsetFunc func(nodes []Node, size, clientID int) []Node

// spread assigns each client to its subset and returns max/mean of the clients per node.
func spread(f subsetFunc, nodes []Node, clients, size int) (float64, map[int][]string) {
	per := map[string]int{}
	subsets := map[int][]string{}
	for c := range clients {
		for _, n := range f(nodes, size, c) {
			per[n.Addr]++
			subsets[c] = append(subsets[c], n.Addr)
		}
	}
	most := 0
	for _, n := range nodes {
		most = max(most, per[n.Addr])
	}
	mean := float64(clients*size) / float64(len(nodes))
	return float64(most) / mean, subsets
}

// churn counts subset members that changed, in total and for the worst client.
func churn(before, after map[int][]string) (total, worst int) {
	for c, old := range before {
		changed := 0
		for _, a := range after[c] {
			if !slices.Contains(old, a) {
				changed++
			}
		}
		total += changed
		worst = max(worst, changed)
	}
	return total, worst
}

func nodesNamed(n int) []Node {
	out := make([]Node, n)
	for i := range out {
		out[i] = Node{Addr: fmt.Sprintf("10.0.%d.%d:9000", i/250, i%250)}
	}
	return out
}

// TestSubsetting: 100 backends, 300 clients, subset 10. Every backend serves the same
// number of clients, and when one backend leaves (or joins) few subsets change.
func TestSubsetting(t *testing.T) {
	const backends, clients, size = 100, 300, 10
	nodes := nodesNamed(backends)
	imbalance, before := spread(SubsetOf, nodes, clients, size)
	_, bookBefore := spread(srebook, nodes, clients, size)
	if imbalance > 1.0 {
		t.Errorf("clients per backend max/mean = %.2f; want 1.00", imbalance)
	}
	for c, s := range before {
		if len(s) != size || len(slices.Compact(slices.Sorted(slices.Values(s)))) != size {
			t.Fatalf("client %d subset = %v; want %d distinct nodes", c, s, size)
		}
	}
	cases := []struct {
		name  string
		nodes []Node
		// bounds: total changed members (of 3000) and the worst client's, and max/mean.
		maxTotal, maxWorst int
		maxImbalance       float64
	}{
		{"one leaves", slices.Delete(slices.Clone(nodes), 37, 38), 200, 2, 1.1},
		{"one joins", append(slices.Clone(nodes), Node{Addr: "10.0.9.9:9000"}), 200, 2, 1.1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			imb, after := spread(SubsetOf, c.nodes, clients, size)
			total, worst := churn(before, after)
			_, bookAfter := spread(srebook, c.nodes, clients, size)
			bookTotal, _ := churn(bookBefore, bookAfter)
			t.Logf("changed members %d of %d (worst client %d), max/mean %.2f; SRE book reshuffle changes %d",
				total, clients*size, worst, imb, bookTotal)
			if total > c.maxTotal || worst > c.maxWorst {
				t.Errorf("churn = %d total, %d worst client; want ≤ %d, ≤ %d", total, worst, c.maxTotal, c.maxWorst)
			}
			if imb > c.maxImbalance {
				t.Errorf("max/mean = %.2f; want ≤ %.2f", imb, c.maxImbalance)
			}
		})
	}
}

func TestSubsetSmallFleet(t *testing.T) {
	nodes := nodesNamed(5)
	cases := []struct {
		name       string
		size, want int
	}{
		{"off", 0, 5},
		{"larger than fleet", 10, 5},
		{"equal", 5, 5},
		{"smaller", 2, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := len(SubsetOf(nodes, c.size, 3)); got != c.want {
				t.Errorf("len(SubsetOf(5 nodes, %d, 3)) = %d; want %d", c.size, got, c.want)
			}
		})
	}
}
