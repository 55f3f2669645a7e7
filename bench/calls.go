package main

import (
	"sort"

	"github.com/parcelhq/orderservice/internal/ddbmeter"
)

// opNames returns the operation names in any of cs, sorted.
func opNames(cs ...ddbmeter.Calls) []string {
	seen := map[string]bool{}
	var names []string
	for _, c := range cs {
		for k := range c.Ops {
			if !seen[k] {
				seen[k] = true
				names = append(names, k)
			}
		}
	}
	sort.Strings(names)
	return names
}
