package quota

import (
	"math"
	"sort"
)

// MaxMin divides capacity max-min fairly among demands: demands are satisfied in ascending
// order of demand/weight, nobody gets more than it asked, and those left unsatisfied share
// what remains in proportion to their weights. weights may be nil (all 1); a weight of 0
// or less counts as 1. Negative demands count as 0. The result has one share per demand,
// and the shares never add up to more than capacity.
func MaxMin(capacity float64, demands, weights []float64) []float64 {
	n := len(demands)
	shares := make([]float64, n)
	if n == 0 || !(capacity > 0) {
		return shares
	}
	w := func(i int) float64 {
		if weights == nil || !(weights[i] > 0) || math.IsInf(weights[i], 0) {
			return 1
		}
		return weights[i]
	}
	d := func(i int) float64 { return max(0, demands[i]) }
	order := make([]int, n)
	var total float64
	for i := range order {
		order[i] = i
		total += w(i)
	}
	sort.SliceStable(order, func(a, b int) bool { return d(order[a])/w(order[a]) < d(order[b])/w(order[b]) })
	left := capacity
	for k, i := range order {
		fair := left * w(i) / total
		if d(i) <= fair {
			shares[i] = d(i)
			left -= d(i)
			total -= w(i)
			continue
		}
		// Everyone from here on wants more than an equal (weighted) split of what is left.
		for _, j := range order[k:] {
			shares[j] = left * w(j) / total
		}
		break
	}
	return shares
}
