package quota

import (
	"math"
	"testing"
)

func TestMaxMin(t *testing.T) {
	tests := []struct {
		name     string
		capacity float64
		demands  []float64
		weights  []float64
		want     []float64
	}{
		{"issue example", 150, []float64{10, 50, 200}, nil, []float64{10, 50, 90}},
		{"order does not matter", 150, []float64{200, 10, 50}, nil, []float64{90, 10, 50}},
		{"all satisfied", 150, []float64{10, 20, 30}, nil, []float64{10, 20, 30}},
		{"equal split", 90, []float64{100, 100, 100}, nil, []float64{30, 30, 30}},
		{"weights", 100, []float64{100, 100}, []float64{1, 3}, []float64{25, 75}},
		{"weighted small demand", 100, []float64{10, 100, 100}, []float64{2, 1, 1}, []float64{10, 45, 45}},
		{"zero weight counts as one", 100, []float64{100, 100}, []float64{0, 1}, []float64{50, 50}},
		{"negative demand is zero", 100, []float64{-5, 100}, nil, []float64{0, 100}},
		{"zero capacity", 0, []float64{10}, nil, []float64{0}},
		{"none", 100, nil, nil, []float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MaxMin(tt.capacity, tt.demands, tt.weights)
			if len(got) != len(tt.want) {
				t.Fatalf("MaxMin(%v, %v, %v) = %v; want %v", tt.capacity, tt.demands, tt.weights, got, tt.want)
			}
			var sum float64
			for i := range got {
				sum += got[i]
				if math.Abs(got[i]-tt.want[i]) > 1e-9 {
					t.Fatalf("MaxMin(%v, %v, %v) = %v; want %v", tt.capacity, tt.demands, tt.weights, got, tt.want)
				}
			}
			if sum > tt.capacity+1e-9 {
				t.Fatalf("shares add up to %v > capacity %v", sum, tt.capacity)
			}
		})
	}
}
