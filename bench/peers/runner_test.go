package main

import (
	"slices"
	"testing"
)

// Every round measures courier and each River mode once; courier and tuned
// River take turns going first, and River with its defaults comes last.
func TestPostgresOrder(t *testing.T) {
	for round := 1; round <= 4; round++ {
		order := postgresOrder(round)
		sorted := slices.Sorted(slices.Values(order))
		if want := []int{-1, 0, 1}; !slices.Equal(sorted, want) {
			t.Errorf("round %d: %v, want each of %v once", round, order, want)
		}
		first := -1
		if round%2 == 0 {
			first = 0
		}
		if order[0] != first || order[len(order)-1] != len(riverModes)-1 {
			t.Errorf("round %d: order %v, want %d first and River's defaults last", round, order, first)
		}
	}
}
