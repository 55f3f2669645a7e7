package main

import "slices"

// abba returns xs in the order of round r of an ABBA schedule: as given in
// even rounds, reversed in odd ones, so that a drift of the machine's load
// within a pair of rounds falls on every member alike. xs is not changed.
func abba[T any](r int, xs []T) []T {
	if r%2 == 0 {
		return xs
	}
	rev := slices.Clone(xs)
	slices.Reverse(rev)
	return rev
}
