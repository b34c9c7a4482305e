package driver

import "testing"

func TestPlace(t *testing.T) {
	for _, tc := range []struct {
		name       string
		load, room []int
		slack      int
		want       int
	}{
		{"new room: least loaded", []int{3, 1, 2}, nil, 8, 1},
		{"new room: ties to the lowest index", []int{2, 1, 1}, nil, 8, 1},
		{"room stays on its worker within slack", []int{9, 1}, []int{9, 0}, 8, 0},
		{"room leaves its worker past slack", []int{10, 1}, []int{10, 0}, 8, 1},
		{"busiest of the room's workers within slack", []int{5, 6, 1}, []int{2, 4, 0}, 8, 1},
		{"busiest one too far ahead: the next in the room", []int{4, 12, 3}, []int{1, 9, 0}, 8, 0},
		{"room tie: lowest index", []int{3, 3}, []int{2, 2}, 8, 0},
		{"slack 0: always the least loaded", []int{5, 4}, []int{5, 0}, 0, 1},
		{"slack 0, room worker equally loaded: stays", []int{4, 4}, []int{0, 4}, 0, 1},
		{"one worker", []int{100}, []int{100}, 0, 0},
	} {
		if got := place(tc.load, tc.room, tc.slack); got != tc.want {
			t.Errorf("%s: place(%v, %v, %d) = %d, want %d", tc.name, tc.load, tc.room, tc.slack, got, tc.want)
		}
	}
}
